/// im2col and col2im: the patch matrix that turns convolution into matrix multiplication.
///
/// For one image and a range of channels, row r = (c, ki, kj) of the patch matrix holds, for each
/// output position p = oh * OW + ow, the input pixel x[c, oh*sh - padTop + ki*dh, ow*sw - padLeft + kj*dw]
/// (zero outside the image). Convolution is then W (K x C*kh*kw) times this matrix; the input
/// gradient is col2im(Wᵀ · dY), which adds every patch entry back onto the pixel it came from.
public struct ConvGeometry: Equatable, Sendable {
    public var channels: Int, height: Int, width: Int
    public var kernelHeight: Int, kernelWidth: Int
    public var strideH: Int, strideW: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public var dilationH: Int, dilationW: Int

    public init(channels: Int, height: Int, width: Int, kernelHeight: Int, kernelWidth: Int,
                strideH: Int = 1, strideW: Int = 1, padTop: Int = 0, padLeft: Int = 0,
                padBottom: Int = 0, padRight: Int = 0, dilationH: Int = 1, dilationW: Int = 1) {
        self.channels = channels; self.height = height; self.width = width
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.strideH = strideH; self.strideW = strideW
        self.padTop = padTop; self.padLeft = padLeft; self.padBottom = padBottom; self.padRight = padRight
        self.dilationH = dilationH; self.dilationW = dilationW
    }

    public var outHeight: Int { (height + padTop + padBottom - dilationH * (kernelHeight - 1) - 1) / strideH + 1 }
    public var outWidth: Int { (width + padLeft + padRight - dilationW * (kernelWidth - 1) - 1) / strideW + 1 }
    public var positions: Int { outHeight * outWidth }
    /// Rows of the patch matrix for one channel.
    public var kernelArea: Int { kernelHeight * kernelWidth }

    /// The output columns ow whose tap at kernel column kj falls inside the image: [lo, hi).
    @inline(__always)
    func validColumns(_ kj: Int) -> (Int, Int) {
        let offset = kj * dilationW - padLeft
        // ow*sw + offset >= 0  and  ow*sw + offset < width
        let lo = offset >= 0 ? 0 : (-offset + strideW - 1) / strideW
        let hiRaw = width - offset <= 0 ? 0 : (width - offset + strideW - 1) / strideW
        let hi = min(outWidth, hiRaw)
        return (min(lo, hi), hi)
    }
}

/// Writes patch-matrix rows for channels [c0, c1) and output positions [p0, p1) into `cols`,
/// laid out ((c - c0) * kh*kw + ki*kw + kj) x (p1 - p0), row stride `p1 - p0`.
func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, channels c0: Int, _ c1: Int,
            positions p0: Int, _ p1: Int, into cols: UnsafeMutablePointer<Float>) {
    let OW = g.outWidth, W = g.width, H = g.height
    let pc = p1 - p0
    var row = 0
    for c in c0..<c1 {
        let plane = x + c * H * W
        for ki in 0..<g.kernelHeight {
            for kj in 0..<g.kernelWidth {
                let (lo, hi) = g.validColumns(kj)
                let colOffset = kj * g.dilationW - g.padLeft
                let dst = cols + row * pc
                var p = p0
                while p < p1 {
                    let oh = p / OW
                    let owStart = p - oh * OW
                    let owEnd = min(OW, owStart + (p1 - p))
                    let out = dst + (p - p0) - owStart
                    let ih = oh * g.strideH - g.padTop + ki * g.dilationH
                    if ih < 0 || ih >= H {
                        zeroRun(out + owStart, owEnd - owStart)
                    } else {
                        let src = plane + ih * W + colOffset
                        let a = max(owStart, lo), b = min(owEnd, hi)
                        if a >= b {
                            zeroRun(out + owStart, owEnd - owStart)
                        } else {
                            zeroRun(out + owStart, a - owStart)
                            if g.strideW == 1 {
                                copyRun(out + a, src + a, b - a)
                            } else {
                                for ow in a..<b { out[ow] = src[ow * g.strideW] }
                            }
                            zeroRun(out + b, owEnd - b)
                        }
                    }
                    p += owEnd - owStart
                }
                row += 1
            }
        }
    }
}

/// The runs im2col copies and zeroes are a row of a small map (7 to 56 values, a padding
/// column or two): four at a time in registers, where a call to memcpy or memset would cost
/// more than the copy.
@inline(__always)
func copyRun(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, _ count: Int) {
    var i = 0
    while i + 4 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
        i += 4
    }
    while i < count { dst[i] = src[i]; i += 1 }
}

@inline(__always)
func zeroRun(_ dst: UnsafeMutablePointer<Float>, _ count: Int) {
    var i = 0
    while i + 4 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: SIMD4<Float>(), as: SIMD4<Float>.self)
        i += 4
    }
    while i < count { dst[i] = 0; i += 1 }
}

/// The adjoint of `im2col`: adds each patch entry back onto its pixel in `dx` (which it accumulates into).
func col2im(_ cols: UnsafePointer<Float>, _ g: ConvGeometry, channels c0: Int, _ c1: Int,
            positions p0: Int, _ p1: Int, into dx: UnsafeMutablePointer<Float>) {
    let OW = g.outWidth, W = g.width, H = g.height
    let pc = p1 - p0
    var row = 0
    for c in c0..<c1 {
        let plane = dx + c * H * W
        for ki in 0..<g.kernelHeight {
            for kj in 0..<g.kernelWidth {
                let (lo, hi) = g.validColumns(kj)
                let colOffset = kj * g.dilationW - g.padLeft
                let srcRow = cols + row * pc
                var p = p0
                while p < p1 {
                    let oh = p / OW
                    let owStart = p - oh * OW
                    let owEnd = min(OW, owStart + (p1 - p))
                    let ih = oh * g.strideH - g.padTop + ki * g.dilationH
                    if ih >= 0 && ih < H {
                        let a = max(owStart, lo), b = min(owEnd, hi)
                        if a < b {
                            let src = srcRow + (p - p0) - owStart
                            let dst = plane + ih * W + colOffset
                            if g.strideW == 1 {
                                for ow in a..<b { dst[ow] += src[ow] }
                            } else {
                                for ow in a..<b { dst[ow * g.strideW] += src[ow] }
                            }
                        }
                    }
                    p += owEnd - owStart
                }
                row += 1
            }
        }
    }
}

extension Tensor {
    /// The patch matrix of a [C, H, W] (or [H, W]) tensor, one row per patch position and one column
    /// per (c, ki, kj): the layout of the lecture's slide (patches as rows).
    public static func im2col(_ x: Tensor, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
                              padding: (Int, Int) = (0, 0)) throws -> Tensor {
        let (c, h, w): (Int, Int, Int)
        switch x.rank {
        case 2: (c, h, w) = (1, x.shape[0], x.shape[1])
        case 3: (c, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        default: throw EngineError.shapeMismatch("im2col takes a [H, W] or [C, H, W] tensor, got \(x.shape)")
        }
        let g = ConvGeometry(channels: c, height: h, width: w, kernelHeight: kernel.0, kernelWidth: kernel.1,
                             strideH: stride.0, strideW: stride.1, padTop: padding.0, padLeft: padding.1,
                             padBottom: padding.0, padRight: padding.1)
        try g.validate()
        let rows = c * g.kernelArea, p = g.positions
        var cols = [Float](repeating: 0, count: rows * p)
        x.withUnsafeBufferPointer { xp in
            cols.withUnsafeMutableBufferPointer { cp in
                Engine.im2col(xp.baseAddress!, g, channels: 0, c, positions: 0, p, into: cp.baseAddress!)
            }
        }
        // Transpose to patches as rows.
        let t = Tensor(shape: [p, rows]) { out in
            for r in 0..<rows { for q in 0..<p { out[q * rows + r] = cols[r * p + q] } }
        }
        return t
    }
}

extension ConvGeometry {
    /// Throws when the geometry cannot describe a convolution (non-positive sizes, an empty output).
    public func validate() throws {
        guard kernelHeight > 0, kernelWidth > 0 else {
            throw EngineError.invalidArgument("kernel size must be positive, got \(kernelHeight)x\(kernelWidth)")
        }
        guard strideH > 0, strideW > 0 else { throw EngineError.invalidArgument("stride must be positive, got \(strideH)x\(strideW)") }
        guard dilationH > 0, dilationW > 0 else { throw EngineError.invalidArgument("dilation must be positive") }
        guard padTop >= 0, padLeft >= 0, padBottom >= 0, padRight >= 0 else {
            throw EngineError.invalidArgument("padding must not be negative")
        }
        guard outHeight > 0, outWidth > 0,
              height + padTop + padBottom >= dilationH * (kernelHeight - 1) + 1,
              width + padLeft + padRight >= dilationW * (kernelWidth - 1) + 1 else {
            throw EngineError.shapeMismatch(
                "a \(kernelHeight)x\(kernelWidth) kernel (dilation \(dilationH)) does not fit a \(height)x\(width) input with this padding")
        }
    }
}
