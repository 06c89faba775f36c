import Engine
import Foundation
import Imaging

/// Grids of results with a label under each tile: what a lecturer puts on a slide.
extension Builtins {
    /// The label a result carries for a grid: a record's `label` field (an inversion says its
    /// layer, a projection its layer and channel, a class model its class).
    static func carriedLabel(_ v: Value) -> String? {
        if case .record(let r) = v, case .string(let s)? = r["label"] { return s }
        return nil
    }

    /// What `net` calls a picture, with its probability: "lemon 0.97".
    static func predictedLabel(_ picture: Tensor, _ net: Network, _ ctx: CallContext) throws -> String {
        let input = try net.spec.map { try NetworkCalls.fitted(picture, to: $0) } ?? picture
        let scores = try NetworkCalls.apply(net, to: Variable(input), upTo: nil, normalize: true, context: ctx.forwardContext())
        guard scores.shape.count == 1 else {
            throw ScriptError("grid: the network gives scores of shape \(Display.shape(scores.shape)), not one per class", argument: "net")
        }
        let p = try softmax(scores, axis: 0).value
        let best = p.argmax()
        let names = net.spec?.classNames ?? []
        let name = best < names.count ? names[best] : String(best)
        return "\(name) \(String(format: "%.2f", Double(p.scalars[best])))"
    }

    /// The font scale that keeps labels readable under tiles of these widths: one font pixel
    /// per 100 pixels of a typical tile, 1 to 4.
    static func labelScale(forTiles tiles: [Tensor]) -> Int {
        let widths = tiles.map { $0.shape.last ?? 0 }.sorted()
        let typical = widths.isEmpty ? 0 : widths[widths.count / 2]
        return Swift.max(1, Swift.min(4, typical / 100))
    }

    /// Values as one picture, a tile each, labelled by `labels`, or else by what `net` calls each
    /// tile, or else by the labels the values carry (none when no value carries one). A labelled
    /// grid of small tiles enlarges them by whole pixels so the labels fit.
    static func labelledGrid(_ values: [Value], columns: Int? = nil, padding: Int = 2, labels: [String]? = nil,
                             net: Network? = nil, ctx: CallContext) throws -> Tensor {
        let tiles = try values.map(picture)
        var texts = labels
        if texts == nil, let net {
            texts = try tiles.map { try predictedLabel($0, net, ctx) }
        }
        if texts == nil {
            let carried = values.map(carriedLabel)
            if carried.contains(where: { $0 != nil }) { texts = carried.map { $0 ?? "" } }
        }
        guard let texts else { return try grid(tiles, columns: columns, padding: padding) }
        // Labels need room: small tiles (a 28 x 28 digit) are enlarged by whole pixels to about
        // 84 pixels, and the tiles kept a few pixels apart so neighbouring labels do not touch.
        let sides = tiles.map { Swift.max($0.shape[1], $0.shape[2]) }.sorted()
        let factor = Swift.max(1, 84 / Swift.max(1, sides[sides.count / 2]))
        let sized = try factor > 1 ? tiles.map { try upscale($0, by: factor) } : tiles
        let scale = labelScale(forTiles: sized)
        return try grid(sized, columns: columns, padding: Swift.max(padding, 3 * scale), labels: texts, labelScale: scale)
    }
}
