import Engine
import Foundation
import Imaging
import Models

/// Trained networks: loading, weights, predictions, datasets, training.
extension BuiltinCategory {
    public static let models = BuiltinCategory(name: "Models and data", order: 45)
}

extension Builtins {
    /// A prediction as a record: the top class, and every class's probability.
    static func prediction(_ probabilities: Tensor, labels: [String]) -> Value {
        let best = probabilities.argmax()
        let names = labels.count == probabilities.count ? labels : (0..<probabilities.count).map(String.init)
        return .record(Record(typeName: "prediction", fields: [
            ("label", .string(names[best])), ("index", .number(Double(best))),
            ("probability", .number(Double(probabilities.scalars[best]))),
            ("probabilities", .tensor(Variable(probabilities))),
            ("labels", .list(names.map { .string($0) })),
        ]))
    }

    /// The k largest entries of a prediction (or of any vector) as records with label, index and probability.
    static func topEntries(_ value: Value, _ k: Int) throws -> Value {
        let scores: Tensor, labels: [String]
        if case .record(let r) = value, r.typeName == "prediction", case .tensor(let p)? = r["probabilities"], case .list(let names)? = r["labels"] {
            scores = p.value
            labels = names.map { if case .string(let s) = $0 { return s } else { return "" } }
        } else {
            scores = try Conversions.tensor(value)
            labels = (0..<scores.count).map(String.init)
        }
        guard k >= 1 else { throw ScriptError("top: k must be at least 1, got \(k)", argument: "k") }
        let order = scores.scalars.indices.sorted { scores.scalars[$0] > scores.scalars[$1] }.prefix(k)
        return .list(order.map { i in
            .record(Record(typeName: "class", fields: [("label", .string(labels[i])), ("index", .number(Double(i))),
                                                        ("probability", .number(Double(scores.scalars[i])))]))
        })
    }

    /// How many scores the network gives for one input of its size, when the size is known.
    static func scoreCount(_ net: Network, _ spec: InputSpec) -> Int? {
        guard spec.height > 0, spec.width > 0, let last = net.nodes.last?.name,
              let out = try? net.shapes(for: [1, spec.channels, spec.height, spec.width])[last] else { return nil }
        return out.dropFirst().reduce(1, *)
    }

    /// Named tensors as a record, sorted by name.
    static func tensorRecord(_ named: [String: Tensor]) -> Value {
        .record(Record(typeName: "tensors", fields: named.sorted { $0.key < $1.key }.map { ($0.key, .tensor(Variable($0.value))) }))
    }

    /// A value's tensors by name, for saving: one tensor (named `name`), or a record's tensor fields.
    static func namedTensors(_ value: Value, name: String) throws -> [String: Tensor] {
        if case .record(let r) = value, r.typeName == "tensors" {
            var named: [String: Tensor] = [:]
            for (field, v) in r.fields { if let t = v.tensorValue { named[field] = t } }
            guard !named.isEmpty else { throw ScriptError("save: \(Value.article(r.typeName)) holds no tensors", argument: "x") }
            return named
        }
        guard let t = value.tensorValue else { throw ScriptError("save: \(value.describedType) cannot be saved as a tensor", argument: "x") }
        return [name: t]
    }

    /// A folder of IDX files, read once per session.
    static func dataset(_ folder: String, _ split: String, limit: Int?) throws -> IDXDataset {
        do { return try IDXDataset.load(folder: (folder as NSString).expandingTildeInPath, split: split, limit: limit) }
        catch let e as IDX.Error { throw ScriptError(e.description) }
    }

    static var models: [Builtin] {
        [
            loadBuiltin, tensorsBuiltin, loadWeightsBuiltin, sampleBuiltin, photoBuiltin, predictBuiltin,
            topBuiltin, trainBuiltin, evaluateBuiltin
        ]
    }

    static var loadBuiltin: Builtin {
        Builtin("load", category: .models,
                parameters: [.required("name", .string), .optional("preset", .string, .none, default: .none),
                             .optional("classes", .string, .none, default: .none), .optional("tensor", .string, .none, default: .none)],
                summary: "A network: the bundled model (\"fashion\"), one from the zoo (\"efficientnet-lite0\", after cnn fetch), or a file (.onnx, .safetensors saved by cnnlab); or tensors from a .npy, .npz, .safetensors or .pth file.",
                help: "Bundled models know their input size, normalization and class names. A file without them (ONNX) takes `preset`: \"imagenet\" (ImageNet's normalization and its 1000 class names), \"unit\" ([0, 1]) or \"symmetric\" ([-1, 1]); `classes` names a text file with one class name per line. A .npy file gives its array as a tensor; a file of several named tensors (.npz, weights-only .safetensors, .pth) gives a record of them by name (t[\"name\"]), and `tensor=\"name\"` picks one. Weights go onto a network with load_weights. A file that lies about itself (sizes beyond the memory limit CNN_MAX_MEMORY, offsets outside the file, an input spec with a std of 0 or a class list that does not fit) is refused, naming the file and what would be valid.",
                example: "net = load(\"fashion\")\nlayers(net)") { args, _ in
            let name = try args.string("name")
            let isPath = name.contains("/") || name.contains(".")
            let net: Network
            do {
                if isPath {
                    let path = (name as NSString).expandingTildeInPath
                    if !args.isNone("tensor") { return .tensor(Variable(try TensorFiles.read(path, named: try args.string("tensor")))) }
                    switch try TensorFiles.open(path) {
                    case .network(let n): net = n
                    case .tensor(let t): return .tensor(Variable(t))
                    case .tensors(let named): return tensorRecord(named)
                    }
                }
                else if Zoo.modelNames.contains(name.lowercased()) { net = try Zoo.load(name) }
                else if Bundled.modelNames.contains(name) { net = try NetworkFiles.load(try Bundled.modelPath(name)) }
                else {
                    let known = Bundled.modelNames + Zoo.modelNames
                    let hint = nearest(name, in: known).map { "; did you mean '\($0)'?" } ?? ""
                    throw ScriptError("load: no model named '\(name)'\(hint); models are \(known.joined(separator: ", ")), or give a file path", argument: "name")
                }
            } catch let e as ModelFileError { throw ScriptError(e.description, argument: "name") }
            if !args.isNone("tensor") { throw ScriptError("load: tensor= picks a tensor from a file of tensors; '\(name)' is a model", argument: "tensor") }
            if !args.isNone("preset") {
                let preset = try args.string("preset")
                let n = try Normalization.named(preset)
                var spec = net.spec ?? InputSpec(channels: n.mean.count == 1 ? 1 : n.mean.count, height: 0, width: 0)
                spec.mean = n.mean; spec.std = n.std
                // ImageNet's class names go with its normalization when the network gives 1000 scores.
                if n.name == "imagenet" && args.isNone("classes") && [nil, 1000].contains(scoreCount(net, spec)) {
                    do { spec.classNames = try Zoo.imagenetClasses() } catch let e as ModelFileError { throw ScriptError(e.description, argument: "preset") }
                }
                net.spec = spec
            }
            if !args.isNone("classes") {
                let names: [String]
                do { names = try NetworkFiles.readClassNames((try args.string("classes") as NSString).expandingTildeInPath) }
                catch let e as ModelFileError { throw ScriptError("load: \(e.description)", argument: "classes") }
                var spec = net.spec ?? InputSpec(channels: 1, height: 0, width: 0)
                if let count = scoreCount(net, spec), count != names.count {
                    throw ScriptError("load: \(try args.string("classes")) lists \(names.count) class names, but the network gives \(count) scores", argument: "classes")
                }
                spec.classNames = names
                net.spec = spec
            }
            return .network(net)
        }
    }

    static var tensorsBuiltin: Builtin {
        Builtin("tensors", category: .models, parameters: [.keywords("tensors", .tensor)],
                summary: "Named tensors as one record, to save several in one .npz or .safetensors file: save(tensors(a=x, b=y), \"out/both.npz\").",
                help: "The record's fields are the tensors by name; load gives such a record back from a file of several tensors.",
                example: "t = tensors(x=zeros(2, 3), y=ones(4))\nt.y") { args, _ in
            guard !args.keywords.isEmpty else { throw ScriptError("tensors: name each tensor, as in tensors(saliency=s, input=x)") }
            return .record(Record(typeName: "tensors", fields: try args.keywords.map { name, value in
                guard let t = value.tensorValue else { throw ScriptError("tensors: '\(name)' must be a tensor, not \(value.describedType)", argument: name) }
                return (name, .tensor(Variable(t)))
            }))
        }
    }

    static var loadWeightsBuiltin: Builtin {
        Builtin("load_weights", category: .models,
                parameters: [.required("net", .network), .required("path", .string), .optional("strict", .bool, default: .bool(true))],
                summary: "Puts weights from a file (.pth, .npz, .safetensors, .onnx) on a network by parameter name.",
                help: "Names follow the network's layers (conv1.weight); PyTorch's module paths (features.0.weight) match layers named features_0. With strict (the default) every missing, unexpected or mis-shaped name is an error and nothing changes; without, what fits is loaded and the rest listed.",
                example: "net = load(\"fashion\")\nsave(net, \"out/copy.safetensors\")\nload_weights(net, \"out/copy.safetensors\")", exampleUsesFiles: true) { args, ctx in
            let net = try args.network("net")
            let path = (try args.string("path") as NSString).expandingTildeInPath
            do {
                let r = try NetworkFiles.loadWeights(into: net, from: path, strict: try args.bool("strict"))
                if !r.missing.isEmpty { ctx.print("missing: \(r.missing.joined(separator: ", "))") }
                if !r.unexpected.isEmpty { ctx.print("unexpected: \(r.unexpected.joined(separator: ", "))") }
                if !r.misshaped.isEmpty { ctx.print("mis-shaped: \(r.misshaped.map(\.name).joined(separator: ", "))") }
                return .number(Double(r.loaded.count))
            } catch let e as ModelFileError { throw ScriptError(e.description, argument: "path") }
        }
    }

    static var sampleBuiltin: Builtin {
        Builtin("sample", category: .models,
                parameters: [.required("label", .string, .integer), .optional("index", .integer, default: .number(1))],
                summary: "A bundled Fashion-MNIST test image of a class: sample(\"sneaker\"), sample(\"sneaker\", 2).",
                help: "A class by name (\"T-shirt/top\" or \"t-shirt\", \"ankle boot\", ...) or by index 0-9. Five images of each class ship with cnnlab.",
                example: "img = sample(\"sneaker\")\nimg.shape") { args, _ in
            var label: String
            if case .number = args["label"] {
                let i = try args.int("label")
                guard i >= 0 && i < Network.fashionClasses.count else { throw ScriptError("sample: class index \(i) is out of range 0 to 9", argument: "label") }
                label = Network.fashionClasses[i]
            } else { label = try args.string("label") }
            do { return .image(try ImageFile.read(try Bundled.samplePath(label, index: try args.int("index")))) }
            catch let e as ModelFileError { throw ScriptError("sample: \(e.description)", argument: "label") }
        }
    }

    static var photoBuiltin: Builtin {
        Builtin("photo", category: .models, parameters: [.required("name", .string)],
                summary: "A real photo fetched by `cnn fetch photos`: chelsea (a cat), coffee (an espresso), astronaut, rocket.",
                help: "The photos come from scikit-image's package, checked by their SHA-256. Networks fit a photo to their input (shorter side scaled, centre cropped).",
                example: "img = photo(\"chelsea\")\nimg.shape", exampleUsesFiles: true) { args, _ in
            do { return .image(try ImageFile.read(try Zoo.photoPath(try args.string("name")))) }
            catch let e as ModelFileError { throw ScriptError("photo: \(e.description)", argument: "name") }
        }
    }

    static var predictBuiltin: Builtin {
        Builtin("predict", category: .models, parameters: [.required("net", .network), .required("x", .tensor)],
                summary: "The network's class probabilities for one image (the softmax of its scores), with the top class.",
                help: "The result shows the top class; its fields are label, index, probability, probabilities and labels. top(predict(net, img), 3) lists the three most likely.",
                example: "net = load(\"fashion\")\npredict(net, sample(\"sneaker\")).label") { args, ctx in
            let net = try args.network("net")
            let scores = try NetworkCalls.apply(net, to: try networkInput(args, "x", net), upTo: nil, normalize: true, context: ctx.forwardContext())
            guard scores.shape.count == 1 else { throw ScriptError("predict: the network gives scores of shape \(Display.shape(scores.shape)), not one per class") }
            return prediction(try softmax(scores, axis: 0).value, labels: net.spec?.classNames ?? [])
        }
    }

    static var topBuiltin: Builtin {
        Builtin("top", category: .models, parameters: [.required("p", .any), .optional("k", .integer, default: .number(5))],
                summary: "The k most likely classes of a prediction (or the k largest entries of a vector), with their probabilities.",
                example: "top(predict(load(\"fashion\"), sample(\"bag\")), 3)") { args, _ in
            try topEntries(args["p"], try args.int("k"))
        }
    }

    static var trainBuiltin: Builtin {
        Builtin("train", category: .models,
                parameters: [.required("net", .network), .required("data", .string),
                             .optional("epochs", .integer, default: .number(1)), .optional("optimizer", .string, default: .string("adam")),
                             .optional("lr", .number, default: .number(0.001)), .optional("momentum", .number, default: .number(0.9)),
                             .optional("batch", .integer, default: .number(64)), .optional("limit", .integer, .none, default: .none),
                             .optional("seed", .integer, default: .number(0))],
                summary: "Trains a classifier on a folder of IDX files (MNIST style) by cross-entropy; returns its history.",
                help: "optimizer is \"adam\" or \"sgd\" (with momentum). `limit` trains on the first images only. The result's fields: loss (every step), epoch_loss, steps. Ctrl-C stops after the current step and keeps what was learned.",
                example: "small = network(flat=flatten(), fc=linear(784, 10))\nh = train(small, \"/usr/share/datasets/fashion-mnist\", limit=256)\nlen(h.loss)", exampleUsesFiles: true) { args, ctx in
            let net = try args.network("net")
            let data = try dataset(try args.string("data"), "train", limit: args.isNone("limit") ? nil : try args.int("limit"))
            let epochs = try args.int("epochs"), batch = try args.int("batch")
            guard epochs >= 1, batch >= 1 else { throw ScriptError("train: epochs and batch must be at least 1") }
            var options = TrainingOptions(epochs: epochs, batchSize: batch, seed: UInt64(max(0, try args.int("seed"))))
            let steps = epochs * ((data.count + batch - 1) / batch)
            let bar = ctx.progress("train", total: steps)
            options.progress = { epoch, _, _, loss in bar.advance(status: "epoch \(epoch + 1) loss \(Display.number(Double(loss)))") }
            options.isCancelled = { ctx.cancellation.isCancelled }
            let history: TrainingHistory
            let lr = Float(try args.number("lr"))
            switch try args.string("optimizer").lowercased() {
            case "adam":
                var opt = Adam(learningRate: lr)
                history = try train(net, images: data.images, labels: data.labels, optimizer: &opt, options: options)
            case "sgd":
                var opt = SGD(learningRate: lr, momentum: Float(try args.number("momentum")))
                history = try train(net, images: data.images, labels: data.labels, optimizer: &opt, options: options)
            case let other:
                throw ScriptError("train: unknown optimizer '\(other)'; optimizers are adam and sgd", argument: "optimizer")
            }
            bar.finish(status: history.cancelled ? "stopped" : "done")
            return .record(Record(typeName: "history", fields: [
                ("loss", .list(history.loss.map { .number(Double($0)) })),
                ("epoch_loss", .list(history.epochLoss.map { .number(Double($0)) })),
                ("steps", .number(Double(history.loss.count))),
            ]))
        }
    }

    static var evaluateBuiltin: Builtin {
        Builtin("evaluate", category: .models,
                parameters: [.required("net", .network), .required("data", .string), .optional("split", .string, default: .string("test")),
                             .optional("limit", .integer, .none, default: .none)],
                summary: "A classifier's accuracy over a folder of IDX files: overall and per class.",
                example: "evaluate(load(\"fashion\"), \"/usr/share/datasets/fashion-mnist\", limit=500).accuracy", exampleUsesFiles: true) { args, ctx in
            let net = try args.network("net")
            let data = try dataset(try args.string("data"), try args.string("split"), limit: args.isNone("limit") ? nil : try args.int("limit"))
            let bar = ctx.progress("evaluate", total: data.count)
            var done = 0
            let result = try evaluate(net, images: data.images, labels: data.labels, isCancelled: { ctx.cancellation.isCancelled }) { n, _ in
                bar.advance(by: n - done); done = n
            }
            bar.finish()
            return .record(Record(typeName: "evaluation", fields: [
                ("accuracy", .number(Double(result.accuracy))),
                ("per_class", .list(result.perClass.map { .number(Double($0)) })),
            ]))
        }
    }
}
