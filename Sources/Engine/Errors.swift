/// Errors the engine reports to its callers: what was expected and what was found.
public enum EngineError: Error, Equatable, CustomStringConvertible {
    case shapeMismatch(String)
    case invalidArgument(String)
    case unknownName(String, candidates: [String])
    case cancelled

    public var description: String {
        switch self {
        case .shapeMismatch(let m): return "shape mismatch: \(m)"
        case .invalidArgument(let m): return m
        case .unknownName(let m, let candidates):
            if let near = nearest(m, in: candidates) { return "unknown name '\(m)'; did you mean '\(near)'?" }
            return "unknown name '\(m)'; known names are \(candidates.joined(separator: ", "))"
        case .cancelled: return "cancelled"
        }
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    var cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[b.count]
}

/// The candidate closest to `name`, if it is close enough to be a likely typo.
public func nearest(_ name: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(name.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    let limit = Swift.max(1, name.count / 3)
    return best.1 <= limit ? best.0 : nil
}
