import Foundation
import Script
@testable import Shell
import XCTest

let sampleNotebook = """
#!/usr/bin/env cnn
# %% [markdown]
# # A small notebook
#
# Some *text* with `code`.

# %% Tensors
x = tensor([[1, 2], [3, 4]])
print("hello {x.shape}")
x
sum(x)

# %% Pictures
show(ones(1, 6, 6) * 0.5, caption="gray")
show(zeros(3, 4, 5))

# %% Fails
y = nope + 1

# %% After
print("after")

"""

final class NotebookReadingTests: XCTestCase {
    func testThePercentFormat() {
        let nb = Notebook.percentFormat(sampleNotebook, name: "demo.cnn")
        XCTAssertEqual(nb.cells.map(\.kind), [.markdown, .code, .code, .code, .code])
        XCTAssertEqual(nb.cells[0].text, "# A small notebook\n\nSome *text* with `code`.")
        XCTAssertEqual(nb.cells[1].title, "Tensors")
        XCTAssertEqual(nb.cells[1].text, "x = tensor([[1, 2], [3, 4]])\nprint(\"hello {x.shape}\")\nx\nsum(x)")
        XCTAssertEqual(nb.cells[3].source?.firstLine, 18, "code keeps the file's line numbers")
        XCTAssertEqual(nb.title, "A small notebook")
    }

    func testJupyterNotebooks() throws {
        let json = """
        {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Title\\n", "text"]},
                   {"cell_type": "code", "metadata": {"title": "t"}, "source": "x = 1\\nx", "outputs": [], "execution_count": null},
                   {"cell_type": "raw", "metadata": {}, "source": "raw text"}],
         "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        """
        let nb = try Notebook.jupyter(Data(json.utf8), name: "n.ipynb")
        XCTAssertEqual(nb.cells.map(\.kind), [.markdown, .code, .raw])
        XCTAssertEqual(nb.cells[0].text, "# Title\ntext")
        XCTAssertEqual(nb.cells[1].title, "t")
        XCTAssertEqual(nb.cells[1].source?.name, "n.ipynb cell 2")
    }

    func testMalformedNotebooksAreRefusedWithTheReason() {
        func message(_ json: String) -> String {
            do { _ = try Notebook.jupyter(Data(json.utf8), name: "bad.ipynb"); return "" }
            catch { return "\(error)" }
        }
        XCTAssertTrue(message("{\"cells\": [").hasPrefix("bad.ipynb is not a Jupyter notebook: its JSON does not parse"))
        XCTAssertEqual(message("[1, 2]"), "bad.ipynb is not a Jupyter notebook: it is not a JSON object")
        XCTAssertEqual(message("{\"nbformat\": 3, \"cells\": []}"), "bad.ipynb: only nbformat 4 notebooks can be read; this one says nbformat 3")
        XCTAssertEqual(message("{\"metadata\": {}}"), "bad.ipynb is not a Jupyter notebook: it has no list of \"cells\"")
        XCTAssertEqual(message("{\"cells\": [{\"cell_type\": \"code\"}]}"), "bad.ipynb: cell 1 has no \"source\" (a string or a list of strings)")
        XCTAssertEqual(message("{\"cells\": [{\"cell_type\": \"widget\", \"source\": \"\"}]}"), "bad.ipynb: cell 1 has the unknown cell_type \"widget\" (known: code, markdown, raw)")
        XCTAssertEqual(message("{\"cells\": [{\"cell_type\": \"code\", \"source\": [1]}]}"), "bad.ipynb: the source of cell 1 is a list of something other than strings")
        XCTAssertEqual(message("{\"cells\": [7]}"), "bad.ipynb: cell 1 is not a JSON object")
    }
}

final class NotebookRunTests: XCTestCase {
    private func runNotebook(_ text: String = sampleNotebook, allowErrors: Bool = false) -> NotebookResult {
        NotebookRunner(allowErrors: allowErrors).run(Notebook.percentFormat(text, name: "demo.cnn"))
    }

    func testOutputsInOrderWithTheLastValueAsTheResult() {
        let r = runNotebook()
        let tensors = r.cells[1]
        XCTAssertEqual(tensors.executionCount, 1)
        guard tensors.outputs.count == 3,
              case .stream("stdout", "hello [2, 2]\n") = tensors.outputs[0],
              case .data(let first, false) = tensors.outputs[1], first.text.hasPrefix("tensor [2, 2]"),
              case .data(let last, true) = tensors.outputs[2], last.text == "10" else {
            return XCTFail("\(tensors.outputs)")
        }
        let pictures = r.cells[2].outputs.compactMap { o -> DisplayData? in if case .data(let d, _) = o { return d } else { return nil } }
        XCTAssertEqual(pictures.map(\.width), [6, 5])
        XCTAssertEqual(pictures.map(\.caption), ["gray", nil])
        XCTAssertEqual(pictures.first?.png?.prefix(4), [0x89, 0x50, 0x4E, 0x47])
    }

    func testAFailingCellStopsTheRunAndLaterCellsKeepNoOutputs() {
        let r = runNotebook()
        XCTAssertEqual(r.failures.map(\.cell), [4])
        XCTAssertEqual(r.failures.first?.diagnostic.span?.description, "demo.cnn:18:5")
        guard case .error(let e)? = r.cells[3].outputs.last else { return XCTFail("no error output") }
        XCTAssertEqual(e.name, "RuntimeError")
        XCTAssertEqual(e.place, "demo.cnn:18:5")
        XCTAssertTrue(e.rendered.contains("  18 | y = nope + 1\n     |     ^^^^\n"), e.rendered)
        XCTAssertNil(r.cells[4].executionCount)
        XCTAssertTrue(r.cells[4].outputs.isEmpty)
    }

    func testAllowErrorsRunsOn() {
        let r = runNotebook(allowErrors: true)
        XCTAssertEqual(r.cells.map(\.executionCount), [nil, 1, 2, 3, 4])
        guard case .stream(_, "after\n")? = r.cells[4].outputs.first else { return XCTFail("\(r.cells[4].outputs)") }
    }

    func testSyntaxErrorsAndInterruptionsStop() {
        let syntax = runNotebook("# %%\nx = (\n# %%\nprint(1)\n", allowErrors: false)
        XCTAssertEqual(syntax.failures.first?.diagnostic.kind, .syntax)
        XCTAssertNil(syntax.cells[1].executionCount)
        let runner = NotebookRunner(allowErrors: true)
        runner.cancellation.cancel()
        let stopped = runner.run(Notebook.percentFormat("# %%\nwhile true { }\n# %%\nprint(1)\n", name: "loop.cnn"))
        XCTAssertTrue(stopped.interrupted)
        XCTAssertNil(stopped.cells[1].executionCount, "an interrupt stops even with errors allowed")
    }

    func testProgressIsObservedButNotKept() {
        let runner = NotebookRunner()
        var started: [String] = [], updates = 0, finished = 0
        runner.onCellStart = { cell, index, count in started.append("\(index)/\(count) \(cell.title)") }
        runner.onProgress = { p in updates += 1; if p.finished { finished += 1 } }
        let text = "# %% check\nok = gradcheck(conv2d, randn(40, 40, seed=1), randn(3, 3, seed=2))\n# %%\n# nothing\n# %% last\nok\n"
        let r = runner.run(Notebook.percentFormat(text, name: "p.cnn"))
        XCTAssertEqual(started, ["1/2 check", "2/2 last"])
        XCTAssertGreaterThan(updates, 2)
        XCTAssertEqual(finished, 1)
        for cell in r.cells {
            for o in cell.outputs { if case .data(let d, _) = o { XCTAssertFalse(d.text.contains("gradcheck ["), "no progress bar in outputs") } }
        }
    }

    func testEmptyCellsDoNotRun() {
        let r = runNotebook("# %%\n# only a comment\n\n# %%\n1\n")
        XCTAssertEqual(r.cells.map(\.executionCount), [nil, 1])
    }
}

final class NotebookWriterTests: XCTestCase {
    private lazy var result = NotebookRunner(allowErrors: true).run(Notebook.percentFormat(sampleNotebook, name: "demo.cnn"))

    func testHTMLIsOneSelfContainedPage() {
        let html = NotebookWriter.html(result)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("<title>A small notebook</title>"))
        XCTAssertTrue(html.contains("<h1>A small notebook</h1>"), "Markdown rendered")
        XCTAssertTrue(html.contains("<em>text</em>"))
        XCTAssertEqual(html.components(separatedBy: "src=\"data:image/png;base64,").count - 1, result.pictureCount)
        XCTAssertEqual(result.pictureCount, 2)
        for external in ["src=\"http", "href=\"http", "<link", "<script", "@import", "url("] {
            XCTAssertFalse(html.contains(external), "no external resources: \(external)")
        }
        XCTAssertTrue(html.contains("<span class=\"b\">tensor</span>"), "builtins highlighted")
        XCTAssertTrue(html.contains("<span class=\"s\">&quot;hello <span class=\"si\">{</span></span>x<span class=\"o\">.</span>shape"), "interpolation highlighted")
        XCTAssertTrue(html.contains("<pre class=\"output error\">demo.cnn:18:5: error: unknown name &#39;nope&#39;"))
        XCTAssertTrue(html.contains("<figcaption>gray</figcaption>"))
        XCTAssertTrue(html.contains("<span class=\"prompt\">[3]</span>"))
    }

    func testEveryPictureIsAValidPNGInline() throws {
        let html = NotebookWriter.html(result)
        let pattern = try NSRegularExpression(pattern: "data:image/png;base64,([A-Za-z0-9+/=]+)\"")
        let matches = pattern.matches(in: html, range: NSRange(html.startIndex..., in: html))
        XCTAssertEqual(matches.count, 2)
        for m in matches {
            let b64 = String(html[Range(m.range(at: 1), in: html)!])
            let png = try XCTUnwrap(Data(base64Encoded: b64))
            XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        }
    }

    func testHighlighterEscapesEverything() {
        let h = Highlighter(builtins: ["relu"])
        XCTAssertEqual(h.html("a < b # <tag>"), "a <span class=\"o\">&lt;</span> b <span class=\"c\"># &lt;tag&gt;</span>")
        XCTAssertEqual(h.html("for i in 0..9 { relu(i) }"),
                       "<span class=\"k\">for</span> i <span class=\"k\">in</span> <span class=\"n\">0</span><span class=\"o\">..</span><span class=\"n\">9</span> { <span class=\"b\">relu</span>(i) }")
        XCTAssertEqual(h.html("\"open {x"), "<span class=\"s\">&quot;open <span class=\"si\">{</span></span>x<span class=\"s\"></span>")
    }

    func testIpynbStructure() throws {
        let data = try NotebookWriter.ipynb(result)
        let top = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(top["nbformat"] as? Int, 4)
        let metadata = try XCTUnwrap(top["metadata"] as? [String: Any])
        XCTAssertEqual((metadata["language_info"] as? [String: Any])?["name"] as? String, "cnn")
        XCTAssertEqual((metadata["kernelspec"] as? [String: Any])?["name"] as? String, "cnnlab")
        let cells = try XCTUnwrap(top["cells"] as? [[String: Any]])
        XCTAssertEqual(Set(cells.compactMap { $0["id"] as? String }).count, cells.count, "unique cell ids")
        XCTAssertEqual(cells.map { $0["cell_type"] as? String }, ["markdown", "code", "code", "code", "code"])
        let outputs = try XCTUnwrap(cells[1]["outputs"] as? [[String: Any]])
        XCTAssertEqual(outputs.map { $0["output_type"] as? String }, ["stream", "display_data", "execute_result"])
        XCTAssertEqual(outputs[2]["execution_count"] as? Int, 1)
        let picture = try XCTUnwrap((cells[2]["outputs"] as? [[String: Any]])?.first)
        XCTAssertNotNil((picture["data"] as? [String: Any])?["image/png"] as? String)
        let error = try XCTUnwrap((cells[3]["outputs"] as? [[String: Any]])?.first)
        XCTAssertEqual(error["ename"] as? String, "RuntimeError")
        XCTAssertEqual((error["traceback"] as? [String])?.first, "demo.cnn:18:5: error: unknown name 'nope'")
    }

    func testMarkdownLinksPicturesBesideIt() throws {
        let folder = try Support.temporaryFolder("markdown")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/demo.md"
        try FileManager.default.createDirectory(atPath: folder + "/demo_files", withIntermediateDirectories: true)
        for stale in ["cell9-9.png", "notes.txt"] { _ = FileManager.default.createFile(atPath: folder + "/demo_files/" + stale, contents: Data()) }
        try NotebookWriter.write(result, format: .markdown, to: path)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder + "/demo_files/cell9-9.png"), "a stale picture is removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/demo_files/notes.txt"), "other files stay")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.hasPrefix("# A small notebook\n"))
        XCTAssertTrue(text.contains("```cnn\nx = tensor([[1, 2], [3, 4]])"))
        let links = try NSRegularExpression(pattern: "!\\[[^\\]]*\\]\\(([^)]+)\\)").matches(in: text, range: NSRange(text.startIndex..., in: text))
        XCTAssertEqual(links.count, 2)
        for link in links {
            let relative = String(text[Range(link.range(at: 1), in: text)!])
            XCTAssertTrue(relative.hasPrefix("demo_files/"), relative)
            XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/" + relative), relative)
        }
        XCTAssertEqual(NotebookWriter.fenced("a ``` b", language: "text"), "````text\na ``` b\n````")
    }
}

/// `cnn notebook` as a process: formats, statuses, and what it writes on failure.
final class NotebookCommandTests: XCTestCase {
    func testStatusesAndFiles() throws {
        let folder = try Support.temporaryFolder("notebook-command")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = folder + "/demo.cnn"
        try sampleNotebook.write(toFile: source, atomically: true, encoding: .utf8)

        let failing = try Support.cnn(["notebook", source, "-o", folder + "/out.html"])
        XCTAssertEqual(failing.status, 1, failing.errors)
        XCTAssertTrue(failing.errors.contains("cell 4: \(source):18:5: error: unknown name 'nope'"), failing.errors)
        let html = try String(contentsOfFile: folder + "/out.html", encoding: .utf8)
        XCTAssertTrue(html.contains("unknown name"), "the page is written with the error")

        let allowed = try Support.cnn(["notebook", source, "-o", folder + "/out.ipynb", "--allow-errors"])
        XCTAssertEqual(allowed.status, 0, allowed.errors)
        XCTAssertTrue(allowed.errors.contains("wrote \(folder)/out.ipynb: 4 of 4 code cells ran, 2 pictures, 1 error"), allowed.errors)

        let markdown = try Support.cnn(["notebook", source, "--output", folder + "/out.md", "--allow-errors"])
        XCTAssertEqual(markdown.status, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/out_files/cell3-1.png"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/out_files/cell3-2.png"))

        let unknown = try Support.cnn(["notebook", source, "-o", folder + "/out.pdf"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertEqual(unknown.errors, "cnn notebook: cannot tell the format of \(folder)/out.pdf; name it .html, .ipynb or .md\n")
        let missing = try Support.cnn(["notebook", folder + "/missing.cnn", "-o", folder + "/x.html"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.errors, "cnn notebook: no such file: \(folder)/missing.cnn\n")
        try "{\"cells\": [{\"cell_type\": \"code\"}]}".write(toFile: folder + "/bad.ipynb", atomically: true, encoding: .utf8)
        let bad = try Support.cnn(["notebook", folder + "/bad.ipynb", "-o", folder + "/bad.html"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertEqual(bad.errors, "cnn notebook: \(folder)/bad.ipynb: cell 1 has no \"source\" (a string or a list of strings)\n")
        let same = try Support.cnn(["notebook", folder + "/out.ipynb", "-o", folder + "/out.ipynb"])
        XCTAssertEqual(same.status, 2, "never overwrites its input")

        // An exported notebook runs again as input.
        let again = try Support.cnn(["notebook", folder + "/out.ipynb", "-o", folder + "/again.html", "--allow-errors"])
        XCTAssertEqual(again.status, 0, again.errors)
        XCTAssertTrue(again.errors.contains("4 of 4 code cells ran, 2 pictures, 1 error"), again.errors)
    }

    func testInterruptWritesWhatRan() throws {
        let folder = try Support.temporaryFolder("notebook-interrupt")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "# %%\nprint(\"started\")\n# %%\nwhile true { }\n# %%\nprint(\"never\")\n".write(toFile: folder + "/loop.cnn", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Support.executable)
        process.arguments = ["notebook", folder + "/loop.cnn", "-o", folder + "/loop.html"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 1)
        kill(process.processIdentifier, SIGINT)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { process.terminate(); return XCTFail("the run did not stop") }
        XCTAssertEqual(process.terminationStatus, 130)
        let html = try String(contentsOfFile: folder + "/loop.html", encoding: .utf8)
        XCTAssertTrue(html.contains("started"))
        XCTAssertTrue(html.contains("interrupted"))
        XCTAssertFalse(html.contains("output stdout\">never"))
    }
}
