import Engine
import Foundation
import XCTest
@testable import Models

/// Inputs the fuzzers found, each refused as it should be.
final class FuzzRegressionTests: XCTestCase {
    private func fixture(_ name: String) -> String {
        Bundle.module.url(forResource: "Fixtures/fuzz/\(name)", withExtension: nil)?.path ?? "missing \(name)"
    }

    /// A 5 KB ONNX file whose Pad makes a [1, 3, 65549, 2337] value (1.8 GB): within the
    /// default limit (half the machine's memory) it is made, and the import goes on to refuse a
    /// later node; under a lower limit it is refused at the Pad, before anything is allocated.
    func testAPadThatAsksForGigabytesIsRefusedUnderTheLimit() throws {
        let saved = MemoryLimit.bytes
        MemoryLimit.bytes = 256 << 20
        defer { MemoryLimit.bytes = saved }
        let start = Date()
        XCTAssertThrowsError(try TensorFiles.open(fixture("pad-to-two-gigabytes.onnx"))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("Pad") && text.contains("memory limit"), text)
            XCTAssertTrue(text.contains("pad-to-two-gigabytes.onnx"), text)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    /// A Pad node with twelve million pads for a 4-D input: refused, naming the count expected.
    func testAPadWithMillionsOfPadsIsRefused() throws {
        XCTAssertThrowsError(try TensorFiles.open(fixture("twelve-million-pads.onnx"))) { error in
            XCTAssertTrue("\(error)".contains("a start and an end for each axis"), "\(error)")
        }
    }

    /// An ONNX initializer whose dims hold a 0 after sizes whose product overflows: empty, yet a
    /// product taken in order overflowed and trapped. Refused, naming the shape.
    func testAnEmptyTensorWhoseOtherSizesOverflowIsRefused() throws {
        XCTAssertThrowsError(try TensorFiles.open(fixture("empty-tensor-overflowing-sizes.onnx"))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("more bytes than can be counted"), text)
            XCTAssertTrue(text.contains("empty-tensor-overflowing-sizes.onnx"), text)
        }
        XCTAssertEqual(try checkedElementCount([1 << 20, 0, 1 << 20]), 0, "an empty tensor whose other sizes multiply: 0")
        XCTAssertThrowsError(try checkedElementCount([1 << 40, 1 << 40, 0]))
        XCTAssertThrowsError(try checkedElementCount([0, 1 << 40, 1 << 40]), "refused whatever the order of the sizes")
    }
}
