import XCTest
@testable import Engine

final class TensorTests: XCTestCase {
    func testReshapeInfersOneDimension() throws {
        let t = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Float.init))
        XCTAssertEqual(try t.reshaped([4, -1]).shape, [4, 6])
        XCTAssertThrowsError(try t.reshaped([5, -1]))
        XCTAssertThrowsError(try t.reshaped([-1, -1]))
    }

    func testCopyOnWriteKeepsValueSemantics() {
        var a = Tensor(zeros: [3])
        let b = a
        a[1] = 5
        XCTAssertEqual(b.scalars, [0, 0, 0])
        XCTAssertEqual(a.scalars, [0, 5, 0])
    }

    func testSeededGeneratorReproducesAndIsNormal() {
        let a = Tensor.randn([10000], seed: 7), b = Tensor.randn([10000], seed: 7)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, Tensor.randn([10000], seed: 8))
        let mean = a.sum() / 10000
        let variance = a.map { ($0 - mean) * ($0 - mean) }.sum() / 10000
        XCTAssertEqual(mean, 0, accuracy: 0.05)
        XCTAssertEqual(variance, 1, accuracy: 0.05)
    }

    func testDidYouMean() {
        XCTAssertEqual(nearest("conv6", in: ["conv1", "conv2", "fc1"]), "conv1")
        XCTAssertNil(nearest("banana", in: ["conv1", "fc1"]))
        // Swapped neighbours are one step, so short names still get their suggestion.
        XCTAssertEqual(editDistance("rleu", "relu"), 1)
        XCTAssertEqual(editDistance("ab", "ba"), 1)
        XCTAssertEqual(editDistance("kitten", "sitting"), 3)
        XCTAssertEqual(editDistance("", "abc"), 3)
        XCTAssertEqual(nearest("rleu", in: ["relu", "sigmoid", "tanh"]), "relu")
        XCTAssertEqual(nearest("Maxpool", in: ["maxpool", "avgpool"]), "maxpool")
    }
}
