// Images that a network scores highly: class models (Simonyan et al. 2014), images that
// excite any channel or unit, and deep dreams. One loop of gradient ascent on the network's
// normalized input serves them all; the regularizers that make such images look natural are
// there but off by default, so that the plain method is the one the lecture shows.
import Engine
import Foundation

/// Optional image priors for gradient ascent (Yosinski et al. 2015, "Understanding Neural
/// Networks Through Deep Visualization"; Mordvintsev et al.'s DeepDream). All off by default.
public struct Regularizers: Sendable {
    /// Before each step, shift the image by up to `jitter` pixels (circularly, at random) and
    /// shift the gradient back.
    public var jitter: Int
    /// Every `blurEvery` steps (0: never), blur the image with a Gaussian of `blurSigma` pixels.
    public var blurEvery: Int
    public var blurSigma: Float
    /// After each step, zero the pixels whose norm over channels is below this quantile of all
    /// pixel norms (0: none; 0.5 zeros the weaker half).
    public var clipValues: Float
    /// Before each step, zero the gradient at pixels whose gradient norm is below this quantile.
    public var clipGradients: Float
    /// The seed of jitter's shifts.
    public var seed: UInt64

    /// Priors by name; every one left out stays off.
    public init(jitter: Int = 0, blurEvery: Int = 0, blurSigma: Float = 0.5, clipValues: Float = 0,
                clipGradients: Float = 0, seed: UInt64 = 0) {
        self.jitter = jitter; self.blurEvery = blurEvery; self.blurSigma = blurSigma
        self.clipValues = clipValues; self.clipGradients = clipGradients; self.seed = seed
    }

    func validate() throws {
        guard jitter >= 0, blurEvery >= 0, blurSigma > 0, (0..<1).contains(clipValues), (0..<1).contains(clipGradients) else {
            throw EngineError.invalidArgument("regularizers need jitter >= 0, blurEvery >= 0, blurSigma > 0 and clip quantiles in [0, 1)")
        }
    }
}

/// The result of an optimisation over the input image.
public struct OptimizationResult {
    /// The image found, in display space [C, H, W], clamped to [0, 1].
    public let image: Tensor
    /// The same image as the network sees it: normalized, [1, C, H, W], not clamped.
    public let input: Tensor
    /// The objective at each step, before that step's update.
    public let history: [Float]
    /// Steps done, and whether the loop was cancelled before all were.
    public let steps: Int
    public let cancelled: Bool
}

/// Which activation of a layer to maximize.
public enum ActivationTarget: Equatable, Sendable {
    /// The mean of a channel over its positions (for a layer of units, the unit itself).
    case channel(Int)
    /// One unit: channel, row, column.
    case unit(channel: Int, y: Int, x: Int)
}

/// Class model visualisation (Simonyan, Vedaldi and Zisserman 2014, §2): argmax over I of
/// S_c(I) - λ‖I‖², with S_c the score of class `class` before the softmax and λ = `l2`, by
/// gradient ascent I ← I + lr·(∂S_c/∂I - 2λI) from the zero image (or `start`). I is the
/// network's normalized input, so the zero image is the dataset mean and ‖I‖² is measured in
/// standard deviations; the result is denormalized and clamped for display. The history is
/// S_c(I) - λ‖I‖² per step. The language calls this `classviz`.
public func classModel(_ network: Network, class target: Int, steps: Int = 200, learningRate: Float = 1, l2: Float = 0.01,
                       regularizers: Regularizers = Regularizers(), start: Tensor? = nil,
                       control: LoopControl = LoopControl()) throws -> OptimizationResult {
    let input = NetworkInput(network)
    let x0 = try start.map { try input.batch($0) } ?? Tensor(zeros: input.inputShape())
    try input.checkClass(target, classes: try input.scoreCount(for: x0))
    return try ascend(input, from: x0, steps: steps, learningRate: learningRate, l2: l2, regularizers: regularizers,
                      control: control) { x, cancelled in
        let (scores, g) = try input.backward(x, from: input.scoreLayer, isCancelled: cancelled) { try input.classSeed(target, $0) }
        return (scores.scalars[target], g)
    }
}

/// Activation maximization for any layer: the same ascent as `classModel` on
/// a(I) - λ‖I‖², where a is the mean of a channel over its positions, or one unit, of `layer`.
/// From the zero image (or `start`: at zero, a unit behind a ReLU that is off has no
/// gradient, so start from an image or from noise then).
public func maximize(_ network: Network, layer: String, target: ActivationTarget, steps: Int = 200,
                     learningRate: Float = 1, l2: Float = 0.01, regularizers: Regularizers = Regularizers(),
                     start: Tensor? = nil, control: LoopControl = LoopControl()) throws -> OptimizationResult {
    let input = NetworkInput(network)
    try input.checkLayer(layer)
    let x0 = try start.map { try input.batch($0) } ?? Tensor(zeros: input.inputShape())
    return try ascend(input, from: x0, steps: steps, learningRate: learningRate, l2: l2, regularizers: regularizers,
                      control: control) { x, cancelled in
        var value: Float = 0
        let (_, g) = try input.backward(x, from: layer, isCancelled: cancelled) { out in
            let seed = try activationSeed(out, layer: layer, target: target)
            value = zip(seed.scalars, out.scalars).reduce(0) { $0 + $1.0 * $1.1 }
            return seed
        }
        return (value, g)
    }
}

/// Deep dream (Mordvintsev, Olah and Tyka 2015): gradient ascent from `image` on ½‖A‖², the
/// squared norm of `layer`'s activations, so that whatever the layer sees it sees more. Each
/// step is normalized as in the original: I ← I + lr·g / mean|g|, in the normalized input
/// space, and the image is kept within the displayable range. History: ½‖A‖² per step.
public func dream(_ network: Network, _ image: Tensor, layer: String, steps: Int = 30, learningRate: Float = 0.02,
                  regularizers: Regularizers = Regularizers(), control: LoopControl = LoopControl()) throws -> OptimizationResult {
    let input = NetworkInput(network)
    try input.checkLayer(layer)
    return try ascend(input, from: try input.batch(image), steps: steps, learningRate: learningRate, l2: 0,
                      regularizers: regularizers, normalizeSteps: true, clampToImage: true, control: control) { x, cancelled in
        var value: Float = 0
        let (_, g) = try input.backward(x, from: layer, isCancelled: cancelled) { out in
            value = out.scalars.reduce(0) { $0 + $1 * $1 } / 2
            return out
        }
        return (value, g)
    }
}

/// The seed at a layer's output [1, C, H, W] or [1, F] whose dot product with the output is
/// the target activation: 1/(HW) over a channel, or 1 at one unit.
func activationSeed(_ out: Tensor, layer: String, target: ActivationTarget) throws -> Tensor {
    let channels = out.rank >= 2 ? out.shape[1] : 0
    let (h, w) = out.rank == 4 ? (out.shape[2], out.shape[3]) : (1, 1)
    var seed = Tensor(zeros: out.shape)
    switch target {
    case .channel(let c):
        guard c >= 0 && c < channels else {
            throw EngineError.invalidArgument("channel \(c) is out of range: layer '\(layer)' has \(channels) channels, 0 to \(channels - 1)")
        }
        for i in 0..<(h * w) { seed.scalars[c * h * w + i] = 1 / Float(h * w) }
    case .unit(let c, let y, let x):
        _ = try strongestUnit(out, layer: layer, channel: c, position: (y, x))
        seed.scalars[try flatIndex(out.shape, channel: c, y: y, x: x)] = 1
    }
    return seed
}

/// Gradient ascent on `objective` (value and gradient at a normalized batch of one) minus
/// `l2`·‖x‖², with the regularizers; see `classModel` for the update.
func ascend(_ input: NetworkInput, from start: Tensor, steps: Int, learningRate: Float, l2: Float,
            regularizers r: Regularizers, normalizeSteps: Bool = false, clampToImage: Bool = false, control: LoopControl,
            objective: (Tensor, @escaping () -> Bool) throws -> (value: Float, gradient: Tensor)) throws -> OptimizationResult {
    guard steps >= 0, learningRate.isFinite, learningRate > 0, l2 >= 0 else {
        throw EngineError.invalidArgument("gradient ascent needs steps >= 0, a positive learning rate and l2 >= 0")
    }
    try r.validate()
    var x = start
    var history: [Float] = []
    var generator = SeededGenerator(seed: r.seed)
    var cancelled = false
    // Ctrl-C returns the image with the highest objective so far (the one before the step that measured it).
    var best: (value: Float, x: Tensor)?
    for step in 0..<steps {
        if control.isCancelled() { cancelled = true; break }
        let (dy, dx) = r.jitter > 0
            ? (Int.random(in: -r.jitter...r.jitter, using: &generator), Int.random(in: -r.jitter...r.jitter, using: &generator))
            : (0, 0)
        let value: Float, raw: Tensor
        do { (value, raw) = try objective(rolled(x, dy, dx), control.isCancelled) } catch EngineError.cancelled { cancelled = true; break }
        var g = rolled(raw, -dy, -dx)
        let norm = x.scalars.reduce(Float(0)) { $0 + $1 * $1 }
        let total = value - l2 * norm
        guard total.isFinite else { throw diverged(step: step) }
        history.append(total)
        if total > best?.value ?? -.infinity { best = (total, x) }
        if l2 > 0 { g.addScaled(x, -2 * l2) }
        if r.clipGradients > 0 { zeroWeakPixels(&g, quantile: r.clipGradients) }
        var rate = learningRate
        if normalizeSteps {
            let meanMagnitude = g.scalars.reduce(Float(0)) { $0 + abs($1) } / Float(Swift.max(g.count, 1))
            rate /= Swift.max(meanMagnitude, 1e-8)
        }
        x.addScaled(g, rate)
        if r.blurEvery > 0 && (step + 1) % r.blurEvery == 0 { x = gaussianBlur(x, sigma: r.blurSigma) }
        if r.clipValues > 0 { zeroWeakPixels(&x, quantile: r.clipValues) }
        if clampToImage { input.clampToImage(&x) }
        guard x.scalars.allSatisfy(\.isFinite) else { throw diverged(step: step) }
        control.progress(step + 1, steps, total)
    }
    if cancelled, let best { x = best.x }
    return OptimizationResult(image: input.picture(x), input: x, history: history, steps: history.count, cancelled: cancelled)
}

/// The error of an optimisation whose objective stopped being finite.
func diverged(step: Int) -> EngineError {
    EngineError.invalidArgument("the optimisation diverged at step \(step + 1) (the image or its objective is no longer finite); use a smaller learning rate")
}

/// Every plane of [N, C, H, W] shifted circularly by dy rows and dx columns.
func rolled(_ x: Tensor, _ dy: Int, _ dx: Int) -> Tensor {
    guard (dy != 0 || dx != 0), x.rank == 4 else { return x }
    let (h, w) = (x.shape[2], x.shape[3]), plane = h * w
    return Tensor(shape: x.shape) { out in
        x.withUnsafeBufferPointer { src in
            for p in 0..<(x.count / plane) {
                for i in 0..<h {
                    let ti = ((i + dy) % h + h) % h
                    for j in 0..<w { out[p * plane + ti * w + ((j + dx) % w + w) % w] = src[p * plane + i * w + j] }
                }
            }
        }
    }
}

/// [N, C, H, W] blurred plane by plane with a Gaussian of `sigma` pixels (radius 3σ, edges
/// repeated), one axis after the other.
func gaussianBlur(_ x: Tensor, sigma: Float) -> Tensor {
    guard x.rank == 4 else { return x }
    let radius = Swift.max(1, Int((3 * sigma).rounded(.up)))
    var kernel = (-radius...radius).map { exp(-Float($0 * $0) / (2 * sigma * sigma)) }
    let total = kernel.reduce(0, +)
    kernel = kernel.map { $0 / total }
    let (h, w) = (x.shape[2], x.shape[3]), plane = h * w
    var across = x, out = x
    x.withUnsafeBufferPointer { src in across.withUnsafeMutableBufferPointer { mid in
        for p in 0..<(x.count / plane) { for i in 0..<h { for j in 0..<w {
            var s: Float = 0
            for (t, k) in kernel.enumerated() { s += k * src[p * plane + i * w + Swift.min(Swift.max(j + t - radius, 0), w - 1)] }
            mid[p * plane + i * w + j] = s
        }}}
    }}
    across.withUnsafeBufferPointer { mid in out.withUnsafeMutableBufferPointer { dst in
        for p in 0..<(x.count / plane) { for i in 0..<h { for j in 0..<w {
            var s: Float = 0
            for (t, k) in kernel.enumerated() { s += k * mid[p * plane + Swift.min(Swift.max(i + t - radius, 0), h - 1) * w + j] }
            dst[p * plane + i * w + j] = s
        }}}
    }}
    return out
}

/// Zeros the pixels of [1, C, H, W] whose norm over channels lies below the `quantile` of all
/// pixels' norms.
func zeroWeakPixels(_ x: inout Tensor, quantile: Float) {
    guard x.rank == 4 else { return }
    let channels = x.shape[1], plane = x.shape[2] * x.shape[3]
    var norms = [Float](repeating: 0, count: plane)
    for c in 0..<channels { for i in 0..<plane { norms[i] += x.scalars[c * plane + i] * x.scalars[c * plane + i] } }
    let sorted = norms.sorted()
    let threshold = sorted[Swift.min(plane - 1, Int(quantile * Float(plane)))]
    for i in 0..<plane where norms[i] < threshold { for c in 0..<channels { x.scalars[c * plane + i] = 0 } }
}
