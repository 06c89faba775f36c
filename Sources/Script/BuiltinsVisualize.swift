import Engine
import Foundation
import Imaging
import Models
import Visualize

/// Looking inside networks: the lecture's visualizations and the ones readers reach for next.
extension BuiltinCategory {
    public static let visualize = BuiltinCategory(name: "Visualization", order: 47)
}

extension Builtins {
    /// A class named by label ("sneaker") or given by index.
    static func classArgument(_ args: Arguments, _ name: String, _ net: Network) throws -> Int {
        if case .string(let s) = args[name] {
            do { return try Visualize.classIndex(named: s, in: net) } catch { throw ScriptError("\(error)", argument: name) }
        }
        let i = try args.int(name)
        let count = net.spec?.classNames.count ?? 0
        if count > 0, i < 0 || i >= count { throw ScriptError("class \(i) is out of range 0 to \(count - 1)", argument: name) }
        return i
    }

    /// One class of a list of classes: a name or an index.
    static func classIndex(_ v: Value, _ net: Network) throws -> Int {
        switch v {
        case .string(let name):
            do { return try Visualize.classIndex(named: name, in: net) } catch { throw ScriptError("\(error)", argument: "class") }
        case .number(let d) where d == d.rounded():
            let i = Int(d), count = net.spec?.classNames.count ?? 0
            if count > 0, i < 0 || i >= count { throw ScriptError("class \(i) is out of range 0 to \(count - 1)", argument: "class") }
            return i
        default:
            throw ScriptError("a class is a name or an index, not \(v.describedType)", argument: "class")
        }
    }

    /// The picture argument of a visualization, in display space, fitted to the network's input
    /// (gray or colour, its size: photos are scaled and centre-cropped).
    static func picture(_ args: Arguments, _ name: String, _ net: Network) throws -> Tensor {
        let t = try args.tensor(name).value
        guard let spec = net.spec else { return t }
        return try NetworkCalls.fitted(t, to: spec)
    }

    /// A progress bar and Ctrl-C for an iterative method.
    static func loop(_ ctx: CallContext, _ label: String, total: Int) -> (LoopControl, ProgressReporter) {
        let bar = ctx.progress(label, total: total)
        var last = 0
        let control = LoopControl(progress: { step, _, objective in
            bar.advance(by: step - last, status: objective.isFinite ? "objective \(Display.number(Double(objective)))" : "")
            last = step
        }, isCancelled: { ctx.cancellation.isCancelled })
        return (control, bar)
    }

    /// An optimisation's result: its picture, the objective per step, and whether Ctrl-C stopped it.
    static func optimization(_ r: OptimizationResult, _ kind: String) -> Value {
        .record(Record(typeName: kind, fields: [
            ("image", .image(r.image)), ("history", .list(r.history.map { .number(Double($0)) })),
            ("steps", .number(Double(r.steps))), ("cancelled", .bool(r.cancelled)),
        ]))
    }

    static func numbers(_ v: Value, _ name: String) throws -> [Float] {
        if case .list(let xs) = v {
            return try xs.map { x -> Float in
                guard case .number(let d) = x else { throw ScriptError("\(name): expected numbers, found \(x.describedType)", argument: name) }
                return Float(d)
            }
        }
        return try Conversions.tensor(v).scalars
    }

    /// classviz and maximize: the render keywords, the plain method's, and `priors` to choose.
    static var shortRenderParameters: [BuiltinParameter] { [
        .optional("priors", .bool, .none, default: .none),
        .optional("steps", .integer, .none, default: .none), .optional("lr", .number, .none, default: .none),
        .optional("l2", .number, .none, default: .none), .optional("jitter", .integer, .none, default: .none),
        .optional("blur_every", .integer, .none, default: .none), .optional("clip", .number, .none, default: .none),
        .optional("seed", .integer, default: .number(0)), .optional("batch", .integer, default: .number(1)),
    ] + renderParameters }

    /// Whether classviz or maximize renders with the priors: `priors` when given, otherwise yes
    /// unless a keyword of the plain method (l2, jitter, blur_every, clip) is given.
    static func withPriors(_ args: Arguments) throws -> Bool {
        if !args.isNone("priors") { return try args.bool("priors") }
        return ["l2", "jitter", "blur_every", "clip"].allSatisfy { args.isNone($0) }
    }

    /// The plain method's regularizers, each off unless given.
    static func plainRegularizers(_ args: Arguments) throws -> (l2: Float, Regularizers) {
        func value(_ k: String, _ d: Double) throws -> Double { args.isNone(k) ? d : try args.number(k) }
        return (Float(try value("l2", 0.01)),
                Regularizers(jitter: Int(try value("jitter", 0)), blurEvery: Int(try value("blur_every", 0)),
                             clipValues: Float(try value("clip", 0)), seed: UInt64(max(0, try args.int("seed")))))
    }

    static func shortRenderOptions(_ args: Arguments, _ net: Network) throws -> RenderOptions {
        try renderOptions(args, net, steps: args.isNone("steps") ? defaultRenderSteps : try args.int("steps"),
                          lr: args.isNone("lr") ? 0.05 : try args.number("lr"), batch: try args.int("batch"), seed: try args.int("seed"))
    }

    /// The arguments saliency, smoothgrad and gradcam share.
    static var attributionParameters: [BuiltinParameter] { [
        .required("net", .network), .required("x", .image), .optional("class", .string, .integer, .none, default: .none),
        .optional("clip", .number, .none, default: .number(99)),
    ] }

    /// The class argument, or the network's top class for `x` when none is given.
    static func classOrTop(_ args: Arguments, _ net: Network, _ x: Tensor, _ name: String = "class") throws -> Int {
        args.isNone(name) ? try Visualize.topClass(net, x) : try classArgument(args, name, net)
    }

    /// An attribution map clipped at the `clip` percentile and scaled into [0, 1], or as it is with clip=none.
    static func clipped(_ map: Tensor, _ args: Arguments) throws -> Tensor {
        if args.isNone("clip") { return map }
        let p = try args.number("clip")
        guard p > 0, p <= 100 else { throw ScriptError("clip is a percentile above 0 and at most 100 (99 by default; none for the raw values), got \(Display.number(p))", argument: "clip") }
        return try percentileClipped(map, percentile: Float(p))
    }

    static var visualizations: [Builtin] {
        [
            filtersBuiltin, activationsBuiltin, summaryBuiltin, saliencyBuiltin, classvizBuiltin,
            maximizeBuiltin, invertBuiltin, deconvBuiltin, guidedBuiltin, gradcamBuiltin, smoothgradBuiltin,
            integratedGradientsBuiltin, occlusionBuiltin, dreamBuiltin, foolBuiltin, topPatchesBuiltin,
            plotBuiltin, barsBuiltin
        ]
    }

    static var filtersBuiltin: Builtin {
        Builtin("filters", category: .visualize,
                parameters: [.required("layer", .layer, .network), .optional("name", .string, .none, default: .none),
                             .optional("scale", .integer, default: .number(8)), .optional("layout", .string, default: .string("channels"))],
                summary: "A convolution layer's filters as a grid of tiles: filters(net.conv1, scale=8).",
                help: "First layers show one tile per filter (colour for RGB inputs). Deeper layers show, per filter, a row of its input channels (layout=\"channels\") or their mean (layout=\"mean\"). Also filters(net, \"conv2\").",
                example: "show(filters(load(\"fashion\").conv1, scale=4))") { args, _ in
            guard let layout = FilterLayout(rawValue: try args.string("layout")) else {
                throw ScriptError("filters: layout is \(FilterLayout.allCases.map(\.rawValue).joined(separator: " or "))", argument: "layout")
            }
            let scale = try args.int("scale")
            guard (1...64).contains(scale) else { throw ScriptError("filters: scale must be 1 to 64", argument: "scale") }
            let layer: Layer
            switch args["layer"] {
            case .layer(let l): layer = l.layer
            case .network(let n):
                guard !args.isNone("name") else { throw ScriptError("filters: name the layer, as in filters(net, \"conv1\")", argument: "name") }
                layer = try n.layer(named: try args.string("name"))
            default: throw ScriptError("filters: expected a layer", argument: "layer")
            }
            return .image(try Visualize.filters(layer, scale: scale, layout: layout))
        }
    }

    static var activationsBuiltin: Builtin {
        Builtin("activations", category: .visualize,
                parameters: [.required("net", .network), .required("x", .image), .required("layer", .string),
                             .optional("channel", .integer, .none, default: .none), .optional("scale", .integer, default: .number(4))],
                summary: "A layer's output for an image: every channel as a grid, or one channel.",
                help: "convolving the first filter with the input gives the first slice of the output volume: activations(net, img, \"conv1\", channel=0).",
                example: "net = load(\"fashion\")\nshow(activations(net, sample(\"sneaker\"), \"conv2\"))") { args, _ in
            let net = try args.network("net"), x = try picture(args, "x", net), layer = try args.string("layer")
            let scale = try args.int("scale")
            guard (1...32).contains(scale) else { throw ScriptError("activations: scale must be 1 to 32", argument: "scale") }
            if args.isNone("channel") { return .image(try Visualize.activations(net, x, layer: layer, scale: scale)) }
            return .image(try Visualize.activation(net, x, layer: layer, channel: try args.int("channel"), scale: scale))
        }
    }

    static var summaryBuiltin: Builtin {
        Builtin("summary", category: .visualize, parameters: [.required("net", .network), .optional("shape", .shape, .none, default: .none)],
                summary: "A network's layers with output shapes, parameters, multiply-adds and receptive fields on the input.",
                help: "The receptive field is the size of the input region a unit of the layer sees, and the jump how far apart neighbouring units' regions are: pooling makes both grow.",
                example: "summary(load(\"fashion\"))") { args, ctx in
            let s = try Visualize.summary(try args.network("net"), inputShape: args.isNone("shape") ? nil : try args.ints("shape"))
            ctx.print(s.table)
            return .none
        }
    }

    static var saliencyBuiltin: Builtin {
        Builtin("saliency", category: .visualize, parameters: attributionParameters,
                summary: "Simonyan et al. 2014: how much each pixel moves the class score, |dS_c/dI|, max over colour channels.",
                help: "The score is taken before the softmax; `class` defaults to the network's top class for the image. The result is a map [1, H, W] divided by its 99th percentile and clipped to [0, 1] (clip=100 scales by the maximum, clip=none gives the raw |dS_c/dI|), so more than its few brightest pixels show; show(overlay(img, s)) lays it over the image. smoothgrad and gradcam take the same arguments.",
                example: "net = load(\"fashion\")\nimg = sample(\"sneaker\")\ns = saliency(net, img)\nshow(overlay(img, s))") { args, _ in
            let net = try args.network("net"), x = try picture(args, "x", net)
            let map = try Visualize.saliency(net, x, class: try classOrTop(args, net, x))
            return .tensor(Variable(try clipped(map, args)))
        }
    }

    static var classvizBuiltin: Builtin {
        Builtin("classviz", category: .visualize,
                parameters: [.required("net", .network), .required("class", .string, .integer, .list)] + shortRenderParameters,
                summary: "A class model: the image that maximizes a class score. By default as Lucid renders it (Fourier image, decorrelated colour, random transforms, Adam); priors=false is Simonyan et al. 2014's plain gradient ascent.",
                help: "With priors (the default) this is render(net, logit(class)) and takes render's keywords (param, decorrelate, range, decay, sd, transforms, redirect, size, batch); steps defaults to \(defaultRenderSteps) and lr to 0.05. A list of classes gives a list of class models, each as its own call would make it, rendered side by side on the machine's cores (a slide of six in the time of three on two cores). With priors=false (or when l2, jitter, blur_every or clip is given and priors is not): argmax_I S_c(I) - l2 * |I|^2 from a zero image in the network's input space, steps 200, lr 1; jitter, blur_every and clip add the regularizers of Yosinski et al. The result shows as its picture; .history is the objective per step, for plot.",
                example: "v = classviz(load(\"fashion\"), class=\"trouser\", steps=30)\nshow(v)") { args, ctx in
            let net = try args.network("net")
            if case .list(let names) = args["class"] {
                let targets = try names.map { try classIndex($0, net) }
                guard !targets.isEmpty else { throw ScriptError("classviz: the list of classes is empty", argument: "class") }
                guard try withPriors(args) else {
                    throw ScriptError("classviz: a list of classes renders with the priors; call it once per class for priors=false", argument: "class")
                }
                let options = try shortRenderOptions(args, net)
                let (control, bar) = loop(ctx, "classviz", total: targets.count * options.steps)
                let results = try Visualize.renderEach(net, targets.map { Objective(.logit($0)) }, options: options, control: control)
                bar.finish(status: results.contains(where: \.cancelled) || results.count < targets.count ? "stopped" : "")
                return .list(results.map { renderResult($0, "classviz") })
            }
            let target = try classArgument(args, "class", net)
            if try withPriors(args) {
                return try runRender(ctx, "classviz", net, Objective(.logit(target)), try shortRenderOptions(args, net))
            }
            let steps = args.isNone("steps") ? 200 : try args.int("steps")
            let (control, bar) = loop(ctx, "classviz", total: steps)
            let (l2, regularizers) = try plainRegularizers(args)
            let r = try Visualize.classModel(net, class: target, steps: steps, learningRate: args.isNone("lr") ? 1 : Float(try args.number("lr")),
                                   l2: l2, regularizers: regularizers, control: control)
            bar.finish(status: r.cancelled ? "stopped" : "")
            return optimization(r, "classviz")
        }
    }

    static var maximizeBuiltin: Builtin {
        Builtin("maximize", category: .visualize,
                parameters: [.required("net", .network), .required("layer", .string), .required("channel", .integer),
                             .optional("unit", .shape, .none, default: .none)] + shortRenderParameters,
                summary: "The image that most excites a channel (its mean) or one unit ([y, x]) of any layer; as Lucid renders it by default, priors=false for plain gradient ascent.",
                help: "With priors this is render(net, channel(layer, c)) (or neuron(layer, c, y=, x=) for a unit) and takes render's keywords; with priors=false, gradient ascent from the zero image as classviz's.",
                example: "show(maximize(load(\"fashion\"), \"conv2\", 5, steps=30, decorrelate=false))") { args, ctx in
            let net = try args.network("net"), channel = try args.int("channel"), layer = try args.string("layer")
            var target = ActivationTarget.channel(channel)
            if !args.isNone("unit") {
                let u = try args.ints("unit", count: 2)
                target = .unit(channel: channel, y: u[0], x: u[1])
            }
            if try withPriors(args) {
                let term: Objective.Term
                switch target {
                case .channel(let c): term = .channel(layer: layer, channel: c)
                case .unit(let c, let y, let x): term = .neuron(layer: layer, channel: c, y: y, x: x)
                }
                return try runRender(ctx, "maximize", net, Objective(term), try shortRenderOptions(args, net))
            }
            let steps = args.isNone("steps") ? 200 : try args.int("steps")
            let (control, bar) = loop(ctx, "maximize", total: steps)
            let (l2, regularizers) = try plainRegularizers(args)
            let r = try Visualize.maximize(net, layer: layer, target: target, steps: steps, learningRate: args.isNone("lr") ? 1 : Float(try args.number("lr")),
                                 l2: l2, regularizers: regularizers, control: control)
            bar.finish(status: r.cancelled ? "stopped" : "")
            return optimization(r, "maximize")
        }
    }

    static var invertBuiltin: Builtin {
        Builtin("invert", category: .visualize,
                parameters: [.required("net", .network), .required("x", .image), .required("layer", .string),
                             .optional("steps", .integer, default: .number(200)), .optional("lr", .number, default: .number(0.2)),
                             .optional("alpha", .number, default: .number(6)), .optional("lambda_alpha", .number, default: .number(1)),
                             .optional("tv", .number, default: .number(1)), .optional("beta", .number, default: .number(2)),
                             .optional("weight", .number, .none, default: .none), .optional("jitter", .integer, .none, default: .none),
                             .optional("noise", .number, default: .number(0.1)), .optional("seed", .integer, default: .number(0))],
                summary: "Mahendran and Vedaldi: an image whose code at `layer` matches x's, from random noise, with natural-image priors.",
                help: "Minimizes weight * |phi(x) - phi0|^2 / |phi0|^2 + lambda_alpha * R_alpha(x) + tv * TV^beta(x), the priors normalized as in the paper by the image's range B (alpha-norm / (H W B^alpha)) and V = B/6.5 (TV / (H W V^beta)), by Adam (lr in units of B) with the image jittered by up to `jitter` pixels each step. By default weight is 80/s and jitter s/4 pixels (at most 4) for a layer of stride s on the image, so deeper codes lean more on the priors. `seed` picks the random start: several seeds give several images the network sees as the same code. Fields: image, error (the normalized reconstruction error |phi(x) - phi0|^2 / |phi0|^2 reached), correlation (with x), history (the objective per step), steps, cancelled.",
                example: "net = load(\"fashion\")\nr = invert(net, sample(\"sneaker\"), layer=\"conv2\", steps=50)\nshow(r)") { args, ctx in
            let net = try args.network("net"), steps = try args.int("steps"), x = try picture(args, "x", net)
            let layer = try args.string("layer")
            var o = InversionOptions()
            o.steps = steps
            o.learningRate = Float(try args.number("lr")); o.alpha = Float(try args.number("alpha"))
            o.lambdaAlpha = Float(try args.number("lambda_alpha")); o.lambdaTV = Float(try args.number("tv"))
            o.beta = Float(try args.number("beta")); o.lossWeight = args.isNone("weight") ? nil : Float(try args.number("weight"))
            o.jitter = try args.optionalInt("jitter"); o.initialNoise = Float(try args.number("noise"))
            o.seed = UInt64(max(0, try args.int("seed")))
            guard steps >= 0, steps <= 100_000 else { throw ScriptError("invert: steps must be between 0 and 100000", argument: "steps") }
            let (control, bar) = loop(ctx, "invert", total: steps)
            let r = try Visualize.invert(net, x, layer: layer, options: o, control: control)
            bar.finish(status: r.cancelled ? "stopped" : "error \(Display.number(Double(r.error)))")
            return .record(Record(typeName: "inversion", fields: [
                ("image", .image(r.image)), ("error", .number(Double(r.error))),
                ("correlation", .number(Double(try Visualize.correlation(r.image, x)))),
                ("history", .list(r.history.map { .number(Double($0)) })),
                ("steps", .number(Double(r.steps))), ("cancelled", .bool(r.cancelled)),
                ("label", .string(layer)),
            ]))
        }
    }

    static var deconvBuiltin: Builtin {
        Builtin("deconv", category: .visualize,
                parameters: [.required("net", .network), .required("x", .image), .required("layer", .string), .required("channel", .integer)],
                summary: "Zeiler and Fergus 2014: the strongest activation of a channel projected back to pixels by a deconvnet.",
                help: "Keeps the channel's largest activation, zeroes the rest, and runs back through unpooling (the max-pool switches), rectification (at ReLU and ReLU6) and transposed filters. Shows as Zeiler and Fergus show it: the projection cropped to the unit's receptive field beside the image patch it came from. Fields: image (that figure), full (the projection over the whole image, zero at gray), projection (signed), patch, y, x, activation. top_patches shows the 9 strongest over a set of images.",
                example: "show(deconv(load(\"fashion\"), sample(\"sneaker\"), layer=\"conv2\", channel=5))") { args, _ in
            let net = try args.network("net"), x = try picture(args, "x", net), layer = try args.string("layer")
            let p = try Visualize.deconv(net, x, layer: layer, channel: try args.int("channel"))
            return try projection(p, net: net, image: x, layer: layer)
        }
    }

    static var guidedBuiltin: Builtin {
        Builtin("guided", category: .visualize,
                parameters: [.required("net", .network), .required("x", .image), .optional("class", .string, .integer, .none, default: .none),
                             .optional("layer", .string, .none, default: .none), .optional("channel", .integer, default: .number(0))],
                summary: "Guided backpropagation: the gradient of a class score (or a channel) with ReLUs passing only positive signals both ways.",
                help: "With a class: the map [C, H, W], signed. With layer and channel: the strongest unit of the channel, shown as deconv shows its projection (cropped to the unit's receptive field beside the image patch), with the same fields; top_patches(..., method=\"guided\") shows the 9 strongest over a set of images.",
                example: "g = guided(load(\"fashion\"), sample(\"bag\"), class=\"bag\")\nshow(g)") { args, _ in
            let net = try args.network("net"), x = try picture(args, "x", net)
            if !args.isNone("layer") {
                let layer = try args.string("layer")
                return try projection(try Visualize.guided(net, x, layer: layer, channel: try args.int("channel")), net: net, image: x, layer: layer)
            }
            guard !args.isNone("class") else { throw ScriptError("guided: give a class, or a layer and channel", argument: "class") }
            return .tensor(Variable(try Visualize.guided(net, x, class: try classArgument(args, "class", net))))
        }
    }

    static var gradcamBuiltin: Builtin {
        Builtin("gradcam", category: .visualize,
                parameters: attributionParameters + [.optional("layer", .string, .none, default: .none)],
                summary: "Grad-CAM (Selvaraju et al.): where in the image a layer's features speak for the class, as a map [1, H, W].",
                help: "Channel weights are the spatial means of the class score's gradient; the map is ReLU of the weighted sum of the layer's channels, upsampled to the image. `layer` defaults to the last layer with feature maps larger than 1 x 1, `class` to the network's top class; `clip` as for saliency.",
                example: "net = load(\"fashion\")\nimg = sample(\"sandal\")\nshow(overlay(img, gradcam(net, img, class=\"sandal\", layer=\"conv2\")))") { args, _ in
            let net = try args.network("net"), x = try picture(args, "x", net)
            let layer = args.isNone("layer") ? try Visualize.lastSpatialLayer(net) : try args.string("layer")
            let g = try Visualize.gradcam(net, x, class: try classOrTop(args, net, x), layer: layer)
            return .tensor(Variable(try clipped(g.map, args)))
        }
    }

    static var smoothgradBuiltin: Builtin {
        Builtin("smoothgrad", category: .visualize,
                parameters: attributionParameters + [
                             .optional("samples", .integer, default: .number(50)), .optional("noise", .number, default: .number(0.15)),
                             .optional("seed", .integer, default: .number(0))],
                summary: "SmoothGrad: saliency averaged over copies of the image with Gaussian noise (noise as a fraction of its range).",
                help: "`class` defaults to the network's top class; `clip` as for saliency. Ctrl-C keeps the average of the samples done.",
                example: "show(smoothgrad(load(\"fashion\"), sample(\"coat\"), class=\"coat\", samples=10))") { args, ctx in
            let net = try args.network("net"), n = try args.int("samples"), x = try picture(args, "x", net)
            let target = try classOrTop(args, net, x)
            let (control, bar) = loop(ctx, "smoothgrad", total: n)
            let h = try Visualize.smoothgrad(net, x, class: target, samples: n,
                                   noise: Float(try args.number("noise")), seed: UInt64(max(0, try args.int("seed"))), control: control)
            bar.finish(status: h.cancelled ? "stopped" : "")
            return .tensor(Variable(try clipped(h.map, args)))
        }
    }

    static var integratedGradientsBuiltin: Builtin {
        Builtin("integrated_gradients", category: .visualize,
                parameters: [.required("net", .network), .required("x", .image), .required("class", .string, .integer),
                             .optional("steps", .integer, default: .number(50)), .optional("method", .string, default: .string("gausslegendre"))],
                summary: "Integrated gradients (Sundararajan et al.): attributions that add up to the score's change from a black image.",
                help: "Signed, shaped like the image. method: \(IntegrationMethod.allCases.map(\.rawValue).joined(separator: ", ")) (Captum's default is gausslegendre).",
                example: "a = integrated_gradients(load(\"fashion\"), sample(\"bag\"), class=\"bag\", steps=20)\nshow(a)") { args, ctx in
            let net = try args.network("net")
            let wanted = try args.string("method").lowercased()
            guard let method = IntegrationMethod.allCases.first(where: { $0.rawValue.lowercased() == wanted }) else {
                throw ScriptError("integrated_gradients: method is one of \(IntegrationMethod.allCases.map(\.rawValue).joined(separator: ", "))", argument: "method")
            }
            let r = try Visualize.integratedGradients(net, try picture(args, "x", net), class: try classArgument(args, "class", net), steps: try args.int("steps"),
                                            method: method, isCancelled: { ctx.cancellation.isCancelled })
            return .tensor(Variable(r.attributions))
        }
    }

    static var occlusionBuiltin: Builtin {
        Builtin("occlusion", category: .visualize,
                parameters: [.required("net", .network), .required("x", .image), .required("class", .string, .integer),
                             .optional("window", .integer, default: .number(6)), .optional("stride", .integer, default: .number(2))],
                summary: "Zeiler and Fergus's occlusion test: how much the class probability drops when a gray square hides each place.",
                example: "show(occlusion(load(\"fashion\"), sample(\"trouser\"), class=\"trouser\"))") { args, ctx in
            let net = try args.network("net")
            let (control, bar) = loop(ctx, "occlusion", total: 1)
            let h = try Visualize.occlusion(net, try picture(args, "x", net), class: try classArgument(args, "class", net), window: try args.int("window"),
                                  stride: try args.int("stride"), control: control)
            bar.finish()
            return .tensor(Variable(h.map))
        }
    }

    static var dreamBuiltin: Builtin {
        Builtin("dream", category: .visualize,
                parameters: [.required("net", .network), .required("x", .image), .required("layer", .string),
                             .optional("steps", .integer, .none, default: .none), .optional("lr", .number, .none, default: .none),
                             .optional("priors", .bool, default: .bool(true)), .optional("seed", .integer, default: .number(0))] + renderParameters,
                summary: "Deep dream: the image nudged to make a layer's activations stronger.",
                help: "By default render(net, deepdream(layer), start=x) for 64 steps, lr 0.05, with render's keywords (param=\"pixels\" keeps closer to the photo). priors=false is the original: normalized gradient steps on 1/2 |A|^2 in input space, 30 steps, lr 0.02.",
                example: "show(dream(load(\"fashion\"), sample(\"bag\"), \"conv2\", steps=10, decorrelate=false))") { args, ctx in
            let net = try args.network("net"), x = try picture(args, "x", net), layer = try args.string("layer")
            if try args.bool("priors") {
                let options = try renderOptions(args, net, steps: args.isNone("steps") ? 64 : try args.int("steps"),
                                                lr: args.isNone("lr") ? 0.05 : try args.number("lr"), batch: 1, seed: try args.int("seed"))
                return try runRender(ctx, "dream", net, Objective(.layer(layer)), options, start: x)
            }
            let steps = args.isNone("steps") ? 30 : try args.int("steps")
            let (control, bar) = loop(ctx, "dream", total: steps)
            let r = try Visualize.dream(net, x, layer: layer, steps: steps,
                              learningRate: args.isNone("lr") ? 0.02 : Float(try args.number("lr")), control: control)
            bar.finish(status: r.cancelled ? "stopped" : "")
            return optimization(r, "dream")
        }
    }

    static var foolBuiltin: Builtin {
        Builtin("fool", category: .visualize,
                parameters: [.required("net", .network), .required("x", .image), .required("class", .string, .integer),
                             .optional("steps", .integer, default: .number(100)), .optional("lr", .number, default: .number(0.01))],
                summary: "An image nudged by gradient steps until the network calls it `class` (Nguyen et al. 2015).",
                help: "Gradient ascent on log p_class on the render pipeline: the pixels are the parameters (clamped to [0, 1], no transforms) and Adam with step lr moves each by about lr per step; it stops as soon as the network says `class`. Fields: image, label (what the network now says), probability, succeeded_at (the step, or none).",
                example: "f = fool(load(\"fashion\"), sample(\"sneaker\"), class=\"sandal\")\nf.label") { args, ctx in
            let net = try args.network("net"), steps = try args.int("steps")
            let (control, bar) = loop(ctx, "fool", total: steps)
            let r = try Visualize.fool(net, try picture(args, "x", net), class: try classArgument(args, "class", net), steps: steps,
                             learningRate: Float(try args.number("lr")), control: control)
            bar.finish(status: r.cancelled ? "stopped" : "")
            let names = net.spec?.classNames ?? []
            return .record(Record(typeName: "fooled", fields: [
                ("image", .image(r.image)),
                ("label", .string(r.prediction < names.count ? names[r.prediction] : String(r.prediction))),
                ("probability", .number(Double(r.probability))),
                ("succeeded_at", r.succeededAt.map { .number(Double($0)) } ?? .none),
                ("history", .list(r.history.map { .number(Double($0)) })),
            ]))
        }
    }

    static var topPatchesBuiltin: Builtin {
        Builtin("top_patches", category: .visualize,
                parameters: [.required("net", .network), .required("layer", .string), .required("channel", .integer),
                             .required("images", .string, .list, .tensor), .optional("k", .integer, default: .number(9)),
                             .optional("method", .string, default: .string("deconvnet"))],
                summary: "The k image regions that most excite a channel, beside their projections (Zeiler and Fergus's figure).",
                help: "images: a folder of photos (PNG or JPEG, each fitted to the network: resized and centre-cropped) or of IDX files (its test split), a list of images (fitted the same way), or a batch tensor [N, C, H, W]; images are streamed in batches and each counts once. Each patch is the unit's receptive field; beside it, its projection cropped to the same field by the deconvnet (method=\"deconvnet\") or by guided backpropagation (method=\"guided\"). Fields: image (the figure), patches, projections, images (which image each came from), files (for a folder of photos), activations.",
                example: "show(top_patches(load(\"fashion\"), \"conv2\", 5, \"/usr/share/datasets/fashion-mnist\"))", exampleUsesFiles: true) { args, ctx in
            let net = try args.network("net"), layer = try args.string("layer"), channel = try args.int("channel")
            let rule = try projectionRule(args)
            let source: ImageSource
            var files: [String] = []
            switch args["images"] {
            case .string(let folder):
                files = try imageFiles(in: folder)
                if files.isEmpty {
                    source = try TensorImages(try dataset(folder, "test", limit: nil).images)
                } else {
                    source = FileImages(paths: files) { t in try net.spec.map { try NetworkCalls.fitted(t, to: $0) } ?? t }
                }
            case .list(let xs):
                source = try TensorImages(try stackImages(try xs.map { x in
                    let t = try Conversions.tensor(x)
                    return try net.spec.map { try NetworkCalls.fitted(t, to: $0) } ?? t
                }))
            default: source = try TensorImages(try args.tensor("images").value)
            }
            let k = try args.int("k")
            guard (1...100).contains(k) else { throw ScriptError("top_patches: k must be between 1 and 100", argument: "k") }
            let perImage = try source.images(in: 0..<1).count
            let (control, bar) = loop(ctx, "top_patches", total: source.imageCount)
            let r: TopPatches
            do {
                r = try Visualize.topPatches(net, layer: layer, channel: channel, images: source, k: k, rule: rule,
                                             batchSize: max(1, min(256, 4_000_000 / max(1, perImage))), control: control)
            } catch EngineError.invalidArgument(let m) where m.contains("channel") { throw ScriptError(m, argument: "channel") }
            bar.finish(status: r.cancelled ? "stopped" : "")
            var fields: [(name: String, value: Value)] = [
                ("image", .image(try r.picture())),
                ("patches", .list(r.patches.map { .image($0.patch) })),
                ("projections", .list(r.patches.map { .tensor(Variable($0.projection)) })),
                ("images", .list(r.patches.map { .number(Double($0.imageIndex)) })),
                ("activations", .list(r.patches.map { .number(Double($0.activation)) })),
                ("label", .string("\(layer) ch \(channel)")),
            ]
            if !files.isEmpty {
                fields.append(("files", .list(r.patches.map { .string((files[$0.imageIndex] as NSString).lastPathComponent) })))
            }
            return .record(Record(typeName: "top_patches", fields: fields))
        }
    }

    static var plotBuiltin: Builtin {
        Builtin("plot", category: .visualize,
                parameters: [.required("values", .list, .tensor), .optional("title", .string, .none, default: .none),
                             .optional("xlabel", .string, default: .string("step")), .optional("ylabel", .string, .none, default: .none)],
                summary: "A line chart of numbers as a picture: a loss curve, a score per step.",
                example: "show(plot([3, 2, 1.5, 1.2, 1.1], title=\"loss\"))") { args, _ in
            .image(try Visualize.plot(try numbers(args["values"], "values"), title: args.isNone("title") ? nil : try args.string("title"),
                            xLabel: try args.string("xlabel"), yLabel: args.isNone("ylabel") ? nil : try args.string("ylabel")))
        }
    }

    static var barsBuiltin: Builtin {
        Builtin("bars", category: .visualize,
                parameters: [.required("values", .list, .tensor), .optional("labels", .list, .none, default: .none), .optional("title", .string, .none, default: .none)],
                summary: "A bar chart as a picture, e.g. accuracy per class.",
                example: "e = evaluate(load(\"fashion\"), \"/usr/share/datasets/fashion-mnist\", limit=500)\nshow(bars(e.per_class, labels=load(\"fashion\").classes))", exampleUsesFiles: true) { args, _ in
            var labels: [String]? = nil
            if case .list(let xs) = args["labels"] { labels = xs.map(Display.plain) }
            return .image(try Visualize.bars(try numbers(args["values"], "values"), labels: labels, title: args.isNone("title") ? nil : try args.string("title")))
        }
    }

    /// The picture files (PNG, JPEG) in a folder, sorted by name; none for a folder of IDX
    /// files. A path that is no folder is an error that says what is expected.
    static func imageFiles(in folder: String) throws -> [String] {
        let path = (folder as NSString).expandingTildeInPath
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
            throw ScriptError("top_patches: '\(folder)' is not a folder; give a folder of photos (PNG, JPEG) or of IDX files, a list of images, or a batch tensor", argument: "images")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        return names.filter { ["png", "jpg", "jpeg"].contains(($0 as NSString).pathExtension.lowercased()) }
            .map { (path as NSString).appendingPathComponent($0) }
    }

    /// The method= argument of the projections: the deconvnet or guided backpropagation.
    static func projectionRule(_ args: Arguments) throws -> ReLURule {
        switch try args.string("method").lowercased() {
        case "deconvnet", "deconv": return .deconvnet
        case "guided": return .guided
        case let other:
            throw ScriptError("method is \"deconvnet\" (Zeiler and Fergus) or \"guided\" (guided backpropagation), not \"\(other)\"", argument: "method")
        }
    }

    /// Images of one shape [C, H, W] as a batch [N, C, H, W].
    static func stackImages(_ xs: [Tensor]) throws -> Tensor {
        guard let first = xs.first else { throw ScriptError("top_patches: the list of images is empty", argument: "images") }
        let shape = first.rank == 2 ? [1] + first.shape : first.shape
        guard shape.count == 3, xs.allSatisfy({ $0.count == first.count }) else {
            throw ScriptError("top_patches: the images must all have one shape [C, H, W]; the first is \(Display.shape(first.shape))", argument: "images")
        }
        return Tensor(shape: [xs.count] + shape, scalars: xs.flatMap(\.scalars))
    }

    static func projection(_ p: Projection, net: Network, image: Tensor, layer: String) throws -> Value {
        let figure = try projectionFigure(net, image, layer: layer, projection: p)
        return .record(Record(typeName: "projection", fields: [
            ("image", .image(figure.picture)), ("full", .image(p.picture)), ("projection", .tensor(Variable(p.projection))),
            ("patch", .image(figure.patch)),
            ("channel", .number(Double(p.channel))), ("y", .number(Double(p.y))), ("x", .number(Double(p.x))),
            ("activation", .number(Double(p.activation))), ("label", .string("\(layer) ch \(p.channel)")),
        ]))
    }
}
