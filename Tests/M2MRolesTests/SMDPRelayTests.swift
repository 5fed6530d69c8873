// The ES2 management functions relayed onto ES3, the SM-SR's notifications forwarded over ES2, and
// the dual path: one scenario once through ES2 (MNO → SM-DP → SM-SR) and once through ES4 (MNO →
// SM-SR) gives the same EIS and the same notifications.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MRoles
import M2MSOAP
import M2MStorage
import M2MTestKit
import M2MWire
import M2MXML
import Testing

@Suite("SM-DP relays and notifications (ES2 ↔ ES3)", .serialized)
struct SMDPRelayTests {
    typealias D = SMDPHarness
    typealias H = SMSRHarness

    static let mno = RequestContext(caller: H.mno)
    static let other = RequestContext(caller: H.otherMNO)

    @Test("Management over ES2: each function relayed to the SM-SR, ownership checked first, answers stored once")
    func relays() throws {
        let d = try D()
        defer { d.cleanUp() }
        // Card 0's two Profiles (one enabled with the fall-back attribute) belong to another Operator.
        try d.sr.register(card: 0, owner: H.otherMNO)
        let p = try #require(d.download(card: 0).iccid)
        let q = try #require(d.download(card: 0, type: D.fixtureNames[1]).iccid)
        let eid = d.sr.eid(0)
        try d.deliverAll()
        func state(_ iccid: ICCID) throws -> ProfileState? { try d.sr.stored(0)?.profiles.first { $0.iccid == iccid }?.state }

        // GetEIS: the Operator sees its own Profiles only.
        let eis = d.smdp.getEIS(ES2.GetEISRequest(functionCallIdentifier: "g", eid: eid, smsrID: H.smsrID), context: Self.mno)
        #expect(eis.functionExecutionStatus == .success && Set(eis.eis?.profiles.map(\.iccid) ?? []) == [p, q])
        // Enable, then the replay of the same call is the stored answer (not a second enable).
        let enable = ES2.EnableProfileRequest(functionCallIdentifier: "e", eid: eid, smsrID: H.smsrID, iccid: p)
        #expect(d.smdp.enableProfile(enable, context: Self.mno).functionExecutionStatus == .success)
        #expect(try state(p) == .enabled)
        #expect(d.smdp.enableProfile(enable, context: Self.mno).functionExecutionStatus == .success)
        #expect(d.smdp.enableProfile(ES2.EnableProfileRequest(functionCallIdentifier: "e", eid: eid, smsrID: H.smsrID, iccid: q), context: Self.mno)
            .functionExecutionStatus.codes == "1.6/3.3")
        // Another Operator's Profile, an unknown one, the wrong SM-SR.
        #expect(d.smdp.disableProfile(ES2.DisableProfileRequest(functionCallIdentifier: "x1", eid: eid, smsrID: H.smsrID, iccid: p), context: Self.other)
            .functionExecutionStatus.codes == "8.2.1/1.2")
        #expect(d.smdp.disableProfile(ES2.DisableProfileRequest(functionCallIdentifier: "x2", eid: eid, smsrID: H.smsrID, iccid: H.iccidA), context: Self.mno)
            .functionExecutionStatus.codes == "8.2.1/3.9")
        // POL2, the subscription address, the attributes.
        let rules = POL2(rules: [.init(action: .disable, qualification: .notAllowed)])
        #expect(d.smdp.updatePolicyRules(ES2.UpdatePolicyRulesRequest(functionCallIdentifier: "p", eid: eid, iccid: q, smsrID: H.smsrID, pol2: rules), context: Self.mno)
            .functionExecutionStatus == .success)
        #expect(try d.sr.stored(0)?.profiles.first { $0.iccid == q }?.pol2 == rules)
        let address = SubscriptionAddress(imsi: try IMSI(text: "208019999999999"))
        #expect(d.smdp.updateSubscriptionAddress(ES2.UpdateSubscriptionAddressRequest(functionCallIdentifier: "s", eid: eid, smsrID: H.smsrID, iccid: q,
                                                                                      newSubscriptionAddress: address), context: Self.mno).functionExecutionStatus == .success)
        #expect(try d.sr.stored(0)?.profiles.first { $0.iccid == q }?.subscriptionAddress == address)
        #expect(d.smdp.setEmergencyProfileAttribute(ES2.SetEmergencyProfileAttributeRequest(functionCallIdentifier: "em", eid: eid, smsrID: H.smsrID, iccid: q),
                                                    context: Self.mno).functionExecutionStatus == .success)
        #expect(try d.sr.stored(0)?.profiles.first { $0.iccid == q }?.emergencyProfileAttribute == true)
        #expect(d.smdp.auditEIS(ES2.AuditEISRequest(functionCallIdentifier: "a", eid: eid, smsrID: H.smsrID, iccids: [q]), context: Self.mno)
            .eis?.profiles.map(\.iccid) == [q])
        // Disable P (the card's fall-back Profile takes over), delete it: DeleteProfile → DeleteISDP.
        let disabled = d.smdp.disableProfile(ES2.DisableProfileRequest(functionCallIdentifier: "d", eid: eid, smsrID: H.smsrID, iccid: p), context: Self.mno)
        #expect(disabled.functionExecutionStatus == .success, "\(disabled.functionExecutionStatus)")
        let deleted = d.smdp.deleteProfile(ES2.DeleteProfileRequest(functionCallIdentifier: "del", eid: eid, iccid: p, smsrID: H.smsrID), context: Self.mno)
        #expect(deleted.functionExecutionStatus == .success, "\(deleted.functionExecutionStatus)")
        #expect(try state(p) == nil && d.isdps(card: 0, iccid: p).isEmpty)
        #expect(d.smdp.enableProfile(ES2.EnableProfileRequest(functionCallIdentifier: "e2", eid: eid, smsrID: H.smsrID, iccid: p), context: Self.mno)
            .functionExecutionStatus.codes == "8.2.1/3.9")
        // An M2M SP or unknown party cannot call ES2.
        #expect(d.smdp.getEIS(ES2.GetEISRequest(functionCallIdentifier: "g", eid: eid, smsrID: H.smsrID), context: RequestContext(caller: H.sp))
            .functionExecutionStatus.codes == "1.1/1.1")
    }

    @Test("PLMA and ONC over ES2: relayed in the Operator's own name only; the ONC copy filters what the SM-DP forwards")
    func plmaAndONC() throws {
        let d = try D()
        defer { d.cleanUp() }
        try d.sr.register(card: 0, owner: H.otherMNO)
        let type = try String100(text: D.fixtureNames[0])
        // Before the SM-DP holds any Profile of the Operator, the SM-SR does not take it as its agent.
        let early = PLMA(mnoID: H.mno, m2mSPID: H.sp, profileType: type, authorisedFunctions: [.getEIS], authorisedNotifications: [])
        #expect(d.smdp.setPLMA(ES2.SetPLMARequest(functionCallIdentifier: "early", smsrID: H.smsrID, plma: early), context: Self.mno)
            .functionExecutionStatus.codes == "1.1/1.2")
        let p = try #require(d.download(card: 0, enable: true).iccid)
        try d.deliverAll()
        let plma = PLMA(mnoID: H.mno, m2mSPID: H.sp, profileType: type, authorisedFunctions: [.enableProfile], authorisedNotifications: [.profileEnabled])
        #expect(d.smdp.setPLMA(ES2.SetPLMARequest(functionCallIdentifier: "pl", smsrID: H.smsrID, plma: plma), context: Self.mno).functionExecutionStatus == .success)
        #expect(d.smdp.setPLMA(ES2.SetPLMARequest(functionCallIdentifier: "pl", smsrID: H.smsrID, plma: plma), context: Self.other)
            .functionExecutionStatus.codes == "1.1/1.2")
        #expect(d.smdp.getPLMA(ES2.GetPLMARequest(functionCallIdentifier: "gp", smsrID: H.smsrID), context: Self.mno).plmas == [plma])
        let onc = ONC(mnoID: H.mno, profileType: type, discardedNotifications: [.profileDisabled])
        #expect(d.smdp.setONC(ES2.SetONCRequest(functionCallIdentifier: "o", smsrID: H.smsrID, onc: onc), context: Self.mno).functionExecutionStatus == .success)
        #expect(d.smdp.getONC(ES2.GetONCRequest(functionCallIdentifier: "go", smsrID: H.smsrID), context: Self.mno).oncs == [onc])
        #expect(try d.store.read { try $0.oncs(mno: H.mno, profileType: nil) } == [onc])
        // The M2M SP was told of its PLMA (ES4, by the SM-SR).
        try d.deliverAll()
        #expect(d.recorder.all.contains { $0.recipient == H.sp && $0.messageType == "ES4-HandlePLMASettingNotification" })

        // Notifications: the other Operator enables its own Profile over ES4, which disables this
        // Operator's — discarded by its ONC (ProfileDisabled). Without the ONC entry it is forwarded.
        let own = try #require(try d.sr.stored(0)?.profiles.first { $0.mnoID == H.otherMNO })
        #expect(d.sr.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "o1", eid: d.sr.eid(0), iccid: own.iccid), context: Self.other)
            .functionExecutionStatus == .success)
        try d.deliverAll()
        #expect(!d.recorder.all.contains { $0.messageType == "ES2-HandleProfileDisabledNotification" })
        #expect(d.smdp.setONC(ES2.SetONCRequest(functionCallIdentifier: "o2", smsrID: H.smsrID, onc: ONC(mnoID: H.mno, profileType: type)), context: Self.mno)
            .functionExecutionStatus == .success)
        #expect(d.smdp.enableProfile(ES2.EnableProfileRequest(functionCallIdentifier: "e", eid: d.sr.eid(0), smsrID: H.smsrID, iccid: p), context: Self.mno)
            .functionExecutionStatus == .success)
        #expect(d.sr.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "o2", eid: d.sr.eid(0), iccid: own.iccid), context: Self.other)
            .functionExecutionStatus == .success)
        try d.deliverAll()
        let forwarded = d.recorder.all.filter { $0.messageType == "ES2-HandleProfileDisabledNotification" }
        #expect(forwarded.count == 1 && forwarded[0].recipient == H.mno && String(decoding: forwarded[0].body, as: UTF8.self).contains(p.text))
    }

    @Test("An ES3 notification delivered twice is forwarded once; one from an unknown SM-SR or for an unknown Operator is rejected")
    func notificationDelivery() throws {
        let d = try D()
        defer { d.cleanUp() }
        let note = ES3.HandleProfileEnabledNotification(eid: d.sr.eid(1), iccid: H.iccidA, mnoID: H.mno, completionTimestamp: d.sr.clock.now())
        var writer = XMLWriter(declaration: false, indent: 0)
        writer.startElement(note.descriptor.qualifiedName)
        writer.attribute("xmlns:rps", Namespace.rps)
        note.writeContent(to: &writer)
        writer.endElement()
        let bytes = writer.bytes
        #expect(d.smdp.receive(bytes, from: H.smsrID) == .delivered)
        #expect(d.smdp.receive(bytes, from: H.smsrID) == .delivered)
        #expect(try d.store.read { try $0.outbox(states: [.pending]) }.filter { $0.messageType == "ES2-HandleProfileEnabledNotification" }.count == 1)
        if case .rejected = d.smdp.receive(bytes, from: "1.3.6.1.4.1.99999.2.9") {} else { Issue.record("an unknown SM-SR's notification was accepted") }
        let stranger = ES3.HandleProfileEnabledNotification(eid: d.sr.eid(1), iccid: H.iccidA, mnoID: "1.3.6.1.4.1.99999.4.9", completionTimestamp: d.sr.clock.now())
        var w2 = XMLWriter(declaration: false, indent: 0)
        w2.startElement(stranger.descriptor.qualifiedName)
        w2.attribute("xmlns:rps", Namespace.rps)
        stranger.writeContent(to: &w2)
        w2.endElement()
        if case .rejected = d.smdp.receive(w2.bytes, from: H.smsrID) {} else { Issue.record("a notification for an unknown Operator was accepted") }
        if case .rejected = d.smdp.receive(Array("<x/>".utf8), from: H.smsrID) {} else { Issue.record("a non-notification was accepted") }
    }

    @Test("Each of the 11 ES3 notifications becomes its ES2 counterpart for the Operator it names")
    func everyNotification() throws {
        let d = try D()
        defer { d.cleanUp() }
        let eid = d.sr.eid(1), iccid = H.iccidA, now = d.sr.clock.now()
        let plma = PLMA(mnoID: H.mno, m2mSPID: H.sp, profileType: try String100(text: H.profileType), authorisedFunctions: [.getEIS], authorisedNotifications: [])
        let notes: [any SGP02Message] = [
            ES3.HandleProfileEnabledNotification(eid: eid, iccid: iccid, mnoID: H.mno, completionTimestamp: now),
            ES3.HandleProfileDisabledNotification(eid: eid, iccid: iccid, mnoID: H.mno, completionTimestamp: now),
            ES3.HandleProfileDeletedNotification(eid: eid, iccid: iccid, mnoID: H.mno, completionTimestamp: now),
            ES3.HandleProfileDownloadedNotification(eid: eid, iccid: iccid, mnoID: H.mno, completionTimestamp: now),
            ES3.HandleProfilePOL2UpdatedNotification(eid: eid, iccid: iccid, mnoID: H.mno, pol2: POL2(), completionTimestamp: now),
            ES3.HandleFallBackAttributeSetNotification(eid: eid, iccid: iccid, mnoID: H.mno, completionTimestamp: now),
            ES3.HandleFallBackAttributeUnsetNotification(eid: eid, iccid: iccid, mnoID: H.mno, completionTimestamp: now),
            ES3.HandleEmergencyProfileAttributeSetNotification(eid: eid, iccid: iccid, mnoID: H.mno, completionTimestamp: now),
            ES3.HandleEmergencyProfileAttributeUnsetNotification(eid: eid, iccid: iccid, mnoID: H.mno, completionTimestamp: now),
            ES3.HandlePLMASettingNotification(plma: plma, completionTimestamp: now),
            ES3.HandleSMSRChangeNotification(eis: try d.sr.eis(card: 0), mnoID: H.mno, completionTimestamp: now),
        ]
        for note in notes {
            var writer = XMLWriter(declaration: false, indent: 0)
            writer.startElement(note.descriptor.qualifiedName)
            writer.attribute("xmlns:rps", Namespace.rps)
            note.writeContent(to: &writer)
            writer.endElement()
            #expect(d.smdp.receive(writer.bytes, from: H.smsrID) == .delivered, "\(note.descriptor.elementName)")
        }
        let sent = try d.store.read { try $0.outbox(states: [.pending]) }
        #expect(sent.map(\.messageType) == notes.map { "ES2-" + $0.descriptor.elementName.dropFirst(4) })
        #expect(sent.allSatisfy { $0.recipient == H.mno && $0.via == "ES2" })
        // SMSRChange carries the Operator's part of the EIS only.
        let change = try StoredMessage(try #require(sent.last).body).decode(ES2.HandleSMSRChangeNotification.self)
        #expect(change.eis.profiles.allSatisfy { $0.mnoID == H.mno } && change.eis.eid == d.sr.eid(0))
    }

    /// What the Operator ends with: the EIS's Profiles and the notifications it received.
    struct Outcome: Equatable {
        struct Profile: Equatable { var iccid: ICCID, state: ProfileState, fallBack: Bool, emergency: Bool, aid: AID, smdp: OID?, mno: OID }
        var profiles: [Profile]
        /// (recipient, notification without its interface prefix, ICCID), in order of delivery.
        var notifications: [String]
    }

    /// Download P and Q, enable P, fall-back attribute to Q, disable P (Q takes over), enable P, the
    /// card falls back on its own, delete P — the Operator's functions over ES2 or ES4.
    static func scenario(viaES2: Bool) throws -> Outcome {
        let d = try D()
        defer { d.cleanUp() }
        try d.sr.register(card: 2)
        let eid = d.sr.eid(2)
        let p = try #require(d.download(card: 2, fci: "dl-p").iccid)
        let q = try #require(d.download(card: 2, type: D.fixtureNames[1], fci: "dl-q").iccid)
        try d.deliverAll()
        var n = 0
        func run(_ es2: (String) -> FunctionExecutionStatus, _ es4: (String) -> FunctionExecutionStatus) throws {
            n += 1
            let status = viaES2 ? es2("s\(n)") : es4("s\(n)")
            #expect(status == .success, "step \(n): \(status)")
            try d.deliverAll()
        }
        let smdp = d.smdp, smsr = d.sr.smsr
        func enable(_ iccid: ICCID) throws {
            try run({ smdp.enableProfile(ES2.EnableProfileRequest(functionCallIdentifier: $0, eid: eid, smsrID: H.smsrID, iccid: iccid), context: Self.mno).functionExecutionStatus },
                    { smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: $0, eid: eid, iccid: iccid), context: Self.mno).functionExecutionStatus })
        }
        try enable(p)
        try run({ smdp.setFallBackAttribute(ES2.SetFallBackAttributeRequest(functionCallIdentifier: $0, eid: eid, smsrID: H.smsrID, iccid: q), context: Self.mno).functionExecutionStatus },
                { smsr.setFallBackAttribute(ES4.SetFallBackAttributeRequest(functionCallIdentifier: $0, eid: eid, iccid: q), context: Self.mno).functionExecutionStatus })
        try run({ smdp.disableProfile(ES2.DisableProfileRequest(functionCallIdentifier: $0, eid: eid, smsrID: H.smsrID, iccid: p), context: Self.mno).functionExecutionStatus },
                { smsr.disableProfile(ES4.DisableProfileRequest(functionCallIdentifier: $0, eid: eid, iccid: p), context: Self.mno).functionExecutionStatus })
        try enable(p)
        #expect(d.sr.fleet.withCard(at: 2) { $0.loseConnectivity() })
        #expect(try d.sr.smsr.pollNotifications(eid: eid) == 1)
        try d.deliverAll()
        try run({ smdp.deleteProfile(ES2.DeleteProfileRequest(functionCallIdentifier: $0, eid: eid, iccid: p, smsrID: H.smsrID), context: Self.mno).functionExecutionStatus },
                { smsr.deleteProfile(ES4.DeleteProfileRequest(functionCallIdentifier: $0, eid: eid, iccid: p), context: Self.mno).functionExecutionStatus })
        let eis = try #require(try d.sr.stored(2))
        let notes = d.recorder.all.filter { $0.messageType.contains("Notification") }.map { item -> String in
            let body = String(decoding: item.body, as: UTF8.self)
            let iccid = body.range(of: "<rps:Iccid>").flatMap { start in body[start.upperBound...].range(of: "<").map { String(body[start.upperBound..<$0.lowerBound]) } }
            return "\(item.recipient.text) \(item.messageType.drop { $0 != "-" }.dropFirst()) \(iccid ?? "-")"
        }
        return Outcome(profiles: eis.profiles.map { Outcome.Profile(iccid: $0.iccid, state: $0.state, fallBack: $0.fallbackAttribute,
                                                                     emergency: $0.emergencyProfileAttribute, aid: $0.isdPAID, smdp: $0.smdpID, mno: $0.mnoID) },
                       notifications: notes)
    }

    @Test("Dual path: download, enable, fall-back attribute, disable, card fall-back, delete — through ES2 (3 hops) and ES4 (2 hops): same EIS, same notifications")
    func dualPath() throws {
        let es2 = try Self.scenario(viaES2: true)
        let es4 = try Self.scenario(viaES2: false)
        #expect(es2 == es4)
        #expect(es2.profiles.count == 1 && es2.profiles[0].state == .enabled && es2.profiles[0].fallBack)
        // The Operator's own calls are not notified back to it (either path); the card's own fall-back
        // is (nobody asked for it): P disabled, Q enabled — through the SM-DP both times.
        #expect(es2.notifications.count == 2, "\(es2.notifications)")
        #expect(es2.notifications.contains { $0.hasPrefix("\(H.mno.text) HandleProfileEnabledNotification") }, "\(es2.notifications)")
        #expect(es2.notifications.contains { $0.hasPrefix("\(H.mno.text) HandleProfileDisabledNotification") }, "\(es2.notifications)")
    }
}
