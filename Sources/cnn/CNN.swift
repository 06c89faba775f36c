import ArgumentParser
import Engine

/// The root command: `cnn <subcommand>`.
struct CNN: ParsableCommand {
    static let version = "0.1.0"

    // Computed, so that `--version` names the kernel this process actually loaded.
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "cnn",
            abstract: "cnnlab: convolutional networks you can take apart.",
            version: "cnn \(version)\nblas: \(BLASKernel.summary)",
            subcommands: [Run.self, Interactive.self, NotebookCommand.self, KernelCommand.self, Bench.self, Fetch.self, TrainDefaultModel.self],
            defaultSubcommand: Interactive.self)
    }
}
