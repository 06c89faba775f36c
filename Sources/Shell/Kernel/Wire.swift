import Crypto
import Foundation

/// The connection file Jupyter writes for a kernel: where to listen and the signing key.
public struct ConnectionInfo: Decodable {
    public var transport: String
    public var ip: String
    public var shellPort: Int
    public var iopubPort: Int
    public var stdinPort: Int
    public var controlPort: Int
    public var hbPort: Int
    public var key: String
    public var signatureScheme: String

    enum CodingKeys: String, CodingKey {
        case transport, ip, key
        case shellPort = "shell_port", iopubPort = "iopub_port", stdinPort = "stdin_port"
        case controlPort = "control_port", hbPort = "hb_port", signatureScheme = "signature_scheme"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        transport = try c.decodeIfPresent(String.self, forKey: .transport) ?? "tcp"
        ip = try c.decodeIfPresent(String.self, forKey: .ip) ?? "127.0.0.1"
        shellPort = try c.decode(Int.self, forKey: .shellPort)
        iopubPort = try c.decode(Int.self, forKey: .iopubPort)
        stdinPort = try c.decode(Int.self, forKey: .stdinPort)
        controlPort = try c.decode(Int.self, forKey: .controlPort)
        hbPort = try c.decode(Int.self, forKey: .hbPort)
        key = try c.decodeIfPresent(String.self, forKey: .key) ?? ""
        signatureScheme = try c.decodeIfPresent(String.self, forKey: .signatureScheme) ?? "hmac-sha256"
    }

    public static func read(path: String) throws -> ConnectionInfo {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NotebookError("cannot read the connection file \(path)")
        }
        // The file holds the signing key: no message quotes its text, only the field at fault.
        do { return try JSONDecoder().decode(ConnectionInfo.self, from: data) }
        catch DecodingError.keyNotFound(let key, _) { throw NotebookError("the connection file \(path) has no \"\(key.stringValue)\"") }
        catch DecodingError.typeMismatch(let type, let c) {
            throw NotebookError("the connection file \(path) has \"\(c.codingPath.map(\.stringValue).joined(separator: "."))\" of the wrong type; expected \(type == String.self ? "a string" : "a number")")
        }
        catch DecodingError.valueNotFound(_, let c) {
            throw NotebookError("the connection file \(path) has \"\(c.codingPath.map(\.stringValue).joined(separator: "."))\" null")
        }
        catch { throw NotebookError("the connection file \(path) is not a JSON object of ports, key and transport") }
    }

    /// The ZeroMQ address of a port: tcp://ip:port, or ipc://ip-port as Jupyter names IPC files.
    func endpoint(_ port: Int) throws -> String {
        switch transport {
        case "tcp": return "tcp://\(ip):\(port)"
        case "ipc": return "ipc://\(ip)-\(port)"
        default: throw NotebookError("the connection file asks for the transport \"\(transport)\"; tcp and ipc are known")
        }
    }
}

/// Signs and checks messages with the connection's key: HMAC over the header, parent
/// header, metadata and content frames, in hexadecimal. An empty key turns signing off.
struct MessageSigner {
    enum Scheme { case sha256, sha384, sha512, sha1, md5 }
    let key: SymmetricKey?
    let scheme: Scheme

    init(key: String, scheme: String) throws {
        switch scheme.lowercased() {
        case "hmac-sha256": self.scheme = .sha256
        case "hmac-sha384": self.scheme = .sha384
        case "hmac-sha512": self.scheme = .sha512
        case "hmac-sha1": self.scheme = .sha1
        case "hmac-md5": self.scheme = .md5
        default: throw NotebookError("the signature scheme \"\(scheme)\" is not known; hmac-sha256 is Jupyter's")
        }
        self.key = key.isEmpty ? nil : SymmetricKey(data: Data(key.utf8))
    }

    func signature(_ parts: [[UInt8]]) -> String {
        guard let key else { return "" }
        func mac<H: HashFunction>(_: H.Type) -> [UInt8] {
            var h = HMAC<H>(key: key)
            for p in parts { h.update(data: p) }
            return Array(h.finalize())
        }
        let bytes: [UInt8]
        switch scheme {
        case .sha256: bytes = mac(SHA256.self)
        case .sha384: bytes = mac(SHA384.self)
        case .sha512: bytes = mac(SHA512.self)
        case .sha1: bytes = mac(Insecure.SHA1.self)
        case .md5: bytes = mac(Insecure.MD5.self)
        }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `given` is the signature of `parts`, compared in constant time.
    func verify(_ given: [UInt8], _ parts: [[UInt8]]) -> Bool {
        guard key != nil else { return true }
        let expected = Array(signature(parts).utf8)
        guard given.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(given, expected) { difference |= a ^ b }
        return difference == 0
    }
}

/// Why an incoming message was dropped: its signature is wrong, or its frames are no message.
/// The description never holds the key or the signature received.
struct WireError: Error, CustomStringConvertible {
    let description: String
    let isBadSignature: Bool
    init(_ description: String, badSignature: Bool = false) {
        self.description = description
        self.isBadSignature = badSignature
    }
}

/// A message of the Jupyter protocol, as it travels over ZeroMQ:
/// [identities..., "<IDS|MSG>", signature, header, parent_header, metadata, content, buffers...].
struct KernelMessage {
    static let delimiter = Array("<IDS|MSG>".utf8)
    static let protocolVersion = "5.3"

    var identities: [[UInt8]]
    var header: [String: Any]
    var parentHeader: [String: Any]
    var metadata: [String: Any]
    var content: [String: Any]
    var buffers: [[UInt8]] = []

    var type: String { header["msg_type"] as? String ?? "" }

    /// Reads frames; throws for a malformed or wrongly signed message.
    init(frames: [[UInt8]], signer: MessageSigner) throws {
        guard let d = frames.firstIndex(of: KernelMessage.delimiter) else { throw WireError("no <IDS|MSG> delimiter") }
        guard frames.count >= d + 6 else { throw WireError("\(frames.count - d - 1) frames after the delimiter; 5 are needed") }
        let parts = Array(frames[(d + 2)..<(d + 6)])
        guard signer.verify(frames[d + 1], parts) else { throw WireError("a bad signature", badSignature: true) }
        func object(_ bytes: [UInt8], _ what: String) throws -> [String: Any] {
            guard let o = try? JSONSerialization.jsonObject(with: Data(bytes)), let dict = o as? [String: Any] else {
                throw WireError("its \(what) is not a JSON object")
            }
            return dict
        }
        identities = Array(frames[0..<d])
        header = try object(parts[0], "header")
        parentHeader = try object(parts[1], "parent header")
        metadata = try object(parts[2], "metadata")
        content = try object(parts[3], "content")
        buffers = Array(frames[(d + 6)...])
        guard header["msg_type"] is String else { throw WireError("its header has no msg_type") }
    }

    init(identities: [[UInt8]], header: [String: Any], parentHeader: [String: Any], content: [String: Any]) {
        self.identities = identities
        self.header = header
        self.parentHeader = parentHeader
        self.metadata = [:]
        self.content = content
    }

    func frames(signer: MessageSigner) throws -> [[UInt8]] {
        let parts = try [header, parentHeader, metadata, content].map {
            Array(try JSONSerialization.data(withJSONObject: $0, options: [.withoutEscapingSlashes]))
        }
        return identities + [KernelMessage.delimiter, Array(signer.signature(parts).utf8)] + parts + buffers
    }

    /// Microseconds, UTC, as Jupyter writes dates.
    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, Int32(tv.tv_usec))
    }
}
