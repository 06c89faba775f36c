import Foundation
import XCTest
@testable import Engine

/// The engine's worker threads (WorkerPool) run every index of a job exactly once before the
/// caller returns, job after job, and give each thread a contiguous share of the indices.
final class WorkerPoolTests: XCTestCase {
    /// Pools live as long as the process, as the engine's one does (its threads never end).
    nonisolated(unsafe) private static let pools = [1: WorkerPool(workers: 1), 3: WorkerPool(workers: 3)]

    /// Runs `count` indices on `pool`, each doing a little work, and returns the thread each ran on.
    private func threadsOfIndices(_ pool: WorkerPool, _ count: Int, work: Int = 200) -> [pthread_t?] {
        var ran = [pthread_t?](repeating: nil, count: count)
        var runs = [Int](repeating: 0, count: count)
        ran.withUnsafeMutableBufferPointer { ranBuffer in
            runs.withUnsafeMutableBufferPointer { runsBuffer in
                let r = UncheckedSendable((ranBuffer.baseAddress!, runsBuffer.baseAddress!))
                XCTAssertTrue(pool.run(count) { i in
                    var x = Float(i)
                    for _ in 0..<work { x = x * 0.999 + 1 }
                    r.value.0[i] = pthread_self()
                    r.value.1[i] += x > -1 ? 1 : 0
                })
            }
        }
        XCTAssertEqual(runs, [Int](repeating: 1, count: count), "every index runs exactly once")
        return ran
    }

    func testEveryIndexRunsOnceJobAfterJob() {
        for workers in [1, 3] {
            let pool = Self.pools[workers]!
            for count in [1, 2, 3, 5, 8, 63, 1000, 100_000] { _ = threadsOfIndices(pool, count, work: count > 1000 ? 0 : 200) }
            // Thousands of short jobs in a row: a worker still busy with an old one must never
            // run an index of the next with the old body, nor miss one.
            for job in 0..<3000 {
                let count = 1 + job % 17
                var sums = [Int](repeating: 0, count: count)
                sums.withUnsafeMutableBufferPointer { b in
                    let p = UncheckedSendable(b.baseAddress!)
                    XCTAssertTrue(pool.run(count) { i in p.value[i] += job })
                }
                if sums != [Int](repeating: job, count: count) { XCTFail("job \(job) ran \(sums)"); return }
            }
        }
    }

    func testEachThreadsShareIsContiguous() {
        let pool = Self.pools[1]!
        let caller = pthread_self()
        for count in [2, 9, 64, 501] {
            for _ in 0..<20 {
                let ran = threadsOfIndices(pool, count)
                // The caller's own range is the first half, run from its front; the worker's is
                // the second half, and the caller takes what it steals from that one's back.
                let half = count / 2
                let callerRan = ran.map { pthread_equal($0!, caller) != 0 }
                let first = callerRan[..<half], second = callerRan[half...]
                XCTAssertTrue(first.drop(while: { $0 }).allSatisfy { !$0 }, "caller's own share runs from its front: \(callerRan)")
                XCTAssertTrue(second.drop(while: { !$0 }).allSatisfy { $0 }, "stolen indices come from the back: \(callerRan)")
            }
        }
    }

    func testAJobTooLargeIsLeftToTheCaller() {
        let pool = Self.pools[1]!
        XCTAssertFalse(pool.run(WorkerPool.largestJob + 1) { _ in XCTFail("nothing runs") })
    }
}
