import Engine
import Foundation

/// Gradients of anything the language can compute, through the engine's tape.
extension Builtins {
    /// Names for the arguments of a function, for tables: its parameter names where known.
    static func argumentNames(_ f: Value, count: Int) -> [String] {
        var names: [String] = []
        switch f {
        case .builtin(let b): names = b.parameters.filter { $0.kind == .regular }.map(\.name)
        case .function(let c): names = c.declaration.parameters.map(\.name)
        default: break
        }
        return (0..<count).map { $0 < names.count ? names[$0] : "argument \($0 + 1)" }
    }

    /// The result of a function as a variable, or an error saying what came back instead.
    static func resultVariable(_ v: Value, _ builtin: String) throws -> Variable {
        switch v {
        case .tensor(let t): return t
        case .number(let d): return Variable(Tensor(scalar: Float(d)))
        default: throw ScriptError("\(builtin): the function must return a number or a tensor, got \(v.describedType)")
        }
    }

    static var gradients: [Builtin] {
        [
            gradBuiltin, gradcheckBuiltin
        ]
    }

    static var gradBuiltin: Builtin {
        Builtin("grad", category: .gradients, parameters: [.required("f", .callable), .required("x", .tensor)],
                summary: "The gradient of f at x: how f(x) changes with each element of x.",
                help: "f takes one tensor and returns one number (a sum, a mean, one element). Everything f computes is recorded on the autodiff tape and played backwards, so f may be any expression: layers, networks, arithmetic. The result has the shape of x.",
                example: "grad(x -> sum(x * x), tensor([1, 2, 3]))") { args, ctx in
            let x = Variable(try args.tensor("x").value, requiresGrad: true)
            let y = try resultVariable(try ctx.call(args["f"], [.tensor(x)]), "grad")
            guard y.value.count == 1 else {
                throw ScriptError("grad: f must return one number, but returned a tensor of shape \(Display.shape(y.shape)); sum it, or pick one element")
            }
            return .tensor(Variable(try Engine.gradients(of: y, withRespectTo: [x])[0]))
        }
    }

    static var gradcheckBuiltin: Builtin {
        Builtin("gradcheck", category: .gradients,
                parameters: [.required("f", .callable), .variadic("inputs", .tensor, .number),
                             .optional("eps", .number, default: .number(1e-3)), .optional("tol", .number, default: .number(1e-2))],
                summary: "Checks the gradients of f against finite differences; prints a table and returns whether they agree.",
                help: "For each input, every element is moved by ±eps and the change in f (reduced to one number by a fixed random weighting) is compared with the gradient from the tape. Reports the largest absolute and relative error per input; passes when every error is within tol (relative to the size of the gradient, at least 1).",
                example: "gradcheck(conv2d, randn(5, 5, seed=1), randn(3, 3, seed=2))") { args, ctx in
            let f = args["f"]
            let inputs = try args.rest.map { try Conversions.tensor($0) }
            guard !inputs.isEmpty else { throw ScriptError("gradcheck: give the inputs to check after the function, as in gradcheck(conv2d, x, w)") }
            let eps = try args.float("eps"), tol = try args.float("tol")
            guard eps > 0, eps.isFinite else { throw ScriptError("gradcheck: eps must be positive", argument: "eps") }
            let evaluations = 1 + 2 * inputs.reduce(0) { $0 + $1.count }
            let progress = evaluations > 2000 ? ctx.progress("gradcheck", total: evaluations) : nil
            defer { progress?.finish() }
            let results = try checkGradients(at: inputs, of: { vars in
                try ctx.checkCancellation()
                progress?.advance()
                return try resultVariable(try ctx.call(f, vars.map { .tensor($0) }), "gradcheck")
            }, epsilon: eps, tolerance: tol)
            let names = argumentNames(f, count: inputs.count)
            var rows = [["input", "shape", "max abs error", "max rel error", "result"]]
            for r in results {
                rows.append([names[r.input], Display.shape(inputs[r.input].shape), String(format: "%.2e", Double(r.maxAbsoluteError)),
                             String(format: "%.2e", Double(r.maxRelativeError)), r.passed ? "ok" : "FAILED"])
            }
            let widths = (0..<5).map { c in rows.map { $0[c].count }.max() ?? 0 }
            var table = "gradient check, central differences with eps \(formatNumber(eps))\n"
            for row in rows {
                table += "  " + zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                    .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
            }
            ctx.emit(.text(table))
            return .bool(results.allSatisfy(\.passed))
        }
    }
}
