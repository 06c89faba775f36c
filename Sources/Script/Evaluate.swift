import Engine
import Foundation

/// Expressions: names, operators, calls. Tensor arithmetic runs on the engine's variables,
/// so that gradients flow through whatever the user writes.
extension Interpreter {
    func evaluate(_ e: Expr, _ env: Environment) throws -> Value {
        try enter(e.span)
        defer { evaluationDepth -= 1 }
        switch e.kind {
        case .number(let d): return .number(d)
        case .bool(let b): return .bool(b)
        case .none: return .none
        case .string(let parts): return try interpolate(parts, env)
        case .name(let n): return try lookup(n, e.span, env)
        case .list(let xs): return try makeList(try xs.map { try evaluate($0, env) }, e.span)
        case .unary(let op, let x): return try unary(op, try evaluate(x, env), e.span)
        case .binary(.and, let l, let r):
            guard try truth(try evaluate(l, env), l.span) else { return .bool(false) }
            return .bool(try truth(try evaluate(r, env), r.span))
        case .binary(.or, let l, let r):
            if try truth(try evaluate(l, env), l.span) { return .bool(true) }
            return .bool(try truth(try evaluate(r, env), r.span))
        case .binary(let op, let l, let r):
            return try binary(op, try evaluate(l, env), try evaluate(r, env), e.span)
        case .call(let f, let args): return try evaluateCall(f, args, e.span, env)
        case .index(let x, let items):
            let base = try evaluate(x, env)
            return try index(base, try items.map { try evaluateIndex($0, env, at: e.span) }, e.span)
        case .attribute(let x, let name): return try attribute(try evaluate(x, env), name, e.span)
        case .lambda(let decl): return .function(Closure(decl, env))
        }
    }

    private func interpolate(_ parts: [StringPart], _ env: Environment) throws -> Value {
        var s = ""
        for p in parts {
            switch p {
            case .text(let t): s += t
            case .interpolation(let x): s += Display.plain(try evaluate(x, env))
            }
        }
        return .string(s)
    }

    private func lookup(_ name: String, _ span: SourceSpan, _ env: Environment) throws -> Value {
        if let v = env.lookup(name) { return v }
        if let b = registry[name] { return .builtin(b) }
        let candidates = env.visibleNames + registry.names
        var message = "unknown name '\(name)'"
        if let near = nearest(name, in: candidates) { message += "; did you mean '\(near)'?" }
        throw failure(message, span)
    }

    private func evaluateCall(_ f: Expr, _ args: [Argument], _ span: SourceSpan, _ env: Environment) throws -> Value {
        let callee = try evaluate(f, env)
        var positional: [(Value, SourceSpan)] = []
        var keywords: [(String, Value, SourceSpan)] = []
        for a in args {
            let v = try evaluate(a.value, env)
            if let label = a.label { keywords.append((label, v, a.span)) } else { positional.append((v, a.value.span)) }
        }
        return try call(callee, positional, keywords, span)
    }

    // MARK: operators

    func unary(_ op: UnaryOperator, _ v: Value, _ span: SourceSpan) throws -> Value {
        switch (op, v) {
        case (.not, .bool(let b)): return .bool(!b)
        case (.negate, .number(let d)): return .number(-d)
        case (.plus, .number): return v
        case (.negate, .tensor), (.negate, .image): return .tensor(negate(try Conversions.variable(v)))
        case (.plus, .tensor), (.plus, .image): return .tensor(try Conversions.variable(v))
        case (.not, _): throw failure("'not' takes true or false, got \(describeForError(v))", span)
        case (.negate, .record) where Builtins.negatedObjective(v) != nil: return Builtins.negatedObjective(v)!
        default: throw failure("cannot negate \(v.describedType)", span)
        }
    }

    private func isTensor(_ v: Value) -> Bool {
        switch v {
        case .tensor, .image: return true
        default: return false
        }
    }

    func binary(_ op: BinaryOperator, _ a: Value, _ b: Value, _ span: SourceSpan) throws -> Value {
        switch (a, b) {
        case (.number(let x), .number(let y)): return try numeric(op, x, y, span)
        case (.tensor, .tensor), (.tensor, .image), (.image, .tensor), (.image, .image),
             (.tensor, .number), (.image, .number), (.number, .tensor), (.number, .image):
            return try withEngineErrors(span, context: nil) { try tensorBinary(op, a, b, span) }
        case (.string(let x), .string(let y)):
            switch op {
            case .add: return .string(x + y)
            case .equal: return .bool(x == y)
            case .notEqual: return .bool(x != y)
            case .less: return .bool(x < y)
            case .lessEqual: return .bool(x <= y)
            case .greater: return .bool(x > y)
            case .greaterEqual: return .bool(x >= y)
            default: break
            }
        case (.list(let x), .list(let y)) where op == .add: return try makeList(x + y, span)
        case (.bool(let x), .bool(let y)) where op == .equal || op == .notEqual: return .bool((x == y) == (op == .equal))
        default: break
        }
        if op == .equal || op == .notEqual { return .bool(try valuesEqual(a, b) == (op == .equal)) }
        do { if let v = try Builtins.objectiveArithmetic(op, a, b) { return v } } catch let e as ScriptError { throw failure(e.message, span) }
        if op == .add, case .string = a {
            throw failure("cannot add \(b.describedType) to a string; write \"...{x}...\" or str(x)", span)
        }
        throw failure("'\(op.rawValue)' does not apply to \(a.describedType) and \(b.describedType)", span)
    }

    private func numeric(_ op: BinaryOperator, _ x: Double, _ y: Double, _ span: SourceSpan) throws -> Value {
        switch op {
        case .add: return .number(x + y)
        case .subtract: return .number(x - y)
        case .multiply: return .number(x * y)
        case .divide:
            guard y != 0 else { throw failure("division by zero", span) }
            return .number(x / y)
        case .remainder:
            guard y != 0 else { throw failure("remainder of a division by zero", span) }
            let r = fmod(x, y)
            return .number(r != 0 && (r < 0) != (y < 0) ? r + y : r)  // the sign of the divisor, as in Python
        case .power: return .number(pow(x, y))
        case .equal: return .bool(x == y)
        case .notEqual: return .bool(x != y)
        case .less: return .bool(x < y)
        case .lessEqual: return .bool(x <= y)
        case .greater: return .bool(x > y)
        case .greaterEqual: return .bool(x >= y)
        case .matmul: throw failure("'@' multiplies matrices; for numbers use '*'", span)
        case .range:
            guard x == x.rounded(), y == y.rounded(), abs(x) < 1e15, abs(y) < 1e15 else {
                throw failure("a range runs between whole numbers, got \(Display.number(x))..\(Display.number(y))", span)
            }
            return .range(Int(x), Int(y))
        case .and, .or: throw failure("'\(op.rawValue)' takes true or false", span)
        }
    }

    private func tensorBinary(_ op: BinaryOperator, _ a: Value, _ b: Value, _ span: SourceSpan) throws -> Value {
        let x = try Conversions.variable(a)
        // Refuse results too large to allocate before the engine tries: zeros(100000, 1) + zeros(1, 100000).
        if op == .matmul {
            try Conversions.checkShape([x.value.count / max(x.shape.last ?? 1, 1), (try Conversions.variable(b)).shape.last ?? 1])
        } else if op != .power {
            try Conversions.checkShape(try broadcastShape(x.shape, try Conversions.variable(b).shape))
        }
        switch op {
        case .add: return .tensor(try add(x, try Conversions.variable(b)))
        case .subtract: return .tensor(try subtract(x, try Conversions.variable(b)))
        case .multiply: return .tensor(try multiply(x, try Conversions.variable(b)))
        case .divide: return .tensor(try divide(x, try Conversions.variable(b)))
        case .matmul:
            let y = try Conversions.variable(b)
            guard x.shape.count >= 1, y.shape.count >= 1 else { throw failure("'@' takes matrices or vectors, not single numbers", span) }
            return .tensor(try matmul(x, y))
        case .power:
            guard case .number(let p) = b else {
                throw failure("a tensor can be raised to a number, not to \(b.describedType)", span)
            }
            return .tensor(power(x, Float(p)))
        case .remainder:
            let y = try Conversions.variable(b)
            let d = try subtract(x, y)  // for the broadcast shape
            let r = try broadcastValues(x.value, y.value, d.shape)
            return .tensor(Variable(Tensor(shape: d.shape, scalars: zip(r.0, r.1).map { p, q in
                let m = fmodf(p, q)
                return m != 0 && (m < 0) != (q < 0) ? m + q : m
            })))
        case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual:
            // Comparisons are elementwise and give 0 or 1; a - b carries the broadcast.
            let d = try subtract(x, try Conversions.variable(b)).value
            let test: (Float) -> Bool
            switch op {
            case .equal: test = { $0 == 0 }
            case .notEqual: test = { $0 != 0 }
            case .less: test = { $0 < 0 }
            case .lessEqual: test = { $0 <= 0 }
            case .greater: test = { $0 > 0 }
            default: test = { $0 >= 0 }
            }
            // One number compared with one number is a plain true or false, ready for `if`.
            if d.rank == 0, let v = d.scalar { return .bool(test(v)) }
            return .tensor(Variable(d.map { test($0) ? 1 : 0 }))
        case .range, .and, .or:
            throw failure("'\(op.rawValue)' does not apply to tensors", span)
        }
    }

    /// The scalars of a and b broadcast to `shape`.
    private func broadcastValues(_ a: Tensor, _ b: Tensor, _ shape: [Int]) throws -> ([Float], [Float]) {
        let zero = Variable(Tensor(zeros: shape))
        return (try add(zero, Variable(a)).value.scalars, try add(zero, Variable(b)).value.scalars)
    }

    /// Structural equality; lists are at most `maximumListNesting` deep, so the recursion is bounded.
    private func valuesEqual(_ a: Value, _ b: Value) throws -> Bool {
        switch (a, b) {
        case (.none, .none): return true
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.range(let a1, let b1), .range(let a2, let b2)): return a1 == a2 && b1 == b2
        case (.list(let x), .list(let y)):
            guard x.count == y.count else { return false }
            for (p, q) in zip(x, y) where !(try valuesEqual(p, q)) { return false }
            return true
        case (.network(let x), .network(let y)): return x === y
        case (.layer(let x), .layer(let y)): return x.layer === y.layer
        case (.function(let x), .function(let y)): return x === y
        case (.builtin(let x), .builtin(let y)): return x.name == y.name
        default: return false
        }
    }
}
