// Which pixels a class score depends on, from its gradient with respect to the input:
// saliency maps, SmoothGrad and integrated gradients. Gradients are taken with respect to the
// display image I (the network's normalization x = (I - mean) / std is differentiated through),
// and scores are taken before any final softmax.
import Engine
import Foundation

/// A map over the image's pixels computed from several passes, possibly stopped early.
public struct HeatMap {
    /// The map, [1, H, W].
    public let map: Tensor
    /// Passes done (samples or occluder positions) and passes asked for.
    public let completed: Int
    public let total: Int
    /// Whether the loop was cancelled; `map` then covers the `completed` passes.
    public let cancelled: Bool
}

/// The saliency map of Simonyan, Vedaldi and Zisserman (2014, §3): M = max over colour channels
/// of |∂S_c/∂I|, with S_c the score of class `class` before the softmax and I the display image.
/// One forward and one backward pass; returns [1, H, W] (values ≥ 0, not scaled: `rescaled`
/// or `overlay` make a picture of it).
public func saliency(_ network: Network, _ image: Tensor, class target: Int) throws -> Tensor {
    let input = NetworkInput(network)
    let gradient = try classGradient(input, try input.batch(image), class: target)
    return channelMaxMagnitude(gradient)
}

/// SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of the image,
/// M = max over channels of |(1/n) Σᵢ ∂S_c/∂I (I + εᵢ)|, εᵢ ~ N(0, σ²) with σ = `noise`·(max I - min I)
/// drawn by the seeded generator (`seed`). With `noise` 0 it is the saliency map. Reports
/// progress per sample (objective: the class score of the noisy copy); when cancelled, the
/// map averages the samples done.
public func smoothgrad(_ network: Network, _ image: Tensor, class target: Int, samples: Int = 50, noise: Float = 0.15,
                       seed: UInt64 = 0, control: LoopControl = LoopControl()) throws -> HeatMap {
    guard samples >= 1 else { throw EngineError.invalidArgument("SmoothGrad needs at least one sample, got \(samples)") }
    guard noise >= 0 else { throw EngineError.invalidArgument("SmoothGrad noise must not be negative, got \(noise)") }
    let input = NetworkInput(network)
    let clean = try input.batch(image)
    let display = input.unclampedPicture(clean)
    let sigma = noise * (display.max() - display.min())
    var generator = SeededGenerator(seed: seed)
    var sum = Tensor(zeros: clean.shape)
    var done = 0, cancelled = false
    for i in 0..<samples {
        if control.isCancelled() { cancelled = true; break }
        // Noise in display units is noise / std in normalized units.
        let noisy = try input.batch(display.zipMap(Tensor.randn(display.shape, std: sigma, generator: &generator), +))
        do {
            let (scores, g) = try input.backward(noisy, from: input.scoreLayer, isCancelled: control.isCancelled) {
                try input.classSeed(target, $0)
            }
            sum.addScaled(input.displayGradient(g))
            done += 1
            control.progress(i + 1, samples, scores.scalars[target])
        } catch EngineError.cancelled { cancelled = true; break }
    }
    let mean = sum.map { $0 / Float(Swift.max(done, 1)) }
    return HeatMap(map: channelMaxMagnitude(mean), completed: done, total: samples, cancelled: cancelled)
}

/// How integrated gradients approximate the path integral: nodes αᵢ in [0, 1] with weights wᵢ.
/// The names and nodes are Captum's.
public enum IntegrationMethod: String, CaseIterable, Sendable {
    /// Gauss-Legendre quadrature on [0, 1]: exact for polynomials of degree 2n - 1 (Captum's default).
    case gaussLegendre
    /// αᵢ = i/n, i = 0..n-1, wᵢ = 1/n.
    case riemannLeft
    /// αᵢ = i/n, i = 1..n, wᵢ = 1/n.
    case riemannRight
    /// αᵢ = (i + 1/2)/n, wᵢ = 1/n.
    case riemannMiddle
    /// αᵢ = i/(n-1), i = 0..n-1, the trapezoid rule: wᵢ = 1/(n-1), halved at both ends (one step: the midpoint).
    /// (Captum's riemann_trapezoid weighs by 1/n instead, so its weights sum to (n-1)/n.)
    case riemannTrapezoid

    /// The nodes and weights for `n` steps.
    public func rule(steps n: Int) -> (nodes: [Double], weights: [Double]) {
        let m = Double(n)
        switch self {
        case .gaussLegendre: return gaussLegendreRule(n)
        case .riemannLeft: return ((0..<n).map { Double($0) / m }, Array(repeating: 1 / m, count: n))
        case .riemannRight: return ((1...n).map { Double($0) / m }, Array(repeating: 1 / m, count: n))
        case .riemannMiddle: return ((0..<n).map { (Double($0) + 0.5) / m }, Array(repeating: 1 / m, count: n))
        case .riemannTrapezoid:
            guard n > 1 else { return ([0.5], [1]) }
            var w = Array(repeating: 1 / (m - 1), count: n)
            w[0] /= 2; w[n - 1] /= 2
            return ((0..<n).map { Double($0) / (m - 1) }, w)
        }
    }
}

/// Integrated gradients with their completeness check.
public struct IntegratedGradients {
    /// Attributions [C, H, W]: (I - I') ⊙ Σᵢ wᵢ ∂S_c/∂I (I' + αᵢ(I - I')), signed.
    public let attributions: Tensor
    /// S_c(I) and S_c(I'): by completeness the attributions sum to their difference.
    public let score: Float
    public let baselineScore: Float
    /// Σ attributions - (S_c(I) - S_c(I')): the approximation error of the integral.
    public var convergenceDelta: Float { attributions.sum() - (score - baselineScore) }
}

/// Integrated gradients (Sundararajan, Taly and Yan 2017): the attribution of pixel p is
/// (I_p - I'_p)·∫₀¹ ∂S_c/∂I_p (I' + α(I - I')) dα, with S_c the score before the softmax, the
/// integral taken by `method` with `steps` nodes (default Gauss-Legendre, Captum's default),
/// and the baseline I' a display image (default: zeros, a black image). The path is evaluated
/// in batches of `batchSize`. Cancellation throws `EngineError.cancelled`: part of a path
/// integral attributes nothing.
public func integratedGradients(_ network: Network, _ image: Tensor, class target: Int, baseline: Tensor? = nil,
                                steps: Int = 50, method: IntegrationMethod = .gaussLegendre, batchSize: Int = 32,
                                isCancelled: @escaping () -> Bool = { false }) throws -> IntegratedGradients {
    guard steps >= 1, batchSize >= 1 else { throw EngineError.invalidArgument("integrated gradients need steps >= 1 and batch size >= 1") }
    let input = NetworkInput(network)
    let x = try input.batch(image)
    let start = try baseline.map { try input.batch($0) } ?? input.batch(Tensor(zeros: input.unclampedPicture(x).shape))
    guard start.shape == x.shape else {
        throw EngineError.shapeMismatch("the baseline \(start.shape.dropFirst().map { $0 }) must have the image's shape \(x.shape.dropFirst().map { $0 })")
    }
    let (alphas, weights) = method.rule(steps: steps)
    let per = x.count
    var total = Tensor(zeros: x.shape)
    var first = 0
    while first < steps {
        if isCancelled() { throw EngineError.cancelled }
        let last = Swift.min(steps, first + batchSize)
        let path = Tensor(shape: [last - first] + Array(x.shape.dropFirst())) { out in
            for (row, i) in (first..<last).enumerated() {
                let a = Float(alphas[i])
                for j in 0..<per { out[row * per + j] = start.scalars[j] + a * (x.scalars[j] - start.scalars[j]) }
            }
        }
        let (_, g) = try input.backward(path, from: input.scoreLayer, isCancelled: isCancelled) { try input.classSeed(target, $0) }
        for (row, i) in (first..<last).enumerated() {
            let w = Float(weights[i])
            for j in 0..<per { total.scalars[j] += w * g.scalars[row * per + j] }
        }
        first = last
    }
    // Normalized-space gradients times normalized-space differences: the std cancels, so this
    // equals the display-space product.
    let attributions = x.zipMap(start, -).zipMap(total, *)
    let scores = try input.scores(try concatBatches(x, start), isCancelled: isCancelled)
    let k = scores.shape[1]
    return IntegratedGradients(attributions: try attributions.reshaped(Array(x.shape.dropFirst())),
                               score: scores.scalars[target], baselineScore: scores.scalars[k + target])
}

/// ∂S_c/∂I for a normalized batch of one, as a display-space gradient [1, C, H, W].
func classGradient(_ input: NetworkInput, _ batch: Tensor, class target: Int, rule: ReLURule = .plain) throws -> Tensor {
    let (_, g) = try input.backward(batch, from: input.scoreLayer, rule: rule) { try input.classSeed(target, $0) }
    return input.displayGradient(g)
}

/// max over channels of |g| for [1, C, H, W] (or [C, H, W]): [1, H, W].
func channelMaxMagnitude(_ g: Tensor) -> Tensor {
    let h = g.shape[g.rank - 2], w = g.shape[g.rank - 1], plane = h * w
    let channels = g.count / Swift.max(plane, 1)
    return Tensor(shape: [1, h, w]) { out in
        g.withUnsafeBufferPointer { p in
            for i in 0..<plane {
                var m: Float = 0
                for c in 0..<channels { m = Swift.max(m, abs(p[c * plane + i])) }
                out[i] = m
            }
        }
    }
}

/// Two batches [N, ...] and [M, ...] as one [N + M, ...].
func concatBatches(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    guard Array(a.shape.dropFirst()) == Array(b.shape.dropFirst()) else {
        throw EngineError.shapeMismatch("cannot stack \(a.shape) and \(b.shape)")
    }
    return Tensor(shape: [a.shape[0] + b.shape[0]] + Array(a.shape.dropFirst()), scalars: a.scalars + b.scalars)
}

/// Gauss-Legendre nodes and weights on [0, 1]: the roots of the Legendre polynomial Pₙ by
/// Newton's method from Tricomi's estimates, with wᵢ = 1 / ((1 - tᵢ²) Pₙ'(tᵢ)²) on [0, 1].
func gaussLegendreRule(_ n: Int) -> (nodes: [Double], weights: [Double]) {
    var nodes = [Double](repeating: 0, count: n), weights = [Double](repeating: 0, count: n)
    let m = Double(n)
    for i in 0..<n {
        var t = cos(Double.pi * (Double(i) + 0.75) / (m + 0.5))
        var derivative = 0.0
        for _ in 0..<100 {
            // P_n(t) and P_n'(t) by the three-term recurrence.
            var p0 = 1.0, p1 = t
            for k in stride(from: 2, through: n, by: 1) {
                let p2 = ((2 * Double(k) - 1) * t * p1 - (Double(k) - 1) * p0) / Double(k)
                p0 = p1; p1 = p2
            }
            derivative = m * (t * p1 - p0) / (t * t - 1)
            let step = p1 / derivative
            t -= step
            if abs(step) < 1e-15 { break }
        }
        // Ascending order on [0, 1]: node i of the descending roots goes to the end.
        nodes[n - 1 - i] = 0.5 * (1 + t)
        weights[n - 1 - i] = 1 / ((1 - t * t) * derivative * derivative)
    }
    return (nodes, weights)
}
