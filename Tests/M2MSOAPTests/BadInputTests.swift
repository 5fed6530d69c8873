// Bad input gives a clear error carrying the right SGP.02 status or SOAP Fault — never a crash or
// a hang.

import Foundation
import M2MCore
import M2MSOAP
import M2MXML
import Testing

@Suite("Bad input")
struct BadInputTests {
    static let golden = (try? Repo.bytes(Repo.golden.appendingPathComponent("ES3/ES3-CreateISDPRequest.xml"))) ?? []
    static var text: String { String(decoding: golden, as: UTF8.self) }

    static func decode(_ text: String) -> SOAPError? {
        do {
            _ = try SOAPCodec.decode(Array(text.utf8))
            return nil
        } catch {
            return error
        }
    }

    static func expectError(
        _ text: String, _ code: SOAPError.Code, subject: SubjectCode? = nil, reason: ReasonCode? = nil,
        fault: SOAPFault.Code = .sender, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard let error = decode(text) else {
            Issue.record("accepted bad input", sourceLocation: sourceLocation)
            return
        }
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let subject { #expect(error.executionStatus.statusCodeData?.subject == subject, "\(error)", sourceLocation: sourceLocation) }
        if let reason { #expect(error.executionStatus.statusCodeData?.reason == reason, "\(error)", sourceLocation: sourceLocation) }
        #expect(error.fault.code == fault, "\(error.fault)", sourceLocation: sourceLocation)
        #expect(!error.description.isEmpty)
    }

    @Test("Truncated at every byte: an error, never a crash")
    func truncated() {
        let bytes = Self.golden
        for length in stride(from: 0, to: bytes.count - 1, by: 1) {
            #expect(throws: SOAPError.self) { try SOAPCodec.decode(Array(bytes[0..<length])) }
        }
    }

    @Test("Not well-formed, unbound prefix, DOCTYPE → malformedXML, Sender fault, 1.3.1/2.1")
    func malformed() {
        Self.expectError(Self.text.replacingOccurrences(of: "<rps:Eid>", with: "<rpx:Eid>").replacingOccurrences(of: "</rps:Eid>", with: "</rpx:Eid>"),
                         .malformedXML, subject: .protocolFormat, reason: .invalid)
        let doctype = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]>"
            + Self.text.replacingOccurrences(of: "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", with: "")
        Self.expectError(doctype, .malformedXML)
        #expect(Self.decode(doctype)?.xmlError?.code == .doctypeForbidden)
        Self.expectError("<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\"><env:Body></env:Envelope>", .malformedXML)
        Self.expectError("", .malformedXML)
    }

    @Test("SOAP 1.1 → VersionMismatch fault with an Upgrade header")
    func soap11() throws {
        let soap11 = Self.text.replacingOccurrences(of: "http://www.w3.org/2003/05/soap-envelope", with: "http://schemas.xmlsoap.org/soap/envelope/")
        Self.expectError(soap11, .versionMismatch, subject: .protocolVersion, reason: .unsupported, fault: .versionMismatch)
        let error = try #require(Self.decode(soap11))
        let reply = String(decoding: SOAPCodec.encode(SOAPCodec.faultEnvelope(for: error)), as: UTF8.self)
        #expect(reply.contains("<env:SupportedEnvelope qname=\"env:Envelope\"/>"))
        #expect(reply.contains("<env:Value>env:VersionMismatch</env:Value>"))
    }

    @Test("Not an envelope; two body elements; extra envelope children")
    func structure() {
        Self.expectError("<a/>", .notAnEnvelope)
        Self.expectError(Self.text.replacingOccurrences(of: "</env:Body>", with: "<rps:X/></env:Body>"), .notAnEnvelope)
        Self.expectError(Self.text.replacingOccurrences(of: "</env:Envelope>", with: "<env:Trailer/></env:Envelope>"), .notAnEnvelope)
    }

    @Test("A mustUnderstand header we do not process → MustUnderstand fault naming it")
    func mustUnderstand() throws {
        let text = Self.text.replacingOccurrences(
            of: "<env:Header>",
            with: "<env:Header><wsse:Security xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" env:mustUnderstand=\"true\"/>")
        Self.expectError(text, .mustUnderstand, fault: .mustUnderstand)
        let reply = String(decoding: SOAPCodec.encode(SOAPCodec.faultEnvelope(for: try #require(Self.decode(text)))), as: UTF8.self)
        #expect(reply.contains("<env:NotUnderstood qname=\"nu:Security\""))
        // Without mustUnderstand an unknown header is ignored.
        let ignored = Self.text.replacingOccurrences(of: "<env:Header>", with: "<env:Header><x:Trace xmlns:x=\"urn:x\">1</x:Trace>")
        #expect(Self.decode(ignored) == nil)
    }

    @Test("Wrong body namespace (esim-messaging/1) → 1.3.2/3.1")
    func wrongNamespace() {
        let old = Self.text.replacingOccurrences(of: "esim-messaging/3", with: "esim-messaging/1")
        Self.expectError(old, .wrongNamespace, subject: .protocolVersion, reason: .unsupported)
        #expect(Self.decode(old)?.function == FunctionID(.es3, "CreateISDP"))
    }

    @Test("Missing mandatory elements → 2.2 with the element's subject")
    func missing() {
        let noEid = Self.text.split(separator: "\n").filter { !$0.contains("<rps:Eid>") }.joined(separator: "\n")
        Self.expectError(noEid, .missingElement, subject: .eid, reason: .mandatoryElementMissing)
        let noIccid = Self.text.split(separator: "\n").filter { !$0.contains("<rps:Iccid>") }.joined(separator: "\n")
        Self.expectError(noIccid, .missingElement, subject: .profileICCID, reason: .mandatoryElementMissing)
        let noCall = Self.text.split(separator: "\n").filter { !$0.contains("FunctionCallIdentifier") }.joined(separator: "\n")
        Self.expectError(noCall, .missingElement, subject: .protocolFormat, reason: .mandatoryElementMissing)
        let noAction = Self.text.split(separator: "\n").filter { !$0.contains("<wsa:Action") }.joined(separator: "\n")
        Self.expectError(noAction, .missingAddressingHeader, reason: .mandatoryElementMissing)
        let noMessageID = Self.text.split(separator: "\n").filter { !$0.contains("<wsa:MessageID") }.joined(separator: "\n")
        Self.expectError(noMessageID, .missingAddressingHeader)
    }

    @Test("Invalid EID / ICCID / OID / integer / boolean → 2.1 with the element's subject")
    func invalidValues() {
        let eid = "89049032000000000000000000001230"
        Self.expectError(Self.text.replacingOccurrences(of: eid, with: "89049032000000000000000000001231"), .invalidValue, subject: .eid, reason: .invalid)
        Self.expectError(Self.text.replacingOccurrences(of: "8944500000000000121", with: "8944500000000000122"), .invalidValue, subject: .profileICCID, reason: .invalid)
        Self.expectError(Self.text.replacingOccurrences(of: "<rps:Mno-id>1.3.6.1.4.1.99999.4.1", with: "<rps:Mno-id>mno"), .invalidValue, reason: .invalid)
        Self.expectError(Self.text.replacingOccurrences(of: "<rps:RequiredMemory>65536", with: "<rps:RequiredMemory>-1"), .invalidValue, reason: .invalid)
        Self.expectError(Self.text.replacingOccurrences(of: "<rps:ValidityPeriod>600", with: "<rps:ValidityPeriod>0"), .invalidValue, reason: .invalid)
        Self.expectError(Self.text.replacingOccurrences(of: "<rps:MoreToDo>false", with: "<rps:MoreToDo>no"), .invalidValue, reason: .invalid)
    }

    @Test("Unexpected or misplaced elements are refused")
    func unexpected() {
        Self.expectError(Self.text.replacingOccurrences(of: "<rps:MoreToDo>false</rps:MoreToDo>", with: "<rps:MoreToDo>false</rps:MoreToDo><rps:Extra/>"), .unexpectedElement)
        let swapped = Self.text.replacingOccurrences(of: "<rps:ValidityPeriod>600</rps:ValidityPeriod>", with: "")
            .replacingOccurrences(of: "<rps:MoreToDo>false</rps:MoreToDo>", with: "<rps:MoreToDo>false</rps:MoreToDo><rps:ValidityPeriod>600</rps:ValidityPeriod>")
        Self.expectError(swapped, .unexpectedElement)
    }

    @Test("Unknown Action, or an Action that names another function → ActionNotSupported")
    func actions() {
        let unknown = Self.text.replacingOccurrences(of: "ES3-CreateISDPRequest</wsa:Action>", with: "ES3-RebootRequest</wsa:Action>")
        Self.expectError(unknown, .unknownAction, subject: .function, reason: .unsupported)
        #expect(Self.decode(unknown)?.fault.subcode == "wsa:ActionNotSupported")
        let other = Self.text.replacingOccurrences(of: "ES3-CreateISDPRequest</wsa:Action>", with: "ES3-SendDataRequest</wsa:Action>")
        Self.expectError(other, .actionMismatch)
        let direction = Self.text.replacingOccurrences(of: "ProfileManagement/ES3-CreateISDPRequest</wsa:Action>", with: "ProfileManagementCallBack/ES3-CreateISDP</wsa:Action>")
        Self.expectError(direction, .actionMismatch)
        let unknownBody = Self.text.replacingOccurrences(of: "ES3-CreateISDPRequest>", with: "ES3-RebootRequest>")
        Self.expectError(unknownBody, .unknownMessage, subject: .function, reason: .unsupported)
    }

    @Test("Huge and deep documents are refused quickly with reason 3.2")
    func limits() {
        let huge = Self.text.replacingOccurrences(of: "fc-2026-0001", with: String(repeating: "x", count: 5 << 20))
        Self.expectError(huge, .malformedXML, reason: .maximumSizeExceeded)
        let deep = String(repeating: "<a>", count: 100_000) + String(repeating: "</a>", count: 100_000)
        Self.expectError(deep, .malformedXML, reason: .maximumSizeExceeded)
        var limits = XMLLimits.default
        limits.maxDocumentBytes = 1024
        #expect(throws: SOAPError.self) { try SOAPCodec.decode(Self.golden, limits: limits) }
    }

    @Test("Tolerant reading where GSMA's schema set is inconsistent; output per schema")
    func tolerant() throws {
        // ES2.DownloadProfile spells SmSr-id; a peer that sends Smsr-id is still understood.
        let url = Repo.golden.appendingPathComponent("ES2/ES2-DownloadProfileRequest.xml")
        let text = String(decoding: try Repo.bytes(url), as: UTF8.self)
        let variant = text.replacingOccurrences(of: "rps:SmSr-id", with: "rps:Smsr-id")
            .replacingOccurrences(of: "?TransactionID=", with: "?TransactionId=")
        #expect(variant != text)
        let envelope = try SOAPCodec.decode(Array(variant.utf8))
        #expect(SOAPCodec.encode(envelope) == Array(text.utf8))
        // Request-suffixed Action on a provider that publishes the unsuffixed one.
        let suffixed = text.replacingOccurrences(of: "ES2-DownloadProfile</wsa:Action>", with: "ES2-DownloadProfileRequest</wsa:Action>")
        #expect(Self.decode(suffixed) == nil)
    }

    @Test("Faults round-trip: written, read back with code, subcode, reason and SGP.02 status")
    func faults() throws {
        let error = try #require(Self.decode(Self.text.replacingOccurrences(of: "89049032000000000000000000001230", with: "1")))
        let bytes = SOAPCodec.encode(SOAPCodec.faultEnvelope(for: error, relatesTo: "urn:uuid:req", messageID: MessageID(id: "urn:uuid:f")))
        let back = try SOAPCodec.decode(bytes)
        guard case .fault(let fault) = back.body else {
            Issue.record("not a fault")
            return
        }
        #expect(fault == error.fault)
        #expect(fault.status?.statusCodeData?.subject == .eid)
        #expect(back.header.relatesTo == "urn:uuid:req")
        #expect(back.header.action == SOAPFault.action)
    }

    @Test("JSON input errors name the field")
    func badJSON() throws {
        let url = Repo.golden.appendingPathComponent("ES3/ES3-CreateISDPRequest.json")
        let json = String(decoding: try Data(contentsOf: url), as: UTF8.self)
        let badEID = json.replacingOccurrences(of: "89049032000000000000000000001230", with: "89049032000000000000000000001231")
        #expect(throws: SOAPError.self) { try EnvelopeJSON.envelope(fromJSON: Data(badEID.utf8)) }
        let badFunction = json.replacingOccurrences(of: "\"ES3.CreateISDP\"", with: "\"ES3.Reboot\"")
        #expect(throws: SOAPError(code: .invalidJSON, detail: "")) { try EnvelopeJSON.envelope(fromJSON: Data(badFunction.utf8)) }
        let missing = json.replacingOccurrences(of: "\"requiredMemory\": 65536,", with: "")
        do {
            _ = try EnvelopeJSON.envelope(fromJSON: Data(missing.utf8))
            Issue.record("accepted JSON without requiredMemory")
        } catch let error as SOAPError {
            #expect(error.path.contains("requiredMemory"), "\(error)")
        }
    }
}

@Suite("Addressing header")
struct AddressingTests {
    @Test("EntityId/EntityName, MessageID parameters, percent-encoding")
    func parse() throws {
        let from = try EndpointAddress(uri: "https://smsr.example?EntityId=1.3.6.1.4.1.20&EntityName=SM%20SR&x=1")
        #expect(from.address == "https://smsr.example")
        #expect(from.entityID == OID("1.3.6.1.4.1.20"))
        #expect(from.entityName == "SM SR")
        #expect(from.parameters == [QueryParameter(name: "x", value: "1")])
        #expect(from.uri == "https://smsr.example?EntityId=1.3.6.1.4.1.20&EntityName=SM%20SR&x=1")
        // The ZTE trace's spelling.
        let id = try MessageID(uri: "//1.3.6.1.4.1.20/urn:uuid:1?TransactionId=urn:uuid:2&MessageDate=2018-12-19T02:44:49Z")
        #expect(id.id == "//1.3.6.1.4.1.20/urn:uuid:1")
        #expect(id.transactionID == "urn:uuid:2")
        #expect(id.messageDate?.text == "2018-12-19T02:44:49Z")
        #expect(id.uri == "//1.3.6.1.4.1.20/urn:uuid:1?TransactionID=urn:uuid:2&MessageDate=2018-12-19T02:44:49Z")
        #expect(throws: SOAPError.self) { try EndpointAddress(uri: "https://x?EntityId=abc") }
        #expect(throws: SOAPError.self) { try MessageID(uri: "urn:1?MessageDate=yesterday") }
    }
}
