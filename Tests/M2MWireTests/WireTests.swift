import M2MCore
import M2MWire
import Testing

@Suite("BER-TLV, DGI and APDU")
struct WireTests {
    @Test("Tags and lengths round trip; nested children")
    func tlv() throws {
        let tlv = TLV(0x7F21, children: [TLV(0x93, [1]), TLV(0x5F20, [UInt8](repeating: 7, count: 200))])
        let bytes = tlv.encoded
        #expect(Array(bytes.prefix(5)) == [0x7F, 0x21, 0x81, 0xCF, 0x93])
        let parsed = try TLV.parseOne(bytes)
        #expect(parsed == tlv)
        #expect(try parsed.children().map(\.tag) == [0x93, 0x5F20])
        #expect(BERLength.encode(0x1234) == [0x82, 0x12, 0x34])
    }

    @Test("Malformed TLVs are typed errors, never crashes")
    func malformed() {
        #expect(throws: TLVError(code: .truncated)) { try TLV.parseOne([0x93, 0x05, 1, 2]) }
        #expect(throws: TLVError(code: .badLength)) { try TLV.parseOne([0x93, 0x80, 1]) }
        #expect(throws: TLVError(code: .badTag)) { try TLV.parseOne([0x00, 0x00]) }
        #expect(throws: TLVError(code: .truncated)) { try TLV.parseOne([0x7F]) }
        #expect(throws: TLVError(code: .badLength)) { try TLV.parseOne([0x93, 0x01, 1, 2]) }
        // Random bytes: no crash.
        var seed: UInt64 = 42
        for _ in 0..<2000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int(seed % 24) {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                bytes.append(UInt8(truncatingIfNeeded: seed >> 33))
            }
            _ = try? TLV.parseAll(bytes)
            var offset = 0
            _ = try? DGI.parse(bytes, offset: &offset)
            _ = try? CommandAPDU(bytes: bytes)
            seed = seed &+ 1
        }
    }

    @Test("DGI: 1-byte lengths as real cards use them, and the njiwa BER form tolerated")
    func dgi() throws {
        let dgi = DGI(0x3A02, [UInt8](repeating: 1, count: 0xA9))
        #expect(Array(dgi.encoded.prefix(3)) == [0x3A, 0x02, 0xA9])
        var offset = 0
        #expect(try DGI.parse(dgi.encoded, offset: &offset) == dgi)
        let ber: [UInt8] = [0x3A, 0x01, 0x81, 0x02, 0xAA, 0xBB]
        offset = 0
        #expect(try DGI.parse(ber, offset: &offset).value == [0xAA, 0xBB])
    }

    @Test("GP certificate dates are YYYYMMDD in BCD")
    func bcdDate() {
        #expect(GPCertificate.bcdDate(year: 2055, month: 12, day: 31) == [0x20, 0x55, 0x12, 0x31])
        #expect(GPCertificate.bcdDate(year: 2145, month: 1, day: 1) == [0x21, 0x45, 0x01, 0x01])
    }

    @Test("APDU cases 1–4")
    func apdu() throws {
        #expect(try CommandAPDU(bytes: [0x80, 0xF2, 0x20, 0x02]).data.isEmpty)
        #expect(try CommandAPDU(bytes: [0x80, 0xCA, 0x00, 0x66, 0x00]).le == 0)
        let case4 = try CommandAPDU(bytes: [0x80, 0xE2, 0x91, 0x00, 0x02, 0xBF, 0x3E, 0x00])
        #expect(case4.data == [0xBF, 0x3E])
        #expect(case4.le == 0)
        #expect(case4.bytes == [0x80, 0xE2, 0x91, 0x00, 0x02, 0xBF, 0x3E, 0x00])
        #expect(throws: TLVError(code: .badLength)) { try CommandAPDU(bytes: [0x80, 0xE2, 0x91, 0x00, 0x05, 0x01]) }
        #expect(try ResponseAPDU(bytes: [0x01, 0x90, 0x00]).sw == .success)
        #expect(StatusWord(0x6310).isSuccessOrWarning)
        #expect(!StatusWord.referencedDataNotFound.isSuccessOrWarning)
    }
}
