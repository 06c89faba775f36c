import CZMQ
import Foundation
@testable import Shell
import XCTest

final class KernelWireTests: XCTestCase {
    private func frames(_ signer: MessageSigner, type: String = "execute_request", content: String = "{\"code\": \"1\"}") -> [[UInt8]] {
        let header = Array("{\"msg_id\": \"a\", \"msg_type\": \"\(type)\", \"session\": \"s\", \"username\": \"u\", \"version\": \"5.3\"}".utf8)
        let parts = [header, Array("{}".utf8), Array("{}".utf8), Array(content.utf8)]
        return [Array("client".utf8), KernelMessage.delimiter, Array(signer.signature(parts).utf8)] + parts
    }

    func testHMACSHA256AsRFC4231() throws {
        let signer = try MessageSigner(key: "Jefe", scheme: "hmac-sha256")
        XCTAssertEqual(signer.signature([Array("what do ya want ".utf8), Array("for nothing?".utf8)]),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        XCTAssertEqual(try MessageSigner(key: "", scheme: "hmac-sha256").signature([[1, 2, 3]]), "", "an empty key signs nothing")
        XCTAssertThrowsError(try MessageSigner(key: "k", scheme: "rot13"))
    }

    func testSignedMessagesReadAndWrongOnesAreRefused() throws {
        let signer = try MessageSigner(key: "secret", scheme: "hmac-sha256")
        let m = try KernelMessage(frames: frames(signer), signer: signer)
        XCTAssertEqual(m.type, "execute_request")
        XCTAssertEqual(m.identities, [Array("client".utf8)])
        XCTAssertEqual(m.content["code"] as? String, "1")

        let other = try MessageSigner(key: "not-the-key", scheme: "hmac-sha256")
        XCTAssertThrowsError(try KernelMessage(frames: frames(other), signer: signer)) { XCTAssertEqual("\($0)", "a bad signature") }
        var tampered = frames(signer)
        tampered[tampered.count - 1] = Array("{\"code\": \"2\"}".utf8)
        XCTAssertThrowsError(try KernelMessage(frames: tampered, signer: signer), "content changed after signing")
        XCTAssertThrowsError(try KernelMessage(frames: [Array("junk".utf8)], signer: signer)) { XCTAssertEqual("\($0)", "no <IDS|MSG> delimiter") }
        XCTAssertThrowsError(try KernelMessage(frames: Array(frames(signer).prefix(4)), signer: signer))
        XCTAssertThrowsError(try KernelMessage(frames: frames(signer, content: "[1]"), signer: signer)) {
            XCTAssertEqual("\($0)", "its content is not a JSON object")
        }
    }

    func testRepliesRoundTrip() throws {
        let signer = try MessageSigner(key: "secret", scheme: "hmac-sha512")
        let reply = KernelMessage(identities: [[7]], header: ["msg_id": "r", "msg_type": "kernel_info_reply"], parentHeader: ["msg_id": "a"],
                                  content: ["status": "ok", "banner": "b/c"])
        let back = try KernelMessage(frames: try reply.frames(signer: signer), signer: signer)
        XCTAssertEqual(back.type, "kernel_info_reply")
        XCTAssertEqual(back.parentHeader["msg_id"] as? String, "a")
        XCTAssertEqual(back.content["banner"] as? String, "b/c")
        XCTAssertEqual(back.identities, [[7]])
        let stamp = KernelMessage.timestamp()
        XCTAssertNotNil(stamp.range(of: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$", options: .regularExpression), stamp)
    }

    func testIsCompleteFollowsTheLanguage() {
        XCTAssertEqual(Kernel.isComplete("for i in 0..3 {")["status"] as? String, "incomplete")
        XCTAssertEqual(Kernel.isComplete("for i in 0..3 {")["indent"] as? String, "    ")
        XCTAssertEqual(Kernel.isComplete("f(1,")["indent"] as? String, "")
        XCTAssertEqual(Kernel.isComplete("x = 1")["status"] as? String, "complete")
        XCTAssertEqual(Kernel.isComplete("%time x")["status"] as? String, "complete")
        XCTAssertEqual(Kernel.isComplete("relu?")["status"] as? String, "complete")
        XCTAssertEqual(Kernel.isComplete("x = )")["status"] as? String, "invalid")
    }

    func testConnectionFiles() throws {
        let folder = try Support.temporaryFolder("connection")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let good = folder + "/good.json"
        try """
        {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5, "ip": "127.0.0.1",
         "key": "k", "transport": "tcp", "signature_scheme": "hmac-sha256", "kernel_name": "cnnlab"}
        """.write(toFile: good, atomically: true, encoding: .utf8)
        let info = try ConnectionInfo.read(path: good)
        XCTAssertEqual(try info.endpoint(info.hbPort), "tcp://127.0.0.1:5")
        let missing = folder + "/missing.json"
        try "{\"shell_port\": 1}".write(toFile: missing, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ConnectionInfo.read(path: missing)) { XCTAssertEqual("\($0)", "the connection file \(missing) has no \"iopub_port\"") }
        XCTAssertThrowsError(try ConnectionInfo.read(path: folder + "/none.json"))
        let bad = try Support.cnn(["kernel", "-f", missing], timeout: 20)
        XCTAssertEqual(bad.status, 2)
        XCTAssertEqual(bad.errors, "cnn kernel: the connection file \(missing) has no \"iopub_port\"\n")
    }
}

final class KernelSpecTests: XCTestCase {
    func testKernelJSON() throws {
        let spec = try XCTUnwrap(try JSONSerialization.jsonObject(with: KernelSpec.json(executable: "/opt/cnn")) as? [String: Any])
        XCTAssertEqual(spec["argv"] as? [String], ["/opt/cnn", "kernel", "-f", "{connection_file}"])
        XCTAssertEqual(spec["display_name"] as? String, "cnnlab")
        XCTAssertEqual(spec["language"] as? String, "cnn")
        XCTAssertEqual(spec["interrupt_mode"] as? String, "message")
    }

    func testFolders() {
        XCTAssertEqual(KernelSpec.folder(for: .prefix("/p")), "/p/share/jupyter/kernels/cnnlab")
        XCTAssertEqual(KernelSpec.folder(for: .system), "/usr/local/share/jupyter/kernels/cnnlab")
        XCTAssertEqual(KernelSpec.folder(for: .user, environment: ["HOME": "/h"]), "/h/.local/share/jupyter/kernels/cnnlab")
        XCTAssertEqual(KernelSpec.folder(for: .user, environment: ["HOME": "/h", "JUPYTER_DATA_DIR": "/d"]), "/d/kernels/cnnlab")
    }

    func testLogosAreDrawn() throws {
        for size in [32, 64] {
            let logo = try KernelSpec.logo(size: size)
            XCTAssertEqual(logo.shape, [3, size, size])
            let white = stride(from: 0, to: size * size, by: 1).filter { i in (0..<3).allSatisfy { logo.scalars[$0 * size * size + i] == 1 } }
            XCTAssertGreaterThan(white.count, 20, "the letters are there")
        }
    }

    func testInstallWritesTheSpecWithTheRunningExecutable() throws {
        let prefix = try Support.temporaryFolder("kernelspec")
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let r = try Support.cnn(["kernel", "install", "--prefix", prefix], timeout: 30)
        XCTAssertEqual(r.status, 0, r.errors)
        let folder = prefix + "/share/jupyter/kernels/cnnlab"
        let spec = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/kernel.json"))) as? [String: Any])
        let argv = try XCTUnwrap(spec["argv"] as? [String])
        XCTAssertEqual(URL(fileURLWithPath: argv[0]).resolvingSymlinksInPath().path, URL(fileURLWithPath: Support.executable).resolvingSymlinksInPath().path)
        for size in [32, 64] { XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/logo-\(size)x\(size).png")) }
        let both = try Support.cnn(["kernel", "install", "--user", "--prefix", prefix], timeout: 30)
        XCTAssertNotEqual(both.status, 0)
    }
}

/// A running `cnn kernel` meets clients that lie: they sign with another key, send frames that
/// are no message, or send a few bytes. It drops and counts those, keeps answering the honest
/// ones, and never writes its key to its log.
final class HostileClientTests: XCTestCase {
    static let key = "d41d8cd9-secret-8f00b204e980"

    private func message(_ type: String, key: String, header: String? = nil, content: String = "{}") throws -> [[UInt8]] {
        let signer = try MessageSigner(key: key, scheme: "hmac-sha256")
        let h = header ?? "{\"msg_id\": \"\(UUID().uuidString)\", \"msg_type\": \"\(type)\", \"session\": \"s\", \"username\": \"u\", \"version\": \"5.3\"}"
        let parts = [Array(h.utf8), Array("{}".utf8), Array("{}".utf8), Array(content.utf8)]
        return [KernelMessage.delimiter, Array(signer.signature(parts).utf8)] + parts
    }

    /// The next message on `socket` within `timeout` seconds.
    private func receive(_ socket: ZMQSocket, timeout: TimeInterval = 20) throws -> KernelMessage? {
        let deadline = Date().addingTimeInterval(timeout)
        let signer = try MessageSigner(key: HostileClientTests.key, scheme: "hmac-sha256")
        while Date() < deadline {
            _ = try zmqPoll(sockets: [socket], descriptors: [], timeout: 100)
            if let frames = try socket.receive() { return try KernelMessage(frames: frames, signer: signer) }
        }
        return nil
    }

    func testGarbageAndForgedMessagesAreDroppedCountedAndTheKernelLivesOn() throws {
        let folder = try Support.temporaryFolder("hostile-kernel")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let connection = folder + "/connection.json"
        try """
        {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5, "ip": "\(folder)/k",
         "key": "\(HostileClientTests.key)", "transport": "ipc", "signature_scheme": "hmac-sha256"}
        """.write(toFile: connection, atomically: true, encoding: .utf8)
        let log = folder + "/kernel.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Support.executable)
        process.arguments = ["kernel", "-f", connection]
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        let context = try ZMQContext()
        let shell = try ZMQSocket(context, type: ZMQ_DEALER, name: "client shell")
        defer { shell.close(); context.terminate() }
        try shell.connect("ipc://\(folder)/k-1")

        let garbage: [[[UInt8]]] = [
            [Array("hello".utf8)],                                              // no delimiter
            [KernelMessage.delimiter],                                          // nothing after it
            [KernelMessage.delimiter, [], [], []],                              // too few frames
            [[0xff, 0xfe], KernelMessage.delimiter] + Array(repeating: [0x00, 0x01], count: 5),
            try message("kernel_info_request", key: HostileClientTests.key, header: "not json"),
            try message("kernel_info_request", key: HostileClientTests.key, header: "{\"msg_type\": 7}"),
            [Array(repeating: 0x5b, count: 100_000)],                           // a hundred thousand '['
            [KernelMessage.delimiter] + Array(repeating: Array(repeating: 0x7b, count: 1 << 20), count: 5),
        ]
        // Larger than the kernel's limit: one frame of 256 MB and a byte, which libzmq refuses by
        // disconnecting the peer that sent it, and a well-signed message whose buffers are each
        // under the limit but pass it together, which the kernel reads, lets go and counts.
        let big = try ZMQSocket(context, type: ZMQ_DEALER, name: "client sending too much")
        defer { big.close() }
        try big.connect("ipc://\(folder)/k-1")
        try big.send([KernelMessage.delimiter, [UInt8](repeating: 0x20, count: Int(Kernel.largestMessage) + 1)])
        let buffer = [UInt8](repeating: 0x41, count: 90 << 20)
        try shell.send(try message("execute_request", key: HostileClientTests.key, content: "{\"code\": \"print(1)\"}")
                       + [buffer, buffer, buffer])

        for frames in garbage { try shell.send(frames) }
        // Signed with another key, and not signed at all: dropped as bad signatures, as are the
        // two garbage messages above whose frames happen to sit where a signature goes.
        try shell.send(try message("execute_request", key: "not-the-key", content: "{\"code\": \"print(1)\"}"))
        var unsigned = try message("execute_request", key: HostileClientTests.key, content: "{\"code\": \"print(1)\"}")
        unsigned[1] = []
        try shell.send(unsigned)

        try shell.send(try message("kernel_info_request", key: HostileClientTests.key))
        let reply = try XCTUnwrap(try receive(shell), "the kernel answers after the garbage")
        XCTAssertEqual(reply.type, "kernel_info_reply")
        let dropped = try XCTUnwrap(reply.content["cnnlab_dropped"] as? [String: Int], "\(reply.content)")
        XCTAssertEqual(dropped["bad_signature"], 4)
        XCTAssertEqual(dropped["malformed"], garbage.count - 2 + 1, "the garbage and the message too large in all")
        XCTAssertTrue(process.isRunning)

        try shell.send(try message("shutdown_request", key: HostileClientTests.key, content: "{\"restart\": false}"))
        _ = try receive(shell)
        let deadline = Date().addingTimeInterval(20)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertFalse(process.isRunning, "the kernel ends on a shutdown request")
        XCTAssertEqual(process.terminationStatus, 0)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertTrue(text.contains("dropped 4 message(s) with a bad signature and \(garbage.count - 1) malformed one(s)"), text)
        XCTAssertTrue(text.contains("a message larger than 256 MB in all"), text)
        XCTAssertTrue(text.contains("a bad signature"), text)
        XCTAssertFalse(text.contains(HostileClientTests.key), "the key is in the log:\n\(text)")
        XCTAssertFalse(text.contains("secret"), text)
    }

    func testConnectionFileErrorsNeverQuoteTheKey() throws {
        let folder = try Support.temporaryFolder("connection-key")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let cases = [
            "{\"shell_port\": 1, \"iopub_port\": 2, \"stdin_port\": 3, \"control_port\": 4, \"hb_port\": 5, \"key\": [\"\(HostileClientTests.key)\"]}",
            "{\"shell_port\": \"\(HostileClientTests.key)\", \"key\": \"\(HostileClientTests.key)\"}",
            "{\"key\": \"\(HostileClientTests.key)\" \"shell_port\": 1}",
        ]
        for (i, text) in cases.enumerated() {
            let path = folder + "/c\(i).json"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try Support.cnn(["kernel", "-f", path], timeout: 20)
            XCTAssertEqual(r.status, 2, r.errors)
            XCTAssertTrue(r.errors.contains(path), r.errors)
            XCTAssertFalse(r.errors.contains("secret"), "case \(i) quotes the key: \(r.errors)")
        }
    }
}
