import Foundation
import Script
@testable import Shell
import XCTest

final class CompletionTests: XCTestCase {
    private var interpreter: Interpreter!
    private var completer: Completer { Completer(interpreter, directory: NSTemporaryDirectory()) }

    override func setUp() {
        interpreter = Interpreter(sink: EventRecorder())
        let outcome = interpreter.run(SourceFile(name: "setup", text: """
            net = load("fashion")
            x = tensor([[1, 2], [3, 4]])
            img = sample("sneaker")
            fn blur(image, sigma=1, passes=2) { image }
            gradient = 1
            """))
        guard case .success = outcome else { return XCTFail("setup failed: \(outcome)") }
    }

    private func matches(_ text: String) -> [String] { completer.complete(text).matches }

    func testLayerNamesAfterADot() {
        let r = completer.complete("net.co")
        XCTAssertEqual(r.matches, ["conv1", "conv2"])
        XCTAssertEqual(r.start, 4)
        XCTAssertEqual(r.end, 6)
        XCTAssertTrue(matches("net.").contains("layers"))
        XCTAssertTrue(matches("net.").contains("fc1") || matches("net.").count > 4, "\(matches("net."))")
    }

    func testAttributesOfLayersParametersAndTensors() {
        let conv = matches("net.conv1.")
        for name in ["weight", "bias", "kind", "stride", "padding", "kernel", "in", "out"] { XCTAssertTrue(conv.contains(name), name) }
        XCTAssertEqual(matches("net.conv1.weight.sh"), ["shape"])
        XCTAssertEqual(matches("x."), ["shape", "rank", "size", "height", "width"])
        XCTAssertEqual(matches("img.ch"), ["channels"])
        XCTAssertEqual(matches("(x).sh"), [], "only names and attributes are looked up, nothing is run")
        XCTAssertEqual(matches("nothing.sh"), [])
    }

    func testKeywordArgumentsOfTheCalledFunctionComeFirst() {
        let r = completer.complete("conv2d(x, w, st")
        XCTAssertEqual(r.matches.first, "stride=")
        XCTAssertTrue(r.matches.contains("str"))
        XCTAssertEqual(r.start, 13)
        XCTAssertFalse(matches("conv2d(x, w, stride=1, ").contains("stride="), "a keyword already given is not offered again")
        XCTAssertTrue(matches("conv2d(x, w, stride=1, ").contains("pad="))
        XCTAssertEqual(Array(matches("blur(img, pa").prefix(1)), ["passes="])
        XCTAssertEqual(Array(matches("blur(img, ").prefix(4)), ["image=", "sigma=", "passes=", "blur"])
        XCTAssertFalse(matches("conv2d(x, [1, st").contains("stride="), "inside a list, not an argument")
        XCTAssertFalse(matches("conv2d(x, w + st").contains("stride="), "inside an expression, not at an argument's start")
        XCTAssertFalse(matches("conv2d(x, sum(x, ").contains("stride="), "the innermost call's arguments")
        XCTAssertTrue(matches("conv2d(x, sum(x, ").contains("axis="))
        XCTAssertEqual(matches("conv2d(x,\n  w, st").first, "stride=", "a call over several lines")
    }

    func testNamesVariablesFirstThenBuiltinsThenKeywords() {
        // The variable first, then every builtin starting with "gra" in order.
        let builtins = BuiltinRegistry.standard().names.filter { $0.hasPrefix("gra") }.sorted()
        XCTAssertTrue(builtins.contains("grad") && builtins.contains("gradcheck"))
        XCTAssertEqual(matches("gra"), ["gradient"] + builtins)
        XCTAssertEqual(matches("whi"), ["while"])
        XCTAssertEqual(matches("print(gra"), ["gradient"] + builtins)
        XCTAssertEqual(completer.complete("print(gra").start, 6)
    }

    func testNothingInCommentsNumbersOrFinishedStrings() {
        XCTAssertEqual(matches("# net.co"), [])
        XCTAssertEqual(matches("1."), [])
        XCTAssertEqual(matches("x = 12"), [])
        XCTAssertEqual(matches("\"net\""), [])
    }

    func testFileNamesInsideStrings() throws {
        let folder = try Support.temporaryFolder("complete")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for f in ["alpha.png", "alps.cnn", ".hidden"] { _ = FileManager.default.createFile(atPath: folder + "/" + f, contents: Data()) }
        try FileManager.default.createDirectory(atPath: folder + "/alpine", withIntermediateDirectories: false)
        let text = "img = image(\"\(folder)/al"
        let r = completer.complete(text)
        XCTAssertEqual(r.matches, ["alpha.png", "alpine/", "alps.cnn"])
        XCTAssertEqual(r.start, text.unicodeScalars.count - 2)
        XCTAssertEqual(matches("load('\(folder)/"), ["alpha.png", "alpine/", "alps.cnn"])
        XCTAssertEqual(matches("load('\(folder)/."), [".hidden"])
        let relative = Completer(interpreter, directory: folder)
        XCTAssertEqual(relative.complete("image(\"alp").matches, ["alpha.png", "alpine/", "alps.cnn"])
        XCTAssertEqual(matches("image(\"/nonexistent/folder/x"), [])
    }

    func testCodeInsideAnInterpolation() {
        let text = "print(\"layers {net.co"
        let r = completer.complete(text)
        XCTAssertEqual(r.matches, ["conv1", "conv2"])
        XCTAssertEqual(r.start, text.unicodeScalars.count - 2)
    }

    func testPositionsAreCountedInScalars() {
        let text = "s = \"λ→\" + gra"
        XCTAssertEqual(completer.complete(text).start, text.unicodeScalars.count - 3)
        XCTAssertEqual(completer.complete("net.co + 1", cursor: 6).matches, ["conv1", "conv2"])
    }

    func testHelpForTheNameUnderTheCursor() throws {
        let relu = try XCTUnwrap(completer.help("relu(x)", cursor: 2))
        XCTAssertTrue(relu.hasPrefix("relu("), relu)
        XCTAssertTrue(try XCTUnwrap(completer.help("net")).hasPrefix("net: network\nnetwork of"))
        XCTAssertTrue(try XCTUnwrap(completer.help("net.conv1")).hasPrefix("net.conv1: layer"))
        XCTAssertTrue(try XCTUnwrap(completer.help("conv2d(x, ")).hasPrefix("conv2d(x, w"), "the function being called")
        XCTAssertTrue(try XCTUnwrap(completer.help("blur")).contains("a function defined at"))
        XCTAssertNil(completer.help("nothing_here"))
    }

    func testTheScannerClassifiesUnfinishedInput() {
        let s = Array("x = \"a{b + \"c\"}d\" # note".unicodeScalars)
        let kinds = CodeScanner.tokens(s).map(\.kind).filter { $0 != .space }
        XCTAssertEqual(kinds, [.word, .punctuation, .string, .comment])
        let string = CodeScanner.tokens(s).first { $0.kind == .string }!
        XCTAssertTrue(string.terminated)
        XCTAssertEqual(string.interpolations.count, 1)
        let open = CodeScanner.tokens(Array("f(\"abc".unicodeScalars)).last!
        XCTAssertFalse(open.terminated)
        XCTAssertEqual(CodeScanner.openBrackets(Array("f(a, [1, {".unicodeScalars)).map(\.bracket), ["(", "[", "{"])
        XCTAssertEqual(CodeScanner.tokens(Array("a..b->c".unicodeScalars)).map(\.end), [1, 3, 4, 6, 7])
    }
}
