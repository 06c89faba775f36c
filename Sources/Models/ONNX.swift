import Engine
import Foundation

/// An ONNX model decoded into plain Swift values: the graph's nodes in file order, its
/// initializers as float32 tensors (integer ones also keep their exact values), and the
/// declared inputs and outputs with their shapes. Weights kept in a side file
/// (`data_location = EXTERNAL`, as `torch.onnx.export(..., external_data=True)` writes them)
/// are read from the model's folder, and only from there.
public struct ONNXModel: Equatable {
    public var irVersion: Int
    /// The opset version of the default domain ("" or "ai.onnx"), which fixes what each op means.
    public var opsetVersion: Int
    /// Every imported opset, by domain.
    public var opsetImports: [String: Int]
    public var producerName: String
    public var producerVersion: String
    public var metadata: [String: String]
    public var graph: ONNXGraph
}

extension ONNXModel {
    /// Reads and decodes an `.onnx` file, and any external data it refers to.
    public init(contentsOf url: URL) throws {
        self = try withFile(url) {
            let bytes = try readFileBytes(url)
            let externalData = ExternalData(folder: url.deletingLastPathComponent())
            return try bytes.withUnsafeBytes { try ONNXModel(decoding: $0, externalData: externalData) }
        }
    }
}

public struct ONNXGraph: Equatable {
    public var name: String
    /// The nodes in file order (which ONNX requires to be a topological order).
    public var nodes: [ONNXNode]
    /// Every initializer as float32, by name; integer tensors (shapes, axes) convert exactly up to 2^24.
    public var initializers: [String: Tensor]
    /// The exact values of integer initializers (int64 shapes and axes, and the like).
    public var integerInitializers: [String: [Int]]
    /// The element type each initializer had in the file.
    public var initializerTypes: [String: ElementType]
    /// The inputs a caller must feed: declared graph inputs that no initializer provides.
    public var inputs: [ONNXValueInfo]
    public var outputs: [ONNXValueInfo]
    /// Shapes the exporter recorded for intermediate values.
    public var valueInfo: [ONNXValueInfo]
}

public struct ONNXNode: Equatable {
    public var name: String
    public var opType: String
    /// "" for the default ONNX domain.
    public var domain: String
    /// Input value names; "" marks an omitted optional input.
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: ONNXAttribute]
}

public enum ONNXAttribute: Equatable {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(ONNXTensor)
    case graph(ONNXGraph)
    case floats([Float])
    case ints([Int])
    case strings([String])
    case tensors([ONNXTensor])
    case graphs([ONNXGraph])

    public var intValue: Int? { if case .int(let v) = self { return v } else { return nil } }
    public var floatValue: Float? { if case .float(let v) = self { return v } else { return nil } }
    public var stringValue: String? { if case .string(let v) = self { return v } else { return nil } }
    public var tensorValue: ONNXTensor? { if case .tensor(let v) = self { return v } else { return nil } }
    public var intsValue: [Int]? { if case .ints(let v) = self { return v } else { return nil } }
    public var floatsValue: [Float]? { if case .floats(let v) = self { return v } else { return nil } }
}

/// A tensor from the file (an initializer, or a Constant node's value).
public struct ONNXTensor: Equatable {
    public var name: String
    /// The element type in the file.
    public var elementType: ElementType
    /// The values as float32.
    public var value: Tensor
    /// The exact values, for integer element types.
    public var integers: [Int]?
}

/// A graph input, output or intermediate value with its declared type and shape.
public struct ONNXValueInfo: Equatable {
    public var name: String
    /// nil when the type is not a tensor of a supported element type.
    public var elementType: ElementType?
    /// nil when no shape was declared.
    public var shape: [ONNXDimension]?
}

public enum ONNXDimension: Equatable, CustomStringConvertible {
    /// A fixed size.
    case size(Int)
    /// A named size, such as "batch".
    case parameter(String)
    case unknown

    public var description: String {
        switch self {
        case .size(let n): return String(n)
        case .parameter(let name): return name
        case .unknown: return "?"
        }
    }
}

// MARK: - Element types

/// TensorProto.DataType names, indexed by code, for messages about types cnnlab does not read.
private let dataTypeNames = [
    "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL", "FLOAT16",
    "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ",
    "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1",
]

func onnxElementType(_ code: Int) -> ElementType? {
    switch code {
    case 1: return .float32
    case 2: return .uint8
    case 3: return .int8
    case 4: return .uint16
    case 5: return .int16
    case 6: return .int32
    case 7: return .int64
    case 9: return .bool
    case 10: return .float16
    case 11: return .float64
    case 12: return .uint32
    case 13: return .uint64
    case 16: return .bfloat16
    default: return nil
    }
}

func onnxDataTypeName(_ code: Int) -> String {
    dataTypeNames.indices.contains(code) ? dataTypeNames[code] : "type \(code)"
}
