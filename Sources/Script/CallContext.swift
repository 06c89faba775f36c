import Engine

/// What a builtin may do besides compute: emit events, call back into the language, report
/// progress, stop when asked, and draw from the session's random numbers.
public final class CallContext {
    let interpreter: Interpreter
    /// The call being run, for messages.
    public let span: SourceSpan

    init(interpreter: Interpreter, span: SourceSpan) {
        self.interpreter = interpreter
        self.span = span
    }

    public var registry: BuiltinRegistry { interpreter.registry }
    public var cancellation: CancellationFlag { interpreter.cancellation }

    public func emit(_ event: Event) { interpreter.emit(event) }

    /// Emits a line of text.
    public func print(_ line: String) { emit(.text(line + "\n")) }

    /// Throws the interruption if the session was asked to stop: long loops call this once a step.
    public func checkCancellation() throws {
        if cancellation.isCancelled { throw EngineError.cancelled }
    }

    /// A context for a forward pass that stops when the session is cancelled.
    public func forwardContext(reluRule: ReLURule = .plain, training: Bool = false) -> ForwardContext {
        let c = interpreter.forwardContext()
        c.reluRule = reluRule
        c.training = training
        return c
    }

    /// Calls a function value (a user function, a builtin, a layer or a network) with arguments.
    /// Errors inside it show this call as where it was called from.
    public func call(_ function: Value, _ arguments: [Value], keywords: [(String, Value)] = []) throws -> Value {
        try interpreter.call(function, arguments.map { ($0, span) }, keywords.map { ($0.0, $0.1, span) }, span)
    }

    /// Draws from the session's generator (layers and random tensors made without a seed).
    public func withGenerator<T>(_ body: (inout SeededGenerator) throws -> T) rethrows -> T {
        try body(&interpreter.generator)
    }

    /// A progress reporter for work of `total` steps (nil when unknown).
    public func progress(_ label: String, total: Int?) -> ProgressReporter {
        interpreter.nextProgressID += 1
        return ProgressReporter(id: interpreter.nextProgressID, label: label, total: total, context: self)
    }

    /// A value's text as a cell result shows it.
    public func display(_ v: Value) -> String { Display.text(v) }
}

/// Emits progress updates for one piece of work, at most about a hundred, however many steps.
public final class ProgressReporter {
    public let id: Int
    public let label: String
    public let total: Int?
    private let context: CallContext
    public private(set) var completed = 0
    private var lastEmitted = -1
    private var done = false

    init(id: Int, label: String, total: Int?, context: CallContext) {
        self.id = id
        self.label = label
        self.total = total
        self.context = context
        send(status: "")
    }

    private func send(status: String, finished: Bool = false) {
        lastEmitted = completed
        context.emit(.progress(ProgressUpdate(id: id, label: label, completed: completed, total: total, finished: finished, status: status)))
    }

    /// Counts `steps` more steps done.
    public func advance(by steps: Int = 1, status: String = "") {
        completed += steps
        let every = max(1, (total ?? 100) / 100)
        if completed - lastEmitted >= every || completed == total { send(status: status) }
    }

    /// Ends the bar, whether the work completed or stopped early. Safe to call twice.
    public func finish(status: String = "") {
        guard !done else { return }
        done = true
        send(status: status, finished: true)
    }

    deinit { finish() }
}
