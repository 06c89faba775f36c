import CBLAS
import Foundation

/// The few BLAS calls the engine makes, row-major, on OpenBLAS.
///
/// The engine runs OpenBLAS single-threaded and splits work across its own threads
/// (`Parallel`): im2col and sgemm then run on the same core back to back, with no
/// second pool of spinning BLAS threads contending with the engine's.
public enum BLAS {
    /// Sets OpenBLAS's own thread count (the engine sets 1 at start; `cnn bench` raises it for sgemm).
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The kernel family OpenBLAS runs on this CPU, e.g. "Haswell", "SkylakeX".
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// C = alpha * op(A) * op(B) + beta * C, with op(X) = X or Xᵀ; A is m x k after op, B is k x n.
    @inline(__always)
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            // BLAS leaves C untouched when k = 0 only if beta = 1; make beta's meaning explicit.
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}

extension BLAS {
    /// y = op(A) x with A rows x columns (row-major); op(A) = Aᵀ when `transpose`.
    @inline(__always)
    public static func sgemv(transpose: Bool, rows: Int, columns: Int, a: UnsafePointer<Float>, lda: Int,
                             x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        guard rows > 0, columns > 0 else {
            let n = transpose ? columns : rows
            for i in 0..<max(n, 0) { y[i] = 0 }
            return
        }
        cblas_sgemv(CblasRowMajor, transpose ? CblasTrans : CblasNoTrans, Int32(rows), Int32(columns),
                    1, a, Int32(lda), x, 1, 0, y, 1)
    }
}

/// The engine's own threads: a fixed number of workers over Dispatch's pool.
public enum Parallel {
    /// How many threads the engine splits work across (the CPUs this process may use).
    nonisolated(unsafe) public static var threads: Int = {
        if let s = ProcessInfo.processInfo.environment["CNN_THREADS"], let n = Int(s), n > 0 { return n }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }()

    private static let blasSetUp: Void = {
        BLAS.setThreads(1)
        #if canImport(Glibc)
        // Keep freed activation-sized buffers in the heap for reuse: otherwise glibc hands each
        // large tensor fresh pages from mmap, and touching them costs more than the op itself.
        mallopt(M_MMAP_THRESHOLD, 32 << 20)
        mallopt(M_TRIM_THRESHOLD, 1 << 30)
        #endif
    }()

    /// Runs `body(i)` for i in 0..<count, spread over the engine's threads; inline when count is 1
    /// or the work is too small to be worth a thread hop.
    @inline(__always)
    public static func forEach(_ count: Int, inline: Bool = false, _ body: (Int) -> Void) {
        _ = blasSetUp
        if count <= 1 || inline || threads == 1 || pthread_getspecific(serialKey) != nil || pthread_getspecific(poolKey) != nil {
            for i in 0..<count { body(i) }
            return
        }
        if let pool, pool.workers == threads - 1, pool.run(count, body) { return }
        // The body runs on several threads at once, each index once: every caller writes a
        // part of its output that no other index touches (the kernels' blocks and planes), which
        // is the promise the compiler cannot see through the pointers they capture.
        withoutActuallyEscaping(body) { body in
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: count) { shared.value($0) }
        }
    }

    /// The worker threads, one fewer than the CPUs (the caller is the last): when `threads` is
    /// set to another number (tests), or another thread's job holds them, Dispatch's pool runs the job.
    private static let pool: WorkerPool? = {
        let cpus = max(1, ProcessInfo.processInfo.activeProcessorCount)
        return threads > 1 && threads <= cpus ? WorkerPool(workers: threads - 1) : nil
    }()

    /// Set while a thread runs a piece of a pool's job: a parallel loop inside it runs inline.
    private static let poolKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static func insidePool(_ body: () -> Void) {
        let previous = pthread_getspecific(poolKey)
        pthread_setspecific(poolKey, UnsafeRawPointer(bitPattern: 1))
        body()
        pthread_setspecific(poolKey, previous)
    }

    /// Makes sure BLAS runs single-threaded under the engine's own threads.
    public static func prepare() { _ = blasSetUp }

    /// Marks this thread as one of several doing independent work side by side (several
    /// renders at once): its ops then run on it alone instead of splitting across threads.
    private static let serialKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// Runs `body` with this thread's ops kept on this thread.
    public static func serially<R>(_ body: () throws -> R) rethrows -> R {
        let previous = pthread_getspecific(serialKey)
        pthread_setspecific(serialKey, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(serialKey, previous) }
        return try body()
    }
}

/// A value handed to other threads under a promise the compiler cannot check (see
/// `Parallel.forEach`).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Scratch buffers reused across calls, so hot loops do not allocate.
final class Workspace: @unchecked Sendable {
    static let shared = Workspace()
    private var free: [(UnsafeMutablePointer<Float>, Int)] = []
    private let lock = NSLock()

    /// The calling thread's own workspace, for the scratch of one piece of a parallel job (a
    /// depthwise convolution's padded rows): pieces of tens of microseconds on several threads
    /// had taken turns on the shared one's lock for every piece, and handed each other buffers
    /// that another core had just written.
    static var local: Workspace {
        if let p = pthread_getspecific(localKey) { return Unmanaged<Workspace>.fromOpaque(p).takeUnretainedValue() }
        let w = Workspace()
        pthread_setspecific(localKey, Unmanaged.passRetained(w).toOpaque())
        return w
    }

    /// Each thread's workspace, released with its buffers when the thread ends.
    private static let localKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { p in
            if let p { Unmanaged<Workspace>.fromOpaque(p).release() }
        }
        return key
    }()

    deinit {
        for (p, _) in free { p.deallocate() }
    }

    /// Lends a buffer of at least `count` floats (contents undefined) for the duration of `body`.
    func withBuffer<R>(_ count: Int, _ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        let (p, cap) = take(count)
        defer { give(p, cap) }
        return try body(p)
    }

    private func take(_ count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        lock.lock()
        defer { lock.unlock() }
        if let i = free.firstIndex(where: { $0.1 >= count }) { return free.remove(at: i) }
        if !free.isEmpty {
            // Grow the smallest spare buffer rather than keep many.
            let i = free.indices.min(by: { free[$0].1 < free[$1].1 })!
            let (old, _) = free.remove(at: i)
            old.deallocate()
        }
        let cap = max(count, 1)
        return (UnsafeMutablePointer<Float>.allocate(capacity: cap), cap)
    }

    private func give(_ p: UnsafeMutablePointer<Float>, _ cap: Int) {
        lock.lock()
        free.append((p, cap))
        if free.count > 8 {
            let i = free.indices.min(by: { free[$0].1 < free[$1].1 })!
            free.remove(at: i).0.deallocate()
        }
        lock.unlock()
    }
}
