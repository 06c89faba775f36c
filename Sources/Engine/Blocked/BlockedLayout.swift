/// The blocked layout a forward pass without gradients keeps its images in: [N, ⌈C/8⌉, H, W, 8],
/// the values of eight neighbouring channels side by side at each position (the "NCHWc" layout
/// of oneDNN and onnxruntime). A convolution then takes eight input channels at a position with
/// one load and makes eight output channels with one vector of sums, whatever the size of the
/// image: the 7x7 maps at the end of a network vectorize as well as the 112x112 ones at its
/// start, and each block of output channels is written as one contiguous stream.
///
/// The lanes past the last channel (when C is not a multiple of eight) hold finite values that
/// nothing reads as a channel: convolutions give them zero weights, and conversion back to
/// NCHW drops them. Only ops that keep finite numbers finite run on blocked tensors
/// (`BlockedForward.elementwiseKinds`).
enum Blocked {
    /// Channels a block holds: one vector of SIMD8<Float>, eight floats (AVX's 256 bits).
    static let width = 8

    /// Blocks for `channels` channels.
    @inline(__always)
    static func blocks(_ channels: Int) -> Int { (channels + width - 1) / width }

    /// The blocked shape of an NCHW shape.
    static func shape(ofPlain s: [Int]) -> [Int] { [s[0], blocks(s[1]), s[2], s[3], width] }

    /// The NCHW shape of a blocked shape holding `channels` channels.
    static func plainShape(_ s: [Int], channels: Int) -> [Int] { [s[0], channels, s[2], s[3]] }

    /// [N, C, H, W] to [N, ⌈C/8⌉, H, W, 8], the lanes past channel C zero.
    static func fromPlain(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4, "blocked layout is for [N, C, H, W] images")
        let n = x.shape[0], c = x.shape[1], hw = x.shape[2] * x.shape[3], cb = blocks(c)
        return Tensor(shape: shape(ofPlain: x.shape), unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { src in
                let s = src.baseAddress!, d = out.baseAddress!
                Parallel.forEach(n * cb, inline: n * cb * hw < 1 << 15) { u in
                    let ni = u / cb, b = u % cb, lanes = min(width, c - b * width)
                    let plane = s + (ni * c + b * width) * hw, dst = d + u * hw * width
                    if lanes < width {
                        dst.initialize(repeating: 0, count: hw * width)
                    }
                    for l in 0..<lanes {
                        let row = plane + l * hw
                        for p in 0..<hw { dst[p * width + l] = row[p] }
                    }
                }
            }
        })
    }

    /// [N, ⌈C/8⌉, H, W, 8] holding `channels` channels to [N, C, H, W].
    static func toPlain(_ x: Tensor, channels c: Int) -> Tensor {
        precondition(x.rank == 5 && x.shape[4] == width && x.shape[1] == blocks(c), "not a blocked tensor of \(c) channels: \(x.shape)")
        let n = x.shape[0], hw = x.shape[2] * x.shape[3], cb = x.shape[1]
        return Tensor(shape: plainShape(x.shape, channels: c), unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { src in
                let s = src.baseAddress!, d = out.baseAddress!
                Parallel.forEach(n * cb, inline: n * cb * hw < 1 << 15) { u in
                    let ni = u / cb, b = u % cb, lanes = min(width, c - b * width)
                    let block = s + u * hw * width, plane = d + (ni * c + b * width) * hw
                    for l in 0..<lanes {
                        let row = plane + l * hw
                        for p in 0..<hw { row[p] = block[p * width + l] }
                    }
                }
            }
        })
    }

    /// ShuffleNet's channel shuffle of two groups on a blocked image of c channels (c a multiple
    /// of 16): output channels 2i and 2i + 1 are input channels i and c/2 + i, so each output
    /// block interleaves four lanes of a block of the first half with the same four of the
    /// second half's block.
    static func shuffledPairs(_ x: Tensor, channels c: Int) -> Tensor {
        precondition(x.rank == 5 && c % (2 * width) == 0 && x.shape[1] == c / width, "not a blocked image of \(c) channels: \(x.shape)")
        let n = x.shape[0], hw = x.shape[2] * x.shape[3], cb = x.shape[1], half = cb / 2
        return Tensor(shape: x.shape, unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { src in
                let s = src.baseAddress!, d = out.baseAddress!
                Parallel.forEach(n * cb, inline: n * cb * hw < 1 << 15) { u in
                    let ni = u / cb, ob = u % cb
                    let a = s + (ni * cb + ob / 2) * hw * width, b = s + (ni * cb + half + ob / 2) * hw * width
                    let dst = d + u * hw * width
                    // The even lanes from the first half's block, the odd ones from the second's.
                    @inline(__always) func interleave(_ high: Bool) {
                        for p in 0..<hw {
                            let va = Lanes.load(a + p * width), vb = Lanes.load(b + p * width)
                            var v = Lanes()
                            v.evenHalf = high ? va.highHalf : va.lowHalf
                            v.oddHalf = high ? vb.highHalf : vb.lowHalf
                            v.store(dst + p * width)
                        }
                    }
                    if ob % 2 == 1 { interleave(true) } else { interleave(false) }
                }
            }
        })
    }

    /// Blocks first..<last of a blocked image: channels 8·first to 8·last, contiguous in each image.
    static func blockRange(_ x: Tensor, _ first: Int, _ last: Int) -> Tensor {
        let n = x.shape[0], cb = x.shape[1], plane = x.shape[2] * x.shape[3] * width
        return Tensor(shape: [n, last - first, x.shape[2], x.shape[3], width], unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { src in
                for ni in 0..<n {
                    (out.baseAddress! + ni * (last - first) * plane).update(from: src.baseAddress! + (ni * cb + first) * plane,
                                                                             count: (last - first) * plane)
                }
            }
        })
    }

    /// Blocked images of one size joined along their blocks: [N, B1 + B2 + ..., H, W, 8]. Each
    /// image's part is one contiguous run, copied in pieces of about 64 KB shared among the
    /// threads (one thread's copies had been 5% of DenseNet-121's pass, its 58 concatenations
    /// of up to 1024 channels).
    static func concatenated(_ parts: [Tensor]) -> Tensor {
        let first = parts[0], n = first.shape[0], plane = first.shape[2] * first.shape[3] * width
        precondition(parts.allSatisfy { $0.rank == 5 && $0.shape[0] == n && $0.shape[2...] == first.shape[2...] },
                     "blocked images of one size: \(parts.map(\.shape))")
        let blocks = parts.map { $0.shape[1] }, total = blocks.reduce(0, +)
        // Runs of at most `piece` floats: which part, where in it, where in the output, how many.
        let piece = 1 << 14
        var runs: [(part: Int, from: Int, to: Int, count: Int)] = []
        for ni in 0..<n {
            var offset = ni * total * plane
            for (k, b) in blocks.enumerated() {
                let length = b * plane, source = ni * length
                for start in stride(from: 0, to: length, by: piece) {
                    runs.append((k, source + start, offset + start, min(piece, length - start)))
                }
                offset += length
            }
        }
        return Tensor(shape: [n, total, first.shape[2], first.shape[3], width], unsafeUninitialized: { out in
            Parallel.forEach(runs.count, inline: total * n * plane < 1 << 15) { r in
                let run = runs[r]
                parts[run.part].withUnsafeBufferPointer { src in
                    (out.baseAddress! + run.to).update(from: src.baseAddress! + run.from, count: run.count)
                }
            }
        })
    }

    /// x [N, B, H, W, 8] times one vector per image and block, scale [N, B, 1, 1, 8] (a
    /// squeeze-excitation's channel scale), each product as the broadcast multiply makes it. One
    /// scale vector per block held across its map: the general broadcast had stepped its indices
    /// for every eight values, about five times the time of the products (MobileNetV3-small's
    /// nine scales 0.33 ms, a tenth of its pass).
    static func scaledByChannel(_ x: Tensor, _ scale: Tensor) -> Tensor {
        precondition(x.rank == 5 && scale.shape == [x.shape[0], x.shape[1], 1, 1, width], "scale \(scale.shape) for \(x.shape)")
        let planes = x.shape[0] * x.shape[1], hw = x.shape[2] * x.shape[3]
        return Tensor(shape: x.shape, unsafeUninitialized: { out in
            x.withUnsafeBufferPointer { xs in
                scale.withUnsafeBufferPointer { ss in
                    let xp = xs.baseAddress!, sp = ss.baseAddress!, yp = out.baseAddress!
                    // Parts of about 32K values, whole planes or runs of one.
                    let per = max(1, (1 << 15) / (hw * width))
                    let parts = (planes + per - 1) / per
                    Parallel.forEach(parts, inline: planes * hw * width < 1 << 15) { part in
                        for plane in (part * per)..<min(planes, (part + 1) * per) {
                            let v = Lanes.load(sp + plane * width)
                            let src = xp + plane * hw * width, dst = yp + plane * hw * width
                            for q in 0..<hw { (Lanes.load(src + q * width) * v).store(dst + q * width) }
                        }
                    }
                }
            }
        })
    }

    /// Per-channel values (a bias, a scale) padded with zeros to whole blocks: the values
    /// themselves, no copy made, when they fill whole blocks already.
    static func paddedChannels(_ values: [Float], blocks cb: Int) -> [Float] {
        values.count == cb * width ? values : values + [Float](repeating: 0, count: cb * width - values.count)
    }
}

typealias Lanes = SIMD8<Float>

extension Lanes {
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Lanes { UnsafeRawPointer(p).loadUnaligned(as: Lanes.self) }
    @inline(__always) func store(_ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: self, as: Lanes.self) }
}
