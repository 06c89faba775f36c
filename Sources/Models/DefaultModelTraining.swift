import Engine
import Foundation
import Imaging

/// Training the bundled Fashion-MNIST model from scratch (`cnn train-default-model`, run by
/// scripts/train-default-model; the result is committed in Resources).
public enum DefaultModelTraining {
    /// Trains `Network.fashion(seed: 1)` on the IDX files in `data` with Adam (step size halved
    /// for the last quarter of the epochs), then writes fashion.safetensors and the first
    /// `samplesPerClass` test images of each class as samples/<class>-<n>.png into `out`.
    /// `progress` gets a line now and then within an epoch, `report` one line per epoch and a
    /// last one for the whole run.
    public static func run(data: String, out: String, epochs: Int, samplesPerClass: Int,
                           progress: @escaping (String) -> Void, report: (String) -> Void) throws {
        let start = Date()
        let trainSet = try IDXDataset.load(folder: data, split: "train")
        let testSet = try IDXDataset.load(folder: data, split: "test")
        let net = try Network.fashion(seed: 1)
        var optimizer = Adam(learningRate: 1e-3)
        for epoch in 0..<epochs {
            if epoch == epochs - max(1, epochs / 4) { optimizer.learningRate /= 2 }
            var options = TrainingOptions(epochs: 1, batchSize: 64, seed: UInt64(epoch))
            let epochStart = Date()
            options.progress = { _, step, steps, _ in
                if step % 100 == 0 || step == steps { progress("epoch \(epoch + 1)/\(epochs) step \(step)/\(steps)") }
            }
            let history = try train(net, images: trainSet.images, labels: trainSet.labels, optimizer: &optimizer, options: options)
            let accuracy = try evaluate(net, images: testSet.images, labels: testSet.labels).accuracy
            report(String(format: "epoch %d: loss %.4f, test accuracy %.2f%%, %.0f s", epoch + 1,
                          history.epochLoss.last ?? 0, accuracy * 100, Date().timeIntervalSince(epochStart)))
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
        report(String(format: "trained in %.0f s; wrote %@/fashion.safetensors and %d samples",
                      Date().timeIntervalSince(start), out, written.values.reduce(0, +)))
    }
}
