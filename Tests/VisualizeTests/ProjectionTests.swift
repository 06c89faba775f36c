import Engine
import Imaging
import XCTest
@testable import Visualize

/// Deconvnet and guided backpropagation on `handNetwork`, whose numbers are worked out here.
///
/// Forward: conv y = [[3, 1, -2, -1], [0, 2, -3, -4]]; ReLU r = [[3, 1, 0, 0], [0, 2, 0, 0]];
/// pool = [3 (switch (0, 0)), 0 (switch (0, 2))]; scores = [2·3 + 1·0, -1·3 + 1·0] = [6, -3].
/// Backward from the pool outputs with signal (a, b): unpooling puts a at (0, 0), b at (0, 2).
/// At the ReLU, (0, 0) had input 3 > 0 and (0, 2) had input -2 < 0, so
///   plain:     (a, 0)                    guided: (max(a, 0), 0)
///   deconvnet: (max(a, 0), max(b, 0))
/// and the convolution's transpose sends a unit v at (i, j) to +v at (i, j) and -v at (i+1, j+1).
final class ProjectionTests: XCTestCase {
    func testTheHandNetworkComputesWhatItsCommentSays() throws {
        let net = try handNetwork()
        let conv = try net(try handImage.reshaped([1, 1, 3, 5]), upTo: "conv")
        XCTAssertEqual(conv.scalars, [3, 1, -2, -1, 0, 2, -3, -4])
        XCTAssertEqual(try net(try handImage.reshaped([1, 1, 3, 5])).scalars, [6, -3])
    }

    func testGuidedBackpropagationOfAClassByHand() throws {
        let net = try handNetwork()
        // Class 0: (a, b) = (2, 1). Guided passes a = 2 (input and signal positive), blocks b
        // (input negative): +2 at (0, 0), -2 at (1, 1).
        XCTAssertEqual(try guided(net, handImage, class: 0), handMap([(0, 0, 2), (1, 1, -2)]))
        // Class 1: (a, b) = (-1, 1). a is negative and b's input was negative: nothing passes,
        XCTAssertEqual(try guided(net, handImage, class: 1), handMap([]))
        // while the true gradient passes a = -1 (its input was positive): |-1| at (0, 0) and (1, 1).
        XCTAssertEqual(try saliency(net, handImage, class: 1), handMap([(0, 0, 1), (1, 1, 1)]))
    }

    func testDeconvnetFromTheScoresByHand() throws {
        let net = try handNetwork()
        // From fc channel 0 (activation 6, the seed): (a, b) = 6·(2, 1) = (12, 6); the deconvnet
        // rule passes both, although (0, 2)'s input was negative: the plain gradient would not.
        let p = try deconv(net, handImage, layer: "fc", channel: 0)
        XCTAssertEqual(p.activation, 6)
        XCTAssertEqual(p.projection, handMap([(0, 0, 12), (1, 1, -12), (0, 2, 6), (1, 3, -6)]))
        // From fc channel 1 (activation -3): (a, b) = -3·(-1, 1) = (3, -3); the deconvnet rule
        // rectifies b = -3 away.
        let q = try deconv(net, handImage, layer: "fc", channel: 1)
        XCTAssertEqual(q.projection, handMap([(0, 0, 3), (1, 1, -3)]))
        // Seeded with 1 instead, (a, b) = (-1, 1): the deconvnet passes only b, guided nothing.
        let input = NetworkInput(net)
        let batch = try input.batch(handImage)
        let unit = try project(input, batch, layer: "fc", channel: 1, position: nil, rule: .deconvnet, seedWithActivation: false)
        XCTAssertEqual(unit.projection, handMap([(0, 2, 1), (1, 3, -1)]))
        XCTAssertEqual(try guided(net, handImage, layer: "fc", channel: 1).projection, handMap([]))
    }

    func testDeconvnetFromAFeatureMapKeepsOnlyTheStrongestUnit() throws {
        let net = try handNetwork()
        // conv's strongest unit is 3 at (0, 0): the seed 3 goes straight through the filter's transpose.
        let p = try deconv(net, handImage, layer: "conv", channel: 0)
        XCTAssertEqual([p.y, p.x], [0, 0])
        XCTAssertEqual(p.projection, handMap([(0, 0, 3), (1, 1, -3)]))
        // A unit named by position: (1, 2) holds -3, the seed; the deconvnet passes it as it is
        // (no ReLU lies between the image and conv).
        let q = try deconv(net, handImage, layer: "conv", channel: 0, position: (1, 2))
        XCTAssertEqual(q.activation, -3)
        XCTAssertEqual(q.projection, handMap([(1, 2, -3), (2, 3, 3)]))
    }

    func testDeconvnetOnTheDefaultModelStaysInsideTheReceptiveField() throws {
        let net = try defaultModel()
        let image = try sample("sneaker")
        let p = try deconv(net, image, layer: "conv2", channel: 5)
        XCTAssertEqual(p.projection.shape, [1, 28, 28])
        XCTAssertGreaterThan(p.activation, 0)
        // Only pixels in the unit's 14x14 receptive field can receive anything.
        let field = try receptiveField(net, layer: "conv2")
        let region = field.region(y: p.y, x: p.x)
        var inside: Float = 0
        for y in 0..<28 { for x in 0..<28 {
            let v = abs(p.projection.scalars[y * 28 + x])
            if y >= region.top && y < region.top + region.height && x >= region.left && x < region.left + region.width {
                inside += v
            } else {
                XCTAssertEqual(v, 0, "pixel (\(y), \(x)) lies outside the receptive field")
            }
        }}
        XCTAssertGreaterThan(inside, 0)
        XCTAssertEqual(p.picture.shape, [1, 28, 28])
        XCTAssertLessThanOrEqual(p.picture.max(), 1)
        XCTAssertGreaterThanOrEqual(p.picture.min(), 0)
    }

    func testWrongLayersChannelsAndPositionsAreErrorsThatSayWhy() throws {
        let net = try defaultModel()
        let image = try sample("sneaker")
        XCTAssertThrowsError(try deconv(net, image, layer: "conv3", channel: 0)) { e in
            XCTAssertTrue("\(e)".contains("did you mean 'conv"), "\(e)")
        }
        XCTAssertThrowsError(try deconv(net, image, layer: "conv2", channel: 32)) { e in
            XCTAssertTrue("\(e)".contains("32 channels"), "\(e)")
        }
        XCTAssertThrowsError(try guided(net, image, layer: "conv2", channel: 0, position: (14, 0))) { e in
            XCTAssertTrue("\(e)".contains("outside"), "\(e)")
        }
        XCTAssertThrowsError(try guided(net, image, class: 10)) { e in
            XCTAssertTrue("\(e)".contains("0 to 9"), "\(e)")
        }
        XCTAssertThrowsError(try saliency(net, Tensor(zeros: [3, 32, 32]), class: 0)) { e in
            XCTAssertTrue("\(e)".contains("1 x 28 x 28"), "\(e)")
        }
    }
}
