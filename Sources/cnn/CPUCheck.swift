import Foundation

/// The engine's kernels are compiled for Haswell's instruction set on x86-64 (AVX2 and FMA, see
/// Package.swift), so on a CPU without them its first loop would stop the process with an illegal
/// instruction. This runs before any engine code and says what is missing instead. It reads the
/// kernel's view of the CPU (/proc/cpuinfo, or the file CNN_CPUINFO names, which is how the test of
/// this message stands in for an older CPU), which also reflects what a virtual machine passes on.
/// Returns nil where everything needed is there, or where the CPU cannot be read (then we go on).
func missingCPUFeatures() -> [String]? {
    let path = ProcessInfo.processInfo.environment["CNN_CPUINFO"] ?? "/proc/cpuinfo"
    let cpuinfo = try? String(contentsOfFile: path, encoding: .utf8)
    #if arch(x86_64)
    guard let cpuinfo, let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
          let colon = line.firstIndex(of: ":") else { return nil }
    let flags = Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    let missing = ["avx", "avx2", "fma"].filter { !flags.contains($0) }
    return missing.isEmpty ? nil : missing
    #else
    return nil
    #endif
}
