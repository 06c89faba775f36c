import Engine
import Foundation

// The operators of the later torchvision families and of other exporters: MobileNetV3's
// HardSigmoid and HardSwish, ShuffleNet's channel shuffle (Reshape, Transpose, Split or Slice of
// computed values), ConvNeXt's LayerNormalization, Erf and permutes around MatMul, EfficientNet's
// SiLU (Sigmoid and Mul, imported as one layer), and what tf2onnx and others write: PRelu,
// Resize/Upsample (nearest, whole factors), Min/Max/Neg/Exp/Pow/Sqrt, ReduceSum/ReduceMax,
// Where and Expand.

extension ONNXImporter {
    /// Conversions added to `conversions`; each operator has one entry in one of the two tables.
    // Constant and never mutated; its closures capture nothing, so threads may share it.
    nonisolated(unsafe) static let graphConversions: [String: Conversion] = [
        "HardSigmoid": { n in
            try n.produce("hardsigmoid", ["alpha": .float(try n.float("alpha", 0.2)), "beta": .float(try n.float("beta", 0.5))],
                          reading: [try n.input(0)])
        },
        "HardSwish": { try $0.produce("hardswish", reading: [try $0.input(0)]) },
        "Sigmoid": { try $0.sigmoid() },
        "Erf": { try $0.produce("erf", reading: [try $0.input(0)]) },
        "Exp": { try $0.produce("exp", reading: [try $0.input(0)]) },
        "Sqrt": { try $0.produce("sqrt", reading: [try $0.input(0)]) },
        "Neg": { try $0.produce("neg", reading: [try $0.input(0)]) },
        "Gelu": { n in
            let mode = try n.string("approximate", "none")
            guard mode == "none" else { throw n.problem("approximates GELU by '\(mode)'", expected: "approximate 'none' (the erf form)") }
            try n.produce("gelu", reading: [try n.input(0)])
        },
        "Pow": { try $0.power() },
        "Min": { try $0.extremum(larger: false) },
        "Max": { try $0.extremum(larger: true) },
        "PRelu": { try $0.parametricRelu() },
        "LayerNormalization": { try $0.layerNormalization() },
        "Split": { try $0.split() },
        "ReduceSum": { try $0.reduction("sum") },
        "ReduceMax": { try $0.reduction("max") },
        "Resize": { try $0.upsample(scalesInput: 2, sizesInput: 3) },
        "Upsample": { try $0.upsample(scalesInput: 1, sizesInput: nil) },
        "Where": { try $0.whereConstant() },
        "Expand": { try $0.expand() },
    ]
}

extension NodeImport {
    /// Whether input 0 is computed by the network (not a constant).
    var readsComputed: Bool {
        if case .computed? = try? input(0) { return true }
        return false
    }

    /// Add, Sub, Mul and Div of two integer constants (shapes and sizes), exactly: integer
    /// division truncates, as onnxruntime's does.
    func integerArithmetic(_ operation: ArithmeticLayer.Operation, _ a: Tensor, _ ia: [Int], _ b: Tensor, _ ib: [Int]) throws {
        let shape = try broadcastShape(a.shape, b.shape)
        guard let count = ONNXImporter.boundedCount(shape), count <= NodeImport.largestFoldedConstant else {
            throw problem("makes a constant of shape \(shape)", expected: "at most \(NodeImport.largestFoldedConstant) values")
        }
        // Positions into each operand, through the float broadcast of their offsets.
        let pa = try add(Variable(Tensor(shape: a.shape, scalars: (0..<a.count).map(Float.init))), Variable(Tensor(zeros: shape))).value
        let pb = try add(Variable(Tensor(shape: b.shape, scalars: (0..<b.count).map(Float.init))), Variable(Tensor(zeros: shape))).value
        let values = try (0..<count).map { k -> Int in
            let x = ia[Int(pa.scalars[k])], y = ib[Int(pb.scalars[k])]
            switch operation {
            case .add: return x &+ y
            case .subtract: return x &- y
            case .multiply: return x &* y
            case .divide:
                guard y != 0 else { throw problem("divides the integer \(x) by 0") }
                return x / y
            case .minimum: return Swift.min(x, y)
            case .maximum: return Swift.max(x, y)
            }
        }
        bind(.constant(Tensor(shape: shape, scalars: values.map(Float.init)), integers: values))
    }

    /// Gather of a computed value at constant indices: a gather layer.
    func gatherComputed() throws {
        let x = try input(0)
        guard let indices = try integers(1, "indices"), let shape = try constant(1, "indices")?.shape else {
            throw problem("has no indices", expected: "inputs data and indices")
        }
        guard indices.count <= 1 << 20 else { throw problem("gathers \(indices.count) indices", expected: "at most 2^20") }
        try produce("gather", ["axis": .int(try int("axis", 0)), "indices": .ints(indices), "indices_shape": .ints(shape)], reading: [x])
    }

    /// Pow with a constant single exponent.
    func power() throws {
        guard let p = try scalar(1, "exponent") else { throw problem("has no exponent", expected: "inputs X and Y") }
        if p == 1 { return bind(try input(0)) }
        try produce("pow", ["exponent": .float(p)], reading: [try input(0)])
    }

    /// Min and Max of any number of inputs, pairwise; a constant side is held by the layer.
    func extremum(larger: Bool) throws {
        let op = larger ? "maximum" : "minimum"
        var values = try node.inputs.indices.map { try input($0) }
        guard var result = values.first else { throw problem("has no inputs") }
        values.removeFirst()
        for (k, next) in values.enumerated() {
            let name = baseName() + (k == 0 ? "" : "_\(k + 1)")
            switch (result, next) {
            case (.computed, .constant(let c, _)):
                result = try layer("arithmetic", ["op": .string(op), "shape": .ints(c.shape)], reading: [result], parameters: ["constant": c], name: name)
            case (.constant(let c, _), .computed):
                result = try layer("arithmetic", ["op": .string(op), "shape": .ints(c.shape), "constant_first": .bool(true)],
                                   reading: [next], parameters: ["constant": c], name: name)
            default:
                result = try layer("arithmetic", ["op": .string(op)], reading: [result, next], name: name)
            }
        }
        bind(result)
    }

    /// PRelu with a constant slope, which becomes the layer's trainable parameter.
    func parametricRelu() throws {
        guard let slope = try constant(1, "slope") else { throw problem("has no slope", expected: "inputs X and slope") }
        try produce("prelu", ["shape": .ints(slope.shape)], reading: [try input(0)], parameters: ["slope": slope], name: baseName(parameter: 1))
    }

    /// LayerNormalization over the axes from `axis` (default −1) on, with constant scale and bias.
    func layerNormalization() throws {
        let x = try input(0)
        guard let shape = x.shape else { throw problem("normalizes an input whose shape the graph does not fix", expected: "an input of fixed size") }
        var axis = try int("axis", -1)
        if axis < 0 { axis += shape.count }
        guard axis >= 0, axis < shape.count else { throw problem("has axis \(axis) for an input of shape \(shape)") }
        let normalized = Array(shape[axis...])
        guard try int("stash_type", 1) == 1 else { throw problem("computes its statistics in another type", expected: "stash_type 1 (float)") }
        var parameters: [String: Tensor] = [:]
        for (i, key) in [(1, "weight"), (2, "bias")] {
            guard let t = try constant(i, key == "weight" ? "scale" : "bias") else { continue }
            guard t.count == normalized.reduce(1, *), t.shape.count <= normalized.count,
                  Array(normalized.suffix(t.shape.count)) == t.shape || t.count == normalized.last else {
                throw problem("its \(key == "weight" ? "scale" : "bias") has shape \(t.shape)", expected: "\(normalized), the normalized axes")
            }
            parameters[key] = try t.reshaped(normalized)
        }
        guard parameters["weight"] != nil else { throw problem("has no scale", expected: "inputs X, scale and optionally B") }
        if parameters["bias"] == nil { parameters["bias"] = Tensor(zeros: normalized) }
        guard node.outputs.count == 1 || node.outputs.dropFirst().allSatisfy({ $0.isEmpty || importer.readers[$0] == nil }) else {
            throw problem("has its mean or inverse deviation read by a later node", expected: "only output Y read")
        }
        try produce("layernorm", ["shape": .ints(normalized), "eps": .float(try float("epsilon", 1e-5))],
                    reading: [x], parameters: parameters, name: baseName(parameter: 1))
    }

    /// Split along an axis: sizes from the input (opset 13 on), the attribute, or equal parts
    /// (num_outputs from opset 18, else one per output); one slice layer per output.
    func split() throws {
        let x = try input(0)
        guard let shape = x.shape else { throw problem("splits an input whose shape the graph does not fix", expected: "an input of fixed size") }
        var axis = try int("axis", 0)
        if axis < 0 { axis += shape.count }
        guard axis >= 0, axis < shape.count else { throw problem("has axis \(axis) for an input of shape \(shape)") }
        let size = shape[axis], parts = node.outputs.count
        var sizes: [Int]
        if let given = try integers(1, "split") ?? ints("split") {
            sizes = given
        } else {
            let n = try int("num_outputs", parts)
            guard n >= 1, n == parts else { throw problem("has num_outputs \(n) and \(parts) outputs") }
            let chunk = (size + n - 1) / n
            sizes = (0..<n).map { Swift.max(0, Swift.min(chunk, size - $0 * chunk)) }
        }
        guard sizes.count == parts, sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == size else {
            throw problem("splits an axis of size \(size) into \(sizes) for \(parts) outputs", expected: "non-negative sizes adding up to \(size), one per output")
        }
        var start = 0
        for (k, n) in sizes.enumerated() {
            let part: ImportedValue
            if case .constant(let t, _) = x {
                var indices = [SliceIndex](repeating: .all, count: shape.count)
                indices[axis] = .range(start: start, end: start + n, step: 1)
                part = .constant(try Engine.slice(Variable(t), indices).value, integers: nil)
            } else {
                part = try layer("slice", ["axes": .ints([axis]), "starts": .ints([start]), "ends": .ints([start + n])],
                                 reading: [x], name: baseName() + "_\(k)")
            }
            bind(part, output: k)
            start += n
        }
    }

    /// Transpose of a computed value: a permutation layer.
    func transposeComputed() throws {
        let x = try input(0)
        let perm = try ints("perm")
        guard let rank = x.shape?.count ?? perm?.count else {
            throw problem("transposes an input whose rank the graph does not fix", expected: "a perm attribute")
        }
        let order = perm ?? Array((0..<rank).reversed())
        guard order.sorted() == Array(0..<rank) else { throw problem("has perm \(order) for an input of rank \(rank)", expected: "a permutation of 0..<\(rank)") }
        if order == Array(0..<rank) { return bind(x) }
        try produce("transpose", ["perm": .ints(order)], reading: [x])
    }

    /// Slice of a computed value (starts, ends, axes and steps constant): a slice layer.
    func sliceComputed() throws {
        let x = try input(0)
        guard let starts = try integers(1, "starts") ?? ints("starts"), let ends = try integers(2, "ends") ?? ints("ends") else {
            throw problem("has no starts or ends", expected: "inputs data, starts and ends")
        }
        let axes = try integers(3, "axes") ?? ints("axes") ?? Array(0..<starts.count)
        let steps = try integers(4, "steps") ?? [Int](repeating: 1, count: starts.count)
        guard ends.count == starts.count, axes.count == starts.count, steps.count == starts.count, !steps.contains(0) else {
            throw problem("has \(starts.count) starts, \(ends.count) ends, \(axes.count) axes and steps \(steps)", expected: "as many of each, steps not 0")
        }
        // INT64_MAX and the like stand for "to the end": clamped, so that adding a size cannot overflow.
        let bound = 1 << 40
        func clamped(_ v: [Int]) -> [Int] { v.map { Swift.min(Swift.max($0, -bound), bound) } }
        try produce("slice", ["axes": .ints(axes), "starts": .ints(clamped(starts)), "ends": .ints(clamped(ends)), "steps": .ints(steps)],
                    reading: [x])
    }

    /// ReduceSum, ReduceMax and ReduceMean (beyond global average pooling): axes as an attribute
    /// or (ReduceSum from opset 13, the others from 18) an input; keepdims defaults to 1.
    func reduction(_ op: String) throws {
        let x = try input(0)
        var axes = try integers(1, "axes") ?? ints("axes") ?? []
        if axes.isEmpty {
            if try int("noop_with_empty_axes", 0) != 0 { return bind(x) }
            guard let rank = x.shape?.count else { throw problem("reduces every axis of an input whose rank the graph does not fix") }
            axes = Array(0..<rank)
        }
        let keep = try int("keepdims", 1) != 0
        if op == "mean", let rank = x.shape?.count, rank == 4, axes.map({ $0 < 0 ? $0 + rank : $0 }).sorted() == [2, 3] {
            return try reduceMean()
        }
        try produce("reduce", ["op": .string(op), "axes": .ints(axes), "keepdims": .bool(keep)], reading: [x])
    }

    /// Resize and Upsample in nearest mode by whole factors on the last two axes (scales, or sizes
    /// that are whole multiples of the input's).
    func upsample(scalesInput: Int, sizesInput: Int?) throws {
        let x = try input(0)
        let mode = try string("mode", "nearest")
        guard mode == "nearest" else { throw problem("resizes in mode '\(mode)'", expected: "mode nearest (by whole factors)") }
        let transform = try string("coordinate_transformation_mode", "half_pixel")
        guard transform != "align_corners", transform != "tf_crop_and_resize" else {
            throw problem("resizes with coordinate_transformation_mode '\(transform)'", expected: "half_pixel, asymmetric, pytorch_half_pixel or tf_half_pixel_for_nn")
        }
        guard let shape = x.shape, shape.count == 4 else { throw problem("resizes an input whose shape the graph does not fix as [N, C, H, W]") }
        var factors: [Float]?
        if let s = try constant(scalesInput, "scales"), s.count == 4 { factors = s.scalars }
        else if let s = try floatsAttribute("scales"), s.count == 4 { factors = s }
        if factors == nil, let k = sizesInput, let sizes = try integers(k, "sizes"), sizes.count == 4 {
            factors = zip(sizes, shape).map { $1 > 0 && $0 % $1 == 0 ? Float($0 / $1) : .nan }
        }
        guard let f = factors, f[0] == 1, f[1] == 1, f[2] >= 1, f[3] >= 1, f[2] == f[2].rounded(), f[3] == f[3].rounded(),
              f[2] <= 64, f[3] <= 64 else {
            throw problem("resizes by \(factors.map { "\($0)" } ?? "no scales or sizes")",
                          expected: "whole factors from 1 to 64 on height and width, 1 on batch and channels")
        }
        if f[2] == 1 && f[3] == 1 { return bind(x) }
        try produce("upsample", ["scale": .ints([Int(f[2]), Int(f[3])])], reading: [x])
    }

    func floatsAttribute(_ name: String) throws -> [Float]? {
        guard let a = node.attributes[name] else { return nil }
        guard let v = a.floatsValue else { throw problem("attribute '\(name)' is not a list of numbers") }
        return v
    }

    /// Where with a constant condition: evaluated while importing when X and Y are constants too,
    /// else X·c + Y·(1 − c) with the condition c as 0s and 1s (multiply and add layers).
    func whereConstant() throws {
        let condition = try foldable(0, "condition")
        let a = try input(1), b = try input(2)
        guard let sa = a.shape, let sb = b.shape else { throw problem("selects between values whose shapes the graph does not fix") }
        let shape = try broadcastShape(try broadcastShape(condition.value.shape, sa), sb)
        guard let count = ONNXImporter.boundedCount(shape), count <= NodeImport.largestFoldedConstant else {
            throw problem("makes a value of shape \(shape)", expected: "at most \(NodeImport.largestFoldedConstant) values")
        }
        let chosen = condition.value.map { $0 != 0 ? 1 : 0 }, other = chosen.map { 1 - $0 }
        if case .constant(let x, let ix) = a, case .constant(let y, let iy) = b {
            let zeros = Variable(Tensor(zeros: shape))
            let c = try add(Variable(chosen), zeros).value, xs = try add(Variable(x), zeros).value, ys = try add(Variable(y), zeros).value
            let picked = (0..<count).map { c.scalars[$0] != 0 ? xs.scalars[$0] : ys.scalars[$0] }
            return bind(.constant(Tensor(shape: shape, scalars: picked), integers: ix != nil && iy != nil ? picked.map { Int($0) } : nil))
        }
        let name = baseName()
        func term(_ v: ImportedValue, _ mask: Tensor, _ suffix: String) throws -> ImportedValue {
            switch v {
            case .constant(let t, _): return .constant(try multiply(Variable(t), Variable(mask)).value, integers: nil)
            case .computed:
                return try layer("arithmetic", ["op": .string("multiply"), "shape": .ints(mask.shape)], reading: [v],
                                 parameters: ["constant": mask], name: name + suffix)
            }
        }
        let x = try term(a, chosen, "_x"), y = try term(b, other, "_y")
        switch (x, y) {
        case (.computed, .constant(let c, _)), (.constant(let c, _), .computed):
            let computed: ImportedValue
            if case .computed = x { computed = x } else { computed = y }
            try produce("arithmetic", ["op": .string("add"), "shape": .ints(c.shape)], reading: [computed], parameters: ["constant": c], name: name)
        default:
            try produce("add", reading: [x, y], name: name)
        }
    }

    /// Expand to a constant shape (with broadcasting): evaluated for constants, an added zero
    /// constant of that shape for computed values.
    func expand() throws {
        let x = try input(0)
        guard let target = try integers(1, "shape") else { throw problem("has no shape", expected: "inputs input and shape") }
        guard let from = x.shape else { throw problem("expands an input whose shape the graph does not fix") }
        let shape = try broadcastShape(from, target)
        guard let count = ONNXImporter.boundedCount(shape), count <= NodeImport.largestFoldedConstant else {
            throw problem("expands to shape \(shape)", expected: "at most \(NodeImport.largestFoldedConstant) values")
        }
        if shape == from { return bind(x) }
        switch x {
        case .constant(let t, let exact):
            let y = try add(Variable(t), Variable(Tensor(zeros: shape))).value
            bind(.constant(y, integers: exact == nil ? nil : y.scalars.map { Int($0) }))
        case .computed:
            try produce("arithmetic", ["op": .string("add"), "shape": .ints(shape)], reading: [x], parameters: ["constant": Tensor(zeros: shape)])
        }
    }
}

extension NodeImport {
    /// Sigmoid; or, when the node's only reader is a Mul of its output by its own input (the way
    /// exporters write SiLU, x · sigmoid(x)), one `silu` layer for both nodes: one pass over the
    /// activations instead of two, and no tensor of sigmoids kept for the product.
    func sigmoid() throws {
        let x = try input(0)
        let s = node.outputs[0], source = node.inputs[0]
        if case .computed = x, source != s, let mul = soleReader(of: s, "Mul", operands: 2), other(mul, than: s) == source {
            var name = baseName()
            name = name.hasSuffix("Sigmoid") ? String(name.dropLast("Sigmoid".count)) + "silu" : name + "_silu"
            let y = try layer("silu", reading: [x], name: name)
            importer.absorbed.insert(mul.index)
            importer.bind(mul.outputs[0], y)
            return
        }
        try produce("sigmoid", reading: [x])
    }
}

extension NodeImport {
    /// Div by √2, when it starts the way exporters write exact GELU, x · (erf(x / √2) + 1) · 0.5
    /// (Div, Erf, Add 1, Mul by x, Mul by 0.5; the two products in either order), each value read
    /// by the next node alone: one `gelu` layer for the five nodes, one pass over the activations
    /// instead of five (ConvNeXt-T writes it 18 times, over 1.2 M values each). False, having
    /// imported nothing, for any other Div.
    func gelu() throws -> Bool {
        guard node.inputs.count == 2, case .computed = try input(0),
              let divisor = constantScalar(node.inputs[1]), abs(divisor - Float(2).squareRoot()) <= 1e-6 else { return false }
        let x = node.inputs[0]
        guard let erf = soleReader(of: node.outputs[0], "Erf", operands: 1),
              let plusOne = soleReader(of: erf.outputs[0], "Add", operands: 2),
              constantScalar(other(plusOne, than: erf.outputs[0])) == 1,
              let first = soleReader(of: plusOne.outputs[0], "Mul", operands: 2),
              let second = soleReader(of: first.outputs[0], "Mul", operands: 2) else { return false }
        let a = other(first, than: plusOne.outputs[0]), b = other(second, than: first.outputs[0])
        guard (a == x && constantScalar(b) == 0.5) || (b == x && constantScalar(a) == 0.5) else { return false }
        var name = baseName()
        name = name.hasSuffix("Div") ? String(name.dropLast("Div".count)) + "gelu" : name + "_gelu"
        let y = try layer("gelu", reading: [try input(0)], name: name)
        for n in [erf, plusOne, first, second] { importer.absorbed.insert(n.index) }
        importer.bind(second.outputs[0], y)
        return true
    }

    /// The node that alone reads `value` (which is no graph output), if it is an `op` of `operands` inputs.
    private func soleReader(of value: String, _ op: String, operands: Int) -> (index: Int, inputs: [String], outputs: [String])? {
        guard let readers = importer.readers[value], readers.count == 1, let i = readers.first,
              !importer.graph.outputs.contains(where: { $0.name == value }) else { return nil }
        let n = importer.graph.nodes[i]
        guard n.opType == op, n.domain.isEmpty, n.inputs.count == operands, n.inputs.filter({ $0 == value }).count == 1,
              let out = n.outputs.first, !out.isEmpty else { return nil }
        return (i, n.inputs, n.outputs)
    }

    /// The input of a two-input node that is not `value`.
    private func other(_ n: (index: Int, inputs: [String], outputs: [String]), than value: String) -> String {
        n.inputs[0] == value ? n.inputs[1] : n.inputs[0]
    }

    /// The one value of a constant: an initializer, a constant already imported, or a Constant
    /// node later in the graph (exporters write one just before the node that reads it).
    private func constantScalar(_ name: String) -> Float? {
        if let v = importer.values[name] {
            if case .constant(let t, _) = v { return t.scalar }
            return nil
        }
        guard let i = importer.producers[name], case let n = importer.graph.nodes[i], n.opType == "Constant", n.domain.isEmpty else { return nil }
        if let t = n.attributes["value"]?.tensorValue { return t.value.scalar }
        return n.attributes["value_float"]?.floatValue
    }
}
