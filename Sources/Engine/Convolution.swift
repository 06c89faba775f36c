/// 2-D convolution (cross-correlation, as in PyTorch and ONNX) with stride, zero padding
/// (asymmetric allowed), dilation and groups.
///
/// Shapes: x [N, C, H, W], w [K, C/groups, kh, kw], b [K], y [N, K, OH, OW].
/// Forward:          y = W · im2col(x) + b           (one sgemm per group and block of positions)
/// Input gradient:   dx = col2im(Wᵀ · dy)
/// Weight gradient:  dW = dy · im2col(x)ᵀ,  db = Σ dy
/// Depthwise convolutions (one input channel per group), and grouped ones with few channels a
/// group at stride 1 or 2, run as direct loops, 1x1
/// convolutions with stride 1 skip im2col (x already is its patch matrix), and 3x3 stride-1
/// convolutions with enough channels run on Winograd's F(2x2, 3x3) (Winograd.swift).
public struct ConvOptions: Equatable, Sendable {
    public var stride: (h: Int, w: Int)
    /// top, left, bottom, right
    public var padding: (top: Int, left: Int, bottom: Int, right: Int)
    public var dilation: (h: Int, w: Int)
    public var groups: Int

    public init(stride: Int = 1, padding: Int = 0, dilation: Int = 1, groups: Int = 1) {
        self.stride = (stride, stride)
        self.padding = (padding, padding, padding, padding)
        self.dilation = (dilation, dilation)
        self.groups = groups
    }

    public init(stride: (Int, Int), padding: (Int, Int, Int, Int), dilation: (Int, Int) = (1, 1), groups: Int = 1) {
        self.stride = (stride.0, stride.1)
        self.padding = (padding.0, padding.1, padding.2, padding.3)
        self.dilation = (dilation.0, dilation.1)
        self.groups = groups
    }

    public static func == (a: ConvOptions, b: ConvOptions) -> Bool {
        a.stride == b.stride && a.padding == b.padding && a.dilation == b.dilation && a.groups == b.groups
    }

    func geometry(channels: Int, height: Int, width: Int, kernel: (Int, Int)) -> ConvGeometry {
        ConvGeometry(channels: channels, height: height, width: width, kernelHeight: kernel.0, kernelWidth: kernel.1,
                     strideH: stride.h, strideW: stride.w, padTop: padding.top, padLeft: padding.left,
                     padBottom: padding.bottom, padRight: padding.right, dilationH: dilation.h, dilationW: dilation.w)
    }
}

/// The checked shapes of one convolution.
struct ConvProblem {
    let n: Int, c: Int, k: Int, groups: Int
    let g: ConvGeometry          // geometry of one group's input channels
    var cg: Int { c / groups }   // input channels per group
    var kg: Int { k / groups }   // output channels per group
    var rows: Int { cg * g.kernelArea }   // patch-matrix rows per group
    var positions: Int { g.positions }
    var isDepthwise: Bool { groups > 1 && cg == 1 }
    var isPointwise: Bool {
        g.kernelHeight == 1 && g.kernelWidth == 1 && g.strideH == 1 && g.strideW == 1 &&
            g.padTop == 0 && g.padLeft == 0 && g.padBottom == 0 && g.padRight == 0
    }
    var outputShape: [Int] { [n, k, g.outHeight, g.outWidth] }
    var flops: Double { 2 * Double(n * k * rows * positions) }

    init(input: [Int], weight: [Int], bias: [Int]?, options o: ConvOptions) throws {
        guard input.count == 4 else { throw EngineError.shapeMismatch("conv2d input must be [N, C, H, W], got \(input)") }
        guard weight.count == 4 else { throw EngineError.shapeMismatch("conv2d weight must be [K, C/groups, kh, kw], got \(weight)") }
        guard o.groups >= 1 else { throw EngineError.invalidArgument("groups must be at least 1, got \(o.groups)") }
        n = input[0]; c = input[1]; k = weight[0]; groups = o.groups
        guard c % groups == 0, k % groups == 0 else {
            throw EngineError.shapeMismatch("groups (\(groups)) must divide input channels (\(c)) and output channels (\(k))")
        }
        guard weight[1] == c / groups else {
            throw EngineError.shapeMismatch("conv2d weight \(weight) expects \(weight[1] * groups) input channels, the input has \(c) (shape \(input))")
        }
        if let bias, bias != [k] { throw EngineError.shapeMismatch("conv2d bias must be [\(k)], got \(bias)") }
        g = o.geometry(channels: c / groups, height: input[2], width: input[3], kernel: (weight[2], weight[3]))
        try g.validate()
    }

    /// Positions per block: a block's patch matrix stays around 512 KB, so it lives in cache, but
    /// a block keeps at least 128 positions so that sgemm's cost of packing W is spread over enough work.
    var blockPositions: Int {
        let target = 131_072 / max(rows, 1)
        let p = max(128, (target / 16) * 16)
        return min(positions, p)
    }
}

/// An elementwise activation run on a convolution's outputs as each block of them is written,
/// while they are in cache, instead of in a pass of its own over memory: for a network run
/// without gradients (`Network.forward` fuses a convolution with the activation that alone reads
/// it). The functions are the activation layers' own, so the values are the same.
enum ConvActivation: Equatable {
    case relu
    case clamp(low: Float, high: Float)
    case silu
    case hardSwish

    /// The activation a layer computes, if it is one of these (its forward pass; the backward
    /// rules of ReLU do not matter without gradients).
    init?(_ layer: Layer) {
        switch layer.kind {
        case "relu": self = .relu
        case "relu6": self = .clamp(low: 0, high: 6)
        case "silu": self = .silu
        case "hardswish": self = .hardSwish
        case "clip":
            guard let low = try? layer.attributes.float("min", -.infinity),
                  let high = try? layer.attributes.float("max", .infinity) else { return nil }
            self = .clamp(low: low, high: high)
        default: return nil
        }
    }

    @inline(__always)
    func apply(_ p: UnsafeMutablePointer<Float>, count: Int) {
        @inline(__always) func run<F: ScalarFunction>(_ f: F) { for i in 0..<count { p[i] = f(p[i]) } }
        switch self {
        case .relu: run(Rectifier())
        case .clamp(let low, let high): run(Clamp(low: low, high: high))
        case .silu: run(SigmoidLinearUnit())
        case .hardSwish: run(HardSwish())
        }
    }

    /// How many convolutions have run with their activation (for tests).
    static var runs: Int { counter.value }
    static let counter = SharedCounter()
    /// How many blocked convolutions have added a shortcut as they stored (for tests).
    static var residualRuns: Int { residualCounter.value }
    static let residualCounter = SharedCounter()

    /// The same activation as its own op, for what fusing must agree with.
    func callAsFunction(_ x: Variable) -> Variable {
        switch self {
        case .relu: return Engine.relu(x)
        case .clamp(let low, let high): return clip(x, min: low, max: high)
        case .silu: return Engine.silu(x)
        case .hardSwish: return Engine.hardSwish(x)
        }
    }
}

/// How the patch path cuts a convolution into work for the threads: blocks of output positions
/// for each image and group and, when those are few (a small image, the late layers of a
/// network), each block's output channels in chunks, or its positions in smaller blocks. A 1x1
/// convolution on a 7x7 image is one block of 49 positions: whole, it would run on one core.
/// The cut depends on the shapes alone, never on the number of threads, so a network gives the
/// same outputs on any number of cores (as Winograd's blocks do).
struct PatchSplit {
    let block: Int, blocks: Int
    /// Output channels per chunk, and chunks per block (1: the block is not cut).
    let chunk: Int, chunks: Int
    let inline: Bool
    /// Pieces of work a convolution is cut into at least, when it is large enough to be run on
    /// several threads: enough to share evenly among 2, 4 or 8.
    static let pieces = 8

    init(_ pr: ConvProblem, inline: Bool) {
        let P = pr.positions
        var block = pr.blockPositions, blocks = (P + block - 1) / block
        var chunk = pr.kg, chunks = 1
        self.inline = inline
        let tasks = pr.n * pr.groups * blocks
        if !inline, tasks < PatchSplit.pieces, P > 0 {
            let pieces = (PatchSplit.pieces + tasks - 1) / tasks
            // Cut where the repeated work is smaller: each piece of a block of positions packs the
            // block's weights again (kg x rows), each chunk of channels packs the patches (rows x positions).
            if P >= pr.kg {
                let size = ((P + blocks * pieces - 1) / (blocks * pieces) + 7) / 8 * 8
                if size >= 32 { block = size; blocks = (P + size - 1) / size }
            } else {
                let size = ((pr.kg + pieces - 1) / pieces + 7) / 8 * 8
                if size >= 16 { chunk = size; chunks = (pr.kg + size - 1) / size }
            }
        }
        self.block = block; self.blocks = blocks; self.chunk = chunk; self.chunks = chunks
    }
}

enum ConvKernels {
    /// Below this many floating-point operations a forward convolution runs on the calling
    /// thread: handing a job to the worker threads costs about a microsecond, so even a depthwise
    /// convolution on a 7x7 map (1.4 MFLOP, some 0.1 ms alone) gains from the second core.
    static let parallelFlops = 1e5

    // MARK: forward

    static func forward(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ pr: ConvProblem, then activation: ConvActivation? = nil) -> Tensor {
        Winograd.applies(to: pr) ? Winograd.forward(x, w, b, pr, then: activation) : patchForward(x, w, b, pr, then: activation)
    }

    /// y = W · im2col(x) + b, blocked over output positions (the direct loops for depthwise).
    /// With `activation`, each block of outputs is passed through it as soon as it is written,
    /// while it is still in cache: the same values as the activation applied afterwards.
    static func patchForward(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ pr: ConvProblem, then activation: ConvActivation? = nil) -> Tensor {
        // The matrix products (beta 0, or 1 onto the bias they write first) and the depthwise
        // paths of stride 1 and 2 write every output; only the other strided depthwise loops add
        // into theirs, so only they need zeros to start from.
        let overwrites = !pr.isDepthwise || (pr.g.strideH == 1 && pr.g.strideW == 1) || depthwiseSplitsPhases(pr.g)
        var y = overwrites ? Tensor(shape: pr.outputShape, unsafeUninitialized: { _ in }) : Tensor(zeros: pr.outputShape)
        let P = pr.positions, H = pr.g.height, W = pr.g.width
        let bias = b?.scalars
        x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in y.withUnsafeMutableBufferPointer { yb in
            let xp = xb.baseAddress!, wp = wb.baseAddress!, yp = yb.baseAddress!
            if runsDirect(pr) {
                bias.withUnsafeOptionalPointer { bp in depthwiseForward(xp, wp, bp, yp, pr, then: activation) }
            } else {
                let s = PatchSplit(pr, inline: pr.flops < parallelFlops)
                let block = s.block, blocks = s.blocks, tasks = pr.n * pr.groups * blocks
                /// Task t's group of input channels, its group's weights, its block of outputs, the
                /// block's positions p0..<p1 and the group's index.
                func task(_ t: Int) -> (xg: UnsafePointer<Float>, wg: UnsafePointer<Float>, yg: UnsafeMutablePointer<Float>, p0: Int, p1: Int, gi: Int) {
                    let blk = t % blocks, ng = t / blocks, gi = ng % pr.groups, ni = ng / pr.groups
                    let p0 = blk * block, p1 = min(P, p0 + block)
                    return (xp + (ni * pr.c + gi * pr.cg) * H * W, wp + gi * pr.kg * pr.rows,
                            yp + (ni * pr.k + gi * pr.kg) * P + p0, p0, p1, gi)
                }
                /// Output channels r0..<r1 of a block: the bias written first and the product added
                /// to it (beta 1), so there is no pass to zero the outputs and none to add the bias.
                func multiply(_ t: Int, rows r0: Int, _ r1: Int, patches: UnsafePointer<Float>, ldb: Int) {
                    let (_, wg, yg, p0, p1, gi) = task(t)
                    if P == 1 {
                        // One position (a squeeze-excitation block's 1x1 convolutions on a pooled
                        // vector): a matrix-vector product, its outputs contiguous (P = 1).
                        BLAS.sgemv(transpose: false, rows: r1 - r0, columns: pr.rows, a: wg + r0 * pr.rows, lda: pr.rows,
                                   x: patches, y: yg + r0)
                        if let bias { for r in r0..<r1 { yg[r] += bias[gi * pr.kg + r] } }
                        activation?.apply(yg + r0, count: r1 - r0)
                        return
                    }
                    if SmallGemm.applies(m: r1 - r0, n: p1 - p0, k: pr.rows) {
                        bias.withUnsafeOptionalPointer { bp in
                            SmallGemm.multiply(m: r1 - r0, n: p1 - p0, k: pr.rows, a: wg + r0 * pr.rows, lda: pr.rows, b: patches, ldb: ldb,
                                               bias: bp.map { $0 + gi * pr.kg + r0 }, then: activation, c: yg + r0 * P, ldc: P)
                        }
                        return
                    }
                    var beta: Float = 0
                    if let bias {
                        for r in r0..<r1 {
                            let row = yg + r * P, v = bias[gi * pr.kg + r]
                            for p in 0..<(p1 - p0) { row[p] = v }
                        }
                        beta = 1
                    }
                    BLAS.sgemm(m: r1 - r0, n: p1 - p0, k: pr.rows, a: wg + r0 * pr.rows, lda: pr.rows, b: patches, ldb: ldb,
                               beta: beta, c: yg + r0 * P, ldc: P)
                    if let activation { for r in r0..<r1 { activation.apply(yg + r * P, count: p1 - p0) } }
                }
                if s.chunks == 1 {
                    Parallel.forEach(tasks, inline: s.inline) { t in
                        let (xg, _, _, p0, p1, _) = task(t)
                        if pr.isPointwise {
                            multiply(t, rows: 0, pr.kg, patches: xg + p0, ldb: P)
                        } else {
                            Workspace.shared.withBuffer(pr.rows * (p1 - p0)) { cols in
                                im2col(xg, pr.g, channels: 0, pr.cg, positions: p0, p1, into: cols)
                                multiply(t, rows: 0, pr.kg, patches: cols, ldb: p1 - p0)
                            }
                        }
                    }
                } else {
                    // Fewer than eight blocks: each block's output channels are cut into chunks, which
                    // share the block's patch matrix, made once (split by channels across the threads).
                    let stride = pr.rows * block
                    Workspace.shared.withBuffer(pr.isPointwise ? 0 : tasks * stride) { shared in
                        if !pr.isPointwise {
                            let parts = min(pr.cg, Parallel.threads)
                            Parallel.forEach(tasks * parts) { u in
                                let t = u / parts, part = u % parts
                                let (xg, _, _, p0, p1, _) = task(t)
                                let c0 = pr.cg * part / parts, c1 = pr.cg * (part + 1) / parts
                                im2col(xg, pr.g, channels: c0, c1, positions: p0, p1,
                                       into: shared + t * stride + c0 * pr.g.kernelArea * (p1 - p0))
                            }
                        }
                        Parallel.forEach(tasks * s.chunks) { u in
                            let t = u / s.chunks, r0 = (u % s.chunks) * s.chunk, r1 = min(pr.kg, r0 + s.chunk)
                            let (xg, _, _, p0, p1, _) = task(t)
                            if pr.isPointwise {
                                multiply(t, rows: r0, r1, patches: xg + p0, ldb: P)
                            } else {
                                multiply(t, rows: r0, r1, patches: shared + t * stride, ldb: p1 - p0)
                            }
                        }
                    }
                }
            }
        }}}
        return y
    }

    /// Grouped convolutions as direct loops: y[k] = Σ_c Σ_{ki,kj} w[k,c,ki,kj] · x[group's c] shifted
    /// (one input channel per group for a depthwise convolution).
    /// With stride 1 each plane is copied into a zero-padded buffer, so that no tap needs a bounds
    /// check, and each tap sweeps the padded plane in one run: output row oh is computed at the
    /// padded width ("wide" rows, whose extra columns are dropped), which keeps the inner loop
    /// long and vectorized even on 7x7 planes. With stride 2 (the down-sampling blocks of
    /// MobileNet and EfficientNet) the padded plane is first split into its four phases (even
    /// and odd rows by even and odd columns): each tap then reads one phase at stride 1, and the
    /// same wide sweep applies. Other strides take each output row's valid taps from the input.
    /// Each plane then gets its bias and `activation` while it is in cache.
    static func depthwiseForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                 _ y: UnsafeMutablePointer<Float>, _ pr: ConvProblem, then activation: ConvActivation? = nil) {
        let g = pr.g, OH = g.outHeight, OW = g.outWidth, H = g.height, W = g.width
        let KH = g.kernelHeight, KW = g.kernelWidth
        let PH = H + g.padTop + g.padBottom, PW = W + g.padLeft + g.padRight
        guard OH > 0, OW > 0 else { return }
        let unitStride = g.strideH == 1 && g.strideW == 1
        let halfStride = depthwiseSplitsPhases(g)
        // A phase's size: the padded plane's rows and columns of one parity, rounded up.
        let EH = (PH + 1) / 2, EW = (PW + 1) / 2
        let sh = g.strideH, sw = g.strideW
        let columns = (0..<KW).map { g.validColumns($0) }
        // The buffer the taps read (padded plane, or its phases), the width of a wide row in it,
        // and where each tap starts, in the order of the weights.
        let (bufferCount, rowWidth, offsets): (Int, Int, [Int])
        if unitStride {
            (bufferCount, rowWidth) = (PH * PW, PW)
            offsets = (0..<(KH * KW)).map { t in (t / KW) * g.dilationH * PW + (t % KW) * g.dilationW }
        } else if halfStride {
            (bufferCount, rowWidth) = (4 * EH * EW, EW)
            offsets = (0..<(KH * KW)).map { t in
                let ki = t / KW, kj = t % KW
                return ((ki & 1) * 2 + (kj & 1)) * EH * EW + (ki >> 1) * EW + (kj >> 1)
            }
        } else {
            (bufferCount, rowWidth, offsets) = (0, 0, [])
        }
        // wide[oh·rowWidth + ow] for ow < OW of every row; the last row needs only OW entries,
        // which keeps every tap's reads inside the buffer.
        let wideCount = rowWidth > 0 ? (OH - 1) * rowWidth + OW : 0
        /// Output channel ko's plane: its bias and activation, while it is in cache.
        func finish(_ out: UnsafeMutablePointer<Float>, _ ko: Int) {
            if let bias {
                let v = bias[ko]
                for p in 0..<(OH * OW) { out[p] += v }
            }
            activation?.apply(out, count: OH * OW)
        }
        if rowWidth > 0 {
            // A unit of work is a group of one image: its input planes padded (or split) once,
            // one after the other in the buffer, then each of its output channels swept over all
            // of them, the taps in the order of the weights [K, C / groups, kh, kw].
            let groups = pr.n * pr.groups
            let taps = (0..<pr.cg).flatMap { c in offsets.map { c * bufferCount + $0 } }
            let (chunk, units) = planeChunks(groups)
            // The sweep runs to a multiple of 32 outputs, so that every output is made in the
            // four-lane loop of `sumOfTaps` (a 7x7 map's wide rows are 61 long, a 5x5 kernel's 73:
            // a tail of one lane adds each tap to the last with no other work to hide its latency);
            // the reads past the last plane land in the zeroed `slack`, and the outputs they make
            // are dropped with the wide rows' extra columns.
            let sweep = (wideCount + 31) / 32 * 32, slack = 32
            Parallel.forEach(units, inline: pr.flops < parallelFlops) { u in
                Workspace.shared.withBuffer(pr.cg * bufferCount + slack + sweep) { buffer in
                    let wide = buffer + pr.cg * bufferCount + slack
                    (wide - slack).initialize(repeating: 0, count: slack)
                    // The padding is zeroed once: each plane then writes only its own values.
                    buffer.initialize(repeating: 0, count: pr.cg * bufferCount)
                    for ng in (u * chunk)..<min(groups, (u + 1) * chunk) {
                        let ni = ng / pr.groups, gi = ng % pr.groups
                        for c in 0..<pr.cg {
                            let input = x + (ni * pr.c + gi * pr.cg + c) * H * W
                            if unitStride { copyIntoPadding(input, into: buffer + c * bufferCount, g) } else { splitPhases(input, into: buffer + c * bufferCount, g) }
                        }
                        for ko in (gi * pr.kg)..<((gi + 1) * pr.kg) {
                            sumOfTaps(buffer, offsets: taps, weights: w + ko * pr.cg * KH * KW, into: wide, count: sweep)
                            let out = y + (ni * pr.k + ko) * OH * OW
                            for oh in 0..<OH { (out + oh * OW).update(from: wide + oh * rowWidth, count: OW) }
                            finish(out, ko)
                        }
                    }
                }
            }
            return
        }
        // Other strides (depthwise only): each output row takes its valid taps from the input.
        let planes = pr.n * pr.k
        let (chunk, units) = planeChunks(planes)
        Parallel.forEach(units, inline: pr.flops < parallelFlops) { u in
            for plane in (u * chunk)..<min(planes, (u + 1) * chunk) {
                let ni = plane / pr.k, ko = plane % pr.k, ci = ko / pr.kg
                let input = x + (ni * pr.c + ci) * H * W
                let out = y + plane * OH * OW
                let wk = w + ko * KH * KW
                for oh in 0..<OH {
                    let orow = out + oh * OW
                    for ki in 0..<KH {
                        let ih = oh * sh - g.padTop + ki * g.dilationH
                        if ih < 0 || ih >= H { continue }
                        let irow = input + ih * W
                        for kj in 0..<KW {
                            let wv = wk[ki * KW + kj]
                            let (lo, hi) = columns[kj]
                            let src = irow + kj * g.dilationW - g.padLeft
                            for ow in lo..<hi { orow[ow] += wv * src[ow * sw] }
                        }
                    }
                }
                finish(out, ko)
            }
        }
    }

    /// Whether a grouped convolution runs as direct loops (`depthwiseForward`): every depthwise
    /// one, and those with a few input channels per group (RegNet's and ResNeXt's 3x3 convolutions,
    /// 4 to 64 channels a group) at stride 1 or 2, where im2col would copy each input nine times
    /// over for matrix products too small to pay for it. Each output channel sweeps all of its
    /// group's padded planes, so they are held to 128K floats (half a megabyte, about a core's
    /// second-level cache): RegNet's first grouped convolution, 16 channels a group on 114x114
    /// padded planes, ran 0.60 ms direct and 0.42 ms as im2col and a matrix product.
    static func runsDirect(_ pr: ConvProblem) -> Bool {
        if pr.isDepthwise { return true }
        let g = pr.g
        let sweeps = (g.strideH == 1 && g.strideW == 1) || depthwiseSplitsPhases(g)
        let padded = (g.height + g.padTop + g.padBottom) * (g.width + g.padLeft + g.padRight)
        return pr.groups > 1 && sweeps && pr.cg * g.kernelArea <= 576 && pr.cg * padded <= 1 << 17
    }

    /// Whether a depthwise convolution takes the four-phase path (stride 2, no dilation).
    static func depthwiseSplitsPhases(_ g: ConvGeometry) -> Bool {
        g.strideH == 2 && g.strideW == 2 && g.dilationH == 1 && g.dilationW == 1
    }

    /// out[i] = Σ_t weights[t] · source[offsets[t] + i] for i < count: 32 outputs at a time kept in
    /// registers across all the taps (four lanes of eight), so each output is stored once rather
    /// than once a tap. Each product is rounded before it is added, in the order of the taps, as
    /// the loops of the other strides do: the paths give the same values.
    static func sumOfTaps(_ source: UnsafePointer<Float>, offsets: [Int], weights: UnsafePointer<Float>,
                          into out: UnsafeMutablePointer<Float>, count: Int) {
        offsets.withUnsafeBufferPointer { offsets in
            let taps = offsets.count
            @inline(__always) func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
            @inline(__always) func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
                UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
            }
            var i = 0
            while i + 32 <= count {
                var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                for t in 0..<taps {
                    let p = source + offsets[t] + i, wv = SIMD8<Float>(repeating: weights[t])
                    a0 += wv * load(p)
                    a1 += wv * load(p + 8)
                    a2 += wv * load(p + 16)
                    a3 += wv * load(p + 24)
                }
                store(a0, out + i); store(a1, out + i + 8); store(a2, out + i + 16); store(a3, out + i + 24)
                i += 32
            }
            while i + 8 <= count {
                var a = SIMD8<Float>()
                for t in 0..<taps { a += SIMD8<Float>(repeating: weights[t]) * load(source + offsets[t] + i) }
                store(a, out + i)
                i += 8
            }
            while i < count {
                var a: Float = 0
                for t in 0..<taps { a += weights[t] * source[offsets[t] + i] }
                out[i] = a
                i += 1
            }
        }
    }

    /// The zero-padded plane of `source` as its four phases, each ((PH + 1) / 2) x ((PW + 1) / 2):
    /// phase (r, c) at (2r + c) · phase size holds padded[2i + r][2j + c] at [i][j] (zero past the
    /// padded plane). Only the plane's own values are written: the caller zeroes the buffer once,
    /// and a buffer that holds one plane after another keeps its padding.
    static func splitPhases(_ source: UnsafePointer<Float>, into buffer: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        let H = g.height, W = g.width, PH = H + g.padTop + g.padBottom, PW = W + g.padLeft + g.padRight
        let EH = (PH + 1) / 2, EW = (PW + 1) / 2
        // For each column parity c: the columns j whose input column 2j + c - padLeft lies in
        // 0..<W, the first such input column (0 or 1), and how many there are.
        let spans = (0..<2).map { c in
            let lo = Swift.min(EW, Swift.max(0, (g.padLeft - c + 1) / 2))
            let hi = Swift.max(lo, Swift.min(EW, (W + g.padLeft - c + 1) / 2))
            return (lo: lo, first: 2 * lo + c - g.padLeft, count: hi - lo)
        }
        // The parity whose columns start at input column 0 takes the even lanes of each sixteen
        // input values, the other the odd lanes: one pass over each row, while sixteen fit in it.
        let (even, odd) = spans[0].first == 0 ? (spans[0], spans[1]) : (spans[1], spans[0])
        let (evenPhase, oddPhase) = spans[0].first == 0 ? (0, 1) : (1, 0)
        let vectors = even.first == 0 && odd.first == 1 && even.count > 0 && odd.count > 0
            ? Swift.min(W / 16, even.count / 8, odd.count / 8) : 0
        for ir in 0..<H {
            let pr = ir + g.padTop
            let row = buffer + (pr & 1) * 2 * EH * EW + (pr >> 1) * EW
            let de = row + evenPhase * EH * EW + even.lo, dO = row + oddPhase * EH * EW + odd.lo
            let from = source + ir * W
            for v in 0..<vectors {
                let a = UnsafeRawPointer(from + 16 * v).loadUnaligned(as: SIMD8<Float>.self)
                let b = UnsafeRawPointer(from + 16 * v + 8).loadUnaligned(as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(de + 8 * v).storeBytes(of: SIMD8<Float>(a[0], a[2], a[4], a[6], b[0], b[2], b[4], b[6]), as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(dO + 8 * v).storeBytes(of: SIMD8<Float>(a[1], a[3], a[5], a[7], b[1], b[3], b[5], b[7]), as: SIMD8<Float>.self)
            }
            for e in (8 * vectors)..<even.count { de[e] = from[even.first + 2 * e] }
            for e in (8 * vectors)..<odd.count { dO[e] = from[odd.first + 2 * e] }
        }
    }

    /// Planes per unit of parallel work, and how many units: a few units per thread, so that
    /// thousands of small planes do not each cost a thread hop.
    static func planeChunks(_ planes: Int) -> (chunk: Int, units: Int) {
        let chunk = max(1, planes / (4 * Parallel.threads))
        return (chunk, (planes + chunk - 1) / chunk)
    }

    /// Copies an H x W plane into the middle of an (H + top + bottom) x (W + left + right) one whose
    /// padding is zero already (a buffer that holds one plane after another keeps its padding).
    @inline(__always)
    static func copyIntoPadding(_ source: UnsafePointer<Float>, into padded: UnsafeMutablePointer<Float>, _ g: ConvGeometry) {
        let H = g.height, W = g.width, PW = W + g.padLeft + g.padRight
        let first = padded + g.padTop * PW + g.padLeft
        for h in 0..<H { (first + h * PW).update(from: source + h * W, count: W) }
    }

    // MARK: backward to the input

    static func backwardInput(_ dy: Tensor, _ w: Tensor, inputShape: [Int], _ pr: ConvProblem) -> Tensor {
        if let (flipped, transposed) = transposedProblem(pr, weightShape: w.shape) {
            // Stride 1: dx is the "full" convolution of dy with the flipped, channel-transposed
            // filters, which runs on the forward path (blocked im2col + sgemm, no scatter-add;
            // Winograd reads the flipped filters straight out of w).
            if Winograd.applies(to: transposed) {
                return Winograd.forward(dy, w, nil, transposed, flipped: true).withShape(flipped)
            }
            return patchForward(dy, flippedWeights(w, pr), nil, transposed).withShape(flipped)
        }
        let P = pr.positions, H = pr.g.height, W = pr.g.width
        var dx = Tensor(zeros: inputShape)
        dy.withUnsafeBufferPointer { db in w.withUnsafeBufferPointer { wb in dx.withUnsafeMutableBufferPointer { xb in
            let dyp = db.baseAddress!, wp = wb.baseAddress!, dxp = xb.baseAddress!
            if pr.isDepthwise {
                depthwiseBackwardInput(dyp, wp, dxp, pr)
                return
            }
            if pr.isPointwise {
                // dx[:, block] = Wᵀ · dy[:, block]: blocks write disjoint columns.
                let block = pr.blockPositions, blocks = (P + block - 1) / block
                Parallel.forEach(pr.n * pr.groups * blocks, inline: pr.flops < 2e6) { u in
                    let blk = u % blocks, ng = u / blocks, gi = ng % pr.groups, ni = ng / pr.groups
                    let p0 = blk * block, p1 = min(P, p0 + block)
                    BLAS.sgemm(transA: true, m: pr.rows, n: p1 - p0, k: pr.kg,
                               a: wp + gi * pr.kg * pr.rows, lda: pr.rows,
                               b: dyp + (ni * pr.k + gi * pr.kg) * P + p0, ldb: P,
                               c: dxp + (ni * pr.c + gi * pr.cg) * H * W + p0, ldc: P)
                }
                return
            }
            let block = pr.blockPositions, blocks = (P + block - 1) / block
            let total = xb.count
            accumulate(units: pr.n * pr.groups * blocks, count: total, into: dxp, inline: pr.flops < 2e6) { u, acc in
                let blk = u % blocks, ng = u / blocks, gi = ng % pr.groups, ni = ng / pr.groups
                let p0 = blk * block, p1 = min(P, p0 + block)
                Workspace.shared.withBuffer(pr.rows * (p1 - p0)) { cols in
                    BLAS.sgemm(transA: true, m: pr.rows, n: p1 - p0, k: pr.kg,
                               a: wp + gi * pr.kg * pr.rows, lda: pr.rows,
                               b: dyp + (ni * pr.k + gi * pr.kg) * P + p0, ldb: P,
                               c: cols, ldc: p1 - p0)
                    col2im(cols, pr.g, channels: 0, pr.cg, positions: p0, p1, into: acc + (ni * pr.c + gi * pr.cg) * H * W)
                }
            }
        }}}
        return dx
    }

    /// For a stride-1 convolution whose padding does not exceed the kernel's reach, the problem
    /// that computes its input gradient as a forward convolution of dy. A depthwise convolution
    /// with one filter per channel stays depthwise, and takes the depthwise forward path.
    static func transposedProblem(_ pr: ConvProblem, weightShape: [Int]) -> ([Int], ConvProblem)? {
        let g = pr.g
        guard g.strideH == 1, g.strideW == 1, !pr.isDepthwise || pr.kg == 1, !pr.isPointwise else { return nil }
        let reachH = g.dilationH * (g.kernelHeight - 1), reachW = g.dilationW * (g.kernelWidth - 1)
        let pads = (reachH - g.padTop, reachW - g.padLeft, reachH - g.padBottom, reachW - g.padRight)
        guard pads.0 >= 0, pads.1 >= 0, pads.2 >= 0, pads.3 >= 0 else { return nil }
        let o = ConvOptions(stride: (1, 1), padding: pads, dilation: (g.dilationH, g.dilationW), groups: pr.groups)
        guard let t = try? ConvProblem(input: pr.outputShape, weight: [pr.c, pr.kg, g.kernelHeight, g.kernelWidth], bias: nil, options: o),
              t.g.outHeight == g.height, t.g.outWidth == g.width else { return nil }
        return ([pr.n, pr.c, g.height, g.width], t)
    }

    /// W'[g·Cg + c, k, i, j] = W[g·Kg + k, c, kh-1-i, kw-1-j]
    static func flippedWeights(_ w: Tensor, _ pr: ConvProblem) -> Tensor {
        let kh = pr.g.kernelHeight, kw = pr.g.kernelWidth, area = kh * kw
        return Tensor(shape: [pr.c, pr.kg, kh, kw]) { out in
            w.withUnsafeBufferPointer { src in
                for gi in 0..<pr.groups { for k in 0..<pr.kg { for c in 0..<pr.cg {
                    let s = src.baseAddress! + ((gi * pr.kg + k) * pr.cg + c) * area
                    let d = out.baseAddress! + ((gi * pr.cg + c) * pr.kg + k) * area
                    for i in 0..<area { d[area - 1 - i] = s[i] }
                }}}
            }
        }
    }

    static func depthwiseBackwardInput(_ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ pr: ConvProblem) {
        let g = pr.g, OH = g.outHeight, OW = g.outWidth, H = g.height, W = g.width, KA = g.kernelArea
        Parallel.forEach(pr.n * pr.c, inline: pr.flops < 2e6) { u in
            let ni = u / pr.c, ci = u % pr.c
            let plane = dx + (ni * pr.c + ci) * H * W
            for ko in (ci * pr.kg)..<((ci + 1) * pr.kg) {
                let grad = dy + (ni * pr.k + ko) * OH * OW
                let wk = w + ko * KA
                for oh in 0..<OH {
                    let grow = grad + oh * OW
                    for ki in 0..<g.kernelHeight {
                        let ih = oh * g.strideH - g.padTop + ki * g.dilationH
                        if ih < 0 || ih >= H { continue }
                        let irow = plane + ih * W
                        for kj in 0..<g.kernelWidth {
                            let wv = wk[ki * g.kernelWidth + kj]
                            let (lo, hi) = g.validColumns(kj)
                            let dst = irow + kj * g.dilationW - g.padLeft
                            if g.strideW == 1 {
                                for ow in lo..<hi { dst[ow] += wv * grow[ow] }
                            } else {
                                for ow in lo..<hi { dst[ow * g.strideW] += wv * grow[ow] }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: backward to the weights

    static func backwardWeight(_ dy: Tensor, _ x: Tensor, weightShape: [Int], _ pr: ConvProblem) -> Tensor {
        let P = pr.positions, H = pr.g.height, W = pr.g.width
        var dw = Tensor(zeros: weightShape)
        dy.withUnsafeBufferPointer { db in x.withUnsafeBufferPointer { xb in dw.withUnsafeMutableBufferPointer { wb in
            let dyp = db.baseAddress!, xp = xb.baseAddress!, dwp = wb.baseAddress!
            if pr.isDepthwise {
                depthwiseBackwardWeight(dyp, xp, dwp, pr)
                return
            }
            let block = pr.blockPositions, blocks = (P + block - 1) / block
            let total = wb.count
            accumulate(units: pr.n * pr.groups * blocks, count: total, into: dwp, inline: pr.flops < 2e6) { u, acc in
                let blk = u % blocks, ng = u / blocks, gi = ng % pr.groups, ni = ng / pr.groups
                let p0 = blk * block, p1 = min(P, p0 + block)
                let xg = xp + (ni * pr.c + gi * pr.cg) * H * W
                let dyg = dyp + (ni * pr.k + gi * pr.kg) * P + p0
                let dwg = acc + gi * pr.kg * pr.rows
                if pr.isPointwise {
                    BLAS.sgemm(transB: true, m: pr.kg, n: pr.rows, k: p1 - p0, a: dyg, lda: P,
                               b: xg + p0, ldb: P, beta: 1, c: dwg, ldc: pr.rows)
                } else {
                    Workspace.shared.withBuffer(pr.rows * (p1 - p0)) { cols in
                        im2col(xg, pr.g, channels: 0, pr.cg, positions: p0, p1, into: cols)
                        BLAS.sgemm(transB: true, m: pr.kg, n: pr.rows, k: p1 - p0, a: dyg, lda: P,
                                   b: cols, ldb: p1 - p0, beta: 1, c: dwg, ldc: pr.rows)
                    }
                }
            }
        }}}
        return dw
    }

    static func depthwiseBackwardWeight(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>, _ pr: ConvProblem) {
        let g = pr.g, OH = g.outHeight, OW = g.outWidth, H = g.height, W = g.width, KA = g.kernelArea
        Parallel.forEach(pr.k, inline: pr.flops < 2e6) { ko in
            let ci = ko / pr.kg
            for ni in 0..<pr.n {
                let plane = x + (ni * pr.c + ci) * H * W
                let grad = dy + (ni * pr.k + ko) * OH * OW
                for ki in 0..<g.kernelHeight {
                    for kj in 0..<g.kernelWidth {
                        let (lo, hi) = g.validColumns(kj)
                        var s: Float = 0
                        for oh in 0..<OH {
                            let ih = oh * g.strideH - g.padTop + ki * g.dilationH
                            if ih < 0 || ih >= H { continue }
                            let src = plane + ih * W + kj * g.dilationW - g.padLeft
                            let grow = grad + oh * OW
                            if g.strideW == 1 {
                                for ow in lo..<hi { s += grow[ow] * src[ow] }
                            } else {
                                for ow in lo..<hi { s += grow[ow] * src[ow * g.strideW] }
                            }
                        }
                        dw[ko * KA + ki * g.kernelWidth + kj] += s
                    }
                }
            }
        }
    }

    /// db[k] = Σ_n Σ_p dy[n, k, p]
    static func backwardBias(_ dy: Tensor, _ pr: ConvProblem) -> Tensor {
        let P = pr.positions
        return Tensor(shape: [pr.k]) { out in
            dy.withUnsafeBufferPointer { d in
                for ki in 0..<pr.k {
                    var s: Float = 0
                    for ni in 0..<pr.n {
                        let row = d.baseAddress! + (ni * pr.k + ki) * P
                        for p in 0..<P { s += row[p] }
                    }
                    out[ki] = s
                }
            }
        }
    }
}

/// Runs `units` pieces of work that each add into a buffer of `count` floats, on the engine's
/// threads, each thread into its own accumulator, summed into `result` at the end.
func accumulate(units: Int, count: Int, into result: UnsafeMutablePointer<Float>, inline: Bool,
                _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
    let threads = min(Parallel.threads, units)
    if inline || threads <= 1 {
        for u in 0..<units { body(u, result) }
        return
    }
    let extra = UnsafeMutablePointer<Float>.allocate(capacity: count * (threads - 1))
    extra.initialize(repeating: 0, count: count * (threads - 1))
    defer { extra.deallocate() }
    Parallel.forEach(threads) { t in
        let acc = t == 0 ? result : extra + (t - 1) * count
        var u = t
        while u < units { body(u, acc); u += threads }
    }
    for t in 1..<threads {
        let acc = extra + (t - 1) * count
        for i in 0..<count { result[i] += acc[i] }
    }
}

// MARK: - The op on variables

/// activation(conv2d(x, w) + b) in one pass over the outputs, when no gradient is wanted
/// (nil when some input records one: then the two ops run on their own, on the tape).
func conv2d(_ x: Variable, _ w: Variable, _ b: Variable?, _ options: ConvOptions, then activation: ConvActivation) throws -> Variable? {
    guard !x.requiresGrad, !w.requiresGrad, b?.requiresGrad != true else { return nil }
    let pr = try ConvProblem(input: x.shape, weight: w.shape, bias: b?.shape, options: options)
    ConvActivation.counter.next()
    return Variable(ConvKernels.forward(x.value, w.value, b?.value, pr, then: activation))
}

/// y = conv2d(x, w) + b, recorded for automatic differentiation.
public func conv2d(_ x: Variable, _ w: Variable, _ b: Variable? = nil, _ options: ConvOptions = ConvOptions()) throws -> Variable {
    let pr = try ConvProblem(input: x.shape, weight: w.shape, bias: b?.shape, options: options)
    let y = ConvKernels.forward(x.value, w.value, b?.value, pr)
    var inputs = [x, w]
    if let b { inputs.append(b) }
    return Variable.result(y, inputs) { dy in
        var grads: [Tensor?] = [
            x.requiresGrad ? ConvKernels.backwardInput(dy, w.value, inputShape: x.shape, pr) : nil,
            w.requiresGrad ? ConvKernels.backwardWeight(dy, x.value, weightShape: w.shape, pr) : nil,
        ]
        if let b { grads.append(b.requiresGrad ? ConvKernels.backwardBias(dy, pr) : nil) }
        return grads
    }
}

extension Tensor {
    /// Convolution by the patch-matrix path (no gradient recorded).
    public static func conv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor? = nil, _ options: ConvOptions = ConvOptions()) throws -> Tensor {
        let pr = try ConvProblem(input: x.shape, weight: w.shape, bias: b?.shape, options: options)
        return ConvKernels.forward(x, w, b, pr)
    }

    /// Convolution as the definition writes it, seven nested loops: the reference the fast paths are checked against.
    public static func conv2dDirect(_ x: Tensor, _ w: Tensor, _ b: Tensor? = nil, _ options: ConvOptions = ConvOptions()) throws -> Tensor {
        let pr = try ConvProblem(input: x.shape, weight: w.shape, bias: b?.shape, options: options)
        let g = pr.g
        var y = Tensor(zeros: pr.outputShape)
        for ni in 0..<pr.n { for ko in 0..<pr.k {
            let gi = ko / pr.kg
            for oh in 0..<g.outHeight { for ow in 0..<g.outWidth {
                var s: Float = b?.scalars[ko] ?? 0
                for cc in 0..<pr.cg { for ki in 0..<g.kernelHeight { for kj in 0..<g.kernelWidth {
                    let ih = oh * g.strideH - g.padTop + ki * g.dilationH
                    let iw = ow * g.strideW - g.padLeft + kj * g.dilationW
                    guard ih >= 0, ih < g.height, iw >= 0, iw < g.width else { continue }
                    s += w[ko, cc, ki, kj] * x[ni, gi * pr.cg + cc, ih, iw]
                }}}
                y[ni, ko, oh, ow] = s
            }}
        }}
        return y
    }

    /// The explicit matrix T of a convolution, so that T · flatten(x) = flatten(conv2d(x, w)):
    /// one row per output value (k, oh, ow), one column per input value (c, h, w) — the Toeplitz
    /// (doubly block-Toeplitz, for 2-D) matrix of the lecture. `w` is [kh, kw] or [K, C, kh, kw];
    /// `inputShape` is [H, W] or [C, H, W].
    public static func toeplitz(_ w: Tensor, inputShape: [Int], _ options: ConvOptions = ConvOptions()) throws -> Tensor {
        let weight: Tensor = w.rank == 2 ? try w.reshaped([1, 1] + w.shape) : w
        guard weight.rank == 4 else { throw EngineError.shapeMismatch("toeplitz takes a [kh, kw] or [K, C, kh, kw] filter, got \(w.shape)") }
        let input: [Int]
        switch inputShape.count {
        case 2: input = [1, 1] + inputShape
        case 3: input = [1] + inputShape
        default: throw EngineError.shapeMismatch("toeplitz takes an input shape [H, W] or [C, H, W], got \(inputShape)")
        }
        let pr = try ConvProblem(input: input, weight: weight.shape, bias: nil, options: options)
        let g = pr.g, OH = g.outHeight, OW = g.outWidth, H = g.height, W = g.width
        let rows = pr.k * OH * OW, cols = pr.c * H * W
        do { _ = try checkedElementCount([rows, cols], what: "the Toeplitz matrix") }
        catch let e as SizeLimitError { throw EngineError.invalidArgument(e.description + "; use a smaller input") }
        var t = Tensor(zeros: [rows, cols])
        for ko in 0..<pr.k {
            let gi = ko / pr.kg
            for oh in 0..<OH { for ow in 0..<OW {
                let r = (ko * OH + oh) * OW + ow
                for cc in 0..<pr.cg { for ki in 0..<g.kernelHeight { for kj in 0..<g.kernelWidth {
                    let ih = oh * g.strideH - g.padTop + ki * g.dilationH
                    let iw = ow * g.strideW - g.padLeft + kj * g.dilationW
                    guard ih >= 0, ih < H, iw >= 0, iw < W else { continue }
                    let c = gi * pr.cg + cc
                    t.scalars[r * cols + (c * H + ih) * W + iw] += weight[ko, cc, ki, kj]
                }}}
            }}
        }
        return t
    }
}

/// One convolution's shapes, checked once, and its kernels run without the tape: what
/// `cnn bench` times, and the one place a convolution's floating-point operations are counted.
public struct Convolution {
    let problem: ConvProblem
    /// The shapes it was made for: [N, C, H, W] and [K, C / groups, kh, kw].
    public let inputShape: [Int], weightShape: [Int]

    public init(input: [Int], weight: [Int], bias: [Int]? = nil, options: ConvOptions) throws {
        problem = try ConvProblem(input: input, weight: weight, bias: bias, options: options)
        inputShape = input
        weightShape = weight
    }

    /// [N, K, OH, OW].
    public var outputShape: [Int] { problem.outputShape }
    /// 2 · N · K · (C / groups) · kh · kw · OH · OW: a multiply-add counts 2. Each backward
    /// pass (to the input, to the weights) is a matrix product of the same size.
    public var flops: Double { problem.flops }

    public func forward(_ x: Tensor, _ w: Tensor, bias: Tensor? = nil) -> Tensor { ConvKernels.forward(x, w, bias, problem) }
    public func backwardInput(_ dy: Tensor, _ w: Tensor) -> Tensor {
        ConvKernels.backwardInput(dy, w, inputShape: inputShape, problem)
    }
    public func backwardWeight(_ dy: Tensor, _ x: Tensor) -> Tensor {
        ConvKernels.backwardWeight(dy, x, weightShape: weightShape, problem)
    }
}
