import Foundation
import XCTest

/// The front ends as a user meets them: the `cnn` executable (`cnn FILE`, `cnn run FILE`, and
/// `cnn` reading a script from stdin) run as a process, from the build that made these tests.
final class CommandTests: XCTestCase {
    private var executable: URL {
        // The test bundle runs from the build's products folder, where `cnn` is built beside it.
        let testBinary = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        let products = testBinary.deletingLastPathComponent()
        return products.appendingPathComponent("cnn")
    }

    private func launch(_ arguments: [String], stdin: String? = nil, interruptAfter: TimeInterval? = nil) throws -> (status: Int32, output: String, errors: String) {
        guard FileManager.default.isExecutableFile(atPath: executable.path) else {
            XCTFail("cnn is not built at \(executable.path)")
            return (-1, "", "")
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        if let delay = interruptAfter {
            Thread.sleep(forTimeInterval: delay)
            kill(process.processIdentifier, SIGINT)
        }
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output, errors)
    }

    private func script(_ text: String) throws -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("cnn-\(UUID().uuidString).cnn")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testRunSubcommandAndShebangFormAgree() throws {
        let path = try script("print(args)\n6 * 7")
        let viaRun = try launch(["run", path, "x"]), direct = try launch([path, "x"])
        XCTAssertEqual(viaRun.status, 0)
        XCTAssertEqual(viaRun.output, direct.output)
        XCTAssertTrue(viaRun.output.hasPrefix("[\"x\"]"), viaRun.output)
    }

    /// The engine is compiled for AVX2 and FMA: on a CPU without them cnn says so and stops,
    /// before any engine code could die of an illegal instruction.
    func testACPUWithoutAVX2IsToldSoInsteadOfCrashing() throws {
        let folder = try Support.temporaryFolder("cpu")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let old = folder + "/cpuinfo"
        try "processor\t: 0\nflags\t\t: fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt\n".write(toFile: old, atomically: true, encoding: .utf8)
        var environment = ProcessInfo.processInfo.environment
        environment["CNN_CPUINFO"] = old
        let script = folder + "/one.cnn"
        try "print(1 + 1)\n".write(toFile: script, atomically: true, encoding: .utf8)
        let r = try Support.run(Support.executable, ["run", script], environment: environment, timeout: 30)
        #if arch(x86_64)
        XCTAssertEqual(r.status, 2, r.errors)
        XCTAssertTrue(r.errors.contains("this CPU lacks avx, avx2, fma"), r.errors)
        XCTAssertTrue(r.errors.contains("Package.swift"), r.errors)
        #endif
        // This machine's own CPU runs it.
        environment["CNN_CPUINFO"] = nil
        let fine = try Support.run(Support.executable, ["run", script], environment: environment, timeout: 30)
        XCTAssertEqual(fine.status, 0, fine.errors)
        XCTAssertEqual(fine.output, "2\n")
    }

    func testExitStatuses() throws {
        XCTAssertEqual(try launch([try script("print(args)")]).output, "[]\n")
        XCTAssertEqual(try launch([try script("print(args)"), "a", "b"]).output, "[\"a\", \"b\"]\n")
        XCTAssertEqual(try launch([try script("x = nope")]).status, 1)
        XCTAssertEqual(try launch([try script("x = (")]).status, 2)
        let missing = try launch(["/nonexistent/script.cnn"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertEqual(missing.errors, "cnn run: no such file: /nonexistent/script.cnn\n")
    }

    func testPicturesGoBesideTheScriptOrToTheGivenFolder() throws {
        let path = try script("show(zeros(4, 4))")
        let beside = try launch([path])
        let folder = (path as NSString).deletingPathExtension + "-out"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        XCTAssertEqual(beside.output, "image 4x4: \(folder)/cell1-1.png\n")
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/cell1-1.png"))
        let other = (NSTemporaryDirectory() as NSString).appendingPathComponent("cnn-out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: other) }
        XCTAssertEqual(try launch([path, "--out", other]).output, "image 4x4: \(other)/cell1-1.png\n")
    }

    func testStdinThatIsNotATerminalRunsAsAScript() throws {
        let r = try launch([], stdin: "x = 6\nx * 7\n")
        XCTAssertEqual(r.status, 0)
        XCTAssertEqual(r.output, "42\n")
        XCTAssertEqual(try launch([], stdin: "y = undefined\n").status, 1)
    }

    func testInterruptStopsAScriptWithAMessage() throws {
        let r = try launch([try script("print(\"started\")\nwhile true { }")], interruptAfter: 1)
        XCTAssertEqual(r.status, 130)
        XCTAssertEqual(r.output, "started\n")
        XCTAssertTrue(r.errors.contains("interrupted: stopped here"), r.errors)
    }

    /// `cnn bench --model FILE --layers`: the network's forward pass as one JSON line, then where
    /// its time went, kind by kind and layer by layer, the parts adding up to the whole.
    func testBenchTimesAModelLayerByLayer() throws {
        let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("ModelsTests/Fixtures/onnx/inception_legacy.onnx").path
        let r = try launch(["bench", "--model", model, "--layers", "--repeats", "3", "--warmup", "1"])
        XCTAssertEqual(r.status, 0, r.errors)
        let lines = r.output.split(separator: "\n").map(String.init)
        let first = try JSONSerialization.jsonObject(with: Data((lines.first ?? "").utf8)) as? [String: Any]
        XCTAssertEqual(first?["workload"] as? String, "model.forward", r.output)
        XCTAssertGreaterThan(first?["ms"] as? Double ?? 0, 0, r.output)
        let sum = try XCTUnwrap(lines.first { $0.hasPrefix("sum of the layers") }, r.output)
        XCTAssertTrue(lines.contains { $0.hasPrefix("conv2d") }, "a line for the convolutions: \(r.output)")
        let layers = lines.drop { !$0.hasPrefix("every layer") }.dropFirst()
        XCTAssertGreaterThan(layers.count, 3, r.output)
        // Each layer's line: milliseconds, GFLOP/s or -, kind, name, output shape.
        for line in layers {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            XCTAssertGreaterThanOrEqual(fields.count, 5, line)
            XCTAssertNotNil(Double(fields.first ?? ""), line)
            XCTAssertTrue(line.hasSuffix("]"), line)
        }
        XCTAssertTrue(sum.contains("the whole pass"), sum)

        let wrong = try launch(["bench", "--layers"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertTrue(wrong.errors.contains("--input and --layers go with --model FILE"), wrong.errors)
        let missing = try launch(["bench", "--model", "/nonexistent/net.onnx"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.errors.contains("/nonexistent/net.onnx"), missing.errors)
    }
}
