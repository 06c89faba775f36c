import XCTest
import Engine

/// The fixtures themselves and their loader; the ops are tested against them elsewhere.
final class FixtureSupportTests: XCTestCase {
    /// Every op of the engine that PyTorch references exist for.
    static let requiredOps = [
        "conv2d", "relu", "leaky_relu", "sigmoid", "tanh", "clip", "softmax", "log_softmax",
        "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "local_response_norm", "batch_norm",
        "linear", "matmul", "add", "sub", "mul", "div", "sum", "mean", "max", "concat", "flatten",
        "cross_entropy", "small_cnn",
    ]

    func testEveryFixtureIsConsistent() throws {
        let names = try Fixture.names()
        XCTAssertGreaterThan(names.count, 0)
        for name in names {
            // load() checks every shape against its data count and throws otherwise.
            let f = try Fixture.load(name)
            XCTAssertEqual(f.name, name)
            XCTAssertEqual(f.upstream.shape, f.output.shape, "\(name): upstream is shaped like the output")
            XCTAssertFalse(f.inputs.isEmpty, "\(name): no inputs")
            XCTAssertFalse(f.grads.isEmpty, "\(name): no gradients")
            for (key, grad) in f.grads {
                guard let input = f.inputs[key] else {
                    XCTFail("\(name): gradient for '\(key)', which is not an input")
                    continue
                }
                XCTAssertEqual(grad.shape, input.shape, "\(name): gradient of '\(key)' is shaped like the input")
                XCTAssertFalse(f.integerInputs.contains(key), "\(name): integer input '\(key)' has a gradient")
            }
            let all = [f.output, f.upstream] + Array(f.inputs.values) + Array(f.grads.values) + Array(f.extras.values)
            XCTAssertTrue(all.allSatisfy { $0.scalars.allSatisfy(\.isFinite) }, "\(name): non-finite numbers")
        }
    }

    func testEveryOpHasAFixtureAndNoneIsUnknown() throws {
        let ops = Set(try Fixture.all().map(\.op))
        for op in Self.requiredOps {
            XCTAssertTrue(ops.contains(op), "no fixture for \(op)")
        }
        XCTAssertEqual(ops.subtracting(Self.requiredOps), [], "fixtures for ops missing from requiredOps")
        let convNames = try Fixture.names().filter { $0.hasPrefix("conv2d_") }
        XCTAssertEqual(try Fixture.all(op: "conv2d").map(\.name), convNames)
        XCTAssertThrowsError(try Fixture.all(op: "conv3d"))
    }

    func testAttributesReadByType() throws {
        let conv = try Fixture.load("conv2d_same_asymmetric_stride2")
        XCTAssertEqual(try conv.attrs.ints("stride"), [2, 2])
        XCTAssertEqual(try conv.attrs.ints("padding"), [0, 0, 1, 1])
        XCTAssertEqual(try conv.attrs.int("groups"), 1)
        XCTAssertNil(conv.inputs["bias"])
        XCTAssertThrowsError(try conv.attrs.int("stride"))     // an array, not a number
        XCTAssertThrowsError(try conv.attrs.bool("groups"))    // 1 is not true
        XCTAssertThrowsError(try conv.attrs.ints("kernel"))    // absent

        let pool = try Fixture.load("max_pool2d_k3s2_ceil")
        XCTAssertEqual(try pool.attrs.bool("ceil_mode"), true)
        XCTAssertEqual(try Fixture.load("leaky_relu").attrs.float("slope"), 0.1)
        XCTAssertEqual(try Fixture.load("local_response_norm_alexnet").attrs.float("alpha"), 1e-4)

        let sumAll = try Fixture.load("sum_all")
        XCTAssertTrue(sumAll.attrs.isNull("axis"))
        XCTAssertNil(try sumAll.attrs.optionalInt("axis"))
        XCTAssertEqual(sumAll.output.shape, [])
        XCTAssertEqual(try Fixture.load("sum_axis1").attrs.optionalInt("axis"), 1)

        let layers = try Fixture.load("small_cnn").attrs.objects("layers")
        XCTAssertEqual(try layers.map { try $0.string("type") },
                       ["conv2d", "relu", "max_pool2d", "conv2d", "relu", "max_pool2d", "flatten", "linear"])
        XCTAssertEqual(try layers[7].int("in"), 8 * 7 * 7)
    }

    func testIntegerTensorsAndExtras() throws {
        let ce = try Fixture.load("cross_entropy")
        XCTAssertEqual(ce.integerInputs, ["targets"])
        let targets = try ce.integers("targets")
        XCTAssertEqual(targets.count, 4)
        XCTAssertTrue(targets.allSatisfy { (0..<10).contains($0) })
        XCTAssertEqual(ce.upstream, Tensor(shape: [], scalars: [1]))
        XCTAssertEqual(Set(ce.grads.keys), ["logits"])

        // PyTorch's indices are flat within each H×W plane: output = plane[index].
        let pool = try Fixture.load("max_pool2d_k3s2_pad1")
        let x = try pool.input("x"), indices = try pool.integers("indices")
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let perPlane = pool.output.count / (n * c)
        for (i, index) in indices.enumerated() {
            XCTAssertEqual(x.scalars[(i / perPlane) * h * w + index], pool.output.scalars[i])
        }

        let bn = try Fixture.load("batch_norm_training")
        XCTAssertEqual(try bn.extra("running_mean").shape, [3])
        XCTAssertEqual(try bn.extra("running_var").shape, [3])
        XCTAssertNotEqual(try bn.extra("running_var"), try bn.input("running_var"))
        XCTAssertEqual(Set(bn.grads.keys), ["x", "weight", "bias"])
    }

    /// Recomputes two fixtures by their formulas, which checks that data are read row-major.
    func testFixturesMatchTheirFormulas() throws {
        let relu = try Fixture.load("relu")
        let x = try relu.input("x")
        assertClose(relu.output, x.map { Swift.max($0, 0) }, rtol: 0, atol: 0)
        assertClose(try relu.grad("x"), relu.upstream.zipMap(x) { $1 > 0 ? $0 : 0 }, rtol: 0, atol: 0)

        // y[i, o] = sum_k x[i, k] W[o, k] + b[o]
        let linear = try Fixture.load("linear")
        let (a, wt, b) = (try linear.input("x"), try linear.input("weight"), try linear.input("bias"))
        var y = Tensor(zeros: [a.shape[0], wt.shape[0]])
        for i in 0..<a.shape[0] {
            for o in 0..<wt.shape[0] {
                var s = b[o]
                for k in 0..<a.shape[1] { s += a[i, k] * wt[o, k] }
                y[i, o] = s
            }
        }
        assertClose(y, linear.output)
    }

    func testLoaderRejectsMalformedFixtures() throws {
        func fixture(_ output: String) -> Data {
            let head = #"{"name":"bad","op":"relu","attrs":{},"inputs":{"x":{"shape":[2],"data":[1,2]}},"#
            let tail = #","upstream":{"shape":[2],"data":[1,1]},"grads":{"x":{"shape":[2],"data":[1,1]}}}"#
            return Data((head + output + tail).utf8)
        }
        XCTAssertNoThrow(try Fixture.decode(fixture(#""output":{"shape":[2],"data":[1,2]}"#), name: "bad"))
        XCTAssertThrowsError(try Fixture.decode(fixture(#""output":{"shape":[2,2],"data":[1,2]}"#), name: "bad")) {
            XCTAssertTrue("\($0)".contains("holds 4 numbers, data has 2"), "\($0)")
        }
        XCTAssertThrowsError(try Fixture.decode(fixture(#""result":{"shape":[2],"data":[1,2]}"#), name: "bad"))
        XCTAssertThrowsError(try Fixture.decode(fixture(#""output":{"shape":[2],"data":[1,2]}"#), name: "other"))
        XCTAssertThrowsError(try Fixture.load("conv2d_stride2_pad")) {
            XCTAssertTrue("\($0)".contains("did you mean 'conv2d_stride2_pad1'"), "\($0)")
        }
    }

    func testClosenessReportsTheWorstElement() {
        let expected = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(closeness(expected, expected), .close)
        // Within tolerance: 1e-5 + 1e-4 * 6 allows 6.1e-4.
        XCTAssertEqual(closeness(Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6.0005]), expected), .close)

        let got = Tensor(shape: [2, 3], scalars: [1, 2.01, 3, 4, 5, 5.5])
        guard case .mismatch(let index, let g, let e, _, let failing, let count) = closeness(got, expected) else {
            return XCTFail("expected a mismatch")
        }
        XCTAssertEqual(index, [1, 2])
        XCTAssertEqual(g, 5.5)
        XCTAssertEqual(e, 6)
        XCTAssertEqual(failing, 2)
        XCTAssertEqual(count, 6)

        let nan = Tensor(shape: [2, 3], scalars: [1, 2, .nan, 4, 5, 7])
        guard case .mismatch(let nanIndex, _, _, _, _, _) = closeness(nan, expected) else {
            return XCTFail("NaN must not pass")
        }
        XCTAssertEqual(nanIndex, [0, 2])
        XCTAssertEqual(closeness(Tensor(zeros: [3, 2]), expected), .shapeMismatch(got: [3, 2], expected: [2, 3]))
    }
}
