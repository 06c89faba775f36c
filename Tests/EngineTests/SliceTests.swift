import XCTest
@testable import Engine

/// Slicing copies whole trailing dimensions as contiguous runs: every pattern of indices gives
/// what picking element by element gives, and the gradient puts each upstream value back on its element.
final class SliceTests: XCTestCase {
    func testSlicesAgreeWithPickingElementByElement() throws {
        let shape = [2, 4, 3, 5]
        let x = Tensor.randn(shape, seed: 3)
        let choices: [SliceIndex] = [.all, .at(1), .at(-1), .range(start: 1, end: 3, step: 1), .range(start: nil, end: nil, step: 2),
                                     .range(start: -1, end: nil, step: -1), .range(start: 2, end: 2, step: 1)]
        var g = SeededGenerator(seed: 7)
        for trial in 0..<200 {
            let indices = (0..<Int(g.next() % 5)).map { _ in choices[Int(g.next() % UInt64(choices.count))] }
            let v = Variable(x, requiresGrad: true)
            let y = try slice(v, indices)
            // The definition: the source positions of each dimension, then every combination in order.
            var picks: [[Int]] = [], kept: [Int] = []
            for (d, size) in shape.enumerated() {
                switch d < indices.count ? indices[d] : .all {
                case .at(let i): picks.append([i < 0 ? i + size : i])
                case .range(let s, let e, let step):
                    let all = Array(0..<size)
                    let lo = s.map { $0 < 0 ? $0 + size : $0 } ?? (step > 0 ? 0 : size - 1)
                    let hi = e.map { $0 < 0 ? $0 + size : $0 } ?? (step > 0 ? size : -1)
                    picks.append(Array(stride(from: lo, to: hi, by: step)).filter { all.contains($0) })
                    kept.append(picks.last!.count)
                }
            }
            var expected: [Float] = [], positions: [Int] = []
            for a in picks[0] { for b in picks[1] { for c in picks[2] { for d in picks[3] {
                let i = ((a * 4 + b) * 3 + c) * 5 + d
                expected.append(x.scalars[i]); positions.append(i)
            }}}}
            XCTAssertEqual(y.shape, kept, "trial \(trial): \(indices)")
            XCTAssertEqual(y.value.scalars, expected, "trial \(trial): \(indices)")
            guard !expected.isEmpty else { continue }
            let seed = Tensor.randn(y.shape, seed: UInt64(trial))
            let dx = try gradients(of: y, withRespectTo: [v], seed: seed)[0]
            var want = [Float](repeating: 0, count: x.count)
            for (k, i) in positions.enumerated() { want[i] += seed.scalars[k] }
            XCTAssertEqual(dx.scalars, want, "trial \(trial): gradient of \(indices)")
        }
    }
}
