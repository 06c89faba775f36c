import XCTest
@testable import Engine

final class LayerKindTests: XCTestCase {
    /// A value of each form, for the attributes a kind requires.
    private func sample(_ spec: AttributeSpec) -> AttributeValue {
        switch spec.form {
        case .integer, .pair, .quad: return .int(1)
        case .number: return .float(2)
        case .flag: return .bool(true)
        case .text: return .string("add")
        case .list: return .ints([1])
        }
    }

    func testEveryKindIsMadeFromItsRequiredAttributesAndReadsItsDefaults() throws {
        XCTAssertEqual(Set(LayerKind.names).count, LayerKind.all.count, "kind names are unique")
        for kind in LayerKind.all {
            var values: [String: AttributeValue] = [:]
            for spec in kind.attributes { if case .required = spec.defaultValue { values[spec.name] = sample(spec) } }
            let layer = try LayerRegistry.make(kind.name, values)
            XCTAssertEqual(layer.kind, kind.name)
            for spec in kind.attributes {
                switch spec.defaultValue {
                case .value(let v): XCTAssertNotNil(layer.attribute(spec.name), "\(kind.name).\(spec.name) reads its default \(v)")
                case .none: XCTAssertNil(layer.attribute(spec.name), "\(kind.name).\(spec.name) has no value unless given")
                default: XCTAssertNotNil(layer.attribute(spec.name), "\(kind.name).\(spec.name)")
                }
            }
        }
        XCTAssertThrowsError(try LayerRegistry.make("conv", [:])) { error in
            XCTAssertTrue("\(error)".contains("conv2d"), "a misspelt kind is answered with the nearest: \(error)")
        }
    }

    func testAttributesByShortNameAndDefaultsAsUsersSeeThem() throws {
        let conv = try LayerRegistry.make("conv2d", ["in": .int(3), "out": .int(8), "kernel": .ints([3, 3]), "padding": .ints([1, 2])])
        XCTAssertEqual(conv.attribute("k"), .int(3), "an agreeing pair reads as one number")
        XCTAssertEqual(conv.attribute("pad"), .ints([1, 2, 1, 2]))
        XCTAssertEqual(conv.attribute("stride"), .int(1))
        XCTAssertEqual(conv.attributeNames, ["in", "out", "kernel", "stride", "padding", "dilation", "groups", "bias"])
        let pool = try LayerRegistry.make("maxpool", ["kernel": .int(3)])
        XCTAssertEqual(pool.attribute("stride"), .int(3), "a pool's stride defaults to its kernel")
        XCTAssertEqual(pool.window, LayerWindow(kernel: (3, 3), stride: (3, 3), dilation: (1, 1), padding: (0, 0, 0, 0)))
        XCTAssertNil(try LayerRegistry.make("relu").window)
        XCTAssertEqual(LayerKind.conv2d.layout.batched([3, 5, 5]), [1, 3, 5, 5])
        XCTAssertEqual(LayerKind.linear.layout.batched([10]), [1, 10])
        XCTAssertNil(LayerKind.relu.layout.batched([10]))
    }
}
