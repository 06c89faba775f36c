import Foundation
import Script
@testable import Shell
import XCTest

final class LineContinuationTests: XCTestCase {
    func testUnfinishedInputWaitsForMore() {
        for text in ["small = network(conv1=conv(1, 8, 5, pad=2), relu1=relu(),", "for c in 0..9 {", "x = [1, 2,",
                     "fn f(x) {\n  y = x", "y = 1 +", "f = x ->", "if a {\n} else", "g(x -> {"] {
            XCTAssertTrue(InputCompleteness.needsMore(text), text)
        }
    }

    func testFinishedInputRuns() {
        for text in ["x = 1", "for c in 0..9 { print(c) }", "show(img)", "", "# just a comment", "\"unclosed string",
                     "f(x))", "network(a=relu(),\n  b=relu())", "print(\"{x}\")"] {
            XCTAssertFalse(InputCompleteness.needsMore(text), text)
        }
    }
}

final class HistoryFileTests: XCTestCase {
    private func temporaryPath() -> String {
        (NSTemporaryDirectory() as NSString).appendingPathComponent("cnn-history-\(UUID().uuidString)")
    }

    func testEntriesSurviveARoundTripIncludingNewlinesAndBackslashes() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let history = HistoryFile(path: path)
        let entries = ["x = 1", "for c in 0..2 {\n  print(\"a\\nb {c}\")\n}", "path = \"C:\\\\dir\"", "λ = 2"]
        for e in entries { try history.append(e) }
        XCTAssertEqual(HistoryFile(path: path).load(), entries)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
    }

    func testTheFileKeepsOnlyTheNewestEntries() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let history = HistoryFile(path: path, limit: 20)
        for i in 0..<100 { try history.append("x = \(i)") }
        XCTAssertEqual(history.load(), (80..<100).map { "x = \($0)" })
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        XCTAssertLessThanOrEqual(lines.count, 25)  // rewritten once a quarter over the limit
    }

    func testMissingFileIsAnEmptyHistory() {
        XCTAssertEqual(HistoryFile(path: "/nonexistent/folder/history").load(), [])
    }

    func testBlankAndRepeatedEntriesAreNotRecorded() {
        XCTAssertFalse(HistoryFile.shouldRecord("   ", after: nil))
        XCTAssertFalse(HistoryFile.shouldRecord("x", after: "x"))
        XCTAssertTrue(HistoryFile.shouldRecord("x", after: "y"))
    }
}

final class ScriptRunnerTests: XCTestCase {
    private func run(_ text: String, arguments: [String] = []) throws -> (status: Int32, output: String, errors: String, folder: URL) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cnn-run-\(UUID().uuidString)")
        let out = StringOutput(), err = StringOutput()
        let runner = ScriptRunner(outputDirectory: folder.path, standardOutput: out, standardError: err, showsProgress: false)
        let status = runner.run(text: text, name: "script.cnn", arguments: arguments)
        return (status, out.text, err.text, folder)
    }

    func testExitStatusesAndStreams() throws {
        let ok = try run("print(\"hi\")\n1 + 1")
        XCTAssertEqual(ok.status, 0)
        XCTAssertEqual(ok.output, "hi\n2\n")
        XCTAssertEqual(ok.errors, "")

        let failing = try run("print(\"before\")\nx = undefined\nprint(\"after\")")
        XCTAssertEqual(failing.status, 1)
        XCTAssertEqual(failing.output, "before\n")
        XCTAssertTrue(failing.errors.hasPrefix("script.cnn:2:5: error: unknown name 'undefined'"), failing.errors)
        XCTAssertTrue(failing.errors.contains("  2 | x = undefined\n    |     ^^^^^^^^^\n"), failing.errors)

        let syntax = try run("print(\"never\")\nx = (")
        XCTAssertEqual(syntax.status, 2)
        XCTAssertEqual(syntax.output, "")
        XCTAssertTrue(syntax.errors.contains("syntax error"))
    }

    func testArgumentsAreVisibleAndTheShebangIsAComment() throws {
        let r = try run("#!/usr/bin/env cnn\nprint(args, len(args))", arguments: ["a", "b c"])
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.output, "[\"a\", \"b c\"] 2\n")
    }

    func testPicturesAreNamedByCellAndOrder() throws {
        let r = try run("show(zeros(2, 2))\n# %% [markdown]\n# text\n# %% two\nshow(ones(2, 3))\nshow(ones(3, 4, 4))\nprint(\"done\")")
        defer { try? FileManager.default.removeItem(at: r.folder) }
        XCTAssertEqual(r.status, 0, r.errors)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: r.folder.path).sorted(), ["cell1-1.png", "cell3-1.png", "cell3-2.png"])
        XCTAssertTrue(r.output.contains("image 3x2: \(r.folder.path)/cell3-1.png\n"), r.output)
    }

    func testDefaultOutputFolderIsBesideTheScript() {
        XCTAssertEqual(ScriptRunner.defaultOutputDirectory(for: "demos/tour.cnn"), "demos/tour-out")
        XCTAssertEqual(ScriptRunner.defaultOutputDirectory(for: "tour.cnn"), "tour-out")
    }

    func testMissingFileIsAUsageError() {
        XCTAssertEqual(runScriptCommand(path: "/nonexistent/x.cnn", arguments: [], outputDirectory: nil), 2)
    }

    func testProgressBarsAreDrawnOnlyWhenAskedFor() {
        let update = ProgressUpdate(id: 1, label: "classviz", completed: 45, total: 100, finished: false, status: "loss 0.23")
        XCTAssertEqual(EventPrinter.bar(update, width: 10), "classviz [####......] 45/100 loss 0.23")
        let quiet = StringOutput()
        let printer = EventPrinter(output: quiet, errors: quiet, showsProgress: false) { _ in "" }
        printer.emit(.progress(update))
        XCTAssertEqual(quiet.text, "")
        let loud = StringOutput()
        let terminal = EventPrinter(output: loud, errors: loud, showsProgress: true) { _ in "" }
        terminal.emit(.progress(update))
        terminal.emit(.text("next\n"))
        XCTAssertEqual(loud.text, "\r\u{1B}[2Kclassviz [##########..............] 45/100 loss 0.23\r\u{1B}[2Knext\n")
    }

    func testCellsSplitAsThePercentFormat() {
        let cells = Cells.split("#!/usr/bin/env cnn\n# intro comment\n# %% [markdown]\n# # Title\n# %% First\nx = 1\n# %%\ny = 2\n", name: "f")
        XCTAssertEqual(cells.map(\.number), [1, 2, 3])
        XCTAssertEqual(cells.map(\.isMarkdown), [true, false, false])
        XCTAssertEqual(cells[1].title, "First")
        XCTAssertEqual(cells[2].source.firstLine, 8)
        XCTAssertEqual(Cells.split("x = 1\n# %%\ny = 2", name: "f").map(\.number), [1, 2])  // code before the first marker is a cell
    }
}
