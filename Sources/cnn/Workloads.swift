import CBLAS
import Engine
import Visualize

/// One thing `cnn bench` times.
struct Workload {
    /// The name shared with scripts/bench-torch.py, e.g. `conv3x3.forward`.
    let name: String
    /// Floating-point operations in one timed run (a multiply-add counts 2); nil where no
    /// count applies.
    var flops: Double? { count() }
    /// Builds the inputs (not timed) and returns the work to time, which is run many times.
    let setup: () throws -> () throws -> Void
    /// Evaluated when the figure is printed, so listing workloads builds no network.
    private let count: () -> Double?

    init(name: String, flops: @autoclosure @escaping () -> Double?, setup: @escaping () throws -> () throws -> Void) {
        self.name = name
        self.count = flops
        self.setup = setup
    }
}

/// FLOP counts, the same formulas as scripts/bench-torch.py.
enum FLOPs {
    /// C[m×n] = A[m×k] · B[k×n]: 2·m·n·k.
    static func matmul(m: Int, n: Int, k: Int) -> Double { 2 * Double(m) * Double(n) * Double(k) }

    /// A convolution of N images, C input and K output channels, a kh×kw kernel and an OH×OW
    /// output: 2·N·K·(C/groups)·kh·kw·OH·OW. Each backward pass (to the input, to the
    /// weights) is one matrix product of the same size, so it counts the same.
    static func conv2d(n: Int, c: Int, k: Int, kh: Int, kw: Int, oh: Int, ow: Int, groups: Int = 1) -> Double {
        2 * Double(n) * Double(k) * Double(c / groups) * Double(kh) * Double(kw) * Double(oh) * Double(ow)
    }
}

/// Every workload, in the order `cnn bench` runs them: sgemm (the practical limit the others
/// are read against), then the engine's own (Sources/Engine/Architectures.swift).
let workloads: [Workload] = [
    Workload(name: "sgemm.2048", flops: FLOPs.matmul(m: 2048, n: 2048, k: 2048)) {
        let n = 2048
        let a = Tensor.randn([n, n], seed: 1), b = Tensor.randn([n, n], seed: 2)
        var c = Tensor(zeros: [n, n])
        return {
            // C = A · B, row-major, on OpenBLAS's own threads (as many as the engine uses);
            // the engine's own work runs OpenBLAS single-threaded under its threads.
            BLAS.setThreads(Parallel.threads)
            defer { BLAS.setThreads(1) }
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n),
                                    1, pa.baseAddress, Int32(n), pb.baseAddress, Int32(n), 0, pc.baseAddress, Int32(n))
                    }
                }
            }
        }
    },
]
+ EngineBenchmarks.all.map { Workload(name: $0.name, flops: $0.flops, setup: $0.prepare) }
+ [
    // One step of class model visualization on VGG16: the saliency pass plus the image update.
    Workload(name: "vgg16.classviz_step", flops: 2 * EngineBenchmarks.vgg16Flops) {
        let net = try Network.vgg16()
        return { _ = try classModel(net, class: 0, steps: 1, learningRate: 1, l2: 0.01) }
    },
    // One step of the default class-model recipe on EfficientNet-Lite0 (random weights): the
    // Fourier image with decorrelated colour, Lucid's random transforms, the forward and
    // backward passes at 224, and Adam's update.
    Workload(name: "effnet.render_step", flops: 2 * EngineBenchmarks.effnetFlops) {
        let net = try Network.efficientNetLite(EfficientNetLiteVariant.all[0])
        net.spec = InputSpec(channels: 3, height: 224, width: 224, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
        var options = RenderOptions(steps: 1, redirectSteps: 0)
        var seed: UInt64 = 0
        return {
            seed += 1
            options.seed = seed
            _ = try render(net, Objective(.logit(0)), options: options)
        }
    },
]
