import XCTest
@testable import Engine

/// Convolution computed three ways agrees: im2col + sgemm, direct nested loops, and the
/// explicit Toeplitz matrix times the flattened input (the lecture's slide).
final class ConvolutionTests: XCTestCase {
    func testThreeWaysAgreeOnRandomShapes() throws {
        var g = SeededGenerator(seed: 42)
        for trial in 0..<60 {
            let groups = [1, 1, 2, 3][Int(g.next() % 4)]
            let cg = 1 + Int(g.next() % 3), kg = 1 + Int(g.next() % 3)
            let c = cg * groups, k = kg * groups
            let kh = 1 + Int(g.next() % 4), kw = 1 + Int(g.next() % 4)
            let sh = 1 + Int(g.next() % 3), sw = 1 + Int(g.next() % 3)
            let dh = 1 + Int(g.next() % 2), dw = 1 + Int(g.next() % 2)
            let pads = (0..<4).map { _ in Int(g.next() % 3) }
            let h = dh * (kh - 1) + 1 + Int(g.next() % 7), w = dw * (kw - 1) + 1 + Int(g.next() % 7)
            let n = 1 + Int(g.next() % 2)
            let o = ConvOptions(stride: (sh, sw), padding: (pads[0], pads[1], pads[2], pads[3]), dilation: (dh, dw), groups: groups)
            let x = Tensor.randn([n, c, h, w], seed: UInt64(trial)), wt = Tensor.randn([k, cg, kh, kw], seed: UInt64(trial + 1000))
            let b = Tensor.randn([k], seed: UInt64(trial + 2000))
            let fast = try Tensor.conv2d(x, wt, b, o)
            let direct = try Tensor.conv2dDirect(x, wt, b, o)
            XCTAssertTrue(fast.isClose(to: direct, rtol: 1e-4, atol: 1e-4), "trial \(trial): im2col path differs from the direct loops (\(o))")
            // Toeplitz: one image at a time, T · vec(x) + b = vec(y).
            let t = try Tensor.toeplitz(wt, inputShape: [c, h, w], o)
            let x0 = Variable(try Tensor(shape: [c * h * w], scalars: Array(x.scalars[0..<(c * h * w)])).reshaped([c * h * w]))
            let ty = try matmul(Variable(t), x0).value
            let per = direct.count / n
            let expected = Tensor(shape: [per], scalars: (0..<per).map { direct.scalars[$0] - b.scalars[$0 / (per / k)] })
            XCTAssertTrue(ty.isClose(to: expected, rtol: 1e-4, atol: 1e-4), "trial \(trial): Toeplitz product differs")
        }
    }

    /// The public face of the kernels (what `cnn bench` times) gives what the op gives, and
    /// counts 2·N·K·(C/groups)·kh·kw·OH·OW operations, as a network's FLOP count does.
    func testConvolutionKernelsAndTheirOperationCount() throws {
        let o = ConvOptions(stride: (2, 1), padding: (1, 0, 1, 2), groups: 2)
        let conv = try Convolution(input: [2, 6, 9, 8], weight: [4, 3, 3, 2], options: o)
        XCTAssertEqual(conv.outputShape, [2, 4, 5, 9])
        XCTAssertEqual(conv.flops, 2 * 2 * 4 * 3 * 3 * 2 * 5 * 9)
        let x = Tensor.randn([2, 6, 9, 8], seed: 1), w = Tensor.randn([4, 3, 3, 2], seed: 2), b = Tensor.randn([4], seed: 3)
        XCTAssertTrue(conv.forward(x, w, bias: b).isClose(to: try Tensor.conv2dDirect(x, w, b, o), rtol: 1e-4, atol: 1e-4))
        // Backward passes against the tape's: d(sum(y · dy)) by x and by w.
        let dy = Tensor.randn(conv.outputShape, seed: 4)
        let xv = Variable(x, requiresGrad: true), wv = Variable(w, requiresGrad: true)
        let y = try conv2d(xv, wv, nil, o)
        let grads = try gradients(of: try sum(try multiply(y, Variable(dy))), withRespectTo: [xv, wv])
        XCTAssertTrue(conv.backwardInput(dy, w).isClose(to: grads[0], rtol: 1e-4, atol: 1e-4))
        XCTAssertTrue(conv.backwardWeight(dy, x).isClose(to: grads[1], rtol: 1e-4, atol: 1e-4))

        let net = Network()
        try net.append("conv", LayerRegistry.make("conv2d", ["in": .int(6), "out": .int(4), "kernel": .ints([3, 2]), "stride": .ints([2, 1]),
                                                             "padding": .ints([1, 0, 1, 2]), "groups": .int(2)]))
        try net.append("flatten", LayerRegistry.make("flatten"))
        try net.append("fc", LayerRegistry.make("linear", ["in": .int(4 * 5 * 9), "out": .int(10)]))
        XCTAssertEqual(try net.forwardFlops(input: [2, 6, 9, 8]), conv.flops + 2 * 2 * Double(4 * 5 * 9 * 10))
    }

    /// Depthwise convolutions with stride 2 (the down-sampling blocks of EfficientNet and
    /// MobileNet) against the direct loops: odd and even sizes, symmetric and "SAME" padding,
    /// kernels 1 to 5 wide, one or two outputs per channel, and their input gradient by the tape.
    func testStrideTwoDepthwiseAgreesWithTheDirectLoops() throws {
        var g = SeededGenerator(seed: 5)
        for trial in 0..<40 {
            let c = 1 + Int(g.next() % 5), m = 1 + Int(g.next() % 2)
            let kh = 1 + Int(g.next() % 5), kw = 1 + Int(g.next() % 5)
            let h = kh + Int(g.next() % 9), w = kw + Int(g.next() % 9)
            let pads = (0..<4).map { i in Int(g.next() % UInt64((i % 2 == 0 ? kh : kw))) }
            let o = ConvOptions(stride: (2, 2), padding: (pads[0], pads[1], pads[2], pads[3]), groups: c)
            let x = Tensor.randn([1 + Int(g.next() % 2), c, h, w], seed: UInt64(trial)), wt = Tensor.randn([c * m, 1, kh, kw], seed: UInt64(trial + 100))
            let b = Tensor.randn([c * m], seed: UInt64(trial + 200))
            let fast = try Tensor.conv2d(x, wt, b, o), direct = try Tensor.conv2dDirect(x, wt, b, o)
            XCTAssertEqual(fast.shape, direct.shape)
            XCTAssertTrue(fast.isClose(to: direct, rtol: 1e-5, atol: 1e-5), "trial \(trial): \(x.shape) * \(wt.shape), \(o)")
        }
    }

    /// The direct loops on planes as wide as the networks': many channels a call (each unit of
    /// work keeps one buffer's zero padding for plane after plane), rows wide enough for the
    /// stride-2 split to take sixteen columns at a time, odd and even sizes, symmetric and
    /// asymmetric padding, depthwise and a few channels a group, against the nested loops.
    func testDirectLoopsOnWidePlanesOfManyChannels() throws {
        var g = SeededGenerator(seed: 11)
        for trial in 0..<24 {
            let stride = 1 + trial % 2, k = [1, 3, 5][Int(g.next() % 3)]
            let size = [7, 14, 17, 23, 33, 40][Int(g.next() % 6)]
            let pads = (0..<4).map { _ in Int(g.next() % UInt64(k / 2 + 2)) }
            let cg = trial % 3 == 2 ? 4 : 1, groups = [16, 40, 64][Int(g.next() % 3)] / cg
            let o = ConvOptions(stride: (stride, stride), padding: (pads[0], pads[1], pads[2], pads[3]), groups: groups)
            let x = Tensor.randn([2, groups * cg, size, size + Int(g.next() % 3)], seed: UInt64(trial))
            let wt = Tensor.randn([groups * (cg == 1 ? 1 + Int(g.next() % 2) : cg), cg, k, k], seed: UInt64(trial + 300))
            let b = Tensor.randn([wt.shape[0]], seed: UInt64(trial + 600))
            let fast = try Tensor.conv2d(x, wt, b, o), direct = try Tensor.conv2dDirect(x, wt, b, o)
            XCTAssertEqual(fast.shape, direct.shape)
            XCTAssertTrue(fast.isClose(to: direct, rtol: 1e-5, atol: 1e-5), "trial \(trial): \(x.shape) * \(wt.shape), \(o)")
        }
    }

    func testLectureSlideToeplitzAndIm2col() throws {
        // The 4x4 image and 2x2 filter of the tour: T is 9 x 16 and T · vec(x) is the 3x3 output.
        let x = try Tensor((0..<4).map { r in (1...4).map { Float(r * 4 + $0) } })
        let w = try Tensor([[1, 0], [0, -1]])
        let t = try Tensor.toeplitz(w, inputShape: x.shape)
        XCTAssertEqual(t.shape, [9, 16])
        XCTAssertEqual(Array(t.scalars[0..<16]), [1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        let y = try matmul(Variable(t), Variable(try x.reshaped([16]))).value
        XCTAssertEqual(y.scalars, [Float](repeating: -5, count: 9))  // x[i][j] - x[i+1][j+1] = -5 everywhere
        let cols = try Tensor.im2col(x, kernel: (2, 2))
        XCTAssertEqual(cols.shape, [9, 4])
        XCTAssertEqual(Array(cols.scalars[0..<8]), [1, 2, 5, 6, 2, 3, 6, 7])
    }

    func testLargeConvolutionUsesThreadsAndStillAgrees() throws {
        // Big enough to take the threaded, blocked path for all three passes.
        let x = Tensor.randn([1, 16, 30, 30], seed: 1), w = Tensor.randn([32, 16, 3, 3], seed: 2)
        let o = ConvOptions(padding: 1)
        let xv = Variable(x, requiresGrad: true), wv = Variable(w, requiresGrad: true)
        let y = try conv2d(xv, wv, nil, o)
        XCTAssertTrue(y.value.isClose(to: try Tensor.conv2dDirect(x, w, nil, o), rtol: 1e-4, atol: 1e-3))
        let dy = Tensor.randn(y.shape, seed: 3)
        let grads = try gradients(of: y, withRespectTo: [xv, wv], seed: dy)
        // Both gradients from the definition: dx[c,ih,iw] = Σ dy[k,oh,ow] w[k,c,i,j], dW[k,c,i,j] = Σ dy[k,oh,ow] x[c,ih,iw].
        var dxRef = Tensor(zeros: x.shape), dwRef = Tensor(zeros: w.shape)
        for k in 0..<32 { for c in 0..<16 { for i in 0..<3 { for j in 0..<3 {
            var s: Float = 0
            for oh in 0..<30 { for ow in 0..<30 {
                let ih = oh - 1 + i, iw = ow - 1 + j
                if ih >= 0, ih < 30, iw >= 0, iw < 30 {
                    s += dy[0, k, oh, ow] * x[0, c, ih, iw]
                    dxRef[0, c, ih, iw] += dy[0, k, oh, ow] * w[k, c, i, j]
                }
            }}
            dwRef[k, c, i, j] = s
        }}}}
        XCTAssertTrue(grads[0].isClose(to: dxRef, rtol: 1e-3, atol: 1e-3))
        XCTAssertTrue(grads[1].isClose(to: dwRef, rtol: 1e-3, atol: 1e-2))
    }

    func testBadShapesAreErrorsNotCrashes() {
        let x = Variable(Tensor(zeros: [1, 3, 5, 5]))
        XCTAssertThrowsError(try conv2d(x, Variable(Tensor(zeros: [4, 2, 3, 3])))) { e in
            XCTAssertTrue("\(e)".contains("input channels"), "\(e)")
        }
        XCTAssertThrowsError(try conv2d(x, Variable(Tensor(zeros: [4, 3, 7, 7]))))
        XCTAssertThrowsError(try conv2d(Variable(Tensor(zeros: [3, 5, 5])), Variable(Tensor(zeros: [4, 3, 3, 3]))))
        XCTAssertThrowsError(try conv2d(x, Variable(Tensor(zeros: [4, 3, 3, 3])), nil, ConvOptions(stride: 0)))
        XCTAssertThrowsError(try conv2d(x, Variable(Tensor(zeros: [4, 1, 3, 3])), nil, ConvOptions(groups: 2)))
    }
}
