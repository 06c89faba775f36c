import Engine
import Foundation
import Imaging
import Script
@testable import Shell
import XCTest

/// Small pictures reach a notebook page and a Jupyter front end enlarged by whole pixels, so a
/// 2x2 tensor is a 160-pixel picture of four crisp squares, not a 16-pixel blur.
final class PictureEnlargementTests: XCTestCase {
    func testASmallPictureIsEnlargedByWholePixelsInThePNGItself() throws {
        let pixels = Tensor(shape: [1, 2, 2], scalars: [0, 1, 1, 0])
        let d = try DisplayData(image: ImageOutput(pixels: pixels))
        XCTAssertEqual([d.width, d.height, d.displayScale], [2, 2, 80])
        let decoded = try ImageFile.decode(try XCTUnwrap(d.png))
        XCTAssertEqual(decoded.shape, [1, 160, 160])
        // Every pixel is one of the four squares' values: no smoothing.
        XCTAssertEqual(decoded.scalars[0], 0)
        XCTAssertEqual(decoded.scalars[79], 0)
        XCTAssertEqual(decoded.scalars[80], 1)
        XCTAssertEqual(decoded.scalars[160 * 80], 1)
        XCTAssertEqual(decoded.scalars[160 * 80 + 80], 0)
        XCTAssertTrue(decoded.scalars.allSatisfy { $0 == 0 || $0 == 1 })
        // Jupyter is told the enlarged size; the page's <img> has it too.
        let size = d.mimeMetadata["image/png"] as? [String: Int]
        XCTAssertEqual(size?["width"], 160)
        XCTAssertEqual(size?["height"], 160)
        let html = NotebookWriter.htmlOutput(.data(d, isResult: false))
        XCTAssertTrue(html.contains("width=\"160\" height=\"160\""), html)
    }

    func testALargePictureIsLeftAsItIs() throws {
        let d = try DisplayData(image: ImageOutput(pixels: Tensor(zeros: [3, 200, 300])))
        XCTAssertEqual(d.displayScale, 1)
        XCTAssertEqual(try ImageFile.decode(try XCTUnwrap(d.png)).shape, [3, 200, 300])
        XCTAssertEqual(DisplayData.enlargement(width: 28, height: 28), 5)
    }
}
