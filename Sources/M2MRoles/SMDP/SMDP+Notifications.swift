// The SM-SRs' ES3 notifications, forwarded to the Operators over ES2 (offcard §1.1: the ES3 form
// carries `Mno-id`, the ES2 form goes to that Operator without it). For each one the SM-DP:
//   * accepts it only from an SM-SR it reaches, for an Operator it serves;
//   * ignores a repeated delivery (the same message from the same SM-SR: the function-call record
//     keyed by the message's digest), so an SM-SR retrying after a lost acknowledgement causes one
//     ES2 notification;
//   * updates its record of the Profile (state; Deleted; the SM-SR after an SM-SR change);
//   * runs the Operator's ONC (the copy ES2.SetONC left here) through the Lua `filter_notification`
//     hook, and records the decision;
//   * writes the ES2 notification to its outbox — all in one transaction.

public import M2MCore
import M2MCrypto
import M2MPolicy
public import M2MSOAP
import M2MStorage
import M2MXML

extension SMDP: ES3NotificationReceiver {
    /// One ES3 notification reduced to what forwarding needs.
    struct Forwarded {
        var type: NotificationType
        var eid: EID?
        var iccid: ICCID?
        var mno: OID
        var message: any SGP02Message
        /// The Profile's state afterwards, to record.
        var state: String?
        var eis: EIS?
    }

    static func forwarded(_ message: any SGP02Message) -> Forwarded? {
        func profile(_ type: NotificationType, _ eid: EID, _ iccid: ICCID, _ mno: OID, state: String? = nil, _ message: any SGP02Message) -> Forwarded {
            Forwarded(type: type, eid: eid, iccid: iccid, mno: mno, message: message, state: state)
        }
        switch message {
        case let n as ES3.HandleProfileEnabledNotification:
            return profile(.profileEnabled, n.eid, n.iccid, n.mnoID, state: ProfileState.enabled.rawValue,
                           ES2.HandleProfileEnabledNotification(eid: n.eid, iccid: n.iccid, completionTimestamp: n.completionTimestamp))
        case let n as ES3.HandleProfileDisabledNotification:
            return profile(.profileDisabled, n.eid, n.iccid, n.mnoID, state: ProfileState.disabled.rawValue,
                           ES2.HandleProfileDisabledNotification(eid: n.eid, iccid: n.iccid, completionTimestamp: n.completionTimestamp))
        case let n as ES3.HandleProfileDeletedNotification:
            return profile(.profileDeleted, n.eid, n.iccid, n.mnoID, state: SMDP.deleted,
                           ES2.HandleProfileDeletedNotification(eid: n.eid, iccid: n.iccid, completionTimestamp: n.completionTimestamp))
        case let n as ES3.HandleProfileDownloadedNotification:
            return profile(.profileDownloaded, n.eid, n.iccid, n.mnoID,
                           ES2.HandleProfileDownloadedNotification(eid: n.eid, iccid: n.iccid, completionTimestamp: n.completionTimestamp))
        case let n as ES3.HandleProfilePOL2UpdatedNotification:
            return profile(.profilePOL2Updated, n.eid, n.iccid, n.mnoID,
                           ES2.HandleProfilePOL2UpdatedNotification(eid: n.eid, iccid: n.iccid, pol2: n.pol2, completionTimestamp: n.completionTimestamp))
        case let n as ES3.HandleFallBackAttributeSetNotification:
            return profile(.fallBackAttributeSet, n.eid, n.iccid, n.mnoID,
                           ES2.HandleFallBackAttributeSetNotification(eid: n.eid, iccid: n.iccid, completionTimestamp: n.completionTimestamp))
        case let n as ES3.HandleFallBackAttributeUnsetNotification:
            return profile(.fallBackAttributeUnset, n.eid, n.iccid, n.mnoID,
                           ES2.HandleFallBackAttributeUnsetNotification(eid: n.eid, iccid: n.iccid, completionTimestamp: n.completionTimestamp))
        case let n as ES3.HandleEmergencyProfileAttributeSetNotification:
            return profile(.emergencyProfileAttributeSet, n.eid, n.iccid, n.mnoID,
                           ES2.HandleEmergencyProfileAttributeSetNotification(eid: n.eid, iccid: n.iccid, completionTimestamp: n.completionTimestamp))
        case let n as ES3.HandleEmergencyProfileAttributeUnsetNotification:
            return profile(.emergencyProfileAttributeUnset, n.eid, n.iccid, n.mnoID,
                           ES2.HandleEmergencyProfileAttributeUnsetNotification(eid: n.eid, iccid: n.iccid, completionTimestamp: n.completionTimestamp))
        case let n as ES3.HandlePLMASettingNotification:
            return Forwarded(type: .plmaSetting, mno: n.plma.mnoID,
                             message: ES2.HandlePLMASettingNotification(plma: n.plma, completionTimestamp: n.completionTimestamp))
        case let n as ES3.HandleSMSRChangeNotification:
            var part = n.eis
            part.profiles = part.profiles.filter { $0.mnoID == n.mnoID }
            return Forwarded(type: .smsrChange, eid: n.eis.eid, mno: n.mnoID,
                             message: ES2.HandleSMSRChangeNotification(eis: part, completionTimestamp: n.completionTimestamp), eis: part)
        default:
            return nil
        }
    }

    public func receive(_ message: [UInt8], from smsr: OID) -> DeliveryResult {
        let decoded: any SGP02Message
        do {
            let root = try XMLReader.parse(message, limits: .default, knownNamespaces: Namespace.known)
            guard let type = SOAPCodec.messageType(forElement: root.localName) else { return .rejected("\(root.localName) is not an SGP.02 message") }
            decoded = try type.init(xmlElement: root)
        } catch {
            return .rejected("malformed notification: \(error)")
        }
        return receive(decoded, from: smsr)
    }

    /// A decoded ES3 notification (the server hands it over decoded).
    public func receive(_ decoded: any SGP02Message, from smsr: OID) -> DeliveryResult {
        guard smsrs[smsr] != nil else { return .rejected("SM-SR \(smsr.text) is not one this SM-DP works with") }
        guard let event = Self.forwarded(decoded) else { return .rejected("\(decoded.descriptor.elementName) is not an ES3 notification") }
        let message = MessageBytes.encode(decoded)
        do {
            return try store.write { tx -> DeliveryResult in
                guard try tx.party(event.mno)?.role == .mno else { return .rejected("Operator \(event.mno.text) is not served by this SM-DP") }
                // A repeated delivery is acknowledged again and forwarded once.
                let digest = SHA256.hash(message)
                let key = "notification:" + Hex.encode(digest)
                if try tx.functionCall(caller: smsr, identifier: key) != nil { return .delivered }
                let now = clock.now()
                let callID = try tx.beginFunctionCall(caller: smsr, identifier: key, function: "ES3.\(event.message.descriptor.elementName)",
                                                      digest: digest, now: now)
                var known = try event.iccid.flatMap { try tx.profile($0) }
                if var changed = known, let state = event.state, changed.mno == event.mno {
                    changed.state = state
                    try tx.upsertProfile(changed, now: now)
                    known = changed
                }
                if let eis = event.eis {
                    for profile in eis.profiles {
                        if var moved = try tx.profile(profile.iccid), moved.mno == event.mno {
                            moved.smsr = eis.smsrID
                            try tx.upsertProfile(moved, now: now)
                        }
                    }
                }
                // The Operator's ONC, as set through this SM-DP.
                let profileType = known?.profileType.flatMap { try? String100(text: $0) }
                let onc = try tx.oncs(mno: event.mno, profileType: profileType?.text).map(ONCSnapshot.init)
                var keep = true
                if let eid = event.eid {
                    let note = NotificationSnapshot(type: event.type, eid: eid, iccid: event.iccid, mnoID: event.mno, profileType: profileType,
                                                    smdpID: configuration.smdpID, requester: nil, smsrID: event.eis?.smsrID, timestamp: now)
                    let decision = policy.evaluate(.notification(.filterNotification, note, onc: onc))
                    try record(decision, download: nil, call: callID, in: tx)
                    keep = decision.result.filter?.keeps ?? true
                }
                if keep {
                    let critical: Set<NotificationType> = [.profileDeleted, .smsrChange]
                    try tx.appendOutbox([NewOutboxItem(
                        messageType: event.message.descriptor.elementName, via: RouteVia.es2.rawValue, recipient: event.mno,
                        recipientRole: RecipientRole.mno.rawValue, smdp: nil, body: MessageBytes.encode(event.message),
                        retryClass: (critical.contains(event.type) ? RetryClass.critical : RetryClass.standard).rawValue)], operationID: nil, now: now)
                }
                try tx.completeFunctionCall(callID, response: [], now: now)
                return .delivered
            }
        } catch {
            return .retry("the SM-DP store failed: \(type(of: error))")
        }
    }
}
