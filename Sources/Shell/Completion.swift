import Engine
import Foundation
import Script

/// What to put in place of the text [start, end) before the cursor.
public struct CompletionResult: Equatable {
    /// Scalar offsets: the replaced text starts at `start` and ends at the cursor, `end`.
    public var start: Int
    public var end: Int
    /// Candidates in the order to offer them: keyword arguments, then variables, builtins and keywords.
    public var matches: [String]
}

/// Completion from what a session knows: builtins and variables by name, the keyword
/// arguments of the function being called (from the registry's parameter lists), the layers
/// and attributes of a value after a dot, and file names inside a string. The shell's Tab
/// and the kernel's complete_request both ask this.
public struct Completer {
    let interpreter: Interpreter
    /// Where relative file names start (the session's working folder).
    var directory: String

    public init(_ interpreter: Interpreter, directory: String = FileManager.default.currentDirectoryPath) {
        self.interpreter = interpreter
        self.directory = directory
    }

    /// At most this many file names are offered, so a Tab in a huge folder stays quick.
    static let maximumFileMatches = 500

    /// Completions for the text before `cursor` (a scalar offset; the end of `text` by default).
    public func complete(_ text: String, cursor: Int? = nil) -> CompletionResult {
        let s = Array(text.unicodeScalars)
        let c = max(0, min(cursor ?? s.count, s.count))
        return complete(Array(s[0..<c]))
    }

    private func complete(_ s: [Unicode.Scalar]) -> CompletionResult {
        let c = s.count
        let none = CompletionResult(start: c, end: c, matches: [])
        let tokens = CodeScanner.tokens(s)
        guard let last = tokens.last else { return CompletionResult(start: c, end: c, matches: names(prefix: "")) }
        if last.kind == .comment { return none }
        if last.kind == .string, !last.terminated {
            if let open = last.openInterpolation {
                // Inside "{...}" of a string: complete the code there.
                let inner = complete(Array(s[open..<c]))
                return CompletionResult(start: inner.start + open, end: c, matches: inner.matches)
            }
            return files(typed: s.text(last.start + 1, c), end: c)
        }
        if last.kind == .string || last.kind == .number { return none }

        var wordIndex = tokens.count
        if (last.kind == .word || last.kind == .keyword), last.end == c { wordIndex = tokens.count - 1 }
        let start = wordIndex < tokens.count ? tokens[wordIndex].start : c
        let word = s.text(start, c)
        let before = Completer.significant(tokens, before: wordIndex)

        if let dot = before, tokens[dot].kind == .punctuation, s.text(tokens[dot].start, tokens[dot].end) == "." {
            guard let base = resolveChain(s, tokens, endingBefore: dot) else { return none }
            let matches = Completer.attributeNames(of: base).filter { $0.hasPrefix(word) }
            return CompletionResult(start: start, end: c, matches: Completer.unique(matches))
        }

        var matches: [String] = []
        if let before, ["(", ","].contains(s.text(tokens[before].start, tokens[before].end)),
           let call = enclosingCall(s, tokens, before: wordIndex) {
            let given = Set(call.given)
            matches += call.parameters.filter { !given.contains($0) && $0.hasPrefix(word) }.map { $0 + "=" }
        }
        matches += names(prefix: word)
        return CompletionResult(start: start, end: c, matches: Completer.unique(matches))
    }

    /// Variables, then builtins, then the language's keywords, starting with `prefix`.
    func names(prefix: String) -> [String] {
        var variables: [String] = [], builtins: [String] = []
        for name in interpreter.visibleNames where name.hasPrefix(prefix) {
            if isBuiltin(name) { builtins.append(name) } else { variables.append(name) }
        }
        let keywords = Keyword.allCases.map(\.rawValue).filter { $0.hasPrefix(prefix) }.sorted()
        return variables + builtins + keywords
    }

    /// Whether a name means the builtin of that name (no variable hides it).
    func isBuiltin(_ name: String) -> Bool {
        guard let b = interpreter.registry[name], case .builtin(let v)? = interpreter.value(named: name) else { return false }
        return v.name == b.name
    }

    static func unique(_ xs: [String]) -> [String] {
        var seen = Set<String>()
        return xs.filter { seen.insert($0).inserted }
    }

    /// The index of the last token before `index` that is not white space.
    static func significant(_ tokens: [CodeScanner.Token], before index: Int) -> Int? {
        var k = index - 1
        while k >= 0, tokens[k].kind == .space { k -= 1 }
        return k >= 0 ? k : nil
    }

    // MARK: values after a dot

    /// The value of `a.b.c` ending just before the token `end` (a dot): names and attributes
    /// only, looked up without running anything.
    func resolveChain(_ s: [Unicode.Scalar], _ tokens: [CodeScanner.Token], endingBefore end: Int) -> Value? {
        var names: [String] = []
        var k = end - 1
        while k >= 0 {
            let t = tokens[k]
            guard t.kind == .word || t.kind == .keyword else { return nil }
            names.insert(s.text(t.start, t.end), at: 0)
            guard k >= 1, tokens[k - 1].kind == .punctuation, s.text(tokens[k - 1].start, tokens[k - 1].end) == "." else { break }
            k -= 2
        }
        guard let first = names.first, var value = interpreter.value(named: first) else { return nil }
        for name in names.dropFirst() {
            guard let next = Completer.attribute(of: value, name) else { return nil }
            value = next
        }
        return value
    }

    /// The attributes `.name` reads on a value, in the order a person looks for them.
    public static func attributeNames(of value: Value) -> [String] {
        switch value {
        case .tensor, .image:
            let rank = value.tensorValue?.rank ?? 0
            return ["shape", "rank", "size"] + (rank >= 2 ? ["height", "width"] : []) + (rank == 3 ? ["channels"] : [])
        case .network(let n):
            return n.layerNames + ["layers", "classes"]
        case .layer(let l):
            return l.attributeNames
        case .record(let r):
            return r.fields.map(\.name)
        default:
            return []
        }
    }

    /// The value of `value.name` as far as completion needs it: layers of networks, parameters
    /// of layers (as tensors, for their shapes) and fields of records.
    static func attribute(of value: Value, _ name: String) -> Value? {
        switch value {
        case .network(let n):
            guard let layer = try? n.layer(named: name) else { return nil }
            return .layer(LayerValue(layer: layer, name: name, network: n))
        case .layer(let l):
            return l.layer.parameters[name].map(Value.image)
        case .record(let r):
            return r[name]
        default:
            return nil
        }
    }

    // MARK: keyword arguments

    struct Call {
        /// The callee's parameter names that may be given as keywords.
        var parameters: [String]
        /// Keywords already written in this call.
        var given: [String]
    }

    /// The call whose parentheses the token at `index` is in, when its callee is a name (or an
    /// attribute chain) that names a builtin or a function.
    func enclosingCall(_ s: [Unicode.Scalar], _ tokens: [CodeScanner.Token], before index: Int) -> Call? {
        var depth = 0
        var k = index - 1
        var given: [String] = []
        while k >= 0 {
            let t = tokens[k]
            if t.kind == .punctuation {
                let p = s.text(t.start, t.end)
                if [")", "]", "}"].contains(p) { depth += 1 }
                else if ["(", "[", "{"].contains(p) {
                    if depth == 0 {
                        guard p == "(" else { return nil }
                        break
                    }
                    depth -= 1
                } else if p == "=", depth == 0, let label = Completer.significant(tokens, before: k),
                          tokens[label].kind == .word || tokens[label].kind == .keyword {
                    given.append(s.text(tokens[label].start, tokens[label].end))
                }
            }
            k -= 1
        }
        guard k >= 0, let calleeEnd = Completer.significant(tokens, before: k),
              tokens[calleeEnd].kind == .word || tokens[calleeEnd].kind == .keyword else { return nil }
        guard let callee = resolveChain(s, tokens, endingBefore: calleeEnd + 1) else { return nil }
        switch callee {
        case .builtin(let b):
            return Call(parameters: b.parameters.filter { $0.kind == .regular }.map(\.name), given: given)
        case .function(let f):
            return Call(parameters: f.declaration.parameters.map(\.name), given: given)
        default:
            return nil
        }
    }

    // MARK: files inside strings

    /// File names completing the last part of the path typed so far inside a string; folders end in "/".
    func files(typed: String, end: Int) -> CompletionResult {
        let slash = typed.lastIndex(of: "/")
        let folderPart = slash.map { String(typed[...$0]) } ?? ""
        let partial = slash.map { String(typed[typed.index(after: $0)...]) } ?? typed
        var folder = folderPart
        if folder.hasPrefix("~/") {
            let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
            folder = home + folder.dropFirst()
        }
        if folder.isEmpty { folder = directory }
        else if !folder.hasPrefix("/") { folder = (directory as NSString).appendingPathComponent(folder) }
        let start = end - partial.unicodeScalars.count
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
            return CompletionResult(start: start, end: end, matches: [])
        }
        var matches: [String] = []
        for entry in entries.sorted() where entry.hasPrefix(partial) && (partial.hasPrefix(".") || !entry.hasPrefix(".")) {
            var isDirectory: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent(entry), isDirectory: &isDirectory)
            matches.append(isDirectory.boolValue ? entry + "/" : entry)
            if matches.count >= Completer.maximumFileMatches { break }
        }
        return CompletionResult(start: start, end: end, matches: matches)
    }

    // MARK: help for the name under the cursor

    /// Help for the name at `cursor` (a builtin's reference, or a variable's type and value),
    /// else for the function whose call the cursor is in; nil when there is nothing to say.
    public func help(_ text: String, cursor: Int? = nil) -> String? {
        let s = Array(text.unicodeScalars)
        let c = max(0, min(cursor ?? s.count, s.count))
        var lo = c, hi = c
        while lo > 0, CodeScanner.isWordPart(s[lo - 1]) || s[lo - 1] == "." { lo -= 1 }
        while hi < s.count, CodeScanner.isWordPart(s[hi]) { hi += 1 }
        let chain = s.text(lo, hi).split(separator: ".").map(String.init)
        if let first = chain.first, !first.isEmpty, var value = interpreter.value(named: first) {
            var name = first
            var resolved = true
            for part in chain.dropFirst() {
                guard let next = Completer.attribute(of: value, part) else { resolved = false; break }
                value = next
                name += "." + part
            }
            if resolved { return describe(name, value) }
        }
        let prefix = Array(s[0..<c])
        let tokens = CodeScanner.tokens(prefix)
        guard let call = calleeName(prefix, tokens), let value = interpreter.value(named: call) else { return nil }
        return describe(call, value)
    }

    /// The name of the function whose parentheses end `s`, if any.
    private func calleeName(_ s: [Unicode.Scalar], _ tokens: [CodeScanner.Token]) -> String? {
        guard let open = CodeScanner.openBrackets(s, tokens: tokens).last, open.bracket == "(" else { return nil }
        guard let index = tokens.firstIndex(where: { $0.start == open.offset }),
              let callee = Completer.significant(tokens, before: index), tokens[callee].kind == .word else { return nil }
        return s.text(tokens[callee].start, tokens[callee].end)
    }

    /// A builtin's reference, or "name: type" and the value's text.
    public func describe(_ name: String, _ value: Value) -> String {
        if case .builtin(let b) = value { return Builtins.builtinHelp(b) }
        if case .function(let f) = value {
            let params = f.declaration.parameters.map(\.name).joined(separator: ", ")
            return "\(f.name)(\(params)): a function defined at \(f.declaration.span)\n"
        }
        return "\(name): \(value.typeName)\n\(Display.text(value))\n"
    }
}
