import ArgumentParser
import Engine
import Foundation

/// `cnn bench`: times each workload and prints one JSON object per line.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the engine's workloads; one JSON line each.",
        discussion: """
            Each line has workload, ms (median over the repeats, after the warm-up runs), \
            gflops (null where no count applies), threads, maxrss_mb (peak resident memory \
            during that workload) and blas (the running kernel). scripts/bench-torch.py \
            prints the same lines for PyTorch.
            """)

    @Option(name: .long, help: ArgumentHelp(
        "Run only this workload: \(workloads.map(\.name).joined(separator: ", ")).", valueName: "name"))
    var only: String?

    @Option(name: .long, help: ArgumentHelp("Timed runs per workload; the median is reported.", valueName: "n"))
    var repeats = 7

    @Option(name: .long, help: ArgumentHelp("Untimed runs per workload before the timed ones.", valueName: "n"))
    var warmup = 2

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more, got \(warmup)") }
        if let only, !workloads.contains(where: { $0.name == only }) {
            let names = workloads.map(\.name)
            let hint = nearest(only, in: names).map { " (did you mean '\($0)'?)" } ?? ""
            throw ValidationError("unknown workload '\(only)'\(hint); the workloads are: \(names.joined(separator: ", "))")
        }
    }

    func run() throws {
        let selected = workloads.filter { only == nil || $0.name == only }
        let blas = BLASKernel.loadedCoreName
        for workload in selected {
            // Counting a network's FLOPs builds it: done before the reset, so it is not part
            // of the workload's memory.
            let flops = workload.flops
            _ = PeakMemory.reset()
            // The inputs are part of the workload's memory, so they are built after the reset.
            let body = try workload.setup()
            for _ in 0..<warmup { try body() }
            var times: [Double] = []
            for _ in 0..<repeats { times.append(try milliseconds(body)) }
            let ms = median(times)
            let result = BenchResult(
                workload: workload.name, ms: ms,
                gflops: ms > 0 ? flops.map { $0 / (ms * 1e6) } : nil,
                threads: Parallel.threads, maxrssMB: PeakMemory.peakMegabytes(), blas: blas)
            print(result.jsonLine)
            fflush(stdout)
        }
    }
}
