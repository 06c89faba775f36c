/// Elementwise arithmetic as a layer, for graphs that compute with constants (a normalization's
/// mean and scale, a layer scale, a bias added after a product) or subtract and divide branches.
///
///     arithmetic(op: "subtract", shape: [1, 3, 1, 1])    y = x − c     (c: the buffer "constant")
///     arithmetic(op: "divide", shape: [], constant_first: true)   y = c / x
///     arithmetic(op: "divide")                            y = a / b     (two inputs)
///
/// The constant is a buffer (not trained) whose shape is an attribute, so the layer can be made
/// from its attributes alone and its value loaded by name like any other parameter. Both operands
/// broadcast as in NumPy; gradients are those of `add`, `subtract`, `multiply` and `divide`.
public final class ArithmeticLayer: Layer {
    public enum Operation: String, CaseIterable, Sendable {
        case add, subtract, multiply, divide, minimum, maximum
    }

    public let operation: Operation
    /// Whether the layer holds a constant operand (one input) or combines two inputs.
    public let holdsConstant: Bool
    /// With a constant: whether it is the left operand (c − x rather than x − c).
    public let constantFirst: Bool

    init(attributes a: Attributes) throws {
        let name = try a.string("op", "")
        guard let operation = Operation(rawValue: name) else {
            throw EngineError.invalidArgument("arithmetic: attribute 'op' is '\(name)'; expected one of "
                + Operation.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self.operation = operation
        holdsConstant = a.values["shape"] != nil
        constantFirst = try a.bool("constant_first", false)
        super.init(a)
        if holdsConstant {
            let shape = try a.intList("shape")
            do { _ = try checkedElementCount(shape, what: "arithmetic: constant") }
            catch let e as SizeLimitError { throw EngineError.invalidArgument(e.description) }
            declare("constant", Tensor(zeros: shape), trainable: false)
        }
    }

    public override var arity: Int? { holdsConstant ? 1 : 2 }

    public override func forward(_ inputs: [Variable], name: String, context: ForwardContext) throws -> Variable {
        let (a, b) = try operands(inputs, name: name, context: context)
        switch operation {
        case .add: return try add(a, b)
        case .subtract: return try subtract(a, b)
        case .multiply: return try multiply(a, b)
        case .divide: return try divide(a, b)
        case .minimum: return try extremum(a, b, larger: false)
        case .maximum: return try extremum(a, b, larger: true)
        }
    }

    public override func outputShape(_ inputs: [[Int]]) throws -> [Int] {
        let shapes = try operandShapes(inputs)
        return try broadcastShape(shapes.0, shapes.1)
    }

    /// The left and right operands, in the order the operation reads them.
    private func operands(_ inputs: [Variable], name: String, context: ForwardContext) throws -> (Variable, Variable) {
        guard holdsConstant else {
            guard inputs.count == 2 else { throw EngineError.invalidArgument("arithmetic takes two inputs, got \(inputs.count)") }
            return (inputs[0], inputs[1])
        }
        let x = try single(inputs)
        guard let c = variable("constant", name, context) else { throw EngineError.invalidArgument("arithmetic holds no constant") }
        return constantFirst ? (c, x) : (x, c)
    }

    private func operandShapes(_ inputs: [[Int]]) throws -> ([Int], [Int]) {
        guard holdsConstant else {
            guard inputs.count == 2 else { throw EngineError.invalidArgument("arithmetic takes two inputs, got \(inputs.count)") }
            return (inputs[0], inputs[1])
        }
        guard inputs.count == 1, let c = parameters["constant"]?.shape else {
            throw EngineError.invalidArgument("arithmetic with a constant takes one input, got \(inputs.count)")
        }
        return constantFirst ? (c, inputs[0]) : (inputs[0], c)
    }
}
