import ArgumentParser
import Foundation
import Shell

/// `cnn kernel -f CONNECTION_FILE` runs the Jupyter kernel; `cnn kernel install` writes its kernelspec.
struct KernelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernel",
        abstract: "The Jupyter kernel: run it for Jupyter, or install its kernelspec.",
        subcommands: [KernelStart.self, KernelInstall.self],
        defaultSubcommand: KernelStart.self)
}

struct KernelStart: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Run the kernel on the sockets a Jupyter connection file names (Jupyter does this).")

    @Option(name: [.short, .customLong("connection-file")], help: ArgumentHelp("The connection file Jupyter wrote.", valueName: "file"))
    var file: String

    func run() throws {
        let kernel: Kernel
        do { kernel = try Kernel(connectionFile: file, implementationVersion: CNN.version) }
        catch {
            FileHandle.standardError.write(Data("cnn kernel: \(error)\n".utf8))
            throw ExitCode(2)
        }
        throw ExitCode(kernel.serve())
    }
}

struct KernelInstall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Write the kernelspec (kernel.json and logos) where Jupyter finds it.",
        discussion: "Without --user or --prefix it goes to /usr/local/share/jupyter/kernels/cnnlab, for every user.")

    @Flag(help: "Install for this user only ($JUPYTER_DATA_DIR, else ~/.local/share/jupyter).")
    var user = false

    @Option(help: ArgumentHelp("Install under DIR/share/jupyter (a virtual environment's prefix, say).", valueName: "dir"))
    var prefix: String?

    func validate() throws {
        if user && prefix != nil { throw ValidationError("give --user or --prefix, not both") }
    }

    func run() throws {
        let destination: KernelSpec.Destination = user ? .user : prefix.map { .prefix($0) } ?? .system
        do {
            let folder = try KernelSpec.install(executable: KernelSpec.currentExecutable(), destination: destination)
            print("installed the cnnlab kernelspec in \(folder)")
        } catch {
            FileHandle.standardError.write(Data("cnn kernel install: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
