import Engine
import Foundation
@testable import Models
import XCTest

final class NumPyTests: XCTestCase {
    func testReadsEveryDtypeNumPyWrote() throws {
        func read(_ name: String) throws -> Tensor { try NumPy.readArray(at: fixture("npy/\(name).npy")) }
        XCTAssertEqual(try read("float32"), ramp([2, 3, 4]))
        XCTAssertEqual(try read("float64"), ramp([3, 2]))
        XCTAssertEqual(try read("float16"), ramp([5]))
        XCTAssertEqual(try read("int64"), Tensor(shape: [2, 3], scalars: [-3, -2, -1, 0, 1, 2]))
        XCTAssertEqual(try read("int32"), Tensor(shape: [4], scalars: [-2, -1, 0, 1]))
        XCTAssertEqual(try read("uint8"), Tensor(shape: [4], scalars: [0, 1, 127, 255]))
        XCTAssertEqual(try read("bool"), Tensor(shape: [2, 2], scalars: [1, 0, 0, 1]))
        XCTAssertEqual(try read("scalar"), Tensor(scalar: 2.5))
        XCTAssertEqual(try read("empty"), Tensor(zeros: [0, 3]))
    }

    func testFortranOrderIsTransposedToRowMajor() throws {
        let header = String(decoding: try fixtureBytes("npy/fortran.npy").prefix(128), as: UTF8.self)
        XCTAssertTrue(header.contains("'fortran_order': True"), "the fixture really is column-major")
        XCTAssertEqual(try NumPy.readArray(at: fixture("npy/fortran.npy")), ramp([2, 3, 4]))
    }

    func testHeaderVersionsTwoAndThree() throws {
        for version in [2, 3] {
            let bytes = try fixtureBytes("npy/float32_v\(version).npy")
            XCTAssertEqual(bytes[6], UInt8(version))
            XCTAssertEqual(try NumPy.readArray(at: fixture("npy/float32_v\(version).npy")), ramp([2, 3, 4]))
        }
    }

    func testReadsStoredAndDeflatedArchives() throws {
        let stored = try NumPy.readArchive(at: fixture("npz/arrays.npz"))
        XCTAssertEqual(Set(stored.keys), ["float32", "int64", "uint8", "bool"])
        XCTAssertEqual(stored["float32"], ramp([2, 3, 4]))
        XCTAssertEqual(stored["bool"], Tensor(shape: [2, 2], scalars: [1, 0, 0, 1]))
        let compressed = try NumPy.readArchive(at: fixture("npz/arrays_compressed.npz"))
        XCTAssertEqual(Set(compressed.keys), ["float32", "float64", "int32", "float16"])
        XCTAssertEqual(compressed["float64"], ramp([3, 2]))
        XCTAssertEqual(compressed["float16"], ramp([5]))
        XCTAssertEqual(compressed["int32"], Tensor(shape: [4], scalars: [-2, -1, 0, 1]))
        let zip = try fixtureBytes("npz/arrays_compressed.npz").withUnsafeBytes { try ZipReader($0).entries }
        XCTAssertTrue(zip.allSatisfy { $0.method == 8 }, "the compressed fixture is deflated")
    }

    func testWrittenArrayMatchesNumPyLayoutAndReadsBack() throws {
        let folder = try temporaryFolder(for: self)
        let tensor = Tensor.randn([3, 1, 5], seed: 3)
        let url = folder.appendingPathComponent("x.npy")
        try NumPy.writeArray(tensor, to: url)
        let bytes = try Data(contentsOf: url)
        XCTAssertEqual(Array(bytes.prefix(8)), [0x93] + Array("NUMPY".utf8) + [1, 0])
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0, "data starts 64-byte aligned, as numpy writes")
        let header = String(decoding: bytes[10..<10 + headerLength], as: UTF8.self)
        XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1, 5), }"))
        XCTAssertTrue(header.hasSuffix("\n"))
        XCTAssertEqual(bytes.count, 10 + headerLength + 15 * 4)
        XCTAssertEqual(try NumPy.readArray(at: url), tensor)
        for shape in [[], [7], [0, 2]] {
            let t = Tensor.randn(shape, seed: 9)
            try NumPy.writeArray(t, to: url)
            XCTAssertEqual(try NumPy.readArray(at: url), t, "shape \(shape)")
        }
    }

    func testArchiveRoundTripStoredAndDeflated() throws {
        let folder = try temporaryFolder(for: self)
        let arrays = ["conv.weight": Tensor.randn([2, 1, 3, 3], seed: 1), "conv.bias": Tensor(zeros: [2000]),
                      "scale": Tensor(scalar: 3)]
        for compressed in [false, true] {
            let url = folder.appendingPathComponent("w\(compressed).npz")
            try NumPy.writeArchive(arrays, to: url, compressed: compressed)
            XCTAssertEqual(try NumPy.readArchive(at: url), arrays)
            let entries = try Data(contentsOf: url).withUnsafeBytes { try ZipReader($0).entries }
            XCTAssertEqual(entries.map(\.name).sorted(), ["conv.bias.npy", "conv.weight.npy", "scale.npy"])
            XCTAssertTrue(entries.allSatisfy { $0.method == (compressed ? 8 : 0) })
        }
        XCTAssertLessThan(try Data(contentsOf: folder.appendingPathComponent("wtrue.npz")).count,
                          try Data(contentsOf: folder.appendingPathComponent("wfalse.npz")).count / 4,
                          "2000 zeros deflate well")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted(), ["wfalse.npz", "wtrue.npz"])
    }

    // MARK: - Hostile files

    /// A .npy file with the given header dict text and `dataSize` zero bytes.
    private func npy(_ header: String, dataSize: Int = 0, version: UInt8 = 1) -> Data {
        var data = Data([0x93] + Array("NUMPY".utf8) + [version, 0])
        let text = Data(header.utf8)
        if version == 1 {
            withUnsafeBytes(of: UInt16(text.count).littleEndian) { data.append(contentsOf: $0) }
        } else {
            withUnsafeBytes(of: UInt32(text.count).littleEndian) { data.append(contentsOf: $0) }
        }
        data.append(text)
        data.append(Data(count: dataSize))
        return data
    }

    func testRefusesHugeAndMalformedHeaders() throws {
        let folder = try temporaryFolder(for: self)
        let cases: [(Data, [String])] = [
            (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }", dataSize: 64),
             ["shape [1000000000000]", "needs 3.6 TB", "the memory limit"]),
            (npy("{'descr': '<f8', 'fortran_order': False, 'shape': (10000000000, 10000000000), }"), ["more bytes than can be counted"]),
            (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }"), ["shape holds -1"]),
            (npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", dataSize: 16), ["Python objects"]),
            (npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", dataSize: 16), ["dtype '<c8'", "expected one of", "<f4"]),
            (npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"), ["structured"]),
            (npy("{'descr': '<f4', 'shape': (2,), }"), ["fortran_order"]),
            (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,"), ["ends early"]),
            (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", version: 4), ["version 4.0"]),
            (npy(String(repeating: "(", count: 5000)), ["nests too deeply"]),
            (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (os.system('ls'),), }"), ["'os.system'"]),
            (Data("PK\u{03}\u{04}not an npy".utf8), ["magic"]),
        ]
        for (bytes, phrases) in cases {
            assertFileError(try NumPy.readArray(at: write(bytes, "bad.npy", in: folder)), mentions: phrases)
        }
        var lying = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", dataSize: 8)
        lying[8] = 0xff; lying[9] = 0xff
        assertFileError(try NumPy.readArray(at: write(lying, "long.npy", in: folder)), mentions: ["header length 65535"])
    }

    func testReadsZIP64DirectoryEntries() throws {
        let array = try fixtureBytes("npy/float64.npy")
        var entry = ZipEntrySpec.stored("big.npy", array)
        entry.zip64 = true
        let url = try write(makeZip([.stored("small.npy", array), entry]), "zip64.npz", in: temporaryFolder(for: self))
        XCTAssertEqual(try NumPy.readArchive(at: url), ["small": ramp([3, 2]), "big": ramp([3, 2])])
    }

    /// The deflated payload of an entry of the Python-written compressed archive.
    private func realDeflateStream() throws -> (payload: Data, size: Int, checksum: UInt32) {
        let bytes = try fixtureBytes("npz/arrays_compressed.npz")
        let entry = try XCTUnwrap(try bytes.withUnsafeBytes { try ZipReader($0).entry(named: "float64.npy") })
        return (bytes[entry.dataStart..<entry.dataStart + entry.compressedSize], entry.uncompressedSize, entry.checksum)
    }

    func testRefusesZipBombsAndLyingEntries() throws {
        let folder = try temporaryFolder(for: self)
        let real = try realDeflateStream()
        func entry(size: Int? = nil, payload: Data? = nil, checksum: UInt32? = nil) -> ZipEntrySpec {
            ZipEntrySpec(name: "w.npy", payload: payload ?? real.payload, deflated: true,
                         size: size ?? real.size, checksum: checksum ?? real.checksum)
        }
        XCTAssertEqual(try NumPy.readArchive(at: write(makeZip([entry()]), "ok.npz", in: folder)), ["w": ramp([3, 2])],
                       "the hand-built zip itself is valid")
        let cases: [(Data, [String])] = [
            (makeZip([entry(size: 0xffff_fff0)]), ["'w.npy'", "claims 4294967280 bytes", "zip bomb"]),
            (makeZip([entry(size: 10)]), ["'w.npy'", "inflates to more than the 10 bytes"]),
            (makeZip([entry(payload: real.payload.prefix(real.payload.count / 2))]), ["'w.npy'"]),
            // A stored deflate block that promises 65535 bytes and delivers 10: the inflater must not wait forever.
            (makeZip([entry(size: 65535, payload: Data([0, 0xff, 0xff, 0, 0]) + Data(count: 10))]), ["'w.npy'", "ends early"]),
            (makeZip([entry(checksum: real.checksum ^ 1)]), ["'w.npy'", "CRC-32"]),
            (makeZip([entry(payload: Data(repeating: 0xff, count: 40))]), ["'w.npy'", "corrupt"]),
            (makeZip([.stored("a.npy", Data(count: 8)), ZipEntrySpec(name: "b.npy", payload: Data(count: 8), size: 8,
                                                                     checksum: crc32(Data(count: 8)), sharesBytesWith: 0)]),
             ["'a.npy' and 'b.npy' overlap"]),
            (makeZip([.stored("a.npy", Data(count: 8)), .stored("a.npy", Data(count: 8))]), ["two entries named 'a.npy'"]),
            (makeZip([.stored("a.npy", Data("not numpy".utf8))]), ["array 'a'", "magic"]),
            (Data("just text, not a zip".utf8), ["not a zip archive"]),
        ]
        for (index, (bytes, phrases)) in cases.enumerated() {
            assertFileError(try NumPy.readArchive(at: write(bytes, "bad\(index).npz", in: folder)), mentions: phrases)
        }
    }

    func testFlippedMagicBytesAreNamed() throws {
        let folder = try temporaryFolder(for: self)
        let original = try fixtureBytes("npy/float32.npy")
        for position in 0..<8 {
            var bytes = original
            bytes[position] ^= 0x20
            assertFileError(try NumPy.readArray(at: write(bytes, "m\(position).npy", in: folder)),
                            mentions: [position < 6 ? "magic" : "version"])
        }
        var archive = try fixtureBytes("npz/arrays.npz")
        archive[0] ^= 0x01  // the first local header's signature
        assertFileError(try NumPy.readArchive(at: write(archive, "m.npz", in: folder)), mentions: ["no local header at offset 0"])
    }

    func testEveryTruncationAndFlipIsHandled() throws {
        let folder = try temporaryFolder(for: self)
        for name in ["npy/float32.npy", "npy/fortran.npy", "npy/float32_v3.npy"] {
            assertSurvivesCorruption(try fixtureBytes(name), named: "cut.npy", in: folder) { _ = try NumPy.readArray(at: $0) }
        }
        for name in ["npz/arrays.npz", "npz/arrays_compressed.npz"] {
            assertSurvivesCorruption(try fixtureBytes(name), named: "cut.npz", in: folder) { _ = try NumPy.readArchive(at: $0) }
        }
    }
}
