import Engine
import Foundation

/// Builtins of the language itself: printing, help, types, lists and numbers.
extension Builtins {
    static var language: [Builtin] {
        [
            printBuiltin, helpBuiltin, typeBuiltin, strBuiltin, lenBuiltin, rangeBuiltin, roundBuiltin,
            allBuiltin, anyBuiltin
        ]
    }

    static var printBuiltin: Builtin {
        Builtin("print", category: .language, parameters: [.variadic("values", .any), .optional("sep", .string, default: .string(" "))],
                summary: "Prints values on one line.",
                help: "Strings print as they are; other values as the shell shows them. `sep` goes between values.",
                example: "print(\"loss\", 0.25)\nprint(1, 2, 3, sep=\", \")") { args, ctx in
            ctx.print(args.rest.map(Display.plain).joined(separator: try args.string("sep")))
            return .none
        }
    }

    static var helpBuiltin: Builtin {
        Builtin("help", category: .language, parameters: [.optional("topic", .any, default: .none)],
                summary: "Lists the builtins, or explains one.",
                help: "`help()` lists every builtin by category; `help(conv2d)` or `help(\"conv2d\")` shows how to call one, what it does and an example.",
                example: "help(relu)") { args, ctx in
            ctx.emit(.text(try helpText(args["topic"], ctx.registry)))
            return .none
        }
    }

    static var typeBuiltin: Builtin {
        Builtin("type", category: .language, parameters: [.required("value", .any)],
                summary: "The type of a value, as a string.",
                help: "One of number, string, bool, none, list, range, tensor, image, network, layer, function.",
                example: "type(tensor([1, 2]))") { args, _ in .string(args["value"].typeName) }
    }

    static var strBuiltin: Builtin {
        Builtin("str", category: .language, parameters: [.required("value", .any)],
                summary: "A value as text.",
                help: "Strings stay as they are; other values become the text the shell shows for them.",
                example: "str(0.5) + \" of the way\"") { args, _ in .string(Display.plain(args["value"])) }
    }

    static var lenBuiltin: Builtin {
        Builtin("len", category: .language, parameters: [.required("value", .list, .string, .tensor)],
                summary: "The length of a list, string or range, or the first dimension of a tensor.",
                example: "len([1, 2, 3])\nlen(0..9)") { args, _ in
            switch args["value"] {
            case .list(let xs): return .number(Double(xs.count))
            case .string(let s): return .number(Double(s.count))
            case .range(let a, let b): return .number(Double(b < a ? 0 : b - a + 1))
            default:
                let t = try args.tensor("value")
                guard let first = t.shape.first else { throw ScriptError("len: a single number has no length", argument: "value") }
                return .number(Double(first))
            }
        }
    }

    static var rangeBuiltin: Builtin {
        Builtin("range", category: .language,
                parameters: [.required("start", .integer), .optional("stop", .integer, .none, default: .none), .optional("step", .integer, default: .number(1))],
                summary: "Whole numbers from start up to (not including) stop.",
                help: "`range(n)` counts 0 to n - 1, `range(a, b)` a to b - 1, and `range(a, b, step)` steps by `step` (which may be negative). `a..b` is the range that includes b.",
                example: "range(5)\nrange(10, 0, -3)") { args, _ in
            var start = try args.int("start"), stop = try args.optionalInt("stop")
            let step = try args.int("step")
            if stop == nil { stop = start; start = 0 }
            guard step != 0 else { throw ScriptError("range: the step cannot be 0", argument: "step") }
            let end = stop ?? 0
            if step == 1 { return .range(start, end - 1) }
            let count = step > 0 ? max(0, (end - start + step - 1) / step) : max(0, (start - end - step - 1) / -step)
            guard count <= Conversions.maximumElements else { throw ScriptError("range: that is too many numbers for a list") }
            return .list(stride(from: start, to: end, by: step).map { .number(Double($0)) })
        }
    }

    static var roundBuiltin: Builtin {
        Builtin("round", category: .language, parameters: [.required("x", .number, .tensor), .optional("digits", .integer, default: .number(0))],
                summary: "Rounds to a number of decimal digits.",
                help: "Works on numbers and, elementwise, on tensors (the result of a tensor carries no gradient).",
                example: "round(3.14159, digits=2)") { args, _ in
            let digits = try args.int("digits")
            guard abs(digits) <= 15 else { throw ScriptError("round: digits must be between -15 and 15", argument: "digits") }
            let scale = pow(10.0, Double(digits))
            if case .number(let d) = args["x"] { return .number((d * scale).rounded() / scale) }
            let t = try args.tensor("x").value
            return .tensor(Variable(t.map { Float((Double($0) * scale).rounded() / scale) }))
        }
    }

    static var allBuiltin: Builtin {
        Builtin("all", category: .language, parameters: [.required("values", .list, .tensor)],
                summary: "Whether every element is true (or, in a tensor, non-zero).",
                example: "all(tensor([1, 2]) > 0)") { args, _ in
            if case .tensor = args["values"] { return .bool(try args.tensor("values").value.scalars.allSatisfy { $0 != 0 }) }
            if case .image = args["values"] { return .bool(try args.tensor("values").value.scalars.allSatisfy { $0 != 0 }) }
            return .bool(try args.list("values").allSatisfy { v in if case .bool(true) = v { return true }; return false })
        }
    }

    static var anyBuiltin: Builtin {
        Builtin("any", category: .language, parameters: [.required("values", .list, .tensor)],
                summary: "Whether some element is true (or, in a tensor, non-zero).",
                example: "any(tensor([1, -2]) < 0)") { args, _ in
            if case .tensor = args["values"] { return .bool(try args.tensor("values").value.scalars.contains { $0 != 0 }) }
            if case .image = args["values"] { return .bool(try args.tensor("values").value.scalars.contains { $0 != 0 }) }
            return .bool(try args.list("values").contains { v in if case .bool(true) = v { return true }; return false })
        }
    }

    /// The text of `help(topic)`.
    static func helpText(_ topic: Value, _ registry: BuiltinRegistry) throws -> String {
        switch topic {
        case .none:
            var out = "Builtins by category (help(name) explains one):\n"
            for (category, builtins) in registry.byCategory {
                out += "\n\(category.name)\n"
                let width = builtins.map(\.name.count).max() ?? 0
                for b in builtins { out += "  \(b.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(b.summary)\n" }
            }
            return out
        case .builtin(let b): return builtinHelp(b)
        case .string(let name):
            guard let b = registry[name] else {
                let near = nearest(name, in: registry.names).map { "; did you mean '\($0)'?" } ?? ""
                throw ScriptError("help: there is no builtin '\(name)'\(near)", argument: "topic")
            }
            return builtinHelp(b)
        case .function(let f):
            let params = f.declaration.parameters.map { p in p.defaultValue.map { "\(p.name)=\(ASTPrinter.source($0))" } ?? p.name }
            return "\(f.name)(\(params.joined(separator: ", "))): a function defined at \(f.declaration.span)\n"
        default:
            return "\(Display.text(topic))\n(\(topic.describedType); help() lists the builtins)\n"
        }
    }

    /// Signature, summary, help text, parameter table and example of one builtin.
    public static func builtinHelp(_ b: Builtin) -> String {
        var out = "\(b.signature)\n  \(b.summary)\n"
        if !b.help.isEmpty { out += "\n" + wrap(b.help, indent: "  ") }
        if !b.parameters.isEmpty {
            out += "\n"
            let width = b.parameters.map(\.name.count).max() ?? 0
            for p in b.parameters {
                var line = "  \(p.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(p.typeText)"
                if p.kind == .variadic { line += ", any number of them" }
                if p.kind == .keywords { line += ", as name=value, any number of them" }
                if p.kind == .regular, let d = p.defaultValue { line += " (default \(Display.source(d)))" }
                out += line + "\n"
            }
        }
        out += "\nExample:\n" + b.example.split(separator: "\n", omittingEmptySubsequences: false).map { "  \($0)\n" }.joined()
        return out
    }

    /// Text wrapped at 88 columns.
    static func wrap(_ text: String, indent: String) -> String {
        var out = "", line = indent
        for word in text.split(separator: " ") {
            if line.count + word.count + 1 > 88, line != indent { out += line + "\n"; line = indent }
            line += (line == indent ? "" : " ") + word
        }
        return out + line + "\n"
    }
}
