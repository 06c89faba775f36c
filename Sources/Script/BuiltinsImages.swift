import Engine
import Foundation
import Imaging
import Models

/// Pictures: reading, saving, showing, and the transforms a demo needs.
extension Builtins {
    /// A value as a picture in display space, [1, H, W] or [3, H, W] with values in [0, 1].
    /// Images are used as they are; other tensors are scaled min to max when they leave [0, 1].
    public static func picture(_ v: Value) throws -> Tensor {
        var t: Tensor
        switch v {
        case .image(let i): t = i
        case .tensor(let x): t = x.value
        case .record(let r) where r["image"] != nil: return try picture(r["image"]!)
        default: throw ScriptError("\(v.describedType) is not a picture; pictures are tensors [C, H, W] or [H, W]")
        }
        if t.rank == 4 && t.shape[0] == 1 { t = try t.reshaped(Array(t.shape.dropFirst())) }
        if t.rank == 2 { t = try t.reshaped([1] + t.shape) }
        guard t.rank == 3, t.shape[1] > 0, t.shape[2] > 0 else {
            throw ScriptError("a tensor of shape \(Display.shape(t.shape)) is not a picture; pictures are [C, H, W] or [H, W]")
        }
        guard t.shape[0] == 1 || t.shape[0] == 3 else {
            throw ScriptError("a tensor of \(t.shape[0]) channels is not a picture (1 or 3 channels); show one channel with x[0], or all of them side by side with grid")
        }
        if case .image = v { return t.map { Swift.min(Swift.max($0, 0), 1) } }
        let low = t.min(), high = t.max()
        return low < 0 || high > 1 ? rescaled(t, .minMax) : t
    }

    static var images: [Builtin] {
        [
            imageBuiltin, saveBuiltin, showBuiltin, resizeBuiltin, cropBuiltin, normalizeBuiltin, gridBuiltin,
            colormapBuiltin, overlayBuiltin, upscaleBuiltin
        ]
    }

    static var imageBuiltin: Builtin {
        Builtin("image", category: .images, parameters: [.required("path", .string)],
                summary: "Reads a PNG or JPEG file as an image [C, H, W] with values in [0, 1].",
                help: "Gray files give 1 channel, colour files 3 (transparency is dropped).",
                example: "img = image(\"photo.png\")", exampleUsesFiles: true) { args, _ in
            .image(try ImageFile.read(try args.string("path")))
        }
    }

    static var saveBuiltin: Builtin {
        Builtin("save", category: .images, parameters: [.required("x", .image, .network, .any), .required("path", .string),
                                                         .optional("name", .string, default: .string("tensor"))],
                summary: "Writes a picture to a PNG file, a network to a .safetensors file, or tensors to .npy, .npz or .safetensors; creates the folder if needed.",
                help: "Tensors outside [0, 1] are scaled min to max first for a PNG, as `show` does. A network keeps its architecture beside its weights, so load(path) gives it back. A tensor goes to .npy as float32 in C order with its shape (np.load reads it); several go to one .npz or .safetensors file as a record: save(tensors(a=x, b=y), path). A single tensor in a .npz or .safetensors file is called `name`. The file is written whole or not at all.",
                example: "save(randn(28, 28, seed=1), \"out/noise.png\")", exampleUsesFiles: true) { args, _ in
            let path = try args.string("path")
            let ext = (path as NSString).pathExtension.lowercased()
            if case .network(let net) = args["x"] {
                guard ext == "safetensors" else { throw ScriptError("save: networks are saved as .safetensors files", argument: "path") }
                let folder = (path as NSString).deletingLastPathComponent
                if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
                do { try NetworkFiles.save(net, to: path) } catch let e as ModelFileError { throw ScriptError(e.description, argument: "path") }
                return .none
            }
            if ["npy", "npz", "safetensors"].contains(ext) {
                let named = try namedTensors(args["x"], name: try args.string("name"))
                let folder = (path as NSString).deletingLastPathComponent
                if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
                do { try TensorFiles.write(named, to: (path as NSString).expandingTildeInPath) }
                catch let e as ModelFileError { throw ScriptError("save: \(e.description)", argument: "x") }
                return .none
            }
            if case .record(let r) = args["x"], r.typeName == "tensors" {
                throw ScriptError("save: several tensors go to a .npz or .safetensors file", argument: "path")
            }
            guard path.lowercased().hasSuffix(".png") else { throw ScriptError("save: writes pictures to .png files and tensors to .npy, .npz or .safetensors; end the name with one of those", argument: "path") }
            let pixels: Tensor
            do { pixels = try picture(args["x"]) } catch let e as ScriptError { throw ScriptError("save: \(e.message)", argument: "x") }
            let folder = (path as NSString).deletingLastPathComponent
            if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            try ImageFile.writePNG(pixels, to: path)
            return .none
        }
    }

    static var showBuiltin: Builtin {
        Builtin("show", category: .images, parameters: [.required("x", .any), .optional("caption", .string, .none, default: .none)],
                summary: "Shows a picture: inline in the shell or a notebook, as a file from `cnn run`.",
                help: "A tensor [C, H, W] or [H, W] outside [0, 1] is scaled min to max; a list of pictures is shown as a grid. Other values are shown as text.",
                example: "show(randn(28, 28, seed=1))") { args, ctx in
            let caption = args.isNone("caption") ? nil : try args.string("caption")
            let x = args["x"]
            switch x {
            case .tensor, .image, .record where x.tensorValue != nil:
                do { ctx.emit(.image(ImageOutput(pixels: try picture(x), caption: caption))) }
                catch let e as ScriptError { throw ScriptError("show: \(e.message)", argument: "x") }
            case .list(let xs) where !xs.isEmpty && xs.allSatisfy({ $0.tensorValue != nil }):
                ctx.emit(.image(ImageOutput(pixels: try labelledGrid(xs, ctx: ctx), caption: caption)))
            default:
                ctx.emit(.value(DisplayedValue(value: x, text: Display.text(x))))
            }
            return .none
        }
    }

    static var resizeBuiltin: Builtin {
        Builtin("resize", category: .images, parameters: [.required("x", .image), .required("size", .integer), .optional("width", .integer, .none, default: .none)],
                summary: "A picture resized: resize(img, h, w), or resize(img, n) for a shorter side of n.",
                help: "Bilinear, averaging when shrinking (as PIL and torchvision do), so fine detail does not alias.",
                example: "resize(zeros(1, 28, 28), 14).shape") { args, _ in
            let x = try args.tensor("x").value, size = try args.int("size")
            guard size > 0, size <= 8192 else { throw ScriptError("resize: the size must be between 1 and 8192", argument: "size") }
            let r: Tensor
            let planes = x.count / max(1, (x.shape.suffix(2).reduce(1, *)))
            if args.isNone("width") {
                try Conversions.checkShape([planes, size, size * max(1, x.shape.suffix(2).max() ?? 1) / max(1, x.shape.suffix(2).min() ?? 1)])
                r = try resize(x, shorterSide: size)
            } else {
                let w = try args.int("width")
                guard w > 0, w <= 8192 else { throw ScriptError("resize: the width must be between 1 and 8192", argument: "width") }
                try Conversions.checkShape([planes, size, w])
                r = try resize(x, height: size, width: w)
            }
            if case .image = args["x"] { return .image(r) }
            return .tensor(Variable(r))
        }
    }

    static var cropBuiltin: Builtin {
        Builtin("crop", category: .images, parameters: [.required("x", .image), .required("size", .integer), .optional("width", .integer, .none, default: .none)],
                summary: "The central size x size (or size x width) region of a picture.",
                example: "crop(zeros(3, 32, 32), 24).shape") { args, _ in
            let x = try args.tensor("x").value, h = try args.int("size")
            let w = try args.optionalInt("width") ?? h
            guard h > 0, w > 0 else { throw ScriptError("crop: the size must be positive") }
            let r = try centerCrop(x, height: h, width: w)
            if case .image = args["x"] { return .image(r) }
            return .tensor(Variable(r))
        }
    }

    static var normalizeBuiltin: Builtin {
        Builtin("normalize", category: .images,
                parameters: [.required("x", .image), .optional("preset", .string, .none, default: .string("imagenet")),
                             .optional("mean", .number, .list, .none, default: .none), .optional("std", .number, .list, .none, default: .none)],
                summary: "A picture mapped into a network's input space: (x - mean) / std per channel.",
                help: "Presets: imagenet, unit (no change), symmetric (to [-1, 1]). Or give mean and std, one number or one per channel. The result is a tensor, no longer a picture.",
                example: "normalize(ones(3, 2, 2), \"symmetric\")") { args, _ in
            let x = try args.tensor("x").value
            let n: Normalization
            if !args.isNone("mean") || !args.isNone("std") {
                func floats(_ name: String) throws -> [Float] {
                    if case .number(let d) = args[name] { return [Float(d)] }
                    if args.isNone(name) { return [name == "std" ? 1 : 0] }
                    return try Conversions.tensor(args[name]).scalars
                }
                n = try Normalization(mean: try floats("mean"), std: try floats("std"))
            } else {
                n = try Normalization.named(try args.string("preset"))
            }
            return .tensor(Variable(try n.normalize(x)))
        }
    }

    static var gridBuiltin: Builtin {
        Builtin("grid", category: .images,
                parameters: [.required("images", .list), .optional("columns", .integer, .none, default: .none),
                             .optional("labels", .list, .none, default: .none), .optional("padding", .integer, default: .number(2)),
                             .optional("net", .network, .none, default: .none)],
                summary: "Pictures side by side in one picture, in rows of `columns`, each with a label under it.",
                help: "Sizes may differ, gray and colour may mix. Each tensor is scaled for display on its own. `labels` writes a caption under each; with `net`, each tile is labelled with the class the network sees in it and its probability (\"lemon 0.97\"); otherwise results that know what they are (an inversion its layer, a projection its layer and channel) label themselves. Labels grow with the tiles, so they stay readable on a projector.",
                example: "grid([zeros(1, 8, 8), ones(1, 8, 8)], labels=[\"zeros\", \"ones\"])") { args, ctx in
            let values = try args.list("images")
            guard !values.isEmpty else { throw ScriptError("grid: give at least one picture", argument: "images") }
            let labels = args.isNone("labels") ? nil : try args.list("labels").map(Display.plain)
            if let labels, labels.count != values.count {
                throw ScriptError("grid: \(labels.count) labels for \(values.count) pictures; give one label a picture", argument: "labels")
            }
            let padding = try args.int("padding")
            guard (0...256).contains(padding) else { throw ScriptError("grid: padding must be between 0 and 256", argument: "padding") }
            let columns = try args.optionalInt("columns")
            if let columns, columns < 1 { throw ScriptError("grid: columns must be at least 1", argument: "columns") }
            return .image(try labelledGrid(values, columns: columns, padding: padding, labels: labels,
                                           net: args.isNone("net") ? nil : try args.network("net"), ctx: ctx))
        }
    }

    static var colormapBuiltin: Builtin {
        Builtin("colormap", category: .images, parameters: [.required("x", .tensor), .optional("name", .string, default: .string("viridis"))],
                summary: "One channel of values coloured by a colormap (gray, viridis, diverging).",
                help: "Values are scaled min to max first (diverging: symmetrically around 0, so 0 is white).",
                example: "colormap(randn(8, 8, seed=1), \"diverging\")") { args, _ in
            var x = try args.tensor("x").value
            if x.rank == 3 && x.shape[0] == 1 { x = try x.reshaped(Array(x.shape.dropFirst())) }
            guard x.rank == 2 else { throw ScriptError("colormap: takes one channel, [H, W] or [1, H, W]; got \(Display.shape(x.shape))", argument: "x") }
            let map = try Colormap.named(try args.string("name"))
            return .image(try map.apply(rescaled(x, map.name == "diverging" ? .symmetric : .minMax)))
        }
    }

    static var overlayBuiltin: Builtin {
        Builtin("overlay", category: .images,
                parameters: [.required("img", .image), .required("heat", .tensor), .optional("alpha", .number, default: .number(0.5)), .optional("colormap", .string, default: .string("viridis"))],
                summary: "A heat map laid over a picture, coloured and blended.",
                help: "The heat map ([H, W] or [1, H, W], any range) is scaled to [0, 1], resized to the picture and blended with weight alpha. A heat map of several channels (a gradient of a colour image) is reduced to its largest absolute value per pixel.",
                example: "overlay(zeros(3, 8, 8), randn(8, 8, seed=1))") { args, _ in
            var heat = try args.tensor("heat").value
            if heat.rank == 3 && heat.shape[0] > 1 {
                heat = try Engine.max(elementwise(.abs, Variable(heat)), axis: 0).value
            }
            let img = try picture(args["img"])
            return .image(try overlay(img, heat, alpha: try args.float("alpha"), colormap: try Colormap.named(try args.string("colormap"))))
        }
    }

    static var upscaleBuiltin: Builtin {
        Builtin("upscale", category: .images, parameters: [.required("x", .image), .required("factor", .integer)],
                summary: "A picture enlarged by repeating pixels, so small filters stay crisp.",
                example: "upscale(zeros(1, 5, 5), 8).shape") { args, _ in
            let f = try args.int("factor")
            guard (1...64).contains(f) else { throw ScriptError("upscale: the factor must be between 1 and 64", argument: "factor") }
            let x = try args.tensor("x").value
            try Conversions.checkShape([x.count, f * f])
            let r = try upscale(x, by: f)
            if case .image = args["x"] { return .image(r) }
            return .tensor(Variable(r))
        }
    }
}
