import Engine
import Foundation

/// Tensors on disk, for exchange with NumPy and PyTorch: one array in a `.npy` file, several
/// named ones in a `.npz` or `.safetensors` file. Every write goes through a temporary file, so
/// a file is written whole or not at all.
public enum TensorFiles {
    /// What `open` found in a file.
    public enum Contents {
        case network(Network)
        /// One array (a `.npy` file).
        case tensor(Tensor)
        /// Named arrays (an `.npz`, a weights-only safetensors file, a PyTorch state dict).
        case tensors([String: Tensor])
    }

    /// A network when the file describes one (a `.onnx` graph, a safetensors file written by
    /// `save(net, path)`), else its tensors.
    public static func open(_ path: String) throws -> Contents {
        let url = URL(fileURLWithPath: path)
        switch try WeightFormat(path: path) {
        case .onnx:
            return .network(try NetworkFiles.load(path))
        case .safetensors:
            let file = try SafetensorsFile(contentsOf: url)
            if file.metadata[NetworkFiles.architectureKey] != nil { return .network(try NetworkFiles.load(path)) }
            return .tensors(file.tensors)
        case .numpy where isSingleArray(path):
            return .tensor(try NumPy.readArray(at: url))
        case .numpy:
            return .tensors(try NumPy.readArchive(at: url))
        case .pytorch:
            return .tensors(try PyTorch.readStateDict(at: url))
        }
    }

    /// The tensor called `name` in a file of named tensors, with the nearest name suggested when
    /// there is none of that name.
    public static func read(_ path: String, named name: String) throws -> Tensor {
        let tensors: [String: Tensor]
        switch try open(path) {
        case .tensors(let t): tensors = t
        case .tensor(let t): tensors = [arrayName(path): t]
        case .network(let net): tensors = net.parameters
        }
        guard let t = tensors[name] else {
            let names = tensors.keys.sorted()
            let hint = nearest(name, in: names).map { "; did you mean '\($0)'?" } ?? ""
            throw ModelFileError(path: path, problem: "holds no tensor named '\(name)'\(hint)",
                                 expected: names.isEmpty ? nil : "one of \(NetworkFiles.list(names))")
        }
        return t
    }

    /// Writes named tensors, by the path's extension: `.npy` (exactly one tensor), `.npz` or
    /// `.safetensors`; always float32, C order.
    public static func write(_ tensors: [String: Tensor], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        switch (path as NSString).pathExtension.lowercased() {
        case "npy":
            guard tensors.count == 1, let only = tensors.first?.value else {
                throw ModelFileError(path: path, problem: "a .npy file holds one array, not \(tensors.count)",
                                     expected: "one tensor, or a .npz or .safetensors file for several")
            }
            try NumPy.writeArray(only, to: url)
        case "npz":
            try checkNames(tensors, path: path)
            try NumPy.writeArchive(tensors, to: url)
        case "safetensors":
            try checkNames(tensors, path: path)
            try SafetensorsFile(tensors: tensors).write(to: url)
        case let ext:
            throw ModelFileError(path: path, problem: "tensors are not written to '.\(ext)' files",
                                 expected: "a name ending in .npy (one tensor), .npz or .safetensors")
        }
    }

    /// Whether the path names a single `.npy` array rather than a `.npz` archive.
    static func isSingleArray(_ path: String) -> Bool {
        let head = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 6)) ?? nil
        return head.map { [UInt8]($0) == [0x93] + Array("NUMPY".utf8) } ?? false
    }

    /// The name one array of a `.npy` file goes by: the file's name without its extension.
    static func arrayName(_ path: String) -> String {
        ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    }

    private static func checkNames(_ tensors: [String: Tensor], path: String) throws {
        for name in tensors.keys where name.isEmpty || name.contains("/") || name.contains("\0") {
            throw ModelFileError(path: path, problem: "cannot store a tensor named '\(name)'",
                                 expected: "non-empty names without '/'")
        }
    }
}
