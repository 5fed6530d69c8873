// GlobalPlatform SCP03 (Amendment D), S8 mode, as pure state machines usable by both sides: the
// platform (host) and the eUICC (card) share the key derivation, cryptograms and the secure
// messaging core. spec/sgp02-oncard.md §3.1 (verified against pySim's recorded vectors):
//
// KDF (SP 800-108 counter mode, PRF AES-CMAC, GP field order):
//   CMAC(K, 00×11 ‖ constant ‖ 00 ‖ L(2 bytes, bits) ‖ i(1 byte) ‖ context)
// constants 00 card cryptogram, 01 host cryptogram, 02 card challenge, 04 S-ENC, 06 S-MAC, 07 S-RMAC;
// context = host challenge ‖ card challenge. C-MAC chains a 16-byte MAC chaining value (MCV);
// C-ENC ICV = AES(S-ENC, counter); R-ENC ICV = AES(S-ENC, 80 ‖ counter); R-MAC over
// MCV ‖ response data ‖ SW. SGP.02 uses i = 70 (pseudo-random card challenge, R-MAC, R-ENC) and
// security level 33.

public import M2MWire

/// SCP03 static keys of a security domain (K-ENC, K-MAC, K-DEK) and their key version.
public struct SCP03Keys: Sendable, Hashable {
    public var keyVersion: UInt8
    public var enc: SecureBytes
    public var mac: SecureBytes
    public var dek: SecureBytes

    public init(keyVersion: UInt8, enc: SecureBytes, mac: SecureBytes, dek: SecureBytes) {
        self.keyVersion = keyVersion
        self.enc = enc
        self.mac = mac
        self.dek = dek
    }
}

/// The security level of an SCP03 session (EXTERNAL AUTHENTICATE P1).
public struct SCP03SecurityLevel: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let cMAC = SCP03SecurityLevel(rawValue: 0x01)
    public static let cDECRYPTION = SCP03SecurityLevel(rawValue: 0x02)
    public static let rMAC = SCP03SecurityLevel(rawValue: 0x10)
    public static let rENCRYPTION = SCP03SecurityLevel(rawValue: 0x20)

    /// 33: C-MAC, C-DECRYPTION, R-MAC, R-ENCRYPTION (what SGP.02 uses).
    public static let full: SCP03SecurityLevel = [.cMAC, .cDECRYPTION, .rMAC, .rENCRYPTION]

    /// Only these combinations are defined by GP Amd D: 01, 03, 11, 13, 31, 33.
    public var isValid: Bool { [0x01, 0x03, 0x11, 0x13, 0x31, 0x33].contains(rawValue) }
}

/// Key derivation, cryptograms and challenges shared by both sides.
public enum SCP03 {
    public enum Constant: UInt8, Sendable {
        case cardCryptogram = 0x00
        case hostCryptogram = 0x01
        case cardChallenge = 0x02
        case sENC = 0x04
        case sMAC = 0x06
        case sRMAC = 0x07
    }

    /// The GP SCP03 KDF with `bits` of output (64 or a key length).
    public static func derive(key: some ContiguousBytes, _ constant: Constant, context: [UInt8], bits: Int) throws(CryptoError) -> [UInt8] {
        let cmac = try AESCMAC(key: key)
        return derive(cmac, constant, context: context, bits: bits)
    }

    static func derive(_ cmac: AESCMAC, _ constant: Constant, context: [UInt8], bits: Int) -> [UInt8] {
        var out: [UInt8] = []
        var counter: UInt8 = 1
        while out.count * 8 < bits {
            let label = [UInt8](repeating: 0, count: 11) + [constant.rawValue, 0x00, UInt8(bits >> 8), UInt8(bits & 0xFF), counter]
            out += cmac.mac(label, context)
            counter += 1
        }
        return Array(out.prefix(bits / 8))
    }

    /// The session keys for a host and card challenge.
    public static func sessionKeys(_ keys: SCP03Keys, hostChallenge: [UInt8], cardChallenge: [UInt8]) throws(CryptoError) -> SCP03SessionKeys {
        let context = hostChallenge + cardChallenge
        let bits = keys.enc.count * 8
        let encCMAC = try AESCMAC(key: keys.enc)
        let macCMAC = try AESCMAC(key: keys.mac)
        return SCP03SessionKeys(
            enc: SecureBytes(derive(encCMAC, .sENC, context: context, bits: bits)),
            mac: SecureBytes(derive(macCMAC, .sMAC, context: context, bits: bits)),
            rmac: SecureBytes(derive(macCMAC, .sRMAC, context: context, bits: bits)))
    }

    /// The pseudo-random card challenge (i = 70): KDF(K-ENC, 02, sequence counter ‖ SD AID, 64 bits).
    public static func pseudoRandomCardChallenge(_ keys: SCP03Keys, sequenceCounter: [UInt8], aid: [UInt8]) throws(CryptoError) -> [UInt8] {
        try derive(key: keys.enc, .cardChallenge, context: sequenceCounter + aid, bits: 64)
    }
}

/// Derived session keys.
public struct SCP03SessionKeys: Sendable, Hashable {
    public let enc: SecureBytes
    public let mac: SecureBytes
    public let rmac: SecureBytes
}

/// The secure-messaging core of an authenticated session: MCV, counter and the three keys. Both the
/// host and the card use it; SCP03t (TLV framing) and APDU framing differ only in the MAC header.
public struct SCP03Session: Sendable {
    public let keys: SCP03SessionKeys
    public let level: SCP03SecurityLevel
    /// MAC chaining value (16 bytes).
    public private(set) var mcv: [UInt8]
    /// Encryption counter: incremented before each command (1 for the first after EXTERNAL AUTHENTICATE).
    public private(set) var counter: UInt32 = 0
    let macCMAC: AESCMAC
    let rmacCMAC: AESCMAC
    /// S-ENC, keyed once for the ICVs and the CBC operations of the session.
    let encCipher: AESKeyedCipher

    init(keys: SCP03SessionKeys, level: SCP03SecurityLevel, mcv: [UInt8]) throws(CryptoError) {
        self.keys = keys
        self.level = level
        self.mcv = mcv
        self.macCMAC = try AESCMAC(key: keys.mac)
        self.rmacCMAC = try AESCMAC(key: keys.rmac)
        self.encCipher = try AESKeyedCipher(key: keys.enc)
    }

    // MARK: Commands

    /// Starts a new command: increments the counter.
    mutating func nextCommand() { counter &+= 1 }

    /// `count` commands went by unseen (an observer of a partial log).
    mutating func advance(by count: UInt32) { counter &+= count }

    /// C-MAC over MCV ‖ header ‖ data; updates the MCV; returns the 8 transmitted bytes.
    mutating func commandMAC(header: [UInt8], data: [UInt8]) -> [UInt8] {
        mcv = macCMAC.mac(mcv, header, data)
        return Array(mcv.prefix(8))
    }

    /// Checks a received C-MAC (card side) and updates the MCV only when it matches.
    mutating func verifyCommandMAC(header: [UInt8], data: [UInt8], mac: [UInt8]) throws(CryptoError) {
        let full = macCMAC.mac(mcv, header, data)
        guard mac.count == 8, ConstantTime.equal(Array(full.prefix(8)), mac) else {
            throw CryptoError(code: .invalidMAC, detail: "C-MAC does not match")
        }
        mcv = full
    }

    func commandICV() throws(CryptoError) -> [UInt8] {
        try encCipher.encryptBlock(SCP03Session.counterBlock(counter, first: 0x00))
    }

    func responseICV() throws(CryptoError) -> [UInt8] {
        try encCipher.encryptBlock(SCP03Session.counterBlock(counter, first: 0x80))
    }

    static func counterBlock(_ counter: UInt32, first: UInt8) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 16)
        block[0] = first
        block[12] = UInt8(counter >> 24)
        block[13] = UInt8(counter >> 16 & 0xFF)
        block[14] = UInt8(counter >> 8 & 0xFF)
        block[15] = UInt8(counter & 0xFF)
        return block
    }

    /// C-ENC: pad 80 00… and encrypt with the counter ICV.
    func encryptCommand(_ plain: [UInt8]) throws(CryptoError) -> [UInt8] {
        try encCipher.cbc(encrypt: true, iv: commandICV(), data: Padding.iso9797M2(plain))
    }

    /// C-DEC on the card side.
    func decryptCommand(_ cipher: [UInt8]) throws(CryptoError) -> [UInt8] {
        try Padding.removeISO9797M2(encCipher.cbc(encrypt: false, iv: commandICV(), data: cipher))
    }

    /// R-ENC on the card side.
    func encryptResponse(_ plain: [UInt8]) throws(CryptoError) -> [UInt8] {
        try encCipher.cbc(encrypt: true, iv: responseICV(), data: Padding.iso9797M2(plain))
    }

    /// R-DEC on the host side.
    func decryptResponse(_ cipher: [UInt8]) throws(CryptoError) -> [UInt8] {
        try Padding.removeISO9797M2(encCipher.cbc(encrypt: false, iv: responseICV(), data: cipher))
    }

    /// R-MAC over MCV ‖ parts (8 bytes).
    func responseMAC(_ parts: [UInt8]...) -> [UInt8] {
        Array(rmacCMAC.mac(parts: [mcv] + parts).prefix(8))
    }
}

/// ISO/IEC 9797-1 padding method 2 (80 00…) to 16-byte blocks.
public enum Padding {
    public static func iso9797M2(_ data: [UInt8], block: Int = 16) -> [UInt8] {
        let padded = (data.count / block + 1) * block
        var out = [UInt8]()
        out.reserveCapacity(padded)
        out.append(contentsOf: data)
        out.append(0x80)
        out.append(contentsOf: repeatElement(0, count: padded - out.count))
        return out
    }

    public static func removeISO9797M2(_ data: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let marker = data.lastIndex(where: { $0 != 0 }), data[marker] == 0x80 else {
            throw CryptoError(code: .invalidInput, detail: "bad 80 00… padding")
        }
        return Array(data[..<marker])
    }
}

// MARK: - APDU mode

/// The host (off-card) side of an SCP03 APDU session.
public struct SCP03Host: Sendable {
    public enum State: Sendable { case initial, awaitingInitializeUpdateResponse, awaitingAuthentication, open }

    public let keys: SCP03Keys
    public let hostChallenge: [UInt8]
    public internal(set) var state: State = .initial
    public private(set) var cardChallenge: [UInt8] = []
    /// The sequence counter the card reported (pseudo-random mode).
    public private(set) var sequenceCounter: [UInt8]?
    var sessionKeys: SCP03SessionKeys?
    public internal(set) var session: SCP03Session?

    public init(keys: SCP03Keys, hostChallenge: [UInt8] = SecureRandom.bytes(8)) {
        self.keys = keys
        self.hostChallenge = hostChallenge
    }

    /// INITIALIZE UPDATE.
    public mutating func initializeUpdate() -> CommandAPDU {
        state = .awaitingInitializeUpdateResponse
        return .initializeUpdate(keyVersion: keys.keyVersion, hostChallenge: hostChallenge)
    }

    /// Checks the card's answer to INITIALIZE UPDATE (KVN, SCP03, card cryptogram).
    public mutating func processInitializeUpdate(response data: [UInt8]) throws(CryptoError) {
        guard state == .awaitingInitializeUpdateResponse else { throw CryptoError(code: .wrongState, detail: "no INITIALIZE UPDATE pending") }
        guard data.count == 29 || data.count == 32 else {
            throw CryptoError(code: .invalidInput, detail: "INITIALIZE UPDATE response is \(data.count) bytes, expected 29 or 32")
        }
        guard data[10] == keys.keyVersion, data[11] == 0x03 else {
            throw CryptoError(code: .invalidInput, detail: "key version \(data[10]) / SCP \(data[11]) not expected")
        }
        cardChallenge = Array(data[13..<21])
        let cardCryptogram = Array(data[21..<29])
        sequenceCounter = data.count == 32 ? Array(data[29..<32]) : nil
        let sessionKeys = try SCP03.sessionKeys(keys, hostChallenge: hostChallenge, cardChallenge: cardChallenge)
        let expected = try SCP03.derive(key: sessionKeys.mac, .cardCryptogram, context: hostChallenge + cardChallenge, bits: 64)
        guard ConstantTime.equal(expected, cardCryptogram) else {
            throw CryptoError(code: .invalidMAC, detail: "card cryptogram does not match")
        }
        self.sessionKeys = sessionKeys
        state = .awaitingAuthentication
    }

    /// The host cryptogram (8 bytes).
    public func hostCryptogram() throws(CryptoError) -> [UInt8] {
        guard let sessionKeys else { throw CryptoError(code: .wrongState, detail: "no session keys yet") }
        return try SCP03.derive(key: sessionKeys.mac, .hostCryptogram, context: hostChallenge + cardChallenge, bits: 64)
    }

    /// EXTERNAL AUTHENTICATE with C-MAC; opens the session.
    public mutating func externalAuthenticate(level: SCP03SecurityLevel) throws(CryptoError) -> CommandAPDU {
        guard level.isValid else { throw CryptoError(code: .invalidInput, detail: "security level \(level.rawValue) is not defined") }
        guard state == .awaitingAuthentication, let sessionKeys else { throw CryptoError(code: .wrongState, detail: "not authenticated yet") }
        var session = try SCP03Session(keys: sessionKeys, level: level, mcv: [UInt8](repeating: 0, count: 16))
        let cryptogram = try hostCryptogram()
        let header: [UInt8] = [0x84, 0x82, level.rawValue, 0x00, 0x10]
        let mac = session.commandMAC(header: header, data: cryptogram)
        self.session = session
        state = .open
        return CommandAPDU(cla: 0x84, ins: 0x82, p1: level.rawValue, p2: 0x00, data: cryptogram + mac)
    }

    /// Wraps a plain command: C-ENC (if the level says so and there is data) then C-MAC.
    public mutating func wrap(_ command: CommandAPDU) throws(CryptoError) -> CommandAPDU {
        guard state == .open, var session else { throw CryptoError(code: .wrongState, detail: "the session is not open") }
        session.nextCommand()
        var data = command.data
        if session.level.contains(.cDECRYPTION), !data.isEmpty { data = try session.encryptCommand(data) }
        let cla = (command.cla & 0xF0) | 0x04
        let header = [cla, command.ins, command.p1, command.p2, UInt8(data.count + 8)]
        let mac = session.commandMAC(header: header, data: data)
        self.session = session
        return CommandAPDU(cla: command.cla | 0x04, ins: command.ins, p1: command.p1, p2: command.p2, data: data + mac, le: command.le)
    }

    /// Unwraps a response: checks R-MAC and decrypts R-ENC data when the level says so.
    public func unwrap(_ response: ResponseAPDU) throws(CryptoError) -> ResponseAPDU {
        guard state == .open, let session else { throw CryptoError(code: .wrongState, detail: "the session is not open") }
        guard session.level.contains(.rMAC), response.sw.isSuccessOrWarning else { return response }
        guard response.data.count >= 8 else { throw CryptoError(code: .invalidMAC, detail: "response too short for an R-MAC") }
        let body = Array(response.data.dropLast(8))
        let mac = Array(response.data.suffix(8))
        guard ConstantTime.equal(session.responseMAC(body, response.sw.bytes), mac) else {
            throw CryptoError(code: .invalidMAC, detail: "R-MAC does not match")
        }
        if session.level.contains(.rENCRYPTION), !body.isEmpty {
            return ResponseAPDU(data: try session.decryptResponse(body), sw: response.sw)
        }
        return ResponseAPDU(data: body, sw: response.sw)
    }
}

/// The card (eUICC) side of an SCP03 APDU session.
public struct SCP03Card: Sendable {
    public enum State: Sendable { case initial, initialized, open }

    public let keys: SCP03Keys
    /// The security domain's AID (pseudo-random challenge input).
    public let aid: [UInt8]
    /// The 3-byte sequence counter, incremented per INITIALIZE UPDATE.
    public private(set) var sequenceCounter: UInt32
    public internal(set) var state: State = .initial
    var hostChallenge: [UInt8] = []
    var cardChallenge: [UInt8] = []
    var sessionKeys: SCP03SessionKeys?
    public internal(set) var session: SCP03Session?

    public init(keys: SCP03Keys, aid: [UInt8], sequenceCounter: UInt32 = 0) {
        self.keys = keys
        self.aid = aid
        self.sequenceCounter = sequenceCounter
    }

    /// Answers INITIALIZE UPDATE: key diversification data (zeros), KVN, 03, i=70, pseudo-random
    /// card challenge, card cryptogram, sequence counter.
    public mutating func initializeUpdate(hostChallenge: [UInt8], keyVersion: UInt8) throws(CryptoError) -> [UInt8] {
        guard hostChallenge.count == 8 else { throw CryptoError(code: .invalidInput, detail: "host challenge is 8 bytes") }
        guard keyVersion == 0 || keyVersion == keys.keyVersion else {
            throw CryptoError(code: .invalidKey, detail: "key version \(keyVersion) not present")
        }
        sequenceCounter += 1
        let counter = [UInt8(sequenceCounter >> 16 & 0xFF), UInt8(sequenceCounter >> 8 & 0xFF), UInt8(sequenceCounter & 0xFF)]
        let challenge = try SCP03.pseudoRandomCardChallenge(keys, sequenceCounter: counter, aid: aid)
        let sessionKeys = try SCP03.sessionKeys(keys, hostChallenge: hostChallenge, cardChallenge: challenge)
        let cryptogram = try SCP03.derive(key: sessionKeys.mac, .cardCryptogram, context: hostChallenge + challenge, bits: 64)
        self.hostChallenge = hostChallenge
        self.cardChallenge = challenge
        self.sessionKeys = sessionKeys
        session = nil
        state = .initialized
        return [UInt8](repeating: 0, count: 10) + [keys.keyVersion, 0x03, 0x70] + challenge + cryptogram + counter
    }

    /// Checks EXTERNAL AUTHENTICATE (host cryptogram and C-MAC over its header); opens the session.
    public mutating func externalAuthenticate(_ command: CommandAPDU) throws(CryptoError) {
        guard state == .initialized, let sessionKeys else { throw CryptoError(code: .wrongState, detail: "INITIALIZE UPDATE first") }
        state = .initial  // any failure ends the attempt
        let level = SCP03SecurityLevel(rawValue: command.p1)
        guard command.cla == 0x84, command.ins == 0x82, level.isValid, command.data.count == 16 else {
            throw CryptoError(code: .invalidInput, detail: "malformed EXTERNAL AUTHENTICATE")
        }
        let expected = try SCP03.derive(key: sessionKeys.mac, .hostCryptogram, context: hostChallenge + cardChallenge, bits: 64)
        guard ConstantTime.equal(expected, Array(command.data.prefix(8))) else {
            throw CryptoError(code: .invalidMAC, detail: "host cryptogram does not match")
        }
        var session = try SCP03Session(keys: sessionKeys, level: level, mcv: [UInt8](repeating: 0, count: 16))
        try session.verifyCommandMAC(header: [command.cla, command.ins, command.p1, command.p2, 0x10],
                                     data: Array(command.data.prefix(8)), mac: Array(command.data.suffix(8)))
        self.session = session
        state = .open
    }

    /// Verifies and decrypts a wrapped command.
    public mutating func unwrap(_ command: CommandAPDU) throws(CryptoError) -> CommandAPDU {
        guard state == .open, var session else { throw CryptoError(code: .wrongState, detail: "no open session") }
        guard command.cla & 0x04 != 0, command.data.count >= 8 else {
            throw CryptoError(code: .invalidMAC, detail: "command is not secured")
        }
        session.nextCommand()
        let body = Array(command.data.dropLast(8))
        let header = [(command.cla & 0xF0) | 0x04, command.ins, command.p1, command.p2, UInt8(command.data.count)]
        try session.verifyCommandMAC(header: header, data: body, mac: Array(command.data.suffix(8)))
        var plain = body
        if session.level.contains(.cDECRYPTION), !body.isEmpty { plain = try session.decryptCommand(body) }
        self.session = session
        return CommandAPDU(cla: command.cla & ~0x04, ins: command.ins, p1: command.p1, p2: command.p2, data: plain, le: command.le)
    }

    /// Wraps a response: R-ENC data, then R-MAC (only on success or warning status words).
    public func wrap(_ response: ResponseAPDU) throws(CryptoError) -> ResponseAPDU {
        guard state == .open, let session else { throw CryptoError(code: .wrongState, detail: "no open session") }
        guard session.level.contains(.rMAC), response.sw.isSuccessOrWarning else { return response }
        var body = response.data
        if session.level.contains(.rENCRYPTION), !body.isEmpty { body = try session.encryptResponse(body) }
        return ResponseAPDU(data: body + session.responseMAC(body, response.sw.bytes), sw: response.sw)
    }
}
