import Script

/// Code of the language as HTML with its tokens in classes: `k` keywords, `b` builtins,
/// `n` numbers, `s` strings (their `{...}` interpolations highlighted as code, braces `si`),
/// `c` comments, `o` operators. Everything else is escaped text.
struct Highlighter {
    let builtins: Set<String>

    init(builtins: Set<String> = Set(BuiltinRegistry.standard().names)) {
        self.builtins = builtins
    }

    func html(_ code: String) -> String {
        html(Array(code.unicodeScalars), 0, nil)
    }

    private func html(_ s: [Unicode.Scalar], _ from: Int, _ to: Int?) -> String {
        let end = to ?? s.count
        let tokens = CodeScanner.tokens(Array(s[from..<end]))
        var out = ""
        for t in tokens {
            let a = t.start + from, b = t.end + from
            let text = s.text(a, b)
            switch t.kind {
            case .keyword: out += span("k", text)
            case .word: out += builtins.contains(text) ? span("b", text) : escapeHTML(text)
            case .number: out += span("n", text)
            case .comment: out += span("c", text)
            case .punctuation:
                out += "()[]{},;:".contains(text) ? escapeHTML(text) : span("o", text)
            case .space, .newline: out += escapeHTML(text)
            case .string:
                // The string, with each interpolation's code highlighted in place.
                var position = a
                out += "<span class=\"s\">"
                let pieces = t.interpolations.map { ($0.lowerBound + from, $0.upperBound + from) }
                    + (t.openInterpolation.map { [($0 + from, b)] } ?? [])
                for (codeStart, codeEnd) in pieces {
                    out += escapeHTML(s.text(position, codeStart - 1))
                    out += "<span class=\"si\">{</span></span>" + html(s, codeStart, codeEnd) + "<span class=\"s\">"
                    position = codeEnd
                    if codeEnd < b, s[codeEnd] == "}" { out += "<span class=\"si\">}</span>"; position += 1 }
                }
                out += escapeHTML(s.text(position, b)) + "</span>"
            }
        }
        return out
    }

    private func span(_ cls: String, _ text: String) -> String {
        "<span class=\"\(cls)\">\(escapeHTML(text))</span>"
    }
}

/// Text safe inside HTML elements and attribute values.
func escapeHTML(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for c in text.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}
