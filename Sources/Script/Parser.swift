/// A recursive-descent parser, one method per precedence level (lowest first):
///
///     expression  := lambda | or
///     lambda      := NAME "->" body | "(" parameters ")" "->" body      body := block | expression
///     or          := and ("or" and)*
///     and         := not ("and" not)*
///     not         := "not" not | comparison
///     comparison  := range (("==" | "!=" | "<" | "<=" | ">" | ">=") range)?
///     range       := additive (".." additive)?
///     additive    := term (("+" | "-") term)*
///     term        := unary (("*" | "/" | "%" | "@") unary)*
///     unary       := ("-" | "+") unary | power
///     power       := postfix ("^" unary)?
///     postfix     := primary ("(" arguments ")" | "[" index "]" | "." NAME)*
///
/// A syntax error abandons the statement it is in; parsing resumes at the next statement,
/// so one run reports every broken line, not only the first.
public struct Parser {
    /// Nesting deeper than this (brackets, blocks, operators) is refused with an error, so that
    /// neither the parser nor the interpreter can run out of stack.
    public static let maximumDepth = 100
    /// Past this many syntax errors in one piece of source the rest are not worth reading.
    static let maximumErrors = 25

    private var tokens: [Token]
    private var position = 0
    private let file: SourceFile
    private var diagnostics: [Diagnostic]
    private var depth: Int
    /// Set when nesting is too deep: recovery would only meet the same nesting again.
    private var abandoned = false

    private struct Failure: Error {}

    public init(_ file: SourceFile) { self.init(file, start: 0, end: nil, depth: 0) }

    private init(_ file: SourceFile, start: Int, end: Int?, depth: Int) {
        var lexer = Lexer(file, start: start, end: end)
        tokens = lexer.tokenize()
        diagnostics = lexer.diagnostics
        self.file = file
        self.depth = depth
    }

    /// Parses `file` into statements, collecting every syntax error.
    public static func parse(_ file: SourceFile) -> Program {
        var p = Parser(file)
        return p.parseProgram()
    }

    public mutating func parseProgram() -> Program {
        var statements: [Stmt] = []
        skipSeparators()
        while !check(.eof) && !abandoned && diagnostics.count < Parser.maximumErrors {
            if check(.rightBrace) {
                // Recovery stops at a '}' so a block can close; at the top it closes nothing.
                _ = fail("'}' without a matching '{'")
                advance()
            } else if let s = statementRecovering() {
                statements.append(s)
            }
            skipSeparators()
        }
        // Lexer and parser errors in the order of the source.
        let ordered = diagnostics.enumerated().sorted { ($0.element.span?.start ?? 0, $0.offset) < ($1.element.span?.start ?? 0, $1.offset) }.map(\.element)
        return Program(statements: statements, diagnostics: ordered, file: file)
    }

    // MARK: tokens

    private var current: Token { tokens[min(position, tokens.count - 1)] }
    private func peek(_ k: Int) -> Token { tokens[min(position + k, tokens.count - 1)] }
    private func check(_ kind: TokenKind) -> Bool { current.kind == kind }
    private func check(_ k: Keyword) -> Bool { current.kind == .keyword(k) }

    @discardableResult
    private mutating func advance() -> Token {
        let t = current
        if position < tokens.count - 1 { position += 1 }
        return t
    }

    private mutating func match(_ kind: TokenKind) -> Bool {
        if check(kind) { advance(); return true }
        return false
    }

    private mutating func match(_ k: Keyword) -> Bool { match(.keyword(k)) }

    private mutating func expect(_ kind: TokenKind, _ what: String) throws -> Token {
        if check(kind) { return advance() }
        throw fail("expected \(what), found \(describe(current))")
    }

    private mutating func skipNewlines() { while match(.newline) {} }
    private mutating func skipSeparators() { while match(.newline) || match(.semicolon) {} }

    private func describe(_ t: Token) -> String {
        switch t.kind {
        case .eof: return "the end of the input"
        case .newline: return "the end of the line"
        case .string: return "a string"
        case .number: return "the number \(t.text)"
        case .identifier: return "'\(t.text)'"
        default: return "'\(t.text)'"
        }
    }

    private mutating func fail(_ message: String, at span: SourceSpan? = nil) -> Failure {
        // At a line end that closed a forgotten bracket, the lexer has said what is wrong.
        if span == nil && current.closesBrackets { return Failure() }
        diagnostics.append(Diagnostic(.syntax, message, at: span ?? current.span))
        return Failure()
    }

    /// One level deeper; refuses (once, and for good) past `maximumDepth`.
    private mutating func deepen(_ span: SourceSpan) throws {
        depth += 1
        if depth > Parser.maximumDepth {
            if !abandoned {
                diagnostics.append(Diagnostic(.syntax, "this is nested too deeply (more than \(Parser.maximumDepth) levels)", at: span))
                abandoned = true
            }
            throw Failure()
        }
    }

    private mutating func nest<T>(_ span: SourceSpan, _ body: (inout Parser) throws -> T) throws -> T {
        let saved = depth
        defer { depth = saved }
        try deepen(span)
        return try body(&self)
    }

    // MARK: statements

    /// One statement; on a syntax error, skips to the next statement and returns nil.
    private mutating func statementRecovering() -> Stmt? {
        do {
            return try statement()
        } catch {
            synchronize()
            return nil
        }
    }

    /// Skips to a statement boundary: past the end of the line or a ';', or up to a '}'.
    private mutating func synchronize() {
        while !check(.eof) {
            if match(.newline) || match(.semicolon) { return }
            if check(.rightBrace) { return }
            advance()
        }
    }

    private mutating func statement() throws -> Stmt {
        let start = current.span
        return try nest(start) { p in
            let s = try p.statementBody()
            // A statement ends at a new line, a ';', a '}' or the end of the input.
            if !(p.check(.newline) || p.check(.semicolon) || p.check(.rightBrace) || p.check(.eof)) {
                throw p.fail("expected the end of the statement, found \(p.describe(p.current))")
            }
            return s
        }
    }

    private mutating func statementBody() throws -> Stmt {
        let start = current.span
        switch current.kind {
        case .keyword(.if): return try ifStatement()
        case .keyword(.for):
            advance()
            let name = try expect(.identifier, "a variable name after 'for'")
            guard match(.in) else { throw fail("expected 'in' after 'for \(name.text)', found \(describe(current))") }
            let sequence = try expression()
            let body = try block()
            return Stmt(kind: .forIn(variable: name.text, sequence: sequence, body: body), span: start.through(previousSpan))
        case .keyword(.while):
            advance()
            let condition = try expression()
            let body = try block()
            return Stmt(kind: .whileLoop(condition: condition, body: body), span: start.through(previousSpan))
        case .keyword(.fn):
            advance()
            let name = try expect(.identifier, "a function name after 'fn'")
            _ = try expect(.leftParen, "'(' after the function name")
            let parameters = try parameterList()
            let body = try block()
            let decl = FunctionDeclaration(name: name.text, parameters: parameters, body: .block(body), span: start.through(previousSpan))
            return Stmt(kind: .function(decl), span: decl.span)
        case .keyword(.return):
            advance()
            let value = check(.newline) || check(.semicolon) || check(.rightBrace) || check(.eof) ? nil : try expression()
            return Stmt(kind: .returnValue(value), span: start.through(previousSpan))
        case .keyword(.break): advance(); return Stmt(kind: .breakLoop, span: start)
        case .keyword(.continue): advance(); return Stmt(kind: .continueLoop, span: start)
        case .keyword(.include):
            advance()
            let path = try expression()
            return Stmt(kind: .include(path), span: start.through(path.span))
        default:
            let target = try expression()
            let op: BinaryOperator?
            switch current.kind {
            case .assign: op = nil
            case .plusAssign: op = .add
            case .minusAssign: op = .subtract
            case .starAssign: op = .multiply
            case .slashAssign: op = .divide
            default: return Stmt(kind: .expression(target), span: target.span)
            }
            let opToken = advance()
            switch target.kind {
            case .name, .attribute, .index: break
            default: throw fail("cannot assign to this expression (assign to a name, an attribute or an element)", at: target.span.through(opToken.span))
            }
            skipNewlines()
            let value = try expression()
            return Stmt(kind: .assign(target: target, op: op, value: value), span: target.span.through(value.span))
        }
    }

    private var previousSpan: SourceSpan { tokens[max(0, min(position - 1, tokens.count - 1))].span }

    private mutating func ifStatement() throws -> Stmt {
        let start = advance().span
        let condition = try expression()
        let then = try block()
        var otherwise: [Stmt]? = nil
        // `else` may follow on the next line.
        var k = 0
        while peek(k).kind == .newline { k += 1 }
        if peek(k).kind == .keyword(.else) {
            position += k
            advance()
            if check(.if) {
                let nested = try nest(current.span) { try $0.ifStatement() }
                otherwise = [nested]
            } else {
                otherwise = try block()
            }
        }
        return Stmt(kind: .ifElse(condition: condition, then: then, otherwise: otherwise), span: start.through(previousSpan))
    }

    private mutating func block() throws -> [Stmt] {
        let open = current
        guard match(.leftBrace) else { throw fail("expected '{' to start a block, found \(describe(current))") }
        var body: [Stmt] = []
        skipSeparators()
        while !check(.rightBrace) {
            if check(.eof) {
                throw fail("this block is not closed: add '}'", at: open.span)
            }
            if abandoned || diagnostics.count >= Parser.maximumErrors { throw Failure() }
            if let s = statementRecovering() { body.append(s) }
            skipSeparators()
        }
        advance()
        return body
    }

    /// Parameters after '(' up to and including ')': `a, b, scale=2`.
    private mutating func parameterList() throws -> [Parameter] {
        var parameters: [Parameter] = []
        while !check(.rightParen) {
            let name = try expect(.identifier, "a parameter name")
            if parameters.contains(where: { $0.name == name.text }) { throw fail("the parameter '\(name.text)' appears twice", at: name.span) }
            var dflt: Expr? = nil
            if match(.assign) { dflt = try expression() }
            else if parameters.last?.defaultValue != nil {
                throw fail("the parameter '\(name.text)' needs a default value: it follows one that has one", at: name.span)
            }
            parameters.append(Parameter(name: name.text, defaultValue: dflt))
            if !match(.comma) { break }
        }
        _ = try expect(.rightParen, "')' after the parameters")
        return parameters
    }

    // MARK: expressions

    mutating func expression() throws -> Expr {
        try nest(current.span) { p in
            if p.check(.identifier) && p.peek(1).kind == .arrow { return try p.lambda() }
            if p.check(.leftParen) && p.parenthesesOpenLambda() { return try p.lambda() }
            return try p.or()
        }
    }

    /// Whether the '(' here closes on a ')' followed by '->'.
    private func parenthesesOpenLambda() -> Bool {
        var k = 0, level = 0
        while position + k < tokens.count {
            switch tokens[position + k].kind {
            case .leftParen, .leftBracket, .leftBrace: level += 1
            case .rightParen, .rightBracket, .rightBrace:
                level -= 1
                if level == 0 { return peek(k + 1).kind == .arrow }
            case .eof: return false
            default: break
            }
            k += 1
        }
        return false
    }

    private mutating func lambda() throws -> Expr {
        let start = current.span
        var parameters: [Parameter]
        if check(.identifier) {
            parameters = [Parameter(name: advance().text, defaultValue: nil)]
        } else {
            advance()
            parameters = try parameterList()
        }
        _ = try expect(.arrow, "'->'")
        skipNewlines()
        let body: FunctionBody = check(.leftBrace) ? .block(try block()) : .expression(try expression())
        let decl = FunctionDeclaration(name: nil, parameters: parameters, body: body, span: start.through(previousSpan))
        return Expr(kind: .lambda(decl), span: decl.span)
    }

    private mutating func binaryLevel(_ ops: [TokenKind: BinaryOperator], _ next: (inout Parser) throws -> Expr) throws -> Expr {
        var left = try next(&self)
        // A chain a + b + c + ... nests in the tree as deeply as it is long.
        let saved = depth
        defer { depth = saved }
        while let op = ops[current.kind] {
            advance()
            skipNewlines()  // an operator at the end of a line continues the expression
            try deepen(current.span)
            let right = try next(&self)
            left = Expr(kind: .binary(op, left, right), span: left.span.through(right.span))
        }
        return left
    }

    private mutating func or() throws -> Expr { try binaryLevel([.keyword(.or): .or]) { try $0.and() } }
    private mutating func and() throws -> Expr { try binaryLevel([.keyword(.and): .and]) { try $0.not() } }

    private mutating func not() throws -> Expr {
        if check(.not) {
            let start = advance().span
            let operand = try nest(start) { try $0.not() }
            return Expr(kind: .unary(.not, operand), span: start.through(operand.span))
        }
        return try comparison()
    }

    private static let comparisons: [TokenKind: BinaryOperator] = [
        .equal: .equal, .notEqual: .notEqual, .less: .less, .lessEqual: .lessEqual, .greater: .greater, .greaterEqual: .greaterEqual,
    ]

    private mutating func comparison() throws -> Expr {
        let left = try range()
        guard let op = Parser.comparisons[current.kind] else { return left }
        advance()
        skipNewlines()
        let right = try range()
        if Parser.comparisons[current.kind] != nil {
            throw fail("comparisons do not chain: write 'a < b and b < c'")
        }
        return Expr(kind: .binary(op, left, right), span: left.span.through(right.span))
    }

    private mutating func range() throws -> Expr {
        let left = try additive()
        guard match(.dotDot) else { return left }
        let right = try additive()
        return Expr(kind: .binary(.range, left, right), span: left.span.through(right.span))
    }

    private mutating func additive() throws -> Expr {
        try binaryLevel([.plus: .add, .minus: .subtract]) { try $0.term() }
    }

    private mutating func term() throws -> Expr {
        try binaryLevel([.star: .multiply, .slash: .divide, .percent: .remainder, .at: .matmul]) { try $0.unary() }
    }

    private mutating func unary() throws -> Expr {
        if check(.minus) || check(.plus) {
            let t = advance()
            let operand = try nest(t.span) { try $0.unary() }
            return Expr(kind: .unary(t.kind == .minus ? .negate : .plus, operand), span: t.span.through(operand.span))
        }
        return try power()
    }

    private mutating func power() throws -> Expr {
        let base = try postfix()
        guard match(.caret) else { return base }
        let exponent = try nest(current.span) { try $0.unary() }  // right-associative: 2^3^2 = 2^9
        return Expr(kind: .binary(.power, base, exponent), span: base.span.through(exponent.span))
    }

    private mutating func postfix() throws -> Expr {
        var e = try primary()
        let saved = depth
        defer { depth = saved }
        while true {
            if check(.leftParen) {
                advance()
                let args = try arguments()
                e = Expr(kind: .call(e, args), span: e.span.through(previousSpan))
            } else if check(.leftBracket) {
                advance()
                let items = try indexItems()
                e = Expr(kind: .index(e, items), span: e.span.through(previousSpan))
            } else if check(.dot) {
                advance()
                guard current.isWord else { throw fail("expected a name after '.', found \(describe(current))") }
                let name = advance()
                e = Expr(kind: .attribute(e, name.text), span: e.span.through(name.span))
            } else {
                return e
            }
            // A chain like a.b.c(...)[...] nests in the tree as deeply as it is long.
            try deepen(e.span)
        }
    }

    /// Arguments after '(' up to and including ')'.
    private mutating func arguments() throws -> [Argument] {
        var args: [Argument] = []
        var labels = Set<String>()
        while !check(.rightParen) {
            if current.isWord && peek(1).kind == .assign {
                let label = advance()
                advance()
                if !labels.insert(label.text).inserted { throw fail("the argument '\(label.text)' is given twice", at: label.span) }
                let value = try expression()
                args.append(Argument(label: label.text, value: value, span: label.span.through(value.span)))
            } else {
                let value = try expression()
                if !labels.isEmpty {
                    throw fail("a positional argument cannot follow keyword arguments", at: value.span)
                }
                args.append(Argument(label: nil, value: value, span: value.span))
            }
            if !match(.comma) { break }
        }
        _ = try expect(.rightParen, "')' or ',' in the argument list")
        return args
    }

    /// Index items after '[' up to and including ']': `0, :, 2:5, ::2`.
    private mutating func indexItems() throws -> [IndexItem] {
        var items: [IndexItem] = []
        repeat {
            var start: Expr? = nil
            if !check(.colon) { start = try expression() }
            if match(.colon) {
                let end = check(.colon) || check(.comma) || check(.rightBracket) ? nil : try expression()
                var step: Expr? = nil
                if match(.colon), !(check(.comma) || check(.rightBracket)) { step = try expression() }
                items.append(.slice(start: start, end: end, step: step))
            } else if let start {
                items.append(.single(start))
            }
        } while match(.comma) && !check(.rightBracket)
        _ = try expect(.rightBracket, "']' or ',' in the index")
        if items.isEmpty { throw fail("an index needs at least one position", at: previousSpan) }
        return items
    }

    private mutating func primary() throws -> Expr {
        let t = current
        switch t.kind {
        case .number: advance(); return Expr(kind: .number(t.number), span: t.span)
        case .string: advance(); return Expr(kind: .string(try stringParts(t)), span: t.span)
        case .keyword(.true): advance(); return Expr(kind: .bool(true), span: t.span)
        case .keyword(.false): advance(); return Expr(kind: .bool(false), span: t.span)
        case .keyword(.none): advance(); return Expr(kind: .none, span: t.span)
        case .identifier: advance(); return Expr(kind: .name(t.text), span: t.span)
        case .leftParen:
            advance()
            let inner = try expression()
            _ = try expect(.rightParen, "')'")
            return Expr(kind: inner.kind, span: t.span.through(previousSpan))
        case .leftBracket:
            advance()
            var elements: [Expr] = []
            while !check(.rightBracket) {
                elements.append(try expression())
                if !match(.comma) { break }
            }
            _ = try expect(.rightBracket, "']' or ',' in the list")
            return Expr(kind: .list(elements), span: t.span.through(previousSpan))
        case .keyword(let k) where [.if, .for, .while, .fn, .return, .break, .continue, .include, .else].contains(k):
            throw fail("'\(k.rawValue)' starts a statement and cannot be used inside an expression")
        default:
            throw fail("expected an expression, found \(describe(t))")
        }
    }

    /// The parts of a string literal, with each `{expr}` parsed as an expression.
    private mutating func stringParts(_ t: Token) throws -> [StringPart] {
        var parts: [StringPart] = []
        for piece in t.pieces {
            switch piece {
            case .text(let s): parts.append(.text(s))
            case .code(let start, let end):
                var sub = Parser(file, start: start, end: end, depth: depth + 1)
                var failed = false
                do {
                    let e = try sub.expression()
                    if !sub.check(.eof) {
                        _ = sub.fail("expected '}' after the expression in the string, found \(sub.describe(sub.current))")
                        failed = true
                    }
                    parts.append(.interpolation(e))
                } catch { failed = true }
                diagnostics.append(contentsOf: sub.diagnostics)
                if sub.abandoned { abandoned = true }
                if failed { throw Failure() }
            }
        }
        return parts
    }
}
