import Synchronization

/// A network's forward pass without gradients (`predict`, `net(x)`, activations for a picture)
/// keeps its images in the blocked layout [N, ⌈C/8⌉, H, W, 8] (BlockedLayout.swift) from the
/// first convolution on, as long as the layers it meets can work on it: convolutions (plain,
/// grouped in whole blocks, depthwise; each with the activation that alone reads it, and a
/// plain or grouped one with the shortcut added to it alone and the activation after), pooling,
/// batch normalization (with the activation that alone reads it), elementwise functions, sums
/// and products of images or of an image and per-channel values, concatenation and slices of
/// channels in whole blocks, and ShuffleNet's channel shuffle (reshape, transpose, reshape).
/// Any other layer (another reshape or transpose, a fully connected layer) gets its input back
/// in NCHW, converted once, and what it makes stays NCHW until the next convolution. Every
/// output asked for is NCHW.
///
/// With a gradient (saliency, class models, training) the NCHW ops run instead, each recorded
/// on the tape. CNN_BLOCKED=0 turns this path off, to compare.
public enum BlockedForward {
    private static let switchedOn = Atomic<Bool>(ProcessInfo.processInfo.environment["CNN_BLOCKED"] != "0")

    /// Whether forward passes without gradients take this path.
    public static var enabled: Bool {
        get { switchedOn.load(ordering: .relaxed) }
        set { switchedOn.store(newValue, ordering: .relaxed) }
    }

    /// Elementwise kinds whose function runs on a blocked tensor as on any other (each value on its
    /// own, finite values to finite ones, so the lanes past the last channel stay harmless).
    static let elementwiseKinds: Set<String> = [
        "relu", "relu6", "clip", "sigmoid", "silu", "hardsigmoid", "hardswish", "leaky_relu", "tanh", "gelu", "erf",
        "identity", "dropout",
    ]

    /// Whether a 3x3 convolution Winograd could take runs faster as blocked direct tiles: on
    /// few input channels (below 64, or 64 on a map no larger than 56x56), few output channels
    /// (32 or fewer), or a map of at most 64 positions. Winograd's transforms and its 16 small
    /// products, and the conversions to NCHW and back around it, then cost more than the
    /// multiplications it saves. Measured layer by layer, each shape both ways in turns: direct
    /// took 0.26-0.77 of Winograd's time on SqueezeNet's and GoogLeNet's 16-48 channels,
    /// 0.56-0.91 on DenseNet-121's 128 -> 32, 0.91 on ResNet-18's 64 -> 64 at 56x56, 0.83-0.91
    /// on 512 and 1024 channels at 7x7; Winograd stayed ahead from 80-96 channels on maps of
    /// 14x14 and up (1.02-1.96), and on VGG's 64 -> 128 at 112x112 (1.41).
    static func directBeatsWinograd(_ pr: ConvProblem) -> Bool {
        let positions = pr.g.outHeight * pr.g.outWidth
        return pr.cg < 64 || (pr.cg == 64 && positions <= 56 * 56) || pr.kg <= 32 || positions <= 64
    }

    /// How many layers ran blocked (for tests).
    static var runs: Int { counter.value }
    private static let counter = SharedCounter()
    static func count() { counter.next() }
}

import Foundation

/// A value of a forward pass: a variable in its usual layout, or a blocked image holding `channels` channels.
private enum PassValue {
    case plain(Variable)
    case blocked(Tensor, channels: Int)

    /// The NCHW shape it stands for.
    var shape: [Int] {
        switch self {
        case .plain(let v): return v.shape
        case .blocked(let t, let c): return Blocked.plainShape(t.shape, channels: c)
        }
    }
}

extension Network {
    /// The forward pass of `Network.forward` without gradients, blocked where it can be (see
    /// `BlockedForward`): the same nodes, the same fusion of a convolution with its activation,
    /// the same freeing of values after their last reader.
    func forwardBlocked(_ x: Variable, plan: PassPlan, context: ForwardContext) throws -> [Variable] {
        let stop = plan.stop
        // Values by slot (the input, then each node's output).
        var values = [PassValue?](repeating: nil, count: stop + 2)
        values[0] = .plain(x)
        // Conversions made for one reader, kept for the others.
        var plainCopies = [Variable?](repeating: nil, count: stop + 2), blockedCopies = [Tensor?](repeating: nil, count: stop + 2)

        func plain(_ slot: Int) throws -> Variable {
            guard let v = values[slot] else { throw EngineError.invalidArgument("'\(slotName(slot))' has no value") }
            switch v {
            case .plain(let p): return p
            case .blocked(let t, let c):
                if let p = plainCopies[slot] { return p }
                let p = Variable(Blocked.toPlain(t, channels: c))
                plainCopies[slot] = p
                return p
            }
        }
        /// The value as a blocked image, converted if it is a plain [N, C, H, W] one; nil for other ranks.
        func blocked(_ slot: Int) throws -> (Tensor, Int)? {
            guard let v = values[slot] else { throw EngineError.invalidArgument("'\(slotName(slot))' has no value") }
            switch v {
            case .blocked(let t, let c): return (t, c)
            case .plain(let p):
                guard p.shape.count == 4 else { return nil }
                if let t = blockedCopies[slot] { return (t, p.shape[1]) }
                let t = Blocked.fromPlain(p.value)
                blockedCopies[slot] = t
                return (t, p.shape[1])
            }
        }
        func isBlocked(_ slot: Int) -> Bool {
            if case .blocked? = values[slot] { return true }
            return false
        }

        /// Node i run blocked: its value and the last node it stands for (i + 1 when it took its
        /// activation along), or nil when the node takes the usual path.
        func runBlocked(_ i: Int) throws -> (PassValue, Int)? {
            let node = nodes[i], layer = node.layer, ins = plan.inputs[i]
            guard let first = ins.first, let input = values[first] else { return nil }
            switch layer {
            case let conv as Conv2dLayer:
                guard input.shape.count == 4, let w = layer.parameters["weight"] else { return nil }
                let b = layer.parameters["bias"]
                let pr = try ConvProblem(input: input.shape, weight: w.shape, bias: b?.shape, options: conv.options)
                // Winograd's F(2x2, 3x3) does 2.25x fewer multiplications than any direct tile:
                // those convolutions take it, in NCHW, unless the blocked tiles are faster anyway.
                if Winograd.applies(to: pr), !BlockedForward.directBeatsWinograd(pr) { return nil }
                // The kernel: depthwise, or the tiles on a blocked input or on a few channels in
                // NCHW (a network's input), read as they are.
                let depthwise = BlockedDepthwise.supports(pr)
                guard depthwise || BlockedConvolution.supports(pr, plainInput: false) else { return nil }
                let readsPlain = !depthwise && !isBlocked(first) && pr.groups == 1 && pr.c < Blocked.width
                let tiles = BlockedConvolution(pr: pr, plainInput: readsPlain)
                var activation = plan.fusedActivations[i]
                var ran = activation == nil ? i : i + 1
                // A shortcut added to the convolution's output alone (and the activation that
                // alone reads the sum): added, and activated, as each output is stored.
                var residual: Tensor?
                if activation == nil, !depthwise, !readsPlain,
                   let other = residualAddedByNext(i, plan),
                   let (r, channels) = try blocked(other), channels == pr.k, r.shape == tiles.outputShape {
                    residual = r
                    activation = plan.fusedActivations[i + 1]
                    ran = activation == nil ? i + 1 : i + 2
                    ConvActivation.residualCounter.next()
                }
                if activation != nil { ConvActivation.counter.next() }
                let y: Tensor
                if readsPlain {
                    y = tiles.forward(try plain(first).value, w, b, then: activation)
                } else {
                    guard let (t, _) = try blocked(first) else { return nil }
                    y = depthwise ? BlockedDepthwise(pr: pr).forward(t, w, b, then: activation)
                        : tiles.forward(t, w, b, adding: residual, then: activation)
                }
                return (.blocked(y, channels: pr.k), ran)
            case let pool as PoolLayer:
                guard case .blocked(let t, let c) = input else { return nil }
                return (.blocked(try BlockedPooling.pool(t, pool.options, average: layer.kind == "avgpool"), channels: c), i)
            case let norm as BatchNormLayer:
                guard case .blocked(let t, let c) = input, !context.training,
                      let mean = norm.parameters["running_mean"], let variance = norm.parameters["running_var"],
                      mean.shape == [c], variance.shape == [c] else { return nil }
                // The activation that alone reads it (a DenseNet's pre-activation ReLU) applied as
                // each value is stored, one pass over the image instead of two.
                let activation = plan.fusedActivations[i]
                let y = BlockedPooling.batchNorm(t, channels: c, weight: norm.parameters["weight"]?.scalars,
                                                 bias: norm.parameters["bias"]?.scalars, mean: mean.scalars,
                                                 variance: variance.scalars, eps: try layer.attributes.float("eps"), then: activation)
                return (.blocked(y, channels: c), activation == nil ? i : i + 1)
            default:
                break
            }
            switch plan.kinds[i] {
            case "global_avgpool", "adaptive_avgpool":
                guard case .blocked(let t, let c) = input else { return nil }
                let size = plan.kinds[i] == "global_avgpool" ? [1, 1] : try layer.attributes.ints("size", count: 2)
                return (.blocked(try BlockedPooling.adaptiveAverage(t, outputSize: (size[0], size[1])), channels: c), i)
            case let kind where BlockedForward.elementwiseKinds.contains(kind):
                guard ins.count == 1, case .blocked(let t, let c) = input else { return nil }
                let y = try layer.forward([Variable(t)], name: node.name, context: context)
                guard y.shape == t.shape else { return nil }
                return (.blocked(y.value, channels: c), i)
            case "add", "mul":
                // Images of the same channels, each dimension but the channels the same or 1 (a
                // channel's scale): blocked, they broadcast the same way.
                guard ins.contains(where: isBlocked) else { return nil }
                let shapes = ins.map { values[$0]?.shape ?? [] }
                guard let c = shapes.first?.dropFirst().first,
                      shapes.allSatisfy({ $0.count == 4 && $0[1] == c }) else { return nil }
                for d in [0, 2, 3] {
                    let sizes = Set(shapes.map { $0[d] })
                    guard sizes.count == 1 || (sizes.count == 2 && sizes.contains(1)) else { return nil }
                }
                var blockedInputs: [Variable] = []
                for slot in ins {
                    guard let (t, _) = try blocked(slot) else { return nil }
                    blockedInputs.append(Variable(t))
                }
                // An image times one value per channel (squeeze-excitation): one pass that holds
                // each block's scale.
                if plan.kinds[i] == "mul", blockedInputs.count == 2, layer.parameters.isEmpty {
                    let (a, b) = (blockedInputs[0].value, blockedInputs[1].value)
                    for (x, scale) in [(a, b), (b, a)] where x.shape.count == 5 && scale.shape == [x.shape[0], x.shape[1], 1, 1, Blocked.width] {
                        return (.blocked(Blocked.scaledByChannel(x, scale), channels: c), i)
                    }
                }
                return (.blocked(try layer.forward(blockedInputs, name: node.name, context: context).value, channels: c), i)
            case "reshape":
                // ShuffleNet's channel shuffle, reshape to [N, 2, C/2, H, W], swap the two
                // channel axes, reshape back: one pass that interleaves lanes, blocked throughout.
                guard case .blocked(let t, let c) = input, c % (2 * Blocked.width) == 0,
                      let last = shuffleEnd(i, input.shape, plan) else { return nil }
                return (.blocked(Blocked.shuffledPairs(t, channels: c), channels: c), last)
            case "slice":
                // Channels in whole blocks: the blocks themselves, one copy.
                guard case .blocked(let t, let c) = input, let axes = try? layer.attributes.intList("axes"), axes.count == 1,
                      axes[0] == 1 || axes[0] == -3, let starts = try? layer.attributes.intList("starts"),
                      let ends = try? layer.attributes.intList("ends"),
                      (layer.attributes.values["steps"] == nil || (try? layer.attributes.intList("steps")) == [1]) else { return nil }
                let (start, limit) = SliceIndex.bounds(start: starts[0], end: ends[0], step: 1, size: c), end = Swift.max(limit, start)
                guard start % Blocked.width == 0, end % Blocked.width == 0 || end == c, end > start else { return nil }
                return (.blocked(Blocked.blockRange(t, start / Blocked.width, Blocked.blocks(end)), channels: end - start), i)
            case "concat":
                // Along the channels, each part but the last in whole blocks.
                let axis = try layer.attributes.int("axis")
                guard axis == 1 || axis == -3, ins.contains(where: isBlocked) else { return nil }
                let shapes = ins.map { values[$0]?.shape ?? [] }
                // (Images of another size go to the NCHW op, which names the mismatch.)
                guard shapes.allSatisfy({ $0.count == 4 && $0[0] == shapes[0][0] && $0[2...] == shapes[0][2...] }),
                      shapes.dropLast().allSatisfy({ $0[1] % Blocked.width == 0 }) else { return nil }
                var parts: [Tensor] = []
                for slot in ins {
                    guard let (t, _) = try blocked(slot) else { return nil }
                    parts.append(t)
                }
                return (.blocked(Blocked.concatenated(parts), channels: shapes.reduce(0) { $0 + $1[1] }), i)
            default:
                return nil
            }
        }

        var i = 0
        while i <= stop {
            if context.isCancelled() { throw EngineError.cancelled }
            let node = nodes[i]
            var ran = i
            let started = context.nodeTimer == nil ? 0 : DispatchTime.now().uptimeNanoseconds
            do {
                if let (value, last) = try runBlocked(i) {
                    BlockedForward.count()
                    ran = last
                    values[ran + 1] = value
                } else {
                    let ins = try plan.inputs[i].map(plain)
                    if let conv = node.layer as? Conv2dLayer, let activation = plan.fusedActivations[i],
                       let y = try conv.forward(ins, name: node.name, context: context, then: activation) {
                        ran = i + 1
                        values[ran + 1] = .plain(y)
                    } else {
                        values[i + 1] = .plain(try node.layer.forward(ins, name: node.name, context: context))
                    }
                }
            } catch let e as EngineError {
                throw EngineError.invalidArgument("layer '\(node.name)' (\(node.layer.kind)): \(e)")
            }
            reportTime(i, through: ran, since: started, context)
            plan.free(i...ran, in: &values)
            plan.free(i...ran, in: &plainCopies)
            plan.free(i...ran, in: &blockedCopies)
            i = ran + 1
        }
        return try plan.outputSlots.map {
            guard values[$0] != nil else { throw EngineError.unknownName(slotName($0), candidates: layerNames) }
            return try plain($0)
        }
    }
}

extension Network {
    /// The other input of node i + 1 when it adds node i's output, which it alone reads and
    /// nobody asked for, to one other value of the pass: a convolution at i can then add that
    /// value as it stores its outputs.
    func residualAddedByNext(_ i: Int, _ plan: PassPlan) -> Int? {
        guard i < plan.stop, plan.kinds[i + 1] == "add", nodes[i + 1].layer.parameters.isEmpty else { return nil }
        let mine = i + 1, add = plan.inputs[i + 1]
        guard add.count == 2, (add[0] == mine) != (add[1] == mine), plan.lastRead(mine, by: i + 1) else { return nil }
        return add[0] == mine ? add[1] : add[0]
    }
}

extension Network {
    /// The last of three nodes from node i that shuffle the channels of an [N, C, H, W] image in
    /// two groups (a reshape to [N, 2, C/2, H, W], a transpose [0, 2, 1, 3, 4], a reshape back to
    /// [N, C, H, W]), each read by the next alone; nil for anything else.
    func shuffleEnd(_ i: Int, _ shape: [Int], _ plan: PassPlan) -> Int? {
        guard shape.count == 4, i + 2 <= plan.stop else { return nil }
        let (first, swap, back) = (nodes[i], nodes[i + 1], nodes[i + 2])
        guard first.layer.kind == "reshape", swap.layer.kind == "transpose", back.layer.kind == "reshape",
              plan.readAloneByNext(i), plan.readAloneByNext(i + 1),
              let split = try? first.layer.outputShape([shape]), split == [shape[0], 2, shape[1] / 2, shape[2], shape[3]],
              (try? swap.layer.attributes.intList("perm")) == [0, 2, 1, 3, 4],
              (try? back.layer.outputShape([[shape[0], shape[1] / 2, 2, shape[2], shape[3]]])) == shape else { return nil }
        return i + 2
    }
}
