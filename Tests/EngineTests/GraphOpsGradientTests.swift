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
}
