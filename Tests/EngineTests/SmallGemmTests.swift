@testable import Engine
import XCTest

/// The small-product kernel the pointwise and few-channel convolutions take instead of sgemm.
final class SmallGemmTests: XCTestCase {
    /// Against a double-precision product, on sizes that hit every tile and tail (rows not a
    /// multiple of four, columns not a multiple of 8 or 24, an inner dimension of one), with
    /// leading dimensions wider than the matrices, a bias and each fused activation.
    func testAgreesWithTheProductOnEveryTileAndTail() throws {
        var g = SeededGenerator(seed: 7)
        let sizes = [(4, 8, 1), (5, 9, 3), (7, 23, 16), (8, 24, 27), (13, 61, 40), (72, 392, 16), (6, 100, 96), (9, 49, 8)]
        for (m, n, k) in sizes {
            let lda = k + 3, ldb = n + 5, ldc = n + 2
            let a = (0..<(m * lda)).map { _ in Float.random(in: -1...1, using: &g) }
            let b = (0..<(k * ldb)).map { _ in Float.random(in: -1...1, using: &g) }
            let bias = (0..<m).map { _ in Float.random(in: -1...1, using: &g) }
            for activation: ConvActivation? in [nil, .relu, .hardSwish] {
                for withBias in [false, true] {
                    var c = [Float](repeating: .nan, count: m * ldc)
                    a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in bias.withUnsafeBufferPointer { zp in
                        c.withUnsafeMutableBufferPointer { cp in
                            SmallGemm.multiply(m: m, n: n, k: k, a: ap.baseAddress!, lda: lda, b: bp.baseAddress!, ldb: ldb,
                                               bias: withBias ? zp.baseAddress! : nil, then: activation, c: cp.baseAddress!, ldc: ldc)
                        }
                    } } }
                    for i in 0..<m {
                        for j in 0..<n {
                            var s = withBias ? Double(bias[i]) : 0
                            for l in 0..<k { s += Double(a[i * lda + l]) * Double(b[l * ldb + j]) }
                            var expected = [Float(s)]
                            expected.withUnsafeMutableBufferPointer { activation?.apply($0.baseAddress!, count: 1) }
                            XCTAssertEqual(c[i * ldc + j], expected[0], accuracy: 1e-5 * Float(k + 1),
                                           "\(m)x\(n)x\(k) at [\(i), \(j)], bias \(withBias), \(String(describing: activation))")
                        }
                        for j in n..<ldc { XCTAssertTrue(c[i * ldc + j].isNaN, "\(m)x\(n)x\(k): column \(j) past the matrix was written") }
                    }
                }
            }
        }
    }

    /// Each element is one chain of fused multiply-adds whichever tile computes it: a product cut
    /// into pieces of columns gives the whole product's values exactly.
    func testCuttingTheColumnsChangesNoValue() {
        var g = SeededGenerator(seed: 3)
        let m = 11, n = 157, k = 27
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &g) }
        let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &g) }
        func product(cuts: [Int]) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                for (j0, j1) in zip(cuts, cuts.dropFirst()) {
                    SmallGemm.multiply(m: m, n: j1 - j0, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress! + j0, ldb: n,
                                       bias: nil, then: nil, c: cp.baseAddress! + j0, ldc: n)
                }
            } } }
            return c
        }
        let whole = product(cuts: [0, n])
        XCTAssertEqual(product(cuts: [0, 13, 40, 41, 100, n]), whole)
        XCTAssertEqual(product(cuts: [0, 8, 16, 24, 48, 72, 96, 120, 144, n]), whole)
    }
}
