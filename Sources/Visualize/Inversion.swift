// Inverting a representation (Mahendran and Vedaldi 2014, "Understanding Deep Image
// Representations by Inverting Them"): find an image whose code at some layer matches the code
// of a given image, and that looks natural. Images that come out alike to the network but
// differ to us show what the code has thrown away.
import Engine
import Foundation

/// What an inversion found.
public struct InversionResult {
    /// The reconstruction in display space [C, H, W], clamped to [0, 1].
    public let image: Tensor
    /// The same image as the network sees it: normalized, [1, C, H, W].
    public let input: Tensor
    /// The objective E(x) at each step (on that step's jittered image), before its update.
    public let history: [Float]
    /// The normalized reconstruction error ‖φ(x) − φ₀‖² / ‖φ₀‖² of the returned image (not jittered).
    public let error: Float
    /// Steps done, and whether the loop was cancelled before all were.
    public let steps: Int
    public let cancelled: Bool
}

/// How an inversion searches: Mahendran and Vedaldi's priors, their weights, and the optimizer.
public struct InversionOptions {
    /// Steps of Adam on the image, its learning rate (in units of the image's range B, decayed
    /// linearly to a tenth over the steps), and the random start: Gaussian noise of standard
    /// deviation `initialNoise`·B drawn with `seed`.
    public var steps = 200
    public var learningRate: Float = 0.2
    public var initialNoise: Float = 0.1
    public var seed: UInt64 = 0
    /// The α-norm prior (α = 6) and the TV^β prior (β = 2), with their weights λ_α and λ_TV.
    public var alpha: Float = 6
    public var lambdaAlpha: Float = 1
    public var beta: Float = 2
    public var lambdaTV: Float = 1
    /// C, the weight of the feature loss against the priors (the paper's constant, which it sets
    /// per layer). nil: 80/s for a layer whose units lie s pixels apart (its stride on the image),
    /// so that a deeper code, which pins the image down less finely, leans more on the priors
    /// (20 at stride 4, 5 at 16, 2.5 at 32).
    public var lossWeight: Float? = nil
    /// Each step shifts the image by up to this many pixels at random (the paper's jitter). nil: a
    /// quarter of the layer's stride, at most 4 pixels (none below stride 4).
    public var jitter: Int? = nil

    public init() {}
}

/// Mahendran and Vedaldi's inversion (CVPR 2015, IJCV 2016): argmin over x of
///
///     E(x) = C·‖φ(x) − φ₀‖² / ‖φ₀‖² + λ_α·R_α(x) + λ_TV·R_TV(x),
///
/// with φ the output of `layer`, φ₀ = φ(image), x the network's normalized input (zero at the
/// mean colour), and their normalizations: the α-norm R_α(x) = Σ|xᵢ|^α / (H·W·B^α) and the
/// total variation R_TV(x) = Σ_{c,i,j} ((x_{i,j+1} − x_{i,j})² + (x_{i+1,j} − x_{i,j})²)^(β/2) / (H·W·V^β),
/// where B is the image's range (the largest |x| of the image) and V = B/6.5 the typical size
/// of its gradient, so that the weights mean the same for any layer and image size. Minimized
/// by Adam from Gaussian noise drawn with `seed` (so several reconstructions of one code can be
/// compared), with the image jittered (shifted circularly by up to `jitter` pixels) at every
/// step and kept inside the valid image range (for a network with an input spec). With the
/// defaults (200 steps) the cat photo comes back from EfficientNet-Lite0 with a correlation of
/// about 0.94, 0.80 and 0.61 from blocks 1, 5 and 11. When cancelled, returns the best image so far (lowest objective).
public func invert(_ network: Network, _ image: Tensor, layer: String, options o: InversionOptions = InversionOptions(),
                   control: LoopControl = LoopControl()) throws -> InversionResult {
    guard o.steps >= 0, o.learningRate > 0, o.learningRate.isFinite, o.alpha >= 1, o.beta >= 1, o.lambdaAlpha >= 0,
          o.lambdaTV >= 0, (o.lossWeight ?? 1) > 0, o.initialNoise >= 0, (o.jitter ?? 0) >= 0 else {
        throw EngineError.invalidArgument("invert needs steps >= 0, a positive learning rate and loss weight, alpha >= 1, beta >= 1, and non-negative prior weights, noise and jitter")
    }
    let input = NetworkInput(network)
    try input.checkLayer(layer)
    let original = try input.batch(image)
    let target = try network(original, upTo: layer)
    let targetNorm = target.scalars.reduce(Float(0)) { $0 + $1 * $1 }
    guard targetNorm > 0 else {
        throw EngineError.invalidArgument("the image's code at layer '\(layer)' is all zeros: there is nothing to invert")
    }
    let (channels, height, width) = (original.shape[1], original.shape[2], original.shape[3])
    let range = Swift.max(original.scalars.map(abs).max() ?? 1, 1e-3)  // B
    let variation = range / 6.5                                      // V
    // The helpers take means over all C·H·W numbers; the paper divides sums by H·W.
    let alphaWeight = o.lambdaAlpha * Float(channels) / pow(range, o.alpha)
    let tvWeight = o.lambdaTV * Float(channels) / pow(variation, o.beta)
    let field = try receptiveField(network, layer: layer, inputShape: original.shape)
    let stride = Swift.max(1, Swift.max(field.jumpY, field.jumpX))
    let lossWeight = o.lossWeight ?? 80 / Float(stride)
    let jitter = Swift.min(o.jitter ?? Swift.min(4, stride / 4), Swift.max(0, Swift.min(height, width) / 2))

    var generator = SeededGenerator(seed: o.seed)
    var x = Tensor.randn(original.shape, std: o.initialNoise * range, generator: &generator)
    // Inside the valid image range, when the network says what it is.
    func keepInRange(_ x: inout Tensor) { if input.spec != nil { input.clampToImage(&x) } }
    keepInRange(&x)
    var adam = Adam(learningRate: o.learningRate * range)
    var history: [Float] = []
    var cancelled = false
    // Ctrl-C returns the image with the lowest objective so far (the one before the step that measured it).
    var best: (value: Float, x: Tensor)?

    /// C·‖φ(x) − φ₀‖² / ‖φ₀‖² and its gradient with respect to x (the normalized input).
    func featureLoss(_ x: Tensor) throws -> (Float, Tensor) {
        var loss: Float = 0
        let (_, g) = try input.backward(x, from: layer, isCancelled: control.isCancelled) { code in
            guard code.shape == target.shape else { throw EngineError.shapeMismatch("code \(code.shape) vs \(target.shape)") }
            let difference = code.zipMap(target, -)
            loss = difference.scalars.reduce(0) { $0 + $1 * $1 } / targetNorm
            return difference.map { 2 * lossWeight * $0 / targetNorm }
        }
        return (lossWeight * loss, g)
    }

    for step in 0..<o.steps {
        if control.isCancelled() { cancelled = true; break }
        let dy = jitter > 0 ? Int.random(in: -jitter...jitter, using: &generator) : 0
        let dx = jitter > 0 ? Int.random(in: -jitter...jitter, using: &generator) : 0
        var objective: Float
        var g: Tensor
        do {
            let (loss, shifted) = try featureLoss(rolled(x, dy, dx))
            objective = loss
            g = rolled(shifted, -dy, -dx)
        } catch EngineError.cancelled { cancelled = true; break }
        if o.lambdaAlpha > 0 { objective += alphaWeight * addAlphaNormGradient(x, alpha: o.alpha, weight: alphaWeight, to: &g) }
        if o.lambdaTV > 0 { objective += tvWeight * addTotalVariationGradient(x, beta: o.beta, weight: tvWeight, to: &g) }
        guard objective.isFinite else { throw diverged(step: step) }
        history.append(objective)
        if objective < best?.value ?? .infinity { best = (objective, x) }
        // The step decays linearly to a tenth of the learning rate over the run.
        adam.learningRate = o.learningRate * range * (1 - 0.9 * Float(step) / Float(Swift.max(o.steps, 1)))
        var parameters = ["x": x]
        adam.step(&parameters, gradients: ["x": g])
        x = parameters["x"] ?? x
        keepInRange(&x)
        guard x.scalars.allSatisfy(\.isFinite) else { throw diverged(step: step) }
        control.progress(step + 1, o.steps, objective)
    }
    if cancelled, let best { x = best.x }
    let code = try network(x, upTo: layer)
    let error = code.zipMap(target, -).scalars.reduce(Float(0)) { $0 + $1 * $1 } / targetNorm
    return InversionResult(image: input.picture(x), input: x, history: history, error: error, steps: history.count, cancelled: cancelled)
}

/// The Pearson correlation of two pictures of one shape over all their values (1: the same up
/// to brightness and contrast; 0: unrelated).
public func correlation(_ a: Tensor, _ b: Tensor) throws -> Float {
    guard a.count == b.count, a.count > 1 else {
        throw EngineError.shapeMismatch("correlation needs two pictures of one size; got \(a.shape) and \(b.shape)")
    }
    let n = Double(a.count)
    let ma = a.scalars.reduce(0.0) { $0 + Double($1) } / n, mb = b.scalars.reduce(0.0) { $0 + Double($1) } / n
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for i in 0..<a.count {
        let da = Double(a.scalars[i]) - ma, db = Double(b.scalars[i]) - mb
        sab += da * db; saa += da * da; sbb += db * db
    }
    guard saa > 0, sbb > 0 else { return 0 }
    return Float(sab / (saa * sbb).squareRoot())
}

/// R_α(x) = (1/P) Σ |xᵢ|^α; ∂R_α/∂xᵢ = (α/P)·|xᵢ|^(α-1)·sign(xᵢ). Adds weight·∇R_α to `g`; returns R_α.
@discardableResult
func addAlphaNormGradient(_ x: Tensor, alpha: Float, weight: Float, to g: inout Tensor) -> Float {
    let p = Float(Swift.max(x.count, 1))
    var value: Float = 0
    g.withUnsafeMutableBufferPointer { d in
        x.withUnsafeBufferPointer { xs in
            for i in 0..<xs.count {
                let a = abs(xs[i])
                value += pow(a, alpha)
                let sign: Float = xs[i] > 0 ? 1 : (xs[i] < 0 ? -1 : 0)
                d[i] += weight * alpha / p * pow(a, alpha - 1) * sign
            }
        }
    }
    return value / p
}

/// R_TV(x) = (1/P) Σ_{c,i,j} (aᵢⱼ² + bᵢⱼ²)^(β/2), a = x_{i,j+1} - x_{i,j}, b = x_{i+1,j} - x_{i,j}
/// (a difference past the last row or column counts as 0). With D = a² + b² (+ a tiny ε when
/// β < 2, where the root is not differentiable at 0), the term's derivative is
/// (β/2)·D^(β/2-1)·(-2a - 2b) at x_{i,j}, ·2a at x_{i,j+1} and ·2b at x_{i+1,j}.
/// Adds weight·∇R_TV to `g`; returns R_TV.
@discardableResult
func addTotalVariationGradient(_ x: Tensor, beta: Float, weight: Float, to g: inout Tensor) -> Float {
    guard x.rank == 4 else { return 0 }
    let (h, w) = (x.shape[2], x.shape[3]), plane = h * w
    let p = Float(Swift.max(x.count, 1))
    let epsilon: Float = beta < 2 ? 1e-8 : 0
    var value: Float = 0
    g.withUnsafeMutableBufferPointer { d in
        x.withUnsafeBufferPointer { xs in
            for base in stride(from: 0, to: xs.count, by: plane) {
                for i in 0..<h { for j in 0..<w {
                    let k = base + i * w + j
                    let a = j + 1 < w ? xs[k + 1] - xs[k] : 0
                    let b = i + 1 < h ? xs[k + w] - xs[k] : 0
                    let dd = a * a + b * b + epsilon
                    guard dd > 0 else { continue }
                    value += pow(dd, beta / 2)
                    let f = weight / p * (beta / 2) * pow(dd, beta / 2 - 1) * 2
                    d[k] -= f * (a + b)
                    if j + 1 < w { d[k + 1] += f * a }
                    if i + 1 < h { d[k + w] += f * b }
                }}
            }
        }
    }
    return value / p
}
