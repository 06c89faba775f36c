import Foundation

/// A protobuf message written field by field, for hand-built (and hostile) ONNX files.
struct ProtobufBytes {
    var data = Data()

    static func varint(_ value: UInt64) -> Data {
        var v = value, out = Data()
        repeat {
            out.append(UInt8(v & 0x7f) | (v >= 0x80 ? 0x80 : 0))
            v >>= 7
        } while v != 0
        return out
    }

    mutating func key(_ number: Int, _ wireType: Int) { data.append(ProtobufBytes.varint(UInt64(number << 3 | wireType))) }

    mutating func int(_ number: Int, _ value: Int) {
        key(number, 0)
        data.append(ProtobufBytes.varint(UInt64(bitPattern: Int64(value))))
    }

    mutating func bytes(_ number: Int, _ value: Data) {
        key(number, 2)
        data.append(ProtobufBytes.varint(UInt64(value.count)))
        data.append(value)
    }

    mutating func string(_ number: Int, _ value: String) { bytes(number, Data(value.utf8)) }

    mutating func message(_ number: Int, _ build: (inout ProtobufBytes) -> Void) {
        var inner = ProtobufBytes()
        build(&inner)
        bytes(number, inner.data)
    }

    mutating func float(_ number: Int, _ value: Float) {
        key(number, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
    }

    /// A packed repeated varint field.
    mutating func packed(_ number: Int, _ values: [Int]) {
        bytes(number, values.reduce(into: Data()) { $0.append(ProtobufBytes.varint(UInt64(bitPattern: Int64($1)))) })
    }

    /// A packed repeated float field.
    mutating func packedFloats(_ number: Int, _ values: [Float]) {
        bytes(number, values.reduce(into: Data()) { d, v in withUnsafeBytes(of: v.bitPattern.littleEndian) { d.append(contentsOf: $0) } })
    }
}

/// ModelProto { ir_version 8, opset_import { "" 17 }, graph { ... } }, or another opset.
func onnxModel(opset: Int = 17, _ graph: (inout ProtobufBytes) -> Void) -> Data {
    var model = ProtobufBytes()
    model.int(1, 8)
    model.message(7, graph)
    model.message(8) { $0.string(1, ""); $0.int(2, opset) }
    return model.data
}

/// An initializer (TensorProto) of FLOAT values kept in a side file.
func externalInitializer(_ name: String, dims: [Int], location: String, offset: Int? = nil, length: Int? = nil)
    -> (inout ProtobufBytes) -> Void {
    { graph in
        graph.message(5) { t in
            t.packed(1, dims)
            t.int(2, 1)
            t.string(8, name)
            t.message(13) { $0.string(1, "location"); $0.string(2, location) }
            if let offset { t.message(13) { $0.string(1, "offset"); $0.string(2, String(offset)) } }
            if let length { t.message(13) { $0.string(1, "length"); $0.string(2, String(length)) } }
            t.int(14, 1)
        }
    }
}
