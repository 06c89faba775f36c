import ArgumentParser
import Shell

/// `cnn notebook FILE -o OUT.html|OUT.ipynb|OUT.md [--allow-errors]`: runs a notebook and writes
/// it with every output.
struct NotebookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notebook",
        abstract: "Run a notebook and write it with its outputs as HTML, .ipynb or Markdown.",
        discussion: """
            FILE is a .cnn file whose cells start with `# %%` (`# %% [markdown]` for a Markdown \
            cell), or a Jupyter .ipynb file. The cells run in order in one session. The output's \
            extension chooses the format: .html (one self-contained page, pictures inline), \
            .ipynb (nbformat 4) or .md (pictures in a folder OUT_files beside it). A failing cell \
            stops the run with exit status 1 and the cells after it are written without outputs, \
            unless --allow-errors is given. Ctrl-C stops the run (status 130) and writes what ran. \
            With --no-run the cells are written as they are, without running them (a .cnn \
            notebook as a .ipynb to open in Jupyter, for instance).
            """)

    @Argument(help: ArgumentHelp("The notebook: a .cnn file with # %% cells, or a .ipynb file.", valueName: "file"))
    var file: String

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("Where to write: OUT.html, OUT.ipynb or OUT.md (default: FILE with .html).", valueName: "out"))
    var output: String?

    @Flag(name: .customLong("allow-errors"), help: "Run every cell even after one fails.")
    var allowErrors = false

    @Flag(name: .customLong("no-run"), help: "Write the cells without running them (convert only).")
    var noRun = false

    func run() throws {
        throw ExitCode(runNotebookCommand(path: file, output: output, allowErrors: allowErrors, execute: !noRun))
    }
}
