// Outgoing SOAP over HTTPS with mutual TLS (issue #8; docs/server.md), on AsyncHTTPClient (pooled
// keep-alive connections, timeouts): a role's requests (the SM-DP's ES3 calls: `SOAPES3Endpoint`),
// its asynchronous responses (callbacks, retried with backoff until acknowledged) and its outbox's
// notifications (`SOAPNotificationDelivery`, with the outbox's own retry classes).

import AsyncHTTPClient
public import M2MCore
public import M2MRoles
public import M2MSOAP
public import M2MStorage
import M2MPolicy
import M2MXML
import Foundation
import NIOCore
import NIOHTTP1
public import NIOPosix
import Synchronization

public final class SOAPClient: Sendable {
    /// How this role names itself in wsa:From.
    public let identity: EndpointAddress
    let http: HTTPClient
    let timeout: TimeAmount
    /// Callback attempts before giving up (1 s doubling to 60 s between them).
    public let callbackAttempts: Int

    public init(identity: EndpointAddress, tls: TLSCredentials?, group: MultiThreadedEventLoopGroup, timeoutSeconds: Int64 = 60,
                callbackAttempts: Int = 10) throws {
        self.identity = identity
        self.timeout = .seconds(timeoutSeconds)
        self.callbackAttempts = callbackAttempts
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: try tls?.clientConfiguration(), timeout: .init(connect: .seconds(10), read: .seconds(timeoutSeconds)))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16)
        configuration.httpVersion = .http1Only
        http = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
    }

    public func shutdown() { try? http.syncShutdown() }

    /// The outcome of one POST.
    public enum Outcome: Sendable {
        /// HTTP 200 with an envelope (a response, or a Fault).
        case envelope(SGP02Envelope)
        /// HTTP 202 (taken; its answer, if any, comes later).
        case accepted
        /// Another status: the receiver refused (4xx) or failed (5xx).
        case status(Int, String)
    }

    /// POSTs `envelope` to `url`; blocks (never call it on an event loop). Throws when the exchange
    /// failed on the way (connection, TLS, timeout): the message may not have arrived.
    public func post(_ envelope: SGP02Envelope, to url: String) throws -> Outcome {
        var headers = HTTPHeaders()
        let action = envelope.header.action ?? ""
        headers.add(name: "content-type", value: "application/soap+xml; charset=utf-8; action=\"\(action)\"")
        let request = try HTTPClient.Request(url: url, method: .POST, headers: headers, body: .bytes(SOAPCodec.encode(envelope, indent: 0)))
        let response = try http.execute(request: request, deadline: .now() + timeout).wait()
        let body = response.body.map { Array($0.readableBytesView) } ?? []
        switch response.status.code {
        case 200 where body.isEmpty:
            return .accepted
        case 200, 500 where !body.isEmpty:
            do {
                return .envelope(try SOAPCodec.decode(body))
            } catch {
                return .status(Int(response.status.code), "an answer that is no SGP.02 envelope: \(error)")
            }
        case 202, 204:
            return .accepted
        default:
            if !body.isEmpty, let envelope = try? SOAPCodec.decode(body) { return .envelope(envelope) }
            return .status(Int(response.status.code), String(decoding: body.prefix(200), as: UTF8.self))
        }
    }

    /// Any bytes to `url` (tools and tests: malformed bodies, `?wsdl`): the status and the body.
    public func raw(_ body: [UInt8]?, to url: String, method: String = "POST", contentType: String = "application/soap+xml; charset=utf-8") throws
        -> (status: Int, body: [UInt8])
    {
        var headers = HTTPHeaders()
        if body != nil { headers.add(name: "content-type", value: contentType) }
        let verb: HTTPMethod = method == "GET" ? .GET : method == "POST" ? .POST : HTTPMethod(rawValue: method)
        let request = try HTTPClient.Request(url: url, method: verb, headers: headers, body: body.map { .bytes($0) })
        let response = try http.execute(request: request, deadline: .now() + timeout).wait()
        return (Int(response.status.code), response.body.map { Array($0.readableBytesView) } ?? [])
    }

    /// A request envelope from this role to `to`.
    public func envelope(_ message: any SGP02Message, to: EndpointAddress, replyTo: EndpointAddress? = nil, relatesTo: String? = nil,
                  asynchronous: Bool? = nil) -> SGP02Envelope {
        SGP02Envelope(header: AddressingHeader(to: to, from: identity, replyTo: replyTo, relatesTo: relatesTo, messageID: SOAPServer.newMessageID(),
                                               action: ActionTable.action(for: message.descriptor, asynchronous: asynchronous)),
                      message: message)
    }

    /// Sends an asynchronous response until its receiver acknowledges it (in the background). With a
    /// store, the callback is written there first and removed once acknowledged (or refused for
    /// good): it survives a crash (`resendCallbacks`).
    func deliverCallback(_ callback: SGP02Envelope, to replyTo: EndpointAddress, store: SQLiteCallbackStore?) {
        let bytes = SOAPCodec.encode(callback, indent: 0)
        let id = try? store?.add(url: replyTo.uri, envelope: bytes, now: SystemClock().now())
        deliver(bytes, action: callback.header.action ?? "", to: replyTo.uri, id: id, store: store)
    }

    /// Sends every callback a stopped process left in `store` (in the background).
    public func resendCallbacks(from store: SQLiteCallbackStore) throws -> Int {
        let pending = try store.pending()
        for callback in pending {
            let action = (try? SOAPCodec.decode(callback.envelope))?.header.action ?? ""
            deliver(callback.envelope, action: action, to: callback.url, id: callback.id, store: store)
        }
        return pending.count
    }

    func deliver(_ bytes: [UInt8], action: String, to url: String, id: Int64?, store: SQLiteCallbackStore?) {
        let attempts = callbackAttempts
        Thread.detachNewThread { [self] in
            var delay = 1.0
            for _ in 0..<attempts {
                if let id { try? store?.attempted(id) }
                if let (code, _) = try? raw(bytes, to: url, contentType: "application/soap+xml; charset=utf-8; action=\"\(action)\"") {
                    // 2xx acknowledged; 4xx refused for good: either way it is done.
                    if (200..<300).contains(code) || (400..<500).contains(code) {
                        if let id { try? store?.remove(id) }
                        return
                    }
                }
                Thread.sleep(forTimeInterval: delay)
                delay = min(delay * 2, 60)
            }
            // Still owed: it stays in the store for the next start.
        }
    }
}

/// One SM-SR reached over ES3 (SOAP over HTTPS): the SM-DP's `ES3Endpoint`. The synchronous
/// pattern (no ReplyTo): the answer comes in the HTTP response. A Fault, or an answer that is not the
/// request's response, is an unknown outcome to the SM-DP (it asks again under the same identifier).
///
/// With `callbacks`, the asynchronous pattern instead (how one SM-SR calls another over ES7): the
/// request carries ReplyTo (this role's callback endpoint), the peer answers HTTP 202, and its
/// response arrives later as a callback with RelatesTo = the request's MessageID, which the
/// `CallbackMailbox` behind that endpoint hands to the waiting call. No callback within the
/// timeout is an unknown outcome, as a lost answer is.
public struct SOAPES3Endpoint: ES3Endpoint {
    public let client: SOAPClient
    /// The SM-SR's ES3 endpoint (URL and entity).
    public let smsr: EndpointAddress
    /// Where answers come back for the asynchronous pattern, and how long to wait for one.
    public let callbacks: (mailbox: CallbackMailbox, replyTo: EndpointAddress, seconds: Double)?

    public init(client: SOAPClient, smsr: EndpointAddress, callbacks: (mailbox: CallbackMailbox, replyTo: EndpointAddress, seconds: Double)? = nil) {
        self.client = client
        self.smsr = smsr
        self.callbacks = callbacks
    }

    public func call<Request: SGP02Request>(_ request: Request) throws(ES3TransportError) -> Request.Response {
        let outcome: SOAPClient.Outcome
        let envelope = client.envelope(request, to: smsr, replyTo: callbacks?.replyTo, asynchronous: callbacks != nil)
        let messageID = envelope.header.messageID?.uri ?? ""
        // Waited for before the request leaves: the callback may come back before the 202 does.
        let ticket = callbacks?.mailbox.expect(messageID, from: smsr.entityID)
        defer { if let ticket { callbacks?.mailbox.forget(ticket) } }
        do {
            outcome = try client.post(envelope, to: smsr.uri)
        } catch {
            throw ES3TransportError("\(smsr.address): \(error)")
        }
        switch outcome {
        case .envelope(let envelope):
            if let response = envelope.message as? Request.Response { return response }
            if case .fault(let fault) = envelope.body { throw ES3TransportError("SOAP Fault from the SM-SR: \(fault)") }
            throw ES3TransportError("the SM-SR answered \(envelope.descriptor?.elementName ?? "nothing") to \(Request.descriptor.elementName)")
        case .accepted:
            guard let ticket, let callbacks else {
                throw ES3TransportError("the SM-SR accepted \(Request.descriptor.elementName) without answering (no callback endpoint was given)")
            }
            guard let answer = callbacks.mailbox.wait(ticket, seconds: callbacks.seconds) else {
                throw ES3TransportError("no callback for \(Request.descriptor.elementName) within \(Int(callbacks.seconds)) s")
            }
            guard let response = answer as? Request.Response else {
                throw ES3TransportError("the callback to \(Request.descriptor.elementName) is \(answer.descriptor.elementName)")
            }
            return response
        case .status(let code, let text):
            throw ES3TransportError("HTTP \(code) from the SM-SR: \(text)")
        }
    }
}

/// The same client is how one SM-SR calls another over ES7 (SM-SR change): the other's `/ES7` endpoint.
extension SOAPES3Endpoint: ES7Endpoint {}
public typealias SOAPES7Endpoint = SOAPES3Endpoint

/// Delivers a role's outbox over SOAP: each row as a notification (or, with `relatesTo`, as the
/// asynchronous response it is) to its recipient's endpoint; rows routed "ES2 through the SM-DP" to
/// that SM-DP's ES3 endpoint. 2xx delivered; 4xx rejected for good; anything else retried by the
/// outbox's classes.
public struct SOAPNotificationDelivery: NotificationDelivery {
    public let client: SOAPClient
    /// Where each party takes notifications and callbacks (its entity OID → its endpoint).
    public let directory: [OID: EndpointAddress]

    public init(client: SOAPClient, directory: [OID: EndpointAddress]) {
        self.client = client
        self.directory = directory
    }

    public func deliver(_ item: OutboxItem) -> DeliveryResult {
        let target = (item.via == RouteVia.es2.rawValue ? item.smdp : nil) ?? item.recipient
        guard let endpoint = directory[target] else { return .retry("no endpoint known for \(target.text)") }
        let message: any SGP02Message
        do {
            let root = try XMLReader.parse(item.body, limits: .default, knownNamespaces: Namespace.known)
            guard let type = SOAPCodec.messageType(forElement: root.localName) else { return .rejected("\(root.localName) is not an SGP.02 message") }
            message = try type.init(xmlElement: root)
        } catch {
            return .rejected("the stored message does not decode: \(error)")
        }
        let envelope = client.envelope(message, to: endpoint, relatesTo: item.relatesTo, asynchronous: item.relatesTo != nil ? true : nil)
        do {
            switch try client.post(envelope, to: endpoint.uri) {
            case .accepted: return .delivered
            case .envelope(let answer):
                if case .fault(let fault) = answer.body { return .rejected("SOAP Fault: \(fault)") }
                return .delivered
            case .status(let code, let text):
                return (400..<500).contains(code) ? .rejected("HTTP \(code): \(text)") : .retry("HTTP \(code): \(text)")
            }
        } catch {
            return .retry("\(error)")
        }
    }
}
