import ArgumentParser
import Engine
import Foundation
import Models

/// `cnn bench`: times each workload and prints one JSON object per line.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time the engine's workloads; one JSON line each.",
        discussion: """
            Each line has workload, ms (median over the repeats, after the warm-up runs), \
            gflops (null where no count applies), threads, maxrss_mb (peak resident memory \
            during that workload) and blas (the running kernel). scripts/bench-torch.py \
            prints the same lines for PyTorch.

            With --model FILE (an ONNX graph, or a network saved by cnnlab), the one workload \
            is that network's forward pass on a random input of the size its spec names (or \
            --input); --layers then prints, after it, one line per layer kind with its \
            share of the time, and every layer in order with its time, its GFLOP/s and \
            its output's shape.
            """)

    @Option(name: .long, help: ArgumentHelp(
        "Run only this workload: \(workloads.map(\.name).joined(separator: ", ")).", valueName: "name"))
    var only: String?

    @Option(name: .long, help: ArgumentHelp("Timed runs per workload; the median is reported.", valueName: "n"))
    var repeats = 7

    @Option(name: .long, help: ArgumentHelp("Untimed runs per workload before the timed ones.", valueName: "n"))
    var warmup = 2

    @Option(name: .long, help: ArgumentHelp("Time this network's forward pass instead (.onnx, or .safetensors written by save).",
                                            valueName: "file"))
    var model: String?

    @Option(name: .long, help: ArgumentHelp("With --model: the input's shape, e.g. 1,3,224,224 (default: the network's spec, batch 1).",
                                            valueName: "shape"))
    var input: String?

    @Flag(name: .long, help: "With --model: the time of each layer kind and of every layer.")
    var layers = false

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be 0 or more, got \(warmup)") }
        if model == nil, input != nil || layers { throw ValidationError("--input and --layers go with --model FILE") }
        if model != nil, only != nil { throw ValidationError("--only picks a built-in workload; --model times a network of its own") }
        if let input, parseShape(input) == nil {
            throw ValidationError("--input must be a shape of positive sizes separated by commas, like 1,3,224,224; got '\(input)'")
        }
        if let only, !workloads.contains(where: { $0.name == only }) {
            let names = workloads.map(\.name)
            let hint = nearest(only, in: names).map { " (did you mean '\($0)'?)" } ?? ""
            throw ValidationError("unknown workload '\(only)'\(hint); the workloads are: \(names.joined(separator: ", "))")
        }
    }

    func run() throws {
        if let model { return try runModel(model) }
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

/// A shape written as sizes separated by commas ("1,3,224,224"), nil unless every size is positive.
private func parseShape(_ text: String) -> [Int]? {
    let sizes = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !sizes.isEmpty, sizes.allSatisfy({ ($0 ?? 0) > 0 }) else { return nil }
    return sizes.map { $0! }
}

extension Bench {
    /// `--model FILE`: the network's forward pass as the one workload, and with `--layers` where its time goes.
    func runModel(_ path: String) throws {
        let network: Network
        do { network = try NetworkFiles.load(path) } catch { throw ValidationError("\(error)") }
        let shape: [Int]
        if let input, let s = parseShape(input) {
            shape = s
        } else if let spec = network.spec, spec.height > 0, spec.width > 0 {
            shape = [1, spec.channels, spec.height, spec.width]
        } else {
            throw ValidationError("\(path) names no input size; give one with --input, like --input 1,3,224,224")
        }
        let flops: Double
        do { flops = try network.forwardFlops(input: shape) } catch { throw ValidationError("input \(shape): \(error)") }
        let x = Tensor.randn(shape, seed: 1)
        let context = ForwardContext()
        // Per node: the seconds of every timed run.
        var byNode: [String: (kind: String, seconds: [Double])] = [:]
        var order: [String] = []
        _ = PeakMemory.reset()
        for _ in 0..<warmup { _ = try network.forward(Variable(x), context: context) }
        if layers {
            context.nodeTimer = { name, kind, seconds in
                if byNode[name] == nil { order.append(name); byNode[name] = (kind, []) }
                byNode[name]!.seconds.append(seconds)
            }
        }
        var times: [Double] = []
        for _ in 0..<repeats { times.append(try milliseconds { _ = try network.forward(Variable(x), context: context) }) }
        let ms = median(times)
        print(BenchResult(workload: "model.forward", ms: ms, gflops: ms > 0 ? flops / (ms * 1e6) : nil,
                          threads: Parallel.threads, maxrssMB: PeakMemory.peakMegabytes(), blas: BLASKernel.loadedCoreName).jsonLine)
        guard layers else { return }
        // Each node's median, summed by kind; the nodes' sum beside the whole pass's median.
        let shapes = try network.shapes(for: shape)
        let inputsOf = Dictionary(uniqueKeysWithValues: network.nodes.map { ($0.name, $0) })
        let nodeMs = order.map { ($0, byNode[$0]!.kind, median(byNode[$0]!.seconds) * 1e3) }
        let total = nodeMs.reduce(0) { $0 + $1.2 }
        var kinds: [String: (ms: Double, count: Int)] = [:]
        for (_, kind, t) in nodeMs { kinds[kind, default: (0, 0)].ms += t; kinds[kind, default: (0, 0)].count += 1 }
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func number(_ v: Double, _ digits: Int, _ width: Int) -> String {
            let s = String(format: "%.\(digits)f", v)
            return String(repeating: " ", count: max(0, width - s.count)) + s
        }
        print(pad("kind", 28) + " layers        ms   share")
        for (kind, v) in kinds.sorted(by: { $0.value.ms > $1.value.ms }) {
            print(pad(kind, 28) + number(Double(v.count), 0, 7) + number(v.ms, 3, 10) + number(100 * v.ms / max(total, 1e-12), 1, 7) + "%")
        }
        print(pad("sum of the layers", 28) + number(Double(nodeMs.count), 0, 7) + number(total, 3, 10) + "  (the whole pass: \(String(format: "%.3f", ms)))")
        print("every layer in order (ms, GFLOP/s, kind, name, output shape):")
        for (name, kind, t) in nodeMs {
            var rate = "      -"
            if let node = inputsOf[name], let out = shapes[name] {
                let madds = node.layer.multiplyAdds(node.inputs.compactMap { shapes[$0] }, output: out)
                if madds > 0 { rate = number(2 * Double(madds) / (t * 1e6), 1, 7) }
            }
            print("  " + number(t, 3, 8) + " " + rate + "  " + pad(kind, 20) + " " + pad(name, 32) + " \(shapes[name] ?? [])")
        }
    }
}
