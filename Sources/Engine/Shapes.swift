/// Ops that move values without arithmetic: reshape, flatten, concat, transpose, pad, slice.

public func reshape(_ x: Variable, _ shape: [Int]) throws -> Variable {
    let y = try x.value.reshaped(shape)
    let original = x.shape
    return Variable.result(y, [x]) { dy in [try dy.reshaped(original)] }
}

/// Flattens dimensions from `startDim` on: [N, C, H, W] -> [N, C·H·W] for startDim 1.
public func flatten(_ x: Variable, startDim: Int = 1) throws -> Variable {
    guard startDim >= 0 && startDim <= x.shape.count else {
        throw EngineError.invalidArgument("flatten start dimension \(startDim) is out of range for shape \(x.shape)")
    }
    return try reshape(x, Array(x.shape[..<startDim]) + [x.shape[startDim...].reduce(1, *)])
}

/// Joins tensors along `axis`; every other dimension must agree.
public func concat(_ xs: [Variable], axis: Int) throws -> Variable {
    guard let first = xs.first else { throw EngineError.invalidArgument("concat needs at least one tensor") }
    let (_, _, _, a) = try axisSplit(first.shape, axis)
    for x in xs {
        guard x.shape.count == first.shape.count,
              x.shape.enumerated().allSatisfy({ $0.offset == a || $0.element == first.shape[$0.offset] }) else {
            throw EngineError.shapeMismatch("concat along axis \(a): \(x.shape) does not match \(first.shape) off that axis")
        }
    }
    let outer = first.shape[..<a].reduce(1, *), inner = first.shape[(a + 1)...].reduce(1, *)
    let lengths = xs.map { $0.shape[a] }
    let total = lengths.reduce(0, +)
    var outShape = first.shape
    outShape[a] = total
    let y = Tensor(shape: outShape) { out in
        var offset = 0
        for (x, len) in zip(xs, lengths) {
            x.value.withUnsafeBufferPointer { src in
                for o in 0..<outer {
                    (out.baseAddress! + (o * total + offset) * inner).update(from: src.baseAddress! + o * len * inner, count: len * inner)
                }
            }
            offset += len
        }
    }
    return Variable.result(y, xs) { dy in
        var offset = 0
        var grads: [Tensor?] = []
        for (x, len) in zip(xs, lengths) {
            let start = offset
            grads.append(x.requiresGrad ? Tensor(shape: x.shape) { out in
                dy.withUnsafeBufferPointer { src in
                    for o in 0..<outer {
                        (out.baseAddress! + o * len * inner).update(from: src.baseAddress! + (o * total + start) * inner, count: len * inner)
                    }
                }
            } : nil)
            offset += len
        }
        return grads
    }
}

/// The transpose of a matrix.
public func transpose(_ x: Variable) throws -> Variable {
    guard x.shape.count == 2 else { throw EngineError.shapeMismatch("transpose takes a matrix, got \(x.shape)") }
    func t(_ v: Tensor) -> Tensor {
        let (r, c) = (v.shape[0], v.shape[1])
        return Tensor(shape: [c, r]) { out in
            v.withUnsafeBufferPointer { s in for i in 0..<r { for j in 0..<c { out[j * r + i] = s[i * c + j] } } }
        }
    }
    return Variable.result(t(x.value), [x]) { dy in [t(dy)] }
}

/// Zero (or constant) padding of the last two dimensions: top, left, bottom, right.
public func pad2d(_ x: Variable, _ p: (top: Int, left: Int, bottom: Int, right: Int), value: Float = 0) throws -> Variable {
    guard x.shape.count >= 2 else { throw EngineError.shapeMismatch("pad2d takes [..., H, W], got \(x.shape)") }
    guard p.top >= 0, p.left >= 0, p.bottom >= 0, p.right >= 0 else { throw EngineError.invalidArgument("padding must not be negative") }
    let r = x.shape.count
    let h = x.shape[r - 2], w = x.shape[r - 1], planes = x.value.count / max(h * w, 1)
    let oh = h + p.top + p.bottom, ow = w + p.left + p.right
    var outShape = x.shape
    outShape[r - 2] = oh; outShape[r - 1] = ow
    var y = Tensor(repeating: value, shape: outShape)
    x.value.withUnsafeBufferPointer { s in y.withUnsafeMutableBufferPointer { d in
        for pl in 0..<planes { for i in 0..<h {
            (d.baseAddress! + (pl * oh + i + p.top) * ow + p.left).update(from: s.baseAddress! + (pl * h + i) * w, count: w)
        }}
    }}
    return Variable.result(y, [x]) { dy in
        [Tensor(shape: x.shape) { out in
            dy.withUnsafeBufferPointer { s in
                for pl in 0..<planes { for i in 0..<h {
                    (out.baseAddress! + (pl * h + i) * w).update(from: s.baseAddress! + (pl * oh + i + p.top) * ow + p.left, count: w)
                }}
            }
        }]
    }
}

/// One subscript of a tensor index: a single position (the dimension disappears), or a range with a step.
public enum SliceIndex: Equatable, Sendable {
    case at(Int)
    case range(start: Int?, end: Int?, step: Int)
    public static let all = SliceIndex.range(start: nil, end: nil, step: 1)

    /// A range's first position and its end (excluded) in a dimension of `size`, by Python's
    /// rules: negative positions count from the end, and both are clamped to the dimension.
    static func bounds(start s: Int?, end e: Int?, step: Int, size: Int) -> (start: Int, end: Int) {
        func clamped(_ v: Int?, _ dflt: Int) -> Int {
            guard var v else { return dflt }
            if v < 0 { v += size }
            return step > 0 ? min(max(v, 0), size) : min(max(v, -1), size - 1)
        }
        return (clamped(s, step > 0 ? 0 : size - 1), clamped(e, step > 0 ? size : -1))
    }
}

/// `x[i, a:b, ...]`, with negative positions counted from the end; missing trailing indices take everything.
public func slice(_ x: Variable, _ indices: [SliceIndex]) throws -> Variable {
    guard indices.count <= x.shape.count else {
        throw EngineError.shapeMismatch("\(indices.count) indices for a tensor of rank \(x.shape.count) (shape \(x.shape))")
    }
    // Per dimension: the selected source positions, and whether the dimension is kept.
    var picks: [[Int]] = [], keep: [Bool] = []
    for (d, size) in x.shape.enumerated() {
        let idx = d < indices.count ? indices[d] : .all
        switch idx {
        case .at(let i):
            let j = i < 0 ? i + size : i
            guard j >= 0 && j < size else { throw EngineError.invalidArgument("index \(i) is out of range for dimension \(d) of size \(size)") }
            picks.append([j]); keep.append(false)
        case .range(let s, let e, let step):
            guard step != 0 else { throw EngineError.invalidArgument("slice step cannot be 0") }
            let (start, end) = SliceIndex.bounds(start: s, end: e, step: step, size: size)
            picks.append(Array(stride(from: start, to: end, by: step))); keep.append(true)
        }
    }
    let inStrides = x.value.strides
    // The trailing dimensions taken whole make one contiguous run per position of the others:
    // offsets are listed for those positions only (a channel split of [1, 96, 14, 14] is one run).
    var lead = picks.count
    while lead > 0, picks[lead - 1].count == x.shape[lead - 1], picks[lead - 1].first ?? 0 == 0,
          keep[lead - 1], picks[lead - 1].count < 2 || picks[lead - 1][1] == 1 { lead -= 1 }
    let run = x.shape[lead...].reduce(1, *)
    var offsets = [0]
    for d in 0..<lead {
        var next: [Int] = []
        next.reserveCapacity(offsets.count * picks[d].count)
        for o in offsets { for p in picks[d] { next.append(o + p * inStrides[d]) } }
        offsets = next
    }
    let outShape = zip(picks, keep).compactMap { $1 ? $0.count : nil }
    let source = offsets
    let y = Tensor(shape: outShape) { out in
        x.value.withUnsafeBufferPointer { s in
            // (An empty slice or source has no storage to point at, and nothing to copy.)
            if run > 0 { for (i, o) in source.enumerated() { (out.baseAddress! + i * run).update(from: s.baseAddress! + o, count: run) } }
        }
    }
    return Variable.result(y, [x]) { dy in
        var dx = Tensor(zeros: x.shape)
        dx.withUnsafeMutableBufferPointer { d in dy.withUnsafeBufferPointer { g in
            for (i, o) in source.enumerated() { for j in 0..<run { d[o + j] += g[i * run + j] } }
        }}
        return [dx]
    }
}
