import XCTest
@testable import Engine

/// The arithmetic layer: gradients against finite differences, its constant as a buffer, and
/// a round trip through the network description.
final class ConstantLayerTests: XCTestCase {
    private func layer(_ op: String, constant: Tensor? = nil, first: Bool = false) throws -> Layer {
        var attributes: [String: AttributeValue] = ["op": .string(op)]
        if let constant { attributes["shape"] = .ints(constant.shape); attributes["constant_first"] = .bool(first) }
        let layer = try LayerRegistry.make("arithmetic", attributes)
        if let constant { layer.parameters["constant"] = constant }
        return layer
    }

    /// A value away from zero, so that division is smooth around it.
    private func awayFromZero(_ t: Tensor) -> Tensor { t.map { $0 > 0 ? $0 + 0.5 : $0 - 0.5 } }

    func testGradientsWithAConstantOnEitherSide() throws {
        let x = awayFromZero(Tensor.randn([2, 3, 4, 4], seed: 1))
        let constants = [Tensor.randn([1, 3, 1, 1], seed: 2), Tensor(scalar: 1.5), Tensor.randn([4], seed: 3)].map(awayFromZero)
        for op in ArithmeticLayer.Operation.allCases {
            for c in constants {
                for first in [false, true] {
                    let l = try layer(op.rawValue, constant: c, first: first)
                    let results = try checkGradients(at: [x]) { try l.forward($0, name: "a", context: ForwardContext()) }
                    XCTAssertTrue(results[0].passed, "\(op) constant \(c.shape) first \(first): \(results[0])")
                }
            }
        }
    }

    func testGradientsOfTwoInputs() throws {
        let a = awayFromZero(Tensor.randn([2, 3, 2, 2], seed: 4)), b = awayFromZero(Tensor.randn([1, 3, 1, 2], seed: 5))
        for op in ArithmeticLayer.Operation.allCases {
            let l = try layer(op.rawValue)
            XCTAssertEqual(l.arity, 2)
            XCTAssertEqual(try l.outputShape([a.shape, b.shape]), [2, 3, 2, 2])
            for r in try checkGradients(at: [a, b], of: { try l.forward($0, name: "a", context: ForwardContext()) }) {
                XCTAssertTrue(r.passed, "\(op) input \(r.input): \(r)")
            }
        }
    }

    func testComputesWhatItSaysInEitherOrder() throws {
        let x = Tensor(shape: [1, 2, 1, 2], scalars: [1, 2, 3, 4])
        let c = Tensor(shape: [1, 2, 1, 1], scalars: [10, 20])
        let context = ForwardContext()
        func run(_ op: String, _ first: Bool) throws -> [Float] {
            try layer(op, constant: c, first: first).forward([Variable(x)], name: "a", context: context).value.scalars
        }
        XCTAssertEqual(try run("subtract", false), [-9, -8, -17, -16])
        XCTAssertEqual(try run("subtract", true), [9, 8, 17, 16])
        XCTAssertEqual(try run("divide", true), [10, 5, 20 / 3, 5])
        XCTAssertEqual(try run("multiply", false), [10, 20, 60, 80])
        XCTAssertEqual(try run("add", true), [11, 12, 23, 24])
    }

    func testTheConstantIsABufferThatSurvivesADescription() throws {
        let net = Network(spec: InputSpec(channels: 3, height: 2, width: 2))
        let mean = Tensor(shape: [1, 3, 1, 1], scalars: [0.5, 0.25, -1])
        try net.append("centre", try layer("subtract", constant: mean))
        try net.append("scale", try layer("multiply", constant: Tensor(scalar: 4)))
        try net.append("conv", LayerRegistry.make("conv2d", ["in": .int(3), "out": .int(2), "kernel": .int(1)], seed: 3))
        XCTAssertEqual(net.parameterNames, ["centre.constant", "scale.constant", "conv.weight", "conv.bias"])
        XCTAssertEqual(net.trainableParameterNames, ["conv.weight", "conv.bias"], "constants are not trained")
        XCTAssertEqual(try net.shapes(for: [2, 3, 2, 2])["scale"], [2, 3, 2, 2])

        let rebuilt = try NetworkDescription.parse(try NetworkDescription(net).json()).build(seed: 9)
        XCTAssertEqual(rebuilt.parameterNames, net.parameterNames)
        XCTAssertEqual(try rebuilt.parameter("scale.constant"), Tensor(zeros: []), "a fresh layer's constant is zero until loaded")
        for (name, value) in net.parameters { try rebuilt.setParameter(name, value) }
        let x = Tensor.randn([2, 3, 2, 2], seed: 6)
        XCTAssertEqual(try rebuilt(x), try net(x))
        XCTAssertThrowsError(try rebuilt.setParameter("centre.constant", Tensor(zeros: [3])), "the shape is fixed by the attributes")
    }

    func testRefusesBadAttributes() {
        let cases: [([String: AttributeValue], String)] = [
            (["op": .string("power")], "expected one of add, subtract, multiply, divide"),
            ([:], "attribute 'op' is ''"),
            (["op": .string("add"), "shape": .ints([2, -1])], "has a negative size"),
            (["op": .string("add"), "shape": .ints([1 << 40, 1 << 40])], "at most"),
            (["op": .string("add"), "shape": .string("big")], "list of whole numbers"),
        ]
        for (attributes, phrase) in cases {
            XCTAssertThrowsError(try LayerRegistry.make("arithmetic", attributes)) { error in
                XCTAssertTrue("\(error)".contains(phrase), "'\(error)' does not mention '\(phrase)'")
            }
        }
        XCTAssertTrue(LayerRegistry.kinds.contains("arithmetic"))
    }
}
