// What a layer has learned and what it computes for one image: its filters as tiles, and
// its activations, one tile per channel (the lecture's first pictures of a network).
import Engine
import Imaging

/// How filters with many input channels are shown.
public enum FilterLayout: String, CaseIterable, Sendable {
    /// One row per filter, one gray tile per input channel (all of a filter scaled together).
    case channels
    /// One gray tile per filter: the mean over its input channels.
    case mean
}

/// A convolution layer's filters as one picture.
///
/// A first layer (1 or 3 input channels) gives one tile per filter: gray for one channel,
/// colour for three. Deeper layers give, by default, one row per filter with one tile per
/// input channel (`.channels`), or one tile per filter averaged over its input channels
/// (`.mean`). Each filter is scaled into [0, 1] on its own (min-max, or symmetric about zero
/// with `symmetric`, where mid-gray is zero), then enlarged `scale` times with nearest
/// neighbour so that 5x5 filters stay crisp.
public func filters(_ layer: Layer, scale: Int = 8, layout: FilterLayout = .channels, symmetric: Bool = false,
                    columns: Int? = nil, numbered: Bool = false) throws -> Tensor {
    guard layer.kind == LayerKind.conv2d.name, let weight = layer.parameters["weight"], weight.rank == 4 else {
        throw EngineError.invalidArgument("filters are shown for convolution layers; this is a \(layer.kind) layer")
    }
    let scaling: DisplayScaling = symmetric ? .symmetric : .minMax
    let inputs = weight.shape[1]
    if inputs == 1 || inputs == 3 || layout == .channels {
        return try filterGrid(weight, columns: columns, scale: scale, scaling: scaling, numbered: numbered)
    }
    // The mean over input channels: [K, C, kh, kw] -> [K, 1, kh, kw].
    let (k, kh, kw) = (weight.shape[0], weight.shape[2], weight.shape[3])
    let area = kh * kw
    let mean = Tensor(shape: [k, 1, kh, kw]) { out in
        weight.withUnsafeBufferPointer { w in
            for f in 0..<k { for p in 0..<area {
                var s: Float = 0
                for c in 0..<inputs { s += w[(f * inputs + c) * area + p] }
                out[f * area + p] = s / Float(inputs)
            }}
        }
    }
    return try filterGrid(mean, columns: columns, scale: scale, scaling: scaling, numbered: numbered)
}

/// The filters of the layer called `layer` (see `filters(_:scale:layout:symmetric:columns:numbered:)`).
public func filters(_ network: Network, layer: String, scale: Int = 8, layout: FilterLayout = .channels,
                    symmetric: Bool = false, columns: Int? = nil, numbered: Bool = false) throws -> Tensor {
    try filters(try network.layer(named: layer), scale: scale, layout: layout, symmetric: symmetric, columns: columns, numbered: numbered)
}

/// The output of `layer` for one display image, as the network computes it: [C, H, W] for a
/// feature map, [F] for a layer of F units. No gradient is recorded.
public func activationMaps(_ network: Network, _ image: Tensor, layer: String) throws -> Tensor {
    let input = NetworkInput(network)
    try input.checkLayer(layer)
    let out = try network(try input.batch(image), upTo: layer)
    return try out.reshaped(Array(out.shape.dropFirst()))
}

/// Every channel of `layer`'s output for one image as a grid picture: one tile per channel,
/// each scaled into [0, 1] on its own (or all with one scale, `sharedScale`, to compare
/// channels), enlarged `scale` times. A layer without spatial positions (a linear layer)
/// gives one strip of cells, one per unit, scaled together.
public func activations(_ network: Network, _ image: Tensor, layer: String, scale: Int = 4, sharedScale: Bool = false,
                        colormap: Colormap = .gray, columns: Int? = nil, numbered: Bool = false) throws -> Tensor {
    let maps = try activationMaps(network, image, layer: layer)
    if maps.rank == 3 {
        return try activationGrid(maps, columns: columns, scale: scale, sharedScale: sharedScale, colormap: colormap, numbered: numbered)
    }
    var strip = rescaled(try maps.reshaped([1, 1, maps.count]))
    if colormap != .gray { strip = try colormap.apply(strip) }
    return try upscale(strip, by: Swift.max(scale, 1) * 2)
}

/// One channel of `layer`'s output for one image as a picture [1, h, w] (scaled into
/// [0, 1], enlarged `scale` times); the layer must have feature maps [N, C, H, W].
public func activation(_ network: Network, _ image: Tensor, layer: String, channel: Int, scale: Int = 4) throws -> Tensor {
    let maps = try activationMaps(network, image, layer: layer)
    guard maps.rank == 3 else {
        throw EngineError.invalidArgument("layer '\(layer)' has no feature maps (its output is \(maps.shape)); use activations to see its units")
    }
    guard channel >= 0 && channel < maps.shape[0] else {
        throw EngineError.invalidArgument("channel \(channel) is out of range: layer '\(layer)' has \(maps.shape[0]) channels, 0 to \(maps.shape[0] - 1)")
    }
    let plane = maps.shape[1] * maps.shape[2]
    let one = Tensor(shape: [1, maps.shape[1], maps.shape[2]], scalars: Array(maps.scalars[(channel * plane)..<((channel + 1) * plane)]))
    return try upscale(rescaled(one), by: scale)
}
