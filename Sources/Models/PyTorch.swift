import Engine
import Foundation

/// PyTorch state dicts as `torch.save` writes them (the zip format, PyTorch 1.6 and later):
/// `<archive>/data.pkl` pickles the dict, `<archive>/data/<key>` holds each storage's raw
/// bytes, `<archive>/byteorder` says "little" or "big".
///
/// The pickle is read by a restricted unpickler that knows only the globals a state dict
/// needs and executes nothing; anything else (`os.system`, `builtins.eval`, a model class)
/// is refused by name. Tensors are rebuilt from their storage, offset, size and stride, with
/// every index checked against the storage. All element types come back as float32.
public enum PyTorch {
    /// Reads the tensors of a state dict, by key. A checkpoint whose top level is a dict with
    /// a "state_dict", "model_state_dict" or "model" entry yields that entry's tensors.
    public static func readStateDict(at url: URL) throws -> [String: Tensor] {
        try withFile(url) {
            try readFileBytes(url).withUnsafeBytes { bytes in
                // A bare pickle first is the format of torch.save before PyTorch 1.6.
                let top = bytes.first == 0x80 ? try LegacyPyTorch.loadPickle(bytes) : try loadPickle(bytes)
                return try stateDict(in: top)
            }
        }
    }
}

/// The globals a state dict may name, and what each stands for.
let storageTypes: [String: ElementType] = [
    "FloatStorage": .float32, "HalfStorage": .float16, "BFloat16Storage": .bfloat16, "DoubleStorage": .float64,
    "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
    "ByteStorage": .uint8, "BoolStorage": .bool, "UntypedStorage": .uint8,
]
private let dtypes: [String: ElementType] = [
    "float32": .float32, "float": .float32, "float16": .float16, "half": .float16, "bfloat16": .bfloat16,
    "float64": .float64, "double": .float64, "int64": .int64, "long": .int64, "int32": .int32, "int": .int32,
    "int16": .int16, "short": .int16, "int8": .int8, "uint8": .uint8, "bool": .bool,
]
private let callables: Set<String> = [
    "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
]

func findGlobal(_ module: String, _ name: String) throws -> PickleValue {
    let full = "\(module).\(name)"
    if callables.contains(full) { return .global(full) }
    if module == "torch", storageTypes[name] != nil || dtypes[name] != nil { return .global(full) }
    if module.hasPrefix("__torch__") {
        throw FormatProblem("refuses the global '\(full)': this is a TorchScript or whole-model file, not a state dict",
                            expected: "a file saved with torch.save(model.state_dict(), path)")
    }
    throw FormatProblem("refuses the global '\(full)'; nothing in a weight file is ever executed",
                        expected: "only the globals of a state dict (collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.FloatStorage, ...)")
}

private func loadPickle(_ bytes: UnsafeRawBufferPointer) throws -> PickleValue {
    guard bytes.count >= 4, bytes.loadUnaligned(as: UInt32.self) == UInt32(0x0403_4b50).littleEndian else {
        if bytes.first == 0x80 {
            throw FormatProblem("is in PyTorch's legacy format (before 1.6)",
                                expected: "a file re-saved with torch.save in PyTorch 1.6 or later")
        }
        throw FormatProblem("is not a PyTorch zip file", expected: "a file written by torch.save")
    }
    let zip = try ZipReader(bytes)
    // The pickle sits at "<archive>/data.pkl", whatever the archive folder is called.
    guard let pickle = zip.entries.first(where: { $0.name.hasSuffix("/data.pkl") && $0.name.split(separator: "/").count == 2 }) else {
        if zip.entries.contains(where: { $0.name.hasSuffix("/constants.pkl") }) {
            throw FormatProblem("is a TorchScript archive, not a state dict", expected: "torch.save(model.state_dict(), path)")
        }
        throw FormatProblem("holds no <archive>/data.pkl", expected: "a file written by torch.save")
    }
    let prefix = String(pickle.name.dropLast("data.pkl".count))
    var bigEndian = false
    if let order = zip.entry(named: prefix + "byteorder") {
        let text = try zip.withContents(of: order) { String(decoding: $0, as: UTF8.self) }
        guard text == "little" || text == "big" else {
            throw FormatProblem("byteorder says '\(text.prefix(20))'", expected: "'little' or 'big'")
        }
        bigEndian = text == "big"
    }
    var storages = StorageCache(budget: max(4 * bytes.count, 1 << 26)) { storage in
        guard let entry = zip.entry(named: "\(prefix)data/\(storage.key)") else {
            throw FormatProblem("storage '\(storage.key)' is missing from the archive")
        }
        let needed = try checkedMultiply(storage.count, storage.type.byteCount, "storage '\(storage.key)'")
        guard entry.uncompressedSize >= needed else {
            throw FormatProblem("storage '\(storage.key)' holds \(entry.uncompressedSize) bytes, but \(storage.count) elements of \(storage.type) need \(needed)")
        }
        return try zip.withContents(of: entry) {
            decodeScalars(UnsafeRawBufferPointer(rebasing: $0.prefix(needed)), as: storage.type, bigEndian: bigEndian)
        }
    }
    let unpickler = Unpickler(
        findGlobal: findGlobal,
        call: { callable, arguments in try storages.call(callable, arguments) },
        persistentLoad: persistentLoad)
    return try zip.withContents(of: pickle) { try unpickler.load($0) }
}

/// A persistent id names a storage: ("storage", storage type, key, location, element count).
private func persistentLoad(_ id: PickleValue) throws -> PickleValue {
    guard case .tuple(let fields, _) = id, fields.count == 5, case .string("storage") = fields[0],
          case .global(let typeName) = fields[1], case .string(let key) = fields[2], case .int(let count) = fields[4] else {
        throw FormatProblem("persistent id is not ('storage', type, key, location, size)")
    }
    guard let type = storageTypes[String(typeName.dropFirst("torch.".count))], typeName.hasPrefix("torch.") else {
        throw FormatProblem("persistent id names '\(typeName)', which is not a storage type")
    }
    guard count >= 0 else { throw FormatProblem("storage '\(key)' has a negative size \(count)") }
    return .storage(PickleStorage(key: key, type: type, count: count))
}

/// Decodes each storage once, and rebuilds tensors from views of them.
struct StorageCache {
    /// Bytes of tensors still allowed: shared or expanded storages could otherwise make a small
    /// file claim terabytes of views.
    var budget: Int
    /// A storage's scalars, from wherever the file keeps them (a zip entry, a stretch of bytes).
    let read: (PickleStorage) throws -> [Float]
    var decoded: [String: [Float]] = [:]

    init(budget: Int, read: @escaping (PickleStorage) throws -> [Float]) {
        self.budget = budget
        self.read = read
    }

    mutating func call(_ callable: PickleValue, _ arguments: [PickleValue]) throws -> PickleValue {
        guard case .global(let name) = callable else { throw FormatProblem("calls \(callable.kind)") }
        switch name {
        case "collections.OrderedDict":
            guard arguments.isEmpty else { throw FormatProblem("OrderedDict is built with arguments") }
            return .dict(PickleDict())
        case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
            guard arguments.count >= 4, case .storage(let storage) = arguments[0], case .int(let offset) = arguments[1] else {
                throw FormatProblem("\(name) has arguments other than (storage, offset, size, stride, ...)")
            }
            return .tensor(try rebuild(storage, offset: offset, size: try ints(arguments[2]), stride: try ints(arguments[3])))
        case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
            guard let data = arguments.first, case .tensor = data else { throw FormatProblem("\(name) wraps no tensor") }
            return data
        default:
            throw FormatProblem("calls '\(name)', which is a type, not a function")
        }
    }

    private func ints(_ value: PickleValue) throws -> [Int] {
        guard case .tuple(let items, _) = value else { throw FormatProblem("tensor size or stride is \(value.kind), not a tuple") }
        return try items.map {
            guard case .int(let i) = $0 else { throw FormatProblem("tensor size or stride holds \($0.kind)") }
            return i
        }
    }

    private mutating func rebuild(_ storage: PickleStorage, offset: Int, size: [Int], stride: [Int]) throws -> Tensor {
        try within("tensor on storage '\(storage.key)'") {
            let count = try elementCount(of: size)
            let bytes = try checkedMultiply(count, 4, "size \(size)")
            guard bytes <= budget else {
                throw FormatProblem("size \(size) would need \(bytes) bytes, beyond what this file can hold")
            }
            budget -= bytes
            let scalars = try storageScalars(storage)
            if let last = try lastIndex(shape: size, strides: stride, offset: offset), last >= scalars.count {
                throw FormatProblem("size \(size), stride \(stride) and offset \(offset) reach element \(last) of a storage of \(scalars.count)")
            }
            if count == 0 { return Tensor(zeros: size) }
            if stride == Tensor.strides(of: size) {  // contiguous: one slice
                return Tensor(shape: size, scalars: Array(scalars[offset..<offset + count]))
            }
            return Tensor(shape: size, scalars: scalars.withUnsafeBufferPointer { gather($0, shape: size, strides: stride, offset: offset) })
        }
    }

    private mutating func storageScalars(_ storage: PickleStorage) throws -> [Float] {
        let cacheKey = "\(storage.key) \(storage.type)"
        if let cached = decoded[cacheKey] { return cached }
        let scalars = try read(storage)
        decoded[cacheKey] = scalars
        return scalars
    }
}

/// The tensors of a state dict: the top-level dict's tensors, or those of its
/// "state_dict", "model_state_dict" or "model" entry when the top level holds none.
func stateDict(in top: PickleValue) throws -> [String: Tensor] {
    guard case .dict(let dict) = top else {
        throw FormatProblem("holds \(top.kind), not a state dict", expected: "a dict of tensors")
    }
    func tensors(of dict: PickleDict) -> [String: Tensor] {
        var result: [String: Tensor] = [:]
        for (key, value) in dict.entries {
            if case .string(let name) = key, case .tensor(let tensor) = value { result[name] = tensor }
        }
        return result
    }
    let direct = tensors(of: dict)
    if !direct.isEmpty { return direct }
    for key in ["state_dict", "model_state_dict", "model"] {
        if case .dict(let inner)? = dict[key] {
            let found = tensors(of: inner)
            if !found.isEmpty { return found }
        }
    }
    let keys = dict.entries.prefix(12).map { entry -> String in
        if case .string(let s) = entry.key { return "'\(s)'" }
        return entry.key.kind
    }
    throw FormatProblem("holds no tensors at its top level and no 'state_dict' or 'model' entry with tensors (keys: \(keys.joined(separator: ", ")))",
                        expected: "a state dict, or a checkpoint dict with a 'state_dict' entry")
}
