/// Two views of a syntax tree: source text that parses back to the same tree (with the fewest
/// parentheses precedence allows), and a fully bracketed outline that leaves out spans, for
/// comparing trees in tests.
public enum ASTPrinter {
    // Precedence levels, lowest first, as in the parser.
    private static let lambdaLevel = 0, orLevel = 1, andLevel = 2, notLevel = 3, comparisonLevel = 4
    private static let rangeLevel = 5, additiveLevel = 6, termLevel = 7, unaryLevel = 8, powerLevel = 9, postfixLevel = 10

    private static func level(_ op: BinaryOperator) -> Int {
        switch op {
        case .or: return orLevel
        case .and: return andLevel
        case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual: return comparisonLevel
        case .range: return rangeLevel
        case .add, .subtract: return additiveLevel
        case .multiply, .divide, .remainder, .matmul: return termLevel
        case .power: return powerLevel
        }
    }

    private static func level(_ e: Expr) -> Int {
        switch e.kind {
        case .lambda: return lambdaLevel
        case .binary(let op, _, _): return level(op)
        case .unary(.not, _): return notLevel
        case .unary: return unaryLevel
        default: return postfixLevel
        }
    }

    // MARK: source text

    public static func source(_ statements: [Stmt]) -> String {
        statements.map { source($0, indent: "") }.joined()
    }

    static func source(_ s: Stmt, indent: String) -> String {
        func block(_ body: [Stmt]) -> String {
            "{\n" + body.map { source($0, indent: indent + "    ") }.joined() + indent + "}"
        }
        let text: String
        switch s.kind {
        case .expression(let e): text = source(e)
        case .assign(let target, let op, let value): text = "\(source(target)) \(op.map { $0.rawValue } ?? "")= \(source(value))"
        case .ifElse(let condition, let then, let otherwise):
            var t = "if \(source(condition)) \(block(then))"
            if let otherwise {
                if otherwise.count == 1, case .ifElse = otherwise[0].kind {
                    t += " else " + source(otherwise[0], indent: indent).dropFirst(indent.count).dropLast()
                } else {
                    t += " else \(block(otherwise))"
                }
            }
            text = t
        case .forIn(let variable, let sequence, let body): text = "for \(variable) in \(source(sequence)) \(block(body))"
        case .whileLoop(let condition, let body): text = "while \(source(condition)) \(block(body))"
        case .function(let f):
            guard case .block(let body) = f.body else { text = ""; break }
            text = "fn \(f.name ?? "")(\(parameters(f.parameters))) \(block(body))"
        case .returnValue(let e): text = e.map { "return \(source($0))" } ?? "return"
        case .breakLoop: text = "break"
        case .continueLoop: text = "continue"
        case .include(let e): text = "include \(source(e))"
        }
        return indent + text + "\n"
    }

    private static func parameters(_ ps: [Parameter]) -> String {
        ps.map { p in p.defaultValue.map { "\(p.name)=\(source($0))" } ?? p.name }.joined(separator: ", ")
    }

    public static func source(_ e: Expr, indent: String = "") -> String {
        func sub(_ x: Expr, _ minimum: Int) -> String {
            let t = source(x, indent: indent)
            return level(x) < minimum ? "(\(t))" : t
        }
        switch e.kind {
        case .number(let v): return number(v)
        case .string(let parts): return string(parts)
        case .bool(let b): return b ? "true" : "false"
        case .none: return "none"
        case .name(let n): return n
        case .list(let xs): return "[" + xs.map { source($0, indent: indent) }.joined(separator: ", ") + "]"
        case .unary(.not, let x): return "not " + sub(x, notLevel)
        case .unary(let op, let x): return op.rawValue + sub(x, unaryLevel)
        case .binary(let op, let l, let r):
            let L = level(op)
            let text = op == .and || op == .or ? " \(op.rawValue) " : op == .range || op == .power ? op.rawValue : " \(op.rawValue) "
            switch op {
            case .power: return sub(l, postfixLevel) + text + sub(r, unaryLevel)
            case .range, .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual:
                return sub(l, L + 1) + text + sub(r, L + 1)
            default: return sub(l, L) + text + sub(r, L + 1)
            }
        case .call(let f, let args):
            let list = args.map { a in (a.label.map { "\($0)=" } ?? "") + source(a.value, indent: indent) }
            return sub(f, postfixLevel) + "(" + list.joined(separator: ", ") + ")"
        case .index(let x, let items):
            return sub(x, postfixLevel) + "[" + items.map { index($0, indent) }.joined(separator: ", ") + "]"
        case .attribute(let x, let name): return sub(x, postfixLevel) + "." + name
        case .lambda(let f):
            let head = f.parameters.count == 1 && f.parameters[0].defaultValue == nil ? f.parameters[0].name : "(\(parameters(f.parameters)))"
            switch f.body {
            case .expression(let body): return head + " -> " + source(body, indent: indent)
            case .block(let body):
                return head + " -> {\n" + body.map { source($0, indent: indent + "    ") }.joined() + indent + "}"
            }
        }
    }

    private static func index(_ item: IndexItem, _ indent: String) -> String {
        switch item {
        case .single(let e): return source(e, indent: indent)
        case .slice(let a, let b, let c):
            var t = (a.map { source($0, indent: indent) } ?? "") + ":" + (b.map { source($0, indent: indent) } ?? "")
            if let c { t += ":" + source(c, indent: indent) }
            return t
        }
    }

    static func number(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    private static func string(_ parts: [StringPart]) -> String {
        var t = "\""
        for part in parts {
            switch part {
            case .text(let s): t += escapedLiteralText(s)
            case .interpolation(let e): t += "{" + source(e) + "}"
            }
        }
        return t + "\""
    }

    // MARK: outline

    /// A fully bracketed outline of the statements, without spans: equal outlines mean equal trees.
    public static func outline(_ statements: [Stmt]) -> String {
        statements.map(outline).joined(separator: "\n")
    }

    static func outline(_ s: Stmt) -> String {
        func body(_ b: [Stmt]) -> String { "{" + b.map(outline).joined(separator: " ") + "}" }
        switch s.kind {
        case .expression(let e): return outline(e)
        case .assign(let t, let op, let v): return "(\(op?.rawValue ?? "")= \(outline(t)) \(outline(v)))"
        case .ifElse(let c, let t, let o): return "(if \(outline(c)) \(body(t))" + (o.map { " " + body($0) } ?? "") + ")"
        case .forIn(let v, let s, let b): return "(for \(v) \(outline(s)) \(body(b)))"
        case .whileLoop(let c, let b): return "(while \(outline(c)) \(body(b)))"
        case .function(let f): return "(fn \(f.name ?? "") \(outline(f)))"
        case .returnValue(let e): return "(return" + (e.map { " " + outline($0) } ?? "") + ")"
        case .breakLoop: return "(break)"
        case .continueLoop: return "(continue)"
        case .include(let e): return "(include \(outline(e)))"
        }
    }

    private static func outline(_ f: FunctionDeclaration) -> String {
        let ps = f.parameters.map { p in "(\(p.name)" + (p.defaultValue.map { " " + outline($0) } ?? "") + ")" }.joined()
        switch f.body {
        case .expression(let e): return "(\(ps)) \(outline(e))"
        case .block(let b): return "(\(ps)) {" + b.map(outline).joined(separator: " ") + "}"
        }
    }

    static func outline(_ e: Expr) -> String {
        switch e.kind {
        case .number(let v): return "\(v)"
        case .string(let parts):
            return "(str" + parts.map { p -> String in
                switch p {
                case .text(let s): return " \(s.debugDescription)"
                case .interpolation(let x): return " \(outline(x))"
                }
            }.joined() + ")"
        case .bool(let b): return "\(b)"
        case .none: return "none"
        case .name(let n): return n
        case .list(let xs): return "[" + xs.map(outline).joined(separator: " ") + "]"
        case .unary(let op, let x): return "(\(op.rawValue)u \(outline(x)))"
        case .binary(let op, let l, let r): return "(\(op.rawValue) \(outline(l)) \(outline(r)))"
        case .call(let f, let args):
            return "(call \(outline(f))" + args.map { " " + ($0.label.map { "\($0)=" } ?? "") + outline($0.value) }.joined() + ")"
        case .index(let x, let items):
            return "(index \(outline(x))" + items.map { item -> String in
                switch item {
                case .single(let i): return " " + outline(i)
                case .slice(let a, let b, let c):
                    return " (: \(a.map(outline) ?? "_") \(b.map(outline) ?? "_") \(c.map(outline) ?? "_"))"
                }
            }.joined() + ")"
        case .attribute(let x, let n): return "(. \(outline(x)) \(n))"
        case .lambda(let f): return "(lambda \(outline(f)))"
        }
    }
}

/// Text as it is written between a string literal's quotes: the escapes the lexer reads back
/// (backslash, quote, newline, tab, carriage return, NUL, and braces, which would interpolate).
func escapedLiteralText(_ s: String) -> String {
    var t = ""
    for c in s.unicodeScalars {
        switch c {
        case "\\": t += "\\\\"
        case "\"": t += "\\\""
        case "\n": t += "\\n"
        case "\t": t += "\\t"
        case "\r": t += "\\r"
        case "\0": t += "\\0"
        case "{": t += "\\{"
        case "}": t += "\\}"
        default: t.unicodeScalars.append(c)
        }
    }
    return t
}
