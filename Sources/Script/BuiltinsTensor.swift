import Engine
import Foundation

/// Builtins that make and transform tensors. Every operation runs on the engine's variables,
/// so gradients flow through it.
extension Builtins {
    /// A shape from variadic arguments: `zeros(2, 3)` or `zeros([2, 3])`.
    static func shape(_ args: Arguments, _ name: String) throws -> [Int] {
        var shape: [Int] = []
        for v in args.rest {
            switch v {
            case .number(let d): shape.append(Int(d))
            case .list(let xs): for x in xs { if case .number(let d) = x { shape.append(Int(d)) } }
            default: throw ScriptError("\(args.builtin): a shape is made of whole numbers")
            }
        }
        try Conversions.checkShape(shape)
        return shape
    }

    /// An optional axis argument, or nil.
    static func axis(_ args: Arguments) throws -> Int? { try args.optionalInt("axis") }

    /// Applies a reduction: numbers for a list, tensors (on the tape) for a tensor.
    static func reduce(_ args: Arguments, _ op: (Variable, Int?, Bool) throws -> Variable) throws -> Value {
        let x = try args.tensor("x")
        let y = try op(x, try axis(args), try args.bool("keepdims"))
        switch args["x"] {
        case .list, .range: return .number(Double(y.value.scalars.first ?? 0))
        default: return .tensor(y)
        }
    }

    /// An elementwise function of a number or a tensor.
    static func elementwiseBuiltin(_ name: String, _ f: ElementwiseFunction, _ number: @escaping (Double) -> Double, _ summary: String, _ example: String) -> Builtin {
        Builtin(name, category: .tensors, parameters: [.required("x", .number, .tensor)], summary: summary,
                help: "On a number, a number; on a tensor, elementwise (gradients flow).", example: example) { args, _ in
            if case .number(let d) = args["x"] { return .number(number(d)) }
            return .tensor(elementwise(f, try args.tensor("x")))
        }
    }

    /// Adds a batch (and channel) dimension where the engine's convolution needs them.
    static func asConvolutionInput(_ x: Variable) throws -> Variable {
        switch x.shape.count {
        case 2: return try reshape(x, [1, 1] + x.shape)
        case 3: return try reshape(x, [1] + x.shape)
        default: return x
        }
    }

    static func asConvolutionWeight(_ w: Variable) throws -> Variable {
        switch w.shape.count {
        case 2: return try reshape(w, [1, 1] + w.shape)
        case 3: return try reshape(w, [1] + w.shape)
        default: return w
        }
    }

    /// Refuses a convolution whose output or patch matrix would be too large to allocate
    /// (a padding of a million), before the engine allocates it.
    static func checkConvolutionSize(_ x: [Int], _ w: [Int], _ stride: [Int], _ pad: [Int], _ dilation: [Int]) throws {
        guard x.count >= 2, w.count >= 2, stride.count == 2, pad.count == 4, dilation.count == 2 else { return }
        guard stride.allSatisfy({ $0 > 0 }), dilation.allSatisfy({ $0 > 0 }), pad.allSatisfy({ $0 >= 0 }) else {
            throw ScriptError("stride and dilation must be positive and padding not negative")
        }
        guard pad.allSatisfy({ $0 <= 1 << 16 }), dilation.allSatisfy({ $0 <= 1 << 16 }) else {
            throw ScriptError("padding and dilation must be at most \(1 << 16)")
        }
        let h = x[x.count - 2] + pad[0] + pad[2], wd = x[x.count - 1] + pad[1] + pad[3]
        let oh = max(0, (h - dilation[0] * (w[w.count - 2] - 1) - 1) / stride[0] + 1)
        let ow = max(0, (wd - dilation[1] * (w[w.count - 1] - 1) - 1) / stride[1] + 1)
        let batch = x.count == 4 ? x[0] : 1, filters = w.count == 4 ? w[0] : 1, patch = w.dropFirst(w.count == 4 ? 1 : 0).reduce(1, *)
        try Conversions.checkShape([batch, filters, oh, ow])
        try Conversions.checkShape([oh * ow, patch])
    }

    static var tensors: [Builtin] {
        [
            tensorBuiltin, zerosBuiltin, onesBuiltin, randnBuiltin, arangeBuiltin, reshapeBuiltin,
            flattenBuiltin, sumBuiltin, meanBuiltin, maxBuiltin, minBuiltin, argmaxBuiltin, allcloseBuiltin,
            absBuiltin, expBuiltin, logBuiltin, sqrtBuiltin, transposeBuiltin, concatBuiltin, matmulBuiltin,
            conv2dBuiltin, toeplitzBuiltin, im2colBuiltin
        ]
    }

    static var tensorBuiltin: Builtin {
        Builtin("tensor", category: .tensors, parameters: [.required("values", .list, .number, .tensor)],
                summary: "A tensor from a number or nested lists of numbers.",
                help: "The nesting gives the shape: a list of 4 lists of 4 numbers is a 4 x 4 tensor. All lists at one depth must have the same length.",
                example: "tensor([[1, 2], [3, 4]])") { args, _ in .tensor(Variable(try Conversions.tensor(args["values"]))) }
    }

    static var zerosBuiltin: Builtin {
        Builtin("zeros", category: .tensors, parameters: [.variadic("shape", .integer, .shape)],
                summary: "A tensor of zeros.", help: "The shape is given as numbers or as one list.",
                example: "zeros(2, 3)\nzeros([1, 4])") { args, _ in .tensor(Variable(Tensor(zeros: try shape(args, "shape")))) }
    }

    static var onesBuiltin: Builtin {
        Builtin("ones", category: .tensors, parameters: [.variadic("shape", .integer, .shape)],
                summary: "A tensor of ones.", help: "The shape is given as numbers or as one list.",
                example: "ones(3)") { args, _ in .tensor(Variable(Tensor(ones: try shape(args, "shape")))) }
    }

    static var randnBuiltin: Builtin {
        Builtin("randn", category: .tensors,
                parameters: [.variadic("shape", .integer, .shape), .optional("seed", .integer, .none, default: .none), .optional("std", .number, default: .number(1))],
                summary: "Normally distributed random numbers.",
                help: "Mean 0 and standard deviation `std`. With `seed`, the same numbers every time; without, the session's own sequence (which also replays the same way from the start of a session).",
                example: "randn(2, 2, seed=1)") { args, ctx in
            let s = try shape(args, "shape"), std = try args.float("std")
            if let seed = try args.optionalInt("seed") { return .tensor(Variable(Tensor.randn(s, std: std, seed: UInt64(bitPattern: Int64(seed))))) }
            return .tensor(Variable(ctx.withGenerator { Tensor.randn(s, std: std, generator: &$0) }))
        }
    }

    static var arangeBuiltin: Builtin {
        Builtin("arange", category: .tensors,
                parameters: [.required("start", .number), .optional("stop", .number, .none, default: .none), .optional("step", .number, default: .number(1))],
                summary: "A 1-D tensor of evenly spaced numbers from start up to (not including) stop.",
                help: "`arange(n)` is 0, 1, ..., n - 1.",
                example: "arange(4)\narange(0, 1, 0.25)") { args, _ in
            var start = try args.number("start"), stop = args.isNone("stop") ? nil : try args.number("stop")
            let step = try args.number("step")
            if stop == nil { stop = start; start = 0 }
            guard step != 0, step.isFinite, start.isFinite, let end = stop, end.isFinite else { throw ScriptError("arange: the step must be a finite number other than 0") }
            let exact = ((end - start) / step).rounded(.up)
            guard exact < Double(Conversions.maximumElements) else { throw ScriptError("arange: that would be more than \(Conversions.maximumElements) numbers") }
            let count = max(0, Int(exact))
            return .tensor(Variable(Tensor((0..<count).map { Float(start + Double($0) * step) })))
        }
    }

    static var reshapeBuiltin: Builtin {
        Builtin("reshape", category: .tensors, parameters: [.required("x", .tensor), .required("shape", .shape)],
                summary: "The same numbers in another shape.", help: "One dimension may be -1: it is worked out from the others.",
                example: "reshape(arange(6), [2, 3])\nreshape(arange(6), [-1, 2])") { args, _ in
            .tensor(try reshape(try args.tensor("x"), try args.ints("shape")))
        }
    }

    static var flattenBuiltin: Builtin {
        Builtin("flatten", category: .tensors, parameters: [.optional("x", .tensor, .none, default: .none)],
                summary: "A tensor's numbers as one row; flatten() with no tensor is a layer.",
                help: "`flatten(x)` gives a 1-D tensor. `flatten()` makes a flatten layer for `network(...)`: it keeps the batch dimension and joins the others.",
                example: "flatten(tensor([[1, 2], [3, 4]]))\nflatten()") { args, ctx in
            if args.isNone("x") { return try makeLayer("flatten", [:], ctx) }
            return .tensor(try reshape(try args.tensor("x"), [-1]))
        }
    }

    static var sumBuiltin: Builtin {
        Builtin("sum", category: .tensors, parameters: [.required("x", .tensor, .list), .optional("axis", .integer, .none, default: .none), .optional("keepdims", .bool, default: .bool(false))],
                summary: "The sum of all elements, or along one axis.",
                help: "Negative axes count from the end. The sum of a list of numbers is a number.",
                example: "sum(tensor([[1, 2], [3, 4]]))\nsum(tensor([[1, 2], [3, 4]]), axis=0)") { args, _ in
            try reduce(args) { try sum($0, axis: $1, keepDims: $2) }
        }
    }

    static var meanBuiltin: Builtin {
        Builtin("mean", category: .tensors, parameters: [.required("x", .tensor, .list), .optional("axis", .integer, .none, default: .none), .optional("keepdims", .bool, default: .bool(false))],
                summary: "The mean of all elements, or along one axis.", example: "mean(tensor([1, 2, 3, 4]))") { args, _ in
            try reduce(args) { try mean($0, axis: $1, keepDims: $2) }
        }
    }

    static var maxBuiltin: Builtin {
        Builtin("max", category: .tensors, parameters: [.required("x", .tensor, .list), .optional("axis", .integer, .none, default: .none), .optional("keepdims", .bool, default: .bool(false))],
                summary: "The largest element, or the largest along one axis.",
                help: "The gradient goes to the first largest element.", example: "max(tensor([3, 1, 4, 1, 5]))") { args, _ in
            try reduce(args) { try max($0, axis: $1, keepDims: $2) }
        }
    }

    static var minBuiltin: Builtin {
        Builtin("min", category: .tensors, parameters: [.required("x", .tensor, .list), .optional("axis", .integer, .none, default: .none), .optional("keepdims", .bool, default: .bool(false))],
                summary: "The smallest element, or the smallest along one axis.", example: "min(tensor([3, 1, 4]))") { args, _ in
            try reduce(args) { negate(try max(negate($0), axis: $1, keepDims: $2)) }
        }
    }

    static var argmaxBuiltin: Builtin {
        Builtin("argmax", category: .tensors, parameters: [.required("x", .tensor, .list), .optional("axis", .integer, .none, default: .none)],
                summary: "Where the largest element is: a flat index, or indices along an axis.",
                example: "argmax(tensor([3, 1, 4, 1, 5]))\nargmax(tensor([[1, 9], [8, 2]]), axis=1)") { args, _ in
            let x = try args.tensor("x").value
            guard x.count > 0 else { throw ScriptError("argmax: the tensor is empty", argument: "x") }
            guard let a = try axis(args) else { return .number(Double(x.argmax())) }
            let r = x.rank, ax = a < 0 ? a + r : a
            guard ax >= 0, ax < r else { throw ScriptError("argmax: axis \(a) is out of range for shape \(Display.shape(x.shape))", argument: "axis") }
            let outer = x.shape[..<ax].reduce(1, *), len = x.shape[ax], inner = x.shape[(ax + 1)...].reduce(1, *)
            var out = [Float](repeating: 0, count: outer * inner)
            for o in 0..<outer { for i in 0..<inner {
                var best = 0
                for j in 1..<max(len, 1) where x.scalars[(o * len + j) * inner + i] > x.scalars[(o * len + best) * inner + i] { best = j }
                out[o * inner + i] = Float(best)
            }}
            var shape = x.shape
            shape.remove(at: ax)
            return .tensor(Variable(Tensor(shape: shape, scalars: out)))
        }
    }

    static var allcloseBuiltin: Builtin {
        Builtin("allclose", category: .tensors,
                parameters: [.required("a", .tensor, .number), .required("b", .tensor, .number), .optional("rtol", .number, default: .number(1e-5)), .optional("atol", .number, default: .number(1e-6))],
                summary: "Whether two tensors agree within a tolerance.",
                help: "True when they have the same shape and every |a - b| <= atol + rtol * |b|.",
                example: "allclose(tensor([1, 2]), tensor([1, 2.0000001]))") { args, _ in
            let a = try args.tensor("a").value, b = try args.tensor("b").value
            guard a.shape == b.shape else {
                throw ScriptError("allclose: the shapes differ, \(Display.shape(a.shape)) and \(Display.shape(b.shape))")
            }
            return .bool(a.isClose(to: b, rtol: try args.float("rtol"), atol: try args.float("atol")))
        }
    }

    static var absBuiltin: Builtin {
        elementwiseBuiltin("abs", .abs, { Swift.abs($0) }, "The absolute value.", "abs(-3)\nabs(tensor([-1, 2]))")
    }

    static var expBuiltin: Builtin {
        elementwiseBuiltin("exp", .exp, Foundation.exp, "e to the power x.", "exp(1)")
    }

    static var logBuiltin: Builtin {
        elementwiseBuiltin("log", .log, Foundation.log, "The natural logarithm.", "log(exp(2))")
    }

    static var sqrtBuiltin: Builtin {
        elementwiseBuiltin("sqrt", .sqrt, { $0.squareRoot() }, "The square root.", "sqrt(tensor([4, 9]))")
    }

    static var transposeBuiltin: Builtin {
        Builtin("transpose", category: .tensors, parameters: [.required("x", .tensor)],
                summary: "A matrix with rows and columns swapped.", example: "transpose(tensor([[1, 2, 3]]))") { args, _ in
            .tensor(try transpose(try args.tensor("x")))
        }
    }

    static var concatBuiltin: Builtin {
        Builtin("concat", category: .tensors, parameters: [.required("tensors", .list), .optional("axis", .integer, default: .number(0))],
                summary: "Tensors joined along an axis.", help: "Every other dimension must agree.",
                example: "concat([tensor([1, 2]), tensor([3])])") { args, _ in
            let xs = try args.list("tensors").map { try Conversions.variable($0) }
            return .tensor(try concat(xs, axis: try args.int("axis")))
        }
    }

    static var matmulBuiltin: Builtin {
        Builtin("matmul", category: .tensors, parameters: [.required("a", .tensor), .required("b", .tensor)],
                summary: "The matrix product; a @ b is the same.",
                help: "[m, k] times [k, n] is [m, n]; a vector [k] on the right is a column.",
                example: "matmul(tensor([[1, 2], [3, 4]]), tensor([1, 1]))") { args, _ in
            let a = try args.tensor("a"), b = try args.tensor("b")
            try Conversions.checkShape([a.value.count / max(a.shape.last ?? 1, 1), b.shape.count == 2 ? b.shape[1] : 1])
            return .tensor(try matmul(a, b))
        }
    }

    static var conv2dBuiltin: Builtin {
        Builtin("conv2d", category: .tensors,
                parameters: [.required("x", .tensor), .required("w", .tensor), .optional("stride", .integer, .shape, default: .number(1)),
                             .optional("pad", .integer, .shape, default: .number(0)), .optional("dilation", .integer, .shape, default: .number(1)),
                             .optional("groups", .integer, default: .number(1)), .optional("bias", .tensor, .none, default: .none)],
                summary: "2-D convolution (cross-correlation, as PyTorch computes it) of x with filters w.",
                help: "x is [H, W], [C, H, W] or [N, C, H, W]; w is [kh, kw] or [K, C, kh, kw]. A 2-D x with a 2-D w gives a 2-D result, as on a slide. `pad` is one number, [ph, pw] or [top, left, bottom, right].",
                example: "conv2d(tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), tensor([[1, 0], [0, -1]]))") { args, _ in
            let x = try args.tensor("x"), w = try args.tensor("w")
            let s = try args.ints("stride", count: 2), d = try args.ints("dilation", count: 2)
            var p = try args.ints("pad")
            switch p.count {
            case 1: p = [p[0], p[0], p[0], p[0]]
            case 2: p = [p[0], p[1], p[0], p[1]]
            case 4: break
            default: throw ScriptError("conv2d: pad is one number, [ph, pw] or [top, left, bottom, right]", argument: "pad")
            }
            let options = ConvOptions(stride: (s[0], s[1]), padding: (p[0], p[1], p[2], p[3]), dilation: (d[0], d[1]), groups: try args.int("groups"))
            guard x.shape.count >= 2, x.shape.count <= 4 else { throw ScriptError("conv2d: x must be [H, W], [C, H, W] or [N, C, H, W], got \(Display.shape(x.shape))", argument: "x") }
            guard w.shape.count >= 2, w.shape.count <= 4 else { throw ScriptError("conv2d: w must be [kh, kw] or [K, C, kh, kw], got \(Display.shape(w.shape))", argument: "w") }
            try checkConvolutionSize(x.shape, w.shape, s, p, d)
            let y = try conv2d(try asConvolutionInput(x), try asConvolutionWeight(w), try args.optionalTensor("bias"), options)
            // Give back the rank that came in: [H, W] in, [OH, OW] out (when one filter).
            switch x.shape.count {
            case 2 where y.shape[1] == 1: return .tensor(try reshape(y, Array(y.shape.suffix(2))))
            case 2, 3: return .tensor(try reshape(y, Array(y.shape.dropFirst())))
            default: return .tensor(y)
            }
        }
    }

    static var toeplitzBuiltin: Builtin {
        Builtin("toeplitz", category: .tensors,
                parameters: [.required("w", .tensor), .required("shape", .shape), .optional("stride", .integer, .shape, default: .number(1)), .optional("pad", .integer, .shape, default: .number(0))],
                summary: "The matrix T with T @ flatten(x) = flatten(conv2d(x, w)) for inputs of the given shape.",
                help: "One row per output value, one column per input value: convolution written as one matrix product. `shape` is the input's [H, W] or [C, H, W].",
                example: "toeplitz(tensor([[1, 0], [0, -1]]), [3, 3])") { args, _ in
            let s = try args.ints("stride", count: 2), p = try args.ints("pad", count: 2)
            let options = ConvOptions(stride: (s[0], s[1]), padding: (p[0], p[1], p[0], p[1]))
            return .tensor(Variable(try Tensor.toeplitz(try args.tensor("w").value, inputShape: try args.ints("shape"), options)))
        }
    }

    static var im2colBuiltin: Builtin {
        Builtin("im2col", category: .tensors,
                parameters: [.required("x", .tensor), .required("k", .integer, .shape), .optional("stride", .integer, .shape, default: .number(1)), .optional("pad", .integer, .shape, default: .number(0))],
                summary: "The patch matrix of x: one row per k x k patch, one column per value in it.",
                help: "x is [H, W] or [C, H, W]; k is a number or [kh, kw]. Multiplying this matrix by a flattened filter computes the convolution.",
                example: "im2col(tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), 2)") { args, _ in
            let k = try args.ints("k", count: 2), s = try args.ints("stride", count: 2), p = try args.ints("pad", count: 2)
            let x = try args.tensor("x").value
            try checkConvolutionSize(x.shape, [1, x.rank == 3 ? x.shape[0] : 1] + k, s, [p[0], p[1], p[0], p[1]], [1, 1])
            return .tensor(Variable(try Tensor.im2col(try args.tensor("x").value, kernel: (k[0], k[1]), stride: (s[0], s[1]), padding: (p[0], p[1]))))
        }
    }
}
