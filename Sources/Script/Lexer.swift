/// The lexer: source scalars in, tokens out, each token with its span.
///
/// Newlines end statements, except inside ( ) and [ ], so a long call may continue on the
/// next line; inside { } they separate statements again (a block inside a call's
/// parentheses, as in `grad(x -> { ... }, img)`, still reads line by line).

public enum Keyword: String, CaseIterable, Sendable, Hashable {
    case and, or, not, `if`, `else`, `for`, `in`, `while`, fn, `return`, `break`, `continue`
    case `true`, `false`, none, include
}

enum TokenKind: Hashable {
    case number, string, identifier, keyword(Keyword), newline, eof
    case leftParen, rightParen, leftBracket, rightBracket, leftBrace, rightBrace
    case comma, dot, colon, semicolon, arrow, dotDot
    case plus, minus, star, slash, percent, caret, at
    case assign, plusAssign, minusAssign, starAssign, slashAssign
    case equal, notEqual, less, lessEqual, greater, greaterEqual
}

/// A piece of a string literal: plain text, or the source range of an interpolated `{expr}`.
enum StringPiece: Equatable {
    case text(String)
    case code(start: Int, end: Int)
}

struct Token {
    var kind: TokenKind
    /// The identifier's name, or the lexeme as written.
    var text: String
    var number: Double = 0
    var pieces: [StringPiece] = []
    var span: SourceSpan
    /// A line end that closed brackets left open (already reported by the lexer).
    var closesBrackets = false

    /// Whether the token can serve as a name after `.` or before `=` in a call: identifiers
    /// and keywords alike, so `classviz(net, class=3)` and `h.in` read naturally.
    var isWord: Bool {
        switch kind {
        case .identifier, .keyword: return true
        default: return false
        }
    }
}

struct Lexer {
    let file: SourceFile
    private let s: [Unicode.Scalar]
    private var i: Int
    private let end: Int
    private(set) var diagnostics: [Diagnostic] = []
    /// Brackets opened and not yet closed, innermost last, with where each was opened.
    private(set) var open: [TokenKind] = []
    private var openedAt: [Int] = []

    /// A lexer over all of `file`, or over the scalars [start, end) (an interpolated expression).
    init(_ file: SourceFile, start: Int = 0, end: Int? = nil) {
        self.file = file
        self.s = file.scalars
        self.i = start
        self.end = min(end ?? file.scalars.count, file.scalars.count)
    }

    /// Every token up to and including `.eof`.
    mutating func tokenize() -> [Token] {
        var tokens: [Token] = []
        while true {
            let t = next()
            if t.kind == .newline, tokens.isEmpty || tokens.last?.kind == .newline { continue }
            tokens.append(t)
            if t.kind == .eof { return tokens }
        }
    }

    private func peek(_ k: Int = 0) -> Unicode.Scalar? { i + k < end ? s[i + k] : nil }

    private func span(_ start: Int) -> SourceSpan { SourceSpan(file: file, start: start, end: i) }

    private func text(_ start: Int) -> String {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: s[start..<i])
        return String(v)
    }

    private mutating func error(_ message: String, _ start: Int) {
        diagnostics.append(Diagnostic(.syntax, message, at: SourceSpan(file: file, start: start, end: max(i, start + 1))))
    }

    private var newlinesCount: Bool { open.last == nil || open.last == .leftBrace }

    mutating func next() -> Token {
        while let c = peek() {
            if c == " " || c == "\t" || c == "\r" { i += 1; continue }
            if c == "#" { while let d = peek(), d != "\n" { i += 1 }; continue }
            if c == "\n" {
                let start = i
                i += 1
                if newlinesCount { return Token(kind: .newline, text: "\n", span: span(start)) }
                if lineStartsStatement() {
                    // A forgotten ')' would otherwise swallow the rest of the file into one
                    // expression: a statement keyword at the start of a line ends the bracket.
                    let kind = open.last == .leftParen ? "(" : "["
                    diagnostics.append(Diagnostic(.syntax, "this '\(kind)' is not closed", at: SourceSpan(file: file, start: openedAt.last ?? start, end: (openedAt.last ?? start) + 1)))
                    open.removeAll()
                    openedAt.removeAll()
                    var t = Token(kind: .newline, text: "\n", span: span(start))
                    t.closesBrackets = true
                    return t
                }
                continue
            }
            break
        }
        let start = i
        guard let c = peek() else { return Token(kind: .eof, text: "", span: span(start)) }
        if ("0"..."9").contains(c) { return number() }
        if c == "\"" || c == "'" { return string(quote: c) }
        if c == "_" || c.properties.isAlphabetic { return word() }
        i += 1
        func make(_ kind: TokenKind) -> Token { Token(kind: kind, text: text(start), span: span(start)) }
        func two(_ second: Unicode.Scalar, _ yes: TokenKind, _ no: TokenKind) -> Token {
            if peek() == second { i += 1; return make(yes) }
            return make(no)
        }
        switch c {
        case "(", "[", "{":
            let kind: TokenKind = c == "(" ? .leftParen : c == "[" ? .leftBracket : .leftBrace
            open.append(kind)
            openedAt.append(start)
            return make(kind)
        case ")", "]", "}":
            if !open.isEmpty { open.removeLast(); openedAt.removeLast() }
            return make(c == ")" ? .rightParen : c == "]" ? .rightBracket : .rightBrace)
        case ",": return make(.comma)
        case ":": return make(.colon)
        case ";": return make(.semicolon)
        case "@": return make(.at)
        case "%": return make(.percent)
        case "^": return make(.caret)
        case ".": return two(".", .dotDot, .dot)
        case "+": return two("=", .plusAssign, .plus)
        case "*": return two("=", .starAssign, .star)
        case "/": return two("=", .slashAssign, .slash)
        case "-":
            if peek() == ">" { i += 1; return make(.arrow) }
            return two("=", .minusAssign, .minus)
        case "=": return two("=", .equal, .assign)
        case "<": return two("=", .lessEqual, .less)
        case ">": return two("=", .greaterEqual, .greater)
        case "!":
            if peek() == "=" { i += 1; return make(.notEqual) }
            error("unexpected '!'; write 'not' for negation", start)
            return next()
        default:
            error("unexpected character '\(c)'", start)
            return next()
        }
    }

    /// Whether the line starting at `i` begins, in its first column, with a keyword that only
    /// starts statements (and is not a keyword argument such as `if=`).
    private func lineStartsStatement() -> Bool {
        var k = i
        while k < end, s[k].properties.isAlphabetic { k += 1 }
        guard k > i else { return false }
        var v = String.UnicodeScalarView()
        v.append(contentsOf: s[i..<k])
        guard let word = Keyword(rawValue: String(v)), [.for, .if, .while, .fn, .return, .include].contains(word) else { return false }
        while k < end, s[k] == " " || s[k] == "\t" { k += 1 }
        return k >= end || s[k] != "="
    }

    private mutating func number() -> Token {
        let start = i
        func digits() { while let d = peek(), ("0"..."9").contains(d) || d == "_" { i += 1 } }
        digits()
        // A point followed by a digit continues the number; `0..9` is a range and `x.shape` an attribute.
        if peek() == ".", let d = peek(1), ("0"..."9").contains(d) { i += 1; digits() }
        if let e = peek(), e == "e" || e == "E" {
            var k = 1
            if let sign = peek(1), sign == "+" || sign == "-" { k = 2 }
            if let d = peek(k), ("0"..."9").contains(d) { i += k; digits() }
        }
        let lexeme = text(start)
        var value = Double(lexeme.replacingOccurrences(of: "_", with: "")) ?? .nan
        if !value.isFinite {
            error("the number \(lexeme) is too large", start)
            value = 0
        }
        return Token(kind: .number, text: lexeme, number: value, span: span(start))
    }

    private mutating func word() -> Token {
        let start = i
        while let c = peek(), c == "_" || c.properties.isAlphabetic || ("0"..."9").contains(c) { i += 1 }
        let name = text(start)
        if let k = Keyword(rawValue: name) { return Token(kind: .keyword(k), text: name, span: span(start)) }
        return Token(kind: .identifier, text: name, span: span(start))
    }

    /// A string literal with escapes and `{expr}` interpolation; it ends on its line.
    private mutating func string(quote: Unicode.Scalar) -> Token {
        let start = i
        i += 1
        var pieces: [StringPiece] = []
        var buffer = String.UnicodeScalarView()
        func flush() {
            if !buffer.isEmpty { pieces.append(.text(String(buffer))); buffer = String.UnicodeScalarView() }
        }
        while true {
            guard let c = peek(), c != "\n" else {
                error("this string is not closed: add \(quote) before the end of the line", start)
                break
            }
            i += 1
            if c == quote { break }
            if c == "\\" {
                guard let e = peek(), e != "\n" else { continue }
                i += 1
                switch e {
                case "n": buffer.append("\n")
                case "t": buffer.append("\t")
                case "r": buffer.append("\r")
                case "0": buffer.append("\0")
                case "\\", "\"", "'", "{", "}": buffer.append(e)
                default: error("unknown escape '\\\(e)' (known: \\n \\t \\r \\0 \\\\ \\\" \\' \\{ \\})", i - 2)
                }
                continue
            }
            if c == "{" {
                flush()
                let codeStart = i
                if let codeEnd = interpolationEnd() {
                    if s[codeStart..<codeEnd].allSatisfy({ $0 == " " || $0 == "\t" }) {
                        error("empty '{}' in a string: write \\{ for a brace", codeStart - 1)
                    } else {
                        pieces.append(.code(start: codeStart, end: codeEnd))
                    }
                    i = codeEnd + 1
                } else {
                    error("'{' in a string opens an expression that is not closed; write \\{ for a brace", codeStart - 1)
                    while let d = peek(), d != "\n" { i += 1 }
                    break
                }
                continue
            }
            buffer.append(c)
        }
        flush()
        return Token(kind: .string, text: text(start), pieces: pieces, span: span(start))
    }

    /// The index of the `}` closing the interpolation that starts at `i`, skipping nested
    /// braces and string literals; nil when the line ends first.
    private func interpolationEnd() -> Int? {
        var k = i, depth = 0
        var inner: Unicode.Scalar? = nil
        while k < end, s[k] != "\n" {
            let c = s[k]
            if let q = inner {
                if c == "\\" { k += 2; continue }
                if c == q { inner = nil }
            } else if c == "\"" || c == "'" {
                inner = c  // a string inside the expression, as in "{str("a")}"
            } else if c == "{" {
                depth += 1
            } else if c == "}" {
                if depth == 0 { return k }
                depth -= 1
            }
            k += 1
        }
        return nil
    }
}
