import Engine
import Foundation

/// An ONNX node attribute for hand-built graphs.
enum GraphAttribute {
    case int(String, Int)
    case ints(String, [Int])
    case float(String, Float)
    case string(String, String)
    case tensor(String, Tensor)

    /// AttributeProto: name 1, f 2, i 3, s 4, t 5, ints 8, type 20.
    func write(_ a: inout ProtobufBytes) {
        switch self {
        case .int(let name, let v): a.string(1, name); a.int(20, 2); a.int(3, v)
        case .ints(let name, let v): a.string(1, name); a.int(20, 7); a.packed(8, v)
        case .float(let name, let v): a.string(1, name); a.int(20, 1); a.float(2, v)
        case .string(let name, let v): a.string(1, name); a.int(20, 3); a.string(4, v)
        case .tensor(let name, let t): a.string(1, name); a.int(20, 4); a.message(5) { writeFloatTensor(&$0, name: "", t) }
        }
    }
}

/// TensorProto of FLOAT values: dims 1, data_type 2, float_data 4, name 8.
func writeFloatTensor(_ t: inout ProtobufBytes, name: String, _ value: Tensor) {
    t.packed(1, value.shape)
    t.int(2, 1)
    t.string(8, name)
    t.packedFloats(4, value.scalars)
}

/// A hand-built ONNX graph with one float input and one output, written node by node:
///
///     var g = GraphSketch(opset: 13, input: [1, 3, 4, 4])
///     g.node("Relu", ["x"], ["y"])
///     let net = try g.network(in: folder)
struct GraphSketch {
    var opset: Int
    /// The input's shape; nil declares none, and a negative size is a named (symbolic) one.
    var inputShape: [Int]?
    var inputName = "x"
    /// TensorProto.DataType of the input (1 is FLOAT).
    var inputElementType = 1
    /// More graph inputs, declared without a type.
    var extraInputs: [String] = []
    var outputName = "y"
    private var parts: [(inout ProtobufBytes) -> Void] = []

    init(opset: Int = 13, input: [Int]?) {
        self.opset = opset
        self.inputShape = input
    }

    /// NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7.
    mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "", domain: String = "",
                       _ attributes: GraphAttribute...) {
        nodeWith(op, inputs, outputs, name: name, domain: domain, attributes)
    }

    /// A node with its attributes as a list.
    mutating func nodeWith(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "", domain: String = "",
                           _ attributes: [GraphAttribute]) {
        parts.append { g in
            g.message(1) { n in
                for i in inputs { n.string(1, i) }
                for o in outputs { n.string(2, o) }
                n.string(3, name)
                n.string(4, op)
                for a in attributes { n.message(5) { a.write(&$0) } }
                if !domain.isEmpty { n.string(7, domain) }
            }
        }
    }

    /// A FLOAT initializer.
    mutating func initializer(_ name: String, _ value: Tensor) {
        parts.append { g in g.message(5) { writeFloatTensor(&$0, name: name, value) } }
    }

    /// An INT64 initializer (shapes, axes, pads), one-dimensional unless `shape` says otherwise.
    mutating func integers(_ name: String, _ values: [Int], shape: [Int]? = nil) {
        parts.append { g in
            g.message(5) { t in t.packed(1, shape ?? [values.count]); t.int(2, 7); t.string(8, name); t.packed(7, values) }
        }
    }

    /// ModelProto bytes: the graph's nodes and initializers, then its input and output.
    var bytes: Data {
        onnxModel(opset: opset) { g in
            g.string(2, "sketch")
            for part in parts { part(&g) }
            g.message(11) { v in
                v.string(1, inputName)
                v.message(2) { type in
                    type.message(1) { tensor in
                        tensor.int(1, inputElementType)
                        if let shape = inputShape {
                            tensor.message(2) { s in
                                for d in shape { s.message(1) { d < 0 ? $0.string(2, "batch") : $0.int(1, d) } }
                            }
                        }
                    }
                }
            }
            for name in extraInputs { g.message(11) { $0.string(1, name) } }
            g.message(12) { $0.string(1, outputName) }
        }
    }

    /// Writes the model to `folder` and imports it.
    func network(in folder: URL, named name: String = "sketch.onnx") throws -> Network {
        try Network.fromONNX(contentsOf: write(bytes, name, in: folder))
    }
}
