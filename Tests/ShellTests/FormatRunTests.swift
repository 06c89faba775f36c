import Foundation
import XCTest

/// Every model and tensor format a user brings, through `cnn run`: load, predict, saliency, and
/// the results compared with PyTorch's. One random-weight classifier (scripts/make-model-fixtures.py,
/// group "formats") is stored as ONNX from both exporters, a safetensors file, an .npz and a
/// state dict; its input, logits and saliency map are .npy files.
final class FormatRunTests: XCTestCase {
    /// Tests/ModelsTests/Fixtures/formats, beside this file's folder.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("ModelsTests/Fixtures/formats").path

    /// The network the weight-only formats go onto, as scripts/make-model-fixtures.py builds it in PyTorch.
    static let architecture = """
        net = network(conv1=conv(3, 6, 3, pad=1), bn1=batchnorm(6), relu1=relu(), pool1=maxpool(2),
                      conv2=conv(6, 8, 3, pad=1), relu2=relu(), gap=global_avgpool(), fc=linear(8, 4))
        """

    /// Runs `loading` (which defines `net`) and then the same checks in one script; returns what it printed.
    private func run(_ loading: String, saving: Bool = false) throws -> [String] {
        let folder = try Support.temporaryFolder("formats")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let f = FormatRunTests.fixtures
        let script = """
            \(loading)
            x = load("\(f)/input.npy")
            p = predict(net, x)
            print(p.index)
            print(p.label)
            print(max(abs(logits(net, x) - load("\(f)/logits.npy"))) / max(abs(load("\(f)/logits.npy"))))
            s = saliency(net, x, class=p.index, clip=none)
            expected = load("\(f)/saliency.npy")
            print(max(abs(s - expected)) / max(expected))
            save(s, "\(folder)/saliency.npy")
            back = load("\(folder)/saliency.npy")
            print(back.shape)
            print(max(abs(back - s)))
            """
        let path = folder + "/check.cnn"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try Support.cnn(["run", path], directory: folder)
        XCTAssertEqual(r.status, 0, r.output + r.errors)
        return r.output.split(separator: "\n").map(String.init)
    }

    /// PyTorch's top class for the fixture input.
    private var expectedTop: Int {
        // logits.npy is the 4 logits as '<f4' after a 128-byte header.
        let data = FileManager.default.contents(atPath: FormatRunTests.fixtures + "/logits.npy") ?? Data()
        let values = data.suffix(16).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        return values.indices.max { values[$0] < values[$1] } ?? -1
    }

    private func check(_ lines: [String], label: String?, file: StaticString = #filePath, line: UInt = #line) {
        guard lines.count == 6 else { return XCTFail("unexpected output \(lines)", file: file, line: line) }
        XCTAssertEqual(Int(lines[0]), expectedTop, file: file, line: line)
        if let label { XCTAssertEqual(lines[1], label, file: file, line: line) }
        XCTAssertLessThan(Double(lines[2]) ?? 1, 1e-4, "logits' relative error", file: file, line: line)
        XCTAssertLessThan(Double(lines[3]) ?? 1, 1e-4, "saliency's relative error", file: file, line: line)
        XCTAssertEqual(lines[4], "[1, 12, 12]", file: file, line: line)
        XCTAssertEqual(Double(lines[5]), 0, "the saliency map read back from .npy", file: file, line: line)
    }

    private let labels = ["cat", "dog", "bird", "fish"]

    func testONNXFromTheLegacyExporter() throws {
        let f = FormatRunTests.fixtures
        check(try run("net = load(\"\(f)/tiny_legacy.onnx\", classes=\"\(f)/labels.txt\")"), label: labels[expectedTop])
    }

    func testONNXFromTheDynamoExporter() throws {
        let f = FormatRunTests.fixtures
        check(try run("net = load(\"\(f)/tiny_dynamo.onnx\", classes=\"\(f)/labels.txt\")"), label: labels[expectedTop])
    }

    func testSafetensorsFromPython() throws {
        let f = FormatRunTests.fixtures
        check(try run(FormatRunTests.architecture + "\nn = load_weights(net, \"\(f)/tiny.safetensors\")"), label: String(expectedTop))
    }

    func testNumPyArchive() throws {
        let f = FormatRunTests.fixtures
        check(try run(FormatRunTests.architecture + "\nn = load_weights(net, \"\(f)/tiny.npz\")"), label: String(expectedTop))
    }

    func testPyTorchStateDict() throws {
        let f = FormatRunTests.fixtures
        check(try run(FormatRunTests.architecture + "\nn = load_weights(net, \"\(f)/tiny.pth\")"), label: String(expectedTop))
    }

    /// A network saved by cnnlab comes back whole from its own safetensors file.
    func testSafetensorsWrittenBySave() throws {
        let folder = try Support.temporaryFolder("formats-saved")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let f = FormatRunTests.fixtures
        let lines = try run("""
            first = load("\(f)/tiny_dynamo.onnx", classes="\(f)/labels.txt")
            save(first, "\(folder)/tiny.safetensors")
            net = load("\(folder)/tiny.safetensors")
            """)
        check(lines, label: labels[expectedTop])
    }

    /// Several named tensors in one .npz and one .safetensors file, picked by name when read back.
    func testSeveralNamedTensorsGoOutAndComeBack() throws {
        let folder = try Support.temporaryFolder("formats-tensors")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let script = """
            a = arange(6)
            b = reshape(arange(24), [2, 3, 4])
            for ext in ["npz", "safetensors"] {
                save(tensors(a=a, b=b), "\(folder)/both." + ext)
                both = load("\(folder)/both." + ext)
                print(both.b.shape)
                print(allclose(load("\(folder)/both." + ext, tensor="a"), a))
            }
            save(b, "\(folder)/one.npz", name="only")
            print(load("\(folder)/one.npz").only.shape)
            """
        let path = folder + "/tensors.cnn"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try Support.cnn(["run", path], directory: folder)
        XCTAssertEqual(r.status, 0, r.output + r.errors)
        XCTAssertEqual(r.output, "[2, 3, 4]\ntrue\n[2, 3, 4]\ntrue\n[2, 3, 4]\n")
        let missing = folder + "/missing.cnn"
        try "load(\"\(folder)/both.npz\", tensor=\"c\")".write(toFile: missing, atomically: true, encoding: .utf8)
        let bad = try Support.cnn(["run", missing], directory: folder)
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.errors.contains("holds no tensor named 'c'"), bad.errors)
    }

    /// preset="imagenet" gives ImageNet's normalization, and its class names only to a network
    /// with 1000 scores; a class list of the wrong length is refused.
    func testPresetsAndClassLists() throws {
        let folder = try Support.temporaryFolder("formats-presets")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let f = FormatRunTests.fixtures
        try "a\nb\n".write(toFile: folder + "/two.txt", atomically: true, encoding: .utf8)
        let script = """
            net = load("\(f)/tiny_legacy.onnx", preset="imagenet")
            print(len(net.classes))
            named = load("\(f)/tiny_legacy.onnx", preset="imagenet", classes="\(f)/labels.txt")
            print(named.classes)
            load("\(f)/tiny_legacy.onnx", classes="\(folder)/two.txt")
            """
        let path = folder + "/presets.cnn"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try Support.cnn(["run", path], directory: folder)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.output, "0\n[\"cat\", \"dog\", \"bird\", \"fish\"]\n")
        XCTAssertTrue(r.errors.contains("lists 2 class names, but the network gives 4 scores"), r.errors)
    }
}
