import Foundation

// The ops exported graphs use besides the classic CNN ones: MobileNetV3's hard sigmoid and hard
// swish, GELU through erf (ConvNeXt), PReLU, permutations (channel shuffle, NHWC layouts), layer
// normalization, elementwise minimum and maximum, reductions over several axes and nearest
// upsampling. Each has its backward pass; GradientCheckTests checks them by finite differences.

/// y = clamp(α·x + β, 0, 1) (ONNX's defaults α = 0.2, β = 0.5; PyTorch's are 1/6 and 1/2).
public func hardSigmoid(_ x: Variable, alpha: Float = 0.2, beta: Float = 0.5) -> Variable {
    unary(x, HardSigmoid(alpha: alpha, beta: beta), HardSigmoidDerivative(alpha: alpha, beta: beta))
}

struct HardSigmoid: ScalarFunction {
    let alpha: Float, beta: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { Swift.min(Swift.max(alpha * x + beta, 0), 1) }
}

struct HardSigmoidDerivative: ScalarOperator {
    let alpha: Float, beta: Float
    @inline(__always) func callAsFunction(_ x: Float, _ y: Float) -> Float {
        let u = alpha * x + beta
        return u > 0 && u < 1 ? alpha : 0
    }
}

/// y = x · clamp(x/6 + 1/2, 0, 1), MobileNetV3's activation.
public func hardSwish(_ x: Variable) -> Variable {
    unary(x, HardSwish(), HardSwishDerivative())
}

struct HardSwish: ScalarFunction, LaneFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { x * Swift.min(Swift.max(x / 6 + 0.5, 0), 1) }
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x * Clamp(low: 0, high: 1)(x / 6 + 0.5) }
}

struct HardSwishDerivative: ScalarOperator {
    @inline(__always) func callAsFunction(_ x: Float, _ y: Float) -> Float { x <= -3 ? 0 : (x >= 3 ? 1 : x / 3 + 0.5) }
}

/// The error function; d/dx = 2/√π · e^(−x²).
public func erf(_ x: Variable) -> Variable {
    unary(x, ErrorFunction(), ErrorFunctionDerivative())
}

/// GELU, x · Φ(x) with Φ the standard normal distribution function (the exact form, through erf).
public func gelu(_ x: Variable) -> Variable {
    unary(x, GaussianErrorLinearUnit(), GaussianErrorLinearUnitDerivative())
}

/// erf x in plain arithmetic, without branches, so that the elementwise loops run it eight values
/// at a time (the C library's erff, one call a value, took a quarter of ConvNeXt's forward pass).
/// Within 2.1e-7 of the exact value relative to it (4 ulp), ±1 at the infinities, NaN for NaN:
/// - |x| < 1: its Taylor series, 2/√π · x · Σₙ (−x²)ⁿ / (n! (2n + 1)), to n = 12 (the next term
///   is below 2e-9 of the sum);
/// - otherwise Abramowitz and Stegun's 7.1.26, 1 − (a₁t + … + a₅t⁵) e^(−x²) with t = 1 / (1 + p|x|),
///   within 1.5e-7 of erf, which is at least 0.84 there.
@inline(__always)
func fastErf(_ x: Float) -> Float {
    let a = Float(bitPattern: x.bitPattern & 0x7FFF_FFFF), s = x * x
    var q: Float = 1.0 / (479_001_600 * 25)
    q = Float(-(1.0 / (39_916_800 * 23))).addingProduct(q, s)
    q = Float(1.0 / (3_628_800 * 21)).addingProduct(q, s)
    q = Float(-(1.0 / (362_880 * 19))).addingProduct(q, s)
    q = Float(1.0 / (40_320 * 17)).addingProduct(q, s)
    q = Float(-(1.0 / (5_040 * 15))).addingProduct(q, s)
    q = Float(1.0 / (720 * 13)).addingProduct(q, s)
    q = Float(-(1.0 / (120 * 11))).addingProduct(q, s)
    q = Float(1.0 / (24 * 9)).addingProduct(q, s)
    q = Float(-(1.0 / (6 * 7))).addingProduct(q, s)
    q = Float(1.0 / (2 * 5)).addingProduct(q, s)
    q = Float(-(1.0 / 3)).addingProduct(q, s)
    q = Float(1).addingProduct(q, s)
    let series = 1.1283791670955126 * x * q
    let t = 1 / (1 + 0.3275911 * a)
    var p: Float = 1.061405429
    p = Float(-1.453152027).addingProduct(p, t)
    p = Float(1.421413741).addingProduct(p, t)
    p = Float(-0.284496736).addingProduct(p, t)
    p = Float(0.254829592).addingProduct(p, t)
    let tail = 1 - p * t * fastExp(-s)
    // The tail's sign is x's (bit for bit, so that erf(−x) = −erf(x)).
    return a < 1 ? series : Float(bitPattern: (x.bitPattern & 0x8000_0000) | tail.bitPattern)
}

struct ErrorFunction: ScalarFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { fastErf(x) }
}
struct ErrorFunctionDerivative: ScalarOperator {
    @inline(__always) func callAsFunction(_ x: Float, _ y: Float) -> Float { 1.1283791670955126 * fastExp(-x * x) }
}
struct GaussianErrorLinearUnit: ScalarFunction {
    @inline(__always) func callAsFunction(_ x: Float) -> Float { 0.5 * x * (1 + fastErf(x * 0.70710678118654752)) }
}
struct GaussianErrorLinearUnitDerivative: ScalarOperator {
    @inline(__always) func callAsFunction(_ x: Float, _ y: Float) -> Float {
        0.5 * (1 + fastErf(x * 0.70710678118654752)) + x * 0.3989422804014327 * fastExp(-0.5 * x * x)
    }
}

/// y = x for x > 0, slope · x otherwise, with `slope` broadcast against x (one per channel: [C, 1, 1]).
public func prelu(_ x: Variable, _ slope: Variable) throws -> Variable {
    let y = try broadcastMap(x.value, slope.value) { $0 > 0 ? $0 : $0 * $1 }
    return Variable.result(y, [x, slope]) { dy in
        let dx = try broadcastMap(try broadcastMap(x.value, slope.value) { $0 > 0 ? 1 : $1 }, dy, Product())
        let ds = slope.requiresGrad ? try sumToShape(try broadcastMap(x.value.map { Swift.min($0, 0) }, dy, Product()), slope.shape) : nil
        return [try sumToShape(dx, x.shape), ds]
    }
}

/// The elementwise smaller (`larger` false) or larger of a and b, broadcast; the gradient goes
/// to the operand chosen (to a on a tie).
public func extremum(_ a: Variable, _ b: Variable, larger: Bool) throws -> Variable {
    let y = try broadcastMap(a.value, b.value) { larger ? Swift.max($0, $1) : Swift.min($0, $1) }
    return Variable.result(y, [a, b]) { dy in
        let pickA = try broadcastMap(a.value, b.value) { (larger ? $0 >= $1 : $0 <= $1) ? 1 : 0 }
        let ga = try broadcastMap(pickA, dy, Product()), gb = try broadcastMap(pickA.map { 1 - $0 }, dy, Product())
        return [a.requiresGrad ? try sumToShape(ga, a.shape) : nil, b.requiresGrad ? try sumToShape(gb, b.shape) : nil]
    }
}

/// The axes of x permuted: output axis i is input axis perm[i].
public func permute(_ x: Variable, _ perm: [Int]) throws -> Variable {
    let rank = x.shape.count
    guard perm.count == rank, perm.sorted() == Array(0..<rank) else {
        throw EngineError.invalidArgument("permutation \(perm) does not fit a tensor of shape \(x.shape)")
    }
    if perm == Array(0..<rank) { return x }
    var inverse = [Int](repeating: 0, count: rank)
    for (i, p) in perm.enumerated() { inverse[p] = i }
    return Variable.result(permuted(x.value, perm), [x]) { dy in [permuted(dy, inverse)] }
}

/// The tensor with its axes permuted, copied row by row along the output's last axis.
func permuted(_ t: Tensor, _ perm: [Int]) -> Tensor {
    let shape = perm.map { t.shape[$0] }, rank = shape.count
    let source = t.strides, strides = perm.map { source[$0] }
    guard rank > 0, t.count > 0 else { return Tensor(zeros: shape) }
    let inner = shape[rank - 1], step = strides[rank - 1]
    return Tensor(shape: shape) { out in
        t.withUnsafeBufferPointer { s in
            var index = [Int](repeating: 0, count: rank)
            var offset = 0, o = 0
            while o < out.count {
                for j in 0..<inner { out[o + j] = s[offset + j * step] }
                o += inner
                var d = rank - 2
                while d >= 0 {
                    index[d] += 1; offset += strides[d]
                    if index[d] < shape[d] { break }
                    offset -= strides[d] * shape[d]; index[d] = 0
                    d -= 1
                }
            }
        }
    }
}

/// Layer normalization over the trailing axes from `axis` on: (x − mean) / √(var + eps), then
/// scaled and shifted by weight and bias (shaped like those axes), built from differentiable ops.
public func layerNorm(_ x: Variable, weight: Variable?, bias: Variable?, axis: Int, eps: Float) throws -> Variable {
    let rank = x.shape.count
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0, a < rank else { throw EngineError.invalidArgument("layer norm axis \(axis) is out of range for shape \(x.shape)") }
    let outer = x.shape[..<a].reduce(1, *), inner = x.shape[a...].reduce(1, *)
    // Without a gradient, one kernel: each row's statistics and its normalized values in one
    // visit while the row is in cache, instead of the nine passes of the ops below.
    func matches(_ p: Variable?) -> Bool {
        guard let p else { return true }
        return !p.requiresGrad && p.value.count == inner && p.shape.drop(while: { $0 == 1 }).elementsEqual(x.shape[a...].drop(while: { $0 == 1 }))
    }
    if !x.requiresGrad, matches(weight), matches(bias), inner > 0 {
        return Variable(layerNormRows(x.value, inner: inner, weight: weight?.value, bias: bias?.value, eps: eps))
    }
    let rows = try reshape(x, [outer, inner])
    let mu = try mean(rows, axis: 1, keepDims: true)
    let centred = try subtract(rows, mu)
    let variance = try mean(elementwise(.square, centred), axis: 1, keepDims: true)
    let spread = elementwise(.sqrt, try add(variance, Variable(Tensor(scalar: eps))))
    var y = try reshape(try divide(centred, spread), x.shape)
    if let weight { y = try multiply(y, weight) }
    if let bias { y = try add(y, bias) }
    return y
}

/// Layer normalization of each row of `inner` values: (x − mean) / √(variance + eps) · weight +
/// bias, the mean and the variance of the centred values summed in eight lanes.
func layerNormRows(_ x: Tensor, inner: Int, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
    let rows = x.count / inner
    let parts = x.count < elementwiseParallelMinimum ? 1 : Swift.min(Parallel.threads, rows)
    let ones = weight == nil ? [Float](repeating: 1, count: inner) : [], zeros = bias == nil ? [Float](repeating: 0, count: inner) : []
    let w = weight?.scalars ?? ones, b = bias?.scalars ?? zeros
    return Tensor(shape: x.shape, unsafeUninitialized: { out in
        x.withUnsafeBufferPointer { xs in w.withUnsafeBufferPointer { wp in b.withUnsafeBufferPointer { bp in
            let src = xs.baseAddress!, dst = out.baseAddress!, scale = wp.baseAddress!, shift = bp.baseAddress!
            let vectors = inner / 8
            Parallel.forEach(parts, inline: parts == 1) { t in
                for r in (rows * t / parts)..<(rows * (t + 1) / parts) {
                    let row = src + r * inner, y = dst + r * inner
                    var lanes = Lanes()
                    for v in 0..<vectors { lanes += Lanes.load(row + 8 * v) }
                    var total = lanes.sum()
                    for i in (8 * vectors)..<inner { total += row[i] }
                    let mean = total / Float(inner)
                    lanes = Lanes()
                    let m = Lanes(repeating: mean)
                    for v in 0..<vectors {
                        let d = Lanes.load(row + 8 * v) - m
                        lanes.addProduct(d, d)
                    }
                    var squares = lanes.sum()
                    for i in (8 * vectors)..<inner { let d = row[i] - mean; squares += d * d }
                    let spread = (squares / Float(inner) + eps).squareRoot()
                    for i in 0..<inner { y[i] = (row[i] - mean) / spread * scale[i] + shift[i] }
                }
            }
        }}}
    })
}

/// Sum, maximum or mean over several axes, keeping them as size 1 when `keepDims`.
public func reduce(_ x: Variable, _ operation: String, axes: [Int], keepDims: Bool) throws -> Variable {
    let rank = x.shape.count
    let chosen = Set(try axes.map { a -> Int in
        let b = a < 0 ? a + rank : a
        guard b >= 0, b < rank else { throw EngineError.invalidArgument("axis \(a) is out of range for shape \(x.shape)") }
        return b
    })
    var y = x
    for a in chosen.sorted(by: >) {
        switch operation {
        case "sum": y = try sum(y, axis: a, keepDims: true)
        case "max": y = try max(y, axis: a, keepDims: true)
        case "mean": y = try mean(y, axis: a, keepDims: true)
        default: throw EngineError.unknownName(operation, candidates: ["sum", "max", "mean"])
        }
    }
    if keepDims { return y }
    return try reshape(y, x.shape.enumerated().filter { !chosen.contains($0.offset) }.map(\.element))
}

/// Nearest-neighbour upsampling of the last two axes by whole factors: each value repeated
/// `scale.h` × `scale.w` times; the gradient sums each block.
public func upsampleNearest(_ x: Variable, scale: (h: Int, w: Int)) throws -> Variable {
    guard x.shape.count >= 2, scale.h >= 1, scale.w >= 1 else {
        throw EngineError.invalidArgument("nearest upsampling takes [..., H, W] and factors of at least 1, got \(x.shape) by \(scale)")
    }
    let h = x.shape[x.shape.count - 2], w = x.shape[x.shape.count - 1], planes = x.value.count / Swift.max(h * w, 1)
    let oh = h * scale.h, ow = w * scale.w
    let y = Tensor(shape: Array(x.shape.dropLast(2)) + [oh, ow]) { out in
        x.value.withUnsafeBufferPointer { s in
            for p in 0..<planes { for i in 0..<oh { for j in 0..<ow {
                out[(p * oh + i) * ow + j] = s[(p * h + i / scale.h) * w + j / scale.w]
            }}}
        }
    }
    return Variable.result(y, [x]) { dy in
        var dx = Tensor(zeros: x.shape)
        dx.withUnsafeMutableBufferPointer { d in dy.withUnsafeBufferPointer { g in
            for p in 0..<planes { for i in 0..<oh { for j in 0..<ow {
                d[(p * h + i / scale.h) * w + j / scale.w] += g[(p * oh + i) * ow + j]
            }}}
        }}
        return [dx]
    }
}

/// The entries of x at `indices` along `axis` (negative indices count from the end), as NumPy's
/// `take`: the axis is replaced by the indices' shape. The gradient adds back into the taken places.
public func take(_ x: Variable, axis: Int, indices: [Int], indicesShape: [Int]) throws -> Variable {
    let (outer, length, inner, a) = try axisSplit(x.shape, axis)
    guard indicesShape.reduce(1, *) == indices.count else {
        throw EngineError.invalidArgument("take: \(indices.count) indices for an index shape \(indicesShape)")
    }
    let picked = try indices.map { i -> Int in
        let j = i < 0 ? i + length : i
        guard j >= 0, j < length else { throw EngineError.invalidArgument("index \(i) is out of range for an axis of size \(length)") }
        return j
    }
    let shape = Array(x.shape[..<a]) + indicesShape + Array(x.shape[(a + 1)...])
    let n = picked.count
    let y = Tensor(shape: shape) { out in
        x.value.withUnsafeBufferPointer { s in
            for o in 0..<outer { for (k, j) in picked.enumerated() { for i in 0..<inner {
                out[(o * n + k) * inner + i] = s[(o * length + j) * inner + i]
            }}}
        }
    }
    return Variable.result(y, [x]) { dy in
        var dx = Tensor(zeros: x.shape)
        dx.withUnsafeMutableBufferPointer { d in dy.withUnsafeBufferPointer { g in
            for o in 0..<outer { for (k, j) in picked.enumerated() { for i in 0..<inner {
                d[(o * length + j) * inner + i] += g[(o * n + k) * inner + i]
            }}}
        }}
        return [dx]
    }
}
