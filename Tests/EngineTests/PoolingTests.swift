import XCTest
@testable import Engine

/// Max pooling's 2x2, stride-2 path against the definition: the window scanned in order, the
/// first maximum kept, a NaN winning over numbers.
final class PoolingTests: XCTestCase {
    func testTwoByTwoPoolAgreesWithTheWindowScan() throws {
        var g = SeededGenerator(seed: 9)
        // Values from a small set, so windows often tie; some NaN and infinities.
        let palette: [Float] = [-1, 0, 0.5, 2, 2, -.infinity, .infinity, .nan]
        for trial in 0..<30 {
            let n = 1 + Int(g.next() % 2), c = 1 + Int(g.next() % 3)
            let h = 2 + Int(g.next() % 13), w = 2 + Int(g.next() % 21)   // odd sizes drop a row or column
            let x = Tensor(shape: [n, c, h, w], scalars: (0..<(n * c * h * w)).map { _ in
                trial % 2 == 0 ? palette[Int(g.next() % UInt64(palette.count))] : g.nextNormal()
            })
            let (y, switches) = try maxPool2dWithSwitches(Variable(x), PoolOptions(kernel: 2))
            let (oh, ow) = (h / 2, w / 2)
            XCTAssertEqual(y.shape, [n, c, oh, ow])
            for p in 0..<(n * c) { for i in 0..<oh { for j in 0..<ow {
                var best = -Float.infinity, arg = -1
                for a in (2 * i)..<(2 * i + 2) { for b in (2 * j)..<(2 * j + 2) {
                    let v = x.scalars[p * h * w + a * w + b]
                    if arg < 0 || (!best.isNaN && (v > best || v.isNaN)) { best = v; arg = a * w + b }
                }}
                let k = (p * oh + i) * ow + j
                XCTAssertEqual(Int(switches[k]), arg, "trial \(trial): switch of output \(k) in \([n, c, h, w])")
                let got = y.value.scalars[k]
                XCTAssertTrue(got == best || (got.isNaN && best.isNaN), "trial \(trial): output \(k) is \(got), expected \(best)")
            }}}
        }
    }

    /// Without a gradient to record, max pooling keeps no switches; its values are the same,
    /// on the 2x2 path and the general one (padding, overlapping windows, ceil mode), NaNs included.
    func testPoolingWithoutSwitchesGivesTheSameValues() throws {
        var g = SeededGenerator(seed: 11)
        let options = [PoolOptions(kernel: 2), PoolOptions(kernel: 3, stride: 2, padding: 1),
                       PoolOptions(kernel: (3, 2), stride: (1, 2), padding: (1, 0, 1, 1), ceilMode: true),
                       // SqueezeNet's (the last window reaches past the input), and stride 1.
                       PoolOptions(kernel: 3, stride: 2, ceilMode: true), PoolOptions(kernel: 3, stride: 1, padding: 1),
                       PoolOptions(kernel: (2, 4), stride: (2, 3), padding: (0, 2, 0, 2), ceilMode: true)]
        // The second shape has enough planes to be shared among the threads in chunks.
        for shape in [[2, 3, 9, 11], [2, 40, 20, 23]] { for (trial, o) in options.enumerated() {
            let x = Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { i in
                i % 37 == 5 ? .nan : (i % 41 == 7 ? -.infinity : g.nextNormal()) })
            let plain = try maxPool2d(Variable(x), o)
            let recorded = try maxPool2d(Variable(x, requiresGrad: true), o)
            XCTAssertFalse(plain.requiresGrad)
            XCTAssertEqual(plain.shape, recorded.shape)
            for (a, b) in zip(plain.value.scalars, recorded.value.scalars) {
                XCTAssertTrue(a == b || (a.isNaN && b.isNaN), "options \(trial): \(a) against \(b)")
            }
            // The recorded one still unpools: the gradient of the sum puts one 1 per output.
            let v = Variable(x, requiresGrad: true)
            let dx = try gradients(of: try sum(try maxPool2d(v, o)), withRespectTo: [v])[0]
            XCTAssertEqual(dx.scalars.reduce(0, +), Float(plain.value.count), "options \(trial)")
        }}
    }
}
