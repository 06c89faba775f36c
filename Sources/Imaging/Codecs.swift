// The bridge to the C decoders (Sources/CImageCodecs) and to libpng's simplified
// writer, which reports failure through its return value and never longjmps.
import CImageCodecs
import CPNG
import Engine

/// Samples as a decoder produced them: interleaved, 8 or 16 bits.
struct DecodedImage {
    var width: Int
    var height: Int
    var channels: Int
    /// Each sample divided by its maximum (255 or 65535), interleaved HWC.
    var samples: [Float]

    init(png bytes: [UInt8], name: String) throws {
        try self.init(bytes, name: name, format: "PNG", decoder: cnnlab_png_decode)
    }

    init(jpeg bytes: [UInt8], name: String) throws {
        try self.init(bytes, name: name, format: "JPEG", decoder: cnnlab_jpeg_decode)
    }

    private init(_ bytes: [UInt8], name: String, format: String,
                 decoder: (UnsafePointer<UInt8>?, Int, Int, UnsafeMutablePointer<cnnlab_decoded_image>?) -> Int32) throws {
        var image = cnnlab_decoded_image()
        let ok = bytes.withUnsafeBufferPointer { decoder($0.baseAddress, $0.count, ImageFile.maximumPixels, &image) }
        defer { cnnlab_image_release(&image) }
        guard ok == 1, let pixels = image.pixels else {
            let message = withUnsafeBytes(of: image.error) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if image.too_large != 0 {
                throw ImageFileError(path: name, reason: "\(message) (\(ImageFile.pixelLimitPhrase))")
            }
            throw ImageFileError(path: name, reason: "not a valid \(format) file: \(message)")
        }
        width = image.width
        height = image.height
        channels = Int(image.channels)
        let count = width * height * channels
        if image.bit_depth == 16 {
            // Two bytes per sample, most significant first.
            samples = [Float](unsafeUninitializedCapacity: count) { out, initialized in
                // Division rather than multiplication by 1/65535, so every level k maps to
                // exactly the Float nearest to k/65535.
                for i in 0..<count {
                    out[i] = Float(UInt16(pixels[2 * i]) << 8 | UInt16(pixels[2 * i + 1])) / 65535
                }
                initialized = count
            }
        } else {
            samples = [Float](unsafeUninitializedCapacity: count) { out, initialized in
                for i in 0..<count { out[i] = Float(pixels[i]) / 255 }
                initialized = count
            }
        }
    }

    /// The [C, H, W] tensor, with the alpha channel (if any) handled as asked.
    func tensor(alpha: AlphaHandling) -> Tensor {
        let hasAlpha = channels == 2 || channels == 4
        let colour = hasAlpha ? channels - 1 : channels
        let plane = width * height
        let all = deinterleave(samples, height: height, width: width, channels: channels)
        guard hasAlpha else { return all }
        switch alpha {
        case .keep:
            return all
        case .drop:
            return Tensor(shape: [colour, height, width], scalars: Array(all.scalars[0..<(colour * plane)]))
        case .composite(let background):
            // out = a·colour + (1 − a)·background
            return Tensor(shape: [colour, height, width]) { out in
                all.withUnsafeBufferPointer { source in
                    let a = UnsafeBufferPointer(rebasing: source[(colour * plane)...])
                    for c in 0..<colour {
                        for i in 0..<plane {
                            out[c * plane + i] = a[i] * source[c * plane + i] + (1 - a[i]) * background
                        }
                    }
                }
            }
        }
    }
}

/// HWC samples to a CHW tensor.
func deinterleave(_ samples: [Float], height: Int, width: Int, channels: Int) -> Tensor {
    let plane = height * width
    return Tensor(shape: [channels, height, width]) { out in
        samples.withUnsafeBufferPointer { source in
            for c in 0..<channels {
                for i in 0..<plane { out[c * plane + i] = source[i * channels + c] }
            }
        }
    }
}

enum PNGEncoder {
    /// An 8-bit PNG of interleaved samples with 1 to 4 channels, through libpng's simplified writer.
    static func encode(_ samples: [UInt8], width: Int, height: Int, channels: Int) throws -> [UInt8] {
        let formats: [UInt32] = [
            0,                                                  // gray
            PNG_FORMAT_FLAG_ALPHA,                              // gray + alpha
            PNG_FORMAT_FLAG_COLOR,                              // RGB
            PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA,      // RGBA
        ]
        guard (1...4).contains(channels), width > 0, height > 0,
              width <= Int(UInt32.max), height <= Int(UInt32.max), samples.count == width * height * channels else {
            throw EngineError.invalidArgument("cannot encode \(width) x \(height) pixels with \(channels) channels as PNG")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = formats[channels - 1]

        // The first call, without a buffer, only measures the file.
        var size: png_alloc_size_t = 0
        let measured = samples.withUnsafeBytes { raw in
            png_image_write_to_memory(&image, nil, &size, 0, raw.baseAddress, 0, nil)
        }
        guard measured != 0, size > 0 else { throw EngineError.invalidArgument("PNG encoding failed: \(message(of: image))") }
        var file = [UInt8](repeating: 0, count: Int(size))
        let written = file.withUnsafeMutableBytes { target in
            samples.withUnsafeBytes { raw in
                png_image_write_to_memory(&image, target.baseAddress, &size, 0, raw.baseAddress, 0, nil)
            }
        }
        guard written != 0 else { throw EngineError.invalidArgument("PNG encoding failed: \(message(of: image))") }
        return Array(file.prefix(Int(size)))
    }

    private static func message(of image: png_image) -> String {
        withUnsafeBytes(of: image.message) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
