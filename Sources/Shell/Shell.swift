@preconcurrency import CReadline
import Foundation
import Script

// readline's callback interface calls C functions, which can capture nothing: the finished
// line is left here for the loop to pick up, and completion finds the shell here.
nonisolated(unsafe) private var finishedLine: String?
nonisolated(unsafe) private var reachedEndOfInput = false
nonisolated(unsafe) private var activeShell: InteractiveShell?

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

/// Tells readline where the word being completed starts: where the shell's completer says.
private let wordBreakHook: @convention(c) () -> UnsafeMutablePointer<CChar>? = {
    activeShell?.wordBreakCharacters()
}

private let attemptedCompletion: @convention(c) (UnsafePointer<CChar>?, Int32, Int32) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = { _, start, end in
    activeShell?.completionMatches(start: Int(start), end: Int(end))
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

/// A readline prompt over one session: completion on Tab, history across sessions (with
/// readline's Ctrl-R search), pictures in the terminal, magics, and colour where it can.
final class InteractiveShell {
    let cancellation = CancellationFlag()
    let history = HistoryFile(path: HistoryFile.defaultPath)
    let style = TerminalStyle.detect(descriptor: 1)
    let errorStyle = TerminalStyle.detect(descriptor: 2)
    private var lastEntry: String?
    private var pending = ""
    private var entryNumber = 0
    private var pictureCount = 0
    /// The session's folder for the PNG files of pictures it shows.
    let pictureFolder = (NSTemporaryDirectory() as NSString).appendingPathComponent("cnn-shell-\(getpid())")
    private lazy var printer: EventPrinter = {
        let printer = EventPrinter(output: DescriptorOutput.standardOutput, errors: DescriptorOutput.standardError,
                                   showsProgress: true) { [unowned self] image in
            pictureCount += 1
            let path = (pictureFolder as NSString).appendingPathComponent("picture-\(pictureCount).png")
            try writePicture(image, to: path)
            return path
        }
        let errorStyle = self.errorStyle
        printer.renderDiagnostic = { errorStyle.diagnostic($0) }
        printer.drawPicture = { image in try TerminalPictures.forTerminal(descriptor: 1).render(image.pixels) }
        return printer
    }()
    private lazy var session = Session(sink: printer, cancellation: cancellation)
    /// The word-break characters last handed to readline (readline keeps the pointer).
    private var breakCharacters: UnsafeMutablePointer<CChar>?
    private var lastCompletion: (text: [Unicode.Scalar], result: CompletionResult)?

    private var prompt: String { style.prompt("cnn>", "1;" + TerminalStyle.green) + " " }
    private var continuationPrompt: String { style.prompt("...>", TerminalStyle.dim) + " " }

    func run() -> Int32 {
        rl_readline_name = UnsafePointer(strdup("cnn"))
        rl_catch_signals = 0  // Ctrl-C is ours: it clears the line or stops a computation
        activeShell = self
        rl_attempted_completion_function = attemptedCompletion
        rl_completion_word_break_hook = wordBreakHook
        rl_completer_quote_characters = nil
        rl_sort_completion_matches = 0  // keyword arguments first, as the completer orders them
        rl_variable_bind("show-all-if-ambiguous", "on")
        stifle_history(Int32(history.limit))
        for entry in history.load() { add_history(entry); lastEntry = entry }
        let interrupts = InterruptHandler.install(cancellation, exitOnRepeat: false)
        defer { interrupts.uninstall(); activeShell = nil }
        DescriptorOutput.standardOutput.write("cnnlab: help() lists the builtins, %help the magics; Tab completes; Ctrl-C stops a computation, Ctrl-D leaves.\n")

        rl_callback_handler_install(prompt, lineHandler)
        while true {
            var descriptor = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, -1)
            if ready < 0 {
                guard errno == EINTR else { break }
                if cancellation.isCancelled { clearLineAfterInterrupt() }
                continue
            }
            if descriptor.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0, descriptor.revents & Int16(POLLIN) == 0 { break }
            rl_callback_read_char()
            if reachedEndOfInput { break }
            if let line = finishedLine {
                finishedLine = nil
                accept(line)
                rl_callback_handler_install(pending.isEmpty ? prompt : continuationPrompt, lineHandler)
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
        rl_set_prompt(prompt)
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
        cancellation.reset()
        let session = self.session, name = "<input \(entryNumber)>"
        _ = withLargeStack { session.run(entry, name: name) }
        cancellation.reset()
    }

    // MARK: completion

    /// The text of the line before the cursor.
    private func textBeforeCursor() -> [Unicode.Scalar] {
        guard let buffer = rl_line_buffer else { return [] }
        let bytes = UnsafeRawBufferPointer(start: buffer, count: Int(max(0, rl_point)))
        return Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
    }

    /// Completions for the line before the cursor, read after the lines of an unfinished
    /// entry (so a call written over several lines still offers its keyword arguments), with
    /// positions in this line.
    private func completeLine(_ text: [Unicode.Scalar]) -> CompletionResult {
        let before = pending.isEmpty ? 0 : pending.unicodeScalars.count + 1
        let whole = (pending.isEmpty ? "" : pending + "\n") + String(String.UnicodeScalarView(text))
        var result = session.completer.complete(whole)
        guard result.start >= before else { return CompletionResult(start: text.count, end: text.count, matches: []) }
        result.start -= before
        result.end -= before
        return result
    }

    /// Characters at which readline is to start the word: the one just before the start the
    /// completer chose, and none of those in the word itself (a file name may hold a '.' or a '-').
    func wordBreakCharacters() -> UnsafeMutablePointer<CChar>? {
        let text = textBeforeCursor()
        let result = completeLine(text)
        lastCompletion = (text, result)
        var breaks = Set(" \t\n\"'`@$><=;|&{(}[]),+-*/%^!:.#~\\?".unicodeScalars)
        for c in text[min(result.start, text.count)..<text.count] { breaks.remove(c) }
        if result.start > 0, result.start <= text.count { breaks.insert(text[result.start - 1]) }
        free(breakCharacters)
        breakCharacters = strdup(String(String.UnicodeScalarView(breaks.filter(\.isASCII).sorted())))
        return breakCharacters
    }

    /// The matches for the word readline found at bytes [start, end), as readline wants them:
    /// the common prefix first, then each match, then NULL; allocated with malloc.
    func completionMatches(start: Int, end: Int) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        rl_attempted_completion_over = 1  // no file-name completion of readline's own
        rl_completion_suppress_append = 1
        let text = textBeforeCursor()
        let result: CompletionResult
        if let last = lastCompletion, last.text == text { result = last.result }
        else { result = completeLine(text) }
        guard !result.matches.isEmpty else { return nil }
        // The completer's start, in bytes; if readline chose another, shift the matches to fit.
        let mine = String(String.UnicodeScalarView(text[0..<min(result.start, text.count)])).utf8.count
        let line = Array(String(String.UnicodeScalarView(text)).utf8)
        var matches = result.matches
        if start > mine, start <= line.count {
            let extra = String(decoding: line[mine..<start], as: UTF8.self)
            matches = matches.filter { $0.hasPrefix(extra) }.map { String($0.dropFirst(extra.count)) }
        } else if start < mine, mine <= line.count {
            let extra = String(decoding: line[start..<mine], as: UTF8.self)
            matches = matches.map { extra + $0 }
        }
        guard !matches.isEmpty else { return nil }
        let substitution = matches.count == 1 ? matches[0] : InteractiveShell.commonPrefix(matches)
        let entries = [substitution] + (matches.count == 1 ? [] : matches)
        // readline frees the array and its strings with free(): allocate them with malloc.
        let raw = malloc(MemoryLayout<UnsafeMutablePointer<CChar>?>.stride * (entries.count + 1))!
        let pointers = raw.bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: entries.count + 1)
        for (i, e) in entries.enumerated() { pointers[i] = strdup(e) }
        pointers[entries.count] = nil
        return pointers
    }

    static func commonPrefix(_ xs: [String]) -> String {
        guard var prefix = xs.first.map({ Array($0.unicodeScalars) }) else { return "" }
        for x in xs.dropFirst() {
            let s = Array(x.unicodeScalars)
            var n = 0
            while n < prefix.count, n < s.count, prefix[n] == s[n] { n += 1 }
            prefix = Array(prefix[0..<n])
        }
        return String(String.UnicodeScalarView(prefix))
    }
}
