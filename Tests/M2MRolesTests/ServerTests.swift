// The roles on the network: SM-SR and SM-DP SOAP servers on loopback with mutual TLS, an Operator's
// client and its callback/notification receiver — the SM-DP calling the SM-SR over ES3 the same way.

import AsyncHTTPClient
import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MRoles
import M2MServer
import M2MSOAP
import M2MStorage
import M2MTestKit
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import Testing

/// An ES3 endpoint chosen after the harness exists (the SM-SR server's port is known only then).
final class LateES3: ES3Endpoint, @unchecked Sendable {
    let target = Mutex<(any ES3Endpoint)?>(nil)
    func call<Request: SGP02Request>(_ request: Request) throws(ES3TransportError) -> Request.Response {
        guard let endpoint = target.withLock({ $0 }) else { throw ES3TransportError("not connected yet") }
        return try endpoint.call(request)
    }
}

@Suite("SOAP servers over mutual TLS", .serialized)
struct ServerTests {
    typealias D = SMDPHarness
    typealias H = SMSRHarness

    static func credentials(_ role: TestPKI.Role, _ pki: TestPKI, server: Bool) -> TLSCredentials {
        let identity = server ? role.tlsServer! : role.tlsClient
        return TLSCredentials(certificateChainPEM: identity.certificate.pem + pki.tlsCA.pem, privateKeyPEM: identity.key.pkcs8PEM,
                              trustRootsPEM: [pki.tlsCA.pem])
    }

    /// The SM-SR, SM-DP and an Operator's receiver, each a server on loopback; the SM-DP reaches the
    /// SM-SR over ES3 with its own client.
    final class Network: @unchecked Sendable {
        let d: D
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let late: LateES3
        var smsrServer: SOAPServer!
        var smdpServer: SOAPServer!
        var mnoServer: SOAPServer!
        var smsrPort = 0, smdpPort = 0, mnoPort = 0
        var smdpClient: SOAPClient!
        var mnoClient: SOAPClient!
        var smsrClient: SOAPClient!
        let receiver = RecordingReceiver()

        init() throws {
            let late = LateES3()
            self.late = late
            d = try D(wrap: { _ in late })
            let pki = d.sr.pki
            smsrClient = try SOAPClient(identity: EndpointAddress(address: "https://127.0.0.1/smsr", entityID: H.smsrID),
                                        tls: ServerTests.credentials(pki.smsr, pki, server: false), group: group)
            smsrServer = SOAPServer(
                configuration: SOAPServer.Configuration(address: EndpointAddress(address: "https://127.0.0.1/ES4", entityID: H.smsrID),
                                                        tls: ServerTests.credentials(pki.smsr, pki, server: true)),
                endpoints: ["/ES1": SMSRService(smsr: d.sr.smsr, interfaces: [.es1]), "/ES3": SMSRService(smsr: d.sr.smsr, interfaces: [.es3]),
                            "/ES4": SMSRService(smsr: d.sr.smsr, interfaces: [.es4]), "/ES4A": SMSRService(smsr: d.sr.smsr, interfaces: [.es4a])],
                client: smsrClient, group: group)
            smsrPort = try smsrServer.start()
            smdpClient = try SOAPClient(identity: EndpointAddress(address: "https://127.0.0.1/smdp", entityID: H.smdp),
                                        tls: ServerTests.credentials(pki.smdp, pki, server: false), group: group)
            late.target.withLock { $0 = SOAPES3Endpoint(client: smdpClient, smsr: EndpointAddress(address: "https://127.0.0.1:\(smsrPort)/ES3", entityID: H.smsrID)) }
            var smdpConfiguration = SOAPServer.Configuration(address: EndpointAddress(address: "https://127.0.0.1/ES2", entityID: H.smdp),
                                                             tls: ServerTests.credentials(pki.smdp, pki, server: true))
            smdpConfiguration.wsdls = ["/ES2": H.repository.appendingPathComponent("xsd/gsma/ES2_SMDP.wsdl").path]
            smdpServer = SOAPServer(configuration: smdpConfiguration,
                                    endpoints: ["/ES2": SMDPService(smdp: d.smdp, interfaces: [.es2]), "/ES3": SMDPService(smdp: d.smdp, interfaces: [.es3])],
                                    client: smdpClient, group: group)
            smdpPort = try smdpServer.start()
            mnoServer = SOAPServer(
                configuration: SOAPServer.Configuration(address: EndpointAddress(address: "https://127.0.0.1/mno", entityID: H.mno),
                                                        tls: ServerTests.credentials(pki.mno, pki, server: true)),
                endpoints: ["/callbacks": receiver], client: nil, group: group)
            mnoPort = try mnoServer.start()
            mnoClient = try SOAPClient(identity: EndpointAddress(address: "https://127.0.0.1:\(mnoPort)/callbacks", entityID: H.mno),
                                       tls: ServerTests.credentials(pki.mno, pki, server: false), group: group)
        }

        var smsrES4: EndpointAddress { EndpointAddress(address: "https://127.0.0.1:\(smsrPort)/ES4", entityID: H.smsrID) }
        var smdpES2: EndpointAddress { EndpointAddress(address: "https://127.0.0.1:\(smdpPort)/ES2", entityID: H.smdp) }
        var callbacks: EndpointAddress { EndpointAddress(address: "https://127.0.0.1:\(mnoPort)/callbacks", entityID: H.mno) }

        func close() {
            for client in [smdpClient, mnoClient, smsrClient] { client?.shutdown() }
            for server in [smsrServer, smdpServer, mnoServer] { server?.shutdown(grace: 2) }
            try? group.syncShutdownGracefully()
            d.cleanUp()
        }
    }

    @Test("Message IDs: urn:uuid: and a version-4 UUID in lower case, never twice")
    func messageIDs() async {
        // 4 tasks at once, 2 000 IDs in all: the random bytes are drawn 1 KiB (64 IDs) at a time.
        let ids = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<4 { group.addTask { (0..<500).map { _ in SOAPServer.randomUUIDURN() } } }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(ids.count == 2000)
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(50) {
            let uuid = id.dropFirst("urn:uuid:".count)
            #expect(id.hasPrefix("urn:uuid:"))
            #expect(UUID(uuidString: String(uuid)) != nil)
            #expect(uuid == uuid.lowercased())
            let parts = uuid.split(separator: "-")
            #expect(parts.map(\.count) == [8, 4, 4, 4, 12])
            #expect(parts[2].first == "4")
            #expect(["8", "9", "a", "b"].contains(parts[3].first))
        }
    }

    @Test("ES4.GetEIS over HTTPS with mutual TLS; no client certificate, another CA, a wsa:From the certificate does not name: refused")
    func mutualTLS() throws {
        let n = try Network()
        defer { n.close() }
        try n.d.sr.register(card: 0)
        let request = ES4.GetEISRequest(functionCallIdentifier: "g1", eid: n.d.sr.eid(0))
        guard case .envelope(let answer) = try n.mnoClient.post(n.mnoClient.envelope(request, to: n.smsrES4), to: n.smsrES4.uri),
            let response = answer.message as? ES4.GetEISResponse
        else { Issue.record("no GetEIS response"); return }
        #expect(response.functionExecutionStatus == .success && response.eis?.eid == n.d.sr.eid(0))
        #expect(answer.header.relatesTo != nil && answer.header.from?.entityID == H.smsrID)

        // No client certificate: the handshake fails.
        var bare = TLSConfiguration.makeClientConfiguration()
        bare.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(n.d.sr.pki.tlsCA.pem.utf8)))
        let anonymous = HTTPClient(eventLoopGroupProvider: .shared(n.group), configuration: HTTPClient.Configuration(tlsConfiguration: bare))
        defer { try? anonymous.syncShutdown() }
        let plain = try HTTPClient.Request(url: n.smsrES4.uri, method: .POST, body: .bytes(SOAPCodec.encode(n.mnoClient.envelope(request, to: n.smsrES4))))
        #expect(throws: (any Error).self) { _ = try anonymous.execute(request: plain).wait() }

        // A client certificate from another CA: refused too.
        let other = try TestPKI.generate(curve: .p256)
        let stranger = try SOAPClient(identity: EndpointAddress(address: "https://127.0.0.1/x", entityID: H.mno),
                                      tls: TLSCredentials(certificateChainPEM: other.mno.tlsClient.certificate.pem + other.tlsCA.pem,
                                                          privateKeyPEM: other.mno.tlsClient.key.pkcs8PEM,
                                                          trustRootsPEM: [n.d.sr.pki.tlsCA.pem]), group: n.group)
        defer { stranger.shutdown() }
        #expect(throws: (any Error).self) { _ = try stranger.post(stranger.envelope(request, to: n.smsrES4), to: n.smsrES4.uri) }

        // The Operator's certificate, another Operator in wsa:From: 403 with a Fault.
        let spoof = SGP02Envelope(header: AddressingHeader(to: n.smsrES4, from: EndpointAddress(address: "https://x", entityID: H.otherMNO),
                                                           messageID: MessageID(id: "urn:uuid:1"), action: ActionTable.action(for: ES4.GetEISRequest.descriptor)),
                                  message: request)
        let raw = try n.mnoClient.raw(SOAPCodec.encode(spoof), to: n.smsrES4.uri)
        #expect(raw.status == 403 && String(decoding: raw.body, as: UTF8.self).contains("Fault"))
    }

    @Test("ES2.DownloadProfile asynchronously over HTTPS: 202, the SM-DP drives the SM-SR over ES3 (mTLS), the callback reaches the Operator with RelatesTo")
    func asynchronousDownload() throws {
        let n = try Network()
        defer { n.close() }
        try n.d.sr.register(card: 1)
        let request = ES2.DownloadProfileRequest(functionCallIdentifier: "dl-1", eid: n.d.sr.eid(1), smsrID: H.smsrID, profileType: D.fixtureNames[0],
                                                 enableProfile: true)
        let envelope = n.mnoClient.envelope(request, to: n.smdpES2, replyTo: n.callbacks)
        guard case .accepted = try n.mnoClient.post(envelope, to: n.smdpES2.uri) else { Issue.record("not accepted with 202"); return }
        let received = n.receiver.wait(for: 1, seconds: 30)
        try #require(received.count == 1)
        let response = try #require(received[0].message as? ES2.DownloadProfileResponse)
        #expect(response.functionExecutionStatus == .success, "\(response.functionExecutionStatus)")
        #expect(received[0].caller == H.smdp && received[0].header.relatesTo == envelope.header.messageID?.uri)
        #expect(received[0].header.action == ActionTable.action(for: ES2.DownloadProfileResponse.descriptor, asynchronous: true))
        let iccid = try #require(response.iccid)
        #expect(n.d.isdps(card: 1, iccid: iccid).first?.lifeCycle == .enabled)
        // Synchronously (no ReplyTo), the same call answers with its stored response.
        guard case .envelope(let again) = try n.mnoClient.post(n.mnoClient.envelope(request, to: n.smdpES2), to: n.smdpES2.uri) else {
            Issue.record("no synchronous answer"); return
        }
        #expect((again.message as? ES2.DownloadProfileResponse)?.iccid == iccid)
    }

    @Test("A callback its receiver did not take stays in the callback store and goes out again (a restarted server sends what it owed)")
    func durableCallbacks() throws {
        let n = try Network()
        defer { n.close() }
        try n.d.sr.register(card: 0)
        let store = try SQLiteCallbackStore(path: n.d.sr.directory.appendingPathComponent("callbacks.sqlite").path)
        var configuration = n.smsrServer.configuration
        configuration.callbacks = store
        configuration.port = 0
        let server = SOAPServer(configuration: configuration, endpoints: ["/ES4": SMSRService(smsr: n.d.sr.smsr, interfaces: [.es4])], client: n.smsrClient,
                                group: n.group)
        let port = try server.start()
        defer { server.shutdown(grace: 1) }
        // The Operator's callback endpoint is down: the callback is owed.
        let nowhere = EndpointAddress(address: "https://127.0.0.1:1/callbacks", entityID: H.mno)
        let es4 = EndpointAddress(address: "https://127.0.0.1:\(port)/ES4", entityID: H.smsrID)
        let request = n.mnoClient.envelope(ES4.AuditEISRequest(functionCallIdentifier: "a1", eid: n.d.sr.eid(0)), to: es4, replyTo: nowhere)
        guard case .accepted = try n.mnoClient.post(request, to: es4.uri) else { Issue.record("not accepted"); return }
        var owed: [PendingCallback] = []
        for _ in 0..<200 where owed.isEmpty {
            owed = try store.pending()
            Thread.sleep(forTimeInterval: 0.02)
        }
        try #require(owed.count == 1)
        #expect(try SOAPCodec.decode(owed[0].envelope).header.relatesTo == request.header.messageID?.uri)
        // Sent again to where it is now taken (as a restart would): delivered, no longer owed.
        try store.database.write { try $0.run("UPDATE callback SET url = ?1", [.text(n.callbacks.uri)]) }
        #expect(try n.smsrClient.resendCallbacks(from: store) == 1)
        let received = n.receiver.wait(for: 1)
        #expect(received.contains { ($0.message as? ES4.AuditEISResponse)?.functionExecutionStatus == .success && $0.header.relatesTo == request.header.messageID?.uri })
        for _ in 0..<200 where try !store.pending().isEmpty { Thread.sleep(forTimeInterval: 0.02) }
        #expect(try store.pending().isEmpty)
    }

    @Test("Notifications over HTTPS: the SM-SR's ES3 notification to the SM-DP, forwarded over ES2 to the Operator's endpoint")
    func notifications() throws {
        let n = try Network()
        defer { n.close() }
        try n.d.sr.register(card: 0, owner: H.otherMNO)
        let iccid = try #require(n.d.download(card: 0, enable: true).iccid)
        // The other Operator enables its own Profile: this Operator's is disabled, told through its SM-DP.
        let own = try #require(try n.d.sr.stored(0)?.profiles.first { $0.mnoID == H.otherMNO })
        #expect(n.d.sr.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "o", eid: n.d.sr.eid(0), iccid: own.iccid),
                                          context: RequestContext(caller: H.otherMNO)).functionExecutionStatus == .success)
        let smdpES3 = EndpointAddress(address: "https://127.0.0.1:\(n.smdpPort)/ES3", entityID: H.smdp)
        let fromSMSR = OutboxDispatcher(store: n.d.sr.store, delivery: SOAPNotificationDelivery(client: n.smsrClient, directory: [H.smdp: smdpES3]),
                                        clock: n.d.sr.clock)
        let fromSMDP = OutboxDispatcher(store: n.d.store, delivery: SOAPNotificationDelivery(client: n.smdpClient, directory: [H.mno: n.callbacks]),
                                        clock: n.d.sr.clock)
        try fromSMSR.runOnce()
        try fromSMDP.runOnce()
        let received = n.receiver.wait(for: 1)
        let disabled = received.compactMap { $0.message as? ES2.HandleProfileDisabledNotification }
        #expect(disabled.count == 1 && disabled.first?.iccid == iccid && received.first?.caller == H.smdp)
        #expect(try n.d.sr.outbox().filter { $0.smdp == H.smdp }.allSatisfy { $0.state == .delivered })
    }

    @Test("SM-SR change over HTTPS with one worker per server: PrepareSMSRChange, a synchronous SMSRChange, ES7 between two SM-SR servers over mutual TLS, asynchronous")
    func smsrChange() throws {
        let h = try ChangeHarness()
        defer { h.cleanUp() }
        let pki = h.one.pki
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        let client1 = try SOAPClient(identity: EndpointAddress(address: "https://127.0.0.1/smsr", entityID: H.smsrID),
                                     tls: Self.credentials(pki.smsr, pki, server: false), group: group)
        let client2 = try SOAPClient(identity: EndpointAddress(address: "https://127.0.0.1/smsr2", entityID: ChangeHarness.smsr2ID),
                                     tls: Self.credentials(pki.smsr2, pki, server: false), group: group)
        func server(_ smsr: SMSR, _ role: TestPKI.Role, _ client: SOAPClient, _ mailbox: CallbackMailbox) throws -> (SOAPServer, Int) {
            var configuration = SOAPServer.Configuration(address: EndpointAddress(address: "https://127.0.0.1/ES4", entityID: role.entityID),
                                                         tls: Self.credentials(role, pki, server: true))
            // One worker each: the waits of SMSRChange and HandoverEUICC must run elsewhere, or the calls
            // and callbacks they wait for would find no worker (a deadlock until the timeouts).
            configuration.workerThreads = 1
            configuration.waitingFunctions = ["ES4.SMSRChange", "ES7.HandoverEUICC"]
            let server = SOAPServer(
                configuration: configuration,
                endpoints: ["/ES4": SMSRService(smsr: smsr, interfaces: [.es4]), "/ES7": SMSRService(smsr: smsr, interfaces: [.es7]), "/callbacks": mailbox],
                client: client, group: group)
            return (server, try server.start())
        }
        let mailbox1 = CallbackMailbox(), mailbox2 = CallbackMailbox()
        let (server1, port1) = try server(h.one.smsr, pki.smsr, client1, mailbox1)
        let (server2, port2) = try server(h.two, pki.smsr2, client2, mailbox2)
        let mno = try SOAPClient(identity: EndpointAddress(address: "https://127.0.0.1/mno", entityID: H.mno),
                                 tls: Self.credentials(pki.mno, pki, server: false), group: group)
        defer {
            for client in [client1, client2, mno] { client.shutdown() }
            for server in [server1, server2] { server.shutdown(grace: 2) }
        }
        // The SM-SRs reach each other over ES7 (SOAP, mutual TLS), not in process; asynchronously: each
        // request carries ReplyTo, is accepted with 202, and its answer comes back as a callback.
        h.one.smsr.connect(smsr: ChangeHarness.smsr2ID, endpoint: SOAPES7Endpoint(
            client: client1, smsr: EndpointAddress(address: "https://127.0.0.1:\(port2)/ES7", entityID: ChangeHarness.smsr2ID),
            callbacks: (mailbox1, EndpointAddress(address: "https://127.0.0.1:\(port1)/callbacks", entityID: H.smsrID), 30)))
        h.two.connect(smsr: H.smsrID, endpoint: SOAPES7Endpoint(
            client: client2, smsr: EndpointAddress(address: "https://127.0.0.1:\(port1)/ES7", entityID: H.smsrID),
            callbacks: (mailbox2, EndpointAddress(address: "https://127.0.0.1:\(port2)/callbacks", entityID: ChangeHarness.smsr2ID), 30)))
        try h.registerCard()
        let es4one = EndpointAddress(address: "https://127.0.0.1:\(port1)/ES4", entityID: H.smsrID)
        let es4two = EndpointAddress(address: "https://127.0.0.1:\(port2)/ES4", entityID: ChangeHarness.smsr2ID)
        let prepare = ES4.PrepareSMSRChangeRequest(functionCallIdentifier: "p", eid: h.eid, currentSMSRID: H.smsrID)
        guard case .envelope(let prepared) = try mno.post(mno.envelope(prepare, to: es4two), to: es4two.uri) else { Issue.record("no answer"); return }
        #expect((prepared.message as? ES4.PrepareSMSRChangeResponse)?.functionExecutionStatus == .success)
        let change = ES4.SMSRChangeRequest(functionCallIdentifier: "c", validityPeriod: 600, eid: h.eid, targetSMSRID: ChangeHarness.smsr2ID)
        // Synchronous (the answer in the HTTP response): the call waits for SM-SR2 on the wait pool,
        // recognised by the content type's action, so SM-SR1's one worker stays free for the ES7
        // calls and callbacks it waits for. (`make demo` runs an asynchronous SMSRChange.)
        guard case .envelope(let answered) = try mno.post(mno.envelope(change, to: es4one), to: es4one.uri) else { Issue.record("no answer"); return }
        let response = try #require(answered.message as? ES4.SMSRChangeResponse)
        #expect(response.functionExecutionStatus == .success, "\(response.functionExecutionStatus)")
        // The new SM-SR manages the card over HTTPS; the old one no longer knows it.
        let enable = ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: h.eid, iccid: H.iccidB)
        guard case .envelope(let enabled) = try mno.post(mno.envelope(enable, to: es4two), to: es4two.uri) else { Issue.record("no answer"); return }
        // B belongs to the other Operator: refused by rights at the new SM-SR (it knows the Profile), 8.1.1/3.9 at the old one.
        #expect((enabled.message as? ES4.EnableProfileResponse)?.functionExecutionStatus.codes == "8.2.1/1.2")
        guard case .envelope(let old) = try mno.post(mno.envelope(ES4.EnableProfileRequest(functionCallIdentifier: "e2", eid: h.eid, iccid: H.iccidA), to: es4one),
                                                    to: es4one.uri) else { Issue.record("no answer"); return }
        #expect((old.message as? ES4.EnableProfileResponse)?.functionExecutionStatus.codes == "8.1.1/3.9")
        #expect(h.one.fleet.card(at: 0).isdrKeyVersions.sorted() == [0x02, 0x41])
        // ES7 went the asynchronous way: HandoverEUICC's answer came back to SM-SR1 as a callback,
        // AuthenticateSMSR's and CreateAdditionalKeySet's to SM-SR2.
        #expect(mailbox1.taken == 1 && mailbox2.taken == 2)
        // A callback nobody waits for, or from another entity, is refused.
        let stray = mno.envelope(ES7.HandoverEUICCResponse(functionExecutionStatus: .success),
                                 to: EndpointAddress(address: "https://127.0.0.1:\(port1)/callbacks", entityID: H.smsrID), relatesTo: "urn:uuid:nobody")
        guard case .envelope(let refused) = try mno.post(stray, to: "https://127.0.0.1:\(port1)/callbacks") else { Issue.record("not refused"); return }
        #expect(refused.message == nil)
    }

    /// Holds every call but the read-only ones until released (the quick pool's test).
    final class Holding: SOAPService, @unchecked Sendable {
        let inner: SMSRService
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        init(_ inner: SMSRService) { self.inner = inner }
        var interfaces: Set<Interface> { inner.interfaces }
        func handle(_ message: any SGP02Message, caller: OID) -> SOAPOutcome {
            if !SMSR.readOnlyFunctions.contains("\(message.descriptor.function)") {
                entered.signal()
                release.wait()
            }
            return inner.handle(message, caller: caller)
        }
    }

    @Test("Read-only functions run on a pool of their own: with the one worker held by an EnableProfile, GetEIS still answers")
    func quickPool() throws {
        #expect(SMSR.readOnlyFunctions.isSubset(of: Set(ActionTable.all.map { "\($0.function)" })))
        let sr = try H()
        defer { sr.cleanUp() }
        try sr.register(card: 0)
        let pki = sr.pki
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? group.syncShutdownGracefully() }
        var configuration = SOAPServer.Configuration(address: EndpointAddress(address: "https://127.0.0.1/ES4", entityID: H.smsrID),
                                                     tls: Self.credentials(pki.smsr, pki, server: true))
        configuration.workerThreads = 1
        configuration.quickFunctions = SMSR.readOnlyFunctions
        let holding = Holding(SMSRService(smsr: sr.smsr, interfaces: [.es4]))
        let server = SOAPServer(configuration: configuration, endpoints: ["/ES4": holding], client: nil, group: group)
        let port = try server.start()
        let mno = try SOAPClient(identity: EndpointAddress(address: "https://127.0.0.1/mno", entityID: H.mno),
                                 tls: Self.credentials(pki.mno, pki, server: false), group: group)
        defer {
            mno.shutdown()
            server.shutdown(grace: 2)
        }
        // Runs first: a held worker is let go even when an expectation fails (else shutdown waits on it).
        defer { holding.release.signal() }
        let es4 = EndpointAddress(address: "https://127.0.0.1:\(port)/ES4", entityID: H.smsrID)
        // The worker takes the EnableProfile and is held there.
        let enabled = DispatchSemaphore(value: 0)
        let enable = mno.envelope(ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: sr.eid(0), iccid: H.iccidB), to: es4)
        Thread.detachNewThread {
            _ = try? mno.post(enable, to: es4.uri)
            enabled.signal()
        }
        #expect(holding.entered.wait(timeout: .now() + 10) == .success)
        // GetEIS (the client sends the SOAP 1.2 action) runs on the quick pool meanwhile.
        let answered = DispatchSemaphore(value: 0)
        let outcome = Mutex<ES4.GetEISResponse?>(nil)
        let get = mno.envelope(ES4.GetEISRequest(functionCallIdentifier: "g", eid: sr.eid(0)), to: es4)
        Thread.detachNewThread {
            if case .envelope(let answer)? = try? mno.post(get, to: es4.uri) { outcome.withLock { $0 = answer.message as? ES4.GetEISResponse } }
            answered.signal()
        }
        #expect(answered.wait(timeout: .now() + 10) == .success, "GetEIS waited for the held worker")
        #expect(outcome.withLock { $0 }?.functionExecutionStatus == .success)
        holding.release.signal()
        #expect(enabled.wait(timeout: .now() + 10) == .success)
    }

    @Test("Malformed envelopes get a SOAP Fault (400), oversized bodies 413, unknown paths 404, ?wsdl the GSMA WSDL")
    func badInput() throws {
        let n = try Network()
        defer { n.close() }
        let malformed = try n.mnoClient.raw(Array("<env:Envelope".utf8), to: n.smdpES2.uri)
        #expect(malformed.status == 400 && String(decoding: malformed.body, as: UTF8.self).contains("Fault"))
        let big = try n.mnoClient.raw([UInt8](repeating: 0x20, count: (4 << 20) + 1), to: n.smdpES2.uri)
        #expect(big.status == 413)
        let nowhere = try n.mnoClient.raw(SOAPCodec.encode(n.mnoClient.envelope(ES2.GetEISRequest(functionCallIdentifier: "x", eid: n.d.sr.eid(0), smsrID: H.smsrID),
                                                                                  to: n.smdpES2)), to: "https://127.0.0.1:\(n.smdpPort)/nowhere")
        #expect(nowhere.status == 404)
        // An ES4 message at the ES2 endpoint.
        let wrong = try n.mnoClient.raw(SOAPCodec.encode(n.mnoClient.envelope(ES4.GetEISRequest(functionCallIdentifier: "y", eid: n.d.sr.eid(0)), to: n.smdpES2)),
                                        to: n.smdpES2.uri)
        #expect(wrong.status == 400)
        let wsdl = try n.mnoClient.raw(nil, to: n.smdpES2.uri + "?wsdl", method: "GET")
        #expect(wsdl.status == 200 && String(decoding: wsdl.body, as: UTF8.self).contains("ES2-DownloadProfile"), "\(wsdl.status): \(String(decoding: wsdl.body.prefix(200), as: UTF8.self))")
    }
}
