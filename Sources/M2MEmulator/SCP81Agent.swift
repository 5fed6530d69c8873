// SCP81 on the card (GP Amendment B; spec/sgp02-oncard.md §2.1, §3.4): the ISD-R's admin agent. An
// SCP80 push (triggering parameters `81 …`) asks it to open an administration session; it connects
// to the admin server, authenticates with PSK-TLS (TLS 1.2, the ISD-R's SCP81 PSK, key version 40,
// identity = hex of the SGP.02 PSK identity TLV), POSTs an empty first request, then runs each script
// the server answers with on the targeted application (ISD-R or an ISD-P) and POSTs its response,
// until the server answers 204.
//
//   AdminAgentSession  the HTTP exchange, sans-IO (requests out, responses in, scripts run on a card)
//   SCP81Client        the agent over a TCP socket and a PSKTLSConnection (blocking, one session)
// (SCP81Peer, the admin server's end, and TCPSocket are M2MTransport's.)

public import M2MCore
public import M2MCrypto
public import M2MWire
public import M2MTransport
#if canImport(Glibc)
import Glibc
#endif

extension CardIdentity {
    /// The ISD-R's SCP81 PSK identity (key identifier 1, key version 40).
    public var scp81Identity: SCP81PSKIdentity { SCP81PSKIdentity(eid: eid, isdR: EUICC.isdRAID, keyIdentifier: 1, keyVersion: 0x40) }
}

/// The card's side of one administration session, sans-IO.
public struct AdminAgentSession: Sendable {
    public let eid: EID
    public private(set) var nextURI: String
    public private(set) var isFinished = false
    /// Scripts run in this session, and the status posted for each.
    public private(set) var statuses: [AdminScriptStatus] = []
    /// The most POSTs one session makes (a server that never ends the session is cut off).
    public var maximumExchanges = 10_000

    public init(eid: EID, trigger: AdminSessionTrigger) {
        self.eid = eid
        self.nextURI = trigger.uri ?? AdminProtocol.defaultURI
    }

    func post(status: AdminScriptStatus?, body: [UInt8]) -> HTTPRequest {
        var headers = HTTPHeaders([
            ("Host", "localhost"), ("X-Admin-Protocol", AdminProtocol.version),
            ("X-Admin-From", AdminProtocol.agentFrom(eid: eid, agent: EUICC.isdRAID)),
        ])
        if let status {
            headers.add("Content-Type", AdminProtocol.responseContentType)
            headers.add("X-Admin-Script-Status", status.rawValue)
        }
        headers.add("Transfer-Encoding", "chunked")
        return HTTPRequest(method: "POST", target: nextURI, headers: headers, body: body)
    }

    /// The session's first POST (no script response).
    public func firstRequest() -> HTTPRequest { post(status: nil, body: []) }

    /// The server's answer: runs its script with `run` and returns the next POST, or nil when the
    /// session ended (204). `run` gets the target and the script and returns the response script, or
    /// nil when the card has no such application.
    public mutating func handle(_ response: HTTPResponse, run: (ScriptTarget, [UInt8]) -> [UInt8]?) throws(AdminProtocolError) -> HTTPRequest? {
        guard !isFinished else { throw AdminProtocolError(.protocolViolation, "a response after the session ended") }
        switch response.status {
        case 204:
            isFinished = true
            return nil
        case 200:
            break
        default:
            isFinished = true
            throw AdminProtocolError(.protocolViolation, "the admin server answered \(response.status) \(response.reason)")
        }
        guard statuses.count < maximumExchanges else {
            isFinished = true
            throw AdminProtocolError(.protocolViolation, "more than \(maximumExchanges) scripts in one session")
        }
        guard let next = response.headers["X-Admin-Next-URI"], next.hasPrefix("/") else {
            isFinished = true
            throw AdminProtocolError(.protocolViolation, "a 200 without X-Admin-Next-URI")
        }
        nextURI = next
        let target: ScriptTarget?
        if let uri = response.headers["X-Admin-Targeted-Application"] {
            guard let aid = AdminProtocol.application(fromURI: uri) else {
                statuses.append(.unknownApplication)
                return post(status: .unknownApplication, body: [])
            }
            target = aid == EUICC.isdRAID ? .isdR : aid == EUICC.ecasdAID ? nil : .isdP(aid)
            if aid == EUICC.ecasdAID {
                statuses.append(.notASecurityDomain)
                return post(status: .notASecurityDomain, body: [])
            }
        } else {
            target = .isdR  // no targeted application: the agent's own security domain
        }
        guard let target, let answer = run(target, response.body) else {
            statuses.append(.unknownApplication)
            return post(status: .unknownApplication, body: [])
        }
        statuses.append(.ok)
        return post(status: .ok, body: answer)
    }
}

extension EUICC {
    /// Runs an admin-session script: nil when the target ISD-P does not exist.
    public mutating func processAdminScript(_ script: [UInt8], target: ScriptTarget) -> [UInt8]? {
        if case .isdP(let aid) = target, isdp(aid) == nil { return nil }
        return processScript(script, target: target)
    }
}

// MARK: - The agent over TCP

/// What one admin session did, seen from the card.
public struct SCP81SessionReport: Sendable, Hashable {
    public let cipherSuite: String
    public let protocolVersion: String
    public let statuses: [AdminScriptStatus]
}

public enum SCP81Client {
    /// Runs the administration session the trigger asks for, for card `index` of the fleet: connects
    /// to host:port (the trigger's address and port unless given), PSK-TLS, the admin exchange, 204.
    /// The card is used only while a script runs, so other sessions to other cards go on meanwhile.
    public static func runSession(
        fleet: Fleet, index: Int, trigger: AdminSessionTrigger, host: String? = nil, port: UInt16? = nil,
        context: PSKTLSContext, timeout: Double = 30
    ) throws -> SCP81SessionReport {
        guard let host = host ?? trigger.ipv4Text ?? trigger.host, let port = port ?? trigger.port else {
            throw TransportError(.unreachable, "the trigger names no admin server address and none was given")
        }
        let identity = fleet.identity(at: index)
        let descriptor = try TCPSocket.connect(host: host, port: port)
        defer { TCPSocket.close(descriptor) }
        let stream = FileDescriptorStream(descriptor: descriptor, timeout: timeout, total: timeout * 60)
        // The PSK the card holds now (a new SM-SR's after an SM-SR change, ISDRKeys.swift).
        let psk = fleet.card(at: index).currentSCP81PSK ?? identity.scp81PSK
        let connection = try PSKTLSConnection(client: context, identity: identity.scp81Identity.text, key: psk)
        try stream.handshake(connection)
        var session = AdminAgentSession(eid: identity.eid, trigger: trigger)
        var reader = HTTPMessageReader()
        var request: HTTPRequest? = session.firstRequest()
        while let outgoing = request {
            try stream.send(outgoing.encoded, over: connection)
            var response: HTTPResponse?
            while response == nil {
                if let ready = try reader.nextResponse() {
                    response = ready
                    break
                }
                let plaintext = try stream.receive(over: connection)
                guard !plaintext.isEmpty else { throw TransportError(.unreachable, "the admin server closed the session mid-exchange") }
                reader.append(plaintext)
            }
            request = try session.handle(response!) { target, script in
                fleet.withCard(at: index) { $0.processAdminScript(script, target: target) }
            }
        }
        let report = SCP81SessionReport(
            cipherSuite: connection.cipherSuite ?? "", protocolVersion: connection.protocolVersion ?? "", statuses: session.statuses)
        stream.close(connection)
        return report
    }
}
