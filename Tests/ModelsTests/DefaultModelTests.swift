import XCTest
@testable import Models
import Engine
import Imaging

/// The bundled default model: a small CNN trained by scripts/train-default-model on Fashion-MNIST.
final class DefaultModelTests: XCTestCase {
    func testReachesNinetyPercentOnTheTenThousandTestImages() throws {
        let net = try NetworkFiles.load(try Bundled.modelPath("fashion"))
        XCTAssertEqual(net.spec?.classNames, Network.fashionClasses)
        let test = try IDXDataset.load(folder: "/usr/share/datasets/fashion-mnist", split: "test")
        let result = try evaluate(net, images: test.images, labels: test.labels)
        XCTAssertGreaterThanOrEqual(result.accuracy, 0.90, "test accuracy \(result.accuracy)")
        XCTAssertEqual(result.perClass.count, 10)
    }

    func testSamplesOfEveryClassAreFoundFromAnyDirectory() throws {
        let previous = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath("/")
        defer { FileManager.default.changeCurrentDirectoryPath(previous) }
        let net = try NetworkFiles.load(try Bundled.modelPath("fashion"))
        XCTAssertEqual(Set(Bundled.samples.keys), Set(Network.fashionClasses.map(Bundled.slug)))
        var right = 0, total = 0
        for (label, name) in Network.fashionClasses.enumerated() {
            for i in 1...(Bundled.samples[Bundled.slug(name)] ?? 0) {
                let image = try ImageFile.read(try Bundled.samplePath(name, index: i))
                XCTAssertEqual(image.shape, [1, 28, 28])
                let logits = try net(try net.spec!.normalize(try image.reshaped([1, 1, 28, 28])))
                if logits.argmax() == label { right += 1 }
                total += 1
            }
        }
        XCTAssertGreaterThanOrEqual(total, 50)
        XCTAssertGreaterThan(Float(right) / Float(total), 0.8)
        XCTAssertEqual(try Bundled.samplePath("Ankle boot", index: 2), try Bundled.samplePath("ankle-boot", index: 2))
        XCTAssertThrowsError(try Bundled.samplePath("sneakers")) { e in XCTAssertTrue("\(e)".contains("did you mean 'sneaker'"), "\(e)") }
        XCTAssertThrowsError(try Bundled.samplePath("sneaker", index: 99))
        XCTAssertThrowsError(try Bundled.modelPath("fashon")) { e in XCTAssertTrue("\(e)".contains("fashion"), "\(e)") }
    }
}
