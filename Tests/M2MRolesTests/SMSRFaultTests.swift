// The SM-SR when the path to the card misbehaves: a PoR lost after the card executed the command
// (the SM-SR asks the card before answering), a card that cannot be reached after the command left
// (the outcome stays open, the call unanswered, until recovery stores the one true answer), and
// forged MO notifications (unsecured, or about another card) that must change nothing.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MRoles
import M2MSOAP
import M2MStorage
import M2MTransport
import M2MWire
import Synchronization
import Testing

/// The in-process transport with faults switched on by the test.
final class FaultyTransport: EUICCTransport, @unchecked Sendable {
    let inner: InProcessTransport
    /// `cutAfter` n > 0: the n-th packet from now reaches the card, its PoR is lost and the card is
    /// then out of reach.
    let state = Mutex((dropNextPoR: false, cutAfter: 0, unreachable: false, forgedMO: [[UInt8]]()))

    init(_ inner: InProcessTransport) { self.inner = inner }

    func deliverSMS(_ userData: [UInt8], to eid: EID) throws(TransportError) -> [UInt8]? {
        let (unreachable, drop) = state.withLock { ($0.unreachable, $0.dropNextPoR) }
        if unreachable { throw TransportError(.unreachable, "test: the card is out of reach") }
        let por = try inner.deliverSMS(userData, to: eid)  // the card gets the packet and acts on it
        let cut = state.withLock { state -> Bool in
            guard state.cutAfter > 0 else { return false }
            state.cutAfter -= 1
            if state.cutAfter == 0 { state.unreachable = true }
            return state.cutAfter == 0
        }
        if drop || cut {
            state.withLock { $0.dropNextPoR = false }
            return nil  // … and its PoR is lost
        }
        return por
    }

    func moMessages(from eid: EID) throws(TransportError) -> [[UInt8]] {
        if state.withLock({ $0.unreachable }) { throw TransportError(.unreachable, "test: the card is out of reach") }
        return state.withLock { $0.forgedMO } + (try inner.moMessages(from: eid))
    }

    func runScript(_ script: [UInt8], target: ScriptTarget, on eid: EID) throws(TransportError) -> [UInt8] {
        try inner.runScript(script, target: target, on: eid)
    }
}

@Suite("SM-SR faults on the way to the card", .serialized)
struct SMSRFaultTests {
    typealias H = SMSRHarness

    static func faulty(_ h: inout H) throws -> FaultyTransport {
        let transport = FaultyTransport(InProcessTransport(fleet: h.fleet))
        h.smsr = try SMSR(configuration: h.smsr.configuration, trust: h.smsr.trust, store: h.store, policy: h.smsr.policy, transport: transport, clock: h.clock)
        return transport
    }

    @Test("The PoR of an executed enable is lost: the SM-SR asks the card (GET STATUS) and answers the truth")
    func lostPoR() throws {
        var h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        let transport = try Self.faulty(&h)
        transport.state.withLock { $0.dropNextPoR = true }
        let response = h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: h.eid(0), iccid: H.iccidB), context: RequestContext(caller: H.mno))
        #expect(response.functionExecutionStatus == .success, "\(response.functionExecutionStatus)")
        #expect(h.fleet.card(at: 0).isdp(H.b)?.lifeCycle == .enabled)
        #expect(try h.stored(0)?.profiles.first { $0.iccid == H.iccidB }?.state == .enabled)
    }

    @Test("The card is lost right after the command: the outcome stays open and unanswered; recovery stores the one answer")
    func unresolved() throws {
        var h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        let transport = try Self.faulty(&h)
        transport.state.withLock { $0.cutAfter = 1 }
        let request = ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: h.eid(0), iccid: H.iccidB)
        let first = h.smsr.enableProfile(request, context: RequestContext(caller: H.mno))
        #expect(first.functionExecutionStatus.status == .failed)
        #expect(first.functionExecutionStatus.statusCodeData?.message?.contains("not known yet") == true)
        #expect(try h.store.read { try $0.activeOperation(h.eid(0)) } != nil, "the operation stays open")
        #expect(try h.store.read { try $0.functionCall(caller: H.mno, identifier: "e") }?.response == nil, "no answer stored")
        // A retry before the card is back: still being executed.
        #expect(h.smsr.enableProfile(request, context: RequestContext(caller: H.mno)).functionExecutionStatus.codes == "1.6/4.4")
        #expect(try h.smsr.recover() == 0, "the card is still unreachable: nothing decided")
        // The card is back: recovery finds the Profile enabled and stores that as the answer.
        transport.state.withLock { $0.unreachable = false }
        #expect(try h.smsr.recover() == 1)
        #expect(h.smsr.enableProfile(request, context: RequestContext(caller: H.mno)).functionExecutionStatus == .success)
        #expect(try h.stored(0)?.profiles.first { $0.iccid == H.iccidB }?.state == .enabled)
        #expect(h.fleet.card(at: 0).pendingNotifications.isEmpty)
    }

    @Test("Forged MO notifications change nothing: unsecured, or secured but about another card")
    func forgedNotifications() throws {
        var h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        let transport = try Self.faulty(&h)
        let eid = h.eid(0)
        // A fall-back notification enabling B, sent without ciphering or CC …
        let payload = TLV(0xE1, children: [TLV(0x4C, eid.bytes), TLV(0x4D, [0x05]), TLV(0x4E, [0x00, 0x63]), TLV(0x4F, H.b.bytes),
                                           TLV(0x14, [1, 2, 3, 4, 5, 6, 7, 8])]).encoded
        var plain = try SCP80Sender(keys: h.fleet.identity(at: 0).scp80KeySet, tar: .isdR, counter: .zero)
        let unsecured = try plain.secure(payload, spi: SCP80SPI(counter: .none, ciphered: false, integrity: .none, por: .none)).userData
        // … and one secured with the right keys but naming another eUICC.
        let other = TLV(0xE1, children: [TLV(0x4C, h.eid(1).bytes), TLV(0x4D, [0x05]), TLV(0x4E, [0x00, 0x64]), TLV(0x4F, H.b.bytes),
                                         TLV(0x14, [1, 2, 3, 4, 5, 6, 7, 8])]).encoded
        let wrongCard = try plain.secure(other, spi: SCP80SPI(counter: .none, ciphered: true, integrity: .cryptographicChecksum, por: .none)).userData
        transport.state.withLock { $0.forgedMO = [unsecured, wrongCard] }
        #expect(try h.smsr.pollNotifications(eid: eid) == 0)
        #expect(try h.stored(0)?.profiles.first { $0.iccid == H.iccidA }?.state == .enabled)
        #expect(try h.outbox().isEmpty)
    }

    @Test("CreateISDP whose INSTALL reached the card but whose answer was lost: recovery adopts the ISD-P, the retry gets its AID")
    func createISDPRecovered() throws {
        var h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        let transport = try Self.faulty(&h)
        transport.state.withLock { $0.cutAfter = 2 }  // GET STATUS (AIDs in use) passes, INSTALL's PoR is lost
        let request = ES3.CreateISDPRequest(functionCallIdentifier: "c", eid: h.eid(0), iccid: H.iccidC, mnoID: H.mno, requiredMemory: 1000)
        let first = h.smsr.createISDP(request, context: RequestContext(caller: H.smdp))
        #expect(first.functionExecutionStatus.statusCodeData?.message?.contains("not known yet") == true)
        #expect(h.fleet.card(at: 0).isdps.count == 3, "the card created the ISD-P")
        transport.state.withLock { $0.unreachable = false }
        #expect(try h.smsr.recover() == 1)
        let retry = h.smsr.createISDP(request, context: RequestContext(caller: H.smdp))
        #expect(retry.functionExecutionStatus == .success)
        #expect(h.fleet.card(at: 0).isdp(retry.isdPAID)?.lifeCycle == .selectable)
        let profile = try #require(try h.stored(0)?.profiles.first { $0.iccid == H.iccidC })
        #expect(profile.state == .created && profile.isdPAID == retry.isdPAID && profile.smdpID == H.smdp)
    }

    @Test("An SM-DP cannot create an ISD-P for an Operator the SM-SR does not know")
    func unknownOperator() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        let response = h.smsr.createISDP(ES3.CreateISDPRequest(functionCallIdentifier: "c", eid: h.eid(0), iccid: H.iccidC, mnoID: "1.3.6.1.4.1.99999.4.77",
                                                               requiredMemory: 1000), context: RequestContext(caller: H.smdp))
        #expect(response.functionExecutionStatus.codes == "8.2/3.10")
        #expect(h.fleet.card(at: 0).isdps.count == 2)
    }
}
