import Engine
import Foundation
@testable import Models
import XCTest

/// The operators of the later torchvision families and of other exporters (ONNXGraphOperators.swift),
/// in one small PyTorch graph exported by both exporters (scripts/make-model-fixtures.py, group
/// onnx-graph-operators): outputs and input gradients against PyTorch's.
final class ONNXGraphOperatorTests: XCTestCase {
    private func imported(_ exporter: String) throws -> Network {
        try Network.fromONNX(contentsOf: fixture("onnx/graph_operators_\(exporter).onnx"))
    }

    private func array(_ name: String) throws -> Tensor { try NumPy.readArray(at: fixture("onnx/graph_operators_\(name).npy")) }

    private func relativeError(_ actual: Tensor, _ expected: Tensor) -> Float {
        let scale = Swift.max(expected.scalars.map(abs).max() ?? 0, 1e-6)
        return (zip(actual.scalars, expected.scalars).map { abs($0 - $1) }.max() ?? .infinity) / scale
    }

    func testOutputsAndInputGradientsMatchPyTorch() throws {
        let x = try array("input"), y = try array("output"), g = try array("gradient")
        for exporter in ["legacy", "dynamo"] {
            let net = try imported(exporter)
            let out = try net(x)
            XCTAssertEqual(out.shape, y.shape)
            XCTAssertLessThan(relativeError(out, y), 1e-4, "\(exporter) output")
            let gradient = try net.gradients(at: x) { try slice($0, [.at(0), .at(2)]) }
            let input = try XCTUnwrap(gradient.input)
            XCTAssertGreaterThan(input.scalars.map(abs).max() ?? 0, 1e-3, "a gradient that is not zero")
            XCTAssertLessThan(relativeError(input, g), 1e-4, "\(exporter) input gradient")
        }
    }

    func testTheGraphUsesTheNewLayerKinds() throws {
        let kinds = { (net: Network) in Set(net.layerNames.map { try! net.layer(named: $0).kind }) }
        let legacy = kinds(try imported("legacy")), dynamo = kinds(try imported("dynamo"))
        for kind in ["hardswish", "hardsigmoid", "prelu", "layernorm", "transpose", "slice", "upsample", "reduce", "exp", "sqrt", "neg", "pow"] {
            XCTAssertTrue(legacy.contains(kind), "legacy: \(kind) in \(legacy.sorted())")
            XCTAssertTrue(dynamo.contains(kind), "dynamo: \(kind) in \(dynamo.sorted())")
        }
        XCTAssertTrue(legacy.contains("gelu") && !legacy.contains("erf"), "the legacy exporter's GELU, five nodes through Erf, as one layer")
        XCTAssertTrue(dynamo.contains("gelu"), "the dynamo exporter writes Gelu (opset 20)")
    }

    /// The new kinds survive the architecture's text form, so such a network saves and loads.
    func testTheImportSurvivesSaveAndLoad() throws {
        let folder = try temporaryFolder(for: self)
        let x = try array("input"), y = try array("output")
        for exporter in ["legacy", "dynamo"] {
            let path = folder.appendingPathComponent("\(exporter).safetensors").path
            try NetworkFiles.save(try imported(exporter), to: path)
            XCTAssertLessThan(relativeError(try NetworkFiles.load(path)(x), y), 1e-4, "\(exporter) saved and loaded")
        }
    }

    /// Resize by a factor that is not whole, and Gelu's tanh form, are named, not approximated.
    func testUnsupportedFormsAreNamed() throws {
        var model = try ONNXModel(contentsOf: fixture("onnx/graph_operators_dynamo.onnx"))
        guard let i = model.graph.nodes.firstIndex(where: { $0.opType == "Gelu" }) else { return XCTFail("no Gelu node") }
        model.graph.nodes[i].attributes["approximate"] = .string("tanh")
        XCTAssertThrowsError(try Network.fromONNX(model, path: "m.onnx")) { e in
            XCTAssertTrue("\(e)".contains("approximates GELU by 'tanh'"), "\(e)")
        }
        var resized = try ONNXModel(contentsOf: fixture("onnx/graph_operators_dynamo.onnx"))
        guard let r = resized.graph.nodes.firstIndex(where: { $0.opType == "Resize" }) else { return XCTFail("no Resize node") }
        resized.graph.nodes[r].attributes["mode"] = .string("linear")
        XCTAssertThrowsError(try Network.fromONNX(resized, path: "m.onnx")) { e in
            XCTAssertTrue("\(e)".contains("resizes in mode 'linear'"), "\(e)")
        }
    }

    /// A graph whose height and width are named rather than fixed says which input needs a size.
    func testADynamicSizeNamesTheInputThatNeedsOne() throws {
        var g = GraphSketch(input: [-1, 3, -1, -1])
        g.node("Split", ["x"], ["y", "rest"], name: "halves", .int("axis", 2))
        assertFileError(try g.network(in: try temporaryFolder(for: self), named: "dynamic.onnx"),
                        mentions: ["dynamic.onnx", "node 'halves' (Split)", "the graph's input 'x' has shape [batch, 3, batch, batch]",
                                   "fixed sizes for all but the batch axis of 'x'"])
    }

    /// tf2onnx's NHWC input, transposed to NCHW first: the network takes NCHW images, and
    /// transposes inside the graph are permutation layers.
    func testAChannelsLastInputBecomesAnImageInput() throws {
        var g = GraphSketch(input: [1, 4, 5, 3])
        g.node("Transpose", ["x"], ["nchw"], name: "to_nchw", .ints("perm", [0, 3, 1, 2]))
        g.node("Relu", ["nchw"], ["r"])
        g.node("Transpose", ["r"], ["nhwc"], name: "back", .ints("perm", [0, 2, 3, 1]))
        g.node("Transpose", ["nhwc"], ["y"], name: "again", .ints("perm", [0, 3, 1, 2]))
        let net = try g.network(in: try temporaryFolder(for: self), named: "nhwc.onnx")
        XCTAssertEqual(net.spec, InputSpec(channels: 3, height: 4, width: 5))
        let x = Tensor.randn([1, 3, 4, 5], seed: 9)
        XCTAssertEqual(try net(x), x.map { Swift.max($0, 0) })
        XCTAssertEqual(try net.layerNames.map { try net.layer(named: $0).kind }, ["relu", "transpose", "transpose"])
    }
}
