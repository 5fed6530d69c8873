// The SCP81 remote administration protocol over HTTP (GP Amendment B; spec/sgp02-oncard.md §2.1,
// §3.4): the eUICC's admin agent POSTs the response to the previous script (none in the first POST)
// and gets the next script in the HTTP response, until the server answers 204 No Content.
//
//   agent → server  POST <Next-URI> HTTP/1.1, X-Admin-Protocol, X-Admin-From, Content-Type
//                   …card-content-mgt-response;version=1.0, X-Admin-Script-Status, body AF 80 … 00 00
//   server → agent  200 OK, X-Admin-Protocol, X-Admin-Next-URI, X-Admin-Targeted-Application,
//                   Content-Type …card-content-mgt;version=1.0, body AE 80 … 00 00; or 204 at the end
//
// Also here: the SGP.02 PSK identity (Table 4: the TLV 80/81/4F/82/83 sent as its hex text) and the
// administration session triggering parameters an SCP80 "push" carries (81 { 83 { 84 …, 89 … } }).
// HTTP/1.1 framing is read incrementally (Content-Length or chunked), with size limits: the agent
// and the server are both sans-IO, the socket and the TLS are the caller's.

public import M2MCore

// MARK: - Errors

public struct AdminProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// Not HTTP/1.1 as the admin protocol uses it (start line, header, chunk, length).
        case malformedHTTP
        /// A header block or body above the limits.
        case tooLarge
        /// A required X-Admin header is missing or wrong, or a status the protocol does not use.
        case protocolViolation
        /// A PSK identity or triggering parameter that does not decode.
        case malformedTLV
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// Errors compare by code (the detail is for people).
    public static func == (lhs: AdminProtocolError, rhs: AdminProtocolError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String { "\(code.rawValue): \(detail)" }
}

// MARK: - HTTP messages

/// Header fields in order; names compare case-insensitively.
public struct HTTPHeaders: Sendable, Hashable, Sequence {
    public private(set) var fields: [(name: String, value: String)] = []

    public init(_ fields: [(String, String)] = []) { for (name, value) in fields { add(name, value) } }

    public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    public subscript(name: String) -> String? {
        let lower = name.lowercased()
        return fields.first { $0.name.lowercased() == lower }?.value
    }

    public func makeIterator() -> some IteratorProtocol<(name: String, value: String)> { fields.makeIterator() }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count && zip(lhs.fields, rhs.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for field in fields {
            hasher.combine(field.name)
            hasher.combine(field.value)
        }
    }
}

public struct HTTPRequest: Sendable, Hashable {
    public var method: String
    public var target: String
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(method: String, target: String, headers: HTTPHeaders, body: [UInt8] = []) {
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
    }

    /// HTTP/1.1 bytes; the body chunked when the headers say so, else with Content-Length.
    public var encoded: [UInt8] { HTTPFraming.encode(startLine: "\(method) \(target) HTTP/1.1", headers: headers, body: body) }
}

public struct HTTPResponse: Sendable, Hashable {
    public var status: Int
    public var reason: String
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, reason: String, headers: HTTPHeaders, body: [UInt8] = []) {
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
    }

    public var encoded: [UInt8] { HTTPFraming.encode(startLine: "HTTP/1.1 \(status) \(reason)", headers: headers, body: body) }
}

enum HTTPFraming {
    static func encode(startLine: String, headers: HTTPHeaders, body: [UInt8]) -> [UInt8] {
        let chunked = headers["Transfer-Encoding"]?.lowercased() == "chunked"
        var text = startLine + "\r\n"
        // A Content-Length field is written where it stands, with the body's true length.
        for field in headers {
            if field.name.lowercased() == "content-length" {
                if !chunked { text += "\(field.name): \(body.count)\r\n" }
            } else {
                text += "\(field.name): \(field.value)\r\n"
            }
        }
        if !chunked, headers["Content-Length"] == nil, !body.isEmpty { text += "Content-Length: \(body.count)\r\n" }
        text += "\r\n"
        var bytes = Array(text.utf8)
        if chunked {
            if !body.isEmpty {
                bytes += Array((String(body.count, radix: 16, uppercase: true) + "\r\n").utf8)
                bytes += body
                bytes += [0x0D, 0x0A]
            }
            bytes += Array("0\r\n\r\n".utf8)
        } else {
            bytes += body
        }
        return bytes
    }
}

/// Reads HTTP/1.1 messages from a byte stream as it arrives (Content-Length or chunked bodies).
public struct HTTPMessageReader: Sendable {
    public var maximumHeaderBytes: Int
    public var maximumBodyBytes: Int
    var buffer: [UInt8] = []

    public init(maximumHeaderBytes: Int = 16 * 1024, maximumBodyBytes: Int = 1 << 20) {
        self.maximumHeaderBytes = maximumHeaderBytes
        self.maximumBodyBytes = maximumBodyBytes
    }

    public mutating func append(_ bytes: [UInt8]) { buffer += bytes }

    /// Bytes received and not yet part of a returned message.
    public var bufferedCount: Int { buffer.count }

    /// The next complete request, or nil when more bytes are needed.
    public mutating func nextRequest() throws(AdminProtocolError) -> HTTPRequest? {
        guard let (startLine, headers, body) = try nextMessage() else { return nil }
        let parts = startLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2] == "HTTP/1.1", !parts[0].isEmpty, parts[1].hasPrefix("/") else {
            throw AdminProtocolError(.malformedHTTP, "request line '\(startLine.prefix(80))'")
        }
        return HTTPRequest(method: String(parts[0]), target: String(parts[1]), headers: headers, body: body)
    }

    /// The next complete response, or nil when more bytes are needed.
    public mutating func nextResponse() throws(AdminProtocolError) -> HTTPResponse? {
        guard let (startLine, headers, body) = try nextMessage() else { return nil }
        let parts = startLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0] == "HTTP/1.1", parts[1].count == 3, let status = Int(parts[1]), (100...599).contains(status) else {
            throw AdminProtocolError(.malformedHTTP, "status line '\(startLine.prefix(80))'")
        }
        return HTTPResponse(status: status, reason: parts.count == 3 ? String(parts[2]) : "", headers: headers, body: body)
    }

    private mutating func nextMessage() throws(AdminProtocolError) -> (String, HTTPHeaders, [UInt8])? {
        guard let headerEnd = Self.find([0x0D, 0x0A, 0x0D, 0x0A], in: buffer, from: 0) else {
            if buffer.count > maximumHeaderBytes { throw AdminProtocolError(.tooLarge, "header block above \(maximumHeaderBytes) bytes") }
            return nil
        }
        guard headerEnd <= maximumHeaderBytes else { throw AdminProtocolError(.tooLarge, "header block above \(maximumHeaderBytes) bytes") }
        guard buffer[0..<headerEnd].allSatisfy({ $0 == 0x09 || $0 == 0x0D || $0 == 0x0A || (0x20..<0x7F).contains($0) }) else {
            throw AdminProtocolError(.malformedHTTP, "header bytes outside printable ASCII")
        }
        let text = String(decoding: buffer[0..<headerEnd], as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let startLine = lines.removeFirst()
        var headers = HTTPHeaders()
        for line in lines {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex, !line.hasPrefix(" "), !line.hasPrefix("\t") else {
                throw AdminProtocolError(.malformedHTTP, "header line '\(line.prefix(80))'")
            }
            let name = String(line[..<colon])
            guard !name.contains(" ") else { throw AdminProtocolError(.malformedHTTP, "header name '\(name.prefix(40))'") }
            headers.add(name, Self.trimmed(line[line.index(after: colon)...]))
        }
        var offset = headerEnd + 4
        var body: [UInt8] = []
        if let encoding = headers["Transfer-Encoding"] {
            guard encoding.lowercased() == "chunked" else { throw AdminProtocolError(.malformedHTTP, "Transfer-Encoding '\(encoding)'") }
            guard headers["Content-Length"] == nil else { throw AdminProtocolError(.malformedHTTP, "both Content-Length and chunked") }
            while true {
                guard let lineEnd = Self.find([0x0D, 0x0A], in: buffer, from: offset) else {
                    if buffer.count - offset > 64 { throw AdminProtocolError(.malformedHTTP, "chunk size line") }
                    return nil
                }
                let sizeText = Self.trimmed((String(decoding: buffer[offset..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? "")[...])
                // Hex digits only: Int(_:radix:) would also take a sign ("-2" must not become a size).
                guard !sizeText.isEmpty, sizeText.count <= 8, sizeText.allSatisfy(\.isHexDigit), let size = Int(sizeText, radix: 16), size >= 0 else {
                    throw AdminProtocolError(.malformedHTTP, "chunk size '\(sizeText.prefix(16))'")
                }
                guard body.count + size <= maximumBodyBytes else { throw AdminProtocolError(.tooLarge, "body above \(maximumBodyBytes) bytes") }
                let dataStart = lineEnd + 2
                if size == 0 {
                    // Trailer section: none expected; the message ends at an empty line.
                    guard let end = Self.find([0x0D, 0x0A], in: buffer, from: dataStart) else { return nil }
                    guard end == dataStart else { throw AdminProtocolError(.malformedHTTP, "trailer fields are not used by the admin protocol") }
                    offset = end + 2
                    break
                }
                guard buffer.count >= dataStart + size + 2 else { return nil }
                guard buffer[dataStart + size] == 0x0D, buffer[dataStart + size + 1] == 0x0A else {
                    throw AdminProtocolError(.malformedHTTP, "chunk not followed by CRLF")
                }
                body += buffer[dataStart..<(dataStart + size)]
                offset = dataStart + size + 2
            }
        } else if let lengthText = headers["Content-Length"] {
            guard !lengthText.isEmpty, lengthText.allSatisfy(\.isASCII), lengthText.allSatisfy(\.isNumber), let length = Int(lengthText), length >= 0 else {
                throw AdminProtocolError(.malformedHTTP, "Content-Length '\(lengthText.prefix(20))'")
            }
            guard length <= maximumBodyBytes else { throw AdminProtocolError(.tooLarge, "body of \(length) bytes above \(maximumBodyBytes)") }
            guard buffer.count >= offset + length else { return nil }
            body = Array(buffer[offset..<(offset + length)])
            offset += length
        }
        buffer.removeFirst(offset)
        return (startLine, headers, body)
    }

    static func trimmed(_ text: Substring) -> String {
        String(text.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    static func find(_ pattern: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= pattern.count, start <= bytes.count - pattern.count else { return nil }
        var index = start
        while index <= bytes.count - pattern.count {
            if bytes[index] == pattern[0], bytes[index..<(index + pattern.count)].elementsEqual(pattern) { return index }
            index += 1
        }
        return nil
    }
}

// MARK: - The admin protocol

public enum AdminProtocol {
    public static let version = "globalplatform-remote-admin/1.0"
    /// The agent's POST body (a response script).
    public static let responseContentType = "application/vnd.globalplatform.card-content-mgt-response;version=1.0"
    /// The server's 200 body (a command script).
    public static let commandContentType = "application/vnd.globalplatform.card-content-mgt;version=1.0"
    /// The first URI when the trigger names none (the WT real-card trace's).
    public static let defaultURI = "/server/adminagent?cmd=1"

    /// `//aid/A000000559/1010FFFFFFFF8900000100`: RID (5 bytes) / PIX.
    public static func applicationURI(_ aid: AID) -> String {
        "//aid/\(Hex.encode(aid.bytes.prefix(5)))/\(Hex.encode(aid.bytes.dropFirst(5)))"
    }

    /// Reads `//aid/RID/PIX` (also without the slash between RID and PIX).
    public static func application(fromURI uri: String) -> AID? {
        guard uri.hasPrefix("//aid/") else { return nil }
        return try? AID(text: String(uri.dropFirst(6).filter { $0 != "/" }))
    }

    /// `//se-id/eid/<EID>;//aaid/aid/A000000559/1010FFFFFFFF8900000100`.
    public static func agentFrom(eid: EID, agent: AID) -> String { "//se-id/eid/\(eid.text);//aaid\(applicationURI(agent).dropFirst(1))" }

    /// The EID in an X-Admin-From value (`//se-id/eid/…`).
    public static func eid(fromAgentFrom value: String) -> EID? {
        guard let part = value.split(separator: ";").first(where: { $0.hasPrefix("//se-id/eid/") }) else { return nil }
        return try? EID(text: String(part.dropFirst("//se-id/eid/".count)))
    }
}

/// X-Admin-Script-Status values (GP Amendment B).
public enum AdminScriptStatus: String, Sendable, Hashable {
    case ok
    case unknownApplication = "unknown-application"
    case notASecurityDomain = "not-a-security-domain"
    case securityError = "security-error"
}

/// A script for one application, as the server sends it.
public struct AdminScript: Sendable, Hashable {
    public var target: AID
    /// The command script (AE 80 … 00 00 or AA …).
    public var script: [UInt8]

    public init(target: AID, script: [UInt8]) {
        self.target = target
        self.script = script
    }
}

/// What the agent posted back for a script.
public struct AdminScriptResult: Sendable, Hashable {
    public var script: AdminScript
    public var status: AdminScriptStatus
    /// The response script (AF 80 … 00 00), empty when the status is not ok.
    public var response: [UInt8]

    public init(script: AdminScript, status: AdminScriptStatus, response: [UInt8]) {
        self.script = script
        self.status = status
        self.response = response
    }
}

/// The server's side of one admin session, sans-IO: give it each POST (`accept`), then answer with
/// `response(sending:)` — the next script, or nil to end the session with 204.
public struct AdminServerSession: Sendable {
    public let uriPrefix: String
    public private(set) var agent: EID?
    public private(set) var results: [AdminScriptResult] = []
    public private(set) var isFinished = false
    var outstanding: AdminScript?
    var nextCommand = 1
    var expectedURI: String?

    public init(uriPrefix: String = "/server/adminagent?cmd=") { self.uriPrefix = uriPrefix }

    /// A POST from the agent: the result of the script sent before (nil for the session's first POST).
    public mutating func accept(_ request: HTTPRequest) throws(AdminProtocolError) -> AdminScriptResult? {
        guard !isFinished else { throw AdminProtocolError(.protocolViolation, "POST after the session ended") }
        guard request.method == "POST" else { throw AdminProtocolError(.protocolViolation, "method \(request.method), not POST") }
        guard request.headers["X-Admin-Protocol"] == AdminProtocol.version else {
            throw AdminProtocolError(.protocolViolation, "X-Admin-Protocol is not \(AdminProtocol.version)")
        }
        guard let from = request.headers["X-Admin-From"], let eid = AdminProtocol.eid(fromAgentFrom: from) else {
            throw AdminProtocolError(.protocolViolation, "X-Admin-From names no EID")
        }
        if let agent, agent != eid { throw AdminProtocolError(.protocolViolation, "X-Admin-From changed within the session") }
        agent = eid
        if let expectedURI, request.target != expectedURI {
            throw AdminProtocolError(.protocolViolation, "POST to \(request.target), the Next-URI was \(expectedURI)")
        }
        guard let script = outstanding else {
            guard request.body.isEmpty else { throw AdminProtocolError(.protocolViolation, "the first POST carries a script response") }
            return nil
        }
        outstanding = nil
        let statusText = request.headers["X-Admin-Script-Status"] ?? "ok"
        guard let status = AdminScriptStatus(rawValue: statusText) else {
            throw AdminProtocolError(.protocolViolation, "X-Admin-Script-Status '\(statusText.prefix(40))'")
        }
        let result = AdminScriptResult(script: script, status: status, response: request.body)
        results.append(result)
        return result
    }

    /// The answer to the POST just accepted: 200 with `script`, or 204 No Content (session end).
    public mutating func response(sending script: AdminScript?) -> HTTPResponse {
        guard let script else {
            isFinished = true
            return HTTPResponse(status: 204, reason: "No Content", headers: HTTPHeaders([("X-Admin-Protocol", AdminProtocol.version)]))
        }
        nextCommand += 1
        let uri = uriPrefix + String(nextCommand)
        expectedURI = uri
        outstanding = script
        return HTTPResponse(
            status: 200, reason: "OK",
            headers: HTTPHeaders([
                ("X-Admin-Protocol", AdminProtocol.version), ("X-Admin-Next-URI", uri),
                ("X-Admin-Targeted-Application", AdminProtocol.applicationURI(script.target)),
                ("Content-Type", AdminProtocol.commandContentType), ("Transfer-Encoding", "chunked"),
            ]), body: script.script)
    }
}

// MARK: - PSK identity (SGP.02 Table 4)

/// `80 01 02 | 81 10 EID | 4F 10 ISD-R AID | 82 01 key id | 83 01 key version`, sent as hex text.
public struct SCP81PSKIdentity: Sendable, Hashable {
    public var eid: EID
    public var isdR: AID
    public var keyIdentifier: UInt8
    public var keyVersion: UInt8

    public init(eid: EID, isdR: AID, keyIdentifier: UInt8 = 1, keyVersion: UInt8 = 0x40) {
        self.eid = eid
        self.isdR = isdR
        self.keyIdentifier = keyIdentifier
        self.keyVersion = keyVersion
    }

    public var tlv: [UInt8] {
        TLV(0x80, [0x02]).encoded + TLV(0x81, eid.bytes).encoded + TLV(0x4F, isdR.bytes).encoded
            + TLV(0x82, [keyIdentifier]).encoded + TLV(0x83, [keyVersion]).encoded
    }

    /// The identity as TLS sends it: the TLV's hex text (upper case).
    public var text: String { Hex.encode(tlv) }

    /// Reads the hex text (either case).
    public init(text: String) throws(AdminProtocolError) {
        guard let bytes = Hex.decode(text) else { throw AdminProtocolError(.malformedTLV, "PSK identity is not hex text") }
        let items: [TLV]
        do { items = try TLV.parseAll(bytes) } catch { throw AdminProtocolError(.malformedTLV, "PSK identity: \(error)") }
        func one(_ tag: TLVTag) throws(AdminProtocolError) -> [UInt8] {
            guard let item = items.first(where: { $0.tag == tag }) else { throw AdminProtocolError(.malformedTLV, "PSK identity without tag \(tag)") }
            return item.value
        }
        guard items.map(\.tag) == [0x80, 0x81, 0x4F, 0x82, 0x83], try one(0x80) == [0x02] else {
            throw AdminProtocolError(.malformedTLV, "PSK identity is not 80 02 | 81 | 4F | 82 | 83")
        }
        let eidBytes = try one(0x81)
        let kid = try one(0x82)
        let kvn = try one(0x83)
        guard eidBytes.count == 16, let eid = try? EID(text: Hex.encode(eidBytes)), let aid = try? AID(bytes: try one(0x4F)),
            kid.count == 1, kvn.count == 1
        else { throw AdminProtocolError(.malformedTLV, "PSK identity field sizes") }
        self.init(eid: eid, isdR: aid, keyIdentifier: kid[0], keyVersion: kvn[0])
    }
}

// MARK: - Triggering parameters (GP Amendment B, pushed over SCP80)

/// `81 { 83 { 84 { 35 bearer, 39 buffer size, 3C transport, 3E address }, [85], [86], 89 { 8A host,
/// 8B agent id, 8C URI } } }`; `81 00` means "use the defaults".
public struct AdminSessionTrigger: Sendable, Hashable {
    /// BIP bearer description (tag 35 value), when given.
    public var bearer: [UInt8]?
    public var bufferSize: UInt16?
    /// Transport level (3C): protocol type (01 UDP, 02 TCP) and port.
    public var transportProtocol: UInt8?
    public var port: UInt16?
    /// Other address (3E): type (21 IPv4, 57 IPv6) and address bytes.
    public var address: [UInt8]?
    public var securityParameters: [UInt8]?
    public var retryPolicy: [UInt8]?
    public var host: String?
    public var agentID: String?
    public var uri: String?

    public init(port: UInt16? = nil, ipv4: [UInt8]? = nil, host: String? = nil, agentID: String? = nil, uri: String? = nil) {
        if port != nil {
            transportProtocol = 0x02
            self.port = port
        }
        if let ipv4 { address = [0x21] + ipv4 }
        self.host = host
        self.agentID = agentID
        self.uri = uri
    }

    /// The dotted IPv4 address, when given as 3E 21 a b c d.
    public var ipv4Text: String? {
        guard let address, address.count == 5, address[0] == 0x21 else { return nil }
        return address.dropFirst().map(String.init).joined(separator: ".")
    }

    public var encoded: [UInt8] {
        var openChannel: [TLV] = []
        if let bearer { openChannel.append(TLV(0x35, bearer)) }
        if let bufferSize { openChannel.append(TLV(0x39, [UInt8(bufferSize >> 8), UInt8(bufferSize & 0xFF)])) }
        if let port { openChannel.append(TLV(0x3C, [transportProtocol ?? 0x02, UInt8(port >> 8), UInt8(port & 0xFF)])) }
        if let address { openChannel.append(TLV(0x3E, address)) }
        var http: [TLV] = []
        if let host { http.append(TLV(0x8A, Array(host.utf8))) }
        if let agentID { http.append(TLV(0x8B, Array(agentID.utf8))) }
        if let uri { http.append(TLV(0x8C, Array(uri.utf8))) }
        var connection: [TLV] = []
        if !openChannel.isEmpty { connection.append(TLV(0x84, children: openChannel)) }
        if let securityParameters { connection.append(TLV(0x85, securityParameters)) }
        if let retryPolicy { connection.append(TLV(0x86, retryPolicy)) }
        if !http.isEmpty { connection.append(TLV(0x89, children: http)) }
        if connection.isEmpty { return [0x81, 0x00] }
        return TLV(0x81, children: [TLV(0x83, children: connection)]).encoded
    }

    /// Reads the triggering parameters (the whole secured data of the push).
    public init(bytes: [UInt8]) throws(AdminProtocolError) {
        do {
            let outer = try TLV.parseOne(bytes)
            guard outer.tag == 0x81 else { throw AdminProtocolError(.malformedTLV, "triggering parameters start with \(outer.tag), not 81") }
            for connection in try outer.children() {
                guard connection.tag == 0x83 else { continue }
                for item in try connection.children() {
                    switch item.tag {
                    case 0x84:
                        for parameter in try item.children() {
                            switch parameter.tag {
                            case 0x35: bearer = parameter.value
                            case 0x39:
                                guard parameter.value.count == 2 else { throw AdminProtocolError(.malformedTLV, "buffer size (39) is 2 bytes") }
                                bufferSize = UInt16(parameter.value[0]) << 8 | UInt16(parameter.value[1])
                            case 0x3C:
                                guard parameter.value.count == 3 else { throw AdminProtocolError(.malformedTLV, "transport level (3C) is 3 bytes") }
                                transportProtocol = parameter.value[0]
                                port = UInt16(parameter.value[1]) << 8 | UInt16(parameter.value[2])
                            case 0x3E:
                                guard !parameter.value.isEmpty else { throw AdminProtocolError(.malformedTLV, "empty address (3E)") }
                                address = parameter.value
                            default: continue
                            }
                        }
                    case 0x85: securityParameters = item.value
                    case 0x86: retryPolicy = item.value
                    case 0x89:
                        for parameter in try item.children() {
                            let text = String(decoding: parameter.value, as: UTF8.self)
                            switch parameter.tag {
                            case 0x8A: host = text
                            case 0x8B: agentID = text
                            case 0x8C: uri = text
                            default: continue
                            }
                        }
                    default: continue
                    }
                }
            }
        } catch let error as AdminProtocolError {
            throw error
        } catch {
            throw AdminProtocolError(.malformedTLV, "triggering parameters: \(error)")
        }
        if let uri, !uri.hasPrefix("/") { throw AdminProtocolError(.malformedTLV, "admin URI '\(uri.prefix(60))' is not a path") }
    }
}
