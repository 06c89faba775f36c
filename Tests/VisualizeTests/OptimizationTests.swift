import Engine
import Foundation
import Imaging
import XCTest
@testable import Visualize

/// Class models, activation maximization, deep dream, inversion and fooling on the default model.
final class OptimizationTests: XCTestCase {
    func testClassModelsRaiseTheScoreAndBecomeTheTopClassForMostClasses() throws {
        let net = try defaultModel()
        var wins = 0, slowest = 0.0
        for c in 0..<10 {
            let started = Date()
            let r = try classModel(net, class: c, steps: 200, learningRate: 1, l2: 0.01)
            slowest = max(slowest, Date().timeIntervalSince(started))
            XCTAssertEqual(r.steps, 200)
            XCTAssertEqual(r.history.count, 200)
            XCTAssertFalse(r.cancelled)
            XCTAssertEqual(r.image.shape, [1, 28, 28])
            XCTAssertTrue(r.image.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
            // The objective S_c - λ‖I‖² climbs; so does the score itself, from the zero image.
            let objective = r.history
            XCTAssertGreaterThan(objective[199], objective[0] + 1, "class \(c)")
            let scores = try net(r.input)
            let start = try net(Tensor(zeros: [1, 1, 28, 28]))
            XCTAssertGreaterThan(scores.scalars[c], start.scalars[c], "class \(c)")
            if scores.argmax() == c { wins += 1 }
        }
        print("classModel: 200 steps in at most \(String(format: "%.3f", slowest)) s; target on top for \(wins) of 10 classes")
        XCTAssertGreaterThanOrEqual(wins, 8)
        XCTAssertLessThan(slowest, 5)
    }

    func testRegularizedClassModelsStillClimb() throws {
        let net = try defaultModel()
        let plain = try classModel(net, class: 1, steps: 60)
        let regularized = try classModel(net, class: 1, steps: 60,
                                         regularizers: Regularizers(jitter: 2, blurEvery: 4, blurSigma: 0.5, clipValues: 0.2,
                                                                    clipGradients: 0.1, seed: 3))
        XCTAssertTrue(regularized.input.scalars.allSatisfy(\.isFinite))
        XCTAssertGreaterThan(try net(regularized.input).scalars[1], try net(Tensor(zeros: [1, 1, 28, 28])).scalars[1])
        XCTAssertNotEqual(plain.input, regularized.input)
        // Clipping small values leaves at least a fifth of the pixels at zero (the mean image).
        XCTAssertGreaterThanOrEqual(regularized.input.scalars.filter { $0 == 0 }.count, 784 / 5)
        XCTAssertThrowsError(try classModel(net, class: 1, steps: 1, regularizers: Regularizers(clipValues: 1)))
    }

    func testMaximizingAChannelOrAUnitRaisesIt() throws {
        let net = try defaultModel()
        let start = try sample("pullover")
        func channelMean(_ x: Tensor, _ c: Int) throws -> Float {
            let a = try net(x, upTo: "conv2")
            return a.scalars[(c * 196)..<((c + 1) * 196)].reduce(0, +) / 196
        }
        let startBatch = try NetworkInput(net).batch(start)
        let r = try maximize(net, layer: "conv2", target: .channel(5), steps: 50, learningRate: 0.5, start: start)
        XCTAssertGreaterThan(try channelMean(r.input, 5), try channelMean(startBatch, 5) + 1)
        XCTAssertGreaterThan(r.history.last ?? 0, r.history.first ?? 0)

        let u = try maximize(net, layer: "fc1", target: .unit(channel: 17, y: 0, x: 0), steps: 50, learningRate: 0.5, start: start)
        XCTAssertGreaterThan(try net(u.input, upTo: "fc1").scalars[17], try net(startBatch, upTo: "fc1").scalars[17])
        XCTAssertThrowsError(try maximize(net, layer: "conv2", target: .unit(channel: 0, y: 14, x: 0)))
        XCTAssertThrowsError(try maximize(net, layer: "conv2", target: .channel(40)))
        XCTAssertThrowsError(try maximize(net, layer: "fc3", target: .channel(0))) { e in
            XCTAssertTrue("\(e)".contains("did you mean"), "\(e)")
        }
    }

    func testDreamRaisesTheLayersActivationNormAndStaysAPicture() throws {
        let net = try defaultModel()
        let image = try sample("ankle-boot")
        let r = try dream(net, image, layer: "conv2", steps: 20)
        XCTAssertEqual(r.history.count, 20)
        XCTAssertGreaterThan(r.history[19], r.history[0] * 1.2)
        // Kept within the normalized images of 0 and 1, so the picture needs no clamping.
        let input = NetworkInput(net)
        XCTAssertEqual(input.unclampedPicture(r.input).min(), r.image.min(), accuracy: 1e-5)
        XCTAssertEqual(input.unclampedPicture(r.input).max(), r.image.max(), accuracy: 1e-5)
        XCTAssertGreaterThan(maxDifference(r.image, image), 0.05)
    }

    func testADivergingOptimisationIsAnErrorThatSaysWhatToDo() throws {
        let net = try defaultModel()
        XCTAssertThrowsError(try classModel(net, class: 0, steps: 100, learningRate: 1e30)) { e in
            XCTAssertTrue("\(e)".contains("smaller learning rate"), "\(e)")
        }
    }

    func testTotalVariationAndAlphaNormGradientsMatchFiniteDifferences() throws {
        let x = Tensor.randn([1, 2, 4, 5], seed: 4)
        for (beta, alpha) in [(Float(2), Float(6)), (1.5, 3)] {
            var g = Tensor(zeros: x.shape)
            let tv = addTotalVariationGradient(x, beta: beta, weight: 1, to: &g)
            var ga = Tensor(zeros: x.shape)
            let norm = addAlphaNormGradient(x, alpha: alpha, weight: 1, to: &ga)
            XCTAssertGreaterThan(tv, 0)
            XCTAssertGreaterThan(norm, 0)
            for i in [0, 7, 13, 22, 39] {
                var plus = x, minus = x
                let h: Float = 1e-3
                plus.scalars[i] += h; minus.scalars[i] -= h
                var scratch = Tensor(zeros: x.shape)
                let numericTV = (addTotalVariationGradient(plus, beta: beta, weight: 1, to: &scratch)
                                 - addTotalVariationGradient(minus, beta: beta, weight: 1, to: &scratch)) / (2 * h)
                let numericNorm = (addAlphaNormGradient(plus, alpha: alpha, weight: 1, to: &scratch)
                                   - addAlphaNormGradient(minus, alpha: alpha, weight: 1, to: &scratch)) / (2 * h)
                XCTAssertEqual(g.scalars[i], numericTV, accuracy: 2e-3 + 1e-2 * abs(numericTV))
                XCTAssertEqual(ga.scalars[i], numericNorm, accuracy: 2e-3 + 1e-2 * abs(numericNorm))
            }
        }
    }

    func testFoolingStopsWhenTheNetworkCallsTheImageTheTarget() throws {
        let net = try defaultModel()
        let image = try sample("sneaker")
        XCTAssertEqual(try prediction(net, image), 7)
        let r = try fool(net, image, class: 5, steps: 300, learningRate: 0.01)
        let step = try XCTUnwrap(r.succeededAt)
        print("fool: sneaker called a sandal after \(step) steps")
        XCTAssertEqual(r.prediction, 5)
        XCTAssertEqual(try prediction(net, r.image), 5)
        XCTAssertEqual(r.history.count, step + 1)
        XCTAssertGreaterThan(r.probability, r.history[0])
        // Adam moved no pixel by much more than lr per step, and the image stayed a picture.
        XCTAssertLessThanOrEqual(maxDifference(r.image, image), 1.25 * 0.01 * Float(step) + 1e-5)
        XCTAssertTrue(r.image.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
        // Already the target: no step needed.
        XCTAssertEqual(try fool(net, image, class: 7).succeededAt, 0)
    }
}
