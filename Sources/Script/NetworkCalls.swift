import Engine
import Imaging

/// Layers and networks applied to tensors as a user writes them: one image [C, H, W] (or
/// [H, W]) in, one result out; the batch dimension the engine works in is added on the way
/// in and taken off on the way out.
enum NetworkCalls {
    static func layer(named name: String, in network: Network) throws -> LayerValue {
        guard let l = try? network.layer(named: name) else { throw ScriptError(unknownLayerMessage(name, network)) }
        return LayerValue(layer: l, name: name, network: network)
    }

    /// "unknown layer 'conv6'; layers are conv1, conv2, fc1", or a suggestion when one is near.
    static func unknownLayerMessage(_ name: String, _ network: Network) -> String {
        let names = network.layerNames
        if let near = nearest(name, in: names) { return "unknown layer '\(name)'; did you mean '\(near)'?" }
        if names.isEmpty { return "unknown layer '\(name)'; the network has no layers" }
        let shown = names.count > 12 ? names.prefix(12).joined(separator: ", ") + ", ..." : names.joined(separator: ", ")
        return "unknown layer '\(name)'; layers are \(shown)"
    }

    private static func number(_ v: Int) -> Value { .number(Double(v)) }

    /// A layer's parameter, or one of its attributes (as given or by its kind's default), by
    /// name or short name (`layer.k`, `layer.pad`).
    static func attribute(of l: LayerValue, _ name: String) -> Value? {
        let layer = l.layer
        if let t = layer.parameters[name] { return .tensor(Variable(t)) }
        switch name {
        case "kind": return .string(layer.kind)
        case "name": return l.name.map(Value.string) ?? Value.none
        default: return layer.attribute(name).map(value)
        }
    }

    /// What `.name` reads on a layer, in the order a person looks for them.
    static func attributeNames(of l: LayerValue) -> [String] {
        var names = l.layer.parameterNames + ["kind", "name"]
        for n in l.layer.attributeNames where !names.contains(n) { names.append(n) }
        return names
    }

    static func value(_ a: AttributeValue) -> Value {
        switch a {
        case .int(let v): return number(v)
        case .ints(let v): return .list(v.map(number))
        // The decimal the float was written as (0.2, not 0.200000003).
        case .float(let v): return .number(Double(String(v)) ?? Double(v))
        case .bool(let v): return .bool(v)
        case .string(let v): return .string(v)
        }
    }

    private static func dropLeadingOne(_ y: Variable) throws -> Variable {
        guard y.shape.count > 1, y.shape[0] == 1 else { return y }
        return try reshape(y, Array(y.shape.dropFirst()))
    }

    /// A layer on its own applied to x.
    static func apply(_ l: LayerValue, to x: Variable, context: ForwardContext) throws -> Variable {
        var input = x
        var added = false
        if let batched = l.layer.declaration?.layout.batched(x.shape) {
            input = try reshape(x, batched)
            added = true
        }
        // Shapes first: a layer that would make a tensor too large to allocate is refused here.
        try Conversions.checkShape(try l.layer.outputShape([input.shape]))
        let y = try l.layer.forward([input], name: l.name ?? l.layer.kind, context: context)
        return added ? try dropLeadingOne(y) : y
    }

    /// A network applied to x, up to the layer `upTo` (default: its output). With `normalize`,
    /// the network's input normalization (from its spec) is applied first.
    static func apply(_ n: Network, to x: Variable, upTo: String?, normalize: Bool, context: ForwardContext) throws -> Variable {
        if let upTo, upTo != Network.inputName, (try? n.layer(named: upTo)) == nil {
            throw ScriptError(unknownLayerMessage(upTo, n))
        }
        var input = x
        if normalize, let spec = n.spec { input = try normalized(input, spec) }
        var added = false
        switch input.shape.count {
        case 1: input = try reshape(input, [1] + input.shape); added = true
        case 2: input = try reshape(input, [1, 1] + input.shape); added = true
        case 3: input = try reshape(input, [1] + input.shape); added = true
        default: break
        }
        // Shapes first (cheap): no layer may make a tensor too large to allocate.
        for shape in try n.shapes(for: input.shape).values { try Conversions.checkShape(shape) }
        let y = try n.forward(input, upTo: upTo, context: context)
        return added ? try dropLeadingOne(y) : y
    }

    /// (x - mean) / std per channel, on the tape so gradients reach the picture.
    static func normalized(_ x: Variable, _ spec: InputSpec) throws -> Variable {
        // One value stands for every channel; files with other counts are refused when loaded.
        let channels = Swift.max(spec.mean.count, spec.std.count)
        guard [1, channels].contains(spec.mean.count), [1, channels].contains(spec.std.count) else {
            throw ScriptError("the network's input spec has \(spec.mean.count) means and \(spec.std.count) deviations; expected one value or one per channel")
        }
        if spec.normalization.isIdentity { return x }
        guard channels == 1 || [3, 4].contains(x.shape.count) else {
            throw ScriptError("the network normalizes \(channels) channels; the input has shape \(Display.shape(x.shape))")
        }
        let channelAxis = x.shape.count == 4 ? 1 : 0
        if channels > 1, x.shape[channelAxis] != channels {
            throw ScriptError("the network takes \(channels) channels; the input has shape \(Display.shape(x.shape))")
        }
        return try spec.normalization.apply(x, channelAxis: channels > 1 ? channelAxis : nil)
    }

    /// A picture made to fit the network's input: gray or colour as it expects, resized to its size.
    static func fitted(_ image: Tensor, to spec: InputSpec) throws -> Tensor {
        var t = image
        if t.rank == 2 { t = try t.reshaped([1] + t.shape) }
        guard t.rank == 3 else { return image }
        if spec.channels == 1 && t.shape[0] != 1 { t = try toGray(t) }
        if spec.channels == 3 && t.shape[0] != 3 { t = try toRGB(t) }
        if spec.height > 0, spec.width > 0, t.shape[1] != spec.height || t.shape[2] != spec.width {
            if t.shape[1] * spec.width == t.shape[2] * spec.height {
                t = try resize(t, height: spec.height, width: spec.width)
            } else {
                // Another aspect ratio: scale the shorter side to 8/7 of the input size (256 for
                // 224, as ImageNet models are evaluated) and take the centre.
                t = try resize(t, shorterSide: max(spec.height, spec.width) * 8 / 7)
                t = try centerCrop(t, height: spec.height, width: spec.width)
            }
        }
        return t
    }
}

extension LayerValue {
    /// What `.name` reads on the layer: its parameters, kind and name, then its attributes.
    public var attributeNames: [String] { NetworkCalls.attributeNames(of: self) }
}
