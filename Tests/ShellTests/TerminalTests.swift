import Engine
import Foundation
import Imaging
import Script
@testable import Shell
import XCTest

final class PictureProtocolTests: XCTestCase {
    func testDetectionFromTheEnvironment() {
        func detect(_ env: [String: String], tty: Bool = true) -> PictureProtocol { .detect(environment: env, isTerminal: tty) }
        XCTAssertEqual(detect(["TERM": "xterm-kitty"]), .kitty)
        XCTAssertEqual(detect(["TERM": "xterm-256color", "KITTY_WINDOW_ID": "1"]), .kitty)
        XCTAssertEqual(detect(["TERM": "xterm-256color", "TERM_PROGRAM": "iTerm.app"]), .iterm)
        XCTAssertEqual(detect(["TERM": "mlterm"]), .sixel)
        XCTAssertEqual(detect(["TERM": "foot"]), .sixel)
        XCTAssertEqual(detect(["TERM": "xterm-sixel"]), .sixel)
        XCTAssertEqual(detect(["TERM": "xterm-256color"]), .blocks)
        XCTAssertEqual(detect(["TERM": "xterm-kitty", "TMUX": "/tmp/tmux"]), .blocks, "multiplexers get blocks")
        XCTAssertEqual(detect(["TERM": "dumb"]), .none)
        XCTAssertEqual(detect(["TERM": "xterm-kitty"], tty: false), .none, "not a terminal: only the path")
        XCTAssertEqual(detect(["TERM": "xterm", "CNN_PICTURES": "sixel"], tty: false), .sixel, "the override wins")
        XCTAssertEqual(detect(["TERM": "xterm", "CNN_PICTURES": "NONE"]), .none)
        XCTAssertEqual(detect(["TERM": "xterm", "CNN_PICTURES": "bogus"]), .blocks, "an unknown override is ignored")
    }
}

final class TerminalPicturesTests: XCTestCase {
    /// A [3, h, w] picture with a distinct colour per pixel.
    private func picture(_ h: Int, _ w: Int) -> Tensor {
        Tensor(shape: [3, h, w], scalars: (0..<(3 * h * w)).map { Float($0 % 251) / 250 })
    }

    func testHalfBlocksDrawTwoPixelRowsACharacterCell() throws {
        let pictures = TerminalPictures(mode: .blocks, columns: 120, rows: 0)
        let out = try XCTUnwrap(try pictures.render(picture(4, 100)))
        let lines = out.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, "4 pixel rows in 2 lines")
        for line in lines {
            XCTAssertEqual(line.filter { $0 == "▀" }.count, 100)
            XCTAssertTrue(line.hasSuffix("\u{1B}[0m"), "colours are reset at each line's end")
        }
        XCTAssertTrue(out.contains("\u{1B}[38;2;"), "24-bit foreground")
        XCTAssertTrue(out.contains("\u{1B}[48;2;"), "24-bit background")
    }

    func testSmallPicturesGrowAndBigOnesFitTheTerminal() throws {
        let wide = TerminalPictures(mode: .blocks, columns: 120)
        let digit = try XCTUnwrap(try wide.render(Tensor(zeros: [1, 28, 28])))
        XCTAssertEqual(digit.split(separator: "\n").count, 28, "a 28x28 digit twice its size: 56 columns, 28 lines")
        XCTAssertEqual(digit.split(separator: "\n")[0].filter { $0 == "▀" }.count, 56)
        let narrow = TerminalPictures(mode: .blocks, columns: 41)
        let big = try XCTUnwrap(try narrow.render(picture(200, 400)))
        XCTAssertEqual(big.split(separator: "\n")[0].filter { $0 == "▀" }.count, 40, "never wider than the terminal")
        let short = TerminalPictures(mode: .blocks, columns: 200, rows: 13)
        XCTAssertLessThanOrEqual(try XCTUnwrap(try short.render(picture(100, 100))).split(separator: "\n").count, 10, "nor taller")
    }

    func testKittyChunksThePNG() throws {
        let out = try XCTUnwrap(try TerminalPictures(mode: .kitty).render(picture(300, 300)))
        let commands = out.components(separatedBy: "\u{1B}\\").filter { $0.hasPrefix("\u{1B}_G") }
        XCTAssertGreaterThan(commands.count, 1, "a big picture takes several chunks")
        var payload = ""
        for (i, c) in commands.enumerated() {
            let parts = c.dropFirst(3).split(separator: ";", maxSplits: 1)
            XCTAssertTrue(parts[0].hasSuffix(i == commands.count - 1 ? "m=0" : "m=1"), String(parts[0]))
            if i == 0 { XCTAssertTrue(parts[0].contains("a=T") && parts[0].contains("f=100")) }
            XCTAssertLessThanOrEqual(parts[1].count, 4096)
            payload += parts[1]
        }
        let png = try XCTUnwrap(Data(base64Encoded: payload))
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        XCTAssertEqual(try ImageFile.decode(Array(png)).shape, [3, 300, 300])
    }

    func testITermSendsTheWholePNGInline() throws {
        let out = try XCTUnwrap(try TerminalPictures(mode: .iterm).render(picture(10, 20)))
        XCTAssertTrue(out.hasPrefix("\u{1B}]1337;File=inline=1;"))
        let base64 = String(out.split(separator: ":", maxSplits: 1)[1].dropLast(2))
        let decoded = try ImageFile.decode(Array(try XCTUnwrap(Data(base64Encoded: base64))))
        XCTAssertEqual(decoded.shape, [3, 80, 160], "enlarged by whole pixels to about 200")
    }

    func testSixelThroughLibsixel() throws {
        let out = try XCTUnwrap(try TerminalPictures(mode: .sixel).render(picture(20, 20)))
        XCTAssertTrue(out.hasPrefix("\u{1B}P"), "a DCS sequence")
        XCTAssertTrue(out.hasSuffix("\u{1B}\\\n"))
        XCTAssertTrue(out.contains("#"), "a palette")
    }

    func testNoneDrawsNothingAndBadShapesAreRefused() throws {
        XCTAssertNil(try TerminalPictures(mode: .none).render(picture(2, 2)))
        XCTAssertThrowsError(try TerminalPictures(mode: .blocks).render(Tensor(zeros: [2, 3, 3])))
    }
}

final class TerminalStyleTests: XCTestCase {
    func testColourNeedsATerminalAndNoNO_COLOR() {
        XCTAssertFalse(TerminalStyle.detect(descriptor: -1, environment: ["TERM": "xterm"]).enabled, "not a terminal")
        XCTAssertEqual(TerminalStyle(enabled: false).paint("x", "31"), "x")
        XCTAssertEqual(TerminalStyle(enabled: true).paint("x", "31"), "\u{1B}[31mx\u{1B}[0m")
        XCTAssertEqual(TerminalStyle(enabled: true).prompt("cnn>", "32"), "\u{01}\u{1B}[32m\u{02}cnn>\u{01}\u{1B}[0m\u{02}")
        XCTAssertEqual(TerminalStyle(enabled: false).prompt("cnn>", "32"), "cnn>")
    }

    func testDiagnosticsKeepTheirTextWithColour() {
        let file = SourceFile(name: "demo.cnn", text: "x = nope\n")
        let d = Diagnostic(.runtime, "unknown name 'nope'", at: SourceSpan(file: file, start: 4, end: 8))
        XCTAssertEqual(TerminalStyle(enabled: false).diagnostic(d), d.rendered())
        let colored = TerminalStyle(enabled: true).diagnostic(d)
        XCTAssertTrue(colored.contains("\u{1B}[1;31merror\u{1B}[0m"))
        XCTAssertTrue(colored.contains("\u{1B}[31m^^^^\u{1B}[0m"))
        let stripped = colored.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
        XCTAssertEqual(stripped, d.rendered())
    }
}
