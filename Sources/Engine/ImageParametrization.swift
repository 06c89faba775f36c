// Ops on the tape for optimizing pictures: an image made from Fourier coefficients, colour
// decorrelation, clamping with a gradient that does not stick, and bilinear affine resampling
// (scale, rotate, translate). Each records its backward, so a whole render step — image from
// parameters, random transforms, network, objective — is one backward pass.
import Foundation

/// The frequency magnitude √(fx² + fy²) of each coefficient of a real 2-D spectrum [H, W/2+1]
/// (NumPy's fftfreq along both axes, the rfft half along the last).
public func spectrumFrequencies(height h: Int, width w: Int) -> [Float] {
    let l = w / 2 + 1
    var f = [Float](repeating: 0, count: h * l)
    for k in 0..<h {
        let fy = Float(k <= (h - 1) / 2 ? k : k - h) / Float(h)
        for j in 0..<l {
            let fx = Float(j) / Float(w)
            f[k * l + j] = (fx * fx + fy * fy).squareRoot()
        }
    }
    return f
}

/// The inverse real DFT behind `fourierImage`, by FFTs along the height and then the width,
/// with the Hermitian weights and the orthonormal scale; made once per size.
struct InverseRealDFT: Sendable {
    nonisolated(unsafe) private static var cache: [[Int]: InverseRealDFT] = [:]
    private static let lock = NSLock()

    /// The transform for an h x w image with the orthonormal scale and Lucid's 1/4, kept for reuse.
    static func cached(height h: Int, width w: Int) -> InverseRealDFT {
        lock.lock(); defer { lock.unlock() }
        if let d = cache[[h, w]] { return d }
        let d = InverseRealDFT(height: h, width: w, scale: 1 / (Float(h * w).squareRoot() * 4))
        if cache.count > 8 { cache.removeAll() }
        cache[[h, w]] = d
        return d
    }

    let h: Int, w: Int, l: Int
    /// Per column j of the half spectrum: the scale times its Hermitian weight (1 for the columns
    /// that have no mirror image, 2 for the others).
    let weights: [Float]
    let alongHeight: ComplexFFT, alongWidth: ComplexFFT

    init(height h: Int, width w: Int, scale: Float) {
        self.h = h; self.w = w; self.l = w / 2 + 1
        weights = (0..<(w / 2 + 1)).map { j in (j == 0 || (w % 2 == 0 && j == w / 2) ? 1 : 2) * scale }
        alongHeight = ComplexFFT.of(length: h); alongWidth = ComplexFFT.of(length: w)
    }

    /// Runs `body(item, z, y)` for each of `count` items (columns or rows of the planes), split
    /// into one share per engine thread, with two scratch vectors of `length` complex values.
    private func eachOf(_ count: Int, length: Int, inline: Bool,
                        _ body: (Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let t = max(1, Parallel.threads)
        Parallel.forEach(t, inline: inline) { task in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * length) { buffer in
                let z = buffer.baseAddress!, y = z + 2 * length
                z.initialize(repeating: 0, count: 4 * length)
                let (first, end) = Winograd.share(task, of: t, count)
                for item in first..<end { body(item, z, y) }
            }
        }
    }

    /// Spectra [P, H, 2, L] (per row: L real parts then L imaginary parts) to images [P, H, W]:
    /// out[m, n] = Re Σ_k Σ_j weight_j X[k, j] e^{2πi(km/H + jn/W)}. Each column of the half
    /// spectrum goes through an inverse FFT along the height, then each row (padded with zeros
    /// to the full width) through one along the width, of which the real part is kept.
    func forward(_ x: UnsafePointer<Float>, planes p: Int, into out: UnsafeMutablePointer<Float>) {
        let (h, w, l) = (h, w, l)
        Workspace.shared.withBuffer(p * h * 2 * l) { a in weights.withUnsafeBufferPointer { c in
            // a: [P, H, L] complex, interleaved.
            eachOf(p * l, length: h, inline: p * h * l < 4096) { column, z, y in
                let plane = column / l, j = column % l, spectrum = x + plane * h * 2 * l
                for k in 0..<h { z[2 * k] = spectrum[k * 2 * l + j]; z[2 * k + 1] = spectrum[k * 2 * l + l + j] }
                alongHeight.transform(z, into: y, inverse: true)
                let target = a + plane * h * 2 * l
                for m in 0..<h { target[m * 2 * l + 2 * j] = y[2 * m]; target[m * 2 * l + 2 * j + 1] = y[2 * m + 1] }
            }
            // z stays zero past the first L coefficients: the row padded to the full width.
            eachOf(p * h, length: w, inline: p * h * w < 4096) { row, z, y in
                let source = a + row * 2 * l
                for j in 0..<l { z[2 * j] = c[j] * source[2 * j]; z[2 * j + 1] = c[j] * source[2 * j + 1] }
                alongWidth.transform(z, into: y, inverse: true)
                let o = out + row * w
                for n in 0..<w { o[n] = y[2 * n] }
            }
        }}
    }

    /// The transpose of `forward`: image gradients [P, H, W] to spectrum gradients [P, H, 2, L],
    /// by forward FFTs along the width (keeping the half spectrum, weighted) and then the height.
    func backward(_ dy: UnsafePointer<Float>, planes p: Int, into out: UnsafeMutablePointer<Float>) {
        let (h, w, l) = (h, w, l)
        Workspace.shared.withBuffer(p * h * 2 * l) { a in weights.withUnsafeBufferPointer { c in
            eachOf(p * h, length: w, inline: p * h * w < 4096) { row, z, y in
                let g = dy + row * w
                for n in 0..<w { z[2 * n] = g[n]; z[2 * n + 1] = 0 }
                alongWidth.transform(z, into: y, inverse: false)
                let target = a + row * 2 * l
                for j in 0..<l { target[2 * j] = c[j] * y[2 * j]; target[2 * j + 1] = c[j] * y[2 * j + 1] }
            }
            eachOf(p * l, length: h, inline: p * h * l < 4096) { column, z, y in
                let plane = column / l, j = column % l, source = a + plane * h * 2 * l
                for m in 0..<h { z[2 * m] = source[m * 2 * l + 2 * j]; z[2 * m + 1] = source[m * 2 * l + 2 * j + 1] }
                alongHeight.transform(z, into: y, inverse: false)
                let spectrum = out + plane * h * 2 * l
                for k in 0..<h { spectrum[k * 2 * l + j] = y[2 * k]; spectrum[k * 2 * l + l + j] = y[2 * k + 1] }
            }
        }}
    }
}

/// Lucid's `fft_image`: an image [N, C, H, W] from a spectrum [N, C, H, 2, W/2+1] (per row of
/// frequencies, the real parts then the imaginary parts). Each coefficient is scaled by
/// 1 / max(f, 1/max(H, W))^decayPower, so that low frequencies dominate as in natural images,
/// then the orthonormal inverse real DFT is taken and divided by 4 (Lucid's constant). The
/// transforms are FFTs, forward and backward.
public func fourierImage(_ spectrum: Variable, height h: Int, width w: Int, decayPower: Float = 1) throws -> Variable {
    let l = w / 2 + 1
    guard h >= 1, w >= 1, spectrum.shape.count == 5, spectrum.shape[2] == h, spectrum.shape[3] == 2, spectrum.shape[4] == l else {
        throw EngineError.shapeMismatch("a Fourier image of \(h) x \(w) takes a spectrum [N, C, \(h), 2, \(l)], got \(spectrum.shape)")
    }
    guard decayPower.isFinite, decayPower >= 0 else { throw EngineError.invalidArgument("the spectrum's decay power must be a number >= 0, got \(decayPower)") }
    let planes = spectrum.shape[0] * spectrum.shape[1]
    let dft = InverseRealDFT.cached(height: h, width: w)
    let frequencies = spectrumFrequencies(height: h, width: w)
    let floor = 1 / Float(max(h, w))
    var gain = [Float](repeating: 0, count: h * 2 * l)
    for k in 0..<h { for j in 0..<l {
        let g = 1 / Foundation.pow(max(frequencies[k * l + j], floor), decayPower)
        gain[k * 2 * l + j] = g; gain[k * 2 * l + l + j] = g
    }}
    func scaled(_ t: Tensor) -> Tensor {
        Tensor(shape: t.shape) { out in t.withUnsafeBufferPointer { s in
            for i in 0..<t.count { out[i] = s[i] * gain[i % gain.count] }
        }}
    }
    let x = scaled(spectrum.value)
    let y = Tensor(shape: [spectrum.shape[0], spectrum.shape[1], h, w]) { out in
        x.withUnsafeBufferPointer { dft.forward($0.baseAddress!, planes: planes, into: out.baseAddress!) }
    }
    return Variable.result(y, [spectrum]) { dy in
        let raw = Tensor(shape: spectrum.shape) { out in
            dy.withUnsafeBufferPointer { dft.backward($0.baseAddress!, planes: planes, into: out.baseAddress!) }
        }
        return [scaled(raw)]
    }
}

/// Lucid's colour-correlation square root (the SVD of ImageNet's colour covariance), with its
/// columns scaled so the largest has norm 1: decorrelated channels times this are RGB.
public let colorCorrelationSqrt: [[Float]] = {
    let m: [[Float]] = [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]]
    let largest = (0..<3).map { c in (0..<3).map { m[$0][c] * m[$0][c] }.reduce(0, +).squareRoot() }.max()!
    return m.map { $0.map { $0 / largest } }
}()

/// Each pixel's channels mixed by a matrix: y[n, i] = Σ_j matrix[i][j] · x[n, j], for
/// x [N, C, H, W] and a C' x C matrix.
public func mixChannels(_ x: Variable, _ matrix: [[Float]]) throws -> Variable {
    guard x.shape.count == 4, let cols = matrix.first?.count, cols == x.shape[1], matrix.allSatisfy({ $0.count == cols }) else {
        throw EngineError.shapeMismatch("mixing channels takes [N, C, H, W] and a matrix with C columns; got \(x.shape) and \(matrix.count) x \(matrix.first?.count ?? 0)")
    }
    let n = x.shape[0], cin = cols, cout = matrix.count, plane = x.shape[2] * x.shape[3]
    func apply(_ t: Tensor, _ m: [[Float]], _ outC: Int, _ inC: Int) -> Tensor {
        Tensor(shape: [n, outC, x.shape[2], x.shape[3]]) { out in t.withUnsafeBufferPointer { s in
            for b in 0..<n { for i in 0..<outC {
                let o = out.baseAddress! + (b * outC + i) * plane
                o.initialize(repeating: 0, count: plane)
                for j in 0..<inC {
                    let k = m[i][j], src = s.baseAddress! + (b * inC + j) * plane
                    if k != 0 { for p in 0..<plane { o[p] += k * src[p] } }
                }
            }}
        }}
    }
    let transposed = (0..<cin).map { j in (0..<cout).map { matrix[$0][j] } }
    return Variable.result(apply(x.value, matrix, cout, cin), [x]) { dy in [apply(dy, transposed, cin, cout)] }
}

/// y = min(max(x, low), high), with a gradient that does not stick at the bounds: it passes
/// inside, and outside wherever it points back into the range (dy > 0 below, dy < 0 above),
/// for an ascent on the objective the gradient belongs to.
public func clampPassingInward(_ x: Variable, low: Float = 0, high: Float = 1) -> Variable {
    let y = x.value.map { min(max($0, low), high) }
    return Variable.result(y, [x]) { dy in
        [Tensor(shape: dy.shape) { dx in x.value.withUnsafeBufferPointer { xs in dy.withUnsafeBufferPointer { d in
            for i in 0..<dx.count {
                let v = xs[i], g = d[i]
                dx[i] = (v < low && g < 0) || (v > high && g > 0) ? 0 : g
            }
        }}}]
    }
}

/// An affine map from output pixel coordinates to input ones: x_in = a·x + b·y + c,
/// y_in = d·x + e·y + f (pixel centres at whole numbers).
public struct AffineMap: Equatable, Sendable {
    public var a, b, c, d, e, f: Float
    public init(a: Float, b: Float, c: Float, d: Float, e: Float, f: Float) {
        self.a = a; self.b = b; self.c = c; self.d = d; self.e = e; self.f = f
    }

    /// A shift of the picture by (dx, dy) pixels: output (x, y) reads input (x - dx, y - dy).
    public static func translation(dx: Float, dy: Float) -> AffineMap { AffineMap(a: 1, b: 0, c: -dx, d: 0, e: 1, f: -dy) }

    /// Resizing an h x w picture to oh x ow with corners aligned (PyTorch's align_corners=True).
    public static func resize(height h: Int, width w: Int, toHeight oh: Int, width ow: Int) -> AffineMap {
        let sx = ow > 1 ? Float(w - 1) / Float(ow - 1) : 0, sy = oh > 1 ? Float(h - 1) / Float(oh - 1) : 0
        return AffineMap(a: sx, b: 0, c: 0, d: 0, e: sy, f: 0)
    }

    /// A rotation of an h x w picture by `degrees` (counterclockwise as seen) about its centre.
    public static func rotation(degrees: Float, height h: Int, width w: Int) -> AffineMap {
        let t = degrees * .pi / 180, cx = Float(w - 1) / 2, cy = Float(h - 1) / 2
        let (cs, sn) = (Foundation.cos(t), Foundation.sin(t))
        // Output (x, y) reads the input at the inverse rotation of (x - cx, y - cy); with y pointing
        // down, a counterclockwise turn on screen is x' = cos·x + sin·y, y' = -sin·x + cos·y.
        return AffineMap(a: cs, b: -sn, c: cx - cs * cx + sn * cy, d: sn, e: cs, f: cy - sn * cx - cs * cy)
    }
}

/// Bilinear resampling of [N, C, H, W] to [N, C, outHeight, outWidth] along an affine map
/// from output to input coordinates; what falls outside the input reads `fill`. The backward
/// pass scatters each output gradient to the four input pixels it was read from.
public func resample(_ x: Variable, height oh: Int, width ow: Int, map m: AffineMap, fill: Float = 0) throws -> Variable {
    guard x.shape.count == 4, oh >= 1, ow >= 1, oh * ow <= 1 << 26 else {
        throw EngineError.shapeMismatch("resampling takes [N, C, H, W] to a positive size; got \(x.shape) to \(oh) x \(ow)")
    }
    guard [m.a, m.b, m.c, m.d, m.e, m.f].allSatisfy(\.isFinite) else { throw EngineError.invalidArgument("the resampling map is not finite") }
    let h = x.shape[2], w = x.shape[3], planes = x.shape[0] * x.shape[1]
    // Per output pixel: the top-left input index and the four weights (zero for corners outside).
    var index = [Int32](repeating: 0, count: oh * ow)
    var weights = [Float](repeating: 0, count: oh * ow * 4)
    var outside = [Float](repeating: 0, count: oh * ow)
    index.withUnsafeMutableBufferPointer { index in weights.withUnsafeMutableBufferPointer { weights in outside.withUnsafeMutableBufferPointer { outside in
        for y in 0..<oh { for xo in 0..<ow {
            let sx = m.a * Float(xo) + m.b * Float(y) + m.c, sy = m.d * Float(xo) + m.e * Float(y) + m.f
            let x0 = Int(Foundation.floor(sx)), y0 = Int(Foundation.floor(sy))
            let fx = sx - Float(x0), fy = sy - Float(y0)
            let p = y * ow + xo
            index[p] = Int32(clamping: y0 * w + x0)
            let left = x0 >= 0 && x0 < w, right = x0 + 1 >= 0 && x0 + 1 < w
            let top = y0 >= 0 && y0 < h, bottom = y0 + 1 >= 0 && y0 + 1 < h
            let w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy
            weights[p * 4] = left && top ? w00 : 0
            weights[p * 4 + 1] = right && top ? w01 : 0
            weights[p * 4 + 2] = left && bottom ? w10 : 0
            weights[p * 4 + 3] = right && bottom ? w11 : 0
            outside[p] = 1 - weights[p * 4] - weights[p * 4 + 1] - weights[p * 4 + 2] - weights[p * 4 + 3]
        }}
    }}}
    let offsets = [0, 1, w, w + 1]
    let y = Tensor(shape: [x.shape[0], x.shape[1], oh, ow]) { out in
        x.value.withUnsafeBufferPointer { s in index.withUnsafeBufferPointer { index in weights.withUnsafeBufferPointer { weights in
            outside.withUnsafeBufferPointer { outside in
                let (sp, dp, ip, wp, op) = (s.baseAddress!, out.baseAddress!, index.baseAddress!, weights.baseAddress!, outside.baseAddress!)
                Parallel.forEach(planes) { pl in
                    let src = sp + pl * h * w, dst = dp + pl * oh * ow
                    for p in 0..<(oh * ow) {
                        var v = fill * op[p]
                        let i = Int(ip[p])
                        for q in 0..<4 { let wt = wp[p * 4 + q]; if wt != 0 { v += wt * src[i + offsets[q]] } }
                        dst[p] = v
                    }
                }
            }
        }}}
    }
    return Variable.result(y, [x]) { dy in
        [Tensor(shape: x.shape) { dx in
            dx.initialize(repeating: 0)
            dy.withUnsafeBufferPointer { g in index.withUnsafeBufferPointer { index in weights.withUnsafeBufferPointer { weights in
                let (gp, dp, ip, wp) = (g.baseAddress!, dx.baseAddress!, index.baseAddress!, weights.baseAddress!)
                Parallel.forEach(planes) { pl in
                    let dst = dp + pl * h * w, src = gp + pl * oh * ow
                    for p in 0..<(oh * ow) {
                        let i = Int(ip[p]), v = src[p]
                        for q in 0..<4 { let wt = wp[p * 4 + q]; if wt != 0 { dst[i + offsets[q]] += wt * v } }
                    }
                }
            }}}
        }]
    }
}

extension Variable {
    /// A scalar computed outside the tape from `inputs`, with its gradient with respect to each
    /// given: `gradients(of:)` on it runs the backward passes of all the inputs at once.
    public static func scalar(_ value: Float, of inputs: [Variable], gradients: [Tensor]) throws -> Variable {
        guard inputs.count == gradients.count, zip(inputs, gradients).allSatisfy({ $0.shape == $1.shape }) else {
            throw EngineError.shapeMismatch("a scalar's gradients must match its inputs one for one")
        }
        return result(Tensor(scalar: value), inputs) { dy in
            let s = dy.scalars[0]
            return gradients.map { s == 1 ? $0 : $0.map { $0 * s } }
        }
    }
}
