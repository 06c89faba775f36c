// Reading and writing image files. An image is a tensor in display space: values in
// [0, 1], shape [C, H, W] with C = 1 (gray), 2 (gray and alpha), 3 (RGB) or 4 (RGBA).
import Engine
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An image file that could not be read or written: which file, and what was wrong.
public struct ImageFileError: Error, Equatable, CustomStringConvertible {
    /// The file, as the user named it.
    public var path: String
    /// What was wrong, in words.
    public var reason: String

    /// An error about the file at `path`.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    /// "path: reason", the form compilers and most command-line tools use.
    public var description: String { "\(path): \(reason)" }
}

/// The file formats an image can be read from, recognised by their first bytes.
public enum ImageFormat: String, CaseIterable, Sendable {
    case png = "PNG"
    case jpeg = "JPEG"

    /// The first bytes of every file of this format.
    public var signature: [UInt8] {
        switch self {
        case .png: return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        case .jpeg: return [0xFF, 0xD8, 0xFF]
        }
    }

    /// The format whose signature starts `bytes`, if any.
    public static func detect(_ bytes: [UInt8]) -> ImageFormat? {
        allCases.first { bytes.starts(with: $0.signature) }
    }

    /// The format whose signature `bytes` begins but is too short to complete.
    static func signatureStarted(by bytes: [UInt8]) -> ImageFormat? {
        allCases.first { !bytes.isEmpty && bytes.count < $0.signature.count && $0.signature.starts(with: bytes) }
    }

    /// Formats we recognise but cannot read, so the error can say what the file is.
    static func name(ofOther bytes: [UInt8]) -> String? {
        let signatures: [([UInt8], String)] = [
            (Array("GIF8".utf8), "a GIF image"), (Array("BM".utf8), "a BMP image"),
            ([0x49, 0x49, 0x2A, 0x00], "a TIFF image"), ([0x4D, 0x4D, 0x00, 0x2A], "a TIFF image"),
            (Array("\u{93}NUMPY".unicodeScalars.map { UInt8($0.value) }), "a NumPy array"),
            (Array("PK".utf8), "a zip archive"), (Array("%PDF".utf8), "a PDF document"),
        ]
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) {
            return "a WebP image"
        }
        return signatures.first { bytes.starts(with: $0.0) }?.1
    }
}

/// What to do with an alpha (transparency) channel when reading.
public enum AlphaHandling: Equatable, Sendable {
    /// Drop it: gray stays C = 1, colour C = 3 (what PIL's `convert("RGB")` gives).
    case drop
    /// Keep it as the last channel: gray+alpha is C = 2, RGBA is C = 4.
    case keep
    /// Blend the image onto a uniform background of this gray level (1 = white).
    case composite(onto: Float)
}

/// Reading PNG and JPEG files into image tensors, and writing PNG files.
public enum ImageFile {
    /// Images of more pixels than this are refused from their header, before their pixels are
    /// allocated: 8192 x 8192, or fewer when the memory limit (`MemoryLimit`, CNN_MAX_MEMORY)
    /// does not hold such an image as four float channels.
    public static var maximumPixels: Int { Swift.min(1 << 26, MemoryLimit.bytes / 16) }
    /// What sets `maximumPixels`, for the refusal: the fixed 8192 x 8192, or the memory limit
    /// and the variable that raises it.
    static var pixelLimitPhrase: String {
        if maximumPixels == 1 << 26 { return "8192 x 8192" }
        return "what the memory limit of \(MemoryLimit.describe(MemoryLimit.bytes)) (\(MemoryLimit.origin)) holds as four float channels"
    }
    /// Files larger than this are refused before they are read.
    public static let maximumFileBytes = 1 << 30

    /// Reads a PNG or JPEG file (recognised by its content, not its name) as a [C, H, W]
    /// image with values in [0, 1]. Gray files give C = 1, colour files C = 3; alpha is
    /// dropped unless `alpha` says otherwise. 16-bit PNG samples keep their precision.
    public static func read(_ path: String, alpha: AlphaHandling = .drop) throws -> Tensor {
        try decode(readFileBytes(path), name: path, alpha: alpha)
    }

    /// Decodes the bytes of a PNG or JPEG file; `name` is used in error messages.
    public static func decode(_ bytes: [UInt8], name: String = "image", alpha: AlphaHandling = .drop) throws -> Tensor {
        guard let format = ImageFormat.detect(bytes) else {
            let known = ImageFormat.allCases.map(\.rawValue).joined(separator: " and ")
            if bytes.isEmpty { throw ImageFileError(path: name, reason: "the file is empty") }
            if let started = ImageFormat.signatureStarted(by: bytes) {
                throw ImageFileError(path: name, reason: "the file ends after \(bytes.count) bytes, inside its \(started.rawValue) signature (the file is truncated)")
            }
            if let other = ImageFormat.name(ofOther: bytes) {
                throw ImageFileError(path: name, reason: "this is \(other); images can be read from \(known) files")
            }
            let start = bytes.prefix(8).map { String(format: "%02X", $0) }.joined(separator: " ")
            throw ImageFileError(path: name, reason: "not an image file that can be read (it starts with bytes \(start)); images can be read from \(known) files")
        }
        let decoded: DecodedImage
        switch format {
        case .png: decoded = try DecodedImage(png: bytes, name: name)
        case .jpeg: decoded = try DecodedImage(jpeg: bytes, name: name)
        }
        return decoded.tensor(alpha: alpha)
    }

    /// Writes an image as an 8-bit PNG: [C, H, W] with C = 1 (gray), 2 (gray+alpha),
    /// 3 (RGB) or 4 (RGBA), or [H, W] for gray. Values are clamped to [0, 1] and rounded
    /// to the nearest of 256 levels. The file is written under a temporary name in the
    /// same folder and renamed into place, so a failed or interrupted save never leaves
    /// a broken file and never damages an existing one.
    public static func writePNG(_ image: Tensor, to path: String) throws {
        let bytes: [UInt8]
        do {
            bytes = try encodePNG(image)
        } catch let error as EngineError {
            throw ImageFileError(path: path, reason: error.description)
        }
        try writeFileAtomically(bytes, to: path)
    }

    /// The bytes of an 8-bit PNG file holding `image` (see `writePNG`).
    public static func encodePNG(_ image: Tensor) throws -> [UInt8] {
        let (height, width, channels) = try imageDimensions(image, allowingAlpha: true)
        let samples = try image.interleavedBytes()
        return try PNGEncoder.encode(samples, width: width, height: height, channels: channels)
    }
}

// MARK: - Files

/// The whole content of a file, with an error naming the file when it cannot be read.
func readFileBytes(_ path: String) throws -> [UInt8] {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { throw ImageFileError(path: path, reason: systemReason(errno)) }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { throw ImageFileError(path: path, reason: systemReason(errno)) }
    if (status.st_mode & S_IFMT) == S_IFDIR { throw ImageFileError(path: path, reason: "is a folder, not a file") }
    if status.st_size > ImageFile.maximumFileBytes {
        throw ImageFileError(path: path, reason: "the file has \(status.st_size) bytes, more than the \(ImageFile.maximumFileBytes) an image file may have")
    }
    var bytes = [UInt8]()
    bytes.reserveCapacity(Int(status.st_size))
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw ImageFileError(path: path, reason: systemReason(errno))
        }
        if count == 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return bytes
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and renames it
/// over `path`. rename(2) is atomic, so readers see either the old file or the new one.
func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let folder = url.deletingLastPathComponent().path
    let temporary = folder + "/." + url.lastPathComponent + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"

    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o666)
    guard descriptor >= 0 else {
        let reason = errno == ENOENT ? "the folder \(folder) does not exist" : systemReason(errno)
        throw ImageFileError(path: path, reason: "cannot write: \(reason)")
    }
    func fail(_ code: Int32) -> ImageFileError {
        close(descriptor)
        unlink(temporary)
        return ImageFileError(path: path, reason: "cannot write: \(systemReason(code))")
    }
    var written = 0
    while written < bytes.count {
        let count = bytes.withUnsafeBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            return write(descriptor, base + written, buffer.count - written)
        }
        if count < 0 {
            if errno == EINTR { continue }
            throw fail(errno)
        }
        written += count
    }
    guard fsync(descriptor) == 0 else { throw fail(errno) }
    guard close(descriptor) == 0 else {
        let code = errno
        unlink(temporary)
        throw ImageFileError(path: path, reason: "cannot write: \(systemReason(code))")
    }
    guard rename(temporary, path) == 0 else {
        let code = errno
        unlink(temporary)
        let reason = code == EISDIR ? "a folder of that name exists" : systemReason(code)
        throw ImageFileError(path: path, reason: "cannot write: \(reason)")
    }
}

func systemReason(_ code: Int32) -> String {
    switch code {
    case ENOENT: return "no such file or folder"
    case EACCES, EPERM: return "permission denied"
    case EISDIR: return "is a folder, not a file"
    case ENOSPC: return "no space left on the device"
    default: return String(cString: strerror(code))
    }
}
