import Engine
import Foundation

/// A safetensors file: named tensors plus a string-to-string metadata map.
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON
/// `{name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}`,
/// then the data section, which the offsets index. cnnlab's native weight format: a saved
/// network keeps its architecture as text in the metadata.
///
/// Reading accepts F32, F16, BF16, F64, I64, I32, I16, I8, U64, U32, U16, U8 and BOOL,
/// all converted to float32 (`storedTypes` says what each tensor was); writing stores F32.
public struct SafetensorsFile {
    public var tensors: [String: Tensor]
    public var metadata: [String: String]
    /// The element type each tensor had in the file it was read from.
    public var storedTypes: [String: ElementType]

    public init(tensors: [String: Tensor], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
        self.storedTypes = tensors.mapValues { _ in .float32 }
    }

    /// Reads and validates a safetensors file.
    public init(contentsOf url: URL) throws {
        self = try withFile(url) {
            let data = try readFileBytes(url)
            return try data.withUnsafeBytes { try SafetensorsFile(decoding: $0) }
        }
    }

    /// Writes the tensors as F32, sorted by name, with the metadata; through a temporary file.
    public func write(to url: URL) throws {
        try withFile(url) {
            let named = tensors.sorted { $0.key < $1.key }
            var entries: [String: Any] = [:]
            var offset = 0
            for (name, tensor) in named {
                guard name != metadataKey else {
                    throw FormatProblem("'\(metadataKey)' is reserved for the metadata and cannot name a tensor")
                }
                let size = tensor.count * 4
                entries[name] = ["dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, offset + size]]
                offset += size
            }
            if !metadata.isEmpty { entries[metadataKey] = metadata }
            var header = try JSONSerialization.data(withJSONObject: entries, options: [.sortedKeys])
            // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
            header.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8))
            try writeAtomically(to: url) { (handle: FileHandle) in
                try handle.write(contentsOf: withUnsafeBytes(of: UInt64(header.count).littleEndian) { Data($0) })
                try handle.write(contentsOf: header)
                for (_, tensor) in named { try handle.write(contentsOf: littleEndianBytes(of: tensor)) }
            }
        }
    }
}

private let metadataKey = "__metadata__"

/// The reference implementation refuses headers above 100 MB; so do we, before parsing.
private let largestHeader = 100_000_000

private let typeNames: [String: ElementType] = [
    "F32": .float32, "F16": .float16, "BF16": .bfloat16, "F64": .float64,
    "I64": .int64, "I32": .int32, "I16": .int16, "I8": .int8,
    "U64": .uint64, "U32": .uint32, "U16": .uint16, "U8": .uint8, "BOOL": .bool,
]

private struct Entry {
    var name: String
    var type: ElementType
    var shape: [Int]
    var begin: Int
    var end: Int
}

extension SafetensorsFile {
    init(decoding bytes: UnsafeRawBufferPointer) throws {
        var reader = ByteReader(bytes)
        guard bytes.count >= 8 else {
            throw FormatProblem("is \(bytes.count) bytes long, too short for a safetensors file",
                                expected: "an 8-byte header length, a JSON header and data")
        }
        let headerLength = try reader.read(UInt64.self)
        guard headerLength <= UInt64(reader.remaining) else {
            throw FormatProblem("header length \(headerLength) is larger than the \(reader.remaining) bytes after it",
                                expected: "a safetensors file (8-byte little-endian header length, then JSON)")
        }
        guard headerLength <= largestHeader else {
            throw FormatProblem("header length \(headerLength) is above the 100 MB limit of the format")
        }
        let headerBytes = try reader.read(count: Int(headerLength))
        let dataSection = UnsafeRawBufferPointer(rebasing: bytes[reader.position...])
        var metadata: [String: String] = [:]
        let entries = try SafetensorsFile.parseHeader(Data(headerBytes), dataSize: dataSection.count,
                                                      metadata: &metadata)
        self.metadata = metadata

        tensors = [:]
        storedTypes = [:]
        for entry in entries {
            let slice = UnsafeRawBufferPointer(rebasing: dataSection[entry.begin..<entry.end])
            tensors[entry.name] = Tensor(shape: entry.shape, scalars: decodeScalars(slice, as: entry.type))
            storedTypes[entry.name] = entry.type
        }
    }

    /// Parses and validates the JSON header: types, shapes, and offsets that lie inside the
    /// data section, match the shape's size, and do not overlap.
    private static func parseHeader(_ header: Data, dataSize: Int,
                                    metadata: inout [String: String]) throws -> [Entry] {
        try checkNesting(header, limit: 8)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: header)
        } catch {
            throw FormatProblem("header is not valid JSON", expected: "a safetensors file")
        }
        guard let object = json as? [String: Any] else {
            throw FormatProblem("header is not a JSON object", expected: "{name: {dtype, shape, data_offsets}}")
        }
        var entries: [Entry] = []
        for (name, value) in object {
            if name == metadataKey {
                guard let map = value as? [String: Any] else {
                    throw FormatProblem("'\(metadataKey)' is not an object", expected: "a map of strings to strings")
                }
                for (key, text) in map {
                    guard let text = text as? String else {
                        throw FormatProblem("metadata entry '\(key)' is not a string", expected: "a map of strings to strings")
                    }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try within("tensor '\(name)'") { try parseEntry(name, value, dataSize: dataSize) })
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        for (previous, next) in zip(entries, entries.dropFirst()) where next.begin < previous.end {
            throw FormatProblem("tensors '\(previous.name)' and '\(next.name)' overlap (bytes \(previous.begin)..<\(previous.end) and \(next.begin)..<\(next.end))")
        }
        return entries
    }

    private static func parseEntry(_ name: String, _ value: Any, dataSize: Int) throws -> Entry {
        guard let fields = value as? [String: Any] else {
            throw FormatProblem("entry is not an object", expected: "{dtype, shape, data_offsets}")
        }
        guard let typeName = fields["dtype"] as? String else { throw FormatProblem("has no dtype") }
        guard let type = typeNames[typeName] else {
            throw FormatProblem("has dtype '\(typeName)'", expected: "one of " + typeNames.keys.sorted().joined(separator: ", "))
        }
        guard let shapeValues = fields["shape"] as? [Any] else { throw FormatProblem("has no shape list") }
        let shape = try shapeValues.map { try integer($0, "shape") }
        guard let offsets = fields["data_offsets"] as? [Any], offsets.count == 2 else {
            throw FormatProblem("has no data_offsets pair", expected: "[begin, end]")
        }
        let begin = try integer(offsets[0], "data_offsets"), end = try integer(offsets[1], "data_offsets")
        guard begin <= end, end <= dataSize else {
            throw FormatProblem("data_offsets [\(begin), \(end)] lie outside the \(dataSize)-byte data section")
        }
        let needed = try byteCount(of: shape, type)
        guard end - begin == needed else {
            throw FormatProblem("data_offsets [\(begin), \(end)] hold \(end - begin) bytes but shape \(shape) of \(typeName) needs \(needed)")
        }
        return Entry(name: name, type: type, shape: shape, begin: begin, end: end)
    }

    private static func integer(_ value: Any, _ field: String) throws -> Int {
        guard let number = value as? NSNumber, case let d = number.doubleValue,
              d == d.rounded(), d >= 0, d < 0x1p62 else {
            throw FormatProblem("\(field) holds \(value)", expected: "non-negative integers")
        }
        return Int(number.int64Value)  // exact even above 2^53, where the double is not
    }
}

/// Refuses JSON nested deeper than `limit`, before a recursive parser sees it.
func checkNesting(_ json: Data, limit: Int) throws {
    var depth = 0, inString = false, escaped = false
    for byte in json {
        if inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
            continue
        }
        switch byte {
        case UInt8(ascii: "\""): inString = true
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            depth += 1
            if depth > limit { throw FormatProblem("header nests deeper than \(limit) levels") }
        case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
        default: break
        }
    }
}
