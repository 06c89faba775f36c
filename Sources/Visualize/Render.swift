// Feature visualization by optimization as Lucid and Lucent do it (Olah, Mordvintsev and
// Schubert 2017, "Feature Visualization"): the image is made from parameters (pixels, or
// Fourier coefficients scaled by 1/frequency with decorrelated colour) through a sigmoid, each
// step sees it through random transformations (pad, jitter, scale, rotate), and Adam climbs an
// objective built from class logits, channels, neurons, whole layers and a diversity term.
// Everything from the parameters to the objective is on the tape, so one backward pass per step
// gives the parameters' gradient. classviz, maximize, dream, fool and invert all come here.
import Engine
import Foundation

/// How the optimized image is made from its parameters.
public struct ImageParametrization: Equatable, Sendable {
    public enum Basis: String, CaseIterable, Sendable {
        /// One parameter per pixel and channel.
        case pixels
        /// Lucid's `fft_image`: a spectrum scaled by 1/frequency^decay, through the inverse real DFT.
        case fourier
    }
    /// How values become valid RGB in [0, 1].
    public enum Range: String, CaseIterable, Sendable {
        /// σ(x): smooth, never saturates hard (Lucid's default).
        case sigmoid
        /// clamp(x + ImageNet's mean colour, 0, 1), with a gradient that does not stick at the bounds.
        case clamp
    }

    public var basis: Basis
    /// Mix the channels by Lucid's colour-correlation square root, so that parameters are
    /// decorrelated colours (three channels only).
    public var decorrelate: Bool
    public var range: Range
    /// The exponent of the 1/frequency scale of `fourier` (1: natural images' spectrum; 0: flat).
    public var decayPower: Float
    /// The standard deviation of the random initial parameters.
    public var initialStd: Float
    /// Images optimized together (a batch, for `diversity`).
    public var batch: Int
    public var channels: Int, height: Int, width: Int

    public init(basis: Basis = .fourier, decorrelate: Bool = true, range: Range = .sigmoid, decayPower: Float = 1,
                initialStd: Float = 0.01, batch: Int = 1, channels: Int = 3, height: Int = 224, width: Int = 224) {
        self.basis = basis; self.decorrelate = decorrelate; self.range = range; self.decayPower = decayPower
        self.initialStd = initialStd; self.batch = batch; self.channels = channels; self.height = height; self.width = width
    }

    /// Refuses what makes no sense before anything runs.
    public func validate() throws {
        guard (1...64).contains(batch) else { throw EngineError.invalidArgument("batch must be 1 to 64 images, got \(batch)") }
        guard (1...4096).contains(height), (1...4096).contains(width) else {
            throw EngineError.invalidArgument("the image size must be 1 to 4096 pixels a side, got \(height) x \(width)")
        }
        guard channels == 1 || channels == 3 else { throw EngineError.invalidArgument("images have 1 or 3 channels, got \(channels)") }
        guard !decorrelate || channels == 3 else {
            throw EngineError.invalidArgument("colour decorrelation needs 3 channels; this network takes \(channels) (use decorrelate=false)")
        }
        guard decayPower.isFinite, (0...4).contains(decayPower) else { throw EngineError.invalidArgument("decay must be 0 to 4, got \(decayPower)") }
        guard initialStd.isFinite, initialStd >= 0, initialStd <= 10 else { throw EngineError.invalidArgument("sd must be 0 to 10, got \(initialStd)") }
    }

    /// The shape of the parameters.
    public var parameterShape: [Int] {
        switch basis {
        case .pixels: return [batch, channels, height, width]
        case .fourier: return [batch, channels, height, 2, width / 2 + 1]
        }
    }

    /// Random initial parameters.
    public func initial(seed: UInt64) -> Tensor {
        Tensor.randn(parameterShape, std: initialStd, seed: seed)
    }

    /// The image [N, C, H, W] in [0, 1], on the tape, from parameters.
    public func image(_ p: Variable) throws -> Variable {
        var x: Variable
        switch basis {
        case .pixels: x = p
        case .fourier: x = try fourierImage(p, height: height, width: width, decayPower: decayPower)
        }
        if decorrelate { x = try mixChannels(x, colorCorrelationSqrt) }
        switch range {
        case .sigmoid: return sigmoid(x)
        case .clamp:
            let mean = channels == 3 ? Tensor(shape: [1, 3, 1, 1], scalars: Self.meanColor) : Tensor(shape: [1, 1, 1, 1], scalars: [0.45])
            return clampPassingInward(try add(x, Variable(mean)))
        }
    }

    /// ImageNet's mean colour, which the clamped range is centred on.
    public static let meanColor: [Float] = [0.48, 0.46, 0.41]

    /// Parameters whose image is `picture` ([C, H, W] or [N, C, H, W] in [0, 1], repeated over
    /// the batch): the start of a dream or a fooling from a photo.
    public func parameters(for picture: Tensor) throws -> Tensor {
        let per = channels * height * width
        guard picture.count == per || picture.count == per * batch else {
            throw EngineError.shapeMismatch("a start image for \(channels) x \(height) x \(width) must have that shape; got \(picture.shape)")
        }
        let tiled = picture.count == per ? Array(repeating: picture.scalars, count: batch).flatMap { $0 } : picture.scalars
        // Undo the range, then the colour mixing, then the spectrum.
        var x = Tensor(shape: [batch, channels, height, width], scalars: tiled.enumerated().map { i, v0 in
            let v = min(max(v0, 0.002), 0.998)
            switch range {
            case .sigmoid: return Foundation.log(v / (1 - v))
            case .clamp: return v - (channels == 3 ? Self.meanColor[(i / (height * width)) % 3] : 0.45)
            }
        })
        if decorrelate { x = try mixChannels(Variable(x), try invert3x3(colorCorrelationSqrt)).value }
        guard basis == .fourier else { return x }
        // The op is y = T(gain ⊙ S) with T the orthonormal inverse real DFT (Hermitian weights
        // w = 1 or 2 per column) over 4; its backward gives gain ⊙ Tᵀy, and Tᵀy = w ⊙ rfft(y) / 4,
        // so S = rfft(4y) / gain = 16 · backward(y) / (w ⊙ gain²).
        let zeros = Variable(Tensor(zeros: parameterShape), requiresGrad: true)
        let forward = try fourierImage(zeros, height: height, width: width, decayPower: decayPower)
        let adjoint = try gradients(of: forward, withRespectTo: [zeros], seed: x)[0]
        let l = width / 2 + 1, frequencies = spectrumFrequencies(height: height, width: width)
        let floor = 1 / Float(max(height, width))
        return Tensor(shape: parameterShape) { out in
            for i in 0..<out.count {
                let j = i % l, k = (i / (2 * l)) % height
                let w: Float = (j == 0 || (width % 2 == 0 && j == width / 2)) ? 1 : 2
                let g = 1 / Foundation.pow(max(frequencies[k * l + j], floor), decayPower)
                out[i] = 16 * adjoint.scalars[i] / (w * g * g)
            }
        }
    }
}

/// The inverse of a 3 x 3 matrix.
func invert3x3(_ m: [[Float]]) throws -> [[Float]] {
    let (a, b, c) = (m[0][0], m[0][1], m[0][2]), (d, e, f) = (m[1][0], m[1][1], m[1][2]), (g, h, i) = (m[2][0], m[2][1], m[2][2])
    let det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    guard abs(det) > 1e-12 else { throw EngineError.invalidArgument("the colour matrix is singular") }
    return [[(e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det],
            [(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
            [(d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det]]
}

/// One random transformation applied to the image at every step (Lucid's transform module).
public enum ImageTransform: Equatable, Sendable, CustomStringConvertible {
    /// Pad every side by `width` pixels of `value` (Lucid pads with 0.5 grey).
    case pad(width: Int, value: Float)
    /// Shift by a whole number of pixels drawn from 0..<amount along each axis (zeros come in).
    case jitter(Int)
    /// Resize by a factor drawn from the list (bilinear, corners aligned); smaller ones are padded back.
    case scale([Float])
    /// Rotate about the centre by an angle in degrees drawn from the list (bilinear, zeros outside).
    case rotate([Float])

    /// Lucid's standard transforms for ImageNet-size inputs.
    public static let standard: [ImageTransform] = [
        .pad(width: 12, value: 0.5), .jitter(8), .scale((0..<11).map { 1 + Float($0 - 5) / 50 }),
        .rotate((-10...10).map(Float.init) + [Float](repeating: 0, count: 5)), .jitter(4),
    ]

    /// Lucid's standard set for a picture `side` pixels across: as it is from 128 pixels up, with
    /// the pad and jitters scaled down for smaller inputs (28 pixels: pad 2, jitter 2, jitter 2).
    public static func standard(side: Int) -> [ImageTransform] {
        guard side < 128 else { return standard }
        let k = Float(side) / 224
        func px(_ v: Float) -> Int { max(2, Int((v * k).rounded())) }
        return [.pad(width: px(12), value: 0.5), .jitter(px(8)), standard[2], standard[3], .jitter(px(4))]
    }

    public var description: String {
        func list(_ xs: [Float]) -> String { "[" + xs.map { formatNumber($0) }.joined(separator: ", ") + "]" }
        switch self {
        case .pad(let w, let v): return "margin(\(w), value=\(formatNumber(v)))"
        case .jitter(let d): return "jitter(\(d))"
        case .scale(let s): return "random_scale(\(list(s)))"
        case .rotate(let a): return "random_rotate(\(list(a)))"
        }
    }

    /// Refuses a transform that makes no sense.
    public func validate() throws {
        switch self {
        case .pad(let w, let v):
            guard (0...512).contains(w), v.isFinite else { throw EngineError.invalidArgument("margin takes 0 to 512 pixels and a finite value, got \(w)") }
        case .jitter(let d):
            guard (1...512).contains(d) else { throw EngineError.invalidArgument("jitter takes 1 to 512 pixels, got \(d)") }
        case .scale(let s):
            guard !s.isEmpty, s.allSatisfy({ $0.isFinite && $0 >= 0.1 && $0 <= 10 }) else {
                throw EngineError.invalidArgument("random_scale takes a non-empty list of factors from 0.1 to 10, got \(s.map { formatNumber($0) })")
            }
        case .rotate(let a):
            guard !a.isEmpty, a.allSatisfy({ $0.isFinite && abs($0) <= 360 }) else {
                throw EngineError.invalidArgument("random_rotate takes a non-empty list of angles in degrees (-360 to 360), got \(a.map { formatNumber($0) })")
            }
        }
    }

    /// The image [N, C, H, W] transformed with randomness from `generator`, on the tape.
    public func apply(_ x: Variable, using generator: inout SeededGenerator) throws -> Variable {
        let h = x.shape[2], w = x.shape[3]
        switch self {
        case .pad(let p, let v):
            return p == 0 ? x : try pad2d(x, (p, p, p, p), value: v)
        case .jitter(let d):
            let dx = Int.random(in: 0..<d, using: &generator), dy = Int.random(in: 0..<d, using: &generator)
            if dx == 0 && dy == 0 { return x }
            return try resample(x, height: h, width: w, map: .translation(dx: Float(dx), dy: Float(dy)))
        case .scale(let factors):
            let s = factors.randomElement(using: &generator)!
            if s == 1 { return x }
            let oh = max(1, Int((s * Float(h)).rounded(.up))), ow = max(1, Int((s * Float(w)).rounded(.up)))
            let y = try resample(x, height: oh, width: ow, map: .resize(height: h, width: w, toHeight: oh, width: ow))
            let py = max(0, Int((Float(h - oh) / 2).rounded(.up))), px = max(0, Int((Float(w - ow) / 2).rounded(.up)))
            return py == 0 && px == 0 ? y : try pad2d(y, (py, px, py, px))
        case .rotate(let angles):
            let a = angles.randomElement(using: &generator)!
            if a == 0 { return x }
            return try resample(x, height: h, width: w, map: .rotation(degrees: a, height: h, width: w))
        }
    }
}

/// What a render maximizes: a weighted sum of terms. Objectives add, subtract and scale.
public struct Objective: Equatable, Sendable, CustomStringConvertible {
    public enum Term: Equatable, Sendable {
        /// A class score before the softmax (the logit), by index.
        case logit(Int)
        /// The mean of a channel over its positions (for a layer of units, the unit).
        case channel(layer: String, channel: Int)
        /// One unit of a channel; nil positions mean the centre.
        case neuron(layer: String, channel: Int, y: Int?, x: Int?)
        /// The mean square of a whole layer's activations (deep dream).
        case layer(String)
        /// Σᵢ Σⱼ≠ᵢ cos(Gᵢ, Gⱼ) / N over the batch, Gᵢ the Gram matrix of image i's channels at the
        /// layer (Lucid's diversity): subtract it to make the images differ.
        case diversity(String)
    }
    public var terms: [(weight: Float, term: Term)]

    public init(_ term: Term, weight: Float = 1) { terms = [(weight, term)] }
    public init(terms: [(weight: Float, term: Term)]) { self.terms = terms }

    public static func == (a: Objective, b: Objective) -> Bool {
        a.terms.count == b.terms.count && zip(a.terms, b.terms).allSatisfy { $0.weight == $1.weight && $0.term == $1.term }
    }
    public static func + (a: Objective, b: Objective) -> Objective { Objective(terms: a.terms + b.terms) }
    public static func - (a: Objective, b: Objective) -> Objective { a + (-1) * b }
    public static func * (k: Float, a: Objective) -> Objective { Objective(terms: a.terms.map { (k * $0.weight, $0.term) }) }
    public static prefix func - (a: Objective) -> Objective { (-1) * a }

    public var description: String {
        var s = ""
        for (i, (w, t)) in terms.enumerated() {
            let name: String
            switch t {
            case .logit(let c): name = "logit(\(c))"
            case .channel(let l, let c): name = "channel(\"\(l)\", \(c))"
            case .neuron(let l, let c, let y, let x):
                name = "neuron(\"\(l)\", \(c)" + (y.map { ", y=\($0)" } ?? "") + (x.map { ", x=\($0)" } ?? "") + ")"
            case .layer(let l): name = "deepdream(\"\(l)\")"
            case .diversity(let l): name = "diversity(\"\(l)\")"
            }
            let magnitude = abs(w) == 1 ? "" : formatNumber(abs(w)) + " * "
            s += (i == 0 ? (w < 0 ? "-" : "") : (w < 0 ? " - " : " + ")) + magnitude + name
        }
        return s.isEmpty ? "0" : s
    }

    /// The layers the objective reads ("" stands for the class scores' layer).
    func layers(scoreLayer: String) -> [String] {
        var seen: [String] = []
        for (_, t) in terms {
            let l: String
            switch t {
            case .logit: l = scoreLayer
            case .channel(let n, _), .neuron(let n, _, _, _), .layer(let n), .diversity(let n): l = n
            }
            if !seen.contains(l) { seen.append(l) }
        }
        return seen
    }

    /// Checks every layer, channel, neuron and class against the network before the first step.
    func validate(_ input: NetworkInput, inputShape: [Int]) throws {
        guard !terms.isEmpty else { throw EngineError.invalidArgument("the objective is empty") }
        guard terms.allSatisfy({ $0.weight.isFinite }) else { throw EngineError.invalidArgument("an objective's weights must be finite numbers") }
        let shapes = try input.network.shapes(for: inputShape)
        for (_, t) in terms {
            switch t {
            case .logit(let c):
                guard let s = shapes[input.scoreLayer] else { break }
                try input.checkClass(c, classes: s.dropFirst().reduce(1, *))
            case .channel(let l, let c), .neuron(let l, let c, _, _):
                try input.checkLayer(l)
                guard let s = shapes[l], s.count >= 2 else { break }
                guard c >= 0 && c < s[1] else {
                    throw EngineError.invalidArgument("channel \(c) is out of range: layer '\(l)' has \(s[1]) channels, 0 to \(s[1] - 1)")
                }
                if case .neuron(_, _, let y, let x) = t, s.count == 4 {
                    if let y, !(0..<s[2]).contains(y) { throw EngineError.invalidArgument("y = \(y) is outside layer '\(l)' (rows 0 to \(s[2] - 1))") }
                    if let x, !(0..<s[3]).contains(x) { throw EngineError.invalidArgument("x = \(x) is outside layer '\(l)' (columns 0 to \(s[3] - 1))") }
                }
            case .layer(let l): try input.checkLayer(l)
            case .diversity(let l):
                try input.checkLayer(l)
                guard inputShape[0] >= 2 else { throw EngineError.invalidArgument("diversity compares the images of a batch; render at least 2 (batch=4)") }
            }
        }
    }

    /// The objective's value at the layers' outputs, and its gradient with respect to each.
    func evaluate(_ outputs: [String: Tensor], scoreLayer: String) throws -> (value: Float, gradients: [String: Tensor]) {
        var total: Float = 0
        var grads: [String: Tensor] = [:]
        func accumulate(_ layer: String, _ g: Tensor) {
            if var acc = grads[layer] { grads[layer] = nil; acc.addScaled(g); grads[layer] = acc } else { grads[layer] = g }
        }
        for (w, t) in terms {
            switch t {
            case .logit(let c):
                let out = outputs[scoreLayer]!
                let n = out.shape[0], k = out.count / max(n, 1)
                var g = Tensor(zeros: out.shape), v: Float = 0
                for b in 0..<n { v += out.scalars[b * k + c] / Float(n); g.scalars[b * k + c] = w / Float(n) }
                total += w * v; accumulate(scoreLayer, g)
            case .channel(let l, let c), .neuron(let l, let c, _, _):
                let out = outputs[l]!
                let n = out.shape[0], ch = out.shape[1], plane = out.count / max(n * ch, 1)
                var positions = Array(0..<plane)
                if case .neuron(_, _, let y, let x) = t {
                    let (h, wd) = out.rank == 4 ? (out.shape[2], out.shape[3]) : (1, 1)
                    positions = [(y ?? h / 2) * wd + (x ?? wd / 2)]
                }
                var g = Tensor(zeros: out.shape), v: Float = 0
                let share = 1 / Float(n * positions.count)
                for b in 0..<n { for p in positions {
                    let i = (b * ch + c) * plane + p
                    v += out.scalars[i] * share; g.scalars[i] = w * share
                }}
                total += w * v; accumulate(l, g)
            case .layer(let l):
                let out = outputs[l]!
                let share = 1 / Float(max(out.count, 1))
                total += w * out.scalars.reduce(0) { $0 + $1 * $1 } * share
                accumulate(l, out.map { 2 * w * share * $0 })
            case .diversity(let l):
                let (v, g) = gramDiversity(outputs[l]!)
                total += w * v; accumulate(l, g.map { $0 * w })
            }
        }
        return (total, grads)
    }
}

/// Lucid's diversity at activations [N, C, ...]: Σᵢ Σⱼ≠ᵢ ⟨Ĝᵢ, Ĝⱼ⟩ / N with Ĝ the Gram matrix
/// FFᵀ of each image's channels, normalized to unit Frobenius norm; and its gradient.
func gramDiversity(_ a: Tensor) -> (Float, Tensor) {
    let n = a.shape[0], c = a.rank >= 2 ? a.shape[1] : 1, hw = a.count / max(n * c, 1)
    guard n >= 2 else { return (0, Tensor(zeros: a.shape)) }
    var grams: [[Float]] = [], norms: [Float] = []
    a.withUnsafeBufferPointer { f in
        for i in 0..<n {
            var g = [Float](repeating: 0, count: c * c)
            g.withUnsafeMutableBufferPointer { gp in
                BLAS.sgemm(transB: true, m: c, n: c, k: hw, a: f.baseAddress! + i * c * hw, lda: hw, b: f.baseAddress! + i * c * hw, ldb: hw,
                           c: gp.baseAddress!, ldc: c)
            }
            let norm = max(g.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            grams.append(g.map { $0 / norm }); norms.append(norm)
        }
    }
    var value: Float = 0
    var total = [Float](repeating: 0, count: c * c)
    for g in grams { for k in 0..<(c * c) { total[k] += g[k] } }
    for i in 0..<n { for j in 0..<n where j != i { value += zip(grams[i], grams[j]).reduce(0) { $0 + $1.0 * $1.1 } } }
    value /= Float(n)
    var out = Tensor(zeros: a.shape)
    a.withUnsafeBufferPointer { f in out.withUnsafeMutableBufferPointer { o in
        for i in 0..<n {
            // d/dĜᵢ = 2 Σⱼ≠ᵢ Ĝⱼ / N; through the normalization and G = FFᵀ: dF = (dG + dGᵀ) F = 2 dG F.
            let u = (0..<(c * c)).map { 2 * (total[$0] - grams[i][$0]) / Float(n) }
            let along = zip(u, grams[i]).reduce(0) { $0 + $1.0 * $1.1 }
            let dG = (0..<(c * c)).map { (u[$0] - along * grams[i][$0]) / norms[i] }
            dG.withUnsafeBufferPointer { d in
                BLAS.sgemm(m: c, n: hw, k: c, alpha: 2, a: d.baseAddress!, lda: c, b: f.baseAddress! + i * c * hw, ldb: hw,
                           c: o.baseAddress! + i * c * hw, ldc: hw)
            }
        }
    }}
    return (value, out)
}

/// How a render runs: the image's parametrization, the transforms, Adam, the ReLU redirect.
public struct RenderOptions: Sendable {
    public var parametrization: ImageParametrization
    public var transforms: [ImageTransform]
    public var steps: Int
    /// Adam's learning rate on the parameters (Lucent's 0.05).
    public var learningRate: Float
    /// Steps during which ReLU and ReLU6 pass the redirected gradient (Lucid's redirected_relu_grad).
    public var redirectSteps: Int
    /// The seed of the initial parameters and of the transforms.
    public var seed: UInt64
    /// Whether images the transforms made larger or smaller than the network's input size are
    /// resized back to it before the network (bilinear): the same work every step.
    public var fitToInput: Bool

    public init(parametrization: ImageParametrization = ImageParametrization(), transforms: [ImageTransform] = ImageTransform.standard,
                steps: Int = 192, learningRate: Float = 0.05, redirectSteps: Int = 16, seed: UInt64 = 0, fitToInput: Bool = true) {
        self.parametrization = parametrization; self.transforms = transforms; self.steps = steps
        self.learningRate = learningRate; self.redirectSteps = redirectSteps; self.seed = seed; self.fitToInput = fitToInput
    }

    public func validate() throws {
        try parametrization.validate()
        for t in transforms { try t.validate() }
        guard (0...100_000).contains(steps) else { throw EngineError.invalidArgument("steps must be 0 to 100000, got \(steps)") }
        guard learningRate.isFinite, learningRate > 0, learningRate <= 100 else {
            throw EngineError.invalidArgument("the learning rate must be a positive number up to 100, got \(formatNumber(learningRate))")
        }
        guard redirectSteps >= 0 else { throw EngineError.invalidArgument("redirect must be a number of steps >= 0, got \(redirectSteps)") }
    }
}

/// The result of a render.
public struct RenderResult {
    /// Every image of the batch, [N, C, H, W] in [0, 1], and the first as [C, H, W].
    public let images: Tensor
    public var image: Tensor { batchSlice(images, 0..<1).reshapedDroppingBatch() }
    /// The parameters reached (for another run from here).
    public let parameters: Tensor
    /// The objective at each step, before that step's update.
    public let history: [Float]
    public let steps: Int
    public let cancelled: Bool
}

extension Tensor {
    func reshapedDroppingBatch() -> Tensor { (try? reshaped(Array(shape.dropFirst()))) ?? self }
}

/// The parametrization sized to the network's input, with the given basis and options.
public func defaultParametrization(for network: Network, batch: Int = 1) throws -> ImageParametrization {
    let shape = try NetworkInput(network).inputShape()
    return ImageParametrization(decorrelate: shape[1] == 3, batch: batch, channels: shape[1], height: shape[2], width: shape[3])
}

/// Renders `objective` on `network`: the optimization of Lucid's render_vis. From random
/// parameters (or the parameters of `start`, an image in display space), each step makes the
/// image, transforms it at random, normalizes it as the network expects, runs the network to
/// the objective's layers and takes one Adam step up the objective.
public func render(_ network: Network, _ objective: Objective, options: RenderOptions = RenderOptions(), start: Tensor? = nil,
                   control: LoopControl = LoopControl()) throws -> RenderResult {
    let input = NetworkInput(network)
    let scoreLayer = input.scoreLayer
    let layers = objective.layers(scoreLayer: scoreLayer)
    try options.validate()
    let p = options.parametrization
    try objective.validate(input, inputShape: [p.batch, p.channels, p.height, p.width])
    return try optimizeImage(network, options: options, start: start, control: control) { x, context in
        let outs = try network.forward(x, outputs: layers, context: context)
        let values = Dictionary(uniqueKeysWithValues: zip(layers, outs.map(\.value)))
        let (value, grads) = try objective.evaluate(values, scoreLayer: scoreLayer)
        return try Variable.scalar(value, of: outs, gradients: layers.map { grads[$0] ?? Tensor(zeros: values[$0]!.shape) })
    }
}

/// Renders each objective on its own, as `render` would one at a time, with as many renders
/// running side by side as the engine has threads (each on one thread: for a network of one
/// small image at a time that is faster than splitting every op). The calling thread reports
/// the steps done by all of them to `control` and passes Ctrl-C on; the results come in the
/// objectives' order, and an error in one render is thrown once the others have stopped.
public func renderEach(_ network: Network, _ objectives: [Objective], options: RenderOptions = RenderOptions(),
                       control: LoopControl = LoopControl()) throws -> [RenderResult] {
    let n = objectives.count, workers = min(n, Parallel.threads)
    if workers <= 1 {
        var results: [RenderResult] = []
        for (i, objective) in objectives.enumerated() {
            let offset = i * options.steps
            let c = LoopControl(progress: { s, _, v in control.progress(offset + s, n * options.steps, v) }, isCancelled: control.isCancelled)
            let r = try render(network, objective, options: options, control: c)
            results.append(r)
            if r.cancelled { break }
        }
        return results
    }
    final class Shared: @unchecked Sendable {
        let lock = NSLock()
        var next = 0, cancelled = false
        var done: [Int], results: [Result<RenderResult, Error>?]
        init(_ n: Int) { done = Array(repeating: 0, count: n); results = Array(repeating: nil, count: n) }
        func locked<R>(_ body: () -> R) -> R { lock.lock(); defer { lock.unlock() }; return body() }
    }
    let shared = Shared(n)
    let group = DispatchGroup()
    for _ in 0..<workers {
        DispatchQueue.global().async(group: group) {
            Parallel.serially {
                while true {
                    let i: Int = shared.locked { defer { shared.next += 1 }; return shared.cancelled ? n : shared.next }
                    guard i < n else { return }
                    let c = LoopControl(progress: { s, _, _ in shared.locked { shared.done[i] = s } },
                                        isCancelled: { shared.locked { shared.cancelled } })
                    let r = Result { try render(network, objectives[i], options: options, control: c) }
                    shared.locked {
                        shared.results[i] = r
                        if case .failure = r { shared.cancelled = true }
                    }
                }
            }
        }
    }
    var reported = 0
    while group.wait(timeout: .now() + .milliseconds(40)) == .timedOut {
        if control.isCancelled() { shared.locked { shared.cancelled = true } }
        let total = shared.locked { shared.done.reduce(0, +) }
        if total != reported { reported = total; control.progress(total, n * options.steps, .nan) }
    }
    for case .failure(let error)? in shared.results { throw error }
    var results: [RenderResult] = []
    for case .success(let r)? in shared.results { results.append(r) }  // those Ctrl-C let start
    return results
}

/// The loop under `render`, for any objective written on the tape: `objective(x, context)`
/// gets the normalized, transformed batch x (a variable) and a forward context that carries the
/// ReLU rule and Ctrl-C, and returns the scalar to maximize. Adam climbs it in the
/// parametrization's space; Ctrl-C (or cancellation) stops it with the best image so far (the highest
/// objective), or with the latest when `keepingBest` is false (fool stops itself on success).
public func optimizeImage(_ network: Network, options: RenderOptions, start: Tensor? = nil, control: LoopControl = LoopControl(),
                          keepingBest: Bool = true, objective: (Variable, ForwardContext) throws -> Variable) throws -> RenderResult {
    try options.validate()
    let input = NetworkInput(network)
    let p = options.parametrization
    var params = try start.map { try p.parameters(for: $0) } ?? p.initial(seed: options.seed)
    var generator = SeededGenerator(seed: options.seed &+ 0x5EED)
    var adam = Adam(learningRate: options.learningRate)
    var history: [Float] = [], cancelled = false
    // Ctrl-C returns the parameters with the highest objective so far (those before the step that measured it).
    var best: (value: Float, params: Tensor)?
    let target = input.spec.map { ($0.height, $0.width) } ?? (p.height, p.width)
    for step in 0..<options.steps {
        if control.isCancelled() { cancelled = true; break }
        let leaf = Variable(params, requiresGrad: true)
        let value: Float, gradient: Tensor
        do {
            var x = try p.image(leaf)
            for t in options.transforms { x = try t.apply(x, using: &generator) }
            if options.fitToInput, x.shape[2] != target.0 || x.shape[3] != target.1 {
                x = try resample(x, height: target.0, width: target.1,
                                 map: .resize(height: x.shape[2], width: x.shape[3], toHeight: target.0, width: target.1))
            }
            let context = ForwardContext(reluRule: step < options.redirectSteps ? .redirected : .plain, isCancelled: control.isCancelled)
            let y = try objective(try input.normalizeVariable(x), context)
            value = y.value.scalars.first ?? 0
            gradient = try gradients(of: y, withRespectTo: [leaf])[0]
        } catch EngineError.cancelled { cancelled = true; break }
        guard value.isFinite, gradient.scalars.allSatisfy(\.isFinite) else { throw diverged(step: step) }
        history.append(value)
        if value > best?.value ?? -.infinity { best = (value, params) }
        // Adam descends; ascend by giving it the negated gradient.
        var named = ["image": params]
        adam.step(&named, gradients: ["image": gradient.map { -$0 }])
        params = named["image"]!
        control.progress(step + 1, options.steps, value)
    }
    if cancelled, keepingBest, let best { params = best.params }
    let images = try p.image(Variable(params)).value
    return RenderResult(images: images, parameters: params, history: history, steps: history.count, cancelled: cancelled)
}

extension NetworkInput {
    /// A display-space batch variable normalized as the network expects, on the tape.
    func normalizeVariable(_ x: Variable) throws -> Variable {
        guard let spec else { return x }
        return try spec.normalization.apply(x, channelAxis: 1)
    }
}
