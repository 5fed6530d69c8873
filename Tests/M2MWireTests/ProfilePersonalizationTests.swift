// Personalising the TS.48 templates per order: ICCID (header and EF.ICCID), IMSI (EF.IMSI), Ki and
// OPc (every akaParameter PE) replaced in place. The templates' own values were read independently
// of this reader (a separate DER walk): header ICCID 89000123456789012341, EF.ICCID
// 98001032547698103214, EF.IMSI 08 09 10 10 10 32 54 06 36 (IMSI 001010123456063), two
// akaParameter PEs with K 000102…0F and OPc 00…00.

import Foundation
import M2MCore
import M2MWire
import Testing

@Suite("Profile package personalisation")
struct ProfilePersonalizationTests {
    static let files = ["TS48v2_SAIP2.1_BERTLV.der", "TS48v5_SAIP2.1A_NoBERTLV.der", "TS48v5_SAIP2.3_BERTLV_SUCI.der"]

    @Test("The templates' values read back as the independent walk found them", arguments: files)
    func templateValues(file: String) throws {
        let values = try ProfilePackage.personalizedValues(try ProfileFixtures.load(file))
        #expect(values.headerICCID.text == "89000123456789012341")
        #expect(values.efICCID?.text == "89000123456789012341")
        #expect(values.imsi?.text == "001010123456063")
        #expect(values.keys.count == 2)
        #expect(values.keys.allSatisfy { $0.ki == Array(0x00...0x0F) && $0.opc == [UInt8](repeating: 0, count: 16) })
    }

    @Test("An order's values go in place: same size, only those bytes change, the package still parses", arguments: files)
    func personalize(file: String) throws {
        let template = try ProfileFixtures.load(file)
        let ki = (0..<16).map { UInt8(0xA0 + $0) }
        let opc = (0..<16).map { UInt8(0x50 + $0) }
        let order = ProfilePersonalization(iccid: try ICCID(withoutCheckDigit: "8944501234567890123"), imsi: try IMSI(text: "208017654321987"), ki: ki, opc: opc)
        let package = try ProfilePackage.personalize(template, with: order)
        #expect(package.count == template.count)
        let values = try ProfilePackage.personalizedValues(package)
        #expect(values.headerICCID.digits == order.iccid.digits && values.efICCID?.digits == order.iccid.digits)
        #expect(values.imsi?.text == "208017654321987")
        #expect(values.keys.count == 2 && values.keys.allSatisfy { $0.ki == ki && $0.opc == opc })
        // Header ICCID (10) + EF.ICCID (10) + EF.IMSI (9) + 2 × (Ki 16 + OPc 16) bytes at most.
        let changed = zip(template, package).filter { $0 != $1 }.count
        #expect(changed > 0 && changed <= 10 + 10 + 9 + 2 * 32)
        let parsed = try ProfilePackage(der: package)
        #expect(parsed.elements.map(\.type) == (try ProfilePackage(der: template)).elements.map(\.type))
        // EF.IMSI as TS 31.102 codes it: 08, parity 9 with the first digit, then swapped pairs.
        #expect(Hex.encode(ProfilePackage.efIMSIContent(try IMSI(text: "208017654321987"))) == "082980106745239178")
        #expect(Hex.encode(ProfilePackage.efIMSIContent(try IMSI(text: "001010123456063"))) == "080910101032540636", "the template's own EF.IMSI")
        // Personalising a personalised package again is the same as personalising the template.
        let again = ProfilePersonalization(iccid: try ICCID(withoutCheckDigit: "894450000000000012"), imsi: try IMSI(text: "00101"))
        #expect(try ProfilePackage.personalize(package, with: again) == (try ProfilePackage.personalize(
            try ProfilePackage.personalize(template, with: ProfilePersonalization(iccid: again.iccid, ki: ki, opc: opc)), with: again)))
        // The plan (found once per template, no parse per order) writes the same bytes.
        let plan = try PersonalizationPlan(template: template)
        #expect(try plan.apply(to: template, order) == package)
        #expect(try plan.apply(to: template, again) == (try ProfilePackage.personalize(template, with: again)))
        #expect(throws: ProfilePersonalizationError.self) { try plan.apply(to: template, ProfilePersonalization(iccid: order.iccid, ki: [1, 2, 3])) }
    }

    @Test("Short ICCIDs and IMSIs are F-padded; values of the wrong size and broken templates are refused")
    func edges() throws {
        let template = try ProfileFixtures.load(Self.files[1])
        let short = ProfilePersonalization(iccid: try ICCID(withoutCheckDigit: "894450000000000012"), imsi: try IMSI(text: "26201123456"))
        let package = try ProfilePackage.personalize(template, with: short)
        let values = try ProfilePackage.personalizedValues(package)
        #expect(values.headerICCID.digits == short.iccid.digits && values.efICCID?.digits == short.iccid.digits && values.imsi?.text == "26201123456")
        #expect(values.headerICCID.text == short.iccid.digits + "F", "19 digits, F-padded in the header")
        #expect(throws: ProfilePersonalizationError(.sizeMismatch, "")) {
            _ = try ProfilePackage.personalize(template, with: ProfilePersonalization(iccid: short.iccid, ki: [1, 2, 3]))
        }
        #expect(throws: ProfilePersonalizationError(.invalidTemplate, "")) {
            _ = try ProfilePackage.personalize(Array(template.prefix(500)), with: short)
        }
    }
}
