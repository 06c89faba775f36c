/// C = A · B + bias, for the matrix products of convolutions with a short inner dimension: the
/// pointwise convolutions of mobile networks on 16 to 96 channels, and a first convolution's
/// 27 rows of patches. sgemm packs both operands into its own layout before it multiplies, which
/// on such sizes costs as much as the product; here B is read where it lies, a strip of 24 of
/// its columns at a time (k x 24 floats, in cache for every row of A), against four rows of A,
/// twelve vectors of sums held in registers.
///
/// Every element is the same chain of fused multiply-adds over the inner index in order, from
/// its row's bias (or zero), whichever tile or tail computes it: the outputs do not depend on how
/// a product is cut into blocks or threads. The bias and a fused activation cost no pass of their own.
enum SmallGemm {
    /// Whether a product of these sizes takes this kernel rather than sgemm (measured against
    /// OpenBLAS: ahead while the inner dimension is short enough for packing to dominate).
    @inline(__always)
    static func applies(m: Int, n: Int, k: Int) -> Bool { k <= 96 && n >= 8 && m >= 4 }

    /// C[i, j] = f(bias[i] + Σ_l A[i, l] · B[l, j]) for i < m, j < n, l < k: the sums start from
    /// the row's bias (or zero), and `activation` f (or none) runs on each tile as it is stored.
    static func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                         bias: UnsafePointer<Float>?, then activation: ConvActivation?, c: UnsafeMutablePointer<Float>, ldc: Int) {
        @inline(__always) func start(_ i: Int) -> Float { bias?[i] ?? 0 }
        /// Columns 0..<width (24 or 8) of every row, B's and C's strips given with their leading
        /// dimensions, each tile through the activation as soon as it is stored.
        @inline(__always) func strip(width: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
            var i = 0
            while i < m {
                let rows = i + 4 <= m ? 4 : 1
                if rows == 4 {
                    let (z0, z1, z2, z3) = (start(i), start(i + 1), start(i + 2), start(i + 3))
                    if width == 24 { tile4x24(k, a + i * lda, lda, b, ldb, z0, z1, z2, z3, c + i * ldc, ldc) }
                    else { tile4x8(k, a + i * lda, lda, b, ldb, z0, z1, z2, z3, c + i * ldc, ldc) }
                } else {
                    tile1(k, width: width / 8, a + i * lda, b, ldb, start(i), c + i * ldc)
                }
                if let activation { for r in i..<(i + rows) { activation.apply(c + r * ldc, count: width) } }
                i += rows
            }
        }
        var j = 0
        while j + 24 <= n { strip(width: 24, b + j, ldb, c + j, ldc); j += 24 }
        while j + 8 <= n { strip(width: 8, b + j, ldb, c + j, ldc); j += 8 }
        if j < n {
            // The last n - j < 8 columns: B's copied into an eight-wide strip padded with zeros,
            // multiplied as a whole strip into scratch, and the columns that exist copied out.
            let r = n - j
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 8 * (k + m)) { scratch in
                let bs = scratch.baseAddress!, cs = bs + 8 * k
                for l in 0..<k {
                    let row = bs + 8 * l
                    row.initialize(repeating: 0, count: 8)
                    row.update(from: b + l * ldb + j, count: r)
                }
                strip(width: 8, bs, 8, cs, 8)
                for i in 0..<m { (c + i * ldc + j).update(from: cs + 8 * i, count: r) }
            }
        }
    }

    @inline(__always) private static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
    @inline(__always) private static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// Rows i..<i+4, columns j..<j+24.
    @inline(__always)
    private static func tile4x24(_ k: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                                 _ z0: Float, _ z1: Float, _ z2: Float, _ z3: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let c1 = c + ldc, c2 = c + 2 * ldc, c3 = c + 3 * ldc
        var s00 = SIMD8<Float>(repeating: z0), s01 = s00, s02 = s00
        var s10 = SIMD8<Float>(repeating: z1), s11 = s10, s12 = s10
        var s20 = SIMD8<Float>(repeating: z2), s21 = s20, s22 = s20
        var s30 = SIMD8<Float>(repeating: z3), s31 = s30, s32 = s30
        let a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda
        for l in 0..<k {
            let row = b + l * ldb
            let b0 = load(row), b1 = load(row + 8), b2 = load(row + 16)
            var w = SIMD8<Float>(repeating: a[l])
            s00.addProduct(w, b0); s01.addProduct(w, b1); s02.addProduct(w, b2)
            w = SIMD8<Float>(repeating: a1[l])
            s10.addProduct(w, b0); s11.addProduct(w, b1); s12.addProduct(w, b2)
            w = SIMD8<Float>(repeating: a2[l])
            s20.addProduct(w, b0); s21.addProduct(w, b1); s22.addProduct(w, b2)
            w = SIMD8<Float>(repeating: a3[l])
            s30.addProduct(w, b0); s31.addProduct(w, b1); s32.addProduct(w, b2)
        }
        store(s00, c); store(s01, c + 8); store(s02, c + 16)
        store(s10, c1); store(s11, c1 + 8); store(s12, c1 + 16)
        store(s20, c2); store(s21, c2 + 8); store(s22, c2 + 16)
        store(s30, c3); store(s31, c3 + 8); store(s32, c3 + 16)
    }

    /// Rows i..<i+4, columns j..<j+8.
    @inline(__always)
    private static func tile4x8(_ k: Int, _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                                _ z0: Float, _ z1: Float, _ z2: Float, _ z3: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        let c1 = c + ldc, c2 = c + 2 * ldc, c3 = c + 3 * ldc
        var s0 = SIMD8<Float>(repeating: z0), s1 = SIMD8<Float>(repeating: z1)
        var s2 = SIMD8<Float>(repeating: z2), s3 = SIMD8<Float>(repeating: z3)
        let a1 = a + lda, a2 = a + 2 * lda, a3 = a + 3 * lda
        for l in 0..<k {
            let v = load(b + l * ldb)
            s0.addProduct(SIMD8<Float>(repeating: a[l]), v)
            s1.addProduct(SIMD8<Float>(repeating: a1[l]), v)
            s2.addProduct(SIMD8<Float>(repeating: a2[l]), v)
            s3.addProduct(SIMD8<Float>(repeating: a3[l]), v)
        }
        store(s0, c); store(s1, c1); store(s2, c2); store(s3, c3)
    }

    /// One row, columns j..<j + 8·width (width 1 or 3).
    @inline(__always)
    private static func tile1(_ k: Int, width: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ ldb: Int,
                              _ z: Float, _ c: UnsafeMutablePointer<Float>) {
        for v in 0..<width {
            var s = SIMD8<Float>(repeating: z)
            for l in 0..<k { s.addProduct(SIMD8<Float>(repeating: a[l]), load(b + l * ldb + 8 * v)) }
            store(s, c + 8 * v)
        }
    }
}
