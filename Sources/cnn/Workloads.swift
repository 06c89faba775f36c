import Engine
import Models
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

/// FLOPs of one forward pass on 224 x 224, counted from the layer shapes (Network.forwardFlops,
/// whose convolutions count as Convolution.flops does) once, when first asked for.
private let vgg16Flops: Double = (try? Network.vgg16().forwardFlops(input: [1, 3, 224, 224])) ?? 0
private let effnetFlops: Double = (try? Network.efficientNetLite().forwardFlops(input: [1, 3, 224, 224])) ?? 0

/// A convolution workload: forward, or backward to the input / weights from a fixed dy.
private func convolution(_ name: String, x: [Int], w: [Int], options: ConvOptions) -> Workload {
    let pass = name.split(separator: ".").last.map(String.init) ?? "forward"
    let conv = try! Convolution(input: x, weight: w, options: options)
    return Workload(name: name, flops: conv.flops) {
        let xt = Tensor.randn(x, seed: 1), wt = Tensor.randn(w, std: 0.05, seed: 2), b = Tensor.randn([w[0]], seed: 3)
        let dy = Tensor.randn(conv.outputShape, seed: 4)
        switch pass {
        case "forward": return { _ = conv.forward(xt, wt, bias: b) }
        case "backward_input": return { _ = conv.backwardInput(dy, wt) }
        default: return { _ = conv.backwardWeight(dy, xt) }
        }
    }
}

/// The gradient of the largest score with respect to the input, the pass behind a saliency
/// map and one step of a class model.
private func inputGradient(_ net: Network, _ x: Tensor) throws {
    _ = try net.gradients(at: x) { out in try slice(out, [.at(0), .at(out.value.argmax())]) }
}

private let conv3 = ([1, 128, 56, 56], [256, 128, 3, 3], ConvOptions(padding: 1))
private let conv11 = ([1, 3, 224, 224], [96, 3, 11, 11], ConvOptions(stride: 4, padding: 2))

/// Every workload, in the order `cnn bench` runs them: sgemm (the practical limit the others
/// are read against), single convolutions, then whole networks (Sources/Models/Architectures.swift).
let workloads: [Workload] = [
    // C[m×n] = A[m×k] · B[k×n]: 2·m·n·k.
    Workload(name: "sgemm.2048", flops: 2 * 2048 * 2048 * 2048) {
        let n = 2048
        let a = Tensor.randn([n, n], seed: 1), b = Tensor.randn([n, n], seed: 2)
        var c = Tensor(zeros: [n, n])
        return {
            // On OpenBLAS's own threads (as many as the engine uses); the engine's own work
            // runs OpenBLAS single-threaded under its threads.
            BLAS.setThreads(Parallel.threads)
            defer { BLAS.setThreads(1) }
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        BLAS.sgemm(m: n, n: n, k: n, a: pa.baseAddress!, lda: n, b: pb.baseAddress!, ldb: n, c: pc.baseAddress!, ldc: n)
                    }
                }
            }
        }
    },
    convolution("conv3x3.forward", x: conv3.0, w: conv3.1, options: conv3.2),
    convolution("conv3x3.backward_input", x: conv3.0, w: conv3.1, options: conv3.2),
    convolution("conv3x3.backward_weights", x: conv3.0, w: conv3.1, options: conv3.2),
    convolution("conv11s4.forward", x: conv11.0, w: conv11.1, options: conv11.2),
    convolution("conv11s4.backward_input", x: conv11.0, w: conv11.1, options: conv11.2),
    Workload(name: "vgg16.forward", flops: vgg16Flops) {
        let net = try Network.vgg16()
        let x = Tensor.randn([1, 3, 224, 224], seed: 5)
        return { _ = try net(x) }
    },
    // A saliency map is the forward pass plus the input gradient of every layer: as many
    // multiply-adds again as the forward pass.
    Workload(name: "vgg16.saliency", flops: 2 * vgg16Flops) {
        let net = try Network.vgg16()
        let x = Tensor.randn([1, 3, 224, 224], seed: 5)
        return { try inputGradient(net, x) }
    },
    // EfficientNet-Lite0 with random weights: the time does not depend on the values.
    Workload(name: "effnet.forward", flops: effnetFlops) {
        let net = try Network.efficientNetLite()
        let x = Tensor.randn([1, 3, 224, 224], seed: 7)
        return { _ = try net(x) }
    },
    // One step of a class visualisation: the gradient of one logit (the largest) to the input.
    Workload(name: "effnet.classviz_step", flops: 2 * effnetFlops) {
        let net = try Network.efficientNetLite()
        let x = Tensor.randn([1, 3, 224, 224], seed: 7)
        return { try inputGradient(net, x) }
    },
    Workload(name: "lenet.forward_backward", flops: nil) {
        let net = try Network.lenet()
        let x = Tensor.randn([1, 1, 28, 28], seed: 6)
        return { try inputGradient(net, x) }
    },
    // One step of class model visualization on VGG16: the saliency pass plus the image update.
    Workload(name: "vgg16.classviz_step", flops: 2 * vgg16Flops) {
        let net = try Network.vgg16()
        return { _ = try classModel(net, class: 0, steps: 1, learningRate: 1, l2: 0.01) }
    },
    // One step of the default class-model recipe on EfficientNet-Lite0 (random weights): the
    // Fourier image with decorrelated colour, Lucid's random transforms, the forward and
    // backward passes at 224, and Adam's update.
    Workload(name: "effnet.render_step", flops: 2 * effnetFlops) {
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
