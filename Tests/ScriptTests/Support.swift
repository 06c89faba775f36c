import Foundation
import Script
import XCTest

/// Paths of the test sources, found from this file, so tests read what is committed beside them.
enum TestFiles {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let packageRoot = folder.deletingLastPathComponent().deletingLastPathComponent()
    /// The golden `cnn run` scripts (run by ShellTests/GoldenTests; parsed and mutated here).
    static let golden = packageRoot.appendingPathComponent("Tests/ShellTests/Golden")

    /// Whether tests should rewrite their expected files instead of comparing against them.
    static var regenerating: Bool { ProcessInfo.processInfo.environment["CNNLAB_REGENERATE"] == "1" }

    static func goldenScripts() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: golden, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "cnn" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// The code blocks of the committed copy of TOUR.md, joined.
    static func tourCode() throws -> String {
        let text = try String(contentsOf: folder.appendingPathComponent("TOUR.md"), encoding: .utf8)
        var code: [String] = [], inside = false
        for line in text.components(separatedBy: "\n") {
            if line.hasPrefix("```") { inside.toggle(); continue }
            if inside { code.append(line) }
        }
        return code.joined(separator: "\n") + "\n"
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("cnn-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Runs code in a fresh session and returns what a terminal would show, and the outcome.
@discardableResult
func runCode(_ code: String, options: Interpreter.Options = Interpreter.Options(stepBudget: 1_000_000),
         interpreter existing: Interpreter? = nil) -> (transcript: String, outcome: RunOutcome) {
    let recorder = EventRecorder()
    let interpreter = existing ?? Interpreter(sink: recorder, options: options)
    interpreter.sink = recorder
    let outcome = interpreter.run(SourceFile(name: "test", text: code))
    return (recorder.transcript, outcome)
}

/// The value of the last expression of `code`, or a test failure.
func value(_ code: String, file: StaticString = #filePath, line: UInt = #line) -> Value? {
    let (transcript, outcome) = runCode(code)
    guard case .success(let v) = outcome else {
        XCTFail("expected success, got: \(transcript)", file: file, line: line)
        return nil
    }
    return v
}

func text(_ code: String, file: StaticString = #filePath, line: UInt = #line) -> String {
    guard let v = value(code, file: file, line: line) else { return "<failed>" }
    return Display.text(v)
}

/// The message of the error `code` stops with, or a test failure.
func errorMessage(_ code: String, file: StaticString = #filePath, line: UInt = #line) -> String {
    let (_, outcome) = runCode(code)
    switch outcome {
    case .failed(let d): return d.message
    case .syntaxErrors(let ds): return ds.map(\.message).joined(separator: "\n")
    case .success: XCTFail("expected an error from: \(code)", file: file, line: line); return ""
    }
}
