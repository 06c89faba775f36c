import Engine
import XCTest
@testable import Visualize

final class SummaryTests: XCTestCase {
    func testTheDefaultModelLayerByLayer() throws {
        let s = try summary(try defaultModel())
        XCTAssertEqual(s.inputShape, [1, 1, 28, 28])
        XCTAssertEqual(s.layers.map(\.name), ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc1", "relu3", "dropout", "fc2"])
        XCTAssertEqual(try s.layer(named: "conv2").outputShape, [1, 32, 14, 14])
        XCTAssertEqual(try s.layer(named: "fc1").outputShape, [1, 128])
        // Parameters: weights and biases.
        XCTAssertEqual(try s.layer(named: "conv1").parameters, 16 * 25 + 16)
        XCTAssertEqual(try s.layer(named: "conv2").parameters, 32 * 16 * 25 + 32)
        XCTAssertEqual(try s.layer(named: "fc1").parameters, 1568 * 128 + 128)
        XCTAssertEqual(s.totalParameters, 416 + 12_832 + 200_832 + 1_290)
        // Multiply-adds: one per weight per output position.
        XCTAssertEqual(try s.layer(named: "conv1").multiplyAdds, 16 * 28 * 28 * 25)
        XCTAssertEqual(try s.layer(named: "conv2").multiplyAdds, 32 * 14 * 14 * 16 * 25)
        XCTAssertEqual(try s.layer(named: "pool1").multiplyAdds, 0)
        // Receptive fields: r_out = r_in + (k-1)·j_in, j_out = j_in·s.
        //   conv1 5x5: r 5, j 1; pool1 2/2: r 6, j 2; conv2 5x5: r 6 + 4·2 = 14, j 2;
        //   pool2: r 14 + 2 = 16, j 4; fc1 over the 7x7 map: r 16 + 6·4 = 40 (all 28 pixels and the padding).
        let expected: [String: (Int, Int, Int)] = ["conv1": (5, 1, -2), "relu1": (5, 1, -2), "pool1": (6, 2, -2),
                                                   "conv2": (14, 2, -6), "pool2": (16, 4, -6), "flatten": (16, 4, -6),
                                                   "fc1": (40, 4, -6), "fc2": (40, 4, -6)]
        for (name, (r, j, start)) in expected {
            let f = try s.layer(named: name).receptiveField
            XCTAssertEqual([f.height, f.width, f.jumpY, f.jumpX, f.top, f.left], [r, r, j, j, start, start], name)
        }
        XCTAssertEqual(try receptiveField(try defaultModel(), layer: "conv2"), try s.layer(named: "conv2").receptiveField)
        XCTAssertThrowsError(try s.layer(named: "conv9"))
    }

    func testTheTableReadsLikeTheLecture() throws {
        let table = try summary(try defaultModel()).table
        let lines = table.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 1 + 1 + 11 + 1)
        XCTAssertTrue(lines[0].hasPrefix("layer"))
        XCTAssertTrue(lines[0].contains("receptive field"))
        let conv2 = try XCTUnwrap(lines.first { $0.hasPrefix("conv2") })
        for cell in ["conv2d", "[1, 32, 14, 14]", "12,832", "2,508,800", "14"] { XCTAssertTrue(conv2.contains(cell), "\(cell) in \(conv2)") }
        XCTAssertEqual(lines.last, "total: 215,370 parameters, 3,024,384 multiply-adds")
        XCTAssertTrue(lines.allSatisfy { !$0.hasSuffix(" ") })
    }

    func testJoinsTakeTheLargestFieldAndStridesAndDilationsCount() throws {
        let net = Network(spec: InputSpec(channels: 1, height: 16, width: 16))
        try net.append("small", LayerRegistry.make("conv2d", ["in": .int(1), "out": .int(2), "kernel": .int(3), "padding": .int(1)]))
        try net.append("large", LayerRegistry.make("conv2d", ["in": .int(1), "out": .int(2), "kernel": .int(5), "padding": .int(2)]), inputs: ["input"])
        try net.append("sum", LayerRegistry.make("add"), inputs: ["small", "large"])
        try net.append("strided", LayerRegistry.make("conv2d", ["in": .int(2), "out": .int(2), "kernel": .int(3), "stride": .int(2), "padding": .int(1)]))
        try net.append("dilated", LayerRegistry.make("conv2d", ["in": .int(2), "out": .int(2), "kernel": .int(3), "dilation": .int(2), "padding": .int(2)]))
        try net.append("gap", LayerRegistry.make("global_avgpool"))
        let s = try summary(net)
        func field(_ name: String) throws -> [Int] {
            let f = try s.layer(named: name).receptiveField
            return [f.height, f.jumpY, f.top]
        }
        XCTAssertEqual(try field("small"), [3, 1, -1])
        XCTAssertEqual(try field("large"), [5, 1, -2])
        XCTAssertEqual(try field("sum"), [5, 1, -2])          // the larger of the two
        XCTAssertEqual(try field("strided"), [7, 2, -3])      // 5 + 2·1, jump 2
        XCTAssertEqual(try field("dilated"), [15, 2, -7])     // 7 + (3-1)·2·2
        XCTAssertEqual(try field("gap"), [15 + 7 * 2, 2, -7]) // all 8 positions of the 8x8 map
        XCTAssertEqual(try s.layer(named: "sum").parameters, 0)
    }

    func testANetworkWithoutASpecNeedsAnInputShape() throws {
        let net = try handNetwork()
        XCTAssertThrowsError(try summary(net)) { e in XCTAssertTrue("\(e)".contains("input"), "\(e)") }
        let s = try summary(net, inputShape: [1, 1, 3, 5])
        XCTAssertEqual(try s.layer(named: "pool").outputShape, [1, 1, 1, 2])
        XCTAssertEqual(try s.layer(named: "pool").receptiveField.height, 3)
    }
}
