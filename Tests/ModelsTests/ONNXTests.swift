import Engine
import Foundation
@testable import Models
import XCTest

final class ONNXTests: XCTestCase {
    private func load(_ name: String) throws -> ONNXModel { try ONNXModel(contentsOf: fixture("onnx/\(name).onnx")) }

    /// Every node input is a graph input, an initializer, another node's output, or omitted.
    private func assertInputsResolve(_ graph: ONNXGraph, file: StaticString = #filePath, line: UInt = #line) {
        var known = Set(graph.inputs.map(\.name)).union(graph.initializers.keys).union([""])
        for node in graph.nodes {
            for input in node.inputs {
                XCTAssertTrue(known.contains(input), "\(node.opType) '\(node.name)' reads unknown '\(input)'", file: file, line: line)
            }
            known.formUnion(node.outputs)
        }
        for output in graph.outputs {
            XCTAssertTrue(known.contains(output.name), "output '\(output.name)' is never produced", file: file, line: line)
        }
    }

    func testResidualBlockFromBothExporters() throws {
        let legacy = try load("residual_legacy"), dynamo = try load("residual_dynamo")
        XCTAssertEqual(legacy.opsetVersion, 13)
        XCTAssertEqual(legacy.irVersion, 7)
        XCTAssertEqual(legacy.producerName, "pytorch")
        XCTAssertEqual(legacy.graph.nodes.map(\.opType),
                       ["Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization", "Add", "Relu"])
        XCTAssertGreaterThanOrEqual(dynamo.opsetVersion, 18)
        XCTAssertEqual(dynamo.graph.nodes.map(\.opType), ["Conv", "Relu", "Conv", "Add", "Relu"],
                       "the dynamo exporter folds batch norm into the convolutions")
        for model in [legacy, dynamo] {
            assertInputsResolve(model.graph)
            XCTAssertEqual(model.graph.inputs.count, 1)
            XCTAssertEqual(model.graph.inputs.first?.shape, [.size(1), .size(4), .size(8), .size(8)])
            XCTAssertEqual(model.graph.inputs.first?.elementType, .float32)
            XCTAssertEqual(model.graph.outputs.first?.shape, [.size(1), .size(4), .size(8), .size(8)])
            let conv = try XCTUnwrap(model.graph.nodes.first)
            XCTAssertEqual(conv.attributes["kernel_shape"], .ints([3, 3]))
            XCTAssertEqual(conv.attributes["pads"]?.intsValue, [1, 1, 1, 1])
            XCTAssertEqual(conv.attributes["group"]?.intValue, 1)
            XCTAssertEqual(model.graph.nodes.filter { $0.opType == "Add" }.first?.inputs.last, model.graph.inputs.first?.name,
                           "the skip connection adds the block's input")
        }
        XCTAssertEqual(legacy.graph.nodes[1].attributes["epsilon"]?.floatValue ?? 0, 1e-5, accuracy: 1e-9)
        XCTAssertEqual(dynamo.graph.nodes[0].attributes["auto_pad"], .string("NOTSET"))
    }

    /// The dynamo export keeps the convolution weights in residual_dynamo.onnx.data, with batch
    /// norm folded in: W' = W·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε). Checking that relation against the
    /// legacy export's separate parameters checks the external data byte for byte.
    func testExternalWeightsAreTheFoldedLegacyWeights() throws {
        let legacy = try load("residual_legacy").graph, dynamo = try load("residual_dynamo").graph
        XCTAssertEqual(try fixtureBytes("onnx/residual_dynamo.onnx.data").count, 2 * 4 * 4 * 9 * 4)
        for layer in ["1", "2"] {
            let w = try XCTUnwrap(legacy.initializers["conv\(layer).weight"])
            let gamma = try XCTUnwrap(legacy.initializers["bn\(layer).weight"]), beta = try XCTUnwrap(legacy.initializers["bn\(layer).bias"])
            let mean = try XCTUnwrap(legacy.initializers["bn\(layer).running_mean"]), variance = try XCTUnwrap(legacy.initializers["bn\(layer).running_var"])
            let folded = try XCTUnwrap(dynamo.initializers["conv\(layer).weight"]), bias = try XCTUnwrap(dynamo.initializers["conv\(layer).weight_bias"])
            XCTAssertEqual(folded.shape, [4, 4, 3, 3])
            for o in 0..<4 {
                let scale = gamma.scalars[o] / (variance.scalars[o] + 1e-5).squareRoot()
                for i in 0..<36 { XCTAssertEqual(folded.scalars[o * 36 + i], w.scalars[o * 36 + i] * scale, accuracy: 1e-5) }
                XCTAssertEqual(bias.scalars[o], beta.scalars[o] - mean.scalars[o] * scale, accuracy: 1e-5)
            }
        }
    }

    func testInceptionFromBothExporters() throws {
        let legacy = try load("inception_legacy"), dynamo = try load("inception_dynamo")
        XCTAssertEqual(legacy.graph.nodes.map(\.opType),
                       ["Conv", "Relu", "MaxPool", "Conv", "Relu", "Conv", "Relu", "Concat", "GlobalAveragePool", "Flatten", "Gemm"])
        XCTAssertEqual(dynamo.graph.nodes.map(\.opType),
                       ["Conv", "Relu", "MaxPool", "Conv", "Relu", "Conv", "Relu", "Concat", "ReduceMean", "Reshape", "Gemm"])
        for model in [legacy, dynamo] {
            assertInputsResolve(model.graph)
            XCTAssertEqual(model.graph.inputs.first?.shape, [.size(1), .size(3), .size(16), .size(16)])
            XCTAssertEqual(model.graph.outputs.first?.shape, [.size(1), .size(5)])
            let concat = try XCTUnwrap(model.graph.nodes.first { $0.opType == "Concat" })
            XCTAssertEqual(concat.inputs.count, 2)
            XCTAssertEqual(concat.attributes["axis"], .int(1))
            XCTAssertEqual(model.graph.nodes.first { $0.opType == "MaxPool" }?.attributes["strides"], .ints([2, 2]))
            XCTAssertEqual(model.graph.nodes.last?.attributes["transB"], .int(1))
        }
        // Same weights whether stored inline (legacy) or in inception_dynamo.onnx.data (stem and branch3 weights).
        for name in ["stem.weight", "stem.bias", "branch1.weight", "branch3.weight", "branch3.bias", "fc.weight", "fc.bias"] {
            XCTAssertEqual(dynamo.graph.initializers[name], legacy.graph.initializers[name], name)
        }
        XCTAssertEqual(dynamo.graph.initializers["branch3.weight"]?.shape, [6, 4, 3, 3])
        // The int64 axes and shape of ReduceMean and Reshape keep their exact values.
        XCTAssertEqual(dynamo.graph.integerInitializers["val_3"], [-1, -2])
        XCTAssertEqual(dynamo.graph.integerInitializers["val_7"], [1, 10])
        XCTAssertEqual(dynamo.graph.initializers["val_3"], Tensor(shape: [2], scalars: [-1, -2]))
        XCTAssertEqual(dynamo.graph.initializerTypes["val_7"], .int64)
        XCTAssertNil(dynamo.graph.integerInitializers["fc.weight"])
    }

    func testReferenceInputsAndOutputsAreStored() throws {
        for (name, input, output) in [("residual", [1, 4, 8, 8], [1, 4, 8, 8]), ("inception", [1, 3, 16, 16], [1, 5])] {
            XCTAssertEqual(try NumPy.readArray(at: fixture("onnx/\(name)_input.npy")).shape, input)
            XCTAssertEqual(try NumPy.readArray(at: fixture("onnx/\(name)_output.npy")).shape, output)
        }
    }

    func testHandBuiltGraphWithConstantsAndEveryEncoding() throws {
        let bytes = onnxModel { graph in
            graph.string(2, "g")
            graph.message(1) { node in
                node.string(2, "shape"); node.string(3, "c"); node.string(4, "Constant")
                node.message(5) { a in
                    a.string(1, "value"); a.int(20, 4)
                    a.message(5) { t in t.packed(1, [3]); t.int(2, 7); t.packed(7, [1, -1, 1 << 40]) }
                }
            }
            graph.message(1) { node in
                node.string(1, "x"); node.string(1, ""); node.string(2, "y"); node.string(4, "Custom"); node.string(7, "ai.onnx")
                node.message(5) { $0.string(1, "alpha"); $0.float(2, 0.5) }  // no type field: inferred
                node.message(5) { $0.string(1, "sizes"); $0.int(20, 7); $0.int(8, 2); $0.int(8, -3) }  // unpacked ints
                node.message(5) { $0.string(1, "scales"); $0.int(20, 6); $0.packedFloats(7, [1.5, 2]) }
                node.message(5) { $0.string(1, "mode"); $0.int(20, 3); $0.string(4, "nearest") }
                node.message(5) { $0.string(1, "names"); $0.int(20, 8); $0.string(9, "a"); $0.string(9, "b") }
            }
            graph.message(5) { t in t.packed(1, [2, 2]); t.int(2, 1); t.string(8, "packed"); t.packedFloats(4, [1, 2, 3, 4]) }
            graph.message(5) { t in t.int(1, 3); t.int(2, 1); t.string(8, "unpacked"); t.float(4, 7); t.float(4, 8); t.float(4, 9) }
            graph.message(5) { t in t.int(2, 10); t.string(8, "half"); t.bytes(9, Data([0x00, 0x3c])) }  // scalar float16 1.0
            graph.message(5) { t in t.int(1, 2); t.int(2, 9); t.string(8, "flags"); t.packed(5, [0, 7]) }
            graph.message(5) { t in t.int(1, 1); t.int(2, 11); t.string(8, "double"); t.key(10, 1)
                withUnsafeBytes(of: (0.25 as Double).bitPattern.littleEndian) { t.data.append(contentsOf: $0) } }
            graph.message(11) { v in v.string(1, "x")
                v.message(2) { $0.message(1) { $0.int(1, 1); $0.message(2) { s in
                    s.message(1) { $0.string(2, "batch") }; s.message(1) { $0.int(1, 3) }; s.message(1) { _ in } } } } }
            graph.message(11) { $0.string(1, "packed") }  // an initializer listed as an input, as IR < 4 did
            graph.message(12) { $0.string(1, "y") }
        }
        let model = try ONNXModel(contentsOf: write(bytes, "hand.onnx", in: temporaryFolder(for: self)))
        XCTAssertEqual(model.opsetVersion, 17)
        let constant = try XCTUnwrap(model.graph.nodes.first?.attributes["value"]?.tensorValue)
        XCTAssertEqual(constant.integers, [1, -1, 1 << 40])
        XCTAssertEqual(constant.value.shape, [3])
        XCTAssertEqual(constant.elementType, .int64)
        let custom = model.graph.nodes[1]
        XCTAssertEqual(custom.domain, "", "ai.onnx is the default domain")
        XCTAssertEqual(custom.inputs, ["x", ""])
        XCTAssertEqual(custom.attributes["alpha"], .float(0.5))
        XCTAssertEqual(custom.attributes["sizes"], .ints([2, -3]))
        XCTAssertEqual(custom.attributes["scales"], .floats([1.5, 2]))
        XCTAssertEqual(custom.attributes["mode"]?.stringValue, "nearest")
        XCTAssertEqual(custom.attributes["names"], .strings(["a", "b"]))
        XCTAssertEqual(model.graph.initializers["packed"], Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]))
        XCTAssertEqual(model.graph.initializers["unpacked"], Tensor(shape: [3], scalars: [7, 8, 9]))
        XCTAssertEqual(model.graph.initializers["half"], Tensor(scalar: 1))
        XCTAssertEqual(model.graph.initializers["flags"], Tensor(shape: [2], scalars: [0, 1]))
        XCTAssertEqual(model.graph.initializers["double"], Tensor(shape: [1], scalars: [0.25]))
        XCTAssertEqual(model.graph.inputs.map(\.name), ["x"])
        XCTAssertEqual(model.graph.inputs.first?.shape, [.parameter("batch"), .size(3), .unknown])
        XCTAssertEqual(model.graph.inputs.first?.shape?.map(\.description), ["batch", "3", "?"])
        XCTAssertNil(model.graph.outputs.first?.shape)
    }

    // MARK: - Hostile files

    func testRefusesMalformedMessages() throws {
        let folder = try temporaryFolder(for: self)
        var pastEnd = ProtobufBytes()
        pastEnd.int(1, 8)
        pastEnd.key(7, 2); pastEnd.data.append(ProtobufBytes.varint(1000)); pastEnd.data.append(Data(count: 10))
        var badWire = ProtobufBytes(); badWire.key(7, 3)
        var longVarint = ProtobufBytes(); longVarint.key(1, 0); longVarint.data.append(Data(repeating: 0xff, count: 11))
        let cases: [(Data, [String])] = [
            (pastEnd.data, ["field 7 at byte 2 claims 1000 bytes, only 10 remain"]),
            (badWire.data, ["wire type 3"]),
            (longVarint.data, ["longer than 10 bytes"]),
            (Data("not a model at all".utf8), []),
            (onnxModel { $0.message(1) { $0.string(1, "x") } }, ["node 0", "no op_type"]),
            (onnxModel { g in g.message(5) { $0.int(1, 2); $0.int(2, 8); $0.string(8, "words") } }, ["tensor 'words'", "STRING"]),
            (onnxModel { g in g.message(5) { $0.int(1, 3); $0.int(2, 1); $0.string(8, "short"); $0.packedFloats(4, [1, 2]) } },
             ["tensor 'short'", "holds 2 values but dims [3] need 3"]),
            (onnxModel { g in g.message(5) { $0.packed(1, [1_000_000, 1_000_000]); $0.int(2, 1); $0.string(8, "huge"); $0.bytes(9, Data(count: 8)) } },
             ["tensor 'huge'", "needs 3.6 TB", "the memory limit"]),
            (onnxModel { g in g.message(5) { $0.packed(1, [-4]); $0.int(2, 1); $0.string(8, "negative") } }, ["has a negative size"]),
            (onnxModel { g in g.message(5) { $0.packed(1, [1 << 62, 1 << 62]); $0.int(2, 1); $0.string(8, "overflow") } }, ["more bytes than can be counted"]),
            (onnxModel { g in g.message(1) { $0.string(4, "Op"); $0.message(5) { $0.string(1, "sparse"); $0.int(20, 11) } } },
             ["attribute 0", "'sparse' has attribute type 11"]),
            (onnxModel { g in g.message(15) { _ in } }, ["sparse initializer"]),
            (onnxModel { g in g.message(5) { $0.int(2, 1); $0.string(8, "twice") }; g.message(5) { $0.int(2, 1); $0.string(8, "twice") } }, []),
        ]
        for (index, (bytes, phrases)) in cases.enumerated() {
            assertFileError(try ONNXModel(contentsOf: write(bytes, "bad\(index).onnx", in: folder)), mentions: phrases)
        }
        var noOpset = ProtobufBytes(); noOpset.message(7) { $0.string(2, "g") }
        assertFileError(try ONNXModel(contentsOf: write(noOpset.data, "noopset.onnx", in: folder)), mentions: ["no opset"])
        var noGraph = ProtobufBytes(); noGraph.int(1, 8)
        assertFileError(try ONNXModel(contentsOf: write(noGraph.data, "nograph.onnx", in: folder)), mentions: ["holds no graph"])
    }

    func testRefusesDeeplyNestedSubgraphsWithoutRecursingForever() throws {
        // graph { node { attribute { g: graph { node { ... } } } } }, 3 messages per level.
        func nested(_ levels: Int) -> (inout ProtobufBytes) -> Void {
            { graph in
                graph.message(1) { node in
                    node.string(4, "If")
                    if levels > 0 { node.message(5) { a in a.string(1, "then_branch"); a.int(20, 5); a.message(6, nested(levels - 1)) } }
                }
            }
        }
        let folder = try temporaryFolder(for: self)
        let shallow = try ONNXModel(contentsOf: write(onnxModel(nested(5)), "shallow.onnx", in: folder))
        guard case .graph(let inner)? = shallow.graph.nodes.first?.attributes["then_branch"] else { return XCTFail("no subgraph") }
        XCTAssertEqual(inner.nodes.first?.opType, "If")
        assertFileError(try ONNXModel(contentsOf: write(onnxModel(nested(40)), "deep.onnx", in: folder)),
                        mentions: ["nest deeper than 100 levels"])
        // Far deeper than any real file: refused at the limit, long before the stack runs out.
        assertFileError(try ONNXModel(contentsOf: write(onnxModel(nested(3000)), "deeper.onnx", in: folder)),
                        mentions: ["nest deeper than 100 levels"])
    }

    func testExternalDataStaysInsideTheModelsFolder() throws {
        let root = try temporaryFolder(for: self)
        let folder = root.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let weights = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]).withUnsafeBufferPointer { Data(buffer: $0) }
        try write(Data(count: 8) + weights, "weights.data", in: folder)
        try write(weights, "secret", in: root)
        try write(weights, "outside.data", in: root)
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("escape.data").path,
                                                   withDestinationPath: root.appendingPathComponent("outside.data").path)
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("sub"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: folder.appendingPathComponent("sub/inside.data").path,
                                                   withDestinationPath: "../weights.data")
        var written = 0
        func model(_ location: String, offset: Int? = 8, length: Int? = 16, dims: [Int] = [2, 2]) throws -> URL {
            written += 1
            return try write(onnxModel(externalInitializer("w", dims: dims, location: location, offset: offset, length: length)),
                             "m\(written).onnx", in: folder)
        }
        let expected = Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        XCTAssertEqual(try ONNXModel(contentsOf: model("weights.data")).graph.initializers["w"], expected)
        XCTAssertEqual(try ONNXModel(contentsOf: model("./sub/inside.data")).graph.initializers["w"], expected,
                       "a link that stays inside the folder is fine")
        let cases: [(URL, [String])] = [
            (try model("../secret", offset: nil, length: nil), ["external data '../secret'", "climbs out", "'..'"]),
            (try model("sub/../../secret", offset: nil, length: nil), ["climbs out"]),
            (try model(root.appendingPathComponent("secret").path, offset: nil, length: nil), ["is an absolute path"]),
            (try model("/etc/passwd", offset: nil, length: nil), ["'/etc/passwd'", "absolute path"]),
            (try model("escape.data", offset: nil, length: nil), ["'escape.data'", "outside the model's folder", "symbolic link"]),
            (try model("weights.data", offset: 20), ["offset 20 and length 16 reach past the end of the 24-byte file"]),
            (try model("weights.data", offset: 1 << 62), ["reach past the end"]),
            (try model("weights.data", length: 12), ["has length 12", "need 16 bytes"]),
            (try model("weights.data", dims: [1_000_000, 1_000_000]), ["needs 3.6 TB", "the memory limit"]),
            (try model("missing.data"), ["'missing.data'", "does not exist"]),
            (try model("sub"), ["is not a file"]),
            (try model(""), ["names no location"]),
        ]
        for (url, phrases) in cases {
            assertFileError(try ONNXModel(contentsOf: url), mentions: ["tensor 'w'"] + phrases)
        }
        var badOffset = ProtobufBytes()
        badOffset.message(5) { t in
            t.int(1, 1); t.int(2, 1); t.string(8, "w"); t.int(14, 1)
            t.message(13) { $0.string(1, "location"); $0.string(2, "weights.data") }
            t.message(13) { $0.string(1, "offset"); $0.string(2, "-8") }
        }
        let url = try write(onnxModel { $0.data.append(badOffset.data) }, "m.onnx", in: folder)
        assertFileError(try ONNXModel(contentsOf: url), mentions: ["offset '-8'", "non-negative integer"])
    }

    func testEveryTruncationAndFlipIsHandled() throws {
        let folder = try temporaryFolder(for: self)
        for name in ["residual_legacy", "inception_dynamo"] {
            // The side file must sit next to the damaged copy for the dynamo export.
            try? FileManager.default.copyItem(at: fixture("onnx/\(name).onnx.data"), to: folder.appendingPathComponent("\(name).onnx.data"))
            assertSurvivesCorruption(try fixtureBytes("onnx/\(name).onnx"), named: "\(name).onnx", in: folder,
                                     everyTruncationFails: true) { _ = try ONNXModel(contentsOf: $0) }
        }
    }
}
