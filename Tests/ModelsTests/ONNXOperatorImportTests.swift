import Engine
import Foundation
@testable import Models
import XCTest

/// Hand-built ONNX graphs: each operator in the forms different opsets write, against values
/// worked out here, and the graphs the importer must refuse with an error naming the node.
final class ONNXOperatorImportTests: XCTestCase {
    private var folder: URL!
    private var written = 0

    override func setUpWithError() throws { folder = try temporaryFolder(for: self) }

    private func network(_ sketch: GraphSketch) throws -> Network {
        written += 1
        return try sketch.network(in: folder, named: "sketch\(written).onnx")
    }

    /// Asserts that importing `sketch` fails with a ModelFileError naming the file and every phrase.
    private func assertRefused(_ sketch: GraphSketch, mentions phrases: [String], file: StaticString = #filePath, line: UInt = #line) {
        written += 1
        let name = "refused\(written).onnx"
        assertFileError(try sketch.network(in: folder, named: name), mentions: [name] + phrases, file: file, line: line)
    }

    private func assertClose(_ a: Tensor, _ b: Tensor, _ what: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(a.isClose(to: b, rtol: 1e-5, atol: 1e-6), "\(what): \(a) vs \(b)", file: file, line: line)
    }

    private func kinds(_ net: Network) throws -> [String] { try net.layerNames.map { try net.layer(named: $0).kind } }

    // MARK: - Refusals

    func testAnUnsupportedOperatorIsNamedWithItsNode() throws {
        var g = GraphSketch(input: [1, 2])
        g.node("Relu", ["x"], ["r"])
        g.node("Einsum", ["r"], ["y"], name: "contract", .string("equation", "ij->ji"))
        assertRefused(g, mentions: ["node 'contract' (Einsum)", "operator 'Einsum'", "which cnnlab does not import",
                                    "expected one of Add, AveragePool, BatchNormalization", "Conv", "MaxPool"])
        var custom = GraphSketch(input: [1, 2])
        custom.node("FusedConv", ["x"], ["y"], name: "fused", domain: "com.microsoft")
        assertRefused(custom, mentions: ["node 'fused' (FusedConv)", "'com.microsoft.FusedConv'"])
        XCTAssertTrue(Network.importableONNXOperators.contains("Conv"))
        XCTAssertEqual(Network.importableONNXOperators, Network.importableONNXOperators.sorted())
    }

    func testAnInputThatNothingProducesIsRefused() throws {
        var g = GraphSketch(input: [1, 2])
        g.node("Add", ["x", "ghost"], ["y"], name: "sum")
        assertRefused(g, mentions: ["node 'sum' (Add)", "reads 'ghost'", "neither a graph input, an initializer, nor an output of an earlier node"])
        // An output the network does not compute (a max pool's indices) cannot be read either.
        var indices = GraphSketch(input: [1, 1, 4, 4])
        indices.node("MaxPool", ["x"], ["p", "where"], name: "pool", .ints("kernel_shape", [2, 2]))
        indices.node("Relu", ["where"], ["y"], name: "after")
        assertRefused(indices, mentions: ["node 'after' (Relu)", "reads 'where', output 1 of node 'pool' (MaxPool)", "does not compute"])
        // Every value is defined once.
        var twice = GraphSketch(input: [1, 2])
        twice.node("Relu", ["x"], ["r"])
        twice.node("Sigmoid", ["x"], ["r"], name: "again")
        twice.node("Identity", ["r"], ["y"])
        assertRefused(twice, mentions: ["node 'again' (Sigmoid) writes 'r', which the graph already defines"])
        // Nodes without names are counted.
        var unnamed = GraphSketch(input: [1, 2])
        unnamed.node("Relu", ["x"], ["r"])
        unnamed.node("Sigmoid", ["nowhere"], ["y"])
        assertRefused(unnamed, mentions: ["node 1 (Sigmoid)", "reads 'nowhere'"])
    }

    func testGraphsWithoutOneInputAndOneComputedOutputAreRefused() throws {
        var constant = GraphSketch(input: [1, 2])
        constant.initializer("c", Tensor(shape: [2], scalars: [1, 2]))
        constant.node("Identity", ["c"], ["y"])
        assertRefused(constant, mentions: ["output 'y' is a constant"])
        var missing = GraphSketch(input: [1, 2])
        missing.node("Relu", ["x"], ["r"])
        assertRefused(missing, mentions: ["output 'y' is not computed by any node"])
        var integers = GraphSketch(input: [1, 2])
        integers.inputElementType = 7
        integers.node("Relu", ["x"], ["y"])
        assertRefused(integers, mentions: ["input 'x' holds int64 values", "expected float32"])
        var two = GraphSketch(input: [1, 2])
        two.extraInputs = ["mask"]
        two.node("Mul", ["x", "mask"], ["y"])
        assertRefused(two, mentions: ["the graph has 2 inputs (x, mask)", "one input"])
        // An identity graph still has a layer to name its output.
        var passthrough = GraphSketch(input: [1, 2])
        passthrough.node("Identity", ["x"], ["y"])
        let identity = try network(passthrough)
        XCTAssertEqual(try kinds(identity), ["identity"])
        XCTAssertEqual(try identity(Tensor(shape: [1, 2], scalars: [3, -4])).scalars, [3, -4])
    }

    /// Sizes from a damaged or hostile file are refused before anything is allocated for them.
    func testHugeSizesAreRefusedBeforeAllocating() throws {
        // The limit of a machine with 2 GB of memory, whatever this one has.
        let saved = MemoryLimit.bytes
        MemoryLimit.bytes = 1 << 30
        defer { MemoryLimit.bytes = saved }
        var input = GraphSketch(input: [1, 3, 1 << 20, 1 << 20])
        input.node("Relu", ["x"], ["y"])
        assertRefused(input, mentions: ["input 'x' has shape [1, 3, 1048576, 1048576]", "the memory limit"])
        var pads = GraphSketch(opset: 13, input: [1, 1, 2, 2])
        pads.integers("pads", [0, 0, 1 << 14, 1 << 14, 0, 0, 1 << 14, 1 << 14])
        pads.node("Pad", ["x", "pads"], ["y"], name: "wide")
        assertRefused(pads, mentions: ["node 'wide' (Pad)", "would make a value of shape [1, 1, 32770, 32770]"])
        var broadcast = GraphSketch(input: [1 << 15, 1])
        broadcast.initializer("row", Tensor(zeros: [1, 1 << 15]))
        broadcast.node("Relu", ["x"], ["r"])
        broadcast.node("Mul", ["r", "x"], ["square"])
        broadcast.node("Add", ["r", "row"], ["y"], name: "outer")
        assertRefused(broadcast, mentions: ["node 'outer' (Add)", "would make a value of shape [32768, 32768]"])
        var reshape = GraphSketch(input: [2, 3])
        reshape.integers("shape", [1 << 40, 1 << 40])
        reshape.node("Reshape", ["x", "shape"], ["y"], name: "r")
        assertRefused(reshape, mentions: ["node 'r' (Reshape)", "has shape [1099511627776, 1099511627776]"])
        var filled = GraphSketch(input: [2, 3])
        filled.integers("shape", [1 << 40, 1 << 40])
        filled.node("ConstantOfShape", ["shape"], ["c"], name: "fill")
        filled.node("Add", ["x", "c"], ["y"])
        assertRefused(filled, mentions: ["node 'fill' (ConstantOfShape)", "makes a constant of shape"])
        var kernel = GraphSketch(input: [1, 1, 4, 4])
        kernel.node("MaxPool", ["x"], ["y"], name: "pool", .ints("kernel_shape", [1 << 40, 2]), .ints("strides", [1, 1]))
        assertRefused(kernel, mentions: ["node 'pool' (MaxPool)", "has kernel_shape [1099511627776, 2]"])
        var stride = GraphSketch(input: [1, 1, 4, 4])
        stride.initializer("w", Tensor(ones: [1, 1, 1, 1]))
        stride.node("Conv", ["x", "w"], ["y"], name: "c", .ints("strides", [1 << 62, 1]))
        assertRefused(stride, mentions: ["node 'c' (Conv)", "has strides [4611686018427387904, 1]"])
        var groups = GraphSketch(input: [1, 1, 4, 4])
        groups.initializer("w", Tensor(ones: [2, 1, 1, 1]))
        groups.node("Conv", ["x", "w"], ["y"], name: "c", .int("group", 1 << 62))
        assertRefused(groups, mentions: ["node 'c' (Conv)", "has group 4611686018427387904 for 2 output channels"])
    }

    // MARK: - Reshape and its kin

    func testReshapeCopiesZerosAndInfersMinusOne() throws {
        let x = Tensor.randn([2, 3, 4, 5], seed: 1)
        let cases: [([Int], [Int], [Int]?)] = [
            ([0, -1], [2, 60], [-1]),          // 0 copies the batch: the layer keeps any batch size
            ([0, 0, -1], [2, 3, 20], [3, -1]),
            ([2, 0, 20], [2, 3, 20], [3, 20]),  // the batch size written out is recognised as such
            ([-1, 5], [24, 5], nil),
            ([6, 20], [6, 20], nil),
        ]
        for (target, shape, kept) in cases {
            var g = GraphSketch(input: x.shape)
            g.integers("shape", target)
            g.node("Reshape", ["x", "shape"], ["y"], name: "view")
            let net = try network(g)
            XCTAssertEqual(try net(x), try x.reshaped(shape), "\(target)")
            let attributes = try net.layer(named: "view").attributes.values
            if let kept {
                XCTAssertEqual(attributes["keep_batch"], .bool(true), "\(target)")
                XCTAssertEqual(attributes["shape"], .ints(kept), "\(target)")
                XCTAssertEqual(try net(Tensor.randn([5, 3, 4, 5], seed: 2)).shape, [5] + shape.dropFirst(), "\(target) on 5 images")
            } else {
                XCTAssertEqual(attributes["shape"], .ints(target), "\(target)")
            }
        }
        var allowZero = GraphSketch(input: x.shape)
        allowZero.integers("shape", [0, -1])
        allowZero.node("Reshape", ["x", "shape"], ["y"], name: "literal", .int("allowzero", 1))
        assertRefused(allowZero, mentions: ["node 'literal' (Reshape)", "cannot reshape 120 scalars to [0, -1]"])
        var tooFar = GraphSketch(input: [2, 3])
        tooFar.integers("shape", [2, 3, 0])
        tooFar.node("Reshape", ["x", "shape"], ["y"], name: "far")
        assertRefused(tooFar, mentions: ["node 'far' (Reshape)", "copies size 2 of its input", "shape [2, 3]"])
        var computed = GraphSketch(input: [2])
        computed.node("Relu", ["x"], ["r"])
        computed.node("Reshape", ["x", "r"], ["y"], name: "dynamic")
        assertRefused(computed, mentions: ["node 'dynamic' (Reshape)", "its shape 'r' is computed by the graph", "a constant shape"])
        var twoUnknown = GraphSketch(input: [2, 3])
        twoUnknown.integers("shape", [-1, -1])
        twoUnknown.node("Reshape", ["x", "shape"], ["y"], name: "vague")
        assertRefused(twoUnknown, mentions: ["has shape [-1, -1]"])
    }

    /// x.view(x.size(0), -1) with a named batch size, as the legacy exporter writes it: the shape is
    /// computed inside the graph, evaluated while importing, and the result runs on any batch.
    func testAShapeComputedInTheGraphIsEvaluated() throws {
        var g = GraphSketch(opset: 13, input: [-1, 3, 2, 2])
        g.node("Shape", ["x"], ["shape"])
        g.integers("zero", [0], shape: [])
        g.node("Gather", ["shape", "zero"], ["batch"], .int("axis", 0))
        g.integers("axes", [0])
        g.node("Unsqueeze", ["batch", "axes"], ["batch1"])
        g.integers("rest", [-1])
        g.node("Concat", ["batch1", "rest"], ["target"], .int("axis", 0))
        g.node("Unsqueeze", ["x", "axes2"], ["u"], name: "unsqueeze")
        g.integers("axes2", [2])
        g.node("Squeeze", ["u", "axes2"], ["s"], name: "squeeze")
        g.node("Reshape", ["s", "target"], ["y"], name: "view")
        let net = try network(g)
        XCTAssertEqual(net.spec, InputSpec(channels: 3, height: 2, width: 2))
        XCTAssertEqual(try kinds(net), ["reshape", "reshape", "reshape"])
        let x = Tensor.randn([4, 3, 2, 2], seed: 3)
        XCTAssertEqual(try net(x), try x.reshaped([4, 12]))
        XCTAssertEqual(try net.shapes(for: [4, 3, 2, 2])["unsqueeze"], [4, 3, 1, 2, 2])
    }

    func testFlattenPadAndSqueezeForms() throws {
        let x = Tensor.randn([2, 3, 2, 2], seed: 4)
        var flatten = GraphSketch(input: x.shape)
        flatten.node("Flatten", ["x"], ["y"], name: "f", .int("axis", 2))
        XCTAssertEqual(try network(flatten)(x), try x.reshaped([6, 4]))
        var flatten0 = GraphSketch(input: x.shape)
        flatten0.node("Flatten", ["x"], ["y"], .int("axis", -4))
        XCTAssertEqual(try network(flatten0)(x), try x.reshaped([1, 24]))

        // The same padding as an attribute (opset 10) and as inputs with axes (opset 18).
        var old = GraphSketch(opset: 10, input: x.shape)
        old.node("Pad", ["x"], ["y"], name: "pad", .ints("pads", [0, 0, 1, 2, 0, 0, 3, 4]), .float("value", 1.5))
        var new = GraphSketch(opset: 18, input: x.shape)
        new.integers("pads", [1, 2, 3, 4])
        new.initializer("value", Tensor(scalar: 1.5))
        new.integers("axes", [-2, 3])
        new.node("Pad", ["x", "pads", "value", "axes"], ["y"], name: "pad")
        let expected = try pad2d(Variable(x), (1, 2, 3, 4), value: 1.5).value
        for sketch in [old, new] {
            let net = try network(sketch)
            XCTAssertEqual(try net.layer(named: "pad").attributes.values["padding"], .ints([1, 2, 3, 4]))
            XCTAssertEqual(try net(x), expected)
            XCTAssertEqual(try net(x).shape, [2, 3, 6, 8])
        }
        var channels = GraphSketch(opset: 13, input: x.shape)
        channels.integers("pads", [0, 1, 0, 0, 0, 0, 0, 0])
        channels.node("Pad", ["x", "pads"], ["y"], name: "chan")
        assertRefused(channels, mentions: ["node 'chan' (Pad)", "pads axes other than height and width"])
        var reflect = GraphSketch(opset: 13, input: x.shape)
        reflect.integers("pads", [0, 0, 1, 1, 0, 0, 1, 1])
        reflect.node("Pad", ["x", "pads"], ["y"], name: "mirror", .string("mode", "reflect"))
        assertRefused(reflect, mentions: ["node 'mirror' (Pad)", "mode 'reflect'", "mode constant"])
        var crop = GraphSketch(opset: 13, input: x.shape)
        crop.integers("pads", [0, 0, -1, 0, 0, 0, 0, 0])
        crop.node("Pad", ["x", "pads"], ["y"], name: "crop")
        assertRefused(crop, mentions: ["negative pads"])

        var squeeze = GraphSketch(opset: 11, input: [2, 1, 3])
        squeeze.node("Squeeze", ["x"], ["y"], name: "sq", .ints("axes", [1]))
        XCTAssertEqual(try network(squeeze)(Tensor.randn([2, 1, 3], seed: 5)).shape, [2, 3])
        var wrongSqueeze = GraphSketch(opset: 11, input: [2, 2, 3])
        wrongSqueeze.node("Squeeze", ["x"], ["y"], name: "sq", .ints("axes", [1]))
        assertRefused(wrongSqueeze, mentions: ["squeezes axis 1 of size 2"])
    }

    // MARK: - Products

    func testGemmWithBNotTransposedScalesByAlphaAndBeta() throws {
        let x = Tensor.randn([2, 3], seed: 6), b = Tensor.randn([3, 4], seed: 7), c = Tensor.randn([4], seed: 8)
        var expected = Tensor(zeros: [2, 4])
        for i in 0..<2 { for j in 0..<4 {
            var s: Float = 0
            for k in 0..<3 { s += x[i, k] * b[k, j] }
            expected[i, j] = 0.5 * s + 2 * c[j]
        }}
        var plain = GraphSketch(input: [2, 3])
        plain.initializer("B", b)
        plain.initializer("C", c)
        plain.node("Gemm", ["x", "B", "C"], ["y"], name: "fc", .float("alpha", 0.5), .float("beta", 2))
        // The same product with B stored transposed (transB = 1, as nn.Linear exports) and C as [1, 4].
        var transposed = GraphSketch(input: [2, 3])
        transposed.initializer("fc.weight", try transpose(Variable(b)).value)
        transposed.initializer("fc.bias", try c.reshaped([1, 4]))
        transposed.node("Gemm", ["x", "fc.weight", "fc.bias"], ["y"], name: "/fc/Gemm",
                        .int("transB", 1), .float("alpha", 0.5), .float("beta", 2))
        for sketch in [plain, transposed] {
            let net = try network(sketch)
            assertClose(try net(x), expected, "Gemm")
            XCTAssertEqual(net.parameterNames, ["fc.weight", "fc.bias"])
            XCTAssertEqual(try net.parameter("fc.weight").shape, [4, 3])
        }
        var transA = GraphSketch(input: [3, 2])
        transA.initializer("B", b)
        transA.node("Gemm", ["x", "B"], ["y"], name: "fc", .int("transA", 1))
        assertRefused(transA, mentions: ["node 'fc' (Gemm)", "transposes A"])
        var computedB = GraphSketch(input: [3, 3])
        computedB.node("Gemm", ["x", "x"], ["y"], name: "square")
        assertRefused(computedB, mentions: ["node 'square' (Gemm)", "its B 'x' is computed by the graph"])
    }

    /// MatMul by an initializer then Add of a vector: one linear layer with a bias, applied along
    /// the last axis of a rank-3 input.
    func testMatMulAndAddBecomeOneLinearLayer() throws {
        let x = Tensor.randn([2, 3, 4], seed: 9), b = Tensor.randn([4, 5], seed: 10), c = Tensor.randn([5], seed: 11)
        var g = GraphSketch(input: x.shape)
        g.initializer("proj.weight", b)
        g.initializer("proj.bias", c)
        g.node("MatMul", ["x", "proj.weight"], ["m"], name: "mm")
        g.node("Add", ["m", "proj.bias"], ["y"], name: "plus")
        let net = try network(g)
        XCTAssertEqual(try kinds(net), ["reshape", "linear", "reshape"], "the Add is the linear layer's bias")
        XCTAssertEqual(net.parameterNames, ["proj.weight", "proj.bias"])
        var expected = Tensor(zeros: [2, 3, 5])
        for i in 0..<2 { for j in 0..<3 { for o in 0..<5 {
            var s = c[o]
            for k in 0..<4 { s += x[i, j, k] * b[k, o] }
            expected[i, j, o] = s
        }}}
        assertClose(try net(x), expected, "MatMul + Add")
        // Read twice, the product keeps its own layer and the Add becomes an arithmetic layer.
        var twice = g
        twice.outputName = "z"
        twice.node("Add", ["y", "m"], ["z"], name: "again")
        XCTAssertEqual(try kinds(try network(twice)), ["reshape", "linear", "reshape", "arithmetic", "add"])
    }

    func testSigmoidTimesItsInputBecomesOneSiLULayer() throws {
        let x = Tensor.randn([2, 3, 4, 4], seed: 12).map { $0 * 4 }
        let expected = x.map { $0 / (1 + Foundation.exp(-$0)) }
        for order in [["x", "s"], ["s", "x"]] {
            var g = GraphSketch(input: x.shape)
            g.node("Conv", ["x", "w"], ["c"], name: "/block/conv/Conv")
            g.initializer("w", Tensor(shape: [3, 3, 1, 1], scalars: [1, 0, 0, 0, 1, 0, 0, 0, 1]))
            g.node("Sigmoid", ["c"], ["s"], name: "/block/act/Sigmoid")
            g.node("Mul", order.map { $0 == "x" ? "c" : $0 }, ["y"], name: "/block/act/Mul")
            let net = try network(g)
            XCTAssertEqual(try kinds(net), ["conv2d", "silu"], "x · sigmoid(x), \(order)")
            XCTAssertTrue(net.layerNames.contains("block_act_silu"), "\(net.layerNames)")
            assertClose(try net(x), expected, "SiLU")
            // Its gradient is SiLU's: s (1 + x (1 - s)).
            let gradient = try net.gradients(at: x) { try sum($0) }
            assertClose(try XCTUnwrap(gradient.input), x.map { let s = 1 / (1 + Foundation.exp(-$0)); return s * (1 + $0 * (1 - s)) }, "SiLU's gradient")
        }
        // Where the sigmoid is read again, or multiplies something else, both nodes stay.
        var twice = GraphSketch(input: [1, 4])
        twice.node("Sigmoid", ["x"], ["s"])
        twice.node("Mul", ["x", "s"], ["m"])
        twice.node("Add", ["m", "s"], ["y"])
        XCTAssertEqual(try kinds(try network(twice)), ["sigmoid", "mul", "add"])
        var other = GraphSketch(input: [1, 4])
        other.node("Relu", ["x"], ["r"])
        other.node("Sigmoid", ["x"], ["s"])
        other.node("Mul", ["r", "s"], ["y"])
        XCTAssertEqual(try kinds(try network(other)), ["relu", "sigmoid", "mul"])
        var squared = GraphSketch(input: [1, 4])
        squared.node("Sigmoid", ["x"], ["s"])
        squared.node("Mul", ["s", "s"], ["y"])
        XCTAssertEqual(try kinds(try network(squared)), ["sigmoid", "mul"])
    }

    /// The legacy exporter's exact GELU, x · (erf(x / √2) + 1) · 0.5 in five nodes with the
    /// constants in Constant nodes written just before their readers, imports as one `gelu`
    /// layer, the products in either order; a chain that differs anywhere keeps its nodes.
    func testExactGELUInFiveNodesBecomesOneLayer() throws {
        let x = Tensor.randn([2, 3, 4, 4], seed: 13).map { $0 * 3 }
        func sketch(divisor: Float = 1.4142135, halfFirst: Bool = false, readAgain: Bool = false) -> GraphSketch {
            var g = GraphSketch(input: x.shape)
            g.node("Relu", ["x"], ["r"], name: "/stem/Relu")
            g.node("Constant", [], ["k0"], name: "/block/act/Constant", .tensor("value", Tensor(scalar: divisor)))
            g.node("Div", ["r", "k0"], ["d"], name: "/block/act/Div")
            g.node("Erf", ["d"], ["e"], name: "/block/act/Erf")
            g.node("Constant", [], ["k1"], name: "/block/act/Constant_1", .tensor("value", Tensor(scalar: 1)))
            g.node("Add", ["e", "k1"], ["a"], name: "/block/act/Add")
            g.node("Constant", [], ["k2"], name: "/block/act/Constant_2", .tensor("value", Tensor(scalar: 0.5)))
            if halfFirst {
                g.node("Mul", ["a", "k2"], ["m"], name: "/block/act/Mul")
                g.node("Mul", ["r", "m"], ["y0"], name: "/block/act/Mul_1")
            } else {
                g.node("Mul", ["r", "a"], ["m"], name: "/block/act/Mul")
                g.node("Mul", ["m", "k2"], ["y0"], name: "/block/act/Mul_1")
            }
            if readAgain {
                g.node("Add", ["y0", "e"], ["y"], name: "/head/Add")
            } else {
                g.node("Identity", ["y0"], ["y"], name: "/head/Identity")
            }
            return g
        }
        let positive = x.map { Swift.max($0, 0) }
        let expectedAfterRelu = positive.map { Float(0.5 * Double($0) * (1 + Foundation.erf(Double($0) / 2.0.squareRoot()))) }
        for halfFirst in [false, true] {
            let net = try network(sketch(halfFirst: halfFirst))
            XCTAssertEqual(try kinds(net).filter { $0 != "identity" }, ["relu", "gelu"], "half first: \(halfFirst)")
            XCTAssertTrue(net.layerNames.contains("block_act_gelu"), "\(net.layerNames)")
            assertClose(try net(x), expectedAfterRelu, "GELU")
        }
        // Another divisor, or the erf read again, and the five nodes stay.
        XCTAssertFalse(try kinds(try network(sketch(divisor: 2))).contains("gelu"))
        XCTAssertFalse(try kinds(try network(sketch(readAgain: true))).contains("gelu"))
    }

    func testArithmeticWithConstantsOnEitherSideAndBetweenBranches() throws {
        let x = Tensor.randn([1, 3, 2, 2], seed: 12).map { $0 > 0 ? $0 + 0.5 : $0 - 0.5 }
        let mean = Tensor(shape: [3, 1, 1], scalars: [0.25, -0.5, 4])
        var g = GraphSketch(input: x.shape)
        g.initializer("mean", mean)
        g.initializer("two", Tensor(scalar: 2))
        g.node("Sub", ["x", "mean"], ["a"], name: "centre")
        g.node("Div", ["two", "x"], ["b"], name: "inverse")
        g.node("Mul", ["a", "b"], ["c"], name: "product")
        g.node("Sub", ["c", "x"], ["d"], name: "difference")
        g.node("Div", ["d", "a"], ["y"], name: "ratio")
        let net = try network(g)
        XCTAssertEqual(try kinds(net), ["arithmetic", "arithmetic", "mul", "arithmetic", "arithmetic"])
        XCTAssertEqual(try net.layer(named: "inverse").attributes.values["constant_first"], .bool(true))
        XCTAssertEqual(net.parameterNames, ["centre.constant", "inverse.constant"])
        var expected = x
        for i in 0..<x.count {
            let v = x.scalars[i], a = v - mean.scalars[i / 4]
            expected.scalars[i] = (a * (2 / v) - v) / a
        }
        assertClose(try net(x), expected, "arithmetic")
    }

    // MARK: - Forms that moved from attributes to inputs

    func testClipBoundsAsAttributesAndAsInputs() throws {
        let x = Tensor(shape: [1, 6], scalars: [-2, -0.5, 0, 0.2, 3, 7])
        var attributes = GraphSketch(opset: 10, input: x.shape)
        attributes.node("Clip", ["x"], ["y"], name: "c", .float("min", -0.5), .float("max", 0.25))
        XCTAssertEqual(try network(attributes)(x).scalars, [-0.5, -0.5, 0, 0.2, 0.25, 0.25])

        var inputs = GraphSketch(opset: 13, input: x.shape)
        inputs.initializer("low", Tensor(scalar: -0.5))
        inputs.node("Clip", ["x", "low", ""], ["y"], name: "c")
        let lowerOnly = try network(inputs)
        XCTAssertEqual(try lowerOnly(x).scalars, [-0.5, -0.5, 0, 0.2, 3, 7])
        XCTAssertNil(try lowerOnly.layer(named: "c").attributes.values["max"], "an absent bound is no attribute")
        XCTAssertNoThrow(try NetworkDescription(lowerOnly).json())

        var relu6 = GraphSketch(opset: 13, input: x.shape)
        relu6.initializer("zero", Tensor(scalar: 0))
        relu6.initializer("six", Tensor(scalar: 6))
        relu6.node("Clip", ["x", "zero", "six"], ["y"], name: "c")
        let net = try network(relu6)
        XCTAssertEqual(try kinds(net), ["relu6"])
        XCTAssertEqual(try net(x).scalars, [0, 0, 0, 0.2, 3, 6])

        var computed = GraphSketch(opset: 13, input: x.shape)
        computed.node("Relu", ["x"], ["r"])
        computed.node("Clip", ["x", "r"], ["y"], name: "bounded")
        assertRefused(computed, mentions: ["node 'bounded' (Clip)", "its lower bound 'r' is computed by the graph",
                                           "expected a constant lower bound"])
        var empty = GraphSketch(opset: 10, input: x.shape)
        empty.node("Clip", ["x"], ["y"], name: "empty", .float("min", 1), .float("max", -1))
        assertRefused(empty, mentions: ["node 'empty' (Clip)", "which is empty"])
    }

    func testReduceMeanAxesAsAttributeAndAsInput() throws {
        let x = Tensor.randn([2, 3, 4, 5], seed: 13)
        var means = Tensor(zeros: [2, 3])
        for n in 0..<2 { for c in 0..<3 {
            var s: Float = 0
            for h in 0..<4 { for w in 0..<5 { s += x[n, c, h, w] } }
            means[n, c] = s / 20
        }}
        var attribute = GraphSketch(opset: 13, input: x.shape)
        attribute.node("ReduceMean", ["x"], ["y"], name: "gap", .ints("axes", [2, 3]))
        let kept = try network(attribute)
        XCTAssertEqual(try kinds(kept), ["global_avgpool"])
        assertClose(try kept(x), try means.reshaped([2, 3, 1, 1]), "keepdims 1")

        var input = GraphSketch(opset: 18, input: x.shape)
        input.integers("axes", [-1, -2])
        input.node("ReduceMean", ["x", "axes"], ["y"], name: "gap", .int("keepdims", 0))
        let dropped = try network(input)
        XCTAssertEqual(try kinds(dropped), ["global_avgpool", "flatten"])
        assertClose(try dropped(x), means, "keepdims 0")

        var channels = GraphSketch(opset: 18, input: x.shape)
        channels.integers("axes", [1])
        channels.node("ReduceMean", ["x", "axes"], ["y"], name: "channel_mean")
        let overChannels = try network(channels)
        XCTAssertEqual(try kinds(overChannels), ["reduce"])
        assertClose(try overChannels(x), try mean(Variable(x), axis: 1, keepDims: true).value, "over the channels")
    }

    func testDropoutRatioAsAttributeAndAsInput() throws {
        let x = Tensor.randn([2, 4], seed: 14)
        var attribute = GraphSketch(opset: 10, input: x.shape)
        attribute.node("Dropout", ["x"], ["y"], name: "drop", .float("ratio", 0.3))
        var input = GraphSketch(opset: 13, input: x.shape)
        input.initializer("ratio", Tensor(scalar: 0.3))
        input.node("Dropout", ["x", "ratio"], ["y", "mask"], name: "drop")
        for sketch in [attribute, input] {
            let net = try network(sketch)
            XCTAssertEqual(try net.layer(named: "drop").attributes.values["p"], .float(0.3))
            XCTAssertEqual(try net(x), x, "dropout is the identity outside training")
        }
    }

    // MARK: - Convolution, pooling, normalization

    func testConvolutionAutoPadding() throws {
        let x = Tensor.randn([1, 2, 6, 7], seed: 15), w = Tensor.randn([3, 2, 3, 3], seed: 16), b = Tensor.randn([3], seed: 17)
        // Output ⌈6/2⌉ x ⌈7/2⌉ = 3 x 4 needs 1 row and 2 columns of padding; SAME_UPPER puts the odd row last.
        let cases: [(String, (Int, Int, Int, Int))] = [("SAME_UPPER", (0, 1, 1, 1)), ("SAME_LOWER", (1, 1, 0, 1)), ("VALID", (0, 0, 0, 0))]
        for (mode, padding) in cases {
            var g = GraphSketch(input: x.shape)
            g.initializer("conv.weight", w)
            g.initializer("conv.bias", b)
            g.node("Conv", ["x", "conv.weight", "conv.bias"], ["y"], name: "c", .string("auto_pad", mode), .ints("strides", [2, 2]))
            let net = try network(g)
            let padded = try pad2d(Variable(x), padding).value
            let expected = try Tensor.conv2dDirect(padded, w, b, ConvOptions(stride: 2))
            assertClose(try net(x), expected, mode)
            XCTAssertEqual(try net.layer(named: "conv").attributes.values["padding"], .ints([padding.0, padding.1, padding.2, padding.3]))
        }
        // Dilation, asymmetric pads and no bias.
        var dilated = GraphSketch(input: x.shape)
        dilated.initializer("w", w)
        dilated.node("Conv", ["x", "w"], ["y"], name: "d", .ints("dilations", [2, 1]), .ints("pads", [2, 0, 1, 1]),
                     .ints("kernel_shape", [3, 3]))
        let net = try network(dilated)
        XCTAssertEqual(net.parameterNames, ["d.weight"])
        assertClose(try net(x), try Tensor.conv2dDirect(x, w, nil, ConvOptions(stride: (1, 1), padding: (2, 0, 1, 1), dilation: (2, 1))),
                    "dilated")
        var unknown = GraphSketch(input: x.shape)
        unknown.initializer("w", w)
        unknown.node("Conv", ["x", "w"], ["y"], name: "c", .string("auto_pad", "SAME"))
        assertRefused(unknown, mentions: ["node 'c' (Conv)", "auto_pad 'SAME'", "NOTSET, SAME_UPPER, SAME_LOWER or VALID"])
        var unsized = GraphSketch(input: nil)
        unsized.initializer("w", w)
        unsized.node("Conv", ["x", "w"], ["y"], name: "c", .string("auto_pad", "SAME_UPPER"))
        assertRefused(unsized, mentions: ["auto_pad SAME_UPPER", "needs the input's height and width"])
        var volume = GraphSketch(input: [1, 2, 4, 4, 4])
        volume.initializer("w", Tensor(zeros: [3, 2, 3, 3, 3]))
        volume.node("Conv", ["x", "w"], ["y"], name: "c3d")
        assertRefused(volume, mentions: ["node 'c3d' (Conv)", "weight of shape [3, 2, 3, 3, 3]"])
        var mismatch = GraphSketch(input: [1, 5, 4, 4])
        mismatch.initializer("w", w)
        mismatch.node("Conv", ["x", "w"], ["y"], name: "c")
        assertRefused(mismatch, mentions: ["node 'c' (Conv)", "shape mismatch"])
    }

    /// Pools with pads and ceil_mode against windows worked out here: kernel 3x2, stride 2, one
    /// column of padding on the left, a 6x5 input; ceil_mode gives a third row of windows.
    func testPoolingWithPadsAndCeilMode() throws {
        let x = Tensor.randn([1, 2, 6, 5], seed: 20)
        func pooled(_ reduce: ([Float], Int) -> Float) -> Tensor {
            var y = Tensor(zeros: [1, 2, 3, 3])
            for c in 0..<2 { for i in 0..<3 { for j in 0..<3 {
                let rows = (i * 2)..<Swift.min(i * 2 + 3, 6), columns = Swift.max(j * 2 - 1, 0)..<Swift.min(j * 2 + 1, 5)
                let window = rows.flatMap { r in columns.map { x[0, c, r, $0] } }
                // The window's extent within the padded input: rows up to 6, columns from −1.
                let extent = (Swift.min(i * 2 + 3, 6) - i * 2) * (Swift.min(j * 2 + 1, 5) - (j * 2 - 1))
                y[0, c, i, j] = reduce(window, extent)
            }}}
            return y
        }
        let attributes: [GraphAttribute] = [.ints("kernel_shape", [3, 2]), .ints("strides", [2, 2]), .ints("pads", [0, 1, 0, 0]),
                                            .int("ceil_mode", 1)]
        let cases: [(String, [GraphAttribute], Tensor)] = [
            ("MaxPool", [], pooled { w, _ in w.max() ?? 0 }),
            ("AveragePool", [], pooled { w, _ in w.reduce(0, +) / Float(w.count) }),  // count_include_pad is 0 unless said
            ("AveragePool", [.int("count_include_pad", 1)], pooled { w, extent in w.reduce(0, +) / Float(extent) }),
        ]
        for (op, extra, expected) in cases {
            var g = GraphSketch(input: x.shape)
            g.nodeWith(op, ["x"], ["y"], name: "pool", attributes + extra)
            assertClose(try network(g)(x), expected, "\(op) \(extra)")
        }
        var dilated = GraphSketch(input: x.shape)
        dilated.node("MaxPool", ["x"], ["y"], name: "pool", .ints("kernel_shape", [2, 2]), .ints("dilations", [2, 2]))
        assertRefused(dilated, mentions: ["node 'pool' (MaxPool)", "pools with dilations"])
    }

    func testConstantForms() throws {
        let x = Tensor(shape: [1, 3], scalars: [1, 2, 3])
        var g = GraphSketch(opset: 13, input: x.shape)
        g.node("Constant", [], ["half"], .float("value_float", 0.5))
        g.node("Constant", [], ["steps"], .tensor("value", Tensor(shape: [3], scalars: [10, 20, 30])))
        g.node("Mul", ["x", "half"], ["a"], name: "scale")
        g.node("Add", ["a", "steps"], ["b"], name: "shift")
        g.node("Sum", ["a", "b", "x"], ["y"], name: "total")
        let net = try network(g)
        XCTAssertEqual(try kinds(net), ["arithmetic", "arithmetic", "add"])
        let expected: [Float] = [12, 24, 36]  // a + (a + steps) + x, with a = x / 2
        XCTAssertEqual(try net(x).scalars, expected)
        var bare = GraphSketch(opset: 13, input: x.shape)
        bare.node("Constant", [], ["c"], name: "empty")
        bare.node("Add", ["x", "c"], ["y"])
        assertRefused(bare, mentions: ["node 'empty' (Constant)", "holds no value cnnlab reads"])
    }

    func testLocalResponseNormalization() throws {
        let x = Tensor.randn([1, 5, 2, 2], seed: 18)
        var g = GraphSketch(input: x.shape)
        g.node("LRN", ["x"], ["y"], name: "lrn", .int("size", 3), .float("alpha", 0.5), .float("beta", 0.75), .float("bias", 2))
        // ONNX: y = x / (bias + alpha/size · Σ x² over channels c−1...c+1)^beta.
        var expected = x
        for c in 0..<5 { for h in 0..<2 { for w in 0..<2 {
            var s: Float = 0
            for cc in Swift.max(0, c - 1)...Swift.min(4, c + 1) { s += x[0, cc, h, w] * x[0, cc, h, w] }
            expected[0, c, h, w] = x[0, c, h, w] / pow(2 + 0.5 / 3 * s, 0.75)
        }}}
        assertClose(try network(g)(x), expected, "LRN")
        var even = GraphSketch(input: x.shape)
        even.node("LRN", ["x"], ["y"], name: "lrn4", .int("size", 4))
        assertRefused(even, mentions: ["node 'lrn4' (LRN)", "has size 4", "an odd number"])
    }

    /// Before opset 13, Softmax flattens the input from its axis (default 1); from 13 on it acts
    /// along that one axis (default −1).
    func testSoftmaxFormsBeforeAndAfterOpset13() throws {
        let x = Tensor(shape: [1, 2, 3], scalars: [0, 1, 2, 3, 4, 5])
        var old = GraphSketch(opset: 11, input: x.shape)
        old.node("Softmax", ["x"], ["y"], name: "s")
        let total = x.scalars.map { exp($0) }.reduce(0, +)
        assertClose(try network(old)(x), x.map { exp($0) / total }, "opset 11")

        var new = GraphSketch(opset: 13, input: x.shape)
        new.node("Softmax", ["x"], ["y"], name: "s", .int("axis", 1))
        var alongAxis1 = x
        for j in 0..<3 {
            let s = exp(x[0, 0, j]) + exp(x[0, 1, j])
            for i in 0..<2 { alongAxis1[0, i, j] = exp(x[0, i, j]) / s }
        }
        assertClose(try network(new)(x), alongAxis1, "opset 13")
    }

    func testBatchNormalizationInInference() throws {
        let x = Tensor.randn([2, 3, 2, 2], seed: 19)
        let scale = Tensor(shape: [3], scalars: [1, 2, 0.5]), bias = Tensor(shape: [3], scalars: [0, 1, -1])
        let mean = Tensor(shape: [3], scalars: [0.1, -0.2, 0.3]), variance = Tensor(shape: [3], scalars: [1, 0.5, 2])
        var g = GraphSketch(input: x.shape)
        for (name, t) in [("bn.weight", scale), ("bn.bias", bias), ("bn.running_mean", mean), ("bn.running_var", variance)] {
            g.initializer(name, t)
        }
        g.node("BatchNormalization", ["x", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"], ["y"],
               name: "norm", .float("epsilon", 1e-3), .float("momentum", 0.8))
        let net = try network(g)
        XCTAssertEqual(net.parameterNames, ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"])
        XCTAssertEqual(try net.layer(named: "bn").attributes.values["momentum"]?.description, AttributeValue.float(1 - 0.8).description)
        var expected = x
        for i in 0..<x.count {
            let c = (i / 4) % 3
            expected.scalars[i] = (x.scalars[i] - mean.scalars[c]) / (variance.scalars[c] + 1e-3).squareRoot() * scale.scalars[c] + bias.scalars[c]
        }
        assertClose(try net(x), expected, "batch norm")

        var trainingMode = GraphSketch(opset: 15, input: x.shape)
        for (name, t) in [("s", scale), ("b", bias), ("m", mean), ("v", variance)] { trainingMode.initializer(name, t) }
        trainingMode.node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name: "bn_train", .int("training_mode", 1))
        assertRefused(trainingMode, mentions: ["node 'bn_train' (BatchNormalization)", "training mode"])
        var shortScale = GraphSketch(input: x.shape)
        for (name, t) in [("s", Tensor(ones: [2])), ("b", bias), ("m", mean), ("v", variance)] { shortScale.initializer(name, t) }
        shortScale.node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name: "bn_bad")
        assertRefused(shortScale, mentions: ["node 'bn_bad' (BatchNormalization)", "its bias has shape [3]", "expected [2] like its scale"])
    }
}
