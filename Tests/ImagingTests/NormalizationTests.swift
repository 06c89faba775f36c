import Engine
@testable import Imaging
import XCTest

final class NormalizationTests: XCTestCase {
    func testPresetsMapDisplaySpaceAsDocumented() throws {
        let white = Tensor(repeating: 1, shape: [3, 2, 2])
        let imagenet = try Normalization.imagenet.normalize(white)
        XCTAssertEqual(imagenet[0, 0, 0], (1 - 0.485) / 0.229, accuracy: 1e-5)
        XCTAssertEqual(imagenet[2, 1, 1], (1 - 0.406) / 0.225, accuracy: 1e-5)
        let ramp = image(channels: 1, height: 1, width: 5) { _, x, _ in Float(x) / 4 }
        XCTAssertEqual(try Normalization.symmetric.normalize(ramp).scalars, [-1, -0.5, 0, 0.5, 1])
        XCTAssertEqual(try Normalization.unit.normalize(ramp), ramp)
    }

    func testDenormalizeUndoesNormalize() throws {
        let batch = Tensor.uniform([2, 3, 4, 5], generator: &generator)
        for preset in Normalization.presets {
            let back = try preset.denormalize(preset.normalize(batch))
            XCTAssertLessThan(maxDifference(back, batch), 1e-6, preset.name)
        }
        let custom = try Normalization(mean: [0.2868], std: [0.3524])
        let gray = Tensor.uniform([1, 6, 6], generator: &generator)
        XCTAssertLessThan(maxDifference(try custom.denormalize(custom.normalize(gray)), gray), 1e-6)
    }

    func testMismatchesAndUnknownNamesAreExplained() throws {
        XCTAssertThrowsError(try Normalization.imagenet.normalize(Tensor(zeros: [1, 4, 4]))) { error in
            XCTAssertTrue("\(error)".contains("3 channels"), "\(error)")
        }
        XCTAssertEqual(try Normalization.named("ImageNet"), .imagenet)
        XCTAssertThrowsError(try Normalization.named("imagnet")) { error in
            XCTAssertTrue("\(error)".contains("did you mean 'imagenet'"), "\(error)")
        }
        XCTAssertThrowsError(try Normalization(mean: [0.5], std: [0]))
    }

    private var generator = SeededGenerator(seed: 11)
}
