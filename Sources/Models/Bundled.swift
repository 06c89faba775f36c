import Engine
import Foundation

/// The data that ships inside cnnlab: the default model and sample images from its test set,
/// found from any working directory.
public enum Bundled {
    /// Models by name, e.g. "fashion" (a small CNN trained on Fashion-MNIST by scripts/train-default-model).
    public static var modelNames: [String] { files(in: "", suffix: ".safetensors").map { String($0.dropLast(12)) } }

    public static func modelPath(_ name: String) throws -> String {
        guard let root = resources, modelNames.contains(name) else {
            throw ModelFileError(path: name, problem: "no bundled model of that name",
                                 expected: modelNames.isEmpty ? "a model file path" : "one of \(modelNames.joined(separator: ", "))")
        }
        return root.appendingPathComponent(name + ".safetensors").path
    }

    /// Sample labels ("sneaker", "ankle-boot", ...) with how many images each has.
    public static var samples: [String: Int] {
        var counts: [String: Int] = [:]
        for f in files(in: "samples", suffix: ".png") {
            guard let dash = f.lastIndex(of: "-") else { continue }
            counts[String(f[..<dash]), default: 0] += 1
        }
        return counts
    }

    /// The path of sample `index` (from 1) of a label; the label may be written with spaces
    /// or any case ("Ankle boot", "ankle-boot", "T-shirt/top" or "t-shirt").
    public static func samplePath(_ label: String, index: Int = 1) throws -> String {
        let key = slug(label)
        let known = samples
        guard let root = resources, let count = known[key] else {
            let names = known.keys.sorted()
            throw ModelFileError(path: label, problem: "no bundled sample of that name" + (Engine.nearest(key, in: names).map { "; did you mean '\($0)'?" } ?? ""),
                                 expected: "one of \(names.joined(separator: ", "))")
        }
        guard index >= 1 && index <= count else {
            throw ModelFileError(path: label, problem: "there are \(count) samples of \(key), numbered 1 to \(count); got \(index)")
        }
        return root.appendingPathComponent("samples/\(key)-\(index).png").path
    }

    /// "T-shirt/top" -> "t-shirt", "Ankle boot" -> "ankle-boot".
    public static func slug(_ label: String) -> String {
        var s = label.lowercased()
        if let slash = s.firstIndex(of: "/") { s = String(s[..<slash]) }
        return s.replacingOccurrences(of: " ", with: "-").replacingOccurrences(of: "_", with: "-")
    }

    static var resources: URL? { Bundle.module.url(forResource: "Resources", withExtension: nil) }

    static func files(in folder: String, suffix: String) -> [String] {
        guard let root = resources else { return [] }
        let dir = folder.isEmpty ? root : root.appendingPathComponent(folder)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(suffix) }.sorted()
    }
}
