import Foundation

/// Reads tensor data that an ONNX model keeps in side files (`data_location = EXTERNAL`, with
/// `external_data` entries location, offset and length).
///
/// A location is a file name relative to the model's folder. Absolute paths, `..` components
/// and symbolic links that resolve outside the folder are refused, so a model file can never
/// make cnnlab read anything but its own weights. Side files are memory-mapped once per load
/// and only the requested byte ranges are touched.
final class ExternalData {
    let folder: URL
    private var files: [String: Data] = [:]

    init(folder: URL) {
        self.folder = folder
    }

    /// Calls `body` with the `expectedCount` bytes the entries point at, after checking the
    /// location, and the offset and length against the side file's size and the tensor's size.
    func withBytes<R>(of entries: [String: String], expectedCount: Int,
                      _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard let location = entries["location"], !location.isEmpty else {
            throw FormatProblem("is stored externally but names no location")
        }
        return try within("external data '\(location)'") {
            let offset = try number(entries["offset"], default: 0, "offset")
            let length = try number(entries["length"], default: expectedCount, "length")
            guard length == expectedCount else {
                throw FormatProblem("has length \(length) but the tensor's dims and type need \(expectedCount) bytes")
            }
            let data = try file(location)
            guard offset <= data.count, length <= data.count - offset else {
                throw FormatProblem("offset \(offset) and length \(length) reach past the end of the \(data.count)-byte file")
            }
            return try data.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + length])) }
        }
    }

    private func number(_ text: String?, default value: Int, _ what: String) throws -> Int {
        guard let text else { return value }
        guard let n = Int(text), n >= 0 else { throw FormatProblem("has \(what) '\(text.prefix(40))'", expected: "a non-negative integer") }
        return n
    }

    /// The side file's bytes, once its location is known to stay inside the model's folder.
    private func file(_ location: String) throws -> Data {
        let characters = Array(location)
        if location.hasPrefix("/") || location.hasPrefix("\\") || (characters.count >= 2 && characters[1] == ":") {
            throw FormatProblem("is an absolute path", expected: "a file name relative to the model's folder")
        }
        if location.contains("\0") { throw FormatProblem("contains a NUL character") }
        if location.split(whereSeparator: { $0 == "/" || $0 == "\\" }).contains("..") {
            throw FormatProblem("climbs out of the model's folder with '..'", expected: "a file name relative to the model's folder")
        }
        guard let root = realPath(folder.path) else { throw FormatProblem("the model's folder cannot be resolved") }
        guard let resolved = realPath(folder.appendingPathComponent(location).path) else {
            throw FormatProblem("does not exist in the model's folder \(root)")
        }
        guard resolved.hasPrefix(root == "/" ? "/" : root + "/") else {
            throw FormatProblem("resolves to \(resolved), outside the model's folder (through a symbolic link)")
        }
        if let cached = files[resolved] { return cached }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isFolder), !isFolder.boolValue else {
            throw FormatProblem("is not a file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: resolved), options: .alwaysMapped)
        } catch {
            throw FormatProblem("cannot be read (\(error.localizedDescription))")
        }
        files[resolved] = data
        return data
    }
}

/// The canonical absolute path with every symbolic link resolved, or nil if it does not exist.
private func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}
