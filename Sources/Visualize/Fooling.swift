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
/// softmax probability of the target, in display space: I ← clamp₀¹(I + lr·g / max|g|), so
/// every step moves the most sensitive pixel by `learningRate` and the image stays a picture.
/// Stops as soon as the target is the top prediction, and says after how many steps.
/// Progress reports the target's probability.
public func fool(_ network: Network, _ image: Tensor, class target: Int, steps: Int = 100, learningRate: Float = 0.01,
                 control: LoopControl = LoopControl()) throws -> FoolingResult {
    guard steps >= 0, learningRate.isFinite, learningRate > 0 else {
        throw EngineError.invalidArgument("fool needs steps >= 0 and a positive learning rate")
    }
    let input = NetworkInput(network)
    var x = try input.batch(image)
    var history: [Float] = []
    var succeededAt: Int? = nil, cancelled = false
    var prediction = 0, probability: Float = 0
    for step in 0...steps {
        if control.isCancelled() { cancelled = true; break }
        var p: [Float] = []
        let gradient: Tensor
        do {
            // ∂ log p_c / ∂ scores = onehot(c) - p.
            (_, gradient) = try input.backward(x, from: input.scoreLayer, isCancelled: control.isCancelled) { scores in
                try input.checkClass(target, classes: scores.count)
                let m = scores.max()
                let e = scores.scalars.map { exp($0 - m) }
                let total = e.reduce(0, +)
                p = e.map { $0 / total }
                var seed = Tensor(shape: scores.shape, scalars: p.map { -$0 })
                seed.scalars[target] += 1
                return seed
            }
        } catch EngineError.cancelled { cancelled = true; break }
        prediction = 0
        for i in p.indices where p[i] > p[prediction] { prediction = i }
        probability = p[target]
        history.append(probability)
        if step > 0 { control.progress(step, steps, probability) }
        if prediction == target { succeededAt = step; break }
        if step == steps { break }
        // A step in display space: the display gradient, scaled to move the largest by lr.
        let g = input.displayGradient(gradient)
        let largest = g.scalars.reduce(Float(0)) { Swift.max($0, abs($1)) }
        guard largest > 0 else { break }
        var display = input.unclampedPicture(x)
        display.addScaled(try g.reshaped(display.shape), learningRate / largest)
        x = try input.batch(display.map { Swift.min(Swift.max($0, 0), 1) })
    }
    return FoolingResult(image: input.picture(x), succeededAt: succeededAt, prediction: prediction, probability: probability,
                         history: history, cancelled: cancelled)
}
