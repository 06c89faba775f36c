import Engine
import Foundation

// Field numbers follow onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto,
// TensorProto, ValueInfoProto, TypeProto). Fields cnnlab does not use are skipped.

extension ONNXModel {
    init(decoding bytes: UnsafeRawBufferPointer, externalData: ExternalData) throws {
        var message = try ProtobufReader(bytes)
        var irVersion = 0, producerName = "", producerVersion = ""
        var opsets: [String: Int] = [:], metadata: [String: String] = [:]
        var graph: ONNXGraph?
        while let field = try message.next() {
            switch field.number {
            case 1: irVersion = try field.integer()
            case 2: producerName = try field.string()
            case 3: producerVersion = try field.string()
            case 7: graph = try within("graph") { try decodeGraph(field, externalData) }
            case 8:  // OperatorSetIdProto: domain 1, version 2
                var opset = try field.message()
                var domain = "", version = 0
                while let f = try opset.next() {
                    if f.number == 1 { domain = try f.string() } else if f.number == 2 { version = try f.integer() }
                }
                opsets[domain == "ai.onnx" ? "" : domain] = version
            case 14:
                let (key, value) = try decodeStringPair(field)
                metadata[key] = value
            default: break
            }
        }
        guard let graph else {
            throw FormatProblem("holds no graph", expected: "an ONNX model (ModelProto) as torch.onnx.export writes")
        }
        guard let opsetVersion = opsets[""] else {
            throw FormatProblem("imports no opset of the default ONNX domain", expected: "an opset_import entry with domain \"\"")
        }
        self.init(irVersion: irVersion, opsetVersion: opsetVersion, opsetImports: opsets, producerName: producerName,
                  producerVersion: producerVersion, metadata: metadata, graph: graph)
    }
}

private func decodeGraph(_ field: ProtobufField, _ externalData: ExternalData) throws -> ONNXGraph {
    var message = try field.message()
    var graph = ONNXGraph(name: "", nodes: [], initializers: [:], integerInitializers: [:], initializerTypes: [:],
                          inputs: [], outputs: [], valueInfo: [])
    while let field = try message.next() {
        switch field.number {
        case 1: graph.nodes.append(try within("node \(graph.nodes.count)") { try decodeNode(field, externalData) })
        case 2: graph.name = try field.string()
        case 5:
            let tensor = try within("initializer \(graph.initializers.count)") { try decodeTensor(field, externalData) }
            guard graph.initializers[tensor.name] == nil else { throw FormatProblem("has two initializers named '\(tensor.name)'") }
            graph.initializers[tensor.name] = tensor.value
            graph.initializerTypes[tensor.name] = tensor.elementType
            if let integers = tensor.integers { graph.integerInitializers[tensor.name] = integers }
        case 11: graph.inputs.append(try decodeValueInfo(field))
        case 12: graph.outputs.append(try decodeValueInfo(field))
        case 13: graph.valueInfo.append(try decodeValueInfo(field))
        case 15: throw FormatProblem("has a sparse initializer, which cnnlab does not read")
        default: break
        }
    }
    // Before IR version 4 every initializer was also listed as an input.
    graph.inputs.removeAll { graph.initializers[$0.name] != nil }
    return graph
}

private func decodeNode(_ field: ProtobufField, _ externalData: ExternalData) throws -> ONNXNode {
    var message = try field.message()
    var node = ONNXNode(name: "", opType: "", domain: "", inputs: [], outputs: [], attributes: [:])
    while let field = try message.next() {
        switch field.number {
        case 1: node.inputs.append(try field.string())
        case 2: node.outputs.append(try field.string())
        case 3: node.name = try field.string()
        case 4: node.opType = try field.string()
        case 5:
            let (name, value) = try within("attribute \(node.attributes.count)") { try decodeAttribute(field, externalData) }
            node.attributes[name] = value
        case 7: node.domain = try field.string()
        default: break
        }
    }
    if node.domain == "ai.onnx" { node.domain = "" }
    guard !node.opType.isEmpty else { throw FormatProblem("'\(node.name)' has no op_type") }
    return node
}

private func decodeAttribute(_ field: ProtobufField, _ externalData: ExternalData) throws -> (String, ONNXAttribute) {
    var message = try field.message()
    var name = "", type = 0
    var float: Float = 0, int = 0, string = ""
    var tensor: ONNXTensor?, graph: ONNXGraph?
    var floats: [Float] = [], ints: [Int] = [], strings: [String] = []
    var tensors: [ONNXTensor] = [], graphs: [ONNXGraph] = []
    var present = Set<Int>()
    while let field = try message.next() {
        present.insert(field.number)
        switch field.number {
        case 1: name = try field.string()
        case 2: float = try field.float()
        case 3: int = try field.integer()
        case 4: string = try field.string()
        case 5: tensor = try decodeTensor(field, externalData)
        case 6: graph = try decodeGraph(field, externalData)
        case 7: floats += try field.floats()
        case 8: ints += try field.integers()
        case 9: strings.append(try field.string())
        case 10: tensors.append(try decodeTensor(field, externalData))
        case 11: graphs.append(try decodeGraph(field, externalData))
        case 20: type = try field.integer()
        default: break
        }
    }
    // Files from before the `type` field say what they hold by which value field is present.
    let fieldOfType = [1: 2, 2: 3, 3: 4, 4: 5, 5: 6, 6: 7, 7: 8, 8: 9, 9: 10, 10: 11]
    if type == 0, let inferred = fieldOfType.sorted(by: { $0.key < $1.key }).first(where: { present.contains($0.value) }) {
        type = inferred.key
    }
    let value: ONNXAttribute
    switch type {
    case 1: value = .float(float)
    case 2: value = .int(int)
    case 3: value = .string(string)
    case 4:
        guard let tensor else { throw FormatProblem("'\(name)' is a tensor attribute without a tensor") }
        value = .tensor(tensor)
    case 5:
        guard let graph else { throw FormatProblem("'\(name)' is a graph attribute without a graph") }
        value = .graph(graph)
    case 6: value = .floats(floats)
    case 7: value = .ints(ints)
    case 8: value = .strings(strings)
    case 9: value = .tensors(tensors)
    case 10: value = .graphs(graphs)
    default:
        throw FormatProblem("'\(name)' has attribute type \(type), which cnnlab does not read",
                            expected: "a float, int, string, tensor or graph, or lists of them")
    }
    return (name, value)
}

/// A TensorProto's values from raw_data, the typed repeated fields, or an external file.
private func decodeTensor(_ field: ProtobufField, _ externalData: ExternalData) throws -> ONNXTensor {
    var message = try field.message()
    var name = "", dataType = 0, dims: [Int] = [], location = 0
    var raw: UnsafeRawBufferPointer?
    var floatData: [Float] = [], int32Data: [Int] = [], int64Data: [Int] = [], doubleData: [UInt64] = [], uint64Data: [UInt64] = []
    var external: [String: String] = [:]
    while let field = try message.next() {
        switch field.number {
        case 1: dims += try field.integers()
        case 2: dataType = try field.integer()
        case 3: throw FormatProblem("is split into segments, which cnnlab does not read")
        case 4: floatData += try field.floats()
        case 5: int32Data += try field.integers()
        case 7: int64Data += try field.integers()
        case 8: name = try field.string()
        case 9: raw = try field.bytes()
        case 10: doubleData += try field.fixed64s()
        case 11: uint64Data += try field.unsignedIntegers()
        case 13:
            let (key, value) = try decodeStringPair(field)
            external[key] = value
        case 14: location = try field.integer()
        default: break
        }
    }
    return try within("tensor '\(name)'") {
        guard let type = onnxElementType(dataType) else {
            throw FormatProblem("has element type \(onnxDataTypeName(dataType))",
                                expected: "FLOAT, FLOAT16, BFLOAT16, DOUBLE, or an integer or BOOL type")
        }
        let count = try elementCount(of: dims)
        func make(_ scalars: [Float], _ integers: [Int]?) throws -> ONNXTensor {
            guard scalars.count == count else {
                throw FormatProblem("holds \(scalars.count) values but dims \(dims) need \(count)")
            }
            return ONNXTensor(name: name, elementType: type, value: Tensor(shape: dims, scalars: scalars), integers: integers)
        }
        func fromBytes(_ bytes: UnsafeRawBufferPointer) throws -> ONNXTensor {
            let needed = try byteCount(of: dims, type)
            guard bytes.count == needed else {
                throw FormatProblem("has \(bytes.count) bytes of data but dims \(dims) of \(onnxDataTypeName(dataType)) need \(needed)")
            }
            return try make(decodeScalars(bytes, as: type), type.isInteger ? decodeIntegers(bytes, as: type) : nil)
        }
        if location == 1 {
            return try externalData.withBytes(of: external, expectedCount: try byteCount(of: dims, type), fromBytes)
        }
        if let raw { return try fromBytes(raw) }
        switch type {
        case .float32: return try make(floatData, nil)
        case .float64: return try make(doubleData.map { Float(Double(bitPattern: $0)) }, nil)
        case .int64: return try make(int64Data.map { Float($0) }, int64Data)
        case .uint32, .uint64:
            return try make(uint64Data.map { Float($0) }, uint64Data.allSatisfy { $0 <= UInt64(Int.max) } ? uint64Data.map { Int($0) } : nil)
        case .float16: return try make(int32Data.map { floatFromHalf(UInt16(truncatingIfNeeded: $0)) }, nil)
        case .bfloat16: return try make(int32Data.map { Float(bitPattern: UInt32(truncatingIfNeeded: $0) << 16) }, nil)
        case .bool: return try make(int32Data.map { $0 == 0 ? 0 : 1 }, int32Data.map { $0 == 0 ? 0 : 1 })
        case .int32, .int16, .int8, .uint16, .uint8: return try make(int32Data.map { Float($0) }, int32Data)
        }
    }
}

private func decodeValueInfo(_ field: ProtobufField) throws -> ONNXValueInfo {
    var message = try field.message()
    var info = ONNXValueInfo(name: "", elementType: nil, shape: nil)
    while let field = try message.next() {
        switch field.number {
        case 1: info.name = try field.string()
        case 2: try decodeType(field, into: &info)
        default: break
        }
    }
    return info
}

/// TypeProto: tensor_type 1 { elem_type 1, shape 2 { dim 1 { dim_value 1 | dim_param 2 } } }.
/// Other kinds of type (sequences, maps) leave the element type and shape unknown.
private func decodeType(_ field: ProtobufField, into info: inout ONNXValueInfo) throws {
    var type = try field.message()
    while let tensorType = try type.next() {
        guard tensorType.number == 1 else { continue }
        var fields = try tensorType.message()
        while let f = try fields.next() {
            if f.number == 1 { info.elementType = onnxElementType(try f.integer()) }
            guard f.number == 2 else { continue }
            var shape = try f.message()
            var dims: [ONNXDimension] = []
            while let d = try shape.next() {
                guard d.number == 1 else { continue }
                var dim = try d.message()
                var value = ONNXDimension.unknown
                while let v = try dim.next() {
                    if v.number == 1 { value = .size(try v.integer()) } else if v.number == 2 { value = .parameter(try v.string()) }
                }
                dims.append(value)
            }
            info.shape = dims
        }
    }
}

/// StringStringEntryProto: key 1, value 2.
private func decodeStringPair(_ field: ProtobufField) throws -> (String, String) {
    var message = try field.message()
    var key = "", value = ""
    while let f = try message.next() {
        if f.number == 1 { key = try f.string() } else if f.number == 2 { value = try f.string() }
    }
    return (key, value)
}
