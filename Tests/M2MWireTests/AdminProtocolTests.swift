// The SCP81 admin protocol framing: HTTP/1.1 messages read incrementally (chunked or with
// Content-Length) with limits, the server session's rules, the SGP.02 PSK identity TLV and the
// GP Amendment B triggering parameters (the layout of the real WT push packet, spec §3.4).

import M2MCore
import M2MWire
import Testing

@Suite("SCP81 admin protocol")
struct AdminProtocolTests {
    static let eid = try! EID(text: "89049032123451234512345678901235")
    static let isdR = try! AID(text: "A0000005591010FFFFFFFF8900000100")
    static let isdP = try! AID(text: "A0000005591010FFFFFFFF8900001300")

    @Test("Requests and responses survive any split of their bytes, chunked and not")
    func framing() throws {
        var headers = HTTPHeaders([("X-Admin-Protocol", AdminProtocol.version), ("Transfer-Encoding", "chunked")])
        let request = HTTPRequest(method: "POST", target: "/server/adminagent?cmd=2", headers: headers, body: [0xAF, 0x80, 0x23, 0x02, 0x90, 0x00, 0x00, 0x00])
        headers = HTTPHeaders([("X-Admin-Protocol", AdminProtocol.version)])
        let response = HTTPResponse(
            status: 200, reason: "OK", headers: HTTPHeaders([("X-Admin-Protocol", AdminProtocol.version), ("Content-Length", "3000")]),
            body: Array(repeating: 0x5A, count: 3000))
        let empty = HTTPResponse(status: 204, reason: "No Content", headers: headers)
        let stream = request.encoded + request.encoded
        for split in [1, 2, 7, 64, stream.count] {
            var reader = HTTPMessageReader()
            var got: [HTTPRequest] = []
            for start in stride(from: 0, to: stream.count, by: split) {
                reader.append(Array(stream[start..<min(start + split, stream.count)]))
                while let message = try reader.nextRequest() { got.append(message) }
            }
            #expect(got == [request, request])
            #expect(reader.bufferedCount == 0)
        }
        var reader = HTTPMessageReader()
        reader.append(response.encoded + empty.encoded)
        #expect(try reader.nextResponse() == response)
        #expect(try reader.nextResponse() == empty)
        #expect(try reader.nextResponse() == nil)
        #expect(String(decoding: response.encoded.prefix(17), as: UTF8.self) == "HTTP/1.1 200 OK\r\n")
    }

    @Test("Malformed or oversized messages are refused with a code")
    func refusals() throws {
        let cases: [(String, AdminProtocolError.Code)] = [
            ("GET\r\n\r\n", .malformedHTTP),
            ("POST /x HTTP/1.0\r\n\r\n", .malformedHTTP),
            ("POST /x HTTP/1.1\r\nNoColon\r\n\r\n", .malformedHTTP),
            ("POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", .malformedHTTP),
            ("POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", .malformedHTTP),
            ("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n", .malformedHTTP),
            ("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY", .malformedHTTP),
            ("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nab\r\n0\r\n\r\n", .malformedHTTP),
            ("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+2\r\nab\r\n0\r\n\r\n", .malformedHTTP),
            ("POST /x HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", .malformedHTTP),
            ("POST /x HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", .tooLarge),
            ("POST /x HTTP/1.1\r\nX: " + String(repeating: "a", count: 20_000), .tooLarge),
        ]
        for (text, code) in cases {
            var reader = HTTPMessageReader()
            reader.append(Array(text.utf8))
            #expect(throws: AdminProtocolError(code, "")) { _ = try reader.nextRequest() }
        }
    }

    @Test("The server session: first POST empty, scripts with Next-URI and target, results, 204")
    func serverSession() throws {
        var session = AdminServerSession()
        let agent = AdminAgentHeaders.headers(eid: Self.eid, status: nil)
        #expect(try session.accept(HTTPRequest(method: "POST", target: "/server/adminagent?cmd=1", headers: agent)) == nil)
        let script = AdminScript(target: Self.isdP, script: [0xAE, 0x80, 0x84, 0x00, 0x00, 0x00])
        let first = session.response(sending: script)
        #expect(first.status == 200)
        #expect(first.headers["X-Admin-Targeted-Application"] == "//aid/A000000559/1010FFFFFFFF8900001300")
        #expect(first.headers["X-Admin-Next-URI"] == "/server/adminagent?cmd=2")
        #expect(first.headers["Content-Type"] == AdminProtocol.commandContentType)
        #expect(first.body == script.script)
        // A POST to another URI than the Next-URI, or from another card, is a protocol violation.
        var wrong = session
        #expect(throws: AdminProtocolError.self) {
            _ = try wrong.accept(HTTPRequest(method: "POST", target: "/server/adminagent?cmd=9", headers: AdminAgentHeaders.headers(eid: Self.eid, status: .ok)))
        }
        let result = try session.accept(
            HTTPRequest(method: "POST", target: "/server/adminagent?cmd=2", headers: AdminAgentHeaders.headers(eid: Self.eid, status: .ok), body: [0xAF, 0x80, 0x00, 0x00]))
        #expect(result == AdminScriptResult(script: script, status: .ok, response: [0xAF, 0x80, 0x00, 0x00]))
        #expect(session.agent == Self.eid)
        let end = session.response(sending: nil)
        #expect(end.status == 204 && end.headers["X-Admin-Next-URI"] == nil && session.isFinished)
        #expect(String(decoding: end.encoded, as: UTF8.self).hasPrefix("HTTP/1.1 204 No Content\r\n"))
    }

    @Test("X-Admin-From and targeted-application URIs")
    func uris() {
        #expect(AdminProtocol.agentFrom(eid: Self.eid, agent: Self.isdR)
            == "//se-id/eid/89049032123451234512345678901235;//aaid/aid/A000000559/1010FFFFFFFF8900000100")
        #expect(AdminProtocol.eid(fromAgentFrom: AdminProtocol.agentFrom(eid: Self.eid, agent: Self.isdR)) == Self.eid)
        #expect(AdminProtocol.application(fromURI: "//aid/A000000559/1010FFFFFFFF8900001300") == Self.isdP)
        #expect(AdminProtocol.application(fromURI: "/aid/A0") == nil)
    }

    @Test("PSK identity: the SGP.02 Table 4 TLV as hex text, read back; malformed ones refused")
    func pskIdentity() throws {
        let identity = SCP81PSKIdentity(eid: Self.eid, isdR: Self.isdR, keyIdentifier: 1, keyVersion: 0x40)
        #expect(identity.text == "800102" + "811089049032123451234512345678901235" + "4F10A0000005591010FFFFFFFF8900000100" + "820101" + "830140")
        #expect(try SCP81PSKIdentity(text: identity.text.lowercased()) == identity)
        for bad in ["zz", "800103811089049032123451234512345678901235", "800102", String(identity.text.dropLast(2))] {
            #expect(throws: AdminProtocolError.self) { _ = try SCP81PSKIdentity(text: bad) }
        }
    }

    @Test("Triggering parameters: the WT push layout (81 51 83 4F 84 19 … 89 32 …) both ways; 81 00")
    func trigger() throws {
        var trigger = AdminSessionTrigger(port: 9999, ipv4: [211, 90, 14, 21], host: "172.96.0.1", agentID: "agent-0001", uri: "/server/adminagent?cmd=1")
        trigger.bearer = [0x02, 0x03, 0x00, 0x00, 0x00, 0x00, 0x02]
        trigger.bufferSize = 0x05DC
        trigger.transportProtocol = 0x01
        let bytes = trigger.encoded
        #expect(Hex.encode(bytes.prefix(6)) == "8151834F8419")
        #expect(Hex.encode(bytes).contains("3C0301270F3E0521D35A0E1589328A0A3137322E39362E302E31"))
        #expect(Hex.encode(bytes).contains("8C182F7365727665722F61646D696E6167656E743F636D643D31"))
        #expect(try AdminSessionTrigger(bytes: bytes) == trigger)
        #expect(trigger.ipv4Text == "211.90.14.21")
        let defaults = try AdminSessionTrigger(bytes: [0x81, 0x00])
        #expect(defaults.port == nil && defaults.uri == nil && defaults.encoded == [0x81, 0x00])
        for bad: [UInt8] in [[0x82, 0x00], [0x81, 0x05, 0x83], [0x81, 0x05, 0x83, 0x03, 0x84, 0x01, 0x39]] {
            #expect(throws: AdminProtocolError.self) { _ = try AdminSessionTrigger(bytes: bad) }
        }
    }
}

/// The agent's POST headers, as the emulator's agent sends them.
enum AdminAgentHeaders {
    static func headers(eid: EID, status: AdminScriptStatus?) -> HTTPHeaders {
        var headers = HTTPHeaders([
            ("X-Admin-Protocol", AdminProtocol.version),
            ("X-Admin-From", AdminProtocol.agentFrom(eid: eid, agent: try! AID(text: "A0000005591010FFFFFFFF8900000100"))),
        ])
        if let status { headers.add("X-Admin-Script-Status", status.rawValue) }
        return headers
    }
}
