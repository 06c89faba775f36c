import CZMQ
import Foundation

/// A ZeroMQ failure, with libzmq's own words.
struct ZMQError: Error, CustomStringConvertible {
    let operation: String
    let code: Int32
    init(_ operation: String, code: Int32 = zmq_errno()) {
        self.operation = operation
        self.code = code
    }
    var description: String { "\(operation): \(String(cString: zmq_strerror(code)))" }
}

/// A message whose frames together pass the socket's limit: its frames were read and let go,
/// so the peer cannot make the kernel hold more than the limit by splitting a message up.
struct OversizedMessage: Error, CustomStringConvertible {
    let limit: Int64
    var description: String { "a message larger than \(limit >> 20) MB in all (its frames were discarded)" }
}

/// A ZeroMQ context: the owner of every socket and of libzmq's I/O thread.
final class ZMQContext {
    let handle: UnsafeMutableRawPointer

    init() throws {
        guard let h = zmq_ctx_new() else { throw ZMQError("zmq_ctx_new") }
        handle = h
    }

    /// Ends the context once every socket is closed (their linger lets last replies go out).
    func terminate() {
        while zmq_ctx_term(handle) != 0, zmq_errno() == EINTR {}
    }
}

/// One ZeroMQ socket, used from one thread.
final class ZMQSocket {
    private(set) var handle: UnsafeMutableRawPointer?
    let name: String
    /// The largest message taken, frames together; nil when there is no limit.
    private(set) var largestMessage: Int64?

    init(_ context: ZMQContext, type: Int32, name: String) throws {
        guard let h = zmq_socket(context.handle, type) else { throw ZMQError("zmq_socket(\(name))") }
        handle = h
        self.name = name
        // Close without waiting forever for peers that are gone; a second lets replies leave.
        var linger: Int32 = 1000
        zmq_setsockopt(h, ZMQ_LINGER, &linger, MemoryLayout<Int32>.size)
    }

    /// A frame above `bytes` is refused by libzmq, which disconnects the peer that sent it; a
    /// message whose frames pass `bytes` together is discarded by `receive` as it is read.
    func limitMessageSize(_ bytes: Int64) {
        largestMessage = bytes
        var size = bytes
        zmq_setsockopt(handle, ZMQ_MAXMSGSIZE, &size, MemoryLayout<Int64>.size)
    }

    func connect(_ endpoint: String) throws {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQError("cannot connect to \(endpoint) for the \(name) channel") }
    }

    func bind(_ endpoint: String) throws {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError("cannot listen on \(endpoint) for the \(name) channel") }
    }

    /// The frames of the next message, or nil when none is waiting. Throws OversizedMessage,
    /// after reading all of its frames, for a message larger than the limit in all.
    func receive() throws -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        var parts = 0, total: Int64 = 0
        var oversized = false
        while true {
            var message = zmq_msg_t()
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            // Only the first part may be missing; the rest of a message arrives with it.
            let n = zmq_msg_recv(&message, handle, parts == 0 ? ZMQ_DONTWAIT : 0)
            if n < 0 {
                let code = zmq_errno()
                if code == EAGAIN && parts == 0 { return nil }
                if code == EINTR { continue }
                throw ZMQError("receive on \(name)", code: code)
            }
            parts += 1
            let size = zmq_msg_size(&message)
            total += Int64(size)
            if let limit = largestMessage, total > limit, !oversized {
                oversized = true
                frames.removeAll()
            }
            if oversized {
                if zmq_msg_more(&message) == 0 { throw OversizedMessage(limit: largestMessage ?? 0) }
                continue
            }
            if size > 0, let data = zmq_msg_data(&message) {
                frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                frames.append([])
            }
            if zmq_msg_more(&message) == 0 { return frames }
        }
    }

    /// Sends the frames as one message.
    func send(_ frames: [[UInt8]]) throws {
        for (i, frame) in frames.enumerated() {
            let flags: Int32 = i < frames.count - 1 ? ZMQ_SNDMORE : 0
            while true {
                let n = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
                if n >= 0 { break }
                if zmq_errno() == EINTR { continue }
                throw ZMQError("send on \(name)")
            }
        }
    }

    func close() {
        if let h = handle { zmq_close(h) }
        handle = nil
    }
}

/// Waits until one of the sockets or file descriptors can be read, or `timeout` milliseconds
/// pass (-1: no limit). Returns, in order, whether each is readable.
func zmqPoll(sockets: [ZMQSocket], descriptors: [Int32], timeout: Int) throws -> [Bool] {
    var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
    items += descriptors.map { zmq_pollitem_t(socket: nil, fd: $0, events: Int16(ZMQ_POLLIN), revents: 0) }
    let n = zmq_poll(&items, Int32(items.count), timeout)
    if n < 0 {
        if zmq_errno() == EINTR { return [Bool](repeating: false, count: items.count) }
        throw ZMQError("zmq_poll")
    }
    return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
}
