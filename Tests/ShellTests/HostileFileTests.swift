import Foundation
import XCTest

/// Every file of Tests/ModelsTests/Fixtures/hostile (written by scripts/make-hostile-files.py)
/// met as a user meets it, through `cnn run` (or `cnn notebook`): each is refused with a
/// message naming it, with a plain error status, never a crash signal or a hang.
/// docs/SECURITY.md lists what each one is told; `CNNLAB_REGENERATE=1` rewrites that table.
final class HostileFileTests: XCTestCase {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ModelsTests/Fixtures/hostile").path
    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/SECURITY.md").path

    /// The command that opens `name` as a user would, with any script it needs written to `scratch`.
    private func command(_ name: String, scratch: String) throws -> [String] {
        let path = HostileFileTests.folder + "/" + name
        let ext = (name as NSString).pathExtension
        if ext == "cnn" { return ["run", path] }
        if ext == "ipynb" { return ["notebook", path, "-o", scratch + "/out.html"] }
        let script: String
        switch ext {
        case "png", "jpg": script = "x = image(\"\(path)\")\nprint(x.shape)\n"
        case "": script = "e = evaluate(load(\"fashion\"), \"\(path)\", split=\"train\", limit=10)\nprint(e.accuracy)\n"
        default: script = "x = load(\"\(path)\")\nprint(x)\n"
        }
        // One folder per file, so that the script's own name never looks like the file's.
        try FileManager.default.createDirectory(atPath: scratch + "/" + name, withIntermediateDirectories: true)
        let file = scratch + "/" + name + "/open.cnn"
        try script.write(toFile: file, atomically: true, encoding: .utf8)
        return ["run", file]
    }

    func testEveryHostileFileIsRefusedWithItsNameAndNoCrash() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: HostileFileTests.folder).sorted()
        XCTAssertGreaterThanOrEqual(names.count, 40, "run scripts/make-hostile-files.py")
        let scratch = try Support.temporaryFolder("hostile")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // A fixed memory limit, so that the messages (and the table) are the same on every machine.
        setenv("CNN_MAX_MEMORY", "4G", 1)
        setenv("CNN_PICTURES", "none", 1)
        var rows: [String] = []
        for name in names {
            let start = Date()
            let r = try Support.spawn(Support.executable, try command(name, scratch: scratch), timeout: 60)
            let seconds = Date().timeIntervalSince(start)
            XCTAssertFalse(r.timedOut, "\(name) hangs")
            XCTAssertNotEqual(r.status, 0, "\(name) was accepted: \(r.output)")
            XCTAssertLessThan(r.status, 128, "\(name) ends with a signal: \(r.output)")
            XCTAssertFalse(r.output.contains("Fatal error"), "\(name): \(r.output)")
            let line = r.output.split(separator: "\n").first { $0.contains(name) }.map(String.init)
            XCTAssertNotNil(line, "\(name): the error does not name the file: \(r.output)")
            XCTAssertLessThan(seconds, 30, "\(name) takes \(Int(seconds)) s to refuse")
            // The message from the file's name on, the folders left out.
            var message = line ?? r.output
            message = message.replacingOccurrences(of: HostileFileTests.folder + "/", with: "")
            message = message.replacingOccurrences(of: scratch + "/\(name)/", with: "")
            if let range = message.range(of: name) { message = String(message[range.lowerBound...]) }
            rows.append("| `\(name)` | \(r.status) | \(message.replacingOccurrences(of: "|", with: "\\|")) |")
        }
        let table = (["| file | exit status | message |", "|---|---|---|"] + rows).joined(separator: "\n")
        let begin = "<!-- hostile files: begin -->", end = "<!-- hostile files: end -->"
        let document = try String(contentsOfFile: HostileFileTests.document, encoding: .utf8)
        guard let b = document.range(of: begin), let e = document.range(of: end) else {
            return XCTFail("docs/SECURITY.md has no \(begin) ... \(end) section")
        }
        let current = String(document[b.upperBound..<e.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
        if ProcessInfo.processInfo.environment["CNNLAB_REGENERATE"] == "1" {
            let updated = document.replacingCharacters(in: b.upperBound..<e.lowerBound, with: "\n" + table + "\n")
            try updated.write(toFile: HostileFileTests.document, atomically: true, encoding: .utf8)
        } else {
            XCTAssertEqual(current, table, "docs/SECURITY.md's table is out of date: run with CNNLAB_REGENERATE=1")
        }
    }
}

/// Scripts that never end on their own stop in every front end: deep recursion with an error,
/// not a stack overflow; endless loops on the step budget CNN_MAX_STEPS.
final class ScriptBudgetTests: XCTestCase {
    private func write(_ text: String, _ name: String, in folder: String) throws -> String {
        let path = folder + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func cnn(_ arguments: [String], steps: String? = nil) throws -> Support.Finished {
        var environment = ProcessInfo.processInfo.environment
        environment["CNN_PICTURES"] = "none"
        if let steps { environment["CNN_MAX_STEPS"] = steps } else { environment["CNN_MAX_STEPS"] = nil }
        return try Support.run(Support.executable, arguments, environment: environment, timeout: 60)
    }

    func testRecursionWithoutEndIsAnErrorNotACrash() throws {
        let folder = try Support.temporaryFolder("recursion")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for (name, body) in [("tail.cnn", "fn f(n) { f(n + 1) }\nf(0)\n"),
                             ("sum.cnn", "fn g(n) { 1 + g(n + 1) }\nprint(g(0))\n"),
                             ("mutual.cnn", "fn a(n) { b(n) }\nfn b(n) { [a(n)] }\na(0)\n")] {
            let r = try cnn(["run", try write(body, name, in: folder)])
            XCTAssertFalse(r.timedOut, name)
            XCTAssertEqual(r.status, 1, "\(name): \(r.output)\(r.errors)")
            XCTAssertTrue(r.errors.contains("\(name):") && r.errors.contains("calls nest more than 120 deep"), "\(name): \(r.errors)")
        }
    }

    func testEndlessLoopsStopOnTheStepBudgetInRunAndNotebook() throws {
        let folder = try Support.temporaryFolder("budget")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let loop = try write("x = 0\nwhile true { x = x + 1 }\n", "loop.cnn", in: folder)
        let run = try cnn(["run", loop], steps: "100000")
        XCTAssertFalse(run.timedOut)
        XCTAssertEqual(run.status, 1, run.errors)
        XCTAssertTrue(run.errors.contains("the step budget of 100000 steps is used up (CNN_MAX_STEPS)"), run.errors)
        let notebook = try write("# %%\nx = 1\n# %%\nwhile true { x = x + 1 }\n", "nb.cnn", in: folder)
        let cells = try cnn(["notebook", notebook, "-o", folder + "/nb.html"], steps: "100000")
        XCTAssertFalse(cells.timedOut)
        XCTAssertEqual(cells.status, 1, cells.errors)
        let page = (try? String(contentsOfFile: folder + "/nb.html", encoding: .utf8)) ?? ""
        XCTAssertTrue(page.contains("step budget of 100000 steps"), cells.errors)
        // A finite script well within the budget runs as before.
        let fine = try cnn(["run", try write("s = 0\nfor i in 0..99 { s = s + i }\nprint(s)\n", "fine.cnn", in: folder)], steps: "100000")
        XCTAssertEqual(fine.status, 0, fine.errors)
        XCTAssertEqual(fine.output, "4950\n")
        let bad = try cnn(["run", loop], steps: "lots")
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.errors.contains("CNN_MAX_STEPS=lots is not a step budget"), bad.errors)
    }

    func testAMemoryLimitThatIsNoSizeIsRefused() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["CNN_MAX_MEMORY"] = "plenty"
        let r = try Support.run(Support.executable, ["run", "/dev/null"], environment: environment, timeout: 30)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.errors.contains("CNN_MAX_MEMORY=plenty is not a size"), r.errors)
        // A low limit refuses a tensor a script asks for, with the size and the limit.
        environment["CNN_MAX_MEMORY"] = "64M"
        let folder = try Support.temporaryFolder("memory")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let big = try write("x = zeros(8192, 8192)\n", "big.cnn", in: folder)
        let refused = try Support.run(Support.executable, ["run", big], environment: environment, timeout: 30)
        XCTAssertEqual(refused.status, 1, refused.errors)
        XCTAssertTrue(refused.errors.contains("256 MB") && refused.errors.contains("CNN_MAX_MEMORY=64M"), refused.errors)
    }
}
