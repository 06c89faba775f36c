// Geometric transforms on the last two axes (H, W) of an image or a batch:
// resize, center crop, and nearest-neighbour enlargement.
import Engine

/// The number of H x W planes in a tensor of rank >= 2, and H and W.
func planes(of tensor: Tensor, operation: String) throws -> (count: Int, height: Int, width: Int) {
    guard tensor.rank >= 2 else {
        throw EngineError.shapeMismatch("\(operation) needs an image [C, H, W], [H, W] or a batch [N, C, H, W]; got \(tensor.shape)")
    }
    let height = tensor.shape[tensor.rank - 2], width = tensor.shape[tensor.rank - 1]
    return (tensor.shape.dropLast(2).reduce(1, *), height, width)
}

/// For one axis: output i is the weighted sum of inputs first[i] ..< first[i] + count[i].
struct ResamplingWeights {
    var first: [Int] = []
    var count: [Int] = []
    /// Row i holds the weights of output i, padded to `stride` entries.
    var weights: [Float] = []
    var stride = 0

    /// Bilinear (triangle filter) weights. With `antialias` and shrinking by a factor s > 1
    /// the triangle is widened to s input pixels, so each output averages everything it
    /// covers (PIL's and torch's antialiased bilinear); otherwise this is plain bilinear
    /// interpolation with align_corners = false. Output i is centred at input s (i + 1/2).
    init(inputSize: Int, outputSize: Int, antialias: Bool) {
        let scale = Double(inputSize) / Double(outputSize)
        let widen = antialias && scale > 1
        let support = widen ? scale : 1
        let inverseScale = widen ? 1 / scale : 1
        var rows: [[Double]] = []
        for i in 0..<outputSize {
            let centre = scale * (Double(i) + 0.5)
            // Truncation towards zero, as in the reference implementations. The input pixel
            // under the centre is always in range and has a positive weight, so the sum is > 0.
            let low = Swift.max(Int(centre - support + 0.5), 0)
            let high = Swift.min(Int(centre + support + 0.5), inputSize)
            let row = (low..<high).map { j in Swift.max(0, 1 - abs((Double(j) - centre + 0.5) * inverseScale)) }
            let total = row.reduce(0, +)
            first.append(low)
            count.append(row.count)
            rows.append(row.map { $0 / total })
        }
        stride = rows.map(\.count).max() ?? 0
        weights = [Float](repeating: 0, count: stride * outputSize)
        for (i, row) in rows.enumerated() {
            for (j, w) in row.enumerated() { weights[i * stride + j] = Float(w) }
        }
    }
}

/// The image (or every image of a batch) resized to `height` x `width` by bilinear
/// interpolation. When shrinking with `antialias` (the default) each output pixel
/// averages the input pixels it covers, as PIL and torchvision do, so thin lines and
/// fine textures do not alias; the result agrees with torch's
/// `interpolate(mode="bilinear", antialias=True, align_corners=False)`.
public func resize(_ image: Tensor, height: Int, width: Int, antialias: Bool = true) throws -> Tensor {
    let (planeCount, inputHeight, inputWidth) = try planes(of: image, operation: "resize")
    guard height > 0, width > 0 else {
        throw EngineError.invalidArgument("resize needs a positive height and width, got \(height) x \(width)")
    }
    guard inputHeight > 0, inputWidth > 0 else {
        throw EngineError.shapeMismatch("cannot resize the empty image \(image.shape)")
    }
    if height == inputHeight && width == inputWidth { return image }
    let across = ResamplingWeights(inputSize: inputWidth, outputSize: width, antialias: antialias)
    let down = ResamplingWeights(inputSize: inputHeight, outputSize: height, antialias: antialias)

    // First along each row (inputHeight x width), then along each column.
    var rowsResized = [Float](repeating: 0, count: inputHeight * width)
    let shape = Array(image.shape.dropLast(2)) + [height, width]
    return Tensor(shape: shape) { out in
        image.withUnsafeBufferPointer { source in
            rowsResized.withUnsafeMutableBufferPointer { middle in
                across.weights.withUnsafeBufferPointer { wx in
                    down.weights.withUnsafeBufferPointer { wy in
                        for p in 0..<planeCount {
                            let input = UnsafeBufferPointer(rebasing: source[(p * inputHeight * inputWidth)...])
                            for y in 0..<inputHeight {
                                let row = y * inputWidth
                                for x in 0..<width {
                                    var sum: Float = 0
                                    let first = across.first[x], w = x * across.stride
                                    for j in 0..<across.count[x] { sum += wx[w + j] * input[row + first + j] }
                                    middle[y * width + x] = sum
                                }
                            }
                            let base = p * height * width
                            for y in 0..<height {
                                let target = base + y * width
                                for x in 0..<width { out[target + x] = 0 }
                                let first = down.first[y], w = y * down.stride
                                for j in 0..<down.count[y] {
                                    let weight = wy[w + j], from = (first + j) * width
                                    for x in 0..<width { out[target + x] += weight * middle[from + x] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The image resized so that its shorter side is `shorterSide` pixels, keeping its aspect
/// ratio (torchvision's `Resize(size)` with one number: the longer side is truncated).
public func resize(_ image: Tensor, shorterSide: Int, antialias: Bool = true) throws -> Tensor {
    let (_, height, width) = try planes(of: image, operation: "resize")
    guard shorterSide > 0 else { throw EngineError.invalidArgument("resize needs a positive size, got \(shorterSide)") }
    let longer = Int(Double(shorterSide) * Double(Swift.max(height, width)) / Double(Swift.max(Swift.min(height, width), 1)))
    return height <= width
        ? try resize(image, height: shorterSide, width: longer, antialias: antialias)
        : try resize(image, height: longer, width: shorterSide, antialias: antialias)
}

/// The central `height` x `width` region of the image (or of every image of a batch).
/// When the margin is odd the extra pixel goes where torchvision's `CenterCrop` puts it.
public func centerCrop(_ image: Tensor, height: Int, width: Int) throws -> Tensor {
    let (planeCount, inputHeight, inputWidth) = try planes(of: image, operation: "centerCrop")
    guard height > 0, width > 0, height <= inputHeight, width <= inputWidth else {
        throw EngineError.invalidArgument(
            "cannot crop \(height) x \(width) pixels from an image of \(inputHeight) x \(inputWidth); resize it first")
    }
    // Python's round(), which rounds halves to even.
    let top = Int((Double(inputHeight - height) / 2).rounded(.toNearestOrEven))
    let left = Int((Double(inputWidth - width) / 2).rounded(.toNearestOrEven))
    return Tensor(shape: Array(image.shape.dropLast(2)) + [height, width]) { out in
        image.withUnsafeBufferPointer { source in
            for p in 0..<planeCount {
                for y in 0..<height {
                    let from = p * inputHeight * inputWidth + (top + y) * inputWidth + left
                    let to = (p * height + y) * width
                    for x in 0..<width { out[to + x] = source[from + x] }
                }
            }
        }
    }
}

/// The image enlarged `factor` times by repeating pixels: each pixel becomes a
/// factor x factor block, so a 5x5 filter stays crisp when shown big.
public func upscale(_ image: Tensor, by factor: Int) throws -> Tensor {
    let (planeCount, height, width) = try planes(of: image, operation: "upscale")
    guard factor >= 1 else { throw EngineError.invalidArgument("upscale needs a factor of at least 1, got \(factor)") }
    if factor == 1 { return image }
    let outWidth = width * factor
    return Tensor(shape: Array(image.shape.dropLast(2)) + [height * factor, outWidth]) { out in
        image.withUnsafeBufferPointer { source in
            for p in 0..<planeCount {
                for y in 0..<height {
                    let from = (p * height + y) * width
                    let firstRow = (p * height * factor + y * factor) * outWidth
                    for x in 0..<outWidth { out[firstRow + x] = source[from + x / factor] }
                    for r in 1..<factor {
                        let to = firstRow + r * outWidth
                        for x in 0..<outWidth { out[to + x] = out[firstRow + x] }
                    }
                }
            }
        }
    }
}
