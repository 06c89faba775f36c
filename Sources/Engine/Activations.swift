import Foundation
import CKernels

/// How a ReLU passes gradients backwards. The forward pass is the same for all three.
public enum ReLURule: String, CaseIterable, Sendable {
    /// dx = dy · [x > 0]: the true gradient.
    case plain
    /// dx = max(dy, 0): the deconvnet of Zeiler and Fergus rectifies the backward signal itself.
    case deconvnet
    /// dx = dy · [x > 0] · [dy > 0]: guided backpropagation (Springenberg et al.) applies both masks.
    case guided
    /// Lucid's `redirected_relu_grad`, for optimizing an input towards a larger objective: while
    /// the true gradient of an image (a batch row) is zero everywhere, the gradient also passes
    /// at units that are off where it would switch them on (x < 0, dy > 0), so that units dead
    /// at the start do not stop the ascent. Once any unit passes a true gradient, it is the plain one.
    case redirected
}

/// Elementwise op helper: y = f(x), dx = dy · f'(x, y), with both loops specialized for f and f'.
func unary<F: ScalarFunction, D: ScalarOperator>(_ x: Variable, _ f: F, _ df: D) -> Variable {
    let y = x.value.mapInParallel(f)
    return Variable.result(y, [x]) { dy in [chainRule(dy, x: x.value, y: y, df)] }
}

/// `unary` for closures (ops that are not hot: their function costs more than the call).
func unary(_ x: Variable, _ f: (Float) -> Float, _ df: @escaping (_ x: Float, _ y: Float) -> Float) -> Variable {
    withoutActuallyEscaping(f) { unary(x, AnyScalarFunction(body: $0), AnyScalarOperator(body: df)) }
}

/// clamp(x, low, high) (ReLU6 and clip).
struct Clamp: ScalarFunction, LaneFunction {
    let low: Float, high: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Swift.min(Swift.max(x, low), high) }
    /// Lane by lane as above: max(x, low) is x unless low >= x, min(m, high) is m unless high < m
    /// (so a NaN stays NaN).
    /// (The bounds are spelled as SIMD8<Float>: compared as inferred vectors, the lanes went one
    /// at a time through memory.)
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let l = SIMD8<Float>(repeating: low), h = SIMD8<Float>(repeating: high)
        let m = x.replacing(with: l, where: l .>= x)
        return m.replacing(with: h, where: h .< m)
    }
}

struct Rectifier: ScalarFunction, LaneFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x > 0 ? x : 0 }
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { SIMD8().replacing(with: x, where: x .> 0) }
}

/// y = max(x, 0), with the chosen backward rule.
public func relu(_ x: Variable, rule: ReLURule = .plain) -> Variable {
    let y = x.value.mapInParallel(Rectifier())
    return Variable.result(y, [x]) { dy in
        [Tensor(shape: dy.shape) { dx in
            x.value.withUnsafeBufferPointer { xs in dy.withUnsafeBufferPointer { d in
                switch rule {
                // Both operands are loaded unconditionally so the choice compiles to a blend, not
                // a branch that random signs would mispredict half the time.
                case .plain: for i in 0..<dx.count { let g = d[i], v = xs[i]; dx[i] = v > 0 ? g : 0 }
                case .deconvnet: for i in 0..<dx.count { let g = d[i]; dx[i] = Swift.max(g, 0) }
                case .guided: for i in 0..<dx.count { let g = d[i], v = xs[i]; dx[i] = v > 0 ? Swift.max(g, 0) : 0 }
                case .redirected: redirect(xs, d, dx, rows: x.shape.first ?? 1, low: 0, high: .infinity)
                }
            }}
        }]
    }
}

/// y = min(max(x, 0), 6), with the chosen backward rule: ReLU6 is a ReLU that also saturates,
/// so the deconvnet and guided rules treat it as one (the deconvnet rectifies the backward
/// signal and ignores the forward masks; guided backpropagation keeps the true gradient's mask,
/// 0 < x < 6, and rectifies as well).
public func relu6(_ x: Variable, rule: ReLURule = .plain) -> Variable {
    let deconvnet = rule == .deconvnet
    guard deconvnet || rule == .guided else { return clip(x, min: 0, max: 6, rule: rule == .redirected ? .redirected : .plain) }
    let y = x.value.mapInParallel(Clamp(low: 0, high: 6))
    return Variable.result(y, [x]) { dy in
        [Tensor(shape: dy.shape) { dx in
            x.value.withUnsafeBufferPointer { xs in dy.withUnsafeBufferPointer { d in
                if deconvnet {
                    for i in 0..<dx.count { dx[i] = Swift.max(d[i], 0) }
                } else {
                    for i in 0..<dx.count { let v = xs[i]; dx[i] = v > 0 && v < 6 ? Swift.max(d[i], 0) : 0 }
                }
            }}
        }]
    }
}

/// y = x for x > 0, slope · x otherwise.
public func leakyRelu(_ x: Variable, slope: Float = 0.01) -> Variable {
    unary(x, { $0 > 0 ? $0 : slope * $0 }, { x, _ in x > 0 ? 1 : slope })
}

/// y = 1 / (1 + e^-x); dy/dx = y (1 - y). The exponential is `fastExp`, so the loop vectorizes
/// (SiLU and squeeze-excitation networks spend much of their time here).
public func sigmoid(_ x: Variable) -> Variable {
    unary(x, Logistic(), LogisticDerivative())
}

/// SiLU (swish), y = x · sigmoid(x), in one pass; dy/dx = s (1 + x (1 − s)) with s = sigmoid(x).
/// EfficientNet's activation, which exporters write as Sigmoid followed by Mul.
public func silu(_ x: Variable) -> Variable {
    unary(x, SigmoidLinearUnit(), SigmoidLinearUnitDerivative())
}

struct SigmoidLinearUnit: ScalarFunction, LaneFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x / (1 + fastExp(-x)) }
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x / (1 + fastExp(-x)) }
}

struct SigmoidLinearUnitDerivative: ScalarOperator {
    @inline(__always) func callAsFunction(_ x: Float, _ y: Float) -> Float {
        let s = Logistic()(x)
        return s * (1 + x * (1 - s))
    }
}

struct Logistic: ScalarFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { 1 / (1 + fastExp(-x)) }
}

struct LogisticDerivative: ScalarOperator {
    @inline(__always) func callAsFunction(_ x: Float, _ y: Float) -> Float { y * (1 - y) }
}

/// e^x in float32 without a call or a branch, so loops over it vectorize: x = n ln 2 + r with
/// |r| <= ln 2 / 2, Cephes' degree-6 polynomial for e^r (within 2 ulp of expf), and 2^n put
/// together from its bits. Inputs are clamped to [-87.3, 88], where e^x is a normal float
/// (about 1.2e-38 to 1.65e38); NaN stays NaN. Each step of the range reduction and the
/// polynomial is one fused multiply-add (`addingProduct` here, `cnn_fma8` from CKernels in the
/// eight-lane version): half the instructions of a product and a sum. With those, SiLU, computed
/// as each convolution output is stored, had cost about a quarter of EfficientNet-B0's forward
/// pass (0.73 of it with ReLU in its place); fused, the pass takes 0.87-0.88 of its time before.
@inline(__always)
public func fastExp(_ x: Float) -> Float {
    let c = Swift.min(Swift.max(x, -87.3), 88)
    // n = round(c / ln 2): adding 1.5·2^23 rounds to an integer (to nearest, ties to even) and
    // leaves n in the low mantissa bits, in plain arithmetic that vectorizes on any x86-64
    // (a call to rintf does not).
    let t = Float(12_582_912).addingProduct(c, 1.442695040888963)
    let n = t - 12_582_912
    let r = c.addingProduct(n, -0.693359375).addingProduct(n, 2.12194440e-4)
    var p: Float = 1.9875691500e-4
    p = Float(1.3981999507e-3).addingProduct(p, r)
    p = Float(8.3334519073e-3).addingProduct(p, r)
    p = Float(4.1665795894e-2).addingProduct(p, r)
    p = Float(1.6666665459e-1).addingProduct(p, r)
    p = Float(5.0000001201e-1).addingProduct(p, r)
    let y = r.addingProduct(p * r, r) + 1
    // 2^n is (n + 127) << 23.
    let bits = (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23
    return x.isNaN ? x : y * Float(bitPattern: bits)
}

/// `fastExp` of eight values, each with the same operations in the same order.
@inline(__always)
func fastExp(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let low = SIMD8<Float>(repeating: -87.3), high = SIMD8<Float>(repeating: 88)
    var c = x.replacing(with: low, where: low .>= x)
    c = c.replacing(with: high, where: high .< c)
    // a + b · c, rounded once, as Float.addingProduct does in the scalar version.
    @inline(__always) func fused(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>) -> SIMD8<Float> { cnn_fma8(b, c, a) }
    @inline(__always) func splat(_ v: Float) -> SIMD8<Float> { SIMD8<Float>(repeating: v) }
    let t = fused(splat(12_582_912), c, splat(1.442695040888963))
    let n = t - 12_582_912
    let r = fused(fused(c, n, splat(-0.693359375)), n, splat(2.12194440e-4))
    var p = splat(1.9875691500e-4)
    p = fused(splat(1.3981999507e-3), p, r)
    p = fused(splat(8.3334519073e-3), p, r)
    p = fused(splat(4.1665795894e-2), p, r)
    p = fused(splat(1.6666665459e-1), p, r)
    p = fused(splat(5.0000001201e-1), p, r)
    let y = fused(r, p * r, r) + 1
    let bits = (unsafeBitCast(t, to: SIMD8<UInt32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    return (y * unsafeBitCast(bits, to: SIMD8<Float>.self)).replacing(with: x, where: x .!= x)
}

/// y = tanh x; dy/dx = 1 - y².
public func tanh(_ x: Variable) -> Variable {
    unary(x, { Foundation.tanh($0) }, { _, y in 1 - y * y })
}

/// y = min(max(x, low), high) (ReLU6 is clip(x, 0, 6)); the gradient passes where low < x < high.
/// With `rule: .redirected` (ReLU6 in an input optimization), the gradient is redirected at
/// both bounds as ReLU's is at zero; the other rules leave clip's gradient as it is.
public func clip(_ x: Variable, min low: Float, max high: Float, rule: ReLURule = .plain) -> Variable {
    let y = x.value.mapInParallel(Clamp(low: low, high: high))
    return Variable.result(y, [x]) { dy in
        [Tensor(shape: dy.shape) { dx in
            x.value.withUnsafeBufferPointer { xs in dy.withUnsafeBufferPointer { d in
                if rule == .redirected { redirect(xs, d, dx, rows: x.shape.first ?? 1, low: low, high: high); return }
                // Loaded unconditionally so the mask compiles to a blend (ReLU6 sits in hot paths).
                for i in 0..<dx.count { let g = d[i], v = xs[i]; dx[i] = v > low && v < high ? g : 0 }
            }}
        }]
    }
}

/// The redirected gradient of a clip to [low, high] (Lucid's redirected ReLU and ReLU6), row by
/// row of the batch: the true gradient where some of the row passes, and otherwise also the
/// gradient at clipped units that points back into the range.
private func redirect(_ xs: UnsafeBufferPointer<Float>, _ d: UnsafeBufferPointer<Float>, _ dx: UnsafeMutableBufferPointer<Float>,
                      rows: Int, low: Float, high: Float) {
    let per = dx.count / Swift.max(rows, 1)
    for r in 0..<Swift.max(rows, 1) {
        var alive = false
        for i in (r * per)..<((r + 1) * per) {
            let v = xs[i], g = d[i]
            let pass = v > low && v < high
            dx[i] = pass ? g : 0
            if pass && g != 0 { alive = true }
        }
        if alive { continue }
        for i in (r * per)..<((r + 1) * per) {
            let v = xs[i], g = d[i]
            dx[i] = (v <= low && g < 0) || (v >= high && g > 0) ? 0 : g
        }
    }
}

/// The sizes around an axis: outer x axis x inner.
func axisSplit(_ shape: [Int], _ axis: Int) throws -> (outer: Int, length: Int, inner: Int, axis: Int) {
    let a = axis < 0 ? axis + shape.count : axis
    guard a >= 0 && a < shape.count else {
        throw EngineError.invalidArgument("axis \(axis) is out of range for a tensor of shape \(shape)")
    }
    return (shape[..<a].reduce(1, *), shape[a], shape[(a + 1)...].reduce(1, *), a)
}

/// softmax along `axis`: y_i = e^{x_i - max} / Σ_j e^{x_j - max}; dx = y (dy - Σ dy·y).
public func softmax(_ x: Variable, axis: Int = -1) throws -> Variable {
    let (outer, len, inner, _) = try axisSplit(x.shape, axis)
    let y = softmaxForward(x.value, outer, len, inner, log: false)
    return Variable.result(y, [x]) { dy in
        var dx = dy
        y.withUnsafeBufferPointer { ys in dx.withUnsafeMutableBufferPointer { d in
            for o in 0..<outer { for i in 0..<inner {
                let base = o * len * inner + i
                var dot: Float = 0
                for j in 0..<len { dot += d[base + j * inner] * ys[base + j * inner] }
                for j in 0..<len { let k = base + j * inner; d[k] = ys[k] * (d[k] - dot) }
            }}
        }}
        return [dx]
    }
}

/// log-softmax along `axis`: y = x - max - log Σ e^{x - max}; dx = dy - e^y Σ dy.
public func logSoftmax(_ x: Variable, axis: Int = -1) throws -> Variable {
    let (outer, len, inner, _) = try axisSplit(x.shape, axis)
    let y = softmaxForward(x.value, outer, len, inner, log: true)
    return Variable.result(y, [x]) { dy in
        var dx = dy
        y.withUnsafeBufferPointer { ys in dx.withUnsafeMutableBufferPointer { d in
            for o in 0..<outer { for i in 0..<inner {
                let base = o * len * inner + i
                var s: Float = 0
                for j in 0..<len { s += d[base + j * inner] }
                for j in 0..<len { let k = base + j * inner; d[k] -= Foundation.exp(ys[k]) * s }
            }}
        }}
        return [dx]
    }
}

func softmaxForward(_ x: Tensor, _ outer: Int, _ len: Int, _ inner: Int, log: Bool) -> Tensor {
    Tensor(shape: x.shape) { out in
        x.withUnsafeBufferPointer { xs in
            for o in 0..<outer { for i in 0..<inner {
                let base = o * len * inner + i
                var m = -Float.infinity
                for j in 0..<len { m = Swift.max(m, xs[base + j * inner]) }
                var s: Float = 0
                for j in 0..<len { s += Foundation.exp(xs[base + j * inner] - m) }
                if log {
                    let ls = Foundation.log(s)
                    for j in 0..<len { let k = base + j * inner; out[k] = xs[k] - m - ls }
                } else {
                    for j in 0..<len { let k = base + j * inner; out[k] = Foundation.exp(xs[k] - m) / s }
                }
            }}
        }
    }
}

/// Mean cross-entropy of logits [N, classes] against class indices: -1/N Σ log softmax(x)[n, t_n].
public func crossEntropy(_ logits: Variable, targets: [Int]) throws -> Variable {
    guard logits.shape.count == 2 else { throw EngineError.shapeMismatch("cross-entropy takes logits [N, classes], got \(logits.shape)") }
    let n = logits.shape[0], k = logits.shape[1]
    guard targets.count == n else { throw EngineError.shapeMismatch("\(targets.count) targets for \(n) rows of logits") }
    if let bad = targets.first(where: { $0 < 0 || $0 >= k }) {
        throw EngineError.invalidArgument("target class \(bad) is out of range 0..<\(k)")
    }
    let logp = softmaxForward(logits.value, n, k, 1, log: true)
    var loss: Double = 0
    for i in 0..<n { loss -= Double(logp.scalars[i * k + targets[i]]) }
    let value = Tensor(scalar: Float(loss / Double(Swift.max(n, 1))))
    return Variable.result(value, [logits]) { dy in
        let g = dy.scalars[0] / Float(Swift.max(n, 1))
        var dx = logp.map { Foundation.exp($0) }
        for i in 0..<n { dx.scalars[i * k + targets[i]] -= 1 }
        return [dx.map { $0 * g }]
    }
}
