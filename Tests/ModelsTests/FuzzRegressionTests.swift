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
}
