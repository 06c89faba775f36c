import Engine
import Foundation
import Models
import Visualize

/// Feature visualization as Lucid does it: objectives as values that add and scale, the
/// transforms as values, and one `render` that optimizes any of them.
extension Builtins {
    // MARK: objectives as values

    /// An objective as a language value: a record whose `terms` field lists its weighted terms
    /// (plain data), shown as its expression.
    static func objectiveValue(_ terms: [(weight: Double, fields: [(name: String, value: Value)])]) -> Value {
        let records = terms.map { t in Value.record(Record(typeName: "term", fields: [("weight", .number(t.weight))] + t.fields)) }
        return .record(Record(typeName: "objective", fields: [("expression", .string(expression(records))), ("terms", .list(records))]))
    }

    static func objectiveTerms(_ v: Value) -> [(weight: Double, fields: [(name: String, value: Value)])]? {
        guard case .record(let r) = v, r.typeName == "objective", case .list(let terms)? = r["terms"] else { return nil }
        return terms.compactMap { t in
            guard case .record(let tr) = t, case .number(let w)? = tr["weight"] else { return nil }
            return (w, tr.fields.filter { $0.name != "weight" })
        }
    }

    /// How an objective reads: `channel("conv5", 3) - 0.1 * diversity("conv4")`.
    static func expression(_ terms: [Value]) -> String {
        var s = ""
        for (i, t) in terms.enumerated() {
            guard case .record(let r) = t, case .number(let w)? = r["weight"], case .string(let kind)? = r["kind"] else { continue }
            var args: [String] = []
            for (name, value) in r.fields where !["weight", "kind"].contains(name) {
                if case .none = value { continue }
                let shown = Display.source(value)
                args.append(["layer", "class", "channel"].contains(name) ? shown : "\(name)=\(shown)")
            }
            let call = "\(kind)(\(args.joined(separator: ", ")))"
            let magnitude = abs(w) == 1 ? "" : Display.number(abs(w)) + " * "
            s += (i == 0 ? (w < 0 ? "-" : "") : (w < 0 ? " - " : " + ")) + magnitude + call
        }
        return s.isEmpty ? "0" : s
    }

    /// `+`, `-`, `*` and `/` between objectives and numbers; nil when neither side is an objective.
    static func objectiveArithmetic(_ op: BinaryOperator, _ a: Value, _ b: Value) throws -> Value? {
        let ta = objectiveTerms(a), tb = objectiveTerms(b)
        guard ta != nil || tb != nil else { return nil }
        func scaled(_ t: [(weight: Double, fields: [(name: String, value: Value)])], _ k: Double) -> [(weight: Double, fields: [(name: String, value: Value)])] {
            t.map { ($0.weight * k, $0.fields) }
        }
        switch (op, ta, tb, a, b) {
        case (.add, let x?, let y?, _, _): return objectiveValue(x + y)
        case (.subtract, let x?, let y?, _, _): return objectiveValue(x + scaled(y, -1))
        case (.multiply, let x?, nil, _, .number(let k)), (.multiply, nil, let x?, .number(let k), _):
            guard k.isFinite else { throw ScriptError("an objective's weight must be a finite number") }
            return objectiveValue(scaled(x, k))
        case (.divide, let x?, nil, _, .number(let k)):
            guard k != 0, k.isFinite else { throw ScriptError("an objective can be divided by a non-zero number only") }
            return objectiveValue(scaled(x, 1 / k))
        default:
            throw ScriptError("objectives add and subtract (channel(\"conv5\", 3) + neuron(\"conv4\", 1)) and scale by numbers (0.1 * diversity(\"conv4\")); '\(op.rawValue)' does not apply to \(a.describedType) and \(b.describedType)")
        }
    }

    static func negatedObjective(_ v: Value) -> Value? {
        objectiveTerms(v).map { objectiveValue($0.map { (-$0.weight, $0.fields) }) }
    }

    /// A language objective as the engine's, with its classes, layers and channels resolved on `net`.
    static func objective(_ v: Value, _ net: Network, argument: String = "objective") throws -> Objective {
        guard let terms = objectiveTerms(v) else {
            throw ScriptError("expected an objective such as logit(\"lemon\"), channel(\"layer\", 3), neuron(...), deepdream(\"layer\") or diversity(\"layer\") and their sums; got \(v.describedType)", argument: argument)
        }
        var out: [(weight: Float, term: Objective.Term)] = []
        for (w, fields) in terms {
            let r = Record(typeName: "term", fields: fields)
            func string(_ k: String) -> String { if case .string(let s)? = r[k] { return s }; return "" }
            func int(_ k: String) -> Int? { if case .number(let d)? = r[k] { return Int(d) }; return nil }
            let layer = string("layer")
            if !layer.isEmpty {
                do { _ = try net.layer(named: layer) } catch { throw ScriptError("\(error)", argument: argument) }
            }
            let term: Objective.Term
            switch string("kind") {
            case "logit":
                let c: Int
                if case .string(let name)? = r["class"] {
                    do { c = try Visualize.classIndex(named: name, in: net) } catch { throw ScriptError("\(error)", argument: argument) }
                } else { c = int("class") ?? 0 }
                term = .logit(c)
            case "channel": term = .channel(layer: layer, channel: int("channel") ?? 0)
            case "neuron": term = .neuron(layer: layer, channel: int("channel") ?? 0, y: int("y"), x: int("x"))
            case "deepdream": term = .layer(layer)
            default: term = .diversity(layer)
            }
            out.append((Float(w), term))
        }
        return Objective(terms: out)
    }

    // MARK: transforms as values

    static func transformValue(_ t: ImageTransform) -> Value {
        var fields: [(name: String, value: Value)]
        func list(_ xs: [Float]) -> Value { .list(xs.map { .number(Double($0)) }) }
        switch t {
        case .pad(let w, let v): fields = [("kind", .string("margin")), ("width", .number(Double(w))), ("value", .number(Double(v)))]
        case .jitter(let d): fields = [("kind", .string("jitter")), ("pixels", .number(Double(d)))]
        case .scale(let s): fields = [("kind", .string("random_scale")), ("scales", list(s))]
        case .rotate(let a): fields = [("kind", .string("random_rotate")), ("angles", list(a))]
        }
        return .record(Record(typeName: "transform", fields: [("expression", .string(t.description))] + fields))
    }

    /// The transforms argument: "standard", "none", or a list of transform values.
    static func transforms(_ args: Arguments, _ name: String = "transforms", side: Int = 224) throws -> [ImageTransform] {
        switch args[name] {
        case .string(let s) where s == "standard": return ImageTransform.standard(side: side)
        case .string(let s) where s == "none": return []
        case .none: return []
        case .list(let xs):
            return try xs.map { x in
                guard case .record(let r) = x, r.typeName == "transform", case .string(let kind)? = r["kind"] else {
                    throw ScriptError("transforms are made by margin(12), jitter(8), random_scale([0.9, 1, 1.1]) and random_rotate([-10, 0, 10]); found \(x.describedType)", argument: name)
                }
                func num(_ k: String) -> Double { if case .number(let d)? = r[k] { return d }; return 0 }
                func floats(_ k: String) -> [Float] { if case .list(let v)? = r[k] { return v.compactMap { if case .number(let d) = $0 { return Float(d) }; return nil } }; return [] }
                switch kind {
                case "margin": return .pad(width: Int(num("width")), value: Float(num("value")))
                case "jitter": return .jitter(Int(num("pixels")))
                case "random_scale": return .scale(floats("scales"))
                default: return .rotate(floats("angles"))
                }
            }
        case let v:
            throw ScriptError("transforms is \"standard\" (Lucid's pad, jitter, scale, rotate), \"none\", or a list such as [margin(12), jitter(8)]; got \(v.describedType)", argument: name)
        }
    }

    // MARK: the options every render takes

    static var renderParameters: [BuiltinParameter] { [
        .optional("param", .string, default: .string("fourier")), .optional("decorrelate", .bool, .none, default: .none),
        .optional("range", .string, default: .string("sigmoid")), .optional("decay", .number, default: .number(1)),
        .optional("sd", .number, default: .number(0.01)), .optional("transforms", .string, .list, .none, default: .string("standard")),
        .optional("redirect", .integer, default: .number(16)), .optional("size", .integer, .none, default: .none),
    ] }

    static func renderOptions(_ args: Arguments, _ net: Network, steps: Int, lr: Double, batch: Int, seed: Int,
                              transforms: [ImageTransform]? = nil) throws -> RenderOptions {
        guard let basis = ImageParametrization.Basis(rawValue: try args.string("param")) else {
            throw ScriptError("param is \(ImageParametrization.Basis.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or "))", argument: "param")
        }
        guard let range = ImageParametrization.Range(rawValue: try args.string("range")) else {
            throw ScriptError("range is \(ImageParametrization.Range.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: " or "))", argument: "range")
        }
        var p: ImageParametrization
        do { p = try Visualize.defaultParametrization(for: net, batch: batch) } catch { throw ScriptError("\(error)", argument: "net") }
        p.basis = basis; p.range = range
        if !args.isNone("decorrelate") { p.decorrelate = try args.bool("decorrelate") }
        if p.decorrelate && p.channels != 3 { throw ScriptError("decorrelate=true needs a colour network; this one takes \(p.channels) channel(s)", argument: "decorrelate") }
        p.decayPower = Float(try args.number("decay")); p.initialStd = Float(try args.number("sd"))
        if !args.isNone("size") { let s = try args.int("size"); p.height = s; p.width = s }
        let options = RenderOptions(parametrization: p, transforms: try transforms ?? Builtins.transforms(args, side: min(p.height, p.width)), steps: steps,
                                    learningRate: Float(lr), redirectSteps: try args.int("redirect"), seed: UInt64(max(0, seed)))
        do { try options.validate() } catch {
            let text = "\(error)"
            let argument = text.hasPrefix("decay") ? "decay" : text.hasPrefix("sd") ? "sd" : text.hasPrefix("steps") ? "steps"
                : text.contains("learning rate") ? "lr" : text.hasPrefix("batch") ? "batch" : text.contains("size") ? "size"
                : text.hasPrefix("redirect") ? "redirect" : "transforms"
            throw ScriptError(text, argument: argument)
        }
        return options
    }

    static func renderResult(_ r: RenderResult, _ kind: String) -> Value {
        let n = r.images.shape[0], per = r.images.count / max(n, 1)
        let images = (0..<n).map { i in
            Value.image(Tensor(shape: Array(r.images.shape.dropFirst()), scalars: Array(r.images.scalars[(i * per)..<((i + 1) * per)])))
        }
        return .record(Record(typeName: kind, fields: [
            ("image", images[0]), ("images", .list(images)), ("history", .list(r.history.map { .number(Double($0)) })),
            ("steps", .number(Double(r.steps))), ("cancelled", .bool(r.cancelled)),
        ]))
    }

    /// Runs a render with a progress bar and Ctrl-C.
    static func runRender(_ ctx: CallContext, _ label: String, _ net: Network, _ objective: Objective, _ options: RenderOptions,
                          start: Tensor? = nil) throws -> Value {
        let (control, bar) = loop(ctx, label, total: options.steps)
        let r = try Visualize.render(net, objective, options: options, start: start, control: control)
        bar.finish(status: r.cancelled ? "stopped" : "")
        return renderResult(r, label)
    }

    static func layerName(_ args: Arguments, _ name: String = "layer") throws -> String {
        switch args[name] {
        case .layer(let l):
            guard let n = l.name else { throw ScriptError("name the layer of the network, as in \"conv2\"", argument: name) }
            return n
        default: return try args.string(name)
        }
    }

    static var rendering: [Builtin] {
        [
            logitBuiltin, channelBuiltin, neuronBuiltin, deepdreamBuiltin, diversityBuiltin, marginBuiltin,
            jitterBuiltin, randomScaleBuiltin, randomRotateBuiltin, renderBuiltin
        ]
    }

    static var logitBuiltin: Builtin {
        Builtin("logit", category: .visualize, parameters: [.required("class", .string, .integer)],
                summary: "An objective: a class score before the softmax, by name or index. For render, and it adds and scales.",
                example: "o = logit(\"lemon\")\no") { args, _ in
            if case .number(let d) = args["class"], d < 0 || d != d.rounded() { throw ScriptError("a class index is a whole number >= 0", argument: "class") }
            return objectiveValue([(1, [("kind", .string("logit")), ("class", args["class"])])])
        }
    }

    static var channelBuiltin: Builtin {
        Builtin("channel", category: .visualize, parameters: [.required("layer", .string, .layer), .required("channel", .integer)],
                summary: "An objective: the mean of one channel of a layer over its positions.",
                example: "channel(\"conv2\", 5) - 0.1 * diversity(\"conv2\")") { args, _ in
            let c = try args.int("channel")
            guard c >= 0 else { throw ScriptError("a channel is a whole number >= 0", argument: "channel") }
            return objectiveValue([(1, [("kind", .string("channel")), ("layer", .string(try layerName(args))), ("channel", .number(Double(c)))])])
        }
    }

    static var neuronBuiltin: Builtin {
        Builtin("neuron", category: .visualize,
                parameters: [.required("layer", .string, .layer), .required("channel", .integer),
                             .optional("y", .integer, .none, default: .none), .optional("x", .integer, .none, default: .none)],
                summary: "An objective: one unit of a channel, at (y, x), the centre by default.",
                example: "neuron(\"conv2\", 5, y=3, x=3)") { args, _ in
            let c = try args.int("channel")
            guard c >= 0 else { throw ScriptError("a channel is a whole number >= 0", argument: "channel") }
            for k in ["y", "x"] where !args.isNone(k) { guard try args.int(k) >= 0 else { throw ScriptError("\(k) is a position >= 0", argument: k) } }
            return objectiveValue([(1, [("kind", .string("neuron")), ("layer", .string(try layerName(args))), ("channel", .number(Double(c))),
                                        ("y", args["y"]), ("x", args["x"])])])
        }
    }

    static var deepdreamBuiltin: Builtin {
        Builtin("deepdream", category: .visualize, parameters: [.required("layer", .string, .layer)],
                summary: "An objective: the mean square of a whole layer's activations, as deep dream strengthens it.",
                example: "deepdream(\"conv2\")") { args, _ in
            objectiveValue([(1, [("kind", .string("deepdream")), ("layer", .string(try layerName(args)))])])
        }
    }

    static var diversityBuiltin: Builtin {
        Builtin("diversity", category: .visualize, parameters: [.required("layer", .string, .layer)],
                summary: "An objective: how alike the images of a batch are at a layer (cosine of their Gram matrices). Subtract it so a batch differs.",
                help: "Lucid's diversity term: sum over pairs of images i != j of cos(G_i, G_j) / N, G the Gram matrix of an image's channels. Render with batch >= 2.",
                example: "o = channel(\"conv2\", 5) - 0.5 * diversity(\"conv1\")\no") { args, _ in
            objectiveValue([(1, [("kind", .string("diversity")), ("layer", .string(try layerName(args)))])])
        }
    }

    static var marginBuiltin: Builtin {
        Builtin("margin", category: .visualize, parameters: [.required("width", .integer), .optional("value", .number, default: .number(0.5))],
                summary: "A render transform (Lucid's pad): a margin of `width` pixels of grey `value` around the image.",
                example: "render(load(\"fashion\"), channel(\"conv2\", 5), transforms=[margin(2), jitter(2)], steps=20)") { args, _ in
            let t = ImageTransform.pad(width: try args.int("width"), value: Float(try args.number("value")))
            do { try t.validate() } catch { throw ScriptError("\(error)", argument: "width") }
            return transformValue(t)
        }
    }

    static var jitterBuiltin: Builtin {
        Builtin("jitter", category: .visualize, parameters: [.required("pixels", .integer)],
                summary: "A render transform: shift the image by 0 to pixels-1 pixels along each axis, at random, every step.",
                example: "jitter(8)") { args, _ in
            let t = ImageTransform.jitter(try args.int("pixels"))
            do { try t.validate() } catch { throw ScriptError("\(error)", argument: "pixels") }
            return transformValue(t)
        }
    }

    static var randomScaleBuiltin: Builtin {
        Builtin("random_scale", category: .visualize, parameters: [.required("scales", .list)],
                summary: "A render transform: resize by a factor drawn from the list (bilinear), every step.",
                example: "random_scale([0.9, 0.95, 1, 1.05, 1.1])") { args, _ in
            let t = ImageTransform.scale(try numbers(args["scales"], "scales"))
            do { try t.validate() } catch { throw ScriptError("\(error)", argument: "scales") }
            return transformValue(t)
        }
    }

    static var randomRotateBuiltin: Builtin {
        Builtin("random_rotate", category: .visualize, parameters: [.required("angles", .list)],
                summary: "A render transform: rotate by an angle in degrees drawn from the list (bilinear), every step.",
                example: "random_rotate(-10..10)") { args, _ in
            let t = ImageTransform.rotate(try numbers(args["angles"], "angles"))
            do { try t.validate() } catch { throw ScriptError("\(error)", argument: "angles") }
            return transformValue(t)
        }
    }

    static var renderBuiltin: Builtin {
        Builtin("render", category: .visualize,
                parameters: [.required("net", .network), .required("objective", .any),
                             .optional("steps", .integer, default: .number(Double(defaultRenderSteps))), .optional("lr", .number, default: .number(0.05)),
                             .optional("batch", .integer, default: .number(1)), .optional("seed", .integer, default: .number(0)),
                             .optional("start", .image, .none, default: .none)] + renderParameters,
                summary: "Feature visualization as Lucid's render_vis: an image that maximizes an objective, made from Fourier coefficients with decorrelated colour, seen through random transforms, climbed by Adam.",
                help: "objective: logit, channel, neuron, deepdream, diversity and their weighted sums. param: \"fourier\" (Lucid's fft_image, spectrum scaled by 1/frequency^decay) or \"pixels\"; decorrelate: colour through ImageNet's colour-correlation square root (default: true for colour networks); range: \"sigmoid\" or \"clamp\" to reach [0, 1]; transforms: \"standard\" (pad 12, jitter 8, scale 0.9-1.1, rotate -10..10, jitter 4; pad and jitters scaled down for inputs under 128 pixels), \"none\" or a list of pad/jitter/random_scale/random_rotate; redirect: steps with ReLU's redirected gradient (units dead at the start still pass one); batch: images made together (diversity compares them); start: an image to begin from; size: the image's side (default: the network's input). Fields: image, images, history, steps, cancelled. Ctrl-C stops and keeps the best picture so far (the step with the highest objective).",
                example: "r = render(load(\"fashion\"), channel(\"conv2\", 5), steps=20, decorrelate=false, transforms=[jitter(2)])\nshow(r)") { args, ctx in
            let net = try args.network("net")
            let objective = try objective(args["objective"], net)
            let options = try renderOptions(args, net, steps: try args.int("steps"), lr: try args.number("lr"), batch: try args.int("batch"),
                                            seed: try args.int("seed"))
            let start = args.isNone("start") ? nil : try picture(args, "start", net)
            return try runRender(ctx, "render", net, objective, options, start: start)
        }
    }

    /// The steps of a render at default quality.
    static let defaultRenderSteps = Visualize.RenderOptions().steps
}
