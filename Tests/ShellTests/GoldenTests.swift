import Foundation
import Script
@testable import Shell
import XCTest

/// Each Golden/NAME.cnn runs as `cnn run` would; what it prints (output and errors on one
/// stream, in order, then the exit status) must equal Golden/NAME.out exactly.
/// CNNLAB_REGENERATE=1 rewrites the .out files from the current behaviour.
final class GoldenTests: XCTestCase {
    static func transcript(of script: URL) throws -> String {
        let text = try String(contentsOf: script, encoding: .utf8)
        let out = URL(fileURLWithPath: try Support.temporaryFolder("golden"))
        defer { try? FileManager.default.removeItem(at: out) }
        let stream = StringOutput()
        let runner = ScriptRunner(outputDirectory: out.path, standardOutput: stream, standardError: stream, showsProgress: false)
        runner.options.stepBudget = 1_000_000
        let status = withLargeStack { runner.run(text: text, name: script.lastPathComponent, arguments: ["first", "second"]) }
        // Name the pictures written, so the golden file records that they exist.
        let pictures = (try? FileManager.default.contentsOfDirectory(atPath: out.path).sorted()) ?? []
        return stream.text.replacingOccurrences(of: out.path, with: "OUT")
            + "--- exit status \(status); pictures: \(pictures.joined(separator: ", "))\n"
    }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    func testGoldenTranscripts() throws {
        let scripts = try FileManager.default.contentsOfDirectory(at: GoldenTests.folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "cnn" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        XCTAssertGreaterThanOrEqual(scripts.count, 8)
        for script in scripts {
            let actual = try GoldenTests.transcript(of: script)
            let expectedURL = script.deletingPathExtension().appendingPathExtension("out")
            if ProcessInfo.processInfo.environment["CNNLAB_REGENERATE"] == "1" {
                try actual.write(to: expectedURL, atomically: true, encoding: .utf8)
                continue
            }
            let expected = try String(contentsOf: expectedURL, encoding: .utf8)
            if actual != expected {
                XCTFail("\(script.lastPathComponent) differs from its .out file (CNNLAB_REGENERATE=1 rewrites it):\n--- expected\n\(expected)\n--- actual\n\(actual)")
            }
        }
    }
}
