// SCP03 in APDU mode against pySim's recorded sysmoEUICC1 sessions (AES-128/192/256, levels 11, 03,
// 33): our host side produces every command byte for byte, and our card side produces every
// response byte for byte, including the pseudo-random card challenge for the ISD-R AID.

import M2MCore
import M2MCrypto
import M2MWire
import Testing

struct SCP03VectorFile: Decodable {
    struct Keyset: Decodable { let kvn: UInt8; let enc: String; let mac: String; let dek: String }
    struct Session: Decodable, CustomTestStringConvertible {
        let name, keyset, init_upd_cmd, init_upd_rsp, ext_auth_cmd, get_eid_cmd, get_eid_rsp: String
        let case_1, case_2, case_3, case_4: String
        var testDescription: String { name }
    }
    struct Derived: Decodable { let s_enc, s_mac, s_rmac, host_cryptogram: String }
    let plain: [String: String]
    let keysets: [String: Keyset]
    let sessions: [Session]
    let derived_aes128_11: Derived

    static let file: SCP03VectorFile = try! Vectors.load("pysim-scp03/scp03.json")

    func keys(_ name: String) -> SCP03Keys {
        let k = keysets[name]!
        return SCP03Keys(keyVersion: k.kvn, enc: SecureBytes(hex(k.enc)), mac: SecureBytes(hex(k.mac)), dek: SecureBytes(hex(k.dek)))
    }
}

let isdRAID = hex("A0000005591010FFFFFFFF8900000100")

@Suite("SCP03 (APDU mode)")
struct SCP03Tests {
    static let sessions = SCP03VectorFile.file.sessions

    @Test("Session keys and host cryptogram of the AES-128 level-11 session (spec test vector 1)")
    func derivation() throws {
        let v = SCP03VectorFile.file
        let keys = v.keys("AES128")
        let keysDerived = try SCP03.sessionKeys(keys, hostChallenge: hex("b13e5f938fc108c4"), cardChallenge: hex("3eb51047495b249f"))
        #expect(keysDerived.enc.bytes == hex(v.derived_aes128_11.s_enc))
        #expect(keysDerived.mac.bytes == hex(v.derived_aes128_11.s_mac))
        #expect(keysDerived.rmac.bytes == hex(v.derived_aes128_11.s_rmac))
        #expect(try SCP03.pseudoRandomCardChallenge(keys, sequenceCounter: [0, 0, 2], aid: isdRAID) == hex("3eb51047495b249f"))
    }

    @Test("Host side reproduces pySim's commands", arguments: sessions)
    func host(session s: SCP03VectorFile.Session) throws {
        let v = SCP03VectorFile.file
        let initCommand = hex(s.init_upd_cmd)
        var host = SCP03Host(keys: v.keys(s.keyset), hostChallenge: Array(initCommand[5..<13]))
        #expect(host.initializeUpdate().bytes == initCommand)
        try host.processInitializeUpdate(response: hex(s.init_upd_rsp))
        let level = SCP03SecurityLevel(rawValue: hex(s.ext_auth_cmd)[2])
        #expect(try host.externalAuthenticate(level: level).bytes == hex(s.ext_auth_cmd))
        #expect(try host.wrap(CommandAPDU(bytes: hex(v.plain["get_eid_cmd"]!))).bytes == hex(s.get_eid_cmd))
        let unwrapped = try host.unwrap(ResponseAPDU(data: hex(s.get_eid_rsp), sw: .success))
        #expect(unwrapped.data == hex(v.plain["get_eid_rsp"]!))
        for (name, expected) in [("case_1", s.case_1), ("case_2", s.case_2), ("case_3", s.case_3), ("case_4", s.case_4)] {
            #expect(try host.wrap(CommandAPDU(bytes: hex(v.plain[name]!))).bytes == hex(expected), "\(name)")
        }
    }

    @Test("Card side reproduces the card's responses and accepts the host's commands", arguments: sessions)
    func card(session s: SCP03VectorFile.Session) throws {
        let v = SCP03VectorFile.file
        let response = hex(s.init_upd_rsp)
        let counter = UInt32(response[29]) << 16 | UInt32(response[30]) << 8 | UInt32(response[31])
        var card = SCP03Card(keys: v.keys(s.keyset), aid: isdRAID, sequenceCounter: counter - 1)
        let command = hex(s.init_upd_cmd)
        #expect(try card.initializeUpdate(hostChallenge: Array(command[5..<13]), keyVersion: command[2]) == response)
        try card.externalAuthenticate(CommandAPDU(bytes: hex(s.ext_auth_cmd)))
        let plain = try card.unwrap(CommandAPDU(bytes: hex(s.get_eid_cmd)))
        #expect(plain.bytes == hex(v.plain["get_eid_cmd"]!))
        let wrapped = try card.wrap(ResponseAPDU(data: hex(v.plain["get_eid_rsp"]!), sw: .success))
        #expect(wrapped.data == hex(s.get_eid_rsp))
        for (name, expected) in [("case_1", s.case_1), ("case_2", s.case_2), ("case_3", s.case_3), ("case_4", s.case_4)] {
            #expect(try card.unwrap(CommandAPDU(bytes: hex(expected))).bytes == hex(v.plain[name]!), "\(name)")
        }
    }

    @Test("Negative: wrong card cryptogram, tampered C-MAC, replayed command, bad R-MAC, no R-MAC on errors")
    func negative() throws {
        let v = SCP03VectorFile.file
        let s = Self.sessions.first { $0.name == "AES128_33" }!
        let command = hex(s.init_upd_cmd)
        var response = hex(s.init_upd_rsp)
        response[25] ^= 1
        var host = SCP03Host(keys: v.keys("AES128"), hostChallenge: Array(command[5..<13]))
        _ = host.initializeUpdate()
        #expect(throws: CryptoError(code: .invalidMAC)) { try host.processInitializeUpdate(response: response) }

        var card = SCP03Card(keys: v.keys("AES128"), aid: isdRAID, sequenceCounter: 2)
        _ = try card.initializeUpdate(hostChallenge: Array(command[5..<13]), keyVersion: 0x30)
        var badAuth = hex(s.ext_auth_cmd)
        badAuth[badAuth.count - 1] ^= 1
        #expect(throws: CryptoError(code: .invalidMAC)) { try card.externalAuthenticate(CommandAPDU(bytes: badAuth)) }
        #expect(card.state == .initial)

        card = SCP03Card(keys: v.keys("AES128"), aid: isdRAID, sequenceCounter: 2)
        _ = try card.initializeUpdate(hostChallenge: Array(command[5..<13]), keyVersion: 0x30)
        try card.externalAuthenticate(CommandAPDU(bytes: hex(s.ext_auth_cmd)))
        _ = try card.unwrap(CommandAPDU(bytes: hex(s.get_eid_cmd)))
        // The same command again: MCV and counter moved on, so it no longer verifies.
        #expect(throws: CryptoError(code: .invalidMAC)) { try card.unwrap(CommandAPDU(bytes: hex(s.get_eid_cmd))) }
        var fresh = SCP03Card(keys: v.keys("AES128"), aid: isdRAID)
        #expect(throws: CryptoError(code: .wrongState)) { try fresh.unwrap(CommandAPDU(bytes: hex(s.get_eid_cmd))) }

        host = SCP03Host(keys: v.keys("AES128"), hostChallenge: Array(command[5..<13]))
        _ = host.initializeUpdate()
        try host.processInitializeUpdate(response: hex(s.init_upd_rsp))
        _ = try host.externalAuthenticate(level: .full)
        _ = try host.wrap(CommandAPDU(bytes: hex(v.plain["get_eid_cmd"]!)))
        var badResponse = hex(s.get_eid_rsp)
        badResponse[3] ^= 1
        #expect(throws: CryptoError(code: .invalidMAC)) { try host.unwrap(ResponseAPDU(data: badResponse, sw: .success)) }
        // An error status word carries no R-MAC and passes through.
        #expect(try host.unwrap(ResponseAPDU(data: [], sw: .referencedDataNotFound)).sw == .referencedDataNotFound)
        #expect(throws: CryptoError(code: .invalidInput)) { try host.externalAuthenticate(level: SCP03SecurityLevel(rawValue: 0x05)) }
    }
}
