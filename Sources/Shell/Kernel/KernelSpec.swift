import Engine
import Foundation
import Imaging

/// The kernelspec that tells Jupyter how to start `cnn kernel`: kernel.json and two logos.
public enum KernelSpec {
    public static let name = "cnnlab"
    public static let displayName = "cnnlab"
    public static let language = "cnn"

    /// What notebooks and kernel_info say about the language. CodeMirror and Pygments have no
    /// mode of their own for it; Python's highlights its comments, strings, numbers and words.
    static let languageInfo: [String: Any] = [
        "name": "cnn",
        "file_extension": ".cnn",
        "mimetype": "text/x-cnn",
        "codemirror_mode": "python",
        "pygments_lexer": "python",
    ]

    public enum Destination {
        /// The user's Jupyter data folder ($JUPYTER_DATA_DIR, else ~/.local/share/jupyter).
        case user
        /// PREFIX/share/jupyter, as `jupyter kernelspec install --prefix` does.
        case prefix(String)
        /// /usr/local/share/jupyter, for every user.
        case system
    }

    /// The folder the kernelspec goes in.
    public static func folder(for destination: Destination, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let base: String
        switch destination {
        case .user:
            if let data = environment["JUPYTER_DATA_DIR"], !data.isEmpty { base = data }
            else {
                let home = environment["HOME"] ?? NSHomeDirectory()
                #if os(macOS)
                base = (home as NSString).appendingPathComponent("Library/Jupyter")
                #else
                let xdg = environment["XDG_DATA_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (home as NSString).appendingPathComponent(".local/share")
                base = (xdg as NSString).appendingPathComponent("jupyter")
                #endif
            }
        case .prefix(let prefix): base = (prefix as NSString).appendingPathComponent("share/jupyter")
        case .system: base = "/usr/local/share/jupyter"
        }
        return ((base as NSString).appendingPathComponent("kernels") as NSString).appendingPathComponent(name)
    }

    /// kernel.json: Jupyter starts `cnn kernel -f CONNECTION_FILE` and interrupts it by message.
    public static func json(executable: String) throws -> Data {
        let spec: [String: Any] = [
            "argv": [executable, "kernel", "-f", "{connection_file}"],
            "display_name": displayName,
            "language": language,
            "interrupt_mode": "message",
            "metadata": ["debugger": false],
        ]
        var data = try JSONSerialization.data(withJSONObject: spec, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// Writes the kernelspec and returns its folder.
    @discardableResult
    public static func install(executable: String, destination: Destination) throws -> String {
        let folder = self.folder(for: destination)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try json(executable: executable).write(to: URL(fileURLWithPath: (folder as NSString).appendingPathComponent("kernel.json")), options: .atomic)
        for size in [32, 64] {
            try ImageFile.writePNG(try logo(size: size), to: (folder as NSString).appendingPathComponent("logo-\(size)x\(size).png"))
        }
        return folder
    }

    /// The logo: a 3x3 filter of warm weights over "cnn" in the bitmap font, on dark blue.
    public static func logo(size: Int) throws -> Tensor {
        let scale = max(1, size / 32)
        let background: [Float] = [0.11, 0.20, 0.33]
        var image = Tensor(shape: [3, size, size], scalars: background.flatMap { [Float](repeating: $0, count: size * size) })
        let weights: [Float] = [0.35, 0.7, 0.35, 0.7, 1.0, 0.7, 0.35, 0.7, 0.35]
        let cell = 5 * scale, gap = scale
        let gridWidth = 3 * cell + 2 * gap
        let left = (size - gridWidth) / 2, top = 4 * scale
        image.withUnsafeMutableBufferPointer { p in
            for (i, w) in weights.enumerated() {
                let x0 = left + (i % 3) * (cell + gap), y0 = top + (i / 3) * (cell + gap)
                let color: [Float] = [0.25 + 0.75 * w, 0.2 + 0.5 * w, 0.15 + 0.1 * w]
                for y in y0..<(y0 + cell) where y < size {
                    for x in x0..<(x0 + cell) where x < size {
                        for c in 0..<3 { p[(c * size + y) * size + x] = color[c] }
                    }
                }
            }
        }
        let textWidth = BitmapFont.width(of: "cnn", scale: scale)
        try drawText("cnn", on: &image, x: (size - textWidth) / 2, y: top + gridWidth + 2 * scale, color: [1, 1, 1], scale: scale)
        return image
    }

    /// The path of the running `cnn`, for kernel.json.
    public static func currentExecutable() -> String {
        if let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return link }
        let argument = CommandLine.arguments.first ?? "cnn"
        if argument.hasPrefix("/") { return argument }
        if argument.contains("/") {
            return ((FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(argument) as NSString).standardizingPath
        }
        return argument
    }
}
