// Per-channel normalization between display space ([0, 1]) and what a network was
// trained on: x' = (x - mean[c]) / std[c], and back: x = x' · std[c] + mean[c].
import Engine

/// A per-channel affine map from display space to a network's input space.
public struct Normalization: Equatable, Sendable {
    /// The preset name, or "custom".
    public var name: String
    /// Means, one per channel or a single value for every channel.
    public var mean: [Float]
    /// Standard deviations, one per channel or a single value for every channel.
    public var std: [Float]

    /// A normalization by per-channel `mean` and `std` (one value applies to every channel).
    public init(name: String = "custom", mean: [Float], std: [Float]) throws {
        guard !mean.isEmpty, !std.isEmpty, mean.count == std.count || mean.count == 1 || std.count == 1 else {
            throw EngineError.invalidArgument("normalization needs as many means as deviations, got \(mean.count) and \(std.count)")
        }
        guard std.allSatisfy({ $0 != 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
            throw EngineError.invalidArgument("normalization needs finite means and non-zero deviations, got std \(std)")
        }
        self.name = name
        self.mean = mean
        self.std = std
    }

    private init(preset: String, mean: [Float], std: [Float]) {
        name = preset
        self.mean = mean
        self.std = std
    }

    /// ImageNet statistics, used by torchvision's pretrained models.
    public static let imagenet = Normalization(preset: "imagenet", mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
    /// The identity: inputs in [0, 1].
    public static let unit = Normalization(preset: "unit", mean: [0], std: [1])
    /// Inputs in [-1, 1]: x · 2 − 1.
    public static let symmetric = Normalization(preset: "symmetric", mean: [0.5], std: [0.5])

    /// Every preset, in the order help lists them.
    public static let presets: [Normalization] = [.imagenet, .unit, .symmetric]

    /// The preset called `name` (imagenet, unit, symmetric); an unknown name suggests the nearest.
    public static func named(_ name: String) throws -> Normalization {
        if let preset = presets.first(where: { $0.name == name.lowercased() }) { return preset }
        throw EngineError.unknownName(name, candidates: presets.map(\.name))
    }

    /// The image (or batch) mapped into the network's input space: (x − mean) / std per channel.
    /// Accepts [C, H, W], [N, C, H, W] and [H, W] (one channel).
    public func normalize(_ image: Tensor) throws -> Tensor {
        try affine(image, inverse: false)
    }

    /// The inverse of `normalize`: x · std + mean per channel, back to display space.
    public func denormalize(_ tensor: Tensor) throws -> Tensor {
        try affine(tensor, inverse: true)
    }

    /// (x − mean[c]) / std[c] forwards, x · std[c] + mean[c] inverse (ChannelNormalization).
    private func affine(_ tensor: Tensor, inverse: Bool) throws -> Tensor {
        let channelAxis: Int
        switch tensor.rank {
        case 2: channelAxis = -1
        case 3: channelAxis = 0
        case 4: channelAxis = 1
        default:
            throw EngineError.shapeMismatch("\(name) normalization needs [C, H, W], [N, C, H, W] or [H, W]; got \(tensor.shape)")
        }
        let channels = channelAxis < 0 ? 1 : tensor.shape[channelAxis]
        let perChannel = Swift.max(mean.count, std.count)
        guard perChannel == 1 || perChannel == channels else {
            throw EngineError.shapeMismatch(
                "\(name) normalization has \(perChannel) channels, but the image \(tensor.shape) has \(channels)")
        }
        return try ChannelNormalization(mean: mean, std: std)
            .apply(tensor, channelAxis: channelAxis < 0 ? nil : channelAxis, inverse: inverse)
    }
}
