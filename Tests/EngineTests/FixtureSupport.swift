import Foundation
import XCTest
import Engine

// Reference fixtures computed with PyTorch by scripts/make-fixtures.py; the format is
// described in Fixtures/README.md. A fixture holds an op's inputs, its output, a fixed
// upstream gradient dY and the gradients of L = sum(output * dY) for each input that has one.

/// What went wrong while reading a fixture or one of its attributes.
enum FixtureError: Error, CustomStringConvertible {
    case missingDirectory
    case unknownFixture(String, candidates: [String])
    case malformed(fixture: String, reason: String)
    case missingAttribute(fixture: String, key: String)
    case wrongAttributeType(fixture: String, key: String, expected: String, found: FixtureValue)
    case noFixtures(op: String, knownOps: [String])

    var description: String {
        switch self {
        case .missingDirectory:
            return "the Fixtures folder is not among the test bundle's resources"
        case .unknownFixture(let name, let candidates):
            let hint = nearest(name, in: candidates).map { "; did you mean '\($0)'?" } ?? ""
            return "no fixture named '\(name)'\(hint)"
        case .malformed(let fixture, let reason):
            return "fixture \(fixture): \(reason)"
        case .missingAttribute(let fixture, let key):
            return "fixture \(fixture) has no attribute '\(key)'"
        case .wrongAttributeType(let fixture, let key, let expected, let found):
            return "fixture \(fixture): attribute '\(key)' should be \(expected), found \(found)"
        case .noFixtures(let op, let knownOps):
            let hint = nearest(op, in: knownOps).map { "; did you mean '\($0)'?" } ?? ""
            return "no fixture for op '\(op)'\(hint)"
        }
    }
}

/// An attribute as JSON holds it: numbers, bools, null, strings, arrays, objects.
enum FixtureValue: Decodable, Equatable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([FixtureValue])
    case object([String: FixtureValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Bool before Double: JSON `true` is not a number, and `1` is not a Bool.
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? container.decode(Double.self) {
            self = .number(n)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([FixtureValue].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: FixtureValue].self))
        }
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return String(b)
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : String(n)
        case .string(let s): return "\"\(s)\""
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.keys.sorted().map { "\($0): \(o[$0]!)" }.joined(separator: ", ") + "}"
        }
    }

    /// The number as an Int, if it is a whole number.
    var intValue: Int? {
        guard case .number(let n) = self, n == n.rounded(), abs(n) <= 9.0e15 else { return nil }
        return Int(n)
    }
}

/// The attributes of a fixture (or of one layer of a network fixture), read by type:
/// `attrs.ints("stride")`, `attrs.int("groups")`, `attrs.bool("ceil_mode")`. A missing key
/// or a value of another type throws, naming the fixture and the key.
struct FixtureAttributes: Sendable {
    /// The fixture these belong to, for messages.
    let owner: String
    let values: [String: FixtureValue]

    subscript(key: String) -> FixtureValue? { values[key] }

    func contains(_ key: String) -> Bool { values[key] != nil }

    /// Whether the attribute is present and JSON null (a reduction over all axes: `axis` null).
    func isNull(_ key: String) -> Bool { values[key] == .null }

    private func value(_ key: String) throws -> FixtureValue {
        guard let v = values[key] else { throw FixtureError.missingAttribute(fixture: owner, key: key) }
        return v
    }

    private func mismatch(_ key: String, _ expected: String, _ found: FixtureValue) -> FixtureError {
        .wrongAttributeType(fixture: owner, key: key, expected: expected, found: found)
    }

    func int(_ key: String) throws -> Int {
        let v = try value(key)
        guard let i = v.intValue else { throw mismatch(key, "a whole number", v) }
        return i
    }

    /// The integer, or nil when the attribute is null or absent.
    func optionalInt(_ key: String) throws -> Int? {
        guard let v = values[key], v != .null else { return nil }
        return try int(key)
    }

    func ints(_ key: String) throws -> [Int] {
        let v = try value(key)
        guard case .array(let a) = v else { throw mismatch(key, "an array of whole numbers", v) }
        let result = a.compactMap(\.intValue)
        guard result.count == a.count else { throw mismatch(key, "an array of whole numbers", v) }
        return result
    }

    func float(_ key: String) throws -> Float {
        let v = try value(key)
        guard case .number(let n) = v else { throw mismatch(key, "a number", v) }
        return Float(n)
    }

    func floats(_ key: String) throws -> [Float] {
        let v = try value(key)
        guard case .array(let a) = v else { throw mismatch(key, "an array of numbers", v) }
        return try a.map { e in
            guard case .number(let n) = e else { throw mismatch(key, "an array of numbers", v) }
            return Float(n)
        }
    }

    func bool(_ key: String) throws -> Bool {
        let v = try value(key)
        guard case .bool(let b) = v else { throw mismatch(key, "true or false", v) }
        return b
    }

    func string(_ key: String) throws -> String {
        let v = try value(key)
        guard case .string(let s) = v else { throw mismatch(key, "a string", v) }
        return s
    }

    /// An array of objects, each readable with the same accessors (the `layers` of a network).
    func objects(_ key: String) throws -> [FixtureAttributes] {
        let v = try value(key)
        guard case .array(let a) = v else { throw mismatch(key, "an array of objects", v) }
        return try a.enumerated().map { i, e in
            guard case .object(let o) = e else { throw mismatch(key, "an array of objects", v) }
            return FixtureAttributes(owner: "\(owner) \(key)[\(i)]", values: o)
        }
    }
}

/// One reference case: an op applied to inputs, forward and backward, as PyTorch computed it.
struct Fixture: Sendable {
    let name: String
    let op: String
    let attrs: FixtureAttributes
    let inputs: [String: Tensor]
    /// Inputs stored as integers (class targets): they never have a gradient.
    let integerInputs: Set<String>
    let output: Tensor
    /// dY, shaped like the output.
    let upstream: Tensor
    /// dL/d(input) for L = sum(output * upstream), keyed by input name.
    let grads: [String: Tensor]
    /// Further results: `indices` of max pooling, updated `running_mean`/`running_var`.
    let extras: [String: Tensor]
    /// Extras stored as integers (pooling indices).
    let integerExtras: Set<String>

    func input(_ key: String) throws -> Tensor { try lookup(inputs, key, "input") }
    func grad(_ key: String) throws -> Tensor { try lookup(grads, key, "gradient") }
    func extra(_ key: String) throws -> Tensor { try lookup(extras, key, "extra field") }

    /// An integer input or extra (targets, indices) as Ints.
    func integers(_ key: String) throws -> [Int] {
        if integerInputs.contains(key) { return try input(key).scalars.map { Int($0) } }
        if integerExtras.contains(key) { return try extra(key).scalars.map { Int($0) } }
        throw FixtureError.malformed(fixture: name, reason: "no integer tensor named '\(key)'")
    }

    private func lookup(_ table: [String: Tensor], _ key: String, _ what: String) throws -> Tensor {
        guard let t = table[key] else {
            let known = table.keys.sorted()
            throw FixtureError.malformed(fixture: name, reason: "no \(what) '\(key)' (has \(known.joined(separator: ", ")))")
        }
        return t
    }
}

// MARK: - Finding and loading

extension Fixture {
    /// The folder the test target copies as a resource.
    static func directory() throws -> URL {
        guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            throw FixtureError.missingDirectory
        }
        return url
    }

    /// The names of all fixtures (file names without `.json`), sorted.
    static func names() throws -> [String] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory().path)
        return files.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// The fixture in `Fixtures/NAME.json`.
    static func load(_ name: String) throws -> Fixture {
        let url = try directory().appendingPathComponent(name + ".json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw FixtureError.unknownFixture(name, candidates: try names())
        }
        return try decode(Data(contentsOf: url), name: name)
    }

    /// Every fixture, sorted by name.
    static func all() throws -> [Fixture] {
        try names().map(load)
    }

    /// Every fixture of one op. Throws when there is none, so that a misspelt op name
    /// fails a test instead of letting it pass over an empty list.
    static func all(op: String) throws -> [Fixture] {
        let everything = try all()
        let matching = everything.filter { $0.op == op }
        guard !matching.isEmpty else {
            throw FixtureError.noFixtures(op: op, knownOps: Array(Set(everything.map(\.op))).sorted())
        }
        return matching
    }

    /// Parses fixture JSON; `name` is used in messages only.
    static func decode(_ data: Data, name: String) throws -> Fixture {
        let raw: RawFixture
        do {
            raw = try JSONDecoder().decode(RawFixture.self, from: data)
        } catch {
            throw FixtureError.malformed(fixture: name, reason: "not a fixture: \(error)")
        }
        return try raw.fixture(name: name)
    }
}

// MARK: - JSON layout

/// `{"shape": [...], "data": [...]}`, with `"dtype": "int64"` for integer tensors.
private struct RawTensor: Decodable {
    let shape: [Int]
    let data: [Float]
    let dtype: String?

    var isInteger: Bool { dtype == "int64" }

    func tensor(fixture: String, at path: String) throws -> Tensor {
        func fail(_ reason: String) -> FixtureError { .malformed(fixture: fixture, reason: "\(path): \(reason)") }
        guard dtype == nil || dtype == "float32" || dtype == "int64" else { throw fail("unknown dtype \(dtype!)") }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("negative dimension in shape \(shape)") }
        let count = shape.reduce(1, *)
        guard count == data.count else { throw fail("shape \(shape) holds \(count) numbers, data has \(data.count)") }
        if isInteger, let bad = data.first(where: { $0 != $0.rounded() }) { throw fail("int64 data holds \(bad)") }
        return Tensor(shape: shape, scalars: data)
    }
}

private struct AnyKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.init(stringValue) }
    init?(intValue: Int) { nil }
}

/// The file as written; every top-level key beyond the fixed ones is an extra tensor.
private struct RawFixture: Decodable {
    static let fixedKeys: Set<String> = ["name", "op", "attrs", "inputs", "output", "upstream", "grads"]

    let name: String
    let op: String
    let attrs: [String: FixtureValue]
    let inputs: [String: RawTensor]
    let output: RawTensor
    let upstream: RawTensor
    let grads: [String: RawTensor]
    let extras: [String: RawTensor]

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        name = try c.decode(String.self, forKey: AnyKey("name"))
        op = try c.decode(String.self, forKey: AnyKey("op"))
        attrs = try c.decode([String: FixtureValue].self, forKey: AnyKey("attrs"))
        inputs = try c.decode([String: RawTensor].self, forKey: AnyKey("inputs"))
        output = try c.decode(RawTensor.self, forKey: AnyKey("output"))
        upstream = try c.decode(RawTensor.self, forKey: AnyKey("upstream"))
        grads = try c.decode([String: RawTensor].self, forKey: AnyKey("grads"))
        var extras: [String: RawTensor] = [:]
        for key in c.allKeys where !Self.fixedKeys.contains(key.stringValue) {
            extras[key.stringValue] = try c.decode(RawTensor.self, forKey: key)
        }
        self.extras = extras
    }

    func fixture(name fileName: String) throws -> Fixture {
        guard name == fileName else {
            throw FixtureError.malformed(fixture: fileName, reason: "file holds the fixture named '\(name)'")
        }
        func tensors(_ table: [String: RawTensor], _ path: String) throws -> [String: Tensor] {
            try table.reduce(into: [:]) { result, entry in
                result[entry.key] = try entry.value.tensor(fixture: name, at: "\(path).\(entry.key)")
            }
        }
        return Fixture(
            name: name, op: op,
            attrs: FixtureAttributes(owner: name, values: attrs),
            inputs: try tensors(inputs, "inputs"),
            integerInputs: Set(inputs.filter { $0.value.isInteger }.keys),
            output: try output.tensor(fixture: name, at: "output"),
            upstream: try upstream.tensor(fixture: name, at: "upstream"),
            grads: try tensors(grads, "grads"),
            extras: try tensors(extras, "extras"),
            integerExtras: Set(extras.filter { $0.value.isInteger }.keys))
    }
}

// MARK: - Comparing tensors

/// How a computed tensor compares with a reference: element i passes when
/// |got - expected| <= atol + rtol * |expected| (NaN never passes).
enum Closeness: Equatable, CustomStringConvertible {
    case close
    case shapeMismatch(got: [Int], expected: [Int])
    /// `index` is the worst element: the largest |got - expected| / (atol + rtol * |expected|).
    case mismatch(index: [Int], got: Float, expected: Float, allowed: Float, failing: Int, count: Int)

    var description: String {
        switch self {
        case .close:
            return "close"
        case .shapeMismatch(let got, let expected):
            return "shape \(got), expected \(expected)"
        case .mismatch(let index, let got, let expected, let allowed, let failing, let count):
            return "\(failing) of \(count) elements differ; worst at \(index): got \(got), expected \(expected), "
                + "|difference| \(abs(got - expected)) > allowed \(allowed)"
        }
    }
}

func closeness(_ got: Tensor, _ expected: Tensor, rtol: Float = 1e-4, atol: Float = 1e-5) -> Closeness {
    guard got.shape == expected.shape else { return .shapeMismatch(got: got.shape, expected: expected.shape) }
    var worst = -1, worstRatio = 0.0, failing = 0
    for i in 0..<got.count {
        let a = Double(got.scalars[i]), b = Double(expected.scalars[i])
        let allowed = Double(atol) + Double(rtol) * abs(b)
        let ratio = (a.isNaN || b.isNaN) ? Double.infinity : abs(a - b) / allowed
        guard ratio > 1 else { continue }
        failing += 1
        if worst < 0 || ratio > worstRatio { worst = i; worstRatio = ratio }
    }
    guard worst >= 0 else { return .close }
    // The flat index as one index per dimension, row-major.
    var index = [Int](), rest = worst
    for stride in got.strides { index.append(rest / stride); rest %= stride }
    let b = expected.scalars[worst]
    return .mismatch(index: index, got: got.scalars[worst], expected: b,
                     allowed: atol + rtol * abs(b), failing: failing, count: got.count)
}

/// Fails the test unless every element of `got` is within atol + rtol * |expected|,
/// reporting the worst element (index, got, expected).
func assertClose(_ got: Tensor, _ expected: Tensor, rtol: Float = 1e-4, atol: Float = 1e-5,
                 _ message: @autoclosure () -> String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    let result = closeness(got, expected, rtol: rtol, atol: atol)
    if result != .close {
        let context = message()
        XCTFail((context.isEmpty ? "" : context + ": ") + result.description, file: file, line: line)
    }
}
