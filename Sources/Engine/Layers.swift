import Foundation

/// The layer kinds, each created from its attributes; `LayerRegistry.make` is how saved
/// architectures and imported graphs become layers.
public enum LayerRegistry {
    /// Every kind a layer can be made from.
    public static let kinds: [String] = [
        "conv2d", "linear", "batchnorm", "relu", "leaky_relu", "sigmoid", "tanh", "clip", "relu6",
        "softmax", "log_softmax", "lrn", "maxpool", "avgpool", "global_avgpool", "adaptive_avgpool",
        "dropout", "flatten", "reshape", "identity", "pad", "add", "mul", "concat", "arithmetic",
        "hardsigmoid", "hardswish", "erf", "gelu", "exp", "sqrt", "neg", "pow", "prelu", "layernorm",
        "transpose", "slice", "reduce", "upsample", "gather",
    ]

    static func construct(_ a: Attributes, _ g: inout SeededGenerator) throws -> Layer {
        switch a.kind {
        case "conv2d": return try Conv2dLayer(a, &g)
        case "linear": return try LinearLayer(a, &g)
        case "batchnorm": return try BatchNormLayer(attributes: a)
        case "relu", "leaky_relu", "sigmoid", "tanh", "clip", "relu6", "softmax", "log_softmax", "lrn",
             "hardsigmoid", "hardswish", "erf", "gelu", "exp", "sqrt", "neg", "pow": return Activation(a)
        case "prelu": return try PReLULayer(attributes: a)
        case "layernorm": return try LayerNormLayer(attributes: a)
        case "transpose", "slice", "reduce", "upsample", "gather": return ShapeLayer(a)
        case "maxpool", "avgpool": return try PoolLayer(attributes: a)
        case "global_avgpool", "adaptive_avgpool": return AdaptivePoolLayer(a)
        case "dropout": return DropoutLayer(a)
        case "flatten", "reshape", "identity", "pad": return ShapeLayer(a)
        case "add", "mul", "concat": return JoinLayer(a)
        case "arithmetic": return try ArithmeticLayer(attributes: a)
        default: throw EngineError.unknownName(a.kind, candidates: kinds)
        }
    }

    public static func make(_ kind: String, _ values: [String: AttributeValue] = [:], seed: UInt64 = 0) throws -> Layer {
        var g = SeededGenerator(seed: seed)
        return try make(Attributes(kind, values), generator: &g)
    }

    public static func make(_ attributes: Attributes, generator: inout SeededGenerator) throws -> Layer {
        try construct(attributes, &generator)
    }
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

/// conv2d: attributes in, out, kernel ([kh, kw] or k), stride, padding (k, [ph, pw] or [top, left, bottom, right]), dilation, groups, bias.
public final class Conv2dLayer: Layer {
    public let options: ConvOptions
    init(_ a: Attributes, _ g: inout SeededGenerator) throws {
        let cin = try a.int("in"), cout = try a.int("out"), k = try a.ints("kernel", count: 2)
        let s = try a.ints("stride", count: 2, 1), p = try a.ints("padding", count: 4, 0)
        let d = try a.ints("dilation", count: 2, 1), groups = try a.int("groups", 1)
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
        if try a.bool("bias", true) { declare("bias", uniformInit([cout], fanIn: fanIn, &g)) }
    }

    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        try conv2d(try single(inputs), variable("weight", name, context)!, variable("bias", name, context), options)
    }

    public override func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        guard let s = inputs.first, let w = parameters["weight"] else { throw EngineError.invalidArgument("conv2d takes one input") }
        return try ConvProblem(input: s, weight: w.shape, bias: nil, options: options).outputShape
    }

    public override func multiplyAdds(_ inputs: [[Int]], output: [Int]) -> Int {
        guard let w = parameters["weight"] else { return 0 }
        return output.reduce(1, *) * w.shape[1...].reduce(1, *)
    }
}

/// linear: attributes in, out, bias. Inputs of rank > 2 are flattened from dimension 1.
public final class LinearLayer: Layer {
    init(_ a: Attributes, _ g: inout SeededGenerator) throws {
        let i = try a.int("in"), o = try a.int("out")
        guard i > 0, o > 0 else { throw EngineError.invalidArgument("linear: sizes must be positive, got \(i) -> \(o)") }
        try checkParameter("linear", "weight", [o, i])
        super.init(a)
        declare("weight", uniformInit([o, i], fanIn: i, &g))
        if try a.bool("bias", true) { declare("bias", uniformInit([o], fanIn: i, &g)) }
    }

    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        var x = try single(inputs)
        if x.shape.count > 2 { x = try flatten(x) }
        if x.shape.count == 1 { x = try reshape(x, [1, x.shape[0]]) }
        return try linear(x, variable("weight", name, context)!, variable("bias", name, context))
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

/// batchnorm: attributes channels, eps, momentum; parameters weight, bias and buffers running_mean, running_var.
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
                              eps: try attributes.float("eps", 1e-5), training: context.training,
                              momentum: try attributes.float("momentum", 0.1))
        if context.training {
            context.updatedBuffers[name + ".running_mean"] = r.runningMean
            context.updatedBuffers[name + ".running_var"] = r.runningVar
        }
        return r.output
    }
}

/// Parameter-free elementwise and normalizing layers.
public final class Activation: Layer {
    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        let x = try single(inputs)
        let a = attributes
        switch kind {
        case "relu": return relu(x, rule: context.reluRule)
        case "leaky_relu": return leakyRelu(x, slope: try a.float("slope", 0.01))
        case "sigmoid": return sigmoid(x)
        case "tanh": return tanh(x)
        case "relu6": return relu6(x, rule: context.reluRule)
        case "clip": return clip(x, min: try a.float("min", -.infinity), max: try a.float("max", .infinity))
        case "softmax": return try softmax(x, axis: try a.int("axis", 1))
        case "log_softmax": return try logSoftmax(x, axis: try a.int("axis", 1))
        case "lrn":
            return try localResponseNorm(x, size: try a.int("size", 5), alpha: try a.float("alpha", 1e-4),
                                         beta: try a.float("beta", 0.75), k: try a.float("k", 1))
        case "hardsigmoid": return hardSigmoid(x, alpha: try a.float("alpha", 0.2), beta: try a.float("beta", 0.5))
        case "hardswish": return hardSwish(x)
        case "erf": return erf(x)
        case "gelu": return gelu(x)
        case "exp": return elementwise(.exp, x)
        case "sqrt": return elementwise(.sqrt, x)
        case "neg": return negate(x)
        case "pow":
            let p = try a.float("exponent")
            return p == 2 ? elementwise(.square, x) : power(x, p)
        default: throw EngineError.unknownName(kind, candidates: ["relu", "leaky_relu", "sigmoid", "tanh", "relu6", "clip", "softmax", "log_softmax", "lrn",
                                                                  "hardsigmoid", "hardswish", "erf", "gelu", "exp", "sqrt", "neg", "pow"])
        }
    }

    public override func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        guard let s = inputs.first else { throw EngineError.invalidArgument("\(kind) takes one input") }
        return s
    }
}

/// maxpool / avgpool: attributes kernel, stride (defaults to kernel), padding, ceil_mode, count_include_pad.
public final class PoolLayer: Layer {
    public let options: PoolOptions
    init(attributes a: Attributes) throws {
        let k = try a.ints("kernel", count: 2)
        let s = a.values["stride"] == nil ? k : try a.ints("stride", count: 2)
        let p = try a.ints("padding", count: 4, 0)
        try checkExtents(a.kind, "kernel", k, 1...largestLayerExtent)
        try checkExtents(a.kind, "stride", s, 1...largestLayerExtent)
        try checkExtents(a.kind, "padding", p, 0...largestLayerExtent)
        options = PoolOptions(kernel: (k[0], k[1]), stride: (s[0], s[1]), padding: (p[0], p[1], p[2], p[3]),
                              ceilMode: try a.bool("ceil_mode", false), countIncludePad: try a.bool("count_include_pad", true))
        super.init(a)
    }

    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        let x = try single(inputs)
        if kind == "avgpool" { return try avgPool2d(x, options) }
        let (y, switches) = try maxPool2dWithSwitches(x, options)
        context.switches[name] = switches
        return y
    }

    public override func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        guard let s = inputs.first else { throw EngineError.invalidArgument("\(kind) takes one input") }
        let r = try options.validate(s)
        return [r.n, r.c, r.oh, r.ow]
    }

    public override func multiplyAdds(_ inputs: [[Int]], output: [Int]) -> Int { 0 }
}

/// global_avgpool, or adaptive_avgpool with attribute size [oh, ow].
public final class AdaptivePoolLayer: Layer {
    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        let x = try single(inputs)
        if kind == "global_avgpool" { return try globalAvgPool2d(x) }
        let s = try attributes.ints("size", count: 2)
        return try adaptiveAvgPool2d(x, outputSize: (s[0], s[1]))
    }
}

/// dropout: attribute p; the identity unless the context is training.
public final class DropoutLayer: Layer {
    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        try dropout(try single(inputs), probability: try attributes.float("p", 0.5), training: context.training, generator: &context.generator)
    }
}

/// flatten (start_dim), reshape (shape, with -1; the batch dimension is kept when keep_batch is true), identity, pad ([top, left, bottom, right], value),
/// transpose (perm), slice (axes, starts, ends, steps; Python's rules), reduce (op sum/max/mean, axes, keepdims), upsample (scale [h, w], nearest),
/// gather (axis, indices, indices_shape: NumPy's take).
public final class ShapeLayer: Layer {
    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        let x = try single(inputs)
        switch kind {
        case "flatten": return try flatten(x, startDim: try attributes.int("start_dim", 1))
        case "reshape":
            var shape = try attributes.intList("shape")
            if try attributes.bool("keep_batch", false) { shape = [x.shape.first ?? 1] + shape }
            return try reshape(x, shape)
        case "pad":
            let p = try attributes.ints("padding", count: 4)
            return try pad2d(x, (p[0], p[1], p[2], p[3]), value: try attributes.float("value", 0))
        case "transpose": return try permute(x, try attributes.intList("perm"))
        case "slice":
            let axes = try attributes.intList("axes"), starts = try attributes.intList("starts"), ends = try attributes.intList("ends")
            let steps = attributes.values["steps"] == nil ? [Int](repeating: 1, count: axes.count) : try attributes.intList("steps")
            guard starts.count == axes.count, ends.count == axes.count, steps.count == axes.count else {
                throw EngineError.invalidArgument("slice: axes, starts, ends and steps must be as many")
            }
            var indices = [SliceIndex](repeating: .all, count: x.shape.count)
            for (i, axis) in axes.enumerated() {
                let d = axis < 0 ? axis + x.shape.count : axis
                guard d >= 0, d < x.shape.count else { throw EngineError.invalidArgument("slice: axis \(axis) is out of range for shape \(x.shape)") }
                indices[d] = .range(start: starts[i], end: ends[i], step: steps[i])
            }
            return try slice(x, indices)
        case "reduce":
            return try reduce(x, try attributes.string("op", "sum"), axes: try attributes.intList("axes"), keepDims: try attributes.bool("keepdims", true))
        case "upsample":
            let s = try attributes.ints("scale", count: 2)
            return try upsampleNearest(x, scale: (s[0], s[1]))
        case "gather":
            let indices = try attributes.intList("indices")
            let shape = attributes.values["indices_shape"] == nil ? [indices.count] : try attributes.intList("indices_shape")
            return try take(x, axis: try attributes.int("axis", 0), indices: indices, indicesShape: shape)
        default: return x
        }
    }
}

/// prelu: attribute shape (of the slope, e.g. [C, 1, 1]); parameter slope, broadcast against the input.
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
        try prelu(try single(inputs), variable("slope", name, context)!)
    }
}

/// layernorm: attributes shape (of the normalized trailing axes, which weight and bias take), eps.
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
                             axis: x.shape.count - shape.count, eps: try attributes.float("eps", 1e-5))
    }

    public override func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        guard let s = inputs.first else { throw EngineError.invalidArgument("layernorm takes one input") }
        return s
    }
}

/// Layers that join branches: add and mul (with broadcasting), concat (attribute axis).
public final class JoinLayer: Layer {
    public override var arity: Int? { nil }
    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        guard let first = inputs.first else { throw EngineError.invalidArgument("\(kind) needs at least one input") }
        switch kind {
        case "concat": return try concat(inputs, axis: try attributes.int("axis", 1))
        case "mul": return try inputs.dropFirst().reduce(first) { try multiply($0, $1) }
        default: return try inputs.dropFirst().reduce(first) { try add($0, $1) }
        }
    }
}
