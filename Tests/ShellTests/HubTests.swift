import Foundation
import XCTest

/// A class on a local JupyterHub (scripts/hub, docs/CLASSROOM.md): two simulated students log
/// in through the hub's REST API, start their servers, open cnnlab kernels through the hub's
/// proxy and run the ImageNet lecture's cells at once; every output comes back and nothing
/// is left running. Skips, saying why, where Debian's jupyterhub is not installed (scripts/test
/// installs it) or the zoo has not been fetched.
final class HubTests: XCTestCase {
    func testTwoStudentsRunTheImageNetCellsThroughTheHubAndNothingIsLeftRunning() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/jupyterhub") else {
            throw XCTSkip("Debian's jupyterhub is not installed (scripts/test installs it with apt-get; scripts/hub start does too)")
        }
        let cache = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"] ?? (NSHomeDirectory() + "/.cache")
        guard FileManager.default.fileExists(atPath: cache + "/cnnlab/efficientnet-lite0") else {
            throw XCTSkip("the zoo is not fetched: run cnn fetch efficientnet-lite0 photos")
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        var environment = ProcessInfo.processInfo.environment
        environment["CNN_SKIP_BUILD"] = "1"
        let r = try Support.run(root + "/scripts/hub", ["loadtest", "--students", "2", "--steps", "8"],
                                environment: environment, directory: root, timeout: 600)
        XCTAssertFalse(r.timedOut, "the load test did not finish in 600 s:\n\(r.output)\(r.errors)")
        XCTAssertEqual(r.status, 0, r.output + r.errors)
        XCTAssertTrue(r.output.contains("2 students: 6 of 6 cells came back complete"), r.output + r.errors)
        XCTAssertTrue(r.output.contains("left running: nothing"), r.output)
        XCTAssertTrue(r.output.contains("peak memory per kernel"), r.output)
    }
}
