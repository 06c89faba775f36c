import XCTest
@testable import Engine

/// The blocked layout's kernels (Sources/Engine/Blocked) give the values of the NCHW ops, on
/// shapes of every kind the forward pass sends them, and a network's forward pass is the same
/// with the blocked path on or off.
final class BlockedTests: XCTestCase {
    /// Where `expected` is NaN `got` is NaN too, and elsewhere within atol + rtol·|expected|.
    func assertSameNaNsAndClose(_ got: Tensor, _ expected: Tensor, rtol: Float, atol: Float, _ what: String,
                                file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.scalars.map(\.isNaN), expected.scalars.map(\.isNaN), what + ": NaN in the same places", file: file, line: line)
        func numbers(_ t: Tensor) -> Tensor { Tensor(shape: t.shape, scalars: t.scalars.map { $0.isNaN ? 0 : $0 }) }
        assertClose(numbers(got), numbers(expected), rtol: rtol, atol: atol, what, file: file, line: line)
    }

    func activated(_ y: Tensor, _ a: ConvActivation?) -> Tensor {
        guard let a else { return y }
        var s = y.scalars
        s.withUnsafeMutableBufferPointer { a.apply($0.baseAddress!, count: $0.count) }
        return Tensor(shape: y.shape, scalars: s)
    }

    let activations: [ConvActivation?] = [nil, .relu, .clamp(low: 0, high: 6), .silu, .hardSwish]

    func testLayoutRoundTripsAndZeroesTheSpareLanes() {
        for c in [1, 3, 8, 13, 16] {
            let x = Tensor.randn([2, c, 3, 5], seed: UInt64(c))
            let b = Blocked.fromPlain(x)
            XCTAssertEqual(b.shape, [2, (c + 7) / 8, 3, 5, 8])
            XCTAssertEqual(Blocked.toPlain(b, channels: c).scalars, x.scalars, "\(c) channels")
            // Channel ch at (n, h, w) sits in lane ch % 8 of block ch / 8; lanes past C are zero.
            for n in 0..<2 { for blk in 0..<(c + 7) / 8 { for p in 0..<15 { for l in 0..<8 {
                let v = b.scalars[(((n * ((c + 7) / 8) + blk) * 15) + p) * 8 + l], ch = blk * 8 + l
                XCTAssertEqual(v, ch < c ? x.scalars[(n * c + ch) * 15 + p] : 0)
            }}}}
        }
    }

    /// Convolutions of one group or of groups in whole blocks, any kernel, stride, dilation and
    /// padding, 1x1 ones that read their positions as one row, each activation, against the direct loops.
    func testConvolutionsAgreeWithDirectLoops() throws {
        var g = SeededGenerator(seed: 11)
        for trial in 0..<80 {
            let grouped = trial % 5 == 4
            let groups = grouped ? 2 + Int(g.next() % 2) : 1
            let c = grouped ? groups * 8 * (1 + Int(g.next() % 2)) : 1 + Int(g.next() % 40)
            let k = grouped ? groups * 8 * (1 + Int(g.next() % 2)) : 1 + Int(g.next() % 40)
            let pointwise = trial % 4 == 1
            let kh = pointwise ? 1 : 1 + Int(g.next() % 5), kw = pointwise ? 1 : 1 + Int(g.next() % 5)
            let stride = pointwise ? (1, 1) : (1 + Int(g.next() % 3), 1 + Int(g.next() % 2))
            let dilation = pointwise ? (1, 1) : (1 + Int(g.next() % 2), 1 + Int(g.next() % 2))
            let pads = pointwise ? [0, 0, 0, 0] : (0..<4).map { _ in Int(g.next() % 3) }
            let h = (kh - 1) * dilation.0 + 1 + Int(g.next() % 12), w = (kw - 1) * dilation.1 + 1 + Int(g.next() % 30)
            let n = 1 + Int(g.next() % 2)
            let o = ConvOptions(stride: stride, padding: (pads[0], pads[1], pads[2], pads[3]), dilation: dilation, groups: groups)
            let x = Tensor.randn([n, c, h, w], seed: UInt64(1000 + trial))
            let wt = Tensor.randn([k, c / groups, kh, kw], seed: UInt64(2000 + trial))
            let b = trial % 3 == 0 ? nil : Tensor.randn([k], seed: UInt64(3000 + trial))
            let a = activations[trial % activations.count]
            let pr = try ConvProblem(input: x.shape, weight: wt.shape, bias: b?.shape, options: o)
            XCTAssertTrue(BlockedConvolution.supports(pr, plainInput: false))
            let expected = activated(try Tensor.conv2dDirect(x, wt, b, o), a)
            let what = "trial \(trial): \(x.shape) * \(wt.shape), stride \(stride), dilation \(dilation), padding \(pads), groups \(groups), \(String(describing: a))"
            let y = BlockedConvolution(pr: pr, plainInput: false).forward(Blocked.fromPlain(x), wt, b, then: a)
            assertClose(Blocked.toPlain(y, channels: k), expected, rtol: 1e-4, atol: 1e-4, what)
            // The spare lanes of the output stay finite (zero weights, zero bias).
            XCTAssertTrue(y.scalars.allSatisfy(\.isFinite), what)
            if groups == 1 && c < Blocked.width {
                let z = BlockedConvolution(pr: pr, plainInput: true).forward(x, wt, b, then: a)
                assertClose(Blocked.toPlain(z, channels: k), expected, rtol: 1e-4, atol: 1e-4, what + ", NCHW input")
            }
        }
    }

    /// 1x1 convolutions on inputs too wide for a core's cache over the whole map: their runs of
    /// positions are cut to what fits and taken part by part; the same values as the direct loops.
    func testWidePointwiseConvolutionsAgreeWithDirectLoops() throws {
        for (c, k, h, w) in [(520, 40, 20, 20), (1030, 17, 7, 31), (300, 64, 14, 14)] {
            let x = Tensor.randn([1, c, h, w], seed: UInt64(c)), wt = Tensor.randn([k, c, 1, 1], seed: UInt64(k))
            let b = Tensor.randn([k], seed: 3)
            let pr = try ConvProblem(input: x.shape, weight: wt.shape, bias: b.shape, options: ConvOptions())
            XCTAssertTrue(BlockedConvolution(pr: pr, plainInput: false).flattens)
            let y = BlockedConvolution(pr: pr, plainInput: false).forward(Blocked.fromPlain(x), wt, b, then: .relu)
            assertClose(Blocked.toPlain(y, channels: k), activated(try Tensor.conv2dDirect(x, wt, b, ConvOptions()), .relu),
                        rtol: 1e-4, atol: 1e-4, "\(c) -> \(k) channels on \(h)x\(w)")
        }
    }

    /// Strided 1x1 convolutions with eight or more output groups copy the positions they read
    /// into a packed map first; with fewer they read in place: both give the direct loops' values.
    func testStridedPointwiseConvolutionsAgreeWithDirectLoops() throws {
        for (n, c, k, h, w, stride, groups) in [(1, 24, 264, 13, 11, (2, 2), 1), (2, 16, 256, 9, 14, (2, 3), 1),
                                                  (1, 40, 300, 7, 7, (3, 1), 1), (1, 32, 512, 6, 10, (2, 2), 2),
                                                  (1, 20, 64, 15, 15, (2, 2), 1)] {
            let o = ConvOptions(stride: stride, padding: (0, 0, 0, 0), groups: groups)
            let x = Tensor.randn([n, c, h, w], seed: UInt64(c + k)), wt = Tensor.randn([k, c / groups, 1, 1], seed: UInt64(k))
            let b = Tensor.randn([k], seed: 5)
            let pr = try ConvProblem(input: x.shape, weight: wt.shape, bias: b.shape, options: o)
            let conv = BlockedConvolution(pr: pr, plainInput: false)
            XCTAssertEqual(conv.subsamples, k / groups > 224, "\(c) -> \(k)")
            let y = conv.forward(Blocked.fromPlain(x), wt, b, then: .relu)
            assertClose(Blocked.toPlain(y, channels: k), activated(try Tensor.conv2dDirect(x, wt, b, o), .relu),
                        rtol: 1e-4, atol: 1e-4, "\(n) x \(c) -> \(k) channels on \(h)x\(w), stride \(stride), groups \(groups)")
        }
    }

    func testDepthwiseAgreesWithDirectLoops() throws {
        var g = SeededGenerator(seed: 12)
        for trial in 0..<40 {
            // Every fourth on 150 channels more: small planes then go several to a task.
            let c = 2 + Int(g.next() % 30) + (trial % 4 == 3 ? 150 : 0), kh = 1 + Int(g.next() % 5), kw = 1 + Int(g.next() % 5)
            let stride = (1 + Int(g.next() % 2), 1 + Int(g.next() % 2)), dilation = (1 + Int(g.next() % 2), 1)
            let pads = (0..<4).map { _ in Int(g.next() % 3) }
            let h = (kh - 1) * dilation.0 + 1 + Int(g.next() % 20), w = kw + Int(g.next() % 30)
            let o = ConvOptions(stride: stride, padding: (pads[0], pads[1], pads[2], pads[3]), dilation: dilation, groups: c)
            let x = Tensor.randn([1 + trial % 2, c, h, w], seed: UInt64(4000 + trial))
            let wt = Tensor.randn([c, 1, kh, kw], seed: UInt64(5000 + trial))
            let b = trial % 3 == 0 ? nil : Tensor.randn([c], seed: UInt64(6000 + trial))
            let a = activations[trial % activations.count]
            let pr = try ConvProblem(input: x.shape, weight: wt.shape, bias: b?.shape, options: o)
            XCTAssertTrue(BlockedDepthwise.supports(pr))
            let y = BlockedDepthwise(pr: pr).forward(Blocked.fromPlain(x), wt, b, then: a)
            assertClose(Blocked.toPlain(y, channels: c), activated(try Tensor.conv2dDirect(x, wt, b, o), a), rtol: 1e-4, atol: 1e-4,
                        "trial \(trial): \(x.shape) * \(wt.shape), stride \(stride), padding \(pads)")
        }
    }

    /// Max and average pooling with PyTorch's windows (padding, ceil mode, divisors), a NaN winning
    /// a max window, adaptive average pooling, and inference batch normalization.
    func testPoolingAndBatchNormAgreeWithNCHW() throws {
        var g = SeededGenerator(seed: 13)
        for trial in 0..<40 {
            let c = 1 + Int(g.next() % 20), k = 1 + Int(g.next() % 3), s = 1 + Int(g.next() % 3)
            let pad = Int(g.next() % UInt64(k / 2 + 1))
            let h = k + Int(g.next() % 9), w = k + Int(g.next() % 9)
            let o = PoolOptions(kernel: k, stride: s, padding: pad, ceilMode: trial % 2 == 0, countIncludePad: trial % 3 != 0)
            var x = Tensor.randn([1 + trial % 2, c, h, w], seed: UInt64(7000 + trial))
            if trial % 4 == 0 { x.scalars[Int(g.next() % UInt64(x.count))] = .nan }
            let xb = Blocked.fromPlain(x)
            let what = "trial \(trial): \(x.shape), kernel \(k), stride \(s), padding \(pad), ceil \(o.ceilMode)"
            assertSameNaNsAndClose(Blocked.toPlain(try BlockedPooling.pool(xb, o, average: false), channels: c),
                                   try maxPool2d(Variable(x), o).value, rtol: 0, atol: 0, what + ", max")
            assertSameNaNsAndClose(Blocked.toPlain(try BlockedPooling.pool(xb, o, average: true), channels: c),
                                   try avgPool2d(Variable(x), o).value, rtol: 1e-6, atol: 1e-6, what + ", average")
            let size = (1 + Int(g.next() % UInt64(h)), 1 + Int(g.next() % UInt64(w)))
            assertSameNaNsAndClose(Blocked.toPlain(try BlockedPooling.adaptiveAverage(xb, outputSize: size), channels: c),
                                   try adaptiveAvgPool2d(Variable(x), outputSize: size).value, rtol: 1e-6, atol: 1e-6,
                                   what + ", adaptive to \(size)")

            let weight = Tensor.randn([c], seed: UInt64(8000 + trial)), bias = Tensor.randn([c], seed: UInt64(9000 + trial))
            let mean = Tensor.randn([c], seed: UInt64(10000 + trial))
            let variance = Tensor(shape: [c], scalars: (0..<c).map { Float($0 % 5) * 0.3 + 0.1 })
            let expected = try batchNorm(Variable(x), weight: Variable(weight), bias: Variable(bias), runningMean: mean,
                                         runningVar: variance, eps: 1e-5, training: false).output.value
            let y = BlockedPooling.batchNorm(xb, channels: c, weight: weight.scalars, bias: bias.scalars, mean: mean.scalars,
                                             variance: variance.scalars, eps: 1e-5)
            assertSameNaNsAndClose(Blocked.toPlain(y, channels: c), expected, rtol: 1e-5, atol: 1e-5, what + ", batch norm")
            let activated = BlockedPooling.batchNorm(xb, channels: c, weight: weight.scalars, bias: bias.scalars, mean: mean.scalars,
                                                     variance: variance.scalars, eps: 1e-5, then: .clamp(low: 0, high: 1))
            XCTAssertEqual(Blocked.toPlain(activated, channels: c).scalars.map(\.bitPattern),
                           Blocked.toPlain(y, channels: c).scalars.map { Clamp(low: 0, high: 1)($0).bitPattern },
                           what + ", batch norm then clamp, as the two ops give it")
        }
    }

    /// Each activation on eight lanes gives, lane by lane, exactly what it gives on one value,
    /// at the values where rules differ: signed zeros, the bounds, infinities, NaN.
    func testLaneFunctionsMatchTheirScalarsExactly() {
        var values: [Float] = [0, -0.0, 1, -1, 3, -3, 6, -6, 6.0000005, 0.5, -0.5, 87.5, -87.5, 100, -100, 1e-30, -1e-30,
                               .infinity, -.infinity, .nan, .greatestFiniteMagnitude, -.greatestFiniteMagnitude]
        var g = SeededGenerator(seed: 14)
        values += (0..<2002).map { _ in Float(Int(g.next() % 200_001) - 100_000) / 1000 }
        while values.count % 8 != 0 { values.append(0.25) }
        func check<F: ScalarFunction & LaneFunction>(_ f: F, _ name: String) {
            for i in stride(from: 0, to: values.count, by: 8) {
                let lanes = f(Lanes(values[i..<(i + 8)]))
                for l in 0..<8 {
                    let expected = f(values[i + l])
                    XCTAssertTrue(lanes[l].bitPattern == expected.bitPattern || (lanes[l].isNaN && expected.isNaN),
                                  "\(name)(\(values[i + l])): \(lanes[l]) on lanes, \(expected) alone")
                }
            }
        }
        check(Rectifier(), "relu")
        check(Clamp(low: 0, high: 6), "relu6")
        check(Clamp(low: -1.5, high: .infinity), "clip")
        check(SigmoidLinearUnit(), "silu")
        check(HardSwish(), "hardswish")
    }

    /// The outputs with the blocked path off and on (checked to agree within rounding), and how
    /// many layers it took.
    private func bothWays(_ net: Network, _ x: Variable, outputs: [String]) throws -> (plain: [Variable], blocked: [Variable], runs: Int) {
        let was = BlockedForward.enabled
        defer { BlockedForward.enabled = was }
        BlockedForward.enabled = false
        let plain = try net.forward(x, outputs: outputs, context: ForwardContext())
        BlockedForward.enabled = true
        let before = BlockedForward.runs
        let blocked = try net.forward(x, outputs: outputs, context: ForwardContext())
        let runs = BlockedForward.runs - before
        for (a, b) in zip(blocked, plain) { assertClose(a.value, b.value, rtol: 1e-5, atol: 1e-5, "blocked against NCHW") }
        return (plain, blocked, runs)
    }

    /// A network of every kind of layer the blocked path takes (and some it hands back to NCHW)
    /// gives the same outputs with it on and off, on one thread and on several, and takes it.
    func testNetworkForwardIsTheSameWithAndWithoutTheBlockedPath() throws {
        let net = Network()
        func conv(_ name: String, _ cin: Int, _ cout: Int, _ k: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1,
                  inputs: [String]? = nil, seed: UInt64) throws {
            try net.append(name, LayerRegistry.make("conv2d", ["in": .int(cin), "out": .int(cout), "kernel": .int(k), "stride": .int(stride),
                                                               "padding": .int(padding), "groups": .int(groups)], seed: seed), inputs: inputs)
        }
        try conv("stem", 3, 16, 3, stride: 2, padding: 1, seed: 1)
        try net.append("bn", LayerRegistry.make("batchnorm", ["channels": .int(16)], seed: 2))
        try net.append("act", LayerRegistry.make("relu6"))
        try conv("dw", 16, 16, 3, padding: 1, groups: 16, seed: 3)
        try net.append("hs", LayerRegistry.make("hardswish"))
        // A 3x3 convolution on few channels runs as blocked tiles; one on 96 stays Winograd's, in NCHW.
        try conv("small", 16, 16, 3, padding: 1, seed: 10)
        XCTAssertTrue(BlockedForward.directBeatsWinograd(try ConvProblem(input: [2, 16, 15, 18], weight: [16, 16, 3, 3], bias: nil, options: ConvOptions(padding: 1))))
        try conv("pw", 16, 96, 1, seed: 4)
        try conv("wino", 96, 96, 3, padding: 1, seed: 5)
        XCTAssertFalse(BlockedForward.directBeatsWinograd(try ConvProblem(input: [2, 96, 15, 18], weight: [96, 96, 3, 3], bias: nil, options: ConvOptions(padding: 1))))
        try net.append("sum", LayerRegistry.make("add"), inputs: ["pw", "wino"])
        try net.append("relu", LayerRegistry.make("relu"))
        try net.append("pool", LayerRegistry.make("maxpool", ["kernel": .int(3), "stride": .int(2), "padding": .int(1)]))
        try conv("grouped", 96, 32, 3, padding: 1, groups: 1, seed: 6)
        try conv("branch", 96, 5, 1, inputs: ["pool"], seed: 7)
        try net.append("cat", LayerRegistry.make("concat", ["axis": .int(1)]), inputs: ["grouped", "branch"])
        try net.append("sig", LayerRegistry.make("sigmoid"))
        try net.append("gap", LayerRegistry.make("global_avgpool"))
        try net.append("flat", LayerRegistry.make("flatten"))
        try net.append("fc", LayerRegistry.make("linear", ["in": .int(37), "out": .int(10)], seed: 8))
        let x = Variable(Tensor.randn([2, 3, 29, 35], seed: 9))

        let (_, blocked, runs) = try bothWays(net, x, outputs: ["fc", "cat"])
        XCTAssertGreaterThanOrEqual(runs, 11, "the layers the blocked path takes")
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 1
        let single = try net.forward(x, outputs: ["fc", "cat"], context: ForwardContext())
        for (a, b) in zip(single, blocked) { XCTAssertEqual(a.value.scalars, b.value.scalars, "the same on one thread") }
    }

    /// Blocked images joined along their blocks hold each part's channels where concatenation in
    /// NCHW puts them, for parts split into many pieces (two images of 2, 5 and 1 blocks of 40x50)
    /// and for small ones; images of another size stop the network with the NCHW op's error.
    func testConcatenationOfBlockedImagesIsTheNCHWOne() throws {
        for (h, w) in [(40, 50), (3, 2)] {
            let xs = [16, 40, 8].enumerated().map { Tensor.randn([2, $0.element, h, w], seed: UInt64(40 + $0.offset)) }
            let joined = Blocked.concatenated(xs.map(Blocked.fromPlain))
            XCTAssertEqual(joined.shape, [2, 8, h, w, 8])
            XCTAssertEqual(Blocked.toPlain(joined, channels: 64), try concat(xs.map { Variable($0) }, axis: 1).value, "\(h)x\(w)")
        }
        let net = Network()
        try net.append("a", LayerRegistry.make("conv2d", ["in": .int(3), "out": .int(8), "kernel": .int(3)], seed: 1))
        try net.append("b", LayerRegistry.make("conv2d", ["in": .int(3), "out": .int(8), "kernel": .int(1)], seed: 2), inputs: ["input"])
        try net.append("cat", LayerRegistry.make("concat", ["axis": .int(1)]), inputs: ["a", "b"])
        XCTAssertThrowsError(try net(Tensor.randn([1, 3, 9, 9], seed: 3))) { e in XCTAssertTrue("\(e)".contains("concat"), "\(e)") }
    }

    /// A batch norm read alone by a ReLU (a DenseNet's pre-activation on each concatenated
    /// input) applies it as it stores: one layer fewer run, the same values as the two NCHW ops;
    /// not when the batch norm's own output is asked for.
    func testBatchNormTakesTheActivationThatAloneReadsIt() throws {
        let net = Network()
        try net.append("a", LayerRegistry.make("conv2d", ["in": .int(3), "out": .int(16), "kernel": .int(3)], seed: 1))
        try net.append("b", LayerRegistry.make("conv2d", ["in": .int(3), "out": .int(8), "kernel": .int(3)], seed: 2), inputs: ["input"])
        try net.append("cat", LayerRegistry.make("concat", ["axis": .int(1)]), inputs: ["a", "b"])
        let norm = try LayerRegistry.make("batchnorm", ["channels": .int(24)], seed: 3)
        norm.parameters["running_mean"] = Tensor.randn([24], seed: 4)
        norm.parameters["running_var"] = Tensor(shape: [24], scalars: (0..<24).map { Float($0 % 5) * 0.3 + 0.1 })
        try net.append("norm", norm)
        try net.append("relu", LayerRegistry.make("relu"))
        try net.append("conv", LayerRegistry.make("conv2d", ["in": .int(24), "out": .int(8), "kernel": .int(1)], seed: 5))
        let x = Variable(Tensor.randn([2, 3, 11, 13], seed: 6))
        let (plain, _, fused) = try bothWays(net, x, outputs: ["conv"])
        XCTAssertTrue(plain[0].value.scalars.contains { $0 < 0 } && plain[0].value.scalars.contains { $0 > 0 })
        let (_, _, apart) = try bothWays(net, x, outputs: ["conv", "norm"])
        XCTAssertEqual(fused, 5, "a, b, the concatenation, batch norm with its ReLU, the convolution")
        XCTAssertEqual(apart, 6, "the batch norm asked for: its ReLU runs on its own")
    }

    /// A residual block's shortcut is added by the convolution before the sum as it stores its
    /// outputs, and the ReLU after the sum applied there too: the values of the NCHW ops, with the
    /// convolution either input of the sum, over 200 input channels (the sums taken in three
    /// chunks, the shortcut added once), a 1x1 and a 3x3 tile; not when the convolution's own
    /// output is asked for.
    func testResidualSumsRunInTheConvolutionsStore() throws {
        let net = Network()
        func conv(_ name: String, _ cin: Int, _ cout: Int, _ k: Int, padding: Int = 0, seed: UInt64) throws {
            try net.append(name, LayerRegistry.make("conv2d", ["in": .int(cin), "out": .int(cout), "kernel": .int(k),
                                                               "padding": .int(padding)], seed: seed))
        }
        try conv("stem", 3, 200, 3, padding: 1, seed: 1)
        try net.append("r0", LayerRegistry.make("relu"))
        try conv("a", 200, 200, 1, seed: 2)
        try net.append("s1", LayerRegistry.make("add"), inputs: ["a", "r0"])
        try net.append("r1", LayerRegistry.make("relu"))
        try conv("b", 200, 200, 1, seed: 3)
        try net.append("s2", LayerRegistry.make("add"), inputs: ["r1", "b"])
        try conv("c", 200, 16, 3, padding: 1, seed: 4)
        try conv("d", 16, 16, 1, seed: 5)
        try net.append("s3", LayerRegistry.make("add"), inputs: ["d", "c"])
        try net.append("r3", LayerRegistry.make("relu"))
        let x = Variable(Tensor.randn([2, 3, 9, 11], seed: 6))

        var before = ConvActivation.residualRuns
        _ = try bothWays(net, x, outputs: ["r3", "s2"])
        XCTAssertEqual(ConvActivation.residualRuns - before, 3, "a, b and d add their shortcuts")
        before = ConvActivation.residualRuns
        _ = try bothWays(net, x, outputs: ["r3", "a"])
        XCTAssertEqual(ConvActivation.residualRuns - before, 2, "a's own output is asked for")

        // 12 channels and 16 fill the same two blocks, but they do not add: the sum still fails
        // as the add layer's own does, instead of adding in the convolution's store.
        let mismatched = Network()
        try mismatched.append("stem", LayerRegistry.make("conv2d", ["in": .int(3), "out": .int(16), "kernel": .int(1)], seed: 6))
        try mismatched.append("side", LayerRegistry.make("conv2d", ["in": .int(16), "out": .int(12), "kernel": .int(1)], seed: 7),
                              inputs: ["stem"])
        try mismatched.append("main", LayerRegistry.make("conv2d", ["in": .int(16), "out": .int(16), "kernel": .int(1)], seed: 8),
                              inputs: ["stem"])
        try mismatched.append("sum", LayerRegistry.make("add"), inputs: ["main", "side"])
        before = ConvActivation.residualRuns
        XCTAssertThrowsError(try mismatched.forward(x, outputs: ["sum"], context: ForwardContext()))
        XCTAssertEqual(ConvActivation.residualRuns, before)
    }

    /// A squeeze-excitation's channel scale on a blocked image, one pass holding each block's
    /// scale: exactly the broadcast multiply's products, on one thread's worth of values and on
    /// enough to split (parts of whole planes, the last one short); and in a network, with the
    /// scale either factor, the NCHW ops' values.
    func testChannelScalesAreTheBroadcastProducts() throws {
        for shape in [[2, 5, 7, 7, 8], [1, 41, 28, 28, 8]] {
            let x = Tensor.randn(shape, seed: 21), scale = Tensor.randn([shape[0], shape[1], 1, 1, 8], seed: 22)
            let expected = try multiply(Variable(x), Variable(scale)).value
            XCTAssertEqual(Blocked.scaledByChannel(x, scale).scalars, expected.scalars, "\(shape)")
        }
        let net = Network()
        try net.append("conv", LayerRegistry.make("conv2d", ["in": .int(3), "out": .int(20), "kernel": .int(3), "padding": .int(1)], seed: 1))
        try net.append("pool", LayerRegistry.make("global_avgpool"))
        try net.append("fc", LayerRegistry.make("conv2d", ["in": .int(20), "out": .int(20), "kernel": .int(1)], seed: 2))
        try net.append("gate", LayerRegistry.make("sigmoid"))
        try net.append("scaled", LayerRegistry.make("mul"), inputs: ["conv", "gate"])
        try net.append("again", LayerRegistry.make("mul"), inputs: ["gate", "scaled"])
        let x = Variable(Tensor.randn([2, 3, 13, 10], seed: 3))
        let (_, _, runs) = try bothWays(net, x, outputs: ["again"])
        XCTAssertEqual(runs, 6, "every layer blocked")
    }

    /// ShuffleNet's unit: two branches joined, the channels shuffled in two groups (reshape,
    /// transpose, reshape) and split in halves by slices. Blocked, the shuffle and the slices are
    /// single passes over blocks, and the values are those of the NCHW ops exactly.
    func testChannelShuffleAndChannelSlicesStayBlocked() throws {
        let net = Network()
        func conv(_ name: String, _ cin: Int, _ cout: Int, inputs: [String]? = nil, seed: UInt64) throws {
            try net.append(name, LayerRegistry.make("conv2d", ["in": .int(cin), "out": .int(cout), "kernel": .int(1)], seed: seed), inputs: inputs)
        }
        try conv("a", 3, 16, inputs: ["input"], seed: 1)
        try conv("b", 3, 16, inputs: ["input"], seed: 2)
        try net.append("cat", LayerRegistry.make("concat", ["axis": .int(1)]), inputs: ["a", "b"])
        try net.append("view", LayerRegistry.make("reshape", ["shape": .ints([2, 2, 16, 5, 6])]))
        try net.append("swap", LayerRegistry.make("transpose", ["perm": .ints([0, 2, 1, 3, 4])]))
        try net.append("back", LayerRegistry.make("reshape", ["shape": .ints([2, 32, 5, 6])]))
        try net.append("left", LayerRegistry.make("slice", ["axes": .ints([1]), "starts": .ints([0]), "ends": .ints([16])]),
                       inputs: ["back"])
        try net.append("right", LayerRegistry.make("slice", ["axes": .ints([1]), "starts": .ints([16]), "ends": .ints([Int(Int32.max)])]),
                       inputs: ["back"])
        try conv("mix", 16, 8, inputs: ["right"], seed: 3)
        try net.append("out", LayerRegistry.make("concat", ["axis": .int(1)]), inputs: ["left", "mix"])
        let x = Variable(Tensor.randn([2, 3, 5, 6], seed: 4))
        let (plain, blocked, runs) = try bothWays(net, x, outputs: ["out", "left"])
        // a, b, cat, the shuffle (one run for three nodes), two slices, mix, out.
        XCTAssertEqual(runs, 8, "the layers the blocked path takes")
        XCTAssertEqual(blocked[1].value, plain[1].value, "the shuffled first half, exactly")
        // Read by anything else, the reshape's output is needed as it is, and the shuffle takes the NCHW ops.
        let reader = Network()
        for layer in net.layerNames {
            let node = net.nodes.first { $0.name == layer }!
            try reader.append(layer, node.layer, inputs: node.inputs)
        }
        try reader.append("again", LayerRegistry.make("flatten"), inputs: ["view"])
        let (_, both, readerRuns) = try bothWays(reader, x, outputs: ["out", "again"])
        XCTAssertEqual(readerRuns, 5, "a, b, cat, then (the shuffle and slices in NCHW) mix and out")
        assertClose(both[0].value, plain[0].value, rtol: 1e-5, atol: 1e-5, "the NCHW shuffle")
    }
}
