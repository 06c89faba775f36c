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

/// Edit distance with transpositions (optimal string alignment), for "did you mean"
/// suggestions: "rleu" is one step from "relu", as "conv2" is from "conv2d".
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    // Three rows: the one before the previous one is what a transposition looks back to.
    var before = [Int](repeating: 0, count: b.count + 1)
    var prev = Array(0...b.count)
    var cur = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        cur[0] = i
        for j in 1...b.count {
            cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { cur[j] = Swift.min(cur[j], before[j - 2] + 1) }
        }
        (before, prev, cur) = (prev, cur, before)
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
