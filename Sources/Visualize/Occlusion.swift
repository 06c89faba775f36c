// Occlusion sensitivity (Zeiler and Fergus 2014, §4.2): slide a square over the image and
// watch the class drop. No gradients: only forward passes, many at once.
import Engine
import Foundation

/// What occlusion measures of the class.
public enum OcclusionMeasure: String, CaseIterable, Sendable {
    /// The softmax probability of the class (Zeiler and Fergus's figure).
    case probability
    /// The score before the softmax.
    case score
}

/// Occlusion sensitivity: a `window` x `window` square filled with `fill` (a display value;
/// default the spec's mean, which the network sees as zero) is moved over the image by `stride`
/// pixels (a last position flush with the right and bottom edges is added so every pixel is
/// covered), and each position's drop m(I) - m(I occluded) of the class `measure` is credited to
/// the pixels it covered. Each pixel's value is the mean drop over the positions that covered
/// it, as Captum's `Occlusion` does: positive where hiding the pixel hurts the class.
/// Runs the occluded images in batches of `batchSize`, reporting progress per batch
/// (objective: the last drop); when cancelled, the map covers the positions done.
public func occlusion(_ network: Network, _ image: Tensor, class target: Int, window: Int = 6, stride: Int = 2,
                      fill: Float? = nil, measure: OcclusionMeasure = .probability, batchSize: Int = 64,
                      control: LoopControl = LoopControl()) throws -> HeatMap {
    let input = NetworkInput(network)
    let x = try input.batch(image)
    let (channels, height, width) = (x.shape[1], x.shape[2], x.shape[3])
    guard window >= 1, window <= Swift.min(height, width), stride >= 1, batchSize >= 1 else {
        throw EngineError.invalidArgument("occlusion needs 1 <= window <= \(Swift.min(height, width)) (the image side), stride >= 1 and batch size >= 1; got window \(window), stride \(stride)")
    }
    func starts(_ size: Int) -> [Int] {
        var s = Array(Swift.stride(from: 0, through: size - window, by: stride))
        if let last = s.last, last != size - window { s.append(size - window) }
        return s
    }
    let positions = starts(height).flatMap { top in starts(width).map { (top, $0) } }
    let fills = (0..<channels).map { c in fill.map { input.normalized($0, channel: c) } ?? 0 }

    func measured(_ scores: Tensor, row: Int) -> Float {
        let k = scores.shape[1]
        let s = Array(scores.scalars[(row * k)..<((row + 1) * k)])
        guard measure == .probability else { return s[target] }
        let m = s.max() ?? 0
        let total = s.reduce(Float(0)) { $0 + exp($1 - m) }
        return exp(s[target] - m) / total
    }
    let clean = try input.scores(x, isCancelled: control.isCancelled)
    try input.checkClass(target, classes: clean.shape[1])
    let base = measured(clean, row: 0)

    let plane = height * width
    var sum = [Float](repeating: 0, count: plane), count = [Float](repeating: 0, count: plane)
    var done = 0, cancelled = false
    while done < positions.count {
        if control.isCancelled() { cancelled = true; break }
        let chunk = positions[done..<Swift.min(positions.count, done + batchSize)]
        var batch = Tensor(zeros: [chunk.count, channels, height, width])
        batch.withUnsafeMutableBufferPointer { out in
            for (row, (top, left)) in chunk.enumerated() {
                for c in 0..<channels {
                    let offset = (row * channels + c) * plane
                    for i in 0..<plane { out[offset + i] = x.scalars[c * plane + i] }
                    for y in top..<(top + window) { for xx in left..<(left + window) { out[offset + y * width + xx] = fills[c] } }
                }
            }
        }
        let scores: Tensor
        do { scores = try input.scores(batch, isCancelled: control.isCancelled) } catch EngineError.cancelled { cancelled = true; break }
        var drop: Float = 0
        for (row, (top, left)) in chunk.enumerated() {
            drop = base - measured(scores, row: row)
            for y in top..<(top + window) { for xx in left..<(left + window) { sum[y * width + xx] += drop; count[y * width + xx] += 1 } }
        }
        done += chunk.count
        control.progress(done, positions.count, drop)
    }
    let map = Tensor(shape: [1, height, width], scalars: zip(sum, count).map { $1 > 0 ? $0 / $1 : 0 })
    return HeatMap(map: map, completed: done, total: positions.count, cancelled: cancelled)
}
