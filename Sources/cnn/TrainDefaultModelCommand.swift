import ArgumentParser
import Foundation
import Models

/// `cnn train-default-model`: trains the bundled Fashion-MNIST model from scratch and writes it,
/// with sample test images, where the package keeps its resources. scripts/train-default-model
/// runs it; the result is committed.
struct TrainDefaultModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-default-model",
        abstract: "Train the bundled Fashion-MNIST model and write it with sample images.",
        shouldDisplay: false)

    @Option(help: "Folder of the Fashion-MNIST IDX files.")
    var data = "/usr/share/datasets/fashion-mnist"

    @Option(help: "Folder to write fashion.safetensors and samples/ into.")
    var out = "Sources/Models/Resources"

    @Option(help: "Passes over the training set.")
    var epochs = 8

    @Option(help: "Sample images written per class.")
    var samplesPerClass = 5

    func run() throws {
        try DefaultModelTraining.run(
            data: data, out: out, epochs: epochs, samplesPerClass: samplesPerClass,
            progress: { FileHandle.standardError.write(Data("\r\($0)".utf8)) },
            report: { line in
                FileHandle.standardError.write(Data("\r".utf8))
                print(line)
            })
    }
}
