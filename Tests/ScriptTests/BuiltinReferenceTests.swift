import Foundation
import Script
import XCTest

/// docs/BUILTINS.md must be what the registry generates (CNNLAB_REGENERATE=1 rewrites it).
final class BuiltinReferenceTests: XCTestCase {
    func testBuiltinsReferenceIsUpToDate() throws {
        let url = TestFiles.packageRoot.appendingPathComponent("docs/BUILTINS.md")
        let generated = BuiltinReference.markdown()
        if TestFiles.regenerating {
            try generated.write(to: url, atomically: true, encoding: .utf8)
            return
        }
        let committed = try String(contentsOf: url, encoding: .utf8)
        XCTAssertEqual(committed, generated, "docs/BUILTINS.md is out of date: run CNNLAB_REGENERATE=1 swift test --filter BuiltinReferenceTests")
    }

    func testEveryBuiltinIsInTheReference() {
        let text = BuiltinReference.markdown()
        for name in BuiltinRegistry.standard().names { XCTAssertTrue(text.contains("### \(name)\n"), name) }
    }
}
