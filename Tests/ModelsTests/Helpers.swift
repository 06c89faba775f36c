import Engine
import Foundation
@testable import Models
import XCTest

/// A fixture written by scripts/make-model-fixtures.py, e.g. `fixture("npy/float32.npy")`.
func fixture(_ path: String) -> URL {
    guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
        fatalError("the ModelsTests bundle has no Fixtures folder")
    }
    return root.appendingPathComponent(path)
}

/// The bytes of a fixture.
func fixtureBytes(_ path: String) throws -> Data {
    try Data(contentsOf: fixture(path))
}

/// A fresh empty folder, removed when the test ends.
func temporaryFolder(for test: XCTestCase) throws -> URL {
    let folder = FileManager.default.temporaryDirectory
        .appendingPathComponent("cnnlab-models-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
    return folder
}

/// Writes `bytes` to `name` in `folder` and returns its URL.
@discardableResult
func write(_ bytes: Data, _ name: String, in folder: URL) throws -> URL {
    let url = folder.appendingPathComponent(name)
    try writeQuickly(bytes, to: url)
    return url
}

/// Writes a file with plain POSIX calls: the corruption tests write thousands of files, and
/// `Data.write` costs milliseconds each here.
func writeQuickly(_ bytes: Data, to url: URL) throws {
    let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
    defer { close(fd) }
    let written = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else { throw CocoaError(.fileWriteUnknown) }
}

/// Asserts that `body` throws a `ModelFileError` whose message names the file and contains every phrase.
func assertFileError<T>(_ body: @autoclosure () throws -> T, mentions phrases: [String],
                        file: StaticString = #filePath, line: UInt = #line) {
    do {
        _ = try body()
        XCTFail("expected an error mentioning \(phrases)", file: file, line: line)
    } catch let error as ModelFileError {
        let message = error.description
        XCTAssertFalse(error.path.isEmpty, "error names no file: \(message)", file: file, line: line)
        XCTAssertTrue(message.hasPrefix(error.path), "message does not start with the file: \(message)", file: file, line: line)
        XCTAssertFalse(message.contains("\n"), "message spans lines: \(message)", file: file, line: line)
        for phrase in phrases {
            XCTAssertTrue(message.contains(phrase), "'\(message)' does not mention '\(phrase)'", file: file, line: line)
        }
    } catch {
        XCTFail("expected a ModelFileError, got \(type(of: error)): \(error)", file: file, line: line)
    }
}

/// Offsets at which to cut a file: every one for small files, otherwise a dense spread.
func cutPoints(_ count: Int) -> [Int] {
    if count <= 1500 { return Array(0..<count) }
    var points = Set(0..<300)
    points.formUnion(stride(from: 300, to: count, by: Swift.max(1, count / 700)))
    points.formUnion(Swift.max(0, count - 300)..<count)
    return points.sorted()
}

/// Feeds `load` every truncation of `bytes` and copies with bytes flipped, asserting that each
/// either loads or throws a ModelFileError, and never anything else. Returns how many threw.
@discardableResult
func assertSurvivesCorruption(_ bytes: Data, named name: String, in folder: URL,
                              everyTruncationFails: Bool = true, flips: Int = 300,
                              file: StaticString = #filePath, line: UInt = #line,
                              _ load: (URL) throws -> Void) -> Int {
    var failures = 0
    func attempt(_ variant: Data, _ what: String, mustFail: Bool) {
        let url = folder.appendingPathComponent(name)
        do {
            try writeQuickly(variant, to: url)
            try load(url)
            if mustFail { XCTFail("\(what) loaded without error", file: file, line: line) }
        } catch let error as ModelFileError {
            failures += 1
            XCTAssertTrue(error.description.hasPrefix(url.path), "\(what): \(error)", file: file, line: line)
        } catch {
            XCTFail("\(what): expected a ModelFileError, got \(error)", file: file, line: line)
        }
    }
    for cut in cutPoints(bytes.count) {
        attempt(bytes.prefix(cut), "\(name) cut at \(cut)", mustFail: everyTruncationFails)
    }
    // Flip bytes at spread positions with a fixed sequence of masks (deterministic, reproducible).
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    for i in 0..<flips where !bytes.isEmpty {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let position = Int(state >> 33) % bytes.count
        var variant = bytes
        variant[position] ^= UInt8(truncatingIfNeeded: (state >> 20) | 1)
        attempt(variant, "\(name) with byte \(position) flipped (#\(i))", mustFail: false)
    }
    return failures
}

/// Builds a tensor whose scalars follow scripts/make-model-fixtures.py's `ramp`: (i − n/2) / 4.
func ramp(_ shape: [Int]) -> Tensor {
    let n = shape.reduce(1, *)
    return Tensor(shape: shape, scalars: (0..<n).map { Float($0 - n / 2) / 4 })
}
