import CSixel
import Engine
import Foundation
import Imaging

/// How a terminal can show a picture.
public enum PictureProtocol: String, CaseIterable, Sendable {
    /// kitty's graphics protocol (kitty, and terminals that copied it).
    case kitty
    /// iTerm2's inline images (iTerm2, WezTerm).
    case iterm
    /// DEC sixel graphics through libsixel (mlterm, foot, xterm -ti vt340, ...).
    case sixel
    /// Unicode upper half blocks in 24-bit colour: two pixels a character cell, any modern terminal.
    case blocks
    /// No picture: only the path of the PNG file.
    case none

    /// The protocol for this terminal. CNN_PICTURES=kitty|iterm|sixel|blocks|none overrides
    /// what is guessed from TERM, TERM_PROGRAM and KITTY_WINDOW_ID.
    public static func detect(environment: [String: String] = ProcessInfo.processInfo.environment, isTerminal: Bool) -> PictureProtocol {
        if let forced = environment["CNN_PICTURES"].flatMap({ PictureProtocol(rawValue: $0.lowercased()) }) { return forced }
        guard isTerminal else { return .none }
        let term = environment["TERM"] ?? "", program = environment["TERM_PROGRAM"] ?? ""
        if term.isEmpty || term == "dumb" { return .none }
        // tmux and screen do not pass graphics through unless configured to; blocks always work.
        if environment["TMUX"] != nil || term.hasPrefix("screen") || term.hasPrefix("tmux") { return .blocks }
        if term == "xterm-kitty" || environment["KITTY_WINDOW_ID"] != nil { return .kitty }
        if program == "iTerm.app" || program == "WezTerm" { return .iterm }
        if term.contains("sixel") || term.hasPrefix("mlterm") || term.hasPrefix("foot") { return .sixel }
        return .blocks
    }
}

/// Renders pictures for a terminal: the bytes to write to it, escape sequences included.
public struct TerminalPictures {
    public let mode: PictureProtocol
    /// The terminal's width in columns (and in pixels, when it says).
    var columns: Int
    var rows: Int
    var pixelWidth: Int

    public init(mode: PictureProtocol, columns: Int = 80, rows: Int = 0, pixelWidth: Int = 0) {
        self.mode = mode
        self.columns = max(8, columns)
        self.rows = rows
        self.pixelWidth = pixelWidth
    }

    /// The pictures for the terminal on `descriptor`, sized to it.
    public static func forTerminal(descriptor: Int32) -> TerminalPictures {
        let size = TerminalSize.of(descriptor: descriptor)
        return TerminalPictures(mode: .detect(isTerminal: isatty(descriptor) != 0),
                                columns: size?.columns ?? 80, rows: size?.rows ?? 0, pixelWidth: size?.pixelWidth ?? 0)
    }

    /// The text that draws `image` ([1, H, W] or [3, H, W], values in [0, 1]), ending with a
    /// new line; nil for `.none`.
    public func render(_ image: Tensor) throws -> String? {
        let rgb = image.rank == 3 && image.shape[0] == 1 ? try toRGB(image) : image
        guard rgb.rank == 3, rgb.shape[0] == 3, rgb.shape[1] > 0, rgb.shape[2] > 0 else {
            throw EngineError.shapeMismatch("a picture is [1, H, W] or [3, H, W], got \(image.shape)")
        }
        switch mode {
        case .none: return nil
        case .blocks: return try halfBlocks(rgb)
        case .kitty: return try kitty(try enlarged(rgb))
        case .iterm: return try iterm(try enlarged(rgb))
        case .sixel: return try sixel(try enlarged(rgb))
        }
    }

    /// Small pictures (a 28x28 digit, a 5x5 filter) enlarged by whole pixels for the graphics
    /// protocols, to about 200 pixels, and never wider than the terminal.
    func enlarged(_ rgb: Tensor) throws -> Tensor {
        let side = max(rgb.shape[1], rgb.shape[2])
        var factor = max(1, min(8, 200 / side))
        if pixelWidth > 0 { factor = max(1, min(factor, pixelWidth / max(1, rgb.shape[2]))) }
        return try upscale(rgb, by: factor)
    }

    // MARK: kitty

    /// The PNG in base64 chunks of at most 4096 bytes, each an APC "G" command; `a=T`
    /// transmits and displays, `f=100` says PNG, `m=1` that more chunks follow.
    func kitty(_ rgb: Tensor) throws -> String {
        let encoded = Data(try ImageFile.encodePNG(rgb)).base64EncodedString()
        var out = ""
        var index = encoded.startIndex
        var first = true
        while index < encoded.endIndex {
            let next = encoded.index(index, offsetBy: 4096, limitedBy: encoded.endIndex) ?? encoded.endIndex
            let more = next < encoded.endIndex ? 1 : 0
            out += "\u{1B}_G" + (first ? "a=T,f=100,q=2," : "") + "m=\(more);" + encoded[index..<next] + "\u{1B}\\"
            first = false
            index = next
        }
        return out + "\n"
    }

    // MARK: iTerm2

    /// OSC 1337 File=inline=1 with the PNG in base64, ended by BEL.
    func iterm(_ rgb: Tensor) throws -> String {
        let png = try ImageFile.encodePNG(rgb)
        return "\u{1B}]1337;File=inline=1;size=\(png.count);preserveAspectRatio=1:\(Data(png).base64EncodedString())\u{07}\n"
    }

    // MARK: sixel

    func sixel(_ rgb: Tensor) throws -> String {
        let height = rgb.shape[1], width = rgb.shape[2]
        var pixels = try rgb.interleavedBytes()
        let sink = SixelSink()
        var output: OpaquePointer?
        var dither: OpaquePointer?
        let opaque = Unmanaged.passUnretained(sink).toOpaque()
        guard sixel_output_new(&output, sixelWrite, opaque, nil) == 0, let output else {
            throw EngineError.invalidArgument("libsixel could not start an output")
        }
        defer { sixel_output_unref(output) }
        guard sixel_dither_new(&dither, 256, nil) == 0, let dither else {
            throw EngineError.invalidArgument("libsixel could not make a palette")
        }
        defer { sixel_dither_unref(dither) }
        let status = pixels.withUnsafeMutableBufferPointer { p -> Int32 in
            guard let base = p.baseAddress else { return -1 }
            let s = sixel_dither_initialize(dither, base, Int32(width), Int32(height), Int32(SIXEL_PIXELFORMAT_RGB888),
                                            Int32(SIXEL_LARGE_AUTO), Int32(SIXEL_REP_AUTO), Int32(SIXEL_QUALITY_AUTO))
            guard s == 0 else { return s }
            return sixel_encode(base, Int32(width), Int32(height), 3, dither, output)
        }
        withExtendedLifetime(sink) {}
        guard status == 0 else { throw EngineError.invalidArgument("libsixel could not encode the picture (status \(status))") }
        return String(decoding: sink.bytes, as: UTF8.self) + "\n"
    }

    // MARK: half blocks

    /// How many character cells wide a picture of `width` x `height` pixels is drawn: small
    /// pictures twice their size (a 28-pixel digit becomes 56 columns), never wider than the
    /// terminal, and, where the terminal says how tall it is, never taller than most of it.
    func blockColumns(forWidth width: Int, height: Int) -> Int {
        var wanted = width <= 48 ? width * 2 : width
        if rows > 4 {
            let tallest = (rows - 3) * 2  // pixel rows that fit, two a line
            if height * wanted > tallest * width { wanted = tallest * width / max(1, height) }
        }
        return max(1, min(wanted, columns - 1))
    }

    /// Each character cell is an upper half block (▀) whose foreground is the upper pixel and
    /// whose background is the lower one: a cell is about twice as tall as wide, so each half
    /// is about square.
    func halfBlocks(_ rgb: Tensor) throws -> String {
        let height = rgb.shape[1], width = rgb.shape[2]
        let targetWidth = blockColumns(forWidth: width, height: height)
        var targetHeight = max(1, Int((Double(height) * Double(targetWidth) / Double(width)).rounded()))
        if targetHeight % 2 == 1 { targetHeight += 1 }
        let sized: Tensor
        if targetWidth % width == 0, targetHeight == height * (targetWidth / width) {
            sized = try upscale(rgb, by: targetWidth / width)
        } else {
            sized = try resize(rgb, height: targetHeight, width: targetWidth, antialias: targetWidth < width)
        }
        let h = sized.shape[1], w = sized.shape[2]
        let bytes = try sized.interleavedBytes()
        func pixel(_ y: Int, _ x: Int) -> (UInt8, UInt8, UInt8) {
            guard y < h else { return (0, 0, 0) }
            let i = (y * w + x) * 3
            return (bytes[i], bytes[i + 1], bytes[i + 2])
        }
        var out = ""
        out.reserveCapacity(w * h * 20)
        for y in stride(from: 0, to: h, by: 2) {
            var lastTop: (UInt8, UInt8, UInt8)? = nil, lastBottom: (UInt8, UInt8, UInt8)? = nil
            for x in 0..<w {
                let top = pixel(y, x), bottom = pixel(y + 1, x)
                if lastTop.map({ $0 != top }) ?? true { out += "\u{1B}[38;2;\(top.0);\(top.1);\(top.2)m"; lastTop = top }
                if lastBottom.map({ $0 != bottom }) ?? true { out += "\u{1B}[48;2;\(bottom.0);\(bottom.1);\(bottom.2)m"; lastBottom = bottom }
                out += "▀"
            }
            out += "\u{1B}[0m\n"
        }
        return out
    }
}

/// Collects what libsixel writes.
private final class SixelSink {
    var bytes: [UInt8] = []
}

private let sixelWrite: sixel_write_function = { data, size, context in
    guard let data, let context, size > 0 else { return 0 }
    let sink = Unmanaged<SixelSink>.fromOpaque(context).takeUnretainedValue()
    data.withMemoryRebound(to: UInt8.self, capacity: Int(size)) { sink.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: Int(size))) }
    return size
}
