import XCTest
@testable import Engine

/// Winograd's F(2x2, 3x3) agrees with the direct loops, and the forward pass takes it where it should.
final class WinogradTests: XCTestCase {
    /// |a - b| <= atol + rtol·|b| everywhere, with the worst element in the failure message.
    func assertClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-4, atol: Float = 1e-4, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.shape, b.shape, what, file: file, line: line)
        guard a.shape == b.shape else { return }
        var worst = 0, excess: Float = -.infinity
        for i in 0..<a.count {
            let e = abs(a.scalars[i] - b.scalars[i]) - (atol + rtol * abs(b.scalars[i]))
            if e > excess || e.isNaN { worst = i; excess = e.isNaN ? .infinity : e }
        }
        XCTAssertLessThanOrEqual(excess, 0, "\(what): element \(worst) is \(a.scalars[worst]), expected \(b.scalars[worst])",
                                 file: file, line: line)
    }

    func testAgreesWithDirectLoopsOnRandomShapes() throws {
        var g = SeededGenerator(seed: 7)
        for trial in 0..<40 {
            let n = 1 + Int(g.next() % 2)
            let c = 1 + Int(g.next() % 11), k = 1 + Int(g.next() % 11)
            // Sizes from 3 (a single 3x3 window) up, odd and even, so the last tile row or column
            // often hangs over the output's edge; widths past 16 give runs of eight tiles.
            let h = 3 + Int(g.next() % 14), w = 3 + Int(g.next() % 20)
            let pads = (0..<4).map { _ in Int(g.next() % 3) }
            let o = ConvOptions(stride: (1, 1), padding: (pads[0], pads[1], pads[2], pads[3]))
            let x = Tensor.randn([n, c, h, w], seed: UInt64(100 + trial))
            let wt = Tensor.randn([k, c, 3, 3], seed: UInt64(200 + trial))
            let b = trial % 3 == 0 ? nil : Tensor.randn([k], seed: UInt64(300 + trial))
            let pr = try ConvProblem(input: x.shape, weight: wt.shape, bias: b?.shape, options: o)
            XCTAssertTrue(Winograd.isWinogradShape(pr))
            let direct = try Tensor.conv2dDirect(x, wt, b, o)
            // One block, and blocks of 5 tiles that start and end inside tile rows and images.
            for blockTiles in [nil, 5] {
                let fast = Winograd.forward(x, wt, b, pr, blockTiles: blockTiles)
                assertClose(fast, direct, "trial \(trial): \(x.shape) * \(wt.shape), padding \(pads), \(blockTiles.map { "blocks of \($0) tiles" } ?? "default blocks")")
            }
        }
    }

    /// Transformed filters are kept between calls, and a change to the weights is never missed:
    /// written in place, reshaped to other channel counts, or flipped for an input gradient.
    func testKeptFiltersFollowTheWeights() throws {
        let o = ConvOptions(stride: (1, 1), padding: (1, 1, 1, 1))
        let x = Tensor.randn([1, 16, 9, 9], seed: 1)
        var w = Tensor.randn([16, 16, 3, 3], seed: 2)
        let pr = try ConvProblem(input: x.shape, weight: w.shape, bias: nil, options: o)
        let before = FilterCache.shared.contents.entries
        let first = Winograd.forward(x, w, nil, pr)
        XCTAssertEqual(FilterCache.shared.contents.entries, before + 1)
        XCTAssertEqual(Winograd.forward(x, w, nil, pr), first, "the kept filters give the same result")
        XCTAssertEqual(FilterCache.shared.contents.entries, before + 1, "found again, not made twice")
        w.scalars[5] += 1  // in place: the cache's copy keeps the old weights, this one copies
        assertClose(Winograd.forward(x, w, nil, pr), try Tensor.conv2dDirect(x, w, nil, o), "after a write to the weights")
        // The same storage read as other filters: 8 x 32 instead of 16 x 16.
        let w2 = try w.reshaped([8, 32, 3, 3]), x2 = Tensor.randn([1, 32, 9, 9], seed: 3)
        let pr2 = try ConvProblem(input: x2.shape, weight: w2.shape, bias: nil, options: o)
        assertClose(Winograd.forward(x2, w2, nil, pr2), try Tensor.conv2dDirect(x2, w2, nil, o), "the same storage as 8 x 32 filters")
        XCTAssertLessThanOrEqual(FilterCache.shared.contents.bytes, FilterCache.shared.budget)
    }

    /// Past its budget the cache lets the least recently used entries go, never the one just
    /// made; each (weights, layout) is made once while it is kept.
    func testKeptFiltersGoLeastRecentlyUsedFirst() {
        let cache = FilterCache(budget: 4 * 400)  // four entries of 100 floats
        let weights = (0..<5).map { Tensor.randn([100], seed: UInt64($0 + 1)) }
        var made: [Int] = []
        func use(_ k: Int, layout: FilterCache.Layout.Kind = .blocked) {
            let t = weights[k]
            cache.transformed(t, layout: .init(layout, 100), count: 100, transform: { p in
                made.append(k)
                for i in 0..<100 { p[i] = t.scalars[i] * 2 }
            }) { p in XCTAssertEqual(p[7], t.scalars[7] * 2, "weights \(k)") }
        }
        for k in 0..<4 { use(k) }
        use(0)
        XCTAssertEqual(made, [0, 1, 2, 3], "0 found again")
        use(4)  // over budget: 1, used longest ago, goes
        XCTAssertEqual(cache.contents.entries, 4)
        for k in [0, 2, 3, 4] { use(k) }
        XCTAssertEqual(made, [0, 1, 2, 3, 4], "the others kept")
        use(1)
        XCTAssertEqual(made, [0, 1, 2, 3, 4, 1], "1 made again")
        use(1, layout: .blockedDepthwise)
        XCTAssertEqual(made.count, 7, "another layout of the same weights is another entry")
        XCTAssertLessThanOrEqual(cache.contents.bytes, 1600)
        XCTAssertEqual(cache.contents.entries, 4)
    }

    func testTypicalAndEdgeCases() throws {
        // VGG-like (padding 1, even size), asymmetric padding, padding larger than the kernel's
        // reach on one side, a 1x1 output, batches, and channel counts that are not multiples of 8.
        let cases: [([Int], Int, (Int, Int, Int, Int))] = [
            ([2, 33, 6, 6], 35, (1, 1, 1, 1)),
            ([1, 9, 23, 17], 10, (0, 2, 1, 0)),
            ([2, 5, 9, 30], 3, (2, 0, 0, 2)),
            ([1, 7, 3, 3], 9, (0, 0, 0, 0)),
            ([1, 1, 1, 1], 2, (1, 1, 1, 1)),
            ([0, 16, 6, 6], 16, (1, 1, 1, 1)),
            ([1, 4, 37, 41], 5, (1, 2, 2, 1)),
        ]
        for (i, (shape, k, pads)) in cases.enumerated() {
            let o = ConvOptions(stride: (1, 1), padding: pads)
            let x = Tensor.randn(shape, seed: UInt64(i)), w = Tensor.randn([k, shape[1], 3, 3], std: 0.1, seed: UInt64(50 + i))
            let b = Tensor.randn([k], seed: UInt64(90 + i))
            let pr = try ConvProblem(input: x.shape, weight: w.shape, bias: b.shape, options: o)
            assertClose(Winograd.forward(x, w, b, pr), try Tensor.conv2dDirect(x, w, b, o), "case \(i): \(shape) -> \(k), \(pads)")
        }
    }

    func testLargeValuesKeepTheirRelativeAccuracy() throws {
        // Inputs in the thousands: the transforms add and subtract, so the error must stay relative.
        let x = Tensor.randn([1, 8, 12, 12], seed: 11).map { $0 * 1000 }, w = Tensor.randn([6, 8, 3, 3], seed: 12)
        let o = ConvOptions(padding: 1)
        let pr = try ConvProblem(input: x.shape, weight: w.shape, bias: nil, options: o)
        let direct = try Tensor.conv2dDirect(x, w, nil, o)
        let scale = direct.scalars.map(abs).max()!
        assertClose(Winograd.forward(x, w, nil, pr), direct, atol: 1e-5 * scale, "inputs scaled by 1000")
    }

    func testAgreesWithPatchMatricesOnLargerShapesAcrossThreads() throws {
        // Shapes big enough for the engine's threads, checked against the im2col path (which
        // ConvolutionTests checks against the direct loops), with the default blocks and small ones.
        let cases: [([Int], Int, Int)] = [([2, 64, 20, 20], 64, 1), ([1, 96, 33, 27], 80, 0), ([3, 40, 14, 14], 48, 2)]
        for (i, (shape, k, pad)) in cases.enumerated() {
            let o = ConvOptions(padding: pad)
            let x = Tensor.randn(shape, seed: UInt64(i)), w = Tensor.randn([k, shape[1], 3, 3], std: 0.1, seed: UInt64(10 + i))
            let b = Tensor.randn([k], seed: UInt64(20 + i))
            let pr = try ConvProblem(input: x.shape, weight: w.shape, bias: b.shape, options: o)
            let reference = ConvKernels.patchForward(x, w, b, pr)
            for blockTiles in [nil, 24, 100] {
                assertClose(Winograd.forward(x, w, b, pr, blockTiles: blockTiles), reference,
                            "\(shape) -> \(k), padding \(pad), \(blockTiles.map { "blocks of \($0) tiles" } ?? "default blocks")")
            }
        }
    }

    func testFlippedFiltersAreReadStraightFromTheWeights() throws {
        // The input-gradient problem of a stride-1 convolution, with w's filters flipped and
        // transposed inside the filter transform, against the explicitly flipped filters.
        var g = SeededGenerator(seed: 3)
        for trial in 0..<12 {
            let c = 1 + Int(g.next() % 21), k = 1 + Int(g.next() % 21), n = 1 + Int(g.next() % 2)
            let h = 3 + Int(g.next() % 12), wd = 3 + Int(g.next() % 12)
            let pads = (0..<4).map { _ in Int(g.next() % 3) }
            let o = ConvOptions(stride: (1, 1), padding: (pads[0], pads[1], pads[2], pads[3]))
            let pr = try ConvProblem(input: [n, c, h, wd], weight: [k, c, 3, 3], bias: nil, options: o)
            let w = Tensor.randn([k, c, 3, 3], seed: UInt64(trial))
            let dy = Tensor.randn(pr.outputShape, seed: UInt64(50 + trial))
            let (_, transposed) = try XCTUnwrap(ConvKernels.transposedProblem(pr, weightShape: w.shape))
            let reference = ConvKernels.patchForward(dy, ConvKernels.flippedWeights(w, pr), nil, transposed)
            for blockTiles in [nil, 7] {
                assertClose(Winograd.forward(dy, w, nil, transposed, flipped: true, blockTiles: blockTiles), reference,
                            "trial \(trial): \([n, c, h, wd]) * \(w.shape), padding \(pads)")
            }
        }
    }

    func testForwardSelectsWinogradForVGGShapesOnly() throws {
        try XCTSkipUnless(Winograd.enabled, "CNN_WINOGRAD=0 turns the path off")
        func runsOn(_ x: [Int], _ w: [Int], _ o: ConvOptions) throws -> Bool {
            let before = Winograd.runs
            _ = try Tensor.conv2d(Tensor.randn(x, seed: 1), Tensor.randn(w, seed: 2), nil, o)
            return Winograd.runs > before
        }
        XCTAssertTrue(try runsOn([1, 64, 28, 28], [128, 64, 3, 3], ConvOptions(padding: 1)), "VGG-like 3x3")
        let few = Winograd.minimumChannels
        XCTAssertTrue(try runsOn([2, few, 9, 9], [few, few, 3, 3], ConvOptions(stride: (1, 1), padding: (0, 1, 2, 0))), "the fewest channels, a batch")
        XCTAssertFalse(try runsOn([1, 3, 28, 28], [64, 3, 3, 3], ConvOptions(padding: 1)), "three input channels")
        XCTAssertFalse(try runsOn([1, 64, 28, 28], [few - 1, 64, 3, 3], ConvOptions(padding: 1)), "too few output channels")
        XCTAssertFalse(try runsOn([1, 64, 28, 28], [64, 64, 3, 3], ConvOptions(stride: 2, padding: 1)), "stride 2")
        XCTAssertFalse(try runsOn([1, 64, 28, 28], [64, 64, 3, 3], ConvOptions(padding: 2, dilation: 2)), "dilation 2")
        XCTAssertFalse(try runsOn([1, 64, 28, 28], [64, 32, 3, 3], ConvOptions(padding: 1, groups: 2)), "two groups")
        XCTAssertFalse(try runsOn([1, 64, 28, 28], [64, 64, 5, 5], ConvOptions(padding: 2)), "5x5 kernel")
    }

    func testInputGradientOfAStrideOneConvolutionAgreesWithTheDefinition() throws {
        // The input gradient runs as a forward convolution of dy with flipped filters, so on this path too.
        let x = Tensor.randn([2, 32, 9, 10], seed: 1), w = Tensor.randn([40, 32, 3, 3], seed: 2)
        for pads in [(1, 1, 1, 1), (0, 0, 0, 0), (2, 1, 0, 2)] {
            let o = ConvOptions(stride: (1, 1), padding: pads)
            let xv = Variable(x, requiresGrad: true)
            let y = try conv2d(xv, Variable(w), nil, o)
            let dy = Tensor.randn(y.shape, seed: 3)
            let dx = try gradients(of: y, withRespectTo: [xv], seed: dy)[0]
            // dx[n, c, ih, iw] = Σ_{k, i, j} dy[n, k, ih + pt - i, iw + pl - j] · w[k, c, i, j]
            let (oh, ow) = (y.shape[2], y.shape[3])
            let ws = w.scalars, ds = dy.scalars
            var e = [Float](repeating: 0, count: x.count)
            for n in 0..<2 { for k in 0..<40 { for c in 0..<32 { for i in 0..<3 { for j in 0..<3 {
                let wv = ws[((k * 32 + c) * 3 + i) * 3 + j]
                for r in 0..<oh { for s in 0..<ow {
                    let ih = r - pads.0 + i, iw = s - pads.1 + j
                    if ih >= 0, ih < 9, iw >= 0, iw < 10 {
                        e[((n * 32 + c) * 9 + ih) * 10 + iw] += ds[((n * 40 + k) * oh + r) * ow + s] * wv
                    }
                }}
            }}}}}
            let expected = Tensor(shape: x.shape, scalars: e)
            assertClose(dx, expected, atol: 1e-3, "input gradient, padding \(pads)")
        }
    }
}
