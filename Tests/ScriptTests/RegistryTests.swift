import Foundation
import Engine
@testable import Script
import XCTest

/// Argument checking comes from each builtin's declaration: these tests walk the whole
/// registry, so a builtin added later is checked the same way without a new test.
final class RegistryTests: XCTestCase {
    let registry = BuiltinRegistry.standard()

    /// A value none of `types` accepts, or nil if every candidate is accepted.
    private func wrongValue(for types: [ParameterType]) -> (code: String, value: Value)? {
        let candidates: [(String, Value)] = [("print", .builtin(registry["print"]!)), ("\"text\"", .string("text")), ("2.5", .number(2.5)),
                                             ("true", .bool(true)), ("[[1], 2]", .list([.list([.number(1)]), .number(2)])), ("none", .none)]
        return candidates.first { c in !types.contains { $0.accepts(c.1) } }
    }

    func testWrongTypesNameTheParameterAndTheExpectedType() {
        for b in registry.all {
            for p in b.parameters where p.kind == .regular {
                guard let (code, _) = wrongValue(for: p.types) else { continue }
                let message = errorMessage("\(b.name)(\(p.name)=\(code))")
                XCTAssertTrue(message.contains("argument '\(p.name)' must be \(p.typeText)"), "\(b.name).\(p.name): \(message)")
            }
        }
    }

    func testMissingArgumentsAreNamed() {
        for b in registry.all {
            guard let first = b.parameters.first(where: { $0.kind == .regular && $0.defaultValue == nil }) else { continue }
            let message = errorMessage("\(b.name)()")
            XCTAssertTrue(message.contains("missing argument '\(first.name)'") && message.contains(b.signature), "\(b.name): \(message)")
        }
    }

    func testUnknownKeywordsSuggestTheNearestParameter() {
        for b in registry.all where !b.parameters.contains(where: { $0.kind == .keywords }) {
            let message = errorMessage("\(b.name)(zzzq=1)")
            XCTAssertTrue(message.contains("\(b.name) has no argument 'zzzq'"), "\(b.name): \(message)")
            if let p = b.parameters.first(where: { $0.kind == .regular && $0.name.count >= 4 }) {
                let typo = String(p.name.dropLast())
                guard !b.parameters.contains(where: { $0.name == typo }) else { continue }
                let suggestion = errorMessage("\(b.name)(\(typo)=1)")
                XCTAssertTrue(suggestion.contains("did you mean '\(p.name)'?"), "\(b.name): \(suggestion)")
            }
        }
    }

    func testTooManyPositionalArguments() {
        for b in registry.all where !b.parameters.contains(where: { $0.kind == .variadic }) {
            let count = b.parameters.filter { $0.kind == .regular }.count + 1
            let message = errorMessage("\(b.name)(" + Array(repeating: "1", count: count).joined(separator: ", ") + ")")
            XCTAssertTrue(message.contains("\(b.name) takes at most") || message.contains("must be"), "\(b.name): \(message)")
        }
    }

    /// Every example in the help runs (those that touch files are run by the golden tests instead).
    func testEveryExampleRuns() {
        for b in registry.all where !b.exampleUsesFiles {
            let (transcript, outcome) = runCode(b.example)
            guard case .success = outcome else { XCTFail("the example of \(b.name) fails:\n\(transcript)"); continue }
        }
    }

    func testEveryBuiltinIsDocumented() {
        for b in registry.all {
            XCTAssertFalse(b.summary.isEmpty, b.name)
            XCTAssertTrue(b.summary.hasSuffix("."), "\(b.name): a summary is a sentence")
            XCTAssertTrue(b.example.contains(b.name), "\(b.name): the example should call it")
            let help = Builtins.builtinHelp(b)
            XCTAssertTrue(help.hasPrefix(b.signature), b.name)
        }
        let listing = runCode("help()").transcript
        for b in registry.all { XCTAssertTrue(listing.contains("  \(b.name) "), b.name) }
        XCTAssertTrue(errorMessage("help(\"saliencyy\")").contains("there is no builtin"))
    }

    /// A later area adds a builtin by declaring it; it is checked like the rest.
    func testAddingABuiltin() {
        let r = BuiltinRegistry.standard()
        r.register(Builtin("double", category: BuiltinCategory(name: "Extra", order: 99), parameters: [.required("x", .number)],
                           summary: "Twice x.", example: "double(2)") { args, _ in .number(2 * (try args.number("x"))) })
        let recorder = EventRecorder()
        let interpreter = Interpreter(sink: recorder, registry: r)
        guard case .success(let v?) = interpreter.run(SourceFile(name: "t", text: "double(21)")) else { return XCTFail() }
        XCTAssertEqual(Display.text(v), "42")
        guard case .failed(let d) = interpreter.run(SourceFile(name: "t", text: "double(\"a\")")) else { return XCTFail() }
        XCTAssertEqual(d.message, "double: argument 'x' must be a number, got the string \"a\"")
        XCTAssertTrue(BuiltinReference.markdown(r).contains("## Extra"))
    }
}
