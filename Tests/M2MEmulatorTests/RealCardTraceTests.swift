// Replays of the real-card traces in spec/sgp02-oncard.md (WT logs 2016-11-08, P-256) against the
// emulator, byte for byte where the trace gives the bytes:
//
// - Key establishment (§4.4, test vector 4). The trace's SM-DP sent ePK.DP = eSK.DP·G to a card whose
//   PK.ECASD is 04 3F15…; ShS = ECDH(eSK.DP, PK.ECASD). ECDH is symmetric, so an emulated card whose
//   SK.ECASD is the logged eSK.DP, sent the real card's PK.ECASD as the "ephemeral" key, computes the
//   same ShS — and, with the trace's CRT, must answer the real card's receipt 4A1BBECE…. (The 3A01
//   certificate and the 3A02 signature are our test SM-DP's: the trace's SM-DP key is not public.)
// - SCP03t (§3.2, test vector 2), with the keys that key establishment produced in the card: the
//   trace's INITIALIZE UPDATE + EXTERNAL AUTHENTICATE command bytes must get the real card's answer
//   bytes (pseudo-random card challenge from the ISD-P AID, cryptogram, counter 000001); after two
//   segments, the final response's R-ENC ciphertext must be the real card's (its R-MAC depends on
//   the segments' C-MACs, hence on the real package, which the trace does not give in full: it is
//   checked by the host instead).

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MTransport
import M2MTestKit
import M2MWire
import Testing

@Suite("Real-card trace replays")
struct RealCardTraceTests {
    /// The string fields of the vector file's two sections (the same file the crypto tests read).
    static let vectors: [String: [String: String]] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("M2MCryptoTests/Vectors/sgp02-real-card/vectors.json")
        let json = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: [String: Any]]
        return json.mapValues { $0.compactMapValues { $0 as? String } }
    }()

    static func hex(_ section: String, _ key: String) -> [UInt8] { Hex.decode(vectors[section]![key]!)! }

    @Test("Key establishment receipt and the SCP03t session of the real card, replayed on an emulated card")
    func replay() throws {
        let pki = try TestPKI.generate(curve: .p256)
        let identity = CardIdentity(seed: Array("trace".utf8), index: 0, curve: .p256, ecasdScalar: Self.hex("key_establishment", "esk_dp_ecka"))
        var card = EUICC(identity: identity, ciPublicKey: pki.ci.publicKey)
        let aid = try AID(bytes: Self.hex("scp03t_session", "isd_p_aid"))

        // CreateISDP, INSTALL [for personalization], 3A01 with CERT.DP.ECDSA → 85 10 RC.
        #expect(card.process(Platform.createISDP(aid)).sw == .success)
        let perso = CommandAPDU(cla: 0x80, ins: 0xE6, p1: 0x20, p2: 0x00, data: [0x00, 0x00, 0x10] + aid.bytes + [0x00, 0x00, 0x00], le: 0x00)
        #expect(card.process(perso).sw == .success)
        let first = card.process(.storeData(p1: 0x89, data: DGI(0x3A01, pki.smdp.certificate!.encoded).encoded, le: 0x00))
        try #require(first.sw == .success)
        let challenge = try TLV.parseOne(first.data)
        try #require(challenge.tag == 0x85 && challenge.value.count == 16)

        // 3A02: the trace's CRT, the real card's PK.ECASD as the ephemeral key, signed by our SM-DP over
        // DGI 3A02 ‖ 7F49 ePK ‖ 00 85 L RC (GP Amd A scenario #3, as KeyEstablishmentHost signs).
        let crt = Self.hex("key_establishment", "crt")
        #expect(Hex.encode(crt) == "A615900203099501108001888101108201018301309100")
        let dgi = DGI(0x3A02, crt).encoded
        let ePK = TLV(0x7F49, Self.hex("key_establishment", "pk_ecasd_ecka"))
        let signed = dgi + ePK.encoded + [0x00, 0x85, 0x10] + challenge.value
        let signature = try pki.smdp.key!.signature(for: signed)
        let second = card.process(.storeData(p1: 0x89, block: 1, data: dgi + ePK.encoded + TLV(0x5F37, signature.rawRepresentation).encoded, le: 0x00))
        #expect(second.sw == .success)
        #expect(second.data == [0x86, 0x10] + Self.hex("key_establishment", "receipt"), "the real card's receipt")
        #expect(card.isdp(aid)?.lifeCycle == .personalized)

        // SCP03t: the trace's command bytes, the real card's answer bytes.
        let command = try TLV.parseAll(Self.hex("scp03t_session", "command"))
        let answer = card.processSCP03t(command, target: aid)
        #expect(answer.flatMap(\.encoded) == Self.hex("scp03t_session", "card_answer"), "the real card's INITIALIZE UPDATE / EXTERNAL AUTHENTICATE answer")

        // The host side of the same session (keys of test vector 2), then two segments of a TS.48 package.
        let keys = SCP03Keys(keyVersion: 0x30, enc: SecureBytes(Self.hex("scp03t_session", "k_enc")),
                             mac: SecureBytes(Self.hex("scp03t_session", "k_mac")), dek: SecureBytes(Self.hex("scp03t_session", "k_enc")))
        var host = SCP03tHost(keys: keys, aid: aid.bytes, hostChallenge: Self.hex("scp03t_session", "host_challenge"))
        #expect(host.initializeUpdate().encoded == command[0].encoded)
        #expect(try host.precomputedExternalAuthenticate(sequenceCounter: 1).encoded == command[1].encoded)
        try host.processInitializeUpdate(answer[0])
        try host.processExternalAuthenticate(answer[1])
        let (_, package) = try #require(try Fixtures.all().first)
        let half = (package.count + 1) / 2
        let middle = card.processSCP03t([try host.segment(Array(package[..<half]))], target: aid)
        #expect(middle.map(\.encoded) == [[0x86, 0x00]])
        let final = try #require(card.processSCP03t([try host.segment(Array(package[half...]))], target: aid).first)
        let expected = Self.hex("scp03t_session", "final_response")
        #expect(final.tag == 0x86 && final.value.count == 24)
        #expect(Array(final.value.prefix(16)) == Array(expected.dropFirst(2).prefix(16)), "the real card's R-ENC ciphertext")
        #expect(try host.processSegmentResponse(final) == Self.hex("scp03t_session", "final_plaintext"))
        #expect(card.isdp(aid)?.lifeCycle == .disabled)
    }
}
