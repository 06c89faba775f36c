import XCTest
@testable import Engine

/// One row times a matrix (a classifier's fully connected layers on one image), which is split
/// across the engine's threads by columns: every column computed once, against double precision.
final class MatrixVectorTests: XCTestCase {
    func testOneRowProductsAgreeWithDoublePrecision() throws {
        for (inputs, outputs) in [(576, 1024), (1280, 1000), (37, 5501), (3, 7)] {
            let x = Tensor.randn([1, inputs], seed: 1), w = Tensor.randn([outputs, inputs], seed: 2), b = Tensor.randn([outputs], seed: 3)
            let y = try linear(Variable(x), Variable(w), Variable(b)).value
            XCTAssertEqual(y.shape, [1, outputs])
            // The same weights as a [inputs, outputs] matrix on the right of matmul.
            let wt = Tensor(shape: [inputs, outputs], scalars: (0..<(inputs * outputs)).map { w.scalars[($0 % outputs) * inputs + $0 / outputs] })
            let z = try matmul(Variable(x), Variable(wt)).value
            var worst = 0.0
            for o in 0..<outputs {
                var sum = 0.0
                for i in 0..<inputs { sum += Double(x.scalars[i]) * Double(w.scalars[o * inputs + i]) }
                let scale = Double(inputs).squareRoot()
                worst = Swift.max(worst, abs(Double(y.scalars[o]) - (sum + Double(b.scalars[o]))) / scale,
                                  abs(Double(z.scalars[o]) - sum) / scale)
            }
            XCTAssertLessThan(worst, 1e-5, "\(inputs) -> \(outputs)")
        }
    }

    /// Tall products (many rows, few columns: a layer applied at every position, its bias added
    /// row by row on the threads): every entry, with transposed operands and an accumulating C,
    /// against double precision, on one thread and on several.
    func testTallProductsAgreeWithDoublePrecision() throws {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for threads in [1, 2, 3] {
            Parallel.threads = threads
            for (m, k, n) in [(3136, 96, 384), (785, 192, 48), (4099, 17, 5)] {
                let x = Tensor.randn([m, k], seed: 4), w = Tensor.randn([n, k], seed: 5), b = Tensor.randn([n], seed: 6)
                let y = try linear(Variable(x), Variable(w), Variable(b)).value
                XCTAssertEqual(y.shape, [m, n])
                // transA: the same x stored as [k, m]; accumulate onto ones with beta 1.
                let xt = (0..<(k * m)).map { x.scalars[($0 % m) * k + $0 / m] }
                var acc = [Float](repeating: 1, count: m * n)
                xt.withUnsafeBufferPointer { a in w.scalars.withUnsafeBufferPointer { bw in acc.withUnsafeMutableBufferPointer { c in
                    gemm(transA: true, transB: true, m: m, n: n, k: k, a: a.baseAddress!, lda: m, b: bw.baseAddress!, ldb: k,
                         beta: 1, c: c.baseAddress!, ldc: n)
                }}}
                var worst = 0.0
                for r in stride(from: 0, to: m, by: 1) {
                    for o in 0..<n {
                        var sum = 0.0
                        for i in 0..<k { sum += Double(x.scalars[r * k + i]) * Double(w.scalars[o * k + i]) }
                        let scale = Double(k).squareRoot()
                        worst = Swift.max(worst, abs(Double(y.scalars[r * n + o]) - (sum + Double(b.scalars[o]))) / scale,
                                          abs(Double(acc[r * n + o]) - (sum + 1)) / scale)
                    }
                }
                XCTAssertLessThan(worst, 1e-5, "\(m) x \(k) -> \(n), \(threads) threads")
            }
        }
    }
}
