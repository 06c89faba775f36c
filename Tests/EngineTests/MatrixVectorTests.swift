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
}
