import XCTest
@testable import Models
import Engine

final class NetworkFilesTests: XCTestCase {
    func smallCNN() throws -> Network {
        let net = Network()
        try net.append("conv", LayerRegistry.make("conv2d", ["in": .int(1), "out": .int(3), "kernel": .int(3)]))
        try net.append("bn", LayerRegistry.make("batchnorm", ["channels": .int(3)]))
        try net.append("relu", LayerRegistry.make("relu"))
        try net.append("flat", LayerRegistry.make("flatten"))
        try net.append("fc", LayerRegistry.make("linear", ["in": .int(12), "out": .int(2)]))
        return net
    }

    func testSaveThenLoadGivesTheSameNetwork() throws {
        let folder = try temporaryFolder(for: self)
        let net = try Network.fashion(seed: 3)
        let path = folder.appendingPathComponent("net.safetensors").path
        try NetworkFiles.save(net, to: path)
        let back = try NetworkFiles.load(path)
        XCTAssertEqual(back.layerNames, net.layerNames)
        XCTAssertEqual(back.spec, net.spec)
        let x = Tensor.randn([2, 1, 28, 28], seed: 8)
        XCTAssertEqual(try back(x), try net(x))
        // The weights stay readable as a plain safetensors file (as Python's safetensors reads them).
        XCTAssertEqual(Set(try NetworkFiles.readWeights(path).keys), Set(net.parameterNames))
    }

    func testStateDictGoesOntoANetworkByName() throws {
        let net = try smallCNN()
        let report = try NetworkFiles.loadWeights(into: net, from: fixture("pytorch/small_cnn.pth").path)
        XCTAssertEqual(Set(report.loaded), Set(net.parameterNames))
        let expected = try NumPy.readArchive(at: fixture("pytorch/small_cnn_expected.npz"))
        for name in net.parameterNames { XCTAssertEqual(try net.parameter(name), expected[name], name) }
        // A checkpoint holding the state dict under "state_dict" loads the same way.
        let other = try smallCNN()
        try NetworkFiles.loadWeights(into: other, from: fixture("pytorch/checkpoint.pth").path)
        XCTAssertEqual(try other.parameter("fc.weight"), try net.parameter("fc.weight"))
    }

    func testMismatchedWeightsListEveryProblemAndChangeNothing() throws {
        let net = try smallCNN()
        let folder = try temporaryFolder(for: self)
        let path = folder.appendingPathComponent("w.safetensors").path
        var tensors = net.parameters
        tensors["fc.weight"] = Tensor(zeros: [3, 12])       // mis-shaped
        tensors["conv.bias"] = nil                          // missing
        tensors["fc.weigth"] = Tensor(zeros: [2, 12])       // unexpected, a typo
        try SafetensorsFile(tensors: tensors).write(to: URL(fileURLWithPath: path))
        let before = net.parameters
        XCTAssertThrowsError(try NetworkFiles.loadWeights(into: net, from: path)) { e in
            let m = "\(e)"
            for phrase in ["missing conv.bias", "unexpected fc.weigth", "did you mean 'fc.weight'", "mis-shaped fc.weight (network [2, 12], file [3, 12])"] {
                XCTAssertTrue(m.contains(phrase), "\(phrase) not in: \(m)")
            }
        }
        XCTAssertEqual(net.parameters, before)
        // Not strict: what fits goes on, and the report says the rest.
        let report = try NetworkFiles.loadWeights(into: net, from: path, strict: false)
        XCTAssertEqual(report.missing, ["conv.bias"])
        XCTAssertEqual(report.unexpected, ["fc.weigth"])
        XCTAssertEqual(report.misshaped.map(\.name), ["fc.weight"])
    }

    func testWeightsOnlyFilesSayHowToUseThem() throws {
        XCTAssertThrowsError(try NetworkFiles.load(fixture("pytorch/small_cnn.pth").path)) { e in
            XCTAssertTrue("\(e)".contains("load_weights"), "\(e)")
        }
        XCTAssertThrowsError(try NetworkFiles.load(fixture("safetensors/python.safetensors").path)) { e in
            XCTAssertTrue("\(e)".contains("weights only"), "\(e)")
        }
        XCTAssertThrowsError(try NetworkFiles.load("/nonexistent/model.safetensors")) { e in
            XCTAssertTrue("\(e)".contains("no such file"), "\(e)")
        }
        let folder = try temporaryFolder(for: self)
        let odd = try write(Data("hello".utf8), "model.h5", in: folder)
        XCTAssertThrowsError(try NetworkFiles.load(odd.path)) { e in XCTAssertTrue("\(e)".contains(".safetensors, .onnx"), "\(e)") }
    }

    func testPyTorchModulePathsMatchUnderscoredLayerNames() {
        XCTAssertEqual(NetworkFiles.underscored("features.0.weight"), "features_0.weight")
        XCTAssertEqual(NetworkFiles.underscored("_blocks.3._depthwise_conv.weight"), "_blocks_3__depthwise_conv.weight")
        XCTAssertEqual(NetworkFiles.underscored("fc.bias"), "fc.bias")
    }
}
