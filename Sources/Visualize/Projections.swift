// Mapping a unit back to pixels: the deconvnet of Zeiler and Fergus, guided backpropagation,
// and Grad-CAM. The first two are the network's backward pass with a different rule at every
// ReLU (Engine's `ReLURule`); max pooling's backward already goes through its switches, which
// is the deconvnet's unpooling, and a convolution's input gradient is the convolution with the
// transposed filters.
import Engine
import Imaging

/// A unit of a layer projected back to the input.
public struct Projection {
    /// The backward signal in the input, [C, H, W], per unit of display pixel value; signed.
    public let projection: Tensor
    /// The unit it starts from: channel, and row and column in the feature map (0, 0 for a
    /// layer without spatial positions).
    public let channel: Int
    public let y: Int
    public let x: Int
    /// That unit's activation for the image.
    public let activation: Float

    /// The projection as a picture: zero at mid-gray, scaled symmetrically so the 99th
    /// percentile of its magnitude reaches black or white (see `projectionPicture`).
    public var picture: Tensor { projectionPicture(projection) }
}

/// A signed projection [C, H, W] as a picture: zero at mid-gray and ±q at black and white, with
/// q the 99th percentile of |p| over the nonzero values, so the structure shows rather than one
/// bright speck on gray (values past q are clipped).
public func projectionPicture(_ p: Tensor) -> Tensor {
    let magnitudes = p.scalars.lazy.filter { $0.isFinite && $0 != 0 }.map { abs($0) }.sorted()
    guard let top = magnitudes.last, top > 0 else { return p.map { _ in 0.5 } }
    let q = Swift.max(magnitudes[Int(Float(magnitudes.count - 1) * 0.99)], top * 1e-6)
    return p.map { v in v.isFinite ? Swift.min(Swift.max(0.5 + 0.5 * v / q, 0), 1) : 0.5 }
}

/// Zeiler and Fergus's deconvnet (2014): keep the strongest activation of `channel` in
/// `layer` (or the unit at `position`), set every other activation of the layer to zero, and
/// project that feature map back to pixels through the layers below: max unpooling with the
/// switches recorded on the way up, rectification of the backward signal at every ReLU
/// (dx = max(dy, 0), the deconvnet rule), and convolution with the transposed filters. The
/// seed is the activation itself, as in the paper.
public func deconv(_ network: Network, _ image: Tensor, layer: String, channel: Int,
                   position: (y: Int, x: Int)? = nil) throws -> Projection {
    let input = NetworkInput(network)
    return try project(input, try input.batch(image), layer: layer, channel: channel, position: position,
                       rule: .deconvnet, seedWithActivation: true)
}

/// Guided backpropagation (Springenberg et al. 2015) of the class score S_c (before the
/// softmax): the gradient ∂S_c/∂I with the guided rule at every ReLU, dx = dy·[x > 0]·[dy > 0],
/// so only signals that are positive both ways pass. Returns [C, H, W], signed.
public func guided(_ network: Network, _ image: Tensor, class target: Int) throws -> Tensor {
    let input = NetworkInput(network)
    let g = try classGradient(input, try input.batch(image), class: target, rule: .guided)
    return try g.reshaped(Array(g.shape.dropFirst()))
}

/// Guided backpropagation of one unit: the gradient of the strongest activation of `channel`
/// in `layer` (or of the unit at `position`) with respect to the image, with the guided rule.
public func guided(_ network: Network, _ image: Tensor, layer: String, channel: Int,
                   position: (y: Int, x: Int)? = nil) throws -> Projection {
    let input = NetworkInput(network)
    return try project(input, try input.batch(image), layer: layer, channel: channel, position: position,
                       rule: .guided, seedWithActivation: false)
}

/// The backward pass from one unit of `layer` with `rule`, seeded with the unit's activation
/// (deconvnet) or 1 (a gradient).
func project(_ input: NetworkInput, _ batch: Tensor, layer: String, channel: Int, position: (y: Int, x: Int)?,
             rule: ReLURule, seedWithActivation: Bool) throws -> Projection {
    try input.checkLayer(layer)
    var unit = (channel: channel, y: 0, x: 0, value: Float(0))
    let (_, g) = try input.backward(batch, from: layer, rule: rule) { out in
        unit = try strongestUnit(out, layer: layer, channel: channel, position: position)
        var seed = Tensor(zeros: out.shape)
        seed.scalars[try flatIndex(out.shape, channel: channel, y: unit.y, x: unit.x)] = seedWithActivation ? unit.value : 1
        return seed
    }
    let d = input.displayGradient(g)
    return Projection(projection: try d.reshaped(Array(d.shape.dropFirst())), channel: channel, y: unit.y, x: unit.x,
                      activation: unit.value)
}

/// The unit of `channel` with the largest activation in the first image of `out` ([N, C, H, W]
/// or [N, F]), or the one at `position`; ties go to the first in row-major order.
func strongestUnit(_ out: Tensor, layer: String, channel: Int, position: (y: Int, x: Int)?) throws -> (channel: Int, y: Int, x: Int, value: Float) {
    let channels = out.rank >= 2 ? out.shape[1] : 0
    guard channel >= 0 && channel < channels else {
        throw EngineError.invalidArgument("channel \(channel) is out of range: layer '\(layer)' has \(channels) channels, 0 to \(channels - 1)")
    }
    let (h, w) = out.rank == 4 ? (out.shape[2], out.shape[3]) : (1, 1)
    if let position {
        guard position.y >= 0 && position.y < h && position.x >= 0 && position.x < w else {
            throw EngineError.invalidArgument("position (\(position.y), \(position.x)) is outside layer '\(layer)''s \(h) x \(w) feature map")
        }
        return (channel, position.y, position.x, out.scalars[try flatIndex(out.shape, channel: channel, y: position.y, x: position.x)])
    }
    let base = channel * h * w
    var best = base
    for i in base..<(base + h * w) where out.scalars[i] > out.scalars[best] { best = i }
    return (channel, (best - base) / w, (best - base) % w, out.scalars[best])
}

/// The offset of (channel, y, x) of the first image in a tensor [N, C, H, W] or [N, F].
func flatIndex(_ shape: [Int], channel: Int, y: Int, x: Int) throws -> Int {
    switch shape.count {
    case 4: return (channel * shape[2] + y) * shape[3] + x
    case 2: return channel
    default: throw EngineError.shapeMismatch("expected a layer output [N, C, H, W] or [N, F]; got \(shape)")
    }
}

/// Grad-CAM of one class at one layer.
public struct GradCAM {
    /// The map upsampled to the image, [1, H, W], values ≥ 0 (not scaled).
    public let map: Tensor
    /// The map at the layer's resolution, [1, h, w].
    public let coarse: Tensor
    /// The weight αₖ of each channel of the layer.
    public let weights: [Float]
}

/// Grad-CAM (Selvaraju et al. 2017): with Aᵏ the k-th feature map of `layer` and S_c the class
/// score before the softmax, the channel weights are the global-average-pooled gradients
/// αₖ = (1/hw) Σᵢⱼ ∂S_c/∂Aᵏᵢⱼ, the map is ReLU(Σₖ αₖ Aᵏ), and it is upsampled to the image by
/// bilinear interpolation (align_corners = false, as Captum's `LayerAttribution.interpolate`
/// does). The map is not rescaled: `overlay` does that for display.
public func gradcam(_ network: Network, _ image: Tensor, class target: Int, layer: String) throws -> GradCAM {
    let input = NetworkInput(network)
    try input.checkLayer(layer)
    let batch = try input.batch(image)
    let x = Variable(batch, requiresGrad: true)
    let outs = try network.forward(x, outputs: [layer, input.scoreLayer], context: ForwardContext())
    let (a, scores) = (outs[0], outs[1])
    guard a.shape.count == 4 else {
        throw EngineError.invalidArgument("Grad-CAM needs a layer with feature maps [N, C, H, W]; '\(layer)' gives \(a.shape)")
    }
    let g = try gradients(of: scores, withRespectTo: [a], seed: try input.classSeed(target, scores.value))[0]
    let (k, h, w) = (a.shape[1], a.shape[2], a.shape[3])
    let plane = h * w
    let weights = (0..<k).map { c in g.scalars[(c * plane)..<((c + 1) * plane)].reduce(0, +) / Float(plane) }
    let coarse = Tensor(shape: [1, h, w]) { out in
        for i in 0..<plane {
            var s: Float = 0
            for c in 0..<k { s += weights[c] * a.value.scalars[c * plane + i] }
            out[i] = Swift.max(s, 0)
        }
    }
    let (height, width) = (batch.shape[2], batch.shape[3])
    return GradCAM(map: try resize(coarse, height: height, width: width, antialias: false), coarse: coarse, weights: weights)
}

/// Zeiler and Fergus's way of showing one projection: the projection cropped to the unit's
/// receptive field beside the image patch under that field, each enlarged or shrunk as the top
/// patches are (see `TopPatches.picture`).
public struct ProjectionFigure {
    /// The two side by side.
    public let picture: Tensor
    /// The image under the unit's receptive field, [C, h, w], and where it is (moved inside the image).
    public let patch: Tensor
    public let region: (top: Int, left: Int, height: Int, width: Int)
    /// The projection cropped to the same region, signed.
    public let projection: Tensor
}

/// The figure of `projection`, a projection of `layer` for the display image `image`.
public func projectionFigure(_ network: Network, _ image: Tensor, layer: String, projection: Projection) throws -> ProjectionFigure {
    let input = NetworkInput(network)
    let batch = try input.batch(image)
    let field = try receptiveField(network, layer: layer, inputShape: batch.shape)
    let (height, width) = (batch.shape[2], batch.shape[3])
    let r = regionInside(field.region(y: projection.y, x: projection.x), height: height, width: width)
    let display = try image.reshaped([batch.shape[1], height, width])
    let patch = crop(display, r), cropped = crop(projection.projection, r)
    let single = TopPatches(patches: [TopPatch(imageIndex: 0, y: projection.y, x: projection.x, activation: projection.activation,
                                               region: r, patch: patch, projection: cropped)],
                            receptiveField: field, imagesSeen: 1, imageCount: 1, cancelled: false)
    return ProjectionFigure(picture: try single.picture(), patch: patch, region: r, projection: cropped)
}
