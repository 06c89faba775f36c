import Foundation
import Script

/// What the worker thread hands back to the kernel's main thread, in order.
enum KernelOutgoing {
    /// A message to publish on iopub, in reply to `parent`.
    case publish(type: String, content: [String: Any], parent: [String: Any])
    /// An execution finished.
    case finished(ExecutionResult)
}

struct ExecutionResult {
    var request: KernelMessage
    var executionCount: Int
    var error: ErrorOutput?
    var traceback: [String]
}

/// The queue from the worker to the main thread, which alone touches the sockets; a byte on
/// a pipe wakes the main thread's poll.
final class KernelOutbox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [KernelOutgoing] = []
    let wakeDescriptor: Int32

    init(wakeDescriptor: Int32) { self.wakeDescriptor = wakeDescriptor }

    func push(_ item: KernelOutgoing) {
        lock.lock()
        // Text printed in a tight loop goes out as one stream message, not thousands.
        if case .publish("stream", let content, let parent) = item, case .publish("stream", let previous, let previousParent)? = items.last,
           previous["name"] as? String == content["name"] as? String,
           (previousParent["msg_id"] as? String) == (parent["msg_id"] as? String),
           let a = previous["text"] as? String, let b = content["text"] as? String {
            var merged = previous
            merged["text"] = a + b
            items[items.count - 1] = .publish(type: "stream", content: merged, parent: parent)
        } else {
            items.append(item)
        }
        lock.unlock()
        var byte: UInt8 = UInt8(ascii: "w")
        _ = write(wakeDescriptor, &byte, 1)
    }

    func drain() -> [KernelOutgoing] {
        lock.lock()
        defer { items = []; lock.unlock() }
        return items
    }
}

/// Runs code on a thread of its own (with a large stack), so the main thread keeps serving
/// the control channel, heartbeats and interrupts while a cell computes.
final class KernelWorker: @unchecked Sendable {
    struct Job {
        var request: KernelMessage
        var code: String
        var silent: Bool
        var executionCount: Int
    }

    let session: Session
    private let sink: KernelEventSink
    private let outbox: KernelOutbox
    private let condition = NSCondition()
    private var job: Job?
    /// The cap on resident memory (CNN_KERNEL_MEMORY), if one is set.
    let memoryCap: MemoryCap?

    init(outbox: KernelOutbox, cancellation: CancellationFlag, memoryCap: MemoryCap? = nil) {
        self.outbox = outbox
        self.memoryCap = memoryCap
        self.sink = KernelEventSink(outbox: outbox, memoryCap: memoryCap)
        self.session = Session(sink: sink, cancellation: cancellation)
        let thread = Thread { [unowned self] in self.loop() }
        thread.stackSize = 512 << 20
        thread.name = "cnn kernel worker"
        thread.start()
    }

    func submit(_ job: Job) {
        condition.lock()
        self.job = job
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while job == nil { condition.wait() }
            let current = job!
            job = nil
            condition.unlock()
            run(current)
        }
    }

    private func run(_ job: Job) {
        sink.begin(parent: job.request.header, executionCount: job.executionCount, silent: job.silent)
        memoryCap?.begin()
        let outcome = session.run(job.code, name: "In[\(job.executionCount)]")
        let passedCap = memoryCap?.end()
        sink.end()
        var result = ExecutionResult(request: job.request, executionCount: job.executionCount, error: nil, traceback: [])
        switch outcome {
        case .success: break
        case .failed(let d):
            let (error, shown) = KernelEventSink.memoryError(d, cap: memoryCap, resident: passedCap)
            result.error = error
            result.traceback = error.traceback(colored: true, diagnostic: shown)
        case .syntaxErrors(let ds):
            if let d = ds.first {
                result.error = ErrorOutput(d)
                result.traceback = ds.flatMap { ErrorOutput($0).traceback(colored: true, diagnostic: $0) }
            }
        }
        session.cancellation.reset()
        outbox.push(.finished(result))
    }
}

/// Turns the interpreter's events into iopub messages: text as stream, values and pictures
/// as display_data (the last value as execute_result), errors as error, and progress as a
/// display that updates in place (display_id) a few times a second.
final class KernelEventSink: EventSink {
    private let outbox: KernelOutbox
    private var parent: [String: Any] = [:]
    private var executionCount = 0
    private var silent = false
    private var pendingValue: DisplayedValue?
    private var progressShown: [Int: (displayID: String, last: Date)] = [:]
    private let memoryCap: MemoryCap?

    init(outbox: KernelOutbox, memoryCap: MemoryCap? = nil) {
        self.outbox = outbox
        self.memoryCap = memoryCap
    }

    /// An interruption caused by passing the memory cap, told as a MemoryError at the place
    /// where the cell stopped; any other error as it is.
    static func memoryError(_ d: Diagnostic, cap: MemoryCap?, resident: Int?) -> (ErrorOutput, Diagnostic) {
        guard d.kind == .interrupted, let cap, let resident else { return (ErrorOutput(d), d) }
        let shown = cap.diagnostic(resident: resident, stoppedAt: d.span)
        var error = ErrorOutput(shown)
        error.name = MemoryCap.errorName
        return (error, shown)
    }

    func begin(parent: [String: Any], executionCount: Int, silent: Bool) {
        self.parent = parent
        self.executionCount = executionCount
        self.silent = silent
        pendingValue = nil
        progressShown = [:]
    }

    func end() {
        if let v = pendingValue { publish(.data(DisplayData(text: v.text), isResult: true)) }
        pendingValue = nil
    }

    private func publish(_ output: CellOutput, diagnostic: Diagnostic? = nil) {
        guard !silent else { return }
        let (type, content) = output.jupyterMessage(executionCount: executionCount, diagnostic: diagnostic)
        outbox.push(.publish(type: type, content: content, parent: parent))
    }

    func emit(_ event: Event) {
        if case .progress(let p) = event { progress(p); return }
        if let v = pendingValue { publish(.data(DisplayData(text: v.text), isResult: false)) }
        pendingValue = nil
        switch event {
        case .text(let t): publish(.stream(name: "stdout", text: t))
        case .value(let v): pendingValue = v
        case .image(let image):
            do { publish(.data(try DisplayData(image: image), isResult: false)) }
            catch { publish(.stream(name: "stderr", text: "error: could not encode a picture: \(error)\n")) }
        case .error(let d):
            let (error, shown) = KernelEventSink.memoryError(d, cap: memoryCap, resident: memoryCap?.passed)
            publish(.error(error), diagnostic: shown)
        case .progress: break
        }
    }

    private func progress(_ p: ProgressUpdate) {
        guard !silent else { return }
        let now = Date()
        let text = EventPrinter.bar(p) + (p.finished ? " done" : "")
        if let shown = progressShown[p.id] {
            guard p.finished || now.timeIntervalSince(shown.last) >= 0.1 else { return }
            progressShown[p.id] = (shown.displayID, now)
            outbox.push(.publish(type: "update_display_data", content: [
                "data": ["text/plain": text], "metadata": [String: Any](), "transient": ["display_id": shown.displayID],
            ], parent: parent))
        } else {
            let id = "cnn-progress-\(UUID().uuidString)"
            progressShown[p.id] = (id, now)
            outbox.push(.publish(type: "display_data", content: [
                "data": ["text/plain": text], "metadata": [String: Any](), "transient": ["display_id": id],
            ], parent: parent))
        }
    }
}
