import Script

/// A forgiving scanner of the language's tokens for the front ends. Highlighting a notebook
/// cell, completing a half-typed line and deciding how far to indent all need to know where
/// the words, strings, comments and brackets are, also in unfinished input that the parser
/// would refuse; this scanner never fails, it only classifies.
struct CodeScanner {
    enum Kind: Equatable {
        case word, keyword, number, string, comment, punctuation, space, newline
    }

    struct Token: Equatable {
        var kind: Kind
        /// Scalar offsets [start, end) into the scanned text.
        var start: Int
        var end: Int
        /// For a string: whether its closing quote is there.
        var terminated = true
        /// For a string: the code inside `{...}` interpolations, as scalar ranges (without the braces).
        var interpolations: [Range<Int>] = []
        /// For a string: an interpolation opened and not closed before the string ended.
        var openInterpolation: Int? = nil
    }

    static let keywords = Set(Keyword.allCases.map(\.rawValue))
    /// Operators of two characters, longest match first.
    static let twoCharacterOperators: Set<String> = ["->", "..", "==", "!=", "<=", ">=", "+=", "-=", "*=", "/="]

    static func isWordStart(_ c: Unicode.Scalar) -> Bool { c == "_" || c.properties.isAlphabetic }
    static func isWordPart(_ c: Unicode.Scalar) -> Bool { isWordStart(c) || ("0"..."9").contains(c) }

    /// Every token of `s`, in order, covering all of it.
    static func tokens(_ s: [Unicode.Scalar]) -> [Token] {
        var out: [Token] = []
        var i = 0
        while i < s.count {
            let c = s[i]
            let start = i
            if c == "\n" {
                i += 1
                out.append(Token(kind: .newline, start: start, end: i))
            } else if c == " " || c == "\t" || c == "\r" {
                while i < s.count, s[i] == " " || s[i] == "\t" || s[i] == "\r" { i += 1 }
                out.append(Token(kind: .space, start: start, end: i))
            } else if c == "#" {
                while i < s.count, s[i] != "\n" { i += 1 }
                out.append(Token(kind: .comment, start: start, end: i))
            } else if c == "\"" || c == "'" {
                out.append(string(s, &i))
            } else if ("0"..."9").contains(c) {
                i = numberEnd(s, i)
                out.append(Token(kind: .number, start: start, end: i))
            } else if isWordStart(c) {
                while i < s.count, isWordPart(s[i]) { i += 1 }
                var word = String.UnicodeScalarView()
                word.append(contentsOf: s[start..<i])
                out.append(Token(kind: keywords.contains(String(word)) ? .keyword : .word, start: start, end: i))
            } else {
                i += 1
                if i < s.count {
                    var pair = String.UnicodeScalarView()
                    pair.append(c)
                    pair.append(s[i])
                    if twoCharacterOperators.contains(String(pair)) { i += 1 }
                }
                out.append(Token(kind: .punctuation, start: start, end: i))
            }
        }
        return out
    }

    private static func numberEnd(_ s: [Unicode.Scalar], _ from: Int) -> Int {
        var i = from
        func digits() { while i < s.count, ("0"..."9").contains(s[i]) || s[i] == "_" { i += 1 } }
        digits()
        if i + 1 < s.count, s[i] == ".", ("0"..."9").contains(s[i + 1]) { i += 1; digits() }
        if i < s.count, s[i] == "e" || s[i] == "E" {
            var k = i + 1
            if k < s.count, s[k] == "+" || s[k] == "-" { k += 1 }
            if k < s.count, ("0"..."9").contains(s[k]) { i = k; digits() }
        }
        return i
    }

    /// A string literal from its opening quote: escapes, `{expr}` interpolations with nested
    /// braces and inner strings, ending at its quote or at the end of the line.
    private static func string(_ s: [Unicode.Scalar], _ i: inout Int) -> Token {
        let quote = s[i]
        var token = Token(kind: .string, start: i, end: i, terminated: false)
        i += 1
        while i < s.count, s[i] != "\n" {
            let c = s[i]
            if c == "\\" { i += min(2, s.count - i); continue }
            if c == quote { i += 1; token.terminated = true; break }
            if c == "{" {
                let codeStart = i + 1
                var k = codeStart, depth = 0
                var inner: Unicode.Scalar? = nil
                var closed = false
                while k < s.count, s[k] != "\n" {
                    let d = s[k]
                    if let q = inner {
                        if d == "\\" { k += 2; continue }
                        if d == q { inner = nil }
                    } else if d == "\"" || d == "'" {
                        inner = d
                    } else if d == "{" {
                        depth += 1
                    } else if d == "}" {
                        if depth == 0 { closed = true; break }
                        depth -= 1
                    }
                    k += 1
                }
                k = min(k, s.count)
                if closed {
                    token.interpolations.append(codeStart..<k)
                    i = k + 1
                } else {
                    token.openInterpolation = codeStart
                    i = k
                    break
                }
                continue
            }
            i += 1
        }
        token.end = min(i, s.count)
        return token
    }

    /// The brackets left open at the end of `s` (innermost last): "(", "[" or "{", with their offsets.
    static func openBrackets(_ s: [Unicode.Scalar], tokens: [Token]? = nil) -> [(bracket: Unicode.Scalar, offset: Int)] {
        var stack: [(Unicode.Scalar, Int)] = []
        for t in tokens ?? self.tokens(s) where t.kind == .punctuation && t.end - t.start == 1 {
            let c = s[t.start]
            switch c {
            case "(", "[", "{": stack.append((c, t.start))
            case ")", "]", "}": if !stack.isEmpty { stack.removeLast() }
            default: break
            }
        }
        return stack.map { (bracket: $0.0, offset: $0.1) }
    }
}

extension Array where Element == Unicode.Scalar {
    /// The scalars [from, to) as a string.
    func text(_ from: Int, _ to: Int) -> String {
        var v = String.UnicodeScalarView()
        let lo = Swift.max(0, Swift.min(from, count)), hi = Swift.max(lo, Swift.min(to, count))
        v.append(contentsOf: self[lo..<hi])
        return String(v)
    }
}
