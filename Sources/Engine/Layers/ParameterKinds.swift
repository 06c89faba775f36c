import Foundation

// Kinds with parameters: convolution, fully connected, normalizations with a learned scale,
// PReLU's slope. Their layers are classes of their own, which declare the parameters.

extension LayerKind {
    public static let conv2d = LayerKind(
        "conv2d", summary: "2-D convolution (cross-correlation, as PyTorch), with groups and dilation",
        attributes: [
            .required("in", .integer, "input channels"),
            .required("out", .integer, "output channels (filters)"),
            .kernel,
            .optional("stride", .pair, .int(1), "steps between windows: s or [sh, sw]"),
            .padding,
            .optional("dilation", .pair, .int(1), "spacing of the kernel's taps: d or [dh, dw]"),
            .optional("groups", .integer, .int(1), "channel groups convolved apart (in for depthwise)"),
            .optional("bias", .flag, .bool(true), "whether the layer adds a bias per output channel"),
        ],
        layout: .images, geometry: .window) { a, g in try Conv2dLayer(a, &g) }

    public static let linear = LayerKind(
        "linear", summary: "fully connected: y = x Wᵀ + b (inputs of rank > 2 are flattened from dimension 1)",
        attributes: [
            .required("in", .integer, "input features"),
            .required("out", .integer, "output features"),
            .optional("bias", .flag, .bool(true), "whether the layer adds a bias"),
        ],
        layout: .batch(unbatchedRank: 1), geometry: .global) { a, g in try LinearLayer(a, &g) }

    public static let batchnorm = LayerKind(
        "batchnorm", summary: "batch normalization per channel; running statistics when not training",
        attributes: [
            .required("channels", .integer, "channels normalized"),
            .optional("eps", .number, .float(1e-5), "added to the variance"),
            .optional("momentum", .number, .float(0.1), "weight of the new batch in the running statistics"),
        ],
        layout: .images) { a, _ in try BatchNormLayer(attributes: a) }

    public static let prelu = LayerKind(
        "prelu", summary: "x for x > 0, slope · x below, with a learned slope broadcast against the input",
        attributes: [.required("shape", .list, "shape of the slope, e.g. [C, 1, 1]")]) { a, _ in try PReLULayer(attributes: a) }

    public static let layernorm = LayerKind(
        "layernorm", summary: "layer normalization over the trailing axes, with a learned scale and shift",
        attributes: [
            .required("shape", .list, "the normalized trailing axes (the shape of weight and bias)"),
            .optional("eps", .number, .float(1e-5), "added to the variance"),
        ]) { a, _ in try LayerNormLayer(attributes: a) }

    public static let arithmetic = LayerKind(
        "arithmetic", summary: "elementwise add, subtract, multiply, divide, minimum or maximum, of two inputs or of one and a constant buffer",
        attributes: [
            .required("op", .text, "add, subtract, multiply, divide, minimum or maximum"),
            AttributeSpec("shape", .list, .none, "shape of the constant operand; without it the layer takes two inputs"),
            .optional("constant_first", .flag, .bool(false), "whether the constant is the left operand"),
        ],
        arity: nil) { a, _ in try ArithmeticLayer(attributes: a) }
}

/// The largest kernel size, stride, padding or dilation a layer takes: generous for any image
/// network, and small enough that an architecture read from a file cannot ask for a loop
/// without end or an index beyond any tensor.
public let largestLayerExtent = 1 << 16

/// Refuses a parameter of `shape` before it is allocated: sizes within the memory limit.
func checkParameter(_ kind: String, _ name: String, _ shape: [Int]) throws {
    do { _ = try checkedElementCount(shape, what: "\(kind): \(name)") }
    catch let e as SizeLimitError { throw EngineError.invalidArgument(e.description) }
}

/// Refuses extents (kernel sizes, strides, padding, dilation) outside `range`, naming the attribute.
func checkExtents(_ kind: String, _ attribute: String, _ values: [Int], _ range: ClosedRange<Int>) throws {
    if let bad = values.first(where: { !range.contains($0) }) {
        throw EngineError.invalidArgument("\(kind): attribute '\(attribute)' holds \(bad); expected \(range.lowerBound) to \(range.upperBound)")
    }
}

/// PyTorch's default initialisation: U(-1/√fan_in, 1/√fan_in) for weights and biases.
func uniformInit(_ shape: [Int], fanIn: Int, _ g: inout SeededGenerator) -> Tensor {
    let bound = 1 / Float(max(fanIn, 1)).squareRoot()
    return Tensor.uniform(shape, low: -bound, high: bound, generator: &g)
}

/// A conv2d layer: parameters weight [out, in / groups, kh, kw] and bias [out].
public final class Conv2dLayer: Layer {
    public let options: ConvOptions
    init(_ a: Attributes, _ g: inout SeededGenerator) throws {
        let cin = try a.int("in"), cout = try a.int("out"), k = try a.ints("kernel", count: 2)
        let s = try a.ints("stride", count: 2), p = try a.ints("padding", count: 4)
        let d = try a.ints("dilation", count: 2), groups = try a.int("groups")
        guard cin > 0, cout > 0, groups > 0, cin % groups == 0, cout % groups == 0 else {
            throw EngineError.invalidArgument("conv2d: channels \(cin) -> \(cout) must be positive and divisible by groups \(groups)")
        }
        guard k.allSatisfy({ $0 > 0 }) else { throw EngineError.invalidArgument("conv2d: kernel size must be positive") }
        try checkExtents("conv2d", "kernel", k, 1...largestLayerExtent)
        try checkExtents("conv2d", "stride", s, 1...largestLayerExtent)
        try checkExtents("conv2d", "dilation", d, 1...largestLayerExtent)
        try checkExtents("conv2d", "padding", p, 0...largestLayerExtent)
        try checkParameter("conv2d", "weight", [cout, cin / groups, k[0], k[1]])
        options = ConvOptions(stride: (s[0], s[1]), padding: (p[0], p[1], p[2], p[3]), dilation: (d[0], d[1]), groups: groups)
        super.init(a)
        let fanIn = cin / groups * k[0] * k[1]
        declare("weight", uniformInit([cout, cin / groups, k[0], k[1]], fanIn: fanIn, &g))
        if try a.bool("bias") { declare("bias", uniformInit([cout], fanIn: fanIn, &g)) }
    }

    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        try conv2d(try single(inputs), variable("weight", name, context)!, variable("bias", name, context), options)
    }

    /// The output passed through `activation` as it is written (nil when a gradient is recorded).
    func forward(_ inputs: [Variable], name: String, context: ForwardContext, then activation: ConvActivation) throws -> Variable? {
        try conv2d(try single(inputs), variable("weight", name, context)!, variable("bias", name, context), options, then: activation)
    }

    public override func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        guard let s = inputs.first, let w = parameters["weight"] else { throw EngineError.invalidArgument("conv2d takes one input") }
        return try ConvProblem(input: s, weight: w.shape, bias: nil, options: options).outputShape
    }

    public override func multiplyAdds(_ inputs: [[Int]], output: [Int]) -> Int {
        guard let s = inputs.first, let w = parameters["weight"],
              let problem = try? ConvProblem(input: s, weight: w.shape, bias: nil, options: options) else { return 0 }
        return Int(problem.flops / 2)
    }
}

/// A linear layer: parameters weight [out, in] and bias [out].
public final class LinearLayer: Layer {
    init(_ a: Attributes, _ g: inout SeededGenerator) throws {
        let i = try a.int("in"), o = try a.int("out")
        guard i > 0, o > 0 else { throw EngineError.invalidArgument("linear: sizes must be positive, got \(i) -> \(o)") }
        try checkParameter("linear", "weight", [o, i])
        super.init(a)
        declare("weight", uniformInit([o, i], fanIn: i, &g))
        if try a.bool("bias") { declare("bias", uniformInit([o], fanIn: i, &g)) }
    }

    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        var x = try single(inputs)
        if x.shape.count > 2 { x = try flatten(x) }
        if x.shape.count == 1 { x = try reshape(x, [1, x.shape[0]]) }
        return try Engine.linear(x, variable("weight", name, context)!, variable("bias", name, context))
    }

    public override func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        guard let w = parameters["weight"], let s = inputs.first else { throw EngineError.invalidArgument("linear takes one input") }
        let n = s.count <= 1 ? 1 : s[0]
        let features = s.count <= 1 ? s.reduce(1, *) : s[1...].reduce(1, *)
        guard features == w.shape[1] else {
            throw EngineError.shapeMismatch("linear expects \(w.shape[1]) input features, got \(features) (shape \(s))")
        }
        return [n, w.shape[0]]
    }

    public override func multiplyAdds(_ inputs: [[Int]], output: [Int]) -> Int { (parameters["weight"]?.count ?? 0) * (output.first ?? 1) }
}

/// A batchnorm layer: parameters weight, bias and buffers running_mean, running_var.
public final class BatchNormLayer: Layer {
    init(attributes a: Attributes) throws {
        let c = try a.int("channels")
        guard c > 0 else { throw EngineError.invalidArgument("batchnorm: channels must be positive") }
        try checkParameter("batchnorm", "channels", [4, c])
        super.init(a)
        declare("weight", Tensor(ones: [c]))
        declare("bias", Tensor(zeros: [c]))
        declare("running_mean", Tensor(zeros: [c]), trainable: false)
        declare("running_var", Tensor(ones: [c]), trainable: false)
    }

    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        let r = try batchNorm(try single(inputs), weight: variable("weight", name, context), bias: variable("bias", name, context),
                              runningMean: parameters["running_mean"]!, runningVar: parameters["running_var"]!,
                              eps: try attributes.float("eps"), training: context.training,
                              momentum: try attributes.float("momentum"))
        if context.training {
            context.updatedBuffers[name + ".running_mean"] = r.runningMean
            context.updatedBuffers[name + ".running_var"] = r.runningVar
        }
        return r.output
    }
}

/// A prelu layer: parameter slope, broadcast against the input.
public final class PReLULayer: Layer {
    init(attributes a: Attributes) throws {
        let shape = try a.intList("shape")
        guard shape.allSatisfy({ $0 >= 1 }), shape.reduce(1, *) <= 1 << 20 else {
            throw EngineError.invalidArgument("prelu: slope shape \(shape) must have positive sizes and at most 2^20 values")
        }
        super.init(a)
        declare("slope", Tensor(repeating: 0.25, shape: shape))
    }

    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        try Engine.prelu(try single(inputs), variable("slope", name, context)!)
    }
}

/// A layernorm layer: parameters weight and bias of the normalized trailing axes' shape.
public final class LayerNormLayer: Layer {
    init(attributes a: Attributes) throws {
        let shape = try a.intList("shape")
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 1 }), shape.reduce(1, *) <= 1 << 24 else {
            throw EngineError.invalidArgument("layernorm: shape \(shape) must have positive sizes")
        }
        super.init(a)
        declare("weight", Tensor(ones: shape))
        declare("bias", Tensor(zeros: shape))
    }

    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        let x = try single(inputs)
        let shape = try attributes.intList("shape")
        guard x.shape.count >= shape.count, Array(x.shape.suffix(shape.count)) == shape else {
            throw EngineError.shapeMismatch("layernorm normalizes trailing axes \(shape), got an input of shape \(x.shape)")
        }
        return try layerNorm(x, weight: variable("weight", name, context), bias: variable("bias", name, context),
                             axis: x.shape.count - shape.count, eps: try attributes.float("eps"))
    }

    public override func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        guard let s = inputs.first else { throw EngineError.invalidArgument("layernorm takes one input") }
        return s
    }
}
