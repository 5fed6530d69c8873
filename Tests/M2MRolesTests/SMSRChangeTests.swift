// SM-SR change (issue #9): two SM-SRs in one process over ES7 (InProcessES7), one emulated fleet
// both reach only through bytes — SCP80 packets with their own keys, and admin scripts in process
// for the key establishment (as SCP81 would carry them); the eUICC's ISD-R key sets change on the card.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MPolicy
import M2MRoles
import M2MSOAP
import M2MStorage
import M2MTestKit
import M2MTransport
import M2MWire
import M2MXML
import Synchronization
import Testing

/// An ES7 link that can fail like a network: a response carrying a simulated crash becomes "no
/// answer", `before` runs before a request leaves (tests move the clock there), `tamper` edits a response.
struct TestLink: ES7Endpoint {
    let inner: InProcessES7
    var before: @Sendable (String) -> Void = { _ in }
    var tamper: @Sendable (any SGP02Response) -> any SGP02Response = { $0 }

    func call<Request: SGP02Request>(_ request: Request) throws(ES7TransportError) -> Request.Response {
        before(Request.descriptor.elementName)
        let response = try inner.call(request)
        if response.functionExecutionStatus.statusCodeData?.message?.hasPrefix("simulated crash") == true {
            throw ES7TransportError("the peer died (\(response.functionExecutionStatus))")
        }
        return tamper(response) as! Request.Response
    }
}

/// The fleet as SM-SR2 reaches it, with a switch that makes the card unreachable (SMS and scripts).
final class Switch: Sendable {
    let down = Atomic<Bool>(false)
}

struct SwitchableTransport: EUICCTransport {
    let inner: InProcessTransport
    let switchOff: Switch
    init(fleet: Fleet, switchOff: Switch) {
        inner = InProcessTransport(fleet: fleet)
        self.switchOff = switchOff
    }
    func check() throws(TransportError) { if switchOff.down.load(ordering: .relaxed) { throw TransportError(.unreachable, "the card is out of coverage") } }
    func deliverSMS(_ userData: [UInt8], to eid: EID) throws(TransportError) -> [UInt8]? { try check(); return try inner.deliverSMS(userData, to: eid) }
    func moMessages(from eid: EID) throws(TransportError) -> [[UInt8]] { try check(); return try inner.moMessages(from: eid) }
    func runScript(_ script: [UInt8], target: ScriptTarget, on eid: EID) throws(TransportError) -> [UInt8] {
        try check()
        return try inner.runScript(script, target: target, on: eid)
    }
    var runsScripts: Bool { true }
}

/// SM-SR1 (the harness's, current) and SM-SR2 (new) on the same fleet, clock and PKI.
struct ChangeHarness {
    static let smsr2ID: OID = "1.3.6.1.4.1.99999.2.2"
    var one: SMSRHarness
    var two: SMSR
    var store2: SQLiteSMSRStore
    let dbPath2: String
    /// Hooks for the links (set before `link()`).
    var toOne = TestLink(inner: InProcessES7(smsr: PlaceholderES7(), caller: smsr2ID))
    var toTwo = TestLink(inner: InProcessES7(smsr: PlaceholderES7(), caller: SMSRHarness.smsrID))

    init(faults1: SMSRFaults = SMSRFaults(), faults2: SMSRFaults = SMSRFaults(), curve: Curve = .p256, credential: GPCredential? = nil) throws {
        one = try SMSRHarness(cards: 2, faults: faults1, curve: curve)
        dbPath2 = one.directory.appendingPathComponent("smsr2.sqlite").path
        store2 = try SQLiteSMSRStore(path: dbPath2, codec: XMLDocumentCodec())
        two = try Self.makeSMSR2(one: one, store: store2, faults: faults2, credential: credential, coverage: coverage)
        for party in [Party(oid: SMSRHarness.mno, role: .mno), Party(oid: SMSRHarness.otherMNO, role: .mno), Party(oid: SMSRHarness.smdp, role: .smdp),
                      Party(oid: SMSRHarness.eumID, role: .eum), Party(oid: SMSRHarness.smsrID, role: .smsr)] {
            try two.register(party)
        }
        try one.smsr.register(Party(oid: Self.smsr2ID, role: .smsr))
        link()
    }

    /// SM-SR2's card transport is down while `coverage.down` is true.
    let coverage = Switch()

    static func makeSMSR2(one: SMSRHarness, store: SQLiteSMSRStore, faults: SMSRFaults, credential: GPCredential?, coverage: Switch) throws -> SMSR {
        var configuration = SMSRConfiguration(smsrID: smsr2ID, storageKey: SecureBytes(SecureRandom.bytes(32)))
        configuration.credentials = [credential ?? GPCredential(certificate: one.pki.smsr2.certificate!, key: one.pki.smsr2.key!)]
        let loader = PolicyLoader(pluginPaths: [SMSRHarness.repository.appendingPathComponent("plugins").path])
        let set = try loader.loadSet(bundles: PolicyLoader.bundleDirectories(under: SMSRHarness.repository.appendingPathComponent("policies").path))
        return try SMSR(configuration: configuration, trust: SMSRTrust(ci: one.pki.ci, eums: [SMSRHarness.eumID: one.pki.eum]), store: store,
                        policy: try PolicyEngine(set: set, clock: one.clock, decisionLog: NoDecisionLog()),
                        transport: SwitchableTransport(fleet: one.fleet, switchOff: coverage), clock: one.clock, faults: faults)
    }

    /// (Re)connects the two SM-SRs through the links.
    mutating func link() {
        let a = TestLink(inner: InProcessES7(smsr: one.smsr, caller: Self.smsr2ID), before: toOne.before, tamper: toOne.tamper)
        let b = TestLink(inner: InProcessES7(smsr: two, caller: SMSRHarness.smsrID), before: toTwo.before, tamper: toTwo.tamper)
        two.connect(smsr: SMSRHarness.smsrID, endpoint: a)
        one.smsr.connect(smsr: Self.smsr2ID, endpoint: b)
    }

    /// SM-SR2 as a new process on its database (the storage key is sealed in: kept by reopening the same object's key).
    mutating func restartTwo(faults: SMSRFaults = SMSRFaults()) throws {
        let key = two.configuration.storageKey
        store2.database.close()
        store2 = try SQLiteSMSRStore(path: dbPath2, codec: XMLDocumentCodec())
        var configuration = two.configuration
        configuration.storageKey = key
        let loader = PolicyLoader(pluginPaths: [SMSRHarness.repository.appendingPathComponent("plugins").path])
        let set = try loader.loadSet(bundles: PolicyLoader.bundleDirectories(under: SMSRHarness.repository.appendingPathComponent("policies").path))
        two = try SMSR(configuration: configuration, trust: two.trust, store: store2, policy: try PolicyEngine(set: set, clock: one.clock, decisionLog: NoDecisionLog()),
                       transport: SwitchableTransport(fleet: one.fleet, switchOff: coverage), clock: one.clock, faults: faults)
        link()
    }

    mutating func restartOne(faults: SMSRFaults = SMSRFaults()) throws {
        try one.restart(faults: faults)
        try one.smsr.register(Party(oid: Self.smsr2ID, role: .smsr))
        link()
    }

    var eid: EID { one.eid(0) }
    static let caller = RequestContext(caller: SMSRHarness.mno)

    /// Card 0 registered at SM-SR1: A (enabled, fall-back) of the MNO, B (disabled) of the other MNO through the SM-DP.
    func registerCard() throws {
        var eis = try one.eis(card: 0)
        eis.profiles[1].mnoID = SMSRHarness.otherMNO
        eis.profiles[1].smdpID = SMSRHarness.smdp
        let response = one.smsr.registerEIS(ES1.RegisterEISRequest(functionCallIdentifier: "reg", eis: eis), context: RequestContext(caller: SMSRHarness.eumID))
        #expect(response.functionExecutionStatus == .success)
    }

    func prepare(_ fci: String = "prep", validity: Int? = nil) -> ES4.PrepareSMSRChangeResponse {
        two.prepareSMSRChange(ES4.PrepareSMSRChangeRequest(functionCallIdentifier: fci, validityPeriod: validity, eid: eid, currentSMSRID: SMSRHarness.smsrID),
                              context: Self.caller)
    }

    func change(_ fci: String = "change", validity: Int? = nil) -> ES4.SMSRChangeResponse {
        one.smsr.smsrChange(ES4.SMSRChangeRequest(functionCallIdentifier: fci, validityPeriod: validity, eid: eid, targetSMSRID: Self.smsr2ID),
                            context: Self.caller)
    }

    func enable(at smsr: SMSR, _ iccid: ICCID, fci: String) -> FunctionExecutionStatus {
        smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: fci, eid: eid, iccid: iccid), context: Self.caller).functionExecutionStatus
    }

    /// Exactly one SM-SR manages the card: `manager` has its EIS and reaches the card (an audit reads
    /// it over SCP80 with its keys); the other has no EIS or is refused by the card.
    func expectManaged(by manager: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let (yes, no) = manager == 1 ? (one.smsr, two) : (two, one.smsr)
        #expect(try yes.store.read { try $0.eis(eid) } != nil, sourceLocation: sourceLocation)
        let audit = yes.auditEIS(ES4.AuditEISRequest(functionCallIdentifier: "audit-\(UUID().uuidString)", eid: eid), context: Self.caller)
        #expect(audit.functionExecutionStatus.status == .executedSuccess, "\(audit.functionExecutionStatus)", sourceLocation: sourceLocation)
        let other = no.auditEIS(ES4.AuditEISRequest(functionCallIdentifier: "audit-\(UUID().uuidString)", eid: eid), context: Self.caller)
        #expect(other.functionExecutionStatus.status == .failed, "\(other.functionExecutionStatus)", sourceLocation: sourceLocation)
        // The card: SM-SR1's set 1 still there (beside, at most, an orphan nobody knows) when SM-SR1
        // manages it; SM-SR2's set 2 alone when SM-SR2 does.
        let versions = one.fleet.card(at: 0).activeSCP80KeySets.map(\.keyVersion)
        #expect(manager == 1 ? versions.first == 1 : versions == [2], "card key sets \(versions)", sourceLocation: sourceLocation)
    }

    func cleanUp() { one.cleanUp() }
}

/// Stands in until `link()` wires the real SM-SRs.
struct PlaceholderES7: ES7Provider {
    func handoverEUICC(_ request: ES7.HandoverEUICCRequest, context: RequestContext) -> ES7.HandoverEUICCResponse {
        ES7.HandoverEUICCResponse(functionExecutionStatus: .failed(.smsr, .unknown))
    }
    func authenticateSMSR(_ request: ES7.AuthenticateSMSRRequest, context: RequestContext) -> ES7.AuthenticateSMSRResponse {
        ES7.AuthenticateSMSRResponse(functionExecutionStatus: .failed(.smsr, .unknown), randomChallenge: [])
    }
    func createAdditionalKeySet(_ request: ES7.CreateAdditionalKeySetRequest, context: RequestContext) -> ES7.CreateAdditionalKeySetResponse {
        ES7.CreateAdditionalKeySetResponse(functionExecutionStatus: .failed(.smsr, .unknown), derivationRandom: [], receipt: [])
    }
}

@Suite("SM-SR change")
struct SMSRChangeTests {
    @Test("the whole change: keys on the card, EIS moved, the old SM-SR refused, everyone notified", arguments: [Curve.p256, .brainpoolP256r1])
    func change(curve: Curve) throws {
        let h = try ChangeHarness(curve: curve)
        defer { h.cleanUp() }
        try h.registerCard()
        try h.expectManaged(by: 1)
        #expect(h.prepare().functionExecutionStatus == .success)
        let response = h.change()
        #expect(response.functionExecutionStatus == .success, "\(response.functionExecutionStatus)")
        // The card: the new SM-SR's SCP80 set 2 and PSK set 41; the factory sets deleted.
        let card = h.one.fleet.card(at: 0)
        #expect(card.isdrKeyVersions.sorted() == [0x02, 0x41])
        #expect(card.deletedFactoryKeySets == [.scp80, .scp81])
        // The EIS moved: SM-SR2 has it (Smsr-id its own, same Profiles), SM-SR1 none.
        let moved = try #require(try h.two.store.read { try $0.eis(h.eid) }?.eis)
        #expect(moved.smsrID == ChangeHarness.smsr2ID)
        #expect(moved.profiles.map(\.iccid) == [SMSRHarness.iccidA, SMSRHarness.iccidB])
        #expect(try h.one.store.read { try $0.eis(h.eid) } == nil)
        try h.expectManaged(by: 2)
        // The new SM-SR manages the card: enable, disable (fall-back), delete.
        #expect(h.two.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: h.eid, iccid: SMSRHarness.iccidB),
                                    context: RequestContext(caller: SMSRHarness.otherMNO)).functionExecutionStatus == .success)
        #expect(h.one.fleet.card(at: 0).enabledISDP?.iccid == SMSRHarness.iccidB)
        let other = RequestContext(caller: SMSRHarness.otherMNO)
        #expect(h.two.disableProfile(ES4.DisableProfileRequest(functionCallIdentifier: "d", eid: h.eid, iccid: SMSRHarness.iccidB), context: other)
            .functionExecutionStatus == .success)
        #expect(h.one.fleet.card(at: 0).enabledISDP?.iccid == SMSRHarness.iccidA)  // the Fall-Back Profile
        #expect(h.two.deleteProfile(ES4.DeleteProfileRequest(functionCallIdentifier: "x", eid: h.eid, iccid: SMSRHarness.iccidB), context: other)
            .functionExecutionStatus == .success)
        #expect(h.one.fleet.card(at: 0).isdp(SMSRHarness.b) == nil)
        // The old SM-SR refuses (no EIS: 8.1.1/3.9) and could not reach the card anyway.
        #expect(h.enable(at: h.one.smsr, SMSRHarness.iccidB, fci: "old").codes == "8.1.1/3.9")
        // A repeated SMSRChange gets the stored answer.
        #expect(h.change().functionExecutionStatus == .success)
        // HandleSMSRChangeNotification: the MNO over ES4, the other MNO over ES3 through its SM-DP,
        // each with its own Profiles only.
        let notes = try h.two.store.read { try $0.outbox(states: [.pending]) }.filter { $0.messageType.hasSuffix("HandleSMSRChangeNotification") }
        #expect(notes.count == 2)
        let es4 = try #require(notes.first { $0.via == "ES4" })
        #expect(es4.recipient == SMSRHarness.mno)
        let es4Message = try ES4.HandleSMSRChangeNotification(xmlElement: XMLReader.parse(es4.body, knownNamespaces: Namespace.known))
        #expect(es4Message.eis.profiles.map(\.iccid) == [SMSRHarness.iccidA])
        #expect(es4Message.eis.smsrID == ChangeHarness.smsr2ID)
        let es3 = try #require(notes.first { $0.via == "ES2" })
        #expect(es3.recipient == SMSRHarness.otherMNO && es3.smdp == SMSRHarness.smdp)
        let es3Message = try ES3.HandleSMSRChangeNotification(xmlElement: XMLReader.parse(es3.body, knownNamespaces: Namespace.known))
        #expect(es3Message.eis.profiles.map(\.iccid) == [SMSRHarness.iccidB] && es3Message.mnoID == SMSRHarness.otherMNO)
        // The card's key sets survive the fleet's compact record.
        let reread = try EUICC(identity: card.identity, ciPublicKey: h.one.pki.ci.publicKey, record: card.encodedState())
        #expect(reread.isdrKeyVersions.sorted() == [0x02, 0x41] && reread.encodedState() == card.encodedState())
    }

    @Test("a second change moves the card on again (key versions 1 and 40 are free again)")
    func changeBack() throws {
        let h = try ChangeHarness()
        defer { h.cleanUp() }
        try h.registerCard()
        #expect(h.prepare().functionExecutionStatus == .success)
        #expect(h.change().functionExecutionStatus == .success)
        // SM-SR1 (with a CERT.SR now) takes the card back from SM-SR2.
        var configuration = h.one.smsr.configuration
        configuration.credentials = [GPCredential(certificate: h.one.pki.smsr.certificate!, key: h.one.pki.smsr.key!)]
        let back = try SMSR(configuration: configuration, trust: h.one.smsr.trust, store: h.one.store, policy: h.one.smsr.policy,
                            transport: h.one.smsr.transport, clock: h.one.clock)
        back.connect(smsr: ChangeHarness.smsr2ID, endpoint: InProcessES7(smsr: h.two, caller: SMSRHarness.smsrID))
        h.two.connect(smsr: SMSRHarness.smsrID, endpoint: InProcessES7(smsr: back, caller: ChangeHarness.smsr2ID))
        #expect(back.prepareSMSRChange(ES4.PrepareSMSRChangeRequest(functionCallIdentifier: "p2", eid: h.eid, currentSMSRID: ChangeHarness.smsr2ID),
                                       context: ChangeHarness.caller).functionExecutionStatus == .success)
        let response = h.two.smsrChange(ES4.SMSRChangeRequest(functionCallIdentifier: "c2", eid: h.eid, targetSMSRID: SMSRHarness.smsrID),
                                        context: ChangeHarness.caller)
        #expect(response.functionExecutionStatus == .success, "\(response.functionExecutionStatus)")
        #expect(h.one.fleet.card(at: 0).isdrKeyVersions.sorted() == [0x01, 0x40])
        #expect(try back.store.read { try $0.eis(h.eid) }?.eis.smsrID == SMSRHarness.smsrID)
        #expect(back.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: h.eid, iccid: SMSRHarness.iccidB),
                                   context: RequestContext(caller: SMSRHarness.otherMNO)).functionExecutionStatus == .success)
    }

    @Test("refusals before anything changes: not prepared, unknown target, a caller without a Profile there, already managed")
    func refusals() throws {
        let h = try ChangeHarness()
        defer { h.cleanUp() }
        try h.registerCard()
        // The new SM-SR was not prepared: it refuses the handover; the card stays.
        let unprepared = h.change("c1")
        #expect(unprepared.functionExecutionStatus.status == .failed && unprepared.functionExecutionStatus.codes == "8.7/3.8")
        #expect(h.one.fleet.card(at: 0).isdrKeyVersions.sorted() == [0x01, 0x40])
        try h.expectManaged(by: 1)
        // An unknown target SM-SR.
        let unknown = h.one.smsr.smsrChange(ES4.SMSRChangeRequest(functionCallIdentifier: "c2", eid: h.eid, targetSMSRID: "1.3.6.1.4.1.99999.2.9"),
                                             context: ChangeHarness.caller)
        #expect(unknown.functionExecutionStatus.codes == "8.7/3.9")
        // An Operator with no Profile there (the SP's caller is not even allowed).
        let other = h.one.smsr.smsrChange(ES4.SMSRChangeRequest(functionCallIdentifier: "c3", eid: h.eid, targetSMSRID: ChangeHarness.smsr2ID),
                                           context: RequestContext(caller: SMSRHarness.sp))
        #expect(other.functionExecutionStatus.codes == "1.1/1.2")
        // Prepare twice (by the same Operator) is fine; by another Operator meanwhile it is refused; a
        // prepare for an eUICC SM-SR2 already has is refused.
        #expect(h.prepare("p0").functionExecutionStatus == .success)
        #expect(h.prepare("p1").functionExecutionStatus == .success)
        #expect(h.two.prepareSMSRChange(ES4.PrepareSMSRChangeRequest(functionCallIdentifier: "p-other", eid: h.eid, currentSMSRID: SMSRHarness.smsrID),
                                        context: RequestContext(caller: SMSRHarness.otherMNO)).functionExecutionStatus.codes == "8.1/4.4")
        #expect(h.change("c4").functionExecutionStatus == .success)
        #expect(h.prepare("p2").functionExecutionStatus.codes == "8.1.1/3.3")
    }

    @Test("the card rejects a CERT.SR.ECDSA from another CI: FAILED, the card stays with the current SM-SR")
    func cardRejectsCertificate() throws {
        let rogueCI = try ECPrivateKey(generatingOn: .p256)
        let key = try ECPrivateKey(generatingOn: .p256)
        let pki = try TestPKI.generate(curve: .p256)
        let certificate = try GPCertificateVerifier.sign(
            GPCertificate(serialNumber: [9], caIdentifier: [1, 2, 3, 4, 5, 6, 7, 8], subjectIdentifier: Array("rogue".utf8), keyUsage: [0x00, 0x82],
                          expirationDate: pki.smsr2.certificate!.expirationDate, discretionaryData: [TLV(0xC8, [0x02])],
                          publicKeyPoint: key.publicKey.x962Representation, keyParameterReference: Curve.p256.keyParameterReference),
            with: rogueCI)
        let h = try ChangeHarness(credential: GPCredential(certificate: certificate, key: key))
        defer { h.cleanUp() }
        try h.registerCard()
        #expect(h.prepare().functionExecutionStatus == .success)
        let response = h.change()
        #expect(response.functionExecutionStatus.status == .failed && response.functionExecutionStatus.codes == "8.7/6.1", "\(response.functionExecutionStatus)")
        #expect(h.one.fleet.card(at: 0).isdrKeyVersions.sorted() == [0x01, 0x40])
        try h.expectManaged(by: 1)
        #expect(h.enable(at: h.one.smsr, SMSRHarness.iccidB, fci: "after").status == .failed)  // B is the other MNO's: refused by rights, not by a lock
        #expect(h.one.smsr.disableProfile(ES4.DisableProfileRequest(functionCallIdentifier: "d", eid: h.eid, iccid: SMSRHarness.iccidA),
                                          context: ChangeHarness.caller).functionExecutionStatus.codes != "8.1/4.4")
    }

    @Test("a receipt that does not match: FAILED before the commit point; a later attempt succeeds")
    func receiptMismatch() throws {
        var h = try ChangeHarness()
        defer { h.cleanUp() }
        h.toOne.tamper = { response in
            guard var keySet = response as? ES7.CreateAdditionalKeySetResponse else { return response }
            var receipt = keySet.receipt.bytes
            receipt[0] ^= 0x01
            keySet.receipt = HexBinary(receipt)
            return keySet
        }
        h.link()
        try h.registerCard()
        #expect(h.prepare().functionExecutionStatus == .success)
        let response = h.change()
        #expect(response.functionExecutionStatus.codes == "8.3/6.1", "\(response.functionExecutionStatus)")
        try h.expectManaged(by: 1)
        #expect(try h.two.store.read { try $0.eis(h.eid) } == nil)
        // The card kept the old key sets (and an orphan set 2 nobody can use): a new attempt replaces it.
        #expect(h.one.fleet.card(at: 0).isdrKeyVersions.sorted() == [0x01, 0x02, 0x40])
        h.toOne.tamper = { $0 }
        h.link()
        #expect(h.prepare("p2").functionExecutionStatus == .success)
        #expect(h.change("c2").functionExecutionStatus == .success)
        try h.expectManaged(by: 2)
        #expect(h.one.fleet.card(at: 0).isdrKeyVersions.sorted() == [0x02, 0x41])
    }

    @Test("the ValidityPeriod ends at each step: EXPIRED before the commit point, success after it",
          arguments: ["ES7-HandoverEUICCRequest", "ES7-AuthenticateSMSRRequest", "ES7-CreateAdditionalKeySetRequest", "after"])
    func expiry(step: String) throws {
        var h = try ChangeHarness()
        defer { h.cleanUp() }
        let clock = h.one.clock
        if step == "after" {
            // Time passes once the receipt is verified: the change still completes.
            h.toOne.tamper = { response in
                if response is ES7.CreateAdditionalKeySetResponse { clock.advance(600) }
                return response
            }
        } else {
            h.toTwo.before = { name in if name == step { clock.advance(600) } }
            h.toOne.before = { name in if name == step { clock.advance(600) } }
        }
        h.link()
        try h.registerCard()
        #expect(h.prepare().functionExecutionStatus == .success)
        let response = h.change(validity: 300)
        if step == "after" {
            #expect(response.functionExecutionStatus == .success, "\(response.functionExecutionStatus)")
            try h.expectManaged(by: 2)
        } else {
            #expect(response.functionExecutionStatus.status == .expired, "\(step): \(response.functionExecutionStatus)")
            try h.expectManaged(by: 1)
            #expect(h.one.fleet.card(at: 0).deletedFactoryKeySets.isEmpty)
        }
    }

    @Test("the current SM-SR killed before the handover: recovery hands the card over; the Operator's retry gets the answer")
    func currentKilled() throws {
        var h = try ChangeHarness(faults1: SMSRFaults(crashAt: .changeBeforeHandover))
        defer { h.cleanUp() }
        try h.registerCard()
        #expect(h.prepare().functionExecutionStatus == .success)
        let died = h.change()
        #expect(died.functionExecutionStatus.status == .failed)
        // Meanwhile the eUICC is locked at SM-SR1.
        try h.restartOne()
        #expect(h.one.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "busy", eid: h.eid, iccid: SMSRHarness.iccidB),
                                        context: RequestContext(caller: SMSRHarness.otherMNO)).functionExecutionStatus.codes == "8.1/4.4")
        #expect(try h.one.smsr.recover() == 1)
        try h.expectManaged(by: 2)
        #expect(h.change().functionExecutionStatus == .success)
    }

    @Test("the new SM-SR killed before the commit point: the change fails and the current SM-SR keeps the card")
    func newKilledBeforeCommit() throws {
        var h = try ChangeHarness(faults2: SMSRFaults(crashAt: .changeBeforeCommit))
        defer { h.cleanUp() }
        try h.registerCard()
        #expect(h.prepare().functionExecutionStatus == .success)
        let unknown = h.change()
        #expect(unknown.functionExecutionStatus.codes == "1.2/4.2")  // not known yet: retry later
        try h.restartTwo()
        #expect(try h.two.recover() == 1)
        try h.restartOne()
        #expect(try h.one.smsr.recover() == 1)
        let answer = h.change()
        #expect(answer.functionExecutionStatus.status == .failed && answer.functionExecutionStatus.codes == "8.7/4.2", "\(answer.functionExecutionStatus)")
        try h.expectManaged(by: 1)
        #expect(try h.two.store.read { try $0.eis(h.eid) } == nil)
    }

    @Test("the new SM-SR killed after the commit point: recovery finalises, the current SM-SR lets go")
    func newKilledAfterCommit() throws {
        var h = try ChangeHarness(faults2: SMSRFaults(crashAt: .changeAfterCommit))
        defer { h.cleanUp() }
        try h.registerCard()
        #expect(h.prepare().functionExecutionStatus == .success)
        #expect(h.change(validity: 300).functionExecutionStatus.codes == "1.2/4.2")
        // The card has both key sets; SM-SR2 already holds the EIS; SM-SR1 keeps the eUICC locked, and
        // does not let the EIS it handed over change meanwhile.
        #expect(h.one.smsr.updatePolicyRules(ES4.UpdatePolicyRulesRequest(functionCallIdentifier: "pol2", eid: h.eid, iccid: SMSRHarness.iccidA, pol2: POL2(rules: [])),
                                             context: ChangeHarness.caller).functionExecutionStatus.codes == "8.1/4.4")
        // Both come back after the ValidityPeriod: the request had been sent, so SM-SR1 does not expire
        // it on its own — it asks SM-SR2, which committed.
        h.one.clock.advance(900)
        #expect(h.one.fleet.card(at: 0).isdrKeyVersions.sorted() == [0x01, 0x02, 0x40])
        #expect(h.one.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "busy", eid: h.eid, iccid: SMSRHarness.iccidB),
                                        context: RequestContext(caller: SMSRHarness.otherMNO)).functionExecutionStatus.codes == "8.1/4.4")
        try h.restartTwo()
        #expect(try h.two.recover() == 1)
        #expect(h.one.fleet.card(at: 0).isdrKeyVersions.sorted() == [0x02, 0x41])
        #expect(try h.one.smsr.recover() == 1)
        try h.expectManaged(by: 2)
        #expect(h.change(validity: 300).functionExecutionStatus == .success)
    }

    @Test("an Operator's Lua allow-list refuses the change on the current and on the new SM-SR")
    func luaAllowList() throws {
        let h = try ChangeHarness()
        defer { h.cleanUp() }
        // A bundle for the test MNO with the example policy and an allow-list without SM-SR2 / SM-SR1.
        let bundles = h.one.directory.appendingPathComponent("policies")
        let own = bundles.appendingPathComponent("mno")
        try FileManager.default.createDirectory(at: own, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: SMSRHarness.repository.appendingPathComponent("policies/example-operator/smsr_change.lua"),
                                         to: own.appendingPathComponent("smsr_change.lua"))
        try """
            return {
              name = "mno", version = "1.0.0", operator = "\(SMSRHarness.mno.text)",
              on_error = { pol2 = "fail-closed", routing = "fail-open", onc = "fail-open" },
              plugins = { "sgp02-pol2", "notification-router", "onc-filter" },
              policies = { "smsr_change.lua" },
              conf = { smsr_allow_list = { "1.3.6.1.4.1.99999.2.7" } },
            }
            """.write(to: own.appendingPathComponent("bundle.lua"), atomically: true, encoding: .utf8)
        let loader = PolicyLoader(pluginPaths: [SMSRHarness.repository.appendingPathComponent("plugins").path])
        for smsr in [h.one.smsr, h.two] { try smsr.policy.reload(directory: own.path, loader: loader) }
        try h.registerCard()
        let prepared = h.prepare()
        #expect(prepared.functionExecutionStatus.codes == "8.7/1.2", "\(prepared.functionExecutionStatus)")
        let changed = h.change()
        #expect(changed.functionExecutionStatus.codes == "8.7/1.2", "\(changed.functionExecutionStatus)")
        try h.expectManaged(by: 1)
    }

    @Test("FinaliseISDRhandover fails after the commit point: EXECUTED_WITHWARNING, and still exactly one SM-SR manages the card")
    func finaliseFails() throws {
        var h = try ChangeHarness()
        defer { h.cleanUp() }
        let coverage = h.coverage
        // The card leaves SM-SR2's coverage just as the receipt comes back.
        h.toOne.tamper = { response in
            if response is ES7.CreateAdditionalKeySetResponse { coverage.down.store(true, ordering: .relaxed) }
            return response
        }
        h.link()
        try h.registerCard()
        #expect(h.prepare().functionExecutionStatus == .success)
        let response = h.change()
        #expect(response.functionExecutionStatus.status == .executedWithWarning && response.functionExecutionStatus.codes == "8.3/4.2",
                "\(response.functionExecutionStatus)")
        // Both key sets are on the card; SM-SR1 gave up the eUICC (and its keys) all the same.
        #expect(h.one.fleet.card(at: 0).isdrKeyVersions.sorted() == [0x01, 0x02, 0x40])
        #expect(try h.one.store.read { try $0.eis(h.eid) } == nil)
        // SM-SR1 cannot manage it (its keys went with its copy of the eUICC); SM-SR2 tries the
        // finalisation again once the card is back, and the card then takes SM-SR2's keys only.
        #expect(try h.one.store.read { try $0.isdrKeys(h.eid) }.isEmpty)
        coverage.down.store(false, ordering: .relaxed)
        #expect(try h.two.retrySMSRChanges() == 1)
        #expect(h.one.fleet.card(at: 0).isdrKeyVersions.sorted() == [0x02, 0x41])
        try h.expectManaged(by: 2)
        #expect(h.change().functionExecutionStatus.status == .executedWithWarning)  // the answer given stays
    }

    @Test("only the SM-SR a change goes to may call ES7 for it; and it may not replace a key set in use")
    func es7Authorisation() throws {
        var h = try ChangeHarness(faults2: SMSRFaults(crashAt: .changeBeforeCommit))
        defer { h.cleanUp() }
        try h.registerCard()
        // A third SM-SR, registered at SM-SR1 as an SM-SR too, but not the change's target.
        let third: OID = "1.3.6.1.4.1.99999.2.3"
        try h.one.smsr.register(Party(oid: third, role: .smsr))
        #expect(h.prepare().functionExecutionStatus == .success)
        _ = h.change()  // SM-SR2 dies before the commit point: SM-SR1's change stays open
        let eis = try #require(try h.one.stored(0))
        let context = RequestContext(caller: third)
        #expect(h.one.smsr.authenticateSMSR(ES7.AuthenticateSMSRRequest(functionCallIdentifier: "a", eis: eis, smsrCertificate: [0x7F, 0x21, 0x00]),
                                            context: context).functionExecutionStatus.codes == "8.1.1/1.2")
        let keySet = ES7.CreateAdditionalKeySetRequest(functionCallIdentifier: "k", eid: h.eid, keyVersionNumber: 1, initialSequenceCounter: 0,
                                                       eccKeyLength: .ecc256, scenarioParameter: 9, hostID: [1], ephemeralPublicKey: [4], signature: [0])
        #expect(h.one.smsr.createAdditionalKeySet(keySet, context: context).functionExecutionStatus.codes == "8.1.1/1.2")
        #expect(h.one.smsr.handoverEUICC(ES7.HandoverEUICCRequest(functionCallIdentifier: "h", eis: eis), context: context)
            .functionExecutionStatus.codes == "8.7/3.8")
        // The target itself may not ask for a key version SM-SR1 uses (its EIS lists 1 and 40).
        #expect(h.one.smsr.createAdditionalKeySet(keySet, context: RequestContext(caller: ChangeHarness.smsr2ID)).functionExecutionStatus.codes == "8.3/3.3")
        // Nor can anyone replace, on the card, a key set packets were accepted under.
        var card = h.one.fleet.card(at: 0)
        #expect(card.isdrKeyVersions.sorted() == [0x01, 0x02, 0x40])  // SM-SR2's orphan set 2, never used
        let key = try h.one.fleet.identity(at: 0).ecasdKey()
        func establish(version: UInt8) throws -> StatusWord {
            var host = try KeyEstablishmentHost(certificate: h.one.pki.smsr2.certificate!, signingKey: h.one.pki.smsr2.key!, ecasdPublicKey: key.publicKey,
                                                parameters: KeyEstablishmentParameters(keyVersion: version))
            let first = card.process(CommandAPDU(cla: 0x80, ins: 0xE2, p1: 0x89, p2: 0x00, data: host.certificateData(), le: 0))
            let second = card.process(CommandAPDU(cla: 0x80, ins: 0xE2, p1: 0x89, p2: 0x01, data: try host.keyAgreementData(cardResponse: first.data), le: 0))
            return second.sw
        }
        #expect(try establish(version: 0x02) == .success)  // the orphan is replaced
        // Set 2 in use: a packet accepted under it moves its counter; then it can no longer be replaced.
        var peer = try SCP80Peer(keys: card.activeSCP80KeySets.first { $0.keyVersion == 2 }!, tar: .isdR, counter: SCP80Counter(exactly: 1)!)
        let command = try peer.secure(ExpandedCommandScript(commands: [CommandAPDU(cla: 0x80, ins: 0xCA, p1: 0x00, p2: 0x5A, data: [], le: 0)]))
        #expect(try card.receiveSMS(command.userData).status == .ok)
        #expect(try establish(version: 0x02) == .wrongData)
    }

    @Test("the ValidityPeriod ends before the first ES7 call leaves (SM-SR1 restarted late) or at the new SM-SR's own check")
    func expiryOnEachSide() throws {
        // SM-SR1 killed after locking, restarted after the ValidityPeriod: it never asked SM-SR2, so EXPIRED.
        var h = try ChangeHarness(faults1: SMSRFaults(crashAt: .changeBeforeHandover))
        defer { h.cleanUp() }
        try h.registerCard()
        #expect(h.prepare().functionExecutionStatus == .success)
        _ = h.change(validity: 300)
        h.one.clock.advance(600)
        try h.restartOne()
        #expect(try h.one.smsr.recover() == 1)
        #expect(h.change(validity: 300).functionExecutionStatus.status == .expired)
        try h.expectManaged(by: 1)
        // SM-SR2's own check: time passes between the random challenge and the key agreement.
        let clock = h.one.clock
        h.toOne.tamper = { response in
            if response is ES7.AuthenticateSMSRResponse { clock.advance(600) }
            return response
        }
        h.link()
        #expect(h.prepare("p2").functionExecutionStatus == .success)
        let response = h.change("c2", validity: 300)
        #expect(response.functionExecutionStatus.status == .expired, "\(response.functionExecutionStatus)")
        #expect(response.functionExecutionStatus.statusCodeData?.message?.contains("before the new key set was made") == true)
        try h.expectManaged(by: 1)
    }

    @Test("an Operator's ONC at the new SM-SR discards its HandleSMSRChangeNotification; the other Operator still gets its own")
    func oncFiltersTheNotification() throws {
        let h = try ChangeHarness()
        defer { h.cleanUp() }
        try h.registerCard()
        let onc = ONC(mnoID: SMSRHarness.mno, profileType: try String100(text: SMSRHarness.profileType), discardedNotifications: [.smsrChange])
        #expect(h.two.setONC(ES4A.SetONCRequest(functionCallIdentifier: "onc", onc: onc), context: ChangeHarness.caller).functionExecutionStatus == .success)
        #expect(h.prepare().functionExecutionStatus == .success)
        #expect(h.change().functionExecutionStatus == .success)
        let notes = try h.two.store.read { try $0.outbox(states: [.pending]) }.filter { $0.messageType.hasSuffix("HandleSMSRChangeNotification") }
        #expect(notes.map(\.recipient) == [SMSRHarness.otherMNO])
    }

    @Test("a pre-commit failure whose codes would read 'ask again' (1.2/4.2 from an ES7 call) ends the change as 8.7/4.2, not open for ever")
    func unsettledCodesEnd() throws {
        var h = try ChangeHarness()
        defer { h.cleanUp() }
        h.toOne.tamper = { response in
            guard var authentication = response as? ES7.AuthenticateSMSRResponse else { return response }
            authentication.functionExecutionStatus = .failed(.functionProvider, .executionError, message: "the SM-SR store failed")
            return authentication
        }
        h.link()
        try h.registerCard()
        #expect(h.prepare().functionExecutionStatus == .success)
        let response = h.change()
        #expect(response.functionExecutionStatus.codes == "8.7/4.2", "\(response.functionExecutionStatus)")
        // Settled: SM-SR1 released the eUICC and keeps it; nothing is left to retry.
        try h.expectManaged(by: 1)
        #expect(try h.one.smsr.retrySMSRChanges() == 0)
        #expect(try h.one.store.read { try $0.openSMSRChanges() }.isEmpty)
    }
}
