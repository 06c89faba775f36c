import Engine
import Foundation

/// The number types weight files store. Every loader reads each of them into float32:
/// integers and booleans convert exactly up to 2^24 (booleans become 0 and 1), float64
/// rounds to nearest, float16 and bfloat16 widen exactly.
public enum ElementType: String, CaseIterable, Sendable {
    case float32, float64, float16, bfloat16
    case int64, int32, int16, int8
    case uint64, uint32, uint16, uint8
    case bool

    /// Bytes per element in a file.
    public var byteCount: Int {
        switch self {
        case .float64, .int64, .uint64: return 8
        case .float32, .int32, .uint32: return 4
        case .float16, .bfloat16, .int16, .uint16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }

    /// Whether the type holds integers (or booleans), whose exact values some formats keep on the side.
    public var isInteger: Bool {
        switch self {
        case .float32, .float64, .float16, .bfloat16: return false
        default: return true
        }
    }
}

#if _endian(big)
#error("the writers emit the host's float32 bytes as little-endian; a big-endian host needs byte swapping there")
#endif

/// Converts the elements packed in `bytes` to Float. `bytes.count` is a whole number of elements
/// (callers check sizes against the file first; a trailing partial element is ignored).
func decodeScalars(_ bytes: UnsafeRawBufferPointer, as type: ElementType, bigEndian: Bool = false) -> [Float] {
    let count = bytes.count / type.byteCount
    return [Float](unsafeUninitializedCapacity: count) { out, initialized in
        func each<T: FixedWidthInteger>(_: T.Type, _ convert: (T) -> Float) {
            for i in 0..<count {
                let raw = bytes.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)
                out[i] = convert(bigEndian ? T(bigEndian: raw) : T(littleEndian: raw))
            }
        }
        switch type {
        case .float32: each(UInt32.self) { Float(bitPattern: $0) }
        case .float64: each(UInt64.self) { Float(Double(bitPattern: $0)) }
        case .float16: each(UInt16.self, floatFromHalf)
        case .bfloat16: each(UInt16.self) { Float(bitPattern: UInt32($0) << 16) }  // the top half of a float32
        case .int64: each(Int64.self) { Float($0) }
        case .int32: each(Int32.self) { Float($0) }
        case .int16: each(Int16.self) { Float($0) }
        case .int8: each(Int8.self) { Float($0) }
        case .uint64: each(UInt64.self) { Float($0) }
        case .uint32: each(UInt32.self) { Float($0) }
        case .uint16: each(UInt16.self) { Float($0) }
        case .uint8: each(UInt8.self) { Float($0) }
        case .bool: each(UInt8.self) { $0 == 0 ? 0 : 1 }
        }
        initialized = count
    }
}

/// Reads integer elements exactly (for shapes and axes stored as int64 tensors).
func decodeIntegers(_ bytes: UnsafeRawBufferPointer, as type: ElementType) -> [Int]? {
    let count = bytes.count / type.byteCount
    func each<T: FixedWidthInteger>(_: T.Type) -> [Int]? {
        var out: [Int] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
            guard let exact = Int(exactly: v) else { return nil }
            out.append(exact)
        }
        return out
    }
    switch type {
    case .int64: return each(Int64.self)
    case .int32: return each(Int32.self)
    case .int16: return each(Int16.self)
    case .int8: return each(Int8.self)
    case .uint64: return each(UInt64.self)
    case .uint32: return each(UInt32.self)
    case .uint16: return each(UInt16.self)
    case .uint8, .bool: return each(UInt8.self)
    case .float32, .float64, .float16, .bfloat16: return nil
    }
}

/// IEEE 754 half precision to single: sign, 5-bit exponent (bias 15), 10-bit mantissa.
func floatFromHalf(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1f
    let mantissa = UInt32(h & 0x3ff)
    switch exponent {
    case 0:  // zero or subnormal: ±mantissa · 2^-24
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    case 31:  // infinity or NaN
        return Float(bitPattern: sign | 0x7f80_0000 | mantissa << 13)
    default:  // rebias the exponent from 15 to 127
        return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }
}

// MARK: - Sizes without overflow

/// a · b, or a problem if it does not fit in an Int.
func checkedMultiply(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
    let (product, overflow) = a.multipliedReportingOverflow(by: b)
    if overflow { throw FormatProblem("\(what()) is too large to address") }
    return product
}

/// a + b, or a problem if it does not fit in an Int.
func checkedAdd(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
    let (sum, overflow) = a.addingReportingOverflow(b)
    if overflow { throw FormatProblem("\(what()) is too large to address") }
    return sum
}

/// The number of elements of `shape`, counted by `checkedElementCount`: every dimension
/// non-negative, and the tensor (as float32, as it is decoded) within `MemoryLimit`.
func elementCount(of shape: [Int]) throws -> Int {
    do { return try checkedElementCount(shape) }
    catch let e as SizeLimitError { throw FormatProblem(e.problem, expected: e.expected) }
}

/// The bytes `shape` elements of `type` occupy, checked for overflow.
func byteCount(of shape: [Int], _ type: ElementType) throws -> Int {
    try checkedMultiply(try elementCount(of: shape), type.byteCount, "shape \(shape)")
}

// MARK: - Strided views

/// The largest element index a strided view reads, offset + Σ (size_k − 1)·stride_k,
/// or nil for an empty view. Strides must be non-negative.
func lastIndex(shape: [Int], strides: [Int], offset: Int) throws -> Int? {
    guard shape.count == strides.count else {
        throw FormatProblem("size \(shape) and stride \(strides) have different lengths")
    }
    guard offset >= 0 else { throw FormatProblem("storage offset \(offset) is negative") }
    if shape.contains(0) { return nil }
    var last = offset
    for (size, stride) in zip(shape, strides) {
        guard size > 0 else { throw FormatProblem("size \(shape) has a negative dimension") }
        guard stride >= 0 else { throw FormatProblem("stride \(strides) has a negative step") }
        last = try checkedAdd(last, try checkedMultiply(size - 1, stride, "stride \(strides)"), "stride \(strides)")
    }
    return last
}

/// The row-major elements of a strided view of `source`: element (i0, i1, ...) is
/// source[offset + Σ i_k·strides[k]]. The caller has checked `lastIndex` against `source.count`.
func gather(_ source: UnsafeBufferPointer<Float>, shape: [Int], strides: [Int], offset: Int) -> [Float] {
    let count = shape.reduce(1, *)
    guard count > 0 else { return [] }
    guard !shape.isEmpty else { return [source[offset]] }
    let rank = shape.count
    let innerSize = shape[rank - 1], innerStride = strides[rank - 1]
    return [Float](unsafeUninitializedCapacity: count) { out, initialized in
        var index = [Int](repeating: 0, count: rank)
        var base = offset
        var o = 0
        while o < count {
            for j in 0..<innerSize { out[o + j] = source[base + j * innerStride] }
            o += innerSize
            // Advance the odometer over the outer dimensions.
            var k = rank - 2
            while k >= 0 {
                index[k] += 1
                base += strides[k]
                if index[k] < shape[k] { break }
                base -= strides[k] * shape[k]
                index[k] = 0
                k -= 1
            }
        }
        initialized = count
    }
}
