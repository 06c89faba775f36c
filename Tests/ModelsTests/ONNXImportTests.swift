import Engine
import Foundation
@testable import Models
import XCTest

/// Whole ONNX graphs as networks: PyTorch's exports (both exporters) against PyTorch's outputs,
/// and hand-built graphs for the forms each opset writes and for what must be refused.
final class ONNXImportTests: XCTestCase {
    private func imported(_ name: String) throws -> Network {
        try Network.fromONNX(contentsOf: fixture("onnx/\(name).onnx"))
    }

    private func reference(_ model: String) throws -> (input: Tensor, output: Tensor) {
        (try NumPy.readArray(at: fixture("onnx/\(model)_input.npy")), try NumPy.readArray(at: fixture("onnx/\(model)_output.npy")))
    }

    /// Every element within 1e-4 of the reference, relative to the reference's largest magnitude.
    private func assertMatches(_ actual: Tensor, _ expected: Tensor, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape, expected.shape, what, file: file, line: line)
        guard actual.shape == expected.shape else { return }
        let scale = Swift.max(expected.scalars.map(abs).max() ?? 0, 1e-3)
        let worst = zip(actual.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst / scale, 1e-4, "\(what): largest difference \(worst) against values up to \(scale)", file: file, line: line)
    }

    // MARK: - PyTorch's exports

    func testPyTorchExportsComputeWhatPyTorchComputed() throws {
        for model in ["residual", "inception", "operators"] {
            let (x, y) = try reference(model)
            for exporter in ["legacy", "dynamo"] {
                let net = try imported("\(model)_\(exporter)")
                assertMatches(try net(x), y, "\(model) (\(exporter) exporter)")
                XCTAssertEqual(net.spec, InputSpec(channels: x.shape[1], height: x.shape[2], width: x.shape[3]))
                for name in net.layerNames {
                    XCTAssertFalse(name.isEmpty || name.contains(".") || name == Network.inputName, "layer name '\(name)'")
                }
            }
        }
    }

    func testParametersAreNamedAfterTheInitializers() throws {
        XCTAssertEqual(try imported("residual_legacy").parameterNames, [
            "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
            "conv2.weight", "bn2.weight", "bn2.bias", "bn2.running_mean", "bn2.running_var",
        ])
        XCTAssertEqual(try imported("residual_dynamo").parameterNames, ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"])
        let legacy = try imported("inception_legacy"), dynamo = try imported("inception_dynamo")
        let expected = ["stem", "branch1", "branch3", "fc"].flatMap { [$0 + ".weight", $0 + ".bias"] }
        XCTAssertEqual(legacy.parameterNames, expected)
        XCTAssertEqual(dynamo.parameterNames, expected)
        let model = try ONNXModel(contentsOf: fixture("onnx/inception_legacy.onnx"))
        for name in expected { XCTAssertEqual(try legacy.parameter(name), model.graph.initializers[name], name) }
        // Layers without parameters are named after their nodes (the legacy exporter's scope path shortened).
        XCTAssertEqual(legacy.layerNames, ["stem", "Relu", "pool_MaxPool", "branch1", "Relu_1", "branch3", "Relu_2", "Concat",
                                           "gap_GlobalAveragePool", "Flatten", "fc"])
        XCTAssertEqual(try legacy.layer(named: "fc").kind, "linear")
        XCTAssertEqual(try dynamo.layer(named: "node_mean").kind, "global_avgpool")
        XCTAssertEqual(try dynamo.layer(named: "node_view").attributes.values["keep_batch"], .bool(true))
    }

    /// The operators fixture goes through padding, grouped strided convolution, arithmetic with
    /// constants, ReLU6, pooling in ceil mode, linear layers and softmax; the legacy export
    /// computes F.pad's pads inside the graph, which the importer evaluates.
    func testTheOperatorsFixtureUsesTheLayersItShould() throws {
        let legacy = try imported("operators_legacy"), dynamo = try imported("operators_dynamo")
        let kinds = { (net: Network) in net.layerNames.map { (try? net.layer(named: $0).kind) ?? "?" } }
        XCTAssertEqual(kinds(legacy), ["arithmetic", "arithmetic", "pad", "conv2d", "arithmetic", "relu6", "sigmoid", "arithmetic",
                                       "concat", "avgpool", "maxpool", "flatten", "linear", "tanh", "leaky_relu", "linear", "softmax"])
        XCTAssertEqual(kinds(dynamo), ["arithmetic", "arithmetic", "conv2d", "arithmetic", "relu6", "sigmoid", "arithmetic",
                                       "concat", "avgpool", "maxpool", "reshape", "linear", "tanh", "leaky_relu", "linear", "softmax"])
        // F.pad(x, (1, 0, 2, 1)): [top, left, bottom, right] on the pad layer (legacy), or added to the
        // convolution's own padding of 1 (dynamo).
        XCTAssertEqual(try legacy.layer(named: "Pad").attributes.values["padding"], .ints([2, 1, 1, 0]))
        XCTAssertEqual((try dynamo.layer(named: "conv") as? Conv2dLayer)?.options.padding.top, 3)
        XCTAssertEqual(try dynamo.layer(named: "conv").attributes.values["padding"], .ints([3, 2, 2, 1]))
        XCTAssertEqual(try legacy.layer(named: "pool_AveragePool").attributes.values["count_include_pad"], .bool(false))
        XCTAssertEqual(try legacy.parameter("Sub.constant"), Tensor(shape: [1, 3, 1, 1], scalars: [0.1, -0.2, 0.3]))
        XCTAssertEqual(legacy.trainableParameterNames, dynamo.trainableParameterNames)
        XCTAssertEqual(legacy.trainableParameterNames, ["conv", "fc1", "fc2"].flatMap { [$0 + ".weight", $0 + ".bias"] })
    }

    /// The exports were made for one image; the reshape keeps the batch size, so a batch of
    /// three gives each image's own output.
    func testAnImportedNetworkRunsOnABatch() throws {
        let (x, _) = try reference("inception")
        let images = [x, x.map { $0 * 0.5 }, x.map { -$0 }]
        let batch = Tensor(shape: [3] + x.shape.dropFirst(), scalars: images.flatMap(\.scalars))
        for exporter in ["legacy", "dynamo"] {
            let net = try imported("inception_\(exporter)")
            let y = try net(batch)
            XCTAssertEqual(y.shape, [3, 5])
            for (i, image) in images.enumerated() {
                assertMatches(Tensor(shape: [1, 5], scalars: Array(y.scalars[(i * 5)..<(i * 5 + 5)])), try net(image), "image \(i) (\(exporter))")
            }
        }
    }

    func testGradientsFlowThroughAnImportedNetwork() throws {
        // Finite differences on a small input: the residual block convolves any size.
        let net = try imported("residual_legacy")
        let small = Tensor.randn([1, 4, 3, 3], seed: 7)
        let check = try checkGradients(at: [small]) { try net.forward($0[0]) }
        XCTAssertTrue(check[0].passed, "\(check[0])")

        // Both exports compute the same function, so their input gradients agree too.
        let (x, _) = try reference("residual")
        var gradients: [Tensor] = []
        for exporter in ["legacy", "dynamo"] {
            let g = try imported("residual_\(exporter)").gradients(at: x) { try sum(multiply($0, $0)) }
            gradients.append(try XCTUnwrap(g.input))
        }
        XCTAssertGreaterThan(gradients[0].scalars.map(abs).max() ?? 0, 0.1)
        assertMatches(gradients[1], gradients[0], "input gradients of the two exports")
    }

    /// Damaged copies of the exports import or fail with a ModelFileError, never otherwise.
    func testDamagedExportsAreRefusedWithoutCrashing() throws {
        let folder = try temporaryFolder(for: self)
        for name in ["residual_legacy", "operators_legacy", "inception_dynamo"] {
            try? FileManager.default.copyItem(at: fixture("onnx/\(name).onnx.data"), to: folder.appendingPathComponent("\(name).onnx.data"))
            let refused = assertSurvivesCorruption(try fixtureBytes("onnx/\(name).onnx"), named: "\(name).onnx", in: folder,
                                                   everyTruncationFails: true, flips: 200) { _ = try Network.fromONNX(contentsOf: $0) }
            XCTAssertGreaterThan(refused, 0, name)
        }
    }

    /// An imported network's architecture survives its text form (the native format's metadata).
    func testAnImportedNetworkSurvivesItsDescription() throws {
        let (x, y) = try reference("inception")
        for exporter in ["legacy", "dynamo"] {
            let net = try imported("inception_\(exporter)")
            let text = try NetworkDescription(net).json()
            let rebuilt = try NetworkDescription.parse(text).build()
            for (name, value) in net.parameters { try rebuilt.setParameter(name, value) }
            XCTAssertEqual(rebuilt.layerNames, net.layerNames)
            XCTAssertEqual(rebuilt.spec, net.spec)
            assertMatches(try rebuilt(x), y, "rebuilt \(exporter) import")
        }
    }
}
