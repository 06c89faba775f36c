// Which OpenBLAS kernel ("core type") to run on this CPU.
//
// Debian's OpenBLAS is built with DYNAMIC_ARCH: it carries kernels for many CPUs and picks
// one when the library is loaded, from the variable OPENBLAS_CORETYPE or from its own CPU
// detection. That detection misses CPUs newer than the library (an AVX-512 Xeon falls back
// to generic kernels at a fifth of the speed), so we choose from the CPU's feature flags,
// and only ever a kernel whose instructions the flags list: a wrong choice is not slow,
// it kills the process with an illegal instruction.
import CBLAS
import Foundation

public enum BLASKernel {
    /// What /proc/cpuinfo says about the first processor.
    public struct CPU: Equatable, Sendable {
        /// `GenuineIntel`, `AuthenticAMD`, ...
        public var vendor: String
        /// The marketing name, e.g. `AMD EPYC 7763 64-Core Processor`.
        public var model: String
        /// The `flags` line, one instruction-set extension per word.
        public var flags: Set<String>

        public init(vendor: String, model: String, flags: Set<String>) {
            self.vendor = vendor
            self.model = model
            self.flags = flags
        }
    }

    /// The name of the environment variable OpenBLAS reads when it is loaded.
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"

    /// Set in the environment of a process that was re-executed to load another kernel,
    /// so that it never re-executes again.
    public static let reexecMarkerVariable = "CNNLAB_BLAS_REEXEC"

    // The extensions each kernel's code uses. Each list includes the one below it, because
    // the AVX-512 kernels fall back to the Haswell code for the routines they do not cover.
    static let haswellFlags: Set<String> = ["avx", "avx2", "fma"]
    static let skylakeXFlags: Set<String> = haswellFlags.union(["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"])
    static let cooperlakeFlags: Set<String> = skylakeXFlags.union(["avx512_bf16"])

    /// The instruction-set extensions the kernel `name` needs (nil for a name we never choose).
    public static func requiredFlags(of name: String) -> Set<String>? {
        switch name.lowercased() {
        case "cooperlake": return cooperlakeFlags
        case "skylakex": return skylakeXFlags
        case "haswell", "zen": return haswellFlags
        default: return nil
        }
    }

    /// The OpenBLAS core type to use on `cpu`, or nil to let OpenBLAS decide.
    ///
    /// Cooperlake where the CPU has AVX-512 with bf16, SkylakeX where it has AVX-512 without
    /// bf16, and with AVX2 and FMA only: Zen on AMD (and Hygon, whose cores are Zen), Haswell
    /// elsewhere. Zen and Haswell run the same sgemm code; Zen is the name OpenBLAS detects by
    /// itself on those CPUs, so choosing it there never costs a re-execution.
    public static func coreType(for cpu: CPU) -> String? {
        if cpu.flags.isSuperset(of: cooperlakeFlags) { return "Cooperlake" }
        if cpu.flags.isSuperset(of: skylakeXFlags) { return "SkylakeX" }
        if cpu.flags.isSuperset(of: haswellFlags) {
            return ["AuthenticAMD", "HygonGenuine"].contains(cpu.vendor) ? "Zen" : "Haswell"
        }
        return nil
    }

    /// The first processor's vendor, model name and flags from the text of /proc/cpuinfo;
    /// nil when the text has no `flags` line (not Linux on x86).
    public static func parseCPUInfo(_ text: String) -> CPU? {
        var vendor = "", model = ""
        var flags: Set<String>?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            // Processors are separated by an empty line; the first one is enough.
            if line.trimmingCharacters(in: .whitespaces).isEmpty && flags != nil { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "vendor_id": vendor = value
            case "model name": model = value
            case "flags": flags = Set(value.split(separator: " ").map(String.init))
            default: break
            }
        }
        guard let flags else { return nil }
        return CPU(vendor: vendor, model: model, flags: flags)
    }

    /// This machine's CPU, from /proc/cpuinfo; nil where that file is missing or has no flags.
    public static func currentCPU(path: String = "/proc/cpuinfo") -> CPU? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return parseCPUInfo(text)
    }

    /// The kernel OpenBLAS loaded in this process, e.g. `Cooperlake`.
    public static var loadedCoreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// How many threads OpenBLAS runs a large sgemm on.
    public static var threadCount: Int { Int(openblas_get_num_threads()) }

    /// Sets the number of OpenBLAS threads (at least 1).
    public static func setThreadCount(_ n: Int) { openblas_set_num_threads(Int32(Swift.max(1, n))) }

    /// One line naming the running BLAS, e.g. `OpenBLAS Cooperlake (2 threads)`.
    public static var summary: String {
        let n = threadCount
        return "OpenBLAS \(loadedCoreName) (\(n) thread\(n == 1 ? "" : "s"))"
    }

    /// Whether a process should re-execute itself with OPENBLAS_CORETYPE set to `chosen`.
    ///
    /// Never when the user set OPENBLAS_CORETYPE (theirs wins), when this process is already
    /// the re-executed one (so it cannot loop), when there is no choice, or when the loaded
    /// kernel is the chosen one already (OpenBLAS spells names in mixed case).
    public static func shouldReexec(environment: [String: String], chosen: String?, loaded: String) -> Bool {
        guard let chosen, !chosen.isEmpty else { return false }
        if let user = environment[coreTypeVariable], !user.isEmpty { return false }
        if environment[reexecMarkerVariable] != nil { return false }
        return chosen.lowercased() != loaded.lowercased()
    }
}
