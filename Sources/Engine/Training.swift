/// Mini-batch training and evaluation of a classifier on tensors in memory.
extension InputSpec {
    /// (x - mean) / std per channel, for a batch [N, C, H, W] in display space [0, 1].
    public func normalize(_ x: Tensor) throws -> Tensor {
        guard x.rank == 4, x.shape[1] == channels else {
            throw EngineError.shapeMismatch("the network expects [N, \(channels), H, W] input, got \(x.shape)")
        }
        return try normalization.apply(x, channelAxis: 1)
    }

    /// The inverse of `normalize`: back to display space.
    public func denormalize(_ x: Tensor) -> Tensor {
        guard x.rank == 4, x.shape[1] == channels else { return x }
        return (try? normalization.apply(x, channelAxis: 1, inverse: true)) ?? x
    }
}

public struct TrainingOptions {
    public var epochs: Int = 1
    public var batchSize: Int = 64
    public var seed: UInt64 = 0
    /// Called after each step with (epoch, step, steps per epoch, loss of the batch).
    public var progress: (Int, Int, Int, Float) -> Void = { _, _, _, _ in }
    public var isCancelled: () -> Bool = { false }
    public init(epochs: Int = 1, batchSize: Int = 64, seed: UInt64 = 0) {
        self.epochs = epochs; self.batchSize = batchSize; self.seed = seed
    }
}

/// What training did: the loss of every step, and per-epoch means.
public struct TrainingHistory {
    public var loss: [Float] = []
    public var epochLoss: [Float] = []
    public var cancelled = false
}

/// Trains `network` to classify `images` [N, C, H, W] (display space) as `labels` by
/// cross-entropy, shuffling each epoch with the seeded generator.
public func train(_ network: Network, images: Tensor, labels: [Int], optimizer: inout some Optimizer,
                  options: TrainingOptions) throws -> TrainingHistory {
    let n = labels.count
    guard images.rank == 4, images.shape[0] == n, n > 0 else {
        throw EngineError.shapeMismatch("training needs images [N, C, H, W] and N labels, got \(images.shape) and \(n)")
    }
    guard options.batchSize > 0, options.epochs >= 0 else { throw EngineError.invalidArgument("batch size and epochs must be positive") }
    let per = images.count / n
    var generator = SeededGenerator(seed: options.seed)
    var history = TrainingHistory()
    let steps = (n + options.batchSize - 1) / options.batchSize
    for epoch in 0..<options.epochs {
        let order = Array(0..<n).shuffled(using: &generator)
        var total: Float = 0
        for s in 0..<steps {
            if options.isCancelled() { history.cancelled = true; return history }
            let idx = order[(s * options.batchSize)..<min(n, (s + 1) * options.batchSize)]
            var shape = images.shape
            shape[0] = idx.count
            var batch = Tensor(shape: shape) { out in
                images.withUnsafeBufferPointer { src in
                    for (j, i) in idx.enumerated() { (out.baseAddress! + j * per).update(from: src.baseAddress! + i * per, count: per) }
                }
            }
            if let spec = network.spec { batch = try spec.normalize(batch) }
            let targets = idx.map { labels[$0] }
            let ctx = ForwardContext(training: true, seed: generator.next())
            let r = try network.gradients(at: batch, inputGradient: false, parameterGradients: true, context: ctx) {
                try crossEntropy($0, targets: targets)
            }
            try optimizer.step(network, gradients: r.parameters)
            for (name, value) in r.updatedBuffers { try network.setParameter(name, value) }
            history.loss.append(r.loss)
            total += r.loss
            options.progress(epoch, s + 1, steps, r.loss)
        }
        history.epochLoss.append(total / Float(steps))
    }
    return history
}

/// Accuracy of a classifier, overall and per class, with its predictions.
public struct Evaluation {
    public let accuracy: Float
    public let perClass: [Float]
    public let predictions: [Int]
}

public func evaluate(_ network: Network, images: Tensor, labels: [Int], batchSize: Int = 256,
                     isCancelled: () -> Bool = { false }, progress: (Int, Int) -> Void = { _, _ in }) throws -> Evaluation {
    let n = labels.count
    guard images.rank == 4, images.shape[0] == n, n > 0 else {
        throw EngineError.shapeMismatch("evaluation needs images [N, C, H, W] and N labels, got \(images.shape) and \(n)")
    }
    let per = images.count / n
    var predictions: [Int] = []
    predictions.reserveCapacity(n)
    var start = 0
    while start < n {
        if isCancelled() { throw EngineError.cancelled }
        let end = min(n, start + batchSize)
        var shape = images.shape
        shape[0] = end - start
        var batch = Tensor(shape: shape, scalars: Array(images.scalars[(start * per)..<(end * per)]))
        if let spec = network.spec { batch = try spec.normalize(batch) }
        let out = try network(batch)
        let k = out.count / (end - start)
        for i in 0..<(end - start) {
            var best = 0
            for j in 1..<k where out.scalars[i * k + j] > out.scalars[i * k + best] { best = j }
            predictions.append(best)
        }
        start = end
        progress(end, n)
    }
    let classes = (labels.max() ?? 0) + 1
    var right = [Int](repeating: 0, count: classes), seen = [Int](repeating: 0, count: classes)
    for (p, l) in zip(predictions, labels) { seen[l] += 1; if p == l { right[l] += 1 } }
    let correct = right.reduce(0, +)
    return Evaluation(accuracy: Float(correct) / Float(n),
                      perClass: zip(right, seen).map { $1 == 0 ? 0 : Float($0) / Float($1) },
                      predictions: predictions)
}
