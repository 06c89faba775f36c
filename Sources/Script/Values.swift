import Engine

/// A value of the language.
///
/// Tensors are held as the engine's `Variable`s, so arithmetic written in the language is
/// recorded on the autodiff tape whenever a gradient is asked for (`grad(x -> ..., img)`).
/// Images are tensors in display space ([C, H, W], values in [0, 1]) that remember they are
/// pictures; every operation that takes a tensor takes an image too.
public enum Value {
    case none
    case bool(Bool)
    case number(Double)
    case string(String)
    case list([Value])
    /// An inclusive range of whole numbers: `0..9` holds ten.
    case range(Int, Int)
    case tensor(Variable)
    case image(Tensor)
    case network(Network)
    case layer(LayerValue)
    case function(Closure)
    case builtin(Builtin)
    /// A value with named fields (a training history, a prediction), read with `.name`.
    case record(Record)

    /// The name a user sees in messages and from `type(x)`.
    public var typeName: String {
        switch self {
        case .none: return "none"
        case .bool: return "bool"
        case .number: return "number"
        case .string: return "string"
        case .list: return "list"
        case .range: return "range"
        case .tensor: return "tensor"
        case .image: return "image"
        case .network: return "network"
        case .layer: return "layer"
        case .function, .builtin: return "function"
        case .record(let r): return r.typeName
        }
    }

    /// "a number", "an image": for messages.
    public var describedType: String { Value.article(typeName) }

    static func article(_ noun: String) -> String {
        if noun == "none" { return "none" }
        return (["a", "e", "i", "o", "u"].contains(noun.first.map(String.init) ?? "") ? "an " : "a ") + noun
    }

    /// The tensor inside a tensor or image value.
    public var tensorValue: Tensor? {
        switch self {
        case .tensor(let v): return v.value
        case .image(let t): return t
        case .record(let r): return r["image"]?.tensorValue  // a result that carries a picture
        default: return nil
        }
    }
}

/// A layer on its own (`conv(1, 8, 5)`), or one layer of a network (`net.conv1`), which
/// reads and writes the network's parameters.
public struct LayerValue {
    public let layer: Layer
    /// The layer's name in its network, if it belongs to one.
    public let name: String?
    public let network: Network?

    public init(layer: Layer, name: String? = nil, network: Network? = nil) {
        self.layer = layer
        self.name = name
        self.network = network
    }
}

/// A user function with the environment it was defined in.
public final class Closure {
    public let declaration: FunctionDeclaration
    let environment: Environment

    init(_ declaration: FunctionDeclaration, _ environment: Environment) {
        self.declaration = declaration
        self.environment = environment
    }

    public var name: String { declaration.name ?? "lambda" }
}

/// A value with named fields in a fixed order.
public struct Record {
    public let typeName: String
    public let fields: [(name: String, value: Value)]

    public init(typeName: String, fields: [(name: String, value: Value)]) {
        self.typeName = typeName
        self.fields = fields
    }

    public subscript(name: String) -> Value? { fields.first { $0.name == name }?.value }
}

/// Variables by name; a function call gets its own, whose parent is the function's definition's.
final class Environment {
    private(set) var values: [String: Value] = [:]
    let parent: Environment?

    init(parent: Environment? = nil) { self.parent = parent }

    func lookup(_ name: String) -> Value? {
        var e: Environment? = self
        while let env = e {
            if let v = env.values[name] { return v }
            e = env.parent
        }
        return nil
    }

    func define(_ name: String, _ value: Value) { values[name] = value }

    /// Every name visible from here, for "did you mean" suggestions.
    var visibleNames: [String] {
        var names: [String] = []
        var e: Environment? = self
        while let env = e { names += env.values.keys; e = env.parent }
        return names
    }
}
