import Engine
@testable import Imaging
import XCTest

final class RenderingTests: XCTestCase {
    func testViridisEndpointsAndMonotonicLuminance() throws {
        // matplotlib's first and last entries.
        let first = Colormap.viridis.color(at: 0), last = Colormap.viridis.color(at: 1)
        XCTAssertEqual(first.red, 0.267004, accuracy: 1e-6)
        XCTAssertEqual(first.green, 0.004874, accuracy: 1e-6)
        XCTAssertEqual(first.blue, 0.329415, accuracy: 1e-6)
        XCTAssertEqual(last.red, 0.993248, accuracy: 1e-6)
        XCTAssertEqual(last.green, 0.906157, accuracy: 1e-6)
        XCTAssertEqual(last.blue, 0.143936, accuracy: 1e-6)
        XCTAssertEqual(viridisTable.count, 256 * 3)

        // Relative luminance of the sRGB colours rises from every entry to the next.
        func linear(_ c: Float) -> Float { c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4) }
        let luminance = (0..<256).map { i -> Float in
            let c = Colormap.viridis.color(at: Float(i) / 255)
            return 0.2126 * linear(c.red) + 0.7152 * linear(c.green) + 0.0722 * linear(c.blue)
        }
        for i in 1..<256 { XCTAssertGreaterThan(luminance[i], luminance[i - 1], "entry \(i)") }
    }

    func testGrayAndDivergingMaps() throws {
        let ramp = Tensor(shape: [1, 5], scalars: [0, 0.25, 0.5, 0.75, 1])
        let gray = try Colormap.gray.apply(ramp)
        XCTAssertEqual(gray.shape, [3, 1, 5])
        for c in 0..<3 { XCTAssertLessThan(maxDifference(Tensor(shape: [1, 5], scalars: Array(gray.scalars[(5 * c)..<(5 * c + 5)])), ramp), 1e-6) }

        let negative = Colormap.diverging.color(at: 0), zero = Colormap.diverging.color(at: 0.5), positive = Colormap.diverging.color(at: 1)
        XCTAssertGreaterThan(negative.blue, negative.red)
        XCTAssertGreaterThan(positive.red, positive.blue)
        XCTAssertGreaterThan(Swift.min(zero.red, zero.green, zero.blue), 0.95, "zero is (nearly) white")
        XCTAssertThrowsError(try Colormap.named("virdis")) { error in
            XCTAssertTrue("\(error)".contains("did you mean 'viridis'"), "\(error)")
        }
    }

    func testScalingForDisplay() throws {
        let gradient = Tensor(shape: [4], scalars: [-2, 0, 1, 4])
        XCTAssertEqual(rescaled(gradient, .minMax).scalars, [0, 1.0 / 3, 0.5, 1])
        XCTAssertEqual(rescaled(gradient, .symmetric).scalars, [0.25, 0.5, 0.625, 1])
        XCTAssertEqual(rescaled(gradient, .clamp).scalars, [0, 0, 1, 1])
        XCTAssertEqual(rescaled(Tensor(zeros: [3]), .symmetric).scalars, [0.5, 0.5, 0.5], "a zero gradient is mid-grey")
        XCTAssertEqual(rescaled(Tensor(repeating: 7, shape: [2]), .minMax).scalars, [0, 0])
    }

    func testOverlayBlendsAResizedHeatMap() throws {
        let picture = Tensor(repeating: 0.2, shape: [1, 8, 8])
        // A 2x2 heat map: hot in the top-left quarter only.
        let heat = Tensor(shape: [2, 2], scalars: [5, 0, 0, 0])
        let blended = try overlay(picture, heat, alpha: 0.5, colormap: .gray)
        XCTAssertEqual(blended.shape, [3, 8, 8])
        XCTAssertEqual(blended[0, 0, 0], 0.5 * 0.2 + 0.5 * 1, accuracy: 1e-5)
        XCTAssertEqual(blended[1, 7, 7], 0.5 * 0.2, accuracy: 1e-5)
        XCTAssertThrowsError(try overlay(picture, Tensor(zeros: [3, 2, 2])))
        XCTAssertEqual(try overlay(picture, heat, alpha: 0), try toRGB(picture))
    }

    func testGridSizeAndTilePlacement() throws {
        // Ten 5x4 tiles (tile k filled with k / 10) in four columns with padding 2.
        let tiles = (0..<10).map { Tensor(repeating: Float($0) / 10, shape: [1, 5, 4]) }
        let picture = try grid(tiles, columns: 4, padding: 2, background: 1)
        XCTAssertEqual(picture.shape, [1, 3 * 5 + 4 * 2, 4 * 4 + 5 * 2])
        for k in 0..<10 {
            let top = 2 + (k / 4) * (5 + 2), left = 2 + (k % 4) * (4 + 2)
            for y in 0..<5 { for x in 0..<4 { XCTAssertEqual(picture[0, top + y, left + x], Float(k) / 10) } }
            XCTAssertEqual(picture[0, top - 1, left], 1, "padding above tile \(k)")
            XCTAssertEqual(picture[0, top, left + 4], 1, "padding right of tile \(k)")
        }
        // The two unused cells of the last row are background.
        XCTAssertEqual(picture[0, 2 + 2 * 7, 2 + 2 * 6], 1)

        // A row of mixed sizes and colours becomes one colour picture; the small tile is centred.
        let strip = try row([Tensor(zeros: [1, 6, 3]), Tensor(repeating: 0.5, shape: [3, 2, 2])], padding: 1, background: 1)
        XCTAssertEqual(strip.shape, [3, 8, 8])
        XCTAssertEqual(strip[2, 1 + 2, 1 + 3 + 1], 0.5)
        XCTAssertEqual(strip[2, 1, 1 + 3 + 1], 1)
    }

    func testLabelsAreDrawnBelowTiles() throws {
        let tiles = [Tensor(zeros: [1, 3, 3]), Tensor(zeros: [1, 3, 3])]
        let picture = try grid(tiles, columns: 2, padding: 1, background: 0, labels: ["sneaker", "3"])
        let band = BitmapFont.glyphHeight + 2
        // The first column is as wide as "sneaker".
        XCTAssertEqual(picture.shape, [1, 1 + 3 + band + 1, 1 + BitmapFont.width(of: "sneaker") + 1 + 5 + 1])
        let textRows = (1 + 3 + 1)..<(1 + 3 + 1 + BitmapFont.glyphHeight)
        let lit = textRows.flatMap { y in (0..<picture.shape[2]).map { x in picture[0, y, x] } }.filter { $0 == 1 }.count
        XCTAssertGreaterThan(lit, 20, "label pixels are drawn in white on black")
        XCTAssertThrowsError(try grid(tiles, labels: ["one"]))
    }

    func testFilterGridLayouts() throws {
        var generator = SeededGenerator(seed: 5)
        let colour = Tensor.randn([6, 3, 5, 5], generator: &generator)
        let colourGrid = try filterGrid(colour, columns: 3, scale: 2, padding: 1)
        XCTAssertEqual(colourGrid.shape, [3, 2 * 10 + 3, 3 * 10 + 4])
        // Each filter is scaled on its own: every tile reaches both 0 and 1.
        let tile = (0..<3).flatMap { c in (0..<10).flatMap { y in (0..<10).map { x in colourGrid[c, 1 + y, 1 + x] } } }
        XCTAssertEqual(tile.min(), 0)
        XCTAssertEqual(tile.max(), 1)

        let deep = Tensor.randn([4, 8, 3, 3], generator: &generator)
        XCTAssertEqual(try filterGrid(deep).shape, [1, 4 * 3 + 5, 8 * 3 + 9], "one row of input channels per filter")
        XCTAssertEqual(try filterGrid(Tensor.randn([16, 1, 5, 5], generator: &generator), padding: 0).shape, [1, 20, 20])
        XCTAssertThrowsError(try filterGrid(Tensor(zeros: [5, 5])))
    }

    func testActivationGrid() throws {
        let activations = Tensor(shape: [1, 2, 2, 2], scalars: [0, 1, 2, 3, 10, 10, 10, 30])
        let picture = try activationGrid(activations, columns: 2, padding: 0)
        XCTAssertEqual(picture.shape, [1, 2, 4])
        XCTAssertEqual(picture.scalars, [0, 1.0 / 3, 0, 0, 2.0 / 3, 1, 0, 1])
        XCTAssertEqual(try activationGrid(activations, colormap: .viridis).shape[0], 3)
    }

    func testFontHasGlyphsForPrintableASCII() throws {
        XCTAssertEqual(BitmapFont.glyphs.count, 95)
        for glyph in BitmapFont.rows {
            let rows = glyph.split(separator: " ")
            XCTAssertEqual(rows.count, 7, glyph)
            XCTAssertTrue(rows.allSatisfy { $0.count == 5 && $0.allSatisfy { "#.".contains($0) } }, glyph)
        }
        for character in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:.-_" {
            XCTAssertTrue(BitmapFont.glyph(for: character).contains { $0 != 0 }, "\(character) is blank")
        }
        XCTAssertTrue(BitmapFont.glyph(for: " ").allSatisfy { $0 == 0 })
        // Distinct characters look distinct.
        let shapes = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".map { BitmapFont.glyph(for: $0) })
        XCTAssertEqual(shapes.count, 62)
        XCTAssertEqual(BitmapFont.glyph(for: "é"), BitmapFont.glyph(for: "?"))
    }

    func testDrawTextPutsPixelsWhereTheGlyphSays() throws {
        var canvas = Tensor(zeros: [3, 9, 14])
        try drawText("1 ", on: &canvas, x: 1, y: 1, color: [1, 0.5, 0], scale: 1)
        let glyph = BitmapFont.glyph(for: "1")
        for row in 0..<7 {
            for column in 0..<5 {
                let on = glyph[row] & (0b10000 >> UInt8(column)) != 0
                XCTAssertEqual(canvas[0, 1 + row, 1 + column], on ? 1 : 0)
                XCTAssertEqual(canvas[1, 1 + row, 1 + column], on ? 0.5 : 0)
            }
        }
        XCTAssertTrue((7..<14).allSatisfy { x in (0..<9).allSatisfy { canvas[0, $0, x] == 0 } }, "a space draws nothing")
        // Text running off the edge is clipped, not a crash.
        try drawText("conv1:5", on: &canvas, x: 10, y: 6, scale: 2)
    }
}
