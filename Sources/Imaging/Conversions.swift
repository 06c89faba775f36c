// Conversions between tensors and interleaved bytes, and between gray and colour.
import Engine

/// The height, width and channel count of an image tensor: [C, H, W], or [H, W] for gray.
/// C may be 1 or 3, and also 2 or 4 (with alpha) when `allowingAlpha`.
func imageDimensions(_ image: Tensor, allowingAlpha: Bool = false) throws -> (height: Int, width: Int, channels: Int) {
    let allowed = allowingAlpha ? [1, 2, 3, 4] : [1, 3]
    let dimensions: (Int, Int, Int)
    switch image.rank {
    case 2: dimensions = (image.shape[0], image.shape[1], 1)
    case 3: dimensions = (image.shape[1], image.shape[2], image.shape[0])
    default: dimensions = (0, 0, 0)
    }
    let channelList = allowed.map(String.init).joined(separator: ", ")
    guard image.rank == 2 || image.rank == 3, allowed.contains(dimensions.2) else {
        throw EngineError.shapeMismatch("expected an image [C, H, W] with C in {\(channelList)}, or [H, W]; got \(image.shape)")
    }
    guard dimensions.0 > 0, dimensions.1 > 0 else {
        throw EngineError.shapeMismatch("the image \(image.shape) has no pixels")
    }
    return dimensions
}

extension Tensor {
    /// An image [C, H, W] with values in [0, 1] from interleaved 8-bit samples: row by row,
    /// pixel by pixel, `channels` bytes a pixel (the layout of most image libraries).
    public init(interleavedBytes bytes: [UInt8], height: Int, width: Int, channels: Int) throws {
        guard height > 0, width > 0, channels > 0, bytes.count == height * width * channels else {
            throw EngineError.shapeMismatch("\(bytes.count) bytes are not \(height) x \(width) pixels of \(channels) channels")
        }
        let plane = height * width
        self.init(shape: [channels, height, width]) { out in
            bytes.withUnsafeBufferPointer { source in
                // k / 255 exactly (a multiplication by 1/255 can be one unit in the last place off).
                for c in 0..<channels {
                    for i in 0..<plane { out[c * plane + i] = Float(source[i * channels + c]) / 255 }
                }
            }
        }
    }

    /// The image's samples as interleaved 8-bit values (row by row, pixel by pixel), each
    /// clamped to [0, 1] and rounded to the nearest of 256 levels. Accepts [C, H, W] or [H, W].
    public func interleavedBytes() throws -> [UInt8] {
        let (height, width, channels) = try imageDimensions(self, allowingAlpha: true)
        if scalars.contains(where: { $0.isNaN }) {
            throw EngineError.invalidArgument("the image contains NaN values, which have no colour")
        }
        let plane = height * width
        return [UInt8](unsafeUninitializedCapacity: plane * channels) { out, initialized in
            withUnsafeBufferPointer { source in
                for c in 0..<channels {
                    for i in 0..<plane {
                        let v = Swift.min(Swift.max(source[c * plane + i], 0), 1)
                        out[i * channels + c] = UInt8(v * 255 + 0.5)
                    }
                }
            }
            initialized = plane * channels
        }
    }
}

/// The image in colour, [3, H, W]: gray is repeated into the three channels, alpha is
/// dropped, and RGB is returned as it is. Accepts [C, H, W] or [H, W].
public func toRGB(_ image: Tensor) throws -> Tensor {
    let (height, width, channels) = try imageDimensions(image, allowingAlpha: true)
    if channels == 3 && image.rank == 3 { return image }
    let plane = height * width
    let sources = channels >= 3 ? [0, 1, 2] : [0, 0, 0]
    return Tensor(shape: [3, height, width]) { out in
        image.withUnsafeBufferPointer { source in
            for (c, from) in sources.enumerated() {
                for i in 0..<plane { out[c * plane + i] = source[from * plane + i] }
            }
        }
    }
}

/// The image in gray, [1, H, W], as luma Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601,
/// the weights PIL and torchvision use). Gray is returned as it is; alpha is dropped.
public func toGray(_ image: Tensor) throws -> Tensor {
    let (height, width, channels) = try imageDimensions(image, allowingAlpha: true)
    let plane = height * width
    if channels <= 2 {
        return Tensor(shape: [1, height, width], scalars: Array(image.scalars[0..<plane]))
    }
    return Tensor(shape: [1, height, width]) { out in
        image.withUnsafeBufferPointer { source in
            for i in 0..<plane {
                out[i] = 0.299 * source[i] + 0.587 * source[plane + i] + 0.114 * source[2 * plane + i]
            }
        }
    }
}
