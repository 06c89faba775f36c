import XCTest
@testable import Engine

/// Every op's backward pass against central finite differences, on small random shapes.
final class GradientCheckTests: XCTestCase {
    func check(_ name: String, _ inputs: [Tensor], tolerance: Float = 1e-2, file: StaticString = #filePath, line: UInt = #line,
               _ f: @escaping ([Variable]) throws -> Variable) {
        do {
            for r in try checkGradients(at: inputs, of: f, tolerance: tolerance) {
                XCTAssertTrue(r.passed, "\(name): input \(r.input) gradient off by \(r.maxAbsoluteError) at \(r.worstIndex) (analytic \(r.analytic), numeric \(r.numeric))", file: file, line: line)
            }
        } catch {
            XCTFail("\(name): \(error)", file: file, line: line)
        }
    }

    func randn(_ shape: [Int], _ seed: UInt64) -> Tensor { Tensor.randn(shape, seed: seed) }

    func testConvolutionCoversStridePaddingDilationGroups() {
        let cases: [(String, [Int], [Int], ConvOptions)] = [
            ("3x3 pad 1", [1, 2, 5, 5], [3, 2, 3, 3], ConvOptions(padding: 1)),
            ("stride 2", [2, 2, 6, 5], [3, 2, 3, 3], ConvOptions(stride: 2, padding: 1)),
            ("dilation 2", [1, 2, 7, 7], [2, 2, 3, 3], ConvOptions(padding: 2, dilation: 2)),
            ("groups 2", [1, 4, 5, 5], [4, 2, 3, 3], ConvOptions(padding: 1, groups: 2)),
            ("depthwise x2", [1, 3, 5, 6], [6, 1, 3, 3], ConvOptions(stride: 2, padding: 1, groups: 3)),
            ("1x1", [2, 3, 4, 4], [5, 3, 1, 1], ConvOptions()),
            ("asymmetric same", [1, 2, 6, 6], [3, 2, 3, 3], ConvOptions(stride: (2, 2), padding: (0, 0, 1, 1))),
            ("non-square 3x2 stride (2,1)", [1, 2, 7, 5], [2, 2, 3, 2], ConvOptions(stride: (2, 1), padding: (1, 0, 1, 0))),
        ]
        for (i, (name, xs, ws, o)) in cases.enumerated() {
            let s = UInt64(i * 10)
            check("conv2d \(name)", [randn(xs, s), randn(ws, s + 1), randn([ws[0]], s + 2)]) { v in
                try conv2d(v[0], v[1], v[2], o)
            }
        }
    }

    func testActivations() {
        let x = randn([2, 3, 4], 1)
        check("relu", [x]) { relu($0[0]) }
        check("leaky relu", [x]) { leakyRelu($0[0], slope: 0.1) }
        check("sigmoid", [x]) { sigmoid($0[0]) }
        check("tanh", [x]) { tanh($0[0]) }
        check("relu6", [x.map { $0 * 4 + 2 }]) { clip($0[0], min: 0, max: 6) }
        check("softmax", [x]) { try softmax($0[0], axis: 1) }
        check("log softmax", [x]) { try logSoftmax($0[0], axis: -1) }
        check("cross entropy", [randn([4, 5], 2)]) { try crossEntropy($0[0], targets: [0, 4, 2, 2]) }
        for f in ElementwiseFunction.allCases {
            let positive = x.map { abs($0) + 0.5 }
            check("\(f)", [positive]) { elementwise(f, $0[0]) }
        }
        check("power", [x.map { abs($0) + 0.5 }]) { power($0[0], 1.5) }
    }

    func testPooling() {
        // A permutation keeps max-pool windows free of ties (a tie has no derivative).
        var g = SeededGenerator(seed: 3)
        let perm = Array(0..<(2 * 2 * 7 * 7)).shuffled(using: &g).map { Float($0) * 0.1 }
        let x = Tensor(shape: [2, 2, 7, 7], scalars: perm)
        check("max pool 2", [x]) { try maxPool2d($0[0], PoolOptions(kernel: 2)) }
        check("max pool 3 s2 p1", [x]) { try maxPool2d($0[0], PoolOptions(kernel: 3, stride: 2, padding: 1)) }
        check("max pool ceil", [x]) { try maxPool2d($0[0], PoolOptions(kernel: 3, stride: 2, ceilMode: true)) }
        let y = randn([2, 2, 7, 7], 4)
        check("avg pool", [y]) { try avgPool2d($0[0], PoolOptions(kernel: 2)) }
        check("avg pool pad excl", [y]) { try avgPool2d($0[0], PoolOptions(kernel: 3, stride: 1, padding: 1, countIncludePad: false)) }
        check("avg pool ceil", [y]) { try avgPool2d($0[0], PoolOptions(kernel: 3, stride: 2, ceilMode: true)) }
        check("adaptive", [randn([1, 2, 5, 7], 5)]) { try adaptiveAvgPool2d($0[0], outputSize: (3, 2)) }
        check("global", [y]) { try globalAvgPool2d($0[0]) }
    }

    func testNormalization() {
        let x = randn([2, 6, 3, 3], 6)
        check("lrn", [x]) { try localResponseNorm($0[0], size: 5, alpha: 0.5, beta: 0.75, k: 2) }
        let mean = randn([6], 7).map { $0 * 0.1 }, variance = randn([6], 8).map { abs($0) + 0.5 }
        for training in [false, true] {
            check("batch norm training \(training)", [x, randn([6], 9), randn([6], 10)]) { v in
                try batchNorm(v[0], weight: v[1], bias: v[2], runningMean: mean, runningVar: variance, training: training).output
            }
        }
        check("dropout", [x]) { v in
            var g = SeededGenerator(seed: 11)
            return try dropout(v[0], probability: 0.3, training: true, generator: &g)
        }
    }

    func testLinearAlgebraAndBroadcasting() {
        check("linear", [randn([3, 7], 12), randn([5, 7], 13), randn([5], 14)]) { try linear($0[0], $0[1], $0[2]) }
        check("matmul", [randn([3, 4], 15), randn([4, 5], 16)]) { try matmul($0[0], $0[1]) }
        check("matmul vector", [randn([3, 4], 15), randn([4], 16)]) { try matmul($0[0], $0[1]) }
        check("batched matmul", [randn([2, 3, 4], 17), randn([4, 2], 18)]) { try matmul($0[0], $0[1]) }
        let pairs: [([Int], [Int])] = [([2, 3, 4, 5], [3, 1, 1]), ([2, 3], [3]), ([4, 1], [1, 5]), ([3], [])]
        for (a, b) in pairs {
            let ta = randn(a, 19), tb = randn(b, 20).map { $0 > 0 ? $0 + 0.5 : $0 - 0.5 }
            check("add \(a) \(b)", [ta, tb]) { try add($0[0], $0[1]) }
            check("sub \(a) \(b)", [ta, tb]) { try subtract($0[0], $0[1]) }
            check("mul \(a) \(b)", [ta, tb]) { try multiply($0[0], $0[1]) }
            check("div \(a) \(b)", [ta, tb]) { try divide($0[0], $0[1]) }
        }
        check("negate", [randn([3], 21)]) { negate($0[0]) }
    }

    func testReductionsAndShapes() {
        let x = randn([2, 3, 4], 22)
        check("sum", [x]) { try sum($0[0]) }
        check("sum axis", [x]) { try sum($0[0], axis: 1) }
        check("mean", [x]) { try mean($0[0]) }
        check("mean axis keep", [x]) { try mean($0[0], axis: 2, keepDims: true) }
        check("max", [x]) { try max($0[0]) }
        check("max axis", [x]) { try max($0[0], axis: 1) }
        check("concat", [randn([2, 2, 3], 23), randn([2, 1, 3], 24), randn([2, 3, 3], 25)]) { try concat($0, axis: 1) }
        check("flatten", [x]) { try flatten($0[0]) }
        check("reshape", [x]) { try reshape($0[0], [4, -1]) }
        check("transpose", [randn([3, 5], 26)]) { try transpose($0[0]) }
        check("pad", [randn([1, 2, 3, 3], 27)]) { try pad2d($0[0], (1, 0, 2, 1)) }
        check("slice", [x]) { try slice($0[0], [.at(1), .range(start: 0, end: nil, step: 2), .range(start: -3, end: -1, step: 1)]) }
    }

    func testACheckThatCanFail() throws {
        // A deliberately wrong analytic gradient must be caught.
        let x = randn([5], 30)
        let results = try checkGradients(at: [x], of: { try sum(multiply($0[0], $0[0])) },
                                         analyticOverride: [x.map { 3 * $0 }])
        XCTAssertFalse(results[0].passed)
    }
}
