import Foundation
import ZIPFoundation

/// Reads the zip containers of `.npz` and PyTorch files, checking every size and offset
/// against the file before touching memory.
///
/// The directory is parsed here because ZIPFoundation's reader trusts the directory's sizes
/// and, on Linux, loops forever on a deflate stream cut short by the end of the file. Inflating
/// and checksums still come from ZIPFoundation (`Data.decompress`, `Data.crc32`), fed from a
/// bounded buffer that ends where the entry's compressed bytes end.
struct ZipReader {
    struct Entry {
        var name: String
        var method: UInt16
        var compressedSize: Int
        var uncompressedSize: Int
        var checksum: UInt32
        var dataStart: Int
    }

    let bytes: UnsafeRawBufferPointer
    private(set) var entries: [Entry] = []

    /// Deflate expands at most 1032:1 (a 258-byte match per ~2 bits); a larger claim is a lie.
    static let largestExpansion = 1032

    init(_ bytes: UnsafeRawBufferPointer) throws {
        self.bytes = bytes
        let directory = try ZipReader.findDirectory(bytes)
        var reader = ByteReader(bytes, position: directory.offset)
        var localRanges: [(start: Int, end: Int, name: String)] = []
        var seen = Set<String>()
        for index in 0..<directory.count {
            let entry = try within("zip directory entry \(index)") { try readDirectoryEntry(&reader) }
            guard seen.insert(entry.entry.name).inserted else {
                throw FormatProblem("zip holds two entries named '\(entry.entry.name)'")
            }
            entries.append(entry.entry)
            localRanges.append((entry.localHeader, entry.entry.dataStart + entry.entry.compressedSize, entry.entry.name))
        }
        // Entries that share bytes are how "non-recursive" zip bombs multiply their output.
        localRanges.sort { $0.start < $1.start }
        for (a, b) in zip(localRanges, localRanges.dropFirst()) where b.start < a.end {
            throw FormatProblem("zip entries '\(a.name)' and '\(b.name)' overlap")
        }
    }

    /// Where the central directory starts and how many entries it lists, from the
    /// end-of-central-directory record (and its ZIP64 twin when the fields overflow).
    private static func findDirectory(_ bytes: UnsafeRawBufferPointer) throws -> (offset: Int, count: Int) {
        let notAZip = FormatProblem("is not a zip archive (no end-of-directory record)",
                                    expected: "a zip file, as np.savez and torch.save write")
        guard bytes.count >= 22 else { throw notAZip }
        // The record is 22 bytes plus a comment of at most 65535 bytes, at the very end.
        var recordStart = -1
        for start in stride(from: bytes.count - 22, through: Swift.max(0, bytes.count - 22 - 65535), by: -1)
        where bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self) == UInt32(0x0605_4b50).littleEndian {
            recordStart = start
            break
        }
        guard recordStart >= 0 else { throw notAZip }
        var record = ByteReader(bytes, position: recordStart + 10)
        var count = Int(try record.read(UInt16.self))
        var size = Int(try record.read(UInt32.self))
        var offset = Int(try record.read(UInt32.self))
        if count == 0xffff || size == 0xffff_ffff || offset == 0xffff_ffff, recordStart >= 20 {
            var locator = ByteReader(bytes, position: recordStart - 20)
            if try locator.read(UInt32.self) == 0x0706_4b50 {
                _ = try locator.read(UInt32.self)
                let zip64Record = try locator.read(UInt64.self)
                guard zip64Record <= UInt64(bytes.count) else { throw FormatProblem("ZIP64 directory record lies past the end") }
                var big = ByteReader(bytes, position: Int(zip64Record))
                guard try big.read(UInt32.self) == 0x0606_4b50 else { throw FormatProblem("ZIP64 directory record is missing") }
                try big.skip(28)  // record size, versions, disk numbers, entries on this disk
                let total = try big.read(UInt64.self), bigSize = try big.read(UInt64.self), bigOffset = try big.read(UInt64.self)
                guard total <= UInt64(bytes.count), bigSize <= UInt64(bytes.count), bigOffset <= UInt64(bytes.count) else {
                    throw FormatProblem("ZIP64 directory record claims more than the file holds")
                }
                (count, size, offset) = (Int(total), Int(bigSize), Int(bigOffset))
            }
        }
        // Each directory entry takes at least 46 bytes, which bounds the count by the file.
        guard offset <= bytes.count, size <= bytes.count - offset, count <= size / 46 else {
            throw FormatProblem("zip directory (\(count) entries, \(size) bytes at offset \(offset)) does not fit in the \(bytes.count)-byte file")
        }
        return (offset, count)
    }

    private func readDirectoryEntry(_ reader: inout ByteReader) throws -> (entry: Entry, localHeader: Int) {
        guard try reader.read(UInt32.self) == 0x0201_4b50 else { throw FormatProblem("has no directory signature") }
        try reader.skip(4)
        let flags = try reader.read(UInt16.self)
        let method = try reader.read(UInt16.self)
        try reader.skip(4)
        let checksum = try reader.read(UInt32.self)
        var compressedSize = UInt64(try reader.read(UInt32.self))
        var uncompressedSize = UInt64(try reader.read(UInt32.self))
        let nameLength = Int(try reader.read(UInt16.self))
        let extraLength = Int(try reader.read(UInt16.self))
        let commentLength = Int(try reader.read(UInt16.self))
        try reader.skip(8)
        var localHeader = UInt64(try reader.read(UInt32.self))
        let name = String(decoding: try reader.read(count: nameLength), as: UTF8.self)
        var extra = ByteReader(try reader.read(count: extraLength))
        try reader.skip(commentLength)

        // ZIP64 extra field: the 64-bit values of whichever fields read 0xFFFFFFFF, in this order.
        while extra.remaining >= 4 {
            let id = try extra.read(UInt16.self), length = Int(try extra.read(UInt16.self))
            var field = ByteReader(try extra.read(count: length))
            guard id == 1 else { continue }
            if uncompressedSize == 0xffff_ffff { uncompressedSize = try field.read(UInt64.self) }
            if compressedSize == 0xffff_ffff { compressedSize = try field.read(UInt64.self) }
            if localHeader == 0xffff_ffff { localHeader = try field.read(UInt64.self) }
        }
        return try within("'\(name)'") {
            guard flags & 1 == 0 else { throw FormatProblem("is encrypted") }
            guard method == 0 || method == 8 else {
                throw FormatProblem("uses compression method \(method)", expected: "stored (0) or deflate (8)")
            }
            let fileSize = UInt64(bytes.count)
            guard localHeader <= fileSize, compressedSize <= fileSize, uncompressedSize <= UInt64(Int.max) else {
                throw FormatProblem("has sizes or an offset beyond the \(fileSize)-byte file")
            }
            // Local header: 30 bytes, then its own name and extra field (which may differ from the directory's).
            var local = ByteReader(bytes, position: Int(localHeader))
            guard try local.read(UInt32.self) == 0x0403_4b50 else { throw FormatProblem("has no local header at offset \(localHeader)") }
            try local.skip(22)
            let localName = Int(try local.read(UInt16.self)), localExtra = Int(try local.read(UInt16.self))
            try local.skip(localName + localExtra)
            let dataStart = local.position
            guard Int(compressedSize) <= bytes.count - dataStart else {
                throw FormatProblem("claims \(compressedSize) bytes of data at offset \(dataStart) in a \(bytes.count)-byte file")
            }
            if method == 0, compressedSize != uncompressedSize {
                throw FormatProblem("is stored uncompressed but its sizes differ (\(compressedSize) and \(uncompressedSize))")
            }
            let (limit, overflow) = (Int(compressedSize) + 64).multipliedReportingOverflow(by: ZipReader.largestExpansion)
            if method == 8, !overflow, Int(uncompressedSize) > limit {
                throw FormatProblem("claims \(uncompressedSize) bytes from \(compressedSize) compressed bytes, more than deflate can expand (a zip bomb?)")
            }
            let entry = Entry(name: name, method: method, compressedSize: Int(compressedSize),
                              uncompressedSize: Int(uncompressedSize), checksum: checksum, dataStart: dataStart)
            return (entry, Int(localHeader))
        }
    }

    func entry(named name: String) -> Entry? {
        entries.first { $0.name == name }
    }

    /// Calls `body` with the entry's uncompressed bytes, after checking their size and CRC-32.
    func withContents<R>(of entry: Entry, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try within("zip entry '\(entry.name)'") {
            let stored = UnsafeRawBufferPointer(rebasing: bytes[entry.dataStart..<entry.dataStart + entry.compressedSize])
            if entry.method == 0 {
                try ZipReader.verify(stored, entry)
                return try body(stored)
            }
            let inflated = try ZipReader.inflate(stored, expecting: entry.uncompressedSize)
            return try inflated.withUnsafeBytes { try ZipReader.verify($0, entry); return try body($0) }
        }
    }

    private static func verify(_ contents: UnsafeRawBufferPointer, _ entry: Entry) throws {
        guard contents.count == entry.uncompressedSize else {
            throw FormatProblem("holds \(contents.count) bytes but its directory says \(entry.uncompressedSize)")
        }
        guard let base = contents.baseAddress else { return }
        let view = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: contents.count, deallocator: .none)
        let actual = view.crc32(checksum: 0)
        guard actual == entry.checksum else {
            throw FormatProblem(String(format: "fails its CRC-32 check (stored %08x, computed %08x)", entry.checksum, actual))
        }
    }

    /// Inflates raw deflate data. ZIPFoundation's inflater reads whole `chunk`-sized buffers and
    /// never stops on its own when input runs out, so every chunk it is given is full-sized
    /// (zero-padded past the end) and asking beyond the end is an error; output beyond the
    /// declared size is an error too.
    private static func inflate(_ compressed: UnsafeRawBufferPointer, expecting size: Int) throws -> Data {
        let chunk = 16 * 1024
        var output = Data()
        output.reserveCapacity(Swift.min(size, 1 << 26))
        let provider: Provider = { position, _ in
            guard position >= 0, position < Int64(compressed.count) else {
                throw FormatProblem("deflate stream ends early (truncated?)")
            }
            let start = Int(position), end = Swift.min(compressed.count, start + chunk)
            var piece = Data(UnsafeRawBufferPointer(rebasing: compressed[start..<end]))
            #if !canImport(Compression)
            piece.append(Data(count: chunk - piece.count))  // zlib is told the chunk is full
            #endif
            return piece
        }
        let consumer: Consumer = { piece in
            guard piece.count <= size - output.count else {
                throw FormatProblem("inflates to more than the \(size) bytes its directory says")
            }
            output.append(piece)
        }
        do {
            _ = try Data.decompress(size: Int64(compressed.count), bufferSize: chunk, skipCRC32: true,
                                    provider: provider, consumer: consumer)
        } catch let problem as FormatProblem {
            throw problem
        } catch {
            throw FormatProblem("deflate data is corrupt (\(error))")
        }
        return output
    }
}
