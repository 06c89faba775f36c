import Foundation

/// Elementwise arithmetic with NumPy broadcasting, and the reductions that undo it.
///
/// Shapes are aligned on the right; a dimension of 1 stretches to match. The gradient of a
/// broadcast input is the upstream gradient summed over the dimensions it was stretched along.
public func broadcastShape(_ a: [Int], _ b: [Int]) throws -> [Int] {
    let n = max(a.count, b.count)
    let pa = [Int](repeating: 1, count: n - a.count) + a
    let pb = [Int](repeating: 1, count: n - b.count) + b
    return try (0..<n).map { i in
        if pa[i] == pb[i] || pb[i] == 1 { return pa[i] }
        if pa[i] == 1 { return pb[i] }
        throw EngineError.shapeMismatch("shapes \(a) and \(b) do not broadcast (dimension \(i): \(pa[i]) vs \(pb[i]))")
    }
}

/// Sums `t` down to `shape` (the inverse of broadcasting `shape` up to t's shape), row by row of
/// the merged broadcast: a row either adds into a row of the result or sums into one of its scalars.
public func sumToShape(_ t: Tensor, _ shape: [Int]) throws -> Tensor {
    if t.shape == shape { return t }
    guard try broadcastShape(t.shape, shape) == t.shape else {
        throw EngineError.shapeMismatch("cannot sum \(t.shape) down to \(shape)")
    }
    let plan = BroadcastPlan(t.shape, shape, out: t.shape)
    let row = plan.row, ib = plan.stridesB[plan.sizes.count - 1]
    var r = Tensor(zeros: shape)
    t.withUnsafeBufferPointer { src in r.withUnsafeMutableBufferPointer { dst in
        let s = src.baseAddress!, d = dst.baseAddress!
        for k in 0..<plan.rows {
            let (oa, ob) = plan.offsets(ofRow: k)
            let x = s + oa, y = d + ob
            if ib != 0 {
                for j in 0..<row { y[j] += x[j] }
            } else {
                var sum: Float = 0
                for j in 0..<row { sum += x[j] }
                y[0] += sum
            }
        }
    }}
    return r
}

public func add(_ a: Variable, _ b: Variable) throws -> Variable {
    let y = try broadcastMap(a.value, b.value, Sum())
    return Variable.result(y, [a, b]) { dy in
        [a.requiresGrad ? try sumToShape(dy, a.shape) : nil, b.requiresGrad ? try sumToShape(dy, b.shape) : nil]
    }
}

public func subtract(_ a: Variable, _ b: Variable) throws -> Variable {
    let y = try broadcastMap(a.value, b.value, Difference())
    return Variable.result(y, [a, b]) { dy in
        [a.requiresGrad ? try sumToShape(dy, a.shape) : nil, b.requiresGrad ? try sumToShape(dy.map { -$0 }, b.shape) : nil]
    }
}

public func multiply(_ a: Variable, _ b: Variable) throws -> Variable {
    let y = try broadcastMap(a.value, b.value, Product())
    return Variable.result(y, [a, b]) { dy in
        [a.requiresGrad ? try sumToShape(try broadcastMap(dy, b.value, Product()), a.shape) : nil,
         b.requiresGrad ? try sumToShape(try broadcastMap(dy, a.value, Product()), b.shape) : nil]
    }
}

/// a / b; d/da = 1/b, d/db = -a/b².
public func divide(_ a: Variable, _ b: Variable) throws -> Variable {
    let y = try broadcastMap(a.value, b.value, Quotient())
    return Variable.result(y, [a, b]) { dy in
        [a.requiresGrad ? try sumToShape(try broadcastMap(dy, b.value, Quotient()), a.shape) : nil,
         b.requiresGrad ? try sumToShape(try broadcastMap(try broadcastMap(dy, y, Product()), b.value) { -$0 / $1 }, b.shape) : nil]
    }
}

public func negate(_ a: Variable) -> Variable {
    Variable.result(a.value.map { -$0 }, [a]) { dy in [dy.map { -$0 }] }
}

/// Elementwise functions with their derivatives.
public enum ElementwiseFunction: String, CaseIterable, Sendable {
    case exp, log, sqrt, abs, square

    func apply(_ x: Float) -> Float {
        switch self {
        case .exp: return Foundation.exp(x)
        case .log: return Foundation.log(x)
        case .sqrt: return x.squareRoot()
        case .abs: return Swift.abs(x)
        case .square: return x * x
        }
    }

    func derivative(_ x: Float, _ y: Float) -> Float {
        switch self {
        case .exp: return y
        case .log: return 1 / x
        case .sqrt: return 0.5 / y
        case .abs: return x > 0 ? 1 : (x < 0 ? -1 : 0)
        case .square: return 2 * x
        }
    }
}

public func elementwise(_ f: ElementwiseFunction, _ x: Variable) -> Variable {
    let y = x.value.map(f.apply)
    return Variable.result(y, [x]) { dy in
        var dx = dy
        x.value.withUnsafeBufferPointer { xs in y.withUnsafeBufferPointer { ys in dx.withUnsafeMutableBufferPointer { d in
            for i in 0..<d.count { d[i] *= f.derivative(xs[i], ys[i]) }
        }}}
        return [dx]
    }
}

/// x raised to a constant power; d/dx = p x^(p-1).
public func power(_ x: Variable, _ p: Float) -> Variable {
    let y = x.value.map { Foundation.pow($0, p) }
    return Variable.result(y, [x]) { dy in
        [dy.zipMap(x.value) { d, v in d * p * Foundation.pow(v, p - 1) }]
    }
}

// MARK: - Reductions

/// Sum over all elements (axis nil) or along one axis.
public func sum(_ x: Variable, axis: Int? = nil, keepDims: Bool = false) throws -> Variable {
    guard let axis else {
        let y = Tensor(scalar: x.value.sum())
        let shape = x.shape
        return Variable.result(y, [x]) { dy in [Tensor(repeating: dy.scalars[0], shape: shape)] }
    }
    let (outer, len, inner, a) = try axisSplit(x.shape, axis)
    var outShape = x.shape
    if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) }
    let y = Tensor(shape: outShape) { out in
        x.value.withUnsafeBufferPointer { xs in
            for o in 0..<outer { for i in 0..<inner {
                var s: Float = 0
                for j in 0..<len { s += xs[(o * len + j) * inner + i] }
                out[o * inner + i] = s
            }}
        }
    }
    return Variable.result(y, [x]) { dy in
        [Tensor(shape: x.shape) { out in
            dy.withUnsafeBufferPointer { d in
                for o in 0..<outer { for j in 0..<len { for i in 0..<inner { out[(o * len + j) * inner + i] = d[o * inner + i] } } }
            }
        }]
    }
}

public func mean(_ x: Variable, axis: Int? = nil, keepDims: Bool = false) throws -> Variable {
    let s = try sum(x, axis: axis, keepDims: keepDims)
    let n: Int
    if let axis { n = x.shape[try axisSplit(x.shape, axis).axis] } else { n = x.value.count }
    return try multiply(s, Variable(Tensor(scalar: 1 / Float(max(n, 1)))))
}

/// Maximum over all elements or along one axis; the gradient goes to the first maximal element.
public func max(_ x: Variable, axis: Int? = nil, keepDims: Bool = false) throws -> Variable {
    guard x.value.count > 0 else { throw EngineError.shapeMismatch("max of an empty tensor") }
    let shape = axis == nil ? [1] : nil
    let (outer, len, inner, a) = try axisSplit(shape ?? x.shape, axis ?? 0)
    let len2 = axis == nil ? x.value.count : len
    var outShape: [Int] = []
    if let _ = axis { outShape = x.shape; if keepDims { outShape[a] = 1 } else { outShape.remove(at: a) } }
    var arg = [Int](repeating: 0, count: outer * inner)
    let y = Tensor(shape: outShape) { out in
        x.value.withUnsafeBufferPointer { xs in
            for o in 0..<outer { for i in 0..<inner {
                var best = -Float.infinity, bi = (o * len2) * inner + i
                for j in 0..<len2 {
                    let k = (o * len2 + j) * inner + i
                    if xs[k] > best { best = xs[k]; bi = k }
                }
                out[o * inner + i] = best
                arg[o * inner + i] = bi
            }}
        }
    }
    return Variable.result(y, [x]) { dy in
        var dx = Tensor(zeros: x.shape)
        for (k, src) in arg.enumerated() { dx.scalars[src] += dy.scalars[k] }
        return [dx]
    }
}

// MARK: - Matrix products

/// C = op(A) · op(B) spread over the engine's threads by columns of C when the work is large.
func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
          beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    let flops = 2.0 * Double(m) * Double(n) * Double(k)
    // A single row is split from 0.2 MFLOP on: a classifier's 1024 -> 1000 layer (2 MFLOP, 4 MB
    // of weights) ran 0.15 ms on one core, 0.09 on two; a thread hop costs about a microsecond.
    let parts = flops < (m == 1 ? 2e5 : 4e6) ? 1 : min(Parallel.threads, max(1, n / 16))
    if m == 1 && !transA && beta == 0 {
        // A single row: a matrix-vector product, bound by reading B once.
        Parallel.forEach(parts, inline: parts == 1) { t in
            let j0 = n * t / parts, j1 = n * (t + 1) / parts
            if transB {  // y[j] = Σ_i B[j, i] a[i]
                BLAS.sgemv(transpose: false, rows: j1 - j0, columns: k, a: b + j0 * ldb, lda: ldb, x: a, y: c + j0)
            } else {     // y[j] = Σ_i B[i, j] a[i]
                BLAS.sgemv(transpose: true, rows: k, columns: j1 - j0, a: b + j0, lda: ldb, x: a, y: c + j0)
            }
        }
        return
    }
    Parallel.forEach(parts, inline: parts == 1) { t in
        let j0 = n * t / parts, j1 = n * (t + 1) / parts
        BLAS.sgemm(transA: transA, transB: transB, m: m, n: j1 - j0, k: k, a: a, lda: lda,
                   b: transB ? b + j0 * ldb : b + j0, ldb: ldb, beta: beta, c: c + j0, ldc: ldc)
    }
}

/// Matrix product of [m, k] · [k, n] (vectors [k] as a row on the left, a column on the right;
/// a leading batch on the left operand is folded into m).
public func matmul(_ a: Variable, _ b: Variable) throws -> Variable {
    guard a.shape.count >= 1, b.shape.count >= 1, b.shape.count <= 2 else {
        throw EngineError.shapeMismatch("matmul takes [..., m, k] @ [k, n] or [k], got \(a.shape) @ \(b.shape)")
    }
    let k = a.shape[a.shape.count - 1]
    let m = a.value.count / max(k, 1)
    let bk = b.shape[0], n = b.shape.count == 2 ? b.shape[1] : 1
    guard bk == k else { throw EngineError.shapeMismatch("matmul inner dimensions differ: \(a.shape) @ \(b.shape) (\(k) vs \(bk))") }
    var outShape = Array(a.shape.dropLast())
    if b.shape.count == 2 { outShape.append(n) }
    let y = Tensor(shape: outShape) { out in
        a.value.withUnsafeBufferPointer { ap in b.value.withUnsafeBufferPointer { bp in
            gemm(m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n, c: out.baseAddress!, ldc: n)
        }}
    }
    return Variable.result(y, [a, b]) { dy in
        var da: Tensor? = nil, db: Tensor? = nil
        if a.requiresGrad {  // dA = dY · Bᵀ
            da = Tensor(shape: a.shape) { out in
                dy.withUnsafeBufferPointer { d in b.value.withUnsafeBufferPointer { bp in
                    gemm(transB: true, m: m, n: k, k: n, a: d.baseAddress!, lda: n, b: bp.baseAddress!, ldb: n, c: out.baseAddress!, ldc: k)
                }}
            }
        }
        if b.requiresGrad {  // dB = Aᵀ · dY
            db = Tensor(shape: b.shape) { out in
                a.value.withUnsafeBufferPointer { ap in dy.withUnsafeBufferPointer { d in
                    gemm(transA: true, m: k, n: n, k: m, a: ap.baseAddress!, lda: k, b: d.baseAddress!, ldb: n, c: out.baseAddress!, ldc: n)
                }}
            }
        }
        return [da, db]
    }
}

/// Fully connected: y = x Wᵀ + b, x [N, in], W [out, in], b [out].
public func linear(_ x: Variable, _ w: Variable, _ b: Variable? = nil) throws -> Variable {
    guard x.shape.count == 2, w.shape.count == 2 else {
        throw EngineError.shapeMismatch("linear takes x [N, in] and weight [out, in], got \(x.shape) and \(w.shape)")
    }
    let (nb, inF, outF) = (x.shape[0], x.shape[1], w.shape[0])
    guard w.shape[1] == inF else {
        throw EngineError.shapeMismatch("linear weight \(w.shape) expects \(w.shape[1]) inputs, got \(inF) (input shape \(x.shape))")
    }
    if let b, b.shape != [outF] { throw EngineError.shapeMismatch("linear bias must be [\(outF)], got \(b.shape)") }
    // Many rows (a layer at every position of an image: ConvNeXt's, 784 to 3136 of them): runs
    // of a few hundred rows on the threads, each product's bias added while its rows are still
    // in cache, instead of one more pass over the whole output (1.2 M values a layer) after.
    if nb >= 512, Parallel.threads > 1 {
        let runs = Swift.max(1, (nb + 255) / 256 + Parallel.threads - 1) / Parallel.threads * Parallel.threads
        let y = Tensor(shape: [nb, outF]) { out in
            x.value.withUnsafeBufferPointer { xp in w.value.withUnsafeBufferPointer { wp in
                let bias = b?.value
                Parallel.forEach(runs) { t in
                    let r0 = nb * t / runs, r1 = nb * (t + 1) / runs
                    let rows = out.baseAddress! + r0 * outF
                    BLAS.sgemm(transB: true, m: r1 - r0, n: outF, k: inF, a: xp.baseAddress! + r0 * inF, lda: inF,
                               b: wp.baseAddress!, ldb: inF, c: rows, ldc: outF)
                    if let bias { addBias(bias, to: rows, rows: 0..<(r1 - r0), width: outF) }
                }
            }}
        }
        return linearResult(y, x, w, b, nb: nb, inF: inF, outF: outF)
    }
    let y = Tensor(shape: [nb, outF]) { out in
        x.value.withUnsafeBufferPointer { xp in w.value.withUnsafeBufferPointer { wp in
            gemm(transB: true, m: nb, n: outF, k: inF, a: xp.baseAddress!, lda: inF, b: wp.baseAddress!, ldb: inF, c: out.baseAddress!, ldc: outF)
        }}
        if let b {
            // Row by row on the threads (a ConvNeXt block's layers have 1.2 M outputs).
            let chunks = nb * outF < 1 << 16 ? 1 : min(Parallel.threads, nb)
            Parallel.forEach(chunks, inline: chunks == 1) { t in
                addBias(b.value, to: out.baseAddress!, rows: (nb * t / chunks)..<(nb * (t + 1) / chunks), width: outF)
            }
        }
    }
    return linearResult(y, x, w, b, nb: nb, inF: inF, outF: outF)
}

/// Adds `bias` to each of `rows` of a row-major matrix `width` values wide.
private func addBias(_ bias: Tensor, to y: UnsafeMutablePointer<Float>, rows: Range<Int>, width: Int) {
    bias.withUnsafeBufferPointer { bp in
        for r in rows {
            let row = y + r * width
            for o in 0..<width { row[o] += bp[o] }
        }
    }
}

/// linear's output y with its backward pass.
private func linearResult(_ y: Tensor, _ x: Variable, _ w: Variable, _ b: Variable?, nb: Int, inF: Int, outF: Int) -> Variable {
    var inputs = [x, w]
    if let b { inputs.append(b) }
    return Variable.result(y, inputs) { dy in
        var grads: [Tensor?] = [nil, nil]
        dy.withUnsafeBufferPointer { d in
            if x.requiresGrad {  // dx = dy · W
                grads[0] = Tensor(shape: x.shape) { out in
                    w.value.withUnsafeBufferPointer { wp in
                        gemm(m: nb, n: inF, k: outF, a: d.baseAddress!, lda: outF, b: wp.baseAddress!, ldb: inF, c: out.baseAddress!, ldc: inF)
                    }
                }
            }
            if w.requiresGrad {  // dW = dyᵀ · x
                grads[1] = Tensor(shape: w.shape) { out in
                    x.value.withUnsafeBufferPointer { xp in
                        gemm(transA: true, m: outF, n: inF, k: nb, a: d.baseAddress!, lda: outF, b: xp.baseAddress!, ldb: inF, c: out.baseAddress!, ldc: inF)
                    }
                }
            }
        }
        if let b { grads.append(b.requiresGrad ? try sumToShape(dy, [1, outF]).reshaped([outF]) : nil) }
        return grads
    }
}
