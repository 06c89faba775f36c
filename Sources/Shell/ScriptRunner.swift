import Foundation
import Script

/// `cnn run`: runs a `.cnn` file cell by cell, text to stdout, errors to stderr, pictures to
/// files named by cell and order in an output folder.
///
/// Exit status: 0 on success, 1 on a runtime error, 2 on a syntax or usage error.
public func runScriptCommand(path: String, arguments: [String], outputDirectory: String?) -> Int32 {
    let errors = DescriptorOutput.standardError
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        errors.write("cnn run: no such file: \(path)\n")
        return 2
    }
    guard !isDirectory.boolValue else {
        errors.write("cnn run: \(path) is a folder; give a .cnn file\n")
        return 2
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        errors.write("cnn run: cannot read \(path)\n")
        return 2
    }
    guard let text = String(data: data, encoding: .utf8) else {
        errors.write("cnn run: \(path) is not UTF-8 text\n")
        return 2
    }
    let runner = ScriptRunner(outputDirectory: outputDirectory ?? ScriptRunner.defaultOutputDirectory(for: path),
                              standardOutput: DescriptorOutput.standardOutput, standardError: errors,
                              showsProgress: isatty(2) != 0)
    let interrupts = InterruptHandler.install(runner.cancellation)
    defer { interrupts.uninstall() }
    return withLargeStack { runner.run(text: text, name: path, arguments: arguments) }
}

public final class ScriptRunner {
    public let outputDirectory: String
    public let cancellation = CancellationFlag()
    let output: TextOutput
    let errors: TextOutput
    let showsProgress: Bool
    public var options = Interpreter.Options()

    public init(outputDirectory: String, standardOutput: TextOutput, standardError: TextOutput, showsProgress: Bool) {
        self.outputDirectory = outputDirectory
        self.output = standardOutput
        self.errors = standardError
        self.showsProgress = showsProgress
    }

    /// "demos/tour.cnn" -> "demos/tour-out": beside the script, named after it.
    public static func defaultOutputDirectory(for scriptPath: String) -> String {
        let base = ((scriptPath as NSString).lastPathComponent as NSString).deletingPathExtension
        let folder = (scriptPath as NSString).deletingLastPathComponent
        return folder.isEmpty ? base + "-out" : (folder as NSString).appendingPathComponent(base + "-out")
    }

    /// Runs the text of a script named `name`; `arguments` become the list `args`.
    public func run(text: String, name: String, arguments: [String]) -> Int32 {
        let cells = Cells.split(text, name: name)
        // Every cell is parsed before any runs: a syntax error anywhere stops the run before it starts.
        var programs: [(Cell, Program)] = []
        var syntaxErrors: [Diagnostic] = []
        for cell in cells where !cell.isMarkdown {
            let program = Parser.parse(cell.source)
            syntaxErrors += program.diagnostics
            programs.append((cell, program))
        }
        if !syntaxErrors.isEmpty {
            for d in syntaxErrors { errors.write(d.rendered()) }
            let count = syntaxErrors.count
            errors.write("\(count) syntax error\(count == 1 ? "" : "s"); nothing was run\n")
            return 2
        }

        var currentCell = 0
        var picturesInCell: [Int: Int] = [:]
        let directory = outputDirectory
        let printer = EventPrinter(output: output, errors: errors, showsProgress: showsProgress) { image in
            let order = picturesInCell[currentCell, default: 0] + 1
            picturesInCell[currentCell] = order
            let path = (directory as NSString).appendingPathComponent("cell\(currentCell)-\(order).png")
            try writePicture(image, to: path)
            return path
        }
        let interpreter = Interpreter(sink: printer, options: options, cancellation: cancellation)
        interpreter.define("args", .list(arguments.map { .string($0) }))
        for (cell, program) in programs {
            currentCell = cell.number
            switch interpreter.execute(program) {
            case .success: continue
            case .failed(let d): return d.kind == .interrupted ? 130 : 1
            case .syntaxErrors: return 2
            }
        }
        return printer.failedWrites > 0 ? 1 : 0
    }
}
