/// One kind of layer, declared once: its name, what it does, the attributes it reads (with
/// their defaults and the short names users write), how many inputs it takes, the layout of
/// its input, its window geometry and how a layer of the kind is made.
///
/// Everything that knows about kinds reads these declarations: `LayerRegistry.make` (saved
/// architectures, imported graphs, the language's layer builtins), the suggestion for a
/// misspelt kind or attribute, `layer.stride` in the language, completion after a dot,
/// receptive fields in summaries and the order attributes are shown in. Adding a kind is one
/// declaration in `LayerKind.all` (Sources/Engine/Layers/*Kinds.swift).
///
/// A kind's forward pass is its layer's `forward` (for parameter-free kinds, the `function`
/// the declaration gives); its backward pass is that of the ops the forward pass calls, each
/// of which records its own on the tape (and is checked against finite differences).
public struct LayerKind: Sendable {
    public let name: String
    /// One line for references and help.
    public let summary: String
    /// The attributes the kind reads, in the order they are shown.
    public let attributes: [AttributeSpec]
    /// How many inputs a layer takes; nil for one or more (joins such as add and concat).
    public let arity: Int?
    public let layout: InputLayout
    public let geometry: WindowGeometry
    let make: @Sendable (Attributes, inout SeededGenerator) throws -> Layer

    public init(_ name: String, summary: String, attributes: [AttributeSpec] = [], arity: Int? = 1,
                layout: InputLayout = .any, geometry: WindowGeometry = .pointwise,
                make: @escaping @Sendable (Attributes, inout SeededGenerator) throws -> Layer) {
        self.name = name
        self.summary = summary
        self.attributes = attributes
        self.arity = arity
        self.layout = layout
        self.geometry = geometry
        self.make = make
    }

    /// What a parameter-free layer computes from its inputs and attributes.
    public typealias Function = @Sendable (_ inputs: [Variable], _ attributes: Attributes, _ context: ForwardContext) throws -> Variable

    /// A kind without parameters whose forward pass is `function`; `keepsShape` says the
    /// output has the input's shape (so summaries need not run it).
    public static func function(_ name: String, summary: String, attributes: [AttributeSpec] = [], arity: Int? = 1,
                                layout: InputLayout = .any, geometry: WindowGeometry = .pointwise, keepsShape: Bool = false,
                                _ function: @escaping Function) -> LayerKind {
        LayerKind(name, summary: summary, attributes: attributes, arity: arity, layout: layout, geometry: geometry) { a, _ in
            FunctionLayer(a, arity: arity, keepsShape: keepsShape, function: function)
        }
    }

    /// A one-input function kind: `function` gets the input itself.
    public static func unary(_ name: String, summary: String, attributes: [AttributeSpec] = [], layout: InputLayout = .any,
                             geometry: WindowGeometry = .pointwise, keepsShape: Bool = false,
                             _ function: @escaping @Sendable (Variable, Attributes, ForwardContext) throws -> Variable) -> LayerKind {
        // FunctionLayer checks that there is exactly one input before it calls this.
        self.function(name, summary: summary, attributes: attributes, layout: layout, geometry: geometry, keepsShape: keepsShape) { inputs, a, context in
            try function(inputs[0], a, context)
        }
    }

    /// The attribute called `name` or by one of its short names (`k` for kernel, `pad` for padding).
    public func attribute(_ name: String) -> AttributeSpec? {
        attributes.first { $0.name == name } ?? attributes.first { $0.aliases.contains(name) }
    }

    /// Every kind, in the order references and suggestions list them.
    public static let all: [LayerKind] = [
        conv2d, linear, batchnorm, relu, leakyRelu, sigmoid, silu, tanh, clip, relu6, softmax, logSoftmax, lrn,
        maxpool, avgpool, globalAvgpool, adaptiveAvgpool, dropout, flatten, reshape, identity, pad, add, mul, concat,
        arithmetic, hardSigmoid, hardSwish, erf, gelu, exp, sqrt, neg, pow, prelu, layernorm,
        transpose, slice, reduce, upsample, gather,
    ]

    /// Every kind by name.
    public static let named: [String: LayerKind] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    public static var names: [String] { all.map(\.name) }
}

/// One attribute of a layer kind.
public struct AttributeSpec: Sendable {
    /// The values an attribute takes.
    public enum Form: Sendable {
        case integer, number, flag, text
        /// [h, w], or one number for both.
        case pair
        /// [top, left, bottom, right], [h, w] for both sides, or one number for all four.
        case quad
        /// A list of whole numbers of any length.
        case list
    }

    /// What a layer that was not given the attribute uses.
    public enum Default: Sendable {
        /// The attribute must be given.
        case required
        case value(AttributeValue)
        /// The value of another attribute (a pool's stride is its kernel).
        case sameAs(String)
        /// Nothing: the layer does without (an unbounded clip, a reshape's batch kept or not).
        case none
    }

    public let name: String
    public let form: Form
    public let defaultValue: Default
    /// Other names users write for it (`k`, `pad`), read as the attribute.
    public let aliases: [String]
    public let summary: String

    public init(_ name: String, _ form: Form, _ defaultValue: Default, aliases: [String] = [], _ summary: String) {
        self.name = name
        self.form = form
        self.defaultValue = defaultValue
        self.aliases = aliases
        self.summary = summary
    }

    public static func required(_ name: String, _ form: Form, aliases: [String] = [], _ summary: String) -> AttributeSpec {
        AttributeSpec(name, form, .required, aliases: aliases, summary)
    }

    public static func optional(_ name: String, _ form: Form, _ value: AttributeValue, aliases: [String] = [], _ summary: String) -> AttributeSpec {
        AttributeSpec(name, form, .value(value), aliases: aliases, summary)
    }

    // The attributes several kinds share, declared once.
    static let kernel = AttributeSpec.required("kernel", .pair, aliases: ["k"], "window size: k or [kh, kw]")
    static let padding = AttributeSpec.optional("padding", .quad, .int(0), aliases: ["pad"], "zeros added around the input: p, [ph, pw] or [top, left, bottom, right]")
    static let axis = AttributeSpec.optional("axis", .integer, .int(1), "the axis it works along")
}

/// The layout of a layer's input, so that a layer applied on its own to one example can add
/// the batch dimension the engine works in (and take it off the result).
public enum InputLayout: Sendable, Equatable {
    /// Any shape, used as it is.
    case any
    /// [N, C, H, W]: an image [C, H, W] or a plane [H, W] is made a batch of one.
    case images
    /// [N, ...]: an input of rank `unbatchedRank` is one example, made a batch of one.
    case batch(unbatchedRank: Int)

    /// The shape an input of `shape` is given as a batch, or nil when it is used as it is.
    public func batched(_ shape: [Int]) -> [Int]? {
        switch self {
        case .any: return nil
        case .images:
            if shape.count == 3 { return [1] + shape }
            if shape.count == 2 { return [1, 1] + shape }
            return nil
        case .batch(let rank): return shape.count == rank ? [1] + shape : nil
        }
    }
}

/// How a layer's output units see its input's grid, for receptive fields.
public enum WindowGeometry: Sendable, Equatable {
    /// Each output unit sees what the unit at its place saw (elementwise layers, normalizations,
    /// dropout, reshapes); a spatial output keeps its grid.
    case pointwise
    /// A sliding window: the attributes kernel, stride, padding and (when declared) dilation.
    case window
    /// Adaptive average pooling to the attribute size: windows as wide as the grid divides.
    case adaptive
    /// The grid padded by the attribute padding: units move, fields do not grow.
    case padding
    /// Every output unit sees the whole input (fully connected layers, global pooling).
    case global
}

/// The window of a sliding-window layer, from its attributes.
public struct LayerWindow: Sendable, Equatable {
    public var kernel: (h: Int, w: Int)
    public var stride: (h: Int, w: Int)
    public var dilation: (h: Int, w: Int)
    public var padding: (top: Int, left: Int, bottom: Int, right: Int)

    public static func == (a: LayerWindow, b: LayerWindow) -> Bool {
        a.kernel == b.kernel && a.stride == b.stride && a.dilation == b.dilation && a.padding == b.padding
    }
}

/// The layer kinds, each made from its attributes: how saved architectures, imported graphs
/// and the language's layer builtins become layers.
public enum LayerRegistry {
    /// Every kind a layer can be made from.
    public static var kinds: [String] { LayerKind.names }

    public static func make(_ kind: String, _ values: [String: AttributeValue] = [:], seed: UInt64 = 0) throws -> Layer {
        var g = SeededGenerator(seed: seed)
        return try make(Attributes(kind, values), generator: &g)
    }

    public static func make(_ attributes: Attributes, generator: inout SeededGenerator) throws -> Layer {
        guard let kind = LayerKind.named[attributes.kind] else { throw EngineError.unknownName(attributes.kind, candidates: kinds) }
        return try kind.make(attributes, &generator)
    }
}

extension Layer {
    /// The declaration of this layer's kind.
    public var declaration: LayerKind? { LayerKind.named[kind] }

    /// The names of the attributes a layer has, in the order they are shown: its kind's (those
    /// given or with a default), then any others it was made with.
    public var attributeNames: [String] {
        var names: [String] = []
        for spec in declaration?.attributes ?? [] where attribute(spec.name) != nil { names.append(spec.name) }
        for key in attributes.values.keys.sorted() where !names.contains(key) { names.append(key) }
        return names
    }

    /// The attribute called `name` (or one of its short names), as given or by its default; a
    /// pair or quad whose numbers agree reads as one number (`stride 2`).
    public func attribute(_ name: String) -> AttributeValue? {
        guard let spec = declaration?.attribute(name) else { return attributes.values[name] }
        guard let value = attributes.values[spec.name] ?? attributes.declaredDefault(spec.name) else { return nil }
        func collapsed(_ count: Int) -> AttributeValue {
            guard let v = try? attributes.ints(spec.name, count: count) else { return value }
            return v.allSatisfy({ $0 == v[0] }) ? .int(v[0]) : .ints(v)
        }
        switch spec.form {
        case .pair: return collapsed(2)
        case .quad: return collapsed(4)
        default: return value
        }
    }

    /// The window of a sliding-window kind (conv2d, maxpool, avgpool), from its attributes.
    public var window: LayerWindow? {
        guard declaration?.geometry == .window else { return nil }
        guard let k = try? attributes.ints("kernel", count: 2), let s = try? attributes.ints("stride", count: 2),
              let p = try? attributes.ints("padding", count: 4) else { return nil }
        let d = (try? attributes.ints("dilation", count: 2)) ?? [1, 1]
        return LayerWindow(kernel: (k[0], k[1]), stride: (s[0], s[1]), dilation: (d[0], d[1]), padding: (p[0], p[1], p[2], p[3]))
    }
}

/// A layer without parameters whose forward pass its kind declares.
final class FunctionLayer: Layer {
    private let inputCount: Int?
    private let keepsShape: Bool
    private let function: LayerKind.Function

    init(_ attributes: Attributes, arity: Int?, keepsShape: Bool, function: @escaping LayerKind.Function) {
        inputCount = arity
        self.keepsShape = keepsShape
        self.function = function
        super.init(attributes)
    }

    override var arity: Int? { inputCount }

    override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        if inputCount == 1 { _ = try single(inputs) }
        guard !inputs.isEmpty else { throw EngineError.invalidArgument("\(kind) needs at least one input") }
        return try function(inputs, attributes, context)
    }

    override func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        guard keepsShape else { return try super.outputShape(inputs) }
        guard let s = inputs.first else { throw EngineError.invalidArgument("\(kind) takes one input") }
        return s
    }
}
