import XCTest
@testable import Engine

/// The backward passes of the ops imported graphs use (GraphOps.swift) against finite differences.
extension GradientCheckTests {
    func testImportedGraphActivations() {
        // Spread over [-6, 6] so that the flat parts and the ramp of the hard functions are all crossed.
        let x = randn([2, 3, 5], 40).map { $0 * 3 }
        check("hard sigmoid (ONNX defaults)", [x]) { hardSigmoid($0[0]) }
        check("hard sigmoid (PyTorch's)", [x]) { hardSigmoid($0[0], alpha: 1 / 6, beta: 0.5) }
        check("hard swish", [x]) { hardSwish($0[0]) }
        check("silu", [x]) { silu($0[0]) }
        check("erf", [x.map { $0 / 3 }]) { erf($0[0]) }
        check("gelu", [x.map { $0 / 2 }]) { gelu($0[0]) }
        check("prelu per channel", [randn([2, 3, 4, 4], 41), randn([3, 1, 1], 42)]) { try prelu($0[0], $0[1]) }
        check("prelu one slope", [randn([2, 5], 43), randn([1], 44)]) { try prelu($0[0], $0[1]) }
        check("minimum", [randn([2, 3, 4], 45), randn([3, 1], 46)]) { try extremum($0[0], $0[1], larger: false) }
        check("maximum", [randn([2, 3, 4], 47), randn([4], 48)]) { try extremum($0[0], $0[1], larger: true) }
    }

    func testImportedGraphShapes() {
        let x = randn([2, 4, 3, 5], 50)
        check("permute NCHW to NHWC", [x]) { try permute($0[0], [0, 2, 3, 1]) }
        check("channel shuffle", [x]) { v in
            try reshape(permute(reshape(v[0], [2, 2, 2, 3, 5]), [0, 2, 1, 3, 4]), [2, 4, 3, 5])
        }
        check("take channels", [x]) { try take($0[0], axis: 1, indices: [3, 0, 0, -1], indicesShape: [2, 2]) }
        check("upsample nearest 2x3", [randn([1, 2, 3, 2], 51)]) { try upsampleNearest($0[0], scale: (2, 3)) }
        check("reduce sum [1, 3]", [x]) { try reduce($0[0], "sum", axes: [1, 3], keepDims: false) }
        check("reduce max [-1] keep", [x]) { try reduce($0[0], "max", axes: [-1], keepDims: true) }
        check("reduce mean [2, 3]", [x]) { try reduce($0[0], "mean", axes: [2, 3], keepDims: true) }
        check("layer norm last axis", [randn([2, 3, 6], 52), randn([6], 53), randn([6], 54)]) {
            try layerNorm($0[0], weight: $0[1], bias: $0[2], axis: -1, eps: 1e-6)
        }
        check("layer norm two axes", [randn([2, 3, 4], 55), randn([3, 4], 56), randn([3, 4], 57)]) {
            try layerNorm($0[0], weight: $0[1], bias: $0[2], axis: 1, eps: 1e-5)
        }
    }

    /// Without a gradient, layer norm runs as one kernel: the same values as the recorded ops,
    /// for rows of whole and partial lane groups, with and without weight and bias, over one axis
    /// and two, on a tensor large enough to be split across threads, and with a large offset
    /// (the variance is of the centred values).
    func testLayerNormWithoutGradientAgreesWithTheRecordedOps() throws {
        let cases: [(shape: [Int], axis: Int, affine: [Int]?)] = [
            ([3136, 96], -1, [96]), ([5, 7, 13], -1, [13]), ([4, 3, 5], 1, [3, 5]), ([2, 9], -1, nil), ([1, 56, 56, 96], 3, [96]),
        ]
        for (k, c) in cases.enumerated() {
            let offset: Float = k == 0 ? 1000 : 0
            let x = randn(c.shape, UInt64(60 + k)).map { $0 * 2 + offset }
            let w = c.affine.map { randn($0, UInt64(70 + k)) }, b = c.affine.map { randn($0, UInt64(80 + k)) }
            let fused = try layerNorm(Variable(x), weight: w.map { Variable($0) }, bias: b.map { Variable($0) }, axis: c.axis, eps: 1e-5)
            let recorded = try layerNorm(Variable(x, requiresGrad: true), weight: w.map { Variable($0) }, bias: b.map { Variable($0) }, axis: c.axis, eps: 1e-5)
            XCTAssertEqual(fused.shape, recorded.shape)
            XCTAssertFalse(fused.requiresGrad)
            // Both against double precision: the fused kernel no further off than the ops.
            let inner = c.shape[(c.axis < 0 ? c.axis + c.shape.count : c.axis)...].reduce(1, *)
            var exact = [Double](repeating: 0, count: x.count)
            for row in stride(from: 0, to: x.count, by: inner) {
                let v = x.scalars[row..<(row + inner)].map(Double.init)
                let mean = v.reduce(0, +) / Double(inner)
                let spread = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(inner) + 1e-5).squareRoot()
                for i in 0..<inner {
                    exact[row + i] = (v[i] - mean) / spread * Double(w?.scalars[i] ?? 1) + Double(b?.scalars[i] ?? 0)
                }
            }
            func worst(_ t: Tensor) -> Double { zip(t.scalars, exact).map { abs(Double($0) - $1) }.max() ?? 0 }
            XCTAssertLessThanOrEqual(worst(fused.value), Swift.max(worst(recorded.value), 2e-6), "\(c.shape) axis \(c.axis)")
            XCTAssertLessThan(worst(fused.value), k == 0 ? 1e-3 : 2e-5, "\(c.shape) axis \(c.axis)")
            // Each row normalized: mean 0 and variance 1 before the weight (checked without one).
            if c.affine == nil {
                for row in stride(from: 0, to: fused.value.count, by: c.shape.last!) {
                    let v = Array(fused.value.scalars[row..<(row + c.shape.last!)])
                    let mean: Float = v.reduce(0, +) / Float(v.count)
                    let variance: Float = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(v.count)
                    XCTAssertEqual(mean, 0, accuracy: 1e-5)
                    XCTAssertEqual(variance, 1, accuracy: 1e-3)
                }
            }
        }
    }
}
