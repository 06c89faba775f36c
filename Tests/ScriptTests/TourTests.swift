import Foundation
@testable import Script
import XCTest

/// TOUR.md is the reference for the language's look: every line of it must parse.
final class TourTests: XCTestCase {
    func testEveryCellOfTheTourParses() throws {
        let code = try TestFiles.tourCode()
        let cells = Cells.split(code, name: "TOUR.md")
        XCTAssertEqual(cells.count, 11)
        XCTAssertTrue(cells[0].isMarkdown)
        XCTAssertEqual(cells[1].title, "Convolution as matrix multiplication")
        for cell in cells {
            let program = Parser.parse(cell.source)
            XCTAssertEqual(program.diagnostics.map(\.description), [], "cell \(cell.number)")
            if !cell.isMarkdown { XCTAssertFalse(program.statements.isEmpty, "cell \(cell.number)") }
        }
    }

    /// The builtins the tour uses that this module provides exist, with the parameters the tour names.
    func testTheTourCallsBuiltinsAsDeclared() {
        let registry = BuiltinRegistry.standard()
        for name in ["tensor", "toeplitz", "conv2d", "reshape", "flatten", "allclose", "im2col", "gradcheck", "network",
                     "conv", "relu", "maxpool", "linear", "show", "save", "overlay", "grid", "grad", "logits", "sum"] {
            XCTAssertNotNil(registry[name], name)
        }
        XCTAssertEqual(registry["conv"]?.parameters.map(\.name).prefix(5), ["in", "out", "k", "stride", "pad"])
    }

    /// The first two cells of the tour run and give the numbers of the lecture.
    func testTheConvolutionCellsRunAsTheLectureSays() throws {
        let cells = Cells.split(try TestFiles.tourCode(), name: "TOUR.md")
        let recorder = EventRecorder()
        let interpreter = Interpreter(sink: recorder)
        for cell in cells[1...2] {
            guard case .success = interpreter.run(cell.source) else { return XCTFail(recorder.transcript) }
        }
        XCTAssertTrue(recorder.transcript.contains("tensor [9, 4]"), recorder.transcript)
        guard case .tensor(let t)? = interpreter.value(named: "T") else { return XCTFail("T") }
        XCTAssertEqual(t.shape, [9, 16])
        guard case .tensor(let y1)? = interpreter.value(named: "y1"), case .tensor(let y2)? = interpreter.value(named: "y2") else { return XCTFail() }
        XCTAssertEqual(y1.value, y2.value)
        XCTAssertEqual(y1.value.scalars, [Float](repeating: -5, count: 9))
        XCTAssertTrue(recorder.transcript.contains("ok"))
    }
}
