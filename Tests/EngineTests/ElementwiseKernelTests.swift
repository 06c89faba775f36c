import XCTest
@testable import Engine

/// The elementwise loops merge broadcast dimensions and split large tensors across threads; each
/// result is checked against the definition, index by index, on every pattern of stretched
/// dimensions up to rank 4 and on tensors large enough to take the threaded path.
final class ElementwiseKernelTests: XCTestCase {
    /// NumPy's broadcast, computed one output index at a time.
    private func reference(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) throws -> Tensor {
        let out = try broadcastShape(a.shape, b.shape)
        let n = out.count
        let pa = [Int](repeating: 1, count: n - a.rank) + a.shape, pb = [Int](repeating: 1, count: n - b.rank) + b.shape
        let sa = Tensor.strides(of: pa), sb = Tensor.strides(of: pb), so = Tensor.strides(of: out)
        let total = out.reduce(1, *)
        var r = [Float](repeating: 0, count: total)
        for o in 0..<total {
            var ia = 0, ib = 0
            for d in 0..<n {
                let i = (o / so[d]) % out[d]
                if pa[d] != 1 { ia += i * sa[d] }
                if pb[d] != 1 { ib += i * sb[d] }
            }
            r[o] = f(a.scalars[ia], b.scalars[ib])
        }
        return Tensor(shape: out, scalars: r)
    }

    private func random(_ shape: [Int], _ g: inout SeededGenerator) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -2...2, using: &g) })
    }

    /// Every way of stretching dimensions of [2, 3, 4, 5] in either operand (and of dropping
    /// leading ones), against the index-by-index definition, forward and summed back.
    func testEveryBroadcastPatternAgreesWithTheDefinition() throws {
        var g = SeededGenerator(seed: 7)
        let full = [2, 3, 4, 5]
        var checked = 0
        for maskA in 0..<16 { for maskB in 0..<16 where maskA & maskB == 0 {
            for dropA in 0...2 {
                let a = (0..<4).map { maskA & (1 << $0) != 0 ? 1 : full[$0] }.dropFirst(dropA).map { $0 }
                let b = (0..<4).map { maskB & (1 << $0) != 0 ? 1 : full[$0] }
                let x = random(a, &g), y = random(b, &g)
                for (name, f, op) in [("+", { (p: Float, q: Float) in p + q }, 0), ("-", { $0 - $1 }, 1), ("*", { $0 * $1 }, 2), ("/", { $0 / $1 }, 3)] {
                    let ours: Tensor
                    switch op {
                    case 0: ours = try broadcastMap(x, y, Sum())
                    case 1: ours = try broadcastMap(x, y, Difference())
                    case 2: ours = try broadcastMap(x, y, Product())
                    default: ours = try broadcastMap(x, y, Quotient())
                    }
                    XCTAssertEqual(ours, try reference(x, y, f), "\(a) \(name) \(b)")
                }
                // Summing back: each operand's gradient of a sum is the upstream summed over what it was stretched along.
                let up = random(try broadcastShape(a, b), &g)
                for shape in [a, b] {
                    let ours = try sumToShape(up, shape)
                    var expected = Tensor(zeros: shape)
                    let back = try reference(up, Tensor(zeros: shape)) { p, _ in p }  // same shape as up
                    let n = up.rank, padded = [Int](repeating: 1, count: n - shape.count) + shape
                    let su = Tensor.strides(of: up.shape), sp = Tensor.strides(of: padded)
                    for o in 0..<back.count {
                        var k = 0
                        for d in 0..<n where padded[d] != 1 { k += ((o / su[d]) % up.shape[d]) * sp[d] }
                        expected.scalars[k] += back.scalars[o]
                    }
                    XCTAssertEqual(ours.shape, shape)
                    for (p, q) in zip(ours.scalars, expected.scalars) { XCTAssertEqual(p, q, accuracy: 1e-4, "sum of \(up.shape) to \(shape)") }
                }
                checked += 1
            }
        }}
        XCTAssertGreaterThan(checked, 200)
    }

    /// Tensors above the threaded threshold, in the patterns imported networks use: a channel
    /// scale (squeeze-excitation), a residual sum, a scalar, and an activation.
    func testLargeTensorsSplitAcrossThreadsGiveTheSameValues() throws {
        var g = SeededGenerator(seed: 11)
        let x = random([1, 96, 56, 56], &g)
        XCTAssertGreaterThan(x.count, 8 * elementwiseParallelMinimum)
        let scale = random([1, 96, 1, 1], &g), other = random([1, 96, 56, 56], &g), s = random([], &g)
        XCTAssertEqual(try broadcastMap(x, scale, Product()), try reference(x, scale, *))
        XCTAssertEqual(try broadcastMap(scale, x, Quotient()), try reference(scale, x, /))
        XCTAssertEqual(try broadcastMap(x, other, Sum()), try reference(x, other, +))
        XCTAssertEqual(try broadcastMap(s, x, Difference()), try reference(s, x, -))
        // A blocked image's channel scale: rows of 8 lanes, the scale's rows repeating along the
        // positions, the threads' chunks starting part-way through a run of them.
        let lanes = random([1, 5, 37, 29, 8], &g), laneScale = random([1, 5, 1, 1, 8], &g)
        XCTAssertEqual(try broadcastMap(lanes, laneScale, Product()), try reference(lanes, laneScale, *))
        XCTAssertEqual(try broadcastMap(laneScale, lanes, Difference()), try reference(laneScale, lanes, -))
        XCTAssertEqual(sigmoid(Variable(x)).value, x.map { 1 / (1 + fastExp(-$0)) })
        XCTAssertEqual(relu(Variable(x)).value, x.map { Swift.max($0, 0) })
        XCTAssertEqual(hardSwish(Variable(x)).value, x.map { $0 * Swift.min(Swift.max($0 / 6 + 0.5, 0), 1) })
        // An odd count: the chunks' bounds must cover every element once.
        let odd = random([3, 7, 1111], &g)
        XCTAssertEqual(odd.mapInParallel(Clamp(low: -1, high: 1)), odd.map { Swift.min(Swift.max($0, -1), 1) })
    }

    /// fastExp agrees with expf across the float range it handles, with NaN and the clamps.
    func testFastExpIsWithinTwoUlpOfExp() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let e = Foundation.exp(x), f = fastExp(x)
            worst = Swift.max(worst, abs(f - e) / e.ulp)
            x += 0.0137
        }
        XCTAssertLessThanOrEqual(worst, 2)
        XCTAssertTrue(fastExp(.nan).isNaN)
        XCTAssertEqual(fastExp(-1000), fastExp(-87.3))
        XCTAssertEqual(fastExp(0), 1)
    }

    /// fastErf (the erf and GELU layers) agrees with the double-precision erf within 2.5e-7
    /// relative everywhere, keeps erf's symmetry, and takes NaN and the infinities as erf does;
    /// on a tensor large enough for the threaded loops, the erf op gives fastErf's values.
    func testFastErfIsWithinFourUlpOfErf() throws {
        var worst: Double = 0, at: Float = 0
        var x: Float = -7
        while x < 7 {
            let e = Foundation.erf(Double(x)), f = fastErf(x)
            let relative = e == 0 ? abs(Double(f)) : abs(Double(f) - e) / abs(e)
            if relative > worst { worst = relative; at = x }
            XCTAssertEqual(fastErf(-x).bitPattern, (-f).bitPattern, "erf(-x) = -erf(x) at \(x)")
            x += 0.000173
        }
        XCTAssertLessThanOrEqual(worst, 2.5e-7, "worst at \(at)")
        for tiny: Float in [1e-30, 1e-10, 1e-5, 0.01] {
            XCTAssertEqual(Double(fastErf(tiny)), Foundation.erf(Double(tiny)), accuracy: 2e-7 * Foundation.erf(Double(tiny)))
        }
        XCTAssertEqual(fastErf(0), 0)
        XCTAssertEqual(fastErf(.infinity), 1)
        XCTAssertEqual(fastErf(-.infinity), -1)
        XCTAssertEqual(fastErf(10), 1)
        XCTAssertTrue(fastErf(.nan).isNaN)

        var g = SeededGenerator(seed: 21)
        let big = Tensor.randn([3, 384, 37, 11], std: 2, generator: &g)
        XCTAssertEqual(erf(Variable(big)).value, big.map { fastErf($0) })
        let y = gelu(Variable(big)).value
        for (v, w) in zip(big.scalars, y.scalars) {
            let exact = 0.5 * Double(v) * (1 + Foundation.erf(Double(v) / 2.0.squareRoot()))
            XCTAssertEqual(Double(w), exact, accuracy: 1e-6 * max(1, abs(exact)), "gelu(\(v))")
        }
    }
}
