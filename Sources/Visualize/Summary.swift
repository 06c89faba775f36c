// A network layer by layer: output shapes, parameters, multiply-adds, and how much of the
// input each unit sees. The lecture's point: pooling lets higher layers see larger regions.
import Engine

/// The region of the input that one unit of a layer depends on, along both axes.
///
/// Through a layer with kernel k, dilation d, stride s and padding p (conv or pool):
/// r_out = r_in + (k - 1)·d·j_in, j_out = j_in·s, start_out = start_in - p·j_in,
/// where r is the receptive field size, j the jump (input pixels between neighbouring units)
/// and start the input coordinate of the first pixel unit 0 sees (negative when it reaches
/// into the padding). A layer that mixes every position of its input (linear, global
/// pooling) acts as a kernel the size of the whole feature map; a join takes the largest
/// field and jump of its inputs.
public struct ReceptiveField: Equatable, Sendable {
    /// Input pixels one unit sees, down and across.
    public var height: Int
    public var width: Int
    /// Input pixels between neighbouring units, down and across (the product of the strides).
    public var jumpY: Int
    public var jumpX: Int
    /// The input row and column of the first pixel that unit (0, 0) sees.
    public var top: Int
    public var left: Int
    /// The size of the feature map the units lie on (1 x 1 once every position is mixed).
    public var gridHeight: Int
    public var gridWidth: Int

    /// The field of the input itself: one pixel per unit.
    public init(inputHeight: Int, inputWidth: Int) {
        height = 1; width = 1; jumpY = 1; jumpX = 1; top = 0; left = 0
        gridHeight = inputHeight; gridWidth = inputWidth
    }

    /// The input region unit (y, x) sees, as (top, left, height, width); it may reach
    /// outside the image (into the padding).
    public func region(y: Int, x: Int) -> (top: Int, left: Int, height: Int, width: Int) {
        (top + y * jumpY, left + x * jumpX, height, width)
    }

    /// Through a window of `kernel` with `stride`, `dilation` and leading `padding`.
    func through(kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int), padding: (Int, Int), output: (Int, Int)) -> ReceptiveField {
        var r = self
        r.height += (kernel.0 - 1) * dilation.0 * jumpY
        r.width += (kernel.1 - 1) * dilation.1 * jumpX
        r.top -= padding.0 * jumpY
        r.left -= padding.1 * jumpX
        r.jumpY *= stride.0
        r.jumpX *= stride.1
        r.gridHeight = output.0
        r.gridWidth = output.1
        return r
    }

    /// Through a layer that reads every position of the feature map.
    func mixingEverything() -> ReceptiveField {
        through(kernel: (gridHeight, gridWidth), stride: (1, 1), dilation: (1, 1), padding: (0, 0), output: (1, 1))
    }

    /// The field of a join: the largest field and jump, the earliest start.
    static func join(_ fields: [ReceptiveField]) -> ReceptiveField? {
        guard var r = fields.first else { return nil }
        for f in fields.dropFirst() {
            r.height = Swift.max(r.height, f.height); r.width = Swift.max(r.width, f.width)
            r.jumpY = Swift.max(r.jumpY, f.jumpY); r.jumpX = Swift.max(r.jumpX, f.jumpX)
            r.top = Swift.min(r.top, f.top); r.left = Swift.min(r.left, f.left)
            r.gridHeight = Swift.max(r.gridHeight, f.gridHeight); r.gridWidth = Swift.max(r.gridWidth, f.gridWidth)
        }
        return r
    }
}

/// One row of a network summary.
public struct LayerSummary: Equatable, Sendable {
    /// The layer's name and kind ("conv1", "conv2d"), and its output shape for the summarized input.
    public let name: String
    public let kind: String
    public let outputShape: [Int]
    /// Trainable numbers of the layer (buffers such as running statistics are not counted).
    public let parameters: Int
    /// Multiply-adds of one forward pass of the summarized input.
    public let multiplyAdds: Int
    /// The input region each unit sees (see `ReceptiveField`).
    public let receptiveField: ReceptiveField
}

/// A network layer by layer, as a value and as a text table.
public struct NetworkSummary: Equatable, Sendable {
    /// The input the summary is for, and one row per layer in the network's order.
    public let inputShape: [Int]
    public let layers: [LayerSummary]
    /// Sums over all layers.
    public var totalParameters: Int { layers.reduce(0) { $0 + $1.parameters } }
    public var totalMultiplyAdds: Int { layers.reduce(0) { $0 + $1.multiplyAdds } }

    /// The row of the layer called `name`.
    public func layer(named name: String) throws -> LayerSummary {
        guard let row = layers.first(where: { $0.name == name }) else {
            throw EngineError.unknownName(name, candidates: layers.map(\.name))
        }
        return row
    }

    /// The summary as an aligned text table, one layer a line, with totals.
    public var table: String {
        func size(_ a: Int, _ b: Int) -> String { a == b ? "\(a)" : "\(a)x\(b)" }
        let header = ["layer", "kind", "output", "parameters", "mult-adds", "receptive field", "jump"]
        var rows = [["input", "", shapeText(inputShape), "", "", "1", "1"]]
        for l in layers {
            let r = l.receptiveField
            rows.append([l.name, l.kind, shapeText(l.outputShape), grouped(l.parameters), grouped(l.multiplyAdds),
                         size(r.height, r.width), size(r.jumpY, r.jumpX)])
        }
        let rightAligned: Set<Int> = [3, 4, 5, 6]
        let widths = header.indices.map { c in ([header] + rows).map { $0[c].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            let text = cells.enumerated().map { c, text in
                let pad = String(repeating: " ", count: widths[c] - text.count)
                return rightAligned.contains(c) ? pad + text : text + pad
            }.joined(separator: "  ")
            return String(text.reversed().drop(while: { $0 == " " }).reversed())
        }
        var lines = [line(header)]
        lines += rows.map(line)
        lines.append("total: \(grouped(totalParameters)) parameters, \(grouped(totalMultiplyAdds)) multiply-adds")
        return lines.joined(separator: "\n")
    }
}

/// The summary of `network` for an input of `inputShape` ([N, C, H, W]; default: one image of
/// the size the network's spec names): per layer its name, kind, output shape, trainable
/// parameters, multiply-adds, and receptive field size and jump on the input (see
/// `ReceptiveField` for the arithmetic).
public func summary(_ network: Network, inputShape: [Int]? = nil) throws -> NetworkSummary {
    let shape = try inputShape ?? NetworkInput(network).inputShape()
    let shapes = try network.shapes(for: shape)
    let fields = try receptiveFields(network, shapes: shapes)
    let rows = network.nodes.map { node -> LayerSummary in
        let layer = node.layer
        let output = shapes[node.name] ?? []
        let inputs = node.inputs.map { shapes[$0] ?? [] }
        let parameters = layer.trainable.reduce(0) { $0 + (layer.parameters[$1]?.count ?? 0) }
        return LayerSummary(name: node.name, kind: layer.kind, outputShape: output, parameters: parameters,
                            multiplyAdds: layer.multiplyAdds(inputs, output: output),
                            receptiveField: fields[node.name] ?? ReceptiveField(inputHeight: 1, inputWidth: 1))
    }
    return NetworkSummary(inputShape: shape, layers: rows)
}

/// The receptive field of the units of `layer` for an input of `inputShape` (default: the
/// network's spec).
public func receptiveField(_ network: Network, layer: String, inputShape: [Int]? = nil) throws -> ReceptiveField {
    _ = try network.layer(named: layer)
    let shape = try inputShape ?? NetworkInput(network).inputShape()
    let fields = try receptiveFields(network, shapes: try network.shapes(for: shape))
    guard let field = fields[layer] else { throw EngineError.unknownName(layer, candidates: network.layerNames) }
    return field
}

/// The receptive field of every node, given every node's output shape.
func receptiveFields(_ network: Network, shapes: [String: [Int]]) throws -> [String: ReceptiveField] {
    guard let input = shapes[Network.inputName] else { throw EngineError.invalidArgument("no input shape") }
    func grid(_ s: [Int]) -> (Int, Int) { s.count == 4 ? (s[2], s[3]) : (1, 1) }
    let (h, w) = grid(input)
    var fields = [Network.inputName: ReceptiveField(inputHeight: h, inputWidth: w)]
    for node in network.nodes {
        guard let incoming = ReceptiveField.join(node.inputs.compactMap { fields[$0] }) else { continue }
        let out = grid(shapes[node.name] ?? [])
        let layer = node.layer
        var field = incoming
        switch layer.declaration?.geometry ?? .pointwise {
        case .window:
            if let w = layer.window {
                field = incoming.through(kernel: w.kernel, stride: w.stride, dilation: w.dilation,
                                         padding: (w.padding.top, w.padding.left), output: out)
            }
        case .global:
            field = incoming.mixingEverything()
        case .adaptive:
            // Window i spans [⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉): at most ⌈H/oh⌉ + 1 positions, ⌊H/oh⌋ apart.
            let (ih, iw) = (incoming.gridHeight, incoming.gridWidth)
            func window(_ n: Int, _ o: Int) -> (Int, Int) {
                n % o == 0 ? (n / o, n / o) : ((n + o - 1) / o + 1, Swift.max(n / o, 1))
            }
            let (kh, sh) = window(ih, Swift.max(out.0, 1)), (kw, sw) = window(iw, Swift.max(out.1, 1))
            field = incoming.through(kernel: (kh, kw), stride: (sh, sw), dilation: (1, 1), padding: (0, 0), output: out)
        case .padding:
            let p = (try? layer.attributes.ints("padding", count: 4)) ?? [0, 0, 0, 0]
            field = incoming.through(kernel: (1, 1), stride: (1, 1), dilation: (1, 1), padding: (p[0], p[1]), output: out)
        case .pointwise:
            // Elementwise layers, normalizations, dropout, flatten: each unit keeps its field.
            // A spatial output keeps the new grid; a flattened one keeps the grid it came from.
            if (shapes[node.name] ?? []).count == 4 { field.gridHeight = out.0; field.gridWidth = out.1 }
        }
        fields[node.name] = field
    }
    return fields
}

/// [1, 16, 28, 28] as text.
func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

/// 1234567 as "1,234,567".
func grouped(_ n: Int) -> String {
    let digits = String(abs(n))
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return (n < 0 ? "-" : "") + out
}
