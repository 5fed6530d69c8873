// Notifications of the SM-SR (issue #6 §4; docs/smsr.md): every Handle*Notification a change
// causes is filtered by the owner's ONC (Lua `filter_notification`), routed (Lua
// `route_notification`: the owner over ES2 through its SM-DP or ES4 directly, M2M SPs by PLMA,
// never the requester), and written to the outbox in the same transaction as the change, with
// the decision records. `OutboxDispatcher` later hands due rows to a `NotificationDelivery`
// (the SOAP client comes with the server issue) with retry and backoff per retry class.

public import M2MCore
import M2MPolicy
public import M2MSOAP
public import M2MStorage

/// One event to tell the parties about.
struct ProfileEvent {
    var type: NotificationType
    var profile: ProfileInfo
    var pol2: POL2?
}

extension SMSR {
    /// Plans the notifications of `events` on `eis` and writes them (and their decision records)
    /// with `tx`. `requester` is the party whose request caused them (nil: the card or the platform).
    func notify(_ events: [ProfileEvent], eis: EIS, requester: OID?, call: Call?, operation: Int64?, in tx: any SMSRWriting) throws {
        let now = clock.now()
        for event in events {
            let profile = event.profile
            let note = NotificationSnapshot(type: event.type, eid: eis.eid, profile: profile, requester: requester, timestamp: now)
            let owner = profile.mnoID
            let type = profile.profileType?.text
            let onc = try tx.oncs(mno: owner, profileType: type).map(ONCSnapshot.init)
            let filtered = policy.evaluate(.notification(.filterNotification, note, profile: ProfileSnapshot(profile), onc: onc))
            try record(filtered, call: call, operation: operation, in: tx)
            if let decision = filtered.result.filter, !decision.keeps { continue }
            let plma = try tx.plmas(mno: owner, m2mSP: nil, profileType: type).map(PLMASnapshot.init)
            let routed = policy.evaluate(.notification(.routeNotification, note, eis: EISSnapshot(eis), profile: ProfileSnapshot(profile), plma: plma))
            try record(routed, call: call, operation: operation, in: tx)
            let items = (routed.result.routes ?? []).map { route in
                outboxItem(event, eid: eis.eid, route: route, at: now)
            }
            try tx.appendOutbox(items, operationID: operation, now: now)
        }
    }

    /// A PLMASetting notification: to the M2M SP the PLMA names (ES4), plus what the router adds.
    func notifyPLMA(_ plma: PLMA, requester: OID, call: Call, in tx: any SMSRWriting) throws {
        let now = clock.now()
        let body = MessageBytes.encode(ES4.HandlePLMASettingNotification(plma: plma, completionTimestamp: now))
        try tx.appendOutbox(
            [NewOutboxItem(messageType: ES4.HandlePLMASettingNotification.descriptor.elementName, via: RouteVia.es4.rawValue,
                           recipient: plma.m2mSPID, recipientRole: RecipientRole.m2mSP.rawValue, smdp: nil, body: body,
                           retryClass: RetryClass.standard.rawValue)],
            operationID: nil, now: now)
    }

    func record(_ decision: DecisionRecord, call: Call?, operation: Int64?, in tx: any SMSRWriting) throws {
        try tx.appendDecision(hook: decision.hook.rawValue, record: SMSR.encodeDecision(decision), input: decision.input.encoded, operationID: operation,
                              functionCallID: call?.id, now: clock.now())
    }

    func outboxItem(_ event: ProfileEvent, eid: EID, route: Route, at now: Timestamp) -> NewOutboxItem {
        let p = event.profile
        let message: any SGP02Message
        if route.via == .es2 {
            // To the SM-DP, which relays it over ES2 to the owner.
            switch event.type {
            case .profileEnabled: message = ES3.HandleProfileEnabledNotification(eid: eid, iccid: p.iccid, mnoID: p.mnoID, completionTimestamp: now)
            case .profileDisabled: message = ES3.HandleProfileDisabledNotification(eid: eid, iccid: p.iccid, mnoID: p.mnoID, completionTimestamp: now)
            case .profileDeleted: message = ES3.HandleProfileDeletedNotification(eid: eid, iccid: p.iccid, mnoID: p.mnoID, completionTimestamp: now)
            case .profileDownloaded: message = ES3.HandleProfileDownloadedNotification(eid: eid, iccid: p.iccid, mnoID: p.mnoID, completionTimestamp: now)
            case .fallBackAttributeSet: message = ES3.HandleFallBackAttributeSetNotification(eid: eid, iccid: p.iccid, mnoID: p.mnoID, completionTimestamp: now)
            case .fallBackAttributeUnset:
                message = ES3.HandleFallBackAttributeUnsetNotification(eid: eid, iccid: p.iccid, mnoID: p.mnoID, completionTimestamp: now)
            case .emergencyProfileAttributeSet:
                message = ES3.HandleEmergencyProfileAttributeSetNotification(eid: eid, iccid: p.iccid, mnoID: p.mnoID, completionTimestamp: now)
            case .emergencyProfileAttributeUnset:
                message = ES3.HandleEmergencyProfileAttributeUnsetNotification(eid: eid, iccid: p.iccid, mnoID: p.mnoID, completionTimestamp: now)
            case .profilePOL2Updated:
                message = ES3.HandleProfilePOL2UpdatedNotification(eid: eid, iccid: p.iccid, mnoID: p.mnoID, pol2: event.pol2 ?? p.pol2, completionTimestamp: now)
            case .smsrChange, .plmaSetting:
                message = ES3.HandleProfileEnabledNotification(eid: eid, iccid: p.iccid, mnoID: p.mnoID, completionTimestamp: now)  // not planned here
            }
        } else {
            switch event.type {
            case .profileEnabled: message = ES4.HandleProfileEnabledNotification(eid: eid, iccid: p.iccid, completionTimestamp: now)
            case .profileDisabled: message = ES4.HandleProfileDisabledNotification(eid: eid, iccid: p.iccid, completionTimestamp: now)
            case .profileDeleted: message = ES4.HandleProfileDeletedNotification(eid: eid, iccid: p.iccid, completionTimestamp: now)
            case .profileDownloaded: message = ES4.HandleProfileDownloadedNotification(eid: eid, iccid: p.iccid, completionTimestamp: now)
            case .fallBackAttributeSet: message = ES4.HandleFallBackAttributeSetNotification(eid: eid, iccid: p.iccid, completionTimestamp: now)
            case .fallBackAttributeUnset: message = ES4.HandleFallBackAttributeUnsetNotification(eid: eid, iccid: p.iccid, completionTimestamp: now)
            case .emergencyProfileAttributeSet:
                message = ES4.HandleEmergencyProfileAttributeSetNotification(eid: eid, iccid: p.iccid, completionTimestamp: now)
            case .emergencyProfileAttributeUnset:
                message = ES4.HandleEmergencyProfileAttributeUnsetNotification(eid: eid, iccid: p.iccid, completionTimestamp: now)
            case .profilePOL2Updated:
                message = ES4.HandleProfilePOL2UpdatedNotification(eid: eid, iccid: p.iccid, pol2: event.pol2 ?? p.pol2, completionTimestamp: now)
            case .smsrChange, .plmaSetting:
                message = ES4.HandleProfileEnabledNotification(eid: eid, iccid: p.iccid, completionTimestamp: now)  // not planned here
            }
        }
        return NewOutboxItem(
            messageType: message.descriptor.elementName, via: route.via.rawValue, recipient: route.recipient, recipientRole: route.role.rawValue,
            smdp: route.smdp, body: MessageBytes.encode(message), retryClass: route.retry.rawValue)
    }
}

// MARK: - Delivery

/// What a delivery attempt gave.
public enum DeliveryResult: Sendable, Hashable {
    case delivered
    /// A transient failure: try again later.
    case retry(String)
    /// The recipient refused the message for good.
    case rejected(String)
}

/// Hands one outbox row to its recipient (the SOAP/HTTPS client comes with the server issue).
public protocol NotificationDelivery: Sendable {
    func deliver(_ item: OutboxItem) -> DeliveryResult
}

/// Delivers due outbox rows with backoff: `critical` never gives up (1 s doubling to 1 h);
/// `standard` doubles from 1 s to 10 min and gives up after 24 h of attempts; `best_effort` gives
/// up after 3 attempts; `none` after 1.
public struct OutboxDispatcher: Sendable {
    public let store: any OutboxStore
    public let delivery: any NotificationDelivery
    public let clock: any Clock

    public init(store: any OutboxStore, delivery: any NotificationDelivery, clock: any Clock) {
        self.store = store
        self.delivery = delivery
        self.clock = clock
    }

    /// Delay before attempt `attempts + 1` and whether the row is dead instead.
    public static func backoff(retryClass: String, attempts: Int) -> (delay: Int64, dead: Bool) {
        let exponential = Int64(1) << Int64(min(attempts - 1, 20))
        switch retryClass {
        case RetryClass.critical.rawValue: return (min(exponential, 3600), false)
        case RetryClass.bestEffort.rawValue: return (min(exponential, 60), attempts >= 3)
        case RetryClass.none.rawValue: return (0, true)
        default:
            let delay = min(exponential, 600)
            // Doubling to 10 min then every 10 min: ~24 h of attempts is 156 of them.
            return (delay, attempts >= 156)
        }
    }

    /// Delivers every row due now; returns how many were delivered.
    @discardableResult
    public func runOnce(limit: Int = 100) throws -> Int {
        let now = clock.now()
        let due = try store.dueOutbox(now: now, limit: limit)
        var delivered = 0
        for item in due {
            switch delivery.deliver(item) {
            case .delivered:
                try store.markDelivered(item.id, now: clock.now())
                delivered += 1
            case .retry(let reason):
                let attempts = item.attempts + 1
                let (delay, dead) = Self.backoff(retryClass: item.retryClass, attempts: attempts)
                try store.reschedule(item.id, attempts: attempts, at: Timestamp(seconds: now.seconds + delay), error: reason, dead: dead)
            case .rejected(let reason):
                try store.reschedule(item.id, attempts: item.attempts + 1, at: now, error: reason, dead: true)
            }
        }
        return delivered
    }
}
