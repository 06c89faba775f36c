import XCTest
@testable import Models
import Engine

final class IDXTests: XCTestCase {
    func header(_ type: UInt8, _ dims: [Int]) -> [UInt8] {
        var b: [UInt8] = [0, 0, type, UInt8(dims.count)]
        for d in dims { b += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return b
    }

    func testDecodesEveryValueType() throws {
        XCTAssertEqual(try IDX.decode(header(0x08, [2, 2]) + [0, 1, 128, 255], path: "u8").scalars, [0, 1, 128, 255])
        XCTAssertEqual(try IDX.decode(header(0x09, [2]) + [0xFF, 0x7F], path: "i8").scalars, [-1, 127])
        XCTAssertEqual(try IDX.decode(header(0x0B, [1]) + [0xFF, 0xFE], path: "i16").scalars, [-2])
        XCTAssertEqual(try IDX.decode(header(0x0C, [1]) + [0, 1, 0, 0], path: "i32").scalars, [65536])
        let f = Float(1.5).bitPattern
        XCTAssertEqual(try IDX.decode(header(0x0D, [1]) + [UInt8(f >> 24), UInt8(f >> 16 & 255), UInt8(f >> 8 & 255), UInt8(f & 255)], path: "f").scalars, [1.5])
        XCTAssertEqual(try IDX.decode(header(0x08, [1, 2, 3]) + [UInt8](repeating: 7, count: 6), path: "s").shape, [1, 2, 3])
    }

    func testBrokenFilesGiveClearErrors() {
        let cases: [([UInt8], String)] = [
            ([0, 0], "too short"),
            ([1, 0, 8, 1, 0, 0, 0, 1, 5], "not an IDX file"),
            ([0, 0, 0x42, 1, 0, 0, 0, 1, 5], "unknown IDX value type"),
            (header(0x08, [3]) + [1, 2], "truncated"),
            (header(0x08, [65535, 65535, 65535]) + [1], "shape [65535, 65535, 65535] needs 1024 TB"),
            ([0, 0, 8, 2, 0, 0, 0], "truncated header"),
        ]
        for (bytes, message) in cases {
            XCTAssertThrowsError(try IDX.decode(bytes, path: "bad.idx")) { e in
                XCTAssertTrue("\(e)".contains(message) && "\(e)".hasPrefix("bad.idx"), "\(e)")
            }
        }
        XCTAssertThrowsError(try IDX.gunzip([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3], path: "x.gz")) { e in
            XCTAssertTrue("\(e)".contains("gzip"), "\(e)")
        }
    }

    func testReadsTheInstalledFashionMNIST() throws {
        let folder = "/usr/share/datasets/fashion-mnist"
        let test = try IDXDataset.load(folder: folder, split: "test")
        XCTAssertEqual(test.images.shape, [10000, 1, 28, 28])
        XCTAssertEqual(test.labels.count, 10000)
        XCTAssertEqual(Set(test.labels), Set(0..<10))
        XCTAssertEqual(test.images.min(), 0)
        XCTAssertEqual(test.images.max(), 1)
        // Each class has 1,000 test images.
        XCTAssertEqual(test.labels.filter { $0 == 7 }.count, 1000)
        XCTAssertThrowsError(try IDXDataset.load(folder: folder, split: "valid")) { e in XCTAssertTrue("\(e)".contains("splits are train and test")) }
        XCTAssertThrowsError(try IDXDataset.load(folder: "/nonexistent", split: "test"))
    }
}
