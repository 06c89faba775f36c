// Fooling a network: small gradient steps that make it call an image something else.
import Engine
import Foundation

/// The result of `fool`.
public struct FoolingResult {
    /// The nudged image, display space [C, H, W], within [0, 1].
    public let image: Tensor
    /// The number of steps after which the network first called the image the target class
    /// (0: it already did), or nil if it never did.
    public let succeededAt: Int?
    /// The network's class for the final image, and its probability of the target class.
    public let prediction: Int
    public let probability: Float
    /// The target class's probability before each step (and after the last).
    public let history: [Float]
    public let cancelled: Bool
}

/// Fooling a network (Nguyen, Yosinski and Clune 2015; Szegedy et al. 2014): nudge `image`
/// until the network calls it class `class`, by gradient ascent on log p_c(I), the log
/// softmax probability of the target. It runs on the render pipeline: the parameters are the
/// pixels (no colour mixing, no transforms) clamped to [0, 1], and Adam with step
/// `learningRate` moves each pixel by about that much per step. Stops as soon as the target is
/// the top prediction, and says after how many steps. Progress reports the target's probability.
public func fool(_ network: Network, _ image: Tensor, class target: Int, steps: Int = 100, learningRate: Float = 0.01,
                 control: LoopControl = LoopControl()) throws -> FoolingResult {
    guard steps >= 0, learningRate.isFinite, learningRate > 0 else {
        throw EngineError.invalidArgument("fool needs steps >= 0 and a positive learning rate")
    }
    let input = NetworkInput(network)
    let start = try input.batch(image)
    try input.checkClass(target, classes: try input.scoreCount(for: start))
    var p = try defaultParametrization(for: network)
    p.basis = .pixels; p.decorrelate = false; p.range = .clamp
    var history: [Float] = []
    var succeededAt: Int? = nil, prediction = 0, probability: Float = 0, step = 0
    let options = RenderOptions(parametrization: p, transforms: [], steps: steps + 1, learningRate: learningRate, redirectSteps: 0)
    let inner = LoopControl(progress: { s, _, _ in if s > 1 { control.progress(s - 1, steps, probability) } }, isCancelled: control.isCancelled)
    let r = try optimizeImage(network, options: options, start: input.unclampedPicture(start).map { min(max($0, 0), 1) }, control: inner, keepingBest: false) { x, context in
        let scores = try network.forward(x, upTo: input.scoreLayer, context: context)
        let logp = try logSoftmax(try reshape(scores, [1, -1]))
        let probabilities = logp.value.scalars.map { Foundation.exp($0) }
        prediction = probabilities.indices.max { probabilities[$0] < probabilities[$1] } ?? 0
        probability = probabilities[target]
        history.append(probability)
        if prediction == target { succeededAt = step; throw EngineError.cancelled }
        if step == steps { throw EngineError.cancelled }
        step += 1
        var pick = Tensor(zeros: logp.shape)
        pick.scalars[target] = 1
        return try sum(try multiply(logp, Variable(pick)))
    }
    return FoolingResult(image: r.image, succeededAt: succeededAt, prediction: prediction, probability: probability,
                         history: history, cancelled: r.cancelled && succeededAt == nil && step < steps)
}
