import Engine
import Foundation

// The operators exporters use to compute shapes and pads inside the graph (the legacy exporter's
// F.pad is Shape, Gather, ConstantOfShape, Concat, Slice, Transpose, Reshape and Cast around a
// Pad; x.view(x.size(0), -1) is Shape, Gather, Unsqueeze, Concat and Reshape). The importer
// evaluates them itself: their inputs are constants, or shapes the graph fixes. Integer values
// stay exact throughout.

extension NodeImport {
    /// The most scalars a constant computed at import time may hold.
    static let largestFoldedConstant = 1 << 24

    /// Input `i`, which must be a constant for this operator, with its exact integers if it has them.
    func foldable(_ i: Int, _ role: String) throws -> (value: Tensor, integers: [Int]?) {
        guard case .constant(let t, let exact) = try input(i) else {
            throw problem("its \(role) '\(node.inputs[i])' is computed by the graph",
                          expected: "a constant \(role): cnnlab evaluates \(node.opType) only while importing, on constants")
        }
        return (t, exact)
    }

    /// Binds the elements of `source` at `positions` (row-major offsets), as a constant of `shape`.
    private func bindPicked(_ source: (value: Tensor, integers: [Int]?), _ positions: [Int], shape: [Int]) throws {
        let scalars = positions.map { source.value.scalars[$0] }
        bind(.constant(try Tensor(shape: [scalars.count], scalars: scalars).reshaped(shape),
                       integers: source.integers.map { exact in positions.map { exact[$0] } }))
    }

    /// Row-major offsets of every combination of one position per axis (`picks[d]`, each a
    /// position along axis d whose stride is `strides[d]`).
    private func offsets(_ picks: [[Int]], _ strides: [Int]) -> [Int] {
        var offsets = [0]
        for (pick, stride) in zip(picks, strides) {
            offsets = offsets.flatMap { base in pick.map { base + $0 * stride } }
        }
        return offsets
    }

    /// Shape: the input's sizes (from opset 15, those from start to end).
    func shapeOf() throws {
        guard let shape = try input(0).shape else {
            throw problem("reads the shape of a value whose shape the graph does not fix", expected: "an input of fixed size")
        }
        let rank = shape.count
        func clamped(_ v: Int) -> Int { Swift.min(Swift.max(v < 0 ? v + rank : v, 0), rank) }
        let start = clamped(try int("start", 0)), end = clamped(try int("end", rank))
        let sizes = start < end ? Array(shape[start..<end]) : []
        bind(.constant(Tensor(shape: [sizes.count], scalars: sizes.map { Float($0) }), integers: sizes))
    }

    /// Gather along `axis` of a constant, at constant indices (negative ones count from the end).
    func gather() throws {
        let data = try foldable(0, "data")
        let (indexTensor, _) = try foldable(1, "indices")
        guard let indices = try integers(1, "indices") else { throw problem("has no indices") }
        let shape = data.value.shape
        var axis = try int("axis", 0)
        if axis < 0 { axis += shape.count }
        guard axis >= 0, axis < shape.count else { throw problem("gathers along axis \(axis) of a value of shape \(shape)") }
        let size = shape[axis]
        let picked = try indices.map { i -> Int in
            let j = i < 0 ? i + size : i
            guard j >= 0, j < size else { throw problem("gathers index \(i) along an axis of size \(size)") }
            return j
        }
        let outShape = Array(shape[..<axis]) + indexTensor.shape + Array(shape[(axis + 1)...])
        guard let count = ONNXImporter.boundedCount(outShape), count <= NodeImport.largestFoldedConstant else {
            throw problem("gathers a constant of shape \(outShape)", expected: "at most \(NodeImport.largestFoldedConstant) values")
        }
        var picks = shape.map { Array(0..<$0) }
        picks[axis] = picked
        try bindPicked(data, offsets(picks, Tensor.strides(of: shape)), shape: outShape)
    }

    /// Slice with starts, ends, axes and steps as inputs (as attributes before opset 10), clamped
    /// as Python slices are.
    func slice() throws {
        let data = try foldable(0, "data")
        let shape = data.value.shape
        guard let starts = try integers(1, "starts") ?? ints("starts"), let ends = try integers(2, "ends") ?? ints("ends") else {
            throw problem("has no starts or ends", expected: "inputs data, starts and ends")
        }
        let axes = try integers(3, "axes") ?? ints("axes") ?? Array(0..<starts.count)
        let steps = try integers(4, "steps") ?? [Int](repeating: 1, count: starts.count)
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count else {
            throw problem("has \(starts.count) starts, \(ends.count) ends, \(axes.count) axes and \(steps.count) steps",
                          expected: "as many of each")
        }
        var picks = shape.map { Array(0..<$0) }
        for i in starts.indices {
            let axis = axes[i] < 0 ? axes[i] + shape.count : axes[i], step = steps[i]
            guard axis >= 0, axis < shape.count, step != 0 else {
                throw problem("slices axis \(axes[i]) with step \(step) a value of shape \(shape)")
            }
            let size = shape[axis]
            // Python's rule: negative positions count from the end, then clamp to the axis.
            func clamped(_ v: Int, low: Int, high: Int) -> Int { Swift.min(Swift.max(v < 0 ? v &+ size : v, low), high) }
            let start = step > 0 ? clamped(starts[i], low: 0, high: size) : clamped(starts[i], low: 0, high: size - 1)
            let end = step > 0 ? clamped(ends[i], low: 0, high: size) : clamped(ends[i], low: -1, high: size - 1)
            picks[axis] = Array(Swift.stride(from: start, to: end, by: step))
        }
        try bindPicked(data, offsets(picks, Tensor.strides(of: shape)), shape: picks.map(\.count))
    }

    /// Transpose of a constant (perm defaults to reversing the axes).
    func transposeConstant() throws {
        let data = try foldable(0, "data")
        let shape = data.value.shape, strides = Tensor.strides(of: shape)
        let perm = try ints("perm") ?? Array((0..<shape.count).reversed())
        guard perm.sorted() == Array(0..<shape.count) else {
            throw problem("has perm \(perm) for a value of shape \(shape)", expected: "a permutation of 0..<\(shape.count)")
        }
        try bindPicked(data, offsets(perm.map { Array(0..<shape[$0]) }, perm.map { strides[$0] }), shape: perm.map { shape[$0] })
    }

    /// ConstantOfShape: a constant of the given shape filled with `value` (a float 0 by default).
    func constantOfShape() throws {
        guard let shape = try integers(0, "shape") else { throw problem("has no shape", expected: "a shape input") }
        guard let count = ONNXImporter.boundedCount(shape), count <= NodeImport.largestFoldedConstant else {
            throw problem("makes a constant of shape \(shape)",
                          expected: "non-negative sizes holding at most \(NodeImport.largestFoldedConstant) values")
        }
        var value: Float = 0, exact: Int?
        if let t = node.attributes["value"]?.tensorValue {
            guard let v = t.value.scalar else { throw problem("has a value of shape \(t.value.shape)", expected: "a single value") }
            value = v
            exact = t.integers?.first
        }
        bind(.constant(Tensor(repeating: value, shape: shape), integers: exact.map { [Int](repeating: $0, count: count) }))
    }

    /// Cast: constants convert (to integers by truncation, as ONNX does); a computed value may
    /// only be cast to FLOAT, which it already is.
    func cast() throws {
        let code = try int("to", 1)
        guard let type = onnxElementType(code) else { throw problem("casts to \(onnxDataTypeName(code))") }
        switch try input(0) {
        case .computed:
            guard type == .float32 else {
                throw problem("casts a computed value to \(onnxDataTypeName(code))", expected: "FLOAT (cnnlab computes in float32)")
            }
            bind(try input(0))
        case .constant(let t, let exact):
            guard type.isInteger else { return bind(.constant(t, integers: nil)) }
            let integers = try exact ?? t.scalars.map { v -> Int in
                guard let i = Int(exactly: v.rounded(.towardZero)) else { throw problem("casts \(v) to an integer") }
                return i
            }
            let converted = type == .bool ? integers.map { $0 == 0 ? 0 : 1 } : integers
            bind(.constant(try Tensor(shape: [converted.count], scalars: converted.map { Float($0) }).reshaped(t.shape),
                           integers: converted))
        }
    }
}
