import Foundation
@testable import Script
import XCTest

final class ParserTests: XCTestCase {
    private func parse(_ code: String) -> Program { Parser.parse(SourceFile(name: "t", text: code)) }

    private func outline(_ code: String) -> String {
        let p = parse(code)
        XCTAssertEqual(p.diagnostics.map(\.message), [], code)
        return ASTPrinter.outline(p.statements)
    }

    /// parse -> print -> parse gives the same tree, for every statement of `code`.
    private func assertRoundTrip(_ code: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
        let first = parse(code)
        guard first.diagnostics.isEmpty else { return XCTFail("\(name) does not parse: \(first.diagnostics[0])", file: file, line: line) }
        let printed = ASTPrinter.source(first.statements)
        let second = parse(printed)
        XCTAssertEqual(second.diagnostics.map(\.message), [], "\(name) printed as:\n\(printed)", file: file, line: line)
        XCTAssertEqual(ASTPrinter.outline(first.statements), ASTPrinter.outline(second.statements), "\(name) printed as:\n\(printed)", file: file, line: line)
        // Printing is a fixed point after one round.
        XCTAssertEqual(printed, ASTPrinter.source(second.statements), name, file: file, line: line)
    }

    func testPrecedenceAndAssociativity() {
        XCTAssertEqual(outline("1 + 2 * 3"), "(+ 1.0 (* 2.0 3.0))")
        XCTAssertEqual(outline("1 - 2 - 3"), "(- (- 1.0 2.0) 3.0)")
        XCTAssertEqual(outline("-x ^ 2"), "(-u (^ x 2.0))")
        XCTAssertEqual(outline("2 ^ 3 ^ 2"), "(^ 2.0 (^ 3.0 2.0))")
        XCTAssertEqual(outline("0..n - 1"), "(.. 0.0 (- n 1.0))")
        XCTAssertEqual(outline("T @ flatten(x)"), "(@ T (call flatten x))")
        XCTAssertEqual(outline("not a and b or c"), "(or (and (notu a) b) c)")
    }

    func testChainedComparisonIsAnError() {
        XCTAssertEqual(parse("a < b < c").diagnostics.count, 1)
    }

    func testCallsWithKeywordsThatAreKeywords() {
        XCTAssertEqual(outline("classviz(net, class=3, steps=200)"), "(call classviz net class=3.0 steps=200.0)")
        XCTAssertEqual(outline("conv(in=1, out=8, k=5)"), "(call conv in=1.0 out=8.0 k=5.0)")
        XCTAssertEqual(outline("f(if=1, for=2)"), "(call f if=1.0 for=2.0)")
    }

    func testLambdasIndexingAndAttributes() {
        XCTAssertEqual(outline("grad(x -> logits(net, x)[7] - 0.01 * sum(x * x), img)"),
                       "(call grad (lambda ((x)) (- (index (call logits net x) 7.0) (* 0.01 (call sum (* x x))))) img)")
        XCTAssertEqual(outline("(a, b=2) -> a + b"), "(lambda ((a)(b 2.0)) (+ a b))")
        XCTAssertEqual(outline("t[0, :, 2:5, ::2]"), "(index t 0.0 (: _ _ _) (: 2.0 5.0 _) (: _ _ 2.0))")
        XCTAssertEqual(outline("net.conv1.weight"), "(. (. net conv1) weight)")
        XCTAssertEqual(outline("small.conv1(img)"), "(call (. small conv1) img)")
    }

    func testStringInterpolation() {
        XCTAssertEqual(outline("\"out/class-{c}.png\""), "(str \"out/class-\" c \".png\")")
        XCTAssertEqual(outline("\"{str(\"a\") + \"b\"} \\{x\\}\""), "(str (+ (call str (str \"a\")) (str \"b\")) \" {x}\")")
        XCTAssertEqual(parse("\"{}\"").diagnostics.count, 1)
        XCTAssertEqual(parse("\"{x\"").diagnostics.count, 1)
    }

    func testStatementsAndNewlines() {
        XCTAssertEqual(outline("for c in 0..9 {\n  v = c\n}"), "(for c (.. 0.0 9.0) {(= v c)})")
        XCTAssertEqual(outline("if a { 1 }\nelse if b { 2 } else { 3 }"), "(if a {1.0} {(if b {2.0} {3.0})})")
        XCTAssertEqual(outline("f(1,\n  2)"), "(call f 1.0 2.0)")
        XCTAssertEqual(outline("x = 1 +\n  2"), "(= x (+ 1.0 2.0))")
        XCTAssertEqual(outline("a = 1; b = 2"), "(= a 1.0)\n(= b 2.0)")
        XCTAssertEqual(outline("fn f(a, b=1) { return a + b }"), "(fn f ((a)(b 1.0)) {(return (+ a b))})")
        XCTAssertEqual(outline("x += 2"), "(+= x 2.0)")
        XCTAssertEqual(outline("#!/usr/bin/env cnn\nx # comment"), "x")
    }

    func testErrorsRecoverAtStatementBoundaries() {
        let p = parse("a = )\nb = 2\nc = (]\nd = 4 4\ne = 5")
        XCTAssertEqual(p.diagnostics.count, 3, p.diagnostics.map(\.message).joined(separator: "\n"))
        XCTAssertEqual(p.diagnostics.map(\.span!.line), [1, 3, 4])
        XCTAssertEqual(ASTPrinter.outline(p.statements), "(= b 2.0)\n(= e 5.0)")
    }

    func testDeepNestingIsRefusedNotOverflowed() {
        for code in [String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000),
                     String(repeating: "-", count: 5000) + "1",
                     String(repeating: "[", count: 5000),
                     "x = " + Array(repeating: "1", count: 5000).joined(separator: " + "),
                     "x" + String(repeating: ".a", count: 5000),
                     String(repeating: "if a { ", count: 3000)] {
            let p = parse(code)
            XCTAssertFalse(p.diagnostics.isEmpty)
            XCTAssertTrue(p.diagnostics.contains { $0.message.contains("nested too deeply") }, p.diagnostics.first?.message ?? "")
        }
        // Moderate nesting is fine.
        XCTAssertEqual(parse(String(repeating: "(", count: 40) + "1" + String(repeating: ")", count: 40)).diagnostics.count, 0)
    }

    func testRoundTripsOfGoldenScriptsAndTheTour() throws {
        for script in try TestFiles.goldenScripts() where !script.lastPathComponent.hasPrefix("syntax") {
            assertRoundTrip(try String(contentsOf: script, encoding: .utf8), script.lastPathComponent)
        }
        assertRoundTrip(try TestFiles.tourCode(), "TOUR.md")
    }

    func testRoundTripsOfTrickyExpressions() {
        for code in ["-(x ^ 2)", "(-x) ^ 2", "2 ^ -1", "(a + b) * c", "a - (b - c)", "(0..3)[1]", "(x -> x)(3)",
                     "f(x -> y -> x + y)", "a == (b == c)", "not not a", "- -x", "(1..2) == (1..2)",
                     "g = (a, b) -> {\n    c = a\n    c + b\n}", "\"a\\\"b\\\\c\\n{1 + 2}\"", "[[1, 2], [3]][0][1:]",
                     "if a { } else { if b { } }", "while x < 3 { x += 1 }", "include \"other.cnn\"", "1e-05 + 1.5e+20"] {
            assertRoundTrip(code, code)
        }
    }
}
