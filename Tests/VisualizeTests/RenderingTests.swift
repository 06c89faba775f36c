import Engine
import Foundation
import Imaging
import XCTest
@testable import Visualize

/// Filters, activations, charts, the gradient-check table and class names.
final class RenderingTests: XCTestCase {
    func testFirstLayerFiltersAreGrayTilesScaledUp() throws {
        let net = try defaultModel()
        let picture = try filters(try net.layer(named: "conv1"), scale: 8)
        XCTAssertEqual(picture.shape[0], 1)
        // 16 tiles of 40x40 in a 4x4 grid with 1 pixel of padding: 4·40 + 5 pixels a side.
        XCTAssertEqual(Array(picture.shape.dropFirst()), [165, 165])
        // Each tile is its filter, min-max scaled, in 8x8 blocks: tile 0's first block is w[0, 0, 0, 0] scaled.
        let w = try net.parameter("conv1.weight")
        let first = Array(w.scalars[0..<25])
        let scaled = (first[0] - (first.min() ?? 0)) / ((first.max() ?? 1) - (first.min() ?? 0))
        XCTAssertEqual(picture.scalars[1 * 165 + 1], scaled, accuracy: 1e-6)
        XCTAssertEqual(picture.scalars[8 * 165 + 8], scaled, accuracy: 1e-6)
        XCTAssertThrowsError(try filters(try net.layer(named: "relu1"))) { e in XCTAssertTrue("\(e)".contains("relu"), "\(e)") }
        XCTAssertThrowsError(try filters(net, layer: "conv7")) { e in XCTAssertTrue("\(e)".contains("did you mean"), "\(e)") }
    }

    func testDeeperFiltersAsRowsOfChannelsOrAsMeans() throws {
        let net = try defaultModel()
        let rows = try filters(net, layer: "conv2", scale: 2)
        // 32 filters x 16 input channels: 16 columns of 10-pixel tiles, 32 rows.
        XCTAssertEqual(Array(rows.shape.dropFirst()), [32 * 10 + 33, 16 * 10 + 17])
        let means = try filters(net, layer: "conv2", scale: 2, layout: .mean)
        // 32 tiles in a 6x6 grid.
        XCTAssertEqual(Array(means.shape.dropFirst()), [6 * 10 + 7, 6 * 10 + 7])
        XCTAssertTrue(means.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    func testActivationsShowEveryChannelOrOne() throws {
        let net = try defaultModel()
        let image = try sample("sneaker")
        let maps = try activationMaps(net, image, layer: "conv1")
        XCTAssertEqual(maps.shape, [16, 28, 28])
        XCTAssertEqual(maps, try net(try NetworkInput(net).batch(image), upTo: "conv1").reshaped([16, 28, 28]))
        let grid = try activations(net, image, layer: "conv2", scale: 2)
        XCTAssertEqual(Array(grid.shape.dropFirst()), [6 * 28 + 7, 6 * 28 + 7])
        let one = try activation(net, image, layer: "conv1", channel: 3, scale: 2)
        XCTAssertEqual(one.shape, [1, 56, 56])
        XCTAssertEqual(one.max(), 1)
        XCTAssertEqual(one.min(), 0)
        let units = try activations(net, image, layer: "fc1", scale: 1)
        XCTAssertEqual(units.shape, [1, 2, 256])
        XCTAssertThrowsError(try activation(net, image, layer: "fc1", channel: 0))
        XCTAssertThrowsError(try activation(net, image, layer: "conv1", channel: 16))
    }

    func testALineChartDrawsTheCurveInsideItsAxes() throws {
        let values = (0..<100).map { Float(2 * exp(-Double($0) / 20)) }
        let picture = try plot(values, title: "loss", yLabel: "cross-entropy", width: 400, height: 240)
        XCTAssertEqual(picture.shape, [3, 240, 400])
        // Pixels of the line's colour: many, and more of them left-high than right-high.
        let plane = 240 * 400
        var coloured: [(Int, Int)] = []
        for i in 0..<plane where abs(picture.scalars[i] - 0.12) < 0.01 && abs(picture.scalars[plane + i] - 0.47) < 0.01 {
            coloured.append((i / 400, i % 400))
        }
        XCTAssertGreaterThan(coloured.count, 200)
        let leftTop = coloured.filter { $0.1 < 120 }.map(\.0).min() ?? 0
        let rightTop = coloured.filter { $0.1 > 300 }.map(\.0).min() ?? 0
        XCTAssertLessThan(leftTop, rightTop, "a falling curve starts higher than it ends")
        // Black axes and dark text exist; most of the picture is white.
        XCTAssertGreaterThan(picture.scalars.filter { $0 < 0.2 }.count, 300)
        XCTAssertGreaterThan(picture.scalars.filter { $0 == 1 }.count, picture.count / 2)
        // Several series with a legend; NaNs are gaps; nothing finite is an error.
        let two = try plot(series: [values, values.map { $0 / 2 }], names: ["train", "test"])
        XCTAssertEqual(two.shape, [3, 300, 480])
        XCTAssertNoThrow(try plot([1, .nan, 3]))
        XCTAssertNoThrow(try plot([5]))
        XCTAssertThrowsError(try plot([.nan]))
        XCTAssertThrowsError(try plot(series: [values], names: ["a", "b"]))
    }

    func testNiceTicks() {
        XCTAssertEqual(niceTicks(0.13, 1.92), [0, 0.5, 1, 1.5, 2])
        XCTAssertEqual(niceTicks(1, 200, integers: true), [0, 50, 100, 150, 200])
        // A constant is padded by a tenth on each side.
        let flat = niceTicks(3, 3)
        XCTAssertEqual(flat.count, 7)
        XCTAssertEqual(flat.first ?? 0, 2.7, accuracy: 1e-6)
        XCTAssertEqual(flat.last ?? 0, 3.3, accuracy: 1e-6)
        XCTAssertEqual(tickLabel(0.25, step: 0.05), "0.25")
        XCTAssertEqual(tickLabel(150, step: 50), "150")
        XCTAssertEqual(tickLabel(2e-5, step: 1e-5), "2.0e-05")
    }

    func testBarsForPerClassAccuracy() throws {
        let accuracy: [Float] = [0.86, 0.98, 0.88, 0.92, 0.87, 0.98, 0.73, 0.96, 0.98, 0.96]
        let picture = try bars(accuracy, labels: Network.fashionClasses, title: "accuracy per class")
        XCTAssertEqual(picture.shape[0], 3)
        XCTAssertEqual(picture.shape[2], 480)
        // The longest bar (0.98) spans more bar-coloured pixels than the shortest (0.73).
        let (h, w) = (picture.shape[1], picture.shape[2])
        func barPixels(row: Int) -> Int {
            (0..<w).filter { x in abs(picture.scalars[row * w + x] - 0.12) < 0.01 && abs(picture.scalars[h * w + row * w + x] - 0.47) < 0.01 }.count
        }
        let rowHeight = BitmapFont.height() + 7, top = 8 + rowHeight
        let trouser = barPixels(row: top + 1 * rowHeight + 4), shirt = barPixels(row: top + 6 * rowHeight + 4)
        XCTAssertGreaterThan(trouser, shirt)
        XCTAssertEqual(Float(shirt) / Float(trouser), 0.73 / 0.98, accuracy: 0.02)
        XCTAssertThrowsError(try bars([1, 2], labels: ["a"]))
        XCTAssertThrowsError(try bars([]))
    }

    func testGradientCheckTable() throws {
        let x = Tensor.randn([2, 3], seed: 1), w = Tensor.randn([3, 2], seed: 2)
        let results = try checkGradients(at: [x, w]) { try matmul($0[0], $0[1]) }
        let table = gradcheckTable(results, names: ["x", "w"])
        let lines = table.split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        XCTAssertTrue(lines[0].contains("max abs error"))
        XCTAssertTrue(lines[1].hasPrefix("x "))
        XCTAssertTrue(lines[2].hasPrefix("w "))
        XCTAssertTrue(lines[1].hasSuffix("yes"))
        XCTAssertEqual(scientific(0.000123), "1.23e-04")
        XCTAssertEqual(scientific(9.999), "1.00e+01")
        XCTAssertEqual(scientific(0), "0")
    }

    func testClassesByName() throws {
        let net = try defaultModel()
        XCTAssertEqual(try classIndex(named: "sneaker", in: net), 7)
        XCTAssertEqual(try classIndex(named: "Ankle boot", in: net), 9)
        XCTAssertEqual(try classIndex(named: "ankle-boot", in: net), 9)
        XCTAssertEqual(try classIndex(named: "T-shirt/top", in: net), 0)
        XCTAssertEqual(try classIndex(named: "t-shirt", in: net), 0)
        XCTAssertThrowsError(try classIndex(named: "sneakers", in: net)) { e in
            XCTAssertTrue("\(e)".contains("did you mean 'Sneaker'"), "\(e)")
        }
        XCTAssertThrowsError(try classIndex(named: "cat", in: try handNetwork())) { e in
            XCTAssertTrue("\(e)".contains("no class names"), "\(e)")
        }
    }
}
