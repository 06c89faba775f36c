import Engine
import Foundation
@testable import Models
import XCTest

final class ElementTypeTests: XCTestCase {
    func testHalfPrecisionEdgeCases() {
        XCTAssertEqual(floatFromHalf(0x3c00), 1)
        XCTAssertEqual(floatFromHalf(0xc000), -2)
        XCTAssertEqual(floatFromHalf(0x7bff), 65504, "largest finite half")
        XCTAssertEqual(floatFromHalf(0x0400), 0x1p-14, "smallest normal half")
        XCTAssertEqual(floatFromHalf(0x0001), 0x1p-24, "smallest subnormal half")
        XCTAssertEqual(floatFromHalf(0x03ff), 1023 * 0x1p-24, "largest subnormal half")
        XCTAssertEqual(floatFromHalf(0x8000).sign, .minus)
        XCTAssertEqual(floatFromHalf(0x8000), 0)
        XCTAssertEqual(floatFromHalf(0x7c00), .infinity)
        XCTAssertEqual(floatFromHalf(0xfc00), -.infinity)
        XCTAssertTrue(floatFromHalf(0x7e00).isNaN)
    }

    func testEveryHalfRoundTripsThroughFloat() {
        // Float16 → Float is exact, so narrowing back with round-to-nearest must give the same bits.
        for bits in UInt16.min...UInt16.max {
            let f = floatFromHalf(bits)
            if f.isNaN { continue }
            let back = halfBits(f)
            XCTAssertEqual(back, bits, "0x\(String(bits, radix: 16))")
            if back != bits { return }
        }
    }

    /// Float → half bits by hand (round to nearest even), independent of the code under test.
    private func halfBits(_ f: Float) -> UInt16 {
        let sign: UInt16 = f.sign == .minus ? 0x8000 : 0
        let a = abs(f)
        if a.isInfinite { return sign | 0x7c00 }
        if a == 0 { return sign }
        if a < 0x1p-14 { return sign | UInt16((a / 0x1p-24).rounded(.toNearestOrEven)) }
        let exponent = Int(a.exponent)
        let mantissa = UInt16(((a / Float(sign: .plus, exponent: exponent, significand: 1) - 1) * 1024).rounded(.toNearestOrEven))
        return sign | UInt16(exponent + 15) << 10 | mantissa
    }

    func testDecodesEveryTypeLittleAndBigEndian() {
        func decode(_ bytes: [UInt8], _ type: ElementType, big: Bool = false) -> [Float] {
            bytes.withUnsafeBytes { decodeScalars($0, as: type, bigEndian: big) }
        }
        XCTAssertEqual(decode([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0], .float32), [1, -2])
        XCTAssertEqual(decode([0x3f, 0x80, 0, 0], .float32, big: true), [1])
        XCTAssertEqual(decode([0x80, 0x3f], .bfloat16), [1])
        XCTAssertEqual(decode([0, 0, 0, 0, 0, 0, 0xf0, 0x3f], .float64), [1])
        XCTAssertEqual(decode([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], .int64), [-1])
        XCTAssertEqual(decode([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], .uint64), [0x1p64], "2^64 − 1 rounds to 2^64")
        XCTAssertEqual(decode([0xfe, 0xff, 0xff, 0xff], .int32), [-2])
        XCTAssertEqual(decode([0, 1], .int16, big: true), [1])
        XCTAssertEqual(decode([0x80, 0x7f], .int8), [-128, 127])
        XCTAssertEqual(decode([0xff, 0x00], .uint8), [255, 0])
        XCTAssertEqual(decode([0, 1, 2], .bool), [0, 1, 1])
        XCTAssertEqual(decode([1, 2, 3], .int16), [513], "a trailing partial element is ignored")
        XCTAssertEqual([UInt8]([0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).withUnsafeBytes { decodeIntegers($0, as: .int64) },
                       [Int.max - 2], "integers keep values a float cannot")
    }

    func testGatherFollowsStrides() throws {
        let source: [Float] = (0..<12).map(Float.init)
        // The transpose of a row-major 3x4 block is a 4x3 view with strides (1, 4).
        let transposed = source.withUnsafeBufferPointer { gather($0, shape: [4, 3], strides: [1, 4], offset: 0) }
        XCTAssertEqual(transposed, [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11])
        let broadcast = source.withUnsafeBufferPointer { gather($0, shape: [2, 3], strides: [0, 1], offset: 5) }
        XCTAssertEqual(broadcast, [5, 6, 7, 5, 6, 7])
        let scalar = source.withUnsafeBufferPointer { gather($0, shape: [], strides: [], offset: 11) }
        XCTAssertEqual(scalar, [11])
        XCTAssertEqual(try lastIndex(shape: [4, 3], strides: [1, 4], offset: 0), 11)
        XCTAssertNil(try lastIndex(shape: [0, 3], strides: [1, 4], offset: 100))
        XCTAssertThrowsError(try lastIndex(shape: [Int.max, 3], strides: [Int.max, 1], offset: 0))
    }

    func testMessagesReadAsOneLine() {
        let error = ModelFileError(path: "/m/w.safetensors", problem: "tensor 'a' has dtype 'C64'", expected: "one of F32, F16")
        XCTAssertEqual(error.description, "/m/w.safetensors: tensor 'a' has dtype 'C64'; expected one of F32, F16")
        XCTAssertEqual(ModelFileError(path: "x.npy", problem: "no such file").description, "x.npy: no such file")
    }
}
