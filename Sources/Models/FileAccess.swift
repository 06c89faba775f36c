import Engine
import Foundation

/// A file's bytes, memory-mapped so that only the parts a loader touches are read from disk.
func readFileBytes(_ url: URL) throws -> Data {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
        let folder = url.deletingLastPathComponent()
        let siblings = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        if let near = nearest(url.lastPathComponent, in: siblings) {
            throw FormatProblem("no such file; did you mean '\(near)'?")
        }
        throw FormatProblem("no such file")
    }
    if isFolder.boolValue { throw FormatProblem("is a folder, not a file") }
    do {
        return try Data(contentsOf: url, options: .alwaysMapped)
    } catch {
        throw FormatProblem("cannot be read (\(error.localizedDescription))")
    }
}

/// Writes a file through a temporary file in the same folder that is renamed into place,
/// so an interrupted save never leaves a half-written file under the real name.
/// `body` creates and fills the file at the URL it is given.
func writeAtomically(to url: URL, _ body: (URL) throws -> Void) throws {
    let folder = url.deletingLastPathComponent()
    let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial")
    do {
        try body(temporary)
    } catch {
        try? FileManager.default.removeItem(at: temporary)
        throw error
    }
    guard rename(temporary.path, url.path) == 0 else {
        let reason = String(cString: strerror(errno))
        try? FileManager.default.removeItem(at: temporary)
        throw FormatProblem("cannot be written (\(reason))")
    }
}

/// Writes a file through `writeAtomically`, handing `body` an open handle to the temporary file.
func writeAtomically(to url: URL, handle body: (FileHandle) throws -> Void) throws {
    try writeAtomically(to: url) { temporary in
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw FormatProblem("cannot be written (cannot create a file in \(temporary.deletingLastPathComponent().path))")
        }
        let handle = try FileHandle(forWritingTo: temporary)
        do {
            try body(handle)
            try handle.close()
        } catch {
            try? handle.close()
            throw error
        }
    }
}

/// The float32 bytes of a tensor as stored in files (little-endian).
func littleEndianBytes(of tensor: Tensor) -> Data {
    tensor.withUnsafeBufferPointer { Data(buffer: $0) }
}

/// A bounds-checked little-endian reader over bytes. Every read checks what remains first,
/// so a truncated or lying file gives a problem instead of a read past the end.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var position: Int

    init(_ bytes: UnsafeRawBufferPointer, position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    var remaining: Int { bytes.count - position }
    var isAtEnd: Bool { position >= bytes.count }

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        try require(size)
        defer { position += size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: T.self))
    }

    /// The next `count` bytes, without copying.
    mutating func read(count: Int) throws -> UnsafeRawBufferPointer {
        try require(count)
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: bytes[position..<position + count])
    }

    mutating func skip(_ count: Int) throws {
        try require(count)
        position += count
    }

    private func require(_ count: Int) throws {
        guard count >= 0, count <= remaining else {
            throw FormatProblem("ends early: \(count) bytes needed at offset \(position), \(Swift.max(remaining, 0)) left")
        }
    }
}
