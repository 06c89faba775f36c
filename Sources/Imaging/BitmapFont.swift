// A 5x7 pixel font for printable ASCII, for labelling tiles ("3", "sneaker", "conv1:5").
// Each glyph is seven rows of five pixels, '#' on and '.' off, top row first.
// Letters with descenders (g j p q y) sit one or two rows higher so every glyph fits
// in the seven rows; glyphs are placed six pixels apart.
import Engine

/// The built-in pixel font.
public enum BitmapFont {
    /// Pixels across one glyph.
    public static let glyphWidth = 5
    /// Pixels down one glyph, from the top of a capital to the baseline.
    public static let glyphHeight = 7
    /// Horizontal distance from one glyph to the next: its width and a pixel of space.
    public static let advance = 6

    /// The glyphs of ASCII 32 (space) to 126 (tilde), in order.
    static let rows: [String] = [
        "..... ..... ..... ..... ..... ..... .....", // space
        "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..", // !
        ".#.#. .#.#. ..... ..... ..... ..... .....", // "
        ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.", // #
        "..#.. .#### #.#.. .###. ..#.# ####. ..#..", // $
        "##... ##..# ...#. ..#.. .#... #..## ...##", // %
        ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#", // &
        "..#.. ..#.. .#... ..... ..... ..... .....", // '
        "...#. ..#.. .#... .#... .#... ..#.. ...#.", // (
        ".#... ..#.. ...#. ...#. ...#. ..#.. .#...", // )
        "..... ..#.. #.#.# .###. #.#.# ..#.. .....", // *
        "..... ..#.. ..#.. ##### ..#.. ..#.. .....", // +
        "..... ..... ..... ..... .##.. ..#.. .#...", // ,
        "..... ..... ..... ##### ..... ..... .....", // -
        "..... ..... ..... ..... ..... .##.. .##..", // .
        "..... ....# ...#. ..#.. .#... #.... .....", // /
        ".###. #...# #..## #.#.# ##..# #...# .###.", // 0
        "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.", // 1
        ".###. #...# ....# ...#. ..#.. .#... #####", // 2
        "##### ...#. ..#.. ...#. ....# #...# .###.", // 3
        "...#. ..##. .#.#. #..#. ##### ...#. ...#.", // 4
        "##### #.... ####. ....# ....# #...# .###.", // 5
        "..##. .#... #.... ####. #...# #...# .###.", // 6
        "##### ....# ...#. ..#.. .#... .#... .#...", // 7
        ".###. #...# #...# .###. #...# #...# .###.", // 8
        ".###. #...# #...# .#### ....# ...#. .##..", // 9
        "..... .##.. .##.. ..... .##.. .##.. .....", // :
        "..... .##.. .##.. ..... .##.. ..#.. .#...", // ;
        "...#. ..#.. .#... #.... .#... ..#.. ...#.", // <
        "..... ..... ##### ..... ##### ..... .....", // =
        ".#... ..#.. ...#. ....# ...#. ..#.. .#...", // >
        ".###. #...# ....# ...#. ..#.. ..... ..#..", // ?
        ".###. #...# ....# .##.# #.#.# #.#.# .###.", // @
        ".###. #...# #...# ##### #...# #...# #...#", // A
        "####. #...# #...# ####. #...# #...# ####.", // B
        ".###. #...# #.... #.... #.... #...# .###.", // C
        "###.. #..#. #...# #...# #...# #..#. ###..", // D
        "##### #.... #.... ####. #.... #.... #####", // E
        "##### #.... #.... ####. #.... #.... #....", // F
        ".###. #...# #.... #.### #...# #...# .####", // G
        "#...# #...# #...# ##### #...# #...# #...#", // H
        ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.", // I
        "..### ...#. ...#. ...#. ...#. #..#. .##..", // J
        "#...# #..#. #.#.. ##... #.#.. #..#. #...#", // K
        "#.... #.... #.... #.... #.... #.... #####", // L
        "#...# ##.## #.#.# #.#.# #...# #...# #...#", // M
        "#...# #...# ##..# #.#.# #..## #...# #...#", // N
        ".###. #...# #...# #...# #...# #...# .###.", // O
        "####. #...# #...# ####. #.... #.... #....", // P
        ".###. #...# #...# #...# #.#.# #..#. .##.#", // Q
        "####. #...# #...# ####. #.#.. #..#. #...#", // R
        ".#### #.... #.... .###. ....# ....# ####.", // S
        "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..", // T
        "#...# #...# #...# #...# #...# #...# .###.", // U
        "#...# #...# #...# #...# #...# .#.#. ..#..", // V
        "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.", // W
        "#...# #...# .#.#. ..#.. .#.#. #...# #...#", // X
        "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..", // Y
        "##### ....# ...#. ..#.. .#... #.... #####", // Z
        ".###. .#... .#... .#... .#... .#... .###.", // [
        "..... #.... .#... ..#.. ...#. ....# .....", // backslash
        ".###. ...#. ...#. ...#. ...#. ...#. .###.", // ]
        "..#.. .#.#. #...# ..... ..... ..... .....", // ^
        "..... ..... ..... ..... ..... ..... #####", // _
        ".#... ..#.. ..... ..... ..... ..... .....", // `
        "..... ..... .###. ....# .#### #...# .####", // a
        "#.... #.... #.##. ##..# #...# #...# ####.", // b
        "..... ..... .###. #.... #.... #...# .###.", // c
        "....# ....# .##.# #..## #...# #...# .####", // d
        "..... ..... .###. #...# ##### #.... .###.", // e
        "..##. .#..# .#... ###.. .#... .#... .#...", // f
        "..... .#### #...# #...# .#### ....# .###.", // g
        "#.... #.... #.##. ##..# #...# #...# #...#", // h
        "..#.. ..... .##.. ..#.. ..#.. ..#.. .###.", // i
        "...#. ..... ..##. ...#. ...#. #..#. .##..", // j
        "#.... #.... #..#. #.#.. ##... #.#.. #..#.", // k
        ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.", // l
        "..... ..... ##.#. #.#.# #.#.# #...# #...#", // m
        "..... ..... #.##. ##..# #...# #...# #...#", // n
        "..... ..... .###. #...# #...# #...# .###.", // o
        "..... ####. #...# #...# ####. #.... #....", // p
        "..... .#### #...# #...# .#### ....# ....#", // q
        "..... ..... #.##. ##..# #.... #.... #....", // r
        "..... ..... .#### #.... .###. ....# ####.", // s
        ".#... .#... ###.. .#... .#... .#..# ..##.", // t
        "..... ..... #...# #...# #...# #..## .##.#", // u
        "..... ..... #...# #...# #...# .#.#. ..#..", // v
        "..... ..... #...# #...# #.#.# #.#.# .#.#.", // w
        "..... ..... #...# .#.#. ..#.. .#.#. #...#", // x
        "..... #...# #...# #...# .#### ....# .###.", // y
        "..... ..... ##### ...#. ..#.. .#... #####", // z
        "...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.", // {
        "..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..", // |
        ".#... ..#.. ..#.. ...#. ..#.. ..#.. .#...", // }
        "..... ..... .#... #.#.# ...#. ..... .....", // ~
    ]

    /// Each glyph as seven row bitmasks, bit 4 the leftmost pixel.
    static let glyphs: [[UInt8]] = rows.map { glyph in
        glyph.split(separator: " ").map { row in
            row.reduce(UInt8(0)) { bits, pixel in bits << 1 | (pixel == "#" ? 1 : 0) }
        }
    }

    /// The seven row bitmasks of `character` (bit 4 is the leftmost pixel); characters
    /// outside printable ASCII are drawn as '?'.
    public static func glyph(for character: Character) -> [UInt8] {
        guard let ascii = character.asciiValue, ascii >= 32, ascii <= 126 else { return glyphs[Int(UInt8(ascii: "?")) - 32] }
        return glyphs[Int(ascii) - 32]
    }

    /// The width in pixels of `text` drawn at `scale` (each font pixel a scale x scale block).
    public static func width(of text: String, scale: Int = 1) -> Int {
        text.isEmpty ? 0 : (text.count * advance - 1) * scale
    }

    /// The height in pixels of a line of text at `scale`.
    public static func height(scale: Int = 1) -> Int { glyphHeight * scale }
}

/// Draws `text` into an image [C, H, W] (or [H, W]) with its top-left corner at (`x`, `y`),
/// in `color` (one value, or one per channel), each font pixel a `scale` x `scale` block.
/// Pixels that fall outside the image are skipped.
public func drawText(_ text: String, on image: inout Tensor, x: Int, y: Int, color: [Float] = [1], scale: Int = 1) throws {
    let (height, width, channels) = try imageDimensions(image, allowingAlpha: true)
    guard color.count == 1 || color.count == channels else {
        throw EngineError.shapeMismatch("a text colour needs 1 or \(channels) values, got \(color.count)")
    }
    guard scale >= 1 else { throw EngineError.invalidArgument("text scale must be at least 1, got \(scale)") }
    let plane = height * width
    let colours = color.count == 1 ? [Float](repeating: color[0], count: channels) : color
    image.withUnsafeMutableBufferPointer { pixels in
        for (index, character) in text.enumerated() {
            let glyph = BitmapFont.glyph(for: character)
            let left = x + index * BitmapFont.advance * scale
            for (row, bits) in glyph.enumerated() where bits != 0 {
                for column in 0..<BitmapFont.glyphWidth where bits & (0b10000 >> UInt8(column)) != 0 {
                    for dy in 0..<scale {
                        let py = y + row * scale + dy
                        guard py >= 0 && py < height else { continue }
                        for dx in 0..<scale {
                            let px = left + column * scale + dx
                            guard px >= 0 && px < width else { continue }
                            for c in 0..<channels { pixels[c * plane + py * width + px] = colours[c] }
                        }
                    }
                }
            }
        }
    }
}
