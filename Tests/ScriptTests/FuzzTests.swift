import Engine
import Foundation
@testable import Script
import XCTest

/// Random and mutated scripts never crash the parser or the interpreter and always end:
/// the step budget bounds loops, a watchdog cancels long engine work, and each run's time
/// is asserted.
final class FuzzTests: XCTestCase {
    /// Builtins that write files are left out, so generated scripts cannot litter the disk.
    let registry = BuiltinRegistry(BuiltinRegistry.standard().all.filter { !$0.exampleUsesFiles })
    private var savedLimit = 0

    // Tensors of at most 4M numbers, so that no generated script spends long in one operation.
    override func setUp() {
        savedLimit = Conversions.maximumElements
        Conversions.maximumElements = 1 << 22
    }

    override func tearDown() { Conversions.maximumElements = savedLimit }

    private func corpus() throws -> [String] {
        var texts = try TestFiles.goldenScripts().map { try String(contentsOf: $0, encoding: .utf8) }
        texts.append(try TestFiles.tourCode())
        texts += registry.all.map(\.example)
        return texts
    }

    private static let fragments = ["(", ")", "[", "]", "{", "}", "\"", "'", ",", ".", "..", ":", "=", "==", "+", "-", "*", "/",
                                    "@", "^", "->", "#", "\n", " ", "0", "1", "-1", "2.5", "x", "for", "in", "if", "else", "while",
                                    "fn", "return", "break", "not", "and", "none", "{x}", "\\", "[:]", "1e300", "λ", "100000", "65536", "-100000", "9"]

    private func mutate(_ text: String, _ g: inout SeededGenerator) -> String {
        var scalars = Array(text.unicodeScalars)
        for _ in 0..<Int.random(in: 1...4, using: &g) {
            let i = scalars.isEmpty ? 0 : Int.random(in: 0..<scalars.count, using: &g)
            switch Int.random(in: 0..<4, using: &g) {
            case 0 where !scalars.isEmpty:  // delete a stretch
                scalars.removeSubrange(i..<min(scalars.count, i + Int.random(in: 1...6, using: &g)))
            case 1:  // insert a fragment
                scalars.insert(contentsOf: Self.fragments.randomElement(using: &g)!.unicodeScalars, at: i)
            case 2 where !scalars.isEmpty:  // duplicate a stretch
                let j = min(scalars.count, i + Int.random(in: 1...40, using: &g))
                scalars.insert(contentsOf: scalars[i..<j], at: j)
            default:  // swap two lines
                var lines = String(String.UnicodeScalarView(scalars)).components(separatedBy: "\n")
                if lines.count > 1 { lines.swapAt(Int.random(in: 0..<lines.count, using: &g), Int.random(in: 0..<lines.count, using: &g)) }
                scalars = Array(lines.joined(separator: "\n").unicodeScalars)
            }
        }
        return String(String.UnicodeScalarView(scalars))
    }

    private func randomScript(_ g: inout SeededGenerator) -> String {
        (0..<Int.random(in: 1...40, using: &g)).map { _ in Self.fragments.randomElement(using: &g)! }.joined(separator: " ")
    }

    /// Parses and runs `text` with a budget and a watchdog; returns the seconds it took.
    private func exercise(_ text: String) -> TimeInterval {
        // CNNLAB_FUZZ_TRACE=path keeps the script being run in a file, to find one that crashes.
        if let trace = ProcessInfo.processInfo.environment["CNNLAB_FUZZ_TRACE"] {
            try? text.write(toFile: trace, atomically: false, encoding: .utf8)
        }
        let start = Date()
        let recorder = EventRecorder()
        let interpreter = Interpreter(sink: recorder, registry: registry, options: Interpreter.Options(stepBudget: 20_000))
        let flag = interpreter.cancellation
        let watchdog = DispatchWorkItem { flag.cancel() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 2, execute: watchdog)
        for cell in Cells.split(text, name: "fuzz") where !cell.isMarkdown {
            let program = Parser.parse(cell.source)
            // Printing what parsed and parsing it again must not crash either.
            _ = Parser.parse(SourceFile(name: "again", text: ASTPrinter.source(program.statements)))
            if program.diagnostics.isEmpty { interpreter.execute(program) }
            for d in program.diagnostics { _ = d.rendered() }
        }
        watchdog.cancel()
        _ = recorder.transcript
        return Date().timeIntervalSince(start)
    }

    func testMutatedScriptsNeitherCrashNorHang() throws {
        let texts = try corpus()
        var g = SeededGenerator(seed: 2024)
        let iterations = Int(ProcessInfo.processInfo.environment["CNNLAB_FUZZ_ITERATIONS"] ?? "") ?? 3000
        let slowest = withLargeStack { () -> (TimeInterval, String) in
            var worst: (TimeInterval, String) = (0, "")
            for _ in 0..<iterations {
                let script = self.mutate(texts.randomElement(using: &g)!, &g)
                let t = self.exercise(script)
                if t > worst.0 { worst = (t, script) }
            }
            return worst
        }
        XCTAssertLessThan(slowest.0, 10, "the slowest script took \(slowest.0) s:\n\(slowest.1)")
    }

    func testRandomTokenSoupNeitherCrashesNorHangs() {
        var g = SeededGenerator(seed: 99)
        let slowest = withLargeStack { () -> TimeInterval in
            (0..<400).map { _ in self.exercise(self.randomScript(&g)) }.max() ?? 0
        }
        XCTAssertLessThan(slowest, 10)
    }

    func testEndlessProgramsEndWithinTheBudget() {
        for code in ["while true { }", "fn f() { while true { x = 1 } }\nf()", "for i in 0..1000000000 { }",
                     "x = 0\nwhile x >= 0 { x = x + 1 }", "g = f -> f(f)\ng(g)"] {
            XCTAssertLessThan(exercise(code), 10, code)
        }
    }
}
