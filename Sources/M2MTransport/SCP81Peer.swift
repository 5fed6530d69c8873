// Sockets and the admin server's end of SCP81 (GP Amendment B over PSK-TLS): what tests, the CLI
// probe and the SM-SR's admin server share.
//
//   TCPSocket   IPv4 connect/listen/accept, loopback by default
//   SCP81Peer   accepts one connection, authenticates the card by its PSK identity, drives
//               AdminServerSession (M2MWire) with the scripts it is given, ends with 204

public import M2MCore
public import M2MCrypto
public import M2MWire
#if canImport(Glibc)
import Glibc
#endif

// MARK: - Sockets

/// Blocking IPv4 TCP sockets, just what the agent and the test peer need.
public enum TCPSocket {
    static func address(_ host: String, _ port: UInt16) throws(TransportError) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
            throw TransportError(.unreachable, "'\(host)' is not an IPv4 address")
        }
        return address
    }

    static func failure(_ what: String) -> TransportError { TransportError(.unreachable, "\(what): \(String(cString: strerror(errno)))") }

    /// Connects to host:port (IPv4 dotted or "localhost").
    public static func connect(host: String, port: UInt16) throws(TransportError) -> Int32 {
        var address = try address(host, port)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw failure("socket") }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let error = failure("connect to \(host):\(port)")
            Glibc.close(descriptor)
            throw error
        }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return descriptor
    }

    /// A listening socket on host:port (port 0: any free port; `boundPort` tells which).
    public static func listen(host: String = "127.0.0.1", port: UInt16 = 0) throws(TransportError) -> Int32 {
        var address = try address(host, port)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw failure("socket") }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(descriptor, 64) == 0 else {
            let error = failure("listen on \(host):\(port)")
            Glibc.close(descriptor)
            throw error
        }
        return descriptor
    }

    /// The local port of a bound socket.
    public static func boundPort(_ descriptor: Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Waits up to `timeout` seconds for a connection.
    public static func accept(_ listener: Int32, timeout: Double) throws(TransportError) -> Int32 {
        var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
        var ready: Int32
        repeat { ready = poll(&poller, 1, Int32(max(1, timeout * 1000))) } while ready < 0 && errno == EINTR
        guard ready > 0 else { throw TransportError(.unreachable, ready == 0 ? "no connection within \(timeout) s" : "poll failed") }
        let descriptor = Glibc.accept(listener, nil, nil)
        guard descriptor >= 0 else { throw failure("accept") }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return descriptor
    }

    public static func close(_ descriptor: Int32) { Glibc.close(descriptor) }
}

// MARK: - The admin server's end (test peer)

/// The admin server's end of SCP81 sessions for tests and the CLI probe: accepts one connection,
/// authenticates the card by its PSK identity, sends the scripts one by one, ends with 204.
public enum SCP81Peer {
    public struct Session: Sendable {
        public let eid: EID?
        public let pskIdentity: String?
        public let cipherSuite: String?
        public let results: [AdminScriptResult]
    }

    /// Serves one session on a connection accepted from `listener`, sending `scripts` in order.
    public static func serveOne(
        listener: Int32, context: PSKTLSContext, timeout: Double = 30, keyFor: @escaping (SCP81PSKIdentity) -> SecureBytes?,
        scripts: [AdminScript]
    ) throws -> Session {
        var queue = scripts[...]
        return try serveOne(listener: listener, context: context, timeout: timeout, keyFor: keyFor) { _ in queue.popFirst() }
    }

    /// Serves one session on a connection accepted from `listener`. `keyFor` maps a PSK identity to
    /// the card's SCP81 PSK (nil: unknown card, the handshake fails). `next` gets the result of the
    /// previous script (nil at the start) and gives the next script, or nil to end the session.
    public static func serveOne(
        listener: Int32, context: PSKTLSContext, timeout: Double = 30, keyFor: @escaping (SCP81PSKIdentity) -> SecureBytes?,
        next: (AdminScriptResult?) throws -> AdminScript?
    ) throws -> Session {
        let descriptor = try TCPSocket.accept(listener, timeout: timeout)
        defer { TCPSocket.close(descriptor) }
        let stream = FileDescriptorStream(descriptor: descriptor, timeout: timeout, total: timeout * 20)
        let connection = try PSKTLSConnection(server: context) { text in
            guard let identity = try? SCP81PSKIdentity(text: text) else { return nil }
            return keyFor(identity)
        }
        try stream.handshake(connection)
        var session = AdminServerSession()
        var reader = HTTPMessageReader()
        while !session.isFinished {
            var request: HTTPRequest?
            while request == nil {
                if let ready = try reader.nextRequest() {
                    request = ready
                    break
                }
                let plaintext = try stream.receive(over: connection)
                guard !plaintext.isEmpty else { throw TransportError(.unreachable, "the agent closed the session mid-exchange") }
                reader.append(plaintext)
            }
            let result = try session.accept(request!)
            let response = session.response(sending: try next(result))
            try stream.send(response.encoded, over: connection)
        }
        stream.close(connection)
        return Session(eid: session.agent, pskIdentity: connection.peerIdentity, cipherSuite: connection.cipherSuite, results: session.results)
    }
}
