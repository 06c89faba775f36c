import Synchronization
import Foundation

/// Reverse-mode automatic differentiation.
///
/// Every op on `Variable`s records, when one of its inputs needs a gradient, a pullback: given
/// the gradient of a scalar with respect to the op's output, it returns the gradients with respect
/// to each input. Variables are numbered as they are made, so the inputs of a node always carry
/// smaller numbers than the node: walking the recorded nodes by decreasing number is walking the
/// tape backwards.
public final class Variable {
    public let value: Tensor
    /// Whether gradients flow to this variable (a leaf asked for it, or an input of the op needs one).
    public let requiresGrad: Bool
    let inputs: [Variable]
    let pullback: ((Tensor) throws -> [Tensor?])?
    let serial: Int

    private static let counter = SharedCounter()

    /// The next serial number; tapes may be built on several threads at once.
    private static func nextSerial() -> Int {
        counter.next()
    }

    /// A leaf: a constant, or an input whose gradient is wanted (`requiresGrad: true`).
    public init(_ value: Tensor, requiresGrad: Bool = false) {
        self.value = value
        self.requiresGrad = requiresGrad
        self.inputs = []
        self.pullback = nil
        self.serial = Variable.nextSerial()
    }

    init(_ value: Tensor, inputs: [Variable], pullback: @escaping (Tensor) throws -> [Tensor?]) {
        self.value = value
        self.requiresGrad = true
        self.inputs = inputs
        self.pullback = pullback
        self.serial = Variable.nextSerial()
    }

    /// The result of an op: recorded on the tape only if some input needs a gradient.
    static func result(_ value: Tensor, _ inputs: [Variable], _ pullback: @escaping (Tensor) throws -> [Tensor?]) -> Variable {
        for i in inputs where i.requiresGrad { return Variable(value, inputs: inputs, pullback: pullback) }
        return Variable(value)
    }

    public var shape: [Int] { value.shape }
}

/// Gradients of `output` (a scalar, or any tensor with `seed` as its upstream gradient) with
/// respect to each of `inputs`. An input the output does not depend on gets zeros.
public func gradients(of output: Variable, withRespectTo inputs: [Variable], seed: Tensor? = nil) throws -> [Tensor] {
    let upstream: Tensor
    if let seed {
        guard seed.shape == output.shape else {
            throw EngineError.shapeMismatch("seed gradient \(seed.shape) does not match output \(output.shape)")
        }
        upstream = seed
    } else {
        guard output.value.count == 1 else {
            throw EngineError.shapeMismatch("a gradient needs a scalar; this value has shape \(output.shape) (sum it, or pick one element)")
        }
        upstream = Tensor(repeating: 1, shape: output.shape)
    }
    let wanted = Set(inputs.map(ObjectIdentifier.init))

    // Every node the output reaches through inputs that need gradients.
    var nodes: [Variable] = []
    var seen = Set<ObjectIdentifier>()
    var stack = [output]
    while let v = stack.popLast() {
        guard v.requiresGrad, seen.insert(ObjectIdentifier(v)).inserted else { continue }
        nodes.append(v)
        stack.append(contentsOf: v.inputs)
    }
    nodes.sort { $0.serial > $1.serial }

    var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(output): upstream]
    for node in nodes {
        let id = ObjectIdentifier(node)
        guard let g = grads[id], let pullback = node.pullback else { continue }
        if !wanted.contains(id) { grads[id] = nil }  // free as soon as it has been used
        let inputGrads = try pullback(g)
        for (input, ig) in zip(node.inputs, inputGrads) {
            guard input.requiresGrad, let ig else { continue }
            let iid = ObjectIdentifier(input)
            if var acc = grads[iid] {
                grads[iid] = nil  // keep a single reference so the add is in place
                acc.addScaled(ig)
                grads[iid] = acc
            } else {
                grads[iid] = ig
            }
        }
    }
    return inputs.map { grads[ObjectIdentifier($0)] ?? Tensor(zeros: $0.shape) }
}

/// The gradient of the scalar `f(x)` with respect to `x`.
public func gradient(at x: Tensor, of f: (Variable) throws -> Variable) throws -> Tensor {
    let v = Variable(x, requiresGrad: true)
    return try gradients(of: try f(v), withRespectTo: [v])[0]
}

/// The value of `f(x)` and its gradient with respect to `x`.
public func valueAndGradient(at x: Tensor, of f: (Variable) throws -> Variable) throws -> (value: Tensor, gradient: Tensor) {
    let v = Variable(x, requiresGrad: true)
    let y = try f(v)
    return (y.value, try gradients(of: y, withRespectTo: [v])[0])
}

/// A count any thread may add to: the tape's serial numbers, and how often a kernel path ran.
/// One atomic add, where a lock had cost a forward pass of a small network a lock and an unlock
/// for each of its variables and layers.
final class SharedCounter: Sendable {
    private let count = Atomic<Int>(0)

    /// The count after adding one.
    @discardableResult
    func next() -> Int { count.add(1, ordering: .relaxed).newValue }

    var value: Int { count.load(ordering: .relaxed) }
}
