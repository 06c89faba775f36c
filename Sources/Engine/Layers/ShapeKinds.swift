// Parameter-free kinds that move, pick or join values: reshapes, padding, slicing, reductions,
// upsampling, dropout, and the joins of branches (add, mul, concat).

extension LayerKind {
    public static let dropout = unary("dropout", summary: "zeroes values with probability p while training (scaling the rest); the identity otherwise",
                                      attributes: [.optional("p", .number, .float(0.5), "the probability of dropping a value")], keepsShape: true) { x, a, c in
        try Engine.dropout(x, probability: try a.float("p"), training: c.training, generator: &c.generator)
    }
    public static let flatten = unary("flatten", summary: "the dimensions from start_dim on as one",
                                      attributes: [.optional("start_dim", .integer, .int(1), "the first dimension flattened")],
                                      layout: .batch(unbatchedRank: 3)) { x, a, _ in
        try Engine.flatten(x, startDim: try a.int("start_dim"))
    }
    public static let reshape = unary("reshape", summary: "the values in a new shape (one size may be -1)",
                                      attributes: [.required("shape", .list, "the new shape"),
                                                   .optional("keep_batch", .flag, .bool(false), "whether the batch dimension is kept in front of shape")]) { x, a, _ in
        var shape = try a.intList("shape")
        if try a.bool("keep_batch") { shape = [x.shape.first ?? 1] + shape }
        return try Engine.reshape(x, shape)
    }
    public static let identity = unary("identity", summary: "the input unchanged", keepsShape: true) { x, _, _ in x }
    public static let pad = unary("pad", summary: "a constant border around each plane",
                                  attributes: [.required("padding", .quad, aliases: ["pad"], "the border: p, [ph, pw] or [top, left, bottom, right]"),
                                               .optional("value", .number, .float(0), "the value of the border")],
                                  geometry: .padding) { x, a, _ in
        let p = try a.ints("padding", count: 4)
        return try pad2d(x, (p[0], p[1], p[2], p[3]), value: try a.float("value"))
    }
    public static let transpose = unary("transpose", summary: "the axes permuted",
                                        attributes: [.required("perm", .list, "the new order of the axes")]) { x, a, _ in
        try permute(x, try a.intList("perm"))
    }
    public static let slice = unary("slice", summary: "a part along some axes, by start, end and step (Python's rules)",
                                    attributes: [.required("axes", .list, "the axes sliced"),
                                                 .required("starts", .list, "the first index on each"),
                                                 .required("ends", .list, "the end (excluded) on each"),
                                                 AttributeSpec("steps", .list, .none, "the step on each (default 1)")]) { x, a, _ in
        let axes = try a.intList("axes"), starts = try a.intList("starts"), ends = try a.intList("ends")
        let steps = a.values["steps"] == nil ? [Int](repeating: 1, count: axes.count) : try a.intList("steps")
        guard starts.count == axes.count, ends.count == axes.count, steps.count == axes.count else {
            throw EngineError.invalidArgument("slice: axes, starts, ends and steps must be as many")
        }
        var indices = [SliceIndex](repeating: .all, count: x.shape.count)
        for (i, axis) in axes.enumerated() {
            let d = axis < 0 ? axis + x.shape.count : axis
            guard d >= 0, d < x.shape.count else { throw EngineError.invalidArgument("slice: axis \(axis) is out of range for shape \(x.shape)") }
            indices[d] = .range(start: starts[i], end: ends[i], step: steps[i])
        }
        return try Engine.slice(x, indices)
    }
    public static let reduce = unary("reduce", summary: "the sum, maximum or mean over some axes",
                                     attributes: [.optional("op", .text, .string("sum"), "sum, max or mean"),
                                                  .required("axes", .list, "the axes reduced"),
                                                  .optional("keepdims", .flag, .bool(true), "whether reduced axes stay, with size 1")]) { x, a, _ in
        try Engine.reduce(x, try a.string("op"), axes: try a.intList("axes"), keepDims: try a.bool("keepdims"))
    }
    public static let upsample = unary("upsample", summary: "each value repeated scale times along height and width (nearest neighbour)",
                                       attributes: [.required("scale", .pair, "the factor: s or [sh, sw]")]) { x, a, _ in
        let s = try a.ints("scale", count: 2)
        return try upsampleNearest(x, scale: (s[0], s[1]))
    }
    public static let gather = unary("gather", summary: "values taken at indices along an axis (NumPy's take)",
                                     attributes: [.optional("axis", .integer, .int(0), "the axis indexed"),
                                                  .required("indices", .list, "the indices"),
                                                  AttributeSpec("indices_shape", .list, .none, "the shape of the indices (default: a list)")]) { x, a, _ in
        let indices = try a.intList("indices")
        let shape = a.values["indices_shape"] == nil ? [indices.count] : try a.intList("indices_shape")
        return try take(x, axis: try a.int("axis"), indices: indices, indicesShape: shape)
    }

    public static let add = function("add", summary: "the sum of its inputs (broadcast as in NumPy)", arity: nil) { inputs, _, _ in
        try inputs.dropFirst().reduce(inputs[0]) { try Engine.add($0, $1) }
    }
    public static let mul = function("mul", summary: "the product of its inputs (broadcast as in NumPy)", arity: nil) { inputs, _, _ in
        try inputs.dropFirst().reduce(inputs[0]) { try multiply($0, $1) }
    }
    public static let concat = function("concat", summary: "its inputs joined along an axis", attributes: [.axis], arity: nil) { inputs, a, _ in
        try Engine.concat(inputs, axis: try a.int("axis"))
    }
}
