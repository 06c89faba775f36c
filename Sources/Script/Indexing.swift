import Engine

/// An index item with its parts evaluated.
enum IndexValue {
    case single(Value, SourceSpan)
    case slice(start: Int?, end: Int?, step: Int, SourceSpan)
}

/// Indexing (`t[0, :, 2:5]`, `xs[-1]`, `net["conv1"]`) and attributes (`net.conv1.weight`).
extension Interpreter {
    func evaluateIndex(_ item: IndexItem, _ env: Environment, at whole: SourceSpan) throws -> IndexValue {
        func integer(_ e: Expr?) throws -> Int? {
            guard let e else { return nil }
            let v = try evaluate(e, env)
            guard case .number(let d) = v, d == d.rounded(), abs(d) < 1e15 else {
                throw failure("a slice bound must be a whole number, got \(describeForError(v))", e.span)
            }
            return Int(d)
        }
        switch item {
        case .single(let e): return .single(try evaluate(e, env), e.span)
        case .slice(let a, let b, let c):
            let step = try integer(c) ?? 1
            let span = a?.span ?? b?.span ?? c?.span ?? whole
            guard step != 0 else { throw failure("a slice step cannot be 0", c?.span ?? span) }
            return .slice(start: try integer(a), end: try integer(b), step: step, span)
        }
    }

    private func position(_ v: Value, _ span: SourceSpan) throws -> Int {
        guard case .number(let d) = v, d == d.rounded(), abs(d) < 1e15 else {
            throw failure("an index must be a whole number, got \(describeForError(v))", span)
        }
        return Int(d)
    }

    /// Python's rules: negative positions count from the end; slices clamp to the bounds.
    private func elements<T>(_ xs: [T], _ items: [IndexValue], _ what: String, _ span: SourceSpan) throws -> (single: T?, slice: [T]) {
        guard items.count == 1 else { throw failure("\(Value.article(what)) takes one index, got \(items.count)", span) }
        switch items[0] {
        case .single(let v, let at):
            let i = try position(v, at)
            let j = i < 0 ? i + xs.count : i
            guard j >= 0, j < xs.count else { throw failure("index \(i) is out of range for \(Value.article(what)) of length \(xs.count)", at) }
            return (xs[j], [])
        case .slice(let a, let b, let step, _):
            let n = xs.count
            func clamp(_ v: Int?, _ dflt: Int) -> Int {
                guard var v else { return dflt }
                if v < 0 { v += n }
                return step > 0 ? min(max(v, 0), n) : min(max(v, -1), n - 1)
            }
            let start = clamp(a, step > 0 ? 0 : n - 1), end = clamp(b, step > 0 ? n : -1)
            return (nil, stride(from: start, to: end, by: step).map { xs[$0] })
        }
    }

    private func sliceIndices(_ items: [IndexValue]) throws -> [SliceIndex] {
        try items.map { item in
            switch item {
            case .single(let v, let at): return .at(try position(v, at))
            case .slice(let a, let b, let step, _): return .range(start: a, end: b, step: step)
            }
        }
    }

    func index(_ base: Value, _ items: [IndexValue], _ span: SourceSpan) throws -> Value {
        switch base {
        case .list(let xs):
            let r = try elements(xs, items, "list", span)
            return r.single ?? .list(r.slice)
        case .string(let s):
            let r = try elements(Array(s), items, "string", span)
            return .string(r.single.map { String($0) } ?? String(r.slice))
        case .range(let a, let b):
            guard b < a || b - a < Conversions.maximumElements else { throw failure("this range is too long to index", span) }
            let r = try elements(b < a ? [] : Array(a...b), items, "range", span)
            return r.single.map { .number(Double($0)) } ?? .list(r.slice.map { .number(Double($0)) })
        case .tensor, .image:
            let x = try Conversions.variable(base)
            let indices = try sliceIndices(items)
            return .tensor(try withEngineErrors(span, context: nil) { try Engine.slice(x, indices) })
        case .network(let n):
            guard items.count == 1, case .single(.string(let name), _) = items[0] else {
                throw failure("a network is indexed by a layer name, as in net[\"conv1\"]", span)
            }
            return .layer(try NetworkCalls.layer(named: name, in: n))
        case .record(let r):
            guard items.count == 1, case .single(.string(let name), _) = items[0] else {
                throw failure("\(Value.article(r.typeName)) is indexed by a field name", span)
            }
            return try attribute(base, name, span)
        default:
            throw failure("\(base.describedType) cannot be indexed", span)
        }
    }

    /// The container with the element (or slice) at `items` replaced by `value`.
    func setIndex(_ base: Value, _ items: [IndexValue], _ value: Value, _ span: SourceSpan) throws -> Value {
        switch base {
        case .list(var xs):
            guard items.count == 1, case .single(let v, let at) = items[0] else {
                throw failure("a list element is replaced one at a time, as in xs[2] = 5", span)
            }
            let i = try position(v, at)
            let j = i < 0 ? i + xs.count : i
            guard j >= 0, j < xs.count else { throw failure("index \(i) is out of range for a list of length \(xs.count)", at) }
            xs[j] = value
            return try makeList(xs, span)
        case .tensor, .image:
            var t = try Conversions.tensor(base)
            let offsets = try tensorOffsets(t.shape, try sliceIndices(items), span)
            let source = try Conversions.tensor(value)
            guard source.count == 1 || source.count == offsets.count else {
                throw failure("cannot put \(source.count) numbers into \(offsets.count) places", span)
            }
            for (k, o) in offsets.enumerated() { t.scalars[o] = source.count == 1 ? source.scalars[0] : source.scalars[k] }
            if case .image = base { return .image(t) }
            return .tensor(Variable(t))
        default:
            throw failure("cannot assign into an element of \(base.describedType)", span)
        }
    }

    /// The flat offsets an index selects, in row-major order.
    private func tensorOffsets(_ shape: [Int], _ indices: [SliceIndex], _ span: SourceSpan) throws -> [Int] {
        guard indices.count <= shape.count else { throw failure("\(indices.count) indices for a tensor of rank \(shape.count)", span) }
        var offsets = [0]
        let strides = Tensor.strides(of: shape)
        for (d, size) in shape.enumerated() {
            var picks: [Int]
            switch d < indices.count ? indices[d] : .all {
            case .at(let i):
                let j = i < 0 ? i + size : i
                guard j >= 0, j < size else { throw failure("index \(i) is out of range for dimension \(d) of size \(size)", span) }
                picks = [j]
            case .range(let s, let e, let step):
                func clamp(_ v: Int?, _ dflt: Int) -> Int {
                    guard var v else { return dflt }
                    if v < 0 { v += size }
                    return step > 0 ? min(max(v, 0), size) : min(max(v, -1), size - 1)
                }
                picks = Array(stride(from: clamp(s, step > 0 ? 0 : size - 1), to: clamp(e, step > 0 ? size : -1), by: step))
            }
            offsets = offsets.flatMap { o in picks.map { o + $0 * strides[d] } }
        }
        return offsets
    }

    // MARK: attributes

    func attribute(_ base: Value, _ name: String, _ whole: SourceSpan) throws -> Value {
        // The name ends the expression `base.name`: point at it rather than at all of it.
        let span = SourceSpan(file: whole.file, start: max(whole.start, whole.end - name.unicodeScalars.count), end: whole.end)
        switch base {
        case .tensor, .image:
            let t = base.tensorValue ?? Tensor(zeros: [0])
            switch name {
            case "shape": return .list(t.shape.map { .number(Double($0)) })
            case "rank": return .number(Double(t.rank))
            case "size": return .number(Double(t.count))
            case "channels" where t.rank == 3: return .number(Double(t.shape[0]))
            case "height" where t.rank >= 2: return .number(Double(t.shape[t.rank - 2]))
            case "width" where t.rank >= 2: return .number(Double(t.shape[t.rank - 1]))
            default:
                let names = ["shape", "rank", "size"] + (t.rank >= 2 ? ["height", "width"] : []) + (t.rank == 3 ? ["channels"] : [])
                throw unknownAttribute(name, of: base.describedType, names, span)
            }
        case .network(let n):
            if let l = try? NetworkCalls.layer(named: name, in: n) { return .layer(l) }
            switch name {
            case "layers": return .list(n.layerNames.map { .string($0) })
            case "classes": return .list((n.spec?.classNames ?? []).map { .string($0) })
            default: throw failure(NetworkCalls.unknownLayerMessage(name, n), span)
            }
        case .layer(let l):
            if let v = NetworkCalls.attribute(of: l, name) { return v }
            throw unknownAttribute(name, of: "\(l.layer.kind) layer" + (l.name.map { " '\($0)'" } ?? ""), NetworkCalls.attributeNames(of: l), span)
        case .record(let r):
            if let v = r[name] { return v }
            throw unknownAttribute(name, of: Value.article(r.typeName), r.fields.map(\.name), span)
        default:
            throw failure("\(base.describedType) has no attributes (asked for '.\(name)')", span)
        }
    }

    private func unknownAttribute(_ name: String, of what: String, _ names: [String], _ span: SourceSpan) -> RuntimeFailure {
        var message = "\(what) has no attribute '\(name)'"
        if let near = nearest(name, in: names) { message += "; did you mean '\(near)'?" }
        else if !names.isEmpty { message += "; it has \(names.joined(separator: ", "))" }
        return failure(message, span)
    }

    func setAttribute(_ base: Value, _ name: String, _ value: Value, _ span: SourceSpan) throws {
        guard case .layer(let l) = base else {
            throw failure("only a layer's parameters can be assigned, as in net.conv1.weight = w; this is \(base.describedType)", span)
        }
        guard let old = l.layer.parameters[name] else {
            let names = l.layer.parameterNames
            var message = "\(l.layer.kind) layer" + (l.name.map { " '\($0)'" } ?? "") + " has no parameter '\(name)'"
            if let near = nearest(name, in: names) { message += "; did you mean '\(near)'?" }
            else { message += names.isEmpty ? "; it has no parameters" : "; its parameters are \(names.joined(separator: ", "))" }
            throw failure(message, span)
        }
        let t = try withEngineErrors(span, context: nil) { try Conversions.tensor(value) }
        guard t.shape == old.shape else {
            throw failure("\(l.name.map { "\($0)." } ?? "")\(name) is \(Display.shape(old.shape)); the new value is \(Display.shape(t.shape))", span)
        }
        l.layer.parameters[name] = t
    }
}
