import Engine

/// Layers, networks built from them, and running networks on tensors.
extension Builtins {
    /// A new layer of `kind`, initialised from the session's random numbers.
    static func makeLayer(_ kind: String, _ attributes: [String: AttributeValue], _ ctx: CallContext) throws -> Value {
        let layer = try ctx.withGenerator { try LayerRegistry.make(Attributes(kind, attributes), generator: &$0) }
        return .layer(LayerValue(layer: layer))
    }

    /// A whole number or a list of them as a layer attribute.
    static func attribute(_ args: Arguments, _ name: String) throws -> AttributeValue {
        if case .number = args[name] { return .int(try args.int(name)) }
        return .ints(try args.ints(name))
    }

    /// `relu()` makes a layer, `relu(x)` applies the function: one builtin for both.
    static func activation(_ name: String, kind: String, summary: String, example: String,
                           _ apply: @escaping (Variable) throws -> Variable) -> Builtin {
        Builtin(name, category: .layers, parameters: [.optional("x", .tensor, .none, default: .none)],
                summary: summary, help: "With no argument, a layer for `network(...)`; with a tensor, the function applied to it.",
                example: example) { args, ctx in
            if args.isNone("x") { return try makeLayer(kind, [:], ctx) }
            return .tensor(try apply(try args.tensor("x")))
        }
    }

    /// Sizes of a layer (channels, kernels, strides, paddings) must lie in a range a layer can have.
    static func checkSizes(_ sizes: [Int]) throws {
        if let bad = sizes.first(where: { $0 < 0 || $0 > 1 << 20 }) {
            throw ScriptError("a layer size of \(bad) is out of range (0 to \(1 << 20))")
        }
    }

    static func pool(_ name: String, summary: String) -> Builtin {
        Builtin(name, category: .layers,
                parameters: [.required("k", .integer, .shape), .optional("stride", .integer, .shape, .none, default: .none), .optional("pad", .integer, .shape, default: .number(0))],
                summary: summary, help: "Windows of k x k (or [kh, kw]) every `stride` pixels (by default k: windows side by side).",
                example: "\(name)(2)") { args, ctx in
            try checkSizes(try args.ints("k") + (args.isNone("stride") ? [] : try args.ints("stride")) + (try args.ints("pad")))
            var a: [String: AttributeValue] = ["kernel": try attribute(args, "k")]
            if !args.isNone("stride") { a["stride"] = try attribute(args, "stride") }
            if case .number(let p) = args["pad"], p == 0 {} else { a["padding"] = try attribute(args, "pad") }
            return try makeLayer(name, a, ctx)
        }
    }

    /// The input of a network-aware builtin: pictures are fitted to the network's input spec.
    static func networkInput(_ args: Arguments, _ name: String, _ network: Network) throws -> Variable {
        if case .image(let t) = args[name], let spec = network.spec {
            return Variable(try NetworkCalls.fitted(t, to: spec))
        }
        return try args.tensor(name)
    }

    static var layers: [Builtin] {
        [
            convBuiltin, linearBuiltin, reluBuiltin, sigmoidBuiltin, tanhBuiltin, softmaxBuiltin,
            leakyReluBuiltin, maxpoolBuiltin, avgpoolBuiltin, globalAvgpoolBuiltin, batchnormBuiltin,
            dropoutBuiltin, networkBuiltin, layersBuiltin, forwardBuiltin, logitsBuiltin
        ]
    }

    static var convBuiltin: Builtin {
        Builtin("conv", category: .layers,
                parameters: [.required("in", .integer), .required("out", .integer), .required("k", .integer, .shape),
                             .optional("stride", .integer, .shape, default: .number(1)), .optional("pad", .integer, .shape, default: .number(0)),
                             .optional("dilation", .integer, .shape, default: .number(1)), .optional("groups", .integer, default: .number(1)),
                             .optional("bias", .bool, default: .bool(true))],
                summary: "A 2-D convolution layer from `in` channels to `out` channels with k x k filters.",
                help: "Weights [out, in / groups, k, k] start random (PyTorch's uniform initialisation, from the session's seed). `pad` is one number, [ph, pw] or [top, left, bottom, right].",
                example: "conv(1, 8, 5, pad=2)") { args, ctx in
            let cin = try args.int("in"), cout = try args.int("out"), k = try args.ints("k", count: 2)
            try checkSizes([cin, cout] + k + (try args.ints("stride")) + (try args.ints("pad")) + (try args.ints("dilation")))
            guard (k + (try args.ints("stride")) + (try args.ints("dilation"))).allSatisfy({ $0 >= 1 }) else {
                throw ScriptError("conv: kernel size, stride and dilation must be at least 1")
            }
            try Conversions.checkShape([cout, cin] + k)
            var a: [String: AttributeValue] = ["in": .int(cin), "out": .int(cout), "kernel": try attribute(args, "k")]
            for (name, key, dflt) in [("stride", "stride", 1.0), ("pad", "padding", 0), ("dilation", "dilation", 1)] {
                if case .number(let d) = args[name], d == dflt { continue }
                a[key] = try attribute(args, name)
            }
            if try args.int("groups") != 1 { a["groups"] = .int(try args.int("groups")) }
            if !(try args.bool("bias")) { a["bias"] = .bool(false) }
            return try makeLayer("conv2d", a, ctx)
        }
    }

    static var linearBuiltin: Builtin {
        Builtin("linear", category: .layers,
                parameters: [.required("in", .integer), .required("out", .integer), .optional("bias", .bool, default: .bool(true))],
                summary: "A fully connected layer: y = x Wᵀ + b, from `in` numbers to `out`.",
                help: "Inputs with more dimensions are flattened first (all but the batch).",
                example: "linear(8 * 14 * 14, 10)") { args, ctx in
            let i = try args.int("in"), o = try args.int("out")
            try checkSizes([i, o])
            try Conversions.checkShape([o, i])
            var a: [String: AttributeValue] = ["in": .int(i), "out": .int(o)]
            if !(try args.bool("bias")) { a["bias"] = .bool(false) }
            return try makeLayer("linear", a, ctx)
        }
    }

    static var reluBuiltin: Builtin {
        activation("relu", kind: "relu", summary: "max(x, 0): a ReLU layer, or the function applied to x.", example: "relu()\nrelu(tensor([-1, 2]))") { Engine.relu($0) }
    }

    static var sigmoidBuiltin: Builtin {
        activation("sigmoid", kind: "sigmoid", summary: "1 / (1 + e^-x): a layer, or the function applied to x.", example: "sigmoid(tensor([0]))") { Engine.sigmoid($0) }
    }

    static var tanhBuiltin: Builtin {
        activation("tanh", kind: "tanh", summary: "The hyperbolic tangent: a layer, or the function applied to x.", example: "tanh(tensor([0, 1]))") { Engine.tanh($0) }
    }

    static var softmaxBuiltin: Builtin {
        Builtin("softmax", category: .layers, parameters: [.optional("x", .tensor, .none, default: .none), .optional("axis", .integer, default: .number(-1))],
                summary: "Exponentials normalised to sum to 1: a layer, or the function applied to x along an axis.",
                help: "As a layer it works along the channel axis of a batch (axis 1); on a tensor along `axis` (default the last).",
                example: "softmax(tensor([1, 2, 3]))") { args, ctx in
            if args.isNone("x") { return try makeLayer("softmax", [:], ctx) }
            return .tensor(try softmax(try args.tensor("x"), axis: try args.int("axis")))
        }
    }

    static var leakyReluBuiltin: Builtin {
        Builtin("leaky_relu", category: .layers, parameters: [.optional("slope", .number, default: .number(0.01)), .optional("x", .tensor, .none, default: .none)],
                summary: "x for x > 0, slope * x below: a layer, or the function applied to x.",
                example: "leaky_relu(0.2)\nleaky_relu(0.1, x=tensor([-1, 1]))") { args, ctx in
            let slope = try args.float("slope")
            if args.isNone("x") { return try makeLayer("leaky_relu", ["slope": .float(slope)], ctx) }
            return .tensor(leakyRelu(try args.tensor("x"), slope: slope))
        }
    }

    static var maxpoolBuiltin: Builtin {
        pool("maxpool", summary: "A max pooling layer: the largest value of each window.")
    }

    static var avgpoolBuiltin: Builtin {
        pool("avgpool", summary: "An average pooling layer: the mean of each window.")
    }

    static var globalAvgpoolBuiltin: Builtin {
        Builtin("global_avgpool", category: .layers, parameters: [],
                summary: "A layer averaging each channel to one number: [N, C, H, W] to [N, C, 1, 1].",
                example: "global_avgpool()") { _, ctx in try makeLayer("global_avgpool", [:], ctx) }
    }

    static var batchnormBuiltin: Builtin {
        Builtin("batchnorm", category: .layers, parameters: [.required("channels", .integer)],
                summary: "A batch normalization layer over `channels` channels.",
                help: "Learned scale and shift, running mean and variance (used when not training).",
                example: "batchnorm(8)") { args, ctx in
            let c = try args.int("channels")
            try checkSizes([c])
            return try makeLayer("batchnorm", ["channels": .int(c)], ctx)
        }
    }

    static var dropoutBuiltin: Builtin {
        Builtin("dropout", category: .layers, parameters: [.optional("p", .number, default: .number(0.5))],
                summary: "A dropout layer: while training, zeroes each value with probability p.",
                help: "Outside training it passes its input through unchanged.",
                example: "dropout(0.25)") { args, ctx in
            let p = try args.number("p")
            guard p >= 0, p < 1 else { throw ScriptError("dropout: p must be in [0, 1), got \(Display.number(p))", argument: "p") }
            return try makeLayer("dropout", ["p": .float(Float(p))], ctx)
        }
    }

    static var networkBuiltin: Builtin {
        Builtin("network", category: .layers, parameters: [.keywords("layers", .layer)],
                summary: "A network of named layers, applied in the order written.",
                help: "Each keyword names a layer: `network(conv1=conv(1, 8, 5), relu1=relu())`. Layers are reached as net.conv1, and a network is called on a tensor: net(x). A layer object put in two networks is shared: both see the same weights.",
                example: "small = network(conv1=conv(1, 8, 5, pad=2), relu1=relu(), pool1=maxpool(2), flat=flatten(), fc=linear(8 * 14 * 14, 10))\nsmall(zeros(1, 28, 28)).shape") { args, _ in
            guard !args.keywords.isEmpty else { throw ScriptError("network: name each layer, as in network(conv1=conv(1, 8, 5), relu1=relu())") }
            let net = Network()
            for (name, value) in args.keywords {
                guard case .layer(let l) = value else { throw ScriptError("network: '\(name)' must be a layer", argument: name) }
                try net.append(name, l.layer)
            }
            return .network(net)
        }
    }

    static var layersBuiltin: Builtin {
        Builtin("layers", category: .layers, parameters: [.required("net", .network)],
                summary: "The names of a network's layers, in order.",
                example: "layers(network(a=relu(), b=flatten()))") { args, _ in
            .list(try args.network("net").layerNames.map { .string($0) })
        }
    }

    static var forwardBuiltin: Builtin {
        Builtin("forward", category: .layers, parameters: [.required("net", .network), .required("x", .tensor), .optional("layer", .string, .none, default: .none)],
                summary: "The output of a network's layer for input x: the forward pass stopped at that layer.",
                help: "Without `layer`, the network's output. The input is normalized as the network expects (loaded models know their normalization) and pictures are fitted to its input size; one image in, one result out (no batch dimension).",
                example: "net = network(c=conv(1, 2, 3), r=relu())\nforward(net, zeros(1, 5, 5), \"c\").shape") { args, ctx in
            let net = try args.network("net")
            let layer = args.isNone("layer") ? nil : try args.string("layer")
            return .tensor(try NetworkCalls.apply(net, to: try networkInput(args, "x", net), upTo: layer, normalize: true, context: ctx.forwardContext()))
        }
    }

    static var logitsBuiltin: Builtin {
        Builtin("logits", category: .layers, parameters: [.required("net", .network), .required("x", .tensor)],
                summary: "The network's scores for x before the softmax, on the tape so gradients flow back to x.",
                help: "One image in, one score per class out. Use it inside grad: grad(x -> logits(net, x)[7], img) is how much each pixel raises the score of class 7.",
                example: "net = network(flat=flatten(), fc=linear(4, 3))\nlogits(net, ones(1, 2, 2)).shape") { args, ctx in
            let net = try args.network("net")
            return .tensor(try NetworkCalls.apply(net, to: try networkInput(args, "x", net), upTo: nil, normalize: true, context: ctx.forwardContext()))
        }
    }
}
