// The SM-SR end to end against emulated cards: ES1 registration with real certificate and
// signature checks, ES4/ES3 life-cycle over SCP80 with POL2 in Lua, card notifications and their
// confirmation, roll-back, fall-back, notifications through ONC and routing into the outbox,
// idempotent function calls, crash recovery, and the authorisation matrix.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MRoles
import M2MSOAP
import M2MStorage
import M2MTestKit
import M2MWire
import Synchronization
import Testing

@Suite("SM-SR", .serialized)
struct SMSRTests {
    typealias H = SMSRHarness

    @Test("Read-only functions are not recorded: a repeated GetEIS reads the state as it is now, nothing is written")
    func readOnlyNotRecorded() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        let writes = h.store.database.transactionCounts.writes
        let request = ES4.GetEISRequest(functionCallIdentifier: "g", eid: h.eid(0))
        #expect(h.smsr.getEIS(request, context: RequestContext(caller: H.mno)).eis?.profiles.first { $0.iccid == H.iccidB }?.state == .disabled)
        #expect(h.store.database.transactionCounts.writes == writes)
        #expect(try h.store.read { try $0.functionCall(caller: H.mno, identifier: "g") } == nil)
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: h.eid(0), iccid: H.iccidB), context: RequestContext(caller: H.mno))
            .functionExecutionStatus == .success)
        #expect(h.smsr.getEIS(request, context: RequestContext(caller: H.mno)).eis?.profiles.first { $0.iccid == H.iccidB }?.state == .enabled)
    }

    @Test("RegisterEIS: chain and signature verified, keys sealed apart, idempotent; every documented refusal")
    func registration() throws {
        let h = try H()
        defer { h.cleanUp() }
        let eis = try h.eis(card: 0)
        let registration = ES1.RegisterEISRequest(functionCallIdentifier: "reg-0", eis: eis)
        let first = h.smsr.registerEIS(registration, context: RequestContext(caller: H.eumID))
        #expect(first.functionExecutionStatus == .success, "\(first.functionExecutionStatus)")
        let stored = try #require(try h.stored(0))
        #expect(stored.profiles.map(\.iccid) == [H.iccidA, H.iccidB])
        #expect(stored.isdR.keysets.allSatisfy { $0.items.isEmpty }, "no key value in the stored EIS")
        #expect(try h.store.read { try $0.isdrKeys(h.eid(0)) }.count == 3)
        // No ISD-R key value is anywhere in the database file in clear.
        let file = try Data(contentsOf: URL(fileURLWithPath: h.dbPath)) + ((try? Data(contentsOf: URL(fileURLWithPath: h.dbPath + "-wal"))) ?? Data())
        for keyset in eis.isdR.keysets {
            for case .key(let key) in keyset.items {
                #expect(file.range(of: Data(key.components[0].value.bytes)) == nil)
            }
        }
        // The same call again: the stored answer; another request under the same identifier: 1.6/3.3.
        let replay = h.smsr.registerEIS(registration, context: RequestContext(caller: H.eumID))
        #expect(replay.functionExecutionStatus == .success && replay.processingStart == first.processingStart, "the stored answer")
        #expect(try h.register(card: 1, fci: "reg-0").functionExecutionStatus.codes == "1.6/3.3")
        // Already registered (new identifier).
        #expect(try h.register(card: 0, fci: "again").functionExecutionStatus.codes == "8.1.1/3.3")
        // Not the EUM of the EIS, an unknown caller, a tampered signature, another SM-SR.
        let request = ES1.RegisterEISRequest(functionCallIdentifier: "x1", eis: try h.eis(card: 1))
        #expect(h.smsr.registerEIS(request, context: RequestContext(caller: H.mno)).functionExecutionStatus.codes == "1.1/1.2")
        #expect(h.smsr.registerEIS(request, context: RequestContext(caller: "1.2.3.4")).functionExecutionStatus.codes == "1.1/1.1")
        var tampered = try h.eis(card: 1)
        tampered.eumSignedInfo.platformVersion = try ThreeDigitVersion(text: "9.9.9")
        #expect(h.smsr.registerEIS(ES1.RegisterEISRequest(functionCallIdentifier: "x2", eis: tampered), context: RequestContext(caller: H.eumID))
            .functionExecutionStatus.codes == "8.1.2/6.1")
        var elsewhere = try h.eis(card: 1)
        elsewhere.smsrID = "1.3.6.1.4.1.99999.2.9"
        #expect(h.smsr.registerEIS(ES1.RegisterEISRequest(functionCallIdentifier: "x3", eis: elsewhere), context: RequestContext(caller: H.eumID))
            .functionExecutionStatus.codes == "8.7/3.4")
        #expect(try h.stored(1) == nil)
    }

    @Test("RegisterEIS in batches: parallel checks, one transaction, per-EIS answers, replays answered as the first time")
    func registrationBatch() throws {
        let h = try H()
        defer { h.cleanUp() }
        var tampered = try h.eis(card: 2)
        tampered.eumSignedInfo.platformType = try String100(text: "tampered")
        let requests = [
            ES1.RegisterEISRequest(functionCallIdentifier: "b0", eis: try h.eis(card: 0)),
            ES1.RegisterEISRequest(functionCallIdentifier: "b1", eis: try h.eis(card: 1, owner: H.otherMNO)),
            ES1.RegisterEISRequest(functionCallIdentifier: "b2", eis: tampered),
        ]
        let answers = h.smsr.registerEISBatch(requests, context: RequestContext(caller: H.eumID))
        #expect(answers.map(\.functionExecutionStatus.codes) == ["EXECUTED_SUCCESS", "EXECUTED_SUCCESS", "8.1.2/6.1"])
        #expect(try h.stored(0) != nil && h.stored(1) != nil && h.stored(2) == nil)
        #expect(h.smsr.registerEISBatch(requests, context: RequestContext(caller: H.eumID)) == answers)
        #expect(h.smsr.registerEISBatch(requests, context: RequestContext(caller: H.mno)).allSatisfy { $0.functionExecutionStatus.codes == "1.1/1.2" })
    }

    @Test("EUM key tables: built on the first EIS check by default; turned off, checks stay in EVP; the answers are the same")
    func eumKeyTables() throws {
        let h = try H()
        defer { h.cleanUp() }
        for tables in [true, false] {
            let eum = try X509Certificate(derRepresentation: h.pki.eum.derRepresentation) // a key of its own, not prepared yet
            #expect(!eum.publicKey.isPreparedForRepeatedVerification)
            let store = try SQLiteSMSRStore(path: h.directory.appendingPathComponent("tables-\(tables).sqlite").path, codec: XMLDocumentCodec())
            defer { store.database.close() }
            let smsr = try H.makeSMSR(store: store, pki: h.pki, fleet: h.fleet, storageKey: h.storageKey, clock: h.clock, faults: SMSRFaults(),
                                      eum: eum, configure: { $0.eumKeyTables = tables })
            try smsr.register(Party(oid: H.eumID, role: .eum))
            var tampered = try h.eis(card: 1)
            tampered.eumSignedInfo.platformType = try String100(text: "tampered")
            let answers = try [h.eis(card: 0), tampered].enumerated().map { index, eis in
                smsr.registerEIS(ES1.RegisterEISRequest(functionCallIdentifier: "t\(index)", eis: eis), context: RequestContext(caller: H.eumID))
                    .functionExecutionStatus.codes
            }
            #expect(answers == ["EXECUTED_SUCCESS", "8.1.2/6.1"])
            #expect(eum.publicKey.isPreparedForRepeatedVerification == tables)
        }
    }

    @Test("An inconsistent EIS (two Profiles with one ICCID, two Enabled) is refused on its own; the rest of its batch registers")
    func inconsistentEIS() throws {
        let h = try H(cards: 3)
        defer { h.cleanUp() }
        var twice = try h.eis(card: 0)  // card 0 holds two Profiles
        try #require(twice.profiles.count == 2)
        twice.profiles.append(twice.profiles[0])
        var twoEnabled = try h.eis(card: 0)
        for index in twoEnabled.profiles.indices { twoEnabled.profiles[index].state = .enabled }
        let requests = [ES1.RegisterEISRequest(functionCallIdentifier: "c0", eis: try h.eis(card: 1)),
                        ES1.RegisterEISRequest(functionCallIdentifier: "c1", eis: twice),
                        ES1.RegisterEISRequest(functionCallIdentifier: "c2", eis: twoEnabled)]
        let answers = h.smsr.registerEISBatch(requests, context: RequestContext(caller: H.eumID))
        #expect(answers.map(\.functionExecutionStatus.codes) == ["EXECUTED_SUCCESS", "8.2.1/3.3", "8.2/2.1"])
        #expect(try h.stored(1) != nil && h.stored(0) == nil)
    }

    @Test("A batch over several write slices: answers in order, a duplicate in a later slice refused, a retry answered from the rows")
    func registrationBatchSlices() throws {
        let cards = 230
        let h = try H(cards: cards)
        defer { h.cleanUp() }
        var requests: [ES1.RegisterEISRequest] = []
        for card in 0..<cards {
            var eis = try h.eis(card: card)
            if card == 150 { eis.eumSignedInfo.platformType = try String100(text: "tampered") }
            requests.append(ES1.RegisterEISRequest(functionCallIdentifier: "s\(card)", eis: eis))
        }
        // Card 3's EIS again, under another identifier, in the third slice.
        requests.insert(ES1.RegisterEISRequest(functionCallIdentifier: "again", eis: try h.eis(card: 3)), at: 210)
        let answers = h.smsr.registerEISBatch(requests, context: RequestContext(caller: H.eumID))
        #expect(answers.count == requests.count)
        for (index, answer) in answers.enumerated() {
            let expected = switch index {
            case 150: "8.1.2/6.1"
            case 210: "8.1.1/3.3"
            default: "EXECUTED_SUCCESS"
            }
            #expect(answer.functionExecutionStatus.codes == expected, "request \(index)")
        }
        #expect(try h.store.read { try $0.eisCount() } == cards - 1)
        #expect(try h.stored(150) == nil && h.stored(229) != nil)
        // Each registration wrote its audit record (in the XML codec's form).
        let trail = try h.store.read { try $0.auditTrail(h.eid(229)) }
        #expect(trail.count == 1 && trail.first?.requesterID == H.eumID && trail.first?.operationExecutionStatus == .success)
        // The whole batch again (a retry after a lost answer): the same answers, nothing new stored.
        #expect(h.smsr.registerEISBatch(requests, context: RequestContext(caller: H.eumID)) == answers)
        #expect(try h.store.read { try $0.eisCount() } == cards - 1)
        // An audit row written as JSON (before the XML codec kept audit records) still reads.
        let legacy = try JSONDocumentCodec().encode(try #require(trail.first))
        #expect(try XMLDocumentCodec().decodeAuditRecord(legacy) == trail.first)
    }

    @Test("EnableProfile by the owner: the card switches, 3A08 confirms, EIS and outbox follow; the same call again changes nothing")
    func enable() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        try h.grantPLMA(functions: [.enableProfile], notifications: [.profileEnabled, .profileDisabled])
        let request = ES4.EnableProfileRequest(functionCallIdentifier: "e-1", eid: h.eid(0), iccid: H.iccidB)
        let response = h.smsr.enableProfile(request, context: RequestContext(caller: H.mno))
        #expect(response.functionExecutionStatus == .success)
        let card = h.fleet.card(at: 0)
        #expect(card.isdp(H.b)?.lifeCycle == .enabled && card.isdp(H.a)?.lifeCycle == .disabled)
        #expect(card.pendingNotifications.isEmpty, "the default notification was confirmed with 3A08")
        let eis = try #require(try h.stored(0))
        #expect(eis.profiles.first { $0.iccid == H.iccidB }?.state == .enabled)
        #expect(eis.profiles.first { $0.iccid == H.iccidA }?.state == .disabled)
        // The owner asked: only the M2M SP whose PLMA lists these notifications is told, over ES4.
        let sent = try h.outbox().filter { $0.messageType != "ES4-HandlePLMASettingNotification" }
        #expect(Set(sent.map(\.messageType)) == ["ES4-HandleProfileEnabledNotification", "ES4-HandleProfileDisabledNotification"])
        #expect(sent.allSatisfy { $0.recipient == H.sp && $0.via == "ES4" })
        // The decisions (POL2, ONC, routing) are stored with the call.
        let call = try #require(try h.store.read { try $0.functionCall(caller: H.mno, identifier: "e-1") })
        #expect(try h.store.read { try $0.decisionCount(functionCallID: call.id) } >= 3)
        // Replay: the stored answer, no second ES5 exchange.
        let counter = h.fleet.card(at: 0).scp80Counter
        let again = h.smsr.enableProfile(request, context: RequestContext(caller: H.mno))
        #expect(again.functionExecutionStatus == response.functionExecutionStatus)
        #expect(h.fleet.card(at: 0).scp80Counter == counter)
        #expect(try h.outbox().count == sent.count + 1)
        // Enabling the enabled Profile: POL2 (Lua) refuses before any ES5 command.
        let twice = h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e-2", eid: h.eid(0), iccid: H.iccidB), context: RequestContext(caller: H.mno))
        #expect(twice.functionExecutionStatus.codes == "8.2.1/3.5")
        #expect(h.fleet.card(at: 0).scp80Counter == counter)
    }

    @Test("Refusals: POL2 in Lua, POL1 on the card (69E1), roll-back on the card (notification 03), other Operator, M2M SP without PLMA")
    func refusals() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        let eid = h.eid(0)
        // Other Operator and an M2M SP without PLMA: refused by the sgp02-pol2 plugin.
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "o-1", eid: eid, iccid: H.iccidB), context: RequestContext(caller: H.otherMNO))
            .functionExecutionStatus.codes == "8.2.1/1.2")
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "s-1", eid: eid, iccid: H.iccidB), context: RequestContext(caller: H.sp))
            .functionExecutionStatus.codes == "1.1/1.2")
        // POL2 of the enabled Profile forbids disabling it → enabling B is refused (8.2.3/3.8).
        let rules = POL2(rules: [.init(action: .disable, qualification: .notAllowed)])
        #expect(h.smsr.updatePolicyRules(ES4.UpdatePolicyRulesRequest(functionCallIdentifier: "p-1", eid: eid, iccid: H.iccidA, pol2: rules),
                                         context: RequestContext(caller: H.mno)).functionExecutionStatus == .success)
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e-1", eid: eid, iccid: H.iccidB), context: RequestContext(caller: H.mno))
            .functionExecutionStatus.codes == "8.2.3/3.8")
        #expect(h.fleet.card(at: 0).isdp(H.a)?.lifeCycle == .enabled)
        #expect(h.smsr.updatePolicyRules(ES4.UpdatePolicyRulesRequest(functionCallIdentifier: "p-2", eid: eid, iccid: H.iccidA, pol2: POL2()),
                                         context: RequestContext(caller: H.mno)).functionExecutionStatus == .success)
        // The card rolls back (cannot attach with B): 8.2.1/5.1, EIS unchanged, the card too.
        h.fleet.withCard(at: 0) { $0.unreachableICCIDs = [H.iccidB] }
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e-2", eid: eid, iccid: H.iccidB), context: RequestContext(caller: H.mno))
            .functionExecutionStatus.codes == "8.2.1/5.1")
        #expect(try h.stored(0)?.profiles.first { $0.iccid == H.iccidA }?.state == .enabled)
        #expect(h.fleet.card(at: 0).isdp(H.a)?.lifeCycle == .enabled && h.fleet.card(at: 0).pendingNotifications.isEmpty)
        h.fleet.withCard(at: 0) { $0.unreachableICCIDs = [] }
        // POL1 on the card: card 1's enabled Profile may not be disabled (the card says 69E1).
        let iccidD = try ICCID(withoutCheckDigit: "894450000000000078")
        let made = h.fleet.withCard(at: 1) { card in
            card.manufacture(ISDP(aid: H.c, lifeCycle: .enabled, iccid: H.iccidC, profileType: H.profileType, pol1: .disablingNotAllowed, fallBack: true,
                                  allocatedMemory: 1000))
                && card.manufacture(ISDP(aid: H.b, lifeCycle: .disabled, iccid: iccidD, profileType: H.profileType, allocatedMemory: 1000))
        }
        #expect(made)
        #expect(try h.register(card: 1).functionExecutionStatus == .success)
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e-3", eid: h.eid(1), iccid: iccidD), context: RequestContext(caller: H.mno))
            .functionExecutionStatus.codes == "8.2.2/3.8")
        #expect(try h.stored(1)?.profiles.first { $0.iccid == H.iccidC }?.state == .enabled)
        #expect(h.fleet.card(at: 1).isdp(H.c)?.lifeCycle == .enabled)
        // Unknown eUICC, unknown Profile.
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "u-1", eid: h.eid(2), iccid: H.iccidB), context: RequestContext(caller: H.mno))
            .functionExecutionStatus.codes == "8.1.1/3.9")
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "u-2", eid: eid, iccid: try ICCID(withoutCheckDigit: "894450000000000090")), context: RequestContext(caller: H.mno))
            .functionExecutionStatus.codes == "8.2.1/3.9")
    }

    @Test("Disable falls back to the Fall-Back Profile; delete frees memory; SetFallBackAttribute moves it; M2M SP with a PLMA may act")
    func disableDeleteFallBack() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        let eid = h.eid(0)
        try h.grantPLMA(functions: [.enableProfile, .disableProfile, .deleteProfile, .setFallBackAttribute], notifications: [.profileDeleted])
        // The M2M SP enables B (PLMA), then disables it: the card enables the Fall-Back Profile A.
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: eid, iccid: H.iccidB), context: RequestContext(caller: H.sp))
            .functionExecutionStatus == .success)
        #expect(h.smsr.disableProfile(ES4.DisableProfileRequest(functionCallIdentifier: "d", eid: eid, iccid: H.iccidB), context: RequestContext(caller: H.sp))
            .functionExecutionStatus == .success)
        #expect(h.fleet.card(at: 0).isdp(H.a)?.lifeCycle == .enabled)
        #expect(try h.stored(0)?.profiles.first { $0.iccid == H.iccidA }?.state == .enabled)
        // Disabling the Fall-Back Profile: the card refuses (6985) → 8.2.1/3.5 (or POL2 first).
        let disableA = h.smsr.disableProfile(ES4.DisableProfileRequest(functionCallIdentifier: "d2", eid: eid, iccid: H.iccidA), context: RequestContext(caller: H.mno))
        #expect(disableA.functionExecutionStatus.status == .failed)
        // SetFallBackAttribute on B, then delete A (now an ordinary disabled Profile once B is enabled).
        #expect(h.smsr.setFallBackAttribute(ES4.SetFallBackAttributeRequest(functionCallIdentifier: "f", eid: eid, iccid: H.iccidB),
                                            context: RequestContext(caller: H.mno)).functionExecutionStatus == .success)
        #expect(h.fleet.card(at: 0).isdp(H.b)?.fallBack == true && h.fleet.card(at: 0).isdp(H.a)?.fallBack == false)
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e2", eid: eid, iccid: H.iccidB), context: RequestContext(caller: H.mno))
            .functionExecutionStatus == .success)
        let before = try #require(try h.stored(0)).remainingMemory
        #expect(h.smsr.deleteProfile(ES4.DeleteProfileRequest(functionCallIdentifier: "x", eid: eid, iccid: H.iccidA), context: RequestContext(caller: H.sp))
            .functionExecutionStatus == .success)
        #expect(h.fleet.card(at: 0).isdp(H.a) == nil)
        let after = try #require(try h.stored(0))
        #expect(after.profiles.map(\.iccid) == [H.iccidB] && after.remainingMemory == before + 20_000)
        #expect(try h.outbox().contains { $0.messageType == "ES4-HandleProfileDeletedNotification" && $0.recipient == H.sp } == false,
                "the M2M SP asked for the deletion: it is not notified of its own request")
    }

    @Test("SetEmergencyProfileAttribute (3A06, our coding): moves the attribute on the card and in the EIS; not on the Fall-Back Profile")
    func emergency() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        try h.grantPLMA(functions: [], notifications: [.emergencyProfileAttributeSet])
        let set = h.smsr.setEmergencyProfileAttribute(ES4.SetEmergencyProfileAttributeRequest(functionCallIdentifier: "em", eid: h.eid(0), iccid: H.iccidB),
                                                      context: RequestContext(caller: H.mno))
        #expect(set.functionExecutionStatus == .success, "\(set.functionExecutionStatus)")
        #expect(h.fleet.card(at: 0).isdp(H.b)?.emergency == true)
        #expect(try h.stored(0)?.profiles.first { $0.iccid == H.iccidB }?.emergencyProfileAttribute == true)
        #expect(try h.outbox().contains { $0.messageType == "ES4-HandleEmergencyProfileAttributeSetNotification" && $0.recipient == H.sp })
        let onFallBack = h.smsr.setEmergencyProfileAttribute(
            ES4.SetEmergencyProfileAttributeRequest(functionCallIdentifier: "em2", eid: h.eid(0), iccid: H.iccidA), context: RequestContext(caller: H.mno))
        #expect(onFallBack.functionExecutionStatus.status == .failed)
        #expect(h.fleet.card(at: 0).isdp(H.b)?.emergency == true && h.fleet.card(at: 0).isdp(H.a)?.emergency == false)
    }

    @Test("Sealed ISD-R keys are bound to their eUICC: moved to another card's row they do not open, and nothing is sent")
    func sealedKeysBound() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        try h.register(card: 1, owner: H.otherMNO)
        // Swap card 0's and card 1's sealed SCP80 keys in the database (what a tampering writer would do).
        try h.store.database.write { db in
            let rows = try db.query("SELECT eis_id, keyset_version, key_index, sealed FROM isdr_key ORDER BY eis_id, keyset_version, key_index")
            let first = rows.filter { $0[0] == rows[0][0] }, second = rows.filter { $0[0] != rows[0][0] }
            for (a, b) in zip(first, second) {
                try db.run("UPDATE isdr_key SET sealed = ?4 WHERE eis_id = ?1 AND keyset_version = ?2 AND key_index = ?3", [a[0], a[1], a[2], b[3]])
            }
        }
        let counter = h.fleet.card(at: 0).scp80Counter
        let response = h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: h.eid(0), iccid: H.iccidB), context: RequestContext(caller: H.mno))
        #expect(response.functionExecutionStatus.codes == "8.3/6.1")
        #expect(h.fleet.card(at: 0).scp80Counter == counter && h.fleet.card(at: 0).isdp(H.a)?.lifeCycle == .enabled, "nothing reached the card")
        #expect(try h.store.read { try $0.activeOperations() }.isEmpty)
    }

    @Test("POL2 Auto-Delete: a Profile whose POL2 says DISABLE → Auto-Delete is deleted by the platform once another is enabled")
    func autoDelete() throws {
        let h = try H()
        defer { h.cleanUp() }
        let eid = try h.prepareAutoDelete()
        // Enabling A disables B, whose POL2 then has it deleted: on the card and in the EIS.
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e2", eid: eid, iccid: H.iccidA), context: RequestContext(caller: H.mno))
            .functionExecutionStatus == .success)
        #expect(h.fleet.card(at: 0).isdp(H.b) == nil)
        #expect(try h.stored(0)?.profiles.map(\.iccid) == [H.iccidA])
        // Nobody asked for the deletion: the M2M SP with the PLMA is told.
        #expect(try h.outbox().contains { $0.messageType == "ES4-HandleProfileDeletedNotification" && $0.recipient == H.sp })
    }

    @Test("ValidityPeriod: past it, nothing is sent and the answer is EXPIRED 1.6/4.10; a longer one than allowed is cut and echoed")
    func validityPeriod() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        // Every reading of the clock moves it 10 s on: a 5-second ValidityPeriod ends before ES5.
        h.clock.step.store(10, ordering: .relaxed)
        let expired = h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "v-1", validityPeriod: 5, eid: h.eid(0), iccid: H.iccidB),
                                           context: RequestContext(caller: H.mno))
        h.clock.step.store(0, ordering: .relaxed)
        #expect(expired.functionExecutionStatus.status == .expired)
        #expect(expired.functionExecutionStatus.codes == "1.6/4.10")
        #expect(h.fleet.card(at: 0).isdp(H.a)?.lifeCycle == .enabled, "nothing was sent")
        #expect(try h.store.read { try $0.activeOperations() }.isEmpty)
        // A ValidityPeriod above the maximum is honoured up to the maximum and said so.
        let long = h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "v-2", validityPeriod: 30 * 24 * 3600, eid: h.eid(0), iccid: H.iccidB),
                                        context: RequestContext(caller: H.mno))
        #expect(long.functionExecutionStatus == .success)
        #expect(long.acceptableValidityPeriod == h.smsr.configuration.maximumValidityPeriod)
    }

    @Test("A crash after the card switched: recovery commits the one true outcome; before ES5: it rolls back; a retry returns that outcome")
    func crashRecovery() throws {
        for point in [SMSRFaults.Point.beforeES5, .afterES5, .beforeCommit] {
            var h = try H()
            defer { h.cleanUp() }
            try h.register(card: 0)
            try h.restart(faults: SMSRFaults(crashAt: point))
            let request = ES4.EnableProfileRequest(functionCallIdentifier: "crash-\(point.rawValue)", eid: h.eid(0), iccid: H.iccidB)
            let crashed = h.smsr.enableProfile(request, context: RequestContext(caller: H.mno))
            #expect(crashed.functionExecutionStatus.status == .failed)  // the process "died"
            #expect(try h.store.read { try $0.activeOperation(h.eid(0)) } != nil, "the operation is still open")
            try h.restart()
            #expect(try h.smsr.recover() == 1)
            #expect(try h.store.read { try $0.activeOperations() }.isEmpty)
            let card = h.fleet.card(at: 0)
            let eis = try #require(try h.stored(0))
            let cardEnabled = card.isdps.first { $0.lifeCycle == .enabled }?.aid
            #expect(eis.profiles.first { $0.state == .enabled }?.isdPAID == cardEnabled, "EIS and card agree (\(point))")
            #expect(card.pendingNotifications.isEmpty)
            let expectSwitched = point != .beforeES5
            #expect((cardEnabled == H.b) == expectSwitched, "\(point)")
            // The retry gets exactly the outcome recovery committed.
            let retried = h.smsr.enableProfile(request, context: RequestContext(caller: H.mno))
            #expect((retried.functionExecutionStatus == .success) == expectSwitched, "\(point): \(retried.functionExecutionStatus)")
            let enabled = try h.outbox().filter { $0.messageType == "ES4-HandleProfileEnabledNotification" }
            #expect(enabled.count <= 1)
        }
    }

    @Test("A crash after an enable committed, before its 3A08 and the POL2 Auto-Delete it recorded: recovery deletes, a poll confirms")
    func crashBeforeAutoDelete() throws {
        var h = try H()
        defer { h.cleanUp() }
        let eid = try h.prepareAutoDelete()
        try h.restart(faults: SMSRFaults(crashAt: .afterCommit))
        let request = ES4.EnableProfileRequest(functionCallIdentifier: "e2", eid: eid, iccid: H.iccidA)
        _ = h.smsr.enableProfile(request, context: RequestContext(caller: H.mno))  // the process "died" after the commit
        #expect(h.fleet.card(at: 0).isdp(H.a)?.lifeCycle == .enabled)
        #expect(h.fleet.card(at: 0).isdp(H.b) != nil, "the deletion had not run")
        #expect(!h.fleet.card(at: 0).pendingNotifications.isEmpty, "the enable's notification was not confirmed")
        #expect(try h.store.read { try $0.activeOperations() }.map(\.kind) == ["delete"], "the deletion was recorded with the enable")
        try h.restart()
        #expect(try h.smsr.recover() == 1)
        #expect(h.fleet.card(at: 0).isdp(H.b) == nil)
        #expect(try h.stored(0)?.profiles.map(\.iccid) == [H.iccidA])
        #expect(try h.store.read { try $0.activeOperations() }.isEmpty)
        #expect(try h.outbox().contains { $0.messageType == "ES4-HandleProfileDeletedNotification" && $0.recipient == H.sp })
        // The retried enable answers what was committed; the card's resent notification is confirmed, changing nothing.
        #expect(h.smsr.enableProfile(request, context: RequestContext(caller: H.mno)).functionExecutionStatus == .success)
        #expect(try h.smsr.pollNotifications(eid: eid) == 0)
        #expect(h.fleet.card(at: 0).pendingNotifications.isEmpty)
        #expect(try h.stored(0)?.profiles.first?.state == .enabled)
    }

    @Test("The card falls back on its own (connectivity loss): the MO notification updates the EIS and is confirmed")
    func cardFallBack() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: h.eid(0), iccid: H.iccidB), context: RequestContext(caller: H.mno))
            .functionExecutionStatus == .success)
        let lost = h.fleet.withCard(at: 0) { $0.loseConnectivity() }
        #expect(lost)
        #expect(try h.smsr.pollNotifications(eid: h.eid(0)) == 1)
        #expect(try h.stored(0)?.profiles.first { $0.iccid == H.iccidA }?.state == .enabled)
        #expect(h.fleet.card(at: 0).pendingNotifications.isEmpty)
        #expect(try h.smsr.pollNotifications(eid: h.eid(0)) == 0)
        // Nobody asked: the owner is told (ES4: no SM-DP on these Profiles).
        #expect(try h.outbox().contains { $0.recipient == H.mno && $0.messageType == "ES4-HandleProfileEnabledNotification" })
    }

    @Test("PLMA, ONC and GetEIS: settings, the PLMASetting notification, ONC filtering, per-requester views")
    func settings() throws {
        let h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        try h.register(card: 1, owner: H.otherMNO)
        try h.grantPLMA(functions: [.getEIS], notifications: [.profileEnabled])
        #expect(try h.outbox().contains { $0.messageType == "ES4-HandlePLMASettingNotification" && $0.recipient == H.sp })
        let plmas = h.smsr.getPLMA(ES4.GetPLMARequest(functionCallIdentifier: "g", mnoID: nil), context: RequestContext(caller: H.sp)).plmas
        #expect(plmas.count == 1 && plmas[0].m2mSPID == H.sp)
        // Another Operator cannot set a PLMA in this Operator's name.
        let foreign = PLMA(mnoID: H.mno, m2mSPID: H.otherSP, profileType: try String100(text: H.profileType), authorisedFunctions: [.getEIS], authorisedNotifications: [])
        #expect(h.smsr.setPLMA(ES4A.SetPLMARequest(functionCallIdentifier: "f", plma: foreign), context: RequestContext(caller: H.otherMNO))
            .functionExecutionStatus.codes == "1.1/1.2")
        // GetEIS: the owner sees its Profiles; the M2M SP with getEIS sees them; another Operator is refused; the SM-DP sees none.
        #expect(h.smsr.getEIS(ES4.GetEISRequest(functionCallIdentifier: "1", eid: h.eid(0)), context: RequestContext(caller: H.mno)).eis?.profiles.count == 2)
        #expect(h.smsr.getEIS(ES4.GetEISRequest(functionCallIdentifier: "2", eid: h.eid(0)), context: RequestContext(caller: H.sp)).eis?.profiles.count == 2)
        #expect(h.smsr.getEIS(ES4.GetEISRequest(functionCallIdentifier: "3", eid: h.eid(0)), context: RequestContext(caller: H.otherMNO))
            .functionExecutionStatus.codes == "8.1.1/1.2")
        let smdpView = h.smsr.getEIS(ES3.GetEISRequest(functionCallIdentifier: "4", eid: h.eid(0)), context: RequestContext(caller: H.smdp))
        #expect(smdpView.functionExecutionStatus == .success && smdpView.eis?.profiles.isEmpty == true)
        // ONC: the Operator discards ProfileEnabled → the M2M SP's notification is filtered out.
        let onc = ONC(mnoID: H.mno, profileType: try String100(text: H.profileType), discardedNotifications: [.profileEnabled])
        #expect(h.smsr.setONC(ES4A.SetONCRequest(functionCallIdentifier: "o", onc: onc), context: RequestContext(caller: H.mno)).functionExecutionStatus == .success)
        #expect(h.smsr.getONC(ES4A.GetONCRequest(functionCallIdentifier: "o2"), context: RequestContext(caller: H.mno)).oncs == [onc])
        let before = try h.outbox().count
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: h.eid(0), iccid: H.iccidB), context: RequestContext(caller: H.mno))
            .functionExecutionStatus == .success)
        #expect(try h.outbox().count == before, "ProfileEnabled discarded by the ONC; ProfileDisabled not in the PLMA")
        // SM-SR change to an SM-SR this one does not work with (SMSRChangeTests has the rest).
        #expect(h.smsr.smsrChange(ES4.SMSRChangeRequest(functionCallIdentifier: "c", eid: h.eid(0), targetSMSRID: "1.3.6.1.4.1.99999.2.9"),
                                  context: RequestContext(caller: H.mno)).functionExecutionStatus.codes == "8.7/3.9")
    }

    @Test("Outbox delivery: retries with backoff, dead letters for best effort, delivered rows stay delivered across a restart")
    func outboxDelivery() throws {
        var h = try H()
        defer { h.cleanUp() }
        try h.register(card: 0)
        try h.grantPLMA(functions: [], notifications: [.profileEnabled, .profileDisabled])
        #expect(h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e", eid: h.eid(0), iccid: H.iccidB), context: RequestContext(caller: H.mno))
            .functionExecutionStatus == .success)
        final class Flaky: NotificationDelivery, @unchecked Sendable {
            var failures: Int
            var delivered: [String] = []
            init(failures: Int) { self.failures = failures }
            func deliver(_ item: OutboxItem) -> DeliveryResult {
                if failures > 0 {
                    failures -= 1
                    return .retry("HTTP 503")
                }
                delivered.append(item.messageType)
                return .delivered
            }
        }
        let pending = try h.outbox().filter { $0.state == .pending }.count
        #expect(pending == 3)  // PLMASetting, ProfileEnabled, ProfileDisabled
        let flaky = Flaky(failures: 3)
        let dispatcher = OutboxDispatcher(store: h.store, delivery: flaky, clock: h.clock)
        #expect(try dispatcher.runOnce() == 0)  // all three fail once
        #expect(try dispatcher.runOnce() == 0)  // not due yet
        h.clock.advance(1)
        #expect(try dispatcher.runOnce() == 3)
        try h.restart()
        #expect(try h.outbox().allSatisfy { $0.state == .delivered })
        #expect(OutboxDispatcher.backoff(retryClass: "best_effort", attempts: 3).dead)
        #expect(!OutboxDispatcher.backoff(retryClass: "critical", attempts: 500).dead)
        #expect(OutboxDispatcher.backoff(retryClass: "standard", attempts: 30).delay == 600)
    }
}

@Suite("SM-SR document codec")
struct XMLDocumentCodecTests {
    @Test("EIS and ProfileInfo documents round-trip through their XML form; damage is an error")
    func roundTrip() throws {
        let codec = XMLDocumentCodec()
        var eis = SampleMessages.eis()
        #expect(try codec.decodeEIS(try codec.encode(eis)) == eis)
        eis.profiles = []
        eis.auditTrail = nil
        #expect(try codec.decodeEIS(try codec.encode(eis)) == eis)
        for profile in SampleMessages.eis().profiles {
            var plain = profile
            plain.emergencyProfileAttribute = false  // a column of its own (SGP.02 carries it at EIS level)
            #expect(try codec.decodeProfile(try codec.encode(plain)) == plain)
        }
        #expect(throws: (any Error).self) { _ = try codec.decodeEIS(Array("<x/>".utf8)) }
    }
}
