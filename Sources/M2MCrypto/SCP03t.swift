// SCP03t: SCP03 over TLVs, as SGP.02 uses it to download a Profile into an ISD-P
// (spec/sgp02-oncard.md §3.2, verified end to end on a real-card session):
//
//   84 0A <KVN> <KeyID 00> <host challenge 8>        → 84 20 <32-byte INITIALIZE UPDATE response>
//   85 11 <level 33> <host cryptogram 8> <C-MAC 8>   → 85 00
//   86 <BER len> <AES-CBC ciphertext> <C-MAC 8>      → 86 00, or 86 <len> <R-ENC data> <R-MAC 8>
//   errors: 9F44 01 xx (Initialize Update), 9F45 01 xx (External Authenticate), 9F46 01 xx (86 command)
//
// C-MAC over MCV ‖ tag ‖ BER length (counting the 8 MAC bytes) ‖ payload; the EXTERNAL AUTHENTICATE
// MAC over 16×00 ‖ 85 11 ‖ level ‖ host cryptogram. Keys, cryptograms and the pseudo-random card
// challenge exactly as SCP03. R-ENC ICV = AES(S-ENC, 80 ‖ counter) (the GP rule the card follows).

public import M2MWire

/// SCP03t error TLVs (9F44/9F45/9F46 01 xx).
public enum SCP03tError: Sendable, Hashable {
    /// 9F44 01 01 structure error, 01 03 referenced data (key) not found.
    case initializeUpdate(UInt8)
    /// 9F45 01 01 structure error, 01 02 security error.
    case externalAuthenticate(UInt8)
    /// 9F46 01 01 structure error, 01 02 security error.
    case command(UInt8)

    public var tlv: TLV {
        switch self {
        case .initializeUpdate(let reason): TLV(0x9F44, [reason])
        case .externalAuthenticate(let reason): TLV(0x9F45, [reason])
        case .command(let reason): TLV(0x9F46, [reason])
        }
    }

    public static let structure: UInt8 = 0x01
    public static let security: UInt8 = 0x02
    public static let referencedDataNotFound: UInt8 = 0x03
}

/// The SM-DP side of an SCP03t session.
public struct SCP03tHost: Sendable {
    var host: SCP03Host
    /// The ISD-P AID (for the pseudo-random card challenge).
    public let aid: [UInt8]

    public init(keys: SCP03Keys, aid: [UInt8], hostChallenge: [UInt8] = SecureRandom.bytes(8)) {
        host = SCP03Host(keys: keys, hostChallenge: hostChallenge)
        self.aid = aid
    }

    /// The 84 TLV (INITIALIZE UPDATE).
    public mutating func initializeUpdate() -> TLV {
        _ = host.initializeUpdate()
        return TLV(0x84, [host.keys.keyVersion, 0x00] + host.hostChallenge)
    }

    /// The 85 TLV (EXTERNAL AUTHENTICATE) computed before the card answers, from the card challenge
    /// the card will derive for `sequenceCounter` (i = 70 makes this possible, which is how the SM-DP
    /// sends 84 and 85 in one script). The card's 84 answer is checked afterwards with
    /// `processInitializeUpdate`.
    public mutating func precomputedExternalAuthenticate(sequenceCounter: UInt32, level: SCP03SecurityLevel = .full) throws(CryptoError) -> TLV {
        let counter = [UInt8(sequenceCounter >> 16 & 0xFF), UInt8(sequenceCounter >> 8 & 0xFF), UInt8(sequenceCounter & 0xFF)]
        let challenge = try SCP03.pseudoRandomCardChallenge(host.keys, sequenceCounter: counter, aid: aid)
        let sessionKeys = try SCP03.sessionKeys(host.keys, hostChallenge: host.hostChallenge, cardChallenge: challenge)
        let cryptogram = try SCP03.derive(key: sessionKeys.mac, .cardCryptogram, context: host.hostChallenge + challenge, bits: 64)
        let response = [UInt8](repeating: 0, count: 10) + [host.keys.keyVersion, 0x03, 0x70] + challenge + cryptogram + counter
        try host.processInitializeUpdate(response: response)
        return try externalAuthenticate(level: level)
    }

    /// Checks the card's 84 answer (the 32-byte INITIALIZE UPDATE response).
    public mutating func processInitializeUpdate(_ tlv: TLV) throws(CryptoError) {
        try Self.check(tlv)
        guard tlv.tag == 0x84 else { throw CryptoError(code: .invalidInput, detail: "expected 84, got \(tlv.tag)") }
        if host.state == .awaitingInitializeUpdateResponse {
            try host.processInitializeUpdate(response: tlv.value)
        } else {
            // Precomputed: the answer must be exactly the one we assumed.
            guard tlv.value.count == 32, Array(tlv.value[13..<21]) == host.cardChallenge,
                  tlv.value.suffix(3).elementsEqual(host.sequenceCounter ?? []) else {
                throw CryptoError(code: .invalidMAC, detail: "the card's INITIALIZE UPDATE answer differs from the precomputed one")
            }
        }
    }

    /// The 85 TLV after the card's answer was processed.
    public mutating func externalAuthenticate(level: SCP03SecurityLevel = .full) throws(CryptoError) -> TLV {
        guard host.state == .awaitingAuthentication, let sessionKeys = host.sessionKeys else {
            throw CryptoError(code: .wrongState, detail: "INITIALIZE UPDATE first")
        }
        var session = try SCP03Session(keys: sessionKeys, level: level, mcv: [UInt8](repeating: 0, count: 16))
        let cryptogram = try host.hostCryptogram()
        let mac = session.commandMAC(header: [0x85, 0x11, level.rawValue], data: cryptogram)
        host.session = session
        host.state = .open
        return TLV(0x85, [level.rawValue] + cryptogram + mac)
    }

    /// Checks the card's 85 answer (85 00).
    public func processExternalAuthenticate(_ tlv: TLV) throws(CryptoError) {
        try Self.check(tlv)
        guard tlv.tag == 0x85, tlv.value.isEmpty else { throw CryptoError(code: .invalidInput, detail: "expected 85 00") }
    }

    /// One protected segment: 86 ‖ len ‖ C-ENC(segment) ‖ C-MAC.
    public mutating func segment(_ plain: [UInt8]) throws(CryptoError) -> TLV {
        guard host.state == .open, var session = host.session else { throw CryptoError(code: .wrongState, detail: "the session is not open") }
        session.nextCommand()
        let cipher = session.level.contains(.cDECRYPTION) ? try session.encryptCommand(plain) : plain
        let mac = session.commandMAC(header: [0x86] + BERLength.encode(cipher.count + 8), data: cipher)
        host.session = session
        return TLV(0x86, cipher + mac)
    }

    /// The card's answer to a segment: 86 00 (nil), or 86 with R-ENC data and R-MAC (the plaintext).
    public func processSegmentResponse(_ tlv: TLV) throws(CryptoError) -> [UInt8]? {
        try Self.check(tlv)
        guard tlv.tag == 0x86 else { throw CryptoError(code: .invalidInput, detail: "expected 86, got \(tlv.tag)") }
        guard !tlv.value.isEmpty else { return nil }
        guard let session = host.session, tlv.value.count >= 8 else { throw CryptoError(code: .invalidMAC, detail: "86 response too short") }
        let cipher = Array(tlv.value.dropLast(8))
        let mac = Array(tlv.value.suffix(8))
        let expected = session.responseMAC([0x86] + BERLength.encode(tlv.value.count), cipher)
        guard ConstantTime.equal(expected, mac) else { throw CryptoError(code: .invalidMAC, detail: "R-MAC does not match") }
        return session.level.contains(.rENCRYPTION) ? try session.decryptResponse(cipher) : cipher
    }

    /// The current session (MCV, counter, keys), for inspection and tests.
    public var session: SCP03Session? { host.session }

    static func check(_ tlv: TLV) throws(CryptoError) {
        switch tlv.tag {
        case 0x9F44: throw CryptoError(code: .invalidMAC, detail: "card refused INITIALIZE UPDATE (9F44 \(tlv.value.map { String($0, radix: 16) }))")
        case 0x9F45: throw CryptoError(code: .invalidMAC, detail: "card refused EXTERNAL AUTHENTICATE (9F45 \(tlv.value.map { String($0, radix: 16) }))")
        case 0x9F46: throw CryptoError(code: .invalidMAC, detail: "card refused a command TLV (9F46 \(tlv.value.map { String($0, radix: 16) }))")
        default: return
        }
    }
}

/// The eUICC (ISD-P) side of an SCP03t session. Every error answer is a 9F44/9F45/9F46 TLV and
/// ends the session.
public struct SCP03tCard: Sendable {
    var card: SCP03Card

    public init(keys: SCP03Keys, aid: [UInt8], sequenceCounter: UInt32 = 0) {
        card = SCP03Card(keys: keys, aid: aid, sequenceCounter: sequenceCounter)
    }

    public var sequenceCounter: UInt32 { card.sequenceCounter }
    public var isOpen: Bool { card.state == .open }
    public var session: SCP03Session? { card.session }

    /// What a command TLV produced: the answer TLV and, for an 86 segment, its plaintext.
    public enum Outcome: Sendable, Equatable {
        case answer(TLV)
        case segment(plain: [UInt8])
        case failed(SCP03tError)
    }

    /// Processes one command TLV (84, 85 or 86).
    public mutating func process(_ tlv: TLV) -> Outcome {
        switch tlv.tag {
        case 0x84:
            guard tlv.value.count == 10 else { return fail(.initializeUpdate(SCP03tError.structure)) }
            do {
                let response = try card.initializeUpdate(hostChallenge: Array(tlv.value[2...]), keyVersion: tlv.value[0])
                return .answer(TLV(0x84, response))
            } catch {
                return fail(.initializeUpdate(SCP03tError.referencedDataNotFound))
            }
        case 0x85:
            guard tlv.value.count == 17 else { return fail(.externalAuthenticate(SCP03tError.structure)) }
            guard card.state == .initialized, let sessionKeys = card.sessionKeys else { return fail(.externalAuthenticate(SCP03tError.security)) }
            let level = SCP03SecurityLevel(rawValue: tlv.value[0])
            do {
                guard level.isValid else { return fail(.externalAuthenticate(SCP03tError.structure)) }
                let cryptogram = Array(tlv.value[1..<9])
                let expected = try SCP03.derive(key: sessionKeys.mac, .hostCryptogram, context: card.hostChallenge + card.cardChallenge, bits: 64)
                guard ConstantTime.equal(expected, cryptogram) else { return fail(.externalAuthenticate(SCP03tError.security)) }
                var session = try SCP03Session(keys: sessionKeys, level: level, mcv: [UInt8](repeating: 0, count: 16))
                try session.verifyCommandMAC(header: [0x85, 0x11, level.rawValue], data: cryptogram, mac: Array(tlv.value[9...]))
                card.session = session
                card.state = .open
                return .answer(TLV(0x85, []))
            } catch {
                return fail(.externalAuthenticate(SCP03tError.security))
            }
        case 0x86:
            guard card.state == .open, var session = card.session else { return fail(.command(SCP03tError.security)) }
            guard tlv.value.count > 8 else { return fail(.command(SCP03tError.structure)) }
            let cipher = Array(tlv.value.dropLast(8))
            session.nextCommand()
            do {
                try session.verifyCommandMAC(header: [0x86] + BERLength.encode(tlv.value.count), data: cipher, mac: Array(tlv.value.suffix(8)))
            } catch {
                return fail(.command(SCP03tError.security))
            }
            let plain: [UInt8]
            if session.level.contains(.cDECRYPTION) {
                guard cipher.count % 16 == 0, let decrypted = try? session.decryptCommand(cipher) else { return fail(.command(SCP03tError.structure)) }
                plain = decrypted
            } else {
                plain = cipher
            }
            card.session = session
            return .segment(plain: plain)
        default:
            return fail(.command(SCP03tError.structure))
        }
    }

    /// 86 00: segment accepted, nothing to say.
    public func emptyAnswer() -> TLV { TLV(0x86, []) }

    /// 86 <R-ENC(data)> <R-MAC>: the final answer (the TCA EUICCResponse).
    public func answer(with data: [UInt8]) throws(CryptoError) -> TLV {
        guard let session = card.session else { throw CryptoError(code: .wrongState, detail: "no open session") }
        let body = session.level.contains(.rENCRYPTION) ? try session.encryptResponse(data) : data
        let mac = session.responseMAC([0x86] + BERLength.encode(body.count + 8), body)
        return TLV(0x86, body + mac)
    }

    mutating func fail(_ error: SCP03tError) -> Outcome {
        card.session = nil
        card.state = .initial
        return .failed(error)
    }
}
