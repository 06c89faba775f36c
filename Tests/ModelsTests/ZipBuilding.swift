import Foundation

/// One entry of a hand-built zip: `payload` is what the file holds (already deflated if
/// `deflated`); `size` and `checksum` are what the directory claims, so tests can make them lie.
struct ZipEntrySpec {
    var name: String
    var payload: Data
    var deflated = false
    var size: Int
    var checksum: UInt32
    var sharesBytesWith: Int?  // index of an earlier entry whose local header this one points at
    var zip64 = false  // the directory gives sizes and offset in a ZIP64 extra field, as past 4 GB

    /// A stored entry that tells the truth.
    static func stored(_ name: String, _ contents: Data) -> ZipEntrySpec {
        ZipEntrySpec(name: name, payload: contents, size: contents.count, checksum: crc32(contents))
    }
}

/// CRC-32 (IEEE, reflected, polynomial 0xEDB88320), as zip uses.
func crc32(_ data: Data) -> UInt32 {
    var crc: UInt32 = 0xffff_ffff
    for byte in data {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xedb8_8320 : crc >> 1 }
    }
    return ~crc
}

/// A zip file built byte by byte.
func makeZip(_ specs: [ZipEntrySpec]) -> Data {
    var file = Data(), directory = Data()
    var offsets: [Int] = []
    func u16(_ v: Int, _ d: inout Data) { withUnsafeBytes(of: UInt16(truncatingIfNeeded: v).littleEndian) { d.append(contentsOf: $0) } }
    func u32(_ v: UInt32, _ d: inout Data) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
    for spec in specs {
        let name = Data(spec.name.utf8)
        let method = spec.deflated ? 8 : 0
        let size = UInt32(truncatingIfNeeded: spec.size)
        let offset = spec.sharesBytesWith.map { offsets[$0] } ?? file.count
        offsets.append(offset)
        if spec.sharesBytesWith == nil {
            u32(0x0403_4b50, &file); u16(20, &file); u16(0, &file); u16(method, &file); u16(0, &file); u16(0, &file)
            u32(spec.checksum, &file); u32(UInt32(spec.payload.count), &file); u32(size, &file)
            u16(name.count, &file); u16(0, &file)
            file.append(name)
            file.append(spec.payload)
        }
        var extra = Data()
        if spec.zip64 {
            u16(1, &extra); u16(24, &extra)
            for value in [spec.size, spec.payload.count, offset] {
                withUnsafeBytes(of: UInt64(value).littleEndian) { extra.append(contentsOf: $0) }
            }
        }
        let saturated: UInt32 = 0xffff_ffff
        u32(0x0201_4b50, &directory); u16(45, &directory); u16(45, &directory); u16(0, &directory); u16(method, &directory)
        u16(0, &directory); u16(0, &directory); u32(spec.checksum, &directory)
        u32(spec.zip64 ? saturated : UInt32(spec.payload.count), &directory); u32(spec.zip64 ? saturated : size, &directory)
        u16(name.count, &directory); u16(extra.count, &directory)
        for _ in 0..<3 { u16(0, &directory) }
        u32(0, &directory); u32(spec.zip64 ? saturated : UInt32(offset), &directory)
        directory.append(name)
        directory.append(extra)
    }
    let directoryOffset = file.count
    file.append(directory)
    u32(0x0605_4b50, &file); u16(0, &file); u16(0, &file); u16(specs.count, &file); u16(specs.count, &file)
    u32(UInt32(directory.count), &file); u32(UInt32(directoryOffset), &file); u16(0, &file)
    return file
}
