import Engine
import Foundation
@testable import Imaging
import XCTest

final class TransformTests: XCTestCase {
    private struct ResizeCases: Decodable {
        struct Case: Decodable { var height: Int; var width: Int; var antialias: Bool; var output: String }
        var input: String
        var cases: [Case]
    }

    /// Agreement with torch.nn.functional.interpolate(mode="bilinear", align_corners=False),
    /// antialiased and plain, shrinking, enlarging and both at once.
    func testResizeMatchesTorch() throws {
        let cases = try JSONDecoder().decode(ResizeCases.self, from: Data(contentsOf: URL(fileURLWithPath: fixture("resize-cases.json"))))
        let input = try ImageFile.read(fixture(cases.input))
        XCTAssertEqual(input.shape, [3, 37, 53])
        for c in cases.cases {
            let bytes = try readFileBytes(fixture(c.output))
            let expected = bytes.withUnsafeBytes { raw in
                (0..<(bytes.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
            }
            let resized = try resize(input, height: c.height, width: c.width, antialias: c.antialias)
            XCTAssertEqual(resized.shape, [3, c.height, c.width])
            XCTAssertLessThan(maxDifference(resized, Tensor(shape: [3, c.height, c.width], scalars: expected)), 1e-5, c.output)
        }
    }

    func testAntialiasingAveragesWhatPlainBilinearSkips() throws {
        // Vertical stripes one pixel wide, shrunk three times: plain bilinear samples single
        // stripes (black or white), the antialiased resize stays close to their average.
        let stripes = image(channels: 1, height: 8, width: 63) { _, x, _ in Float(x % 2) }
        let grey = Tensor(repeating: 0.5, shape: [1, 2, 21])
        XCTAssertLessThan(maxDifference(try resize(stripes, height: 2, width: 21), grey), 0.06)
        XCTAssertEqual(maxDifference(try resize(stripes, height: 2, width: 21, antialias: false), grey), 0.5)
    }

    func testResizeKeepsConstantsAndBatches() throws {
        let constant = Tensor(repeating: 0.3, shape: [2, 3, 9, 7])
        for (h, w) in [(4, 3), (20, 30), (9, 2), (1, 1)] {
            let out = try resize(constant, height: h, width: w)
            XCTAssertEqual(out.shape, [2, 3, h, w])
            XCTAssertLessThan(maxDifference(out, Tensor(repeating: 0.3, shape: [2, 3, h, w])), 1e-6)
        }
        XCTAssertEqual(try resize(Tensor(zeros: [40, 60]), shorterSide: 20).shape, [20, 30])
        XCTAssertEqual(try resize(Tensor(zeros: [3, 375, 500]), shorterSide: 256).shape, [3, 256, 341])
        XCTAssertThrowsError(try resize(Tensor(zeros: [5]), height: 2, width: 2))
        XCTAssertThrowsError(try resize(Tensor(zeros: [1, 4, 4]), height: 0, width: 2))
    }

    func testCenterCropTakesTheMiddle() throws {
        let numbered = image(channels: 1, height: 5, width: 6) { _, x, y in Float(y * 6 + x) }
        let crop = try centerCrop(numbered, height: 3, width: 3)
        // Margins 2 and 3: torchvision puts round(1.0) = 1 row above and round(1.5) = 2 columns left.
        XCTAssertEqual(crop.scalars, [8, 9, 10, 14, 15, 16, 20, 21, 22])
        XCTAssertThrowsError(try centerCrop(numbered, height: 6, width: 3)) { error in
            XCTAssertTrue("\(error)".contains("5 x 6"), "\(error)")
        }
    }

    func testUpscaleRepeatsEachPixelAsABlock() throws {
        let filter = Tensor(shape: [1, 2, 2], scalars: [1, 2, 3, 4])
        let big = try upscale(filter, by: 3)
        XCTAssertEqual(big.shape, [1, 6, 6])
        for y in 0..<6 { for x in 0..<6 { XCTAssertEqual(big[0, y, x], filter[0, y / 3, x / 3]) } }
        XCTAssertThrowsError(try upscale(filter, by: 0))
    }
}
