/// Per-channel normalization, x' = (x − mean[c]) / std[c], and back, x = x' · std[c] + mean[c]:
/// the one implementation behind a network's InputSpec, Imaging's Normalization presets, and
/// the normalization the language and the visualizations put on the tape so that gradients
/// reach the picture. One mean (or std) stands for every channel.
public struct ChannelNormalization: Equatable, Sendable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }

    /// Mean 0 and std 1 in every channel: normalizing changes nothing.
    public var isIdentity: Bool { mean.allSatisfy { $0 == 0 } && std.allSatisfy { $0 == 1 } }

    /// How many channels the values are for: 1 when each is a single value for every channel.
    public var channels: Int { Swift.max(mean.count, std.count) }

    /// The mean of channel `c`.
    public func mean(ofChannel c: Int) -> Float { mean[mean.count == 1 ? 0 : c] }
    /// The standard deviation of channel `c`.
    public func std(ofChannel c: Int) -> Float { std[std.count == 1 ? 0 : c] }

    /// The normalized value of `v` in channel `c`.
    public func apply(_ v: Float, channel c: Int) -> Float { (v - mean(ofChannel: c)) / std(ofChannel: c) }

    /// Why these values cannot normalize `count` channels, if they cannot.
    public func problem(channels count: Int) -> String? {
        if mean.isEmpty || std.isEmpty { return "a normalization needs at least one mean and one deviation" }
        for values in [mean, std] where values.count != 1 && values.count != count {
            return "\(mean.count) mean(s) and \(std.count) deviation(s) do not fit \(count) channel(s); give one value or one per channel"
        }
        return nil
    }

    /// `tensor` normalized (or, `inverse`, brought back), its channels along `channelAxis`;
    /// nil means the tensor is one channel ([H, W]). The last two axes are the picture's.
    public func apply(_ tensor: Tensor, channelAxis: Int?, inverse: Bool = false) throws -> Tensor {
        let count = channelAxis.map { tensor.shape[$0] } ?? 1
        if let problem = problem(channels: count) { throw EngineError.shapeMismatch("\(problem); got \(tensor.shape)") }
        if isIdentity { return tensor }
        let m = (0..<count).map(mean(ofChannel:)), s = (0..<count).map(std(ofChannel:))
        // Blocks of one channel's plane: everything after the channel axis.
        let plane = channelAxis.map { tensor.shape.suffix(from: $0 + 1).reduce(1, *) } ?? tensor.count
        let blocks = tensor.count / Swift.max(plane, 1)
        return Tensor(shape: tensor.shape) { out in
            tensor.withUnsafeBufferPointer { source in
                for block in 0..<blocks {
                    let c = block % count, mc = m[c], sc = s[c], base = block * plane
                    if inverse {
                        for i in base..<(base + plane) { out[i] = source[i] * sc + mc }
                    } else {
                        for i in base..<(base + plane) { out[i] = (source[i] - mc) / sc }
                    }
                }
            }
        }
    }

    /// `x` normalized on the tape, its channels along `channelAxis` (nil: one channel), so
    /// that a gradient with respect to the result reaches `x`.
    public func apply(_ x: Variable, channelAxis: Int?) throws -> Variable {
        let count = channelAxis.map { x.shape[$0] } ?? 1
        if let problem = problem(channels: count) { throw EngineError.shapeMismatch("\(problem); got \(x.shape)") }
        if isIdentity { return x }
        var shape: [Int] = []
        if let channelAxis, channels > 1 {
            shape = [Int](repeating: 1, count: x.shape.count)
            shape[channelAxis] = count
        }
        let n = shape.isEmpty ? 1 : count
        let m = Variable(Tensor(shape: shape, scalars: (0..<n).map(mean(ofChannel:))))
        let s = Variable(Tensor(shape: shape, scalars: (0..<n).map(std(ofChannel:))))
        return try divide(try subtract(x, m), s)
    }
}

extension InputSpec {
    /// The spec's mean and std as a normalization.
    public var normalization: ChannelNormalization { ChannelNormalization(mean: mean, std: std) }
}
