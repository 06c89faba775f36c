import Foundation

/// Local response normalization across channels (AlexNet), PyTorch's form:
/// s_c = k + (α / n) Σ_{c' ∈ window(c)} x_{c'}²,  y_c = x_c · s_c^(-β),
/// window(c) = [c - ⌊n/2⌋, c + ⌊(n-1)/2⌋].
/// dx_i = dy_i s_i^(-β) - (2αβ / n) x_i Σ_{j : i ∈ window(j)} dy_j x_j s_j^(-β-1).
public func localResponseNorm(_ x: Variable, size: Int, alpha: Float = 1e-4, beta: Float = 0.75, k: Float = 1) throws -> Variable {
    guard x.shape.count >= 3 else { throw EngineError.shapeMismatch("local response norm takes [N, C, ...], got \(x.shape)") }
    guard size >= 1 else { throw EngineError.invalidArgument("local response norm size must be at least 1") }
    let n = x.shape[0], c = x.shape[1], inner = x.shape[2...].reduce(1, *)
    let before = size / 2, after = (size - 1) / 2
    let scale = alpha / Float(size)
    var s = Tensor(zeros: x.shape)
    x.value.withUnsafeBufferPointer { xs in s.withUnsafeMutableBufferPointer { ss in
        for b in 0..<n { for ch in 0..<c {
            let lo = max(0, ch - before), hi = min(c - 1, ch + after)
            let dst = ss.baseAddress! + (b * c + ch) * inner
            for cc in lo...hi {
                let src = xs.baseAddress! + (b * c + cc) * inner
                for i in 0..<inner { dst[i] += src[i] * src[i] }
            }
            for i in 0..<inner { dst[i] = k + scale * dst[i] }
        }}
    }}
    let y = x.value.zipMap(s) { xv, sv in xv * Foundation.pow(sv, -beta) }
    return Variable.result(y, [x]) { dy in
        // t_j = dy_j x_j s_j^(-β-1)
        var t = Tensor(zeros: x.shape)
        t.withUnsafeMutableBufferPointer { tp in
            dy.withUnsafeBufferPointer { d in x.value.withUnsafeBufferPointer { xs in s.withUnsafeBufferPointer { ss in
                for i in 0..<tp.count { tp[i] = d[i] * xs[i] * Foundation.pow(ss[i], -beta - 1) }
            }}}
        }
        var dx = dy.zipMap(s) { d, sv in d * Foundation.pow(sv, -beta) }
        let coeff = 2 * scale * beta
        dx.withUnsafeMutableBufferPointer { g in t.withUnsafeBufferPointer { tp in x.value.withUnsafeBufferPointer { xs in
            for b in 0..<n { for ch in 0..<c {
                // j with ch ∈ window(j): j ∈ [ch - after, ch + before]
                let lo = max(0, ch - after), hi = min(c - 1, ch + before)
                let base = (b * c + ch) * inner
                for j in lo...hi {
                    let tj = tp.baseAddress! + (b * c + j) * inner
                    for i in 0..<inner { g[base + i] -= coeff * xs[base + i] * tj[i] }
                }
            }}
        }}}
        return [dx]
    }
}

/// Batch normalization over channel axis 1 of [N, C, ...].
///
/// Inference: y = γ (x - μ_run) / √(σ²_run + ε) + β.
/// Training: the batch's own mean and (biased) variance normalize, and the running statistics
/// move toward them by `momentum` (the unbiased variance, as PyTorch keeps it).
public struct BatchNormResult {
    public let output: Variable
    public let runningMean: Tensor
    public let runningVar: Tensor
}

public func batchNorm(_ x: Variable, weight: Variable?, bias: Variable?, runningMean: Tensor, runningVar: Tensor,
                      eps: Float = 1e-5, training: Bool = false, momentum: Float = 0.1) throws -> BatchNormResult {
    guard x.shape.count >= 2 else { throw EngineError.shapeMismatch("batch norm takes [N, C, ...], got \(x.shape)") }
    let n = x.shape[0], c = x.shape[1], inner = x.shape[2...].reduce(1, *)
    for (name, t) in [("running mean", runningMean), ("running variance", runningVar)] where t.shape != [c] {
        throw EngineError.shapeMismatch("batch norm \(name) must be [\(c)], got \(t.shape)")
    }
    if let weight, weight.shape != [c] { throw EngineError.shapeMismatch("batch norm weight must be [\(c)], got \(weight.shape)") }
    if let bias, bias.shape != [c] { throw EngineError.shapeMismatch("batch norm bias must be [\(c)], got \(bias.shape)") }
    let m = n * inner
    var mean = runningMean.scalars, variance = runningVar.scalars
    var newMean = runningMean, newVar = runningVar
    if training {
        guard m > 1 else { throw EngineError.shapeMismatch("batch norm in training needs more than one value per channel") }
        x.value.withUnsafeBufferPointer { xs in
            for ch in 0..<c {
                var s: Double = 0, s2: Double = 0
                for b in 0..<n {
                    let p = xs.baseAddress! + (b * c + ch) * inner
                    for i in 0..<inner { s += Double(p[i]); s2 += Double(p[i]) * Double(p[i]) }
                }
                let mu = s / Double(m)
                let v = max(s2 / Double(m) - mu * mu, 0)
                mean[ch] = Float(mu); variance[ch] = Float(v)
                newMean.scalars[ch] = (1 - momentum) * runningMean.scalars[ch] + momentum * Float(mu)
                newVar.scalars[ch] = (1 - momentum) * runningVar.scalars[ch] + momentum * Float(v * Double(m) / Double(m - 1))
            }
        }
    }
    let invStd = variance.map { 1 / ($0 + eps).squareRoot() }
    let gamma = weight?.value.scalars ?? [Float](repeating: 1, count: c)
    let betaV = bias?.value.scalars ?? [Float](repeating: 0, count: c)
    let y = Tensor(shape: x.shape) { out in
        x.value.withUnsafeBufferPointer { xs in
            for b in 0..<n { for ch in 0..<c {
                let a = gamma[ch] * invStd[ch], sh = betaV[ch] - mean[ch] * a
                let base = (b * c + ch) * inner
                for i in 0..<inner { out[base + i] = xs[base + i] * a + sh }
            }}
        }
    }
    var inputs = [x]
    if let weight { inputs.append(weight) }
    if let bias { inputs.append(bias) }
    let output = Variable.result(y, inputs) { dy in
        // Per channel: Σ dy and Σ dy·x̂, needed by the parameters' gradients and by training's dx;
        // an input gradient at inference needs neither.
        var sumDy = [Float](repeating: 0, count: c), sumDyXhat = [Float](repeating: 0, count: c)
        let needSums = training || weight?.requiresGrad == true || bias?.requiresGrad == true
        if needSums { dy.withUnsafeBufferPointer { d in x.value.withUnsafeBufferPointer { xs in
            for b in 0..<n { for ch in 0..<c {
                let base = (b * c + ch) * inner
                var s: Float = 0, sx: Float = 0
                for i in 0..<inner { s += d[base + i]; sx += d[base + i] * (xs[base + i] - mean[ch]) * invStd[ch] }
                sumDy[ch] += s; sumDyXhat[ch] += sx
            }}
        }}}
        var dx: Tensor? = nil
        if x.requiresGrad {
            dx = Tensor(shape: x.shape) { out in
                dy.withUnsafeBufferPointer { d in x.value.withUnsafeBufferPointer { xs in
                    for b in 0..<n { for ch in 0..<c {
                        let base = (b * c + ch) * inner
                        let g = gamma[ch] * invStd[ch]
                        if training {
                            // dx = γ/σ · (dy - mean(dy) - x̂ · mean(dy·x̂))
                            let md = sumDy[ch] / Float(m), mdx = sumDyXhat[ch] / Float(m)
                            for i in 0..<inner {
                                let xhat = (xs[base + i] - mean[ch]) * invStd[ch]
                                out[base + i] = g * (d[base + i] - md - xhat * mdx)
                            }
                        } else {
                            for i in 0..<inner { out[base + i] = g * d[base + i] }
                        }
                    }}
                }}
            }
        }
        var grads: [Tensor?] = [dx]
        if let weight { grads.append(weight.requiresGrad ? Tensor(shape: [c], scalars: sumDyXhat) : nil) }
        if let bias { grads.append(bias.requiresGrad ? Tensor(shape: [c], scalars: sumDy) : nil) }
        return grads
    }
    return BatchNormResult(output: output, runningMean: newMean, runningVar: newVar)
}

/// Dropout: the identity at inference; in training, zeroes each value with probability p and
/// scales the rest by 1/(1-p), with the same mask in the backward pass.
public func dropout(_ x: Variable, probability p: Float, training: Bool, generator: inout SeededGenerator) throws -> Variable {
    guard p >= 0 && p < 1 else { throw EngineError.invalidArgument("dropout probability must be in [0, 1), got \(p)") }
    guard training && p > 0 else { return x }
    let keep = 1 / (1 - p)
    var mask = Tensor(zeros: x.shape)
    for i in 0..<mask.count { mask.scalars[i] = generator.nextUniform() >= p ? keep : 0 }
    let y = x.value.zipMap(mask, *)
    return Variable.result(y, [x]) { dy in [dy.zipMap(mask, *)] }
}
