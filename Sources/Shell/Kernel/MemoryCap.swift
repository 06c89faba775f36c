import Engine
import Foundation
import Script
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A cap on the kernel's resident memory, set with CNN_KERNEL_MEMORY (say `2G`, `1500M`).
///
/// While a cell runs, a watcher thread reads the process's resident size every few
/// milliseconds; once it passes the cap, the watcher asks the running cell to stop, as an
/// interrupt does (between statements, layers and steps), and the cell ends with a
/// MemoryError naming the cap. What the cell had allocated is freed when it ends, and the
/// kernel, with every variable it had, lives on. The cap is a soft one, checked as the work
/// goes: a container's hard limit (a little above it) is the backstop for a single allocation
/// larger than what is left. A cell that starts above the cap (its variables hold more) is
/// stopped only if it grows further, so the cell that frees them runs.
final class MemoryCap: @unchecked Sendable {
    static let variable = "CNN_KERNEL_MEMORY"

    /// The cap in bytes.
    let bytes: Int
    let text: String
    private let cancellation: CancellationFlag
    private let watching = Atomic<Bool>(false)
    private let tripped = Atomic<Int>(0)  // the resident size seen when the cap was passed; 0 if not
    private let baseline = Atomic<Int>(0)  // the resident size when the running cell began
    /// Growth a cell may make before it counts as passing a cap that variables already exceed,
    /// so that the cell that frees them (`xs = 0`) still runs.
    static let slack = 16 << 20
    private let condition = NSCondition()

    /// The cap the environment sets, or nil; a value that is no size is an error naming the variable.
    static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment,
                                cancellation: CancellationFlag) throws -> MemoryCap? {
        guard let raw = environment[variable]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
        guard let bytes = parse(raw) else {
            throw NotebookError("\(variable)=\(raw) is not a size; give bytes or a number with K, M or G (as in 2G or 1500M)")
        }
        guard bytes >= 64 << 20 else {
            throw NotebookError("\(variable)=\(raw) is below 64M, less than the kernel needs to start")
        }
        return MemoryCap(bytes: bytes, cancellation: cancellation)
    }

    /// Bytes for "2G", "1.5GB", "1500M", "1500MiB", "800k" or "1073741824" (K, M, G are powers of 1024).
    static func parse(_ text: String) -> Int? { MemoryLimit.parse(text) }

    init(bytes: Int, cancellation: CancellationFlag) {
        self.bytes = bytes
        self.text = MemoryCap.describe(bytes)
        self.cancellation = cancellation
        let thread = Thread { [unowned self] in self.watch() }
        thread.name = "cnn kernel memory cap"
        thread.start()
    }

    /// A size as people write it: 1.5 GB, 300 MB (powers of 1024).
    static func describe(_ bytes: Int) -> String {
        let mb = Double(bytes) / Double(1 << 20)
        if mb >= 1024 {
            let gb = mb / 1024
            return gb == gb.rounded() ? "\(Int(gb)) GB" : String(format: "%.1f GB", gb)
        }
        return "\(Int(mb.rounded())) MB"
    }

    /// The resident size of this process in bytes (0 where /proc is not there).
    static func residentBytes() -> Int {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// A cell starts: watch until `end`.
    func begin() {
        tripped.store(0, ordering: .relaxed)
        baseline.store(MemoryCap.residentBytes(), ordering: .relaxed)
        condition.lock()
        watching.store(true, ordering: .relaxed)
        condition.signal()
        condition.unlock()
    }

    /// The cell ended: stop watching, give freed memory back to the system, and say whether
    /// the cap was passed (the resident size then, in bytes).
    func end() -> Int? {
        condition.lock()
        watching.store(false, ordering: .relaxed)
        condition.unlock()
        MemoryCap.giveBackFreedMemory()
        let seen = tripped.exchange(0, ordering: .relaxed)
        return seen > 0 ? seen : nil
    }

    /// glibc's malloc_trim(0), looked up at run time (its header is not in the Glibc module):
    /// memory freed by the cell goes back to the system, so the next cell starts from what the
    /// variables really hold.
    static func giveBackFreedMemory() {
        typealias Trim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(nil, "malloc_trim") else { return }  // nil: RTLD_DEFAULT
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }

    private func watch() {
        while true {
            condition.lock()
            while !watching.load(ordering: .relaxed) { condition.wait() }
            condition.unlock()
            while watching.load(ordering: .relaxed) {
                let resident = MemoryCap.residentBytes()
                // Under the lock, so a cell that has just ended is never cancelled after it.
                condition.lock()
                if resident > bytes, resident > baseline.load(ordering: .relaxed) + MemoryCap.slack,
                   watching.load(ordering: .relaxed), tripped.load(ordering: .relaxed) == 0 {
                    tripped.store(resident, ordering: .relaxed)
                    cancellation.cancel()
                }
                condition.unlock()
                usleep(2_000)
            }
        }
    }

    /// The resident size seen when the running cell passed the cap, or nil while it has not.
    var passed: Int? {
        let seen = tripped.load(ordering: .relaxed)
        return seen > 0 ? seen : nil
    }

    /// The error a stopped cell ends with, at the place where it stopped.
    func diagnostic(resident: Int, stoppedAt span: SourceSpan?) -> Diagnostic {
        Diagnostic(.runtime, "this cell passed the kernel's memory cap of \(text) (\(MemoryCap.variable)); it reached "
                   + "\(MemoryCap.describe(resident)) and stopped here. Every variable keeps the value it had; "
                   + "use smaller images or batches, or clear big variables (x = 0)", at: span)
    }

    static let errorName = "MemoryError"
}
