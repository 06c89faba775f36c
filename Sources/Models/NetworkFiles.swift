import Engine
import Foundation

/// Whole networks and weights on disk, by format.
///
/// - `.safetensors` written by `save` holds the architecture as text in its metadata
///   (`cnnlab.network`), so `load` gives back the same network.
/// - `.onnx` graphs are imported whole.
/// - `.pth`/`.pt` (PyTorch state dicts), `.npz` and safetensors files without an architecture
///   hold weights only: they go onto a network by parameter name with `loadWeights`.
public enum NetworkFiles {
    static let architectureKey = "cnnlab.network"

    /// Writes every parameter and buffer with the architecture, through a temporary file.
    public static func save(_ network: Network, to path: String) throws {
        let description = try NetworkDescription(network).json()
        try SafetensorsFile(tensors: network.parameters, metadata: [architectureKey: description])
            .write(to: URL(fileURLWithPath: path))
    }

    /// Reads a network: a safetensors file written by `save`, or an ONNX graph.
    public static func load(_ path: String) throws -> Network {
        let url = URL(fileURLWithPath: path)
        switch try WeightFormat(path: path) {
        case .safetensors:
            let file = try SafetensorsFile(contentsOf: url)
            guard let text = file.metadata[architectureKey] else {
                throw ModelFileError(path: path, problem: "holds weights only (no network architecture in its metadata)",
                                     expected: "a file written by save(net, path); put these weights on a network with load_weights(net, \"\(path)\")")
            }
            let description: NetworkDescription
            do { description = try NetworkDescription.parse(text) }
            catch { throw ModelFileError(path: path, problem: "its architecture cannot be read: \(error)") }
            // The input spec before anything is built from it, the class names once the output is known.
            if let spec = description.spec { try check(spec, scores: nil, path: path) }
            let network: Network
            do { network = try description.build() }
            catch { throw ModelFileError(path: path, problem: "its architecture cannot be built: \(error)") }
            try checkSpec(of: network, path: path)
            try assign(file.tensors, to: network, path: path, strict: true)
            return network
        case .onnx:
            let network = try Network.fromONNX(contentsOf: url)
            try checkSpec(of: network, path: path)
            return network
        case .numpy where TensorFiles.isSingleArray(path):
            throw ModelFileError(path: path, problem: "holds one array, not a network",
                                 expected: "a network file (.onnx, or .safetensors written by save); load(\"\(path)\") in a script gives the tensor")
        case .pytorch, .numpy:
            throw ModelFileError(path: path, problem: "holds weights only, not a network",
                                 expected: "a network built in cnnlab (or from the zoo) to put them on: load_weights(net, \"\(path)\")")
        }
    }

    /// Refuses an input spec that lies (see `InputSpec.problem`), naming the file and the field.
    static func check(_ spec: InputSpec, scores: Int?, path: String) throws {
        if let (problem, expected) = spec.problem(scores: scores) {
            throw ModelFileError(path: path, problem: problem, expected: expected)
        }
    }

    /// Checks a loaded network's spec, and that the network takes an input of the size it names.
    static func checkSpec(of network: Network, path: String) throws {
        guard let spec = network.spec else { return }
        try check(spec, scores: nil, path: path)
        guard spec.height > 0, spec.width > 0, let last = network.nodes.last?.name else { return }
        let input = [1, spec.channels, spec.height, spec.width]
        let output: [Int]
        do {
            guard let shape = try network.shapes(for: input)[last] else { return }
            output = shape
        } catch {
            throw ModelFileError(path: path, problem: "the input spec's size \(input) does not fit the network: \(error)",
                                 expected: "the size of input the network's first layers take")
        }
        try check(spec, scores: output.dropFirst().reduce(1, *), path: path)
    }

    /// Class names from a text file, one per line (blank lines at the end are ignored).
    public static func readClassNames(_ path: String) throws -> [String] {
        let url = URL(fileURLWithPath: path)
        let data = try withFile(url) { try readFileBytes(url) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ModelFileError(path: path, problem: "is not UTF-8 text", expected: "one class name per line")
        }
        var names = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r"))) }
        while names.last?.isEmpty == true { names.removeLast() }
        guard !names.isEmpty else { throw ModelFileError(path: path, problem: "lists no class names", expected: "one class name per line") }
        return names
    }

    /// The named tensors of a weights file of any supported format.
    public static func readWeights(_ path: String) throws -> [String: Tensor] {
        let url = URL(fileURLWithPath: path)
        switch try WeightFormat(path: path) {
        case .safetensors: return try SafetensorsFile(contentsOf: url).tensors
        case .pytorch: return try PyTorch.readStateDict(at: url)
        case .numpy: return try NumPy.readArchive(at: url)
        case .onnx: return try ONNXModel(contentsOf: url).graph.initializers
        }
    }

    /// What putting weights on a network did.
    public struct WeightReport: Equatable {
        public var loaded: [String] = []
        public var missing: [String] = []
        public var unexpected: [String] = []
        public var misshaped: [(name: String, network: [Int], file: [Int])] = []

        public static func == (a: WeightReport, b: WeightReport) -> Bool {
            a.loaded == b.loaded && a.missing == b.missing && a.unexpected == b.unexpected &&
                a.misshaped.map(\.name) == b.misshaped.map(\.name)
        }
    }

    /// Puts the file's tensors on the network by parameter name. PyTorch's module paths
    /// (`features.0.weight`) also match the network's names with the inner dots as
    /// underscores (`features_0.weight`), and `num_batches_tracked` counters are ignored.
    /// With `strict`, any missing, unexpected or mis-shaped name is an error listing all of them,
    /// and nothing is changed.
    @discardableResult
    public static func loadWeights(into network: Network, from path: String, strict: Bool = true) throws -> WeightReport {
        try assign(try readWeights(path), to: network, path: path, strict: strict)
    }

    @discardableResult
    static func assign(_ tensors: [String: Tensor], to network: Network, path: String, strict: Bool) throws -> WeightReport {
        let wanted = network.parameterNames
        let wantedSet = Set(wanted)
        var byNetworkName: [String: (String, Tensor)] = [:]
        var report = WeightReport()
        for (fileName, tensor) in tensors.sorted(by: { $0.key < $1.key }) {
            if fileName.hasSuffix("num_batches_tracked") { continue }
            let name = wantedSet.contains(fileName) ? fileName : underscored(fileName)
            if wantedSet.contains(name) { byNetworkName[name] = (fileName, tensor) } else { report.unexpected.append(fileName) }
        }
        for name in wanted {
            guard let (_, tensor) = byNetworkName[name] else { report.missing.append(name); continue }
            let current = try network.parameter(name)
            if current.shape != tensor.shape && current.count == tensor.count && tensor.rank <= 1 {
                // A vector stored with a different but equivalent shape (e.g. [K, 1, 1]).
                byNetworkName[name] = (name, try tensor.reshaped(current.shape))
            } else if current.shape != tensor.shape {
                report.misshaped.append((name, current.shape, tensor.shape))
            }
        }
        if strict && (!report.missing.isEmpty || !report.unexpected.isEmpty || !report.misshaped.isEmpty) {
            var parts: [String] = []
            if !report.missing.isEmpty { parts.append("missing \(list(report.missing))") }
            if !report.unexpected.isEmpty {
                let hints = report.unexpected.prefix(3).compactMap { n in nearest(n, in: wanted).map { "'\(n)' (did you mean '\($0)'?)" } }
                parts.append("unexpected \(list(report.unexpected))" + (hints.isEmpty ? "" : "; " + hints.joined(separator: ", ")))
            }
            if !report.misshaped.isEmpty {
                parts.append("mis-shaped " + report.misshaped.prefix(6).map { "\($0.name) (network \($0.network), file \($0.file))" }.joined(separator: ", "))
            }
            throw ModelFileError(path: path, problem: "the weights do not fit the network: " + parts.joined(separator: "; "),
                                 expected: "the network's parameters: \(list(wanted))")
        }
        let misshapedNames = Set(report.misshaped.map(\.name))
        for name in wanted where !misshapedNames.contains(name) {
            guard let (_, tensor) = byNetworkName[name] else { continue }
            try network.setParameter(name, tensor)
            report.loaded.append(name)
        }
        return report
    }

    /// `features.0.weight` -> `features_0.weight`: all dots but the last become underscores.
    static func underscored(_ name: String) -> String {
        guard let last = name.lastIndex(of: ".") else { return name }
        return name[..<last].replacingOccurrences(of: ".", with: "_") + name[last...]
    }

    static func list(_ names: [String]) -> String {
        names.count <= 8 ? names.joined(separator: ", ") : names.prefix(8).joined(separator: ", ") + " and \(names.count - 8) more"
    }
}

/// The weight and model formats, told by content where the content says it, else by extension.
enum WeightFormat {
    case safetensors, onnx, pytorch, numpy

    init(path: String) throws {
        let ext = (path as NSString).pathExtension.lowercased()
        guard FileManager.default.fileExists(atPath: path) else {
            let folder = ((path as NSString).deletingLastPathComponent as NSString).expandingTildeInPath
            let name = (path as NSString).lastPathComponent
            let siblings = (try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder)) ?? []
            let hint = nearest(name, in: siblings).map { "; did you mean '\($0)'?" } ?? ""
            throw ModelFileError(path: path, problem: "no such file" + hint)
        }
        let head = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 8)) ?? nil
        let bytes = [UInt8](head ?? Data())
        if bytes.starts(with: [0x50, 0x4B]) {  // a zip: .npz or a PyTorch archive
            self = ext == "npz" ? .numpy : .pytorch
            return
        }
        switch ext {
        case "safetensors", "st": self = .safetensors
        case "onnx": self = .onnx
        case "pt", "pth", "bin", "ckpt": self = .pytorch
        case "npz", "npy": self = .numpy
        default:
            throw ModelFileError(path: path, problem: "unknown model format '.\(ext)'",
                                 expected: "one of .safetensors, .onnx, .pth/.pt (PyTorch state dict), .npz, .npy")
        }
    }
}
