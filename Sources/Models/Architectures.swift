import Engine

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
