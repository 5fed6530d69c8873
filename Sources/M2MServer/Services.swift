// What answers a SOAP message once the server has read it and knows who sent it: one `SOAPService`
// per endpoint. The roles' services map each message type to the role's provider method (the role
// does the checking: caller role, rights, idempotency); a notification is acknowledged without a
// response message.

public import M2MCore
public import M2MRoles
public import M2MSOAP
import Foundation
import Synchronization

/// The result of one message.
public enum SOAPOutcome: Sendable {
    /// A function's response (sent in the HTTP response, or as the asynchronous callback).
    case response(any SGP02Response)
    /// A notification or callback taken (HTTP 202, no body).
    case accepted
    /// The message cannot be served here (a SOAP Fault).
    case refused(SOAPError)
}

public protocol SOAPService: Sendable {
    /// The interfaces whose messages this endpoint takes.
    var interfaces: Set<Interface> { get }
    /// Serves `message` from `caller` (the entity of its TLS certificate). Runs off the event loop: it
    /// may block (the roles talk to cards and databases).
    func handle(_ message: any SGP02Message, caller: OID) -> SOAPOutcome
    /// The same, with the message's addressing header (a callback's RelatesTo, say).
    func handle(_ message: any SGP02Message, caller: OID, header: AddressingHeader) -> SOAPOutcome
}

extension SOAPService {
    public func handle(_ message: any SGP02Message, caller: OID, header: AddressingHeader) -> SOAPOutcome { handle(message, caller: caller) }
}

extension SOAPOutcome {
    static func unsupported(_ message: any SGP02Message, at endpoint: String) -> SOAPOutcome {
        .refused(SOAPError(code: .unknownMessage, path: message.descriptor.elementName,
                           detail: "\(message.descriptor.elementName) is not served by the \(endpoint) endpoint"))
    }
}

/// The SM-SR's ES1, ES3, ES4, ES4A and ES7 endpoints.
public struct SMSRService: SOAPService {
    public let smsr: SMSR
    public let interfaces: Set<Interface>

    public init(smsr: SMSR, interfaces: Set<Interface>) {
        self.smsr = smsr
        self.interfaces = interfaces
    }

    public func handle(_ message: any SGP02Message, caller: OID) -> SOAPOutcome {
        guard interfaces.contains(message.descriptor.function.interface) else { return .unsupported(message, at: "SM-SR") }
        let context = RequestContext(caller: caller)
        switch message {
        // ES1
        case let r as ES1.RegisterEISRequest: return .response(smsr.registerEIS(r, context: context))
        case let r as ES1.UpdateEISAdditionalPropertiesRequest: return .response(smsr.updateEISAdditionalProperties(r, context: context))
        // ES4
        case let r as ES4.GetEISRequest: return .response(smsr.getEIS(r, context: context))
        case let r as ES4.AuditEISRequest: return .response(smsr.auditEIS(r, context: context))
        case let r as ES4.UpdatePolicyRulesRequest: return .response(smsr.updatePolicyRules(r, context: context))
        case let r as ES4.UpdateSubscriptionAddressRequest: return .response(smsr.updateSubscriptionAddress(r, context: context))
        case let r as ES4.EnableProfileRequest: return .response(smsr.enableProfile(r, context: context))
        case let r as ES4.DisableProfileRequest: return .response(smsr.disableProfile(r, context: context))
        case let r as ES4.DeleteProfileRequest: return .response(smsr.deleteProfile(r, context: context))
        case let r as ES4.SetFallBackAttributeRequest: return .response(smsr.setFallBackAttribute(r, context: context))
        case let r as ES4.SetEmergencyProfileAttributeRequest: return .response(smsr.setEmergencyProfileAttribute(r, context: context))
        case let r as ES4.GetPLMARequest: return .response(smsr.getPLMA(r, context: context))
        case let r as ES4.PrepareSMSRChangeRequest: return .response(smsr.prepareSMSRChange(r, context: context))
        case let r as ES4.SMSRChangeRequest: return .response(smsr.smsrChange(r, context: context))
        // ES4A
        case let r as ES4A.SetPLMARequest: return .response(smsr.setPLMA(r, context: context))
        case let r as ES4A.GetPLMARequest: return .response(smsr.getPLMA(r, context: context))
        case let r as ES4A.SetONCRequest: return .response(smsr.setONC(r, context: context))
        case let r as ES4A.GetONCRequest: return .response(smsr.getONC(r, context: context))
        // ES7 (another SM-SR, at an SM-SR change)
        case let r as ES7.HandoverEUICCRequest: return .response(smsr.handoverEUICC(r, context: context))
        case let r as ES7.AuthenticateSMSRRequest: return .response(smsr.authenticateSMSR(r, context: context))
        case let r as ES7.CreateAdditionalKeySetRequest: return .response(smsr.createAdditionalKeySet(r, context: context))
        // ES3: the same mapping as an in-process SM-DP uses.
        case let r as any SGP02Request where r.descriptor.function.interface == .es3:
            func call<R: SGP02Request>(_ request: R) -> SOAPOutcome {
                do { return .response(try InProcessES3(smsr: smsr, caller: caller).call(request)) } catch {
                    return .unsupported(request, at: "SM-SR")
                }
            }
            return call(r)
        default:
            return .unsupported(message, at: "SM-SR")
        }
    }
}

/// The SM-DP's ES2 endpoint (Operators call it) and its ES3 notification receiver (SM-SRs call it).
public struct SMDPService: SOAPService {
    public let smdp: SMDP
    public let interfaces: Set<Interface>

    public init(smdp: SMDP, interfaces: Set<Interface> = [.es2, .es3]) {
        self.smdp = smdp
        self.interfaces = interfaces
    }

    public func handle(_ message: any SGP02Message, caller: OID) -> SOAPOutcome {
        guard interfaces.contains(message.descriptor.function.interface) else { return .unsupported(message, at: "SM-DP") }
        let context = RequestContext(caller: caller)
        switch message {
        case let r as ES2.GetEISRequest: return .response(smdp.getEIS(r, context: context))
        case let r as ES2.DownloadProfileRequest: return .response(smdp.downloadProfile(r, context: context))
        case let r as ES2.UpdatePolicyRulesRequest: return .response(smdp.updatePolicyRules(r, context: context))
        case let r as ES2.UpdateSubscriptionAddressRequest: return .response(smdp.updateSubscriptionAddress(r, context: context))
        case let r as ES2.EnableProfileRequest: return .response(smdp.enableProfile(r, context: context))
        case let r as ES2.DisableProfileRequest: return .response(smdp.disableProfile(r, context: context))
        case let r as ES2.DeleteProfileRequest: return .response(smdp.deleteProfile(r, context: context))
        case let r as ES2.AuditEISRequest: return .response(smdp.auditEIS(r, context: context))
        case let r as ES2.SetPLMARequest: return .response(smdp.setPLMA(r, context: context))
        case let r as ES2.GetPLMARequest: return .response(smdp.getPLMA(r, context: context))
        case let r as ES2.SetONCRequest: return .response(smdp.setONC(r, context: context))
        case let r as ES2.GetONCRequest: return .response(smdp.getONC(r, context: context))
        case let r as ES2.SetEmergencyProfileAttributeRequest: return .response(smdp.setEmergencyProfileAttribute(r, context: context))
        case let r as ES2.SetFallBackAttributeRequest: return .response(smdp.setFallBackAttribute(r, context: context))
        case let n as any SGP02Notification where n.descriptor.function.interface == .es3:
            switch smdp.receive(n, from: caller) {
            case .delivered: return .accepted
            case .retry(let reason):
                return .refused(SOAPError(code: .invalidValue, path: n.descriptor.elementName, detail: "not taken now, send again: \(reason)",
                                          status: .failed(.functionProvider, .executionError, message: reason)))
            case .rejected(let reason):
                return .refused(SOAPError(code: .invalidValue, path: n.descriptor.elementName, detail: reason,
                                          status: .failed(.functionRequester, .notAllowed, message: reason)))
            }
        default:
            return .unsupported(message, at: "SM-DP")
        }
    }
}

/// The endpoint asynchronous responses come back to for calls this role made with ReplyTo
/// (`SOAPES3Endpoint` with callbacks: one SM-SR calling another over ES7). A callback is taken when
/// its RelatesTo names a request still waited for and it comes from the entity the request went to;
/// anything else is refused (a SOAP Fault), so nobody else can answer for the peer.
public final class CallbackMailbox: SOAPService, @unchecked Sendable {
    public struct Ticket: Sendable, Hashable {
        let messageID: String
    }

    struct Slot {
        let from: OID?
        let arrived: DispatchSemaphore
        var response: (any SGP02Response)?
    }

    public let interfaces = Set(Interface.allCases)
    let slots = Mutex<[String: Slot]>([:])
    let takenCount = Mutex(0)

    /// Callbacks taken so far.
    public var taken: Int { takenCount.withLock { $0 } }

    public init() {}

    /// Starts waiting for the answer to request `messageID` sent to `from` (nil: the peer's entity is
    /// not known, any authenticated caller may answer).
    public func expect(_ messageID: String, from: OID?) -> Ticket {
        slots.withLock { $0[messageID] = Slot(from: from, arrived: DispatchSemaphore(value: 0)) }
        return Ticket(messageID: messageID)
    }

    /// The answer, once it arrived (nil after `seconds`).
    public func wait(_ ticket: Ticket, seconds: Double) -> (any SGP02Response)? {
        guard let semaphore = slots.withLock({ $0[ticket.messageID]?.arrived }) else { return nil }
        guard semaphore.wait(timeout: .now() + seconds) == .success else { return nil }
        return slots.withLock { $0[ticket.messageID]?.response }
    }

    public func forget(_ ticket: Ticket) { _ = slots.withLock { $0.removeValue(forKey: ticket.messageID) } }

    /// Wakes every waiting call without an answer (shutdown): each counts as "no answer", which the
    /// caller's recovery settles later.
    public func cancelAll() { slots.withLock { for slot in $0.values where slot.response == nil { slot.arrived.signal() } } }

    public func handle(_ message: any SGP02Message, caller: OID) -> SOAPOutcome {
        handle(message, caller: caller, header: AddressingHeader())
    }

    public func handle(_ message: any SGP02Message, caller: OID, header: AddressingHeader) -> SOAPOutcome {
        guard let response = message as? any SGP02Response, let relatesTo = header.relatesTo else {
            return .refused(SOAPError(code: .unknownMessage, path: message.descriptor.elementName, detail: "only asynchronous responses are taken here"))
        }
        let taken = slots.withLock { slots -> Bool in
            guard var slot = slots[relatesTo], slot.from == nil || slot.from == caller, slot.response == nil else { return false }
            slot.response = response
            slots[relatesTo] = slot
            slot.arrived.signal()
            return true
        }
        if taken { takenCount.withLock { $0 += 1 } }
        return taken ? .accepted
            : .refused(SOAPError(code: .unknownMessage, path: message.descriptor.elementName, detail: "no request of this role awaits this answer from the caller"))
    }
}

/// An endpoint that takes notifications and asynchronous responses and keeps them: an Operator's or
/// M2M SP's receiver in `make demo` and the tests.
public final class RecordingReceiver: SOAPService, @unchecked Sendable {
    public struct Received: Sendable {
        public let message: any SGP02Message
        public let caller: OID
        public let header: AddressingHeader
    }

    public let interfaces: Set<Interface>
    let received = Mutex<[Received]>([])

    public init(interfaces: Set<Interface> = Set(Interface.allCases)) { self.interfaces = interfaces }

    public func handle(_ message: any SGP02Message, caller: OID) -> SOAPOutcome {
        handle(message, caller: caller, header: AddressingHeader())
    }

    public func handle(_ message: any SGP02Message, caller: OID, header: AddressingHeader) -> SOAPOutcome {
        received.withLock { $0.append(Received(message: message, caller: caller, header: header)) }
        return .accepted
    }

    /// Waits until `count` messages arrived (or `seconds` passed); returns what arrived.
    public func wait(for count: Int, seconds: Double = 10) -> [Received] {
        let deadline = Date().addingTimeInterval(seconds)
        while all.count < count, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        return all
    }

    public var all: [Received] { received.withLock { $0 } }
}
