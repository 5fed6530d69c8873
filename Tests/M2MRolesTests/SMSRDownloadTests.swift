// A Profile download through the SM-SR, driven by the SM-DP's side of ES3 the way issue #7's
// SM-DP will drive it: GetEIS (CERT.ECASD.ECKA), CreateISDP, key establishment and the SCP03t
// stream of a real TS.48 package in SendData calls, ProfileDownloadCompleted — then the Operator
// enables it over ES4. Once with scripts run by the transport in process, once over SCP81: the
// SM-SR pushes the card over SCP80 and serves its PSK-TLS admin session per script.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MRoles
import M2MSOAP
import M2MStorage
import M2MTestKit
import M2MTrace
import M2MTransport
import M2MWire
import Synchronization
import Testing

@Suite("SM-SR download path (ES3)", .serialized)
struct SMSRDownloadTests {
    typealias H = SMSRHarness

    static func fixture() throws -> [UInt8] {
        let url = H.repository.appendingPathComponent("Tests/M2MWireTests/Fixtures/profiles/TS48v5_SAIP2.1A_NoBERTLV.der")
        return Array(try Data(contentsOf: url))
    }

    /// The SM-DP's side: returns the statuses of every call, in order.
    /// `segment`: the SCP03t plaintext segment size; `streamVia`: another SM-SR (same store) for the
    /// SCP03t part, e.g. one that sends scripts over SMS.
    static func download(_ h: H, card: Int, package: [UInt8], segment: Int = 1020, streamVia: SMSR? = nil, ephemeral: ECPrivateKey? = nil) throws
        -> (aid: AID, iccid: ICCID)
    {
        let smdp = RequestContext(caller: H.smdp)
        let eid = h.eid(card)
        let iccid = try ProfilePackage(der: package).header.iccid
        var fci = 0
        func next() -> String {
            fci += 1
            return "dl-\(card)-\(fci)"
        }
        // PK.ECASD.ECKA from the EIS (the certificate the SM-SR verified at registration).
        let eis = try #require(h.smsr.getEIS(ES3.GetEISRequest(functionCallIdentifier: next(), eid: eid), context: smdp).eis)
        let reference = try #require(eis.eumSignedInfo.ecasd.keysets.flatMap(\.items).compactMap { item -> GPCertificateReference? in
            if case .certificate(let c) = item { return c }
            return nil
        }.first)
        let ecasdKey = try GPCertificate(encoded: reference.value.bytes).publicKey(defaultCurve: .p256)

        let created = h.smsr.createISDP(ES3.CreateISDPRequest(functionCallIdentifier: next(), eid: eid, iccid: iccid, mnoID: H.mno, requiredMemory: 30_000),
                                        context: smdp)
        try #require(created.functionExecutionStatus == .success, "\(created.functionExecutionStatus)")
        let aid = created.isdPAID
        // The download holds the eUICC: a life-cycle change or a second download waits (8.1/4.4).
        if let other = try h.stored(card)?.profiles.first(where: { $0.state != .created }) {
            #expect(h.smsr.disableProfile(ES4.DisableProfileRequest(functionCallIdentifier: next(), eid: eid, iccid: other.iccid), context: RequestContext(caller: H.mno))
                .functionExecutionStatus.codes == "8.1/4.4")
        }
        #expect(h.smsr.createISDP(ES3.CreateISDPRequest(functionCallIdentifier: next(), eid: eid, iccid: try ICCID(withoutCheckDigit: "894450000000009999"),
                                                        mnoID: H.mno, requiredMemory: 1_000), context: smdp).functionExecutionStatus.codes == "8.1/4.4")

        func send(_ items: [TLV], via smsr: SMSR? = nil) throws -> [TLV] {
            let response = (smsr ?? h.smsr).sendData(
                ES3.SendDataRequest(functionCallIdentifier: next(), eid: eid, sdAID: aid, data: HexBinary(items.flatMap(\.encoded))), context: smdp)
            try #require(response.functionExecutionStatus == .success, "\(response.functionExecutionStatus)")
            return try ExpandedResponseScript(bytes: try #require(response.euiccResponseData).bytes).items
        }
        func command(_ apdu: CommandAPDU) -> TLV { TLV(ExpandedCommandScript.commandTag, apdu.bytes) }
        func responses(_ items: [TLV]) -> [ResponseAPDU] { items.filter { $0.tag == 0x23 }.compactMap { try? ResponseAPDU(bytes: $0.value) } }

        var host = try KeyEstablishmentHost(certificate: h.pki.smdp.certificate!, signingKey: h.pki.smdp.key!, ecasdPublicKey: ecasdKey,
                                            ephemeralKey: ephemeral)
        let first = responses(try send([command(.storeData(p1: 0x89, data: host.certificateData(), le: 0))]))
        // The SM-SR put INSTALL [for personalization] first: two R-APDUs, the challenge in the second.
        try #require(first.count == 2 && first.allSatisfy { $0.sw == .success })
        let second = responses(try send([command(.storeData(p1: 0x89, block: 1, data: try host.keyAgreementData(cardResponse: first[1].data), le: 0))]))
        let keys = try host.processReceipt(cardResponse: try #require(second.first).data)

        var channel = SCP03tHost(keys: keys, aid: aid.bytes)
        let opened = try send([channel.initializeUpdate(), try channel.precomputedExternalAuthenticate(sequenceCounter: 1)], via: streamVia)
        try channel.processInitializeUpdate(opened[0])
        try channel.processExternalAuthenticate(opened[1])
        var final: [UInt8]?
        for start in stride(from: 0, to: package.count, by: segment) {
            let answer = try send([try channel.segment(Array(package[start..<min(start + segment, package.count)]))], via: streamVia)
            if let plain = try channel.processSegmentResponse(try #require(answer.first)) { final = plain }
        }
        #expect(final == EUICCResponse.success.encoded)
        let done = h.smsr.profileDownloadCompleted(
            ES3.ProfileDownloadCompletedRequest(functionCallIdentifier: next(), eid: eid, iccid: iccid, profileType: H.profileType,
                                                pol2: POL2(rules: [.init(action: .delete, qualification: .notAllowed)])), context: smdp)
        #expect(done.functionExecutionStatus == .success, "\(done.functionExecutionStatus)")
        return (aid, iccid)
    }

    static func checkInstalled(_ h: H, card: Int, aid: AID, iccid: ICCID, package: [UInt8]) throws {
        let isdp = try #require(h.fleet.card(at: card).isdp(aid))
        #expect(isdp.lifeCycle == .disabled && isdp.profileDigest == SHA256.hash(package) && isdp.iccid == iccid)
        let profile = try #require(try h.stored(card)?.profiles.first { $0.iccid == iccid })
        #expect(profile.state == .disabled && profile.smdpID == H.smdp && profile.mnoID == H.mno && profile.profileType?.text == H.profileType)
        // Now the Operator's Profile like any other: enable it over ES4; the card switches.
        let enabled = h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "en-\(card)", eid: h.eid(card), iccid: iccid),
                                           context: RequestContext(caller: H.mno))
        #expect(enabled.functionExecutionStatus == .success)
        #expect(h.fleet.card(at: card).isdp(aid)?.lifeCycle == .enabled)
        // The SM-DP now relays its Operator's notifications: ProfileEnabled of an SM-DP-downloaded
        // Profile goes to the owner over ES2 (through this SM-DP) — but the owner asked, so none.
        #expect(try h.outbox().filter { $0.messageType.hasPrefix("ES3-") }.allSatisfy { $0.smdp == H.smdp })
    }

    @Test("The SM-SR's ES5 traffic of a download and an enable, captured by CapturingTransport, traces with every check passing")
    func capturedAndTraced() throws {
        final class Lines: CaptureSink, @unchecked Sendable {
            let lines = Mutex<[String]>([])
            func write(_ line: String) { lines.withLock { $0.append(line) } }
        }
        let sink = Lines()
        let h = try H(capture: sink)
        defer { h.cleanUp() }
        try h.register(card: 1)
        let package = try Self.fixture()
        let ephemeral = try ECPrivateKey(generatingOn: .p256)
        let (_, iccid) = try Self.download(h, card: 1, package: package, ephemeral: ephemeral)
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "en", eid: h.eid(1), iccid: iccid), context: RequestContext(caller: H.mno))
            .functionExecutionStatus == .success)
        let capture = Array(sink.lines.withLock { $0 }.joined(separator: "\n").utf8)
        let exchanges = try TraceCapture.parse(capture)
        #expect(exchanges.allSatisfy { $0.eid == h.eid(1) })
        var keyring = TraceKeyring()
        keyring.ciPublicKey = h.pki.ci.publicKey
        keyring.ecasdPublicKey = try h.fleet.identity(at: 1).ecasdKey().publicKey
        keyring.ephemeralPrivateKey = ephemeral
        keyring.scp80 = [h.fleet.identity(at: 1).scp80KeySet]
        let report = Tracer.run(exchanges, keyring: keyring)
        #expect(report.summary.failed == 0, "\(report.text())")
        let passed = Set(report.entries.flatMap(\.checks).filter { $0.outcome == .passed }.map(\.name))
        for name in ["CERT.DP.ECDSA signed by the CI", "receipt", "card cryptogram", "host cryptogram", "C-MAC", "R-MAC", "profile installed", "CC", "PoR CC"] {
            #expect(passed.contains(name), "\(name) passed")
        }
        #expect(report.profilePackage == package)
    }

    @Test("TS.48 download over ES3 with scripts run in process; refusals of the download functions")
    func inProcess() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 1)
        let package = try Self.fixture()
        let (aid, iccid) = try Self.download(h, card: 1, package: package)
        try Self.checkInstalled(h, card: 1, aid: aid, iccid: iccid, package: package)
        let smdp = RequestContext(caller: H.smdp)
        // The same ICCID again; too much memory; another SM-DP's ISD-P; a completed download twice.
        #expect(h.smsr.createISDP(ES3.CreateISDPRequest(functionCallIdentifier: "r1", eid: h.eid(1), iccid: iccid, mnoID: H.mno, requiredMemory: 1), context: smdp)
            .functionExecutionStatus.codes == "8.2.1/3.3")
        #expect(h.smsr.createISDP(ES3.CreateISDPRequest(functionCallIdentifier: "r2", eid: h.eid(1), iccid: H.iccidC, mnoID: H.mno, requiredMemory: 10_000_000),
                                  context: smdp).functionExecutionStatus.codes == "8.1/4.8")
        try h.smsr.register(Party(oid: "1.3.6.1.4.1.99999.3.2", role: .smdp))
        #expect(h.smsr.sendData(ES3.SendDataRequest(functionCallIdentifier: "r3", eid: h.eid(1), sdAID: aid, data: [0x22, 0x05, 0x80, 0xCA, 0x00, 0x5A, 0x00]),
                                context: RequestContext(caller: "1.3.6.1.4.1.99999.3.2")).functionExecutionStatus.codes == "8.4/1.2")
        #expect(h.smsr.profileDownloadCompleted(ES3.ProfileDownloadCompletedRequest(functionCallIdentifier: "r4", eid: h.eid(1), iccid: iccid), context: smdp)
            .functionExecutionStatus.codes == "8.2.1/3.5")
        // Data that is no script at all.
        #expect(h.smsr.sendData(ES3.SendDataRequest(functionCallIdentifier: "r5", eid: h.eid(1), sdAID: aid, data: [0xFF]), context: smdp)
            .functionExecutionStatus.codes == "8.4/2.1")
    }

    @Test("The download lease: CreateISDP holds the eUICC for life-cycle changes until the download ends, is cleaned up or expires")
    func lease() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        let eid = h.eid(0)
        let smdp = RequestContext(caller: H.smdp)
        let mno = RequestContext(caller: H.mno)
        let created = h.smsr.createISDP(ES3.CreateISDPRequest(functionCallIdentifier: "c1", eid: eid, iccid: H.iccidC, mnoID: H.mno, requiredMemory: 1_000), context: smdp)
        #expect(created.functionExecutionStatus == .success)
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e1", eid: eid, iccid: H.iccidB), context: mno).functionExecutionStatus.codes == "8.1/4.4")
        // The SM-DP's clean-up of its own ISD-P passes, and releases the eUICC.
        #expect(h.smsr.deleteISDP(ES3.DeleteISDPRequest(functionCallIdentifier: "d1", eid: eid, iccid: H.iccidC), context: smdp).functionExecutionStatus == .success)
        #expect(h.fleet.card(at: 0).isdp(created.isdPAID) == nil)
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e2", eid: eid, iccid: H.iccidB), context: mno).functionExecutionStatus == .success)
        // An abandoned download holds the eUICC only until its lease expires.
        #expect(h.smsr.createISDP(ES3.CreateISDPRequest(functionCallIdentifier: "c2", eid: eid, iccid: H.iccidC, mnoID: H.mno, requiredMemory: 1_000), context: smdp)
            .functionExecutionStatus == .success)
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e3", eid: eid, iccid: H.iccidA), context: mno).functionExecutionStatus.codes == "8.1/4.4")
        h.clock.advance(Int64(h.smsr.configuration.downloadLeaseSeconds) + 1)
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e4", eid: eid, iccid: H.iccidA), context: mno).functionExecutionStatus == .success)
    }

    @Test("Scripts over SMS: SCP03t segmented into SCP80 packets to the ISD-P's TAR; an item too big for one SMS is 8.1/3.2")
    func overSMS() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 1)
        var configuration = h.smsr.configuration
        configuration.scriptRoute = .sms
        let sms = try SMSR(configuration: configuration, trust: h.smsr.trust, store: h.store, policy: h.smsr.policy,
                           transport: InProcessTransport(fleet: h.fleet), clock: h.clock)
        // Key establishment's certificate does not fit an SMS (no concatenation): refused, not cut.
        let created = sms.createISDP(ES3.CreateISDPRequest(functionCallIdentifier: "c", eid: h.eid(1), iccid: H.iccidC, mnoID: H.mno, requiredMemory: 30_000),
                                     context: RequestContext(caller: H.smdp))
        #expect(created.functionExecutionStatus == .success)
        let host = try KeyEstablishmentHost(certificate: h.pki.smdp.certificate!, signingKey: h.pki.smdp.key!,
                                            ecasdPublicKey: try h.fleet.identity(at: 1).ecasdKey().publicKey)
        let big = sms.sendData(ES3.SendDataRequest(functionCallIdentifier: "s", eid: h.eid(1), sdAID: created.isdPAID,
                                                   data: HexBinary(TLV(0x22, CommandAPDU.storeData(p1: 0x89, data: host.certificateData(), le: 0).bytes).encoded)),
                               context: RequestContext(caller: H.smdp))
        #expect(big.functionExecutionStatus.codes == "8.1/3.2")
        _ = sms.deleteISDP(ES3.DeleteISDPRequest(functionCallIdentifier: "d", eid: h.eid(1), iccid: H.iccidC), context: RequestContext(caller: H.smdp))
        // A whole download: key establishment in process, the SCP03t stream in 48-byte segments over SMS.
        let package = try Self.fixture()
        let counter = h.fleet.card(at: 1).scp80Counter
        let (aid, iccid) = try Self.download(h, card: 1, package: package, segment: 48, streamVia: sms)
        #expect(h.fleet.card(at: 1).scp80Counter.value > counter.value + UInt64(package.count / 48), "one SMS per segment at least")
        try Self.checkInstalled(h, card: 1, aid: aid, iccid: iccid, package: package)
    }

    @Test("TS.48 download over SCP81: push over SCP80, PSK-TLS admin session per script, 204")
    func overSCP81() throws {
        var h = try H()
        defer { h.cleanUp() }
        try h.register(card: 1)
        // The same SM-SR with an admin server; the in-process cards run their agents when pushed.
        let server = try SCP81AdminServer(timeout: 10)
        var configuration = h.smsr.configuration
        configuration.acceptClearISDRKeys = true
        h.smsr = try SMSR(configuration: configuration, trust: h.smsr.trust, store: h.store, policy: h.smsr.policy,
                          transport: InProcessTransport(fleet: h.fleet, adminAgent: try PSKTLSContext(role: .client)), adminServer: server, clock: h.clock)
        let package = try Self.fixture()
        let (aid, iccid) = try Self.download(h, card: 1, package: package)
        // Key establishment (2) + SCP03t open (1) + one per 1020-byte segment, each its own session.
        #expect(server.sessionsServed == 3 + (package.count + 1019) / 1020)
        try Self.checkInstalled(h, card: 1, aid: aid, iccid: iccid, package: package)
    }
}
