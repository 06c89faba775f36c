import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The peak resident memory of this process.
///
/// Linux keeps the high-water mark in /proc/self/status (VmHWM) and lets a process reset it
/// to the current size by writing "5" to /proc/self/clear_refs, which gives the peak of one
/// workload. Where that is not allowed, the peak of the whole process so far (getrusage).
enum PeakMemory {
    /// Resets the high-water mark; false when the kernel does not allow it.
    static func reset() -> Bool {
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return write(fd, "5", 1) == 1
    }

    /// Megabytes (2^20 bytes) at the peak since the last reset, or since the process began.
    static func peakMegabytes() -> Double {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kB = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") {
            return kB / 1024
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
    }
}

/// Milliseconds taken by one call of `body`.
func milliseconds(_ body: () throws -> Void) rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try body()
    let d = clock.now - start
    return Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15
}

/// The middle value (the mean of the two middle ones for an even count).
func median(_ values: [Double]) -> Double {
    precondition(!values.isEmpty, "median of no values")
    let s = values.sorted()
    let mid = s.count / 2
    return s.count % 2 == 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/// One result line of `cnn bench`, written as JSON with its fields in a fixed order.
struct BenchResult {
    let workload: String
    let ms: Double
    let gflops: Double?
    let threads: Int
    let maxrssMB: Double
    let blas: String

    var jsonLine: String {
        let fields = [
            ("workload", jsonString(workload)),
            ("ms", String(format: "%.3f", ms)),
            // One decimal, or three significant digits below 1 (tiny workloads such as LeNet).
            ("gflops", gflops.map { String(format: $0 >= 1 ? "%.1f" : "%.3g", $0) } ?? "null"),
            ("threads", String(threads)),
            ("maxrss_mb", String(format: "%.1f", maxrssMB)),
            ("blas", jsonString(blas)),
        ]
        return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
    }
}

/// `s` as a JSON string literal.
func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}
