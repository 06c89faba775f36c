import XCTest
@testable import Engine

/// Forward values and gradients of every op, and of a small CNN, against PyTorch's
/// (fixtures written by scripts/make-fixtures.py), within 1e-4 relative.
final class ReferenceTests: XCTestCase {
    /// Builds the op of a fixture from its inputs (as variables, keyed by name).
    func apply(_ f: Fixture, _ v: [String: Variable]) throws -> Variable {
        let a = f.attrs
        func pads(_ key: String) throws -> (Int, Int, Int, Int) { let p = try a.ints(key); return (p[0], p[1], p[2], p[3]) }
        func pair(_ key: String) throws -> (Int, Int) { let p = try a.ints(key); return (p[0], p[1]) }
        func pool() throws -> PoolOptions {
            PoolOptions(kernel: try pair("kernel"), stride: try pair("stride"), padding: try pads("padding"),
                        ceilMode: try a.bool("ceil_mode"),
                        countIncludePad: a.contains("count_include_pad") ? try a.bool("count_include_pad") : true)
        }
        let x = v["x"]
        switch f.op {
        case "conv2d":
            return try conv2d(x!, v["weight"]!, v["bias"], ConvOptions(stride: try pair("stride"), padding: try pads("padding"),
                                                                        dilation: try pair("dilation"), groups: try a.int("groups")))
        case "relu": return relu(x!)
        case "leaky_relu": return leakyRelu(x!, slope: try a.float("slope"))
        case "sigmoid": return sigmoid(x!)
        case "tanh": return tanh(x!)
        case "clip": return clip(x!, min: try a.float("min"), max: try a.float("max"))
        case "softmax": return try softmax(x!, axis: try a.int("axis"))
        case "log_softmax": return try logSoftmax(x!, axis: try a.int("axis"))
        case "max_pool2d":
            let (y, switches) = try maxPool2dWithSwitches(x!, try pool())
            XCTAssertEqual(switches.map(Int.init), try f.integers("indices"), "\(f.name): switches")
            return y
        case "avg_pool2d": return try avgPool2d(x!, try pool())
        case "adaptive_avg_pool2d": return try adaptiveAvgPool2d(x!, outputSize: try pair("output_size"))
        case "local_response_norm":
            return try localResponseNorm(x!, size: try a.int("size"), alpha: try a.float("alpha"), beta: try a.float("beta"), k: try a.float("k"))
        case "batch_norm":
            let training = a.contains("training") ? try a.bool("training") : false
            let r = try batchNorm(x!, weight: v["weight"], bias: v["bias"], runningMean: v["running_mean"]!.value,
                                  runningVar: v["running_var"]!.value, eps: try a.float("eps"), training: training,
                                  momentum: a.contains("momentum") ? try a.float("momentum") : 0.1)
            if training {
                assertClose(r.runningMean, try f.extra("running_mean"))
                assertClose(r.runningVar, try f.extra("running_var"))
            }
            return r.output
        case "linear": return try linear(x!, v["weight"]!, v["bias"])
        case "matmul": return try matmul(v["a"]!, v["b"]!)
        case "add": return try add(v["a"]!, v["b"]!)
        case "sub": return try subtract(v["a"]!, v["b"]!)
        case "mul": return try multiply(v["a"]!, v["b"]!)
        case "div": return try divide(v["a"]!, v["b"]!)
        case "sum", "mean", "max":
            let axis = try a.optionalInt("axis")
            let keep = a.contains("keepdims") ? try a.bool("keepdims") : false
            switch f.op {
            case "sum": return try sum(x!, axis: axis, keepDims: keep)
            case "mean": return try mean(x!, axis: axis, keepDims: keep)
            default: return try max(x!, axis: axis, keepDims: keep)
            }
        case "concat":
            let parts = v.keys.filter { $0.hasPrefix("x") }.sorted().map { v[$0]! }
            return try concat(parts, axis: try a.int("axis"))
        case "flatten": return try flatten(x!, startDim: try a.int("start_dim"))
        case "cross_entropy": return try crossEntropy(v["logits"]!, targets: try f.integers("targets"))
        case "small_cnn": return try buildNetwork(f).forward(x!, context: context(f, v))
        default:
            throw FixtureError.malformed(fixture: f.name, reason: "no engine op for '\(f.op)'")
        }
    }

    /// The fixture's chain of layers as a network, with PyTorch's weights put on by name.
    func buildNetwork(_ f: Fixture) throws -> Network {
        let net = Network()
        for l in try f.attrs.objects("layers") {
            let name = try l.string("name")
            let layer: Layer
            switch try l.string("type") {
            case "conv2d":
                layer = try LayerRegistry.make("conv2d", ["in": .int(try l.int("in")), "out": .int(try l.int("out")),
                                                          "kernel": .int(try l.int("kernel")), "padding": .int(try l.int("padding")),
                                                          "stride": .int(try l.int("stride"))])
            case "relu": layer = try LayerRegistry.make("relu")
            case "max_pool2d": layer = try LayerRegistry.make("maxpool", ["kernel": .int(try l.int("kernel")), "stride": .int(try l.int("stride"))])
            case "flatten": layer = try LayerRegistry.make("flatten", ["start_dim": .int(try l.int("start_dim"))])
            case "linear": layer = try LayerRegistry.make("linear", ["in": .int(try l.int("in")), "out": .int(try l.int("out"))])
            case let other: throw FixtureError.malformed(fixture: f.name, reason: "unknown layer type \(other)")
            }
            try net.append(name, layer)
        }
        for name in net.parameterNames { try net.setParameter(name, try f.input(name)) }
        return net
    }

    /// Parameters of the network become the fixture's input variables, so their gradients come back.
    func context(_ f: Fixture, _ v: [String: Variable]) -> ForwardContext {
        let ctx = ForwardContext(trackParameters: true)
        for (name, variable) in v where name.contains(".") { ctx.parameterVariables[name] = variable }
        return ctx
    }

    func testEveryFixtureAgreesWithPyTorch() throws {
        let fixtures = try Fixture.all()
        XCTAssertGreaterThan(fixtures.count, 50)
        for f in fixtures {
            var vars: [String: Variable] = [:]
            for (name, t) in f.inputs { vars[name] = Variable(t, requiresGrad: !f.integerInputs.contains(name) && f.grads[name] != nil) }
            let y: Variable
            do { y = try apply(f, vars) } catch { XCTFail("\(f.name): \(error)"); continue }
            assertClose(y.value, f.output, "\(f.name) output")
            let names = f.grads.keys.sorted()
            let grads = try gradients(of: y, withRespectTo: names.map { vars[$0]! }, seed: f.upstream)
            for (name, g) in zip(names, grads) {
                assertClose(g, try f.grad(name), "\(f.name) gradient of \(name)")
            }
        }
    }
}
