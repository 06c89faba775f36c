import XCTest
@testable import Engine

/// A convolution that runs with its activation applied block by block gives exactly the values
/// of the activation applied afterwards, on every kernel path; and the ways the patch path cuts
/// work for the threads agree with the direct loops.
final class ConvActivationTests: XCTestCase {
    /// Shapes that take each path: (input, weight, options).
    private let cases: [(String, [Int], [Int], ConvOptions)] = [
        ("1x1, few positions: channels cut in chunks", [1, 192, 7, 7], [1152, 192, 1, 1], ConvOptions()),
        ("1x1, many positions: positions cut in blocks", [1, 16, 56, 56], [32, 16, 1, 1], ConvOptions()),
        ("1x1, two images", [2, 24, 28, 28], [48, 24, 1, 1], ConvOptions()),
        ("1x1 on one position (squeeze-excitation)", [1, 144, 1, 1], [576, 144, 1, 1], ConvOptions()),
        ("1x1 on one position, cut in chunks", [1, 1152, 1, 1], [1152, 1152, 1, 1], ConvOptions()),
        ("3x3 padded on one position", [2, 64, 1, 1], [128, 64, 3, 3], ConvOptions(padding: 1)),
        ("5x5 patches, few positions: shared patch matrix", [1, 32, 7, 7], [96, 32, 5, 5], ConvOptions(padding: 2)),
        ("3x3 stride 2 patches", [1, 3, 64, 64], [32, 3, 3, 3], ConvOptions(stride: 2, padding: 1)),
        ("grouped 3x3", [1, 32, 20, 20], [32, 8, 3, 3], ConvOptions(padding: 1, groups: 4)),
        ("grouped 3x3 stride 2, two images", [2, 64, 15, 15], [64, 16, 3, 3], ConvOptions(stride: 2, padding: 1, groups: 4)),
        ("grouped 3x3, RegNet's late stage", [1, 400, 7, 7], [400, 16, 3, 3], ConvOptions(padding: 1, groups: 25)),
        ("grouped 3x3 stride 3 (im2col)", [1, 32, 20, 20], [32, 8, 3, 3], ConvOptions(stride: 3, padding: 1, groups: 4)),
        ("depthwise stride 1", [1, 64, 28, 28], [64, 1, 3, 3], ConvOptions(padding: 1, groups: 64)),
        ("depthwise stride 2", [1, 48, 29, 29], [48, 1, 5, 5], ConvOptions(stride: 2, padding: 2, groups: 48)),
        ("depthwise stride 3", [1, 16, 30, 30], [16, 1, 3, 3], ConvOptions(stride: 3, padding: 1, groups: 16)),
        ("Winograd, many tiles", [1, 32, 40, 40], [64, 32, 3, 3], ConvOptions(padding: 1)),
        ("Winograd, few tiles, odd size", [1, 64, 13, 13], [96, 64, 3, 3], ConvOptions(padding: 1)),
    ]

    private let activations: [ConvActivation] = [.relu, .clamp(low: 0, high: 6), .clamp(low: -0.5, high: 0.25), .silu, .hardSwish]

    /// Runs `body` on every case's seeded input, weights and bias, with each number of threads.
    private func forEachCase(threads counts: [Int],
                             _ body: (_ name: String, _ x: Tensor, _ w: Tensor, _ b: Tensor, _ o: ConvOptions, _ threads: Int) throws -> Void) rethrows {
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for t in counts {
            Parallel.threads = t
            for (i, (name, xs, ws, o)) in cases.enumerated() {
                try body(name, Tensor.randn(xs, seed: UInt64(i)), Tensor.randn(ws, seed: UInt64(i + 100)),
                         Tensor.randn([ws[0]], seed: UInt64(i + 200)), o, t)
            }
        }
    }

    func testFusedActivationGivesTheSameValuesOnEveryPath() throws {
        try forEachCase(threads: [1, 2, 4]) { name, x, w, bias, o, t in
            for b in [nil, bias] {
                let plain = try conv2d(Variable(x), Variable(w), b.map { Variable($0) }, o)
                for a in activations {
                    let fused = try XCTUnwrap(conv2d(Variable(x), Variable(w), b.map { Variable($0) }, o, then: a))
                    XCTAssertEqual(fused.value, a(plain).value, "\(name), \(t) threads, bias \(b != nil), \(a)")
                }
            }
        }
    }

    func testNoFusingWhileAGradientIsRecorded() throws {
        let x = Variable(Tensor.randn([1, 2, 5, 5], seed: 1), requiresGrad: true)
        XCTAssertNil(try conv2d(x, Variable(Tensor.randn([3, 2, 3, 3], seed: 2)), nil, ConvOptions(), then: .relu))
        let w = Variable(Tensor.randn([3, 2, 3, 3], seed: 2), requiresGrad: true)
        XCTAssertNil(try conv2d(Variable(x.value), w, nil, ConvOptions(), then: .relu))
    }

    /// The cuts the patch path makes when blocks are fewer than threads: results within float
    /// rounding of the seven nested loops, and every output written once.
    func testWorkCutForTheThreadsAgreesWithTheDirectLoops() throws {
        try forEachCase(threads: [2, 3, 8]) { name, x, w, b, o, t in
            let pr = try ConvProblem(input: x.shape, weight: w.shape, bias: b.shape, options: o)
            let fast = ConvKernels.patchForward(x, w, b, pr)
            let direct = try Tensor.conv2dDirect(x, w, b, o)
            XCTAssertTrue(fast.isClose(to: direct, rtol: 1e-4, atol: 1e-4), "\(name), \(t) threads")
        }
        // The two small cases are cut, one way each, into eight pieces.
        let small = try ConvProblem(input: [1, 192, 7, 7], weight: [1152, 192, 1, 1], bias: nil, options: ConvOptions())
        let wide = try ConvProblem(input: [1, 16, 56, 56], weight: [32, 16, 1, 1], bias: nil, options: ConvOptions())
        let s = PatchSplit(small, inline: false), v = PatchSplit(wide, inline: false)
        XCTAssertEqual([s.blocks, s.chunks, s.chunk], [1, 8, 144], "a 7x7 image's 1152 channels in eight chunks")
        XCTAssertEqual([v.blocks, v.chunks, v.block], [8, 1, 392], "a 56x56 image in eight blocks of positions")
        XCTAssertEqual(PatchSplit(small, inline: true).chunks, 1, "small work is not cut")
    }

    /// The same values on any number of threads: how work is cut depends on the shapes only.
    func testValuesDoNotDependOnTheNumberOfThreads() throws {
        try forEachCase(threads: [1]) { name, x, w, b, o, _ in
            let one = try Tensor.conv2d(x, w, b, o)
            for t in [2, 3, 4] {
                Parallel.threads = t
                XCTAssertEqual(try Tensor.conv2d(x, w, b, o), one, "\(name): \(t) threads against 1")
            }
            Parallel.threads = 1
        }
    }

    /// A network run without gradients fuses each convolution with the activation that alone
    /// reads it; its output is the recorded run's, and a convolution asked for by name keeps
    /// its own output.
    func testNetworkFusesOnlyWhereNothingElseSeesTheConvolution() throws {
        let net = Network()
        try net.append("conv1", LayerRegistry.make("conv2d", ["in": .int(3), "out": .int(16), "kernel": .int(3), "padding": .int(1)], seed: 1))
        try net.append("act1", LayerRegistry.make("relu6"))
        try net.append("conv2", LayerRegistry.make("conv2d", ["in": .int(16), "out": .int(16), "kernel": .int(3), "padding": .int(1), "groups": .int(16)], seed: 2))
        try net.append("act2", LayerRegistry.make("silu"))
        // conv3's output is read twice: by the ReLU and by the sum, so it is not fused.
        try net.append("conv3", LayerRegistry.make("conv2d", ["in": .int(16), "out": .int(16), "kernel": .int(1)], seed: 3))
        try net.append("act3", LayerRegistry.make("relu"))
        try net.append("sum", LayerRegistry.make("add"), inputs: ["act3", "conv3"])
        try net.append("conv4", LayerRegistry.make("conv2d", ["in": .int(16), "out": .int(8), "kernel": .int(1)], seed: 4))
        try net.append("act4", LayerRegistry.make("hardswish"))
        let x = Tensor.randn([1, 3, 32, 32], seed: 9)
        // Fused on NCHW, the values are exactly the recorded run's (the blocked path's sums
        // run in another order: BlockedTests compares it within rounding).
        let wasBlocked = BlockedForward.enabled
        BlockedForward.enabled = false
        defer { BlockedForward.enabled = wasBlocked }
        let recorded = try net.forward(Variable(x, requiresGrad: true)).value
        let before = ConvActivation.runs
        let fused = try net(x)
        XCTAssertEqual(ConvActivation.runs - before, 3, "conv1, conv2 and conv4 fused, conv3 not")
        XCTAssertEqual(fused, recorded)
        let asked = try net.forward(Variable(x), outputs: ["conv1", "act1"], context: ForwardContext())
        let direct = try net.forward(Variable(x, requiresGrad: true), outputs: ["conv1", "act1"], context: ForwardContext())
        XCTAssertEqual(asked[0].value, direct[0].value, "conv1 asked for: its output before the activation")
        XCTAssertEqual(asked[1].value, direct[1].value)
        XCTAssertTrue(asked[0].value.scalars.contains { $0 < 0 }, "the pre-activation has negative values")
        XCTAssertEqual(try net(x, upTo: "conv2"), try net.forward(Variable(x, requiresGrad: true), upTo: "conv2").value,
                       "stopping at a convolution gives it without its activation")
    }
}
