import Foundation
import XCTest

/// Processes and files for the tests that drive `cnn` from outside: every wait is bounded.
enum Support {
    /// The `cnn` built beside the test bundle.
    static var executable: String {
        let testBinary = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return testBinary.deletingLastPathComponent().appendingPathComponent("cnn").path
    }

    /// The build folder (.build), found above the products folder.
    static var buildFolder: String? {
        var url = URL(fileURLWithPath: executable).deletingLastPathComponent()
        for _ in 0..<4 {
            if url.lastPathComponent == ".build" || url.lastPathComponent.hasPrefix(".build") { return url.path }
            url.deleteLastPathComponent()
        }
        return nil
    }

    /// A fresh temporary folder.
    static func temporaryFolder(_ label: String) throws -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("cnn-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    struct Finished {
        var status: Int32
        var output: String
        var errors: String
        var timedOut: Bool
    }

    /// Runs a program to its end or until `timeout` seconds pass (then it is killed).
    static func run(_ program: String, _ arguments: [String], environment: [String: String]? = nil,
                    directory: String? = nil, timeout: TimeInterval = 60) throws -> Finished {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let outputBox = DataBox(), errorBox = DataBox()
        let group = DispatchGroup()
        for (pipe, box) in [(out, outputBox), (err, errorBox)] {
            group.enter()
            DispatchQueue.global().async {
                box.data = pipe.fileHandleForReading.readDataToEndOfFile()
                group.leave()
            }
        }
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        let timedOut = process.isRunning
        if timedOut {
            process.terminate()
            Thread.sleep(forTimeInterval: 0.5)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        _ = group.wait(timeout: .now() + 10)
        return Finished(status: process.terminationStatus, output: String(decoding: outputBox.data, as: UTF8.self),
                        errors: String(decoding: errorBox.data, as: UTF8.self), timedOut: timedOut)
    }

    /// Runs `cnn` itself.
    static func cnn(_ arguments: [String], directory: String? = nil, timeout: TimeInterval = 60) throws -> Finished {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            XCTFail("cnn is not built at \(executable)")
            return Finished(status: -1, output: "", errors: "", timedOut: false)
        }
        return try run(executable, arguments, directory: directory, timeout: timeout)
    }
}

extension Support {
    /// Runs a program with posix_spawn and waitpid, its output in a temporary file. For
    /// programs that leave a daemon behind (`tmux new-session -d`): the daemon inherits the
    /// descriptors Foundation's Process watches to learn that its child ended, so Process
    /// would wait for the daemon too.
    static func spawn(_ program: String, _ arguments: [String], timeout: TimeInterval = 15) throws -> Finished {
        let outputPath = (NSTemporaryDirectory() as NSString).appendingPathComponent("cnn-spawn-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, program, &actions, nil, argv, environ)
        guard status == 0 else { throw NotebookTestError("cannot start \(program): \(String(cString: strerror(status)))") }
        let deadline = Date().addingTimeInterval(timeout)
        var code: Int32 = 0
        var timedOut = false
        while waitpid(pid, &code, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &code, 0)
                timedOut = true
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exit = (code & 0x7f) == 0 ? (code >> 8) & 0xff : 128 + (code & 0x7f)
        return Finished(status: exit, output: output, errors: "", timedOut: timedOut)
    }
}

private final class DataBox: @unchecked Sendable {
    var data = Data()
}
