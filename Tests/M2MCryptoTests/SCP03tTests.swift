// SCP03t against the real-card session (spec test vector 2), and a host ↔ card round trip that
// moves a whole TS.48-sized payload through segments.

import Foundation
import M2MCore
import M2MCrypto
import M2MWire
import Testing

struct RealCardVectors: Decodable {
    struct KeyEstablishment: Decodable {
        let pk_ecasd_ecka, esk_dp_ecka, shared_secret, shared_info, key_data, crt, receipt: String
    }
    struct Session: Decodable {
        let k_enc, k_mac: String
        let kvn: UInt8
        let isd_p_aid, host_challenge, command, card_answer, card_challenge: String
        let sequence_counter: UInt32
        let s_enc, s_mac, s_rmac, mcv_after_external_authenticate: String
        let segments: UInt32
        let final_response, final_padded_plaintext, final_plaintext: String
    }
    let key_establishment: KeyEstablishment
    let scp03t_session: Session

    static let file: RealCardVectors = try! Vectors.load("sgp02-real-card/vectors.json")
}

@Suite("SCP03t")
struct SCP03tTests {
    static var session: RealCardVectors.Session { RealCardVectors.file.scp03t_session }
    static var keys: SCP03Keys {
        // The real card's ISD-P key set: K-DEK is not in the vector; any value works for SCP03t.
        SCP03Keys(keyVersion: session.kvn, enc: SecureBytes(hex(session.k_enc)), mac: SecureBytes(hex(session.k_mac)),
                  dek: SecureBytes([UInt8](repeating: 0, count: 16)))
    }

    @Test("Host: 84 and precomputed 85 equal the real SM-DP's script; the card's answer is accepted")
    func hostMatchesRealScript() throws {
        let s = Self.session
        var host = SCP03tHost(keys: Self.keys, aid: hex(s.isd_p_aid), hostChallenge: hex(s.host_challenge))
        let iu = host.initializeUpdate()
        let ea = try host.precomputedExternalAuthenticate(sequenceCounter: s.sequence_counter)
        #expect(iu.encoded + ea.encoded == hex(s.command))
        let answer = try TLV.parseAll(hex(s.card_answer))
        try host.processInitializeUpdate(answer[0])
        try host.processExternalAuthenticate(answer[1])
        let session = try #require(host.session)
        #expect(session.keys.enc.bytes == hex(s.s_enc))
        #expect(session.keys.mac.bytes == hex(s.s_mac))
        #expect(session.keys.rmac.bytes == hex(s.s_rmac))
        #expect(session.mcv == hex(s.mcv_after_external_authenticate))
    }

    @Test("Card: answers the real script exactly (pseudo-random challenge, cryptogram, 85 00)")
    func cardMatchesRealAnswer() throws {
        let s = Self.session
        var card = SCP03tCard(keys: Self.keys, aid: hex(s.isd_p_aid), sequenceCounter: s.sequence_counter - 1)
        let commands = try TLV.parseAll(hex(s.command))
        guard case .answer(let iu) = card.process(commands[0]), case .answer(let ea) = card.process(commands[1]) else {
            Issue.record("card refused the real script")
            return
        }
        #expect(iu.encoded + ea.encoded == hex(s.card_answer))
        #expect(card.session?.mcv == hex(s.mcv_after_external_authenticate))
    }

    @Test("R-ENC of the real final response decrypts to the EUICCResponse after two segments")
    func finalResponseREnc() throws {
        let s = Self.session
        let keys = try SCP03.sessionKeys(Self.keys, hostChallenge: hex(s.host_challenge), cardChallenge: hex(s.card_challenge))
        let tlv = try TLV.parseOne(hex(s.final_response))
        let cipher = Array(tlv.value.prefix(16))
        var icvBlock = [UInt8](repeating: 0, count: 16)
        icvBlock[0] = 0x80
        icvBlock[15] = UInt8(s.segments)
        let icv = try BlockCipher.aesECBEncryptBlock(key: keys.enc, block: icvBlock)
        let plain = try BlockCipher.cbc(.aes, encrypt: false, key: keys.enc, iv: icv, data: cipher)
        #expect(plain == hex(s.final_padded_plaintext))
        #expect(try Padding.removeISO9797M2(plain) == hex(s.final_plaintext))
    }

    @Test("Host ↔ card: a 12 KB payload in 1 KB segments, final answer with R-ENC and R-MAC", arguments: [512, 1024, 1020])
    func roundTrip(segmentSize: Int) throws {
        let aid = hex("A0000005591010FFFFFFFF8900001300")
        let keys = SCP03Keys(keyVersion: 0x30, enc: SecureBytes(SecureRandom.bytes(16)), mac: SecureBytes(SecureRandom.bytes(16)),
                             dek: SecureBytes(SecureRandom.bytes(16)))
        var card = SCP03tCard(keys: keys, aid: aid, sequenceCounter: 7)
        var host = SCP03tHost(keys: keys, aid: aid)
        let iu = host.initializeUpdate()
        let ea = try host.precomputedExternalAuthenticate(sequenceCounter: 8)
        guard case .answer(let iuAnswer) = card.process(iu), case .answer(let eaAnswer) = card.process(ea) else {
            Issue.record("card refused the session")
            return
        }
        try host.processInitializeUpdate(iuAnswer)
        try host.processExternalAuthenticate(eaAnswer)
        let payload = (0..<12_257).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var received: [UInt8] = []
        for start in stride(from: 0, to: payload.count, by: segmentSize) {
            let segment = try host.segment(Array(payload[start..<min(start + segmentSize, payload.count)]))
            guard case .segment(let plain) = card.process(segment) else {
                Issue.record("segment refused")
                return
            }
            received += plain
            #expect(try host.processSegmentResponse(card.emptyAnswer()) == nil)
        }
        #expect(received == payload)
        let final = try card.answer(with: hex("3007A0053003800100"))
        #expect(try host.processSegmentResponse(final) == hex("3007A0053003800100"))
    }

    @Test("Negative: wrong key version, bad cryptogram, tampered segment, replay, 86 before 85 → 9F44/9F45/9F46")
    func negative() throws {
        let aid = hex("A0000005591010FFFFFFFF8900001300")
        var card = SCP03tCard(keys: Self.keys, aid: aid)
        #expect(card.process(TLV(0x84, [0x31, 0x00] + [UInt8](repeating: 1, count: 8))) == .failed(.initializeUpdate(0x03)))
        #expect(card.process(TLV(0x84, [0x30])) == .failed(.initializeUpdate(0x01)))
        #expect(card.process(TLV(0x86, [UInt8](repeating: 0, count: 24))) == .failed(.command(0x02)))

        var host = SCP03tHost(keys: Self.keys, aid: aid)
        card = SCP03tCard(keys: Self.keys, aid: aid)
        guard case .answer = card.process(host.initializeUpdate()) else { Issue.record("IU"); return }
        var ea = try host.precomputedExternalAuthenticate(sequenceCounter: 1)
        ea.value[3] ^= 0xFF
        #expect(card.process(ea) == .failed(.externalAuthenticate(0x02)))

        host = SCP03tHost(keys: Self.keys, aid: aid)
        card = SCP03tCard(keys: Self.keys, aid: aid)
        _ = card.process(host.initializeUpdate())
        _ = card.process(try host.precomputedExternalAuthenticate(sequenceCounter: 1))
        #expect(card.isOpen)
        var segment = try host.segment([1, 2, 3])
        let replay = segment
        segment.value[0] ^= 1
        #expect(card.process(segment) == .failed(.command(0x02)))
        #expect(!card.isOpen)
        #expect(card.process(replay) == .failed(.command(0x02)))
        #expect(SCP03tError.command(0x02).tlv.encoded == hex("9F46 01 02"))
    }
}
