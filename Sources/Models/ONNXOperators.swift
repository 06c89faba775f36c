import Engine
import Foundation

// How each ONNX operator becomes layers, in the forms of opsets 9 to 20: where a later opset
// moved an attribute to an input (Clip's bounds, Pad's pads, Reshape's shape, the axes of
// ReduceMean, Squeeze and Unsqueeze, Dropout's ratio, Slice's starts and ends), both forms are
// read. Shape-only operators (Reshape, Flatten, Squeeze, Pad, ReduceMean) are in
// ONNXShapeOperators.swift; those evaluated while importing (Shape, Gather, Slice, ...) in
// ONNXConstantOperators.swift.

extension ONNXImporter {
    typealias Conversion = (NodeImport) throws -> Void

    /// The one table from ONNX operator to conversion; `Network.importableONNXOperators` lists it.
    // Constant and never mutated; its closures capture nothing, so threads may share it.
    nonisolated(unsafe) static let conversions: [String: Conversion] = [
        "Add": { try $0.arithmetic(.add) },
        "AveragePool": { try $0.pool("avgpool") },
        "BatchNormalization": { try $0.batchNormalization() },
        "Cast": { try $0.cast() },
        "Clip": { try $0.clip() },
        "Concat": { try $0.join("concat", ["axis": .int(try $0.int("axis", 1))]) },
        "Constant": { try $0.constantNode() },
        "ConstantOfShape": { try $0.constantOfShape() },
        "Conv": { try $0.convolution() },
        "Div": { n in if try !n.gelu() { try n.arithmetic(.divide) } },
        "Dropout": { try $0.dropout() },
        "Flatten": { try $0.flatten() },
        "Gather": { $0.readsComputed ? try $0.gatherComputed() : try $0.gather() },
        "Gemm": { try $0.gemm() },
        "GlobalAveragePool": { try $0.produce("global_avgpool", reading: [try $0.input(0)]) },
        "Identity": { $0.bind(try $0.input(0)) },
        "LRN": { try $0.localResponseNorm() },
        "LeakyRelu": { try $0.produce("leaky_relu", ["slope": .float(try $0.float("alpha", 0.01))], reading: [try $0.input(0)]) },
        "LogSoftmax": { try $0.softmax("log_softmax") },
        "MatMul": { try $0.matmul() },
        "MaxPool": { try $0.pool("maxpool") },
        "Mul": { try $0.arithmetic(.multiply) },
        "Pad": { try $0.pad() },
        "ReduceMean": { try $0.reduction("mean") },
        "Relu": { try $0.produce("relu", reading: [try $0.input(0)]) },
        "Reshape": { try $0.reshape() },
        "Shape": { try $0.shapeOf() },
        "Slice": { $0.readsComputed ? try $0.sliceComputed() : try $0.slice() },
        "Softmax": { try $0.softmax("softmax") },
        "Squeeze": { try $0.squeeze(inserting: false) },
        "Sub": { try $0.arithmetic(.subtract) },
        "Sum": { try $0.join("add") },
        "Tanh": { try $0.produce("tanh", reading: [try $0.input(0)]) },
        "Transpose": { $0.readsComputed ? try $0.transposeComputed() : try $0.transposeConstant() },
        "Unsqueeze": { try $0.squeeze(inserting: true) },
    ].merging(graphConversions) { first, _ in first }
}

// MARK: - Convolution, pooling, normalization

extension NodeImport {
    /// Conv: weight [out, in/group, kh, kw] and optional bias from initializers.
    func convolution() throws {
        let x = try input(0)
        guard let w = try constant(1, "weight") else { throw problem("has no weight", expected: "inputs X, W and optionally B") }
        guard w.rank == 4, w.shape.allSatisfy({ $0 >= 1 }) else {
            throw problem("has a weight of shape \(w.shape)", expected: "a 4-D weight [out, in, kh, kw] (cnnlab convolves images)")
        }
        let bias = try constant(2, "bias")
        let groups = try int("group", 1)
        guard groups >= 1, groups <= w.shape[0], w.shape[0] % groups == 0 else {
            throw problem("has group \(groups) for \(w.shape[0]) output channels", expected: "a divisor of the output channels")
        }
        if let k = try ints("kernel_shape"), k != Array(w.shape[2...]) {
            throw problem("has kernel_shape \(k) but a weight of shape \(w.shape)")
        }
        if let bias, bias.shape != [w.shape[0]] {
            throw problem("has a bias of shape \(bias.shape)", expected: "[\(w.shape[0])], one value per output channel")
        }
        let strides = try pair("strides", default: 1), dilations = try pair("dilations", default: 1)
        let extent = [(w.shape[2] - 1) * dilations[0] + 1, (w.shape[3] - 1) * dilations[1] + 1]
        let padding = try spatialPadding(kernel: extent, strides: strides, input: x)
        var parameters = ["weight": w]
        if let bias { parameters["bias"] = bias }
        try produce("conv2d", ["in": .int(w.shape[1] * groups), "out": .int(w.shape[0]), "kernel": .ints(Array(w.shape[2...])),
                               "stride": .ints(strides), "padding": .ints(padding), "dilation": .ints(dilations),
                               "groups": .int(groups), "bias": .bool(bias != nil)],
                    reading: [x], parameters: parameters, name: baseName(parameter: 1))
    }

    /// MaxPool, AveragePool: kernel_shape, strides (default 1), pads or auto_pad, ceil_mode;
    /// AveragePool's count_include_pad defaults to 0 in ONNX (and to true in PyTorch).
    func pool(_ kind: String) throws {
        let x = try input(0)
        guard let kernel = try ints("kernel_shape"), kernel.count == 2, kernel.allSatisfy({ $0 >= 1 && $0 <= ONNXImporter.largestExtent }) else {
            throw problem("has kernel_shape \(try ints("kernel_shape").map { "\($0)" } ?? "missing")",
                          expected: "two sizes from 1 to \(ONNXImporter.largestExtent) (cnnlab pools images)")
        }
        guard try pair("dilations", default: 1) == [1, 1] else { throw problem("pools with dilations", expected: "dilations 1") }
        let strides = try pair("strides", default: 1)
        var attributes: [String: AttributeValue] = [
            "kernel": .ints(kernel), "stride": .ints(strides),
            "padding": .ints(try spatialPadding(kernel: kernel, strides: strides, input: x)),
            "ceil_mode": .bool(try int("ceil_mode", 0) != 0),
        ]
        if kind == "avgpool" { attributes["count_include_pad"] = .bool(try int("count_include_pad", 0) != 0) }
        try produce(kind, attributes, reading: [x])
    }

    /// [top, left, bottom, right] from pads or auto_pad. SAME_UPPER puts an odd padding's extra
    /// row at the end, SAME_LOWER at the start, so that the output is ⌈size / stride⌉.
    func spatialPadding(kernel: [Int], strides: [Int], input x: ImportedValue) throws -> [Int] {
        let mode = try string("auto_pad", "NOTSET")
        switch mode {
        case "NOTSET":
            guard let pads = try ints("pads") else { return [0, 0, 0, 0] }
            guard pads.count == 4, pads.allSatisfy({ $0 >= 0 && $0 <= ONNXImporter.largestExtent }) else {
                throw problem("has pads \(pads)", expected: "four values [top, left, bottom, right] from 0 to \(ONNXImporter.largestExtent)")
            }
            return pads
        case "VALID":
            return [0, 0, 0, 0]
        case "SAME_UPPER", "SAME_LOWER":
            guard let shape = x.shape, shape.count == 4 else {
                throw problem("has auto_pad \(mode), which needs the input's height and width, and the graph does not fix them",
                              expected: "explicit pads, or an input of fixed size")
            }
            var begin = [0, 0], end = [0, 0]
            for d in 0..<2 {
                let size = shape[2 + d], out = (size + strides[d] - 1) / strides[d]
                let total = Swift.max((out - 1) * strides[d] + kernel[d] - size, 0)
                begin[d] = mode == "SAME_UPPER" ? total / 2 : total - total / 2
                end[d] = total - begin[d]
            }
            return [begin[0], begin[1], end[0], end[1]]
        default:
            throw problem("has auto_pad '\(mode)'", expected: "NOTSET, SAME_UPPER, SAME_LOWER or VALID")
        }
    }

    /// BatchNormalization in inference: scale, bias, mean and variance from initializers. ONNX's
    /// momentum weighs the old statistics (0.9), PyTorch's the new batch (0.1).
    func batchNormalization() throws {
        guard try int("training_mode", 0) == 0 else {
            throw problem("normalizes in training mode", expected: "training_mode 0 (an exported model in eval mode)")
        }
        guard try int("spatial", 1) == 1 else { throw problem("normalizes per position (spatial 0)", expected: "spatial 1") }
        let x = try input(0)
        var parameters: [String: Tensor] = [:], channels = 0
        for (i, (key, role)) in [("weight", "scale"), ("bias", "bias"), ("running_mean", "mean"), ("running_var", "variance")].enumerated() {
            guard let t = try constant(i + 1, role) else { throw problem("has no \(role)", expected: "inputs X, scale, B, mean and var") }
            if i == 0 { channels = t.count }
            guard t.shape == [channels] else {
                throw problem("its \(role) has shape \(t.shape)", expected: "[\(channels)] like its scale, one value per channel")
            }
            parameters[key] = t
        }
        try produce("batchnorm", ["channels": .int(channels), "eps": .float(try float("epsilon", 1e-5)),
                                  "momentum": .float(1 - (try float("momentum", 0.9)))],
                    reading: [x], parameters: parameters, name: baseName(parameter: 1))
    }

    /// LRN: size, alpha, beta and bias (PyTorch's k); the sum of squares is divided by size in both.
    /// For an even size ONNX's window has its extra channel after the centre and PyTorch's before,
    /// so only odd sizes (the only ones onnxruntime runs) are imported.
    func localResponseNorm() throws {
        guard let size = node.attributes["size"]?.intValue, size >= 1, size % 2 == 1 else {
            throw problem("has size \(node.attributes["size"]?.intValue.map(String.init) ?? "missing")",
                          expected: "an odd number of channels to sum over")
        }
        try produce("lrn", ["size": .int(size), "alpha": .float(try float("alpha", 1e-4)), "beta": .float(try float("beta", 0.75)),
                            "k": .float(try float("bias", 1))],
                    reading: [try input(0)])
    }
}

// MARK: - Products, arithmetic, activations

extension NodeImport {
    /// Gemm with B from an initializer: a linear layer. Y = α·A·op(B) + β·C, so the weight is α·Bᵀ
    /// (α·B when transB is 1) and the bias β·C.
    func gemm() throws {
        let a = try input(0)
        guard let b = try constant(1, "B") else { throw problem("has no B", expected: "inputs A, B and optionally C") }
        guard try int("transA", 0) == 0 else { throw problem("transposes A", expected: "transA 0") }
        guard b.rank == 2 else { throw problem("has a B of shape \(b.shape)", expected: "a matrix") }
        if let shape = a.shape, shape.count != 2 { throw problem("multiplies an A of shape \(shape)", expected: "a matrix [N, features]") }
        let alpha = try float("alpha", 1), beta = try float("beta", 1)
        var weight = try int("transB", 0) != 0 ? b : try transpose(Variable(b)).value
        if alpha != 1 { weight = weight.map { $0 * alpha } }
        var parameters = ["weight": weight]
        if let c = try constant(2, "C") { parameters["bias"] = try biasVector(c, count: weight.shape[0]).map { $0 * beta } }
        try produce("linear", ["in": .int(weight.shape[1]), "out": .int(weight.shape[0]), "bias": .bool(parameters["bias"] != nil)],
                    reading: [a], parameters: parameters, name: baseName(parameter: 1))
    }

    /// A bias that broadcasts along the rows of an [N, count] result: shape [count], [1, count] or a single value.
    func biasVector(_ c: Tensor, count: Int) throws -> Tensor {
        if c.count == 1 { return Tensor(repeating: c.scalars[0], shape: [count]) }
        guard c.count == count, c.shape.last == count else {
            throw problem("adds a C of shape \(c.shape)", expected: "[\(count)] or [1, \(count)], one value per output")
        }
        return try c.reshaped([count])
    }

    /// MatMul by an initializer B [k, n]: a linear layer with weight Bᵀ and no bias, unless the only
    /// reader of the product is an Add of a constant [n], which then becomes the bias. An input of
    /// rank above 2 multiplies along its last axis: reshaped to rows, multiplied, reshaped back.
    func matmul() throws {
        let a = try input(0)
        guard let b = try constant(1, "B") else { throw problem("has no B", expected: "inputs A and B") }
        guard b.rank == 2 else { throw problem("multiplies by a B of shape \(b.shape)", expected: "a matrix [k, n] (an initializer)") }
        guard let rank = a.shape?.count else {
            throw problem("multiplies an input whose shape the graph does not fix", expected: "an input of fixed size")
        }
        guard rank >= 1, let shapeA = a.shape, shapeA[rank - 1] == b.shape[0] else {
            throw problem("multiplies \(a.shape ?? []) by \(b.shape)", expected: "inner sizes that agree")
        }
        let (k, n) = (b.shape[0], b.shape[1])
        var parameters = ["weight": try transpose(Variable(b)).value]
        let folded = foldableBias(count: n, outputRank: rank)
        if let folded { parameters["bias"] = folded.bias }
        let name = baseName(parameter: 1)
        var rows = a
        if rank > 2 { rows = try layer("reshape", ["shape": .ints([-1, k])], reading: [a], name: name + "_rows") }
        var y = try layer("linear", ["in": .int(k), "out": .int(n), "bias": .bool(folded != nil)],
                          reading: [rows], parameters: parameters, name: name)
        if rank != 2 {
            y = try layer("reshape", ["shape": .ints(rank == 1 ? [n] : [-1] + shapeA[1..<(rank - 1)] + [n])], reading: [y], name: name + "_unrows")
        }
        if let folded {
            importer.absorbed.insert(folded.node)
            for output in importer.graph.nodes[folded.node].outputs.prefix(1) { importer.bind(output, y) }
        } else {
            bind(y)
        }
    }

    /// The bias of an Add that is the only reader of this node's output, if it adds a constant of `count` values.
    private func foldableBias(count: Int, outputRank: Int) -> (bias: Tensor, node: Int)? {
        let product = node.outputs[0]
        guard let readers = importer.readers[product], readers.count == 1, let next = readers.first,
              !importer.graph.outputs.contains(where: { $0.name == product }) else { return nil }
        let add = importer.graph.nodes[next]
        guard add.opType == "Add", add.domain.isEmpty, add.inputs.count == 2, add.inputs.filter({ $0 == product }).count == 1,
              let other = add.inputs.first(where: { $0 != product }),
              case .constant(let c, _)? = importer.values[other],
              c.count == count, c.shape.last == count, c.rank <= outputRank,
              let bias = try? c.reshaped([count]) else { return nil }
        return (bias, next)
    }

    /// Add, Sub, Mul, Div: join layers between two computed values, an arithmetic layer holding
    /// the constant when one side is an initializer, folded now when both are.
    func arithmetic(_ operation: ArithmeticLayer.Operation) throws {
        let a = try input(0), b = try input(1)
        if case .constant(let x, let ix?) = a, case .constant(let y, let iy?) = b { return try integerArithmetic(operation, x, ix, y, iy) }
        switch (a, b) {
        case (.computed, .constant(let c, _)):
            try produce("arithmetic", ["op": .string(operation.rawValue), "shape": .ints(c.shape)],
                        reading: [a], parameters: ["constant": c])
        case (.constant(let c, _), .computed):
            try produce("arithmetic", ["op": .string(operation.rawValue), "shape": .ints(c.shape), "constant_first": .bool(true)],
                        reading: [b], parameters: ["constant": c])
        default:
            switch operation {
            case .add: try produce("add", reading: [a, b])
            case .multiply: try produce("mul", reading: [a, b])
            case .subtract, .divide, .minimum, .maximum: try produce("arithmetic", ["op": .string(operation.rawValue)], reading: [a, b])
            }
        }
    }

    /// Concat and Sum: a join of every input (one input is passed through).
    func join(_ kind: String, _ attributes: [String: AttributeValue] = [:]) throws {
        let inputs = try node.inputs.indices.map { try input($0) }
        if inputs.count == 1, let only = inputs.first { return bind(only) }
        try produce(kind, attributes, reading: inputs)
    }

    /// Clip: bounds as attributes (opsets 6 to 10) or as constant inputs (11 on); 0 and 6 is ReLU6.
    func clip() throws {
        var low = try float("min", -.infinity), high = try float("max", .infinity)
        if let v = try scalar(1, "lower bound") { low = v }
        if let v = try scalar(2, "upper bound") { high = v }
        guard !(low > high) else { throw problem("clips to [\(low), \(high)], which is empty") }
        if low == 0 && high == 6 { return try produce("relu6", reading: [try input(0)]) }
        // Infinite bounds stay out of the attributes: they are the layer's defaults, and JSON has no infinity.
        var attributes: [String: AttributeValue] = [:]
        if low.isFinite { attributes["min"] = .float(low) }
        if high.isFinite { attributes["max"] = .float(high) }
        try produce("clip", attributes, reading: [try input(0)])
    }

    /// Softmax and LogSoftmax. From opset 13 they act along one axis (default −1); before, they
    /// flattened the input from `axis` (default 1) into rows, which for an input of rank above
    /// axis + 1 is a flatten, the softmax, and a reshape back.
    func softmax(_ kind: String) throws {
        let x = try input(0)
        var axis = try int("axis", importer.opset >= 13 ? -1 : 1)
        if importer.opset >= 13 { return try produce(kind, ["axis": .int(axis)], reading: [x]) }
        guard let shape = x.shape else {
            throw problem("needs its input's rank (before opset 13 it flattens from its axis), which the graph does not fix")
        }
        if axis < 0 { axis += shape.count }
        guard axis >= 1, axis < shape.count else {
            throw problem("has axis \(axis) for an input of shape \(shape)", expected: "an axis after the batch axis")
        }
        if axis == shape.count - 1 { return try produce(kind, ["axis": .int(axis)], reading: [x]) }
        let name = baseName()
        let rows = try layer("flatten", ["start_dim": .int(axis)], reading: [x], name: name + "_rows")
        let y = try layer(kind, ["axis": .int(-1)], reading: [rows], name: name)
        try produce("reshape", ["shape": .ints(Array(shape[1...])), "keep_batch": .bool(true)], reading: [y], name: name + "_unrows")
    }

    /// Dropout: the ratio as an attribute (before opset 12) or an input; the mask is not computed.
    func dropout() throws {
        var ratio = try float("ratio", 0.5)
        if let v = try scalar(1, "ratio") { ratio = v }
        guard ratio >= 0, ratio < 1 else { throw problem("has ratio \(ratio)", expected: "a ratio in [0, 1)") }
        try produce("dropout", ["p": .float(ratio)], reading: [try input(0)])
    }

    /// Constant: its value, from a tensor or from one of the value_float(s) / value_int(s) forms.
    func constantNode() throws {
        let a = node.attributes
        if let t = a["value"]?.tensorValue { return bind(.constant(t.value, integers: t.integers)) }
        if let v = a["value_float"]?.floatValue { return bind(.constant(Tensor(scalar: v), integers: nil)) }
        if let v = a["value_floats"]?.floatsValue { return bind(.constant(Tensor(shape: [v.count], scalars: v), integers: nil)) }
        if let v = a["value_int"]?.intValue { return bind(.constant(Tensor(scalar: Float(v)), integers: [v])) }
        if let v = a["value_ints"]?.intsValue { return bind(.constant(Tensor(shape: [v.count], scalars: v.map(Float.init)), integers: v)) }
        throw problem("holds no value cnnlab reads (attributes \(a.keys.sorted().joined(separator: ", ")))",
                      expected: "value, value_float, value_floats, value_int or value_ints")
    }
}
