import Engine
import Foundation
import Models
@testable import Visualize
import XCTest

/// The render pipeline: parametrizations, transforms, objectives, and the pictures it makes.
final class RenderPipelineTests: XCTestCase {
    /// A picture goes into parameters and comes back out: the start of a dream or a fooling.
    func testParametersForAPictureGiveThePictureBack() throws {
        let picture = Tensor.randn([3, 10, 12], seed: 4).map { min(max(0.5 + 0.2 * $0, 0.01), 0.99) }
        for basis in ImageParametrization.Basis.allCases {
            for range in ImageParametrization.Range.allCases {
                let p = ImageParametrization(basis: basis, range: range, batch: 2, height: 10, width: 12)
                let back = try p.image(Variable(try p.parameters(for: picture))).value
                XCTAssertEqual(back.shape, [2, 3, 10, 12])
                for i in 0..<back.count {
                    XCTAssertEqual(back.scalars[i], picture.scalars[i % picture.count], accuracy: 2e-3, "\(basis) \(range)")
                }
            }
        }
    }

    func testRandomStartIsGreyAndFourierStartIsSmooth() throws {
        let p = ImageParametrization(height: 32, width: 32)
        let image = try p.image(Variable(p.initial(seed: 1))).value
        XCTAssertEqual(image.scalars.reduce(0, +) / Float(image.count), 0.5, accuracy: 0.05)
        // Neighbouring pixels of the Fourier image are more alike than those of a pixel image.
        func roughness(_ t: Tensor) -> Float {
            var s: Float = 0
            for i in 0..<(t.count - 1) where (i + 1) % 32 != 0 { s += abs(t.scalars[i + 1] - t.scalars[i]) }
            return s
        }
        let pixels = ImageParametrization(basis: .pixels, height: 32, width: 32)
        let pixelImage = try pixels.image(Variable(pixels.initial(seed: 1))).value
        let spread = { (t: Tensor) -> Float in let m = t.scalars.reduce(0, +) / Float(t.count); return t.scalars.reduce(0) { $0 + abs($1 - m) } }
        XCTAssertLessThan(roughness(image) / spread(image), roughness(pixelImage) / spread(pixelImage))
    }

    func testNonsenseParametrizationsAndTransformsAreRefused() {
        XCTAssertThrowsError(try ImageParametrization(batch: 0).validate())
        XCTAssertThrowsError(try ImageParametrization(decorrelate: true, channels: 1).validate())
        XCTAssertThrowsError(try ImageParametrization(decayPower: .nan).validate())
        XCTAssertThrowsError(try ImageParametrization(height: 0).validate())
        for t: ImageTransform in [.pad(width: -1, value: 0.5), .jitter(0), .scale([]), .scale([0]), .rotate([.infinity])] {
            XCTAssertThrowsError(try t.validate(), "\(t)")
        }
        XCTAssertNoThrow(try ImageTransform.standard.forEach { try $0.validate() })
        XCTAssertThrowsError(try RenderOptions(learningRate: 0).validate())
    }

    func testTransformsKeepOrChangeTheSizeAsLucids() throws {
        var g = SeededGenerator(seed: 1)
        let x = Variable(Tensor(repeating: 0.3, shape: [1, 3, 20, 20]))
        XCTAssertEqual(try ImageTransform.pad(width: 4, value: 0.5).apply(x, using: &g).shape, [1, 3, 28, 28])
        XCTAssertEqual(try ImageTransform.jitter(5).apply(x, using: &g).shape, [1, 3, 20, 20])
        XCTAssertEqual(try ImageTransform.scale([1.1]).apply(x, using: &g).shape, [1, 3, 22, 22])
        XCTAssertEqual(try ImageTransform.scale([0.9]).apply(x, using: &g).shape, [1, 3, 20, 20])  // padded back
        XCTAssertEqual(try ImageTransform.rotate([10]).apply(x, using: &g).shape, [1, 3, 20, 20])
    }

    func testDiversityGradientMatchesFiniteDifferences() throws {
        let a = Tensor.randn([3, 4, 2, 3], seed: 7)
        let (v, g) = gramDiversity(a)
        XCTAssertGreaterThan(v, 0)
        for i in stride(from: 0, to: a.count, by: 5) {
            var plus = a, minus = a
            plus.scalars[i] += 1e-3; minus.scalars[i] -= 1e-3
            let numeric = (gramDiversity(plus).0 - gramDiversity(minus).0) / 2e-3
            XCTAssertEqual(g.scalars[i], numeric, accuracy: 2e-3 + 2e-2 * abs(numeric))
        }
        // Identical images are as alike as can be: N - 1 for each.
        let same = Tensor(shape: [2, 4, 2, 3], scalars: Array(repeating: Array(a.scalars[0..<24]), count: 2).flatMap { $0 })
        XCTAssertEqual(gramDiversity(same).0, 1, accuracy: 1e-4)
    }

    func testObjectivesAddAndScale() {
        let o = Objective(.channel(layer: "conv2", channel: 3)) - 0.1 * Objective(.diversity("conv1"))
        XCTAssertEqual(o.description, "channel(\"conv2\", 3) - 0.1 * diversity(\"conv1\")")
        XCTAssertEqual((-o).terms.map(\.weight), [-1, 0.1])
    }

    func testRenderClimbsTheObjectiveAndStopsCleanly() throws {
        let net = try defaultModel()
        var p = try defaultParametrization(for: net)
        XCTAssertFalse(p.decorrelate)  // a gray network
        p.basis = .fourier
        let options = RenderOptions(parametrization: p, transforms: [.jitter(2)], steps: 40, learningRate: 0.05)
        let r = try render(net, Objective(.channel(layer: "conv2", channel: 5)), options: options)
        XCTAssertEqual(r.steps, 40)
        XCTAssertGreaterThan(r.history.suffix(5).reduce(0, +) / 5, 2 * max(r.history[0], 0.01))
        XCTAssertEqual(r.image.shape, [1, 28, 28])
        XCTAssertTrue(r.images.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
        // Cancelling keeps the picture so far.
        var calls = 0
        let stopped = try render(net, Objective(.logit(3)), options: options,
                                 control: LoopControl(isCancelled: { calls += 1; return calls > 6 }))
        XCTAssertTrue(stopped.cancelled)
        XCTAssertLessThan(stopped.steps, 40)
        XCTAssertEqual(stopped.image.shape, [1, 28, 28])
        // What a cancelled render keeps is the picture reached: the same as a shorter render's.
        var short = options
        short.steps = stopped.steps
        let shorter = try render(net, Objective(.logit(3)), options: short)
        XCTAssertEqual(stopped.images, shorter.images)
        XCTAssertEqual(stopped.history, shorter.history)
        // Bad objectives are refused before the first step, saying what exists.
        XCTAssertThrowsError(try render(net, Objective(.channel(layer: "conv2", channel: 99)), options: options)) {
            XCTAssertTrue("\($0)".contains("32 channels"), "\($0)")
        }
        XCTAssertThrowsError(try render(net, Objective(.layer("conv7")), options: options)) {
            XCTAssertTrue("\($0)".contains("conv1"), "\($0)")
        }
        XCTAssertThrowsError(try render(net, Objective(.logit(10)), options: options))
    }

    /// Four images of one channel with the diversity term differ more than four without it.
    func testDiversityMakesABatchDiffer() throws {
        let net = try defaultModel()
        var p = try defaultParametrization(for: net, batch: 3)
        p.basis = .pixels
        let options = RenderOptions(parametrization: p, transforms: [], steps: 30, learningRate: 0.05)
        let base = Objective(.channel(layer: "conv2", channel: 5))
        func similarity(_ o: Objective) throws -> Float {
            let r = try render(net, o, options: options)
            let outs = try net.forward(Variable(try NetworkInput(net).normalizeBatch(r.images)), upTo: "conv2").value
            return gramDiversity(outs).0
        }
        let plain = try similarity(base), diverse = try similarity(base - 2 * Objective(.diversity("conv2")))
        print("diversity: Gram cosine over the batch \(plain) without the term, \(diverse) with it")
        XCTAssertLessThan(diverse, plain - 0.1)
    }
}

/// A class model made on EfficientNet-Lite0 with classviz's recipe is recognised by
/// EfficientNet-Lite1, which did not make it (in its top 5 %), and survives random jitter, scale and rotation;
/// the plain Simonyan image does neither. Fewer steps than the default keep it cheap.
final class ClassModelQualityTests: XCTestCase {
    func testClassModelTransfersAndIsRobust() throws {
        let lite0 = try Zoo.load("efficientnet-lite0"), lite1 = try Zoo.load("efficientnet-lite1")
        let lemon = try classIndex(named: "lemon", in: lite0)
        let r = try render(lite0, Objective(.logit(lemon)), options: RenderOptions(parametrization: try defaultParametrization(for: lite0), steps: 96))
        let plain = try classModel(lite0, class: lemon, steps: 40)
        func rankOnLite1(_ image: Tensor) throws -> Int {
            let big = try resample(Variable(try image.reshaped([1] + image.shape)), height: 240, width: 240,
                                   map: .resize(height: 224, width: 224, toHeight: 240, width: 240)).value
            let s = try NetworkInput(lite1).scores(try NetworkInput(lite1).normalizeBatch(big)).scalars
            return s.filter { $0 > s[lemon] }.count + 1
        }
        func robustProbability(_ image: Tensor) throws -> Float {
            var g = SeededGenerator(seed: 9)
            let input = NetworkInput(lite0)
            var total: Float = 0
            let transforms: [ImageTransform] = [.jitter(16), .scale([0.9, 0.95, 1.05, 1.1]), .rotate([-10, -5, 5, 10])]
            for _ in 0..<4 {
                var x = Variable(try image.reshaped([1] + image.shape))
                for t in transforms { x = try t.apply(x, using: &g) }
                x = try resample(x, height: 224, width: 224, map: .resize(height: x.shape[2], width: x.shape[3], toHeight: 224, width: 224))
                let s = try input.scores(try input.normalizeBatch(x.value)).scalars
                let m = s.max()!, e = s.map { exp($0 - m) }
                total += e[lemon] / e.reduce(0, +) / 4
            }
            return total
        }
        let (rank, robust) = (try rankOnLite1(r.image), try robustProbability(r.image))
        let (plainRank, plainRobust) = (try rankOnLite1(plain.image), try robustProbability(plain.image))
        print("lemon class model: Lite1 rank \(rank), Lite0 p under transforms \(robust); plain method: rank \(plainRank), p \(plainRobust)")
        // Among Lite1's top 50 of 1000, the top 5 % (the plain image is in the hundreds). The
        // ascent amplifies rounding, and the rank moves with it: on one 2-core AMD EPYC the same
        // recipe has ranked the lemon 7th, 10th, 22nd and 29th as only the order of additions
        // changed (how work is cut for the threads, one thread or two, fused multiply-adds or not),
        // and within the top 5 on another machine. The rank of one render is known to that spread.
        XCTAssertLessThanOrEqual(rank, 50)
        XCTAssertGreaterThan(robust, 0.5)
        XCTAssertGreaterThan(plainRank, rank)
        XCTAssertLessThan(plainRobust, robust)
    }
}
