/// Analytic gradients against central finite differences.
///
/// The function's output is reduced to the scalar L = Σ f(x) · r with a fixed random r, so every
/// output element takes part; the analytic gradient of L comes from the tape, the numerical one
/// from (L(x + εeᵢ) - L(x - εeᵢ)) / 2ε, summed in double precision.
public struct GradientCheckResult: Sendable {
    public let input: Int
    public let count: Int
    public let maxAbsoluteError: Float
    public let maxRelativeError: Float
    /// Where the worst disagreement is, and the two values there.
    public let worstIndex: Int
    public let analytic: Float
    public let numeric: Float
    public let passed: Bool
}

public func checkGradients(at inputs: [Tensor], of f: ([Variable]) throws -> Variable,
                           epsilon: Float = 1e-3, tolerance: Float = 1e-2, seed: UInt64 = 0,
                           analyticOverride: [Tensor]? = nil) throws -> [GradientCheckResult] {
    let vars = inputs.map { Variable($0, requiresGrad: true) }
    let out = try f(vars)
    let r = Tensor.randn(out.shape, seed: seed &+ 12345)
    let analytic = try analyticOverride ?? gradients(of: out, withRespectTo: vars, seed: r)

    func loss(_ xs: [Tensor]) throws -> Double {
        let y = try f(xs.map { Variable($0) }).value
        var s = 0.0
        for i in 0..<y.count { s += Double(y.scalars[i]) * Double(r.scalars[i]) }
        return s
    }

    var results: [GradientCheckResult] = []
    for (k, x) in inputs.enumerated() {
        var worstAbs: Float = 0, worstRel: Float = 0, worst = 0, worstNumeric: Float = 0, passed = true
        var xs = inputs
        for i in 0..<x.count {
            let original = x.scalars[i]
            xs[k].scalars[i] = original + epsilon
            let plus = try loss(xs)
            xs[k].scalars[i] = original - epsilon
            let minus = try loss(xs)
            xs[k].scalars[i] = original
            let numeric = Float((plus - minus) / (2 * Double(epsilon)))
            let a = analytic[k].scalars[i]
            let absErr = abs(a - numeric)
            let relErr = absErr / max(abs(a), abs(numeric), 1e-6)
            if absErr > tolerance * max(1, abs(numeric)) { passed = false }
            if absErr > worstAbs || i == 0 { worstAbs = max(worstAbs, absErr); worst = i; worstNumeric = numeric }
            worstRel = max(worstRel, min(relErr, absErr > 1e-5 ? relErr : 0))
        }
        results.append(GradientCheckResult(input: k, count: x.count, maxAbsoluteError: worstAbs, maxRelativeError: worstRel,
                                           worstIndex: worst, analytic: analytic[k].scalars.isEmpty ? 0 : analytic[k].scalars[worst],
                                           numeric: worstNumeric, passed: passed))
    }
    return results
}
