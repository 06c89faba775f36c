import Foundation

/// A cell of a `.cnn` file in the "percent" format that VS Code, Spyder and jupytext read:
/// a line starting `# %%` begins a cell, `# %% [markdown]` a markdown cell, and the rest of
/// the marker line is the cell's title.
public struct Cell {
    /// 1 for the first cell. Code before the first marker is a cell of its own only if it holds code.
    public let number: Int
    public let title: String
    public let isMarkdown: Bool
    /// The cell's lines, numbered as in the whole file.
    public let source: SourceFile
}

public enum Cells {
    /// The cells of a file's text; a file without markers is one cell.
    public static func split(_ text: String, name: String) -> [Cell] {
        var lines = text.components(separatedBy: "\n")
        if text.hasSuffix("\n") { lines.removeLast() }
        var cells: [Cell] = []
        var current: [String] = []
        var firstLine = 1, title = "", markdown = false, isPreamble = true

        func close() {
            let body = current.joined(separator: "\n") + (current.isEmpty ? "" : "\n")
            // The preamble (a #! line, comments) counts as a cell only when it has code in it.
            let hasCode = current.contains { line in
                let t = line.trimmingCharacters(in: .whitespaces)
                return !t.isEmpty && !t.hasPrefix("#")
            }
            if !isPreamble || hasCode {
                cells.append(Cell(number: cells.count + 1, title: title, isMarkdown: markdown,
                                  source: SourceFile(name: name, text: body, firstLine: firstLine)))
            }
        }

        for (i, line) in lines.enumerated() {
            if line.hasPrefix("# %%") {
                close()
                var rest = line.dropFirst(4).trimmingCharacters(in: .whitespaces)
                markdown = rest.hasPrefix("[markdown]")
                if markdown { rest = rest.dropFirst("[markdown]".count).trimmingCharacters(in: .whitespaces) }
                title = rest
                isPreamble = false
                current = []
                firstLine = i + 2
            } else {
                current.append(line)
            }
        }
        close()
        return cells
    }
}

/// Whether a shell line is complete, or waits for more on a continuation prompt: an open
/// bracket, brace or block, or a line ending in an operator, ',' or '->' wants more.
public enum InputCompleteness {
    public static func needsMore(_ text: String) -> Bool {
        var lexer = Lexer(SourceFile(name: "<input>", text: text))
        let tokens = lexer.tokenize()
        if !lexer.open.isEmpty { return true }
        // An unterminated string is an error on its line, not a continuation.
        guard let last = tokens.last(where: { $0.kind != .eof && $0.kind != .newline }) else { return false }
        switch last.kind {
        case .plus, .minus, .star, .slash, .percent, .caret, .at, .comma, .arrow, .dotDot, .dot,
             .assign, .plusAssign, .minusAssign, .starAssign, .slashAssign,
             .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual,
             .keyword(.and), .keyword(.or), .keyword(.not), .keyword(.else), .keyword(.in):
            return true
        default:
            return false
        }
    }
}

/// Runs `body` on a thread with a large stack and waits for it. Freeing a long autodiff tape
/// and evaluating deep expressions recurse; a large stack keeps the limits, not the stack,
/// the thing a user meets.
public func withLargeStack<T>(megabytes: Int = 512, _ body: @escaping () -> T) -> T {
    let task = StackTask(body)
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
        task.value = task.body()
        done.signal()
    }
    thread.stackSize = megabytes << 20
    thread.start()
    done.wait()
    return task.value ?? body()
}

/// Carries the work to the worker thread and its result back. The caller waits on the
/// semaphore while the worker runs, so the two never touch it at once, and the semaphore
/// orders the write of the result before its read.
private final class StackTask<T>: @unchecked Sendable {
    let body: () -> T
    var value: T?
    init(_ body: @escaping () -> T) { self.body = body }
}
