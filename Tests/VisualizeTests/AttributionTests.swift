import Engine
import Foundation
import Imaging
import XCTest
@testable import Visualize

/// Saliency, SmoothGrad, integrated gradients, Grad-CAM and occlusion on the default model.
final class AttributionTests: XCTestCase {
    let samples = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]

    /// Mean of `map` [1, H, W] over the pixels where `image` satisfies `where`.
    func mean(_ map: Tensor, _ image: Tensor, where keep: (Float) -> Bool) -> Float {
        let picked = zip(map.scalars, image.scalars).filter { keep($0.1) }.map(\.0)
        return picked.reduce(0, +) / Float(max(picked.count, 1))
    }

    func testSaliencyIsLargerOnTheObjectThanOnTheEmptyBackground() throws {
        // Over the 50 bundled samples (five per class): the mean saliency on the object's pixels
        // (> 0.1) beats the mean on the empty background (exactly 0) for most images and on
        // average. Not for every image: the network also reads the empty background (zero there
        // is -0.81 after normalization), and some bags have background gradients as large.
        let net = try defaultModel()
        var wins = 0, objectTotal: Float = 0, backgroundTotal: Float = 0
        for (c, label) in samples.enumerated() {
            for i in 1...5 {
                let image = try sample(label, i)
                let s = try saliency(net, image, class: c)
                XCTAssertEqual(s.shape, [1, 28, 28])
                XCTAssertGreaterThanOrEqual(s.min(), 0)
                let object = mean(s, image) { $0 > 0.1 }, background = mean(s, image) { $0 == 0 }
                if object > background { wins += 1 }
                objectTotal += object; backgroundTotal += background
            }
        }
        print("saliency: object above background for \(wins) of 50 samples; means \(objectTotal / 50) vs \(backgroundTotal / 50)")
        XCTAssertGreaterThanOrEqual(wins, 40)
        XCTAssertGreaterThan(objectTotal, 1.15 * backgroundTotal)
    }

    func testSaliencyIsTheDisplaySpaceGradientOfTheScore() throws {
        // Finite differences of the score in display units at the strongest pixel.
        let net = try defaultModel()
        let image = try sample("bag")
        let s = try saliency(net, image, class: 8)
        let i = s.argmax()
        var plus = image, minus = image
        let h: Float = 2e-3
        plus.scalars[i] += h; minus.scalars[i] -= h
        let numeric = (try score(net, plus, 8) - score(net, minus, 8)) / (2 * h)
        XCTAssertEqual(abs(numeric), s.scalars[i], accuracy: 0.05 * s.scalars[i])
    }

    func testGradCAMAgreesWithCaptum() throws {
        let net = try defaultModel()
        let cases = [("sneaker-1", 7), ("sneaker-1", 5), ("coat-2", 4), ("bag-1", 8), ("ankle-boot-1", 9), ("trouser-1", 1)]
        var nonzero = 0
        for (name, c) in cases {
            let image = try reference("input/\(name)")
            for layer in ["conv2", "pool2"] {
                let cam = try gradcam(net, image, class: c, layer: layer)
                let coarse = try reference("gradcam_coarse/\(layer)/\(name)/\(c)")
                let map = try reference("gradcam/\(layer)/\(name)/\(c)")
                let scale = max(map.max(), 1e-3)
                XCTAssertLessThan(maxDifference(cam.coarse, coarse), 1e-4 * scale + 1e-6, "\(layer) \(name) \(c)")
                XCTAssertLessThan(maxDifference(cam.map, map), 1e-4 * scale + 1e-6, "\(layer) \(name) \(c)")
                XCTAssertEqual(cam.weights.count, 32)
                if map.max() > 0 { nonzero += 1 }
            }
        }
        XCTAssertGreaterThanOrEqual(nonzero, 6, "the fixtures should exercise maps that are not all zero")
    }

    func testIntegratedGradientsAgreeWithCaptum() throws {
        let net = try defaultModel()
        for (name, c) in [("sneaker-1", 7), ("sneaker-1", 5), ("coat-2", 4), ("bag-1", 8), ("ankle-boot-1", 9)] {
            let image = try reference("input/\(name)")
            for (method, captum) in [(IntegrationMethod.gaussLegendre, "gausslegendre"), (.riemannRight, "riemann_right")] {
                let ig = try integratedGradients(net, image, class: c, steps: 50, method: method)
                let expected = try reference("ig/\(captum)/\(name)/\(c)")
                XCTAssertLessThan(maxDifference(ig.attributions, expected), 1e-3 * expected.max(), "\(captum) \(name) \(c)")
            }
        }
    }

    func testIntegratedGradientsAreComplete() throws {
        // Σ attributions = S_c(I) - S_c(baseline), up to the quadrature's error, for every rule.
        let net = try defaultModel()
        let image = try sample("coat", 2)
        for method in IntegrationMethod.allCases {
            let ig = try integratedGradients(net, image, class: 4, steps: 64, method: method, batchSize: 20)
            let gap = ig.score - ig.baselineScore
            XCTAssertLessThan(abs(ig.convergenceDelta), 0.02 * abs(gap), "\(method): delta \(ig.convergenceDelta) of \(gap)")
        }
        XCTAssertThrowsError(try integratedGradients(try handNetwork(), handImage, class: 0, baseline: Tensor(zeros: [1, 3, 4])))
        // A baseline equal to the image attributes nothing.
        let none = try integratedGradients(net, image, class: 4, baseline: image, steps: 8)
        XCTAssertEqual(none.attributions.max(), 0)
        XCTAssertEqual(none.attributions.min(), 0)
    }

    func testGaussLegendreRuleMatchesKnownNodes() {
        // Three nodes on [-1, 1]: 0, ±√(3/5), weights 8/9, 5/9; on [0, 1] halved and shifted.
        let (nodes, weights) = IntegrationMethod.gaussLegendre.rule(steps: 3)
        let r = (3.0 / 5).squareRoot()
        for (a, b) in zip(nodes, [0.5 * (1 - r), 0.5, 0.5 * (1 + r)]) { XCTAssertEqual(a, b, accuracy: 1e-14) }
        for (a, b) in zip(weights, [5.0 / 18, 8.0 / 18, 5.0 / 18]) { XCTAssertEqual(a, b, accuracy: 1e-14) }
        // Exact for x^(2n-1) with n = 20: ∫₀¹ x³⁹ dx = 1/40.
        let (x, w) = IntegrationMethod.gaussLegendre.rule(steps: 20)
        XCTAssertEqual(zip(x, w).reduce(0) { $0 + $1.1 * pow($1.0, 39) }, 1.0 / 40, accuracy: 1e-13)
    }

    func testSmoothGradWithoutNoiseIsSaliencyAndIsReproducible() throws {
        let net = try defaultModel()
        let image = try sample("dress")
        let plain = try saliency(net, image, class: 3)
        let noiseless = try smoothgrad(net, image, class: 3, samples: 4, noise: 0)
        XCTAssertTrue(noiseless.map.isClose(to: plain, rtol: 1e-4, atol: 1e-6))
        let a = try smoothgrad(net, image, class: 3, samples: 10, seed: 1)
        let b = try smoothgrad(net, image, class: 3, samples: 10, seed: 1)
        let c = try smoothgrad(net, image, class: 3, samples: 10, seed: 2)
        XCTAssertEqual(a.map, b.map)
        XCTAssertNotEqual(a.map, c.map)
        XCTAssertEqual(a.completed, 10)
        XCTAssertFalse(a.cancelled)
    }

    func testSmoothGradIsSmootherThanSaliency() throws {
        // Total variation relative to the map's mass: averaging over noise removes the
        // pixel-to-pixel flicker of the raw gradient.
        func roughness(_ m: Tensor) -> Float {
            var tv: Float = 0
            for y in 0..<28 { for x in 0..<27 { tv += abs(m.scalars[y * 28 + x + 1] - m.scalars[y * 28 + x]) } }
            for y in 0..<27 { for x in 0..<28 { tv += abs(m.scalars[(y + 1) * 28 + x] - m.scalars[y * 28 + x]) } }
            return tv / max(m.sum(), 1e-12)
        }
        let net = try defaultModel()
        var smoother = 0
        for (c, label) in samples.enumerated() {
            let image = try sample(label)
            let raw = roughness(try saliency(net, image, class: c))
            let smooth = roughness(try smoothgrad(net, image, class: c, samples: 30, noise: 0.15).map)
            if smooth < raw { smoother += 1 }
        }
        XCTAssertGreaterThanOrEqual(smoother, 9)
    }

    func testOcclusionOfEmptyBackgroundChangesNothing() throws {
        // Black occluders over black background leave the image as it is: zero drop there (up
        // to the rounding of a batched forward pass against a single one).
        let net = try defaultModel()
        let image = try sample("sandal")
        let heat = try occlusion(net, image, class: 5, window: 4, stride: 2, fill: 0)
        XCTAssertEqual(heat.map.shape, [1, 28, 28])
        XCTAssertEqual(heat.completed, 13 * 13)
        for y in 0..<28 { for x in 0..<28 {
            // The pixels every window of which (those covering (y, x)) is blank in the image.
            var blank = true
            for top in stride(from: 0, through: 24, by: 2) where top <= y && y < top + 4 {
                for left in stride(from: 0, through: 24, by: 2) where left <= x && x < left + 4 {
                    for i in top..<(top + 4) { for j in left..<(left + 4) where image.scalars[i * 28 + j] != 0 { blank = false } }
                }
            }
            if blank { XCTAssertEqual(heat.map.scalars[y * 28 + x], 0, accuracy: 1e-6, "(\(y), \(x))") }
        }}
        // Hiding parts of the object lowers the class score.
        let scores = try occlusion(net, image, class: 5, window: 4, stride: 2, fill: 0, measure: .score)
        XCTAssertGreaterThan(scores.map.max(), 1)
        XCTAssertEqual(scores.map.scalars[0], 0, accuracy: 1e-4)
    }

    func testOcclusionWithNonOverlappingWindowsIsEachWindowsDrop() throws {
        let net = try defaultModel()
        let image = try sample("trouser")
        for measure in OcclusionMeasure.allCases {
            let heat = try occlusion(net, image, class: 1, window: 7, stride: 7, measure: measure, batchSize: 5)
            XCTAssertEqual(heat.completed, 16)
            func measured(_ img: Tensor) throws -> Float {
                var batch = try NetworkInput(net).batch(img)
                batch = try net(batch)
                let s = batch.scalars
                if measure == .score { return s[1] }
                let m = s.max() ?? 0
                return exp(s[1] - m) / s.reduce(0) { $0 + exp($1 - m) }
            }
            let base = try measured(image)
            for (top, left) in [(0, 0), (7, 14), (21, 21)] {
                var hidden = image
                for y in top..<(top + 7) { for x in left..<(left + 7) { hidden.scalars[y * 28 + x] = 0.2860 } }
                let expected = base - (try measured(hidden))
                XCTAssertEqual(heat.map.scalars[(top + 3) * 28 + left + 3], expected, accuracy: 1e-4 * max(1, abs(expected)))
            }
        }
    }

    func testOcclusionArgumentsAreChecked() throws {
        let net = try defaultModel()
        let image = try sample("bag")
        XCTAssertThrowsError(try occlusion(net, image, class: 8, window: 29))
        XCTAssertThrowsError(try occlusion(net, image, class: 8, stride: 0))
        XCTAssertThrowsError(try occlusion(net, image, class: 11))
    }
}
