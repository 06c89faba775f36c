import Engine
import Foundation
@testable import Models
import XCTest

/// Pickle bytes written opcode by opcode, so that hostile pickles are spelled out, never produced
/// by pickling a real object.
struct PickleBytes {
    var data = Data([0x80, 2])  // PROTO 2

    mutating func op(_ bytes: UInt8...) { data.append(contentsOf: bytes) }
    mutating func global(_ module: String, _ name: String) { op(UInt8(ascii: "c")); data.append(Data("\(module)\n\(name)\n".utf8)) }
    mutating func string(_ s: String) {
        op(UInt8(ascii: "X"))
        withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(s.utf8))
    }
    mutating func int(_ i: Int) {
        op(UInt8(ascii: "J"))
        withUnsafeBytes(of: Int32(i).littleEndian) { data.append(contentsOf: $0) }
    }
    mutating func intTuple(_ values: [Int]) { mark(); values.forEach { int($0) }; op(UInt8(ascii: "t")) }
    mutating func mark() { op(UInt8(ascii: "(")) }
    mutating func stop() { op(UInt8(ascii: ".")) }

    /// `{key: _rebuild_tensor_v2(storage("0", FloatStorage, count), offset, size, stride, False, OrderedDict())}`
    static func stateDict(key: String = "w", storageCount: Int, offset: Int = 0, size: [Int], stride: [Int]) -> PickleBytes {
        var p = PickleBytes()
        p.op(UInt8(ascii: "}"))
        p.string(key)
        p.global("torch._utils", "_rebuild_tensor_v2")
        p.mark()
        p.mark(); p.string("storage"); p.global("torch", "FloatStorage"); p.string("0"); p.string("cpu"); p.int(storageCount)
        p.op(UInt8(ascii: "t"), UInt8(ascii: "Q"))  // TUPLE, BINPERSID
        p.int(offset); p.intTuple(size); p.intTuple(stride)
        p.op(0x89)  // NEWFALSE
        p.global("collections", "OrderedDict"); p.op(UInt8(ascii: ")"), UInt8(ascii: "R"))
        p.op(UInt8(ascii: "t"), UInt8(ascii: "R"), UInt8(ascii: "s"))  // TUPLE, REDUCE, SETITEM
        p.stop()
        return p
    }
}

/// A torch.save-shaped zip: archive/data.pkl, archive/byteorder, archive/data/<key> storages.
func torchZip(_ pickle: Data, storages: [String: Data] = [:]) -> Data {
    var specs: [ZipEntrySpec] = [.stored("archive/data.pkl", pickle), .stored("archive/byteorder", Data("little".utf8))]
    for key in storages.keys.sorted() { specs.append(.stored("archive/data/\(key)", storages[key] ?? Data())) }
    return makeZip(specs)
}

final class PyTorchTests: XCTestCase {
    func testStateDictMatchesWhatPyTorchSaved() throws {
        let loaded = try PyTorch.readStateDict(at: fixture("pytorch/small_cnn.pth"))
        let expected = try NumPy.readArchive(at: fixture("pytorch/small_cnn_expected.npz"))
        XCTAssertEqual(Set(loaded.keys), ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean",
                                          "bn.running_var", "bn.num_batches_tracked", "fc.weight", "fc.bias"])
        XCTAssertEqual(loaded, expected)
        XCTAssertEqual(loaded["conv.weight"]?.shape, [3, 1, 3, 3])
        XCTAssertEqual(loaded["bn.num_batches_tracked"], Tensor(scalar: 1), "an int64 scalar becomes a float")
        XCTAssertNotEqual(loaded["bn.running_mean"], Tensor(zeros: [3]), "the statistics moved during the forward pass")
    }

    func testCheckpointDictYieldsItsStateDict() throws {
        let loaded = try PyTorch.readStateDict(at: fixture("pytorch/checkpoint.pth"))
        XCTAssertEqual(loaded, try PyTorch.readStateDict(at: fixture("pytorch/small_cnn.pth")))
    }

    func testNonContiguousViewsAreGathered() throws {
        let views = try PyTorch.readStateDict(at: fixture("pytorch/views.pth"))
        let base = (0..<24).map(Float.init)  // arange(24).reshape(4, 6)
        XCTAssertEqual(views["transposed"], Tensor(shape: [6, 4], scalars: (0..<24).map { base[($0 % 4) * 6 + $0 / 4] }))
        XCTAssertEqual(views["sliced"], Tensor(shape: [3, 3], scalars: [6, 8, 10, 12, 14, 16, 18, 20, 22]))
        XCTAssertEqual(views["expanded"], Tensor(shape: [2, 3], scalars: [0, 1, 2, 0, 1, 2]))
    }

    func testEveryStorageTypeBecomesFloat() throws {
        let tensors = try PyTorch.readStateDict(at: fixture("pytorch/dtypes.pth"))
        let n: [Float] = [-2, -1, 0, 1, 2, 3]
        for name in ["float16", "bfloat16", "float64", "int32", "int8", "int16", "int64"] {
            XCTAssertEqual(tensors[name], Tensor(shape: [6], scalars: n), name)
        }
        XCTAssertEqual(tensors["uint8"], Tensor(shape: [6], scalars: [0, 1, 2, 3, 4, 5]))
        XCTAssertEqual(tensors["bool"], Tensor(shape: [6], scalars: [0, 0, 0, 1, 1, 1]))
    }

    /// torch.save also writes a ZIP64 end record; with the classic record's fields saturated,
    /// as in archives past 4 GB or 65535 entries, the directory must be found through it.
    func testFindsTheDirectoryThroughTheZIP64Record() throws {
        var bytes = try fixtureBytes("pytorch/small_cnn.pth")
        let end = bytes.count - 22
        XCTAssertEqual(Array(bytes[end..<end + 4]), [0x50, 0x4b, 5, 6], "the classic end record closes the file")
        for i in 8..<20 { bytes[end + i] = 0xff }
        let url = try write(bytes, "zip64.pth", in: temporaryFolder(for: self))
        XCTAssertEqual(try PyTorch.readStateDict(at: url), try PyTorch.readStateDict(at: fixture("pytorch/small_cnn.pth")))
    }

    func testHandBuiltStateDictLoads() throws {
        let storage = Tensor([1, 2, 3, 4, 5, 6]).withUnsafeBufferPointer { Data(buffer: $0) }
        let url = try write(torchZip(PickleBytes.stateDict(storageCount: 6, offset: 1, size: [2, 2], stride: [1, 2]).data,
                                     storages: ["0": storage]), "hand.pth", in: temporaryFolder(for: self))
        XCTAssertEqual(try PyTorch.readStateDict(at: url), ["w": Tensor(shape: [2, 2], scalars: [2, 4, 3, 5])])
    }

    // MARK: - Hostile files

    func testRefusesCodeExecutionAndNamesTheGlobal() throws {
        let folder = try temporaryFolder(for: self)
        let witness = folder.appendingPathComponent("executed")
        var system = PickleBytes()
        system.global("os", "system"); system.string("touch \(witness.path)"); system.op(0x85, UInt8(ascii: "R")); system.stop()
        assertFileError(try PyTorch.readStateDict(at: write(torchZip(system.data), "system.pth", in: folder)),
                        mentions: ["refuses the global 'os.system'", "nothing in a weight file is ever executed", "expected only the globals of a state dict"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: witness.path), "nothing ran")

        var eval = PickleBytes()  // STACK_GLOBAL spelling, protocol 4
        eval.data = Data([0x80, 4, 0x8c, 8]) + Data("builtins".utf8) + Data([0x8c, 4]) + Data("eval".utf8) + Data([0x93])
        eval.string("1"); eval.op(0x85, UInt8(ascii: "R")); eval.stop()
        assertFileError(try PyTorch.readStateDict(at: write(torchZip(eval.data), "eval.pth", in: folder)),
                        mentions: ["'builtins.eval'"])
        var popen = PickleBytes()
        popen.global("subprocess", "Popen"); popen.stop()
        assertFileError(try PyTorch.readStateDict(at: write(torchZip(popen.data), "popen.pth", in: folder)),
                        mentions: ["'subprocess.Popen'"])
        var model = PickleBytes()
        model.global("__torch__.MyNet", "MyNet"); model.stop()
        assertFileError(try PyTorch.readStateDict(at: write(torchZip(model.data), "model.pth", in: folder)),
                        mentions: ["TorchScript or whole-model file", "state_dict()"])
    }

    func testRefusesMalformedPickles() throws {
        let folder = try temporaryFolder(for: self)
        func pickle(_ bytes: [UInt8]) -> Data { Data([0x80, 2] + bytes) }
        var mutate = PickleBytes()  // (dict,) then a SETITEM on that dict
        mutate.mark(); mutate.op(UInt8(ascii: "}"), UInt8(ascii: "q"), 0, UInt8(ascii: "t"), UInt8(ascii: "h"), 0)
        mutate.string("k"); mutate.int(1); mutate.op(UInt8(ascii: "s")); mutate.stop()
        let cases: [(Data, [String])] = [
            (pickle([UInt8(ascii: "h"), 5, UInt8(ascii: ".")]), ["memo entry 5, which was never stored", "at byte 2"]),
            (pickle([UInt8(ascii: "j"), 0, 0, 0, 1, UInt8(ascii: ".")]), ["memo entry 16777216"]),
            (pickle([UInt8(ascii: ".")]), ["pops an empty stack"]),
            (pickle([UInt8(ascii: "t"), UInt8(ascii: ".")]), ["no MARK"]),
            (pickle([UInt8(ascii: "K"), 1]), ["without a STOP"]),
            (pickle(Array("I1\n.".utf8)), ["opcode 0x49 'I'", "not one a state dict needs"]),
            (pickle([UInt8(ascii: "X"), 0xff, 0xff, 0xff, 0x7f]), ["ends early"]),
            (pickle([0x8a, 9] + [UInt8](repeating: 1, count: 9) + [UInt8(ascii: ".")]), ["does not fit in 64 bits"]),
            (pickle([UInt8(ascii: ")")] + [UInt8](repeating: 0x85, count: 100_000) + [UInt8(ascii: ".")]), ["deeper than 100"]),
            (pickle([UInt8(ascii: "]"), UInt8(ascii: ".")]), ["holds a list, not a state dict"]),
            (pickle([UInt8(ascii: "K"), 3, UInt8(ascii: "K"), 4, UInt8(ascii: "a"), UInt8(ascii: ".")]), ["appends to an int"]),
            (mutate.data, ["changes a dict after nesting it"]),
            (pickle([0x80, 9, UInt8(ascii: ".")]), ["protocol 9"]),
        ]
        for (index, (bytes, phrases)) in cases.enumerated() {
            assertFileError(try PyTorch.readStateDict(at: write(torchZip(bytes), "bad\(index).pth", in: folder)), mentions: phrases)
        }
        var epoch = PickleBytes()
        epoch.op(UInt8(ascii: "}")); epoch.string("epoch"); epoch.int(3); epoch.op(UInt8(ascii: "s")); epoch.stop()
        assertFileError(try PyTorch.readStateDict(at: write(torchZip(epoch.data), "epoch.pth", in: folder)),
                        mentions: ["no tensors", "keys: 'epoch'"])
    }

    func testRefusesTensorsOutsideTheirStorage() throws {
        let folder = try temporaryFolder(for: self)
        // The limit of a machine with 32 GB of memory, whatever this one has.
        let saved = MemoryLimit.bytes
        MemoryLimit.bytes = 16 << 30
        defer { MemoryLimit.bytes = saved }
        let sixteen = Data(count: 16)
        let cases: [(PickleBytes, [String: Data], [String])] = [
            (.stateDict(storageCount: 4, size: [10], stride: [1]), ["0": sixteen], ["reach element 9 of a storage of 4"]),
            (.stateDict(storageCount: 4, offset: 2, size: [2, 2], stride: [2, 1]), ["0": sixteen], ["reach element 5"]),
            (.stateDict(storageCount: 4, offset: -1, size: [2], stride: [1]), ["0": sixteen], ["offset -1 is negative"]),
            (.stateDict(storageCount: 4, size: [2], stride: [-1]), ["0": sixteen], ["negative step"]),
            (.stateDict(storageCount: 4, size: [2, 2], stride: [1]), ["0": sixteen], ["different lengths"]),
            (.stateDict(storageCount: 1000, size: [2], stride: [1]), ["0": sixteen], ["holds 16 bytes", "1000 elements of float32"]),
            (.stateDict(storageCount: 4, size: [2], stride: [1]), [:], ["storage '0' is missing"]),
            (.stateDict(storageCount: 1, size: [100_000, 100_000], stride: [0, 0]), ["0": sixteen], ["needs 37.3 GB", "the memory limit"]),
            (.stateDict(storageCount: 1, size: [1 << 31 - 1, 1 << 31 - 1, 1 << 31 - 1], stride: [0, 0, 0]), ["0": sixteen], ["more bytes than can be counted"]),
        ]
        for (index, (pickle, storages, phrases)) in cases.enumerated() {
            let url = try write(torchZip(pickle.data, storages: storages), "bad\(index).pth", in: folder)
            assertFileError(try PyTorch.readStateDict(at: url), mentions: ["tensor on storage '0'"] + phrases)
        }
    }

    func testRefusesOtherFormatsClearly() throws {
        let folder = try temporaryFolder(for: self)
        assertFileError(try PyTorch.readStateDict(at: write(Data([0x80, 2, 0x8a, 0x0a]), "legacy.pth", in: folder)),
                        mentions: ["legacy format"])
        assertFileError(try PyTorch.readStateDict(at: write(Data("hello".utf8), "text.pth", in: folder)),
                        mentions: ["not a PyTorch zip"])
        let script = makeZip([.stored("m/constants.pkl", Data([0x80, 2, 0x2e])), .stored("m/code/m.py", Data())])
        assertFileError(try PyTorch.readStateDict(at: write(script, "script.pt", in: folder)), mentions: ["TorchScript"])
        var flipped = try fixtureBytes("pytorch/small_cnn.pth")
        flipped[0] ^= 0x01
        assertFileError(try PyTorch.readStateDict(at: write(flipped, "flipped.pth", in: folder)), mentions: ["not a PyTorch zip"])
        let npz = try fixtureBytes("npz/arrays.npz")
        assertFileError(try PyTorch.readStateDict(at: write(npz, "arrays.pth", in: folder)), mentions: ["no <archive>/data.pkl"])
    }

    func testEveryTruncationAndFlipIsHandled() throws {
        let folder = try temporaryFolder(for: self)
        for name in ["pytorch/small_cnn.pth", "pytorch/views.pth"] {
            assertSurvivesCorruption(try fixtureBytes(name), named: "cut.pth", in: folder) { _ = try PyTorch.readStateDict(at: $0) }
        }
    }

    /// The zip's CRC catches random damage before the unpickler sees it; here the pickle itself is
    /// cut and flipped inside an otherwise valid zip, so every such pickle reaches the unpickler.
    func testEveryTruncatedOrFlippedPickleIsHandled() throws {
        let folder = try temporaryFolder(for: self)
        let original = try fixtureBytes("pytorch/checkpoint.pth")
        let (pickle, storages) = try original.withUnsafeBytes { bytes -> (Data, [String: Data]) in
            let zip = try ZipReader(bytes)
            var storages: [String: Data] = [:]
            for entry in zip.entries where entry.name.hasPrefix("checkpoint/data/") {
                storages[String(entry.name.dropFirst("checkpoint/data/".count))] = try zip.withContents(of: entry) { Data($0) }
            }
            return (try zip.withContents(of: XCTUnwrap(zip.entry(named: "checkpoint/data.pkl"))) { Data($0) }, storages)
        }
        XCTAssertEqual(try PyTorch.readStateDict(at: write(torchZip(pickle, storages: storages), "rebuilt.pth", in: folder)).count, 9)
        var loaded = 0
        var state: UInt64 = 7
        var variants: [Data] = cutPoints(pickle.count).map { pickle.prefix($0) }
        for _ in 0..<400 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            var flipped = pickle
            flipped[Int(state >> 33) % pickle.count] ^= UInt8(truncatingIfNeeded: state >> 20) | 1
            variants.append(flipped)
        }
        for (index, variant) in variants.enumerated() {
            let url = try write(torchZip(variant, storages: storages), "variant.pth", in: folder)
            do {
                _ = try PyTorch.readStateDict(at: url)
                loaded += 1
            } catch let error as ModelFileError {
                XCTAssertTrue(error.problem.contains("pickle") || error.problem.contains("tensor") || error.problem.contains("holds"),
                              "variant \(index): \(error)")
            }
        }
        XCTAssertLessThan(loaded, variants.count / 2, "most damaged pickles are refused")
    }
}
