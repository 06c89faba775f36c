import Engine
import Foundation
@testable import Models
import XCTest

/// A network file's input spec comes from whoever wrote the file: every field is checked where
/// it is read, and a spec that lies is refused with the file and the field.
final class InputSpecValidationTests: XCTestCase {
    /// The fashion network saved with its spec changed by `lie`, as a crafted file would hold it.
    private func hostile(_ name: String, _ lie: (inout InputSpec) -> Void) throws -> String {
        let folder = try temporaryFolder(for: self)
        let net = try Network.fashion(seed: 1)
        var spec = try XCTUnwrap(net.spec)
        lie(&spec)
        net.spec = spec
        let path = folder.appendingPathComponent(name).path
        try NetworkFiles.save(net, to: path)
        return path
    }

    func testEmptyMeanIsRefused() throws {
        let path = try hostile("empty-mean.safetensors") { $0.mean = [] }
        assertFileError(try NetworkFiles.load(path), mentions: [path, "'mean' has 0 values", "1 value"])
    }

    func testZeroStdIsRefused() throws {
        let path = try hostile("zero-std.safetensors") { $0.std = [0] }
        assertFileError(try NetworkFiles.load(path), mentions: [path, "'std' holds 0.0", "above 0"])
        let negative = try hostile("negative-std.safetensors") { $0.std = [-0.5] }
        assertFileError(try NetworkFiles.load(negative), mentions: ["'std' holds -0.5"])
    }

    func testStdOfTheWrongLengthIsRefused() throws {
        let path = try hostile("long-std.safetensors") { $0.std = [0.3, 0.3] }
        assertFileError(try NetworkFiles.load(path), mentions: [path, "'std' has 2 values for 1 channel"])
    }

    func testNegativeHeightIsRefused() throws {
        let path = try hostile("negative-height.safetensors") { $0.height = -28 }
        assertFileError(try NetworkFiles.load(path), mentions: [path, "'height' is -28", "0 (any size) to 32768"])
    }

    func testHugeSidesAreRefusedAtOnce() throws {
        let path = try hostile("huge.safetensors") { $0.height = 1 << 40; $0.width = 1 << 40 }
        let start = Date()
        assertFileError(try NetworkFiles.load(path), mentions: [path, "'height' is 1099511627776"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        // Within the side limit but beyond memory: refused with the size asked for and the limit.
        let saved = MemoryLimit.bytes
        MemoryLimit.bytes = 4 << 20
        defer { MemoryLimit.bytes = saved }
        let big = try hostile("big.safetensors") { $0.height = 28_000; $0.width = 28_000 }
        assertFileError(try NetworkFiles.load(big), mentions: [big, "shape [1, 28000, 28000] needs 2.9 GB", "at most 4.0 MB"])
    }

    func testASpecTheNetworkCannotTakeIsRefused() throws {
        // The fashion network's linear layer takes 32·7·7 values: a 40 × 40 input gives 32·10·10.
        let path = try hostile("wrong-size.safetensors") { $0.height = 40; $0.width = 40 }
        assertFileError(try NetworkFiles.load(path), mentions: [path, "size [1, 1, 40, 40] does not fit the network"])
    }

    func testClassListOfTheWrongLengthIsRefused() throws {
        let path = try hostile("classes.safetensors") { $0.classNames = ["cat", "dog", "bird"] }
        assertFileError(try NetworkFiles.load(path), mentions: [path, "'classNames' lists 3 names, but the network gives 10 scores"])
    }

    func testAnHonestSpecLoads() throws {
        let path = try hostile("honest.safetensors") { _ in }
        XCTAssertEqual(try NetworkFiles.load(path).spec, try Network.fashion().spec)
        // One value for all channels, and no size (any size), are honest too.
        let any = try hostile("any-size.safetensors") { $0.height = 0; $0.width = 0; $0.classNames = [] }
        XCTAssertEqual(try NetworkFiles.load(any).spec?.height, 0)
    }

    func testEveryProblemIsFoundWithoutAFile() {
        let good = InputSpec(channels: 3, height: 224, width: 224, mean: [0.5, 0.5, 0.5], std: [0.2], classNames: ["a", "b"])
        XCTAssertNil(good.problem(scores: 2))
        var s = good; s.channels = 0
        XCTAssertEqual(s.problem(scores: nil)?.problem, "the input spec's 'channels' is 0")
        s = good; s.mean = [0.5, 0.5]
        XCTAssertEqual(s.problem(scores: nil)?.problem, "the input spec's 'mean' has 2 values for 3 channel(s)")
        s = good; s.std = [.infinity]
        XCTAssertEqual(s.problem(scores: nil)?.problem, "the input spec's 'std' holds inf at index 0")
        s = good; s.width = 0
        XCTAssertEqual(s.problem(scores: nil)?.problem, "the input spec's height is 224 and its width 0")
        XCTAssertEqual(good.problem(scores: 1000)?.expected, "1000 class names, or none")
    }
}
