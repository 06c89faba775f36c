import Engine

/// EfficientNet-Lite (Tan and Le 2019; the "Lite" variants of TensorFlow's model garden) as
/// the PyTorch package efficientnet-lite-pytorch lays it out, so that its state dicts load by
/// name: a 3x3 stride-2 stem, sixteen or more MBConv blocks, a 1x1 head, global average
/// pooling and a linear classifier. Every convolution pads as TensorFlow's "SAME" does.

extension ConvOptions {
    /// TensorFlow's "SAME" padding along one axis, as (before, after): the output keeps
    /// ceil(input / stride) positions, and
    ///
    ///     total = max((ceil(input / stride) - 1)·stride + (kernel - 1)·dilation + 1 - input, 0)
    ///
    /// is split with the smaller half before (top, left) and the rest after (bottom, right).
    /// For stride 2 on an even input this is asymmetric: a 3x3 kernel on 224 pads 0 and 1.
    public static func samePadding(input: Int, kernel: Int, stride: Int, dilation: Int = 1) -> (before: Int, after: Int) {
        let outputs = (input + stride - 1) / stride
        let total = max((outputs - 1) * stride + (kernel - 1) * dilation + 1 - input, 0)
        return (total / 2, total - total / 2)
    }
}

/// The shape of one EfficientNet-Lite: how its baseline is scaled.
public struct EfficientNetLiteVariant: Equatable, Sendable {
    public let name: String
    /// Multiplies every stage's channels (rounded to multiples of 8).
    public let width: Double
    /// Multiplies every stage's block count (rounded up), except the first and last stage's.
    public let depth: Double
    /// The square input size the variant was trained at; the static padding is computed for it.
    public let resolution: Int
    public let dropout: Float

    /// lite0 to lite4, with the coefficients of TensorFlow's efficientnet_lite_builder.
    public static let all: [EfficientNetLiteVariant] = [
        .init(name: "lite0", width: 1.0, depth: 1.0, resolution: 224, dropout: 0.2),
        .init(name: "lite1", width: 1.0, depth: 1.1, resolution: 240, dropout: 0.2),
        .init(name: "lite2", width: 1.1, depth: 1.2, resolution: 260, dropout: 0.3),
        .init(name: "lite3", width: 1.2, depth: 1.4, resolution: 280, dropout: 0.3),
        .init(name: "lite4", width: 1.4, depth: 1.8, resolution: 300, dropout: 0.3),
    ]

    /// One stage of the baseline: `repeats` blocks, the first with `stride` and `input` channels.
    struct Stage { let repeats, kernel, stride, expand, input, output: Int }

    /// The baseline (lite0) stages: r1_k3_s11_e1_i32_o16, r2_k3_s22_e6_i16_o24, ...
    static let baseline: [Stage] = [
        Stage(repeats: 1, kernel: 3, stride: 1, expand: 1, input: 32, output: 16),
        Stage(repeats: 2, kernel: 3, stride: 2, expand: 6, input: 16, output: 24),
        Stage(repeats: 2, kernel: 5, stride: 2, expand: 6, input: 24, output: 40),
        Stage(repeats: 3, kernel: 3, stride: 2, expand: 6, input: 40, output: 80),
        Stage(repeats: 3, kernel: 5, stride: 1, expand: 6, input: 80, output: 112),
        Stage(repeats: 4, kernel: 5, stride: 2, expand: 6, input: 112, output: 192),
        Stage(repeats: 1, kernel: 3, stride: 1, expand: 6, input: 192, output: 320),
    ]

    /// Channels scaled by the width and rounded to the nearest multiple of 8, never more than
    /// 10% below the scaled value (round_filters of the reference).
    func channels(_ filters: Int) -> Int {
        let scaled = Double(filters) * width
        var rounded = max(8, Int(scaled + 4) / 8 * 8)
        if Double(rounded) < 0.9 * scaled { rounded += 8 }
        return rounded
    }

    /// The stages as this variant builds them. The stem (32 channels) and head (1280) are not
    /// scaled, nor are the first and last stages' block counts.
    var stages: [Stage] {
        Self.baseline.enumerated().map { i, s in
            let fixed = i == 0 || i == Self.baseline.count - 1
            let repeats = fixed ? s.repeats : Int((depth * Double(s.repeats)).rounded(.up))
            return Stage(repeats: repeats, kernel: s.kernel, stride: s.stride, expand: s.expand,
                         input: i == 0 ? 32 : channels(s.input), output: channels(s.output))
        }
    }
}

extension Network {
    /// Batch norms as the reference builds them: TensorFlow's epsilon 1e-3 and decay 0.99, that
    /// is PyTorch momentum 0.01.
    static let efficientNetBatchNorm: [String: AttributeValue] = ["eps": .float(1e-3), "momentum": .float(0.01)]

    /// An EfficientNet-Lite with random weights. Layer names are the reference's module paths
    /// with dots as underscores (`_blocks.3._depthwise_conv` is layer `_blocks_3__depthwise_conv`),
    /// so its state dicts load by parameter name. Each MBConv block is: 1x1 expansion (absent
    /// when the expand ratio is 1), batch norm, ReLU6; depthwise k x k, batch norm, ReLU6; 1x1
    /// projection, batch norm; plus the block's input where the stride is 1 and the channels match.
    ///
    /// The padding is TensorFlow's "SAME" computed for `imageSize` (default: the variant's
    /// resolution), as the reference's static-padding convolutions do; the spec asks for that
    /// size, in RGB scaled to [-1, 1].
    public static func efficientNetLite(_ variant: EfficientNetLiteVariant = EfficientNetLiteVariant.all[0],
                                        classes: Int = 1000, imageSize: Int? = nil, seed: UInt64 = 0) throws -> Network {
        let size = imageSize ?? variant.resolution
        guard size > 0, classes > 0 else {
            throw EngineError.invalidArgument("EfficientNet-Lite needs a positive image size and class count, got \(size) and \(classes)")
        }
        let net = Network(spec: InputSpec(channels: 3, height: size, width: size, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]))
        var g = SeededGenerator(seed: seed)
        func add(_ name: String, _ kind: String, _ a: [String: AttributeValue] = [:], inputs: [String]? = nil) throws {
            try net.append(name, LayerRegistry.make(Attributes(kind, a), generator: &g), inputs: inputs)
        }
        /// A bias-free convolution padded as "SAME" for a `side` x `side` input.
        func conv(_ name: String, _ cin: Int, _ cout: Int, kernel: Int, stride: Int = 1, groups: Int = 1, side: Int) throws {
            let (before, after) = ConvOptions.samePadding(input: side, kernel: kernel, stride: stride)
            try add(name, "conv2d", ["in": .int(cin), "out": .int(cout), "kernel": .int(kernel), "stride": .int(stride),
                                     "padding": .ints([before, before, after, after]), "groups": .int(groups), "bias": .bool(false)])
        }
        func batchNorm(_ name: String, _ channels: Int) throws {
            try add(name, "batchnorm", efficientNetBatchNorm.merging(["channels": .int(channels)]) { a, _ in a })
        }
        func shrink(_ side: Int, _ stride: Int) -> Int { (side + stride - 1) / stride }

        var side = size
        try conv("_conv_stem", 3, 32, kernel: 3, stride: 2, side: side)
        try batchNorm("_bn0", 32)
        try add("_stem_relu6", "relu6")
        side = shrink(side, 2)

        var index = 0
        for stage in variant.stages {
            for r in 0..<stage.repeats {
                let p = "_blocks_\(index)_"
                let input = r == 0 ? stage.input : stage.output
                let stride = r == 0 ? stage.stride : 1
                let blockInput = net.nodes.last?.name ?? Network.inputName
                let hidden = input * stage.expand
                if stage.expand != 1 {
                    try conv(p + "_expand_conv", input, hidden, kernel: 1, side: side)
                    try batchNorm(p + "_bn0", hidden)
                    try add(p + "_expand_relu6", "relu6")
                }
                try conv(p + "_depthwise_conv", hidden, hidden, kernel: stage.kernel, stride: stride, groups: hidden, side: side)
                try batchNorm(p + "_bn1", hidden)
                try add(p + "_depthwise_relu6", "relu6")
                side = shrink(side, stride)
                try conv(p + "_project_conv", hidden, stage.output, kernel: 1, side: side)
                try batchNorm(p + "_bn2", stage.output)
                if stride == 1 && input == stage.output {
                    try add(p + "_skip", "add", inputs: [blockInput, p + "_bn2"])
                }
                index += 1
            }
        }

        let last = variant.stages.last?.output ?? 320
        try conv("_conv_head", last, 1280, kernel: 1, side: side)
        try batchNorm("_bn1", 1280)
        try add("_head_relu6", "relu6")
        try add("_avg_pooling", "global_avgpool")
        try add("_flatten", "flatten")
        try add("_dropout", "dropout", ["p": .float(variant.dropout)])
        try add("_fc", "linear", ["in": .int(1280), "out": .int(classes)])
        return net
    }
}
