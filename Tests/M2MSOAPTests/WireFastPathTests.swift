// The byte-level paths of the codec give what the String-based definitions say: URIs written piece by
// piece equal `uri` (percent-encoding and XML escaping included) and parse back to the same values;
// identifiers, numbers and binary values read from bytes equal `init(text:)`, and text the fast paths
// refuse gets the usual error.

import M2MCore
import M2MSOAP
import M2MTestKit
import M2MXML
import Testing

@Suite("Wire fast paths")
struct WireFastPathTests {
    static let awkward = ["", "plain", "a b&c=d", "x?y#z%", "naïve ✓", "tab\tline\nend", "<&>\"'"]

    static func envelope(_ header: AddressingHeader) -> SGP02Envelope {
        var envelope = SampleMessages.enableProfileEnvelope()
        envelope.header = header
        return envelope
    }

    @Test("Endpoint and MessageID URIs: written as `uri` spells them, read back unchanged")
    func uris() throws {
        for (index, text) in Self.awkward.enumerated() {
            // The address and the id are written as they are (not percent-encoded), so they stay plain here.
            let endpoint = EndpointAddress(
                address: "https://host.example/p\(index)", entityID: try OID(text: "1.3.6.1.4.1.99999.\(index)"), entityName: text,
                parameters: [QueryParameter(name: "k\(text)", value: text)])
            let messageID = MessageID(
                id: "//1.2.3/urn:uuid:\(index)", transactionID: text, contextID: "ctx\(text)",
                messageDate: Timestamp(seconds: 1_800_000_000 + Int64(index), nanoseconds: Int32(index * 1000)),
                parameters: [QueryParameter(name: "Other", value: text)])
            var header = SampleMessages.enableProfileEnvelope().header
            header.to = endpoint
            header.from = endpoint
            header.messageID = messageID
            let bytes = SOAPCodec.encode(Self.envelope(header))
            let xml = String(decoding: bytes, as: UTF8.self)
            #expect(xml.contains(">\(XMLWriter.escapeText(endpoint.uri))</wsa:To>"), "\(xml)")
            #expect(xml.contains("<wsa:MessageID>\(XMLWriter.escapeText(messageID.uri))</wsa:MessageID>"), "\(xml)")
            let decoded = try SOAPCodec.decode(bytes)
            #expect(decoded.header.to == (try EndpointAddress(uri: endpoint.uri)))
            #expect(decoded.header.from == (try EndpointAddress(uri: endpoint.uri)))
            #expect(decoded.header.messageID == (try MessageID(uri: messageID.uri)))
            #expect(decoded.header.to?.entityName == text)
            #expect(decoded.header.to?.parameters == [QueryParameter(name: "k\(text)", value: text)])
            #expect(decoded.header.messageID?.transactionID == text)
            #expect(decoded.header.messageID?.messageDate == messageID.messageDate)
            #expect(SOAPCodec.encode(decoded) == bytes)
        }
    }

    @Test("Query parameter names match in any case, percent-escaped or not; bad values keep their errors")
    func queryNames() throws {
        let endpoint = try EndpointAddress(uri: "https://h/p?ENTITYID=1.2.3&entity%4Eame=N%20M&Extra=1")
        #expect(endpoint.entityID == "1.2.3")
        #expect(endpoint.entityName == "N M")
        #expect(endpoint.parameters == [QueryParameter(name: "Extra", value: "1")])
        let id = try MessageID(uri: "x?transactionId=t&CONTEXTID=c&messagedate=2026-01-02T03:04:05.5%2B01:00")
        #expect(id.transactionID == "t" && id.contextID == "c")
        #expect(id.messageDate == (try Timestamp(text: "2026-01-02T03:04:05.5+01:00")))
        #expect(throws: SOAPError.self) { try EndpointAddress(uri: "https://h?EntityId=1..2") }
        #expect(throws: SOAPError.self) { try MessageID(uri: "x?MessageDate=yesterday") }
        #expect(throws: SOAPError.self) { try MessageID(uri: "?TransactionID=t") }
    }

    static func value<T: XMLValue>(_ type: T.Type, _ text: String) throws(SOAPError) -> T {
        let element = try! XMLReader.parse("<v>\(XMLWriter.escapeText(text))</v>")
        return try T(xmlElement: element, path: "v")
    }

    @Test("Values read from bytes equal init(text:), surrounding whitespace collapsed")
    func values() throws {
        #expect(try Self.value(Int.self, " 42 ") == 42)
        #expect(try Self.value(Int.self, "+7") == 7)
        #expect(try Self.value(Int.self, "-0") == 0)
        #expect(try Self.value(Int.self, "+-5") == -5)  // as Int(String) reads what is left after one '+'
        #expect(try Self.value(Int.self, "123456789012345678") == 123_456_789_012_345_678)
        #expect(try Self.value(Int.self, "-1234567890123456789") == -1_234_567_890_123_456_789)
        #expect(throws: SOAPError.self) { try Self.value(Int.self, "12a") }
        #expect(throws: SOAPError.self) { try Self.value(Int.self, "99999999999999999999") }
        #expect(try Self.value(Bool.self, "\ttrue\n") == true)
        #expect(try Self.value(Bool.self, "0") == false)
        #expect(throws: SOAPError.self) { try Self.value(Bool.self, "yes") }
        #expect(try Self.value(AID.self, " a0000005591010ffffffff8900000d00 ").bytes == (try AID(text: "A0000005591010FFFFFFFF8900000D00")).bytes)
        #expect(throws: SOAPError.self) { try Self.value(AID.self, "A000") }
        #expect(throws: SOAPError.self) { try Self.value(TAR.self, "00000G") }
        #expect(try Self.value(HexBinary.self, "").bytes == [])
        #expect(try Self.value(Timestamp.self, " 2026-11-27T10:15:30.250Z ") == (try Timestamp(text: "2026-11-27T10:15:30.25Z")))
        #expect(throws: SOAPError.self) { try Self.value(Timestamp.self, "2026-02-30T00:00:00Z") }
        for text in ["", "AQID", "AQIDBA==", "AQIDBAU=", " AQ ID\nBA== ", "////"] {
            #expect(try Self.value(Base64Binary.self, text) == (try Base64Binary(text: text)), "\(text)")
        }
        for text in ["A", "AQIDB", "AQ=D", "AQID====", "AQ*D"] {
            #expect(throws: SOAPError.self, "\(text)") { try Self.value(Base64Binary.self, text) }
        }
        #expect(try Self.value(EID.self, " 89049032000000000000000000001230 ").text == "89049032000000000000000000001230")
        #expect(throws: SOAPError.self) { try Self.value(EID.self, "89049032000000000000000000001231") }
        #expect(try Self.value(ICCID.self, "8944500000000000121").text == "8944500000000000121")
        #expect(try Self.value(ICCID.self, "894450000000000012f").text == "894450000000000012F")
        #expect(throws: SOAPError.self) { try Self.value(ICCID.self, "8944500000000000122") }
    }

    @Test("Encoding writes hex, base64 and dateTime text as M2MCore spells it")
    func encodedText() throws {
        for bytes: [UInt8] in [[], [0], [0xAB], [1, 2], [1, 2, 3], [0xFF, 0xEE, 0xDD, 0xCC]] {
            var writer = XMLWriter(declaration: false, indent: 0)
            writer.startElement("r")
            writer.element("h", HexBinary(bytes))
            writer.element("b", Base64Binary(bytes))
            writer.endElement()
            #expect(writer.string == "<r>\(bytes.isEmpty ? "<h/>" : "<h>\(Hex.encode(bytes))</h>")\(bytes.isEmpty ? "<b/>" : "<b>\(Base64Binary(bytes).text)</b>")</r>")
        }
        for seconds: Int64 in [0, -1, 1_800_000_000, -62_135_596_800, 253_402_300_799] {
            for nanoseconds: Int32 in [0, 5, 120_000_000, 999_999_999] {
                let timestamp = Timestamp(seconds: seconds, nanoseconds: nanoseconds)
                var writer = XMLWriter(declaration: false, indent: 0)
                writer.startElement("r")
                writer.element("t", timestamp)
                writer.endElement()
                #expect(writer.string == "<r><t>\(timestamp.text)</t></r>")
                #expect(try Timestamp(text: timestamp.text) == timestamp)
            }
        }
    }
}
