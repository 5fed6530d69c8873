// The SOAP 1.2 server of the off-card interfaces (issue #8; docs/server.md), on SwiftNIO + NIOSSL:
//
//   * mutual TLS: a client certificate chaining to the trust roots is required; its subjectAltName
//     registeredID names the caller (no entity: 403). Plain HTTP only with `allowPlainHTTP` (a
//     development flag): the caller is then what wsa:From's EntityId says;
//   * one endpoint per path (`/ES4`, `/ES2`, …), each a `SOAPService`; the body element must belong
//     to one of its interfaces, and wsa:Action must name it (SOAPCodec checks);
//   * the synchronous pattern (no ReplyTo, or the anonymous one): the response envelope in the HTTP
//     200 with RelatesTo; the asynchronous pattern (ReplyTo): HTTP 202 at once, the function runs,
//     and its response goes to ReplyTo as a callback (Action …CallBack/…, RelatesTo = the request's
//     MessageID), retried until the receiver acknowledges it; notifications: HTTP 202, no body;
//   * SOAP Faults for what cannot be served (HTTP 400 for the sender's faults, 500 otherwise);
//     limits on the body size (413) and on concurrent connections (refused beyond);
//   * `?wsdl` on an endpoint returns its WSDL (GSMA's for the v3 functions).
//
// Role code blocks (cards, databases): it runs on a thread pool, never on an event loop.

public import M2MCore
public import M2MStorage
public import M2MSOAP
import Foundation
import M2MCrypto
public import NIOCore
import NIOHTTP1
public import NIOPosix
import NIOSSL
import Synchronization

public final class SOAPServer: Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        /// 0: any free port (`start()` returns it).
        public var port = 0
        /// Required unless `allowPlainHTTP`.
        public var tls: TLSCredentials?
        /// Development only: plain HTTP, the caller taken from wsa:From's EntityId.
        public var allowPlainHTTP = false
        public var maxBodyBytes = 4 << 20
        public var maxConnections = 512
        /// How this server names itself in wsa:From (its URL and entity).
        public var address: EndpointAddress
        /// WSDL files by endpoint path (`?wsdl`); `<path>?v4` for the v4 additions (`?wsdl=v4`).
        public var wsdls: [String: String] = [:]
        /// Threads running role code.
        public var workerThreads = max(2, ProcessInfo.processInfo.activeProcessorCount * 2)
        /// Functions ("ES4.SMSRChange") whose asynchronous run waits on other servers (an SM-SR change
        /// waits for the other SM-SR, which calls back here): run on threads of their own, so they can
        /// never take every worker the calls they wait for need.
        public var waitingFunctions: Set<String> = []
        /// Threads for `waitingFunctions`.
        public var waitingThreads = 64
        /// Functions ("ES4.GetEIS") that only read this server's database (no card, no other server):
        /// run on a pool of one thread per core, recognised as `waitingFunctions` are (a client that
        /// sends no `action` gets the workers). The workers, two per core for role code that blocks on
        /// cards, were woken and switched for each such call: `bench server` printed GetEIS over HTTP
        /// at 0.48–0.52× of nginx with 4 workers, 0.58–0.68× with 2 (2-core machine, docs/server.md).
        public var quickFunctions: Set<String> = []
        /// Threads for `quickFunctions`.
        public var quickThreads = max(2, ProcessInfo.processInfo.activeProcessorCount)
        /// Told of every message served (metrics): its function, how it ended, how long it took.
        public var observe: (@Sendable (Observation) -> Void)? = nil
        /// Where callbacks are kept until acknowledged (nil: in memory only).
        public var callbacks: SQLiteCallbackStore? = nil
        /// Plain GET resources besides `?wsdl` (e.g. `/metrics`): path → (content type, body).
        public var resources: [String: @Sendable () -> (contentType: String, body: [UInt8])] = [:]

        public init(address: EndpointAddress, tls: TLSCredentials?) {
            self.address = address
            self.tls = tls
        }
    }

    /// One message served, for metrics.
    public struct Observation: Sendable {
        /// e.g. `ES4.GetEIS`; `unknown` when the envelope could not be read.
        public let function: String
        /// The function's status (EXECUTED_SUCCESS, FAILED, …), `accepted` (202), or `fault`.
        public let outcome: String
        public let seconds: Double
    }

    public let configuration: Configuration
    let endpoints: [String: any SOAPService]
    /// Sends asynchronous responses (callbacks).
    let client: SOAPClient?
    let group: MultiThreadedEventLoopGroup
    let pool: NIOThreadPool
    /// Runs the asynchronous part of `waitingFunctions` (nil: none configured).
    let waitPool: NIOThreadPool?
    /// Runs `quickFunctions` (nil: none configured).
    let quickPool: NIOThreadPool?
    let channel = Mutex<(any Channel)?>(nil)
    let connections = Atomic<Int>(0)
    /// Callbacks still being sent (shutdown waits for them: no accepted work is lost).
    let pendingCallbacks = Atomic<Int>(0)

    public init(configuration: Configuration, endpoints: [String: any SOAPService], client: SOAPClient?, group: MultiThreadedEventLoopGroup) {
        self.configuration = configuration
        self.endpoints = endpoints
        self.client = client
        self.group = group
        self.pool = NIOThreadPool(numberOfThreads: configuration.workerThreads)
        self.waitPool = configuration.waitingFunctions.isEmpty ? nil : NIOThreadPool(numberOfThreads: configuration.waitingThreads)
        self.quickPool = configuration.quickFunctions.isEmpty ? nil : NIOThreadPool(numberOfThreads: configuration.quickThreads)
    }

    /// Binds and serves; returns the port.
    @discardableResult
    public func start() throws -> Int {
        guard configuration.tls != nil || configuration.allowPlainHTTP else {
            throw SOAPServerError("mutual TLS is required: give TLS credentials, or allow plain HTTP explicitly (development only)")
        }
        let sslContext = try configuration.tls.map { try NIOSSLContext(configuration: try $0.serverConfiguration()) }
        pool.start()
        waitPool?.start()
        quickPool?.start()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                // Beyond the limit a connection is closed at once.
                guard connections.add(1, ordering: .relaxed).newValue <= configuration.maxConnections else {
                    connections.subtract(1, ordering: .relaxed)
                    return channel.close()
                }
                channel.closeFuture.whenComplete { [self] _ in _ = connections.subtract(1, ordering: .relaxed) }
                return channel.eventLoop.makeCompletedFuture {
                    if let sslContext { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(SOAPHTTPHandler(server: self, tls: sslContext != nil))
                }
            }
        let bound = try bootstrap.bind(host: configuration.host, port: configuration.port).wait()
        channel.withLock { $0 = bound }
        return bound.localAddress?.port ?? configuration.port
    }

    /// Stops accepting, lets callbacks in flight finish (up to `grace` seconds), stops the workers.
    public func shutdown(grace: Double = 10) {
        let bound = channel.withLock { channel -> (any Channel)? in
            defer { channel = nil }
            return channel
        }
        try? bound?.close().wait()
        let deadline = Date().addingTimeInterval(grace)
        while pendingCallbacks.load(ordering: .relaxed) > 0, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        try? quickPool?.syncShutdownGracefully()
        try? pool.syncShutdownGracefully()
        try? waitPool?.syncShutdownGracefully()
    }

    // MARK: - One message

    /// What to answer on the connection, and what to run after answering (an asynchronous call).
    struct Reply: Sendable {
        var status: HTTPResponseStatus
        var body: [UInt8]?
        var contentType = "application/soap+xml; charset=utf-8"
        var then: (@Sendable () -> Void)? = nil
        /// `then` waits on other servers: it runs on the wait pool.
        var waits = false
    }

    static func faultReply(_ error: SOAPError, relatesTo: String?, status: HTTPResponseStatus = .badRequest) -> Reply {
        let envelope = SOAPCodec.faultEnvelope(for: error, relatesTo: relatesTo, messageID: MessageID(id: Self.randomUUIDURN()))
        return Reply(status: status, body: SOAPCodec.encode(envelope, indent: 0))
    }

    /// Serves one POSTed envelope (off the event loop), told to `observe`.
    func process(_ bytes: [UInt8], path: String, tlsCaller: OID?, tls: Bool) -> Reply {
        guard let observe = configuration.observe else { return serveEnvelope(bytes, path: path, tlsCaller: tlsCaller, tls: tls).reply }
        let start = DispatchTime.now().uptimeNanoseconds
        let (reply, function, outcome) = serveEnvelope(bytes, path: path, tlsCaller: tlsCaller, tls: tls)
        observe(Observation(function: function, outcome: outcome, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))
        return reply
    }

    /// The reply, the function and how it ended.
    func serveEnvelope(_ bytes: [UInt8], path: String, tlsCaller: OID?, tls: Bool) -> (reply: Reply, function: String, outcome: String) {
        let reply = route(bytes, path: path, tlsCaller: tlsCaller, tls: tls)
        return (reply.reply, reply.function ?? "unknown", reply.outcome)
    }

    struct Routed {
        var reply: Reply
        var function: String?
        var outcome: String
    }

    func route(_ bytes: [UInt8], path: String, tlsCaller: OID?, tls: Bool) -> Routed {
        var function: String?
        func done(_ reply: Reply, _ outcome: String) -> Routed { Routed(reply: reply, function: function, outcome: outcome) }
        guard let service = endpoints[path] else {
            return done(Self.faultReply(SOAPError(code: .invalidAddressingHeader, path: "wsa:To", detail: "no endpoint at \(path)"), relatesTo: nil,
                                   status: .notFound), "fault")
        }
        let envelope: SGP02Envelope
        do {
            envelope = try SOAPCodec.decode(bytes)
        } catch {
            return done(Self.faultReply(error, relatesTo: nil), "fault")
        }
        let requestID = envelope.header.messageID?.uri
        function = envelope.message.map { "\($0.descriptor.function)" }
        guard let message = envelope.message else {
            return done(Self.faultReply(SOAPError(code: .unknownMessage, path: "Body", detail: "a Fault is not a request"), relatesTo: requestID), "fault")
        }
        // Who calls: the TLS certificate's entity; wsa:From may not claim another.
        let claimed = envelope.header.from?.entityID
        let caller: OID
        if tls {
            guard let tlsCaller else {
                return done(Self.faultReply(SOAPError(code: .invalidAddressingHeader, path: "TLS", detail: "the client certificate names no entity",
                                                 status: .failed(.functionRequester, .unknownIdentity)), relatesTo: requestID, status: .forbidden), "fault")
            }
            if let claimed, claimed != tlsCaller {
                return done(Self.faultReply(SOAPError(code: .invalidAddressingHeader, path: "wsa:From",
                                                 detail: "wsa:From names \(claimed.text), the TLS certificate \(tlsCaller.text)",
                                                 status: .failed(.functionRequester, .notAllowed)), relatesTo: requestID, status: .forbidden), "fault")
            }
            caller = tlsCaller
        } else {
            guard let claimed else {
                return done(Self.faultReply(SOAPError(code: .missingAddressingHeader, path: "wsa:From", detail: "plain HTTP: wsa:From must carry EntityId"),
                                       relatesTo: requestID), "fault")
            }
            caller = claimed
        }
        let replyTo = envelope.header.replyTo.flatMap { $0.address.hasSuffix("/anonymous") || $0.address.contains("wsmc/200702/anonymous") ? nil : $0 }
        if message.descriptor.kind == .request, let replyTo {
            // Asynchronous: accepted now, answered by a callback.
            pendingCallbacks.add(1, ordering: .relaxed)
            return done(Reply(status: .accepted, body: nil, then: { [self] in
                defer { pendingCallbacks.subtract(1, ordering: .relaxed) }
                let outcome = service.handle(message, caller: caller, header: envelope.header)
                guard case .response(let response) = outcome else { return }
                let callback = SGP02Envelope(
                    header: AddressingHeader(to: replyTo, from: configuration.address, relatesTo: requestID, messageID: Self.newMessageID(),
                                             action: ActionTable.action(for: response.descriptor, asynchronous: true)),
                    message: response)
                client?.deliverCallback(callback, to: replyTo, store: configuration.callbacks)
            }, waits: configuration.waitingFunctions.contains("\(message.descriptor.function)")), "accepted")
        }
        switch service.handle(message, caller: caller, header: envelope.header) {
        case .accepted:
            return done(Reply(status: .accepted, body: nil), "accepted")
        case .refused(let error):
            return done(Self.faultReply(error, relatesTo: requestID), "fault")
        case .response(let response):
            let reply = SGP02Envelope(
                header: AddressingHeader(to: envelope.header.from, from: configuration.address, relatesTo: requestID, messageID: Self.newMessageID(),
                                         action: ActionTable.action(for: response.descriptor, asynchronous: false)),
                message: response)
            return done(Reply(status: .ok, body: SOAPCodec.encode(reply, indent: 0)), response.functionExecutionStatus.status.rawValue)
        }
    }

    static func newMessageID() -> MessageID {
        MessageID(id: randomUUIDURN(), messageDate: SystemClock().now())
    }

    /// `urn:uuid:` and a random (version 4) UUID, lower case. From OpenSSL's DRBG: Foundation's
    /// `UUID()` opens, reads and closes /dev/urandom each time (measured in `bench server`: an eighth
    /// of the server's share of a GetEIS). The DRBG is drawn 1 KiB at a time, for 64 UUIDs: one draw of
    /// 16 bytes per UUID was ~6 % of a GetEIS's worker time (bench server, stop 16).
    public static func randomUUIDURN() -> String {
        var bytes = uuidRandomness.withLock { pool -> [UInt8] in
            if pool.used + 16 > pool.bytes.count {
                pool.bytes = SecureRandom.bytes(1024)
                pool.used = 0
            }
            defer { pool.used += 16 }
            return Array(pool.bytes[pool.used..<pool.used + 16])
        }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        let digits = Array("0123456789abcdef".utf8)
        var text = Array("urn:uuid:".utf8)
        text.reserveCapacity(45)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static let uuidRandomness = Mutex<(bytes: [UInt8], used: Int)>(([], 0))

    func wsdl(for path: String) -> Reply {
        guard let file = configuration.wsdls[path], let bytes = FileManager.default.contents(atPath: file) else {
            return Reply(status: .notFound, body: Array("no WSDL for \(path)\n".utf8), contentType: "text/plain; charset=utf-8")
        }
        return Reply(status: .ok, body: Array(bytes), contentType: "text/xml; charset=utf-8")
    }
}

public struct SOAPServerError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One connection's HTTP/1.1 exchange: a POSTed envelope in, a response (or 202) out.
final class SOAPHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let server: SOAPServer
    let tls: Bool
    var head: HTTPRequestHead?
    var body: [UInt8] = []
    var overflow = false
    /// The client certificate's entity, read once per connection (the certificate does not change).
    var peer: OID??

    init(server: SOAPServer, tls: Bool) {
        self.server = server
        self.tls = tls
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            overflow = false
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > server.configuration.maxBodyBytes { overflow = true }
        case .body(let chunk):
            if overflow { return }
            if body.count + chunk.readableBytes > server.configuration.maxBodyBytes {
                overflow = true
                body = []
            } else {
                body.append(contentsOf: chunk.readableBytesView)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            serve(context: context, head: head)
        }
    }

    func serve(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let keepAlive = head.isKeepAlive
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts.first ?? "/")
        let query = parts.count > 1 ? String(parts[1]) : ""
        if overflow {
            write(context: context, SOAPServer.Reply(status: .payloadTooLarge, body: Array("the body exceeds \(server.configuration.maxBodyBytes) bytes\n".utf8),
                                                     contentType: "text/plain; charset=utf-8"), keepAlive: false)
            return
        }
        let parameters = query.lowercased().split(whereSeparator: { $0 == "&" || $0 == "?" })
        if head.method == .GET, parameters.contains(where: { $0 == "wsdl" || $0.hasPrefix("wsdl=") }) {
            write(context: context, server.wsdl(for: parameters.contains("wsdl=v4") ? path + "?v4" : path), keepAlive: keepAlive)
            return
        }
        if head.method == .GET, let resource = server.configuration.resources[path] {
            let (type, body) = resource()
            write(context: context, SOAPServer.Reply(status: .ok, body: body, contentType: type), keepAlive: keepAlive)
            return
        }
        guard head.method == .POST else {
            write(context: context, SOAPServer.Reply(status: .methodNotAllowed, body: Array("POST a SOAP 1.2 envelope, or GET ?wsdl\n".utf8),
                                                     contentType: "text/plain; charset=utf-8"), keepAlive: keepAlive)
            return
        }
        if tls, peer == nil {
            peer = .some((try? context.channel.pipeline.syncOperations.nioSSL_peerCertificate()).flatMap { $0 }.flatMap(PeerIdentity.entityID(of:)))
        }
        let caller = peer ?? nil
        let bytes = body
        body = []
        let server = self.server
        let tls = self.tls
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // A function that waits on other servers runs on the wait pool even when called synchronously,
        // one that only reads the database on the quick pool; both are recognised early by the SOAP 1.2
        // `action` parameter of the content type (when a client sends one; else the call runs on the
        // workers, as any other).
        var runner = server.pool
        if server.waitPool != nil || server.quickPool != nil, let action = Self.contentTypeAction(head.headers.first(name: "content-type")),
            let resolved = ActionTable.resolve(action)
        {
            let function = "\(resolved.function)"
            if let waitPool = server.waitPool, server.configuration.waitingFunctions.contains(function) {
                runner = waitPool
            } else if let quickPool = server.quickPool, server.configuration.quickFunctions.contains(function) {
                runner = quickPool
            }
        }
        runner.submit { state in
            guard state == .active else { return }
            let reply = server.process(bytes, path: path, tlsCaller: caller, tls: tls)
            loopBound.eventLoop.execute {
                let (handler, context) = loopBound.value
                handler.write(context: context, reply, keepAlive: keepAlive)
            }
            if let then = reply.then { (reply.waits ? server.waitPool ?? server.pool : server.pool).submit { _ in then() } }
        }
    }

    /// The `action` parameter of a SOAP 1.2 content type (`application/soap+xml; action="…"`).
    static func contentTypeAction(_ contentType: String?) -> String? {
        guard let contentType, let range = contentType.range(of: "action=") else { return nil }
        var value = contentType[range.upperBound...]
        if let end = value.firstIndex(of: ";") { value = value[..<end] }
        let trimmed = value.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        return trimmed.isEmpty ? nil : trimmed
    }

    func write(context: ChannelHandlerContext, _ reply: SOAPServer.Reply, keepAlive: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "content-length", value: "\(reply.body?.count ?? 0)")
        if reply.body != nil { headers.add(name: "content-type", value: reply.contentType) }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: reply.status, headers: headers))), promise: nil)
        if let body = reply.body {
            var buffer = context.channel.allocator.buffer(capacity: body.count)
            buffer.writeBytes(body)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        guard !keepAlive else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let channel = context.channel
        context.writeAndFlushWithPromise(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

extension ChannelHandlerContext {
    func writeAndFlushWithPromise(_ data: NIOAny) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        writeAndFlush(data, promise: promise)
        return promise.futureResult
    }
}
