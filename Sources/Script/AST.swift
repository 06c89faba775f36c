/// The syntax tree. Every node keeps its span, so every error can point at its source.

public struct Expr {
    public var kind: ExprKind
    public var span: SourceSpan
}

public enum BinaryOperator: String, CaseIterable, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", remainder = "%", power = "^"
    case matmul = "@", range = ".."
    case equal = "==", notEqual = "!=", less = "<", lessEqual = "<=", greater = ">", greaterEqual = ">="
    case and, or
}

public enum UnaryOperator: String, Sendable {
    case negate = "-", plus = "+", not
}

/// One item inside `x[...]`: a position, or a slice `start:end:step` with each part optional.
public enum IndexItem {
    case single(Expr)
    case slice(start: Expr?, end: Expr?, step: Expr?)
}

public struct Argument {
    /// The keyword, for `name=value`; nil for a positional argument.
    public var label: String?
    public var value: Expr
    /// The whole argument, `name=value` for a keyword argument.
    public var span: SourceSpan
}

public enum StringPart {
    case text(String)
    case interpolation(Expr)
}

public indirect enum ExprKind {
    case number(Double)
    case string([StringPart])
    case bool(Bool)
    case none
    case name(String)
    case list([Expr])
    case unary(UnaryOperator, Expr)
    case binary(BinaryOperator, Expr, Expr)
    case call(Expr, [Argument])
    case index(Expr, [IndexItem])
    case attribute(Expr, String)
    case lambda(FunctionDeclaration)
}

public struct Parameter {
    public var name: String
    public var defaultValue: Expr?
}

/// A named function or a lambda. A class, so closures share one copy of the body.
public final class FunctionDeclaration {
    /// nil for a lambda.
    public let name: String?
    public let parameters: [Parameter]
    public let body: FunctionBody
    public let span: SourceSpan

    init(name: String?, parameters: [Parameter], body: FunctionBody, span: SourceSpan) {
        self.name = name
        self.parameters = parameters
        self.body = body
        self.span = span
    }
}

public enum FunctionBody {
    /// `x -> x * x`: the expression is the result.
    case expression(Expr)
    /// `{ ... }`: the value of `return`, or of the last expression statement.
    case block([Stmt])
}

public struct Stmt {
    public var kind: StmtKind
    public var span: SourceSpan
}

public indirect enum StmtKind {
    case expression(Expr)
    /// `target = value`, or `target op= value` with `op` set.
    case assign(target: Expr, op: BinaryOperator?, value: Expr)
    case ifElse(condition: Expr, then: [Stmt], otherwise: [Stmt]?)
    case forIn(variable: String, sequence: Expr, body: [Stmt])
    case whileLoop(condition: Expr, body: [Stmt])
    case function(FunctionDeclaration)
    case returnValue(Expr?)
    case breakLoop
    case continueLoop
    /// `include "other.cnn"`: runs another file in the current session.
    case include(Expr)
}

/// A parsed piece of source: its statements, and the syntax errors found while parsing it.
public struct Program {
    public var statements: [Stmt]
    public var diagnostics: [Diagnostic]
    public let file: SourceFile
}
