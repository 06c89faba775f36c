import Foundation

/// A reader of the protobuf wire format, for the few ONNX messages cnnlab decodes.
///
/// A message is a sequence of fields, each a varint key `(number << 3) | wireType` followed by
/// a varint (type 0), 8 bytes (1), a varint length and that many bytes (2), or 4 bytes (5).
/// Every length is checked against what remains of the enclosing message, and nested
/// messages are limited in depth, so a hostile file cannot read out of bounds or recurse without end.
struct ProtobufReader {
    /// Nested messages deeper than this are refused (ONNX nests a handful of levels per subgraph).
    static let deepestNesting = 100

    fileprivate var reader: ByteReader
    /// Where the message starts in the file, for error messages.
    let origin: Int
    let depth: Int

    init(_ bytes: UnsafeRawBufferPointer, origin: Int = 0, depth: Int = 0) throws {
        guard depth <= ProtobufReader.deepestNesting else {
            throw FormatProblem("messages nest deeper than \(ProtobufReader.deepestNesting) levels (at byte \(origin))")
        }
        self.reader = ByteReader(bytes)
        self.origin = origin
        self.depth = depth
    }

    /// The next field, or nil at the end of the message.
    mutating func next() throws -> ProtobufField? {
        guard !reader.isAtEnd else { return nil }
        let start = origin + reader.position
        let key = try varint()
        let number = key >> 3
        guard number >= 1, number <= (1 << 29) - 1 else { throw FormatProblem("field number \(number) at byte \(start) is invalid") }
        let value: ProtobufField.Value
        switch key & 7 {
        case 0: value = .varint(try varint())
        case 1: value = .fixed64(try reader.read(UInt64.self))
        case 2:
            let length = try varint()
            guard length <= UInt64(reader.remaining) else {
                throw FormatProblem("field \(number) at byte \(start) claims \(length) bytes, only \(reader.remaining) remain in its message")
            }
            let valueStart = origin + reader.position
            value = .bytes(try reader.read(count: Int(length)), origin: valueStart)
        case 5: value = .fixed32(try reader.read(UInt32.self))
        default:
            throw FormatProblem("field \(number) at byte \(start) has wire type \(key & 7)", expected: "0, 1, 2 or 5")
        }
        return ProtobufField(number: Int(number), value: value, depth: depth, offset: start)
    }

    /// Base-128 varint, least significant group first, at most 10 bytes.
    fileprivate mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        for i in 0..<10 {
            let byte = try reader.read(UInt8.self)
            if i == 9, byte > 1 { break }
            result |= UInt64(byte & 0x7f) << (7 * UInt64(i))
            if byte & 0x80 == 0 { return result }
        }
        throw FormatProblem("varint at byte \(origin + reader.position) runs longer than 10 bytes")
    }
}

struct ProtobufField {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes(UnsafeRawBufferPointer, origin: Int)
    }

    let number: Int
    let value: Value
    let depth: Int
    let offset: Int

    private func mismatch(_ wanted: String) -> FormatProblem {
        FormatProblem("field \(number) at byte \(offset) has the wrong wire type for \(wanted)")
    }

    /// int64, int32 and enum fields: a varint holding the two's-complement bits.
    func integer() throws -> Int {
        guard case .varint(let v) = value else { throw mismatch("an integer") }
        return Int(Int64(bitPattern: v))
    }

    func float() throws -> Float {
        guard case .fixed32(let v) = value else { throw mismatch("a float") }
        return Float(bitPattern: v)
    }

    func bytes() throws -> UnsafeRawBufferPointer {
        guard case .bytes(let b, _) = value else { throw mismatch("bytes") }
        return b
    }

    func string() throws -> String {
        String(decoding: try bytes(), as: UTF8.self)
    }

    /// The field's bytes as a nested message, one level deeper.
    func message() throws -> ProtobufReader {
        guard case .bytes(let b, let origin) = value else { throw mismatch("a message") }
        return try ProtobufReader(b, origin: origin, depth: depth + 1)
    }

    /// Repeated varint fields, packed (one length-delimited run) or not (one value per field).
    func integers() throws -> [Int] {
        switch value {
        case .varint: return [try integer()]
        case .bytes(let b, let origin):
            var run = try ProtobufReader(b, origin: origin, depth: depth)
            var values: [Int] = []
            while !run.reader.isAtEnd { values.append(Int(Int64(bitPattern: try run.varint()))) }
            return values
        default: throw mismatch("integers")
        }
    }

    /// Repeated float fields, packed or not.
    func floats() throws -> [Float] {
        switch value {
        case .fixed32(let v): return [Float(bitPattern: v)]
        case .bytes(let b, _):
            guard b.count % 4 == 0 else { throw FormatProblem("packed floats at byte \(offset) are \(b.count) bytes, not a multiple of 4") }
            return decodeScalars(b, as: .float32)
        default: throw mismatch("floats")
        }
    }

    /// Repeated 64-bit fields (double, fixed64), packed or not, as raw bits.
    func fixed64s() throws -> [UInt64] {
        switch value {
        case .fixed64(let v): return [v]
        case .bytes(let b, _):
            guard b.count % 8 == 0 else { throw FormatProblem("packed 64-bit values at byte \(offset) are \(b.count) bytes, not a multiple of 8") }
            return (0..<b.count / 8).map { UInt64(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
        default: throw mismatch("64-bit values")
        }
    }

    /// Repeated uint64 fields, packed or not.
    func unsignedIntegers() throws -> [UInt64] {
        try integers().map { UInt64(bitPattern: Int64($0)) }
    }
}
