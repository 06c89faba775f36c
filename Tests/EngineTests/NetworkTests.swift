import XCTest
@testable import Engine

final class NetworkTests: XCTestCase {
    func lenet(seed: UInt64 = 0) throws -> Network {
        let net = Network()
        try net.append("conv1", LayerRegistry.make("conv2d", ["in": .int(1), "out": .int(8), "kernel": .int(5)], seed: seed))
        try net.append("relu1", LayerRegistry.make("relu"))
        try net.append("pool1", LayerRegistry.make("maxpool", ["kernel": .int(2)]))
        try net.append("conv2", LayerRegistry.make("conv2d", ["in": .int(8), "out": .int(16), "kernel": .int(5)], seed: seed + 1))
        try net.append("relu2", LayerRegistry.make("relu"))
        try net.append("pool2", LayerRegistry.make("maxpool", ["kernel": .int(2)]))
        try net.append("flat", LayerRegistry.make("flatten"))
        try net.append("fc", LayerRegistry.make("linear", ["in": .int(256), "out": .int(10)], seed: seed + 2))
        return net
    }

    func testChainStopsAtAnyLayerAndNamesParameters() throws {
        let net = try lenet()
        let x = Tensor.randn([1, 1, 28, 28], seed: 1)
        XCTAssertEqual(try net(x, upTo: "pool1").shape, [1, 8, 12, 12])
        XCTAssertEqual(try net(x).shape, [1, 10])
        XCTAssertEqual(try net.shapes(for: [1, 1, 28, 28])["conv2"], [1, 16, 8, 8])
        XCTAssertEqual(net.parameterNames, ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias"])
        XCTAssertEqual(try net.parameter("conv1.weight").shape, [8, 1, 5, 5])
        XCTAssertEqual(net.parameterCount, 8 * 25 + 8 + 16 * 8 * 25 + 16 + 2560 + 10)
        XCTAssertThrowsError(try net(x, upTo: "conv6")) { e in XCTAssertTrue("\(e)".contains("did you mean 'conv1'"), "\(e)") }
        XCTAssertThrowsError(try net.setParameter("conv1.weight", Tensor(zeros: [8, 1, 3, 3])))
    }

    /// A pass's plan (which values each layer reads, and when each can go) is kept for its
    /// outputs, and follows the network as it grows: a layer appended after a pass runs, a value
    /// the new layer also reads is still there for it, the input and a value read by a later
    /// layer can be asked for, in any order; with and without a gradient recorded.
    func testPassPlansFollowTheNetworkAsItGrows() throws {
        let net = Network()
        try net.append("a", LayerRegistry.make("relu"))
        try net.append("b", LayerRegistry.make("sigmoid"))
        let x = Tensor(shape: [1, 1, 2, 2], scalars: [-1, 0, 1, 2])
        let a = x.scalars.map { max($0, 0) }, b = a.map { 1 / (1 + exp(-$0)) }
        for grad in [false, true] {
            let run = { (outputs: [String]) in try net.forward(Variable(x, requiresGrad: grad), outputs: outputs, context: ForwardContext()).map(\.value.scalars) }
            XCTAssertEqual(try run(["b"]), [b])
            XCTAssertEqual(try run(["b"]), [b], "the kept plan")
            XCTAssertEqual(try run(["b", "input", "a"]), [b, x.scalars, a])
            XCTAssertThrowsError(try run(["c"])) { e in XCTAssertTrue("\(e)".contains("'c'"), "\(e)") }
        }
        try net.append("c", LayerRegistry.make("tanh"), inputs: ["a"])
        try net.append("d", LayerRegistry.make("add"), inputs: ["b", "c"])
        let c = a.map { Float(tanh(Double($0))) }, d = zip(b, c).map { $0 + $1 }
        for grad in [false, true] {
            let run = { (outputs: [String]) in try net.forward(Variable(x, requiresGrad: grad), outputs: outputs, context: ForwardContext()).map(\.value.scalars) }
            for (got, want) in zip(try run(["d", "a", "b"]), [d, a, b]) {
                for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 1e-6) }
            }
            XCTAssertEqual(try run(["b"]), [b], "a shorter pass of the grown network")
        }
        // More sets of outputs than plans are kept: each still right, at most 64 plans kept.
        for k in 0..<100 {
            let outputs = ["b"] + Array(repeating: "a", count: k)
            XCTAssertEqual(try net.forward(Variable(x), outputs: outputs, context: ForwardContext()).map(\.value.scalars),
                           [b] + Array(repeating: a, count: k))
        }
        XCTAssertLessThanOrEqual(net.keptPlans, 64)
    }

    func testResidualAndConcatBranches() throws {
        let net = Network()
        try net.append("stem", LayerRegistry.make("conv2d", ["in": .int(2), "out": .int(4), "kernel": .int(3), "padding": .int(1)], seed: 1))
        try net.append("a", LayerRegistry.make("conv2d", ["in": .int(4), "out": .int(4), "kernel": .int(3), "padding": .int(1)], seed: 2))
        try net.append("sum", LayerRegistry.make("add"), inputs: ["stem", "a"])
        try net.append("b1", LayerRegistry.make("conv2d", ["in": .int(4), "out": .int(2), "kernel": .int(1)], seed: 3), inputs: ["sum"])
        try net.append("b3", LayerRegistry.make("conv2d", ["in": .int(4), "out": .int(3), "kernel": .int(3), "padding": .int(1)], seed: 4), inputs: ["sum"])
        try net.append("cat", LayerRegistry.make("concat", ["axis": .int(1)]), inputs: ["b1", "b3"])
        let x = Tensor.randn([1, 2, 5, 5], seed: 9)
        let y = try net(x)
        XCTAssertEqual(y.shape, [1, 5, 5, 5])
        // The same computation by hand.
        func conv(_ name: String, _ v: Tensor, pad: Int) throws -> Tensor {
            try Tensor.conv2d(v, try net.parameter(name + ".weight"), try net.parameter(name + ".bias"), ConvOptions(padding: pad))
        }
        let stem = try conv("stem", x, pad: 1)
        let s = stem.zipMap(try conv("a", stem, pad: 1), +)
        let expected = try concat([Variable(try conv("b1", s, pad: 0)), Variable(try conv("b3", s, pad: 1))], axis: 1).value
        XCTAssertTrue(y.isClose(to: expected))
        // Gradients flow through both branches (checked numerically).
        let results = try checkGradients(at: [x], of: { try net.forward($0[0]) })
        XCTAssertTrue(results[0].passed, "\(results[0])")
        XCTAssertThrowsError(try net.append("bad", LayerRegistry.make("add"), inputs: ["nowhere"]))
    }

    func testParameterGradientsMatchFiniteDifferences() throws {
        let net = try lenet()
        let x = Tensor.randn([2, 1, 28, 28], seed: 5)
        let g = try net.gradients(at: x, parameterGradients: true) { try crossEntropy($0, targets: [3, 7]) }
        XCTAssertEqual(Set(g.parameters.keys), Set(net.trainableParameterNames))
        // Perturb one weight of fc and one of conv1 and compare.
        for (name, index) in [("fc.weight", 17), ("conv1.weight", 3), ("conv2.bias", 5)] {
            let w = try net.parameter(name)
            func loss(_ delta: Float) throws -> Float {
                var p = w; p.scalars[index] += delta
                try net.setParameter(name, p)
                defer { try? net.setParameter(name, w) }
                return try crossEntropy(net.forward(Variable(x)), targets: [3, 7]).value.scalars[0]
            }
            let numeric = (try loss(1e-2) - loss(-1e-2)) / 2e-2
            XCTAssertEqual(g.parameters[name]!.scalars[index], numeric, accuracy: 2e-3 + 0.02 * abs(numeric), name)
        }
    }

    func testReLURulesOnAHandWrittenNet() throws {
        // y = relu(w · x) with w = [[1, -1]]: guided and deconvnet differ from the true gradient
        // exactly as their definitions say.
        let net = Network()
        let fc = try LayerRegistry.make("linear", ["in": .int(2), "out": .int(2), "bias": .bool(false)])
        fc.parameters["weight"] = try Tensor([[1, -1], [2, 1]])
        try net.append("fc", fc)
        try net.append("relu", LayerRegistry.make("relu"))
        let fc2 = try LayerRegistry.make("linear", ["in": .int(2), "out": .int(1), "bias": .bool(false)])
        fc2.parameters["weight"] = try Tensor([[-1, 1]])
        try net.append("out", fc2)
        let x = try Tensor([[1, 2]])  // fc gives [-1, 4]: unit 0 is off, unit 1 on
        func grad(_ rule: ReLURule) throws -> [Float] {
            try net.gradients(at: x, context: ForwardContext(reluRule: rule)) { try sum($0) }.input!.scalars
        }
        // dL/d(relu out) = [-1, 1]
        XCTAssertEqual(try grad(.plain), [2, 1])        // mask [0, 1]: [0, 1] · W = [2, 1]
        XCTAssertEqual(try grad(.deconvnet), [2, 1])    // max(dy, 0) = [0, 1]
        fc2.parameters["weight"] = try Tensor([[1, -1]])  // now dy = [1, -1]
        XCTAssertEqual(try grad(.plain), [-2, -1])      // mask [0, 1]: [0, -1] · W
        XCTAssertEqual(try grad(.deconvnet), [1, -1])   // max(dy, 0) = [1, 0] ignores the forward mask
        XCTAssertEqual(try grad(.guided), [0, 0])       // both masks: [0, 0]
    }

    func testOptimizersFollowTheirFormulas() {
        var p = ["w": Tensor([1, -2])]
        var sgd = SGD(learningRate: 0.1, momentum: 0.9)
        sgd.step(&p, gradients: ["w": Tensor([1, 1])])       // v = g; p -= 0.1 v
        XCTAssertEqual(p["w"]!.scalars, [0.9, -2.1])
        sgd.step(&p, gradients: ["w": Tensor([1, 1])])       // v = 0.9 + 1 = 1.9
        XCTAssertEqual(p["w"]!.scalars[0], 0.71, accuracy: 1e-6)
        var q = ["w": Tensor([1])]
        var adam = Adam(learningRate: 0.01)
        adam.step(&q, gradients: ["w": Tensor([5])])          // first step moves by lr · sign(g)
        XCTAssertEqual(q["w"]!.scalars[0], 0.99, accuracy: 1e-5)
    }

    func testTrainingReducesTheLoss() throws {
        // A separable toy problem: the class is which half of the image is brighter.
        let net = Network()
        try net.append("conv", LayerRegistry.make("conv2d", ["in": .int(1), "out": .int(4), "kernel": .int(3), "padding": .int(1)], seed: 1))
        try net.append("relu", LayerRegistry.make("relu"))
        try net.append("pool", LayerRegistry.make("global_avgpool"))
        try net.append("flat", LayerRegistry.make("flatten"))
        try net.append("fc", LayerRegistry.make("linear", ["in": .int(4), "out": .int(2)], seed: 2))
        var g = SeededGenerator(seed: 3)
        var xs = Tensor.uniform([16, 1, 6, 6], generator: &g)
        var labels: [Int] = []
        for i in 0..<16 {
            let top = i % 2 == 0
            labels.append(top ? 0 : 1)
            for r in 0..<3 { for c in 0..<6 { xs[i, 0, top ? r : r + 3, c] += 2 } }
        }
        var opt = Adam(learningRate: 0.05)
        var first: Float = 0, last: Float = 0
        for step in 0..<60 {
            let r = try net.gradients(at: xs, inputGradient: false, parameterGradients: true) { try crossEntropy($0, targets: labels) }
            if step == 0 { first = r.loss }
            last = r.loss
            try opt.step(net, gradients: r.parameters)
        }
        XCTAssertLessThan(last, first * 0.5, "loss \(first) -> \(last)")
    }
}
