// Parameter-free elementwise and normalizing kinds: activations, LRN, softmax, the
// elementwise functions imported graphs compute with. Each keeps its input's shape.

extension LayerKind {
    public static let relu = unary("relu", summary: "max(x, 0); guided backpropagation and deconvnets change its backward rule", keepsShape: true) { x, _, c in
        Engine.relu(x, rule: c.reluRule)
    }
    public static let leakyRelu = unary("leaky_relu", summary: "x for x > 0, slope · x below",
                                        attributes: [.optional("slope", .number, .float(0.01), "the slope below zero")], keepsShape: true) { x, a, _ in
        Engine.leakyRelu(x, slope: try a.float("slope"))
    }
    public static let sigmoid = unary("sigmoid", summary: "1 / (1 + e^-x)", keepsShape: true) { x, _, _ in Engine.sigmoid(x) }
    public static let silu = unary("silu", summary: "x · sigmoid(x) (SiLU, swish: EfficientNet's)", keepsShape: true) { x, _, _ in Engine.silu(x) }
    public static let tanh = unary("tanh", summary: "the hyperbolic tangent", keepsShape: true) { x, _, _ in Engine.tanh(x) }
    public static let clip = unary("clip", summary: "x limited to [min, max]",
                                   attributes: [AttributeSpec("min", .number, .none, "the lower bound (none: unbounded)"),
                                                AttributeSpec("max", .number, .none, "the upper bound (none: unbounded)")],
                                   keepsShape: true) { x, a, _ in
        Engine.clip(x, min: try a.float("min", -.infinity), max: try a.float("max", .infinity))
    }
    public static let relu6 = unary("relu6", summary: "min(max(x, 0), 6), with ReLU's backward rules", keepsShape: true) { x, _, c in
        Engine.relu6(x, rule: c.reluRule)
    }
    public static let softmax = unary("softmax", summary: "exponentials normalized to sum to 1 along an axis",
                                      attributes: [.axis], keepsShape: true) { x, a, _ in
        try Engine.softmax(x, axis: try a.int("axis"))
    }
    public static let logSoftmax = unary("log_softmax", summary: "the logarithm of softmax, computed stably",
                                         attributes: [.axis], keepsShape: true) { x, a, _ in
        try Engine.logSoftmax(x, axis: try a.int("axis"))
    }
    public static let lrn = unary("lrn", summary: "local response normalization across channels (AlexNet's)",
                                  attributes: [.optional("size", .integer, .int(5), "channels in each window"),
                                               .optional("alpha", .number, .float(1e-4), "scale of the sum of squares"),
                                               .optional("beta", .number, .float(0.75), "exponent"),
                                               .optional("k", .number, .float(1), "added before the exponent")],
                                  layout: .images, keepsShape: true) { x, a, _ in
        try localResponseNorm(x, size: try a.int("size"), alpha: try a.float("alpha"), beta: try a.float("beta"), k: try a.float("k"))
    }
    public static let hardSigmoid = unary("hardsigmoid", summary: "max(0, min(1, alpha · x + beta))",
                                          attributes: [.optional("alpha", .number, .float(0.2), "slope"),
                                                       .optional("beta", .number, .float(0.5), "offset")], keepsShape: true) { x, a, _ in
        Engine.hardSigmoid(x, alpha: try a.float("alpha"), beta: try a.float("beta"))
    }
    public static let hardSwish = unary("hardswish", summary: "x · hardsigmoid(x) with alpha 1/6 (MobileNetV3's)", keepsShape: true) { x, _, _ in
        Engine.hardSwish(x)
    }
    public static let erf = unary("erf", summary: "the error function", keepsShape: true) { x, _, _ in Engine.erf(x) }
    public static let gelu = unary("gelu", summary: "x · Φ(x), with the exact normal CDF", keepsShape: true) { x, _, _ in Engine.gelu(x) }
    public static let exp = unary("exp", summary: "e^x", keepsShape: true) { x, _, _ in elementwise(.exp, x) }
    public static let sqrt = unary("sqrt", summary: "the square root", keepsShape: true) { x, _, _ in elementwise(.sqrt, x) }
    public static let neg = unary("neg", summary: "-x", keepsShape: true) { x, _, _ in negate(x) }
    public static let pow = unary("pow", summary: "x raised to a constant exponent",
                                  attributes: [.required("exponent", .number, "the exponent")], keepsShape: true) { x, a, _ in
        let p = try a.float("exponent")
        return p == 2 ? elementwise(.square, x) : power(x, p)
    }
}
