import Engine
import Foundation
import Imaging
import Script

/// One output of a code cell, as a notebook keeps it and a Jupyter front end shows it.
public enum CellOutput {
    /// Printed text; consecutive texts of one stream are one output.
    case stream(name: String, text: String)
    /// A displayed value or picture: a Jupyter display_data, or the cell's execute_result
    /// when it is the last thing the cell produced.
    case data(DisplayData, isResult: Bool)
    case error(ErrorOutput)
}

/// What a value or picture looks like in each form a front end may want.
public struct DisplayData {
    public var text: String
    /// The picture as a PNG file's bytes, already enlarged `displayScale` times by whole pixels.
    public var png: [UInt8]?
    /// The picture's own size in pixels (before enlarging).
    public var width = 0
    public var height = 0
    public var caption: String?
    /// How many times the PNG repeats each pixel of the picture, down and across.
    public private(set) var displayScale = 1

    public init(text: String) { self.text = text }

    /// A picture, encoded as PNG. Small pictures are enlarged by whole pixels before encoding
    /// (a 28x28 digit at 140x140, a 2x2 tensor at 160x160), so every front end (a browser, a
    /// JupyterLab page, a Markdown viewer) shows them crisp and large enough to see, whatever it
    /// does with the size it is given.
    public init(image: ImageOutput) throws {
        self.text = image.caption.map { "\($0) (image \(image.width)x\(image.height))" } ?? "image \(image.width)x\(image.height)"
        let scale = DisplayData.enlargement(width: image.width, height: image.height)
        self.png = try ImageFile.encodePNG(scale > 1 ? try upscale(image.pixels, by: scale) : image.pixels)
        self.width = image.width
        self.height = image.height
        self.caption = image.caption
        self.displayScale = scale
    }

    /// The whole-pixel factor that brings a picture's longer side to about 160 pixels (1 for a
    /// picture that long or longer).
    public static func enlargement(width: Int, height: Int) -> Int {
        max(1, 160 / max(1, max(width, height)))
    }

    /// The Jupyter MIME bundle: text/plain always, image/png in base64 for a picture.
    var mimeBundle: [String: Any] {
        var bundle: [String: Any] = ["text/plain": text]
        if let png { bundle["image/png"] = Data(png).base64EncodedString() }
        return bundle
    }

    /// The display size a front end should give the picture.
    var mimeMetadata: [String: Any] {
        guard png != nil else { return [:] }
        return ["image/png": ["width": width * displayScale, "height": height * displayScale]]
    }
}

/// An error as a notebook shows it.
public struct ErrorOutput {
    /// Jupyter's ename: SyntaxError, RuntimeError or Interrupted.
    public var name: String
    /// The message (Jupyter's evalue).
    public var message: String
    /// The whole report as the terminal shows it: place, source line, caret, call sites.
    public var rendered: String
    /// "file:line:column", when the error has a place.
    public var place: String?

    public init(_ d: Diagnostic) {
        switch d.kind {
        case .syntax: name = "SyntaxError"
        case .runtime: name = "RuntimeError"
        case .interrupted: name = "Interrupted"
        }
        message = d.message
        rendered = d.rendered()
        place = d.span?.description
    }

    public init(name: String, message: String) {
        self.name = name
        self.message = message
        self.rendered = "error: \(message)\n"
        self.place = nil
    }

    /// The report's lines, for a Jupyter traceback; with `colored`, the place and kind as a
    /// terminal would colour them (Jupyter front ends render ANSI colours in tracebacks).
    func traceback(colored: Bool, diagnostic: Diagnostic? = nil) -> [String] {
        let text = colored ? (diagnostic.map { TerminalStyle(enabled: true).diagnostic($0) } ?? rendered) : rendered
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while lines.last == "" { lines.removeLast() }
        return lines
    }
}

/// Collects a cell's outputs from the interpreter's events. The last value a cell produces
/// becomes its execute_result (Out[n] in Jupyter); values before it are display_data.
/// Progress is not kept: a notebook records results, not how long they took to come.
public final class OutputCollector: EventSink {
    public private(set) var outputs: [CellOutput] = []
    private var pendingValue: DisplayedValue?

    public init() {}

    public func emit(_ event: Event) {
        if case .progress = event { return }
        flushPendingValue()
        switch event {
        case .text(let t): appendStream("stdout", t)
        case .value(let v): pendingValue = v
        case .image(let image):
            do { outputs.append(.data(try DisplayData(image: image), isResult: false)) }
            catch { appendStream("stderr", "error: could not encode a picture: \(error)\n") }
        case .error(let d): outputs.append(.error(ErrorOutput(d)))
        case .progress: break
        }
    }

    private func flushPendingValue() {
        if let v = pendingValue { outputs.append(.data(DisplayData(text: v.text), isResult: false)) }
        pendingValue = nil
    }

    private func appendStream(_ name: String, _ text: String) {
        if case .stream(let n, let previous)? = outputs.last, n == name {
            outputs[outputs.count - 1] = .stream(name: name, text: previous + text)
        } else {
            outputs.append(.stream(name: name, text: text))
        }
    }

    /// The cell's outputs, its last value as the result; the collector starts afresh.
    public func take() -> [CellOutput] {
        if let v = pendingValue { outputs.append(.data(DisplayData(text: v.text), isResult: true)) }
        pendingValue = nil
        defer { outputs = [] }
        return outputs
    }
}

extension CellOutput {
    /// The Jupyter message type and content for this output (iopub), as the kernel sends it.
    func jupyterMessage(executionCount: Int, diagnostic: Diagnostic? = nil) -> (type: String, content: [String: Any]) {
        switch self {
        case .stream(let name, let text):
            return ("stream", ["name": name, "text": text])
        case .data(let d, let isResult):
            var content: [String: Any] = ["data": d.mimeBundle, "metadata": d.mimeMetadata]
            if isResult {
                content["execution_count"] = executionCount
                return ("execute_result", content)
            }
            content["transient"] = [String: Any]()
            return ("display_data", content)
        case .error(let e):
            return ("error", ["ename": e.name, "evalue": e.message, "traceback": e.traceback(colored: true, diagnostic: diagnostic)])
        }
    }

    /// The output as nbformat 4 stores it in a .ipynb file: texts as lists of lines.
    func nbformat(executionCount: Int?) -> [String: Any] {
        switch self {
        case .stream(let name, let text):
            return ["output_type": "stream", "name": name, "text": nbformatLines(text)]
        case .data(let d, let isResult):
            var bundle: [String: Any] = ["text/plain": nbformatLines(d.text)]
            if let png = d.png { bundle["image/png"] = Data(png).base64EncodedString() }
            var out: [String: Any] = ["output_type": isResult ? "execute_result" : "display_data", "data": bundle, "metadata": d.mimeMetadata]
            if isResult { out["execution_count"] = executionCount.map { $0 as Any } ?? NSNull() }
            return out
        case .error(let e):
            return ["output_type": "error", "ename": e.name, "evalue": e.message, "traceback": e.traceback(colored: false)]
        }
    }
}

/// "a\nb\n" as ["a\n", "b\n"]: how Jupyter writes multi-line text in a notebook file.
func nbformatLines(_ text: String) -> [String] {
    var lines: [String] = []
    var current = String.UnicodeScalarView()
    for c in text.unicodeScalars {
        current.append(c)
        if c == "\n" { lines.append(String(current)); current = String.UnicodeScalarView() }
    }
    if !current.isEmpty { lines.append(String(current)) }
    return lines
}
