/// A seeded pseudo-random generator (xoshiro256**), so every figure can be reproduced.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        // SplitMix64 expands the seed into the four words of state.
        var x = seed
        func next() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (next(), next(), next(), next())
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1).
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / Float(1 << 24))
    }

    /// Standard normal, by the Box-Muller transform.
    public mutating func nextNormal() -> Float {
        var u1 = nextUniform()
        while u1 <= 1e-12 { u1 = nextUniform() }
        let u2 = nextUniform()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Float.pi * u2)
    }
}

@inline(__always) private func _log(_ x: Float) -> Float { Float(log(Double(x))) }
@inline(__always) private func _cos(_ x: Float) -> Float { Float(cos(Double(x))) }

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Tensor {
    /// Standard-normal scalars, scaled by `std`.
    public static func randn(_ shape: [Int], std: Float = 1, generator: inout SeededGenerator) -> Tensor {
        Tensor(shape: shape) { out in
            for i in 0..<out.count { out[i] = std * generator.nextNormal() }
        }
    }

    public static func randn(_ shape: [Int], std: Float = 1, seed: UInt64) -> Tensor {
        var g = SeededGenerator(seed: seed)
        return randn(shape, std: std, generator: &g)
    }

    /// Uniform scalars in [low, high).
    public static func uniform(_ shape: [Int], low: Float = 0, high: Float = 1, generator: inout SeededGenerator) -> Tensor {
        Tensor(shape: shape) { out in
            for i in 0..<out.count { out[i] = low + (high - low) * generator.nextUniform() }
        }
    }
}
