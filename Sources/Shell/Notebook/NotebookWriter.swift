import Foundation
import Ink
import Script

/// Writes a run notebook as one self-contained HTML page, as a Jupyter notebook (nbformat 4),
/// or as Markdown with its pictures in a folder beside it.
public enum NotebookWriter {
    public static func write(_ result: NotebookResult, format: NotebookFormat, to path: String) throws {
        switch format {
        case .html:
            try writeAtomically(Data(html(result).utf8), to: path)
        case .ipynb:
            try writeAtomically(try ipynb(result), to: path)
        case .markdown:
            let folderName = ((path as NSString).lastPathComponent as NSString).deletingPathExtension + "_files"
            let folder = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(folderName)
            let (text, files) = markdown(result, filesFolder: folderName)
            // Pictures of an earlier run that this one no longer has would linger: remove them
            // (only the cellN-K.png files this writer makes; anything else in the folder stays).
            for old in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            where old.range(of: "^cell[0-9]+-[0-9]+\\.png$", options: .regularExpression) != nil {
                try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(old))
            }
            if !files.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            for (name, bytes) in files {
                try writeAtomically(Data(bytes), to: (folder as NSString).appendingPathComponent(name))
            }
            try writeAtomically(Data(text.utf8), to: path)
        }
    }

    /// Written under a temporary name and renamed, so an interrupted write never leaves half a file.
    static func writeAtomically(_ data: Data, to path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        try data.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    // MARK: HTML

    public static func html(_ result: NotebookResult) -> String {
        let highlighter = Highlighter()
        let markdown = MarkdownParser()
        var body = ""
        for run in result.cells {
            switch run.cell.kind {
            case .markdown:
                body += "<section class=\"cell markdown\" id=\"cell-\(run.number)\">\n\(markdown.html(from: run.cell.text))\n</section>\n"
            case .raw:
                body += "<section class=\"cell raw\" id=\"cell-\(run.number)\"><pre>\(escapeHTML(run.cell.text))</pre></section>\n"
            case .code:
                let prompt = run.executionCount.map { "[\($0)]" } ?? "[ ]"
                body += "<section class=\"cell code\" id=\"cell-\(run.number)\">\n"
                if !run.cell.title.isEmpty { body += "<div class=\"title\">\(escapeHTML(run.cell.title))</div>\n" }
                body += "<div class=\"input\"><span class=\"prompt\">\(prompt)</span><pre><code>\(highlighter.html(run.cell.text))</code></pre></div>\n"
                if !run.outputs.isEmpty {
                    body += "<div class=\"outputs\">\n"
                    for output in run.outputs { body += htmlOutput(output) }
                    body += "</div>\n"
                }
                body += "</section>\n"
            }
        }
        let title = escapeHTML(result.notebook.title)
        return """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="generator" content="cnnlab">
        <title>\(title)</title>
        <style>
        \(css)
        </style>
        </head>
        <body>
        <main>
        \(body)</main>
        </body>
        </html>

        """
    }

    static func htmlOutput(_ output: CellOutput) -> String {
        switch output {
        case .stream(let name, let text):
            return "<pre class=\"output \(name)\">\(escapeHTML(text))</pre>\n"
        case .data(let d, let isResult):
            guard let png = d.png else {
                return "<pre class=\"output \(isResult ? "result" : "value")\">\(escapeHTML(d.text))</pre>\n"
            }
            let scale = d.displayScale
            var figure = "<figure class=\"output picture\"><img src=\"data:image/png;base64,\(Data(png).base64EncodedString())\""
            figure += " width=\"\(d.width * scale)\" height=\"\(d.height * scale)\" alt=\"\(escapeHTML(d.text))\""
            if scale > 1 { figure += " class=\"pixelated\"" }
            figure += ">"
            if let caption = d.caption { figure += "<figcaption>\(escapeHTML(caption))</figcaption>" }
            return figure + "</figure>\n"
        case .error(let e):
            return "<pre class=\"output error\">\(escapeHTML(e.rendered))</pre>\n"
        }
    }

    static let css = """
    :root { color-scheme: light; --text: #1d1f23; --muted: #6a6f78; --code-bg: #f5f6f8; --border: #dfe2e7; --error-bg: #fdf0f0; --error: #b42318; }
    * { box-sizing: border-box; }
    body { margin: 0; background: #fff; color: var(--text); font: 16px/1.55 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
    main { max-width: 62rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
    pre, code { font-family: "JetBrains Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.875rem; }
    pre { margin: 0; white-space: pre-wrap; word-break: break-word; }
    .cell { margin: 1.25rem 0; }
    .markdown h1, .markdown h2, .markdown h3 { line-height: 1.25; }
    .markdown code { background: var(--code-bg); padding: 0.1em 0.3em; border-radius: 3px; }
    .markdown pre code { background: none; padding: 0; }
    .markdown pre { background: var(--code-bg); padding: 0.75rem; border-radius: 6px; }
    .title { color: var(--muted); font-size: 0.85rem; margin: 0 0 0.25rem 3.5rem; }
    .input { display: flex; gap: 0.5rem; }
    .prompt { flex: 0 0 3rem; color: var(--muted); font: 0.8rem/2.1 monospace; text-align: right; }
    .input pre { flex: 1; background: var(--code-bg); border: 1px solid var(--border); border-radius: 6px; padding: 0.6rem 0.75rem; overflow-x: auto; }
    .outputs { margin: 0.35rem 0 0 3.5rem; }
    .output { margin: 0.3rem 0; }
    pre.output { padding: 0.2rem 0.25rem; }
    pre.stderr { color: var(--error); }
    pre.error { background: var(--error-bg); color: var(--error); border-left: 3px solid var(--error); padding: 0.5rem 0.75rem; }
    figure.picture { margin: 0.5rem 0; }
    figure.picture img { max-width: 100%; height: auto; border: 1px solid var(--border); }
    img.pixelated { image-rendering: pixelated; image-rendering: crisp-edges; }
    figcaption { color: var(--muted); font-size: 0.85rem; }
    .k { color: #8250df; font-weight: 600; } .b { color: #0550ae; } .n { color: #0a7f5a; }
    .s { color: #a0461b; } .si { color: #8250df; } .c { color: #6e7781; font-style: italic; } .o { color: #953800; }
    """

    // MARK: Jupyter

    /// The notebook in nbformat 4.5: cells with ids, outputs as Jupyter writes them.
    public static func ipynb(_ result: NotebookResult) throws -> Data {
        var cells: [[String: Any]] = []
        for run in result.cells {
            var metadata: [String: Any] = [:]
            if !run.cell.title.isEmpty { metadata["title"] = run.cell.title }
            var cell: [String: Any] = ["id": "cell-\(run.number)", "metadata": metadata, "source": nbformatLines(run.cell.text)]
            switch run.cell.kind {
            case .markdown, .raw:
                cell["cell_type"] = run.cell.kind.rawValue
            case .code:
                cell["cell_type"] = "code"
                cell["execution_count"] = run.executionCount.map { $0 as Any } ?? NSNull()
                cell["outputs"] = run.outputs.map { $0.nbformat(executionCount: run.executionCount) }
            }
            cells.append(cell)
        }
        let document: [String: Any] = [
            "cells": cells,
            "metadata": [
                "kernelspec": ["name": KernelSpec.name, "display_name": KernelSpec.displayName, "language": KernelSpec.language],
                "language_info": KernelSpec.languageInfo,
            ] as [String: Any],
            "nbformat": 4,
            "nbformat_minor": 5,
        ]
        var data = try JSONSerialization.data(withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        data.append(UInt8(ascii: "\n"))
        return data
    }

    // MARK: Markdown

    /// The notebook as Markdown, and the pictures to write in `filesFolder` beside it (named
    /// cellN-K.png by cell and order), which the text links to.
    public static func markdown(_ result: NotebookResult, filesFolder: String) -> (text: String, files: [(name: String, bytes: [UInt8])]) {
        var parts: [String] = []
        var files: [(String, [UInt8])] = []
        for run in result.cells {
            switch run.cell.kind {
            case .markdown: parts.append(run.cell.text)
            case .raw: parts.append(run.cell.text)
            case .code:
                var block = ""
                if !run.cell.title.isEmpty { block += "**\(run.cell.title)**\n\n" }
                block += fenced(run.cell.text, language: "cnn")
                var picture = 0
                for output in run.outputs {
                    switch output {
                    case .stream(_, let text): block += "\n\n" + fenced(text, language: "text")
                    case .data(let d, _):
                        if let png = d.png {
                            picture += 1
                            let name = "cell\(run.number)-\(picture).png"
                            files.append((name, png))
                            let alt = (d.caption ?? d.text).replacingOccurrences(of: "]", with: "\\]")
                            block += "\n\n![\(alt)](\(filesFolder)/\(name))"
                        } else {
                            block += "\n\n" + fenced(d.text, language: "text")
                        }
                    case .error(let e): block += "\n\n" + fenced(e.rendered, language: "text")
                    }
                }
                parts.append(block)
            }
        }
        return (parts.joined(separator: "\n\n") + "\n", files)
    }

    /// Text in a code fence longer than any run of backticks inside it.
    static func fenced(_ text: String, language: String) -> String {
        var longest = 0, run = 0
        for c in text { if c == "`" { run += 1; longest = max(longest, run) } else { run = 0 } }
        let fence = String(repeating: "`", count: max(3, longest + 1))
        var body = text
        while body.hasSuffix("\n") { body.removeLast() }
        return "\(fence)\(language)\n\(body)\n\(fence)"
    }
}
