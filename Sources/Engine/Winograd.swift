import Foundation

/// Winograd's minimal filtering F(2x2, 3x3) for 3x3 convolutions with stride 1 and dilation 1
/// (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).
///
/// The output is cut into 2x2 tiles; tile t of output channel k reads a 4x4 input tile d of
/// each channel c (neighbouring tiles overlap by two rows or columns), and
///
///     Y[k, t] = Aᵀ [ Σ_c U[k, c] ⊙ V[c, t] ] A,    U[k, c] = G g[k, c] Gᵀ,    V[c, t] = Bᵀ d[c, t] B
///
/// with ⊙ the elementwise product of 4x4 matrices and
///
///     Bᵀ = | 1  0 -1  0 |      G = | 1    0    0   |      Aᵀ = | 1  1  1  0 |
///          | 0  1  1  0 |          | 1/2  1/2  1/2 |           | 0  1 -1 -1 |
///          | 0 -1  1  0 |          | 1/2 -1/2  1/2 |
///          | 0  1  0 -1 |          | 0    0    1   |
///
/// The sum over channels, taken separately at each of the 16 positions ξ of the 4x4 transformed
/// tile, is a matrix product: M_ξ [K x tiles] = U_ξ [K x C] · V_ξ [C x tiles], 16 sgemm calls.
/// A 2x2 output tile then costs 16 multiplications per channel pair instead of 36 (2.25x fewer);
/// the transforms are additions only (and halvings, for G), so float32 loses almost nothing.
///
/// Tiles of all images are numbered together (image, tile row, tile column) and processed in
/// blocks, so that a block's transformed input V and products M stay in cache between the
/// transform, the 16 products and the output transform. U is laid out [K][16][C], V [C][16][T]
/// and M [K][16][T] for a block of T tiles: U_ξ, V_ξ and M_ξ are matrices with a row stride of
/// 16 rows, and each transform writes or reads the 16 values of one channel close together.
enum Winograd {
    /// CNN_WINOGRAD=0 turns the path off (to compare against im2col); read once.
    static let enabled: Bool = ProcessInfo.processInfo.environment["CNN_WINOGRAD"] != "0"

    /// Input and output channels below this keep the im2col path. Measured on one and two threads,
    /// Winograd wins from 16 channels on (by 1.4-1.8x at 16 and at VGG's 64 to 512, on 14x14 to
    /// 224x224 images), breaks even around 8 and loses with 3 (the transforms then cost more than
    /// the products they save).
    static let minimumChannels = 16

    /// Whether `ConvKernels.forward` takes this path for `pr`.
    static func applies(to pr: ConvProblem) -> Bool {
        enabled && isWinogradShape(pr) && pr.c >= minimumChannels && pr.k >= minimumChannels
    }

    /// 3x3 kernel, stride 1, dilation 1, one group: the convolutions F(2x2, 3x3) computes.
    static func isWinogradShape(_ pr: ConvProblem) -> Bool {
        let g = pr.g
        return pr.groups == 1 && g.kernelHeight == 3 && g.kernelWidth == 3 && g.strideH == 1 && g.strideW == 1 &&
            g.dilationH == 1 && g.dilationW == 1
    }

    /// How many convolutions have run on this path (the tests check that the forward pass takes it).
    static var runs: Int { counter.value }
    private static let counter = SharedCounter()

    // MARK: the convolution

    /// y = conv2d(x, w) + b for a shape `isWinogradShape` accepts. Shapes: x [N, C, H, W],
    /// w [K, C, 3, 3], b [K], y [N, K, OH, OW]. `blockTiles` overrides the block size (for tests).
    ///
    /// With `flipped`, w is [C, K, 3, 3] and the filters are its flipped, transposed ones,
    /// W'[k, c, i, j] = w[c, k, 2 - i, 2 - j]: the input gradient of a stride-1 convolution of w is
    /// this convolution of dy. The filter transform reads them out of w, so W' is never built.
    /// With `activation`, each run of output rows goes through it as soon as it is transformed.
    static func forward(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ pr: ConvProblem, flipped: Bool = false,
                        blockTiles: Int? = nil, then activation: ConvActivation? = nil) -> Tensor {
        precondition(isWinogradShape(pr))
        counter.next()
        let p = Plan(pr, blockTiles: blockTiles)
        return Tensor(shape: pr.outputShape, unsafeUninitialized: { yb in
            x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in
                let bias = b?.scalars
                bias.withUnsafeOptionalPointer { bp in
                    FilterCache.shared.transformed(w, layout: .init(flipped ? .winogradFlipped : .winograd, pr.k, pr.c),
                                                   count: 16 * pr.k * pr.c,
                                                   transform: { transformFilters(wb.baseAddress!, p, flipped: flipped, into: $0) }) { u in
                        run(xb.baseAddress!, u, bp, yb.baseAddress!, p, activation)
                    }
                }
            }}
        })
    }

    /// The sizes of one problem's tiling.
    struct Plan {
        let n: Int, c: Int, k: Int
        let height: Int, width: Int, outHeight: Int, outWidth: Int
        let padTop: Int, padLeft: Int
        let tileRows: Int, tileColumns: Int, tilesPerImage: Int, tiles: Int
        /// Tiles per block: V (16 x C x T) and M (16 x K x T) together about 1 MB, so they stay in
        /// a core's cache between the steps, but at least 128 tiles, so that each sgemm's cost of
        /// packing U_ξ is spread over enough work.
        let blockTiles: Int
        /// Too little work to be worth a thread hop (the im2col path's threshold, in Winograd's multiplications).
        let inline: Bool

        /// Row stride of V_ξ and M_ξ for a block of `count` tiles: three spare slots, so that the
        /// transforms can always work on four tiles at once.
        func rowStride(_ count: Int) -> Int { count + 3 }

        init(_ pr: ConvProblem, blockTiles requested: Int? = nil) {
            n = pr.n; c = pr.c; k = pr.k
            height = pr.g.height; width = pr.g.width; outHeight = pr.g.outHeight; outWidth = pr.g.outWidth
            padTop = pr.g.padTop; padLeft = pr.g.padLeft
            tileRows = (outHeight + 1) / 2; tileColumns = (outWidth + 1) / 2
            tilesPerImage = tileRows * tileColumns; tiles = n * tilesPerImage
            let fitting = Winograd.blockBudget / (16 * (c + k)) / 8 * 8
            blockTiles = max(1, min(tiles, requested ?? max(128, fitting)))
            inline = 2 * Double(tiles) * 16 * Double(c * k) < 2e6
        }
    }

    /// Floats of V and M per block (1 MB).
    static let blockBudget = 1 << 18

    /// With eight blocks or more, the threads take whole blocks (each one transforms, multiplies
    /// and transforms back on its own core). With fewer tiles (small images, late layers), one block
    /// at a time of up to twice the usual size, each step split across the threads: the 16 products
    /// go to different threads, so that U, large in those layers, is read once.
    static func run(_ x: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                    _ y: UnsafeMutablePointer<Float>, _ p: Plan, _ activation: ConvActivation?) {
        guard p.tiles > 0 else { return }  // an empty batch
        // How the tiles are cut into blocks depends on the shapes alone, not on the number of
        // threads (a block's size can change the products' rounding): the same outputs on any number of cores.
        let pieces = PatchSplit.pieces, threads = Parallel.threads
        if p.tiles >= pieces * p.blockTiles {
            // Blocks in a multiple of eight, so that 2, 4 or 8 threads share them evenly.
            var blocks = (p.tiles + p.blockTiles - 1) / p.blockTiles
            blocks = (blocks + pieces - 1) / pieces * pieces
            let size = (p.tiles + blocks - 1) / blocks
            blocks = (p.tiles + size - 1) / size
            Parallel.forEach(blocks, inline: p.inline) { i in
                let t0 = i * size, t1 = min(p.tiles, t0 + size), count = t1 - t0
                Workspace.shared.withBuffer(16 * (p.c + p.k) * p.rowStride(count)) { scratch in
                    let v = scratch, m = scratch + 16 * p.c * p.rowStride(count)
                    transformInput(x, p, tiles: t0, t1, channels: 0, p.c, into: v)
                    for xi in 0..<16 { multiply(xi, u, v, m, p, count) }
                    transformOutput(m, bias, p, tiles: t0, t1, channels: 0, p.k, into: y, then: activation)
                }
            }
        } else {
            let blocks = (p.tiles + 2 * p.blockTiles - 1) / (2 * p.blockTiles)
            let size = (p.tiles + blocks - 1) / blocks
            let parts = p.inline ? 1 : threads
            for t0 in stride(from: 0, to: p.tiles, by: size) {
                let t1 = min(p.tiles, t0 + size), count = t1 - t0
                Workspace.shared.withBuffer(16 * (p.c + p.k) * p.rowStride(count)) { scratch in
                    let v = scratch, m = scratch + 16 * p.c * p.rowStride(count)
                    Parallel.forEach(parts, inline: p.inline) { i in
                        let (c0, c1) = share(i, of: parts, p.c)
                        transformInput(x, p, tiles: t0, t1, channels: c0, c1, into: v)
                    }
                    Parallel.forEach(16, inline: p.inline) { xi in multiply(xi, u, v, m, p, count) }
                    Parallel.forEach(parts, inline: p.inline) { i in
                        let (k0, k1) = share(i, of: parts, p.k)
                        transformOutput(m, bias, p, tiles: t0, t1, channels: k0, k1, into: y, then: activation)
                    }
                }
            }
        }
    }

    /// Part i of `parts` nearly equal parts of 0..<count.
    static func share(_ i: Int, of parts: Int, _ count: Int) -> (Int, Int) {
        (i * count / parts, (i + 1) * count / parts)
    }

    /// M_ξ [K x T] = U_ξ [K x C] · V_ξ [C x T]
    @inline(__always)
    static func multiply(_ xi: Int, _ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                         _ p: Plan, _ count: Int) {
        let stride = p.rowStride(count)
        BLAS.sgemm(m: p.k, n: count, k: p.c, a: u + xi * p.c, lda: 16 * p.c,
                   b: v + xi * stride, ldb: 16 * stride, c: m + xi * stride, ldc: 16 * stride)
    }

    // MARK: the three transforms

    /// U_ξ[k, c] = (G g[k, c] Gᵀ)_ξ, laid out [K][16][C] (so U_ξ is K x C with row stride 16·C),
    /// four input channels at a time, one per SIMD lane. Flipped, g[k, c] is w[c, k] read backwards.
    static func transformFilters(_ w: UnsafePointer<Float>, _ p: Plan, flipped: Bool = false,
                                 into u: UnsafeMutablePointer<Float>) {
        // Where g[k, c] starts: k · kStep + c · cStep.
        let (kStep, cStep) = flipped ? (9, 9 * p.k) : (9 * p.c, 9)
        let parts = p.inline ? 1 : Parallel.threads
        Parallel.forEach(parts, inline: p.inline) { i in
            let (k0, k1) = share(i, of: parts, p.k)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 36 + 64) { scratch in
                let g = scratch.baseAddress!, out = g + 36
                for k in k0..<k1 {
                    let src = w + k * kStep, dst = u + k * 16 * p.c
                    var c = 0
                    while c + 4 <= p.c {
                        if flipped {
                            filterLanes(src + c * cStep, cStep, reversed: true, dst + c, p.c)
                        } else {
                            filterLanes(src + c * cStep, 9, reversed: false, dst + c, p.c)
                        }
                        c += 4
                    }
                    if c < p.c {
                        // The last one to three channels, through a zero-padded scratch.
                        let lanes = p.c - c
                        for l in 0..<lanes {
                            for e in 0..<9 { g[9 * l + e] = src[(c + l) * cStep + (flipped ? 8 - e : e)] }
                        }
                        (g + 9 * lanes).update(repeating: 0, count: 36 - 9 * lanes)
                        filterLanes(g, 9, reversed: false, out, 4)
                        for xi in 0..<16 { for l in 0..<lanes { dst[xi * p.c + c + l] = out[4 * xi + l] } }
                    }
                }
            }
        }
    }

    /// The filters of four channels, `laneStride` floats apart at `g` (their 9 weights read
    /// backwards if `reversed`), to U_ξ at out + ξ·stride (one channel per lane). G g takes rows
    /// g0, (g0 + g1 + g2) / 2, (g0 - g1 + g2) / 2, g2 of g; · Gᵀ does the same to columns.
    @inline(__always)
    static func filterLanes(_ g: UnsafePointer<Float>, _ laneStride: Int, reversed: Bool,
                            _ out: UnsafeMutablePointer<Float>, _ stride: Int) {
        @inline(__always) func tap(_ e: Int) -> SIMD4<Float> {
            let t = reversed ? 8 - e : e
            return SIMD4(g[t], g[laneStride + t], g[2 * laneStride + t], g[3 * laneStride + t])
        }
        // Column j of G g, from column j of g.
        @inline(__always) func column(_ j: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
            let g0 = tap(j), g1 = tap(3 + j), g2 = tap(6 + j)
            return (g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2)
        }
        // Row i of (G g) Gᵀ, from row i of G g (entries a, b, c), to ξ = 4i ... 4i + 3.
        @inline(__always) func row(_ i: Int, _ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>) {
            store4(a, out + 4 * i * stride)
            store4(0.5 * (a + b + c), out + (4 * i + 1) * stride)
            store4(0.5 * (a - b + c), out + (4 * i + 2) * stride)
            store4(c, out + (4 * i + 3) * stride)
        }
        let a = column(0), b = column(1), c = column(2)
        row(0, a.0, b.0, c.0)
        row(1, a.1, b.1, c.1)
        row(2, a.2, b.2, c.2)
        row(3, a.3, b.3, c.3)
    }

    /// V_ξ[c, t - t0] = (Bᵀ d B)_ξ for the input tiles t in [t0, t1) and channels [c0, c1), laid out
    /// [C][16][stride] (stride ≥ t1 - t0 + 3, see `Plan.rowStride`). Bᵀ d takes rows d0 - d2, d1 + d2,
    /// d2 - d1, d1 - d3 of d; · B does the same to columns. Four tiles at a time, one per SIMD lane;
    /// the last group of a run may compute up to three tiles too many, into slots that the next run
    /// (or nothing) uses.
    static func transformInput(_ x: UnsafePointer<Float>, _ p: Plan, tiles t0: Int, _ t1: Int,
                               channels c0: Int, _ c1: Int, into v: UnsafeMutablePointer<Float>) {
        let stride = p.rowStride(t1 - t0)
        // Input columns -padLeft ..< -padLeft + span cover every group of four tiles (up to three
        // past the last tile column).
        let span = 2 * p.tileColumns + 8
        var t = t0
        while t < t1 {
            // The block's tiles t..<end in image `img`: tile rows first...last, the first and last
            // perhaps not whole. Their input rows, zero-padded, are copied to `window` once per channel.
            let img = t / p.tilesPerImage, end = min(t1, (img + 1) * p.tilesPerImage)
            let first = (t % p.tilesPerImage) / p.tileColumns, last = (end - 1) % p.tilesPerImage / p.tileColumns
            let rows = 2 * (last - first) + 4, top = 2 * first - p.padTop
            // Each tile row's run: where it starts in the window and in V, and its groups of four.
            var runs: [(window: Int, slot: Int, groups: Int)] = []
            var u = t
            while u < end {
                let row = (u % p.tilesPerImage) / p.tileColumns, a = u % p.tileColumns, b = min(p.tileColumns, a + (end - u))
                runs.append((2 * (row - first) * span + 2 * a, u - t0, (b - a + 3) / 4))
                u += b - a
            }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * span) { buffer in
                let window = UnsafePointer(buffer.baseAddress!)
                for c in c0..<c1 {
                    let channel = x + (img * p.c + c) * p.height * p.width
                    for r in 0..<rows {
                        copyPadded(channel, p, row: top + r, from: -p.padLeft, count: span, into: buffer.baseAddress! + r * span)
                    }
                    let out = v + c * 16 * stride
                    for run in runs {
                        for g in 0..<run.groups { inputTiles(window + run.window + 8 * g, span, out + run.slot + 4 * g, stride) }
                    }
                }
            }
            t = end
        }
    }

    /// dst[0..<count] = row `h` of `channel` from column `w0`, zero outside the image.
    @inline(__always)
    static func copyPadded(_ channel: UnsafePointer<Float>, _ p: Plan, row h: Int, from w0: Int, count: Int,
                           into dst: UnsafeMutablePointer<Float>) {
        guard h >= 0, h < p.height else {
            dst.update(repeating: 0, count: count)
            return
        }
        let lo = min(count, max(0, -w0)), hi = max(lo, min(count, p.width - w0))
        for i in 0..<lo { dst[i] = 0 }
        (dst + lo).update(from: channel + h * p.width + w0 + lo, count: hi - lo)
        for i in hi..<count { dst[i] = 0 }
    }

    /// Four neighbouring input tiles, one per SIMD lane: tile j covers columns 2j ..< 2j + 4 of the
    /// four rows at `rows` (row stride `span`). Eight floats from column 0 hold columns 0 (even) and
    /// 1 (odd) of the four tiles; eight from column 2, columns 2 and 3.
    @inline(__always)
    static func inputTiles(_ rows: UnsafePointer<Float>, _ span: Int, _ out: UnsafeMutablePointer<Float>, _ stride: Int) {
        // d B, row by row: the four columns of row r are d_r0 - d_r2, d_r1 + d_r2, d_r2 - d_r1, d_r1 - d_r3.
        @inline(__always) func rowTimesB(_ r: Int) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
            let q = load8(rows + r * span), q2 = load8(rows + r * span + 2)
            let (d0, d1, d2, d3) = (q.evenHalf, q.oddHalf, q2.evenHalf, q2.oddHalf)
            return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
        }
        let h0 = rowTimesB(0), h1 = rowTimesB(1), h2 = rowTimesB(2), h3 = rowTimesB(3)
        // Bᵀ (d B), column s: rows h0 - h2, h1 + h2, h2 - h1, h1 - h3 go to ξ = s, 4 + s, 8 + s, 12 + s.
        @inline(__always) func column(_ s: Int, _ a: SIMD4<Float>, _ b: SIMD4<Float>, _ c: SIMD4<Float>, _ d: SIMD4<Float>) {
            store4(a - c, out + s * stride)
            store4(b + c, out + (4 + s) * stride)
            store4(c - b, out + (8 + s) * stride)
            store4(b - d, out + (12 + s) * stride)
        }
        column(0, h0.0, h1.0, h2.0, h3.0)
        column(1, h0.1, h1.1, h2.1, h3.1)
        column(2, h0.2, h1.2, h2.2, h3.2)
        column(3, h0.3, h1.3, h2.3, h3.3)
    }

    /// y[k] = Aᵀ m A + b[k] for the tiles t in [t0, t1) and output channels [k0, k1), from M laid
    /// out [K][16][stride]. Aᵀ m takes rows m0 + m1 + m2 and m1 - m2 - m3 of m; · A does the same
    /// to columns. Four tiles at a time; groups that lie inside the output are written in place,
    /// the last group of a run through a scratch, which keeps only what lies inside the output
    /// (tiles hang over the bottom or right edge when the output size is odd).
    static func transformOutput(_ m: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?, _ p: Plan,
                                tiles t0: Int, _ t1: Int, channels k0: Int, _ k1: Int, into y: UnsafeMutablePointer<Float>,
                                then activation: ConvActivation? = nil) {
        let stride = p.rowStride(t1 - t0)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { scratch in
            let tile = scratch.baseAddress!
            var t = t0
            while t < t1 {
                let img = t / p.tilesPerImage, row = (t % p.tilesPerImage) / p.tileColumns
                let a = t % p.tileColumns, b = min(p.tileColumns, a + (t1 - t))
                let oh = 2 * row, rowsInside = min(2, p.outHeight - oh)
                // Groups of four tiles whose 2x4 outputs lie inside; the rest are the tail.
                let whole = rowsInside == 2 ? max(0, min(b - a, p.outWidth / 2 - a)) / 4 : 0
                let tail = (a + 4 * whole, b)
                for k in k0..<k1 {
                    let src = m + k * 16 * stride + (t - t0)
                    let beta = bias?[k] ?? 0
                    let y0 = y + ((img * p.k + k) * p.outHeight + oh) * p.outWidth
                    for g in 0..<whole { outputTiles(src + 4 * g, stride, beta, y0 + 2 * (a + 4 * g), p.outWidth) }
                    var j = tail.0
                    while j < tail.1 {
                        outputTiles(src + (j - a), stride, beta, tile, 8)
                        let columns = min(8, p.outWidth - 2 * j, 2 * (b - j))  // not past the run: the next block's
                        for r in 0..<rowsInside { for s in 0..<columns { y0[r * p.outWidth + 2 * j + s] = tile[8 * r + s] } }
                        j += 4
                    }
                    if let activation {
                        // The output columns of tiles a..<b, on the rows they cover.
                        let count = min(p.outWidth, 2 * b) - 2 * a
                        for r in 0..<rowsInside { activation.apply(y0 + r * p.outWidth + 2 * a, count: count) }
                    }
                }
                t += b - a
            }
        }
    }

    /// Four neighbouring output tiles, one per SIMD lane; tile j's 2x2 result (plus `beta`) goes
    /// to columns 2j, 2j + 1 of the two rows at `y` and `y + rowStride`.
    @inline(__always)
    static func outputTiles(_ m: UnsafePointer<Float>, _ stride: Int, _ beta: Float,
                            _ y: UnsafeMutablePointer<Float>, _ rowStride: Int) {
        // Aᵀ m, column j: s0 = m0j + m1j + m2j, s1 = m1j - m2j - m3j.
        @inline(__always) func column(_ j: Int) -> (SIMD4<Float>, SIMD4<Float>) {
            let m0 = load4(m + j * stride), m1 = load4(m + (4 + j) * stride)
            let m2 = load4(m + (8 + j) * stride), m3 = load4(m + (12 + j) * stride)
            return (m0 + m1 + m2, m1 - m2 - m3)
        }
        let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3)
        // (Aᵀ m) A, row by row, the two columns of each tile interleaved.
        let bias = SIMD4<Float>(repeating: beta)
        var top = SIMD8<Float>(), bottom = SIMD8<Float>()
        top.evenHalf = c0.0 + c1.0 + c2.0 + bias
        top.oddHalf = c1.0 - c2.0 - c3.0 + bias
        bottom.evenHalf = c0.1 + c1.1 + c2.1 + bias
        bottom.oddHalf = c1.1 - c2.1 - c3.1 + bias
        UnsafeMutableRawPointer(y).storeBytes(of: top, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(y + rowStride).storeBytes(of: bottom, as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func load4(_ p: UnsafePointer<Float>) -> SIMD4<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD4<Float>.self) }
    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
    @inline(__always)
    static func store4(_ v: SIMD4<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD4<Float>.self) }
}

extension Optional where Wrapped == [Float] {
    /// Calls `body` with a pointer to the array's scalars, or nil when there is no array.
    func withUnsafeOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let a): return a.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: return body(nil)
        }
    }
}

extension Optional where Wrapped == Tensor {
    /// Calls `body` with a pointer to the tensor's scalars, or nil when there is no tensor.
    func withUnsafeOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .some(let t): return t.withUnsafeBufferPointer { body($0.baseAddress) }
        case .none: return body(nil)
        }
    }
}

/// Transformed or repacked filters kept between calls: a trained network's weights do not change
/// from one forward pass to the next, and transforming them again cost about a fifth of a
/// ResNet's forward. An entry holds its weight tensor, so the weights it was made from cannot
/// change under it (a write to the network's copy copies first); it is found again by the
/// address of that storage and the layout it was made in (Winograd's transform, flipped or not;
/// the blocked convolutions' packing). Least recently used entries go once the cache passes its
/// budget; a buffer in use by a convolution lives until that convolution is done.
final class FilterCache: @unchecked Sendable {
    /// 1 GB, or an eighth of the memory where that is less: a Wide ResNet-50's filters, packed
    /// for the blocked and Winograd paths, take about 400 MB, and repacking them every pass cost
    /// four times the pass itself.
    static let shared = FilterCache(budget: min(1 << 30, Int(ProcessInfo.processInfo.physicalMemory / 8)))

    final class Filters: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<Float>, count: Int
        init(count: Int) { self.count = count; pointer = .allocate(capacity: count) }
        deinit { pointer.deallocate() }
    }
    /// What an entry was made as: a layout and up to three numbers that fix it. Plain values, so
    /// that a convolution's lookup hashes four integers (a name and an array of sizes had cost a
    /// string's hash and an allocation for each convolution of a pass).
    struct Layout: Hashable {
        enum Kind: UInt8 { case winograd, winogradFlipped, blocked, blockedPlainInput, blockedDepthwise }
        let kind: Kind
        let a: Int, b: Int, c: Int
        init(_ kind: Kind, _ a: Int, _ b: Int = 0, _ c: Int = 0) { self.kind = kind; self.a = a; self.b = b; self.c = c }
    }
    private struct Entry {
        let weights: Tensor, filters: Filters
        var used: Int
    }
    /// An entry's key: where its weights are stored, the layout, and its size in floats.
    private struct Key: Hashable {
        let address: UInt, layout: Layout, count: Int
    }
    /// Found by key: a session that has loaded a few networks holds a thousand entries, and a
    /// search through them all for each convolution had cost ShuffleNet's pass about a third more.
    private var entries: [Key: Entry] = [:]
    private var bytes = 0, clock = 0
    let budget: Int
    private let lock = NSLock()

    init(budget: Int) { self.budget = budget }

    private static func address(_ t: Tensor) -> UInt {
        t.scalars.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
    }

    /// How many filter sets are kept, and their size in bytes (for tests).
    var contents: (entries: Int, bytes: Int) { lock.lock(); defer { lock.unlock() }; return (entries.count, bytes) }

    /// Runs `body` on `weights` made into `layout`: `count` floats written by `transform` the
    /// first time (or lent from the workspace when they would not fit the cache).
    func transformed(_ weights: Tensor, layout: Layout, count: Int, transform: (UnsafeMutablePointer<Float>) -> Void,
                     _ body: (UnsafePointer<Float>) -> Void) {
        let key = Key(address: FilterCache.address(weights), layout: layout, count: count)
        lock.lock()
        if let i = entries.index(forKey: key) {
            clock += 1
            entries.values[i].used = clock
            let filters = entries.values[i].filters
            lock.unlock()
            withExtendedLifetime(filters) { body(filters.pointer) }
            return
        }
        lock.unlock()
        guard count * 4 <= budget / 4 else {
            Workspace.shared.withBuffer(count) { u in transform(u); body(u) }
            return
        }
        let filters = Filters(count: count)
        transform(filters.pointer)
        lock.lock()
        clock += 1
        // Another thread may have made the same entry meanwhile: this one takes its place.
        if let replaced = entries.updateValue(Entry(weights: weights, filters: filters, used: clock), forKey: key) {
            bytes -= replaced.filters.count * 4
        }
        bytes += count * 4
        while bytes > budget, entries.count > 1,
              let oldest = entries.lazy.filter({ $0.key != key }).min(by: { $0.value.used < $1.value.used })?.key {
            bytes -= entries[oldest]!.filters.count * 4
            entries[oldest] = nil
        }
        lock.unlock()
        body(filters.pointer)
    }
}
