/// Source text, places in it, and the one diagnostic type for syntax and runtime errors alike.

/// A piece of source code with a name (a file path, "<stdin>", "cell 3"). Positions are
/// counted in Unicode scalars, so a caret lands under the character it means.
public final class SourceFile: Sendable {
    public let name: String
    public let text: String
    /// The scalars of `text`, which the lexer walks.
    let scalars: [Unicode.Scalar]
    /// Where each line starts, as an index into `scalars`.
    let lineStarts: [Int]
    /// The line number of the first line (a cell taken out of a bigger file keeps its lines).
    public let firstLine: Int

    public init(name: String, text: String, firstLine: Int = 1) {
        self.name = name
        self.text = text
        self.firstLine = firstLine
        let scalars = Array(text.unicodeScalars)
        self.scalars = scalars
        var starts = [0]
        for (i, s) in scalars.enumerated() where s == "\n" { starts.append(i + 1) }
        self.lineStarts = starts
    }

    /// The text of line `line` (as numbered in the file), without its newline.
    public func lineText(_ line: Int) -> String {
        let i = line - firstLine
        guard i >= 0, i < lineStarts.count else { return "" }
        let start = lineStarts[i]
        var end = i + 1 < lineStarts.count ? lineStarts[i + 1] - 1 : scalars.count
        if end > start, scalars[end - 1] == "\r" { end -= 1 }
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars[start..<max(start, end)])
        return String(s)
    }

    /// Line and column (both from 1) of a scalar offset.
    func location(of offset: Int) -> (line: Int, column: Int) {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return (lo + firstLine, offset - lineStarts[lo] + 1)
    }
}

/// A range of source: where an error points, and what a caret underlines.
public struct SourceSpan: Sendable, CustomStringConvertible {
    public let file: SourceFile
    /// Scalar offsets into the file: [start, end).
    public let start: Int
    public let end: Int

    public init(file: SourceFile, start: Int, end: Int) {
        self.file = file
        self.start = start
        self.end = max(end, start)
    }

    public var line: Int { file.location(of: start).line }
    public var column: Int { file.location(of: start).column }

    /// The span from the start of `self` to the end of `other`.
    func through(_ other: SourceSpan) -> SourceSpan { SourceSpan(file: file, start: start, end: max(end, other.end)) }

    /// "file:line:column", the form compilers use, which editors and terminals turn into links.
    public var description: String { "\(file.name):\(line):\(column)" }
}

/// An error with its place: a syntax error from the lexer or parser, or a runtime error from
/// the interpreter (with the call sites it passed through, innermost first).
public struct Diagnostic: Error, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case syntax = "syntax error"
        case runtime = "error"
        /// The computation was interrupted (Ctrl-C, a kernel interrupt): not the user's mistake.
        case interrupted = "interrupted"
    }

    public var kind: Kind
    public var message: String
    public var span: SourceSpan?
    /// Where the failing code was called from, innermost call first.
    public var callSites: [SourceSpan]

    public init(_ kind: Kind, _ message: String, at span: SourceSpan?, callSites: [SourceSpan] = []) {
        self.kind = kind
        self.message = message
        self.span = span
        self.callSites = callSites
    }

    public var description: String { rendered() }

    /// The error as a person reads it:
    ///
    ///     demo.cnn:3:9: error: unknown layer 'conv6'; layers are conv1, conv2, fc1
    ///         3 | show(net.conv6)
    ///           |         ^^^^^
    ///       called from demo.cnn:7:1
    public func rendered() -> String {
        var out = ""
        if let span {
            out += "\(span): \(kind.rawValue): \(message)\n"
            out += Diagnostic.excerpt(span)
        } else {
            out += "\(kind.rawValue): \(message)\n"
        }
        for site in callSites {
            out += "  called from \(site)\n"
            out += Diagnostic.excerpt(site)
        }
        return out
    }

    /// The source line of `span` with a caret under the span (clipped to the line).
    static func excerpt(_ span: SourceSpan) -> String {
        let (line, column) = span.file.location(of: span.start)
        let text = span.file.lineText(line)
        let number = String(line)
        let gutter = String(repeating: " ", count: number.count)
        let lineLength = text.unicodeScalars.count
        let endOnLine = span.file.location(of: span.end)
        var width = endOnLine.line == line ? span.end - span.start : lineLength - column + 1
        width = max(1, min(width, max(1, lineLength - column + 1)))
        // Tabs stay tabs under the caret so it lines up in any terminal.
        let pad = String(text.unicodeScalars.prefix(column - 1).map { $0 == "\t" ? Character("\t") : Character(" ") })
        return "  \(number) | \(text)\n  \(gutter) | \(pad)\(String(repeating: "^", count: width))\n"
    }
}
