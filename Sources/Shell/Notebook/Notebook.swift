import Foundation
import Script

/// A notebook to run: cells of code and Markdown, read from a `.cnn` file in the percent
/// format (`# %%` and `# %% [markdown]` markers) or from a Jupyter `.ipynb` file.
public struct Notebook {
    public enum CellKind: String, Sendable {
        case code, markdown, raw
    }

    public struct Cell {
        public var kind: CellKind
        /// The title after a `# %%` marker ("" when there is none).
        public var title: String
        /// The Markdown text, or the code as written (without trailing blank lines).
        public var text: String
        /// The code with its lines numbered as in the file, so errors name the file's lines.
        public var source: SourceFile?
    }

    /// The file the notebook came from.
    public var name: String
    public var cells: [Cell]

    /// Reads a notebook: `.ipynb` as JSON, anything else as the percent format.
    public static func read(path: String) throws -> Notebook {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw NotebookError("no such file: \(path)")
        }
        guard !isDirectory.boolValue else { throw NotebookError("\(path) is a folder; give a .cnn or .ipynb file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw NotebookError("cannot read \(path)") }
        if path.lowercased().hasSuffix(".ipynb") { return try jupyter(data, name: path) }
        guard let text = String(data: data, encoding: .utf8) else { throw NotebookError("\(path) is not UTF-8 text") }
        return percentFormat(text, name: path)
    }

    /// The cells of a `.cnn` file. Markdown cells are comments: their "# " prefixes are removed.
    public static func percentFormat(_ text: String, name: String) -> Notebook {
        let cells = Cells.split(text, name: name).map { c -> Cell in
            if c.isMarkdown {
                return Cell(kind: .markdown, title: c.title, text: markdownText(c.source.text), source: nil)
            }
            return Cell(kind: .code, title: c.title, text: trimmedCode(c.source.text), source: c.source)
        }
        return Notebook(name: name, cells: cells)
    }

    /// "# # Title\n# text\n#\n" as "# Title\ntext\n": the comment markers of a Markdown cell removed.
    static func markdownText(_ source: String) -> String {
        let lines = source.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            if line.hasPrefix("# ") { return String(line.dropFirst(2)) }
            if line.hasPrefix("#") { return String(line.dropFirst()) }
            return String(line)
        }
        return trimBlankLines(lines).joined(separator: "\n")
    }

    static func trimmedCode(_ source: String) -> String {
        trimBlankLines(source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)).joined(separator: "\n")
    }

    static func trimBlankLines(_ lines: [String]) -> [String] {
        var lines = lines
        while let last = lines.last, last.trimmingCharacters(in: .whitespaces).isEmpty { lines.removeLast() }
        while let first = lines.first, first.trimmingCharacters(in: .whitespaces).isEmpty { lines.removeFirst() }
        return lines
    }

    /// The cells of a Jupyter notebook (nbformat 4).
    public static func jupyter(_ data: Data, name: String) throws -> Notebook {
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data) }
        catch { throw NotebookError("\(name) is not a Jupyter notebook: its JSON does not parse (\(NotebookError.describe(error)))") }
        guard let top = json as? [String: Any] else { throw NotebookError("\(name) is not a Jupyter notebook: it is not a JSON object") }
        if let version = top["nbformat"] {
            guard let v = version as? Int, v == 4 else {
                throw NotebookError("\(name): only nbformat 4 notebooks can be read; this one says nbformat \(version)")
            }
        }
        guard let cells = top["cells"] as? [Any] else { throw NotebookError("\(name) is not a Jupyter notebook: it has no list of \"cells\"") }
        let base = (name as NSString).lastPathComponent
        return Notebook(name: name, cells: try cells.enumerated().map { index, value in
            let n = index + 1
            guard let cell = value as? [String: Any] else { throw NotebookError("\(name): cell \(n) is not a JSON object") }
            guard let type = cell["cell_type"] as? String else { throw NotebookError("\(name): cell \(n) has no \"cell_type\"") }
            guard let kind = CellKind(rawValue: type) else {
                throw NotebookError("\(name): cell \(n) has the unknown cell_type \"\(type)\" (known: code, markdown, raw)")
            }
            let text: String
            switch cell["source"] {
            case let s as String: text = s
            case let lines as [Any]:
                guard let strings = lines as? [String] else { throw NotebookError("\(name): the source of cell \(n) is a list of something other than strings") }
                text = strings.joined()
            default: throw NotebookError("\(name): cell \(n) has no \"source\" (a string or a list of strings)")
            }
            let title = ((cell["metadata"] as? [String: Any])?["title"] as? String) ?? ""
            if kind == .code {
                return Cell(kind: .code, title: title, text: trimmedCode(text), source: SourceFile(name: "\(base) cell \(n)", text: text))
            }
            return Cell(kind: kind, title: title, text: text, source: nil)
        })
    }

    /// The title for a page: the first Markdown heading, else the file's name.
    public var title: String {
        for cell in cells where cell.kind == .markdown {
            for line in cell.text.split(separator: "\n") where line.hasPrefix("#") {
                let heading = line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
                if !heading.isEmpty { return heading }
            }
        }
        return ((name as NSString).lastPathComponent as NSString).deletingPathExtension
    }
}

/// A notebook that cannot be read or written, with what is wrong in words.
public struct NotebookError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    /// Foundation's JSON errors carry their useful part in the user info.
    static func describe(_ error: Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }
}
