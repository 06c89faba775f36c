/// Optimizers update parameters by name from their gradients.
public protocol Optimizer {
    var learningRate: Float { get set }
    /// Updates each parameter that has a gradient.
    mutating func step(_ parameters: inout [String: Tensor], gradients: [String: Tensor])
}

extension Optimizer {
    /// Updates a network's trainable parameters in place.
    public mutating func step(_ network: Network, gradients: [String: Tensor]) throws {
        var params: [String: Tensor] = [:]
        for name in gradients.keys { params[name] = try network.parameter(name) }
        step(&params, gradients: gradients)
        for (name, value) in params { try network.setParameter(name, value) }
    }
}

/// Stochastic gradient descent with momentum (PyTorch's form):
/// v ← μ v + (g + λ p);  p ← p - η v   (Nesterov: p ← p - η (g + λ p + μ v)).
public struct SGD: Optimizer {
    public var learningRate: Float
    public var momentum: Float
    public var weightDecay: Float
    public var nesterov: Bool
    private var velocity: [String: Tensor] = [:]

    public init(learningRate: Float, momentum: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) {
        self.learningRate = learningRate; self.momentum = momentum
        self.weightDecay = weightDecay; self.nesterov = nesterov
    }

    public mutating func step(_ parameters: inout [String: Tensor], gradients: [String: Tensor]) {
        for (name, g) in gradients {
            guard var p = parameters[name], p.shape == g.shape else { continue }
            var d = g
            if weightDecay != 0 { d.addScaled(p, weightDecay) }
            if momentum != 0 {
                var v = velocity[name].map { $0.map { $0 * momentum } } ?? Tensor(zeros: g.shape)
                v.addScaled(d)
                velocity[name] = v
                if nesterov { d.addScaled(v, momentum) } else { d = v }
            }
            p.addScaled(d, -learningRate)
            parameters[name] = p
        }
    }
}

/// Adam (Kingma and Ba): m ← β₁m + (1-β₁)g, v ← β₂v + (1-β₂)g², p ← p - η m̂ / (√v̂ + ε),
/// with bias-corrected m̂ = m / (1-β₁ᵗ), v̂ = v / (1-β₂ᵗ).
public struct Adam: Optimizer {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    private var m: [String: Tensor] = [:], v: [String: Tensor] = [:]
    private var t: [String: Int] = [:]

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2
        self.epsilon = epsilon; self.weightDecay = weightDecay
    }

    public mutating func step(_ parameters: inout [String: Tensor], gradients: [String: Tensor]) {
        for (name, g0) in gradients {
            guard var p = parameters[name], p.shape == g0.shape else { continue }
            var g = g0
            if weightDecay != 0 { g.addScaled(p, weightDecay) }
            let step = (t[name] ?? 0) + 1
            t[name] = step
            var mt = m[name] ?? Tensor(zeros: g.shape), vt = v[name] ?? Tensor(zeros: g.shape)
            let b1 = beta1, b2 = beta2
            let c1 = 1 - Float(Double(b1).power(step)), c2 = 1 - Float(Double(b2).power(step))
            let lr = learningRate, eps = epsilon
            mt.withUnsafeMutableBufferPointer { mp in vt.withUnsafeMutableBufferPointer { vp in
                p.withUnsafeMutableBufferPointer { pp in g.withUnsafeBufferPointer { gp in
                    for i in 0..<pp.count {
                        mp[i] = b1 * mp[i] + (1 - b1) * gp[i]
                        vp[i] = b2 * vp[i] + (1 - b2) * gp[i] * gp[i]
                        pp[i] -= lr * (mp[i] / c1) / ((vp[i] / c2).squareRoot() + eps)
                    }
                }}
            }}
            m[name] = mt; v[name] = vt
            parameters[name] = p
        }
    }
}

private extension Double {
    func power(_ n: Int) -> Double { var r = 1.0; for _ in 0..<n { r *= self }; return r }
}
