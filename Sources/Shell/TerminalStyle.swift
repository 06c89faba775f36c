import Foundation
import Script

/// Colours for prompts and errors: on when the output is a terminal, TERM is not "dumb" and
/// NO_COLOR is unset or empty (https://no-color.org).
public struct TerminalStyle {
    public let enabled: Bool

    public init(enabled: Bool) { self.enabled = enabled }

    /// The style for a file descriptor, from the environment.
    public static func detect(descriptor: Int32, environment: [String: String] = ProcessInfo.processInfo.environment) -> TerminalStyle {
        let noColor = !(environment["NO_COLOR"] ?? "").isEmpty
        let dumb = environment["TERM"] == "dumb"
        return TerminalStyle(enabled: isatty(descriptor) != 0 && !noColor && !dumb)
    }

    public static let bold = "1", red = "31", green = "32", yellow = "33", blue = "34", magenta = "35", cyan = "36", dim = "2"

    /// `text` in the SGR attributes `codes` (such as "1;31"), or as it is when colours are off.
    public func paint(_ text: String, _ codes: String) -> String {
        enabled && !text.isEmpty ? "\u{1B}[\(codes)m\(text)\u{1B}[0m" : text
    }

    /// A prompt for readline: the escapes are bracketed by \001 and \002 so that readline
    /// does not count them as columns.
    public func prompt(_ text: String, _ codes: String) -> String {
        enabled ? "\u{01}\u{1B}[\(codes)m\u{02}\(text)\u{01}\u{1B}[0m\u{02}" : text
    }

    /// A diagnostic as `Diagnostic.rendered()` writes it, with its place in bold, its kind in
    /// red (yellow for an interruption) and the caret line in red.
    public func diagnostic(_ d: Diagnostic) -> String {
        let plain = d.rendered()
        guard enabled else { return plain }
        let kindColor = d.kind == .interrupted ? TerminalStyle.yellow : TerminalStyle.red
        var lines: [String] = []
        for (i, line) in plain.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var l = String(line)
            let marker = ": \(d.kind.rawValue): "
            if i == 0, let r = l.range(of: marker) {
                l = paint(String(l[..<r.lowerBound]), TerminalStyle.bold) + ": " + paint(d.kind.rawValue, "1;" + kindColor) + ": " + paint(String(l[r.upperBound...]), TerminalStyle.bold)
            } else if i == 0, l.hasPrefix(d.kind.rawValue + ": ") {
                l = paint(d.kind.rawValue, "1;" + kindColor) + ": " + paint(String(l.dropFirst(d.kind.rawValue.count + 2)), TerminalStyle.bold)
            } else if let bar = l.firstIndex(of: "|"), l[l.index(after: bar)...].trimmingCharacters(in: .whitespaces).allSatisfy({ $0 == "^" }),
                      l[l.index(after: bar)...].contains("^") {
                let caret = l[bar...].firstIndex(of: "^") ?? l.endIndex
                l = String(l[..<caret]) + paint(String(l[caret...]), kindColor)
            } else if l.hasPrefix("  called from ") {
                l = paint(l, TerminalStyle.dim)
            }
            lines.append(l)
        }
        return lines.joined(separator: "\n")
    }
}

/// The terminal's size in character cells and, where the terminal says, in pixels.
struct TerminalSize {
    var columns: Int
    var rows: Int
    var pixelWidth: Int
    var pixelHeight: Int

    static func of(descriptor: Int32) -> TerminalSize? {
        var size = winsize()
        guard ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return TerminalSize(columns: Int(size.ws_col), rows: Int(size.ws_row), pixelWidth: Int(size.ws_xpixel), pixelHeight: Int(size.ws_ypixel))
    }
}
