import ArgumentParser
import Engine
import Foundation
import Imaging
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
        let start = Date()
        let trainSet = try IDXDataset.load(folder: data, split: "train")
        let testSet = try IDXDataset.load(folder: data, split: "test")
        let net = try Network.fashion(seed: 1)
        var optimizer = Adam(learningRate: 1e-3)
        var log: [String] = []
        for epoch in 0..<epochs {
            // Halve the step size for the last quarter of the epochs.
            if epoch == epochs - max(1, epochs / 4) { optimizer.learningRate /= 2 }
            var options = TrainingOptions(epochs: 1, batchSize: 64, seed: UInt64(epoch))
            let epochStart = Date()
            options.progress = { _, step, steps, _ in
                if step % 100 == 0 || step == steps {
                    FileHandle.standardError.write(Data("\repoch \(epoch + 1)/\(epochs) step \(step)/\(steps)".utf8))
                }
            }
            let history = try train(net, images: trainSet.images, labels: trainSet.labels, optimizer: &optimizer, options: options)
            let accuracy = try evaluate(net, images: testSet.images, labels: testSet.labels).accuracy
            let line = String(format: "epoch %d: loss %.4f, test accuracy %.2f%%, %.0f s", epoch + 1,
                              history.epochLoss.last ?? 0, accuracy * 100, Date().timeIntervalSince(epochStart))
            FileHandle.standardError.write(Data("\r".utf8))
            print(line)
            log.append(line)
        }
        try FileManager.default.createDirectory(atPath: out + "/samples", withIntermediateDirectories: true)
        try NetworkFiles.save(net, to: out + "/fashion.safetensors")
        // The first test images of each class, in test-set order.
        var written: [Int: Int] = [:]
        for i in 0..<testSet.count {
            let label = testSet.labels[i]
            let n = written[label, default: 0]
            guard n < samplesPerClass else { continue }
            let (image, _) = testSet.batch([i][...])
            let name = Bundled.slug(Network.fashionClasses[label])
            try ImageFile.writePNG(try image.reshaped([1, 28, 28]), to: "\(out)/samples/\(name)-\(n + 1).png")
            written[label] = n + 1
        }
        print(String(format: "trained in %.0f s; wrote %@/fashion.safetensors and %d samples", Date().timeIntervalSince(start), out, written.values.reduce(0, +)))
    }
}
