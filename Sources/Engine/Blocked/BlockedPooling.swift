/// Pooling and batch normalization on blocked images [N, CB, H, W, 8]: the eight channels of a
/// block in the lanes of one vector, so a window's maximum or sum is a vector max or add per tap
/// whatever the size of the map. The windows, divisors and NaN rules are those of the NCHW ops
/// (Pooling.swift): the values are the same.
enum BlockedPooling {
    /// Max (`average` false) or average pooling of x [N, CB, H, W, 8].
    static func pool(_ x: Tensor, _ o: PoolOptions, average: Bool) throws -> Tensor {
        let s = x.shape
        let (n, cb, h, w, oh, ow) = try o.validate([s[0], s[1], s[2], s[3]])
        let width = Blocked.width
        return Tensor(shape: [n, cb, oh, ow, width], unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xs in
                let src = xs.baseAddress!, dst = out.baseAddress!
                let planes = n * cb
                Parallel.forEach(planes, inline: planes * oh * ow * o.kernel.h * o.kernel.w < 1 << 15) { pl in
                    let plane = src + pl * h * w * width, result = dst + pl * oh * ow * width
                    for i in 0..<oh {
                        let top = i * o.stride.h - o.padding.top
                        let h0 = max(top, 0), h1 = min(top + o.kernel.h, h)
                        for j in 0..<ow {
                            let left = j * o.stride.w - o.padding.left
                            let w0 = max(left, 0), w1 = min(left + o.kernel.w, w)
                            let v: Lanes
                            if average {
                                // PyTorch's divisor: the window within the padded input, or only its part inside the input.
                                let padded = (min(top + o.kernel.h, h + o.padding.bottom) - top) * (min(left + o.kernel.w, w + o.padding.right) - left)
                                let count = o.countIncludePad ? padded : max(0, h1 - h0) * max(0, w1 - w0)
                                var sum = Lanes()
                                for a in h0..<max(h0, h1) { for b in w0..<max(w0, w1) { sum += Lanes.load(plane + (a * w + b) * width) } }
                                v = sum / Float(max(count, 1))
                            } else if h1 <= h0 || w1 <= w0 {
                                v = Lanes()
                            } else {
                                // The first maximum wins, and a NaN wins over numbers (as in PyTorch).
                                var best = Lanes(repeating: -.infinity)
                                for a in h0..<h1 { for b in w0..<w1 {
                                    let value = Lanes.load(plane + (a * w + b) * width)
                                    best.replace(with: value, where: (value .> best) .| (value .!= value))
                                }}
                                v = best
                            }
                            v.store(result + (i * ow + j) * width)
                        }
                    }
                }
            }
        })
    }

    /// Adaptive average pooling of x [N, CB, H, W, 8] to [oh, ow] (global pooling at 1x1): window i
    /// spans [⌊i·H/oh⌋, ⌈(i+1)·H/oh⌉), as `adaptiveAvgPool2d`.
    static func adaptiveAverage(_ x: Tensor, outputSize: (Int, Int)) throws -> Tensor {
        let s = x.shape, (n, cb, h, w) = (s[0], s[1], s[2], s[3]), (oh, ow) = outputSize
        guard oh > 0, ow > 0, h > 0, w > 0 else { throw EngineError.invalidArgument("adaptive pooling of a \(h)x\(w) input to \(oh)x\(ow)") }
        let width = Blocked.width
        let hs = (0..<oh).map { ($0 * h / oh, (($0 + 1) * h + oh - 1) / oh) }
        let ws = (0..<ow).map { ($0 * w / ow, (($0 + 1) * w + ow - 1) / ow) }
        return Tensor(shape: [n, cb, oh, ow, width], unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xs in
                let src = xs.baseAddress!, dst = out.baseAddress!
                let planes = n * cb
                Parallel.forEach(planes, inline: planes * h * w < 1 << 16) { pl in
                    let plane = src + pl * h * w * width
                    for i in 0..<oh { for j in 0..<ow {
                        // Four running sums, so that the adds do not wait on each other.
                        var sums = (Lanes(), Lanes(), Lanes(), Lanes())
                        for a in hs[i].0..<hs[i].1 {
                            let row = plane + (a * w) * width
                            var b = ws[j].0
                            while b + 4 <= ws[j].1 {
                                sums.0 += Lanes.load(row + b * width); sums.1 += Lanes.load(row + (b + 1) * width)
                                sums.2 += Lanes.load(row + (b + 2) * width); sums.3 += Lanes.load(row + (b + 3) * width)
                                b += 4
                            }
                            while b < ws[j].1 { sums.0 += Lanes.load(row + b * width); b += 1 }
                        }
                        let count = Float((hs[i].1 - hs[i].0) * (ws[j].1 - ws[j].0))
                        (((sums.0 + sums.1) + (sums.2 + sums.3)) / count).store(dst + ((pl * oh + i) * ow + j) * width)
                    }}
                }
            }
        })
    }

    /// Batch normalization at inference on x [N, CB, H, W, 8] holding `channels` channels:
    /// x · a + b per channel, with a = γ / √(var + ε) and b = β − mean · a (as `batchNorm`).
    static func batchNorm(_ x: Tensor, channels c: Int, weight: [Float]?, bias: [Float]?, mean: [Float], variance: [Float], eps: Float,
                          then activation: ConvActivation? = nil) -> Tensor {
        let s = x.shape, (n, cb) = (s[0], s[1]), hw = s[2] * s[3], width = Blocked.width
        var scale = [Float](repeating: 0, count: cb * width), shift = scale
        for ch in 0..<c {
            let a = (weight?[ch] ?? 1) * (1 / (variance[ch] + eps).squareRoot())
            scale[ch] = a
            shift[ch] = (bias?[ch] ?? 0) - mean[ch] * a
        }
        return Tensor(shape: s, unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xs in scale.withUnsafeBufferPointer { sc in shift.withUnsafeBufferPointer { sh in
                let src = xs.baseAddress!, dst = out.baseAddress!
                @inline(__always) func run<F: LaneFunction>(_ f: F) {
                    Parallel.forEach(n * cb, inline: n * cb * hw < 1 << 15) { u in
                        let b = u % cb
                        let a = Lanes.load(sc.baseAddress! + b * width), t = Lanes.load(sh.baseAddress! + b * width)
                        let p = src + u * hw * width, q = dst + u * hw * width
                        for i in 0..<hw { f(Lanes.load(p + i * width) * a + t).store(q + i * width) }
                    }
                }
                switch activation {
                case nil: run(SameLanes())
                case .relu?: run(Rectifier())
                case .clamp(let low, let high)?: run(Clamp(low: low, high: high))
                case .silu?: run(SigmoidLinearUnit())
                case .hardSwish?: run(HardSwish())
                }
            }}}
        })
    }
}
