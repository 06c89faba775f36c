/// A layer: an op with named parameters and attributes, created from a registry keyed by kind.
///
/// The attributes are plain data (numbers, lists, strings), so a network's architecture can be
/// written as text beside its weights and read back, and other formats (ONNX) map onto kinds.
public enum AttributeValue: Codable, Equatable, Sendable, CustomStringConvertible {
    case int(Int), ints([Int]), float(Float), bool(Bool), string(String)

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .ints(let v): return "[" + v.map(String.init).joined(separator: ", ") + "]"
        case .float(let v): return formatNumber(v)
        case .bool(let v): return String(v)
        case .string(let v): return "\"\(v)\""
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int.self) { self = .int(v) }
        else if let v = try? c.decode(Float.self) { self = .float(v) }
        else if let v = try? c.decode([Int].self) { self = .ints(v) }
        else { self = .string(try c.decode(String.self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .int(let v): try c.encode(v)
        case .ints(let v): try c.encode(v)
        case .float(let v): try c.encode(v)
        case .bool(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        }
    }
}

/// Typed access to a layer's attributes, with errors that name the attribute. An attribute
/// that was not given reads as its kind's declared default (`LayerKind.attributes`).
public struct Attributes: Sendable, Equatable {
    public var values: [String: AttributeValue]
    public let kind: String
    public init(_ kind: String, _ values: [String: AttributeValue] = [:]) { self.kind = kind; self.values = values }

    /// The default the kind declares for `key`, when it declares one.
    public func declaredDefault(_ key: String) -> AttributeValue? {
        switch LayerKind.named[kind]?.attributes.first(where: { $0.name == key })?.defaultValue {
        case .value(let v)?: return v
        case .sameAs(let other)?: return other == key ? nil : (values[other] ?? declaredDefault(other))
        default: return nil
        }
    }

    /// The value given for `key`, or its declared default.
    private func value(_ key: String) -> AttributeValue? { values[key] ?? declaredDefault(key) }

    public func int(_ key: String, _ dflt: Int? = nil) throws -> Int {
        switch value(key) {
        case .int(let v)?: return v
        case .float(let v)? where v == v.rounded(): return Int(v)
        case nil: if let dflt { return dflt }
        default: break
        }
        throw EngineError.invalidArgument("\(kind): attribute '\(key)' must be a whole number" + (value(key) == nil ? " and is missing" : ""))
    }

    public func float(_ key: String, _ dflt: Float? = nil) throws -> Float {
        switch value(key) {
        case .float(let v)?: return v
        case .int(let v)?: return Float(v)
        case nil: if let dflt { return dflt }
        default: break
        }
        throw EngineError.invalidArgument("\(kind): attribute '\(key)' must be a number" + (value(key) == nil ? " and is missing" : ""))
    }

    public func bool(_ key: String, _ dflt: Bool? = nil) throws -> Bool {
        switch value(key) {
        case .bool(let v)?: return v
        case .int(let v)?: return v != 0
        case nil: if let dflt { return dflt }
        default: break
        }
        throw EngineError.invalidArgument("\(kind): attribute '\(key)' must be true or false" + (value(key) == nil ? " and is missing" : ""))
    }

    /// A list of `count` whole numbers; a single number stands for all of them.
    public func ints(_ key: String, count: Int, _ dflt: Int? = nil) throws -> [Int] {
        switch value(key) {
        case .int(let v)?: return [Int](repeating: v, count: count)
        case .ints(let v)? where v.count == count: return v
        case .ints(let v)? where count == 4 && v.count == 2: return [v[0], v[1], v[0], v[1]]
        case nil: if let dflt { return [Int](repeating: dflt, count: count) }
        default: break
        }
        throw EngineError.invalidArgument("\(kind): attribute '\(key)' must be a number or a list of \(count) numbers")
    }

    public func intList(_ key: String) throws -> [Int] {
        switch value(key) {
        case .ints(let v)?: return v
        case .int(let v)?: return [v]
        default: throw EngineError.invalidArgument("\(kind): attribute '\(key)' must be a list of whole numbers")
        }
    }

    public func string(_ key: String, _ dflt: String? = nil) throws -> String {
        switch value(key) {
        case .string(let v)?: return v
        case nil: if let dflt { return dflt }
        default: break
        }
        throw EngineError.invalidArgument("\(kind): attribute '\(key)' must be text" + (value(key) == nil ? " and is missing" : ""))
    }
}

/// Everything a forward pass may need besides the input: the ReLU rule, training mode,
/// which parameters record gradients, and what layers leave behind (updated batch-norm
/// statistics). Max-pool switches live in the pooling's own backward pass, where a gradient
/// is wanted.
public final class ForwardContext {
    public var reluRule: ReLURule
    public var training: Bool
    /// When true, trainable parameters become variables whose gradients can be asked for.
    public var trackParameters: Bool
    public var generator: SeededGenerator
    /// Checked between layers; a cancelled forward pass throws `EngineError.cancelled`.
    public var isCancelled: () -> Bool
    public internal(set) var parameterVariables: [String: Variable] = [:]
    public internal(set) var updatedBuffers: [String: Tensor] = [:]
    /// Called after each node has run, with its name, its kind ("conv2d+relu" where a
    /// convolution ran with the activation that reads it) and the seconds it took: what
    /// `cnn bench --model FILE --layers` adds up. Nil (the default) times nothing.
    public var nodeTimer: ((_ name: String, _ kind: String, _ seconds: Double) -> Void)?

    public init(reluRule: ReLURule = .plain, training: Bool = false, trackParameters: Bool = false,
                seed: UInt64 = 0, isCancelled: @escaping () -> Bool = { false }) {
        self.reluRule = reluRule
        self.training = training
        self.trackParameters = trackParameters
        self.generator = SeededGenerator(seed: seed)
        self.isCancelled = isCancelled
    }
}

open class Layer {
    public let attributes: Attributes
    public var kind: String { attributes.kind }
    /// Parameters and buffers by local name ("weight", "bias", "running_mean"), in `parameterNames` order.
    public var parameters: [String: Tensor] = [:]
    public internal(set) var parameterNames: [String] = []
    /// The names that training updates (buffers such as running statistics are not).
    public internal(set) var trainable: Set<String> = []

    public init(_ attributes: Attributes) { self.attributes = attributes }

    /// Declares a parameter with its initial value.
    public func declare(_ name: String, _ value: Tensor, trainable isTrainable: Bool = true) {
        if parameters[name] == nil { parameterNames.append(name) }
        parameters[name] = value
        if isTrainable { trainable.insert(name) }
    }

    /// The parameter as a variable: tracked (gradients can be asked for) when the context says so.
    public func variable(_ name: String, _ prefix: String, _ ctx: ForwardContext) -> Variable? {
        guard let t = parameters[name] else { return nil }
        let full = prefix + "." + name
        if let v = ctx.parameterVariables[full] { return v }
        let v = Variable(t, requiresGrad: ctx.trackParameters && trainable.contains(name))
        if ctx.trackParameters { ctx.parameterVariables[full] = v }
        return v
    }

    /// The output for the given inputs; `name` is the layer's name in its network.
    open func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        fatalError("\(kind) does not implement forward")
    }

    /// The output shape for input shapes, without computing anything heavy (for summaries).
    open func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        let dummies = inputs.map { Variable(Tensor(zeros: $0)) }
        return try forward(dummies, name: "shape", context: ForwardContext()).shape
    }

    /// Multiply-adds of one forward pass, for summaries.
    open func multiplyAdds(_ inputs: [[Int]], output: [Int]) -> Int { 0 }

    /// How many inputs the layer takes (nil: any number, at least one).
    open var arity: Int? { 1 }

    func single(_ inputs: [Variable]) throws -> Variable {
        guard inputs.count == 1 else { throw EngineError.invalidArgument("\(kind) takes one input, got \(inputs.count)") }
        return inputs[0]
    }
}
