// What a unit responds to across a data set (Zeiler and Fergus 2014, Fig. 2): the input
// regions that excite one channel most, each beside its deconvnet projection.
import Engine
import Imaging

/// Images that can be read a batch at a time, so a whole data set need not be in memory
/// twice (or at all).
public protocol ImageSource {
    /// How many images there are.
    var imageCount: Int { get }
    /// Images `range` as a batch [n, C, H, W] in display space.
    func images(in range: Range<Int>) throws -> Tensor
}

/// A batch of images in memory, [N, C, H, W] (e.g. an IDX data set's `images`), read in slices.
public struct TensorImages: ImageSource {
    public let images: Tensor
    /// The images [N, C, H, W]; any other rank is an error.
    public init(_ images: Tensor) throws {
        guard images.rank == 4 else { throw EngineError.shapeMismatch("expected images [N, C, H, W]; got \(images.shape)") }
        self.images = images
    }
    public var imageCount: Int { images.shape[0] }
    /// A copy of images `range`, [n, C, H, W].
    public func images(in range: Range<Int>) throws -> Tensor {
        guard range.lowerBound >= 0 && range.upperBound <= imageCount else {
            throw EngineError.invalidArgument("images \(range) are out of range 0..<\(imageCount)")
        }
        return batchSlice(images, range)
    }
}

/// Pictures read from files a batch at a time (a folder of photos), each made to fit the
/// network by `fit` (for example: resized and centre-cropped to its input size).
public struct FileImages: ImageSource {
    public let paths: [String]
    let fit: (Tensor) throws -> Tensor

    /// The files at `paths`, read when needed and passed through `fit`.
    public init(paths: [String], fit: @escaping (Tensor) throws -> Tensor) {
        self.paths = paths
        self.fit = fit
    }

    public var imageCount: Int { paths.count }

    public func images(in range: Range<Int>) throws -> Tensor {
        guard range.lowerBound >= 0 && range.upperBound <= imageCount else {
            throw EngineError.invalidArgument("images \(range) are out of range 0..<\(imageCount)")
        }
        var batch: [Tensor] = []
        for path in paths[range] {
            let image = try fit(try ImageFile.read(path))
            guard image.rank == 3, batch.first.map({ $0.shape == image.shape }) ?? true else {
                throw EngineError.shapeMismatch("\(path) gives an image \(image.shape), the others \(batch.first?.shape ?? []): every image must have one size")
            }
            batch.append(image)
        }
        guard let first = batch.first else { return Tensor(zeros: [0, 1, 1, 1]) }
        return Tensor(shape: [batch.count] + first.shape, scalars: batch.flatMap(\.scalars))
    }
}

/// One of the strongest responses of a channel.
public struct TopPatch {
    /// Which image, the unit's position in the feature map, and its activation.
    public let imageIndex: Int
    public let y: Int
    public let x: Int
    public let activation: Float
    /// The unit's receptive field on the image (top, left, height, width), moved inside the image
    /// where it reaches past an edge (see `regionInside`).
    public let region: (top: Int, left: Int, height: Int, width: Int)
    /// The image cropped to `region`, display space [C, h, w].
    public let patch: Tensor
    /// The unit's projection (the deconvnet's, see `deconv`, or guided backpropagation's),
    /// cropped to `region`, signed.
    public let projection: Tensor
}

/// The strongest responses of one channel over a set of images.
public struct TopPatches {
    /// Strongest first.
    public let patches: [TopPatch]
    /// The receptive field of the layer's units.
    public let receptiveField: ReceptiveField
    /// Images looked at, of how many; and whether the scan was cancelled before the end.
    public let imagesSeen: Int
    public let imageCount: Int
    public let cancelled: Bool

    /// Zeiler and Fergus's figure: the projections in a grid (each shown by
    /// `projectionPicture`, zero at mid-gray) beside the image patches in a grid of the same
    /// layout. Each tile is enlarged `scale` times by whole pixels; by default small patches are
    /// enlarged to about 96 pixels and large ones shrunk to 128, so every depth reads on a slide.
    public func picture(scale: Int? = nil) throws -> Tensor {
        guard !patches.isEmpty else { throw EngineError.invalidArgument("there are no patches to show") }
        let columns = Int(Double(patches.count).squareRoot().rounded(.up))
        let side = patches.map { Swift.max($0.patch.shape[1], $0.patch.shape[2]) }.max() ?? 1
        func sized(_ t: Tensor) throws -> Tensor {
            if let scale { return try upscale(t, by: scale) }
            if side > 128 {
                let f = 128 / Double(side)
                return try resize(t, height: Swift.max(1, Int(Double(t.shape[1]) * f)), width: Swift.max(1, Int(Double(t.shape[2]) * f)))
            }
            return try upscale(t, by: Swift.max(1, 96 / Swift.max(side, 1)))
        }
        let projections = try grid(patches.map { try sized(projectionPicture($0.projection)) }, columns: columns)
        let crops = try grid(patches.map { try sized($0.patch) }, columns: columns)
        return try row([projections, crops], padding: 6)
    }
}

/// The `k` images of `images` (display space [N, C, H, W]) whose units of `channel` in `layer`
/// respond most strongly. Each image counts once, by its strongest unit of the channel (the
/// max over positions, ties to the first in row-major order; ties between images to the
/// earlier image), so the k patches come from k different images, as in Zeiler and Fergus's
/// figures. Each comes with the image region the unit sees (its receptive field, moved inside
/// the image where it reaches past an edge) and the unit's projection cropped to that region: the deconvnet's (`rule`
/// .deconvnet, seeded with the activation, as Zeiler and Fergus do) or guided
/// backpropagation's (`rule` .guided, the unit's gradient). Streams the images
/// in batches of `batchSize`, keeping only the k best, and reports progress per batch
/// (objective: the k-th best activation so far); when cancelled, returns the best among the
/// images seen.
public func topPatches(_ network: Network, layer: String, channel: Int, images: ImageSource, k: Int = 9,
                       rule: ReLURule = .deconvnet, batchSize: Int = 256, control: LoopControl = LoopControl()) throws -> TopPatches {
    let input = NetworkInput(network)
    try input.checkLayer(layer)
    guard k >= 1, batchSize >= 1 else { throw EngineError.invalidArgument("topPatches needs k >= 1 and batch size >= 1, got \(k) and \(batchSize)") }
    guard rule == .deconvnet || rule == .guided else {
        throw EngineError.invalidArgument("top patches are projected by the deconvnet or by guided backpropagation, not by the \(rule.rawValue) gradient")
    }
    let n = images.imageCount
    guard n > 0 else { throw EngineError.invalidArgument("there are no images to look at") }
    let first = try images.images(in: 0..<1)
    guard first.rank == 4 else { throw EngineError.shapeMismatch("an image source must give batches [n, C, H, W]; got \(first.shape)") }
    let field = try receptiveField(network, layer: layer, inputShape: first.shape)

    // The best k so far, strongest first; (activation, image, y, x).
    var best: [(value: Float, image: Int, y: Int, x: Int)] = []
    var seen = 0, cancelled = false
    while seen < n {
        if control.isCancelled() { cancelled = true; break }
        let end = Swift.min(n, seen + batchSize)
        let out: Tensor
        do {
            let batch = try input.normalizeBatch(try images.images(in: seen..<end))
            out = try network.forward(Variable(batch), upTo: layer, context: ForwardContext(isCancelled: control.isCancelled)).value
        } catch EngineError.cancelled { cancelled = true; break }
        for (row, candidate) in try strongestPerImage(out, layer: layer, channel: channel).enumerated() where !candidate.value.isNaN {
            let entry = (value: candidate.value, image: seen + row, y: candidate.y, x: candidate.x)
            // Strongest first; an equal activation from a later image ranks after the earlier one.
            guard best.count < k || entry.value > best[best.count - 1].value else { continue }
            let at = best.firstIndex { entry.value > $0.value } ?? best.count
            best.insert(entry, at: at)
            if best.count > k { best.removeLast() }
        }
        seen = end
        control.progress(seen, n, best.last?.value ?? 0)
    }

    let patches = try best.map { b -> TopPatch in
        let image = try images.images(in: b.image..<(b.image + 1))
        guard image.shape == first.shape else {
            throw EngineError.shapeMismatch("image \(b.image) is \(image.shape), the first image \(first.shape): every image must have one size")
        }
        let projection = try project(input, try input.normalizeBatch(image), layer: layer, channel: channel,
                                     position: (b.y, b.x), rule: rule, seedWithActivation: rule == .deconvnet)
        let r = regionInside(field.region(y: b.y, x: b.x), height: image.shape[2], width: image.shape[3])
        return TopPatch(imageIndex: b.image, y: b.y, x: b.x, activation: b.value, region: r,
                        patch: crop(try image.reshaped(Array(image.shape.dropFirst())), r),
                        projection: crop(projection.projection, r))
    }
    return TopPatches(patches: patches, receptiveField: field, imagesSeen: seen, imageCount: n, cancelled: cancelled)
}

/// The `k` strongest responses of a channel over images in memory (see the `ImageSource` version).
public func topPatches(_ network: Network, layer: String, channel: Int, images: Tensor, k: Int = 9,
                       rule: ReLURule = .deconvnet, batchSize: Int = 256, control: LoopControl = LoopControl()) throws -> TopPatches {
    try topPatches(network, layer: layer, channel: channel, images: try TensorImages(images), k: k, rule: rule,
                   batchSize: batchSize, control: control)
}

/// For each image of a layer output [N, C, H, W] (or [N, F]), the largest activation of
/// `channel` and where it is (the first in row-major order).
func strongestPerImage(_ out: Tensor, layer: String, channel: Int) throws -> [(value: Float, y: Int, x: Int)] {
    guard out.rank == 4 || out.rank == 2 else {
        throw EngineError.shapeMismatch("layer '\(layer)' gives \(out.shape); expected [N, C, H, W] or [N, F]")
    }
    let (count, channels) = (out.shape[0], out.shape[1])
    guard channel >= 0 && channel < channels else {
        throw EngineError.invalidArgument("channel \(channel) is out of range: layer '\(layer)' has \(channels) channels, 0 to \(channels - 1)")
    }
    let (h, w) = out.rank == 4 ? (out.shape[2], out.shape[3]) : (1, 1)
    let plane = h * w
    return out.withUnsafeBufferPointer { p in
        (0..<count).map { i in
            let base = (i * channels + channel) * plane
            var arg = 0, value = p[base]
            for j in 1..<Swift.max(plane, 1) where p[base + j] > value || (value.isNaN && !p[base + j].isNaN) {
                value = p[base + j]; arg = j
            }
            return (value, arg / w, arg % w)
        }
    }
}

/// A region moved inside an image of height x width, keeping its size where the image is large
/// enough (so every patch of a layer is one size, as in Zeiler and Fergus's figures; a field
/// larger than the image becomes the whole image).
func regionInside(_ r: (top: Int, left: Int, height: Int, width: Int), height: Int, width: Int) -> (top: Int, left: Int, height: Int, width: Int) {
    let h = Swift.min(r.height, height), w = Swift.min(r.width, width)
    return (Swift.min(Swift.max(r.top, 0), height - h), Swift.min(Swift.max(r.left, 0), width - w), h, w)
}

/// A region clipped to an image of height x width.
func clippedRegion(_ r: (top: Int, left: Int, height: Int, width: Int), height: Int, width: Int) -> (top: Int, left: Int, height: Int, width: Int) {
    let top = Swift.max(r.top, 0), left = Swift.max(r.left, 0)
    let bottom = Swift.min(r.top + r.height, height), right = Swift.min(r.left + r.width, width)
    return (top, left, Swift.max(bottom - top, 0), Swift.max(right - left, 0))
}

/// The region of an image [C, H, W] (already clipped to it).
func crop(_ image: Tensor, _ r: (top: Int, left: Int, height: Int, width: Int)) -> Tensor {
    let (channels, height, width) = (image.shape[0], image.shape[1], image.shape[2])
    return Tensor(shape: [channels, r.height, r.width]) { out in
        image.withUnsafeBufferPointer { src in
            for c in 0..<channels { for y in 0..<r.height { for x in 0..<r.width {
                out[(c * r.height + y) * r.width + x] = src[(c * height + r.top + y) * width + r.left + x]
            }}}
        }
    }
}
