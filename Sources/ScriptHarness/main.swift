// Calls the language's front ends directly: `cnn-script FILE [ARGS...] [--out DIR]` runs a
// script as `cnn run` will, and `cnn-script` alone opens the shell. For timing and trying
// them out until the `cnn` command line wires them in.
import Foundation
import Shell

var arguments = Array(CommandLine.arguments.dropFirst())
var outputDirectory: String? = nil
if let i = arguments.firstIndex(of: "--out"), i + 1 < arguments.count {
    outputDirectory = arguments[i + 1]
    arguments.removeSubrange(i...(i + 1))
}
if let path = arguments.first {
    exit(runScriptCommand(path: path, arguments: Array(arguments.dropFirst()), outputDirectory: outputDirectory))
}
exit(startShell())
