import Engine
import Foundation
@testable import Script
import XCTest

final class InterpreterTests: XCTestCase {
    func testRangesHoldBothEnds() {
        XCTAssertEqual(text("n = 0\nfor c in 0..9 { n += 1 }\nn"), "10")
        XCTAssertEqual(text("len(3..1)"), "0")
        XCTAssertEqual(text("(2..5)[-1]"), "5")
    }

    func testSessionKeepsVariablesAcrossRunsAndAfterErrors() {
        let recorder = EventRecorder()
        let interpreter = Interpreter(sink: recorder)
        interpreter.run(SourceFile(name: "a", text: "x = 41"))
        guard case .failed = interpreter.run(SourceFile(name: "b", text: "x = x + 1\ny = undefined_name")) else { return XCTFail() }
        guard case .success(let v?) = interpreter.run(SourceFile(name: "c", text: "x")) else { return XCTFail() }
        XCTAssertEqual(Display.text(v), "42")  // statements before the error took effect
    }

    func testCancellationStopsALoopAndTheSessionLivesOn() {
        let recorder = EventRecorder()
        let interpreter = Interpreter(sink: recorder)
        interpreter.run(SourceFile(name: "a", text: "kept = 7"))
        let flag = interpreter.cancellation
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { flag.cancel() }
        let start = Date()
        let outcome = interpreter.run(SourceFile(name: "loop", text: "i = 0\nwhile true { i += 1 }"))
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        guard case .failed(let d) = outcome else { return XCTFail("the loop should have been interrupted") }
        XCTAssertEqual(d.kind, .interrupted)
        XCTAssertEqual(d.span?.line, 2)
        flag.reset()
        guard case .success(let v?) = interpreter.run(SourceFile(name: "after", text: "[kept, i > 0]")) else { return XCTFail(recorder.transcript) }
        XCTAssertEqual(Display.text(v), "[7, true]")  // the partial work is kept
    }

    func testCancellationReachesTheEngine() {
        // A cancelled flag stops a forward pass between layers (ForwardContext.isCancelled).
        let recorder = EventRecorder()
        let interpreter = Interpreter(sink: recorder)
        interpreter.run(SourceFile(name: "a", text: "net = network(a=relu(), b=relu())"))
        interpreter.cancellation.cancel()
        let context = interpreter.forwardContext()
        guard case .network(let net)? = interpreter.value(named: "net") else { return XCTFail() }
        XCTAssertThrowsError(try net.forward(Variable(Tensor(zeros: [1, 1, 2, 2])), context: context)) { e in
            XCTAssertEqual(e as? EngineError, .cancelled)
        }
    }

    func testStepBudgetEndsEndlessLoops() {
        let (_, outcome) = runCode("while true { }", options: Interpreter.Options(stepBudget: 1000))
        guard case .failed(let d) = outcome else { return XCTFail() }
        XCTAssertTrue(d.message.contains("step budget of 1000"))
    }

    func testRecursionAndDeepDataAreRefusedNotCrashed() {
        XCTAssertTrue(errorMessage("fn f(n) { f(n + 1) }\nf(0)").contains("calls nest more than"))
        XCTAssertTrue(errorMessage("x = []\nfor i in 0..1000 { x = [x] }").contains("lists nest more than"))
        XCTAssertTrue(errorMessage("g = f -> f(f)\ng(g)").contains("nest"))
        // Moderate recursion works.
        XCTAssertEqual(text("fn fact(n) { if n <= 1 { return 1 }\n n * fact(n - 1) }\nfact(15)"), "1307674368000")
    }

    func testRuntimeErrorInsideAFunctionShowsTheCallSites() {
        let (_, outcome) = runCode("fn inner(x) {\n  x + \"a\"\n}\nfn outer() { inner(1) }\nouter()")
        guard case .failed(let d) = outcome else { return XCTFail() }
        XCTAssertEqual(d.span?.line, 2)
        XCTAssertEqual(d.callSites.map(\.line), [4, 5])
        XCTAssertTrue(d.rendered().contains("called from test:4:14"), d.rendered())
    }

    func testGradientsFlowThroughUserCode() throws {
        // d/dx sum(x * x) = 2x, through a user function, a lambda and a loop.
        XCTAssertEqual(text("fn sq(v) { v * v }\ngrad(x -> sum(sq(x)), tensor([1, -2, 3]))"), "tensor [3] [ 2, -4,  6]")
        XCTAssertEqual(text("fn f(x) {\n  y = x\n  for i in 0..2 { y = y * x }\n  sum(y)\n}\ngrad(f, tensor([2]))"), "tensor [1] [32]")
        XCTAssertEqual(text("grad(x -> sum(x[1:] * 3) + x[0] ^ 2, tensor([5, 1, 1]))"), "tensor [3] [10,  3,  3]")
        XCTAssertEqual(text("grad(x -> 3, tensor([1, 2]))"), "tensor [2] [0, 0]")
        XCTAssertTrue(errorMessage("grad(x -> x * 2, tensor([1, 2]))").contains("must return one number"))
    }

    /// Through a network: the input gradient of one logit agrees with finite differences at random pixels.
    func testGradientOfANetworkLogitMatchesFiniteDifferences() {
        let code = """
        net = network(c=conv(1, 4, 3, pad=1), r=relu(), p=maxpool(2), f=flatten(), fc=linear(4 * 4 * 4, 3))
        img = randn(1, 8, 8, seed=4)
        f = x -> logits(net, x)[2]
        g = grad(f, img)
        worst = 0
        for k in 0..9 {
            e = zeros(1, 8, 8)
            i = k * 7 % 64
            e[0, (i - i % 8) / 8, i % 8] = 0.001
            d = abs((f(img + e) - f(img - e)) / 0.002 - g[0, (i - i % 8) / 8, i % 8])
            if d > worst { worst = d }
        }
        worst < 0.01
        """
        XCTAssertEqual(text(code), "true")
    }

    /// T @ flatten(x) = flatten(conv2d(x, w)) over many random sizes, strides and paddings.
    func testToeplitzAgreesWithConvolutionOnRandomShapes() {
        var g = SeededGenerator(seed: 7)
        for trial in 0..<25 {
            let h = Int.random(in: 3...7, using: &g), w = Int.random(in: 3...7, using: &g)
            let k = Int.random(in: 1...3, using: &g), s = Int.random(in: 1...2, using: &g), p = Int.random(in: 0...1, using: &g)
            let code = """
            x = randn(\(h), \(w), seed=\(trial))
            w = randn(\(k), \(k), seed=\(trial + 100))
            y = conv2d(x, w, stride=\(s), pad=\(p))
            T = toeplitz(w, x.shape, stride=\(s), pad=\(p))
            allclose(flatten(y), T @ flatten(x), atol=0.0001)
            """
            XCTAssertEqual(text(code), "true", code)
        }
    }

    func testIm2colTimesTheFilterIsTheConvolution() {
        XCTAssertEqual(text("x = randn(5, 6, seed=1)\nw = randn(3, 3, seed=2)\nallclose(im2col(x, 3) @ flatten(w), flatten(conv2d(x, w)), atol=0.0001)"), "true")
    }

    func testTensorIndexingSlicingAndBroadcasting() {
        XCTAssertEqual(text("t = reshape(arange(24), [2, 3, 4])\nt[1, :, 2:4].shape"), "[3, 2]")
        XCTAssertEqual(text("t = reshape(arange(24), [2, 3, 4])\nt[-1, -1, -1]"), "23")
        XCTAssertEqual(text("tensor([[1], [2]]) + tensor([10, 20])"), "tensor [2, 2]\n[[11, 21],\n [12, 22]]")
        XCTAssertTrue(errorMessage("tensor([1, 2]) + tensor([1, 2, 3])").contains("do not broadcast"))
        XCTAssertTrue(errorMessage("tensor([[1, 2], [3]])").contains("ragged"))
        XCTAssertTrue(errorMessage("zeros(2)[5]").contains("out of range"))
        XCTAssertTrue(errorMessage("zeros(100000, 100000)").contains("too large"))
    }

    func testLayersAndNetworks() {
        XCTAssertEqual(text("net = network(conv1=conv(1, 8, 5, pad=2, stride=2), relu1=relu())\n[net.conv1.stride, net.conv1.pad, net.conv1.out, net.conv1.weight.shape]"), "[2, 2, 8, [8, 1, 5, 5]]")
        XCTAssertEqual(errorMessage("net = network(conv1=conv(1, 2, 3), conv2=conv(2, 2, 3), fc1=linear(8, 2))\nnet.conv6"),
                       "unknown layer 'conv6'; did you mean 'conv1'?")
        XCTAssertEqual(errorMessage("net = network(conv1=conv(1, 2, 3), conv2=conv(2, 2, 3), fc1=linear(8, 2))\nnet.pool"),
                       "unknown layer 'pool'; layers are conv1, conv2, fc1")
        XCTAssertEqual(errorMessage("network(a=relu()).a.strid"), "relu layer 'a' has no attribute 'strid'; it has kind, name")
        XCTAssertTrue(errorMessage("network(a=conv(1, 2, 3))(zeros(3, 5, 5))").contains("layer 'a' (conv2d)"))
        XCTAssertTrue(errorMessage("n = network(a=conv(1, 2, 3))\nn.a.weight = zeros(3)").contains("is [2, 1, 3, 3]"))
    }

    func testLayerAttributesReadTheirKindsDefaultsAndShortNames() {
        XCTAssertEqual(text("c = conv(3, 8, 3, pad=1)\n[c.k, c.kernel, c.pad, c.stride, c.dilation, c.groups]"), "[3, 3, 1, 1, 1, 1]")
        XCTAssertEqual(text("[maxpool(3).stride, maxpool(3, stride=2).stride, leaky_relu(0.2).slope, batchnorm(4).eps]"), "[3, 2, 0.2, 1e-05]")
    }

    func testUnknownNamesSuggestTheNearest() {
        XCTAssertEqual(errorMessage("gradd(x -> x, 1)"), "unknown name 'gradd'; did you mean 'grad'?")
        XCTAssertEqual(errorMessage("learning_rate = 1\nlearning_rat"), "unknown name 'learning_rat'; did you mean 'learning_rate'?")
    }

    func testShowEmitsPicturesInDisplaySpace() {
        let recorder = EventRecorder()
        let interpreter = Interpreter(sink: recorder)
        interpreter.run(SourceFile(name: "a", text: "show(tensor([[-2, 0], [2, 4]]))\nshow(zeros(3, 2, 2) + 0.5)"))
        let pictures = recorder.events.compactMap { e -> Tensor? in if case .image(let i) = e { return i.pixels }; return nil }
        XCTAssertEqual(pictures.count, 2)
        XCTAssertEqual(pictures[0].shape, [1, 2, 2])
        XCTAssertEqual(pictures[0].scalars, [0, 1.0 / 3, 2.0 / 3, 1])  // min-max scaled
        XCTAssertEqual(pictures[1].scalars, [Float](repeating: 0.5, count: 12))  // already in [0, 1]: unchanged
    }

    func testIncludeRunsAnotherFileInTheSession() throws {
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try "helper = x -> x * 10\n".write(to: dir.appendingPathComponent("lib.cnn"), atomically: true, encoding: .utf8)
        try "include \"main.cnn\"\n".write(to: dir.appendingPathComponent("main.cnn"), atomically: true, encoding: .utf8)
        let recorder = EventRecorder()
        let interpreter = Interpreter(sink: recorder)
        let main = SourceFile(name: dir.appendingPathComponent("x.cnn").path, text: "include \"lib.cnn\"\nhelper(4)")
        guard case .success(let v?) = interpreter.run(main) else { return XCTFail(recorder.transcript) }
        XCTAssertEqual(Display.text(v), "40")
        let cycle = SourceFile(name: dir.appendingPathComponent("main.cnn").path, text: "include \"main.cnn\"")
        guard case .failed(let d) = interpreter.run(cycle) else { return XCTFail() }
        XCTAssertTrue(d.message.contains("includes itself"), d.message)
    }
}
