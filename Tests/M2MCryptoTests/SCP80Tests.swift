// SCP80 against pySim's recorded vectors and the spec's test vector 3: our sender reproduces every
// command packet byte for byte and our receiver accepts it; our card side rebuilds every PoR byte for
// byte and our SM-SR side opens it. Then the counter policy, every rejection status with the
// receiver's state unchanged, and a seeded fuzz loop.

import Foundation
import M2MCore
import M2MCrypto
import M2MWire
import Testing

struct SCP80VectorFile: Decodable {
    struct Keyset: Decodable { let kvn: UInt8; let algorithm: String; let kic: String; let kid: String }
    struct Command: Decodable, CustomTestStringConvertible {
        let name, keyset, tar, spi, counter, data: String
        let packet: String?
        let packet_without_cpl: String?
        var testDescription: String { name }

        /// The expected packet from CPL on.
        var expected: [UInt8] {
            if let packet { return hex(packet) }
            let body = hex(packet_without_cpl!)
            return [UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        }
    }
    struct PoR: Decodable, CustomTestStringConvertible {
        let name, keyset, tar, spi, por: String
        let data: String?
        var testDescription: String { name }
    }
    struct RealPoR: Decodable { let por_prefix: String; let response_length: Int; let sw: String }

    let keysets: [String: Keyset]
    let commands: [Command]
    let pors: [PoR]
    let bad_pors: [PoR]
    let real_por: RealPoR

    static let file: SCP80VectorFile = try! Vectors.load("pysim-scp80/vectors.json")

    struct UnknownAlgorithm: Error { let name: String }

    func keys(_ name: String) throws -> SCP80KeySet {
        let k = keysets[name]!
        let algorithm: SCP80Algorithm = switch k.algorithm {
        case "aes": .aes
        case "3des2": .tripleDES2Key
        default: throw UnknownAlgorithm(name: k.algorithm)
        }
        return try SCP80KeySet(keyVersion: k.kvn, algorithm: algorithm, kic: SecureBytes(hex(k.kic)), kid: SecureBytes(hex(k.kid)))
    }
}

func scp80TAR(_ text: String) throws -> SCP80TAR { try SCP80TAR(bytes: hex(text)) }
func scp80SPI(_ text: String) throws -> SCP80SPI { try SCP80SPI(bytes: hex(text)) }

/// Test keys (AES-128, key version 1) and the SGP.02 ISD-R SPIs seen in real traffic.
enum SCP80Fixture {
    static let aesKeys = try! SCP80KeySet(
        keyVersion: 1, algorithm: .aes,
        kic: SecureBytes(hex("404142434445464748494a4b4c4d4e4f")), kid: SecureBytes(hex("505152535455565758595a5b5c5d5e5f")))
    /// Counter higher, ciphered, CC; PoR required, CC, ciphered, by SMS-SUBMIT (SPI 16 39).
    static let strict = SCP80SPI(counter: .higher, ciphered: true, integrity: .cryptographicChecksum,
                                 por: .required, porIntegrity: .cryptographicChecksum, porCiphered: true, porViaSMSSubmit: true)
    static let strictMSL = SCP80MinimumSecurityLevel(counter: .higher, ciphering: true, integrity: .cryptographicChecksum)
    static let script = ExpandedCommandScript(commands: [CommandAPDU(cla: 0x80, ins: 0xE2, p1: 0x88, p2: 0x00, data: [0x3A, 0x07, 0x00])]).encoded

    static func receiver(counters: [UInt8: SCP80Counter] = [:], msl: SCP80MinimumSecurityLevel = strictMSL,
                         maximumCounterIncrement: UInt64? = nil) throws -> SCP80Receiver {
        try SCP80Receiver(tars: [.isdR], keySets: [aesKeys], minimumSecurityLevel: msl, counters: counters,
                          maximumCounterIncrement: maximumCounterIncrement)
    }

    static func sender(counter: SCP80Counter = .zero, keys: SCP80KeySet = aesKeys, tar: SCP80TAR = .isdR) throws -> SCP80Sender {
        try SCP80Sender(keys: keys, tar: tar, counter: counter)
    }
}

@Suite("SCP80")
struct SCP80Tests {
    static let commands = SCP80VectorFile.file.commands
    static let pors = SCP80VectorFile.file.pors

    // MARK: Vectors

    @Test("Sender reproduces pySim's command packets (incl. spec test vector 3)", arguments: commands)
    func senderVectors(_ v: SCP80VectorFile.Command) throws {
        let file = SCP80VectorFile.file
        var sender = try SCP80Sender(keys: file.keys(v.keyset), tar: scp80TAR(v.tar))
        let command = try sender.secure(hex(v.data), spi: scp80SPI(v.spi))
        #expect(command.packet.encoded == v.expected)
        #expect(command.userData == [0x02, 0x70, 0x00] + v.expected)
        #expect(command.counter.bytes == hex(v.counter))
        #expect(sender.counter == .zero, "no-counter SPIs leave the sender's counter alone")
    }

    @Test("Receiver accepts pySim's command packets and recovers the APDU", arguments: commands)
    func receiverVectors(_ v: SCP80VectorFile.Command) throws {
        let file = SCP80VectorFile.file
        var receiver = try SCP80Receiver(tars: [scp80TAR(v.tar)], keySets: [file.keys(v.keyset)], minimumSecurityLevel: .none)
        let reception = try receiver.receive([0x02, 0x70, 0x00] + v.expected)
        guard case .accepted(let command) = reception else {
            Issue.record("rejected: \(reception.status)")
            return
        }
        #expect(command.data == hex(v.data))
        #expect(command.counter.bytes == hex(v.counter))
        #expect(command.spi == (try scp80SPI(v.spi)))
        #expect(receiver.counters.isEmpty)
    }

    @Test("Spec test vector 3 field by field")
    func testVector3() throws {
        let keys = try SCP80KeySet(keyVersion: 2, algorithm: .aes, kic: SecureBytes(hex("200102030405060708090a0b0c0d0e0f")),
                                   kid: SecureBytes(hex("201102030405060708090a0b0c0d0e0f")))
        #expect(keys.kicIdentifier.rawValue == 0x22 && keys.kidIdentifier.rawValue == 0x22)
        let sender = try SCP80Sender(keys: keys, tar: 0xB00011)
        let command = try sender.secure(hex("00a40004023f00"), spi: SCP80SPI(first: 0x06, second: 0x19), counter: .zero)
        #expect(command.packet.encoded == hex("0028 15 0619 22 22 b00011 e87cceebb2d93083011ce294f93fc4d8de80da1abae8c37ca3e72ec4432e5058"))
        // Independently: 6 + 8 + 7 bytes need 11 zero bytes to fill two AES blocks (PCNTR 0B);
        // CC = AES-CMAC over header, CNTR, PCNTR, data and padding; then AES-CBC with a zero IV.
        let padding = [UInt8](repeating: 0, count: 11)
        let ccInput = hex("0028 15 0619 22 22 b00011") + [0, 0, 0, 0, 0, 11] + hex("00a40004023f00") + padding
        let cc = Array(try AESCMAC.mac(key: keys.kid, ccInput).prefix(8))
        let ciphertext = try BlockCipher.cbc(.aes, encrypt: true, key: keys.kic, iv: [UInt8](repeating: 0, count: 16),
                                             data: [0, 0, 0, 0, 0, 11] + cc + hex("00a40004023f00") + padding)
        #expect(command.packet.securedData == ciphertext)
    }

    @Test("Card side rebuilds pySim's PoRs byte for byte; SM-SR side opens them", arguments: pors)
    func porVectors(_ v: SCP80VectorFile.PoR) throws {
        let file = SCP80VectorFile.file
        let keys = try file.keys(v.keyset)
        let tar = try scp80TAR(v.tar)
        let spi = try scp80SPI(v.spi)
        let sender = try SCP80Sender(keys: keys, tar: tar)
        let command = try sender.secure(hex("00a40004023f00"), spi: spi, counter: .zero)
        var card = try SCP80Receiver(tars: [tar], keySets: [keys], minimumSecurityLevel: .none)
        guard case .accepted(let incoming) = try card.receive(command.userData) else {
            Issue.record("the card rejected the command")
            return
        }
        let data = hex(v.data!)
        #expect(try card.proofOfReceipt(for: incoming, data: data) == hex(v.por))

        let por = try sender.openProofOfReceipt(hex(v.por), for: command)
        #expect(por.status == .ok)
        #expect(por.data == data)
        #expect(por.counter == .zero)
        #expect(por.isAuthenticated == (spi.porIntegrity == .cryptographicChecksum))
        let compact = try CompactRemoteResponse(bytes: por.data)
        #expect(compact.executedCommands == 1)
        #expect(compact.lastResponse.sw.sw1 == 0x61)
        #expect(compact.lastResponse.data.isEmpty)
    }

    @Test("A PoR whose data was altered after the CC is refused (pySim test_resp_3des_signed_err)")
    func badPoR() throws {
        let file = SCP80VectorFile.file
        for v in file.bad_pors {
            let sender = try SCP80Sender(keys: file.keys(v.keyset), tar: scp80TAR(v.tar))
            let command = try sender.secure(hex("00a40000023f00"), spi: scp80SPI(v.spi), counter: .zero)
            #expect(throws: CryptoError(code: .invalidMAC)) { try sender.openProofOfReceipt(hex(v.por), for: command) }
        }
    }

    @Test("Real-world PoR from ISD-P 000013 (SPI 16 01: plain PoR) opens and its AB script yields one R-APDU")
    func realPoR() throws {
        let v = SCP80VectorFile.file.real_por
        let response = (0..<v.response_length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let userData = hex(v.por_prefix) + response + hex(v.sw)
        // The SM-SR sent counter 2D5 to TAR 000013 with SPI 16 01.
        var sender = try SCP80Fixture.sender(counter: 0x2D4, tar: 0x000013)
        let command = try sender.secure(SCP80Fixture.script, spi: SCP80SPI(first: 0x16, second: 0x01))
        #expect(command.counter == 0x2D5)
        let por = try sender.openProofOfReceipt(userData, for: command)
        #expect(por.status == .ok)
        #expect(!por.isAuthenticated)
        #expect(por.counter == 0x2D5)
        let script = try ExpandedResponseScript(bytes: por.data)
        #expect(script.executedCommands == 1)
        #expect(script.responses == [ResponseAPDU(data: response, sw: .success)])
    }

    // MARK: Round trips

    @Test("Round trips: AES-128/192/256 (8- and 4-byte CC), 3DES 2- and 3-key, DES; PoR with an AB script")
    func roundTrips() throws {
        let setups: [(SCP80Algorithm, Int, Int)] = [
            (.aes, 16, 8), (.aes, 24, 8), (.aes, 32, 8), (.aes, 16, 4), (.tripleDES2Key, 16, 8), (.tripleDES3Key, 24, 8), (.des, 8, 8),
        ]
        for (algorithm, keyLength, ccLength) in setups {
            let keys = try SCP80KeySet(keyVersion: 5, algorithm: algorithm,
                                       kic: SecureBytes((0..<keyLength).map { UInt8($0 * 3 + 1) }),
                                       kid: SecureBytes((0..<keyLength).map { UInt8($0 * 5 + 2) }))
            var sender = try SCP80Sender(keys: keys, tar: .isdR, checksumLength: ccLength)
            var receiver = try SCP80Receiver(tars: [.isdR], keySets: [keys], minimumSecurityLevel: SCP80Fixture.strictMSL)
            for length in [0, 1, 7, 8, 9, 15, 16, 17, 40] {
                let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 7) }
                let command = try sender.secure(data, spi: SCP80Fixture.strict)
                #expect(command.packet.headerLength == UInt8(13 + ccLength))
                #expect(command.packet.securedData.count % algorithm.blockSize == 0)
                guard case .accepted(let incoming) = try receiver.receive(command.userData) else {
                    Issue.record("\(algorithm) \(keyLength) \(length): rejected")
                    continue
                }
                #expect(incoming.data == data)
                #expect(receiver.counter(keyVersion: 5) == command.counter)
                let responseScript = ExpandedResponseScript(executed: 1, responses: [ResponseAPDU(data: data, sw: .success)])
                let porBytes = try #require(try receiver.proofOfReceipt(for: incoming, data: responseScript.encoded))
                let por = try sender.openProofOfReceipt(porBytes, for: command)
                #expect(por.isAuthenticated && por.status == .ok && por.counter == command.counter)
                #expect(por.packet.checksumLength == ccLength)
                #expect(try ExpandedResponseScript(bytes: por.data) == responseScript)
            }
        }
    }

    @Test("Single DES runs as 3DES with K‖K‖K (FIPS 81 / classic DES vector)")
    func singleDES() throws {
        let key = hex("133457799BBCDFF1")
        let out = try BlockCipher.cbc(.tripleDES, encrypt: true, key: key + key, iv: [UInt8](repeating: 0, count: 8), data: hex("0123456789ABCDEF"))
        #expect(out == hex("85E813540F0AB405"))
    }

    @Test("pySim's expanded-format pipeline: AA script through 3DES SPI 06 19 to TAR 000000, AB answer back")
    func expandedPipeline() throws {
        let keys = try SCP80VectorFile.file.keys("3des_card_kic3")
        let script = ExpandedCommandScript(commands: [try CommandAPDU(bytes: hex("80f24002024f0000"))])
        #expect(script.encoded == hex("aa0a220880f24002024f0000"))
        let sender = try SCP80Sender(keys: keys, tar: 0x000000)
        let command = try sender.secure(script.encoded, spi: SCP80SPI(first: 0x06, second: 0x19), counter: .zero)
        var card = try SCP80Receiver(tars: [0x000000], keySets: [keys], minimumSecurityLevel: .none)
        guard case .accepted(let incoming) = try card.receive(command.userData) else {
            Issue.record("rejected")
            return
        }
        #expect(try ExpandedCommandScript(bytes: incoming.data).commands() == script.commands())
        let answer = ExpandedResponseScript(executed: 1, responses: [ResponseAPDU(data: [0xE3, 0x00], sw: .success)])
        let por = try sender.openProofOfReceipt(#require(try card.proofOfReceipt(for: incoming, data: answer.encoded)), for: command)
        #expect(try ExpandedResponseScript(bytes: por.data).responses == [ResponseAPDU(data: [0xE3, 0x00], sw: .success)])
    }

    @Test("MO default notification: no-counter SPI, CNTR 0, the SM-SR receiver accepts without touching counters")
    func moNotification() throws {
        var card = try SCP80Fixture.sender(counter: 41)
        let spi = SCP80SPI(counter: .none, ciphered: true, integrity: .cryptographicChecksum, por: .none)
        let packet = try card.secure([0x4C, 0x01, 0x01], spi: spi)
        #expect(packet.counter == .zero)
        #expect(card.counter == 41)
        var smsr = try SCP80Fixture.receiver(msl: SCP80MinimumSecurityLevel(counter: .none, ciphering: true, integrity: .cryptographicChecksum))
        let reception = try smsr.receive(packet.userData)
        guard case .accepted(let incoming) = reception else {
            Issue.record("rejected \(reception.status)")
            return
        }
        #expect(incoming.data == [0x4C, 0x01, 0x01])
        #expect(try smsr.proofOfReceipt(for: incoming) == nil)
        #expect(smsr.counters.isEmpty)
        // Accepted twice: no replay check was asked for.
        #expect(try smsr.receive(packet.userData).status == .ok)
    }

    // MARK: Counter policy

    @Test("Counter 'higher': replayed (same) and lower counters get 02, the counter only moves on acceptance")
    func counterHigher() throws {
        var sender = try SCP80Fixture.sender()
        var receiver = try SCP80Fixture.receiver()
        let first = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict)
        #expect(try receiver.receive(first.userData).status == .ok)
        #expect(receiver.counter(keyVersion: 1) == 1)

        // The same packet again.
        let replay = try receiver.receive(first.userData)
        try expectRejected(replay, .counterLow, sender: sender, command: first, authenticated: true)
        #expect(receiver.counter(keyVersion: 1) == 1)

        let second = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict)
        #expect(second.counter == 2)
        #expect(try receiver.receive(second.userData).status == .ok)
        // Lower than the stored one.
        let lower = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict, counter: 1)
        try expectRejected(try receiver.receive(lower.userData), .counterLow, sender: sender, command: lower, authenticated: true)
        #expect(receiver.counter(keyVersion: 1) == 2)
        // A jump is fine in "higher" mode without a bound.
        let jump = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict, counter: 1000)
        #expect(try receiver.receive(jump.userData).status == .ok)
        #expect(receiver.counter(keyVersion: 1) == 1000)
    }

    @Test("Counter 'higher' with a bound: beyond stored + bound gets 03")
    func counterHigherBound() throws {
        let sender = try SCP80Fixture.sender()
        var receiver = try SCP80Fixture.receiver(counters: [1: 5], maximumCounterIncrement: 10)
        let tooHigh = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict, counter: 16)
        try expectRejected(try receiver.receive(tooHigh.userData), .counterHigh, sender: sender, command: tooHigh, authenticated: true)
        #expect(receiver.counter(keyVersion: 1) == 5)
        let edge = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict, counter: 15)
        #expect(try receiver.receive(edge.userData).status == .ok)
        #expect(receiver.counter(keyVersion: 1) == 15)
    }

    @Test("Counter 'exactly +1': +2 gets 03, equal gets 02, +1 passes")
    func counterExactlyPlusOne() throws {
        let spi = SCP80SPI(counter: .exactlyPlusOne, ciphered: true, integrity: .cryptographicChecksum, por: .required,
                           porIntegrity: .cryptographicChecksum, porCiphered: true)
        #expect(spi.first == 0x1E)
        let sender = try SCP80Fixture.sender()
        var receiver = try SCP80Fixture.receiver(counters: [1: 5])
        let skip = try sender.secure(SCP80Fixture.script, spi: spi, counter: 7)
        try expectRejected(try receiver.receive(skip.userData), .counterHigh, sender: sender, command: skip, authenticated: true)
        let same = try sender.secure(SCP80Fixture.script, spi: spi, counter: 5)
        try expectRejected(try receiver.receive(same.userData), .counterLow, sender: sender, command: same, authenticated: true)
        #expect(receiver.counter(keyVersion: 1) == 5)
        let next = try sender.secure(SCP80Fixture.script, spi: spi, counter: 6)
        #expect(try receiver.receive(next.userData).status == .ok)
        #expect(receiver.counter(keyVersion: 1) == 6)
        // Now 7 is exactly +1.
        #expect(try receiver.receive(skip.userData).status == .ok)
    }

    @Test("Counter blocked at 2⁴⁰−1: the receiver answers 04, the sender refuses to go on")
    func counterBlocked() throws {
        let sender = try SCP80Fixture.sender()
        var receiver = try SCP80Fixture.receiver(counters: [1: .max])
        let packet = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict, counter: .max)
        try expectRejected(try receiver.receive(packet.userData), .counterBlocked, sender: sender, command: packet, authenticated: true)
        #expect(receiver.counter(keyVersion: 1) == .max)

        var exhausted = try SCP80Fixture.sender(counter: .max)
        #expect(throws: CryptoError(code: .counterRejected)) { try exhausted.secure([], spi: SCP80Fixture.strict) }
        #expect(exhausted.counter == .max)
    }

    // MARK: Rejections

    @Test("Bad CC (ciphered and plain packets): 01, unsecured PoR, state unchanged")
    func badChecksum() throws {
        var receiver = try SCP80Fixture.receiver(counters: [1: 3])
        var sender = try SCP80Fixture.sender(counter: 3)
        let command = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict)
        for index in [3 + 10, 3 + 10 + 8, command.userData.count - 1] {
            var bytes = command.userData
            bytes[index] ^= 0x01
            try expectRejected(try receiver.receive(bytes), .integrityFailed, sender: sender, command: command, authenticated: false)
        }
        // Header bytes are covered too (SPI2, KID's key version kept, TAR kept).
        var spi2 = command.userData
        spi2[7] ^= 0x20
        #expect(try receiver.receive(spi2).status == .integrityFailed)
        // A 6-byte CC (CHL 19) is not an AES-CMAC length.
        var oddCC = command.packet
        oddCC.headerLength = 19
        #expect(try receiver.receive(oddCC.userData).status == .integrityFailed)
        #expect(receiver.counter(keyVersion: 1) == 3)

        // Not ciphered: flip the CC itself.
        let plainSPI = SCP80SPI(counter: .higher, ciphered: false, integrity: .cryptographicChecksum, por: .required, porIntegrity: .cryptographicChecksum)
        var relaxed = try SCP80Fixture.receiver(counters: [1: 3], msl: SCP80MinimumSecurityLevel(counter: .higher, ciphering: false, integrity: .cryptographicChecksum))
        let plain = try sender.secure(SCP80Fixture.script, spi: plainSPI)
        var bytes = plain.userData
        bytes[3 + 10 + 6] ^= 0x80
        try expectRejected(try relaxed.receive(bytes), .integrityFailed, sender: sender, command: plain, authenticated: false)
        #expect(relaxed.counter(keyVersion: 1) == 3)
        #expect(try relaxed.receive(plain.userData).status == .ok)
        #expect(relaxed.counter(keyVersion: 1) == 5)
    }

    @Test("Unknown TAR: 09")
    func unknownTAR() throws {
        let sender = try SCP80Fixture.sender(tar: 0x000013)
        var receiver = try SCP80Fixture.receiver()
        let command = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict, counter: 1)
        try expectRejected(try receiver.receive(command.userData), .tarUnknown, sender: sender, command: command, authenticated: false)
        #expect(receiver.counters.isEmpty)
    }

    @Test("Wrong key version or algorithm in KIc/KID: 06")
    func wrongKeys() throws {
        var receiver = try SCP80Fixture.receiver()
        let base = SCP80Fixture.aesKeys
        let otherVersion = try SCP80KeySet(keyVersion: 3, algorithm: .aes, kic: base.kic, kid: base.kid)
        let sender = try SCP80Fixture.sender(keys: otherVersion)
        let command = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict, counter: 1)
        try expectRejected(try receiver.receive(command.userData), .undefinedSecurityError, sender: sender, command: command, authenticated: false)

        // KIc announcing 3DES for key version 1, whose KIc is AES.
        let mixed = try SCP80KeySet(keyVersion: 1, cipherAlgorithm: .tripleDES2Key, kic: base.kic, checksumAlgorithm: .aes, kid: base.kid)
        let mixedCommand = try SCP80Fixture.sender(keys: mixed).secure(SCP80Fixture.script, spi: SCP80Fixture.strict, counter: 1)
        #expect(mixedCommand.packet.kic.rawValue == 0x15)
        #expect(try receiver.receive(mixedCommand.userData).status == .undefinedSecurityError)
        #expect(receiver.counters.isEmpty)
    }

    @Test("Below the minimum security level: 0A (no ciphering, no CC, no counter)")
    func insufficientSecurityLevel() throws {
        let sender = try SCP80Fixture.sender()
        var receiver = try SCP80Fixture.receiver()
        let weaker: [SCP80SPI] = [
            SCP80SPI(counter: .higher, ciphered: false, integrity: .cryptographicChecksum, por: .required),
            SCP80SPI(counter: .higher, ciphered: true, integrity: .none, por: .required),
            SCP80SPI(counter: .noReplayCheck, ciphered: true, integrity: .cryptographicChecksum, por: .required),
        ]
        for spi in weaker {
            let command = try sender.secure(SCP80Fixture.script, spi: spi, counter: 1)
            try expectRejected(try receiver.receive(command.userData), .insufficientSecurityLevel, sender: sender, command: command, authenticated: false)
        }
        #expect(receiver.counters.isEmpty)
    }

    @Test("Ciphering error: ciphertext that is not whole blocks gets 05")
    func cipheringError() throws {
        let sender = try SCP80Fixture.sender()
        var receiver = try SCP80Fixture.receiver()
        let command = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict, counter: 1)
        for delta in [-1, 1, -15] {
            var packet = command.packet
            packet.securedData = delta < 0 ? Array(packet.securedData.dropLast(-delta)) : packet.securedData + [UInt8](repeating: 0xAB, count: delta)
            try expectRejected(try receiver.receive(packet.userData), .cipheringError, sender: sender, command: command, authenticated: false)
        }
        #expect(receiver.counters.isEmpty)
    }

    @Test("Authenticated packet with PCNTR beyond its data: 05 when ciphered, 06 when not")
    func badPaddingCount() throws {
        let keys = SCP80Fixture.aesKeys
        var receiver = try SCP80Fixture.receiver(msl: .none)
        let data = hex("00a40004023f00")
        for ciphered in [true, false] {
            let spi = SCP80SPI(counter: .higher, ciphered: ciphered, integrity: .cryptographicChecksum, por: .required)
            // Built by hand: PCNTR 0xC8 over a 16-byte-aligned body.
            let padding = ciphered ? [UInt8](repeating: 0, count: 11) : []
            let counterPart: [UInt8] = [0, 0, 0, 0, 1, 0xC8]
            let cpl = 8 + 6 + 8 + data.count + padding.count
            let header: [UInt8] = [0, UInt8(cpl), 21] + spi.bytes + [0x12, 0x12, 0x00, 0x00, 0x01]
            let cc = Array(try AESCMAC.mac(key: keys.kid, header + counterPart + data + padding).prefix(8))
            var secured = counterPart + cc + data + padding
            if ciphered {
                secured = try BlockCipher.cbc(.aes, encrypt: true, key: keys.kic, iv: [UInt8](repeating: 0, count: 16), data: secured)
            }
            let reception = try receiver.receive([0x02, 0x70, 0x00] + header + secured)
            #expect(reception.status == (ciphered ? .cipheringError : .undefinedSecurityError))
            #expect(receiver.counters.isEmpty)
        }
    }

    @Test("RC, DS and reserved PoR mode: 06; the sender refuses RC/DS")
    func unsupported() throws {
        var receiver = try SCP80Fixture.receiver(msl: .none)
        let sender = try SCP80Fixture.sender()
        let valid = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict, counter: 1)
        for first: UInt8 in [0x15, 0x17] {
            var packet = valid.packet
            packet.spi = SCP80SPI(first: first, second: 0x39)
            #expect(try receiver.receive(packet.userData).status == .undefinedSecurityError)
        }
        var reserved = valid.packet
        reserved.spi = SCP80SPI(first: 0x16, second: 0x3B)
        #expect(try receiver.receive(reserved.userData).status == .undefinedSecurityError)
        #expect(receiver.counters.isEmpty)
        #expect(throws: CryptoError(code: .unsupported)) {
            try sender.secure([], spi: SCP80SPI(counter: .higher, ciphered: true, integrity: .redundancyCheck, por: .none), counter: 1)
        }
        #expect(throws: CryptoError(code: .unsupported)) {
            try sender.secure([], spi: SCP80SPI(counter: .higher, ciphered: true, integrity: .cryptographicChecksum, por: .required, porIntegrity: .digitalSignature), counter: 1)
        }
    }

    @Test("PoR modes: none never answers, 'on error only' answers only errors")
    func porModes() throws {
        let sender = try SCP80Fixture.sender()
        var receiver = try SCP80Fixture.receiver()
        let silent = SCP80SPI(counter: .higher, ciphered: true, integrity: .cryptographicChecksum, por: .none)
        let onError = SCP80SPI(counter: .higher, ciphered: true, integrity: .cryptographicChecksum, por: .onErrorOnly, porIntegrity: .cryptographicChecksum)
        let first = try sender.secure(SCP80Fixture.script, spi: silent, counter: 1)
        guard case .accepted(let a) = try receiver.receive(first.userData) else { Issue.record("rejected"); return }
        #expect(try receiver.proofOfReceipt(for: a) == nil)
        #expect(try receiver.receive(first.userData) == .rejected(.counterLow, proofOfReceipt: nil))

        let second = try sender.secure(SCP80Fixture.script, spi: onError, counter: 2)
        guard case .accepted(let b) = try receiver.receive(second.userData) else { Issue.record("rejected"); return }
        #expect(try receiver.proofOfReceipt(for: b) == nil)
        let memory = try #require(try receiver.proofOfReceipt(for: b, status: .insufficientMemory))
        let por = try sender.openProofOfReceipt(memory, for: second)
        #expect(por.status == .insufficientMemory && por.isAuthenticated)
        try expectRejected(try receiver.receive(second.userData), .counterLow, sender: sender, command: second, authenticated: true)
    }

    @Test("SM-SR side refuses PoRs that lack the security asked for, come from another TAR, or carry another counter")
    func porChecks() throws {
        var sender = try SCP80Fixture.sender()
        var receiver = try SCP80Fixture.receiver()
        let command = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict)
        guard case .accepted(let incoming) = try receiver.receive(command.userData) else { Issue.record("rejected"); return }
        let good = try #require(try receiver.proofOfReceipt(for: incoming, data: [1, 0x90, 0x00]))
        #expect(try sender.openProofOfReceipt(good, for: command).isAuthenticated)

        // A plain "OK" PoR where a ciphered, CC'd one was asked for.
        let forged = [0x02, 0x71, 0x00, 0x00, 0x0E, 0x0A, 0x00, 0x00, 0x01, 0, 0, 0, 0, 1, 0x00, 0x00, 0x01, 0x90, 0x00] as [UInt8]
        #expect(throws: CryptoError(code: .invalidMAC)) { try sender.openProofOfReceipt(forged, for: command) }
        // Tampered ciphertext.
        var tampered = good
        tampered[tampered.count - 1] ^= 1
        #expect(throws: CryptoError(code: .invalidMAC)) { try sender.openProofOfReceipt(tampered, for: command) }
        // Another TAR.
        var elsewhere = good
        elsewhere[8] ^= 0x10
        #expect(throws: CryptoError(code: .invalidInput)) { try sender.openProofOfReceipt(elsewhere, for: command) }
        // A valid PoR for another command (counter 1) does not answer command 2.
        let next = try sender.secure(SCP80Fixture.script, spi: SCP80Fixture.strict)
        #expect(throws: CryptoError(code: .counterRejected)) { try sender.openProofOfReceipt(good, for: next) }
        // Not a PoR at all.
        #expect(throws: CryptoError(code: .invalidInput)) { try sender.openProofOfReceipt(command.userData, for: command) }
    }

    @Test("Sender and key set refuse bad parameters")
    func parameters() throws {
        #expect(throws: CryptoError(code: .invalidKey)) {
            try SCP80KeySet(keyVersion: 0, algorithm: .aes, kic: SecureBytes([UInt8](repeating: 1, count: 16)), kid: SecureBytes([UInt8](repeating: 1, count: 16)))
        }
        #expect(throws: CryptoError(code: .invalidKey)) {
            try SCP80KeySet(keyVersion: 1, algorithm: .tripleDES3Key, kic: SecureBytes([UInt8](repeating: 1, count: 16)), kid: SecureBytes([UInt8](repeating: 1, count: 24)))
        }
        let des3 = try SCP80KeySet(keyVersion: 1, algorithm: .tripleDES2Key, kic: SecureBytes([UInt8](repeating: 1, count: 16)), kid: SecureBytes([UInt8](repeating: 2, count: 16)))
        #expect(throws: CryptoError(code: .invalidInput)) { try SCP80Sender(keys: des3, tar: .isdR, checksumLength: 4) }
        #expect(throws: CryptoError(code: .invalidKey)) {
            try SCP80Receiver(tars: [.isdR], keySets: [SCP80Fixture.aesKeys, SCP80Fixture.aesKeys], minimumSecurityLevel: .none)
        }
        // UDH, CPL and header take 13 bytes; with AES the secured part is whole 16-byte blocks, so
        // 13 + 112 = 125 fits in 140 bytes (98 script bytes) and 13 + 128 = 141 does not.
        var sender = try SCP80Fixture.sender()
        #expect(try sender.secure([UInt8](repeating: 0, count: 98), spi: SCP80Fixture.strict).userData.count == 125)
        #expect(throws: CryptoError(code: .invalidInput)) { try sender.secure([UInt8](repeating: 0, count: 99), spi: SCP80Fixture.strict) }
        #expect(sender.counter == 1)
        let unlimited = try SCP80Sender(keys: SCP80Fixture.aesKeys, tar: .isdR, maximumUserDataLength: nil)
        #expect(try unlimited.secure([UInt8](repeating: 0, count: 1000), spi: SCP80Fixture.strict, counter: 1).packet.packetLength == 1032)
    }

    // MARK: Fuzz

    @Test("Seeded fuzz: random and mutated packets are typed errors or rejections, never accepted, never crash")
    func fuzz() throws {
        var seed: UInt64 = 0x5C80_5C80
        func next() -> UInt64 {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return seed >> 33
        }
        let sender = try SCP80Fixture.sender()
        var receiver = try SCP80Fixture.receiver(counters: [1: 100])
        let template = try SCP80Fixture.sender(counter: 100).secure(SCP80Fixture.script, spi: SCP80Fixture.strict, counter: 101)
        var outcomes: [String: Int] = [:]
        for round in 0..<4000 {
            var bytes: [UInt8]
            switch round % 4 {
            case 0:
                bytes = (0..<Int(next() % 64)).map { _ in UInt8(truncatingIfNeeded: next()) }
            case 1:
                // Plausible framing: UDH, a CPL that matches, random header and body.
                let body = (0..<Int(8 + next() % 56)).map { _ in UInt8(truncatingIfNeeded: next()) }
                bytes = [0x02, 0x70, 0x00, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
                if next() % 2 == 0 { bytes[10...12] = [0x00, 0x00, 0x01] }  // TAR ISD-R
            case 2:
                // A valid packet with 1–3 random byte changes.
                bytes = template.userData
                for _ in 0..<Int(1 + next() % 3) {
                    let index = Int(next() % UInt64(bytes.count))
                    bytes[index] ^= UInt8(truncatingIfNeeded: 1 + next() % 255)
                }
                if bytes == template.userData { continue }  // two changes that cancelled out
            default:
                // A valid packet cut or extended.
                bytes = template.userData
                let cut = Int(next() % UInt64(bytes.count))
                bytes = next() % 2 == 0 ? Array(bytes.prefix(cut)) : bytes + (0..<cut % 9 + 1).map { _ in UInt8(truncatingIfNeeded: next()) }
            }
            do {
                let reception = try receiver.receive(bytes)
                guard case .rejected(let status, let por) = reception else {
                    Issue.record("accepted a fuzzed packet: \(Hex.encode(bytes))")
                    continue
                }
                outcomes["\(status.rawValue)", default: 0] += 1
                if let por { _ = try? sender.openProofOfReceipt(por, for: template) }
            } catch {
                outcomes["error", default: 0] += 1
            }
            // The same bytes as a PoR, and through the wire parsers.
            _ = try? sender.openProofOfReceipt(bytes, for: template)
            _ = try? SCP80ResponsePacket(userData: bytes).plainFields()
            _ = try? SCP80CommandPacket(userData: bytes).plainFields()
        }
        #expect(receiver.counter(keyVersion: 1) == 100)
        // The loop reached the checks, not only the framing.
        #expect(outcomes["error", default: 0] > 0)
        #expect(outcomes["1", default: 0] > 0)
        #expect(outcomes["9", default: 0] > 0)
        // The untouched template is still accepted afterwards.
        #expect(try receiver.receive(template.userData).status == .ok)
        #expect(receiver.counter(keyVersion: 1) == 101)
    }

    /// A rejection with a PoR that the sender can open with the same status.
    func expectRejected(
        _ reception: SCP80Reception, _ status: SCP80PoRStatus, sender: SCP80Sender, command: SCP80SecuredCommand,
        authenticated: Bool, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        guard case .rejected(let got, let porBytes) = reception else {
            Issue.record("accepted, expected \(status)", sourceLocation: sourceLocation)
            return
        }
        #expect(got == status, sourceLocation: sourceLocation)
        let bytes = try #require(porBytes, sourceLocation: sourceLocation)
        let por = try sender.openProofOfReceipt(bytes, for: command)
        #expect(por.status == status, sourceLocation: sourceLocation)
        #expect(por.isAuthenticated == authenticated, sourceLocation: sourceLocation)
        #expect(por.counter == (authenticated ? command.counter : .zero), sourceLocation: sourceLocation)
    }
}
