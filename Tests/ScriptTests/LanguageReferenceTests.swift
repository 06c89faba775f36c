import Foundation
import Script
import XCTest

/// Every ```cnn block of docs/LANGUAGE.md runs without an error in a fresh session.
final class LanguageReferenceTests: XCTestCase {
    func testEveryExampleInTheReferenceRuns() throws {
        let text = try String(contentsOf: TestFiles.packageRoot.appendingPathComponent("docs/LANGUAGE.md"), encoding: .utf8)
        var blocks: [String] = [], current: [String]? = nil
        for line in text.components(separatedBy: "\n") {
            if line == "```cnn" { current = [] }
            else if line == "```", let c = current { blocks.append(c.joined(separator: "\n")); current = nil }
            else if current != nil { current!.append(line) }
        }
        XCTAssertGreaterThanOrEqual(blocks.count, 6)
        for block in blocks {
            let recorder = EventRecorder()
            let interpreter = Interpreter(sink: recorder)
            for cell in Cells.split(block, name: "LANGUAGE.md") where !cell.isMarkdown {
                guard case .success = interpreter.run(cell.source) else { XCTFail("\(block)\n\(recorder.transcript)"); break }
            }
        }
    }
}
