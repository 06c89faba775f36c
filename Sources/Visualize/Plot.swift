// Charts as pictures: line charts (a loss curve, a class score over the steps of a class
// model) and horizontal bar charts (accuracy per class), with axes, ticks and labels in the
// built-in pixel font. Each returns a colour image [3, H, W] on white.
import Engine
import Foundation
import Imaging

/// Line colours, one per series in turn (matplotlib's first "tab10" colours).
let chartPalette: [[Float]] = [
    [0.12, 0.47, 0.71], [1.00, 0.50, 0.05], [0.17, 0.63, 0.17], [0.84, 0.15, 0.16], [0.58, 0.40, 0.74],
    [0.55, 0.34, 0.29], [0.89, 0.47, 0.76], [0.50, 0.50, 0.50], [0.74, 0.74, 0.13], [0.09, 0.75, 0.81],
]

/// A line chart of `values` against their step (1, 2, ...): a loss curve, a class score per step.
/// Non-finite values are left out (the line breaks there). See `plot(series:...)`.
public func plot(_ values: [Float], title: String? = nil, xLabel: String? = "step", yLabel: String? = nil,
                 width: Int = 480, height: Int = 300) throws -> Tensor {
    try plot(series: [values], names: nil, title: title, xLabel: xLabel, yLabel: yLabel, width: width, height: height)
}

/// A line chart of several series against their step (1, 2, ...), each in its own colour, with
/// a legend when `names` are given. The axes span the data's range (rounded out to tick
/// steps of 1, 2 or 5 times a power of ten); ticks and labels are drawn in the pixel font.
public func plot(series: [[Float]], names: [String]? = nil, title: String? = nil, xLabel: String? = "step",
                 yLabel: String? = nil, width: Int = 480, height: Int = 300) throws -> Tensor {
    let finite = series.flatMap { $0.filter(\.isFinite) }
    guard let low = finite.min(), let high = finite.max() else {
        throw EngineError.invalidArgument("a plot needs at least one finite value")
    }
    if let names, names.count != series.count {
        throw EngineError.shapeMismatch("\(names.count) names for \(series.count) series")
    }
    guard width >= 120, height >= 80 else { throw EngineError.invalidArgument("a plot needs at least 120 x 80 pixels, got \(width) x \(height)") }
    let longest = series.map(\.count).max() ?? 1
    let yTicks = niceTicks(low, high)
    let xTicks = niceTicks(1, Float(Swift.max(longest, 2)), integers: true)
    let (y0, y1) = (yTicks.first ?? low, yTicks.last ?? high)
    let (x0, x1) = (xTicks.first ?? 1, xTicks.last ?? Float(longest))

    let line = BitmapFont.height() + 4
    let yLabels = yTicks.map { tickLabel($0, step: yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1) }
    let left = (yLabels.map { BitmapFont.width(of: $0) }.max() ?? 0) + 10
    let top = 8 + (title == nil ? 0 : line) + (yLabel == nil ? 0 : line)
    let bottom = 8 + line + (xLabel == nil ? 0 : line)
    let right = 12
    let (plotW, plotH) = (width - left - right, height - top - bottom)
    guard plotW > 20, plotH > 20 else { throw EngineError.invalidArgument("the plot is too small for its labels") }
    func px(_ x: Float) -> Int { left + Int(((x - x0) / (x1 - x0) * Float(plotW - 1)).rounded()) }
    func py(_ y: Float) -> Int { top + plotH - 1 - Int(((y - y0) / (y1 - y0) * Float(plotH - 1)).rounded()) }

    var canvas = Canvas(width: width, height: height)
    for (t, label) in zip(yTicks, yLabels) {
        canvas.line(left, py(t), left + plotW - 1, py(t), color: [0.9, 0.9, 0.9])
        canvas.line(left - 4, py(t), left - 1, py(t), color: [0, 0, 0])
        try canvas.text(label, x: left - 6 - BitmapFont.width(of: label), y: py(t) - 3)
    }
    for t in xTicks {
        canvas.line(px(t), top, px(t), top + plotH - 1, color: [0.9, 0.9, 0.9])
        canvas.line(px(t), top + plotH, px(t), top + plotH + 3, color: [0, 0, 0])
        let label = tickLabel(t, step: 1)
        try canvas.text(label, x: px(t) - BitmapFont.width(of: label) / 2, y: top + plotH + 6)
    }
    canvas.line(left - 1, top, left - 1, top + plotH, color: [0, 0, 0])
    canvas.line(left - 1, top + plotH, left + plotW - 1, top + plotH, color: [0, 0, 0])

    for (s, values) in series.enumerated() {
        let colour = chartPalette[s % chartPalette.count]
        var previous: (Int, Int)? = nil
        for (i, v) in values.enumerated() {
            guard v.isFinite else { previous = nil; continue }
            let point = (px(Float(i + 1)), py(v))
            if let p = previous { canvas.line(p.0, p.1, point.0, point.1, color: colour, thick: true) }
            else { canvas.line(point.0, point.1, point.0, point.1, color: colour, thick: true) }
            previous = point
        }
    }
    if let names {
        for (s, name) in names.enumerated() {
            let y = top + 6 + s * line
            let x = left + plotW - BitmapFont.width(of: name) - 26
            canvas.line(x, y + 3, x + 14, y + 3, color: chartPalette[s % chartPalette.count], thick: true)
            try canvas.text(name, x: x + 18, y: y)
        }
    }
    if let title { try canvas.text(title, x: (width - BitmapFont.width(of: title)) / 2, y: 6) }
    if let yLabel { try canvas.text(yLabel, x: 4, y: top - line) }
    if let xLabel { try canvas.text(xLabel, x: left + (plotW - BitmapFont.width(of: xLabel)) / 2, y: height - line) }
    return canvas.pixels
}

/// A horizontal bar chart: one bar per value (e.g. accuracy per class), labelled on the left
/// with `labels` (default: the indices) and on the bar's end with the value. Bars start at
/// zero; negative values extend to the left of it.
public func bars(_ values: [Float], labels: [String]? = nil, title: String? = nil, width: Int = 480) throws -> Tensor {
    guard !values.isEmpty, values.allSatisfy(\.isFinite) else { throw EngineError.invalidArgument("a bar chart needs finite values") }
    let names = labels ?? values.indices.map(String.init)
    guard names.count == values.count else { throw EngineError.shapeMismatch("\(names.count) labels for \(values.count) bars") }
    let texts = values.map { formatNumber($0) }
    let rowHeight = BitmapFont.height() + 7
    let labelWidth = (names.map { BitmapFont.width(of: $0) }.max() ?? 0) + 8
    let valueWidth = (texts.map { BitmapFont.width(of: $0) }.max() ?? 0) + 6
    let top = 8 + (title == nil ? 0 : rowHeight)
    let height = top + values.count * rowHeight + 8
    let barArea = width - labelWidth - valueWidth - 16
    guard barArea > 20 else { throw EngineError.invalidArgument("the chart is too narrow for its labels; make it wider") }
    let low = Swift.min(0, values.min() ?? 0), high = Swift.max(0, values.max() ?? 0)
    let span = high > low ? high - low : 1
    func bx(_ v: Float) -> Int { labelWidth + 8 + Int(((v - low) / span * Float(barArea - 1)).rounded()) }

    var canvas = Canvas(width: width, height: height)
    if let title { try canvas.text(title, x: (width - BitmapFont.width(of: title)) / 2, y: 6) }
    for (i, v) in values.enumerated() {
        let y = top + i * rowHeight
        try canvas.text(names[i], x: labelWidth - BitmapFont.width(of: names[i]), y: y + 3)
        let (a, b) = (Swift.min(bx(0), bx(v)), Swift.max(bx(0), bx(v)))
        canvas.fill(x: a, y: y + 1, width: Swift.max(b - a, 1), height: rowHeight - 3, color: chartPalette[0])
        try canvas.text(texts[i], x: v >= 0 ? b + 4 : a - 4 - BitmapFont.width(of: texts[i]), y: y + 3)
    }
    canvas.line(bx(0), top - 2, bx(0), top + values.count * rowHeight, color: [0, 0, 0])
    return canvas.pixels
}

/// Tick positions covering [low, high]: about five steps of 1, 2 or 5 times a power of ten
/// (Heckbert's "nice numbers"), starting at or below low and ending at or above high.
func niceTicks(_ low: Float, _ high: Float, integers: Bool = false) -> [Float] {
    var (a, b) = (Double(low), Double(high))
    if a == b { let pad = a == 0 ? 1 : abs(a) * 0.1; a -= pad; b += pad }
    func nice(_ x: Double) -> Double {
        let e = floor(log10(x)), f = x / pow(10, e)
        let n: Double = f < 1.5 ? 1 : (f < 3 ? 2 : (f < 7 ? 5 : 10))
        return n * pow(10, e)
    }
    var step = nice((b - a) / 5)
    if integers { step = Swift.max(step.rounded(), 1) }
    let first = floor(a / step) * step, last = ceil(b / step) * step
    let count = Int(((last - first) / step).rounded())
    return (0...Swift.max(count, 1)).map { Float(first + Double($0) * step) }
}

/// A tick value with as many decimals as its step needs; very large or small values in
/// exponent form.
func tickLabel(_ v: Float, step: Float) -> String {
    if v == 0 { return "0" }
    let magnitude = Swift.max(abs(v), abs(step))
    if magnitude >= 1e6 || abs(step) < 1e-4 { return String(format: "%.1e", Double(v)) }
    let decimals = Swift.max(0, Int(ceil(-log10(Double(abs(step))) - 1e-9)))
    return String(format: "%.\(decimals)f", Double(v))
}

/// A white colour picture to draw on.
struct Canvas {
    let width: Int, height: Int
    var pixels: Tensor

    init(width: Int, height: Int) {
        self.width = width; self.height = height
        pixels = Tensor(ones: [3, height, width])
    }

    mutating func set(_ x: Int, _ y: Int, _ color: [Float]) {
        guard x >= 0, x < width, y >= 0, y < height else { return }
        for c in 0..<3 { pixels.scalars[(c * height + y) * width + x] = color[c] }
    }

    /// A straight line by Bresenham's algorithm, two pixels wide when `thick`.
    mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, color: [Float], thick: Bool = false) {
        var (x, y) = (x0, y0)
        let dx = abs(x1 - x0), dy = -abs(y1 - y0)
        let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var error = dx + dy
        while true {
            set(x, y, color)
            if thick { set(x + 1, y, color); set(x, y + 1, color); set(x + 1, y + 1, color) }
            if x == x1 && y == y1 { break }
            let e2 = 2 * error
            if e2 >= dy { error += dy; x += sx }
            if e2 <= dx { error += dx; y += sy }
        }
    }

    mutating func fill(x: Int, y: Int, width w: Int, height h: Int, color: [Float]) {
        for j in y..<(y + h) { for i in x..<(x + w) { set(i, j, color) } }
    }

    mutating func text(_ s: String, x: Int, y: Int) throws {
        try drawText(s, on: &pixels, x: x, y: y, color: [0.15, 0.15, 0.15])
    }
}
