// SCP81 end to end on loopback TCP: the SM-SR side (SCP81Peer, the test admin server) pushes the
// triggering parameters over SCP80; the card's agent connects back, authenticates with its ISD-R
// PSK over TLS 1.2, and runs the scripts the server sends — here a whole Profile download:
// CreateISDP, key establishment (scenario #3) and the SCP03t stream of a TS.48 package, as in the
// real WT session (spec §2.1, §2.3, §2.4). Also: unknown cards and wrong keys fail the handshake,
// an unknown ISD-P is answered "unknown-application", and the trigger's PoR.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MTransport
import M2MTestKit
import M2MWire
import Synchronization
import Testing

/// Runs `body` on its own thread (blocking socket work must not sit on the concurrency pool).
final class Background<T: Sendable>: Sendable {
    let done = DispatchSemaphore(value: 0)
    let outcome = Mutex<Result<T, any Error>?>(nil)

    init(_ body: @escaping @Sendable () throws -> T) {
        Thread.detachNewThread { [self] in
            let result = Result { try body() }
            outcome.withLock { $0 = result }
            done.signal()
        }
    }

    func value() throws -> T {
        done.wait()
        return try outcome.withLock { $0! }.get()
    }
}

@Suite("SCP81 admin sessions")
struct SCP81Tests {
    static let clientContext = try! PSKTLSContext(role: .client)
    static let serverContext = try! PSKTLSContext(role: .server)

    static func keys(of fleet: Fleet) -> @Sendable (SCP81PSKIdentity) -> SecureBytes? {
        { identity in fleet.index(of: identity.eid).map { fleet.identity(at: $0).scp81PSK } }
    }

    @Test("The push's PoR, then GET STATUS / GET DATA over PSK-TLS; the peer sees the card's identity")
    func pushAndScripts() throws {
        let bench = try SMSBench()
        let listener = try TCPSocket.listen()
        defer { TCPSocket.close(listener) }
        let port = TCPSocket.boundPort(listener)
        var peer = try bench.peer()
        let push = try peer.securePush(AdminSessionTrigger(port: port, ipv4: [127, 0, 0, 1], uri: "/server/adminagent?cmd=1"))
        let delivery = try bench.transport.delivery(push.userData, to: bench.eid)
        #expect(delivery.status == .ok)
        let por = try peer.open(try #require(delivery.proofOfReceipt), for: push)
        #expect(por.por.status == .ok && por.script == nil)
        let trigger = try #require(delivery.adminSessionTrigger)
        #expect(trigger.port == port)

        let scripts = [
            AdminScript(target: EUICC.isdRAID, script: ExpandedCommandScript(
                commands: [SMSBench.getStatus(SMSBench.a), CommandAPDU(cla: 0x80, ins: 0xCA, p1: 0x00, p2: 0x5A, le: 0)], coding: .indefinite).encoded),
            AdminScript(target: Platform.aid(0x77), script: [0xAE, 0x80, 0x00, 0x00]),
        ]
        let fleet = bench.fleet
        let keys = Self.keys(of: fleet)
        let server = Background { try SCP81Peer.serveOne(listener: listener, context: Self.serverContext, timeout: 10, keyFor: keys, scripts: scripts) }
        let report = try SCP81Client.runSession(fleet: fleet, index: bench.index, trigger: trigger, context: Self.clientContext, timeout: 10)
        let session = try server.value()

        #expect(report.protocolVersion == "TLSv1.2")
        #expect(report.cipherSuite == "PSK-AES128-GCM-SHA256")
        #expect(report.statuses == [.ok, .unknownApplication])
        #expect(session.eid == bench.eid)
        #expect(session.pskIdentity == fleet.identity(at: bench.index).scp81Identity.text)
        #expect(session.results.map(\.status) == [.ok, .unknownApplication])
        let answer = try ExpandedResponseScript(bytes: session.results[0].response)
        #expect(answer.coding == .indefinite)
        #expect(answer.responses.map(\.sw) == [.success, .success])
        #expect(answer.responses[0].data == TLV(0xE3, TLV(0x4F, SMSBench.a.bytes).encoded + TLV(0x9F70, [0x3F]).encoded).encoded)
        #expect(answer.responses[1].data == TLV(0x5A, bench.eid.bytes).encoded)
        #expect(session.results[1].response.isEmpty)
    }

    @Test("A TS.48 Profile downloaded over SCP81: CreateISDP, key establishment, SCP03t segments", arguments: [Curve.p256])
    func download(curve: Curve) throws {
        let pki = try TestPKI.generate(curve: curve)
        let fleet = try Fleet(seed: Array("scp81-download".utf8), count: 3, curve: curve, ciPublicKey: pki.ci.publicKey, eum: EUMIssuer(key: pki.eumKey))
        let index = 2
        let (name, package) = try #require(try Fixtures.all().first)
        let aid = Platform.aid(0x21)
        let ecasd = try fleet.identity(at: index).ecasdKey().publicKey
        let listener = try TCPSocket.listen()
        defer { TCPSocket.close(listener) }
        let trigger = AdminSessionTrigger(port: TCPSocket.boundPort(listener), ipv4: [127, 0, 0, 1])

        let server = Background { () throws -> (SCP81Peer.Session, [UInt8]?) in
            var keyHost = try KeyEstablishmentHost(certificate: pki.smdp.certificate!, signingKey: pki.smdp.key!, ecasdPublicKey: ecasd)
            var channel: SCP03tHost?
            var segments = stride(from: 0, to: package.count, by: 1024).map { Array(package[$0..<min($0 + 1024, package.count)]) }[...]
            var step = 0
            var euiccResponse: [UInt8]?
            func script(_ commands: [CommandAPDU]) -> AdminScript {
                AdminScript(target: EUICC.isdRAID, script: ExpandedCommandScript(commands: commands, coding: .indefinite).encoded)
            }
            func scp03t(_ items: [TLV]) -> AdminScript {
                AdminScript(target: aid, script: ExpandedCommandScript(items: items, coding: .indefinite).encoded)
            }
            let session = try SCP81Peer.serveOne(listener: listener, context: Self.serverContext, timeout: 20, keyFor: Self.keys(of: fleet)) { result in
                defer { step += 1 }
                switch step {
                case 0:
                    let perso = CommandAPDU(cla: 0x80, ins: 0xE6, p1: 0x20, p2: 0x00, data: [0x00, 0x00, 0x10] + aid.bytes + [0x00, 0x00, 0x00], le: 0x00)
                    return script([Platform.createISDP(aid), perso, .storeData(p1: 0x89, data: keyHost.certificateData(), le: 0x00)])
                case 1:
                    let responses = try ExpandedResponseScript(bytes: try #require(result).response).responses
                    try #require(responses.count == 3 && responses.allSatisfy { $0.sw == .success })
                    return script([.storeData(p1: 0x89, block: 1, data: try keyHost.keyAgreementData(cardResponse: responses[2].data), le: 0x00)])
                case 2:
                    let responses = try ExpandedResponseScript(bytes: try #require(result).response).responses
                    let keys = try keyHost.processReceipt(cardResponse: try #require(responses.first).data)
                    var host = SCP03tHost(keys: keys, aid: aid.bytes)
                    let open = [host.initializeUpdate(), try host.precomputedExternalAuthenticate(sequenceCounter: 1)]
                    channel = host
                    return scp03t(open)
                case 3:
                    let answers = try ExpandedResponseScript(bytes: try #require(result).response).items
                    try #require(answers.count == 2)
                    try channel!.processInitializeUpdate(answers[0])
                    try channel!.processExternalAuthenticate(answers[1])
                    return scp03t([try channel!.segment(segments.popFirst()!)])
                default:
                    let answers = try ExpandedResponseScript(bytes: try #require(result).response).items
                    try #require(answers.count == 1)
                    if let plain = try channel!.processSegmentResponse(answers[0]) {
                        euiccResponse = plain
                        return nil
                    }
                    guard let next = segments.popFirst() else { return nil }
                    return scp03t([try channel!.segment(next)])
                }
            }
            return (session, euiccResponse)
        }
        let report = try SCP81Client.runSession(fleet: fleet, index: index, trigger: trigger, context: Self.clientContext, timeout: 20)
        let (session, euiccResponse) = try server.value()
        #expect(euiccResponse == EUICCResponse.success.encoded, "\(name)")
        #expect(report.statuses.allSatisfy { $0 == .ok })
        #expect(session.results.count == 3 + (package.count + 1023) / 1024)
        let isdp = try #require(fleet.card(at: index).isdp(aid))
        #expect(isdp.lifeCycle == .disabled)
        #expect(isdp.profileDigest == SHA256.hash(package))
    }

    @Test("An unknown card or a wrong PSK fails the TLS handshake on both ends; nothing runs")
    func refusals() throws {
        let bench = try SMSBench()
        for keyFor: @Sendable (SCP81PSKIdentity) -> SecureBytes? in [{ _ in nil }, { _ in SecureBytes(Array(repeating: 7, count: 16)) }] {
            let listener = try TCPSocket.listen()
            defer { TCPSocket.close(listener) }
            let trigger = AdminSessionTrigger(port: TCPSocket.boundPort(listener), ipv4: [127, 0, 0, 1])
            let script = AdminScript(target: EUICC.isdRAID, script: ExpandedCommandScript(commands: [SMSBench.store(0x3A04, SMSBench.a)], coding: .indefinite).encoded)
            let server = Background { try SCP81Peer.serveOne(listener: listener, context: Self.serverContext, timeout: 10, keyFor: keyFor, scripts: [script]) }
            #expect(throws: CryptoError.self) {
                _ = try SCP81Client.runSession(fleet: bench.fleet, index: bench.index, trigger: trigger, context: Self.clientContext, timeout: 10)
            }
            #expect(throws: CryptoError.self) { _ = try server.value() }
            #expect(bench.fleet.card(at: bench.index).isdp(SMSBench.a)?.lifeCycle == .enabled)
        }
    }

    @Test("No admin server address: refused before connecting; nobody listening: unreachable")
    func unreachable() throws {
        let bench = try SMSBench()
        let unreachable: @Sendable (any Error) -> Bool = { ($0 as? TransportError)?.code == .unreachable }
        #expect {
            _ = try SCP81Client.runSession(fleet: bench.fleet, index: 0, trigger: AdminSessionTrigger(), context: Self.clientContext)
        } throws: { unreachable($0) }
        let listener = try TCPSocket.listen()
        let port = TCPSocket.boundPort(listener)
        TCPSocket.close(listener)
        #expect {
            _ = try SCP81Client.runSession(fleet: bench.fleet, index: 0, trigger: AdminSessionTrigger(port: port, ipv4: [127, 0, 0, 1]), context: Self.clientContext)
        } throws: { unreachable($0) }
    }

    @Test("The agent session alone: 204 ends it, a 500 or a 200 without Next-URI is a protocol violation")
    func agentRules() throws {
        let eid = try EID(text: "89049032123451234512345678901235")
        var agent = AdminAgentSession(eid: eid, trigger: AdminSessionTrigger())
        let first = agent.firstRequest()
        #expect(first.target == AdminProtocol.defaultURI && first.body.isEmpty && first.headers["X-Admin-Script-Status"] == nil)
        var failing = agent
        #expect(throws: AdminProtocolError.self) {
            _ = try failing.handle(HTTPResponse(status: 500, reason: "Oops", headers: HTTPHeaders())) { _, _ in [] }
        }
        failing = agent
        #expect(throws: AdminProtocolError.self) {
            _ = try failing.handle(HTTPResponse(status: 200, reason: "OK", headers: HTTPHeaders(), body: [0xAE, 0x80, 0x00, 0x00])) { _, _ in [] }
        }
        #expect(try agent.handle(HTTPResponse(status: 204, reason: "No Content", headers: HTTPHeaders())) { _, _ in [] } == nil)
        #expect(agent.isFinished)
    }
}
