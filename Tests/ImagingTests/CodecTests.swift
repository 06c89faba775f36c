import Engine
import Foundation
@testable import Imaging
import XCTest

/// Reading files written by independent encoders (PIL, pypng; see scripts/make-image-fixtures.py,
/// whose pixel formulas are repeated here), round trips, and bad files.
final class CodecTests: XCTestCase {
    func testEightBitGray() throws {
        let read = try ImageFile.read(fixture("gray8.png"))
        XCTAssertEqual(read, image(channels: 1, height: 17, width: 23) { _, x, y in Float((x * 7 + y * 13) % 256) / 255 })
    }

    func testSixteenBitGrayKeepsItsPrecision() throws {
        let read = try ImageFile.read(fixture("gray16.png"))
        let expected = image(channels: 1, height: 11, width: 19) { _, x, y in Float((x * 3001 + y * 7919 + 12345) % 65536) / 65535 }
        XCTAssertEqual(read.shape, [1, 11, 19])
        XCTAssertLessThan(maxDifference(read, expected), 1e-7)
    }

    func testSixteenBitColourAndAlpha() throws {
        func rgb(_ c: Int, _ x: Int, _ y: Int) -> Float {
            let v = [(x * 4099 + y * 257), (x * 1031 + y * 6007 + 999), (x * x * 37 + y * 11), x * y * 311][c] % 65536
            return Float(v) / 65535
        }
        let colour = try ImageFile.read(fixture("rgb16.png"))
        XCTAssertLessThan(maxDifference(colour, image(channels: 3, height: 9, width: 13, rgb)), 1e-7)
        // Unassociated alpha: the colour channels are not multiplied by it.
        let withAlpha = try ImageFile.read(fixture("rgba16.png"), alpha: .keep)
        XCTAssertEqual(withAlpha.shape, [4, 9, 13])
        XCTAssertLessThan(maxDifference(withAlpha, image(channels: 4, height: 9, width: 13, rgb)), 1e-7)
        XCTAssertEqual(try ImageFile.read(fixture("rgba16.png")), colour)
    }

    func testPaletteImagesBecomeColour() throws {
        let palette = (0..<16).map { i in [(i * 53) % 256, (i * 97) % 256, (i * 181) % 256] }
        let read = try ImageFile.read(fixture("palette4.png"))
        XCTAssertEqual(read, image(channels: 3, height: 7, width: 10) { c, x, y in Float(palette[(x + 2 * y) % 16][c]) / 255 })

        let transparent = try ImageFile.read(fixture("palette-alpha.png"), alpha: .keep)
        XCTAssertEqual(transparent, image(channels: 4, height: 7, width: 10) { c, x, y in
            let index = (x + 2 * y) % 16
            return Float(c < 3 ? palette[index][c] : (index * 17) % 256) / 255
        })
    }

    func testAlphaIsDroppedKeptOrComposited() throws {
        let gray = { (x: Int, y: Int) in Float((x * 9 + y * 5) % 256) / 255 }
        let alpha = { (x: Int, y: Int) in Float((x * y * 3 + 40) % 256) / 255 }
        XCTAssertEqual(try ImageFile.read(fixture("gray-alpha.png")), image(channels: 1, height: 8, width: 12) { _, x, y in gray(x, y) })
        XCTAssertEqual(try ImageFile.read(fixture("gray-alpha.png"), alpha: .keep),
                       image(channels: 2, height: 8, width: 12) { c, x, y in c == 0 ? gray(x, y) : alpha(x, y) })
        let onWhite = try ImageFile.read(fixture("gray-alpha.png"), alpha: .composite(onto: 1))
        let expected = image(channels: 1, height: 8, width: 12) { _, x, y in alpha(x, y) * gray(x, y) + (1 - alpha(x, y)) }
        XCTAssertLessThan(maxDifference(onWhite, expected), 1e-6)

        let rgba = try ImageFile.read(fixture("rgba.png"), alpha: .keep)
        XCTAssertEqual(rgba, image(channels: 4, height: 8, width: 12) { c, x, y in
            Float([(x * 11) % 256, (y * 23) % 256, (x * y) % 256, ((x + y) * 8) % 256][c]) / 255
        })
        XCTAssertEqual(try ImageFile.read(fixture("rgba.png")).shape, [3, 8, 12])
    }

    func testOneBitAndInterlacedImages() throws {
        XCTAssertEqual(try ImageFile.read(fixture("gray1.png")),
                       image(channels: 1, height: 5, width: 9) { _, x, y in Float((x + y) % 2) })
        XCTAssertEqual(try ImageFile.read(fixture("interlaced.png")), image(channels: 3, height: 10, width: 11) { c, x, y in
            Float([(x * 5 + y) % 256, (y * 17) % 256, (x * y * 7) % 256][c]) / 255
        })
    }

    /// JPEG decoding agrees with PIL's within two levels of 255 (both use libjpeg; versions differ).
    func testJPEGMatchesPIL() throws {
        for (name, channels) in [("photo.jpg", 3), ("progressive.jpg", 3), ("gray.jpg", 1), ("cmyk.jpg", 3)] {
            let decoded = try ImageFile.read(fixture(name))
            let reference = try ImageFile.read(fixture(name + ".decoded.png"))
            XCTAssertEqual(decoded.shape, [channels, 40, 48], name)
            XCTAssertEqual(decoded.shape, reference.shape, name)
            XCTAssertLessThanOrEqual(maxDifference(decoded, reference), 2.0 / 255 + 1e-6, name)
        }
    }

    func testRoundTripIsExactForEightBitValues() throws {
        let folder = try temporaryFolder(self)
        var generator = SeededGenerator(seed: 3)
        for channels in [1, 2, 3, 4] {
            let original = image(channels: channels, height: 13, width: 21) { _, _, _ in
                Float(generator.next() % 256) / 255
            }
            let path = folder.appendingPathComponent("round-\(channels).png").path
            try ImageFile.writePNG(original, to: path)
            XCTAssertEqual(try ImageFile.read(path, alpha: .keep), original, "\(channels) channels")
        }
        // [H, W] is written as gray.
        let plain = Tensor(shape: [2, 3], scalars: [0, 0.2, 0.4, 0.6, 0.8, 1].map { ($0 * 255).rounded() / 255 })
        try ImageFile.writePNG(plain, to: folder.appendingPathComponent("plain.png").path)
        XCTAssertEqual(try ImageFile.read(folder.appendingPathComponent("plain.png").path).scalars, plain.scalars)
    }

    func testWritingClampsAndRounds() throws {
        let values: [Float] = [-3, 0, 0.5, 1.0 / 255 * 0.49, 1.0 / 255 * 0.51, 1, 7]
        let bytes = try Tensor(shape: [1, 1, 7], scalars: values).interleavedBytes()
        XCTAssertEqual(bytes, [0, 0, 128, 0, 1, 255, 255])
        XCTAssertThrowsError(try ImageFile.encodePNG(Tensor(shape: [1, 1, 1], scalars: [.nan])))
        XCTAssertThrowsError(try ImageFile.encodePNG(Tensor(zeros: [5, 4, 4]))) { error in
            XCTAssertTrue("\(error)".contains("[5, 4, 4]"), "\(error)")
        }
    }

    func testTruncatedFilesThrowInsteadOfCrashing() throws {
        for name in ["rgb16.png", "interlaced.png", "palette4.png", "photo.jpg", "progressive.jpg", "gray.jpg"] {
            let bytes = try readFileBytes(fixture(name))
            let cuts = [0, 1, 4, 9, 20, 40, bytes.count / 3, bytes.count / 2, bytes.count - 20, bytes.count - 3, bytes.count - 1]
            for cut in Set(cuts) where cut >= 0 && cut < bytes.count {
                XCTAssertThrowsError(try ImageFile.decode(Array(bytes[0..<cut]), name: name), "\(name) cut at \(cut)") { error in
                    XCTAssertTrue("\(error)".hasPrefix(name + ":"), "the message names the file: \(error)")
                }
            }
        }
    }

    func testCorruptDataIsReported() throws {
        var bytes = try readFileBytes(fixture("rgb16.png"))
        // Damage the compressed pixels: either the CRC check or the inflater fails.
        for i in stride(from: 60, to: bytes.count - 20, by: 7) { bytes[i] ^= 0x5A }
        XCTAssertThrowsError(try ImageFile.decode(bytes, name: "damaged.png")) { error in
            XCTAssertTrue("\(error)".contains("damaged.png: not a valid PNG file"), "\(error)")
        }
        var jpeg = try readFileBytes(fixture("photo.jpg"))
        jpeg.replaceSubrange(2..<40, with: [UInt8](repeating: 0xFF, count: 38))
        XCTAssertThrowsError(try ImageFile.decode(jpeg, name: "damaged.jpg"))
    }

    func testUnknownFormatsNameTheKnownOnes() throws {
        XCTAssertThrowsError(try ImageFile.decode(Array("hello, world".utf8), name: "notes.png")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix("notes.png:"), message)
            XCTAssertTrue(message.contains("PNG and JPEG"), message)
        }
        XCTAssertThrowsError(try ImageFile.decode(Array("GIF89a....".utf8), name: "cat.gif")) { error in
            XCTAssertTrue("\(error)".contains("GIF"), "\(error)")
        }
        XCTAssertThrowsError(try ImageFile.decode([], name: "empty.png")) { error in
            XCTAssertTrue("\(error)".contains("empty"), "\(error)")
        }
        XCTAssertThrowsError(try ImageFile.read("/nonexistent/cat.png")) { error in
            XCTAssertEqual("\(error)", "/nonexistent/cat.png: no such file or folder")
        }
    }

    func testFormatIsDetectedByContentNotName() throws {
        let folder = try temporaryFolder(self)
        let misnamed = folder.appendingPathComponent("really-a-jpeg.png").path
        try FileManager.default.copyItem(atPath: try fixture("photo.jpg"), toPath: misnamed)
        XCTAssertEqual(try ImageFile.read(misnamed), try ImageFile.read(fixture("photo.jpg")))
    }

    func testSavesAreAtomic() throws {
        let folder = try temporaryFolder(self)
        let path = folder.appendingPathComponent("kept.png").path
        let original = Tensor(repeating: 0.2, shape: [1, 4, 4])
        try ImageFile.writePNG(original, to: path)

        // A failed write (the image cannot be encoded) leaves the old file as it was.
        XCTAssertThrowsError(try ImageFile.writePNG(Tensor(repeating: .nan, shape: [1, 4, 4]), to: path)) { error in
            XCTAssertTrue("\(error)".hasPrefix(path), "\(error)")
        }
        XCTAssertEqual(try ImageFile.read(path), original)

        // A write that fails at the rename (a folder is in the way) removes its temporary file.
        let blocked = folder.appendingPathComponent("blocked.png")
        try FileManager.default.createDirectory(at: blocked, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(at: blocked.appendingPathComponent("inside"), withIntermediateDirectories: false)
        XCTAssertThrowsError(try ImageFile.writePNG(original, to: blocked.path))
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)), ["kept.png", "blocked.png"])

        // Writing into a folder that does not exist says so and leaves nothing behind.
        let missing = folder.appendingPathComponent("no-such-folder/out.png").path
        XCTAssertThrowsError(try ImageFile.writePNG(original, to: missing)) { error in
            XCTAssertTrue("\(error)".contains("does not exist"), "\(error)")
        }
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)), ["kept.png", "blocked.png"])

        // Overwriting replaces the content completely.
        let replacement = Tensor(repeating: 0.8, shape: [3, 2, 5]).map { ($0 * 255).rounded() / 255 }
        try ImageFile.writePNG(replacement, to: path)
        XCTAssertEqual(try ImageFile.read(path), replacement)
    }

    func testInterleavedBytesRoundTrip() throws {
        let bytes: [UInt8] = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 255]
        let tensor = try Tensor(interleavedBytes: bytes, height: 2, width: 2, channels: 3)
        XCTAssertEqual(tensor.shape, [3, 2, 2])
        XCTAssertEqual(tensor[0, 0, 1], 30 / 255)   // red of the second pixel
        XCTAssertEqual(tensor[2, 1, 1], 1)
        XCTAssertEqual(try tensor.interleavedBytes(), bytes)
        XCTAssertThrowsError(try Tensor(interleavedBytes: bytes, height: 2, width: 3, channels: 3))
    }

    func testGrayAndColourConversions() throws {
        let gray = image(channels: 1, height: 2, width: 3) { _, x, y in Float(x + y) / 4 }
        let colour = try toRGB(gray)
        XCTAssertEqual(colour.shape, [3, 2, 3])
        XCTAssertEqual(try toGray(colour).scalars.map { ($0 * 1e5).rounded() }, gray.scalars.map { ($0 * 1e5).rounded() })
        let red = try toGray(image(channels: 3, height: 1, width: 1) { c, _, _ in c == 0 ? 1 : 0 })
        XCTAssertEqual(red.scalars[0], 0.299, accuracy: 1e-6)
        XCTAssertEqual(try toRGB(Tensor(zeros: [4, 2, 2])).shape, [3, 2, 2])
        XCTAssertThrowsError(try toRGB(Tensor(zeros: [5, 2, 2])))
    }
}

extension CodecTests {
    /// A PNG header claiming 100000 x 100000 pixels is refused before 30 GB are allocated.
    func testHugeDimensionsAreRefused() throws {
        var header: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13]
        var chunk = Array("IHDR".utf8)
        for dimension in [UInt32(100_000), UInt32(100_000)] {
            chunk += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: dimension >> $0) }
        }
        chunk += [8, 2, 0, 0, 0]  // 8-bit RGB, deflate, no filter variant, not interlaced
        let crc = crc32(chunk)
        header += chunk + [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: crc >> $0) }
        XCTAssertThrowsError(try ImageFile.decode(header, name: "huge.png")) { error in
            XCTAssertTrue("\(error)".contains("100000 x 100000"), "\(error)")
            XCTAssertTrue("\(error)".contains("(8192 x 8192)"), "the refusal says what is read: \(error)")
            XCTAssertFalse("\(error)".contains("not a valid"), "a large picture is not an invalid one: \(error)")
        }
    }

    /// Under a small memory limit the refusal names the limit and the variable that raises it.
    func testPictureTooLargeForTheMemoryLimitNamesIt() throws {
        let saved = (MemoryLimit.bytes, MemoryLimit.origin)
        defer { (MemoryLimit.bytes, MemoryLimit.origin) = saved }
        (MemoryLimit.bytes, MemoryLimit.origin) = (1 << 20, "CNN_MAX_MEMORY=1M")
        let picture = try ImageFile.encodePNG(Tensor(zeros: [3, 300, 300]))
        XCTAssertThrowsError(try ImageFile.decode(picture, name: "photo.png")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("photo.png") && text.contains("300 x 300"), text)
            XCTAssertTrue(text.contains("65536 pixels"), text)
            XCTAssertTrue(text.contains("memory limit of 1.0 MB (CNN_MAX_MEMORY=1M)"), text)
        }
        (MemoryLimit.bytes, MemoryLimit.origin) = saved
        XCTAssertEqual(try ImageFile.decode(picture).shape, [3, 300, 300], "read under the usual limit")
    }

    /// The CRC-32 that PNG chunks carry (polynomial 0xEDB88320).
    private func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
