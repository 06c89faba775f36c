import Engine

/// An error a builtin raises: the interpreter gives it the place of the call (or of the
/// argument it names) and the call sites it came through.
public struct ScriptError: Error, CustomStringConvertible {
    public let message: String
    /// The parameter the error is about, so the caret can point at that argument.
    public let argument: String?

    public init(_ message: String, argument: String? = nil) {
        self.message = message
        self.argument = argument
    }

    public var description: String { message }
}

/// The arguments of one builtin call, bound to parameter names and type-checked. The typed
/// accessors convert (a number to a one-element tensor, a list to a tensor); they throw a
/// `ScriptError` naming the parameter rather than trap on anything unexpected.
public struct Arguments {
    public let builtin: String
    var values: [String: Value] = [:]
    /// Positional arguments past the regular parameters (for a variadic parameter).
    public internal(set) var rest: [Value] = []
    /// Keyword arguments that match no parameter (for a keywords parameter), in order.
    public internal(set) var keywords: [(name: String, value: Value)] = []
    var spans: [String: SourceSpan] = [:]

    init(builtin: String) { self.builtin = builtin }

    public subscript(name: String) -> Value { values[name] ?? .none }

    public func isNone(_ name: String) -> Bool {
        if case .none = self[name] { return true }
        return false
    }

    private func wrong(_ name: String, _ expected: String) -> ScriptError {
        ScriptError("\(builtin): argument '\(name)' must be \(expected), got \(describeForError(self[name]))", argument: name)
    }

    public func number(_ name: String) throws -> Double {
        if case .number(let d) = self[name] { return d }
        if let t = self[name].tensorValue, let s = t.scalar { return Double(s) }
        throw wrong(name, "a number")
    }

    public func float(_ name: String) throws -> Float { Float(try number(name)) }

    public func int(_ name: String) throws -> Int {
        let d = try number(name)
        guard d == d.rounded(), abs(d) < 1e15 else { throw wrong(name, "a whole number") }
        return Int(d)
    }

    /// A whole number, or nil when the argument is none.
    public func optionalInt(_ name: String) throws -> Int? { isNone(name) ? nil : try int(name) }

    public func bool(_ name: String) throws -> Bool {
        if case .bool(let b) = self[name] { return b }
        throw wrong(name, "true or false")
    }

    public func string(_ name: String) throws -> String {
        if case .string(let s) = self[name] { return s }
        throw wrong(name, "a string")
    }

    public func list(_ name: String) throws -> [Value] {
        switch self[name] {
        case .list(let xs): return xs
        case .range(let a, let b): return try Conversions.rangeElements(a, b)
        default: throw wrong(name, "a list")
        }
    }

    /// A list of whole numbers, or one whole number standing for `count` copies of itself.
    public func ints(_ name: String, count: Int? = nil) throws -> [Int] {
        switch self[name] {
        case .number:
            let v = try int(name)
            return [Int](repeating: v, count: count ?? 1)
        case .list(let xs):
            let values = try xs.map { x -> Int in
                guard case .number(let d) = x, d == d.rounded(), abs(d) < 1e15 else { throw wrong(name, "a list of whole numbers") }
                return Int(d)
            }
            if let count, values.count != count { throw ScriptError("\(builtin): argument '\(name)' must hold \(count) numbers, got \(values.count)", argument: name) }
            return values
        default: throw wrong(name, "a whole number or a list of them")
        }
    }

    /// The argument as a tensor variable (numbers and nested lists of numbers are converted).
    public func tensor(_ name: String) throws -> Variable {
        do { return try Conversions.variable(self[name]) }
        catch let e as ScriptError { throw ScriptError("\(builtin): argument '\(name)': \(e.message)", argument: name) }
    }

    public func optionalTensor(_ name: String) throws -> Variable? { isNone(name) ? nil : try tensor(name) }

    public func network(_ name: String) throws -> Network {
        if case .network(let n) = self[name] { return n }
        throw wrong(name, "a network")
    }

    public func layer(_ name: String) throws -> LayerValue {
        if case .layer(let l) = self[name] { return l }
        throw wrong(name, "a layer")
    }
}

/// Conversions between values and engine types.
public enum Conversions {
    /// Tensors of more numbers than this are refused before allocating: the float32 numbers
    /// within `MemoryLimit` (CNN_MAX_MEMORY, by default half the machine's memory). A process may
    /// lower it (the fuzz tests do, to keep every generated script quick); that lowers the limit.
    public static var maximumElements: Int {
        get { MemoryLimit.bytes / 4 }
        set { MemoryLimit.bytes = newValue * 4 }
    }

    /// Checks a shape before a tensor of it is made.
    public static func checkShape(_ shape: [Int]) throws {
        if let d = shape.first(where: { $0 < 0 }) { throw ScriptError("a dimension cannot be negative, got \(d) in \(Display.shape(shape))") }
        do { _ = try checkedElementCount(shape) }
        catch is SizeLimitError {
            let need = shape.reduce(4.0) { $0 * Double($1) }
            let size = need < Double(Int.max) ? MemoryLimit.describe(Int(need)) : "more bytes than can be counted"
            throw ScriptError("a tensor of shape \(Display.shape(shape)) would be too large (\(size); \(MemoryLimit.phrase))")
        }
    }

    static func rangeElements(_ a: Int, _ b: Int) throws -> [Value] {
        guard b < a || b - a < maximumElements else { throw ScriptError("the range \(a)..\(b) is too long to make a list of") }
        return b < a ? [] : (a...b).map { .number(Double($0)) }
    }

    /// A tensor from a number, a tensor, an image, a range or nested lists of numbers.
    public static func variable(_ v: Value) throws -> Variable {
        switch v {
        case .tensor(let t): return t
        case .image(let t): return Variable(t)
        default: return Variable(try tensor(v))
        }
    }

    public static func tensor(_ v: Value) throws -> Tensor {
        switch v {
        case .tensor(let t): return t.value
        case .image(let t): return t
        case .record(let r) where r["image"] != nil: return try tensor(r["image"]!)
        case .number(let d): return Tensor(scalar: Float(d))
        case .bool(let b): return Tensor(scalar: b ? 1 : 0)
        case .range(let a, let b):
            let xs = try rangeElements(a, b)
            return Tensor(shape: [xs.count], scalars: xs.map { if case .number(let d) = $0 { return Float(d) }; return 0 })
        case .list:
            let shape = try inferShape(v)
            try checkShape(shape)
            var scalars: [Float] = []
            scalars.reserveCapacity(shape.reduce(1, *))
            try collect(v, depth: 0, shape: shape, into: &scalars)
            return Tensor(shape: shape, scalars: scalars)
        default:
            throw ScriptError("expected a tensor, a number or a list of numbers, got \(v.describedType)")
        }
    }

    /// The shape nested lists claim, read down their first elements.
    private static func inferShape(_ v: Value) throws -> [Int] {
        var shape: [Int] = []
        var current = v
        while true {
            switch current {
            case .list(let xs):
                shape.append(xs.count)
                guard let first = xs.first else { return shape }
                guard shape.count <= 32 else { throw ScriptError("lists nested more than 32 deep cannot make a tensor") }
                current = first
            case .tensor, .image:
                return shape + (current.tensorValue?.shape ?? [])
            default:
                return shape
            }
        }
    }

    /// Appends the numbers of `v`, checking that every list has the length `shape` says.
    private static func collect(_ v: Value, depth: Int, shape: [Int], into scalars: inout [Float]) throws {
        switch v {
        case .list(let xs):
            guard depth < shape.count, shape[depth] == xs.count else {
                throw ScriptError(depth < shape.count
                    ? "the lists are ragged: a list of \(xs.count) where the first list at that depth holds \(shape[depth])"
                    : "the lists are ragged: a list where a number was expected")
            }
            for x in xs { try collect(x, depth: depth + 1, shape: shape, into: &scalars) }
        case .number(let d):
            guard depth == shape.count else { throw ScriptError("the lists are ragged: a number where a list was expected") }
            scalars.append(Float(d))
        case .bool(let b):
            guard depth == shape.count else { throw ScriptError("the lists are ragged: a value where a list was expected") }
            scalars.append(b ? 1 : 0)
        case .tensor, .image:
            let t = v.tensorValue ?? Tensor(zeros: [0])
            guard depth <= shape.count, Array(shape[depth...]) == t.shape else {
                throw ScriptError("a tensor of shape \(Display.shape(t.shape)) does not fit among elements of another shape")
            }
            scalars += t.scalars
        default:
            throw ScriptError("a tensor holds numbers, not \(v.describedType)")
        }
    }
}
