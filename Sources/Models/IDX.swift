import CGzip
import Engine
import Foundation

/// IDX files (the format of MNIST and Fashion-MNIST), plain or gzip-compressed.
///
/// Layout: two zero bytes, a type byte (0x08 unsigned byte, 0x09 signed byte, 0x0B int16,
/// 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, each dimension as a
/// big-endian 32-bit integer, then the values, big-endian, row-major.
public enum IDX {
    public struct Error: Swift.Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { "\(path): \(reason)" }
    }

    /// The decoded contents: shape and values as floats (bytes stay 0...255).
    public static func read(_ path: String) throws -> Tensor {
        let bytes = try readMaybeGzip(path)
        return try decode(bytes, path: path)
    }

    public static func decode(_ b: [UInt8], path: String) throws -> Tensor {
        func fail(_ r: String) -> Error { Error(path: path, reason: r) }
        guard b.count >= 4 else { throw fail("too short for an IDX header (\(b.count) bytes)") }
        guard b[0] == 0, b[1] == 0 else { throw fail("not an IDX file (the first two bytes must be zero)") }
        let size: Int
        switch b[2] {
        case 0x08, 0x09: size = 1
        case 0x0B: size = 2
        case 0x0C, 0x0D: size = 4
        case 0x0E: size = 8
        default: throw fail(String(format: "unknown IDX value type 0x%02X (known: 0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32, 0x0D float, 0x0E double)", b[2]))
        }
        let rank = Int(b[3])
        guard rank >= 1 else { throw fail("an IDX file needs at least one dimension") }
        guard b.count >= 4 + 4 * rank else { throw fail("truncated header: \(rank) dimensions need \(4 + 4 * rank) bytes") }
        var shape: [Int] = []
        for d in 0..<rank {
            let o = 4 + 4 * d
            shape.append(Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3]))
        }
        let count: Int
        do { count = try checkedElementCount(shape, what: "the header's dimensions") }
        catch let e as SizeLimitError { throw fail(e.description) }
        let header = 4 + 4 * rank
        let (need, overflow) = count.multipliedReportingOverflow(by: size)
        guard !overflow, b.count - header >= need else {
            throw fail("truncated: shape \(shape) needs \(overflow ? Int.max : need) bytes of values, the file has \(b.count - header)")
        }
        let type = b[2]
        let t = Tensor(shape: shape) { out in
            b.withUnsafeBufferPointer { p in
                let base = p.baseAddress! + header
                for i in 0..<count {
                    let q = base + i * size
                    switch type {
                    case 0x08: out[i] = Float(q[0])
                    case 0x09: out[i] = Float(Int8(bitPattern: q[0]))
                    case 0x0B: out[i] = Float(Int16(bitPattern: UInt16(q[0]) << 8 | UInt16(q[1])))
                    case 0x0C: out[i] = Float(Int32(bitPattern: UInt32(q[0]) << 24 | UInt32(q[1]) << 16 | UInt32(q[2]) << 8 | UInt32(q[3])))
                    case 0x0D: out[i] = Float(bitPattern: UInt32(q[0]) << 24 | UInt32(q[1]) << 16 | UInt32(q[2]) << 8 | UInt32(q[3]))
                    default:
                        var bits: UInt64 = 0
                        for k in 0..<8 { bits = bits << 8 | UInt64(q[k]) }
                        out[i] = Float(Double(bitPattern: bits))
                    }
                }
            }
        }
        return t
    }

    /// A file's bytes, inflated when it is gzip-compressed (by its magic, not its name).
    static func readMaybeGzip(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Error(path: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 2, bytes[0] == 0x1F, bytes[1] == 0x8B else { return bytes }
        return try gunzip(bytes, path: path)
    }

    /// Inflates gzip data with zlib, refusing output beyond the memory limit.
    static func gunzip(_ input: [UInt8], path: String, limit: Int = MemoryLimit.bytes) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw Error(path: path, reason: "zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var status: Int32 = Z_OK
        try input.withUnsafeBufferPointer { inp in
            stream.next_in = UnsafeMutablePointer(mutating: inp.baseAddress)
            stream.avail_in = uInt(inp.count)
            repeat {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { out in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(out.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return out.count - Int(stream.avail_out)
                }
                guard status == Z_OK || status == Z_STREAM_END else {
                    throw Error(path: path, reason: "corrupt gzip data (zlib status \(status))")
                }
                output.append(contentsOf: chunk[0..<produced])
                guard output.count <= limit else { throw Error(path: path, reason: "decompresses to more than \(MemoryLimit.describe(limit)); expected \(MemoryLimit.phrase)") }
                if produced == 0 && stream.avail_in == 0 && status != Z_STREAM_END {
                    throw Error(path: path, reason: "truncated gzip data")
                }
            } while status != Z_STREAM_END
        }
        return output
    }
}

/// A labelled image set from a folder of IDX files: images [N, 1, H, W] scaled to [0, 1], labels.
public struct IDXDataset {
    public let images: Tensor
    public let labels: [Int]
    public var count: Int { labels.count }

    /// Reads `split` ("train" or "test") from a folder holding MNIST-style files
    /// (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-... for test).
    public static func load(folder: String, split: String = "train", limit: Int? = nil) throws -> IDXDataset {
        let prefixes: [String]
        switch split {
        case "train": prefixes = ["train"]
        case "test": prefixes = ["t10k", "test"]
        default: throw IDX.Error(path: folder, reason: "unknown split '\(split)'; splits are train and test")
        }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        guard !files.isEmpty else { throw IDX.Error(path: folder, reason: "no such folder, or it is empty") }
        func find(_ kind: String) throws -> String {
            for p in prefixes {
                for suffix in ["", ".gz"] {
                    let candidates = files.filter { $0 == "\(p)-\(kind)\(suffix)" || ($0.hasPrefix("\(p)-\(kind)-idx") && $0.hasSuffix("ubyte\(suffix)")) }
                    if let f = candidates.first { return folder + "/" + f }
                }
            }
            throw IDX.Error(path: folder, reason: "no \(split) \(kind) file (looked for \(prefixes[0])-\(kind)-idx*-ubyte[.gz]); files here: \(files.sorted().joined(separator: ", "))")
        }
        let imagePath = try find("images"), labelPath = try find("labels")
        var images = try IDX.read(imagePath)
        let labelTensor = try IDX.read(labelPath)
        guard labelTensor.rank == 1 else { throw IDX.Error(path: labelPath, reason: "labels must be one-dimensional, got \(labelTensor.shape)") }
        guard images.rank == 3 || images.rank == 4 else { throw IDX.Error(path: imagePath, reason: "images must be [N, H, W] or [N, C, H, W], got \(images.shape)") }
        guard images.shape[0] == labelTensor.count else {
            throw IDX.Error(path: imagePath, reason: "\(images.shape[0]) images but \(labelTensor.count) labels in \(labelPath)")
        }
        var n = images.shape[0]
        var labels = labelTensor.scalars.map { Int($0) }
        if let limit, limit < n {
            let per = images.count / n
            images = Tensor(shape: [limit] + Array(images.shape.dropFirst()), scalars: Array(images.scalars[0..<(limit * per)]))
            labels = Array(labels[0..<limit]); n = limit
        }
        let shape = images.rank == 3 ? [n, 1, images.shape[1], images.shape[2]] : images.shape
        let scaled = try images.map { $0 / 255 }.reshaped(shape)
        return IDXDataset(images: scaled, labels: labels)
    }

    /// Images first..<first+count as a batch.
    public func batch(_ indices: ArraySlice<Int>) -> (Tensor, [Int]) {
        let per = images.count / max(count, 1)
        var shape = images.shape
        shape[0] = indices.count
        let t = Tensor(shape: shape) { out in
            images.withUnsafeBufferPointer { src in
                for (j, i) in indices.enumerated() {
                    (out.baseAddress! + j * per).update(from: src.baseAddress! + i * per, count: per)
                }
            }
        }
        return (t, indices.map { labels[$0] })
    }
}
