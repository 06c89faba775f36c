import Engine
import Foundation
@testable import Models
import XCTest

final class SafetensorsTests: XCTestCase {
    func testReadsEveryTypePythonWrote() throws {
        let file = try SafetensorsFile(contentsOf: fixture("safetensors/python.safetensors"))
        XCTAssertEqual(file.metadata, ["architecture": "conv(3, 8) relu"])
        XCTAssertEqual(file.tensors["f32"], ramp([2, 3]))
        XCTAssertEqual(file.tensors["f16"], ramp([4]))
        XCTAssertEqual(file.tensors["bf16"], ramp([2, 2]))
        XCTAssertEqual(file.tensors["f64"], ramp([3]))
        XCTAssertEqual(file.tensors["i64"], Tensor(shape: [4], scalars: [-2, -1, 0, 1]))
        XCTAssertEqual(file.tensors["i32"], Tensor(shape: [3], scalars: [-1, 0, 1]))
        XCTAssertEqual(file.tensors["i8"], Tensor(shape: [3], scalars: [-128, 0, 127]))
        XCTAssertEqual(file.tensors["u8"], Tensor(shape: [3], scalars: [0, 200, 255]))
        XCTAssertEqual(file.tensors["bool"], Tensor(shape: [3], scalars: [1, 0, 1]))
        XCTAssertEqual(file.tensors["scalar"], Tensor(scalar: 1.5))
        XCTAssertEqual(file.storedTypes["bf16"], .bfloat16)
        XCTAssertEqual(file.storedTypes["u8"], .uint8)
        XCTAssertEqual(file.tensors.count, 10)
    }

    func testRoundTripKeepsTensorsAndMetadata() throws {
        let folder = try temporaryFolder(for: self)
        let url = folder.appendingPathComponent("net.safetensors")
        let tensors: [String: Tensor] = [
            "conv1.weight": Tensor.randn([4, 3, 3, 3], seed: 1),
            "conv1.bias": Tensor(shape: [4], scalars: [0, -.infinity, .greatestFiniteMagnitude, -0.0]),
            "scale": Tensor(scalar: 0.125),
            "empty": Tensor(zeros: [0, 5]),
            "naïve \"quoted\" name": Tensor(ones: [2]),
        ]
        let metadata = ["architecture": "conv(3, 4, 3)\nrelu\n", "note": "ünïcode \"and\" \\ slashes"]
        try SafetensorsFile(tensors: tensors, metadata: metadata).write(to: url)
        let back = try SafetensorsFile(contentsOf: url)
        XCTAssertEqual(back.tensors, tensors)
        XCTAssertEqual(back.metadata, metadata)
        XCTAssertEqual(Set(back.storedTypes.values), [.float32])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["net.safetensors"],
                       "the temporary file is renamed into place, none is left behind")
    }

    func testWrittenLayoutFollowsTheFormat() throws {
        let url = try temporaryFolder(for: self).appendingPathComponent("w.safetensors")
        try SafetensorsFile(tensors: ["b": Tensor([1, 2]), "a": Tensor(zeros: [3])], metadata: ["k": "v"]).write(to: url)
        let bytes = try Data(contentsOf: url)
        let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(headerLength % 8, 0, "the data section starts 8-byte aligned")
        XCTAssertEqual(bytes.count, 8 + headerLength + 5 * 4)
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: bytes[8..<8 + headerLength]) as? [String: Any])
        XCTAssertEqual(header["__metadata__"] as? [String: String], ["k": "v"])
        let a = try XCTUnwrap(header["a"] as? [String: Any]), b = try XCTUnwrap(header["b"] as? [String: Any])
        XCTAssertEqual(a["dtype"] as? String, "F32")
        XCTAssertEqual(a["data_offsets"] as? [Int], [0, 12])
        XCTAssertEqual(b["data_offsets"] as? [Int], [12, 20])
        XCTAssertEqual(b["shape"] as? [Int], [2])
        let firstOfB = bytes[8 + headerLength + 12..<8 + headerLength + 16]
        XCTAssertEqual(Array(firstOfB), [0, 0, 0x80, 0x3f], "1.0 as little-endian float32")
    }

    func testOverwritesAnExistingFileAndReportsAMissingFolder() throws {
        let folder = try temporaryFolder(for: self)
        let url = folder.appendingPathComponent("w.safetensors")
        try SafetensorsFile(tensors: ["x": Tensor(zeros: [100])]).write(to: url)
        try SafetensorsFile(tensors: ["y": Tensor([7])]).write(to: url)
        XCTAssertEqual(try SafetensorsFile(contentsOf: url).tensors, ["y": Tensor([7])])
        let nowhere = folder.appendingPathComponent("missing/w.safetensors")
        assertFileError(try SafetensorsFile(tensors: ["y": Tensor([7])]).write(to: nowhere), mentions: ["missing/w.safetensors"])
        assertFileError(try SafetensorsFile(tensors: ["__metadata__": Tensor([7])]).write(to: url), mentions: ["reserved"])
    }

    func testMissingFileSuggestsANearName() throws {
        let folder = try temporaryFolder(for: self)
        try SafetensorsFile(tensors: ["x": Tensor([1])]).write(to: folder.appendingPathComponent("resnet.safetensors"))
        assertFileError(try SafetensorsFile(contentsOf: folder.appendingPathComponent("resnt.safetensors")),
                        mentions: ["no such file", "did you mean 'resnet.safetensors'"])
    }

    // MARK: - Hostile files

    /// A safetensors file with the given JSON header and `dataSize` zero bytes of data.
    private func file(header: String, dataSize: Int = 0) throws -> URL {
        var bytes = Data()
        let json = Data(header.utf8)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(json)
        bytes.append(Data(count: dataSize))
        return try write(bytes, "hostile.safetensors", in: try temporaryFolder(for: self))
    }

    func testRefusesATerabyteTensorBeforeAllocating() throws {
        let url = try file(header: #"{"big":{"dtype":"F32","shape":[262144,1048576],"data_offsets":[0,1099511627776]}}"#, dataSize: 16)
        assertFileError(try SafetensorsFile(contentsOf: url), mentions: ["'big'", "outside the 16-byte data section"])
        let lying = try file(header: #"{"big":{"dtype":"F32","shape":[262144,1048576],"data_offsets":[0,16]}}"#, dataSize: 16)
        assertFileError(try SafetensorsFile(contentsOf: lying), mentions: ["'big'", "needs 1.0 TB", "the memory limit"])
        let overflow = try file(header: #"{"big":{"dtype":"F64","shape":[4294967296,4294967296,4],"data_offsets":[0,16]}}"#, dataSize: 16)
        assertFileError(try SafetensorsFile(contentsOf: overflow), mentions: ["'big'", "more bytes than can be counted"])
    }

    func testRefusesHeadersThatLie() throws {
        var bytes = Data([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])
        bytes.append(Data("{}".utf8))
        let folder = try temporaryFolder(for: self)
        assertFileError(try SafetensorsFile(contentsOf: write(bytes, "long.safetensors", in: folder)),
                        mentions: ["header length 4294967295", "larger than the 2 bytes"])
        assertFileError(try SafetensorsFile(contentsOf: write(Data([1, 2, 3]), "short.safetensors", in: folder)),
                        mentions: ["3 bytes long"])
        assertFileError(try SafetensorsFile(contentsOf: file(header: "{not json")), mentions: ["not valid JSON"])
        assertFileError(try SafetensorsFile(contentsOf: file(header: "[1, 2]")), mentions: ["not a JSON object"])
        assertFileError(try SafetensorsFile(contentsOf: file(header: String(repeating: "[", count: 100_000))),
                        mentions: ["nests deeper"])
    }

    func testRefusesBadEntries() throws {
        let cases: [(String, [String])] = [
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
             ["'a' and 'b' overlap"]),
            (#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, ["'a'", "hold 8 bytes", "needs 12"]),
            (#"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, ["'a'", "shape holds -2"]),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, ["'a'", "outside"]),
            (#"{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, ["'a'", "dtype 'C64'", "expected one of", "BF16"]),
            (#"{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, ["'a'", "no shape"]),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}"#, ["'a'", "data_offsets"]),
            (#"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, ["'a'", "non-negative integers"]),
            (#"{"__metadata__":{"epoch":3}}"#, ["metadata entry 'epoch' is not a string"]),
        ]
        for (header, phrases) in cases {
            assertFileError(try SafetensorsFile(contentsOf: file(header: header, dataSize: 16)), mentions: phrases)
        }
    }

    func testEveryTruncationAndFlipOfARealFileIsHandled() throws {
        let folder = try temporaryFolder(for: self)
        assertSurvivesCorruption(try fixtureBytes("safetensors/python.safetensors"), named: "cut.safetensors",
                                 in: folder) { _ = try SafetensorsFile(contentsOf: $0) }
    }
}
