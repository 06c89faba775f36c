import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How much memory one tensor may ask for. Every reader of a file (safetensors, NumPy, ONNX,
/// PyTorch, IDX, PNG, JPEG) and every shape a script makes is counted with `checkedElementCount`
/// against this one limit, before anything is allocated, so a file that claims a huge tensor is
/// refused with its size instead of exhausting the machine.
///
/// The limit is `CNN_MAX_MEMORY` when it is set (bytes, or a number with K, M, G or T: `8G`,
/// `1500M`), else half of the machine's physical memory.
public enum MemoryLimit {
    public static let variable = "CNN_MAX_MEMORY"

    /// The limit in bytes.
    nonisolated(unsafe) public static var bytes: Int = initial.bytes

    /// Where the limit comes from, for messages: "CNN_MAX_MEMORY=8G" or "half of this machine's 24 GB".
    nonisolated(unsafe) public static var origin: String = initial.origin

    /// What is wrong with `CNN_MAX_MEMORY`, if it is set to something that is no size (the
    /// default limit then applies; front ends refuse to start with this message).
    nonisolated(unsafe) public static var environmentProblem: String? = initial.problem

    private static let initial = fromEnvironment(ProcessInfo.processInfo.environment)

    /// The limit the environment sets, where it comes from, and what is wrong with the variable.
    public static func fromEnvironment(_ environment: [String: String]) -> (bytes: Int, origin: String, problem: String?) {
        let half = Swift.max(physicalMemory / 2, 64 << 20)
        let fallback = (half, "half of this machine's \(describe(physicalMemory)); \(variable) sets it")
        guard let raw = environment[variable]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else {
            return (fallback.0, fallback.1, nil)
        }
        guard let bytes = parse(raw) else {
            return (fallback.0, fallback.1,
                    "\(variable)=\(raw) is not a size; give bytes or a number with K, M, G or T (as in 8G or 1500M)")
        }
        return (bytes, "\(variable)=\(raw)", nil)
    }

    /// The machine's physical memory in bytes.
    public static var physicalMemory: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return 4 << 30 }
        return pages.multipliedReportingOverflow(by: size).overflow ? Int.max : pages * size
    }

    /// Bytes for "2G", "1.5GB", "1500M", "1500MiB", "800k" or "1073741824" (K, M, G, T are powers of 1024).
    public static func parse(_ text: String) -> Int? {
        var s = text.lowercased().replacingOccurrences(of: " ", with: "")
        for suffix in ["ib", "b"] where s.hasSuffix(suffix) { s.removeLast(suffix.count); break }
        var scale = 1.0
        if let last = s.last, let power = ["k": 1, "m": 2, "g": 3, "t": 4][String(last)] {
            scale = pow(1024, Double(power))
            s.removeLast()
        }
        guard let number = Double(s), number.isFinite, number > 0 else { return nil }
        let bytes = number * scale
        return bytes < Double(Int.max) ? Int(bytes) : nil
    }

    /// A size as people read it: "512 bytes", "3.2 MB", "12 GB" (powers of 1024).
    public static func describe(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) bytes" }
        var value = Double(bytes), unit = 0
        let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return value >= 100 ? "\(Int(value.rounded())) \(units[unit])" : String(format: "%.1f %@", value, units[unit])
    }

    /// The limit as a phrase for messages: "at most 12 GB, the memory limit (half of this machine's 24 GB; ...)".
    public static var phrase: String { "at most \(describe(bytes)), the memory limit (\(origin))" }
}

/// A size read from a file or asked for by a script that is no size, or more than `MemoryLimit` allows.
public struct SizeLimitError: Error, Equatable, CustomStringConvertible {
    /// What was wrong: "shape [-1, 3] has a negative size", "shape [65536, 65536, 3] needs 48 GB; the memory limit is ...".
    public var problem: String
    /// What would be valid.
    public var expected: String

    public var description: String { "\(problem); expected \(expected)" }
}

/// The number of elements of `shape`, checked before anything of that shape is allocated: every
/// size non-negative, the product within an Int, and `bytesPerElement` bytes for each of them
/// within `MemoryLimit.bytes`. `what` names the thing in the message ("tensor 'fc.weight'").
public func checkedElementCount(_ shape: [Int], bytesPerElement: Int = 4, what: @autoclosure () -> String = "") throws -> Int {
    func named(_ text: String) -> String {
        let w = what()
        return w.isEmpty ? text : "\(w): \(text)"
    }
    // The sizes other than 0 must multiply without overflow even when the tensor is empty: code
    // that takes the product in its own order ([2^40, 2^40, 0]) would overflow before the zero.
    var count = 1, overflow = false
    for d in shape {
        guard d >= 0 else {
            throw SizeLimitError(problem: named("shape \(shape) has a negative size"), expected: "sizes of 0 or more")
        }
        if !overflow, d != 0 { (count, overflow) = count.multipliedReportingOverflow(by: d) }
    }
    if shape.contains(0) && !overflow { return 0 }
    let (bytes, tooMany) = count.multipliedReportingOverflow(by: Swift.max(bytesPerElement, 1))
    guard !overflow, !tooMany, bytes <= MemoryLimit.bytes else {
        let size = overflow || tooMany ? "more bytes than can be counted" : MemoryLimit.describe(bytes)
        throw SizeLimitError(problem: named("shape \(shape) needs \(size)"), expected: MemoryLimit.phrase)
    }
    return count
}
