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
        let file = scratch + "/open-\(name).cnn"
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
            message = message.replacingOccurrences(of: scratch + "/", with: "")
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
