/// Convolutions on blocked images (BlockedLayout.swift), for forward passes without gradients:
///
///     y[k-block, oh, ow] = bias + Σ_{c-block, kh, kw} Σ_{c < 8} x[c-block, ih, iw][c] · W[k-block][c-block, kh, kw][c]
///
/// computed directly, without a patch matrix: a tile of P neighbouring outputs of a row by F
/// blocks of output channels (F · P vectors of sums, twelve at most, in registers) takes, for
/// each input channel of each tap, P broadcast input values and F vectors of weights. The
/// weights are packed once per weight tensor (and kept in `FilterCache`) in the order the tiles
/// read them: for each group of up to four output blocks, [input block][kh][kw][c][F·8].
///
/// A network's first convolution reads its input in NCHW (three channels do not fill a block):
/// the same tiles then take one channel at a time (`channelsPerStep` 1).
///
/// Each output is one chain of fused multiply-adds over (input block, kh, kw, channel) in that
/// order whatever tile computes it, and the work is cut by the shapes alone, so the outputs do not
/// depend on the number of threads.
struct BlockedConvolution {
    let pr: ConvProblem
    /// The input is NCHW rather than blocked.
    let plainInput: Bool

    /// Whether a convolution of these shapes runs blocked: one group (any channels), or groups whose
    /// input and output channels fill whole blocks. Depthwise ones take `BlockedDepthwise`.
    static func supports(_ pr: ConvProblem, plainInput: Bool) -> Bool {
        if pr.groups == 1 { return true }
        return !plainInput && pr.cg % Blocked.width == 0 && pr.kg % Blocked.width == 0
    }

    /// Input channels read in one step of a tile: a block, or one channel of an NCHW input.
    var channelsPerStep: Int { plainInput ? 1 : Blocked.width }
    /// Per group: the steps over input channels (blocks, or channels) and the blocks of outputs.
    var inSteps: Int { plainInput ? pr.cg : Blocked.blocks(pr.cg) }
    var outBlocks: Int { Blocked.blocks(pr.kg) }
    /// Output blocks a tile makes at most; an output group is this many blocks (the last fewer).
    static let tileBlocks = 4
    var outGroups: Int { (outBlocks + Self.tileBlocks - 1) / Self.tileBlocks }
    /// Floats of packed weights per group of the convolution.
    var groupCount: Int { outBlocks * Blocked.width * inSteps * channelsPerStep * pr.g.kernelArea }
    var outputShape: [Int] { [pr.n, pr.groups * outBlocks, pr.g.outHeight, pr.g.outWidth, Blocked.width] }

    /// Outputs a tile of `blocks` output blocks makes at once: twelve vectors of sums at most
    /// (sixteen registers, less the broadcast values and the weights).
    static func tileWidth(blocks: Int) -> Int { [8, 6, 4, 3][blocks - 1] }

    // MARK: weights

    /// Packs w [K, C/groups, kh, kw] into the tiles' order, zero past the last input and output channel.
    func pack(_ w: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let g = pr.g, area = g.kernelArea, step = channelsPerStep, width = Blocked.width
        out.initialize(repeating: 0, count: pr.groups * groupCount)
        for gi in 0..<pr.groups {
            for j in 0..<outGroups {
                let first = j * Self.tileBlocks, f = min(Self.tileBlocks, outBlocks - first)
                let base = out + gi * groupCount + first * width * inSteps * step * area
                for kl in 0..<(f * width) {
                    let k = (first * width) + kl
                    guard k < pr.kg else { continue }
                    let filter = w + (gi * pr.kg + k) * pr.cg * area
                    for c in 0..<pr.cg {
                        let s = c / step, lane = c % step
                        for t in 0..<area {
                            base[((s * area + t) * step + lane) * f * width + kl] = filter[c * area + t]
                        }
                    }
                }
            }
        }
    }

    /// The bias padded to whole output blocks of each group: the bias itself when each group's
    /// outputs fill whole blocks, no copy made.
    func paddedBias(_ b: [Float]?) -> [Float]? {
        guard let b else { return nil }
        if pr.kg % Blocked.width == 0 { return b }
        var out = [Float](repeating: 0, count: pr.groups * outBlocks * Blocked.width)
        for gi in 0..<pr.groups { for k in 0..<pr.kg { out[gi * outBlocks * Blocked.width + k] = b[gi * pr.kg + k] } }
        return out
    }

    // MARK: the convolution

    /// y (blocked) = activation(conv(x) + b [+ residual]); x blocked, or NCHW when `plainInput`;
    /// `residual` blocked, of y's shape (a residual network's shortcut, added as each output is
    /// stored: the same values as adding it after).
    func forward(_ x: Tensor, _ w: Tensor, _ b: Tensor?, adding residual: Tensor? = nil, then activation: ConvActivation?) -> Tensor {
        precondition(residual == nil || residual!.shape == outputShape, "residual \(residual!.shape), output \(outputShape)")
        let bias = paddedBias(b?.scalars)
        return Tensor(shape: outputShape, unsafeUninitialized: { yb in
            residual.withUnsafeOptionalPointer { rb in
            x.withUnsafeBufferPointer { xb in
                w.withUnsafeBufferPointer { wb in
                    let layout = FilterCache.Layout(plainInput ? .blockedPlainInput : .blocked, pr.groups, pr.cg, pr.kg)
                    FilterCache.shared.transformed(w, layout: layout, count: pr.groups * groupCount,
                                                   transform: { pack(wb.baseAddress!, into: $0) }) { packed in
                        bias.withUnsafeOptionalPointer { bp in
                            run(xb.baseAddress!, packed, bp, yb.baseAddress!, rb, activation)
                        }
                    }
                }
            }
            }
        })
    }

    /// Strides, in floats, that a tile reads with.
    struct Steps {
        let step: Int          // input channels per step
        let stepStride: Int    // between steps (input blocks, or channels)
        let rowStride: Int     // between rows of the input
        let rowStep: Int       // between kernel rows
        let columnStep: Int    // between kernel columns
        let positionStep: Int  // between neighbouring outputs' windows
        let kernelHeight: Int, kernelWidth: Int
        let outBlockStride: Int
    }

    /// Whether the output positions can be read as one row: a 1x1 convolution of stride 1 without
    /// padding reads position p of its input for output p.
    var flattens: Bool {
        let g = pr.g
        return g.kernelHeight == 1 && g.kernelWidth == 1 && g.strideH == 1 && g.strideW == 1 &&
            g.padTop == 0 && g.padLeft == 0 && g.padBottom == 0 && g.padRight == 0
    }

    private func run(_ x: UnsafePointer<Float>, _ packed: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                     _ y: UnsafeMutablePointer<Float>, _ residual: UnsafePointer<Float>?, _ activation: ConvActivation?) {
        let g = pr.g
        let step = channelsPerStep, width = Blocked.width
        let inImageSteps = pr.groups * inSteps
        // The input as the tiles read it: a 1x1 convolution's positions as one row (a strided
        // one's positions copied once, packed); a padded convolution's input copied once into a
        // zero border, so that no window needs bounds.
        let packs = subsamples
        let flat = flattens || packs
        let pads = g.padTop + g.padLeft + g.padBottom + g.padRight > 0
        let (H, W) = packs ? (1, g.outHeight * g.outWidth)
            : flat ? (1, g.height * g.width) : (g.height + g.padTop + g.padBottom, g.width + g.padLeft + g.padRight)
        let (OH, OW) = flat ? (1, g.outHeight * g.outWidth) : (g.outHeight, g.outWidth)
        let planes = pr.n * inImageSteps
        Workspace.shared.withBuffer(pads || packs ? planes * H * W * step : 0) { buffer in
            var source = x
            if pads {
                Parallel.forEach(planes, inline: planes * H * W * step < 1 << 16) { u in
                    Self.copyPadded(x + u * g.height * g.width * step, g, step: step, into: buffer + u * H * W * step)
                }
                source = UnsafePointer(buffer)
            } else if packs {
                Parallel.forEach(planes, inline: planes * H * W * step < 1 << 16) { u in
                    Self.copySubsampled(x + u * g.height * g.width * step, g, step: step, into: buffer + u * H * W * step)
                }
                source = UnsafePointer(buffer)
            }
            let steps = Steps(step: step, stepStride: H * W * step, rowStride: W * step, rowStep: g.dilationH * W * step, columnStep: g.dilationW * step,
                              positionStep: (packs ? 1 : g.strideW) * step, kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth,
                              outBlockStride: OH * OW * width)
            sweep(source, packed, bias, y, residual, activation, steps, rows: OH, columns: OW, inImage: inImageSteps * H * W * step)
        }
    }

    /// Whether this is a strided 1x1 convolution without padding (a residual network's
    /// downsampling shortcut) with eight or more output groups, which then copies the input
    /// positions it reads (every stride-th of every stride-th row) once, packed, and runs as a
    /// stride-1 one does. Read in place, every output group reads the input's cache lines again,
    /// twice or four times what it uses. Measured alone, in turns with the in-place reads on 2
    /// threads: 256 -> 512 on 56x56 0.91, 512 -> 1024 on 28x28 0.74, 1024 -> 2048 on 14x14 0.75,
    /// 128 -> 256 and 256 -> 512 (ResNet-18) 0.93-0.95 of the time; with two or four output
    /// groups the copy costs more than it saves (32 -> 64 on 112x112 1.25, 64 -> 128 on 56x56 1.16).
    var subsamples: Bool {
        let g = pr.g
        return g.kernelHeight == 1 && g.kernelWidth == 1 && (g.strideH > 1 || g.strideW > 1) &&
            g.padTop == 0 && g.padLeft == 0 && g.padBottom == 0 && g.padRight == 0 && outGroups >= 8
    }

    /// Copies the positions a strided 1x1 convolution reads from one plane (H x W x step floats)
    /// into outHeight x outWidth packed positions.
    static func copySubsampled(_ src: UnsafePointer<Float>, _ g: ConvGeometry, step: Int, into dst: UnsafeMutablePointer<Float>) {
        var d = dst
        for oh in 0..<g.outHeight {
            let row = src + oh * g.strideH * g.width * step
            for ow in 0..<g.outWidth {
                d.update(from: row + ow * g.strideW * step, count: step)
                d += step
            }
        }
    }

    /// Copies one plane (H x W x step floats) into the middle of a zeroed padded plane.
    static func copyPadded(_ src: UnsafePointer<Float>, _ g: ConvGeometry, step: Int, into dst: UnsafeMutablePointer<Float>) {
        let PW = g.width + g.padLeft + g.padRight, PH = g.height + g.padTop + g.padBottom
        dst.initialize(repeating: 0, count: g.padTop * PW * step)
        for h in 0..<g.height {
            copyPaddedRow(src + h * g.width * step, g, step: step, into: dst + (g.padTop + h) * PW * step)
        }
        (dst + (g.padTop + g.height) * PW * step).initialize(repeating: 0, count: (PH - g.padTop - g.height) * PW * step)
    }

    /// One row of W positions (of `step` floats) between padLeft and padRight zero positions.
    @inline(__always)
    static func copyPaddedRow(_ src: UnsafePointer<Float>, _ g: ConvGeometry, step: Int, into dst: UnsafeMutablePointer<Float>) {
        dst.initialize(repeating: 0, count: g.padLeft * step)
        (dst + g.padLeft * step).update(from: src, count: g.width * step)
        (dst + (g.padLeft + g.width) * step).initialize(repeating: 0, count: g.padRight * step)
    }

    /// Every output of `rows` rows of `columns` positions, from an input whose every window lies inside.
    private func sweep(_ x: UnsafePointer<Float>, _ packed: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                       _ y: UnsafeMutablePointer<Float>, _ residual: UnsafePointer<Float>?, _ activation: ConvActivation?,
                       _ steps: Steps, rows OH: Int, columns OW: Int, inImage: Int) {
        let g = pr.g, step = channelsPerStep, width = Blocked.width, area = g.kernelArea
        let outImage = pr.groups * outBlocks * OH * OW * width
        // Input steps per pass over the outputs: their weights (for four output blocks) in the
        // first-level cache for every row of a task, about 24 KB, or 12 KB for a 1x1 convolution.
        // A 1x1 pass reads its input from as many planes as it has steps (each block of channels
        // is a plane of its own), and with 24 of them beside 24 KB of weights in a 32 KB cache it
        // ran slower: 12 KB took 0.88-0.97 of the time of 1x1 convolutions of 224-992 channels to
        // 128 on one thread (6 KB no better), and in turns pass by pass on 2 threads MNASNet
        // 0.94-0.96, MobileNetV2 and EfficientNet-B0 0.97-0.99, ResNeXt-50 and DenseNet-121
        // 0.95-1.00. A 3x3 convolution with one input block a pass instead of two took 1.04-1.06.
        let chunk = max(1, (area > 1 ? 6144 : 3072) / (area * step * width * Self.tileBlocks))
        // Tasks: (image, group, output group, part of the outputs), enough to share among the
        // threads, each task's outputs at most 128 KB: rows, or for one long row, runs of it.
        let units = pr.n * pr.groups * outGroups
        let wanted = max(1, (PatchSplit.pieces + units - 1) / units)
        let most = max(1, (1 << 15) / (width * Self.tileBlocks))
        let (rowParts, columnsPer): (Int, Int)
        let fitting = max(24, (1 << 16) / (inSteps * step) / 24 * 24)
        // Tasks go part by part, each part's output groups in a row, for wide inputs (more channels
        // than 256 KB holds for the whole run: the run is cut to what fits, see below), so that
        // they take turns on its input while it is in a core's second-level cache; and wherever a
        // group's weights are no larger than its input, so that each thread's share of the tasks
        // (the pool gives each a contiguous range) is a part of the map, whose input it reads
        // alone and whose output the next op's share of the same part finds in its core's cache:
        // in turns pass by pass on 2 threads, MNASNet's 1x1 convolutions with a shortcut sum
        // 0.85-0.89 of their time and its pass 0.95-0.99, ResNet-18 and EfficientNet-B0 1.00.
        let partMajor = OH == 1 && fitting < min(OW, most) || groupCount <= inImage / pr.groups
        if OH == 1 {
            // Runs of at most the positions whose input, every channel of the group, fits in
            // 256 KB (1x1 convolutions of 256 to 1024 channels had read theirs again from the
            // third-level cache for each output group; the layers' times, summed, in one
            // interleaved run: ResNeXt-50 75.6 -> 74.4 ms, DenseNet-121 58.6 -> 54.4), as many
            // as the threads want, and all of one length: a 7x7 map's 49 positions in runs of
            // whole multiples of 24 had made one run of 48 and one of a single position, so that
            // one core did nearly all of the work (MNASNet's 576 -> 160 took 0.20 ms where
            // onnxruntime takes 0.09).
            let cap = min(most, fitting)
            let runs = max(wanted, (OW + cap - 1) / cap)
            let run = (OW + runs - 1) / runs
            (rowParts, columnsPer) = (1, run)
        } else {
            // As many parts of rows as the threads want (or more, each at most `most` outputs),
            // the rows dealt out in proportion: parts of a fixed number of rows had cut a 14x14
            // or 28x28 map into 7 (2 or 4 rows each), and on 2 threads one core did four of them
            // (DenseNet-121's 3x3 128 -> 32 convolutions there 0.89-0.92 of their time in eight
            // parts, its pass and GoogLeNet's 0.96-0.99, in turns pass by pass).
            let rowsMost = max(1, most / max(1, OW))
            (rowParts, columnsPer) = (min(OH, max(wanted, (OH + rowsMost - 1) / rowsMost)), OW)
        }
        let partsPerRow = (OW + columnsPer - 1) / columnsPer
        let parts = rowParts * partsPerRow
        Parallel.forEach(units * parts, inline: pr.flops < ConvKernels.parallelFlops) { t in
            let part = partMajor ? t / units : t % parts, u = partMajor ? t % units : t / parts
            let j = u % outGroups, ngi = u / outGroups, gi = ngi % pr.groups, ni = ngi / pr.groups
            let firstBlock = j * Self.tileBlocks, blocks = min(Self.tileBlocks, outBlocks - firstBlock)
            let tile = Self.tileWidth(blocks: blocks)
            let weights = packed + gi * groupCount + firstBlock * width * inSteps * step * area
            let input = ni * inImage + gi * inSteps * steps.stepStride
            let output = y + ni * outImage + (gi * outBlocks + firstBlock) * steps.outBlockStride
            let start = bias.map { $0 + (gi * outBlocks + firstBlock) * width }
            let oh0 = part / partsPerRow * OH / rowParts, oh1 = (part / partsPerRow + 1) * OH / rowParts
            let ow0 = part % partsPerRow * columnsPer, ow1 = min(OW, ow0 + columnsPer)
            var s0 = 0
            while s0 < inSteps {
                let count = min(chunk, inSteps - s0)
                let accumulate = s0 > 0, last = s0 + count == inSteps
                let w0 = weights + s0 * area * step * width * blocks
                for oh in oh0..<oh1 {
                    let row = output + oh * OW * width
                    var ow = ow0
                    while ow < ow1 {
                        let n = min(tile, ow1 - ow)
                        let origin = input + s0 * steps.stepStride + oh * g.strideH * steps.rowStride + ow * steps.positionStep
                        let out = row + ow * width
                        BlockedConvolution.tile(blocks: blocks, positions: n, step: step, x, origin: origin, steps: count,
                                                w0, out, start: accumulate ? nil : start, accumulate: accumulate,
                                                adding: last ? residual.map { $0 + (out - y) } : nil,
                                                activation: last ? activation : nil, steps)
                        ow += n
                    }
                }
                s0 += count
            }
        }
    }

    /// Runs the tile of `blocks` output blocks by `positions` outputs.
    @inline(__always)
    static func tile(blocks: Int, positions: Int, step: Int, _ x: UnsafePointer<Float>, origin: Int, steps count: Int,
                     _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                     start: UnsafePointer<Float>?, accumulate: Bool, adding residual: UnsafePointer<Float>?,
                     activation: ConvActivation?, _ s: Steps) {
        @inline(__always) func go<let F: Int, let P: Int, let S: Int>(_ tile: ConvTile<F, P, S>.Type) {
            tile.run(x, origin: origin, steps: count, w, y, start: start, accumulate: accumulate, adding: residual,
                     activation: activation, s)
        }
        // Only the tiles `tileWidth` allows: twelve vectors of sums at most.
        @inline(__always) func byBlocks<let S: Int>(_: ConvTile<1, 1, S>.Type) {
            switch (blocks, positions) {
            case (1, 1): go(ConvTile<1, 1, S>.self)
            case (1, 2): go(ConvTile<1, 2, S>.self)
            case (1, 3): go(ConvTile<1, 3, S>.self)
            case (1, 4): go(ConvTile<1, 4, S>.self)
            case (1, 5): go(ConvTile<1, 5, S>.self)
            case (1, 6): go(ConvTile<1, 6, S>.self)
            case (1, 7): go(ConvTile<1, 7, S>.self)
            case (1, _): go(ConvTile<1, 8, S>.self)
            case (2, 1): go(ConvTile<2, 1, S>.self)
            case (2, 2): go(ConvTile<2, 2, S>.self)
            case (2, 3): go(ConvTile<2, 3, S>.self)
            case (2, 4): go(ConvTile<2, 4, S>.self)
            case (2, 5): go(ConvTile<2, 5, S>.self)
            case (2, _): go(ConvTile<2, 6, S>.self)
            case (3, 1): go(ConvTile<3, 1, S>.self)
            case (3, 2): go(ConvTile<3, 2, S>.self)
            case (3, 3): go(ConvTile<3, 3, S>.self)
            case (3, _): go(ConvTile<3, 4, S>.self)
            case (_, 1): go(ConvTile<4, 1, S>.self)
            case (_, 2): go(ConvTile<4, 2, S>.self)
            default: go(ConvTile<4, 3, S>.self)
            }
        }
        if step == 1 { byBlocks(ConvTile<1, 1, 1>.self) } else { byBlocks(ConvTile<1, 1, 8>.self) }
    }
}

/// F output blocks by P neighbouring outputs of a row, over `steps` steps of S input channels
/// (S = 8: a block of a blocked input; S = 1: a channel of an NCHW one): F · P vectors of sums.
enum ConvTile<let F: Int, let P: Int, let S: Int> {
    /// Whether a step holds its P input values in registers and takes the F weights one at a
    /// time, or holds the F weights and takes the values one at a time: whichever keeps the F · P
    /// sums and what else it holds in the sixteen vector registers. (Four blocks by three outputs
    /// fit only the first way; two by six, three by four and one by eight only the second: with
    /// the values first, those had kept some sums on the stack and ran at half speed.)
    static var broadcastsFirst: Bool { F * P + P + 1 <= 16 }

    /// x + origin is where output 0's window starts in the first step; every tap of every window
    /// lies inside x. The sums start from `start` (F vectors of bias), or from y when
    /// `accumulate`, or from zero; `residual` (laid out as y), if any, is added to them and then
    /// `activation` applied as they are stored.
    @inline(__always)
    static func run(_ x: UnsafePointer<Float>, origin: Int, steps count: Int, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                    start: UnsafePointer<Float>?, accumulate: Bool, adding residual: UnsafePointer<Float>?,
                    activation: ConvActivation?, _ s: BlockedConvolution.Steps) {
        var sums = InlineArray<F, InlineArray<P, Lanes>>(repeating: InlineArray<P, Lanes>(repeating: Lanes()))
        if accumulate {
            for f in 0..<F { for p in 0..<P { sums[f][p] = Lanes.load(y + f * s.outBlockStride + p * 8) } }
        } else if let start {
            for f in 0..<F {
                let b = Lanes.load(start + 8 * f)
                for p in 0..<P { sums[f][p] = b }
            }
        }
        let tapStride = S * 8 * F
        var xc = x + origin, wp = w
        for _ in 0..<count {
            for kh in 0..<s.kernelHeight {
                for kw in 0..<s.kernelWidth {
                    let xp = xc + kh * s.rowStep + kw * s.columnStep
                    for lane in 0..<S {
                        if broadcastsFirst {
                            var v = InlineArray<P, Lanes>(repeating: Lanes())
                            for p in 0..<P { v[p] = Lanes(repeating: xp[p * s.positionStep + lane]) }
                            for f in 0..<F {
                                let weight = Lanes.load(wp + lane * 8 * F + 8 * f)
                                for p in 0..<P { sums[f][p].addProduct(v[p], weight) }
                            }
                        } else {
                            var weights = InlineArray<F, Lanes>(repeating: Lanes())
                            for f in 0..<F { weights[f] = Lanes.load(wp + lane * 8 * F + 8 * f) }
                            for p in 0..<P {
                                let v = Lanes(repeating: xp[p * s.positionStep + lane])
                                for f in 0..<F { sums[f][p].addProduct(v, weights[f]) }
                            }
                        }
                    }
                    wp += tapStride
                }
            }
            xc += s.stepStride
        }
        let stride = s.outBlockStride
        if let residual {
            for f in 0..<F { for p in 0..<P { sums[f][p] += Lanes.load(residual + f * stride + p * 8) } }
        }
        // One store loop for each activation, the sums passed by value: a local function that
        // captured them would keep them in memory, stored after every multiply-add.
        switch activation {
        case nil: store(sums, SameLanes(), y, stride)
        case .relu?: store(sums, Rectifier(), y, stride)
        case .clamp(let low, let high)?: store(sums, Clamp(low: low, high: high), y, stride)
        case .silu?: store(sums, SigmoidLinearUnit(), y, stride)
        case .hardSwish?: store(sums, HardSwish(), y, stride)
        }
    }

    @inline(__always)
    static func store<A: LaneFunction>(_ sums: InlineArray<F, InlineArray<P, Lanes>>, _ a: A, _ y: UnsafeMutablePointer<Float>, _ stride: Int) {
        for f in 0..<F { for p in 0..<P { a(sums[f][p]).store(y + f * stride + p * 8) } }
    }
}

/// Depthwise convolutions on blocked images (one input channel a group, one filter each): eight
/// channels in the lanes of each vector, P neighbouring outputs of a row at a time, each tap one
/// vector of weights for P loads of input.
struct BlockedDepthwise {
    let pr: ConvProblem

    static func supports(_ pr: ConvProblem) -> Bool { pr.isDepthwise && pr.kg == 1 }

    var blocks: Int { Blocked.blocks(pr.c) }
    var outputShape: [Int] { [pr.n, blocks, pr.g.outHeight, pr.g.outWidth, Blocked.width] }

    /// w [C, 1, kh, kw] as [block][kh][kw][8], zero past the last channel.
    func pack(_ w: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let area = pr.g.kernelArea
        out.initialize(repeating: 0, count: blocks * area * Blocked.width)
        for c in 0..<pr.c {
            for t in 0..<area { out[((c / 8) * area + t) * 8 + c % 8] = w[c * area + t] }
        }
    }

    func forward(_ x: Tensor, _ w: Tensor, _ b: Tensor?, then activation: ConvActivation?) -> Tensor {
        let bias = Blocked.paddedChannels(b?.scalars ?? [], blocks: blocks)
        return Tensor(shape: outputShape, unsafeUninitialized: { yb in
            x.withUnsafeBufferPointer { xb in
                w.withUnsafeBufferPointer { wb in
                    FilterCache.shared.transformed(w, layout: .init(.blockedDepthwise, pr.c),
                                                   count: blocks * pr.g.kernelArea * Blocked.width,
                                                   transform: { pack(wb.baseAddress!, into: $0) }) { packed in
                        bias.withUnsafeBufferPointer { bp in
                            run(xb.baseAddress!, packed, bp.baseAddress!, yb.baseAddress!, activation)
                        }
                    }
                }
            }
        })
    }

    /// Outputs a tile makes at once.
    static let tileWidth = 8

    private func run(_ x: UnsafePointer<Float>, _ packed: UnsafePointer<Float>, _ bias: UnsafePointer<Float>,
                     _ y: UnsafeMutablePointer<Float>, _ activation: ConvActivation?) {
        let g = pr.g, H = g.height, W = g.width, OH = g.outHeight, OW = g.outWidth, width = Blocked.width
        let area = g.kernelArea, PW = W + g.padLeft + g.padRight
        // Tasks: (image, block, rows), each about 2K outputs or a whole plane, or fewer rows when
        // there are not enough of them to share among the threads.
        let planes = pr.n * blocks
        var rows = max(1, min(OH, (1 << 11) / max(1, OW)))
        if planes * ((OH + rows - 1) / rows) < PatchSplit.pieces {
            rows = max(1, OH * planes / PatchSplit.pieces)
        }
        let rowBlocks = (OH + rows - 1) / rows
        // Each task copies the input rows its outputs read into a zero border (padded rows of PW
        // positions), so that no window needs bounds.
        let span = (rows - 1) * g.strideH + (g.kernelHeight - 1) * g.dilationH + 1
        let steps = BlockedConvolution.Steps(step: width, stepStride: 0, rowStride: PW * width, rowStep: g.dilationH * PW * width,
                                             columnStep: g.dilationW * width, positionStep: g.strideW * width,
                                             kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth, outBlockStride: OH * OW * width)
        // Whole small planes (a 7x7 or 14x14 map) go several to a task, about 2K outputs each
        // but still enough tasks to share: one plane a task had made pieces of a microsecond,
        // each claimed from the other core.
        let planesPer = rowBlocks > 1 ? 1 : max(1, min((1 << 11) / max(1, OH * OW), planes / PatchSplit.pieces))
        let tasks = (planes + planesPer - 1) / planesPer * rowBlocks
        Parallel.forEach(tasks, inline: pr.flops < ConvKernels.parallelFlops) { t in
            let firstPlane = t / rowBlocks * planesPer, rb = t % rowBlocks
            let oh0 = rb * rows, oh1 = min(OH, oh0 + rows)
            Workspace.local.withBuffer(span * PW * width) { buffer in
                for plane in firstPlane..<min(planes, firstPlane + planesPer) {
                    let block = plane % blocks
                    let input = x + plane * H * W * width, output = y + plane * OH * OW * width
                    let weights = packed + block * area * width, start = Lanes.load(bias + block * width)
                    // Padded row r of the buffer is input row top + r.
                    let top = oh0 * g.strideH - g.padTop
                    let count = (oh1 - 1 - oh0) * g.strideH + (g.kernelHeight - 1) * g.dilationH + 1
                    for r in 0..<count {
                        let dst = buffer + r * PW * width, h = top + r
                        guard h >= 0, h < H else { dst.initialize(repeating: 0, count: PW * width); continue }
                        BlockedConvolution.copyPaddedRow(input + h * W * width, g, step: width, into: dst)
                    }
                    for oh in oh0..<oh1 {
                        let row = output + oh * OW * width
                        let origin = (oh - oh0) * g.strideH * steps.rowStride
                        var ow = 0
                        while ow < OW {
                            let n = min(Self.tileWidth, OW - ow)
                            BlockedDepthwise.tile(positions: n, UnsafePointer(buffer), origin: origin + ow * steps.positionStep, weights,
                                                  start: start, row + ow * width, activation: activation, steps)
                            ow += n
                        }
                    }
                }
            }
        }
    }

    @inline(__always)
    static func tile(positions: Int, _ x: UnsafePointer<Float>, origin: Int, _ w: UnsafePointer<Float>, start: Lanes,
                     _ y: UnsafeMutablePointer<Float>, activation: ConvActivation?, _ s: BlockedConvolution.Steps) {
        @inline(__always) func go<let P: Int>(_: DepthwiseTile<P>.Type) {
            DepthwiseTile<P>.run(x, origin: origin, w, start: start, y, activation: activation, s)
        }
        switch positions {
        case 1: go(DepthwiseTile<1>.self)
        case 2: go(DepthwiseTile<2>.self)
        case 3: go(DepthwiseTile<3>.self)
        case 4: go(DepthwiseTile<4>.self)
        case 5: go(DepthwiseTile<5>.self)
        case 6: go(DepthwiseTile<6>.self)
        case 7: go(DepthwiseTile<7>.self)
        default: go(DepthwiseTile<8>.self)
        }
    }
}

/// P neighbouring outputs of one block of a depthwise convolution, every tap inside x.
enum DepthwiseTile<let P: Int> {
    @inline(__always)
    static func run(_ x: UnsafePointer<Float>, origin: Int, _ w: UnsafePointer<Float>, start: Lanes,
                    _ y: UnsafeMutablePointer<Float>, activation: ConvActivation?, _ s: BlockedConvolution.Steps) {
        var sums = InlineArray<P, Lanes>(repeating: start)
        var wp = w
        for kh in 0..<s.kernelHeight {
            let xr = x + origin + kh * s.rowStep
            for kw in 0..<s.kernelWidth {
                let xp = xr + kw * s.columnStep
                let weight = Lanes.load(wp)
                for p in 0..<P { sums[p].addProduct(Lanes.load(xp + p * s.positionStep), weight) }
                wp += 8
            }
        }
        switch activation {
        case nil: store(sums, SameLanes(), y)
        case .relu?: store(sums, Rectifier(), y)
        case .clamp(let low, let high)?: store(sums, Clamp(low: low, high: high), y)
        case .silu?: store(sums, SigmoidLinearUnit(), y)
        case .hardSwish?: store(sums, HardSwish(), y)
        }
    }

    @inline(__always)
    static func store<A: LaneFunction>(_ sums: InlineArray<P, Lanes>, _ a: A, _ y: UnsafeMutablePointer<Float>) {
        for p in 0..<P { a(sums[p]).store(y + p * 8) }
    }
}
