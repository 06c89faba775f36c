// Pictures made of many tiles: a layer's filters, a layer's activations, or any list of
// images, laid out in rows with padding, a background, and optional labels.
import Engine

/// Where each tile of a grid goes. Cells in one column share the column's width (the widest
/// tile or label in it), cells in one row the row's height; tiles are centred in their cell,
/// labels centred below the tile area.
struct GridLayout {
    var columns: Int
    var rows: Int
    var columnWidths: [Int]
    var tileAreaHeights: [Int]
    var labelBand: Int
    var padding: Int

    init(sizes: [(height: Int, width: Int)], labelWidths: [Int]?, columns: Int, padding: Int, labelScale: Int) {
        self.columns = columns
        self.padding = padding
        rows = (sizes.count + columns - 1) / columns
        columnWidths = [Int](repeating: 0, count: columns)
        tileAreaHeights = [Int](repeating: 0, count: rows)
        // One font height of text with a gap of `labelScale` pixels above and below.
        labelBand = labelWidths == nil ? 0 : (BitmapFont.glyphHeight + 2) * labelScale
        for (i, size) in sizes.enumerated() {
            let labelWidth = labelWidths?[i] ?? 0
            columnWidths[i % columns] = Swift.max(columnWidths[i % columns], size.width, labelWidth)
            tileAreaHeights[i / columns] = Swift.max(tileAreaHeights[i / columns], size.height)
        }
    }

    var width: Int { columnWidths.reduce(0, +) + (columns + 1) * padding }
    var height: Int { tileAreaHeights.reduce(0, +) + rows * labelBand + (rows + 1) * padding }

    /// The top-left corner of cell `index`.
    func cellOrigin(_ index: Int) -> (top: Int, left: Int) {
        let row = index / columns, column = index % columns
        let top = padding + (0..<row).reduce(0) { $0 + tileAreaHeights[$1] + labelBand + padding }
        let left = padding + columnWidths[0..<column].reduce(0) { $0 + $1 + padding }
        return (top, left)
    }
}

/// One picture of `tiles` (each [C, H, W] or [H, W]; gray and colour may be mixed, sizes may
/// differ) in rows of `columns` (default: a square-ish grid), `padding` pixels apart and
/// around, on a `background` gray level. Each tile may carry a label drawn below it in the
/// built-in pixel font, each font pixel `labelScale` pixels wide. Values are used as they are:
/// bring data into [0, 1] first (`rescaled`).
public func grid(_ tiles: [Tensor], columns: Int? = nil, padding: Int = 2, background: Float = 1,
                 labels: [String]? = nil, labelScale: Int = 1) throws -> Tensor {
    guard !tiles.isEmpty else { throw EngineError.invalidArgument("a grid needs at least one tile") }
    let columns = Swift.min(columns ?? Int(Double(tiles.count).squareRoot().rounded(.up)), tiles.count)
    guard columns >= 1 else { throw EngineError.invalidArgument("a grid needs at least one column") }
    guard padding >= 0, labelScale >= 1 else {
        throw EngineError.invalidArgument("a grid needs padding >= 0 and label scale >= 1, got \(padding) and \(labelScale)")
    }
    if let labels = labels, labels.count != tiles.count {
        throw EngineError.shapeMismatch("\(labels.count) labels for \(tiles.count) tiles")
    }
    let dimensions = try tiles.map { try imageDimensions($0, allowingAlpha: true) }
    let channels = dimensions.contains { $0.channels >= 3 } ? 3 : 1
    let layout = GridLayout(sizes: dimensions.map { ($0.height, $0.width) },
                            labelWidths: labels?.map { BitmapFont.width(of: $0, scale: labelScale) },
                            columns: columns, padding: padding, labelScale: labelScale)
    let height = layout.height, width = layout.width, plane = height * width
    var picture = Tensor(repeating: background, shape: [channels, height, width])

    for (index, tile) in tiles.enumerated() {
        let converted = channels == 3 ? try toRGB(tile) : try toGray(tile)
        let (tileHeight, tileWidth) = (dimensions[index].height, dimensions[index].width)
        let (cellTop, cellLeft) = layout.cellOrigin(index)
        let top = cellTop + (layout.tileAreaHeights[index / columns] - tileHeight) / 2
        let left = cellLeft + (layout.columnWidths[index % columns] - tileWidth) / 2
        picture.withUnsafeMutableBufferPointer { out in
            converted.withUnsafeBufferPointer { source in
                for c in 0..<channels {
                    for y in 0..<tileHeight {
                        let from = (c * tileHeight + y) * tileWidth
                        let to = c * plane + (top + y) * width + left
                        for x in 0..<tileWidth { out[to + x] = source[from + x] }
                    }
                }
            }
        }
        if let label = labels?[index], !label.isEmpty {
            let textLeft = cellLeft + (layout.columnWidths[index % columns] - BitmapFont.width(of: label, scale: labelScale)) / 2
            let textTop = cellTop + layout.tileAreaHeights[index / columns] + labelScale
            try drawText(label, on: &picture, x: textLeft, y: textTop, color: [background > 0.5 ? 0 : 1], scale: labelScale)
        }
    }
    return picture
}

/// Images side by side in one row (sizes may differ; smaller ones are centred vertically).
public func row(_ images: [Tensor], padding: Int = 2, background: Float = 1, labels: [String]? = nil) throws -> Tensor {
    try grid(images, columns: images.count, padding: padding, background: background, labels: labels)
}

/// A layer's filters [K, C, kh, kw] as a picture. Three input channels give one colour tile
/// per filter; one gives one gray tile per filter; otherwise each filter is a row of C gray
/// tiles. Each filter is scaled into [0, 1] by `scaling` on its own, or all filters together
/// with `sharedScale` (to compare magnitudes), then enlarged `scale` times pixel by pixel.
/// `numbered` labels tiles with the filter index (and input channel: "5:2").
public func filterGrid(_ weights: Tensor, columns: Int? = nil, scale: Int = 1, padding: Int = 1, background: Float = 1,
                       scaling: DisplayScaling = .minMax, sharedScale: Bool = false, numbered: Bool = false) throws -> Tensor {
    let shape = weights.rank == 3 ? [weights.shape[0], 1, weights.shape[1], weights.shape[2]] : weights.shape
    guard shape.count == 4, shape.allSatisfy({ $0 > 0 }) else {
        throw EngineError.shapeMismatch("filters are [out channels, in channels, height, width]; got \(weights.shape)")
    }
    let (count, inputs, height, width) = (shape[0], shape[1], shape[2], shape[3])
    let filterSize = inputs * height * width
    let shared = sharedScale ? rescaled(weights, scaling) : nil
    var tiles: [Tensor] = []
    var labels: [String] = []
    for k in 0..<count {
        let filter = Tensor(shape: [inputs, height, width], scalars: Array(weights.scalars[(k * filterSize)..<((k + 1) * filterSize)]))
        let scaled = shared.map { Tensor(shape: [inputs, height, width], scalars: Array($0.scalars[(k * filterSize)..<((k + 1) * filterSize)])) }
            ?? rescaled(filter, scaling)
        if inputs == 1 || inputs == 3 {
            tiles.append(try upscale(scaled, by: scale))
            labels.append("\(k)")
        } else {
            for c in 0..<inputs {
                let channel = Tensor(shape: [1, height, width], scalars: Array(scaled.scalars[(c * height * width)..<((c + 1) * height * width)]))
                tiles.append(try upscale(channel, by: scale))
                labels.append("\(k):\(c)")
            }
        }
    }
    let defaultColumns = inputs == 1 || inputs == 3 ? nil : inputs
    return try grid(tiles, columns: columns ?? defaultColumns, padding: padding, background: background,
                    labels: numbered ? labels : nil)
}

/// A layer's activations [C, H, W] (or [1, C, H, W]) as a picture: one tile per channel,
/// each scaled into [0, 1] on its own (or all together with `sharedScale`), coloured by
/// `colormap`, and enlarged `scale` times. `numbered` labels tiles with the channel index.
public func activationGrid(_ activations: Tensor, columns: Int? = nil, scale: Int = 1, padding: Int = 1, background: Float = 1,
                           scaling: DisplayScaling = .minMax, sharedScale: Bool = false, colormap: Colormap = .gray,
                           numbered: Bool = false) throws -> Tensor {
    let shape = activations.rank == 4 && activations.shape[0] == 1 ? Array(activations.shape.dropFirst()) : activations.shape
    guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
        throw EngineError.shapeMismatch("activations are [C, H, W] or [1, C, H, W]; got \(activations.shape)")
    }
    let (channels, height, width) = (shape[0], shape[1], shape[2])
    let plane = height * width
    let shared = sharedScale ? rescaled(activations, scaling) : nil
    let tiles: [Tensor] = try (0..<channels).map { c in
        let values = Array((shared ?? activations).scalars[(c * plane)..<((c + 1) * plane)])
        var tile = Tensor(shape: [1, height, width], scalars: values)
        if shared == nil { tile = rescaled(tile, scaling) }
        if colormap != .gray { tile = try colormap.apply(tile) }
        return try upscale(tile, by: scale)
    }
    return try grid(tiles, columns: columns, padding: padding, background: background,
                    labels: numbered ? (0..<channels).map(String.init) : nil)
}
