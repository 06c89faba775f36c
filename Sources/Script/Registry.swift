import Engine

/// The builtins registry: each builtin is declared once (name, parameters with their types
/// and defaults, help, implementation), and argument checking, `help`, docs/BUILTINS.md and
/// completion are all derived from that declaration.
///
/// An area of builtins is a file with `extension Builtins { static var myArea: [Builtin] }`
/// and one line in `Builtins.areas`.
public enum Builtins {
    /// Every area, in the order `help()` and the reference list them.
    static var areas: [[Builtin]] {
        [language, tensors, gradients, layers, models, visualizations, rendering, images]
    }
}

/// A heading under which `help()` and docs/BUILTINS.md list builtins.
public struct BuiltinCategory: Hashable, Sendable {
    public let name: String
    /// Where the category comes in listings, smallest first.
    public let order: Int
    public init(name: String, order: Int) { self.name = name; self.order = order }

    public static let language = BuiltinCategory(name: "Language", order: 10)
    public static let tensors = BuiltinCategory(name: "Tensors", order: 20)
    public static let gradients = BuiltinCategory(name: "Gradients", order: 30)
    public static let layers = BuiltinCategory(name: "Layers and networks", order: 40)
    public static let images = BuiltinCategory(name: "Images", order: 50)
}

/// What a parameter accepts.
public enum ParameterType: Sendable, Equatable {
    case any, number, integer, bool, string, list, tensor, image, network, layer, callable, shape, none

    /// The noun for messages: "must be a tensor".
    public var noun: String {
        switch self {
        case .any: return "any value"
        case .number: return "a number"
        case .integer: return "a whole number"
        case .bool: return "true or false"
        case .string: return "a string"
        case .list: return "a list"
        case .tensor: return "a tensor"
        case .image: return "an image"
        case .network: return "a network"
        case .layer: return "a layer"
        case .callable: return "a function"
        case .shape: return "a list of whole numbers"
        case .none: return "none"
        }
    }

    public func accepts(_ v: Value) -> Bool {
        switch (self, v) {
        case (.any, _): return true
        case (.number, .number): return true
        case (.integer, .number(let d)): return d == d.rounded() && abs(d) < 1e15
        case (.bool, .bool), (.string, .string), (.none, .none), (.network, .network), (.layer, .layer): return true
        case (.list, .list), (.list, .range): return true
        // Images are tensors in display space, and a tensor can be shown as a picture.
        case (.tensor, .tensor), (.tensor, .image), (.image, .image), (.image, .tensor): return true
        // A result that carries a picture (classviz, deconv, ...) stands for it.
        case (.tensor, .record(let r)), (.image, .record(let r)): return r["image"] != nil
        case (.callable, .function), (.callable, .builtin), (.callable, .layer), (.callable, .network): return true
        case (.shape, .list(let xs)): return xs.allSatisfy { ParameterType.integer.accepts($0) }
        default: return false
        }
    }
}

/// One parameter of a builtin.
public struct BuiltinParameter {
    public enum Kind: Sendable { case regular, variadic, keywords }
    public let name: String
    public let types: [ParameterType]
    /// nil for a required parameter.
    public let defaultValue: Value?
    public let kind: Kind

    /// A required parameter.
    public static func required(_ name: String, _ types: ParameterType...) -> BuiltinParameter {
        BuiltinParameter(name: name, types: types, defaultValue: nil, kind: .regular)
    }

    /// A parameter with a default value.
    public static func optional(_ name: String, _ types: ParameterType..., default value: Value) -> BuiltinParameter {
        BuiltinParameter(name: name, types: types, defaultValue: value, kind: .regular)
    }

    /// Any number of further positional arguments (`zeros(2, 3)`), collected in `Arguments.rest`.
    public static func variadic(_ name: String, _ types: ParameterType...) -> BuiltinParameter {
        BuiltinParameter(name: name, types: types, defaultValue: .list([]), kind: .variadic)
    }

    /// Any further keyword arguments, in the order written (`network(conv1=..., relu1=...)`).
    public static func keywords(_ name: String, _ types: ParameterType...) -> BuiltinParameter {
        BuiltinParameter(name: name, types: types, defaultValue: .list([]), kind: .keywords)
    }

    var typeText: String {
        let nouns = types.map(\.noun)
        guard let last = nouns.last else { return "any value" }
        return nouns.count == 1 ? last : nouns.dropLast().joined(separator: ", ") + " or " + last
    }
}

/// A builtin function: its declaration and its implementation.
public struct Builtin {
    public let name: String
    public let category: BuiltinCategory
    public let parameters: [BuiltinParameter]
    /// One line: what it does.
    public let summary: String
    /// More: what the arguments mean, what comes back.
    public let help: String
    /// Lines that call it, runnable as written (they are run by the tests unless they need files).
    public let example: String
    /// Whether the example reads or writes files, so the tests do not run it blindly.
    public let exampleUsesFiles: Bool
    let body: (Arguments, CallContext) throws -> Value

    public init(_ name: String, category: BuiltinCategory, parameters: [BuiltinParameter], summary: String,
                help: String = "", example: String, exampleUsesFiles: Bool = false,
                body: @escaping (Arguments, CallContext) throws -> Value) {
        self.name = name
        self.category = category
        self.parameters = parameters
        self.summary = summary
        self.help = help
        self.example = example
        self.exampleUsesFiles = exampleUsesFiles
        self.body = body
    }

    /// `conv2d(x, w, stride=1, pad=0)`: how to call it.
    public var signature: String {
        let parts = parameters.map { p -> String in
            switch p.kind {
            case .variadic: return "\(p.name)..."
            case .keywords: return "\(p.name)=..."
            case .regular: return p.defaultValue.map { "\(p.name)=\(Display.source($0))" } ?? p.name
            }
        }
        return "\(name)(\(parts.joined(separator: ", ")))"
    }

    /// Matches call arguments to parameters, fills in defaults and checks every type.
    func bind(_ positional: [(Value, SourceSpan)], _ keywords: [(String, Value, SourceSpan)], at span: SourceSpan) throws -> Arguments {
        var args = Arguments(builtin: name)
        let regular = parameters.filter { $0.kind == .regular }
        let variadic = parameters.first { $0.kind == .variadic }
        // Parameters declared after a variadic one can only be given by name.
        let positionalCount = parameters.firstIndex { $0.kind != .regular } ?? parameters.count
        let restKeywords = parameters.first { $0.kind == .keywords }
        func check(_ p: BuiltinParameter, _ v: Value, _ at: SourceSpan, label: String? = nil) throws {
            guard p.types.contains(where: { $0.accepts(v) }) else {
                var message = "\(name): argument '\(label ?? p.name)' must be \(p.typeText), got \(describeForError(v))"
                if case .list = v, p.types.contains(.tensor) { message += " (make one with tensor([...]))" }
                throw RuntimeFailure(Diagnostic(.runtime, message, at: at))
            }
        }
        for (i, (v, at)) in positional.enumerated() {
            if i < positionalCount {
                try check(regular[i], v, at)
                args.values[regular[i].name] = v
                args.spans[regular[i].name] = at
            } else if let variadic {
                try check(variadic, v, at, label: "\(variadic.name)[\(i - positionalCount)]")
                args.rest.append(v)
            } else {
                let most = positionalCount == 1 ? "1 argument" : "\(positionalCount) arguments"
                throw RuntimeFailure(Diagnostic(.runtime, "\(name) takes at most \(most) without names, got \(positional.count) (\(signature))", at: at))
            }
        }
        for (label, v, at) in keywords {
            if let p = regular.first(where: { $0.name == label }) {
                if args.values[label] != nil {
                    throw RuntimeFailure(Diagnostic(.runtime, "\(name): argument '\(label)' is given twice", at: at))
                }
                try check(p, v, at)
                args.values[label] = v
                args.spans[label] = at
            } else if let restKeywords {
                try check(restKeywords, v, at, label: label)
                args.keywords.append((label, v))
                args.spans[label] = at
            } else {
                let names = regular.map(\.name)
                var message = "\(name) has no argument '\(label)'"
                if let near = nearest(label, in: names) { message += "; did you mean '\(near)'?" }
                else if names.isEmpty { message += parameters.isEmpty ? "; it takes no arguments" : "; call it as \(signature)" }
                else { message += "; its arguments are \(names.joined(separator: ", "))" }
                throw RuntimeFailure(Diagnostic(.runtime, message, at: at))
            }
        }
        for p in regular where args.values[p.name] == nil {
            guard let d = p.defaultValue else {
                throw RuntimeFailure(Diagnostic(.runtime, "\(name): missing argument '\(p.name)' (\(signature))", at: span))
            }
            args.values[p.name] = d
        }
        return args
    }
}

/// "a string", "the number 2.5": how a wrong argument is named in an error.
func describeForError(_ v: Value) -> String {
    switch v {
    case .number(let d): return "the number \(Display.number(d))"
    case .string(let s) where s.count <= 30: return "the string \"\(s)\""
    case .tensor(let t): return "a tensor of shape \(Display.shape(t.shape))"
    case .list(let xs) where xs.isEmpty: return "an empty list"
    default: return v.describedType
    }
}

/// All builtins by name.
public final class BuiltinRegistry {
    private var table: [String: Builtin] = [:]
    /// Names in the order they were registered.
    public private(set) var names: [String] = []

    public init(_ builtins: [Builtin] = []) {
        for b in builtins { register(b) }
    }

    /// Adds a builtin; a second one of the same name replaces the first (a front end may
    /// specialise one, such as `show` in a notebook).
    public func register(_ builtin: Builtin) {
        if table[builtin.name] == nil { names.append(builtin.name) }
        table[builtin.name] = builtin
    }

    public subscript(name: String) -> Builtin? { table[name] }

    public var all: [Builtin] { names.compactMap { table[$0] } }

    /// Builtins grouped by category, categories in order and names sorted within each.
    public var byCategory: [(category: BuiltinCategory, builtins: [Builtin])] {
        let groups = Dictionary(grouping: all, by: \.category)
        return groups.keys.sorted { ($0.order, $0.name) < ($1.order, $1.name) }.map { c in
            (c, groups[c, default: []].sorted { $0.name < $1.name })
        }
    }

    /// The registry of every builtin area.
    public static func standard() -> BuiltinRegistry {
        BuiltinRegistry(Builtins.areas.flatMap { $0 })
    }
}
