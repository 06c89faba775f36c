import Engine
import Foundation
import ZIPFoundation

/// NumPy's `.npy` (one array) and `.npz` (a zip of `.npy` files, by array name).
///
/// `.npy` layout: the magic `\x93NUMPY`, a version byte pair (1.0, 2.0 or 3.0), a header
/// length (2 bytes in 1.0, 4 bytes after), a Python dict literal
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`, then the data.
/// Reads little- and big-endian f2, f4, f8, i1, i2, i4, i8, u1, u2, u4, u8 and b1 into float32,
/// in C or Fortran order (Fortran order is transposed to row-major); writes `<f4` in C order.
public enum NumPy {
    /// Reads one array from a `.npy` file.
    public static func readArray(at url: URL) throws -> Tensor {
        try withFile(url) {
            try readFileBytes(url).withUnsafeBytes { try decodeArray($0) }
        }
    }

    /// Writes a tensor as a little-endian float32 `.npy` file, through a temporary file.
    public static func writeArray(_ tensor: Tensor, to url: URL) throws {
        try withFile(url) {
            try writeAtomically(to: url) { (handle: FileHandle) in try handle.write(contentsOf: encodeArray(tensor)) }
        }
    }

    /// Reads every array of a `.npz` file (stored or deflated), keyed by name without `.npy`.
    public static func readArchive(at url: URL) throws -> [String: Tensor] {
        try withFile(url) {
            try readFileBytes(url).withUnsafeBytes { bytes in
                let zip = try ZipReader(bytes)
                var arrays: [String: Tensor] = [:]
                for entry in zip.entries where entry.name.hasSuffix(".npy") {
                    let name = String(entry.name.dropLast(4))
                    arrays[name] = try zip.withContents(of: entry) { contents in
                        try within("array '\(name)'") { try decodeArray(contents) }
                    }
                }
                return arrays
            }
        }
    }

    /// Writes tensors as a `.npz` file of float32 arrays, deflated if `compressed`, through a temporary file.
    public static func writeArchive(_ arrays: [String: Tensor], to url: URL, compressed: Bool = false) throws {
        try withFile(url) {
            try writeAtomically(to: url) { temporary in
                let archive = try Archive(url: temporary, accessMode: .create)
                for (name, tensor) in arrays.sorted(by: { $0.key < $1.key }) {
                    let bytes = encodeArray(tensor)
                    // Dated 1980-01-01, the earliest date zip can store, so equal arrays give equal files.
                    try archive.addEntry(with: name + ".npy", type: .file, uncompressedSize: Int64(bytes.count),
                                         modificationDate: Date(timeIntervalSince1970: 315_532_800),
                                         compressionMethod: compressed ? .deflate : .none) { position, size in
                        bytes.subdata(in: Int(position)..<Int(position) + size)
                    }
                }
            }
        }
    }
}

// MARK: - .npy

private let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

private let kinds: [String: ElementType] = [
    "f2": .float16, "f4": .float32, "f8": .float64,
    "i1": .int8, "i2": .int16, "i4": .int32, "i8": .int64,
    "u1": .uint8, "u2": .uint16, "u4": .uint32, "u8": .uint64, "b1": .bool,
]

/// Decodes a whole `.npy` file held in `bytes`.
func decodeArray(_ bytes: UnsafeRawBufferPointer) throws -> Tensor {
    var reader = ByteReader(bytes)
    guard bytes.count >= 10, Array(try reader.read(count: 6)) == magic else {
        throw FormatProblem("does not start with the .npy magic", expected: "a file written by numpy.save")
    }
    let major = try reader.read(UInt8.self), minor = try reader.read(UInt8.self)
    let headerLength: Int
    switch (major, minor) {
    case (1, 0): headerLength = Int(try reader.read(UInt16.self))
    case (2, 0), (3, 0): headerLength = Int(try reader.read(UInt32.self))
    default: throw FormatProblem(".npy format version \(major).\(minor) is unknown", expected: "1.0, 2.0 or 3.0")
    }
    guard headerLength <= reader.remaining else {
        throw FormatProblem("header length \(headerLength) is larger than the \(reader.remaining) bytes after it")
    }
    let headerBytes = try reader.read(count: headerLength)
    // Versions 1.0 and 2.0 are latin-1, 3.0 is UTF-8; the keys and values that matter are ASCII.
    let header = major == 3 ? String(decoding: headerBytes, as: UTF8.self)
                            : String(headerBytes.map { Character(Unicode.Scalar($0)) })
    let (type, bigEndian, fortranOrder, shape) = try parseHeader(header)

    let needed = try byteCount(of: shape, type)
    guard needed <= reader.remaining else {
        throw FormatProblem("shape \(shape) of \(type) needs \(needed) bytes of data, the file holds \(reader.remaining)")
    }
    let scalars = decodeScalars(try reader.read(count: needed), as: type, bigEndian: bigEndian)
    guard fortranOrder, shape.count > 1 else { return Tensor(shape: shape, scalars: scalars) }
    // Column-major: element (i0, i1, ...) sits at i0 + i1·d0 + i2·d0·d1 + ...
    var strides: [Int] = []
    var step = 1
    for d in shape { strides.append(step); step *= d }
    let rowMajor = scalars.withUnsafeBufferPointer { gather($0, shape: shape, strides: strides, offset: 0) }
    return Tensor(shape: shape, scalars: rowMajor)
}

private func parseHeader(_ text: String) throws -> (ElementType, Bool, Bool, [Int]) {
    var parser = LiteralParser(text)
    guard case .dict(let fields) = try parser.parseValue(depth: 0) else {
        throw FormatProblem("header is not a dict", expected: "{'descr': ..., 'fortran_order': ..., 'shape': ...}")
    }
    guard case .string(let descr)? = fields["descr"] else {
        throw FormatProblem("header has a structured or missing 'descr'", expected: "a plain dtype such as '<f4'")
    }
    guard case .bool(let fortranOrder)? = fields["fortran_order"] else {
        throw FormatProblem("header has no 'fortran_order' True or False")
    }
    guard case .tuple(let dims)? = fields["shape"] else { throw FormatProblem("header has no 'shape' tuple") }
    let shape = try dims.map { value -> Int in
        guard case .int(let d) = value, d >= 0 else {
            throw FormatProblem("shape holds \(value)", expected: "non-negative integers")
        }
        return d
    }
    let order = descr.first, kind = String(descr.dropFirst())
    guard let type = kinds[kind], order == "<" || order == ">" || order == "|" || order == "=" else {
        if descr.contains("O") { throw FormatProblem("holds Python objects (dtype '\(descr)'), which are never loaded") }
        throw FormatProblem("has dtype '\(descr)'", expected: "one of " + kinds.keys.sorted().map { "<" + $0 }.joined(separator: ", "))
    }
    return (type, order == ">", fortranOrder, shape)
}

/// The whole `.npy` file for a tensor: version 1.0 (2.0 if the header outgrows 64 KiB), `<f4`, C order.
func encodeArray(_ tensor: Tensor) -> Data {
    let dims = tensor.shape.map(String.init)
    let shape = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.joined(separator: ", ") + ")"
    var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
    // NumPy pads with spaces and a newline so that magic + version + length + header is a multiple of 64.
    let large = header.utf8.count + 11 > 65535
    let prefixLength = large ? 12 : 10
    header += String(repeating: " ", count: (64 - (prefixLength + header.utf8.count + 1) % 64) % 64) + "\n"
    var data = Data(magic)
    data.append(contentsOf: large ? [2, 0] : [1, 0])
    if large {
        withUnsafeBytes(of: UInt32(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
    } else {
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
    }
    data.append(contentsOf: header.utf8)
    data.append(littleEndianBytes(of: tensor))
    return data
}

// MARK: - Python literals

/// The values a `.npy` header uses.
private enum Literal: CustomStringConvertible {
    case string(String), int(Int), bool(Bool), none, tuple([Literal]), dict([String: Literal])

    var description: String {
        switch self {
        case .string(let s): return "'\(s)'"
        case .int(let i): return String(i)
        case .bool(let b): return b ? "True" : "False"
        case .none: return "None"
        case .tuple(let items): return "(" + items.map(\.description).joined(separator: ", ") + ")"
        case .dict: return "{...}"
        }
    }
}

/// A recursive-descent parser for the Python literals of a `.npy` header: dicts, tuples and
/// lists, quoted strings, integers, True, False and None. Nesting is limited.
private struct LiteralParser {
    let characters: [Character]
    var index = 0

    init(_ text: String) { characters = Array(text) }

    mutating func parseValue(depth: Int) throws -> Literal {
        guard depth < 16 else { throw FormatProblem("header nests too deeply") }
        skipSpaces()
        guard index < characters.count else { throw FormatProblem("header ends early") }
        let c = characters[index]
        switch c {
        case "{":
            index += 1
            var fields: [String: Literal] = [:]
            while try !consume("}") {
                guard case .string(let key) = try parseValue(depth: depth + 1) else { throw FormatProblem("header has a non-string key") }
                guard try consume(":") else { throw FormatProblem("header lacks ':' after '\(key)'") }
                fields[key] = try parseValue(depth: depth + 1)
                if try !consume(",") { guard try consume("}") else { throw FormatProblem("header lacks ',' or '}'") }; break }
            }
            return .dict(fields)
        case "(", "[":
            let close: Character = c == "(" ? ")" : "]"
            index += 1
            var items: [Literal] = []
            while try !consume(close) {
                items.append(try parseValue(depth: depth + 1))
                if try !consume(",") { guard try consume(close) else { throw FormatProblem("header lacks ',' or '\(close)'") }; break }
            }
            return .tuple(items)
        case "'", "\"":
            index += 1
            var text = ""
            while index < characters.count, characters[index] != c { text.append(characters[index]); index += 1 }
            guard index < characters.count else { throw FormatProblem("header has an unterminated string") }
            index += 1
            return .string(text)
        default:
            var word = ""
            while index < characters.count, characters[index].isLetter || characters[index].isNumber || "-_.".contains(characters[index]) {
                word.append(characters[index])
                index += 1
            }
            if word.hasSuffix("L") { word.removeLast() }  // Python 2 long integers
            switch word {
            case "True": return .bool(true)
            case "False": return .bool(false)
            case "None": return .none
            default:
                guard let value = Int(word) else { throw FormatProblem("header holds '\(word.isEmpty ? String(c) : word)' where a value belongs") }
                return .int(value)
            }
        }
    }

    private mutating func skipSpaces() {
        while index < characters.count, characters[index].isWhitespace { index += 1 }
    }

    /// Skips spaces and then `c` if it is next.
    private mutating func consume(_ c: Character) throws -> Bool {
        skipSpaces()
        guard index < characters.count else { throw FormatProblem("header ends early") }
        if characters[index] == c { index += 1; return true }
        return false
    }
}
