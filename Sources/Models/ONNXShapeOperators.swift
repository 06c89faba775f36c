import Engine
import Foundation

// The ONNX operators that move values without arithmetic, or reduce them: Reshape, Flatten,
// Squeeze, Unsqueeze, Pad and ReduceMean. Their sizes often depend on the input's shape, which
// the importer knows when the graph fixes its input's size.

extension NodeImport {
    /// Reshape: the shape from a constant input (or, before opset 5, an attribute); 0 copies the
    /// input's size at that position (unless allowzero is 1), −1 is inferred.
    func reshape() throws {
        let x = try input(0)
        guard let target = try integers(1, "shape") ?? ints("shape") else {
            throw problem("has no shape", expected: "a shape input")
        }
        guard target.filter({ $0 == -1 }).count <= 1, target.allSatisfy({ $0 >= -1 }),
              ONNXImporter.boundedCount(target.map { Swift.max($0, 1) }) != nil else {
            throw problem("has shape \(target)", expected: "sizes, 0 (copy the input's) or a single −1 (inferred), "
                          + "holding \(MemoryLimit.phrase)")
        }
        let copies = try int("allowzero", 0) == 0
        var resolved = target
        for (i, size) in target.enumerated() where size == 0 && copies && i > 0 {
            guard let shape = x.shape, i < shape.count else {
                throw problem("copies size \(i) of its input (a 0 in shape \(target)), "
                              + (x.shape.map { "which has shape \($0)" } ?? "whose shape the graph does not fix"))
            }
            resolved[i] = shape[i]
        }
        bind(try reshaped(x, to: resolved, keepsBatch: copies && target.first == 0))
    }

    /// Flatten: [d0, ..., dn] to [d0 ⋯ d(axis−1), d(axis) ⋯ dn], always two-dimensional.
    func flatten() throws {
        let x = try input(0)
        var axis = try int("axis", 1)
        if axis < 0, let rank = x.shape?.count { axis += rank }
        if axis == 1 { return try produce("flatten", ["start_dim": .int(1)], reading: [x]) }
        guard let shape = x.shape, axis >= 0, axis <= shape.count else {
            throw problem("flattens from axis \(axis) " + (x.shape.map { "an input of shape \($0)" } ?? "an input whose shape the graph does not fix"),
                          expected: "axis 1, or an axis within an input of fixed size")
        }
        bind(try reshaped(x, to: [shape[..<axis].reduce(1, *), shape[axis...].reduce(1, *)]))
    }

    /// Squeeze removes sizes of 1 (the listed axes, or all); Unsqueeze inserts them. The axes are
    /// an attribute before opset 13 and an input from then on.
    func squeeze(inserting: Bool) throws {
        let x = try input(0)
        guard let shape = x.shape else { throw problem("needs its input's shape, which the graph does not fix") }
        let axes = try integers(1, "axes") ?? ints("axes")
        let rank = inserting ? shape.count + (axes?.count ?? 0) : shape.count
        let chosen = Set((axes ?? []).map { $0 < 0 ? $0 + rank : $0 })
        guard chosen.count == (axes ?? []).count, chosen.allSatisfy({ $0 >= 0 && $0 < rank }) else {
            throw problem("has axes \(axes ?? []) for a result of rank \(rank)", expected: "distinct axes within the rank")
        }
        var result: [Int] = []
        if inserting {
            guard !chosen.isEmpty else { throw problem("has no axes", expected: "the axes at which to insert a size of 1") }
            var sizes = shape.makeIterator()
            for axis in 0..<rank { result.append(chosen.contains(axis) ? 1 : sizes.next() ?? 1) }
        } else {
            for (axis, size) in shape.enumerated() {
                let squeezed = axes == nil ? size == 1 : chosen.contains(axis)
                if squeezed && size != 1 { throw problem("squeezes axis \(axis) of size \(size) (input shape \(shape))") }
                if !squeezed { result.append(size) }
            }
        }
        let batchStays = !shape.isEmpty && !result.isEmpty && !chosen.contains(0) && (axes != nil || shape[0] != 1)
        bind(try reshaped(x, to: result, keepsBatch: batchStays))
    }

    /// A reshape layer to `target` (sizes and at most one −1). When the first size is the batch
    /// size (copied, or equal to the input's first size while the rest holds the rest), the layer
    /// keeps whatever batch size it is given: a graph exported with one image then runs on many.
    func reshaped(_ x: ImportedValue, to target: [Int], keepsBatch: Bool = false, name: String? = nil) throws -> ImportedValue {
        var keep = keepsBatch
        if !keep, let shape = x.shape, let first = target.first, let batch = shape.first, first == batch {
            let rest = target.dropFirst(), restCount = shape.dropFirst().reduce(1, *)
            let known = rest.filter { $0 != -1 }.reduce(1, *)
            keep = rest.contains(-1) ? known > 0 && restCount % known == 0 : known == restCount
        }
        if keep {
            return try layer("reshape", ["shape": .ints(Array(target.dropFirst())), "keep_batch": .bool(true)], reading: [x], name: name)
        }
        return try layer("reshape", ["shape": .ints(target)], reading: [x], name: name)
    }

    /// Pad in constant mode on the last two axes: pads as an attribute (before opset 11) or an
    /// input, the value as an attribute or an input, and (from opset 18) the axes as an input.
    func pad() throws {
        let mode = try string("mode", "constant")
        guard mode == "constant" else { throw problem("pads in mode '\(mode)'", expected: "mode constant") }
        let x = try input(0)
        guard let pads = try integers(1, "pads") ?? ints("pads") else { throw problem("has no pads", expected: "a pads input") }
        var value = try float("value", 0)
        if let v = try scalar(2, "constant value") { value = v }
        let axes = try integers(3, "axes")
        let count = axes?.count ?? pads.count / 2
        let rank = x.shape?.count ?? (axes == nil ? count : nil)
        guard count >= 1, pads.count == 2 * count, axes != nil || rank == count else {
            throw problem("has \(pads.count) pads for " + (x.shape.map { "an input of shape \($0)" } ?? "its input"),
                          expected: "a start and an end for each axis")
        }
        guard pads.allSatisfy({ $0 >= 0 }) else { throw problem("has negative pads \(pads), which crop", expected: "non-negative pads") }
        guard pads.allSatisfy({ $0 <= ONNXImporter.largestExtent }) else {
            throw problem("has pads \(pads)", expected: "pads up to \(ONNXImporter.largestExtent)")
        }
        // Each padded axis counted from the end: 1 is the width, 2 the height.
        var start: [Int: Int] = [:], end: [Int: Int] = [:]
        for i in 0..<count {
            let axis = axes?[i] ?? i
            guard let fromEnd = axis < 0 ? -axis : rank.map({ $0 - axis }), fromEnd >= 1 else {
                throw problem("pads axis \(axis) of " + (rank.map { "an input of rank \($0)" } ?? "an input whose rank the graph does not fix"))
            }
            start[fromEnd] = pads[i]
            end[fromEnd] = pads[i + count]
        }
        guard start.allSatisfy({ $0.key <= 2 || $0.value == 0 }), end.allSatisfy({ $0.key <= 2 || $0.value == 0 }) else {
            throw problem("pads axes other than height and width (pads \(pads))", expected: "pads on the last two axes only")
        }
        let padding = [start[2] ?? 0, start[1] ?? 0, end[2] ?? 0, end[1] ?? 0]
        if padding == [0, 0, 0, 0] { return bind(x) }
        guard !value.isNaN else { throw problem("pads with NaN") }
        // ±∞ (padding before a max pool) becomes the largest float of its sign: JSON, the
        // architecture's text form, has no infinity, and no finite value compares differently.
        let finite = value.isFinite ? value : (value < 0 ? -Float.greatestFiniteMagnitude : .greatestFiniteMagnitude)
        try produce("pad", ["padding": .ints(padding), "value": .float(finite)], reading: [x])
    }

    /// ReduceMean over the spatial axes: global average pooling (what the exporters write for
    /// adaptive and global pooling), followed by a flatten when keepdims is 0. The axes are an
    /// attribute before opset 18 and an input from then on.
    func reduceMean() throws {
        let x = try input(0)
        let axes = try integers(1, "axes") ?? ints("axes") ?? []
        if try axes.isEmpty && int("noop_with_empty_axes", 0) != 0 { return bind(x) }
        let rank = x.shape?.count
        // An input of unknown rank is read as [N, C, H, W]; the pooling layer checks it when it runs.
        let normalized = axes.map { $0 < 0 ? $0 + (rank ?? 4) : $0 }.sorted()
        guard normalized == [2, 3], rank == nil || rank == 4 else {
            throw problem("averages over axes \(axes.isEmpty ? "(all)" : "\(axes)") of "
                          + (x.shape.map { "an input of shape \($0)" } ?? "its input"),
                          expected: "the spatial axes [2, 3] of an [N, C, H, W] input (global average pooling)")
        }
        let name = baseName()
        let pooled = try layer("global_avgpool", reading: [x], name: name)
        if try int("keepdims", 1) != 0 { return bind(pooled) }
        try produce("flatten", ["start_dim": .int(1)], reading: [pooled], name: name + "_flatten")
    }
}
