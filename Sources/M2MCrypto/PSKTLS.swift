// TLS 1.2 with pre-shared keys on the system libssl, for SCP81 (GP Amendment B; spec/sgp02-oncard.md
// §3.4): the eUICC's admin agent is the TLS client, the SM-SR's admin server the TLS server, the key is
// the ISD-R's SCP81 PSK (key version 40–4F) and the identity the ASCII hex of the SGP.02 PSK identity
// TLV. Suites: TLS_PSK_WITH_AES_128_GCM_SHA256 and TLS_PSK_WITH_AES_128_CBC_SHA256 (SGP.02 v4.2 eUICC
// profile); no session resumption, no tickets, no renegotiation.
//
// Why libssl and not SwiftNIO SSL: NIOSSL's BoringSSL builds no TLS 1.2 PSK cipher suites (checked:
// docs/crypto.md, SCP81). The connection is sans-IO — bytes in, bytes out through memory BIOs — so
// the same engine runs over a socket (`FileDescriptorStream`), in-process between two connections,
// or over any other pipe. One connection belongs to one thread at a time.

internal import COpenSSL
#if canImport(Glibc)
internal import Glibc
#endif

/// The SCP81 PSK cipher suites (OpenSSL names).
public enum PSKCipherSuite: String, Sendable, CaseIterable {
    case aes128GCMSHA256 = "PSK-AES128-GCM-SHA256"
    case aes128CBCSHA256 = "PSK-AES128-CBC-SHA256"
}

/// A TLS 1.2 PSK context: one per role and suite list, shared by many connections (thread-safe once built).
public final class PSKTLSContext: @unchecked Sendable {
    public enum Role: Sendable { case client, server }
    let pointer: OpaquePointer
    public let role: Role
    public let suites: [PSKCipherSuite]

    public init(role: Role, suites: [PSKCipherSuite] = PSKCipherSuite.allCases) throws(CryptoError) {
        guard !suites.isEmpty else { throw CryptoError(code: .invalidInput, detail: "no PSK cipher suite") }
        guard let method = role == .client ? TLS_client_method() : TLS_server_method(), let ctx = SSL_CTX_new(method) else {
            throw CryptoError.openSSL(.openSSLFailure, "SSL_CTX_new")
        }
        pointer = ctx
        self.role = role
        self.suites = suites
        guard m2m_ssl_ctx_configure_psk_tls12(ctx) == 1, SSL_CTX_set_cipher_list(ctx, suites.map(\.rawValue).joined(separator: ":")) == 1 else {
            SSL_CTX_free(ctx)
            throw CryptoError.openSSL(.unsupported, "TLS 1.2 PSK suites \(suites.map(\.rawValue)) are not available in this libssl")
        }
        switch role {
        case .client: SSL_CTX_set_psk_client_callback(ctx, pskClientCallback)
        case .server: SSL_CTX_set_psk_server_callback(ctx, pskServerCallback)
        }
    }

    deinit { SSL_CTX_free(pointer) }
}

/// One PSK-TLS connection, sans-IO: feed it the peer's bytes with `receive(_:)`, send what
/// `takeOutput()` returns, call `advanceHandshake()` until established, then `write`/`read` plaintext.
public final class PSKTLSConnection {
    let ssl: OpaquePointer
    let input: OpaquePointer
    let output: OpaquePointer
    let identity: String?
    let key: SecureBytes?
    let keyLookup: ((String) -> SecureBytes?)?
    /// Server side: the identity the client sent (set during the handshake, also when refused).
    public internal(set) var peerIdentity: String?
    public private(set) var isEstablished = false
    /// The peer sent close_notify.
    public private(set) var peerClosed = false

    /// The client side: `identity` is sent as is (SGP.02: the hex text of the PSK identity TLV).
    public convenience init(client context: PSKTLSContext, identity: String, key: SecureBytes) throws(CryptoError) {
        guard context.role == .client else { throw CryptoError(code: .wrongState, detail: "a server context for a client connection") }
        guard !identity.isEmpty, identity.utf8.count <= 128, !identity.utf8.contains(0) else {
            throw CryptoError(code: .invalidInput, detail: "a PSK identity is 1 to 128 bytes of text")
        }
        guard (1...64).contains(key.count) else { throw CryptoError(code: .invalidKey, detail: "a PSK is 1 to 64 bytes") }
        try self.init(context: context, identity: identity, key: key, lookup: nil)
    }

    /// The server side: `keyFor` maps a client identity to its PSK (nil: unknown, the handshake fails).
    public convenience init(server context: PSKTLSContext, keyFor: @escaping (String) -> SecureBytes?) throws(CryptoError) {
        guard context.role == .server else { throw CryptoError(code: .wrongState, detail: "a client context for a server connection") }
        try self.init(context: context, identity: nil, key: nil, lookup: keyFor)
    }

    private init(context: PSKTLSContext, identity: String?, key: SecureBytes?, lookup: ((String) -> SecureBytes?)?) throws(CryptoError) {
        guard let ssl = SSL_new(context.pointer) else { throw CryptoError.openSSL(.openSSLFailure, "SSL_new") }
        guard let input = BIO_new(BIO_s_mem()), let output = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw CryptoError.openSSL(.openSSLFailure, "BIO_new")
        }
        self.ssl = ssl
        self.input = input
        self.output = output
        self.identity = identity
        self.key = key
        self.keyLookup = lookup
        SSL_set_bio(ssl, input, output)  // the SSL owns both BIOs now
        if context.role == .client { SSL_set_connect_state(ssl) } else { SSL_set_accept_state(ssl) }
        _ = m2m_ssl_set_app_data(ssl, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit { SSL_free(ssl) }

    /// Bytes from the peer.
    public func receive(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBytes { _ = BIO_write(input, $0.baseAddress, Int32($0.count)) }
    }

    /// Bytes to send to the peer (empty when none).
    public func takeOutput() -> [UInt8] {
        let pending = m2m_bio_pending(output)
        guard pending > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: pending)
        let read = bytes.withUnsafeMutableBytes { BIO_read(output, $0.baseAddress, Int32($0.count)) }
        return read > 0 ? Array(bytes.prefix(Int(read))) : []
    }

    /// Moves the handshake on with the bytes received so far; true once established.
    @discardableResult
    public func advanceHandshake() throws(CryptoError) -> Bool {
        if isEstablished { return true }
        ERR_clear_error()  // SSL_get_error reads the thread's queue: start it empty
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            isEstablished = true
            return true
        }
        try check(result, "TLS handshake")
        return false
    }

    /// Encrypts plaintext into records (then `takeOutput()`).
    public func write(_ plaintext: [UInt8]) throws(CryptoError) {
        guard isEstablished else { throw CryptoError(code: .wrongState, detail: "TLS write before the handshake completed") }
        var offset = 0
        ERR_clear_error()
        while offset < plaintext.count {
            let chunk = min(plaintext.count - offset, 16_384)
            let written = plaintext.withUnsafeBytes { SSL_write(ssl, $0.baseAddress! + offset, Int32(chunk)) }
            if written <= 0 { try check(written, "TLS write"); return }
            offset += Int(written)
        }
    }

    /// All plaintext that the received records hold (empty when they hold none yet).
    public func read() throws(CryptoError) -> [UInt8] {
        var plaintext: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        ERR_clear_error()
        while true {
            let count = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if count > 0 {
                plaintext += buffer.prefix(Int(count))
                continue
            }
            if SSL_get_error(ssl, count) == SSL_ERROR_ZERO_RETURN {
                peerClosed = true
                return plaintext
            }
            try check(count, "TLS read")
            return plaintext
        }
    }

    /// Sends close_notify (then `takeOutput()`).
    public func close() {
        if isEstablished { _ = SSL_shutdown(ssl) }
    }

    /// The negotiated suite (OpenSSL name), once established.
    public var cipherSuite: String? {
        guard isEstablished, let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else { return nil }
        return String(cString: name)
    }

    /// The negotiated protocol, e.g. "TLSv1.2".
    public var protocolVersion: String? {
        guard isEstablished, let name = SSL_get_version(ssl) else { return nil }
        return String(cString: name)
    }

    /// WANT_READ/WANT_WRITE are not failures with memory BIOs; everything else is.
    private func check(_ result: Int32, _ what: String) throws(CryptoError) {
        let code = SSL_get_error(ssl, result)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return }
        if code == SSL_ERROR_ZERO_RETURN {
            peerClosed = true
            return
        }
        throw CryptoError.openSSL(.tlsFailure, "\(what) failed (SSL error \(code))")
    }

    // Called by libssl inside SSL_do_handshake, on this connection's thread.
    fileprivate func clientPSK(identity out: UnsafeMutablePointer<CChar>, capacity: Int, psk: UnsafeMutablePointer<UInt8>, pskCapacity: Int) -> UInt32 {
        guard let identity, let key else { return 0 }
        let text = Array(identity.utf8)
        guard text.count < capacity, key.count <= pskCapacity else { return 0 }
        for (i, byte) in text.enumerated() { out[i] = CChar(bitPattern: byte) }
        out[text.count] = 0
        key.withUnsafeBytes { for (i, byte) in $0.enumerated() { psk[i] = byte } }
        return UInt32(key.count)
    }

    fileprivate func serverPSK(identity: String, psk: UnsafeMutablePointer<UInt8>, pskCapacity: Int) -> UInt32 {
        peerIdentity = identity
        guard let key = keyLookup?(identity), key.count <= pskCapacity, key.count > 0 else { return 0 }
        key.withUnsafeBytes { for (i, byte) in $0.enumerated() { psk[i] = byte } }
        return UInt32(key.count)
    }
}

private func connection(of ssl: OpaquePointer?) -> PSKTLSConnection? {
    guard let ssl, let raw = m2m_ssl_get_app_data(ssl) else { return nil }
    return Unmanaged<PSKTLSConnection>.fromOpaque(raw).takeUnretainedValue()
}

private let pskClientCallback: @convention(c) (
    OpaquePointer?, UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>?, UInt32, UnsafeMutablePointer<UInt8>?, UInt32
) -> UInt32 = { ssl, _, identity, identityCapacity, psk, pskCapacity in
    guard let connection = connection(of: ssl), let identity, let psk else { return 0 }
    return connection.clientPSK(identity: identity, capacity: Int(identityCapacity), psk: psk, pskCapacity: Int(pskCapacity))
}

private let pskServerCallback: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafeMutablePointer<UInt8>?, UInt32) -> UInt32 = {
    ssl, identity, psk, pskCapacity in
    guard let connection = connection(of: ssl), let identity, let psk else { return 0 }
    return connection.serverPSK(identity: String(cString: identity), psk: psk, pskCapacity: Int(pskCapacity))
}

// MARK: - Over a socket

/// A connected stream socket (or pipe) carrying one PSK-TLS connection, blocking with a timeout per
/// wait. The descriptor is the caller's: it is not closed here.
public struct FileDescriptorStream {
    public let descriptor: Int32
    /// Seconds to wait for the peer before giving up.
    public var timeout: Double
    /// The whole exchange ends by then (monotonic nanoseconds), however the peer paces its bytes.
    public let deadline: UInt64

    /// `timeout` per wait, and for the whole exchange `total` (default: 4 × `timeout`). Sends time
    /// out too (SO_SNDTIMEO).
    public init(descriptor: Int32, timeout: Double = 30, total: Double? = nil) {
        self.descriptor = descriptor
        self.timeout = timeout
        self.deadline = Self.now() + UInt64(max(0, total ?? timeout * 4) * 1e9)
        var wait = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
    }

    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Sends everything the connection has to send.
    public func flush(_ connection: PSKTLSConnection) throws(CryptoError) {
        var bytes = connection.takeOutput()
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeMutableBytes { Glibc.send(descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0 {
                if errno == EINTR { continue }
                throw CryptoError(code: .tlsFailure, detail: "send: \(String(cString: strerror(errno)))")
            }
            offset += sent
        }
        bytes.removeAll()
    }

    /// Waits for bytes from the peer and gives them to the connection; false at end of stream.
    @discardableResult
    public func pull(_ connection: PSKTLSConnection) throws(CryptoError) -> Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while true {
            let now = Self.now()
            guard now < deadline else { throw CryptoError(code: .tlsFailure, detail: "the exchange took longer than allowed") }
            let wait = min(timeout * 1000, Double(deadline - now) / 1e6)
            let ready = poll(&poller, 1, Int32(max(1, wait)))
            if ready < 0, errno == EINTR { continue }
            if ready < 0 { throw CryptoError(code: .tlsFailure, detail: "poll: \(String(cString: strerror(errno)))") }
            if ready == 0 { throw CryptoError(code: .tlsFailure, detail: "the peer sent nothing for \(timeout) s") }
            break
        }
        var buffer = [UInt8](repeating: 0, count: 16_640)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            if count < 0 { throw CryptoError(code: .tlsFailure, detail: "recv: \(String(cString: strerror(errno)))") }
            if count == 0 { return false }
            connection.receive(Array(buffer.prefix(count)))
            return true
        }
    }

    /// Runs the handshake to its end.
    public func handshake(_ connection: PSKTLSConnection) throws(CryptoError) {
        while true {
            let done = try connection.advanceHandshake()
            try flush(connection)
            if done { return }
            guard try pull(connection) else { throw CryptoError(code: .tlsFailure, detail: "the peer closed the connection during the handshake") }
        }
    }

    /// Encrypts and sends plaintext.
    public func send(_ plaintext: [UInt8], over connection: PSKTLSConnection) throws(CryptoError) {
        try connection.write(plaintext)
        try flush(connection)
    }

    /// Plaintext from the peer: waits until some arrives; empty at close_notify or end of stream.
    public func receive(over connection: PSKTLSConnection) throws(CryptoError) -> [UInt8] {
        while true {
            let plaintext = try connection.read()
            try flush(connection)
            if !plaintext.isEmpty || connection.peerClosed { return plaintext }
            guard try pull(connection) else { return [] }
        }
    }

    /// Sends close_notify.
    public func close(_ connection: PSKTLSConnection) {
        connection.close()
        try? flush(connection)
    }
}
