// The SM-DP's side of ES3: one SM-SR as the SM-DP calls it. `ES3Endpoint.call` takes any ES3
// request and gives its response, or throws when the request may not have arrived (the SM-DP then
// asks again with the same FunctionCallIdentifier: the SM-SR answers a repeated call with the
// answer it stored). `InProcessES3` calls an SM-SR object in this process; the SOAP/HTTPS client of
// issue #8 is the other implementation.
//
// The other direction, the SM-SR's notifications to the SM-DP, is `LocalNotificationDelivery`: an
// SM-SR outbox row routed "ES2 through the SM-DP" handed to that SM-DP's `receive(_:from:)`, and
// any other row to the sink standing for the Operator or M2M SP endpoint.

public import M2MCore
public import M2MSOAP
public import M2MStorage
import M2MPolicy

/// A request did not get an answer (transport failure): its outcome is unknown.
public struct ES3TransportError: Error, Sendable, CustomStringConvertible {
    public let detail: String
    public init(_ detail: String) { self.detail = detail }
    public var description: String { "ES3 transport: \(detail)" }
}

public protocol ES3Endpoint: Sendable {
    /// Sends one ES3 request (as this SM-DP) and returns the SM-SR's response.
    func call<Request: SGP02Request>(_ request: Request) throws(ES3TransportError) -> Request.Response
}

/// An SM-SR in this process, called as the SM-DP `caller`.
public struct InProcessES3: ES3Endpoint {
    public let smsr: any ES3Provider & ES3DownloadProvider
    public let caller: OID

    public init(smsr: any ES3Provider & ES3DownloadProvider, caller: OID) {
        self.smsr = smsr
        self.caller = caller
    }

    public func call<Request: SGP02Request>(_ request: Request) throws(ES3TransportError) -> Request.Response {
        let context = RequestContext(caller: caller)
        let response: any SGP02Response
        switch request {
        case let r as ES3.GetEISRequest: response = smsr.getEIS(r, context: context)
        case let r as ES3.AuditEISRequest: response = smsr.auditEIS(r, context: context)
        case let r as ES3.CreateISDPRequest: response = smsr.createISDP(r, context: context)
        case let r as ES3.SendDataRequest: response = smsr.sendData(r, context: context)
        case let r as ES3.ProfileDownloadCompletedRequest: response = smsr.profileDownloadCompleted(r, context: context)
        case let r as ES3.UpdatePolicyRulesRequest: response = smsr.updatePolicyRules(r, context: context)
        case let r as ES3.UpdateSubscriptionAddressRequest: response = smsr.updateSubscriptionAddress(r, context: context)
        case let r as ES3.EnableProfileRequest: response = smsr.enableProfile(r, context: context)
        case let r as ES3.DisableProfileRequest: response = smsr.disableProfile(r, context: context)
        case let r as ES3.DeleteISDPRequest: response = smsr.deleteISDP(r, context: context)
        case let r as ES3.UpdateConnectivityParametersRequest: response = smsr.updateConnectivityParameters(r, context: context)
        case let r as ES3.SetFallBackAttributeRequest: response = smsr.setFallBackAttribute(r, context: context)
        case let r as ES3.SetEmergencyProfileAttributeRequest: response = smsr.setEmergencyProfileAttribute(r, context: context)
        case let r as ES3.SetPLMARequest: response = smsr.setPLMA(r, context: context)
        case let r as ES3.GetPLMARequest: response = smsr.getPLMA(r, context: context)
        case let r as ES3.SetONCRequest: response = smsr.setONC(r, context: context)
        case let r as ES3.GetONCRequest: response = smsr.getONC(r, context: context)
        default: throw ES3TransportError("\(Request.descriptor.elementName) is not an ES3 request")
        }
        guard let typed = response as? Request.Response else { throw ES3TransportError("unexpected response type \(type(of: response))") }
        return typed
    }
}

/// Receives the notifications an SM-SR sends over ES3 (the SM-DP).
public protocol ES3NotificationReceiver: Sendable {
    /// `message`: an ES3 Handle*Notification body element; `from`: the SM-SR that sent it.
    func receive(_ message: [UInt8], from smsr: OID) -> DeliveryResult
}

/// Delivers one role's outbox in this process: rows to be relayed by an SM-DP go to that SM-DP's
/// receiver, every other row to `direct` (the Operator's or M2M SP's endpoint; tests record them).
public struct LocalNotificationDelivery: NotificationDelivery {
    public let sender: OID
    public let smdps: [OID: any ES3NotificationReceiver]
    public let direct: any NotificationDelivery

    public init(sender: OID, smdps: [OID: any ES3NotificationReceiver], direct: any NotificationDelivery) {
        self.sender = sender
        self.smdps = smdps
        self.direct = direct
    }

    public func deliver(_ item: OutboxItem) -> DeliveryResult {
        guard item.via == RouteVia.es2.rawValue, let smdp = item.smdp else { return direct.deliver(item) }
        guard let receiver = smdps[smdp] else { return .retry("SM-DP \(smdp.text) is not reachable") }
        return receiver.receive(item.body, from: sender)
    }
}
