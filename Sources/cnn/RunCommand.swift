import ArgumentParser
import Foundation
import Shell

/// `cnn run FILE [ARGS...] [--out DIR]`: runs a .cnn script. Exit status 0 on success, 1 on a
/// runtime error, 2 on a syntax or usage error, 130 when stopped by Ctrl-C.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a .cnn script.",
        discussion: """
            The script sees its arguments as `args`. Pictures that `show` emits are written to \
            --out (default: a folder beside the script named <script>-out), named by cell and order \
            (cell2-1.png), and their paths printed. A progress bar shows on stderr when it is a terminal.
            """)

    @Argument(help: ArgumentHelp("The script, then its arguments; --out DIR may appear among them.", valueName: "file"))
    var file: String

    @Argument(parsing: .captureForPassthrough, help: .hidden)
    var arguments: [String] = []

    func run() throws {
        throw ExitCode(runScript(file, arguments))
    }
}

/// `cnn` alone: the shell (or, with stdin not a terminal, stdin as a script); `cnn FILE` runs
/// a script, so a `#!/usr/bin/env cnn` first line makes a script executable.
struct Interactive: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "shell", abstract: "The interactive shell (the default).")

    @Argument(help: ArgumentHelp("A script to run instead of opening the shell.", valueName: "file"))
    var file: String?

    @Argument(parsing: .captureForPassthrough, help: .hidden)
    var arguments: [String] = []

    func run() throws {
        if let file { throw ExitCode(runScript(file, arguments)) }
        throw ExitCode(startShell())
    }
}

/// Takes `--out DIR` out of a script's arguments and runs it.
func runScript(_ file: String, _ arguments: [String]) -> Int32 {
    var rest = arguments
    var out: String? = nil
    if let i = rest.firstIndex(of: "--out") {
        guard i + 1 < rest.count else {
            FileHandle.standardError.write(Data("cnn run: --out needs a folder\n".utf8))
            return 2
        }
        out = rest[i + 1]
        rest.removeSubrange(i...(i + 1))
    }
    return runScriptCommand(path: file, arguments: rest, outputDirectory: out)
}
