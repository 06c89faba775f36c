import Foundation
import Script
@testable import Shell
import XCTest

final class SessionTests: XCTestCase {
    private func session() -> (Session, EventRecorder) {
        let recorder = EventRecorder()
        return (Session(sink: recorder), recorder)
    }

    private func errors(_ r: EventRecorder) -> [Diagnostic] {
        r.events.compactMap { if case .error(let d) = $0 { return d } else { return nil } }
    }

    func testCodeRunsAndVariablesLiveFromInputToInput() {
        let (s, r) = session()
        s.run("x = 6", name: "<1>")
        s.run("x * 7", name: "<2>")
        XCTAssertEqual(r.transcript, "42\n")
    }

    func testWhoListsVariablesNotBuiltins() {
        let (s, r) = session()
        s.run("%who", name: "<1>")
        XCTAssertEqual(r.transcript, "no variables\n")
        s.run("w = tensor([1, 2])\nname = \"conv1\"\nsum = 3", name: "<2>")
        s.run("%who", name: "<3>")
        let lines = r.transcript.split(separator: "\n").dropFirst().map(String.init)
        XCTAssertEqual(lines.map { String($0.prefix { $0 != " " }) }, ["name", "sum", "w"], "a variable hiding a builtin is listed")
        XCTAssertTrue(lines[2].contains("tensor"), lines[2])
    }

    func testResetForgetsEveryVariable() {
        let (s, r) = session()
        s.run("x = 1", name: "<1>")
        s.run("%reset", name: "<2>")
        XCTAssertNil(s.interpreter.value(named: "x"))
        XCTAssertNotNil(s.interpreter.value(named: "relu"), "builtins stay")
        guard case .failed = s.run("x", name: "<3>") else { return XCTFail("x should be gone") }
        XCTAssertTrue(r.transcript.contains("every variable is forgotten"))
    }

    func testTimeRunsTheRestAndReportsTheTime() {
        let (s, r) = session()
        guard case .success = s.run("%time y = 2 + 3\ny * 2", name: "<1>") else { return XCTFail(r.transcript) }
        XCTAssertTrue(r.transcript.hasPrefix("10\nwall time "), r.transcript)
        XCTAssertTrue(r.transcript.contains("processor time"))
        guard case .failed = s.run("%time", name: "<2>") else { return XCTFail("an empty %time is an error") }
        guard case .failed = s.run("%time nope", name: "<3>") else { return XCTFail("a failing %time fails") }
    }

    func testRunKeepsTheFilesVariables() throws {
        let folder = try Support.temporaryFolder("magic-run")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/lib.cnn"
        try "# %% one\nk = 3\n# %% [markdown]\n# text\n# %%\nprint(\"loaded {k}\")\n".write(toFile: path, atomically: true, encoding: .utf8)
        let (s, r) = session()
        guard case .success = s.run("%run \(path)", name: "<1>") else { return XCTFail(r.transcript) }
        s.run("k + 1", name: "<2>")
        XCTAssertEqual(r.transcript, "loaded 3\n4\n")
        guard case .failed = s.run("%run \(folder)/missing.cnn", name: "<3>") else { return XCTFail("missing file") }
        XCTAssertTrue(errors(r).last?.message.contains("no such file") ?? false)
        try "x = (".write(toFile: folder + "/broken.cnn", atomically: true, encoding: .utf8)
        guard case .syntaxErrors = s.run("%run '\(folder)/broken.cnn'", name: "<4>") else { return XCTFail("syntax errors") }
    }

    func testHelpMagicsAndQuestionMarks() {
        let (s, r) = session()
        s.run("%help", name: "<1>")
        for magic in ["%time", "%who", "%reset", "%run", "%help"] { XCTAssertTrue(r.transcript.contains(magic), magic) }
        s.run("relu?", name: "<2>")
        XCTAssertTrue(r.transcript.contains("relu(x=none)"), r.transcript)
        s.run("n = 5", name: "<3>")
        s.run("n??", name: "<4>")
        XCTAssertTrue(r.transcript.contains("n: number\n5\n"))
        guard case .failed = s.run("rleu?", name: "<5>") else { return XCTFail("unknown name") }
        XCTAssertEqual(errors(r).last?.message, "nothing is called 'rleu'; did you mean 'relu'?")
        XCTAssertNil(Session.helpTopic("x = a ? b"))
        XCTAssertEqual(Session.helpTopic("net.conv1?"), "net.conv1")
    }

    func testUnknownMagicsSuggestTheNearest() {
        let (s, r) = session()
        s.run("%tme x", name: "<1>")
        XCTAssertEqual(errors(r).last?.message, "unknown magic '%tme'; did you mean '%time'?")
        s.run("%frobnicate", name: "<2>")
        XCTAssertEqual(errors(r).last?.message, "unknown magic '%frobnicate'; the magics are %time, %who, %reset, %run, %help")
    }

    func testInterruptedWorkKeepsTheSession() {
        let (s, _) = session()
        s.run("x = 5", name: "<1>")
        s.cancellation.cancel()
        guard case .failed(let d) = s.run("for i in 0..1000000 { }", name: "<2>") else { return XCTFail("not interrupted") }
        XCTAssertEqual(d.kind, .interrupted)
        s.cancellation.reset()
        guard case .success(let v) = s.run("x", name: "<3>"), case .number(5)? = v else { return XCTFail("x lost") }
    }
}
