import Dispatch
import Synchronization

/// What a network expects of its input and what its outputs mean: size, channels, the
/// normalization applied on the way in, and the class names.
public struct InputSpec: Codable, Equatable, Sendable {
    public var channels: Int
    public var height: Int
    public var width: Int
    public var mean: [Float]
    public var std: [Float]
    public var classNames: [String]

    public init(channels: Int, height: Int, width: Int, mean: [Float] = [0], std: [Float] = [1], classNames: [String] = []) {
        self.channels = channels; self.height = height; self.width = width
        self.mean = mean; self.std = std; self.classNames = classNames
    }
}

extension InputSpec {
    /// The largest height or width, and the most channels, a network may ask of its input.
    public static let largestSide = 1 << 15
    public static let largestChannels = 1 << 12

    /// What is wrong with a spec read from a file, if anything: channels from 1 to
    /// `largestChannels`; height and width from 0 (any size) to `largestSide`, and one input
    /// within the memory limit; a finite mean and a finite std above 0, each one value or one per
    /// channel; and no class names, or one per score when `scores` (the outputs the network
    /// gives for one input) is known.
    public func problem(scores: Int?) -> (problem: String, expected: String)? {
        guard (1...InputSpec.largestChannels).contains(channels) else {
            return ("the input spec's 'channels' is \(channels)", "1 to \(InputSpec.largestChannels)")
        }
        for (field, side) in [("height", height), ("width", width)] where !(0...InputSpec.largestSide).contains(side) {
            return ("the input spec's '\(field)' is \(side)", "0 (any size) to \(InputSpec.largestSide)")
        }
        if (height == 0) != (width == 0) {
            return ("the input spec's height is \(height) and its width \(width)", "both 0 (any size) or both above 0")
        }
        do { _ = try checkedElementCount([channels, height, width], what: "the input spec's size") }
        catch let e as SizeLimitError { return (e.problem, e.expected) }
        catch { return ("\(error)", "") }
        let counts = channels == 1 ? "1 value" : "1 value or \(channels) (one per channel)"
        for (field, values) in [("mean", mean), ("std", std)] {
            guard values.count == 1 || values.count == channels else {
                return ("the input spec's '\(field)' has \(values.count) values for \(channels) channel(s)", counts)
            }
            if let i = values.firstIndex(where: { !$0.isFinite }) {
                return ("the input spec's '\(field)' holds \(values[i]) at index \(i)", "finite numbers")
            }
        }
        if let i = std.firstIndex(where: { $0 <= 0 }) {
            return ("the input spec's 'std' holds \(std[i]) at index \(i)", "deviations above 0")
        }
        if let scores, !classNames.isEmpty, classNames.count != scores {
            return ("the input spec's 'classNames' lists \(classNames.count) names, but the network gives \(scores) scores",
                    "\(scores) class names, or none")
        }
        return nil
    }
}

/// A graph of named layers. Each node reads the outputs of earlier nodes (by default the
/// one before it, so a chain is written as a list); branches and joins name their inputs.
/// The network's input is called "input"; its output is the last node's.
public final class Network {
    public struct Node {
        public let name: String
        public let layer: Layer
        public let inputs: [String]
    }

    public static let inputName = "input"
    public private(set) var nodes: [Node] = []
    public var spec: InputSpec?
    private var index: [String: Int] = [:]
    /// Kept plans of forward passes, by the outputs they produce.
    private let plans = Mutex<[[String]: PassPlan]>([:])

    public init(spec: InputSpec? = nil) { self.spec = spec }

    /// Appends a layer; `inputs` defaults to the previous node (or the network's input).
    public func append(_ name: String, _ layer: Layer, inputs: [String]? = nil) throws {
        guard !name.isEmpty, name != Network.inputName, !name.contains(".") else {
            throw EngineError.invalidArgument("'\(name)' cannot name a layer (names are non-empty, without dots, and not 'input')")
        }
        guard index[name] == nil else { throw EngineError.invalidArgument("a layer named '\(name)' already exists") }
        let ins = inputs ?? [nodes.last?.name ?? Network.inputName]
        for i in ins where i != Network.inputName && index[i] == nil {
            throw EngineError.unknownName(i, candidates: [Network.inputName] + nodes.map(\.name))
        }
        if let arity = layer.arity, ins.count != arity {
            throw EngineError.invalidArgument("\(layer.kind) layer '\(name)' takes \(arity) input(s), got \(ins.count)")
        }
        index[name] = nodes.count
        nodes.append(Node(name: name, layer: layer, inputs: ins))
        plans.withLock { $0.removeAll() }
    }

    public var layerNames: [String] { nodes.map(\.name) }

    public func layer(named name: String) throws -> Layer {
        guard let i = index[name] else { throw EngineError.unknownName(name, candidates: layerNames) }
        return nodes[i].layer
    }

    /// Runs the network up to and including the node `upTo` (default: all of it).
    public func forward(_ x: Variable, upTo: String? = nil, context: ForwardContext = ForwardContext()) throws -> Variable {
        try forward(x, outputs: [upTo ?? nodes.last?.name ?? Network.inputName], context: context)[0]
    }

    /// Runs the network far enough to produce each named node's output.
    public func forward(_ x: Variable, outputs: [String], context: ForwardContext) throws -> [Variable] {
        let plan = try passPlan(outputs)
        // Without gradients, a convolution whose output only an activation reads, and nobody
        // asks for, runs with the activation applied to each block as it is written.
        let fuses = !x.requiresGrad && !context.trackParameters && !context.training
        if fuses && BlockedForward.enabled {
            return try forwardBlocked(x, plan: plan, context: context)
        }
        var values = [Variable?](repeating: nil, count: plan.stop + 2)
        values[0] = x
        var i = 0
        while i <= plan.stop {
            if context.isCancelled() { throw EngineError.cancelled }
            let node = nodes[i]
            var ins: [Variable] = []
            for slot in plan.inputs[i] {
                guard let v = values[slot] else {
                    throw EngineError.invalidArgument("layer '\(node.name)' reads '\(slotName(slot))', which has no value")
                }
                ins.append(v)
            }
            var ran = i
            let started = context.nodeTimer == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            do {
                if fuses, let conv = node.layer as? Conv2dLayer, let activation = plan.fusedActivations[i],
                   let y = try conv.forward(ins, name: node.name, context: context, then: activation) {
                    ran = i + 1
                    values[ran + 1] = y
                } else {
                    values[i + 1] = try node.layer.forward(ins, name: node.name, context: context)
                }
            } catch let e as EngineError {
                throw EngineError.invalidArgument("layer '\(node.name)' (\(node.layer.kind)): \(e)")
            }
            reportTime(i, through: ran, since: started, context)
            plan.free(i...ran, in: &values)
            i = ran + 1
        }
        return try plan.outputSlots.map {
            guard let v = values[$0] else { throw EngineError.unknownName(slotName($0), candidates: layerNames) }
            return v
        }
    }

    /// How many pass plans are kept (for tests).
    var keptPlans: Int { plans.withLock { $0.count } }

    /// The name of a value of a pass: the network's input (slot 0) or node k's output (slot k + 1).
    func slotName(_ slot: Int) -> String { slot == 0 ? Network.inputName : nodes[slot - 1].name }

    /// The plan of a pass producing `outputs`, made the first time and kept (a network only
    /// grows, and `append` lets the kept plans go).
    func passPlan(_ outputs: [String]) throws -> PassPlan {
        if let plan = plans.withLock({ $0[outputs] }) { return plan }
        var slots: [Int] = []
        for o in outputs {
            if o == Network.inputName { slots.append(0); continue }
            guard let i = index[o] else { throw EngineError.unknownName(o, candidates: layerNames) }
            slots.append(i + 1)
        }
        let stop = (slots.max() ?? 0) - 1
        let inputs = nodes.prefix(stop + 1).map { node in node.inputs.map { $0 == Network.inputName ? 0 : index[$0]! + 1 } }
        let plan = PassPlan(stop: stop, inputs: inputs, outputSlots: slots, layers: nodes.prefix(stop + 1).map(\.layer))
        // A script that asks for each layer in turn makes a plan for each: at most 64 are kept.
        plans.withLock {
            if $0.count >= 64 { $0.removeAll() }
            $0[outputs] = plan
        }
        return plan
    }

    /// Tells `context.nodeTimer`, if any, the time since `started` of node i (and of the
    /// activation through node `ran` that ran with it).
    func reportTime(_ i: Int, through ran: Int, since started: UInt64, _ context: ForwardContext) {
        guard let timer = context.nodeTimer else { return }
        let kind = nodes[i...ran].map(\.layer.kind).joined(separator: "+")
        timer(nodes[i].name, kind, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
    }

    /// The output for a tensor input, with no gradient recorded.
    public func callAsFunction(_ x: Tensor, upTo: String? = nil) throws -> Tensor {
        try forward(Variable(x), upTo: upTo).value
    }

    // MARK: parameters

    /// Every parameter and buffer by full name ("conv1.weight"), in layer order.
    public var parameterNames: [String] {
        nodes.flatMap { n in n.layer.parameterNames.map { n.name + "." + $0 } }
    }

    public var trainableParameterNames: [String] {
        nodes.flatMap { n in n.layer.parameterNames.filter { n.layer.trainable.contains($0) }.map { n.name + "." + $0 } }
    }

    public var parameters: [String: Tensor] {
        var d: [String: Tensor] = [:]
        for n in nodes { for (k, v) in n.layer.parameters { d[n.name + "." + k] = v } }
        return d
    }

    /// How many trainable numbers the network holds.
    public var parameterCount: Int {
        nodes.reduce(0) { acc, n in acc + n.layer.trainable.reduce(0) { $0 + (n.layer.parameters[$1]?.count ?? 0) } }
    }

    public func parameter(_ fullName: String) throws -> Tensor {
        let (layer, local) = try split(fullName)
        guard let t = layer.parameters[local] else { throw EngineError.unknownName(fullName, candidates: parameterNames) }
        return t
    }

    /// Replaces a parameter; the new value must have the old one's shape.
    public func setParameter(_ fullName: String, _ value: Tensor) throws {
        let (layer, local) = try split(fullName)
        guard let old = layer.parameters[local] else { throw EngineError.unknownName(fullName, candidates: parameterNames) }
        guard old.shape == value.shape else {
            throw EngineError.shapeMismatch("\(fullName) is \(old.shape), the new value is \(value.shape)")
        }
        layer.parameters[local] = value
    }

    private func split(_ fullName: String) throws -> (Layer, String) {
        guard let dot = fullName.lastIndex(of: "."), let i = index[String(fullName[..<dot])] else {
            throw EngineError.unknownName(fullName, candidates: parameterNames)
        }
        return (nodes[i].layer, String(fullName[fullName.index(after: dot)...]))
    }

    /// Output shapes of every node for an input shape, without running the heavy ops.
    public func shapes(for input: [Int]) throws -> [String: [Int]] {
        var shapes = [Network.inputName: input]
        for node in nodes {
            let ins = node.inputs.map { shapes[$0]! }
            do { shapes[node.name] = try node.layer.outputShape(ins) }
            catch let e as EngineError { throw EngineError.invalidArgument("layer '\(node.name)' (\(node.layer.kind)): \(e)") }
        }
        return shapes
    }
}

/// Gradients of a scalar computed from a network's output with respect to its input and its
/// trainable parameters (by full name).
public struct NetworkGradients {
    public let output: Tensor
    public let loss: Float
    public let input: Tensor?
    public let parameters: [String: Tensor]
    /// Batch-norm statistics a training pass moved.
    public let updatedBuffers: [String: Tensor]
}

extension Network {
    /// Runs the network on `x`, applies `loss` to the output, and returns the gradients of the
    /// loss with respect to the input (if `inputGradient`) and to the parameters (if `parameterGradients`).
    public func gradients(at x: Tensor, upTo: String? = nil, inputGradient: Bool = true, parameterGradients: Bool = false,
                          context: ForwardContext = ForwardContext(), loss: (Variable) throws -> Variable) throws -> NetworkGradients {
        context.trackParameters = parameterGradients
        let input = Variable(x, requiresGrad: inputGradient)
        let out = try forward(input, upTo: upTo, context: context)
        let l = try loss(out)
        let names = parameterGradients ? trainableParameterNames : []
        let vars = names.compactMap { context.parameterVariables[$0] }
        let wrt = (inputGradient ? [input] : []) + vars
        let grads = try Engine.gradients(of: l, withRespectTo: wrt)
        var byName: [String: Tensor] = [:]
        let offset = inputGradient ? 1 : 0
        for (i, name) in names.enumerated() where i < vars.count { byName[name] = grads[offset + i] }
        return NetworkGradients(output: out.value, loss: l.value.scalars.first ?? 0,
                                input: inputGradient ? grads[0] : nil, parameters: byName,
                                updatedBuffers: context.updatedBuffers)
    }
}

extension Network {
    /// Floating-point operations of one forward pass on an input of `shape`: 2 × the
    /// multiply-adds of its convolutions (counted by ConvProblem) and linear layers.
    public func forwardFlops(input shape: [Int]) throws -> Double {
        let shapes = try self.shapes(for: shape)
        var total = 0.0
        for node in nodes {
            guard let output = shapes[node.name] else { continue }
            let inputs = node.inputs.compactMap { shapes[$0] }
            total += 2 * Double(node.layer.multiplyAdds(inputs, output: output))
        }
        return total
    }
}

/// What a forward pass needs to know of the graph besides its layers, worked out once for a set
/// of outputs: the values each node reads, as slots of an array (the network's input is slot 0,
/// node k's output slot k + 1), the last node to read each, and which are asked for. A pass then
/// finds, keeps and frees its values by index, where looking each up by name had hashed a string
/// for every input of every node, and the last readers had been worked out anew for every pass.
final class PassPlan: Sendable {
    /// The last node the pass runs.
    let stop: Int
    /// The slots each node through `stop` reads.
    let inputs: [[Int]]
    /// For each slot, the last node through `stop` that reads it (-1: none).
    let lastUse: [Int]
    /// For each slot, whether it is asked for (and so never freed).
    let kept: [Bool]
    let outputSlots: [Int]
    /// Each node's layer kind.
    let kinds: [String]
    /// For each node, the activation the next node computes when it alone reads this one's output
    /// and nobody asked for that (`readAloneByNext`): a convolution or a batch norm then applies
    /// it as it stores (`ConvActivation`).
    let fusedActivations: [ConvActivation?]

    init(stop: Int, inputs: [[Int]], outputSlots: [Int], layers: [Layer]) {
        self.stop = stop
        self.inputs = inputs
        self.outputSlots = outputSlots
        kinds = layers.map(\.kind)
        var lastUse = [Int](repeating: -1, count: stop + 2)
        for (i, slots) in inputs.enumerated() { for s in slots { lastUse[s] = i } }
        self.lastUse = lastUse
        var kept = [Bool](repeating: false, count: stop + 2)
        for s in outputSlots { kept[s] = true }
        self.kept = kept
        fusedActivations = layers.indices.map {
            PassPlan.readAloneByNext($0, stop: stop, inputs: inputs, lastUse: lastUse, kept: kept) ? ConvActivation(layers[$0 + 1]) : nil
        }
    }

    /// Whether node `reader` is the last to read the value in `slot`, and nobody asked for it.
    @inline(__always)
    func lastRead(_ slot: Int, by reader: Int) -> Bool { lastUse[slot] == reader && !kept[slot] }

    /// Whether node i + 1 reads node i's output, nothing else, and is its last reader, and nobody
    /// asked for that output: the two nodes can then run as one.
    func readAloneByNext(_ i: Int) -> Bool {
        PassPlan.readAloneByNext(i, stop: stop, inputs: inputs, lastUse: lastUse, kept: kept)
    }

    private static func readAloneByNext(_ i: Int, stop: Int, inputs: [[Int]], lastUse: [Int], kept: [Bool]) -> Bool {
        i < stop && inputs[i + 1].count == 1 && inputs[i + 1][0] == i + 1 && lastUse[i + 1] == i + 1 && !kept[i + 1]
    }

    /// Frees the values that nodes `ran` read last, unless asked for.
    func free<T>(_ ran: ClosedRange<Int>, in values: inout [T?]) {
        for k in ran { for s in inputs[k] where lastRead(s, by: k) { values[s] = nil } }
    }
}
