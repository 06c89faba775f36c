import Engine
import Foundation
import Imaging
import Script

/// Where text goes: a file descriptor, or a string in tests.
public protocol TextOutput: AnyObject {
    func write(_ text: String)
}

/// Writes to a file descriptor (stdout, stderr) without buffering, so output and errors
/// interleave on a terminal in the order they happen.
public final class DescriptorOutput: TextOutput {
    let descriptor: Int32
    public init(_ descriptor: Int32) { self.descriptor = descriptor }
    public static let standardOutput = DescriptorOutput(1)
    public static let standardError = DescriptorOutput(2)

    public func write(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return Foundation.write(descriptor, base + offset, buffer.count - offset)
            }
            if n < 0 { if errno == EINTR { continue }; return }
            if n == 0 { return }
            offset += n
        }
    }
}

/// Collects text, for tests.
public final class StringOutput: TextOutput {
    public private(set) var text = ""
    public init() {}
    public func write(_ text: String) { self.text += text }
}

/// Renders the interpreter's events as text: output and values on one stream, errors and
/// progress bars on the other, and pictures as files whose paths are printed.
public final class EventPrinter: EventSink {
    let output: TextOutput
    let errors: TextOutput
    /// Whether progress bars are drawn (only when the error stream is a terminal).
    let showsProgress: Bool
    /// Saves a picture and returns the path to print, or throws.
    var saveImage: (ImageOutput) throws -> String
    /// Set when a picture could not be written, so the run can end with an error status.
    public private(set) var failedWrites = 0
    /// How an error is written: plain, or in colour on a terminal.
    var renderDiagnostic: (Diagnostic) -> String = { $0.rendered() }
    /// Draws a picture in the terminal before its path is printed (the shell does); nil
    /// writes only the path.
    var drawPicture: ((ImageOutput) throws -> String?)? = nil
    private var barVisible = false
    private var lastDraw = Date.distantPast

    init(output: TextOutput, errors: TextOutput, showsProgress: Bool, saveImage: @escaping (ImageOutput) throws -> String) {
        self.output = output
        self.errors = errors
        self.showsProgress = showsProgress
        self.saveImage = saveImage
    }

    private func clearBar() {
        if barVisible { errors.write("\r\u{1B}[2K"); barVisible = false }
    }

    public func emit(_ event: Event) {
        switch event {
        case .text(let t): clearBar(); output.write(t)
        case .value(let v): clearBar(); output.write(v.text + "\n")
        case .error(let d): clearBar(); errors.write(renderDiagnostic(d))
        case .image(let image):
            clearBar()
            if let drawPicture {
                do { if let picture = try drawPicture(image) { output.write(picture) } }
                catch { errors.write("error: could not draw the picture in the terminal: \(error)\n") }
            }
            do {
                let path = try saveImage(image)
                output.write("image \(image.width)x\(image.height): \(path)\n")
            } catch {
                failedWrites += 1
                errors.write("error: could not save a picture: \(error)\n")
            }
        case .progress(let p):
            guard showsProgress else { return }
            if p.finished { clearBar(); return }
            // Redraw at most 20 times a second: a terminal is slower than a tight loop.
            let now = Date()
            guard now.timeIntervalSince(lastDraw) > 0.05 || p.completed == p.total else { return }
            lastDraw = now
            errors.write("\r\u{1B}[2K" + EventPrinter.bar(p))
            barVisible = true
        }
    }

    /// "classviz [#########...........] 45/100 loss 0.23"
    static func bar(_ p: ProgressUpdate, width: Int = 24) -> String {
        var line = p.label + " "
        if let total = p.total, total > 0 {
            let filled = min(width, p.completed * width / total)
            line += "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(p.completed)/\(total)"
        } else {
            line += "\(p.completed)"
        }
        if !p.status.isEmpty { line += " " + p.status }
        return line
    }
}

/// Writes a picture as a PNG file, creating its folder.
func writePicture(_ image: ImageOutput, to path: String) throws {
    let folder = (path as NSString).deletingLastPathComponent
    if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
    try ImageFile.writePNG(image.pixels, to: path)
}
