import Engine
import Foundation
import Script

/// One session of the language as the shell and the kernel hold it: an interpreter whose
/// variables live from input to input, and the magics around it, in the spirit of IPython's:
///
///     %time expr      runs expr and says how long it took
///     %who            lists the variables
///     %reset          forgets every variable
///     %run file.cnn   runs a file in this session
///     %help, name?    help
///
/// A line starting with `%` or ending with `?` is never code of the language, so the two
/// cannot be confused.
public final class Session {
    public let cancellation: CancellationFlag
    public let sink: EventSink
    public let registry: BuiltinRegistry
    public private(set) var interpreter: Interpreter
    let options: Interpreter.Options

    public init(sink: EventSink, cancellation: CancellationFlag = CancellationFlag(),
                registry: BuiltinRegistry = .standard(), options: Interpreter.Options = Interpreter.Options()) {
        self.sink = sink
        self.cancellation = cancellation
        self.registry = registry
        self.options = options
        self.interpreter = Interpreter(sink: sink, registry: registry, options: options, cancellation: cancellation)
    }

    public var completer: Completer { Completer(interpreter) }

    static let magics: [(name: String, usage: String, summary: String)] = [
        ("time", "%time expr", "runs expr (the rest of the input) and prints the wall-clock and processor time it took"),
        ("who", "%who", "lists the variables with their types"),
        ("reset", "%reset", "forgets every variable"),
        ("run", "%run file.cnn", "runs a file in this session: its variables stay"),
        ("help", "%help", "this list; help() lists the builtins, help(name) or name? explains one"),
    ]

    /// Runs one input: a shell entry or a notebook cell, magic or code. Runs on the caller's
    /// thread, which needs a large stack (see `withLargeStack`).
    @discardableResult
    public func run(_ text: String, name: String) -> RunOutcome {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("%") { return magic(trimmed, name: name) }
        if let topic = Session.helpTopic(trimmed) { return help(topic) }
        return interpreter.run(SourceFile(name: name, text: text))
    }

    /// "relu" for "relu?" and "net.conv1??": a name asked about.
    static func helpTopic(_ text: String) -> String? {
        guard text.hasSuffix("?"), !text.contains("\n") else { return nil }
        let name = String(text.drop { $0 == " " }.reversed().drop { $0 == "?" }.reversed())
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first, CodeScanner.isWordStart(first),
              scalars.allSatisfy({ CodeScanner.isWordPart($0) || $0 == "." }) else { return nil }
        return name
    }

    private func fail(_ message: String) -> RunOutcome {
        let d = Diagnostic(.runtime, message, at: nil)
        sink.emit(.error(d))
        return .failed(d)
    }

    private func help(_ topic: String) -> RunOutcome {
        guard let text = completer.help(topic) else {
            let near = nearest(topic.split(separator: ".").first.map(String.init) ?? topic, in: interpreter.visibleNames)
            return fail("nothing is called '\(topic)'" + (near.map { "; did you mean '\($0)'?" } ?? ""))
        }
        sink.emit(.text(text.hasSuffix("\n") ? text : text + "\n"))
        return .success(nil)
    }


    private func magic(_ text: String, name: String) -> RunOutcome {
        let body = text.dropFirst()
        let word = String(body.prefix { !$0.isWhitespace })
        let rest = String(body.dropFirst(word.count)).trimmingCharacters(in: .whitespacesAndNewlines)
        switch word {
        case "time":
            guard !rest.isEmpty else { return fail("%time needs something to run, as in %time gradcheck(conv2d, x, w)") }
            let wall = Date(), cpu = clock()
            let outcome = interpreter.run(SourceFile(name: name, text: rest))
            let seconds = Date().timeIntervalSince(wall)
            let cpuSeconds = Double(clock() - cpu) / Double(CLOCKS_PER_SEC)
            sink.emit(.text("wall time \(Session.duration(seconds)), processor time \(Session.duration(cpuSeconds))\n"))
            return outcome
        case "who":
            sink.emit(.text(whoText()))
            return .success(nil)
        case "reset":
            interpreter = Interpreter(sink: sink, registry: registry, options: options, cancellation: cancellation)
            sink.emit(.text("every variable is forgotten\n"))
            return .success(nil)
        case "run":
            return runFile(rest)
        case "help":
            var out = "Magics:\n"
            let width = Session.magics.map(\.usage.count).max() ?? 0
            for m in Session.magics { out += "  \(m.usage.padding(toLength: width, withPad: " ", startingAt: 0))  \(m.summary)\n" }
            out += "\nhelp() lists the builtins by category; help(name) or name? explains one.\n"
            sink.emit(.text(out))
            return .success(nil)
        default:
            let names = Session.magics.map { "%" + $0.name }
            var message = "unknown magic '%\(word)'"
            if let near = nearest(word, in: Session.magics.map(\.name)) { message += "; did you mean '%\(near)'?" }
            else { message += "; the magics are \(names.joined(separator: ", "))" }
            return fail(message)
        }
    }

    /// One line a variable: name, type and a short form of its value.
    func whoText() -> String {
        let completer = self.completer
        let names = interpreter.visibleNames.filter { !completer.isBuiltin($0) }
        guard !names.isEmpty else { return "no variables\n" }
        let width = names.map(\.count).max() ?? 0
        var out = ""
        for name in names {
            guard let v = interpreter.value(named: name) else { continue }
            var line = Display.text(v).split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
            if line.count > 60 { line = String(line.prefix(57)) + "..." }
            out += "\(name.padding(toLength: width, withPad: " ", startingAt: 0))  \(v.typeName.padding(toLength: 8, withPad: " ", startingAt: 0))  \(line)\n"
        }
        return out
    }

    private func runFile(_ argument: String) -> RunOutcome {
        var path = argument
        if path.count >= 2, let q = path.first, q == "\"" || q == "'", path.last == q { path = String(path.dropFirst().dropLast()) }
        guard !path.isEmpty else { return fail("%run needs a file, as in %run tour.cnn") }
        if path.hasPrefix("~/") { path = (ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()) + path.dropFirst() }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            return fail("%run: no such file: \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            return fail("%run: cannot read \(path) as UTF-8 text")
        }
        // Like `cnn run`: every cell is parsed before any runs.
        var programs: [Program] = []
        var errors: [Diagnostic] = []
        for cell in Cells.split(text, name: path) where !cell.isMarkdown {
            let p = Parser.parse(cell.source)
            errors += p.diagnostics
            programs.append(p)
        }
        if !errors.isEmpty {
            for d in errors { sink.emit(.error(d)) }
            return .syntaxErrors(errors)
        }
        var last: Value? = nil
        for p in programs {
            let outcome = interpreter.execute(p)
            guard case .success(let v) = outcome else { return outcome }
            last = v
        }
        return .success(last)
    }

    /// 0.00123 as "1.23 ms".
    static func duration(_ seconds: Double) -> String {
        if seconds < 1e-3 { return String(format: "%.0f µs", seconds * 1e6) }
        if seconds < 1 { return String(format: "%.3g ms", seconds * 1e3) }
        return String(format: "%.3g s", seconds)
    }
}
