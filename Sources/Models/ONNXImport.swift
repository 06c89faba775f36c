import Engine
import Foundation

extension Network {
    /// The network an ONNX graph describes: each node becomes one layer (a few for some
    /// operators), through the table `ONNXImporter.conversions`. Parameters are named after the
    /// initializers (`conv1.weight` stays `conv1.weight`; `layer1.0.conv1.weight` becomes
    /// `layer1_0_conv1.weight`), the graph's input is the network's "input", and its output is
    /// the last layer. `path` names the file in errors.
    ///
    /// Whatever the graph holds that cnnlab cannot compute exactly (an unsupported operator, a
    /// convolution weight computed at run time, reflect padding, ...) is refused with a
    /// `ModelFileError` naming the node, rather than imported approximately.
    public static func fromONNX(_ model: ONNXModel, path: String) throws -> Network {
        try ONNXImporter(model: model, path: path).importGraph()
    }

    /// Reads an `.onnx` file (and its external data) and imports its graph.
    public static func fromONNX(contentsOf url: URL) throws -> Network {
        try fromONNX(ONNXModel(contentsOf: url), path: url.path)
    }

    /// The ONNX operators `fromONNX` imports, sorted.
    public static var importableONNXOperators: [String] { ONNXImporter.conversions.keys.sorted() }
}

/// An ONNX value while a graph is imported.
enum ImportedValue {
    /// The output of a layer of the network ("input" for the graph's input), with its shape when
    /// known (a symbolic batch size counts as 1).
    case computed(layer: String, shape: [Int]?)
    /// A value known before the network runs: an initializer, a Constant node's output, or a
    /// value computed from those at import time. Integer tensors keep their exact values.
    case constant(Tensor, integers: [Int]?)

    var shape: [Int]? {
        switch self {
        case .computed(_, let shape): return shape
        case .constant(let t, _): return t.shape
        }
    }
}

/// Turns one ONNX graph into one network, node by node in file order (which ONNX requires to be
/// topological), binding every ONNX value name to a layer's output or to a constant.
final class ONNXImporter {
    let model: ONNXModel
    let path: String
    let network = Network()
    private(set) var values: [String: ImportedValue] = [:]
    /// Values the graph names but the network does not compute (a max pool's indices, a dropout
    /// mask), with what they are, for the error if a later node reads one.
    private var unavailable: [String: String] = [:]
    private var layerNames: Set<String> = [Network.inputName]
    /// For each value, the nodes (by index) that read it.
    let readers: [String: [Int]]
    /// For each value a node writes, the first node (by index) that writes it.
    let producers: [String: Int]
    /// Nodes whose work an earlier node's layer already does (an Add folded into a MatMul's bias).
    var absorbed: Set<Int> = []

    init(model: ONNXModel, path: String) {
        self.model = model
        self.path = path
        var readers: [String: [Int]] = [:], producers: [String: Int] = [:]
        for (i, node) in model.graph.nodes.enumerated() {
            for input in Set(node.inputs) where !input.isEmpty { readers[input, default: []].append(i) }
            for output in node.outputs where !output.isEmpty && producers[output] == nil { producers[output] = i }
        }
        self.readers = readers
        self.producers = producers
    }

    var graph: ONNXGraph { model.graph }
    var opset: Int { model.opsetVersion }

    /// The largest kernel size, stride, padding or dilation an attribute may give: generous for
    /// any image network, and small enough that a damaged file cannot make the importer allocate
    /// without bound. One tensor's size is bounded by `MemoryLimit`.
    static let largestExtent = 1 << 16

    /// The most values one tensor may hold, as float32 within the memory limit.
    static var largestValueCount: Int { MemoryLimit.bytes / 4 }

    /// How many values a tensor of `shape` holds, if that is within the memory limit.
    static func boundedCount(_ shape: [Int]) -> Int? {
        try? checkedElementCount(shape)
    }

    func problem(_ what: String, expected: String? = nil) -> ModelFileError {
        // A shape the graph does not fix comes from an input with named sizes: say which needs a size.
        if what.contains("the graph does not fix"), let input = graph.inputs.first, let dims = input.shape,
           dims.dropFirst().contains(where: { if case .size = $0 { return false } else { return true } }) {
            let shape = "[" + dims.map(\.description).joined(separator: ", ") + "]"
            return ModelFileError(path: path, problem: what + " (the graph's input '\(input.name)' has shape \(shape))",
                                  expected: "fixed sizes for all but the batch axis of '\(input.name)': export with an example "
                                  + "of the size to use and without dynamic axes for them")
        }
        return ModelFileError(path: path, problem: what, expected: expected)
    }

    func importGraph() throws -> Network {
        try bindInput()
        for (name, tensor) in graph.initializers {
            values[name] = .constant(tensor, integers: graph.integerInitializers[name])
        }
        for (index, node) in graph.nodes.enumerated() where !absorbed.contains(index) {
            let step = NodeImport(importer: self, node: node, index: index)
            guard node.domain.isEmpty, let conversion = ONNXImporter.conversions[node.opType] else {
                let op = node.domain.isEmpty ? node.opType : "\(node.domain).\(node.opType)"
                throw problem("\(step.label) uses operator '\(op)', which cnnlab does not import",
                              expected: "one of " + Network.importableONNXOperators.joined(separator: ", "))
            }
            guard !node.outputs.isEmpty, !node.outputs[0].isEmpty else { throw problem("\(step.label) has no output") }
            for output in node.outputs where !output.isEmpty && (values[output] != nil || unavailable[output] != nil) {
                throw problem("\(step.label) writes '\(output)', which the graph already defines",
                              expected: "each value defined once (by the input, an initializer or one node)")
            }
            for input in node.inputs where !input.isEmpty && values[input] == nil {
                if let what = unavailable[input] {
                    throw problem("\(step.label) reads '\(input)', \(what), which cnnlab does not compute")
                }
                throw problem("\(step.label) reads '\(input)', which is neither a graph input, an initializer, "
                              + "nor an output of an earlier node")
            }
            do {
                try conversion(step)
            } catch let error as EngineError {
                throw problem("\(step.label): \(error)")
            }
            for (k, output) in node.outputs.enumerated() where !output.isEmpty && values[output] == nil {
                unavailable[output] = "output \(k) of \(step.label)"
            }
        }
        try bindOutput()
        return network
    }

    /// The one graph input becomes the network's "input"; its declared [N, C, H, W] the input spec.
    private func bindInput() throws {
        guard graph.inputs.count == 1, let input = graph.inputs.first else {
            throw problem("the graph has \(graph.inputs.count) inputs (\(graph.inputs.map(\.name).joined(separator: ", ")))",
                          expected: "one input, the image batch")
        }
        if let type = input.elementType, type != .float32 {
            throw problem("the graph's input '\(input.name)' holds \(type) values", expected: "float32")
        }
        // A named batch size ("batch_size", or unknown) counts as 1 while shapes are worked out.
        var shape: [Int]?
        if let dims = input.shape {
            shape = []
            for (i, d) in dims.enumerated() {
                switch d {
                case .size(let n) where n >= 0: shape?.append(n)
                case .parameter, .unknown, .size: if i == 0 { shape?.append(1) } else { shape = nil }
                }
                if shape == nil { break }
            }
        }
        if let shape, ONNXImporter.boundedCount(shape) == nil {
            throw problem("the graph's input '\(input.name)' has shape \(shape)",
                          expected: "non-negative sizes, \(MemoryLimit.phrase)")
        }
        if let shape, let layout = channelsLastInput(input, shape) {
            // tf2onnx's NHWC input, transposed to NCHW by its only reader: the network takes NCHW.
            network.spec = InputSpec(channels: shape[3], height: shape[1], width: shape[2])
            values[input.name] = .computed(layer: Network.inputName, shape: shape)
            absorbed.insert(layout)
            for output in graph.nodes[layout].outputs.prefix(1) {
                values[output] = .computed(layer: Network.inputName, shape: [shape[0], shape[3], shape[1], shape[2]])
            }
            return
        }
        if let dims = input.shape, dims.count == 4, case .size(let c) = dims[1], case .size(let h) = dims[2], case .size(let w) = dims[3] {
            network.spec = InputSpec(channels: c, height: h, width: w)
        }
        values[input.name] = .computed(layer: Network.inputName, shape: shape)
    }

    /// The node that transposes an [N, H, W, C] input with 1 or 3 channels to [N, C, H, W], when it
    /// is the input's only reader (as tf2onnx writes it).
    private func channelsLastInput(_ input: ONNXValueInfo, _ shape: [Int]) -> Int? {
        guard shape.count == 4, [1, 3].contains(shape[3]), ![1, 3].contains(shape[1]),
              let readers = readers[input.name], readers.count == 1, let k = readers.first else { return nil }
        let node = graph.nodes[k]
        guard node.opType == "Transpose", node.domain.isEmpty, node.inputs.first == input.name,
              node.attributes["perm"]?.intsValue == [0, 3, 1, 2],
              !graph.outputs.contains(where: { $0.name == input.name }) else { return nil }
        return k
    }

    /// The graph's output must be the network's last layer; an identity layer makes it so if needed.
    private func bindOutput() throws {
        guard graph.outputs.count == 1, let output = graph.outputs.first else {
            throw problem("the graph has \(graph.outputs.count) outputs (\(graph.outputs.map(\.name).joined(separator: ", ")))",
                          expected: "one output")
        }
        switch values[output.name] {
        case .computed(let layer, _)?:
            if layer != network.nodes.last?.name {
                try network.append(uniqueLayerName("output"), LayerRegistry.make("identity"), inputs: [layer])
            }
        case .constant?:
            throw problem("the graph's output '\(output.name)' is a constant, which does not depend on the input")
        case nil:
            throw problem("the graph's output '\(output.name)' is "
                          + (unavailable[output.name].map { "\($0), which cnnlab does not compute" } ?? "not computed by any node"))
        }
    }

    // MARK: - Layers

    /// Binds an ONNX value name.
    func bind(_ name: String, _ value: ImportedValue) { values[name] = value }

    /// A layer name not taken yet: `base`, else `base_2`, `base_3`, ...
    func uniqueLayerName(_ base: String) -> String {
        var name = base, n = 1
        while layerNames.contains(name) { n += 1; name = "\(base)_\(n)" }
        layerNames.insert(name)
        return name
    }

    /// Makes a layer of `kind`, loads `parameters` into it, and appends it reading `inputs`; its
    /// output shape is worked out on the way, which checks the graph's shapes against the layer.
    /// When every input is a constant, the layer runs now instead and its output is a constant.
    func emit(_ kind: String, _ attributes: [String: AttributeValue], reading inputs: [ImportedValue],
              parameters: [String: Tensor], name: String, node: NodeImport) throws -> ImportedValue {
        let layer = try LayerRegistry.make(kind, attributes)
        for (key, value) in parameters {
            guard let declared = layer.parameters[key] else { throw node.problem("the \(kind) layer has no parameter '\(key)'") }
            guard declared.shape == value.shape else {
                throw node.problem("its \(key) has shape \(value.shape); the \(kind) layer expects \(declared.shape)")
            }
            layer.parameters[key] = value
        }
        var constants: [Tensor] = [], layers: [String] = [], shapes: [[Int]]? = []
        for input in inputs {
            switch input {
            case .constant(let t, _): constants.append(t); shapes?.append(t.shape)
            case .computed(let l, let s): layers.append(l); if let s { shapes?.append(s) } else { shapes = nil }
            }
        }
        // Some layers work out their shape by running (on zeros): those that can grow are checked first.
        if let shapes, let grown = try grownShape(kind, attributes, shapes), ONNXImporter.boundedCount(grown) == nil {
            throw node.problem("would make a value of shape \(grown)", expected: "non-negative sizes, \(MemoryLimit.phrase)")
        }
        if layers.isEmpty {
            let output = try layer.forward(constants.map { Variable($0) }, name: name, context: ForwardContext())
            return .constant(output.value, integers: nil)
        }
        guard constants.isEmpty else {
            throw node.problem("combines computed values with constants", expected: "all its inputs computed, or all constant")
        }
        let shape = try shapes.map { try layer.outputShape($0) }
        if let shape, ONNXImporter.boundedCount(shape) == nil {
            throw node.problem("would make a value of shape \(shape)", expected: "non-negative sizes, \(MemoryLimit.phrase)")
        }
        let unique = uniqueLayerName(name)
        try network.append(unique, layer, inputs: layers)
        return .computed(layer: unique, shape: shape)
    }

    /// The output shape of the layers that can make a value larger than their inputs by running
    /// (broadcasting joins, concatenation, padding), worked out without running them; nil for others.
    private func grownShape(_ kind: String, _ attributes: [String: AttributeValue], _ shapes: [[Int]]) throws -> [Int]? {
        guard var shape = shapes.first else { return nil }
        switch kind {
        case "add", "mul":
            for s in shapes.dropFirst() { shape = try broadcastShape(shape, s) }
            return shape
        case "concat":
            // Only the total matters here: the layer checks the axes when it runs.
            let tooMany = ONNXImporter.largestValueCount + 1
            return [shapes.reduce(0) { Swift.min($0 + (ONNXImporter.boundedCount($1) ?? tooMany), tooMany) }]
        case "pad":
            guard shape.count >= 2, case .ints(let p)? = attributes["padding"], p.count == 4 else { return nil }
            shape[shape.count - 2] += p[0] + p[2]
            shape[shape.count - 1] += p[1] + p[3]
            return shape
        default:
            return nil
        }
    }
}

/// One node being imported: its attributes and inputs read with checks, and errors that name it.
struct NodeImport {
    let importer: ONNXImporter
    let node: ONNXNode
    let index: Int

    /// "node '/conv1/Conv' (Conv)", or "node 3 (Conv)" for a node without a name.
    var label: String { node.name.isEmpty ? "node \(index) (\(node.opType))" : "node '\(node.name)' (\(node.opType))" }

    func problem(_ what: String, expected: String? = nil) -> ModelFileError {
        importer.problem("\(label): \(what)", expected: expected)
    }

    // MARK: attributes

    func int(_ name: String, _ dflt: Int) throws -> Int {
        guard let a = node.attributes[name] else { return dflt }
        guard let v = a.intValue else { throw problem("attribute '\(name)' is not an integer") }
        return v
    }

    func ints(_ name: String) throws -> [Int]? {
        guard let a = node.attributes[name] else { return nil }
        guard let v = a.intsValue else { throw problem("attribute '\(name)' is not a list of integers") }
        return v
    }

    func float(_ name: String, _ dflt: Float) throws -> Float {
        guard let a = node.attributes[name] else { return dflt }
        if let v = a.floatValue { return v }
        if let v = a.intValue { return Float(v) }
        throw problem("attribute '\(name)' is not a number")
    }

    func string(_ name: String, _ dflt: String) throws -> String {
        guard let a = node.attributes[name] else { return dflt }
        guard let v = a.stringValue else { throw problem("attribute '\(name)' is not text") }
        return v
    }

    /// A list of two positive numbers (strides, dilations), one per spatial axis.
    func pair(_ name: String, default dflt: Int) throws -> [Int] {
        guard let v = try ints(name) else { return [dflt, dflt] }
        guard v.count == 2, v.allSatisfy({ $0 >= 1 && $0 <= ONNXImporter.largestExtent }) else {
            throw problem("has \(name) \(v)", expected: "two values from 1 to \(ONNXImporter.largestExtent) "
                          + "(cnnlab imports two-dimensional \(node.opType))")
        }
        return v
    }

    // MARK: inputs

    func hasInput(_ i: Int) -> Bool { i < node.inputs.count && !node.inputs[i].isEmpty }

    /// Input `i`, which the node must have.
    func input(_ i: Int) throws -> ImportedValue {
        guard hasInput(i), let v = importer.values[node.inputs[i]] else {
            throw problem("has no input \(i)", expected: "at least \(i + 1) inputs")
        }
        return v
    }

    /// Input `i` as a constant (nil when omitted); `role` names it in the error when it is computed.
    func constant(_ i: Int, _ role: String) throws -> Tensor? {
        guard hasInput(i) else { return nil }
        switch try input(i) {
        case .constant(let t, _): return t
        case .computed:
            throw problem("its \(role) '\(node.inputs[i])' is computed by the graph",
                          expected: "a constant \(role) (an initializer or a Constant node)")
        }
    }

    /// Input `i` as a constant of exactly one value.
    func scalar(_ i: Int, _ role: String) throws -> Float? {
        guard let t = try constant(i, role) else { return nil }
        guard let v = t.scalar else { throw problem("its \(role) has shape \(t.shape)", expected: "a single value") }
        return v
    }

    /// Input `i` as constant integers (shapes, axes, pads).
    func integers(_ i: Int, _ role: String) throws -> [Int]? {
        guard let t = try constant(i, role) else { return nil }
        if case .constant(_, let exact?) = try input(i) { return exact }
        return try t.scalars.map {
            guard let v = Int(exactly: $0) else { throw problem("its \(role) holds \($0)", expected: "whole numbers") }
            return v
        }
    }

    // MARK: outputs

    /// Binds the node's output `k`.
    func bind(_ value: ImportedValue, output k: Int = 0) {
        if k < node.outputs.count, !node.outputs[k].isEmpty { importer.bind(node.outputs[k], value) }
    }

    /// Appends a layer (see `ONNXImporter.emit`) and returns its output without binding it.
    func layer(_ kind: String, _ attributes: [String: AttributeValue] = [:], reading inputs: [ImportedValue],
               parameters: [String: Tensor] = [:], name: String? = nil) throws -> ImportedValue {
        try importer.emit(kind, attributes, reading: inputs, parameters: parameters, name: name ?? baseName(), node: self)
    }

    /// Appends a layer and binds the node's output to it.
    func produce(_ kind: String, _ attributes: [String: AttributeValue] = [:], reading inputs: [ImportedValue],
                 parameters: [String: Tensor] = [:], name: String? = nil) throws {
        bind(try layer(kind, attributes, reading: inputs, parameters: parameters, name: name))
    }

    // MARK: names

    /// A readable layer name for this node. A layer with parameters is named after its first
    /// initializer's module (`layer1.0.conv1.weight` → `layer1_0_conv1`); otherwise after the node,
    /// with the legacy exporter's scope path shortened (`/layer1/layer1.0/relu/Relu` →
    /// `layer1_0_relu_Relu`, and `layer1_0_relu` for a layer with parameters).
    func baseName(parameter: Int? = nil) -> String {
        if let i = parameter, hasInput(i) {
            let initializer = node.inputs[i]
            if let dot = initializer.lastIndex(of: "."), case let module = sanitizedName(String(initializer[..<dot])), !module.isEmpty {
                return module
            }
        }
        var parts = node.name.split(separator: "/").map(String.init)
        if node.name.hasPrefix("/") {
            // Each scope repeats its parent's path ("layer1", "layer1.0"): keep the innermost.
            parts = parts.enumerated().filter { i, p in i + 1 >= parts.count || !parts[i + 1].hasPrefix(p + ".") }.map(\.element)
            if parameter != nil, parts.count > 1 { parts.removeLast() }
        }
        let name = sanitizedName(parts.joined(separator: "_"))
        return name.isEmpty ? node.opType.lowercased() : name
    }
}

/// Letters, digits and single underscores: anything else (dots, slashes, colons) becomes "_".
func sanitizedName(_ text: String) -> String {
    var out = ""
    for c in text.unicodeScalars {
        let keep = c.isASCII && (CharacterSet.alphanumerics.contains(c) || c == "_")
        if keep && c != "_" { out.unicodeScalars.append(c) } else if !out.isEmpty && !out.hasSuffix("_") { out += "_" }
    }
    while out.hasSuffix("_") { out.removeLast() }
    return out
}
