/// The loops under elementwise ops: one pass over the scalars with the function inlined, so that
/// it vectorizes, split across the engine's threads when the tensor is large enough to be worth
/// the hop. Imported graphs spend much of their time here (SiLU as Sigmoid·Mul, squeeze-excitation
/// scales, residual additions), between the convolutions.

/// Below this many scalars an elementwise pass runs on the calling thread.
let elementwiseParallelMinimum = 1 << 15

/// Runs `body(start, end)` over 0..<count in contiguous chunks, one per thread when count is large.
@inline(__always)
func forEachChunk(_ count: Int, _ body: (Int, Int) -> Void) {
    let parts = count < elementwiseParallelMinimum ? 1 : Swift.min(Parallel.threads, count / (elementwiseParallelMinimum / 2))
    if parts <= 1 { body(0, count); return }
    Parallel.forEach(parts) { t in body(count * t / parts, count * (t + 1) / parts) }
}

/// A function of one scalar that the loops below are specialized for. (A closure would be called
/// through a pointer for every element once the loop runs on other threads: several times slower
/// than the loop it is in, and no vectorization.)
protocol ScalarFunction { func callAsFunction(_ x: Float) -> Float }
/// A function of two scalars, as `ScalarFunction`.
protocol ScalarOperator { func callAsFunction(_ a: Float, _ b: Float) -> Float }
/// A scalar function applied to eight values at once, each as the scalar function would.
protocol LaneFunction { func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> }
/// The values unchanged.
struct SameLanes: LaneFunction { @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { x } }

/// A closure as a scalar function, for the ops that are not hot (erf, tanh, GELU): parallel,
/// but called through its pointer.
struct AnyScalarFunction: ScalarFunction {
    let body: (Float) -> Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { body(x) }
}

struct AnyScalarOperator: ScalarOperator {
    let body: (Float, Float) -> Float
    @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { body(a, b) }
}

struct Sum: ScalarOperator { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b } }
struct Difference: ScalarOperator { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a - b } }
struct Product: ScalarOperator { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b } }
struct Quotient: ScalarOperator { @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a / b } }

extension Tensor {
    /// `f` applied to every scalar, on several threads when large.
    func mapInParallel<F: ScalarFunction>(_ f: F) -> Tensor {
        Tensor(shape: shape) { out in
            scalars.withUnsafeBufferPointer { src in
                let s = src.baseAddress!, o = out.baseAddress!
                forEachChunk(src.count) { i0, i1 in for i in i0..<i1 { o[i] = f(s[i]) } }
            }
        }
    }

    /// `f` applied to the scalars of two tensors of the same shape, on several threads when large.
    func zipMapInParallel<F: ScalarOperator>(_ other: Tensor, _ f: F) -> Tensor {
        precondition(shape == other.shape)
        return Tensor(shape: shape) { out in
            scalars.withUnsafeBufferPointer { a in other.scalars.withUnsafeBufferPointer { b in
                let pa = a.baseAddress!, pb = b.baseAddress!, o = out.baseAddress!
                forEachChunk(a.count) { i0, i1 in for i in i0..<i1 { o[i] = f(pa[i], pb[i]) } }
            }}
        }
    }

    func mapInParallel(_ f: (Float) -> Float) -> Tensor {
        withoutActuallyEscaping(f) { mapInParallel(AnyScalarFunction(body: $0)) }
    }
}

/// dx = dy · f'(x, y) for an elementwise y = f(x), on several threads when large.
func chainRule<D: ScalarOperator>(_ dy: Tensor, x: Tensor, y: Tensor, _ derivative: D) -> Tensor {
    Tensor(shape: dy.shape) { dx in
        x.withUnsafeBufferPointer { xs in y.withUnsafeBufferPointer { ys in dy.withUnsafeBufferPointer { d in
            let px = xs.baseAddress!, py = ys.baseAddress!, pd = d.baseAddress!, o = dx.baseAddress!
            forEachChunk(dx.count) { i0, i1 in for i in i0..<i1 { o[i] = pd[i] * derivative(px[i], py[i]) } }
        }}}
    }
}

/// The dimensions of a broadcast with those that can be read as one merged: a run of dimensions
/// along which both operands are contiguous (or both stretched) is one dimension. A channel
/// scale [1, C, 1, 1] times [1, C, H, W] is then C rows of H·W, each a scalar times a row.
struct BroadcastPlan {
    /// Sizes of the output's merged dimensions, outermost first; the last is the row.
    var sizes: [Int] = []
    /// Each operand's stride along each merged dimension (0 where it is stretched).
    var stridesA: [Int] = [], stridesB: [Int] = []

    init(_ a: [Int], _ b: [Int], out: [Int]) {
        let n = out.count
        let pa = [Int](repeating: 1, count: n - a.count) + a, pb = [Int](repeating: 1, count: n - b.count) + b
        let ca = Tensor.strides(of: pa), cb = Tensor.strides(of: pb)
        for d in 0..<n where out[d] != 1 {
            let sa = pa[d] == 1 ? 0 : ca[d], sb = pb[d] == 1 ? 0 : cb[d]
            if let last = sizes.indices.last, stridesA[last] == sa * out[d], stridesB[last] == sb * out[d] {
                sizes[last] *= out[d]; stridesA[last] = sa; stridesB[last] = sb
            } else {
                sizes.append(out[d]); stridesA.append(sa); stridesB.append(sb)
            }
        }
        if sizes.isEmpty { sizes = [1]; stridesA = [0]; stridesB = [0] }
    }

    var row: Int { sizes[sizes.count - 1] }
    var rows: Int { sizes.dropLast().reduce(1, *) }

    /// Where row `r` starts in each operand.
    func offsets(ofRow r: Int) -> (Int, Int) {
        var rest = r, oa = 0, ob = 0
        for d in stride(from: sizes.count - 2, through: 0, by: -1) {
            let i = rest % sizes[d]
            rest /= sizes[d]
            oa += i * stridesA[d]; ob += i * stridesB[d]
        }
        return (oa, ob)
    }
}

/// f over the broadcast of a and b (NumPy's rules), with f inlined into each of the loop's shapes:
/// both operands contiguous along the row, or one of them a scalar along it.
func broadcastMap<F: ScalarOperator>(_ a: Tensor, _ b: Tensor, _ f: F) throws -> Tensor {
    if a.shape == b.shape { return a.zipMapInParallel(b, f) }
    let out = try broadcastShape(a.shape, b.shape)
    if b.count == 1 { return a.mapInParallel(Right(f: f, b: b.scalars[0])).withShape(out) }
    if a.count == 1 { return b.mapInParallel(Left(f: f, a: a.scalars[0])).withShape(out) }
    let plan = BroadcastPlan(a.shape, b.shape, out: out)
    let row = plan.row, rows = plan.rows
    let ia = plan.stridesA[plan.sizes.count - 1], ib = plan.stridesB[plan.sizes.count - 1]
    // Rows step along the next dimension out by its strides; the full offsets are worked out
    // (divisions) only where a run of those starts: short rows (a blocked image's 8 lanes times
    // a channel's scale) would otherwise spend more on the divisions than on the values.
    let d2 = plan.sizes.count - 2
    let run = d2 >= 0 ? plan.sizes[d2] : 1
    let stepA = d2 >= 0 ? plan.stridesA[d2] : 0, stepB = d2 >= 0 ? plan.stridesB[d2] : 0
    return Tensor(shape: out) { dst in
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
            let pa = ap.baseAddress!, pb = bp.baseAddress!, o = dst.baseAddress!
            // Chunks of whole rows, so each thread's rows are its own.
            let perChunk = Swift.max(1, elementwiseParallelMinimum / Swift.max(row, 1))
            let chunks = (rows + perChunk - 1) / perChunk
            let parts = Swift.min(Parallel.threads, chunks)
            Parallel.forEach(parts, inline: parts <= 1) { t in
                let first = rows * t / parts
                var (oa, ob) = plan.offsets(ofRow: first)
                for r in first..<(rows * (t + 1) / parts) {
                    if r != first {
                        if r % run == 0 { (oa, ob) = plan.offsets(ofRow: r) } else { oa += stepA; ob += stepB }
                    }
                    let x = pa + oa, y = pb + ob, z = o + r * row
                    if ia != 0 && ib != 0 {
                        for j in 0..<row { z[j] = f(x[j], y[j]) }
                    } else if ib == 0 {
                        let s = y[0]
                        for j in 0..<row { z[j] = f(x[j], s) }
                    } else {
                        let s = x[0]
                        for j in 0..<row { z[j] = f(s, y[j]) }
                    }
                }
            }
        }}
    }
}

/// A closure over the broadcast, as `broadcastMap` with an `AnyScalarOperator`.
func broadcastMap(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) throws -> Tensor {
    try withoutActuallyEscaping(f) { try broadcastMap(a, b, AnyScalarOperator(body: $0)) }
}

/// f(x, b) and f(a, x) with one operand fixed.
private struct Right<F: ScalarOperator>: ScalarFunction {
    let f: F, b: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { f(x, b) }
}

private struct Left<F: ScalarOperator>: ScalarFunction {
    let f: F, a: Float
    @inline(__always) func callAsFunction(_ x: Float) -> Float { f(a, x) }
}
