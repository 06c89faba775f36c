import Foundation
import XCTest

/// The kernel and the notebook exports checked by Jupyter's own Python libraries
/// (jupyter_client, nbclient, nbformat), run by Tests/ShellTests/kernel_client.py.
///
/// scripts/test installs them into .build/jupyter-venv; CNN_TEST_PYTHON names another Python
/// that has them. Without them these tests fail, naming the install step: they never skip.
final class JupyterTests: XCTestCase {
    static let installHint = "Python with jupyter_client, nbclient and nbformat is needed: run scripts/test (it installs them into .build/jupyter-venv with pip) or set CNN_TEST_PYTHON to a python that has them"

    private var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("kernel_client.py").path
    }

    private func python() -> String? {
        let environment = ProcessInfo.processInfo.environment
        if let p = environment["CNN_TEST_PYTHON"], FileManager.default.isExecutableFile(atPath: p) { return p }
        if let build = Support.buildFolder {
            let venv = build + "/jupyter-venv/bin/python"
            if FileManager.default.isExecutableFile(atPath: venv) { return venv }
        }
        return nil
    }

    /// Runs the checker; its output is attached to any failure.
    private func check(_ mode: String, _ argument: String, timeout: TimeInterval = 240) throws {
        guard let python = python() else { return XCTFail(JupyterTests.installHint) }
        let runtime = try Support.temporaryFolder("jupyter-runtime")
        defer { try? FileManager.default.removeItem(atPath: runtime) }
        var environment = ProcessInfo.processInfo.environment
        environment["JUPYTER_RUNTIME_DIR"] = runtime
        environment["JUPYTER_PLATFORM_DIRS"] = "1"
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["CNN_PICTURES"] = "none"
        let r = try Support.run(python, [script, mode, argument], environment: environment, directory: runtime, timeout: timeout)
        if r.status == 3 { return XCTFail(JupyterTests.installHint + "\n" + r.output) }
        XCTAssertFalse(r.timedOut, "kernel_client.py \(mode) did not finish in \(Int(timeout)) s:\n\(r.output)\(r.errors)")
        XCTAssertEqual(r.status, 0, "kernel_client.py \(mode) failed:\n\(r.output)\(r.errors)")
        XCTAssertTrue(r.output.contains("all passed"), r.output + r.errors)
    }

    func testTheKernelSpeaksTheProtocolToJupyterClient() throws {
        try check("kernel", Support.executable)
    }

    func testAKernelUnderAMemoryCapStopsTheCellThatPassesItAndLivesOn() throws {
        try check("memorycap", Support.executable)
    }

    func testNbclientRunsANotebookThroughTheInstalledKernel() throws {
        try check("nbclient", Support.executable)
    }

    func testExportedNotebooksValidateWithNbformat() throws {
        let folder = try Support.temporaryFolder("nbformat")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try sampleNotebook.write(toFile: folder + "/demo.cnn", atomically: true, encoding: .utf8)
        let run = try Support.cnn(["notebook", folder + "/demo.cnn", "-o", folder + "/demo.ipynb", "--allow-errors"])
        XCTAssertEqual(run.status, 0, run.errors)
        try check("validate", folder + "/demo.ipynb", timeout: 60)
        let stopped = try Support.cnn(["notebook", folder + "/demo.cnn", "-o", folder + "/stopped.ipynb"])
        XCTAssertEqual(stopped.status, 1)
        try check("validate", folder + "/stopped.ipynb", timeout: 60)
    }
}
