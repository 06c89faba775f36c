import Engine
import Foundation

/// PyTorch's legacy serialization: torch.save before PyTorch 1.6 (and after it with
/// `_use_new_zipfile_serialization=False`). Many published weight files are in it. The file is
/// five pickles one after another, then the storages' raw bytes:
///
///     magic number 0x1950a86a20f9469cfc6c · protocol version 1001 · system info (a dict)
///     · the state dict, naming each storage by a persistent id
///       ("storage", type, key, location, element count, view) · the storage keys (a list)
///     · for each key in the list's order: its element count (int64) and its elements,
///       all little-endian
///
/// The pickles are read by the same restricted unpickler as the zip format's. The state dict
/// is read twice: once to find where it ends and which storages it names (the storages come
/// after it), then again to rebuild its tensors from them.
enum LegacyPyTorch {
    /// The magic number's ten little-endian bytes, as the LONG1 operand that pickles it.
    static let magic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]
    static let protocolVersion = 1001

    /// The top-level object of a legacy file (the state dict, or a checkpoint holding it).
    static func loadPickle(_ bytes: UnsafeRawBufferPointer) throws -> PickleValue {
        do {
            return try read(bytes)
        } catch let problem as FormatProblem {
            throw problem.within("PyTorch's legacy format (torch.save before 1.6)")
        }
    }

    private static func read(_ bytes: UnsafeRawBufferPointer) throws -> PickleValue {
        let offset = try afterMagicNumber(bytes)
        let plain = Unpickler(
            findGlobal: { module, name in throw FormatProblem("names the global '\(module).\(name)' where plain data belongs") },
            call: { _, _ in throw FormatProblem("calls a function where plain data belongs") },
            persistentLoad: { _ in throw FormatProblem("names a storage where plain data belongs") })

        let version = try within("protocol version") { try plain.load(bytes, from: offset) }
        guard case .int(protocolVersion) = version.value else {
            throw FormatProblem("has protocol version \(version.value.kind)", expected: "\(protocolVersion)")
        }
        let systemInfo = try within("system info") { try plain.load(bytes, from: version.end) }
        guard case .dict = systemInfo.value else {
            throw FormatProblem("has \(systemInfo.value.kind) for its system info", expected: "a dict")
        }
        let objectStart = systemInfo.end

        // First reading: where the object's pickle ends, and the type of each storage it names.
        var named: [String: PickleStorage] = [:]
        let scan = Unpickler(
            findGlobal: findGlobal,
            call: { callable, _ in
                guard case .global("collections.OrderedDict") = callable else { return .none }
                return .dict(PickleDict())
            },
            persistentLoad: { id in
                let value = try persistentLoad(id)
                if case .storage(let storage) = value {
                    if let earlier = named[storage.key], earlier.type != storage.type || earlier.count != storage.count {
                        throw FormatProblem("storage '\(storage.key)' is named with two types or sizes")
                    }
                    named[storage.key] = storage
                }
                return value
            })
        let objectEnd = try within("the saved object") { try scan.load(bytes, from: objectStart).end }

        let keyList = try within("storage keys") { try plain.load(bytes, from: objectEnd) }
        guard case .list(let keyItems) = keyList.value else {
            throw FormatProblem("has \(keyList.value.kind) for its storage keys", expected: "a list")
        }

        // The storages, in the order of the key list: a count, then the elements.
        var reader = ByteReader(bytes, position: keyList.end)
        var located: [String: (storage: PickleStorage, bytes: UnsafeRawBufferPointer)] = [:]
        for item in keyItems.items {
            guard case .string(let key) = item else { throw FormatProblem("lists \(item.kind) as a storage key", expected: "strings") }
            guard let storage = named[key] else { throw FormatProblem("lists storage '\(key)', which nothing in the file uses") }
            guard located[key] == nil else { throw FormatProblem("lists storage '\(key)' twice") }
            try within("storage '\(key)'") {
                let count = Int(truncatingIfNeeded: try reader.read(Int64.self))
                guard count == storage.count else {
                    throw FormatProblem("holds \(count) elements, but the state dict says \(storage.count)")
                }
                let size = try checkedMultiply(count, storage.type.byteCount, "its size")
                located[key] = (storage, try reader.read(count: size))
            }
        }
        if let missing = named.keys.sorted().first(where: { located[$0] == nil }) {
            throw FormatProblem("uses storage '\(missing)', which the file does not hold")
        }

        // Second reading: the same pickle, with tensors rebuilt from the storages.
        var storages = StorageCache(budget: max(4 * bytes.count, 1 << 26)) { storage in
            guard let found = located[storage.key] else { throw FormatProblem("storage '\(storage.key)' is missing") }
            return decodeScalars(found.bytes, as: found.storage.type)
        }
        let unpickler = Unpickler(findGlobal: findGlobal,
                                  call: { callable, arguments in try storages.call(callable, arguments) },
                                  persistentLoad: persistentLoad)
        return try within("the saved object") { try unpickler.load(bytes, from: objectStart).value }
    }

    /// The offset after the first pickle, which must hold the magic number:
    /// PROTO n, an optional FRAME, LONG1 with the ten magic bytes, STOP.
    private static func afterMagicNumber(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        var reader = ByteReader(bytes)
        let notTorch = FormatProblem("is a pickle without PyTorch's magic number", expected: "a file written by torch.save")
        guard try reader.read(UInt8.self) == 0x80 else { throw notTorch }
        _ = try reader.read(UInt8.self)
        var opcode = try reader.read(UInt8.self)
        if opcode == 0x95 {  // FRAME: an 8-byte length, then the framed opcodes
            try reader.skip(8)
            opcode = try reader.read(UInt8.self)
        }
        guard opcode == 0x8a, try reader.read(UInt8.self) == UInt8(magic.count),
              Array(try reader.read(count: magic.count)) == magic,
              try reader.read(UInt8.self) == UInt8(ascii: ".") else { throw notTorch }
        return reader.position
    }

    /// ("storage", type, key, location, element count, view); the view is None, as every
    /// PyTorch since storage views were dropped writes it.
    private static func persistentLoad(_ id: PickleValue) throws -> PickleValue {
        guard case .tuple(let fields, _) = id, fields.count == 6, case .string("storage") = fields[0],
              case .global(let typeName) = fields[1], case .string(let key) = fields[2], case .int(let count) = fields[4] else {
            throw FormatProblem("persistent id is not ('storage', type, key, location, size, view)")
        }
        guard typeName.hasPrefix("torch."), let type = storageTypes[String(typeName.dropFirst("torch.".count))] else {
            throw FormatProblem("persistent id names '\(typeName)', which is not a storage type")
        }
        guard case .none = fields[5] else {
            throw FormatProblem("storage '\(key)' is a view of another storage, which only PyTorch before 0.4 wrote",
                                expected: "a file re-saved with a newer torch.save")
        }
        guard count >= 0 else { throw FormatProblem("storage '\(key)' has a negative size \(count)") }
        return .storage(PickleStorage(key: key, type: type, count: count))
    }
}
