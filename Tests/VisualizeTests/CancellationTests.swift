import Engine
import Foundation
import Imaging
import XCTest
@testable import Visualize

/// Every iterative method stops when cancelled and returns what it has, flagged as cancelled.
final class CancellationTests: XCTestCase {
    /// A control that cancels once `after` steps have been reported, and counts the reports.
    final class Canceller {
        let after: Int
        var reports = 0
        init(after: Int) { self.after = after }
        var control: LoopControl {
            LoopControl(progress: { [self] _, _, _ in reports += 1 }, isCancelled: { [self] in reports >= after })
        }
    }

    func testOptimizationsKeepTheirPartialResult() throws {
        let net = try defaultModel()
        let image = try sample("shirt")
        let runs: [(String, (LoopControl) throws -> OptimizationResult)] = [
            ("classModel", { try classModel(net, class: 6, steps: 100, control: $0) }),
            ("maximize", { try maximize(net, layer: "conv2", target: .channel(1), steps: 100, start: image, control: $0) }),
            ("dream", { try dream(net, image, layer: "conv1", steps: 100, control: $0) }),
        ]
        for (name, run) in runs {
            let c = Canceller(after: 3)
            let r = try run(c.control)
            XCTAssertTrue(r.cancelled, name)
            XCTAssertEqual(r.steps, 3, name)
            XCTAssertEqual(r.history.count, 3, name)
            XCTAssertEqual(r.image.shape, [1, 28, 28], name)
            XCTAssertTrue(r.image.scalars.allSatisfy(\.isFinite), name)
            // The partial result is the state after three steps: three more from it are not the start.
            XCTAssertNotEqual(r.input, try NetworkInput(net).batch(image), name)
        }
    }

    /// Renders side by side stop together on Ctrl-C, each keeping its picture so far, and the
    /// calling thread alone reports their progress.
    func testRendersSideBySideStopTogether() throws {
        let net = try defaultModel()
        var options = RenderOptions(parametrization: try defaultParametrization(for: net), transforms: [], steps: 100_000)
        options.parametrization.decorrelate = false
        let started = Date()
        var reports = 0
        let caller = Thread.current
        var otherThreads = 0
        let control = LoopControl(progress: { done, total, _ in
            reports += 1
            if Thread.current != caller { otherThreads += 1 }
            XCTAssertEqual(total, 3 * 100_000)
        }, isCancelled: { Date().timeIntervalSince(started) > 0.5 })
        let results = try renderEach(net, [Objective(.logit(1)), Objective(.logit(2)), Objective(.logit(3))], options: options, control: control)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "Ctrl-C stops every render")
        XCTAssertFalse(results.isEmpty)
        for r in results {
            XCTAssertTrue(r.cancelled)
            XCTAssertLessThan(r.steps, 100_000)
            XCTAssertEqual(r.images.shape, [1, 1, 28, 28])
        }
        XCTAssertGreaterThan(reports, 0)
        XCTAssertEqual(otherThreads, 0)
    }

    /// Ctrl-C keeps the best picture so far: the image of the step with the highest objective,
    /// which is what a run stopped just before that step's update gives.
    func testACancelledClassModelKeepsTheBestPictureSoFar() throws {
        let net = try defaultModel()
        let c = Canceller(after: 5)
        let cancelled = try classModel(net, class: 2, steps: 50, regularizers: Regularizers(jitter: 2), control: c.control)
        let short = try classModel(net, class: 2, steps: 5, regularizers: Regularizers(jitter: 2))
        XCTAssertEqual(cancelled.history, short.history)
        let best = cancelled.history.indices.max { cancelled.history[$0] < cancelled.history[$1] }!
        XCTAssertEqual(cancelled.input, try classModel(net, class: 2, steps: best, regularizers: Regularizers(jitter: 2)).input)
    }

    /// The same for a render; an inversion stops with its best (lowest) objective's image.
    func testCancelledRendersAndInversionsKeepTheirBestPicture() throws {
        let net = try defaultModel()
        var options = RenderOptions(parametrization: try defaultParametrization(for: net), transforms: [.jitter(2)], steps: 60)
        options.parametrization.decorrelate = false
        let c = Canceller(after: 12)
        let stopped = try render(net, Objective(.logit(4)), options: options, control: c.control)
        let best = stopped.history.indices.max { stopped.history[$0] < stopped.history[$1] }!
        options.steps = best
        XCTAssertEqual(stopped.images, try render(net, Objective(.logit(4)), options: options).images)

        let image = try sample("shirt")
        var o = InversionOptions()
        o.steps = 40
        let ci = Canceller(after: 8)
        let inverted = try invert(net, image, layer: "conv2", options: o, control: ci.control)
        XCTAssertTrue(inverted.cancelled)
        XCTAssertEqual(inverted.history.count, 8)
        XCTAssertLessThan(inverted.error, 1, "the best image so far, closer to the code than the noise it started from")
    }

    func testFoolingSmoothGradOcclusionAndTopPatchesStopToo() throws {
        let net = try defaultModel()
        let image = try sample("sneaker")

        let f = try fool(net, image, class: 0, steps: 500, learningRate: 0.001, control: Canceller(after: 2).control)
        XCTAssertTrue(f.cancelled)
        XCTAssertNil(f.succeededAt)
        XCTAssertEqual(f.history.count, 3)  // the start, and after each of the two steps

        let s = try smoothgrad(net, image, class: 7, samples: 40, control: Canceller(after: 4).control)
        XCTAssertTrue(s.cancelled)
        XCTAssertEqual(s.completed, 4)
        XCTAssertGreaterThan(s.map.max(), 0)

        let o = try occlusion(net, image, class: 7, window: 4, stride: 1, batchSize: 10, control: Canceller(after: 2).control)
        XCTAssertTrue(o.cancelled)
        XCTAssertEqual(o.completed, 20)
        XCTAssertEqual(o.total, 25 * 25)

        let images = batchSlice(try fashionTestSet().images, 0..<1000)
        let t = try topPatches(net, layer: "conv1", channel: 0, images: images, k: 3, batchSize: 100, control: Canceller(after: 2).control)
        XCTAssertTrue(t.cancelled)
        XCTAssertEqual(t.imagesSeen, 200)
        XCTAssertEqual(t.patches.count, 3)
        XCTAssertTrue(t.patches.allSatisfy { $0.imageIndex < 200 })
    }

    func testIntegratedGradientsThrowWhenCancelled() throws {
        let net = try defaultModel()
        XCTAssertThrowsError(try integratedGradients(net, try sample("bag"), class: 8, isCancelled: { true })) { e in
            XCTAssertEqual(e as? EngineError, .cancelled)
        }
    }

    func testCancellationBetweenLayersOfAForwardPassAlsoStops() throws {
        // A flag that turns on during a step (inside the forward pass) stops that step.
        let net = try defaultModel()
        var polls = 0
        let control = LoopControl(isCancelled: { polls += 1; return polls > 20 })
        let r = try classModel(net, class: 3, steps: 100, control: control)
        XCTAssertTrue(r.cancelled)
        XCTAssertLessThan(r.steps, 100)
        XCTAssertEqual(r.history.count, r.steps)
    }
}
