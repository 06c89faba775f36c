import Foundation
import XCTest
@testable import Engine

/// The FFT behind Fourier images agrees with the DFT's definition at every length, including
/// lengths with large prime factors, forward and inverse.
final class FFTTests: XCTestCase {
    private func direct(_ x: [Float], inverse: Bool) -> [Double] {
        let n = x.count / 2
        var y = [Double](repeating: 0, count: 2 * n)
        for k in 0..<n { for j in 0..<n {
            let angle = (inverse ? 2 : -2) * Double.pi * Double(j * k % n) / Double(n)
            y[2 * k] += Double(x[2 * j]) * cos(angle) - Double(x[2 * j + 1]) * sin(angle)
            y[2 * k + 1] += Double(x[2 * j]) * sin(angle) + Double(x[2 * j + 1]) * cos(angle)
        }}
        return y
    }

    func testAgreesWithTheDefinitionAtEveryLength() {
        var generator = SeededGenerator(seed: 7)
        for n in Array(1...40) + [49, 97, 112, 128, 224, 227, 256, 300] {
            let x = (0..<(2 * n)).map { _ in Float.random(in: -1...1, using: &generator) }
            for inverse in [false, true] {
                var y = [Float](repeating: 0, count: 2 * n)
                x.withUnsafeBufferPointer { xs in y.withUnsafeMutableBufferPointer { ys in
                    ComplexFFT(length: n).transform(xs.baseAddress!, into: ys.baseAddress!, inverse: inverse)
                }}
                let expected = direct(x, inverse: inverse)
                let worst = zip(y, expected).map { abs(Double($0) - $1) }.max() ?? 0
                XCTAssertLessThan(worst, 2e-5 * Double(n).squareRoot() * 4, "length \(n), inverse \(inverse)")
            }
        }
    }

    /// The Fourier image at an ImageNet size is the inverse real DFT: one coefficient gives its wave.
    func testFourierImageAtImageNetSize() throws {
        let (h, w) = (224, 224), l = w / 2 + 1
        var s = Tensor(zeros: [1, 1, h, 2, l])
        s.scalars[(5 * 2 + 0) * l + 3] = 1     // k = 5, j = 3, real part
        s.scalars[(5 * 2 + 1) * l + 3] = -0.5  // imaginary part
        let wave = try fourierImage(Variable(s), height: h, width: w, decayPower: 0).value
        var worst = 0.0
        for m in stride(from: 0, to: h, by: 7) { for n in stride(from: 0, to: w, by: 5) {
            let angle = 2 * Double.pi * (5 * Double(m) / Double(h) + 3 * Double(n) / Double(w))
            let expected = 2 * (cos(angle) + 0.5 * sin(angle)) / (4 * Double(h * w).squareRoot())
            worst = max(worst, abs(Double(wave.scalars[m * w + n]) - expected))
        }}
        XCTAssertLessThan(worst, 1e-6)
    }
}

/// The exponential behind sigmoid agrees with the C library's within a few ulp everywhere it is
/// a normal float, and saturates instead of overflowing.
final class FastExpTests: XCTestCase {
    func testAgreesWithExpfOverItsRange() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let e = Foundation.exp(x), f = fastExp(x)
            worst = max(worst, abs(f - e) / e)
            x += 0.01337
        }
        XCTAssertLessThan(worst, 4e-7)
        XCTAssertEqual(fastExp(0), 1)
        XCTAssertTrue(fastExp(1000).isFinite)
        XCTAssertGreaterThan(fastExp(1000), 1e38)
        XCTAssertGreaterThanOrEqual(fastExp(-1000), 0)
        XCTAssertLessThan(fastExp(-1000), 1e-37)
        XCTAssertTrue(fastExp(.nan).isNaN)
        let s = sigmoid(Variable(Tensor(shape: [3], scalars: [-100, 0, 100]))).value.scalars
        XCTAssertEqual(s[0], 0, accuracy: 1e-30); XCTAssertEqual(s[1], 0.5); XCTAssertEqual(s[2], 1)
    }
}
