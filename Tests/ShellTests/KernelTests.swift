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
