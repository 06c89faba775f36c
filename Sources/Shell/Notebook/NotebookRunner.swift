import Foundation
import Script

/// A notebook after a run: every cell, with the outputs of those that ran.
public struct NotebookResult {
    public struct RunCell {
        public var cell: Notebook.Cell
        /// The cell's place in the notebook, from 1.
        public var number: Int
        /// The order in which the cell ran (Jupyter's In [n]); nil for cells that did not run.
        public var executionCount: Int?
        public var outputs: [CellOutput]
    }

    public var notebook: Notebook
    public var cells: [RunCell]
    /// The errors that stopped cells, with the cell's number.
    public var failures: [(cell: Int, diagnostic: Diagnostic)] = []
    /// Whether the run was stopped by an interrupt.
    public var interrupted = false

    /// How many pictures the outputs hold.
    public var pictureCount: Int {
        cells.reduce(0) { n, c in n + c.outputs.filter { if case .data(let d, _) = $0 { return d.png != nil } else { return false } }.count }
    }
}

/// Runs a notebook's code cells in order in one session, as Jupyter's nbconvert does: a
/// failing cell stops the run (the cells after it keep no outputs) unless errors are allowed.
public final class NotebookRunner {
    public let cancellation = CancellationFlag()
    public var allowErrors: Bool
    public var options = Interpreter.Options()
    /// Told when a code cell starts (its number and the number of code cells) and of each
    /// progress update, for a status line on a terminal; the notebook itself keeps neither.
    public var onCellStart: ((_ cell: Notebook.Cell, _ index: Int, _ count: Int) -> Void)?
    public var onProgress: ((ProgressUpdate) -> Void)?

    public init(allowErrors: Bool = false) {
        self.allowErrors = allowErrors
    }

    public func run(_ notebook: Notebook) -> NotebookResult {
        let collector = OutputCollector()
        let sink = ProgressTee(collector) { [weak self] in self?.onProgress?($0) }
        let interpreter = Interpreter(sink: sink, options: options, cancellation: cancellation)
        let codeCells = notebook.cells.filter { $0.kind == .code && NotebookRunner.hasCode($0.text) }.count
        interpreter.define("args", .list([]))
        var result = NotebookResult(notebook: notebook, cells: [])
        var count = 0
        var stopped = false
        for (index, cell) in notebook.cells.enumerated() {
            var run = NotebookResult.RunCell(cell: cell, number: index + 1, executionCount: nil, outputs: [])
            if cell.kind == .code, let source = cell.source, !stopped, NotebookRunner.hasCode(cell.text) {
                count += 1
                run.executionCount = count
                onCellStart?(cell, count, codeCells)
                let outcome = withLargeStack { interpreter.run(source) }
                run.outputs = collector.take()
                switch outcome {
                case .success: break
                case .failed(let d):
                    result.failures.append((index + 1, d))
                    if d.kind == .interrupted { result.interrupted = true; stopped = true }
                    if !allowErrors { stopped = true }
                case .syntaxErrors(let ds):
                    for d in ds { result.failures.append((index + 1, d)) }
                    if !allowErrors { stopped = true }
                }
            }
            result.cells.append(run)
        }
        return result
    }

    /// Whether a cell holds anything but blank lines and comments (empty cells do not run, as in Jupyter).
    static func hasCode(_ text: String) -> Bool {
        text.split(separator: "\n").contains { line in
            let t = line.trimmingCharacters(in: .whitespaces)
            return !t.isEmpty && !t.hasPrefix("#")
        }
    }
}

/// Passes every event to a sink, and progress also to an observer.
private final class ProgressTee: EventSink {
    let sink: EventSink
    let observe: (ProgressUpdate) -> Void
    init(_ sink: EventSink, observe: @escaping (ProgressUpdate) -> Void) {
        self.sink = sink
        self.observe = observe
    }
    func emit(_ event: Event) {
        if case .progress(let p) = event { observe(p) }
        sink.emit(event)
    }
}

/// The formats a notebook is written in, chosen by the output file's extension.
public enum NotebookFormat: String, CaseIterable {
    case html, ipynb, markdown

    public init?(path: String) {
        switch (path as NSString).pathExtension.lowercased() {
        case "html", "htm": self = .html
        case "ipynb": self = .ipynb
        case "md", "markdown": self = .markdown
        default: return nil
        }
    }
}

/// `cnn notebook FILE -o OUT`: runs the notebook and writes it with its outputs. Exit status:
/// 0 when every cell ran (or errors were allowed), 1 when a cell failed, 2 for a usage error
/// or a notebook that cannot be read, 130 when interrupted.
public func runNotebookCommand(path: String, output: String?, allowErrors: Bool, execute: Bool = true) -> Int32 {
    let errors = DescriptorOutput.standardError
    let target = output ?? ((path as NSString).deletingPathExtension + ".html")
    guard let format = NotebookFormat(path: target) else {
        errors.write("cnn notebook: cannot tell the format of \(target); name it .html, .ipynb or .md\n")
        return 2
    }
    let notebook: Notebook
    do { notebook = try Notebook.read(path: path) }
    catch { errors.write("cnn notebook: \(error)\n"); return 2 }
    if (target as NSString).standardizingPath == (path as NSString).standardizingPath {
        errors.write("cnn notebook: the output \(target) would overwrite the notebook; choose another name\n")
        return 2
    }

    if !execute {
        // Converted only: every cell as it is, none run (a percent notebook as .ipynb for Jupyter).
        let cells = notebook.cells.enumerated().map {
            NotebookResult.RunCell(cell: $1, number: $0 + 1, executionCount: nil, outputs: [])
        }
        do { try NotebookWriter.write(NotebookResult(notebook: notebook, cells: cells), format: format, to: target) }
        catch { errors.write("cnn notebook: cannot write \(target): \(error)\n"); return 1 }
        errors.write("wrote \(target): \(cells.count) cell\(cells.count == 1 ? "" : "s"), not run\n")
        return 0
    }
    let runner = NotebookRunner(allowErrors: allowErrors)
    if isatty(2) != 0 {
        // On a terminal, one status line: the cell running and its progress bar.
        var line = ""
        var lastDraw = Date.distantPast
        runner.onCellStart = { cell, index, count in
            line = "[\(index)/\(count)]" + (cell.title.isEmpty ? "" : " \(cell.title)")
            errors.write("\r\u{1B}[2K" + line)
        }
        runner.onProgress = { p in
            let now = Date()
            guard p.finished || now.timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = now
            errors.write("\r\u{1B}[2K" + line + (p.finished ? "" : "  " + EventPrinter.bar(p)))
        }
    }
    let interrupts = InterruptHandler.install(runner.cancellation)
    let result = runner.run(notebook)
    interrupts.uninstall()
    if isatty(2) != 0 { errors.write("\r\u{1B}[2K") }

    let style = TerminalStyle.detect(descriptor: 2)
    for failure in result.failures {
        errors.write("cell \(failure.cell): " + style.diagnostic(failure.diagnostic))
    }
    do {
        try NotebookWriter.write(result, format: format, to: target)
    } catch {
        errors.write("cnn notebook: cannot write \(target): \(error)\n")
        return 1
    }
    let codeCells = result.cells.filter { $0.cell.kind == .code }.count
    let ran = result.cells.filter { $0.executionCount != nil }.count
    var summary = "wrote \(target): \(ran) of \(codeCells) code cell\(codeCells == 1 ? "" : "s") ran"
    if result.pictureCount > 0 { summary += ", \(result.pictureCount) picture\(result.pictureCount == 1 ? "" : "s")" }
    if !result.failures.isEmpty { summary += ", \(result.failures.count) error\(result.failures.count == 1 ? "" : "s")" }
    errors.write(summary + "\n")
    if result.interrupted { return 130 }
    return result.failures.isEmpty || allowErrors ? 0 : 1
}
