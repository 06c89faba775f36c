@preconcurrency import CReadline
import Foundation
import Script

// readline's callback interface calls a C function with each finished line; it can capture
// nothing, so it leaves the line here for the loop to pick up.
nonisolated(unsafe) private var finishedLine: String?
nonisolated(unsafe) private var reachedEndOfInput = false

private let lineHandler: @convention(c) (UnsafeMutablePointer<CChar>?) -> Void = { line in
    // Stop readline from drawing the next prompt before the line's output is printed.
    rl_callback_handler_remove()
    if let line {
        finishedLine = String(cString: line)
        free(line)
    } else {
        reachedEndOfInput = true
    }
}

/// The interactive shell: `cnn` with no arguments. When stdin is not a terminal, it reads
/// stdin as a script instead (pictures go to ./cnn-out).
public func startShell() -> Int32 {
    if isatty(0) == 0 {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        let text = String(decoding: data, as: UTF8.self)
        let runner = ScriptRunner(outputDirectory: "cnn-out", standardOutput: DescriptorOutput.standardOutput,
                                  standardError: DescriptorOutput.standardError, showsProgress: isatty(2) != 0)
        let interrupts = InterruptHandler.install(runner.cancellation)
        defer { interrupts.uninstall() }
        return withLargeStack { runner.run(text: text, name: "<stdin>", arguments: []) }
    }
    return InteractiveShell().run()
}

/// A readline prompt over one interpreter session.
final class InteractiveShell {
    static let prompt = "cnn> "
    static let continuationPrompt = "...> "

    let cancellation = CancellationFlag()
    let history = HistoryFile(path: HistoryFile.defaultPath)
    private var lastEntry: String?
    private var pending = ""
    private var entryNumber = 0
    private var pictureCount = 0
    private let pictureFolder = (NSTemporaryDirectory() as NSString).appendingPathComponent("cnn-shell-\(getpid())")
    private lazy var printer = EventPrinter(output: DescriptorOutput.standardOutput, errors: DescriptorOutput.standardError,
                                            showsProgress: true) { [unowned self] image in
        pictureCount += 1
        let path = (pictureFolder as NSString).appendingPathComponent("picture-\(pictureCount).png")
        try writePicture(image, to: path)
        return path
    }
    private lazy var interpreter = Interpreter(sink: printer, cancellation: cancellation)

    func run() -> Int32 {
        rl_readline_name = UnsafePointer(strdup("cnn"))
        rl_catch_signals = 0  // Ctrl-C is ours: it clears the line or stops a computation
        for entry in history.load() { add_history(entry); lastEntry = entry }
        let interrupts = InterruptHandler.install(cancellation, exitOnRepeat: false)
        defer { interrupts.uninstall() }
        DescriptorOutput.standardOutput.write("cnnlab: help() lists the builtins; Ctrl-C stops a computation, Ctrl-D leaves.\n")

        rl_callback_handler_install(InteractiveShell.prompt, lineHandler)
        while true {
            var descriptor = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, -1)
            if ready < 0 {
                guard errno == EINTR else { break }
                if cancellation.isCancelled { clearLineAfterInterrupt() }
                continue
            }
            rl_callback_read_char()
            if reachedEndOfInput { break }
            if let line = finishedLine {
                finishedLine = nil
                accept(line)
                rl_callback_handler_install(pending.isEmpty ? InteractiveShell.prompt : InteractiveShell.continuationPrompt, lineHandler)
            }
        }
        rl_callback_handler_remove()
        DescriptorOutput.standardOutput.write("\n")
        return 0
    }

    /// Ctrl-C at the prompt: forget the line (and any unfinished block) and prompt afresh.
    private func clearLineAfterInterrupt() {
        cancellation.reset()
        pending = ""
        rl_free_line_state()
        rl_callback_sigcleanup()
        rl_replace_line("", 0)
        rl_crlf()
        rl_set_prompt(InteractiveShell.prompt)
        rl_on_new_line()
        rl_redisplay()
    }

    /// A finished line: waits for more if the input is unfinished, else runs it.
    private func accept(_ line: String) {
        pending += pending.isEmpty ? line : "\n" + line
        if InputCompleteness.needsMore(pending) { return }
        let entry = pending
        pending = ""
        if HistoryFile.shouldRecord(entry, after: lastEntry) {
            add_history(entry)
            lastEntry = entry
            try? history.append(entry)
        }
        guard !entry.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return }
        entryNumber += 1
        let source = SourceFile(name: "<input \(entryNumber)>", text: entry)
        cancellation.reset()
        let interpreter = self.interpreter
        _ = withLargeStack { interpreter.run(source) }
        cancellation.reset()
    }
}
