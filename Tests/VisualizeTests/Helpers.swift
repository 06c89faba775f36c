import Engine
import Foundation
import Imaging
import Models
import XCTest

/// The bundled default model, loaded once.
private let cachedModel = Result { try NetworkFiles.load(Bundled.modelPath("fashion")) }
func defaultModel() throws -> Network { try cachedModel.get() }

/// The Fashion-MNIST test set, loaded once.
private let cachedTestSet = Result { try IDXDataset.load(folder: "/usr/share/datasets/fashion-mnist", split: "test") }
func fashionTestSet() throws -> IDXDataset { try cachedTestSet.get() }

/// A bundled sample image, [1, 28, 28] in [0, 1].
func sample(_ label: String, _ index: Int = 1) throws -> Tensor {
    try ImageFile.read(Bundled.samplePath(label, index: index))
}

/// The arrays written by scripts/make-visualize-fixtures.py.
private let cachedReference = Result { () throws -> [String: Tensor] in
    guard let root = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
        throw EngineError.invalidArgument("the VisualizeTests bundle has no Fixtures folder")
    }
    return try NumPy.readArchive(at: root.appendingPathComponent("fashion-attributions.npz"))
}
func reference(_ name: String) throws -> Tensor {
    guard let t = try cachedReference.get()[name] else { throw EngineError.unknownName(name, candidates: []) }
    return t
}

/// The largest absolute difference between two tensors of one shape.
func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
    XCTAssertEqual(a.shape, b.shape)
    return zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// The top class of a display image.
func prediction(_ net: Network, _ image: Tensor) throws -> Int {
    var batch = try image.reshaped([1] + image.shape)
    if let spec = net.spec { batch = try spec.normalize(batch) }
    return try net(batch).argmax()
}

/// The score before the softmax of class `c` for a display image.
func score(_ net: Network, _ image: Tensor, _ c: Int) throws -> Float {
    var batch = try image.reshaped([1] + image.shape)
    if let spec = net.spec { batch = try spec.normalize(batch) }
    return try net(batch).scalars[c]
}

/// A network small enough to follow by hand: a 2x2 convolution with W = [[1, 0], [0, -1]]
/// (y[i, j] = x[i, j] - x[i+1, j+1]) on a 3x5 image, ReLU, 2x2 max pooling (1x2 out), and a
/// linear layer 2 -> 2 with W = [[2, 1], [-1, 1]], no biases, no spec (no normalization).
func handNetwork() throws -> Network {
    let net = Network()
    try net.append("conv", LayerRegistry.make("conv2d", ["in": .int(1), "out": .int(1), "kernel": .int(2), "bias": .bool(false)]))
    try net.append("relu", LayerRegistry.make("relu"))
    try net.append("pool", LayerRegistry.make("maxpool", ["kernel": .int(2)]))
    try net.append("flat", LayerRegistry.make("flatten"))
    try net.append("fc", LayerRegistry.make("linear", ["in": .int(2), "out": .int(2), "bias": .bool(false)]))
    try net.setParameter("conv.weight", Tensor(shape: [1, 1, 2, 2], scalars: [1, 0, 0, -1]))
    try net.setParameter("fc.weight", Tensor(shape: [2, 2], scalars: [2, 1, -1, 1]))
    return net
}

/// The image for `handNetwork`, chosen so that the convolution gives
/// y = [[3, 1, -2, -1], [0, 2, -3, -4]]: the left pooling window's maximum is 3 at (0, 0); the
/// right window is all negative, so after the ReLU it is all zeros and its switch is its first
/// position (0, 2), where the ReLU's input was -2.
let handImage = Tensor(shape: [1, 3, 5], scalars: [
    3, 1, -2, -1, 5,
    1, 0, 0, 0, 0,
    7, 1, -2, 3, 4,
])

/// A 3x5 image from (row, column) -> value entries, zero elsewhere.
func handMap(_ entries: [(Int, Int, Float)]) -> Tensor {
    var t = Tensor(zeros: [1, 3, 5])
    for (r, c, v) in entries { t.scalars[r * 5 + c] = v }
    return t
}
