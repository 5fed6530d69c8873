// TLS 1.2 PSK on the system libssl (SCP81): both suites complete a handshake between a client and a
// server connection wired in memory; a wrong key or an unknown identity fails the handshake on
// both sides; records carry plaintext both ways; close_notify is seen.

import M2MCore
import M2MCrypto
import Testing

@Suite("PSK-TLS (SCP81)")
struct PSKTLSTests {
    static let key = SecureBytes(Hex.decode("000102030405060708090A0B0C0D0E0F")!)
    static let identity = "800102811089049032000000000000000000000001234F10A0000005591010FFFFFFFF8900000100820101830140"

    /// Runs the handshake by passing bytes between the two ends until neither has anything to say.
    static func handshake(_ client: PSKTLSConnection, _ server: PSKTLSConnection) throws {
        for _ in 0..<20 {
            let clientDone = try client.advanceHandshake()
            server.receive(client.takeOutput())
            let serverDone = try server.advanceHandshake()
            client.receive(server.takeOutput())
            if clientDone && serverDone { return }
        }
        Issue.record("the handshake did not finish")
    }

    @Test("Both SGP.02 suites: TLS 1.2, the identity reaches the server, data both ways", arguments: PSKCipherSuite.allCases)
    func handshake(suite: PSKCipherSuite) throws {
        let client = try PSKTLSConnection(client: try PSKTLSContext(role: .client, suites: [suite]), identity: Self.identity, key: Self.key)
        var seen: [String] = []
        let server = try PSKTLSConnection(server: try PSKTLSContext(role: .server)) { identity in
            seen.append(identity)
            return identity == Self.identity ? Self.key : nil
        }
        try Self.handshake(client, server)
        #expect(client.isEstablished && server.isEstablished)
        #expect(client.cipherSuite == suite.rawValue)
        #expect(server.cipherSuite == suite.rawValue)
        #expect(client.protocolVersion == "TLSv1.2")
        #expect(server.peerIdentity == Self.identity)
        #expect(seen == [Self.identity])

        let request = Array("POST /server/adminagent?cmd=1 HTTP/1.1\r\n\r\n".utf8)
        try client.write(request)
        server.receive(client.takeOutput())
        #expect(try server.read() == request)
        let big = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try server.write(big)
        client.receive(server.takeOutput())
        #expect(try client.read() == big)

        client.close()
        server.receive(client.takeOutput())
        #expect(try server.read().isEmpty)
        #expect(server.peerClosed)
    }

    @Test("The server prefers GCM when the client offers both")
    func preference() throws {
        let client = try PSKTLSConnection(client: try PSKTLSContext(role: .client), identity: Self.identity, key: Self.key)
        let server = try PSKTLSConnection(server: try PSKTLSContext(role: .server)) { _ in Self.key }
        try Self.handshake(client, server)
        #expect(server.cipherSuite == "PSK-AES128-GCM-SHA256")
    }

    @Test("A wrong key or an unknown identity fails the handshake with tlsFailure")
    func refusals() throws {
        let other = SecureBytes(Hex.decode("FF0102030405060708090A0B0C0D0E0F")!)
        for lookup in [{ (_: String) in other }, { (_: String) -> SecureBytes? in nil }] {
            let client = try PSKTLSConnection(client: try PSKTLSContext(role: .client), identity: Self.identity, key: Self.key)
            let server = try PSKTLSConnection(server: try PSKTLSContext(role: .server), keyFor: lookup)
            var failure: CryptoError?
            do {
                try Self.handshake(client, server)
            } catch {
                failure = error as? CryptoError
            }
            #expect(failure?.code == .tlsFailure)
            #expect(!(client.isEstablished && server.isEstablished))
        }
    }

    @Test("Writing before the handshake, or a client context on the server side, is refused")
    func misuse() throws {
        let client = try PSKTLSConnection(client: try PSKTLSContext(role: .client), identity: Self.identity, key: Self.key)
        #expect(throws: CryptoError.self) { try client.write([1, 2, 3]) }
        #expect(throws: CryptoError.self) { _ = try PSKTLSConnection(server: try PSKTLSContext(role: .client)) { _ in nil } }
        #expect(throws: CryptoError.self) { _ = try PSKTLSConnection(client: try PSKTLSContext(role: .client), identity: "", key: Self.key) }
        #expect(throws: CryptoError.self) { _ = try PSKTLSContext(role: .client, suites: []) }
    }
}
