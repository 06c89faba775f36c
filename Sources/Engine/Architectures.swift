/// Network layouts built in code (weights random until loaded): the benchmark and teaching nets.
extension Network {
    /// VGG16 as torchvision builds it: thirteen 3x3 convolutions (pad 1) in five blocks with
    /// max pooling, adaptive average pooling to 7x7, and three fully connected layers (dropout
    /// between them). Parameter names follow torchvision's numbering (features.0.weight → conv
    /// names here: features_0, classifier_0, ...).
    public static func vgg16(classes: Int = 1000, seed: UInt64 = 0) throws -> Network {
        let net = Network(spec: InputSpec(channels: 3, height: 224, width: 224,
                                          mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]))
        var g = SeededGenerator(seed: seed)
        let plan: [Int?] = [64, 64, nil, 128, 128, nil, 256, 256, 256, nil, 512, 512, 512, nil, 512, 512, 512, nil]
        var channels = 3, i = 0
        for item in plan {
            if let out = item {
                try net.append("features_\(i)", LayerRegistry.make(Attributes("conv2d", ["in": .int(channels), "out": .int(out), "kernel": .int(3), "padding": .int(1)]), generator: &g))
                try net.append("features_\(i + 1)", LayerRegistry.make("relu"))
                channels = out; i += 2
            } else {
                try net.append("features_\(i)", LayerRegistry.make("maxpool", ["kernel": .int(2)]))
                i += 1
            }
        }
        try net.append("avgpool", LayerRegistry.make("adaptive_avgpool", ["size": .int(7)]))
        try net.append("flatten", LayerRegistry.make("flatten"))
        let fc: [(Int, Int)] = [(512 * 7 * 7, 4096), (4096, 4096), (4096, classes)]
        for (j, (a, b)) in fc.enumerated() {
            try net.append("classifier_\(j * 3)", LayerRegistry.make(Attributes("linear", ["in": .int(a), "out": .int(b)]), generator: &g))
            if j < 2 {
                try net.append("classifier_\(j * 3 + 1)", LayerRegistry.make("relu"))
                try net.append("classifier_\(j * 3 + 2)", LayerRegistry.make("dropout", ["p": .float(0.5)]))
            }
        }
        return net
    }

    /// The LeNet-style net of the benchmark: conv 1->8 5x5, relu, maxpool 2, conv 8->16 5x5,
    /// relu, maxpool 2, linear 256->10, on 1x28x28.
    public static func lenet(seed: UInt64 = 0) throws -> Network {
        let net = Network(spec: InputSpec(channels: 1, height: 28, width: 28))
        var g = SeededGenerator(seed: seed)
        try net.append("conv1", LayerRegistry.make(Attributes("conv2d", ["in": .int(1), "out": .int(8), "kernel": .int(5)]), generator: &g))
        try net.append("relu1", LayerRegistry.make("relu"))
        try net.append("pool1", LayerRegistry.make("maxpool", ["kernel": .int(2)]))
        try net.append("conv2", LayerRegistry.make(Attributes("conv2d", ["in": .int(8), "out": .int(16), "kernel": .int(5)]), generator: &g))
        try net.append("relu2", LayerRegistry.make("relu"))
        try net.append("pool2", LayerRegistry.make("maxpool", ["kernel": .int(2)]))
        try net.append("flatten", LayerRegistry.make("flatten"))
        try net.append("fc", LayerRegistry.make(Attributes("linear", ["in": .int(256), "out": .int(10)]), generator: &g))
        return net
    }
}

extension Network {
    /// The Fashion-MNIST classes, in label order.
    public static let fashionClasses = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// The layout of the bundled default model: two 5x5 convolutions (zero-padded, so each keeps
    /// its input's size) each followed by ReLU and 2x2 max pooling, then two fully connected layers.
    /// conv1 sees 5x5 pixels, conv2 14x14 (after pool1), fc1 the whole 28x28 image.
    public static func fashion(seed: UInt64 = 0) throws -> Network {
        let net = Network(spec: InputSpec(channels: 1, height: 28, width: 28, mean: [0.2860], std: [0.3530],
                                          classNames: fashionClasses))
        var g = SeededGenerator(seed: seed)
        func add(_ name: String, _ kind: String, _ a: [String: AttributeValue] = [:]) throws {
            try net.append(name, LayerRegistry.make(Attributes(kind, a), generator: &g))
        }
        try add("conv1", "conv2d", ["in": .int(1), "out": .int(16), "kernel": .int(5), "padding": .int(2)])
        try add("relu1", "relu")
        try add("pool1", "maxpool", ["kernel": .int(2)])
        try add("conv2", "conv2d", ["in": .int(16), "out": .int(32), "kernel": .int(5), "padding": .int(2)])
        try add("relu2", "relu")
        try add("pool2", "maxpool", ["kernel": .int(2)])
        try add("flatten", "flatten")
        try add("fc1", "linear", ["in": .int(32 * 7 * 7), "out": .int(128)])
        try add("relu3", "relu")
        try add("dropout", "dropout", ["p": .float(0.25)])
        try add("fc2", "linear", ["in": .int(128), "out": .int(10)])
        return net
    }
}

/// The engine's side of `cnn bench`: each workload prepares its data once and returns the
/// closure to time and the floating-point operations one call performs.
public enum EngineBenchmarks {
    public struct Workload {
        public let name: String
        /// Counted when first asked for: counting VGG16's or EfficientNet's means building it,
        /// which listing the workloads (`cnn bench --help`, `--only sgemm.2048`) need not do.
        public var flops: Double? { count() }
        public let prepare: () throws -> () throws -> Void
        private let count: () -> Double?

        public init(name: String, flops: @autoclosure @escaping () -> Double?, prepare: @escaping () throws -> () throws -> Void) {
            self.name = name
            self.count = flops
            self.prepare = prepare
        }
    }

    static func convFlops(_ n: Int, _ k: Int, _ c: Int, _ kh: Int, _ kw: Int, _ oh: Int, _ ow: Int) -> Double {
        2 * Double(n * k * c * kh * kw * oh * ow)
    }

    /// A convolution workload: forward, or backward to the input / weights from a fixed dy.
    static func conv(_ name: String, pass: String, x: [Int], w: [Int], options: ConvOptions) -> Workload {
        let pr = try! ConvProblem(input: x, weight: w, bias: nil, options: options)
        let flops = convFlops(x[0], w[0], w[1], w[2], w[3], pr.g.outHeight, pr.g.outWidth)
        return Workload(name: name, flops: flops) {
            let xt = Tensor.randn(x, seed: 1), wt = Tensor.randn(w, std: 0.05, seed: 2), b = Tensor.randn([w[0]], seed: 3)
            let dy = Tensor.randn(pr.outputShape, seed: 4)
            switch pass {
            case "forward": return { _ = ConvKernels.forward(xt, wt, b, pr) }
            case "backward_input": return { _ = ConvKernels.backwardInput(dy, wt, inputShape: x, pr) }
            default: return { _ = ConvKernels.backwardWeight(dy, xt, weightShape: w, pr) }
            }
        }
    }

    /// FLOPs of one VGG16 forward pass on 224x224, counted once from the layer shapes.
    public static let vgg16Flops: Double = (try? forwardFlops(try Network.vgg16(), input: [1, 3, 224, 224])) ?? 0
    /// FLOPs of one EfficientNet-Lite0 forward pass on 224x224, counted once.
    public static let effnetFlops: Double = (try? forwardFlops(try Network.efficientNetLite(), input: [1, 3, 224, 224])) ?? 0

    /// 2 × the multiply-adds of the network's convolutions and linear layers on one input.
    public static func forwardFlops(_ net: Network, input: [Int]) throws -> Double {
        let shapes = try net.shapes(for: input)
        var total = 0.0
        for node in net.nodes {
            total += 2 * Double(node.layer.multiplyAdds(node.inputs.map { shapes[$0]! }, output: shapes[node.name]!))
        }
        return total
    }

    public static var all: [Workload] {
        let conv3 = ([1, 128, 56, 56], [256, 128, 3, 3], ConvOptions(padding: 1))
        let conv11 = ([1, 3, 224, 224], [96, 3, 11, 11], ConvOptions(stride: 4, padding: 2))
        // A saliency map is the forward pass plus the input gradient of every layer: as many
        // multiply-adds again as the forward pass.
        return [
            conv("conv3x3.forward", pass: "forward", x: conv3.0, w: conv3.1, options: conv3.2),
            conv("conv3x3.backward_input", pass: "backward_input", x: conv3.0, w: conv3.1, options: conv3.2),
            conv("conv3x3.backward_weights", pass: "backward_weights", x: conv3.0, w: conv3.1, options: conv3.2),
            conv("conv11s4.forward", pass: "forward", x: conv11.0, w: conv11.1, options: conv11.2),
            conv("conv11s4.backward_input", pass: "backward_input", x: conv11.0, w: conv11.1, options: conv11.2),
            Workload(name: "vgg16.forward", flops: vgg16Flops) {
                let net = try Network.vgg16()
                let x = Tensor.randn([1, 3, 224, 224], seed: 5)
                return { _ = try net(x) }
            },
            Workload(name: "vgg16.saliency", flops: 2 * vgg16Flops) {
                let net = try Network.vgg16()
                let x = Tensor.randn([1, 3, 224, 224], seed: 5)
                return {
                    _ = try net.gradients(at: x) { out in
                        let top = out.value.argmax()
                        return try slice(out, [.at(0), .at(top)])
                    }
                }
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
                return { _ = try net.gradients(at: x) { out in try slice(out, [.at(0), .at(out.value.argmax())]) } }
            },
            Workload(name: "lenet.forward_backward", flops: nil) {
                let net = try Network.lenet()
                let x = Tensor.randn([1, 1, 28, 28], seed: 6)
                return {
                    _ = try net.gradients(at: x) { out in try slice(out, [.at(0), .at(out.value.argmax())]) }
                }
            },
        ]
    }
}
