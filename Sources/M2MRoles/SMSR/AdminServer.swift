// The SM-SR's SCP81 admin server (GP Amendment B; spec §2.1, §3.4): to run a script over HTTPS,
// the SM-SR pushes the administration session triggering parameters to the card's ISD-R over SCP80
// (its address and port, the admin URI), accepts the card's TLS 1.2 PSK connection — the PSK is the
// ISD-R's SCP81 key set 40 of the identity's EID, opened from its sealed form for the handshake —
// sends the script for the targeted application, reads the response script, and ends the session
// with 204. Sessions are served one at a time on one listening socket.

import M2MCore
import M2MCrypto
import M2MStorage
public import M2MTransport
public import M2MWire
import Synchronization
import Dispatch

public final class SCP81AdminServer: Sendable {
    public let host: String
    public let port: UInt16
    let listener: Int32
    let context: PSKTLSContext
    let sessions = Mutex(())
    let completed = Atomic<Int>(0)
    public let timeout: Double

    /// Admin sessions completed so far.
    public var sessionsServed: Int { completed.load(ordering: .relaxed) }

    /// Listens on `host:port` (port 0: any free port, see `port`).
    public init(host: String = "127.0.0.1", port: UInt16 = 0, timeout: Double = 30) throws {
        listener = try TCPSocket.listen(host: host, port: port)
        self.host = host
        self.port = TCPSocket.boundPort(listener)
        self.timeout = timeout
        context = try PSKTLSContext(role: .server)
    }

    deinit { TCPSocket.close(listener) }

    /// The triggering parameters that bring a card here.
    public var trigger: AdminSessionTrigger {
        let octets = host.split(separator: ".").compactMap { UInt8($0) }
        return AdminSessionTrigger(port: port, ipv4: octets.count == 4 ? octets : nil, uri: AdminProtocol.defaultURI)
    }

    func run(script: [UInt8], target: ScriptTarget, eid: EID, smsr: SMSR) throws -> [UInt8] {
        let session = try CardSession(smsr: smsr, eid: eid)
        guard let psk = try session.scp81PSK() else {
            throw ES5Failure(status: .failed(.isdr, .unknown, identifier: eid.text, message: "no SCP81 key set (40) stored for this eUICC"))
        }
        let aid: AID = switch target {
        case .isdR: try! AID(text: "A0000005591010FFFFFFFF8900000100")
        case .isdP(let aid): aid
        }
        return try sessions.withLock { _ throws -> [UInt8] in
            try session.push(trigger)
            // Another connection (a card late from an earlier session, a stray client) fails its
            // handshake on its own; the pushed card's is awaited until the deadline.
            let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(timeout * 1e9)
            var served: SCP81Peer.Session?
            while served == nil {
                do {
                    served = try SCP81Peer.serveOne(listener: listener, context: context, timeout: timeout,
                                                    keyFor: { $0.eid == eid ? psk : nil }, scripts: [AdminScript(target: aid, script: script)])
                } catch let error as CryptoError where error.code == .tlsFailure && DispatchTime.now().uptimeNanoseconds < deadline {
                    continue
                }
            }
            guard let served, served.eid == eid, let result = served.results.first else {
                throw ES5Failure(status: .failed(.euicc, .inaccessible, identifier: eid.text, message: "the admin session carried no script response"))
            }
            completed.add(1, ordering: .relaxed)
            guard result.status == .ok else {
                throw ES5Failure(status: .failed(.isdp, .unknown, identifier: eid.text, message: "X-Admin-Script-Status \(result.status.rawValue)"))
            }
            return result.response
        }
    }
}
