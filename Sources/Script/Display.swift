import Engine
import Foundation

/// Values as text: compact, and for small tensors every number, aligned as on a slide.
public enum Display {
    /// Tensors with at most this many numbers (and rows no longer than `maximumRowLength`)
    /// print every value; bigger ones print their shape and statistics.
    public static let maximumShownElements = 400
    public static let maximumRowLength = 24

    /// The text of a value as a cell's result shows it (strings quoted).
    public static func text(_ v: Value) -> String {
        switch v {
        case .none: return "none"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d): return number(d)
        case .string: return source(v)
        case .list(let xs) where !xs.isEmpty && xs.allSatisfy({ if case .record(let r) = $0 { return r.typeName == "class" } else { return false } }):
            // A ranking of classes (top(...)): one line each.
            return xs.map { if case .record(let r) = $0 { return classLine(r) } else { return "" } }.joined(separator: "\n")
        case .list(let xs): return "[" + xs.map(short).joined(separator: ", ") + "]"
        case .range(let a, let b): return "\(a)..\(b)"
        case .tensor(let t): return tensor(t.value)
        case .image(let t): return image(t)
        case .network(let n): return network(n)
        case .layer(let l): return layer(l)
        case .function(let f): return "<function \(f.declaration.name ?? "lambda")(\(f.declaration.parameters.map(\.name).joined(separator: ", ")))>"
        case .builtin(let b): return "<builtin \(b.signature)>"
        case .record(let r): return record(r)
        }
    }

    /// The text `str(x)`, `print(x)` and string interpolation use: strings as they are.
    public static func plain(_ v: Value) -> String {
        if case .string(let s) = v { return s }
        return text(v)
    }

    /// One line, for elements of lists and records.
    static func short(_ v: Value) -> String {
        switch v {
        case .tensor(let t) where t.value.count > 8 || t.value.rank > 1: return "tensor \(shape(t.shape))"
        case .image(let t): return "image \(shape(t.shape))"
        case .network(let n): return "network of \(n.nodes.count) layers"
        case .layer(let l): return l.name.map { "layer \($0)" } ?? "\(l.layer.kind) layer"
        default:
            let t = text(v)
            return t.contains("\n") ? String(t.prefix { $0 != "\n" }) + " ..." : t
        }
    }

    /// A value as it would be written in the language (for defaults in signatures).
    static func source(_ v: Value) -> String {
        switch v {
        case .string(let s): return "\"" + escapedLiteralText(s) + "\""
        case .list(let xs): return "[" + xs.map(source).joined(separator: ", ") + "]"
        default: return text(v)
        }
    }

    public static func number(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        var s = String(format: "%.10g", d)
        if s.contains("."), !s.contains("e") { while s.hasSuffix("0") { s.removeLast() } }
        return s
    }

    public static func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }

    public static func tensor(_ t: Tensor) -> String {
        if t.rank == 0 { return formatNumber(t.scalars.first ?? .nan) }
        let header = "tensor \(shape(t.shape))"
        guard t.count > 0 else { return header + " (empty)" }
        guard t.count <= maximumShownElements, (t.shape.last ?? 0) <= maximumRowLength else {
            let mean = t.sum() / Float(t.count)
            return "\(header)  min \(formatNumber(t.min()))  max \(formatNumber(t.max()))  mean \(formatNumber(mean))"
        }
        let cells = t.scalars.map(formatNumber)
        let width = cells.map(\.count).max() ?? 1
        if t.rank == 1 { return header + " " + "[" + cells.map { pad($0, width) }.joined(separator: ", ") + "]" }
        var out = header + "\n"
        block(t.shape, cells, width, dim: 0, offset: 0, indent: 0, into: &out)
        return out
    }

    private static func pad(_ s: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - s.count)) + s
    }

    /// NumPy's layout: one row a line, a blank line between blocks of higher rank.
    private static func block(_ shape: [Int], _ cells: [String], _ width: Int, dim: Int, offset: Int, indent: Int, into out: inout String) {
        let stride = shape[(dim + 1)...].reduce(1, *)
        out += "["
        if dim == shape.count - 1 {
            out += (0..<shape[dim]).map { pad(cells[offset + $0], width) }.joined(separator: ", ")
        } else {
            for i in 0..<shape[dim] {
                if i > 0 {
                    out += ","
                    out += String(repeating: "\n", count: shape.count - dim - 1)
                    out += String(repeating: " ", count: indent + 1)
                }
                block(shape, cells, width, dim: dim + 1, offset: offset + i * stride, indent: indent + 1, into: &out)
            }
        }
        out += "]"
    }

    static func image(_ t: Tensor) -> String {
        if t.rank == 3 { return "image \(t.shape[2])x\(t.shape[1]), \(t.shape[0]) channel\(t.shape[0] == 1 ? "" : "s")" }
        return "image \(shape(t.shape))"
    }

    /// The attributes a layer was made with, in its kind's order.
    static func attributes(_ layer: Layer) -> String {
        layer.attributeNames.compactMap { key in layer.attributes.values[key].map { "\(key) \($0)" } }.joined(separator: ", ")
    }

    static func parameters(_ layer: Layer) -> String {
        layer.parameterNames.compactMap { n in layer.parameters[n].map { "\(n) \(shape($0.shape))" } }.joined(separator: ", ")
    }

    static func layer(_ l: LayerValue) -> String {
        var t = l.name.map { "layer \($0): \(l.layer.kind)" } ?? "\(l.layer.kind) layer"
        let a = attributes(l.layer), p = parameters(l.layer)
        if !a.isEmpty { t += " (\(a))" }
        if !p.isEmpty { t += "; \(p)" }
        return t
    }

    static func network(_ n: Network) -> String {
        let count = n.parameterCount
        var t = "network of \(n.nodes.count) layer\(n.nodes.count == 1 ? "" : "s"), \(grouped(count)) parameter\(count == 1 ? "" : "s")"
        let nameWidth = n.nodes.map(\.name.count).max() ?? 0
        let kindWidth = n.nodes.map(\.layer.kind.count).max() ?? 0
        for node in n.nodes {
            var line = "  " + node.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "  " + node.layer.kind
            let a = attributes(node.layer)
            if !a.isEmpty { line = line.padding(toLength: 2 + nameWidth + 2 + kindWidth, withPad: " ", startingAt: 0) + "  " + a }
            t += "\n" + line
        }
        return t
    }

    /// 12938 as "12,938".
    static func grouped(_ n: Int) -> String {
        let digits = String(abs(n))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out += "," }
            out.append(c)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// "Sneaker      99.98%  (7)"
    static func classLine(_ r: Record) -> String {
        guard case .string(let label)? = r["label"], case .number(let p)? = r["probability"], case .number(let i)? = r["index"] else { return record(r, generic: true) }
        return label.padding(toLength: max(label.count, 12), withPad: " ", startingAt: 0) + " " + String(format: "%6.2f%%", p * 100) + "  (\(Int(i)))"
    }

    static func record(_ r: Record, generic: Bool = false) -> String {
        if !generic {
            switch r.typeName {
            case "class": return classLine(r)
            case "prediction": return "prediction: " + classLine(r)
            case "objective", "transform": if case .string(let e)? = r["expression"] { return "\(r.typeName): \(e)" }
            default: break
            }
        }
        return "\(r.typeName)(" + r.fields.map { "\($0.name)=\(short($0.value))" }.joined(separator: ", ") + ")"
    }
}
