import Foundation

/// A dense float32 tensor, row-major.
///
/// Activations are NCHW, convolution weights OIHW (the layouts of ONNX and PyTorch).
/// `Tensor` is a value: its scalars live in a Swift array, so copies share storage until
/// one of them is written (copy-on-write).
public struct Tensor: Sendable, Equatable {
    public private(set) var shape: [Int]
    public var scalars: [Float]

    /// A tensor with the given shape and scalars (row-major); the counts must agree.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == scalars.count,
                     "shape \(shape) holds \(shape.reduce(1, *)) scalars, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of the given shape filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    public init(zeros shape: [Int]) { self.init(repeating: 0, shape: shape) }
    public init(ones shape: [Int]) { self.init(repeating: 1, shape: shape) }

    /// A rank-0 tensor holding one number.
    public init(scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    /// A tensor of `shape` whose scalars are written by `body` into uninitialized storage.

    public init(shape: [Int], unsafeUninitialized body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let n = shape.reduce(1, *)
        self.shape = shape
        self.scalars = try [Float](unsafeUninitializedCapacity: n) { buf, count in
            try body(buf)
            count = n
        }
    }

    public var count: Int { scalars.count }
    public var rank: Int { shape.count }

    /// The single number of a tensor with one element.
    public var scalar: Float? { scalars.count == 1 ? scalars[0] : nil }

    /// Row-major strides of `shape`.
    public static func strides(of shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    public var strides: [Int] { Tensor.strides(of: shape) }

    public subscript(indices: Int...) -> Float {
        get { scalars[offset(indices)] }
        set { scalars[offset(indices)] = newValue }
    }

    private func offset(_ indices: [Int]) -> Int {
        precondition(indices.count == shape.count, "expected \(shape.count) indices, got \(indices.count)")
        var o = 0
        for (i, d) in zip(indices, shape) {
            precondition(i >= 0 && i < d, "index \(i) out of range 0..<\(d)")
            o = o * d + i
        }
        return o
    }

    /// The same scalars under another shape; one dimension may be -1 and is inferred.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let resolved = try Tensor.resolve(shape: newShape, count: count)
        var t = self
        t.shape = resolved
        return t
    }

    /// The same scalars under a shape known to hold them.
    func withShape(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count)
        var t = self
        t.shape = newShape
        return t
    }

    /// Resolves a -1 in `shape` so that it holds `count` scalars.
    public static func resolve(shape: [Int], count: Int) throws -> [Int] {
        let unknown = shape.indices.filter { shape[$0] == -1 }
        if unknown.count > 1 { throw EngineError.invalidArgument("only one dimension of a reshape may be -1, got \(shape)") }
        if shape.contains(where: { $0 < -1 }) { throw EngineError.invalidArgument("negative dimension in \(shape)") }
        var s = shape
        let known = shape.filter { $0 != -1 }.reduce(1, *)
        if let u = unknown.first {
            guard known > 0, count % known == 0 else {
                throw EngineError.shapeMismatch("cannot reshape \(count) scalars to \(shape)")
            }
            s[u] = count / known
        }
        guard s.reduce(1, *) == count else {
            throw EngineError.shapeMismatch("cannot reshape \(count) scalars to \(shape) (which holds \(s.reduce(1, *)))")
        }
        return s
    }


    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }


    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer { try body($0) }
    }
}

extension Tensor {
    /// A tensor from nested arrays of numbers, e.g. `[[1, 2], [3, 4]]`.
    public init(_ values: [Float]) { self.init(shape: [values.count], scalars: values) }

    public init(_ rows: [[Float]]) throws {
        let cols = rows.first?.count ?? 0
        guard rows.allSatisfy({ $0.count == cols }) else {
            throw EngineError.shapeMismatch("rows of unequal length")
        }
        self.init(shape: [rows.count, cols], scalars: rows.flatMap { $0 })
    }

    /// Applies `f` to every scalar.

    public func map(_ f: (Float) -> Float) -> Tensor {
        Tensor(shape: shape) { out in
            scalars.withUnsafeBufferPointer { src in
                for i in 0..<src.count { out[i] = f(src[i]) }
            }
        }
    }

    /// Combines two tensors of the same shape scalar by scalar.

    public func zipMap(_ other: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        precondition(shape == other.shape)
        return Tensor(shape: shape) { out in
            scalars.withUnsafeBufferPointer { a in
                other.scalars.withUnsafeBufferPointer { b in
                    for i in 0..<a.count { out[i] = f(a[i], b[i]) }
                }
            }
        }
    }

    /// `self += other * alpha`, in place; shapes must agree.
    public mutating func addScaled(_ other: Tensor, _ alpha: Float = 1) {
        precondition(scalars.count == other.scalars.count)
        scalars.withUnsafeMutableBufferPointer { a in
            other.scalars.withUnsafeBufferPointer { b in
                for i in 0..<a.count { a[i] += alpha * b[i] }
            }
        }
    }

    public func sum() -> Float {
        scalars.withUnsafeBufferPointer { p in
            var s: Double = 0
            for v in p { s += Double(v) }
            return Float(s)
        }
    }

    public func max() -> Float { scalars.max() ?? -.infinity }
    public func min() -> Float { scalars.min() ?? .infinity }

    /// The index of the largest scalar, flattened.
    public func argmax() -> Int {
        var best = 0
        for i in scalars.indices where scalars[i] > scalars[best] { best = i }
        return best
    }

    /// Whether every scalar is within `atol + rtol * |other|` of `other`'s.
    public func isClose(to other: Tensor, rtol: Float = 1e-5, atol: Float = 1e-6) -> Bool {
        guard shape == other.shape else { return false }
        for i in scalars.indices {
            let a = scalars[i], b = other.scalars[i]
            if a.isNaN || b.isNaN { return false }
            if abs(a - b) > atol + rtol * abs(b) { return false }
        }
        return true
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shapeText = "[" + shape.map(String.init).joined(separator: ", ") + "]"
        if count > 64 {
            return "tensor \(shapeText) min \(formatNumber(min())) max \(formatNumber(max())) mean \(formatNumber(sum() / Float(Swift.max(count, 1))))"
        }
        return "tensor \(shapeText) " + nested(0, 0)
    }

    private func nested(_ dim: Int, _ offset: Int) -> String {
        if rank == 0 { return formatNumber(scalars[0]) }
        let st = strides
        var parts: [String] = []
        for i in 0..<shape[dim] {
            let o = offset + i * st[dim]
            parts.append(dim == rank - 1 ? formatNumber(scalars[o]) : nested(dim + 1, o))
        }
        return "[" + parts.joined(separator: ", ") + "]"
    }
}

/// A number as a person writes it: integers without a point, others with up to 4 significant decimals.
public func formatNumber(_ v: Float) -> String {
    if v.isNaN { return "nan" }
    if v.isInfinite { return v > 0 ? "inf" : "-inf" }
    if v == v.rounded() && abs(v) < 1e7 { return String(Int(v)) }
    let a = abs(v)
    if a >= 1e-3 && a < 1e6 {
        var s = String(format: "%.4f", Double(v))
        while s.hasSuffix("0") { s.removeLast() }
        return s
    }
    return String(format: "%.3e", Double(v))
}
