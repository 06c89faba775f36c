import Engine
import Foundation
import Imaging
import Models
@testable import Script
@testable import Shell

/// Every fuzz target by name: each feeds the bytes to the path a user's file or message takes.
/// A thrown error is a fine answer; a crash, a sanitizer report, a hang or a huge allocation
/// is a bug.
let targets: [String: (Data) -> Void] = [
    "parse": parse,
    "interpret": interpret,
    "png": decodeImage,
    "jpeg": decodeImage,
    "safetensors": { openFile($0, as: "safetensors") },
    "numpy": { openFile($0, as: $0.starts(with: [0x50, 0x4B]) ? "npz" : "npy") },
    "pytorch": { openFile($0, as: "pth") },
    "onnx": { openFile($0, as: "onnx") },
    "notebook": readNotebook,
    "wire": readWireMessage,
]

/// Lexer and parser: every cell of the text, then what the printer makes of the tree, parsed again.
func parse(_ data: Data) {
    let text = String(decoding: data, as: UTF8.self)
    for cell in Cells.split(text, name: "fuzz") where !cell.isMarkdown {
        let program = Parser.parse(cell.source)
        _ = Parser.parse(SourceFile(name: "again", text: ASTPrinter.source(program.statements)))
        for d in program.diagnostics { _ = d.rendered() }
    }
}

/// The builtins whose examples use files (`save`, `image`, `photo`, `train`, ...) are left out,
/// as the unit tests' fuzzing does, so that generated scripts cannot litter the disk.
let fuzzRegistry = BuiltinRegistry(BuiltinRegistry.standard().all.filter { !$0.exampleUsesFiles })

/// The interpreter, as `cnn run` runs a file: within 20,000 steps, and cancelled (as Ctrl-C
/// does) after 2 seconds, on tensors of at most 4M numbers.
func interpret(_ data: Data) {
    Conversions.maximumElements = 1 << 22
    let text = String(decoding: data, as: UTF8.self)
    let recorder = EventRecorder()
    let interpreter = Interpreter(sink: recorder, registry: fuzzRegistry, options: Interpreter.Options(stepBudget: 20_000))
    let flag = interpreter.cancellation
    let watchdog = DispatchWorkItem { flag.cancel() }
    DispatchQueue.global().asyncAfter(deadline: .now() + 2, execute: watchdog)
    for cell in Cells.split(text, name: "fuzz") where !cell.isMarkdown {
        let program = Parser.parse(cell.source)
        if program.diagnostics.isEmpty { interpreter.execute(program) }
    }
    watchdog.cancel()
    for event in recorder.events { _ = "\(event)" }
}

/// PNG and JPEG, from memory, as `image(path)` decodes a file once read; alpha kept and dropped.
func decodeImage(_ data: Data) {
    let bytes = [UInt8](data)
    _ = try? ImageFile.decode(bytes, name: "fuzz", alpha: .keep)
    _ = try? ImageFile.decode(bytes, name: "fuzz", alpha: .composite(onto: 1))
}

/// A folder of this process's own for the files the file-format targets write.
let scratch: URL = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let url = URL(fileURLWithPath: base).appendingPathComponent("cnn-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: "/dev/shm/cnn-fuzz-\(getpid())") }
    return url
}()

/// A model or tensor file, as `load(path)` opens it: the bytes become `fuzz.EXTENSION` in a
/// folder of their own (an ONNX file's external data may only come from there), then
/// `TensorFiles.open` reads them, building the network a file describes.
func openFile(_ data: Data, as fileExtension: String) {
    let url = scratch.appendingPathComponent("fuzz.\(fileExtension)")
    do { try data.write(to: url) } catch { fatalError("cannot write \(url.path): \(error)") }
    _ = try? TensorFiles.open(url.path)
}

/// `.ipynb` (when the text starts with "{") or the percent format, then each code cell parsed.
func readNotebook(_ data: Data) {
    let notebook: Notebook
    if data.first == UInt8(ascii: "{") {
        guard let n = try? Notebook.jupyter(data, name: "fuzz.ipynb") else { return }
        notebook = n
    } else {
        notebook = Notebook.percentFormat(String(decoding: data, as: UTF8.self), name: "fuzz.cnn")
    }
    _ = notebook.title
    for cell in notebook.cells {
        if let source = cell.source { _ = Parser.parse(source) }
    }
}

/// A Jupyter message as the kernel reads it off a socket. The input is frames separated by
/// the byte 0x00. When the first byte is odd, the signature frame is replaced by the right
/// signature of the frames that follow, so that the JSON parsing behind the check is reached;
/// otherwise the frames arrive as given (and the check must refuse them). A message read is
/// written back as the kernel writes its replies.
let wireSigner = try! MessageSigner(key: "fuzz-key", scheme: "hmac-sha256")

func readWireMessage(_ data: Data) {
    guard let flags = data.first else { return }
    var frames = data.dropFirst().split(separator: 0, omittingEmptySubsequences: false).map { [UInt8]($0) }
    if flags & 1 == 1, let d = frames.firstIndex(of: KernelMessage.delimiter), frames.count >= d + 6 {
        frames[d + 1] = Array(wireSigner.signature(Array(frames[(d + 2)..<(d + 6)])).utf8)
    }
    guard let message = try? KernelMessage(frames: frames, signer: wireSigner) else { return }
    _ = message.type
    _ = try? message.frames(signer: wireSigner)
}
