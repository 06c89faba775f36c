import Foundation
import XCTest

/// The shell as a person meets it: `cnn` in a pseudo-terminal (a tmux server of the test's
/// own), typed at with send-keys and read back with capture-pane.
final class InteractiveShellTests: XCTestCase {
    private let server = "cnn-test-\(UUID().uuidString.prefix(8))"
    private var home = ""
    private let tmuxPath = ["/usr/bin/tmux", "/bin/tmux", "/usr/local/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }

    override func setUpWithError() throws {
        home = try Support.temporaryFolder("shell-home")
    }

    override func tearDown() {
        _ = try? tmux(["kill-server"])
        try? FileManager.default.removeItem(atPath: home)
    }

    @discardableResult
    private func tmux(_ arguments: [String]) throws -> Support.Finished {
        guard let tmuxPath else { throw NotebookTestError("tmux is needed for this test: scripts/setup installs it") }
        return try Support.spawn(tmuxPath, ["-L", server, "-f", "/dev/null"] + arguments, timeout: 15)
    }

    private func startShell() throws {
        let quote = { (s: String) in "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let command = "env HOME=\(quote(home)) TERM=xterm-256color CNN_PICTURES=blocks NO_COLOR= \(quote(Support.executable))"
        let r = try tmux(["new-session", "-d", "-x", "120", "-y", "40", "-s", "shell", command])
        XCTAssertEqual(r.status, 0, r.output)
    }

    private func screen() -> String {
        (try? tmux(["capture-pane", "-p", "-t", "shell"]).output) ?? ""
    }

    private func keys(_ keys: String...) throws {
        try tmux(["send-keys", "-t", "shell"] + keys)
    }

    /// Types a line of text literally (no key names) and, with `enter`, presses Enter.
    private func type(_ text: String, enter: Bool = true) throws {
        try tmux(["send-keys", "-t", "shell", "-l", text])
        if enter { try keys("Enter") }
    }

    /// Waits until the screen satisfies `condition`; fails with the screen after `timeout`.
    @discardableResult
    private func waitFor(_ what: String, timeout: TimeInterval = 20, file: StaticString = #filePath, line: UInt = #line,
                         _ condition: (String) -> Bool) -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var text = screen()
        while !condition(text) {
            if Date() > deadline {
                XCTFail("waited \(Int(timeout)) s for \(what); the screen:\n\(text)", file: file, line: line)
                return text
            }
            Thread.sleep(forTimeInterval: 0.1)
            text = screen()
        }
        return text
    }

    /// How many prompt lines the screen shows (capture-pane trims an idle prompt to "cnn>").
    private func prompts(_ text: String) -> Int { text.split(separator: "\n").filter { $0.hasPrefix("cnn>") }.count }

    /// The last non-empty line of the screen.
    private func lastLine(_ text: String) -> String {
        text.split(separator: "\n").last.map(String.init) ?? ""
    }

    /// Waits for the prompt after the `n`-th one, with nothing typed on it yet.
    private func waitForIdlePrompt(_ n: Int, file: StaticString = #filePath, line: UInt = #line) {
        waitFor("prompt \(n)", file: file, line: line) { self.prompts($0) >= n && self.lastLine($0) == "cnn>" }
    }

    func testTypingCompletionHistoryInterruptAndPictures() throws {
        guard tmuxPath != nil else { return XCTFail("tmux is needed for this test: scripts/setup installs it") }
        try startShell()
        waitForIdlePrompt(1)

        try type("net = load(\"fashion\")")
        waitForIdlePrompt(2)

        // Tab completes the layers' common prefix and lists them.
        try type("net.co", enter: false)
        try keys("Tab")
        let listed = waitFor("the completion list") { $0.contains("conv1  conv2") && self.lastLine($0) == "cnn> net.conv" }
        XCTAssertTrue(listed.contains("conv1  conv2"))
        try type("1")
        waitFor("the layer") { $0.contains("layer conv1: conv2d (in 1, out 16") }
        waitForIdlePrompt(4)

        // Keyword arguments of the call being written.
        try type("conv2d(tensor([[1, 2], [3, 4]]), tensor([[1]]), stri", enter: false)
        try keys("Tab")
        waitFor("stride=") { self.lastLine($0).hasSuffix("tensor([[1]]), stride=") }
        try type("1)")
        waitFor("the convolution") { $0.contains("[[1, 2],\n [3, 4]]") }

        // A call continued on a second line still offers its keyword arguments.
        try type("conv2d(tensor([[1, 2], [3, 4]]),")
        waitFor("the continuation prompt") { self.lastLine($0) == "...>" }
        try type("tensor([[2]]), pa", enter: false)
        try keys("Tab")
        waitFor("pad=") { self.lastLine($0) == "...> tensor([[2]]), pad=" }
        try type("0)")
        waitFor("the continued convolution") { $0.contains("[[2, 4],\n [6, 8]]") }

        // Ctrl-C during a long loop comes back to the prompt with the variables intact.
        try type("x = 5")
        let before = prompts(waitFor("x set") { $0.contains("cnn> x = 5\n") && self.lastLine($0) == "cnn>" })
        try type("for i in 0..100000000 { }")
        Thread.sleep(forTimeInterval: 1)
        XCTAssertEqual(prompts(screen()), before, "the loop is still running")
        try keys("C-c")
        waitFor("the interruption") { $0.contains("interrupted: stopped here; every variable keeps the value it had") }
        waitForIdlePrompt(before + 1)
        try type("[x, i > 0]")
        waitFor("the variables") { $0.contains("[5, true]") }
        waitForIdlePrompt(before + 2)

        // Up recalls the last line; Ctrl-C at the prompt clears what was typed.
        try keys("Up")
        waitFor("the recalled line") { self.lastLine($0) == "cnn> [x, i > 0]" }
        try keys("C-c")
        waitForIdlePrompt(before + 3)
        try type("1 + 1")
        waitFor("the sum") { $0.contains("cnn> 1 + 1\n2\n") }

        // A picture drawn in half blocks, and its PNG written.
        try type("show(sample(\"sneaker\"))")
        let shown = waitFor("the picture") { $0.contains("image 28x28: ") }
        XCTAssertGreaterThanOrEqual(shown.components(separatedBy: "▀").count - 1, 56 * 20, "a 56-column picture in half blocks")
        let pathLine = shown.split(separator: "\n").first { $0.hasPrefix("image 28x28: ") } ?? ""
        XCTAssertTrue(FileManager.default.fileExists(atPath: String(pathLine.dropFirst("image 28x28: ".count))), String(pathLine))

        try type("clear_screen_marker = 1")
        try type("%who")
        waitFor("the variables list") { $0.contains("clear_screen_marker") && $0.contains("network") }

        // Ctrl-D leaves; the history file keeps what was typed.
        try keys("C-d")
        let deadline = Date().addingTimeInterval(10)
        while try tmux(["has-session", "-t", "shell"]).status == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertNotEqual(try tmux(["has-session", "-t", "shell"]).status, 0, "the shell ended")
        let history = try String(contentsOfFile: home + "/.cnn_history", encoding: .utf8)
        XCTAssertTrue(history.contains("net = load(\"fashion\")\n"), history)

        // A new session: Ctrl-R searches the history of the last one.
        try startShell()
        waitForIdlePrompt(1)
        try keys("C-r")
        try type("load", enter: false)
        waitFor("the reverse search") { $0.contains("(reverse-i-search)`load': net = load(\"fashion\")") }
        try keys("Enter")
        waitForIdlePrompt(2)
        try type("type(net)")
        waitFor("the network from the recalled line") { $0.contains("cnn> type(net)\n\"network\"\n") }
    }
}

struct NotebookTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
