/// docs/BUILTINS.md, written from the registry so it cannot drift from the code.
public enum BuiltinReference {
    public static func markdown(_ registry: BuiltinRegistry = .standard()) -> String {
        var out = """
        # Builtins

        Every builtin of the language, by category. This file is generated from the builtins
        registry (the declarations in `Sources/Script/Builtins*.swift`); do not edit it by hand.
        Regenerate it with `CNNLAB_REGENERATE=1 swift test --filter BuiltinReferenceTests`.
        In the shell, `help()` lists the same builtins and `help(name)` explains one.


        """
        let groups = registry.byCategory
        for (category, builtins) in groups {
            out += "- \(category.name): " + builtins.map { "[`\($0.name)`](#\($0.name))" }.joined(separator: ", ") + "\n"
        }
        for (category, builtins) in groups {
            out += "\n## \(category.name)\n"
            for b in builtins {
                out += "\n### \(b.name)\n\n`\(b.signature)`\n\n\(b.summary)\n"
                if !b.help.isEmpty { out += "\n\(b.help)\n" }
                if !b.parameters.isEmpty {
                    out += "\n| parameter | accepts | default |\n| --- | --- | --- |\n"
                    for p in b.parameters {
                        var accepts = p.typeText
                        if p.kind == .variadic { accepts += ", any number of them" }
                        if p.kind == .keywords { accepts += ", as name=value, any number of them" }
                        let dflt = p.kind == .regular ? p.defaultValue.map { "`\(Display.source($0))`" } ?? "required" : ""
                        out += "| `\(p.name)` | \(accepts) | \(dflt) |\n"
                    }
                }
                out += "\n```\n\(b.example)\n```\n"
            }
        }
        return out
    }
}
