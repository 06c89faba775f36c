import Engine
import Foundation

/// A runtime error on its way out: its diagnostic collects call sites as it unwinds.
struct RuntimeFailure: Error {
    var diagnostic: Diagnostic
    init(_ diagnostic: Diagnostic) { self.diagnostic = diagnostic }
}

/// How a statement ends: normally, or by moving control elsewhere.
enum Flow {
    case normal
    case breakLoop(SourceSpan)
    case continueLoop(SourceSpan)
    case returned(Value)
}

/// How a run ended.
public enum RunOutcome {
    /// The value of the last expression, if the code ended with one.
    case success(Value?)
    case syntaxErrors([Diagnostic])
    case failed(Diagnostic)

    /// The exit status of `cnn run`: 0 on success, 1 on a runtime error, 2 on a syntax error.
    public var exitStatus: Int32 {
        switch self {
        case .success: return 0
        case .failed: return 1
        case .syntaxErrors: return 2
        }
    }
}

/// The tree-walking interpreter. One interpreter is one session: its variables live from
/// run to run (a shell line, a notebook cell) until it is thrown away.
public final class Interpreter {
    public struct Options {
        /// How many statements, loop iterations and calls one run may take (nil: no limit),
        /// so that generated programs in tests always end.
        public var stepBudget: Int?
        /// Calls nested deeper than this stop with an error rather than overflow the stack.
        public var maximumCallDepth: Int

        /// Expressions and statements nested (through calls) deeper than this stop with an
        /// error: the interpreter recurses on the syntax tree, and the stack is finite.
        public var maximumEvaluationDepth: Int
        /// Lists nested deeper than this are refused when made.
        public var maximumListNesting: Int

        /// `CNN_MAX_STEPS`: the step budget of every run (a shell line, a cell, a script) in
        /// every front end, when it is set to a whole number above 0.
        public static let stepBudgetVariable = "CNN_MAX_STEPS"
        public static let environmentStepBudget: Int? = ProcessInfo.processInfo.environment[stepBudgetVariable]
            .flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }.flatMap { $0 > 0 ? $0 : nil }
        /// What is wrong with `CNN_MAX_STEPS`, if it is set to something that is no budget.
        public static var environmentStepBudgetProblem: String? {
            guard let raw = ProcessInfo.processInfo.environment[stepBudgetVariable], environmentStepBudget == nil else { return nil }
            return "\(stepBudgetVariable)=\(raw) is not a step budget; give a whole number above 0 (as in 10000000)"
        }

        public init(stepBudget: Int? = Options.environmentStepBudget, maximumCallDepth: Int = 120, maximumEvaluationDepth: Int = 1500, maximumListNesting: Int = 64) {
            self.stepBudget = stepBudget
            self.maximumCallDepth = maximumCallDepth
            self.maximumEvaluationDepth = maximumEvaluationDepth
            self.maximumListNesting = maximumListNesting
        }
    }

    public let registry: BuiltinRegistry
    public var sink: EventSink
    public let cancellation: CancellationFlag
    public var options: Options
    let globals = Environment()
    /// The session's random numbers: layers made without a seed draw from it, so a session
    /// replays the same way every time.
    var generator = SeededGenerator(seed: 0)
    private(set) var steps = 0
    private var callDepth = 0
    var evaluationDepth = 0
    /// Files being included, innermost last, to catch a file including itself.
    private var includeStack: [String] = []
    var nextProgressID = 0

    public init(sink: EventSink, registry: BuiltinRegistry = .standard(), options: Options = Options(),
                cancellation: CancellationFlag = CancellationFlag()) {
        self.sink = sink
        self.registry = registry
        self.options = options
        self.cancellation = cancellation
    }

    /// Defines (or replaces) a global variable, such as `args` for a script.
    public func define(_ name: String, _ value: Value) { globals.define(name, value) }

    /// The value of a global variable or builtin.
    public func value(named name: String) -> Value? {
        globals.lookup(name) ?? registry[name].map(Value.builtin)
    }

    /// Every global name and builtin name, for completion.
    public var visibleNames: [String] { Array(Set(globals.visibleNames + registry.names)).sorted() }

    func emit(_ event: Event) { sink.emit(event) }

    /// Parses and runs `file`; syntax errors stop it before anything runs. Every error is
    /// also emitted as an event. When `displayValues` is set, the value of every expression
    /// written on its own line at the top level (not inside a loop or function) is emitted for
    /// display, as a lecturer writing `T` or `allclose(y1, y2)` on a line expects to see it.
    @discardableResult
    public func run(_ file: SourceFile, displayValues: Bool = true) -> RunOutcome {
        let program = Parser.parse(file)
        if !program.diagnostics.isEmpty {
            for d in program.diagnostics { emit(.error(d)) }
            return .syntaxErrors(program.diagnostics)
        }
        return execute(program, displayValues: displayValues)
    }

    /// Runs parsed statements (the budget of steps starts afresh).
    @discardableResult
    public func execute(_ program: Program, displayValues: Bool = true) -> RunOutcome {
        steps = 0
        callDepth = 0
        evaluationDepth = 0
        do {
            let last = try executeTopLevel(program.statements, globals, display: displayValues)
            return .success(last)
        } catch let f as RuntimeFailure {
            emit(.error(f.diagnostic))
            return .failed(f.diagnostic)
        } catch {
            let d = Diagnostic(.runtime, "\(error)", at: program.statements.first?.span)
            emit(.error(d))
            return .failed(d)
        }
    }

    /// Runs statements at the top of a file; returns the value of a final expression statement,
    /// and with `display` emits the value of each expression statement as it runs.
    private func executeTopLevel(_ statements: [Stmt], _ env: Environment, display: Bool) throws -> Value? {
        var last: Value? = nil
        for (i, s) in statements.enumerated() {
            if case .expression(let e) = s.kind {
                try tick(s.span)
                let v = try evaluate(e, env)
                if display {
                    if case .none = v {} else { emit(.value(DisplayedValue(value: v, text: Display.text(v)))) }
                }
                if i == statements.count - 1 { last = v }
                continue
            }
            switch try execute(s, env) {
            case .normal: break
            case .breakLoop(let span): throw failure("'break' outside a loop", span)
            case .continueLoop(let span): throw failure("'continue' outside a loop", span)
            case .returned: throw failure("'return' outside a function", s.span)
            }
        }
        return last
    }

    // MARK: errors and limits

    static let interruptedMessage = "stopped here; every variable keeps the value it had"

    func failure(_ message: String, _ span: SourceSpan?) -> RuntimeFailure {
        RuntimeFailure(Diagnostic(.runtime, message, at: span))
    }

    /// Counts a step against the budget and stops here if cancellation was asked for.
    func tick(_ span: SourceSpan) throws {
        steps += 1
        if let budget = options.stepBudget, steps > budget {
            throw failure("the step budget of \(budget) steps is used up" + (budget == Options.environmentStepBudget ? " (\(Options.stepBudgetVariable))" : ""), span)
        }
        if cancellation.isCancelled { throw RuntimeFailure(Diagnostic(.interrupted, Interpreter.interruptedMessage, at: span)) }
    }

    // MARK: statements

    /// One level deeper into the tree; refuses past the limit rather than overflow the stack.
    func enter(_ span: SourceSpan) throws {
        evaluationDepth += 1
        if evaluationDepth > options.maximumEvaluationDepth {
            throw failure("the computation nests too deeply (more than \(options.maximumEvaluationDepth) levels of expressions and calls)", span)
        }
    }

    /// A list value, refused when it would nest too deeply (freeing a very deep list would
    /// itself recurse that deep).
    func makeList(_ xs: [Value], _ span: SourceSpan) throws -> Value {
        var deepest = 0
        for x in xs { if case .list = x { deepest = max(deepest, nesting(x, limit: options.maximumListNesting)) } }
        guard deepest < options.maximumListNesting else {
            throw failure("lists nest more than \(options.maximumListNesting) deep", span)
        }
        return .list(xs)
    }

    private func nesting(_ v: Value, limit: Int) -> Int {
        guard case .list(let xs) = v else { return 0 }
        guard limit > 0 else { return 1 }
        var deepest = 0
        for x in xs { if case .list = x { deepest = max(deepest, nesting(x, limit: limit - 1)) } }
        return 1 + deepest
    }

    func execute(_ s: Stmt, _ env: Environment) throws -> Flow {
        try enter(s.span)
        defer { evaluationDepth -= 1 }
        try tick(s.span)
        switch s.kind {
        case .expression(let e):
            _ = try evaluate(e, env)
        case .assign(let target, let op, let valueExpr):
            var value = try evaluate(valueExpr, env)
            if let op { value = try binary(op, try evaluate(target, env), value, s.span) }
            try assign(value, to: target, env)
        case .ifElse(let condition, let then, let otherwise):
            if try truth(try evaluate(condition, env), condition.span) { return try executeBlock(then, env) }
            if let otherwise { return try executeBlock(otherwise, env) }
        case .forIn(let name, let sequence, let body):
            return try forLoop(name, try evaluate(sequence, env), sequence.span, body, env)
        case .whileLoop(let condition, let body):
            while try truth(try evaluate(condition, env), condition.span) {
                try tick(s.span)
                switch try executeBlock(body, env) {
                case .breakLoop: return .normal
                case .returned(let v): return .returned(v)
                case .normal, .continueLoop: break
                }
            }
        case .function(let decl):
            env.define(decl.name ?? "", .function(Closure(decl, env)))
        case .returnValue(let e):
            return .returned(try e.map { try evaluate($0, env) } ?? .none)
        case .breakLoop: return .breakLoop(s.span)
        case .continueLoop: return .continueLoop(s.span)
        case .include(let pathExpr):
            try include(try evaluate(pathExpr, env), pathExpr.span, env)
        }
        return .normal
    }

    func executeBlock(_ statements: [Stmt], _ env: Environment) throws -> Flow {
        for s in statements {
            let flow = try execute(s, env)
            if case .normal = flow { continue }
            return flow
        }
        return .normal
    }

    private func forLoop(_ name: String, _ sequence: Value, _ span: SourceSpan, _ body: [Stmt], _ env: Environment) throws -> Flow {
        // Each element is produced only when it is needed: `for i in 0..1000000` allocates nothing.
        let count: Int
        let element: (Int) throws -> Value
        switch sequence {
        case .range(let a, let b):
            count = b < a ? 0 : b - a + 1
            element = { .number(Double(a + $0)) }
        case .list(let xs):
            count = xs.count
            element = { xs[$0] }
        case .string(let s):
            let chars = Array(s)
            count = chars.count
            element = { .string(String(chars[$0])) }
        case .tensor, .image:
            let t = try Conversions.variable(sequence)
            guard t.shape.count > 0 else { throw failure("cannot loop over a single number held in a tensor", span) }
            count = t.shape[0]
            element = { .tensor(try Engine.slice(t, [.at($0)])) }
        default:
            throw failure("cannot loop over \(sequence.describedType); loop over a range (0..9), a list or a tensor", span)
        }
        var i = 0
        while i < count {
            try tick(span)
            env.define(name, try element(i))
            switch try executeBlock(body, env) {
            case .breakLoop: return .normal
            case .returned(let v): return .returned(v)
            case .normal, .continueLoop: break
            }
            i += 1
        }
        return .normal
    }

    func truth(_ v: Value, _ span: SourceSpan) throws -> Bool {
        switch v {
        case .bool(let b): return b
        case .tensor, .image:
            if let t = v.tensorValue, let s = t.scalar { return s != 0 }
            throw failure("a tensor of shape \(Display.shape(v.tensorValue?.shape ?? [])) is not true or false; compare one element, or use all(...) or any(...)", span)
        default:
            throw failure("a condition must be true or false, got \(describeForError(v))", span)
        }
    }

    private func include(_ pathValue: Value, _ span: SourceSpan, _ env: Environment) throws {
        guard case .string(let path) = pathValue else { throw failure("include takes a file name as a string", span) }
        // Relative to the including file, as C's #include reads.
        let base = (span.file.name as NSString).deletingLastPathComponent
        let resolved = path.hasPrefix("/") || base.isEmpty ? path : (base as NSString).appendingPathComponent(path)
        guard !includeStack.contains(resolved) else { throw failure("'\(path)' includes itself", span) }
        guard includeStack.count < 16 else { throw failure("includes nest more than 16 deep", span) }
        guard let data = FileManager.default.contents(atPath: resolved), let text = String(data: data, encoding: .utf8) else {
            throw failure("cannot read '\(resolved)'", span)
        }
        let program = Parser.parse(SourceFile(name: resolved, text: text))
        if let first = program.diagnostics.first {
            for d in program.diagnostics.dropFirst() { emit(.error(d)) }
            var d = first
            d.callSites.append(span)
            throw RuntimeFailure(d)
        }
        includeStack.append(resolved)
        defer { includeStack.removeLast() }
        do { _ = try executeTopLevel(program.statements, env, display: false) }
        catch var f as RuntimeFailure {
            f.diagnostic.callSites.append(span)
            throw f
        }
    }

    // MARK: assignment

    func assign(_ value: Value, to target: Expr, _ env: Environment) throws {
        switch target.kind {
        case .name(let n):
            env.define(n, value)
        case .attribute(let baseExpr, let name):
            let base = try evaluate(baseExpr, env)
            try setAttribute(base, name, value, target.span)
        case .index(let baseExpr, let items):
            let container = try evaluate(baseExpr, env)
            let updated = try setIndex(container, items.map { try evaluateIndex($0, env, at: target.span) }, value, target.span)
            switch baseExpr.kind {
            case .name, .attribute, .index: try assign(updated, to: baseExpr, env)
            default: throw failure("cannot assign into this expression; assign it to a name first", baseExpr.span)
            }
        default:
            throw failure("cannot assign to this expression", target.span)
        }
    }

    // MARK: calls

    /// Calls any callable value with evaluated arguments.
    func call(_ callee: Value, _ positional: [(Value, SourceSpan)], _ keywords: [(String, Value, SourceSpan)], _ span: SourceSpan) throws -> Value {
        try tick(span)
        switch callee {
        case .builtin(let b): return try callBuiltin(b, positional, keywords, span)
        case .function(let f): return try callClosure(f, positional, keywords, span)
        case .layer, .network:
            guard positional.count == 1, keywords.isEmpty else {
                throw failure("a \(callee.typeName) is called on one tensor, as in \(callee.typeName == "layer" ? "net.conv1(x)" : "net(x)")", span)
            }
            return try withEngineErrors(span, context: nil) {
                let x = try Conversions.variable(positional[0].0)
                let ctx = forwardContext()
                if case .layer(let l) = callee { return .tensor(try NetworkCalls.apply(l, to: x, context: ctx)) }
                if case .network(let n) = callee { return .tensor(try NetworkCalls.apply(n, to: x, upTo: nil, normalize: false, context: ctx)) }
                return .none
            }
        default:
            throw failure("\(callee.describedType) cannot be called", span)
        }
    }

    private func callBuiltin(_ b: Builtin, _ positional: [(Value, SourceSpan)], _ keywords: [(String, Value, SourceSpan)], _ span: SourceSpan) throws -> Value {
        let args = try b.bind(positional, keywords, at: span)
        let context = CallContext(interpreter: self, span: span)
        var errorSpan = span
        return try withEngineErrors(span, context: b.name) {
            do { return try b.body(args, context) }
            catch let e as ScriptError {
                if let a = e.argument, let s = args.spans[a] { errorSpan = s }
                throw failure(e.message, errorSpan)
            }
        }
    }

    /// Runs `body`, turning engine and file errors into runtime failures at `span`.
    func withEngineErrors<T>(_ span: SourceSpan, context name: String?, _ body: () throws -> T) throws -> T {
        let prefix = name.map { "\($0): " } ?? ""
        do { return try body() }
        catch let f as RuntimeFailure { throw f }
        catch EngineError.cancelled { throw RuntimeFailure(Diagnostic(.interrupted, Interpreter.interruptedMessage, at: span)) }
        catch let e as ScriptError { throw failure(e.message, span) }
        catch { throw failure(prefix + "\(error)", span) }
    }

    private func callClosure(_ f: Closure, _ positional: [(Value, SourceSpan)], _ keywords: [(String, Value, SourceSpan)], _ span: SourceSpan) throws -> Value {
        guard callDepth < options.maximumCallDepth else {
            throw failure("calls nest more than \(options.maximumCallDepth) deep; does a function call itself without end?", span)
        }
        callDepth += 1
        defer { callDepth -= 1 }
        let decl = f.declaration
        let env = Environment(parent: f.environment)
        let params = decl.parameters
        guard positional.count <= params.count else {
            throw failure("\(f.name) takes \(params.count) argument\(params.count == 1 ? "" : "s"), got \(positional.count)", span)
        }
        var bound = Set<String>()
        for (p, (v, _)) in zip(params, positional) { env.define(p.name, v); bound.insert(p.name) }
        for (label, v, at) in keywords {
            guard params.contains(where: { $0.name == label }) else {
                let near = nearest(label, in: params.map(\.name)).map { "; did you mean '\($0)'?" } ?? ""
                throw failure("\(f.name) has no parameter '\(label)'\(near)", at)
            }
            guard bound.insert(label).inserted else { throw failure("\(f.name): argument '\(label)' is given twice", at) }
            env.define(label, v)
        }
        do {
            for p in params where !bound.contains(p.name) {
                guard let d = p.defaultValue else { throw failure("\(f.name): missing argument '\(p.name)'", span) }
                env.define(p.name, try evaluate(d, env))
            }
            switch decl.body {
            case .expression(let e): return try evaluate(e, env)
            case .block(let statements): return try runBody(statements, env)
            }
        } catch var failure as RuntimeFailure {
            failure.diagnostic.callSites.append(span)
            throw failure
        }
    }

    /// A function body's result: the value of `return`, else of a final expression statement.
    private func runBody(_ statements: [Stmt], _ env: Environment) throws -> Value {
        for (i, s) in statements.enumerated() {
            if i == statements.count - 1, case .expression(let e) = s.kind {
                try tick(s.span)
                return try evaluate(e, env)
            }
            switch try execute(s, env) {
            case .normal: continue
            case .returned(let v): return v
            case .breakLoop(let at): throw failure("'break' outside a loop", at)
            case .continueLoop(let at): throw failure("'continue' outside a loop", at)
            }
        }
        return .none
    }

    /// A forward-pass context that stops when this session is cancelled.
    func forwardContext() -> ForwardContext {
        let flag = cancellation
        return ForwardContext(isCancelled: { flag.isCancelled })
    }
}
