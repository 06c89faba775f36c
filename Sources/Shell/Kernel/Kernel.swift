import CZMQ
import Foundation
import Script

// SIGINT (Jupyter's "signal" interrupt, or Ctrl-C in the terminal that started the kernel)
// writes a byte to the kernel's wake-up pipe; the main loop decides what it interrupts.
nonisolated(unsafe) private var interruptPipe: Int32 = -1

/// A Jupyter kernel speaking the messaging protocol 5.3 over ZeroMQ: shell and control
/// (ROUTER) for requests, iopub (PUB) for outputs and status, stdin (ROUTER, unused: the
/// language reads no input), heartbeat (REP, echoes). Messages are signed with HMAC; one
/// whose signature is wrong is dropped.
///
/// Code runs on a worker thread; the main thread alone touches the sockets, so it keeps
/// answering heartbeats, interrupts and shutdowns while a cell computes. Shell requests that
/// need the session (execute, complete, inspect) wait while it is busy, in order.
public final class Kernel {
    let info: ConnectionInfo
    let signer: MessageSigner
    let implementationVersion: String
    let sessionID = UUID().uuidString
    private let context: ZMQContext
    private let shell, control, stdin, iopub, heartbeat: ZMQSocket
    private let wakeRead: Int32, wakeWrite: Int32
    private let outbox: KernelOutbox
    private let cancellation = CancellationFlag()
    private let worker: KernelWorker
    private var busy = false
    private var queued: [(KernelMessage, ZMQSocket)] = []
    private var executionCount = 0
    private var history: [(count: Int, code: String)] = []
    private var running = true
    private let parentProcess = getppid()
    /// Messages dropped since the kernel started: signed with another key (or not at all), and
    /// frames that are no Jupyter message. Both are in the kernel_info reply and the log at the end.
    private(set) var droppedForSignature = 0
    private(set) var droppedMalformed = 0
    /// The largest message the kernel takes: a peer sending a larger frame is disconnected by
    /// ZeroMQ, and a message whose frames are larger together is dropped and counted as malformed.
    static let largestMessage: Int64 = 256 << 20
    /// Where diagnostics of the kernel itself go (Jupyter shows the kernel's stderr in its log).
    var log: (String) -> Void = { FileHandle.standardError.write(Data(("cnn kernel: " + $0 + "\n").utf8)) }

    public init(connectionFile: String, implementationVersion: String) throws {
        info = try ConnectionInfo.read(path: connectionFile)
        signer = try MessageSigner(key: info.key, scheme: info.signatureScheme)
        self.implementationVersion = implementationVersion
        context = try ZMQContext()
        shell = try ZMQSocket(context, type: ZMQ_ROUTER, name: "shell")
        control = try ZMQSocket(context, type: ZMQ_ROUTER, name: "control")
        stdin = try ZMQSocket(context, type: ZMQ_ROUTER, name: "stdin")
        iopub = try ZMQSocket(context, type: ZMQ_PUB, name: "iopub")
        heartbeat = try ZMQSocket(context, type: ZMQ_REP, name: "heartbeat")
        for socket in [shell, control, stdin, heartbeat] { socket.limitMessageSize(Kernel.largestMessage) }
        try shell.bind(try info.endpoint(info.shellPort))
        try control.bind(try info.endpoint(info.controlPort))
        try stdin.bind(try info.endpoint(info.stdinPort))
        try iopub.bind(try info.endpoint(info.iopubPort))
        try heartbeat.bind(try info.endpoint(info.hbPort))
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw NotebookError("cannot make a pipe: \(String(cString: strerror(errno)))") }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        _ = fcntl(wakeRead, F_SETFL, fcntl(wakeRead, F_GETFL) | O_NONBLOCK)
        _ = fcntl(wakeWrite, F_SETFL, fcntl(wakeWrite, F_GETFL) | O_NONBLOCK)
        outbox = KernelOutbox(wakeDescriptor: wakeWrite)
        worker = KernelWorker(outbox: outbox, cancellation: cancellation,
                              memoryCap: try MemoryCap.fromEnvironment(cancellation: cancellation))
    }

    /// Serves until a shutdown request (or the process that started it is gone); returns the exit status.
    public func serve() -> Int32 {
        interruptPipe = wakeWrite
        signal(SIGINT) { _ in
            var byte = UInt8(ascii: "i")
            _ = write(interruptPipe, &byte, 1)
        }
        defer { signal(SIGINT, SIG_DFL) }
        publishStatus("starting", parent: [:])
        while running {
            let ready: [Bool]
            do { ready = try zmqPoll(sockets: [control, shell, heartbeat, stdin], descriptors: [wakeRead], timeout: 1000) }
            catch { log("\(error)"); return 1 }
            if ready[4] { wake() }
            if ready[2] { echoHeartbeats() }
            if ready[0] { receiveAll(control) }
            if ready[1] { receiveAll(shell) }
            if ready[3] { while (try? stdin.receive()) != nil {} }
            serveQueue()
            // Jupyter kills its kernels, but a kernel whose parent died unexpectedly ends itself.
            if parentProcess != 1, getppid() != parentProcess { log("the process that started the kernel is gone; stopping"); running = false }
        }
        if droppedForSignature + droppedMalformed > 0 {
            log("dropped \(droppedForSignature) message(s) with a bad signature and \(droppedMalformed) malformed one(s)")
        }
        for socket in [shell, control, stdin, iopub, heartbeat] { socket.close() }
        context.terminate()
        return 0
    }

    // MARK: receiving

    private func wake() {
        var buffer = [UInt8](repeating: 0, count: 256)
        var interrupted = false
        while true {
            let n = read(wakeRead, &buffer, buffer.count)
            if n <= 0 { break }
            if buffer[0..<n].contains(UInt8(ascii: "i")) { interrupted = true }
        }
        if interrupted, busy { cancellation.cancel() }
        for item in outbox.drain() {
            switch item {
            case .publish(let type, let content, let parent): publish(type, content, parent: parent)
            case .finished(let result): finish(result)
            }
        }
    }

    private func echoHeartbeats() {
        while let frames = try? heartbeat.receive() { try? heartbeat.send(frames) }
    }

    private func receiveAll(_ socket: ZMQSocket) {
        while true {
            let frames: [[UInt8]]
            do {
                guard let f = try socket.receive() else { return }
                frames = f
            } catch let error as OversizedMessage {
                drop(error, on: socket, badSignature: false)
                continue
            } catch {
                log("\(error)")
                return
            }
            let message: KernelMessage
            do { message = try KernelMessage(frames: frames, signer: signer) }
            catch {
                drop(error, on: socket, badSignature: (error as? WireError)?.isBadSignature == true)
                continue
            }
            if socket === control { handleControl(message) } else { handleShell(message, on: socket) }
        }
    }

    /// Counts a dropped message; logs it the first few times and then every thousandth, so a
    /// flood of garbage cannot fill the log.
    private func drop(_ error: Error, on socket: ZMQSocket, badSignature: Bool) {
        if badSignature { droppedForSignature += 1 } else { droppedMalformed += 1 }
        let count = badSignature ? droppedForSignature : droppedMalformed
        if count <= 5 || count % 1000 == 0 {
            log("dropped a message on \(socket.name): \(error) (\(count) so far\(count == 5 ? "; further ones are counted, and logged every thousandth" : ""))")
        }
    }

    // MARK: sending

    private func header(_ type: String) -> [String: Any] {
        ["msg_id": UUID().uuidString, "session": sessionID, "username": "cnn", "date": KernelMessage.timestamp(),
         "msg_type": type, "version": KernelMessage.protocolVersion]
    }

    private func reply(_ request: KernelMessage, on socket: ZMQSocket, _ content: [String: Any], type: String? = nil) {
        let replyType = type ?? (request.type.hasSuffix("_request") ? String(request.type.dropLast("_request".count)) + "_reply" : request.type + "_reply")
        let message = KernelMessage(identities: request.identities, header: header(replyType), parentHeader: request.header, content: content)
        do { try socket.send(try message.frames(signer: signer)) } catch { log("cannot send \(replyType): \(error)") }
    }

    private func publish(_ type: String, _ content: [String: Any], parent: [String: Any]) {
        let message = KernelMessage(identities: [Array("kernel.\(sessionID).\(type)".utf8)], header: header(type), parentHeader: parent, content: content)
        do { try iopub.send(try message.frames(signer: signer)) } catch { log("cannot publish \(type): \(error)") }
    }

    private func publishStatus(_ state: String, parent: [String: Any]) {
        publish("status", ["execution_state": state], parent: parent)
    }

    // MARK: control

    private func handleControl(_ m: KernelMessage) {
        publishStatus("busy", parent: m.header)
        switch m.type {
        case "interrupt_request":
            if busy { cancellation.cancel() }
            reply(m, on: control, ["status": "ok"])
        case "shutdown_request":
            shutdown(m, on: control)
        case "kernel_info_request":
            reply(m, on: control, kernelInfo)
        default:
            unknown(m, on: control)
        }
        publishStatus("idle", parent: m.header)
    }

    private func shutdown(_ m: KernelMessage, on socket: ZMQSocket) {
        let restart = m.content["restart"] as? Bool ?? false
        if busy { cancellation.cancel() }
        reply(m, on: socket, ["status": "ok", "restart": restart])
        publish("shutdown_reply", ["status": "ok", "restart": restart], parent: m.header)
        running = false
    }

    private func unknown(_ m: KernelMessage, on socket: ZMQSocket) {
        if m.type == "comm_open", let id = m.content["comm_id"] as? String {
            // No comm targets exist: close it at once, as Jupyter kernels do for unknown targets.
            publish("comm_close", ["comm_id": id, "data": [String: Any]()], parent: m.header)
            return
        }
        guard m.type.hasSuffix("_request") else { return }  // comm_msg, comm_close, input_reply: no reply is due
        reply(m, on: socket, ["status": "error", "ename": "UnknownRequest", "evalue": "cnnlab does not answer \(m.type)", "traceback": [String]()])
    }

    // MARK: shell

    private func handleShell(_ m: KernelMessage, on socket: ZMQSocket) {
        switch m.type {
        case "execute_request", "complete_request", "inspect_request":
            // These need the session, which the worker owns while it runs.
            queued.append((m, socket))
        default:
            publishStatus("busy", parent: m.header)
            answerImmediately(m, on: socket)
            publishStatus("idle", parent: m.header)
        }
    }

    private func answerImmediately(_ m: KernelMessage, on socket: ZMQSocket) {
        switch m.type {
        case "kernel_info_request": reply(m, on: socket, kernelInfo)
        case "is_complete_request": reply(m, on: socket, Kernel.isComplete(m.content["code"] as? String ?? ""))
        case "history_request": reply(m, on: socket, historyReply(m.content))
        case "comm_info_request": reply(m, on: socket, ["status": "ok", "comms": [String: Any]()])
        case "shutdown_request": shutdown(m, on: socket)
        default: unknown(m, on: socket)
        }
    }

    private func serveQueue() {
        while !busy, running, !queued.isEmpty {
            let (m, socket) = queued.removeFirst()
            switch m.type {
            case "execute_request": execute(m, on: socket)
            case "complete_request":
                publishStatus("busy", parent: m.header)
                let code = m.content["code"] as? String ?? ""
                let cursor = m.content["cursor_pos"] as? Int ?? code.unicodeScalars.count
                let r = worker.session.completer.complete(code, cursor: cursor)
                reply(m, on: socket, ["status": "ok", "matches": r.matches, "cursor_start": r.start, "cursor_end": r.end, "metadata": [String: Any]()])
                publishStatus("idle", parent: m.header)
            case "inspect_request":
                publishStatus("busy", parent: m.header)
                let code = m.content["code"] as? String ?? ""
                let cursor = m.content["cursor_pos"] as? Int ?? code.unicodeScalars.count
                if let text = worker.session.completer.help(code, cursor: cursor) {
                    reply(m, on: socket, ["status": "ok", "found": true, "data": ["text/plain": text], "metadata": [String: Any]()])
                } else {
                    reply(m, on: socket, ["status": "ok", "found": false, "data": [String: Any](), "metadata": [String: Any]()])
                }
                publishStatus("idle", parent: m.header)
            default: break
            }
        }
    }

    private func execute(_ m: KernelMessage, on socket: ZMQSocket) {
        let code = m.content["code"] as? String ?? ""
        let silent = m.content["silent"] as? Bool ?? false
        let storeHistory = !silent && (m.content["store_history"] as? Bool ?? true)
        publishStatus("busy", parent: m.header)
        // As IPython counts: only executions kept in the history take a number of their own.
        if storeHistory { executionCount += 1 }
        if storeHistory { history.append((executionCount, code)) }
        if !silent { publish("execute_input", ["code": code, "execution_count": executionCount], parent: m.header) }
        busy = true
        shellOfRunning = socket
        worker.submit(.init(request: m, code: code, silent: silent, executionCount: executionCount))
    }

    private var shellOfRunning: ZMQSocket?

    private func finish(_ r: ExecutionResult) {
        busy = false
        // An interrupt that came while the execution was ending is for nothing now; the next
        // execution starts clear. (Only this thread sets the flag, and only while busy.)
        cancellation.reset()
        let socket = shellOfRunning ?? shell
        var content: [String: Any] = ["execution_count": r.executionCount]
        if let e = r.error {
            content["status"] = "error"
            content["ename"] = e.name
            content["evalue"] = e.message
            content["traceback"] = r.traceback
        } else {
            content["status"] = "ok"
            content["user_expressions"] = [String: Any]()
            content["payload"] = [Any]()
        }
        reply(r.request, on: socket, content)
        publishStatus("idle", parent: r.request.header)
        // After an error, executions already waiting are aborted, as Jupyter kernels do, so a
        // notebook run with "run all" stops at the failing cell.
        if r.error != nil, r.request.content["stop_on_error"] as? Bool ?? true {
            let waiting = queued
            queued = []
            for (m, s) in waiting {
                if m.type == "execute_request" {
                    publishStatus("busy", parent: m.header)
                    reply(m, on: s, ["status": "aborted", "execution_count": executionCount])
                    publishStatus("idle", parent: m.header)
                } else {
                    queued.append((m, s))
                }
            }
        }
    }

    // MARK: replies

    var kernelInfo: [String: Any] {
        var language = KernelSpec.languageInfo
        language["version"] = implementationVersion
        return [
            "status": "ok",
            "protocol_version": KernelMessage.protocolVersion,
            "implementation": "cnnlab",
            "implementation_version": implementationVersion,
            "language_info": language,
            "banner": "cnnlab \(implementationVersion): convolutional networks you can take apart. help() lists the builtins, %help the magics.",
            "help_links": [[String: Any]](),
            "debugger": false,
            // Not in the protocol; Jupyter ignores it. What the kernel refused so far.
            "cnnlab_dropped": ["bad_signature": droppedForSignature, "malformed": droppedMalformed],
        ]
    }

    /// complete, incomplete (with the indent for the next line) or invalid.
    static func isComplete(_ code: String) -> [String: Any] {
        if InputCompleteness.needsMore(code) {
            let s = Array(code.unicodeScalars)
            let braces = CodeScanner.openBrackets(s).filter { $0.bracket == "{" }.count
            return ["status": "incomplete", "indent": String(repeating: "    ", count: braces)]
        }
        let trimmed = code.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("%") || Session.helpTopic(trimmed) != nil { return ["status": "complete"] }
        let program = Parser.parse(SourceFile(name: "<input>", text: code))
        return ["status": program.diagnostics.isEmpty ? "complete" : "invalid"]
    }

    private func historyReply(_ content: [String: Any]) -> [String: Any] {
        let access = content["hist_access_type"] as? String ?? "tail"
        let withOutput = content["output"] as? Bool ?? false
        var entries = history
        switch access {
        case "tail":
            let n = max(0, content["n"] as? Int ?? 10)
            entries = Array(entries.suffix(n))
        case "range":
            let start = content["start"] as? Int ?? 0, stop = content["stop"] as? Int ?? Int.max
            entries = entries.filter { $0.count >= start && $0.count < stop }
        case "search":
            let pattern = content["pattern"] as? String ?? "*"
            entries = entries.filter { fnmatch(pattern, $0.code, 0) == 0 }
            if let n = content["n"] as? Int, n > 0 { entries = Array(entries.suffix(n)) }
        default:
            entries = []
        }
        let items: [[Any]] = entries.map { [0, $0.count, withOutput ? [$0.code, NSNull()] as [Any] : $0.code] }
        return ["status": "ok", "history": items]
    }
}
