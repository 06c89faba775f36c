// Turning tensors into pictures: scaling values into [0, 1], colormaps, and heat maps
// laid over images.
import Engine

/// How values are brought into [0, 1] for display.
public enum DisplayScaling: String, CaseIterable, Sendable {
    /// The smallest value becomes 0 and the largest 1 (a constant becomes 0).
    case minMax
    /// 0 becomes 1/2 and ±max|x| become 0 and 1, so the sign stays visible: for gradients
    /// and other signed data, shown in gray or a diverging colormap.
    case symmetric
    /// Values are only clamped to [0, 1]: for data already in display space.
    case clamp
}

/// `tensor` with its values brought into [0, 1] for display (see `DisplayScaling`).
/// NaN stays NaN; infinities are left out of the range and clamped.
public func rescaled(_ tensor: Tensor, _ scaling: DisplayScaling = .minMax) -> Tensor {
    var low = Float.infinity, high = -Float.infinity
    for v in tensor.scalars where v.isFinite {
        low = Swift.min(low, v)
        high = Swift.max(high, v)
    }
    let scale: Float, shift: Float
    switch scaling {
    case .minMax:
        // (x − low) / (high − low)
        scale = high > low ? 1 / (high - low) : 0
        shift = high > low ? -low * scale : 0
    case .symmetric:
        // 1/2 + x / (2 max|x|)
        let extent = Swift.max(abs(low), abs(high))
        scale = extent > 0 && extent.isFinite ? 0.5 / extent : 0
        shift = 0.5
    case .clamp:
        scale = 1
        shift = 0
    }
    return Tensor(shape: tensor.shape) { out in
        tensor.withUnsafeBufferPointer { source in
            for i in 0..<source.count { out[i] = Swift.min(Swift.max(source[i] * scale + shift, 0), 1) }
        }
    }
}

/// A map from [0, 1] to colours: 256 RGB entries, interpolated linearly between entries.
public struct Colormap: Equatable, Sendable {
    /// The name a colormap is looked up by.
    public let name: String
    /// 256 entries of red, green, blue in [0, 1].
    let table: [Float]

    /// Black to white.
    public static let gray = Colormap(name: "gray", table: (0..<256).flatMap { i in [Float](repeating: Float(i) / 255, count: 3) })
    /// matplotlib's viridis: perceptually uniform, lightness increasing from dark blue to yellow.
    public static let viridis = Colormap(name: "viridis", table: viridisTable)
    /// Blue through white to red (ColorBrewer's RdBu, reversed): for signed data scaled
    /// symmetrically, negative blue, zero white, positive red.
    public static let diverging = Colormap(name: "diverging", table: blueWhiteRedTable)

    /// Every built-in colormap.
    public static let all: [Colormap] = [.gray, .viridis, .diverging]

    /// The colormap called `name` (gray, viridis, diverging); an unknown name suggests the nearest.
    public static func named(_ name: String) throws -> Colormap {
        if let map = all.first(where: { $0.name == name.lowercased() }) { return map }
        throw EngineError.unknownName(name, candidates: all.map(\.name))
    }

    /// The colour of `value` (clamped to [0, 1]) as red, green, blue.
    public func color(at value: Float) -> (red: Float, green: Float, blue: Float) {
        let (i, t) = position(value)
        func channel(_ c: Int) -> Float { table[3 * i + c] * (1 - t) + table[3 * (i + 1) + c] * t }
        return (channel(0), channel(1), channel(2))
    }

    /// Entry index i (0...254) and fraction t, so that value lies t of the way from entry i to i+1.
    private func position(_ value: Float) -> (Int, Float) {
        let v = value.isNaN ? 0 : Swift.min(Swift.max(value, 0), 1) * 255
        let i = Swift.min(Int(v), 254)
        return (i, v - Float(i))
    }

    /// A colour image [3, H, W] of single-channel values [H, W] or [1, H, W] in [0, 1]
    /// (values outside are clamped; use `rescaled` first for other data).
    public func apply(_ values: Tensor) throws -> Tensor {
        guard values.rank == 2 || (values.rank == 3 && values.shape[0] == 1) else {
            throw EngineError.shapeMismatch("a colormap applies to one channel, [H, W] or [1, H, W]; got \(values.shape)")
        }
        let height = values.shape[values.rank - 2], width = values.shape[values.rank - 1]
        let plane = height * width
        return Tensor(shape: [3, height, width]) { out in
            values.withUnsafeBufferPointer { source in
                table.withUnsafeBufferPointer { entries in
                    for p in 0..<plane {
                        let (i, t) = position(source[p])
                        for c in 0..<3 {
                            out[c * plane + p] = entries[3 * i + c] * (1 - t) + entries[3 * (i + 1) + c] * t
                        }
                    }
                }
            }
        }
    }
}

/// A heat map laid over an image: `heat` ([H, W] or [1, H, W], any range) is brought
/// into [0, 1] by `scaling`, resized to the image, coloured by `colormap` and blended:
/// out = (1 − alpha) · image + alpha · colour. The result is a colour image [3, H, W].
public func overlay(_ image: Tensor, _ heat: Tensor, alpha: Float = 0.5, colormap: Colormap = .viridis,
                    scaling: DisplayScaling = .minMax) throws -> Tensor {
    let picture = try toRGB(image)
    let height = picture.shape[1], width = picture.shape[2]
    guard heat.rank == 2 || (heat.rank == 3 && heat.shape[0] == 1) else {
        throw EngineError.shapeMismatch("overlay needs a heat map of one channel, [H, W] or [1, H, W]; got \(heat.shape)")
    }
    guard (0...1).contains(alpha) else { throw EngineError.invalidArgument("overlay alpha must be in [0, 1], got \(alpha)") }
    let sized = try resize(rescaled(heat, scaling), height: height, width: width)
    let colour = try colormap.apply(sized)
    return picture.zipMap(colour) { p, c in (1 - alpha) * p + alpha * c }
}
