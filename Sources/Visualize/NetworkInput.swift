// How pictures go into a network and come back out as pictures, which layer holds the class
// scores, and how a class is named. Every method of this module goes through here, so that
// what a user passes and gets back is always an image in display space.
import Engine
import Imaging

/// What an iterative method reports while it runs, and how it learns that it should stop.
///
/// `progress` is called after every step with the step number (from 1), the number of steps
/// asked for, and the objective at that step. `isCancelled` is polled before every step and
/// between the layers of each forward pass; once it returns true the method stops and returns
/// what it has, with its `cancelled` flag set.
public struct LoopControl {
    public var progress: (_ step: Int, _ total: Int, _ objective: Float) -> Void
    public var isCancelled: () -> Bool

    /// A control that reports to `progress` and stops once `isCancelled` returns true; both do nothing by default.
    public init(progress: @escaping (_ step: Int, _ total: Int, _ objective: Float) -> Void = { _, _, _ in },
                isCancelled: @escaping () -> Bool = { false }) {
        self.progress = progress
        self.isCancelled = isCancelled
    }
}

/// The index of the class called `name` among the network's class names (`spec.classNames`).
/// Case does not matter, nor do spaces, dashes and underscores ("ankle boot", "Ankle-Boot"),
/// and a name with a slash answers to each of its parts ("T-shirt/top", "t-shirt", "top").
/// An unknown name throws an error that suggests the nearest class name.
public func classIndex(named name: String, in network: Network) throws -> Int {
    let names = network.spec?.classNames ?? []
    guard !names.isEmpty else {
        throw EngineError.invalidArgument("this network has no class names; name the class by its index instead of '\(name)'")
    }
    func key(_ s: String) -> String {
        String(s.lowercased().filter { !" -_".contains($0) })
    }
    let wanted = key(name)
    if let exact = names.firstIndex(where: { key($0) == wanted }) { return exact }
    if let part = names.firstIndex(where: { $0.split(separator: "/").contains { key(String($0)) == wanted } }) { return part }
    throw EngineError.unknownName(name, candidates: names)
}

/// A network with its input spec applied: display images in, normalized batches through,
/// pictures out. Without a spec the network's input is taken as it is.
struct NetworkInput {
    let network: Network
    let spec: InputSpec?

    init(_ network: Network) {
        self.network = network
        self.spec = network.spec
    }

    /// An image [C, H, W] (or [H, W] for one channel, or a batch of one [1, C, H, W]) in
    /// display space, as the normalized batch [1, C, H, W] the network takes.
    func batch(_ image: Tensor) throws -> Tensor {
        let chw: [Int]
        switch image.rank {
        case 2: chw = [1] + image.shape
        case 3: chw = image.shape
        case 4 where image.shape[0] == 1: chw = Array(image.shape.dropFirst())
        default:
            throw EngineError.shapeMismatch("expected one image [C, H, W] (or [H, W]); got \(image.shape)")
        }
        try checkSize(chw)
        let x = try image.reshaped([1] + chw)
        return try spec?.normalize(x) ?? x
    }

    /// A batch [N, C, H, W] in display space, normalized.
    func normalizeBatch(_ images: Tensor) throws -> Tensor {
        guard images.rank == 4 else { throw EngineError.shapeMismatch("expected images [N, C, H, W]; got \(images.shape)") }
        try checkSize(Array(images.shape.dropFirst()))
        return try spec?.normalize(images) ?? images
    }

    private func checkSize(_ chw: [Int]) throws {
        guard let spec else { return }
        guard chw == [spec.channels, spec.height, spec.width] else {
            let want = "\(spec.channels) x \(spec.height) x \(spec.width)"
            throw EngineError.shapeMismatch("the network takes images of \(want) (channels x height x width); got \(chw.map(String.init).joined(separator: " x ")) (resize the image, or convert it with toGray/toRGB)")
        }
    }

    /// The shape [1, C, H, W] of the network's input, from its spec.
    func inputShape() throws -> [Int] {
        guard let spec else {
            throw EngineError.invalidArgument("this network has no input spec, so its input size is unknown; give a start image")
        }
        return [1, spec.channels, spec.height, spec.width]
    }

    /// A normalized batch of one back in display space: [C, H, W], clamped to [0, 1].
    func picture(_ batch: Tensor) -> Tensor {
        unclampedPicture(batch).map { Swift.min(Swift.max($0, 0), 1) }
    }

    /// A normalized batch of one back in display space, [C, H, W], without clamping.
    func unclampedPicture(_ batch: Tensor) -> Tensor {
        let display = spec?.denormalize(batch) ?? batch
        return (try? display.reshaped(Array(display.shape.dropFirst()))) ?? display
    }

    /// A gradient with respect to the normalized input [N, C, H, W] as a gradient with respect
    /// to the display image: x = (I - mean) / std, so ∂f/∂I = ∂f/∂x / std, channel by channel.
    func displayGradient(_ g: Tensor) -> Tensor {
        guard let spec, g.rank == 4, !spec.std.allSatisfy({ $0 == 1 }) else { return g }
        let plane = g.shape[2] * g.shape[3], channels = g.shape[1]
        var out = g
        out.withUnsafeMutableBufferPointer { p in
            for i in 0..<(g.count / Swift.max(plane, 1)) {
                let s = spec.normalization.std(ofChannel: i % channels)
                for j in 0..<plane { p[i * plane + j] /= s }
            }
        }
        return out
    }

    /// The lowest and highest normalized value of channel `c`: the images of 0 and 1.
    func bounds(channel c: Int) -> (low: Float, high: Float) {
        guard let spec else { return (0, 1) }
        let n = spec.normalization
        return (n.apply(0, channel: c), n.apply(1, channel: c))
    }

    /// The normalized value of the display value `v` in channel `c`.
    func normalized(_ v: Float, channel c: Int) -> Float {
        guard let spec else { return v }
        return spec.normalization.apply(v, channel: c)
    }

    /// Keeps a normalized batch inside the normalized images of [0, 1], channel by channel.
    func clampToImage(_ x: inout Tensor) {
        guard x.rank == 4 else { return }
        let plane = x.shape[2] * x.shape[3], channels = x.shape[1]
        let limits = (0..<channels).map { bounds(channel: $0) }
        x.withUnsafeMutableBufferPointer { p in
            for i in 0..<(p.count / Swift.max(plane, 1)) {
                let (low, high) = limits[i % channels]
                for j in 0..<plane { p[i * plane + j] = Swift.min(Swift.max(p[i * plane + j], low), high) }
            }
        }
    }

    /// The layer whose output holds the class scores: the last layer, or the one before it
    /// when the network ends in a softmax (the scores of Simonyan et al. are taken before it).
    var scoreLayer: String {
        guard let last = network.nodes.last else { return Network.inputName }
        if ["softmax", "log_softmax"].contains(last.layer.kind), last.inputs.count == 1, last.inputs[0] != Network.inputName {
            return last.inputs[0]
        }
        return last.name
    }

    /// Checks a layer name, with a did-you-mean suggestion when it is unknown.
    func checkLayer(_ name: String) throws {
        _ = try network.layer(named: name)
    }

    /// The class scores [N, K] of a normalized batch, with no gradient recorded.
    func scores(_ batch: Tensor, isCancelled: @escaping () -> Bool = { false }) throws -> Tensor {
        let out = try network.forward(Variable(batch), upTo: scoreLayer, context: ForwardContext(isCancelled: isCancelled)).value
        return try out.reshaped([batch.shape[0], -1])
    }

    /// How many scores the network gives for a batch shaped like `batch`, from its layer shapes
    /// (no forward pass).
    func scoreCount(for batch: Tensor) throws -> Int {
        guard let shape = try network.shapes(for: batch.shape)[scoreLayer], let n = shape.first, n > 0 else {
            return try scores(batch).shape[1]
        }
        return shape.reduce(1, *) / n
    }

    /// Checks that `c` names one of `classes` scores.
    func checkClass(_ c: Int, classes: Int) throws {
        guard c >= 0 && c < classes else {
            let names = spec?.classNames ?? []
            let hint = names.count == classes ? " (\(names.enumerated().map { "\($0.offset) \($0.element)" }.joined(separator: ", ")))" : ""
            throw EngineError.invalidArgument("class \(c) is out of range: the network has \(classes) classes, 0 to \(classes - 1)\(hint)")
        }
    }

    /// Runs the normalized batch up to `layer` with the ReLU `rule`, seeds the backward pass at
    /// that layer's output with `seed(output)`, and returns the output and the gradient with
    /// respect to the normalized input.
    func backward(_ batch: Tensor, from layer: String, rule: ReLURule = .plain, isCancelled: @escaping () -> Bool = { false },
                  seed: (Tensor) throws -> Tensor) throws -> (output: Tensor, gradient: Tensor) {
        let x = Variable(batch, requiresGrad: true)
        let y = try network.forward(x, upTo: layer, context: ForwardContext(reluRule: rule, isCancelled: isCancelled))
        let s = try seed(y.value)
        return (y.value, try gradients(of: y, withRespectTo: [x], seed: s)[0])
    }

    /// A seed that picks class `c` of every row of scores [N, K, ...]: the gradient of Σₙ S_c.
    func classSeed(_ c: Int, _ output: Tensor) throws -> Tensor {
        let rows = output.shape.first ?? 1
        let classes = output.count / Swift.max(rows, 1)
        try checkClass(c, classes: classes)
        var seed = Tensor(zeros: output.shape)
        for n in 0..<rows { seed.scalars[n * classes + c] = 1 }
        return seed
    }
}

/// The images `range` of a batch [N, ...] as a batch of their own.
func batchSlice(_ images: Tensor, _ range: Range<Int>) -> Tensor {
    let per = images.count / Swift.max(images.shape[0], 1)
    return Tensor(shape: [range.count] + Array(images.shape.dropFirst()),
                  scalars: Array(images.scalars[(range.lowerBound * per)..<(range.upperBound * per)]))
}
