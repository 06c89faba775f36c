import Foundation

/// A network's architecture as plain data: its input spec and, for each node, the name, kind,
/// attributes and inputs. Saved as JSON text beside the weights, it is enough to rebuild the
/// network; the weights then go back on by parameter name.
public struct NetworkDescription: Codable, Equatable {
    public struct Node: Codable, Equatable {
        public var name: String
        public var kind: String
        public var attributes: [String: AttributeValue]
        public var inputs: [String]
    }

    public var format = "cnnlab-network"
    public var version = 1
    public var spec: InputSpec?
    public var nodes: [Node]

    public init(_ network: Network) {
        spec = network.spec
        nodes = network.nodes.map { Node(name: $0.name, kind: $0.layer.kind, attributes: $0.layer.attributes.values, inputs: $0.inputs) }
    }

    /// The architecture as compact JSON with sorted keys (stable across runs).
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    public static func parse(_ text: String) throws -> NetworkDescription {
        do {
            let d = try JSONDecoder().decode(NetworkDescription.self, from: Data(text.utf8))
            guard d.format == "cnnlab-network" else { throw EngineError.invalidArgument("not a cnnlab network description (format '\(d.format)')") }
            guard d.version == 1 else { throw EngineError.invalidArgument("network description version \(d.version) is newer than this cnnlab reads (1)") }
            return d
        } catch let e as DecodingError {
            throw EngineError.invalidArgument("the network description is malformed: \(e.shortDescription)")
        }
    }

    /// A fresh network with this architecture (random weights until loaded).
    public func build(seed: UInt64 = 0) throws -> Network {
        let net = Network(spec: spec)
        var g = SeededGenerator(seed: seed)
        for node in nodes {
            try net.append(node.name, LayerRegistry.make(Attributes(node.kind, node.attributes), generator: &g), inputs: node.inputs)
        }
        return net
    }
}

extension DecodingError {
    var shortDescription: String {
        switch self {
        case .keyNotFound(let k, let c): return "missing '\(k.stringValue)' at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            return "\(c.debugDescription) at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        @unknown default: return "\(self)"
        }
    }
}
