// Attribution maps as people show them: a few pixels carry most of a gradient's magnitude, so
// maps are clipped at a high percentile before they are scaled for display; the class to
// explain is, unless said otherwise, the one the network sees; Grad-CAM looks at the last
// layer that still has a spatial layout.
import Engine

/// `map` divided by its `percentile`-th percentile and clipped to [0, 1], so that the few
/// largest values do not leave everything else black (percentile 100: scaled by the maximum).
/// A map that is zero up to that percentile is scaled by its maximum instead; an all-zero map
/// stays zero.
public func percentileClipped(_ map: Tensor, percentile: Float = 99) throws -> Tensor {
    guard percentile > 0, percentile <= 100 else {
        throw EngineError.invalidArgument("the clip percentile must be above 0 and at most 100, got \(percentile)")
    }
    let values = map.scalars.filter { $0.isFinite }.sorted()
    guard let top = values.last, top > 0 else { return map.map { _ in 0 } }
    // The nearest-rank percentile.
    let rank = Int((Float(values.count - 1) * percentile / 100).rounded())
    var q = values[Swift.min(Swift.max(rank, 0), values.count - 1)]
    if !(q > 0) { q = top }
    return map.map { v in v.isFinite ? Swift.min(Swift.max(v / q, 0), 1) : 0 }
}

/// The class the network gives `image` the highest score.
public func topClass(_ network: Network, _ image: Tensor) throws -> Int {
    let input = NetworkInput(network)
    return try input.scores(try input.batch(image)).argmax()
}

/// The layer Grad-CAM looks at by default: the last convolution whose output still has a
/// spatial layout larger than 1 x 1 (the last convolutional features, as Selvaraju et al. use),
/// or failing that the last layer with such an output.
public func lastSpatialLayer(_ network: Network) throws -> String {
    let shape = try NetworkInput(network).inputShape()
    let shapes = try network.shapes(for: shape)
    func spatial(_ n: Network.Node) -> Bool {
        guard let s = shapes[n.name], s.count == 4 else { return false }
        return s[2] * s[3] > 1
    }
    guard let node = network.nodes.last(where: { spatial($0) && $0.layer.kind == "conv2d" }) ?? network.nodes.last(where: spatial) else {
        throw EngineError.invalidArgument("the network has no layer with feature maps [N, C, H, W]; name one with layer=")
    }
    return node.name
}
