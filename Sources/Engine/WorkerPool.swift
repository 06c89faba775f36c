import Foundation
import Synchronization

/// The engine's worker threads: `Parallel.forEach` hands a job to them and works on it itself.
///
/// A network's forward pass is a few hundred parallel steps, many of them tens of microseconds
/// long (the late layers of a mobile network). Waking sleeping threads for each one costs about
/// as much as the step, so after a job the workers keep watching for the next one for a moment
/// (`spinTime`) before they sleep.
///
/// A job is published as a ticket, its number in the high bits and the next index to claim in the
/// low ones. A worker runs index i only after a compare-and-swap moves the ticket of the job it
/// saw from i to i + 1, so a worker that wakes late can never run an index of a newer job with
/// the body of an older one; and the caller returns only when every index has finished.
final class WorkerPool: @unchecked Sendable {
    /// The worker threads besides the caller.
    let workers: Int
    private static let indexBits = 40
    private static let indexMask = (1 << indexBits) - 1
    /// The most indices one job may have.
    static let largestJob = indexMask

    private let ticket = Atomic<Int>(0)
    private let jobCount = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    /// The running job's body: written before its ticket is published, read only by a thread
    /// holding a claimed index of it.
    nonisolated(unsafe) private var body: UnsafeMutablePointer<(Int) -> Void>

    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var sleepers = 0

    /// How long an idle worker watches for the next job before it sleeps.
    static let spinTime: UInt64 = 200_000  // ns

    init(workers: Int) {
        self.workers = workers
        body = .allocate(capacity: 1)
        body.initialize(to: { _ in })
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        for _ in 0..<workers {
            let thread = Thread { [unowned self] in self.work() }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs body(i) for i in 0..<count on the workers and the calling thread; false (having run
    /// nothing) when another thread's job holds the pool.
    func run(_ count: Int, _ job: (Int) -> Void) -> Bool {
        guard count <= WorkerPool.largestJob, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        defer { busy.store(false, ordering: .releasing) }
        return withoutActuallyEscaping(job) { job in
            body.pointee = job
            jobCount.store(count, ordering: .relaxed)
            finished.store(0, ordering: .relaxed)
            let number = (ticket.load(ordering: .relaxed) >> WorkerPool.indexBits) + 1
            ticket.store(number << WorkerPool.indexBits, ordering: .releasing)
            pthread_mutex_lock(&mutex)
            if sleepers > 0 { pthread_cond_broadcast(&wake) }
            pthread_mutex_unlock(&mutex)
            claim(number, count)
            var spins = 0
            while finished.load(ordering: .acquiring) < count {
                spins += 1
                if spins & 1023 == 0 { sched_yield() }
            }
            body.pointee = { _ in }
            return true
        }
    }

    /// Claims and runs indices of job `number` until none is left.
    private func claim(_ number: Int, _ count: Int) {
        while true {
            let t = ticket.load(ordering: .acquiring)
            guard t >> WorkerPool.indexBits == number else { return }
            let i = t & WorkerPool.indexMask
            guard i < count else { return }
            guard ticket.compareExchange(expected: t, desired: t + 1, ordering: .acquiringAndReleasing).exchanged else { continue }
            Parallel.insidePool { body.pointee(i) }
            finished.add(1, ordering: .releasing)
        }
    }

    private func work() {
        var seen = 0
        while true {
            var number = ticket.load(ordering: .acquiring) >> WorkerPool.indexBits
            if number == seen {
                let start = DispatchTime.now().uptimeNanoseconds
                var spins = 0
                while number == seen {
                    spins += 1
                    if spins & 255 == 0, DispatchTime.now().uptimeNanoseconds - start > WorkerPool.spinTime {
                        pthread_mutex_lock(&mutex)
                        sleepers += 1
                        while ticket.load(ordering: .acquiring) >> WorkerPool.indexBits == seen { pthread_cond_wait(&wake, &mutex) }
                        sleepers -= 1
                        pthread_mutex_unlock(&mutex)
                    }
                    number = ticket.load(ordering: .acquiring) >> WorkerPool.indexBits
                }
            }
            seen = number
            claim(number, jobCount.load(ordering: .relaxed))
        }
    }
}
