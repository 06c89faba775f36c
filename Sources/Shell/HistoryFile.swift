import Foundation

/// The shell's history in a file (~/.cnn_history): one entry a line, newlines inside an
/// entry (a block typed over several prompts) written as "\n", at most `limit` entries.
public struct HistoryFile {
    public let path: String
    public let limit: Int

    public init(path: String, limit: Int = 1000) {
        self.path = path
        self.limit = max(1, limit)
    }

    /// ~/.cnn_history.
    public static var defaultPath: String {
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".cnn_history")
    }

    static func encode(_ entry: String) -> String {
        entry.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func decode(_ line: String) -> String {
        var out = ""
        var escaped = false
        for c in line {
            if escaped {
                out.append(c == "n" ? "\n" : c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// The entries, oldest first; a missing or unreadable file is an empty history.
    public func load() -> [String] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else { return [] }
        let entries = text.split(separator: "\n", omittingEmptySubsequences: true).map { HistoryFile.decode(String($0)) }
        return Array(entries.suffix(limit))
    }

    /// Whether an entry is worth keeping: not blank, and not the same as the one before.
    public static func shouldRecord(_ entry: String, after previous: String?) -> Bool {
        !entry.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty && entry != previous
    }

    /// Appends an entry; when the file holds more than `limit` entries it is rewritten with
    /// the newest `limit` (atomically, so a crash never loses the whole history).
    public func append(_ entry: String) throws {
        let line = HistoryFile.encode(entry) + "\n"
        if !FileManager.default.fileExists(atPath: path) {
            // History can hold anything typed: keep it private to the user.
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(line.utf8))
        try trimIfNeeded()
    }

    private func trimIfNeeded() throws {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        // Rewrite only when a quarter over the limit, so most appends stay appends.
        guard lines.count > limit + limit / 4 else { return }
        var kept = Data()
        for l in lines.suffix(limit) { kept.append(contentsOf: l); kept.append(UInt8(ascii: "\n")) }
        try kept.write(to: URL(fileURLWithPath: path), options: .atomic)
        try? FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }
}
