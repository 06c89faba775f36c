// Inverting a representation (Mahendran and Vedaldi 2014, "Understanding Deep Image
// Representations by Inverting Them"): find an image whose code at some layer matches the code
// of a given image, and that looks natural. Images that come out alike to the network but
// differ to us show what the code has thrown away.
import Engine
import Foundation

/// Mahendran and Vedaldi's inversion: argmin over x of
///
///     E(x) = ‖φ(x) - φ₀‖² / ‖φ₀‖² + λ_α·R_α(x) + λ_TV·R_TV(x),
///
/// with φ the output of `layer`, φ₀ = φ(image), the α-norm prior R_α(x) = mean |xᵢ|^α and the
/// total-variation prior R_TV(x) = mean over pixels of ((x_{i,j+1} - x_{i,j})² + (x_{i+1,j} - x_{i,j})²)^(β/2)
/// (means rather than the paper's sums, so the weights do not depend on the image size). x is
/// the network's normalized input. Minimized by gradient descent with momentum,
/// v ← μv - lr·∇E, x ← x + v, from Gaussian noise drawn with `seed` (standard deviation
/// `initialNoise`), so several reconstructions of one code can be compared. The history is the
/// normalized feature loss ‖φ(x) - φ₀‖² / ‖φ₀‖² per step; `image` is denormalized and clamped.
/// With the defaults (lr 10, μ 0.9, λ_TV 0.1, β 2, α 6, λ_α 1e-4, 200 steps) the normalized
/// loss of every layer of the default model falls below 0.05 on its sample images; an image or
/// loss that stops being finite throws an error that asks for a smaller learning rate.
public func invert(_ network: Network, _ image: Tensor, layer: String, steps: Int = 200, learningRate: Float = 10,
                   momentum: Float = 0.9, alpha: Float = 6, lambdaAlpha: Float = 1e-4, tv: Float = 0.1, beta: Float = 2,
                   initialNoise: Float = 0.1, seed: UInt64 = 0, control: LoopControl = LoopControl()) throws -> OptimizationResult {
    guard steps >= 0, learningRate > 0, learningRate.isFinite, (0..<1).contains(momentum), alpha >= 1, beta >= 1,
          lambdaAlpha >= 0, tv >= 0, initialNoise >= 0 else {
        throw EngineError.invalidArgument("invert needs steps >= 0, a positive learning rate, momentum in [0, 1), alpha >= 1, beta >= 1 and non-negative weights")
    }
    let input = NetworkInput(network)
    try input.checkLayer(layer)
    let original = try input.batch(image)
    let target = try network(original, upTo: layer)
    let targetNorm = target.scalars.reduce(Float(0)) { $0 + $1 * $1 }
    guard targetNorm > 0 else {
        throw EngineError.invalidArgument("the image's code at layer '\(layer)' is all zeros: there is nothing to invert")
    }
    var x = Tensor.randn(original.shape, std: initialNoise, seed: seed)
    var velocity = Tensor(zeros: x.shape)
    var history: [Float] = []
    var cancelled = false
    for step in 0..<steps {
        if control.isCancelled() { cancelled = true; break }
        var loss: Float = 0
        let gradient: Tensor
        do {
            (_, gradient) = try input.backward(x, from: layer, isCancelled: control.isCancelled) { code in
                guard code.shape == target.shape else { throw EngineError.shapeMismatch("code \(code.shape) vs \(target.shape)") }
                let difference = code.zipMap(target, -)
                loss = difference.scalars.reduce(0) { $0 + $1 * $1 } / targetNorm
                return difference.map { 2 * $0 / targetNorm }
            }
        } catch EngineError.cancelled { cancelled = true; break }
        var g = gradient
        if lambdaAlpha > 0 { addAlphaNormGradient(x, alpha: alpha, weight: lambdaAlpha, to: &g) }
        if tv > 0 { addTotalVariationGradient(x, beta: beta, weight: tv, to: &g) }
        guard loss.isFinite else { throw diverged(step: step) }
        history.append(loss)
        // v ← μv - lr·∇E, x ← x + v
        velocity = velocity.map { $0 * momentum }
        velocity.addScaled(g, -learningRate)
        x.addScaled(velocity)
        guard x.scalars.allSatisfy(\.isFinite) else { throw diverged(step: step) }
        control.progress(step + 1, steps, loss)
    }
    return OptimizationResult(image: input.picture(x), input: x, history: history, steps: history.count, cancelled: cancelled)
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
