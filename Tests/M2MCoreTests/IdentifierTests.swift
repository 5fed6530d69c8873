import M2MCore
import Testing

@Suite("Identifiers")
struct IdentifierTests {
    @Test("EID: 32 digits, MOD 97-10 check digits as SGP.29 defines them")
    func eid() throws {
        // GSMA SGP.29 example EID.
        let eid = try EID(text: "89049032123451234512345678901235")
        #expect(eid.text == "89049032123451234512345678901235")
        #expect(eid.bytes.count == 16)
        #expect(eid.bytes.first == 0x89)
        #expect(try EID(prefix30: "890490321234512345123456789012").text == eid.text)
        #expect(throws: IdentifierError(code: .invalidEID)) { try EID(text: "89049032123451234512345678901234") }
        #expect(throws: IdentifierError(code: .invalidEID)) { try EID(text: "8904903212345123451234567890123") }
        #expect(throws: IdentifierError(code: .invalidEID)) { try EID(text: "8904903212345123451234567890123A") }
        #expect(throws: IdentifierError(code: .invalidEID)) { try EID(text: "") }
    }

    @Test("EID errors carry subject 8.1.1 (EID) and reason 2.1 (Invalid)")
    func eidStatus() {
        do {
            _ = try EID(text: "1234")
            Issue.record("accepted a bad EID")
        } catch {
            #expect(error.executionStatus.status == .failed)
            #expect(error.executionStatus.statusCodeData?.subject == .eid)
            #expect(error.executionStatus.statusCodeData?.reason == .invalid)
        }
    }

    @Test("ICCID: schema pattern, Luhn for 19/20 digits, F padding, lower-case f normalised")
    func iccid() throws {
        #expect(try ICCID(text: "8944500000000000121").text == "8944500000000000121")
        #expect(try ICCID(withoutCheckDigit: "894450000000000012").text == "8944500000000000121")
        #expect(throws: IdentifierError(code: .invalidICCID)) { try ICCID(text: "8944500000000000122") }
        #expect(try ICCID(text: "894450000000000012f").text == "894450000000000012F")
        #expect(try ICCID(text: "894450000000000012F").digits == "894450000000000012")
        #expect(try ICCID(text: "891234").text == "891234")
        #expect(throws: IdentifierError(code: .invalidICCID)) { try ICCID(text: "9944500000000000121") }
        #expect(throws: IdentifierError(code: .invalidICCID)) { try ICCID(text: "89F4500000000000121") }
        #expect(throws: IdentifierError(code: .invalidICCID)) { try ICCID(text: "89123") }
        #expect(throws: IdentifierError(code: .invalidICCID)) { try ICCID(text: "894450000000000012123") }
    }

    @Test("AID 5–16 bytes, TAR 3 bytes, default TAR from AID bytes 13–15")
    func aidAndTAR() throws {
        let aid = try AID(text: "A0000005591010FFFFFFFF8900000100")
        #expect(aid.bytes.count == 16)
        #expect(aid.defaultTAR?.text == "000001")
        #expect(try AID(text: "a000000559").text == "A000000559")
        #expect(throws: IdentifierError(code: .invalidAID)) { try AID(text: "A0000005") }
        #expect(throws: IdentifierError(code: .invalidAID)) { try AID(text: "A0000005591010FFFFFFFF890000010000") }
        #expect(throws: IdentifierError(code: .invalidAID)) { try AID(text: "A00000055G") }
        #expect(try TAR(text: "000001").bytes == [0, 0, 1])
        #expect(throws: IdentifierError(code: .invalidTAR)) { try TAR(text: "0001") }
    }

    @Test("OIDs: dotted decimal only, ordered by arcs")
    func oid() throws {
        #expect(try OID(text: "1.3.6.1.4.1.99999.2.1").arcs == [1, 3, 6, 1, 4, 1, 99999, 2, 1])
        for bad in ["", ".1", "1.", "1..2", "1.a", "1 .2", "urn:oid:1.2"] {
            #expect(throws: IdentifierError(code: .invalidOID)) { try OID(text: bad) }
        }
        #expect(OID("1.2.10") > OID("1.2.9"))
    }

    @Test("IMSI, MSISDN, ThreeDigitVersion, String100")
    func smallTypes() throws {
        #expect(try IMSI(text: "234150999999999").text.count == 15)
        #expect(throws: IdentifierError(code: .invalidIMSI)) { try IMSI(text: "2341509999999991") }
        #expect(throws: IdentifierError(code: .invalidMSISDN)) { try MSISDN(text: "+447700900123") }
        #expect(try ThreeDigitVersion(text: "4.2.0").text == "4.2.0")
        #expect(throws: IdentifierError(code: .invalidValue)) { try ThreeDigitVersion(text: "4.2") }
        #expect(throws: IdentifierError(code: .invalidValue)) { try String100(text: String(repeating: "x", count: 101)) }
    }

    @Test("Hex and base64 codecs")
    func codecs() throws {
        #expect(Hex.encode([0x00, 0xAB, 0xFF]) == "00ABFF")
        #expect(Hex.decode("00abFF") == [0x00, 0xAB, 0xFF])
        #expect(Hex.decode("ABC") == nil)
        #expect(Hex.decode("0G") == nil)
        for n in 0..<20 {
            let bytes = (0..<n).map { UInt8(($0 * 37 + n) & 0xFF) }
            let text = Base64Binary.encode(bytes)
            #expect(Base64Binary.decode(text) == bytes)
        }
        #expect(Base64Binary.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64Binary.encode(Array("fo".utf8)) == "Zm8=")
        #expect(Base64Binary.decode("Zm9v\nYmFy") == Array("foobar".utf8))
        #expect(Base64Binary.decode("Zm9=v") == nil)
        #expect(Base64Binary.decode("Z") == nil)
    }

    @Test("JSON: identifiers are validated strings")
    func codable() throws {
        struct Box: Codable { var eid: EID; var iccid: ICCID }
        let json = #"{"eid":"89049032123451234512345678901235","iccid":"8944500000000000121"}"#
        let box = try JSONDecoderShim.decode(Box.self, json)
        #expect(box.eid.text == "89049032123451234512345678901235")
        let bad = #"{"eid":"89049032123451234512345678901234","iccid":"8944500000000000121"}"#
        #expect(throws: (any Error).self) { try JSONDecoderShim.decode(Box.self, bad) }
    }

    @Test("Key material is never printed")
    func redaction() {
        let key = Key(kcv: [0xA1, 0xB2, 0xC3], index: 1, components: [.init(type: 0x88, value: [0x0F, 0x1E, 0x2D])])
        let text = "\(key) \(key.components[0])"
        #expect(!text.contains("0F1E2D"))
        #expect(text.contains("redacted"))
    }
}
