// SCP80 wire structures without crypto: SPI/KIc/KID/TAR/counter coding, command and response
// packet framing, PoR status codes, and the TS 102 226 remote formats against pySim's goldens
// (Tests/M2MCryptoTests/Vectors/pysim-scp80/vectors.json, read by relative path).

import Foundation
import M2MCore
import M2MWire
import Testing

private func bytes(_ text: String) -> [UInt8] { Hex.decode(text.replacingOccurrences(of: " ", with: ""))! }

private struct ExpandedVectors: Decodable {
    struct Command: Decodable { let name, coding, script: String; let apdus: [String] }
    struct Response: Decodable { let name, script: String; let executed: Int?; let rapdus: [String]; let other: [String]? }
    struct Malformed: Decodable { let name, script: String }
    struct Expanded: Decodable { let commands: [Command]; let responses: [Response]; let malformed_responses: [Malformed] }
    struct RealPoR: Decodable { let por_prefix: String; let response_length: Int; let sw: String }
    let expanded: Expanded
    let real_por: RealPoR

    static let file: ExpandedVectors = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("M2MCryptoTests/Vectors/pysim-scp80/vectors.json")
        return try! JSONDecoder().decode(ExpandedVectors.self, from: Data(contentsOf: url))
    }()
}

/// Spec test vector 3 (AES, SPI 06 19, KIc/KID 22, TAR B00011), from CPL on.
private let testVector3 = bytes("0028 15 0619 22 22 b00011 e87cceebb2d93083011ce294f93fc4d8de80da1abae8c37ca3e72ec4432e5058")

@Suite("SCP80 wire structures")
struct SCP80PacketTests {
    @Test("SPI accessors: 06 19 (test vector 3), 16 01 (real ISD-R traffic), 16 39 (SGP.02 typical)")
    func spi() throws {
        let tv3 = try SCP80SPI(bytes: [0x06, 0x19])
        #expect(tv3.counter == .none && tv3.ciphered && tv3.integrity == .cryptographicChecksum)
        #expect(tv3.por == .required && tv3.porIntegrity == .cryptographicChecksum && tv3.porCiphered && !tv3.porViaSMSSubmit)

        let isdR = SCP80SPI(first: 0x16, second: 0x01)
        #expect(isdR.counter == .higher && isdR.ciphered && isdR.integrity == .cryptographicChecksum)
        #expect(isdR.por == .required && isdR.porIntegrity == .none && !isdR.porCiphered && !isdR.porViaSMSSubmit)

        let typical = SCP80SPI(counter: .higher, ciphered: true, integrity: .cryptographicChecksum, por: .required,
                               porIntegrity: .cryptographicChecksum, porCiphered: true, porViaSMSSubmit: true)
        #expect(typical.bytes == [0x16, 0x39])
        #expect(SCP80SPI(counter: .exactlyPlusOne, ciphered: false, integrity: .redundancyCheck, por: .onErrorOnly).bytes == [0x19, 0x02])
        #expect(SCP80SPI(counter: .noReplayCheck, ciphered: false, integrity: .digitalSignature, por: .none).bytes == [0x0B, 0x00])
        #expect(throws: SCP80Error(code: .badLength)) { try SCP80SPI(bytes: [0x16]) }

        // Every field combination reads back; reserved bits are kept and ignored.
        for counter in SCP80SPI.CounterMode.allCases {
            for integrity in SCP80SPI.Integrity.allCases {
                for por in SCP80SPI.PoRMode.allCases {
                    for porIntegrity in SCP80SPI.Integrity.allCases {
                        for flags in 0..<8 {
                            let spi = SCP80SPI(counter: counter, ciphered: flags & 1 != 0, integrity: integrity, por: por,
                                               porIntegrity: porIntegrity, porCiphered: flags & 2 != 0, porViaSMSSubmit: flags & 4 != 0)
                            let withReserved = SCP80SPI(first: spi.first | 0xE0, second: spi.second | 0xC0)
                            for s in [spi, withReserved] {
                                #expect(s.counter == counter && s.integrity == integrity && s.por == por && s.porIntegrity == porIntegrity)
                                #expect(s.ciphered == (flags & 1 != 0) && s.porCiphered == (flags & 2 != 0) && s.porViaSMSSubmit == (flags & 4 != 0))
                            }
                        }
                    }
                }
            }
        }
    }

    @Test("KIc/KID: key version high nibble, algorithm low nibble")
    func keyIdentifier() {
        let cases: [(UInt8, UInt8, SCP80Algorithm?)] = [
            (0x22, 2, .aes), (0x12, 1, .aes), (0x35, 3, .tripleDES2Key), (0x19, 1, .tripleDES3Key), (0x11, 1, .des),
            (0x10, 1, nil), (0x1D, 1, nil), (0x13, 1, nil),
        ]
        for (raw, version, algorithm) in cases {
            let id = SCP80KeyIdentifier(rawValue: raw)
            #expect(id.keyVersion == version && id.algorithm == algorithm, "\(raw)")
            if let algorithm { #expect(SCP80KeyIdentifier(keyVersion: version, algorithm: algorithm) == id) }
        }
        #expect(SCP80KeyIdentifier(rawValue: 0x10).isImplicit)
        #expect(SCP80Algorithm.aes.blockSize == 16 && SCP80Algorithm.tripleDES2Key.blockSize == 8 && SCP80Algorithm.des.blockSize == 8)
    }

    @Test("TAR and counter coding")
    func tarAndCounter() throws {
        #expect(SCP80TAR.isdR.bytes == [0x00, 0x00, 0x01])
        #expect(try SCP80TAR(bytes: [0xB0, 0x00, 0x11]) == 0xB00011)
        #expect(throws: SCP80Error(code: .badLength)) { try SCP80TAR(bytes: [0xB0, 0x00]) }
        let counter = try SCP80Counter(bytes: [0x00, 0x00, 0x00, 0x02, 0xD5])
        #expect(counter.value == 0x2D5 && counter.bytes == [0, 0, 0, 0x02, 0xD5])
        #expect(counter.next == 0x2D6)
        #expect(SCP80Counter.max.bytes == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(SCP80Counter.max.next == nil)
        #expect(SCP80Counter(exactly: 0x1_00_0000_0000) == nil)
        #expect(SCP80Counter(exactly: 0xFF_FFFF_FFFF) == .max)
        #expect(SCP80Counter.zero < counter)
        #expect(throws: SCP80Error(code: .badLength)) { try SCP80Counter(bytes: [0, 0, 0, 0]) }
    }

    @Test("PoR status codes 00–0C; anything else is an error")
    func statusCodes() throws {
        #expect(SCP80PoRStatus.allCases.map(\.rawValue) == Array(0x00...0x0C))
        #expect(try SCP80PoRStatus(byte: 0x02) == .counterLow)
        #expect(try SCP80PoRStatus(byte: 0x0A) == .insufficientSecurityLevel)
        #expect(try SCP80PoRStatus(byte: 0x0B) == .responseInSMSSubmit)
        #expect(try SCP80PoRStatus(byte: 0x0C) == .responseInUSSD)
        for byte in 0x0D...0xFF {
            #expect(throws: SCP80Error(code: .invalidValue)) { try SCP80PoRStatus(byte: UInt8(byte)) }
        }
    }

    @Test("Command packet: test vector 3 field by field, round trip")
    func commandPacket() throws {
        let packet = try SCP80CommandPacket(userData: [0x02, 0x70, 0x00] + testVector3)
        #expect(packet.packetLength == 0x28)
        #expect(packet.headerLength == 0x15 && packet.checksumLength == 8)
        #expect(packet.spi == SCP80SPI(first: 0x06, second: 0x19))
        #expect(packet.kic.rawValue == 0x22 && packet.kid.rawValue == 0x22)
        #expect(packet.tar == 0xB00011)
        #expect(packet.securedData.count == 32)
        #expect(packet.header == bytes("0028 15 0619 22 22 b00011"))
        #expect(packet.encoded == testVector3)
        #expect(packet.userData == [0x02, 0x70, 0x00] + testVector3)
        #expect(try SCP80CommandPacket(bytes: testVector3) == packet)
    }

    @Test("Unciphered command packet fields (pySim 3DES signed vector, CPL added)")
    func plainCommandFields() throws {
        let body = bytes("1502193535b00000000000000000072ea17bdb72060e00a40000023f00")
        let packet = try SCP80CommandPacket(bytes: [0x00, UInt8(body.count)] + body)
        let fields = try packet.plainFields()
        #expect(fields.counter == .zero && fields.paddingCount == 0)
        #expect(fields.checksum == bytes("072ea17bdb72060e"))
        #expect(fields.data == bytes("00a40000023f00"))
        #expect(fields.encoded == packet.securedData)
        // Padding is split off by PCNTR and kept as transmitted.
        let padded = try SCP80CommandFields(plain: [0, 0, 0, 0, 7, 2, 0xAA, 0xBB, 0, 0], checksumLength: 0)
        #expect(padded.counter == 7 && padded.data == [0xAA, 0xBB] && padded.padding == [0, 0])
        #expect(throws: SCP80Error(code: .badPadding)) { try SCP80CommandFields(plain: [0, 0, 0, 0, 7, 3, 0xAA, 0xBB], checksumLength: 0) }
    }

    @Test("Malformed command packets are typed errors")
    func malformedCommands() throws {
        let udh: [UInt8] = [0x02, 0x70, 0x00]
        #expect(throws: SCP80Error(code: .truncated)) { try SCP80CommandPacket(userData: []) }
        #expect(throws: SCP80Error(code: .truncated)) { try SCP80CommandPacket(userData: [0x05, 0x70, 0x00]) }
        #expect(throws: SCP80Error(code: .badUserDataHeader)) { try SCP80CommandPacket(userData: [0x02, 0x71, 0x00] + testVector3) }
        #expect(throws: SCP80Error(code: .badUserDataHeader)) { try SCP80CommandPacket(userData: [0x02, 0x70, 0x01] + testVector3) }
        #expect(throws: SCP80Error(code: .badUserDataHeader)) { try SCP80CommandPacket(userData: [0x04, 0x70, 0x00, 0x70, 0x00] + testVector3) }
        #expect(throws: SCP80Error(code: .badUserDataHeader)) { try SCP80CommandPacket(userData: [0x01, 0x70] + testVector3) }
        // Other elements (here a concatenation header) are tolerated.
        #expect(try SCP80CommandPacket(userData: [0x07, 0x00, 0x03, 0x01, 0x01, 0x01, 0x70, 0x00] + testVector3).tar == 0xB00011)
        #expect(throws: SCP80Error(code: .truncated)) { try SCP80CommandPacket(userData: udh + Array(testVector3.prefix(9))) }
        #expect(throws: SCP80Error(code: .badLength)) { try SCP80CommandPacket(userData: udh + testVector3.dropLast()) }
        #expect(throws: SCP80Error(code: .badLength)) { try SCP80CommandPacket(userData: udh + testVector3 + [0x00]) }
        var lowCHL = testVector3
        lowCHL[2] = 0x0C
        #expect(throws: SCP80Error(code: .badLength)) { try SCP80CommandPacket(bytes: lowCHL) }
        var highCHL = testVector3
        highCHL[2] = 0x15 + 0x1B
        #expect(throws: SCP80Error(code: .truncated)) { try SCP80CommandPacket(bytes: highCHL) }
        // Assembled by hand with a short body: validate() says so.
        let handmade = SCP80CommandPacket(headerLength: 21, spi: SCP80SPI(first: 0, second: 0), kic: .init(rawValue: 0), kid: .init(rawValue: 0), tar: 1, securedData: [0, 0])
        #expect(throws: SCP80Error(code: .truncated)) { try handmade.validate() }
    }

    @Test("PoR framing: pySim's plain PoR and the spec's real PoR from ISD-P 000013")
    func responsePacket() throws {
        let plain = try SCP80ResponsePacket(userData: bytes("027100000e0ab000110000000000000001612f"))
        #expect(plain.userDataHeader == [0x02, 0x71, 0x00])
        #expect(plain.packetLength == 0x0E && plain.headerLength == 0x0A && plain.checksumLength == 0 && plain.tar == 0xB00011)
        let fields = try plain.plainFields()
        #expect(fields.counter == .zero && fields.status == .ok && fields.checksum.isEmpty && fields.data == [0x01, 0x61, 0x2F])
        let compact = try CompactRemoteResponse(bytes: fields.data)
        #expect(compact.executedCommands == 1 && compact.lastResponse == ResponseAPDU(data: [], sw: 0x612F))
        #expect(compact.encoded == fields.data)
        #expect(plain.userData == bytes("027100000e0ab000110000000000000001612f"))

        let signed = try SCP80ResponsePacket(userData: bytes("027100001612b000110000000000000055f47118381175fb01612f"))
        #expect(signed.checksumLength == 8)
        #expect(try signed.plainFields().checksum == bytes("55f47118381175fb"))

        let v = ExpandedVectors.file.real_por
        let response = [UInt8](repeating: 0x5A, count: v.response_length)
        let real = try SCP80ResponsePacket(userData: bytes(v.por_prefix) + response + bytes(v.sw))
        #expect(real.packetLength == 0x34 && real.headerLength == 0x0A && real.tar == 0x000013)
        let realFields = try real.plainFields()
        #expect(realFields.counter == 0x2D5 && realFields.status == .ok && realFields.paddingCount == 0)
        let script = try ExpandedResponseScript(bytes: realFields.data)
        #expect(script.coding == .definite)
        #expect(script.executedCommands == 1)
        #expect(script.responses == [ResponseAPDU(data: response, sw: .success)])
        #expect(script.otherItems.isEmpty)
        #expect(script.encoded == realFields.data)
        #expect(SCP80ResponsePacket(headerLength: 0x0A, tar: 0x000013, securedData: realFields.encoded).userData == real.userData)
    }

    @Test("Malformed PoRs are typed errors")
    func malformedResponses() throws {
        let good = bytes("027100000e0ab000110000000000000001612f")
        #expect(throws: SCP80Error(code: .badUserDataHeader)) { try SCP80ResponsePacket(userData: [0x02, 0x70, 0x00] + good.dropFirst(3)) }
        #expect(throws: SCP80Error(code: .truncated)) { try SCP80ResponsePacket(userData: Array(good.prefix(8))) }
        #expect(throws: SCP80Error(code: .badLength)) { try SCP80ResponsePacket(userData: good.dropLast()) }
        var lowRHL = good
        lowRHL[5] = 0x09
        #expect(throws: SCP80Error(code: .badLength)) { try SCP80ResponsePacket(userData: lowRHL) }
        var highRHL = good
        highRHL[5] = 0x0E
        #expect(throws: SCP80Error(code: .truncated)) { try SCP80ResponsePacket(userData: highRHL) }
        var badStatus = good
        badStatus[15] = 0x0D
        #expect(throws: SCP80Error(code: .invalidValue)) { try SCP80ResponsePacket(userData: badStatus).plainFields() }
        var badPCNTR = good
        badPCNTR[14] = 0x04
        #expect(throws: SCP80Error(code: .badPadding)) { try SCP80ResponsePacket(userData: badPCNTR).plainFields() }
        #expect(throws: SCP80Error(code: .truncated)) { try CompactRemoteResponse(bytes: [0x01, 0x90]) }
    }

    @Test("Expanded command scripts: pySim's AA / AE goldens, both ways")
    func commandScripts() throws {
        for v in ExpandedVectors.file.expanded.commands {
            let apdus = try v.apdus.map { try CommandAPDU(bytes: bytes($0)) }
            let coding: ScriptLengthCoding = v.coding == "indefinite" ? .indefinite : .definite
            let script = ExpandedCommandScript(commands: apdus, coding: coding)
            #expect(script.encoded == bytes(v.script), "\(v.name)")
            let parsed = try ExpandedCommandScript(bytes: bytes(v.script))
            #expect(parsed == script, "\(v.name)")
            #expect(try parsed.commands() == apdus, "\(v.name)")
        }
        // A 200-byte C-APDU forces long-form lengths: AA 81 CB | 22 81 C8 | APDU.
        let long = try CommandAPDU(bytes: bytes("80f24000") + [195] + (0..<195).map { UInt8($0) })
        let encoded = ExpandedCommandScript(commands: [long]).encoded
        #expect(Array(encoded.prefix(6)) == bytes("aa81cb2281c8"))
        #expect(try ExpandedCommandScript(bytes: encoded).commands() == [long])
        // SGP.02: SCP03t TLVs in an indefinite template.
        let scp03t = ExpandedCommandScript(items: [TLV(0x84, [0x30, 0x00] + [UInt8](repeating: 1, count: 8))], coding: .indefinite)
        #expect(try ExpandedCommandScript(bytes: scp03t.encoded).items == scp03t.items)
        #expect(try scp03t.commands().isEmpty)
    }

    @Test("Expanded response scripts: pySim's AB / AF goldens, R-APDUs, counts and error TLVs")
    func responseScripts() throws {
        for v in ExpandedVectors.file.expanded.responses {
            let script = try ExpandedResponseScript(bytes: bytes(v.script))
            #expect(script.executedCommands == v.executed, "\(v.name)")
            #expect(script.responses.map(\.bytes) == v.rapdus.map { bytes($0) }, "\(v.name)")
            #expect(script.otherItems.map(\.encoded) == (v.other ?? []).map { bytes($0) }, "\(v.name)")
            #expect(script.encoded == bytes(v.script), "\(v.name)")
        }
        // Registry: AB 81 CE | 80 01 01 | 23 81 C8 | 198 bytes 90 00.
        let registry = (0..<198).map { UInt8($0) }
        let built = ExpandedResponseScript(executed: 1, responses: [ResponseAPDU(data: registry, sw: .success)])
        #expect(Array(built.encoded.prefix(9)) == bytes("ab81ce8001012381c8"))
        #expect(try ExpandedResponseScript(bytes: built.encoded).responses.last?.data == registry)
        let statusOnly = ExpandedResponseScript(executed: 1, responses: [ResponseAPDU(sw: 0x6132)])
        #expect(statusOnly.encoded == bytes("ab0780010123026132"))
        let indefinite = ExpandedResponseScript(executed: nil, responses: [ResponseAPDU(sw: .success)], coding: .indefinite)
        #expect(indefinite.encoded == bytes("af80 23029000 0000"))
    }

    @Test("Malformed scripts are typed errors (pySim's truncation cases and more)")
    func malformedScripts() throws {
        for v in ExpandedVectors.file.expanded.malformed_responses {
            #expect(throws: TLVError.self, "\(v.name)") { try ExpandedResponseScript(bytes: bytes(v.script)) }
        }
        #expect(throws: TLVError(code: .truncated)) { try ExpandedResponseScript(bytes: []) }
        #expect(throws: TLVError(code: .unexpectedTag)) { try ExpandedResponseScript(bytes: bytes("aa0780010123029000")) }
        #expect(throws: TLVError(code: .unexpectedTag)) { try ExpandedCommandScript(bytes: bytes("ab0780010123029000")) }
        #expect(throws: TLVError(code: .badLength)) { try ExpandedResponseScript(bytes: bytes("af0523029000")) }
        #expect(throws: TLVError(code: .badLength)) { try ExpandedResponseScript(bytes: bytes("af802302900000000000")) }
        #expect(throws: TLVError(code: .badLength)) { try ExpandedResponseScript(bytes: bytes("ab078001012302900000")) }
        #expect(throws: TLVError(code: .invalidValue)) { try ExpandedResponseScript(bytes: bytes("ab0780020101230190")) }
        #expect(throws: TLVError(code: .invalidValue)) { try ExpandedResponseScript(bytes: bytes("ab06800101230190")) }
        #expect(throws: TLVError(code: .invalidValue)) { try ExpandedResponseScript(items: [TLV(0x23, [0x90])]) }
        #expect(throws: TLVError.self) { try ExpandedCommandScript(bytes: bytes("aa03220100")).commands() }
    }

    @Test("Seeded fuzz: every parser answers random bytes with a value or a typed error")
    func fuzz() {
        var seed: UInt64 = 0x0270_0071
        func next() -> UInt64 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return seed >> 33
        }
        var parsed = 0
        for round in 0..<5000 {
            var input = (0..<Int(next() % 48)).map { _ in UInt8(truncatingIfNeeded: next()) }
            switch round % 5 {
            case 1: input = [0x02, 0x70, 0x00, 0x00, UInt8(input.count)] + input
            case 2: input = [0x02, 0x71, 0x00, 0x00, UInt8(input.count)] + input
            case 3: input = [0xAB, UInt8(input.count)] + input
            case 4: input = [0xAF, 0x80] + input + [0x00, 0x00]
            default: break
            }
            if let packet = try? SCP80CommandPacket(userData: input) {
                parsed += 1
                _ = try? packet.plainFields()
            }
            _ = try? SCP80CommandPacket(bytes: input).plainFields()
            _ = try? SCP80ResponsePacket(userData: input).plainFields()
            _ = try? SCP80CommandFields(plain: input, checksumLength: Int(next() % 12))
            _ = try? SCP80ResponseFields(plain: input, checksumLength: Int(next() % 12))
            _ = try? ExpandedResponseScript(bytes: input).responses
            _ = try? ExpandedCommandScript(bytes: input).commands()
            _ = try? CompactRemoteResponse(bytes: input)
        }
        #expect(parsed > 0, "some framed inputs got past the header checks")
    }
}
