/// Pooling over the last two dimensions of [N, C, H, W].
///
/// Max pool keeps its switches (the argmax of each window) where a gradient is wanted, so its
/// backward pass — and the deconvnet's unpooling — puts each gradient back where the maximum
/// came from; a forward pass for a prediction keeps none and pools in two passes.
public struct PoolOptions: Equatable, Sendable {
    public var kernel: (h: Int, w: Int)
    public var stride: (h: Int, w: Int)
    public var padding: (top: Int, left: Int, bottom: Int, right: Int)
    public var ceilMode: Bool
    /// Average pool only: whether padded zeros count in the divisor.
    public var countIncludePad: Bool

    public init(kernel: Int, stride: Int? = nil, padding: Int = 0, ceilMode: Bool = false, countIncludePad: Bool = true) {
        self.init(kernel: (kernel, kernel), stride: (stride ?? kernel, stride ?? kernel),
                  padding: (padding, padding, padding, padding), ceilMode: ceilMode, countIncludePad: countIncludePad)
    }

    public init(kernel: (Int, Int), stride: (Int, Int), padding: (Int, Int, Int, Int) = (0, 0, 0, 0),
                ceilMode: Bool = false, countIncludePad: Bool = true) {
        self.kernel = (kernel.0, kernel.1)
        self.stride = (stride.0, stride.1)
        self.padding = (padding.0, padding.1, padding.2, padding.3)
        self.ceilMode = ceilMode
        self.countIncludePad = countIncludePad
    }

    public static func == (a: PoolOptions, b: PoolOptions) -> Bool {
        a.kernel == b.kernel && a.stride == b.stride && a.padding == b.padding &&
            a.ceilMode == b.ceilMode && a.countIncludePad == b.countIncludePad
    }

    /// Output length along one axis, as PyTorch computes it (a last window starting in the
    /// padding is dropped in ceil mode).
    static func outLength(_ size: Int, _ k: Int, _ s: Int, _ p0: Int, _ p1: Int, ceil: Bool) -> Int {
        let span = size + p0 + p1 - k
        if span < 0 { return 0 }
        var out = (ceil ? (span + s - 1) / s : span / s) + 1
        if ceil && (out - 1) * s >= size + p0 { out -= 1 }
        return out
    }

    func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        (PoolOptions.outLength(h, kernel.h, stride.h, padding.top, padding.bottom, ceil: ceilMode),
         PoolOptions.outLength(w, kernel.w, stride.w, padding.left, padding.right, ceil: ceilMode))
    }

    func validate(_ shape: [Int]) throws -> (n: Int, c: Int, h: Int, w: Int, oh: Int, ow: Int) {
        guard shape.count == 4 else { throw EngineError.shapeMismatch("pooling takes [N, C, H, W], got \(shape)") }
        guard kernel.h > 0, kernel.w > 0, stride.h > 0, stride.w > 0 else {
            throw EngineError.invalidArgument("pool kernel and stride must be positive")
        }
        guard padding.top >= 0, padding.left >= 0, padding.bottom >= 0, padding.right >= 0,
              padding.top < kernel.h, padding.bottom < kernel.h, padding.left < kernel.w, padding.right < kernel.w else {
            throw EngineError.invalidArgument("pool padding must be non-negative and smaller than the kernel")
        }
        let (oh, ow) = outputSize(shape[2], shape[3])
        guard oh > 0, ow > 0 else {
            throw EngineError.shapeMismatch("a \(kernel.h)x\(kernel.w) pool does not fit a \(shape[2])x\(shape[3]) input")
        }
        return (shape[0], shape[1], shape[2], shape[3], oh, ow)
    }
}

/// Max pooling; returns the output and, for each output value, the flat index (h·W + w) of the
/// input pixel it came from in its plane: the switches.
public func maxPool2dWithSwitches(_ x: Variable, _ o: PoolOptions) throws -> (Variable, [Int32]) {
    let shape = try o.validate(x.shape)
    var switches = [Int32](unsafeUninitializedCapacity: shape.n * shape.c * shape.oh * shape.ow) { _, count in
        count = shape.n * shape.c * shape.oh * shape.ow
    }
    let y = switches.withUnsafeMutableBufferPointer { sw in maxPoolValues(x.value, o, shape, switches: sw.baseAddress) }
    let sw = switches
    let v = Variable.result(y, [x]) { dy in [unpool(dy, switches: sw, inputShape: x.shape)] }
    return (v, switches)
}

/// Max pooling. Where no gradient is wanted (a forward pass for a prediction) the switches
/// are not recorded at all: nothing will unpool through them.
public func maxPool2d(_ x: Variable, _ o: PoolOptions) throws -> Variable {
    if x.requiresGrad { return try maxPool2dWithSwitches(x, o).0 }
    return Variable(maxPoolValues(x.value, o, try o.validate(x.shape), switches: nil))
}

/// The pooled values, and each one's switch when `switches` is given (every output is written).
private func maxPoolValues(_ x: Tensor, _ o: PoolOptions, _ shape: (n: Int, c: Int, h: Int, w: Int, oh: Int, ow: Int),
                           switches: UnsafeMutablePointer<Int32>?) -> Tensor {
    let (n, c, h, w, oh, ow) = shape
    return Tensor(shape: [n, c, oh, ow]) { out in
        x.withUnsafeBufferPointer { xs in
            let planes = n * c
            let outp = out.baseAddress!, xp = xs.baseAddress!
            let halving = o.kernel == (2, 2) && o.stride == (2, 2) && o.padding == (0, 0, 0, 0) && 2 * oh <= h && 2 * ow <= w
            // Where no switches are kept, the column range of each output column, for the two-pass pool.
            let columns = switches != nil || halving ? [] : (0..<ow).map { j in
                (max(j * o.stride.w - o.padding.left, 0), min(j * o.stride.w - o.padding.left + o.kernel.w, w))
            }
            if switches == nil && !halving {
                // Planes in a few chunks a thread, each chunk with one buffer: small planes (a 7x7
                // map of 832 channels) cost little more than their bookkeeping.
                let empty = columns.indices.filter { columns[$0].1 <= columns[$0].0 }
                let (chunk, units) = ConvKernels.planeChunks(planes)
                Parallel.forEach(units, inline: planes * oh * ow * o.kernel.h * o.kernel.w < 100_000) { u in
                    Workspace.shared.withBuffer(maxPoolBufferSize(w: w, ow: ow, o)) { rows in
                        for pl in (u * chunk)..<min(planes, (u + 1) * chunk) {
                            maxPoolTwoPass(xp + pl * h * w, h: h, w: w, oh: oh, ow: ow, o, empty: empty, rows: rows, out: outp + pl * oh * ow)
                        }
                    }
                }
                return
            }
            Parallel.forEach(planes, inline: planes * oh * ow * o.kernel.h * o.kernel.w < 1_000_000) { pl in
                let plane = xp + pl * h * w
                let swp = switches.map { $0 + pl * oh * ow }
                if halving {
                    maxPool2x2(plane, w, oh, ow, outp + pl * oh * ow, swp)
                    return
                }
                for i in 0..<oh {
                    let h0 = max(i * o.stride.h - o.padding.top, 0), h1 = min(i * o.stride.h - o.padding.top + o.kernel.h, h)
                    for j in 0..<ow {
                        let w0 = max(j * o.stride.w - o.padding.left, 0), w1 = min(j * o.stride.w - o.padding.left + o.kernel.w, w)
                        // The first maximum wins; a NaN wins over numbers (as in PyTorch).
                        // Written without branches: random data would mispredict them.
                        var best = -Float.infinity, arg = -1
                        for a in h0..<max(h0, h1) { for b in w0..<max(w0, w1) {
                            let v = plane[a * w + b]
                            let take = !(v <= best) && !best.isNaN
                            best = take ? v : best
                            arg = take || arg < 0 ? a * w + b : arg
                        }}
                        let k = i * ow + j
                        outp[pl * oh * ow + k] = arg < 0 ? 0 : best
                        swp?[k] = Int32(arg)
                    }
                }
            }
        }
    }
}

/// One plane pooled without switches, in two passes for each output row: the maximum over the
/// window's rows of each input column (whole rows at a time, which vectorizes), then each
/// output's maximum over its window's columns of those, tap by tap across the whole output row
/// (which vectorizes too, with no branch for random data to mispredict). The row of column
/// maxima sits between -inf margins as wide as the padding, and -inf never wins a window (a NaN
/// still does), so edge windows need no bounds. The maximum is associative (a NaN wins either
/// way), so this is the window's maximum. An output whose window holds no input pixel is 0.
private func maxPoolTwoPass(_ plane: UnsafePointer<Float>, h: Int, w: Int, oh: Int, ow: Int, _ o: PoolOptions,
                            empty: [Int], rows: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
    @inline(__always) func larger(_ v: Float, _ best: Float) -> Float { !(v <= best) && !best.isNaN ? v : best }
    let (kw, sw, left) = (o.kernel.w, o.stride.w, o.padding.left)
    let width = maxPoolMarginWidth(w: w, ow: ow, o), perPhase = (width + sw - 1) / sw
    let phases = rows + width
    // rows[left + c] is input column c; the margins stay -inf.
    rows.initialize(repeating: -.infinity, count: left)
    (rows + left + w).initialize(repeating: -.infinity, count: width - left - w)
    let inside = rows + left
    // Tap t of output j is rows[j·stride + t]: split into one run per phase of the stride, it is
    // run (t mod stride) at j + t / stride, contiguous across the row (stride 1: the row itself).
    let phaseStride = sw == 1 ? 0 : perPhase
    let phaseBase = sw == 1 ? rows : phases
    for i in 0..<oh {
        let h0 = max(i * o.stride.h - o.padding.top, 0), h1 = min(i * o.stride.h - o.padding.top + o.kernel.h, h)
        let row = out + i * ow
        guard h1 > h0 else {
            row.initialize(repeating: 0, count: ow)
            continue
        }
        inside.update(from: plane + h0 * w, count: w)
        for r in (h0 + 1)..<h1 {
            let src = plane + r * w
            for c in 0..<w { inside[c] = larger(src[c], inside[c]) }
        }
        if sw > 1 {
            for p in 0..<sw {
                let dst = phases + p * perPhase
                for m in 0..<((width - p + sw - 1) / sw) { dst[m] = rows[p + sw * m] }
            }
        }
        row.update(from: phaseBase, count: ow)
        for t in 1..<max(kw, 1) {
            let tap = phaseBase + (t % sw) * phaseStride + t / sw
            for j in 0..<ow { row[j] = larger(tap[j], row[j]) }
        }
        for j in empty { row[j] = 0 }
    }
}

/// The width of the two-pass pool's row: the input row between its margins, wide enough for
/// every window (ceil mode's last window may reach past the right padding).
func maxPoolMarginWidth(w: Int, ow: Int, _ o: PoolOptions) -> Int {
    max(o.padding.left + w, (ow - 1) * o.stride.w + o.kernel.w)
}

/// The two-pass pool's buffer: the row, then the row split by phase of the stride.
func maxPoolBufferSize(w: Int, ow: Int, _ o: PoolOptions) -> Int {
    let width = maxPoolMarginWidth(w: w, ow: ow, o), sw = max(o.stride.w, 1)
    return width + sw * ((width + sw - 1) / sw)
}

/// The common 2x2, stride-2 pool of one plane (every window inside it), four outputs at a time:
/// the same rule as the general loop (window order, the first maximum wins, a NaN wins over numbers).
func maxPool2x2(_ plane: UnsafePointer<Float>, _ w: Int, _ oh: Int, _ ow: Int,
                _ out: UnsafeMutablePointer<Float>, _ switches: UnsafeMutablePointer<Int32>?) {
    let lanes = SIMD4<Int32>(0, 2, 4, 6)
    for i in 0..<oh {
        let top = plane + 2 * i * w, bottom = top + w
        let o = out + i * ow, s = switches.map { $0 + i * ow }
        var j = 0
        while j + 4 <= ow {
            let t = UnsafeRawPointer(top + 2 * j).loadUnaligned(as: SIMD8<Float>.self)
            let b = UnsafeRawPointer(bottom + 2 * j).loadUnaligned(as: SIMD8<Float>.self)
            let first = Int32(2 * i * w + 2 * j) &+ lanes
            var best = t.evenHalf, arg = first
            @inline(__always) func consider(_ v: SIMD4<Float>, _ offset: Int32) {
                let take = .!(v .<= best) .& (best .== best)
                best.replace(with: v, where: take)
                arg.replace(with: first &+ offset, where: take)
            }
            // The rest of each window in order: top right, bottom left, bottom right.
            consider(t.oddHalf, 1)
            consider(b.evenHalf, Int32(w))
            consider(b.oddHalf, Int32(w + 1))
            UnsafeMutableRawPointer(o + j).storeBytes(of: best, as: SIMD4<Float>.self)
            if let s { UnsafeMutableRawPointer(s + j).storeBytes(of: arg, as: SIMD4<Int32>.self) }
            j += 4
        }
        for j in j..<ow {
            let first = 2 * i * w + 2 * j
            var best = top[2 * j], arg = first
            @inline(__always) func consider(_ v: Float, _ index: Int) {
                let take = !(v <= best) && !best.isNaN
                best = take ? v : best
                arg = take ? index : arg
            }
            consider(top[2 * j + 1], first + 1)
            consider(bottom[2 * j], first + w)
            consider(bottom[2 * j + 1], first + w + 1)
            o[j] = best
            s?[j] = Int32(arg)
        }
    }
}

/// Puts each value of `dy` at the input position its switch names (summing where windows share one).
public func unpool(_ dy: Tensor, switches: [Int32], inputShape: [Int]) -> Tensor {
    var dx = Tensor(zeros: inputShape)
    let plane = inputShape[2] * inputShape[3]
    let per = dy.shape[2] * dy.shape[3], planes = dy.count / max(per, 1)
    dy.withUnsafeBufferPointer { d in dx.withUnsafeMutableBufferPointer { o in switches.withUnsafeBufferPointer { sw in
        let dp = d.baseAddress!, op = o.baseAddress!, sp = sw.baseAddress!
        Parallel.forEach(planes, inline: dy.count < 200_000) { pl in
            let src = dp + pl * per, dst = op + pl * plane, s = sp + pl * per
            for k in 0..<per where s[k] >= 0 { dst[Int(s[k])] += src[k] }
        }
    }}}
    return dx
}

/// Average pooling, with PyTorch's divisor rules for padding and ceil mode.
public func avgPool2d(_ x: Variable, _ o: PoolOptions) throws -> Variable {
    let (n, c, h, w, oh, ow) = try o.validate(x.shape)
    // For each output position, its window clipped to the input and its divisor.
    func window(_ i: Int, _ j: Int) -> (Int, Int, Int, Int, Float) {
        var h0 = i * o.stride.h - o.padding.top, w0 = j * o.stride.w - o.padding.left
        var h1 = min(h0 + o.kernel.h, h + o.padding.bottom), w1 = min(w0 + o.kernel.w, w + o.padding.right)
        let padded = (h1 - h0) * (w1 - w0)
        h0 = max(h0, 0); w0 = max(w0, 0); h1 = min(h1, h); w1 = min(w1, w)
        let count = o.countIncludePad ? padded : (h1 - h0) * (w1 - w0)
        return (h0, h1, w0, w1, Float(max(count, 1)))
    }
    let y = Tensor(shape: [n, c, oh, ow]) { out in
        x.value.withUnsafeBufferPointer { xs in
            for pl in 0..<(n * c) {
                let plane = xs.baseAddress! + pl * h * w
                for i in 0..<oh { for j in 0..<ow {
                    let (h0, h1, w0, w1, div) = window(i, j)
                    var s: Float = 0
                    for a in h0..<max(h0, h1) { for b in w0..<max(w0, w1) { s += plane[a * w + b] } }
                    out[(pl * oh + i) * ow + j] = s / div
                }}
            }
        }
    }
    return Variable.result(y, [x]) { dy in
        var dx = Tensor(zeros: x.shape)
        dy.withUnsafeBufferPointer { d in dx.withUnsafeMutableBufferPointer { g in
            for pl in 0..<(n * c) {
                let plane = g.baseAddress! + pl * h * w
                for i in 0..<oh { for j in 0..<ow {
                    let (h0, h1, w0, w1, div) = window(i, j)
                    let v = d[(pl * oh + i) * ow + j] / div
                    for a in h0..<max(h0, h1) { for b in w0..<max(w0, w1) { plane[a * w + b] += v } }
                }}
            }
        }}
        return [dx]
    }
}

/// Adaptive average pooling to [outH, outW]: window i spans [⌊i·H/outH⌋, ⌈(i+1)·H/outH⌉).
public func adaptiveAvgPool2d(_ x: Variable, outputSize: (Int, Int)) throws -> Variable {
    guard x.shape.count == 4 else { throw EngineError.shapeMismatch("adaptive pooling takes [N, C, H, W], got \(x.shape)") }
    let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (oh, ow) = outputSize
    guard oh > 0, ow > 0 else { throw EngineError.invalidArgument("adaptive pool output size must be positive") }
    guard h > 0, w > 0 else { throw EngineError.shapeMismatch("adaptive pooling of an empty \(h)x\(w) input") }
    let hs = (0..<oh).map { ($0 * h / oh, (($0 + 1) * h + oh - 1) / oh) }
    let ws = (0..<ow).map { ($0 * w / ow, (($0 + 1) * w + ow - 1) / ow) }
    // Planes are independent: spread over the threads (each plane's sum keeps its order).
    let planes = n * c
    let y = Tensor(shape: [n, c, oh, ow]) { out in
        x.value.withUnsafeBufferPointer { xs in
            let xp = xs.baseAddress!, o = out.baseAddress!
            let parts = Swift.min(Parallel.threads, Swift.max(1, planes * h * w / elementwiseParallelMinimum))
            Parallel.forEach(parts, inline: parts <= 1) { t in
                for pl in (planes * t / parts)..<(planes * (t + 1) / parts) {
                    let plane = xp + pl * h * w
                    for i in 0..<oh { for j in 0..<ow {
                        var s: Float = 0
                        if ws[j].0 == 0 && ws[j].1 == w {
                            // Whole rows (global pooling): one contiguous run.
                            s = contiguousSum(plane + hs[i].0 * w, count: (hs[i].1 - hs[i].0) * w)
                        } else {
                            for a in hs[i].0..<hs[i].1 { s += contiguousSum(plane + a * w + ws[j].0, count: ws[j].1 - ws[j].0) }
                        }
                        o[(pl * oh + i) * ow + j] = s / Float((hs[i].1 - hs[i].0) * (ws[j].1 - ws[j].0))
                    }}
                }
            }
        }
    }
    return Variable.result(y, [x]) { dy in
        var dx = Tensor(zeros: x.shape)
        dy.withUnsafeBufferPointer { d in dx.withUnsafeMutableBufferPointer { g in
            for pl in 0..<(n * c) {
                let plane = g.baseAddress! + pl * h * w
                for i in 0..<oh { for j in 0..<ow {
                    let v = d[(pl * oh + i) * ow + j] / Float((hs[i].1 - hs[i].0) * (ws[j].1 - ws[j].0))
                    for a in hs[i].0..<hs[i].1 { for b in ws[j].0..<ws[j].1 { plane[a * w + b] += v } }
                }}
            }
        }}
        return [dx]
    }
}

/// Σ p[i] for i < count, in 32 running sums (four vectors of eight lanes, each value added to its
/// lane in turn), then the lanes in a fixed order: four independent chains of vector adds rather
/// than one chain of scalar adds, each waiting on the one before (squeeze-excitation networks
/// pool every block's output).
@inline(__always)
func contiguousSum(_ p: UnsafePointer<Float>, count: Int) -> Float {
    @inline(__always) func load(_ q: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(q).loadUnaligned(as: SIMD8<Float>.self) }
    var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
    var i = 0
    while i + 32 <= count {
        a0 += load(p + i); a1 += load(p + i + 8); a2 += load(p + i + 16); a3 += load(p + i + 24)
        i += 32
    }
    while i + 8 <= count { a0 += load(p + i); i += 8 }
    var s = ((a0 + a1) + (a2 + a3)).sum()
    while i < count { s += p[i]; i += 1 }
    return s
}

/// Global average pooling: [N, C, H, W] -> [N, C, 1, 1].
public func globalAvgPool2d(_ x: Variable) throws -> Variable { try adaptiveAvgPool2d(x, outputSize: (1, 1)) }
