// The fast Fourier transform behind Fourier-parametrized images: a complex DFT of any length
// by mixed-radix Cooley–Tukey decimation in time (dedicated butterflies for radices 4 and 2,
// a general one for every other factor), as KISS FFT arranges it.
import Foundation

/// The complex DFT of one length, forward (e^-2πikn/N) or inverse (e^+2πikn/N, unscaled), on
/// interleaved (re, im) floats. A length with a large prime factor p costs O(N·p) there.
final class ComplexFFT: @unchecked Sendable {
    let n: Int
    /// Per stage, the radix p and the length m of the sub-transforms it combines (p · m at each stage).
    private let stages: [(p: Int, m: Int)]
    /// e^-2πik/N and e^+2πik/N for k in 0..<N, interleaved, computed in double precision.
    private let forwardTwiddles: [Float], inverseTwiddles: [Float]
    private let largestRadix: Int

    init(length n: Int) {
        precondition(n >= 1, "an FFT needs a length of at least 1")
        self.n = n
        var stages: [(Int, Int)] = []
        var rest = n, p = 4
        while rest > 1 {
            while rest % p != 0 {
                switch p { case 4: p = 2; case 2: p = 3; default: p += 2 }
                if p * p > rest { p = rest }
            }
            rest /= p
            stages.append((p, rest))
        }
        self.stages = stages
        largestRadix = stages.map(\.0).max() ?? 1
        var f = [Float](repeating: 0, count: 2 * n), i = f
        for k in 0..<n {
            let angle = 2 * Double.pi * Double(k) / Double(n)
            f[2 * k] = Float(cos(angle)); f[2 * k + 1] = Float(-sin(angle))
            i[2 * k] = Float(cos(angle)); i[2 * k + 1] = Float(sin(angle))
        }
        forwardTwiddles = f; inverseTwiddles = i
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [Int: ComplexFFT] = [:]

    /// The transform of length n, made once and shared.
    static func of(length n: Int) -> ComplexFFT {
        lock.lock(); defer { lock.unlock() }
        if let t = cache[n] { return t }
        if cache.count > 16 { cache.removeAll() }
        let t = ComplexFFT(length: n)
        cache[n] = t
        return t
    }

    /// out = DFT(input), n complex values each, at distinct addresses.
    func transform(_ input: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, inverse: Bool) {
        if stages.isEmpty { out[0] = input[0]; out[1] = input[1]; return }
        let twiddles = inverse ? inverseTwiddles : forwardTwiddles
        twiddles.withUnsafeBufferPointer { tw in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * largestRadix) { scratch in
                work(out, input, stride: 1, stage: 0, tw.baseAddress!, scratch.baseAddress!, inverse)
            }
        }
    }

    private func work(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, stride: Int, stage: Int,
                      _ tw: UnsafePointer<Float>, _ scratch: UnsafeMutablePointer<Float>, _ inverse: Bool) {
        let (p, m) = stages[stage]
        if m == 1 {
            for k in 0..<p { out[2 * k] = input[2 * k * stride]; out[2 * k + 1] = input[2 * k * stride + 1] }
        } else {
            for k in 0..<p { work(out + 2 * k * m, input + 2 * k * stride, stride: stride * p, stage: stage + 1, tw, scratch, inverse) }
        }
        switch p {
        case 2: radix2(out, stride, m, tw)
        case 4: radix4(out, stride, m, tw, inverse)
        default: general(out, stride, m, p, tw, scratch)
        }
    }

    private func radix2(_ f: UnsafeMutablePointer<Float>, _ stride: Int, _ m: Int, _ tw: UnsafePointer<Float>) {
        for u in 0..<m {
            let a = 2 * u, b = 2 * (u + m), t = 2 * u * stride
            let tr = f[b] * tw[t] - f[b + 1] * tw[t + 1], ti = f[b] * tw[t + 1] + f[b + 1] * tw[t]
            f[b] = f[a] - tr; f[b + 1] = f[a + 1] - ti
            f[a] += tr; f[a + 1] += ti
        }
    }

    private func radix4(_ f: UnsafeMutablePointer<Float>, _ stride: Int, _ m: Int, _ tw: UnsafePointer<Float>, _ inverse: Bool) {
        @inline(__always) func mul(_ i: Int, _ t: Int) -> (Float, Float) {
            (f[i] * tw[t] - f[i + 1] * tw[t + 1], f[i] * tw[t + 1] + f[i + 1] * tw[t])
        }
        for u in 0..<m {
            let i0 = 2 * u, i1 = 2 * (u + m), i2 = 2 * (u + 2 * m), i3 = 2 * (u + 3 * m)
            let s0 = mul(i1, 2 * u * stride), s1 = mul(i2, 4 * u * stride), s2 = mul(i3, 6 * u * stride)
            let s5 = (f[i0] - s1.0, f[i0 + 1] - s1.1)
            let a = (f[i0] + s1.0, f[i0 + 1] + s1.1)
            let s3 = (s0.0 + s2.0, s0.1 + s2.1), s4 = (s0.0 - s2.0, s0.1 - s2.1)
            f[i2] = a.0 - s3.0; f[i2 + 1] = a.1 - s3.1
            f[i0] = a.0 + s3.0; f[i0 + 1] = a.1 + s3.1
            if inverse {
                f[i1] = s5.0 - s4.1; f[i1 + 1] = s5.1 + s4.0
                f[i3] = s5.0 + s4.1; f[i3 + 1] = s5.1 - s4.0
            } else {
                f[i1] = s5.0 + s4.1; f[i1 + 1] = s5.1 - s4.0
                f[i3] = s5.0 - s4.1; f[i3 + 1] = s5.1 + s4.0
            }
        }
    }

    private func general(_ f: UnsafeMutablePointer<Float>, _ stride: Int, _ m: Int, _ p: Int,
                         _ tw: UnsafePointer<Float>, _ scratch: UnsafeMutablePointer<Float>) {
        for u in 0..<m {
            for q in 0..<p { scratch[2 * q] = f[2 * (u + q * m)]; scratch[2 * q + 1] = f[2 * (u + q * m) + 1] }
            for q1 in 0..<p {
                let k = u + q1 * m
                var re = scratch[0], im = scratch[1], t = 0
                for q in 1..<p {
                    t += stride * k
                    if t >= n { t -= n }
                    let a = scratch[2 * q], b = scratch[2 * q + 1], c = tw[2 * t], d = tw[2 * t + 1]
                    re += a * c - b * d; im += a * d + b * c
                }
                f[2 * k] = re; f[2 * k + 1] = im
            }
        }
    }
}
