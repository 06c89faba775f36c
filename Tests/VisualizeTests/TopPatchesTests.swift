import Engine
import Foundation
import Imaging
import XCTest
@testable import Visualize

final class TopPatchesTests: XCTestCase {
    /// The top k by a loop over single images: each image's strongest unit of the channel
    /// (first in row-major order), sorted by activation, ties to the earlier image.
    func bruteForce(_ net: Network, layer: String, channel: Int, images: Tensor, k: Int) throws -> [(Int, Float, Int, Int)] {
        var all: [(Int, Float, Int, Int)] = []
        for i in 0..<images.shape[0] {
            let image = Tensor(shape: [1, 1, 28, 28], scalars: Array(images.scalars[(i * 784)..<((i + 1) * 784)]))
            let out = try net(try net.spec?.normalize(image) ?? image, upTo: layer)
            let (h, w) = out.rank == 4 ? (out.shape[2], out.shape[3]) : (1, 1)
            var best = channel * h * w
            for j in (channel * h * w)..<((channel + 1) * h * w) where out.scalars[j] > out.scalars[best] { best = j }
            all.append((i, out.scalars[best], (best - channel * h * w) / w, (best - channel * h * w) % w))
        }
        all.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
        return Array(all.prefix(k))
    }

    func testSameTopKAsALoopOverSingleImages() throws {
        let net = try defaultModel()
        let subset = batchSlice(try fashionTestSet().images, 0..<300)
        for (layer, channel) in [("conv1", 3), ("conv2", 5), ("pool2", 11), ("fc1", 7)] {
            let expected = try bruteForce(net, layer: layer, channel: channel, images: subset, k: 9)
            let got = try topPatches(net, layer: layer, channel: channel, images: subset, k: 9, batchSize: 64)
            XCTAssertEqual(got.patches.map(\.imageIndex), expected.map(\.0), layer)
            XCTAssertEqual(got.patches.map { [$0.y, $0.x] }, expected.map { [$0.2, $0.3] }, layer)
            for (p, e) in zip(got.patches, expected) { XCTAssertEqual(p.activation, e.1, accuracy: 1e-4 * max(1, abs(e.1))) }
            XCTAssertEqual(got.imagesSeen, 300)
        }
    }

    func testPatchesAreTheReceptiveFieldsAndProjectionsTheDeconvnet() throws {
        let net = try defaultModel()
        let images = batchSlice(try fashionTestSet().images, 0..<200)
        let top = try topPatches(net, layer: "conv2", channel: 5, images: images, k: 4)
        XCTAssertEqual(top.receptiveField.height, 14)
        for p in top.patches {
            let image = Tensor(shape: [1, 28, 28], scalars: Array(images.scalars[(p.imageIndex * 784)..<((p.imageIndex + 1) * 784)]))
            // The region is the unit's 14x14 field, moved inside the image where it reaches past an
            // edge (so every patch is 14x14), and the patch is the image there.
            let full = top.receptiveField.region(y: p.y, x: p.x)
            XCTAssertEqual(p.region.top, min(max(full.top, 0), 28 - 14))
            XCTAssertEqual(p.region.left, min(max(full.left, 0), 28 - 14))
            XCTAssertEqual([p.region.height, p.region.width], [14, 14])
            XCTAssertEqual(p.patch.shape, [1, 14, 14])
            XCTAssertEqual(p.patch.scalars[0], image.scalars[p.region.top * 28 + p.region.left])
            // The projection is the deconvnet's, cropped: nothing of it lies outside the field, which the region contains.
            let d = try deconv(net, image, layer: "conv2", channel: 5, position: (p.y, p.x))
            XCTAssertEqual(abs(p.projection.sum()), abs(d.projection.sum()), accuracy: 1e-3 * max(1, abs(d.projection.sum())))
            XCTAssertEqual(d.activation, p.activation, accuracy: 1e-4 * max(1, p.activation))
        }
        let picture = try top.picture(scale: 2)
        XCTAssertEqual(picture.shape[0], 1)
        XCTAssertGreaterThan(picture.shape[2], 2 * 2 * 14)
    }

    func testAllTenThousandTestImagesInUnderThirtySeconds() throws {
        let net = try defaultModel()
        let images = try fashionTestSet().images
        XCTAssertEqual(images.shape[0], 10_000)
        var reports = 0
        let started = Date()
        let top = try topPatches(net, layer: "conv2", channel: 5, images: images, k: 9,
                                 control: LoopControl(progress: { _, _, _ in reports += 1 }))
        let seconds = Date().timeIntervalSince(started)
        print("topPatches over 10,000 images (conv2, channel 5): \(String(format: "%.2f", seconds)) s")
        XCTAssertLessThan(seconds, 30)
        XCTAssertEqual(top.imagesSeen, 10_000)
        XCTAssertEqual(top.patches.count, 9)
        XCTAssertEqual(reports, 40)  // one per batch of 256
        XCTAssertEqual(Set(top.patches.map(\.imageIndex)).count, 9)
        XCTAssertEqual(top.patches.map(\.activation), top.patches.map(\.activation).sorted(by: >))
    }

    func testAStreamingSourceGivesTheSameAnswerAsATensor() throws {
        /// Images made on demand, never all in memory.
        struct Generated: ImageSource {
            let images: Tensor
            var imageCount: Int { images.shape[0] }
            func images(in range: Range<Int>) throws -> Tensor { batchSlice(images, range) }
        }
        let net = try defaultModel()
        let images = batchSlice(try fashionTestSet().images, 500..<700)
        let a = try topPatches(net, layer: "pool1", channel: 2, images: Generated(images: images), k: 5, batchSize: 33)
        let b = try topPatches(net, layer: "pool1", channel: 2, images: images, k: 5)
        XCTAssertEqual(a.patches.map(\.imageIndex), b.patches.map(\.imageIndex))
        XCTAssertThrowsError(try topPatches(net, layer: "pool1", channel: 16, images: images))
        XCTAssertThrowsError(try topPatches(net, layer: "pool1", channel: 0, images: images, k: 0))
        XCTAssertThrowsError(try topPatches(net, layer: "pool1", channel: 0, images: Tensor(zeros: [2, 3, 28, 28])))
    }
}
