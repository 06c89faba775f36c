import Engine
import Foundation
import XCTest

/// The path of a file in the test fixtures.
func fixture(_ name: String) throws -> String {
    guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures") else {
        throw XCTSkip("fixture \(name) is missing")
    }
    return url.path
}

/// A fresh empty folder for files a test writes; removed when the test ends.
func temporaryFolder(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("imaging-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// A [C, H, W] tensor whose pixel (c, y, x) is `value(c, x, y)`.
func image(channels: Int, height: Int, width: Int, _ value: (Int, Int, Int) -> Float) -> Tensor {
    var scalars: [Float] = []
    for c in 0..<channels { for y in 0..<height { for x in 0..<width { scalars.append(value(c, x, y)) } } }
    return Tensor(shape: [channels, height, width], scalars: scalars)
}

func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
    zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
}
