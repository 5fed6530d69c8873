// Passive observers of the on-card protocols: they are neither end of an exchange, they check what
// both ends said, given the keys. `m2mrsp trace` (M2MTrace, docs/trace.md) reads captured ES5/ES8
// traffic with them. They reuse the channels' own primitives (no new crypto): the same derivations,
// MAC chains and ICVs as SCP03tHost/SCP03tCard and KeyEstablishmentHost/Card.
//
// - KeyEstablishmentObserver: with the SM-DP's ephemeral private key (logged by an SM-DP) and
//   PK.ECASD.ECKA, recomputes the card's receipt and the new ISD-P key set; and builds the data the
//   3A02 signature covers.
// - SCP03tObserver: with the ISD-P's SCP03 keys and AID, checks INITIALIZE UPDATE (pseudo-random
//   card challenge, card cryptogram), EXTERNAL AUTHENTICATE (host cryptogram, C-MAC), every segment's
//   C-MAC and decrypts it, every response's R-MAC and decrypts it. Segments missing from a log can
//   be skipped (`elide`): the counter stays right, so later ciphertexts still decrypt, but the MAC
//   chain is lost and later MACs are reported as not checkable.

import M2MCore
public import M2MWire

/// Key establishment (scenario #3) seen from outside.
public enum KeyEstablishmentObserver {
    /// The data the SM-DP (or SM-SR) signs in the second STORE DATA: DGI 3A02 ‖ 7F49 ePK ‖ 00 85 L RC.
    public static func signedData(dgi: [UInt8], ephemeralKey: TLV, randomChallenge: [UInt8]) -> [UInt8] {
        ScenarioThree.signedData(dgi: dgi, ephemeralKey: ephemeralKey, randomChallenge: randomChallenge)
    }

    /// The receipt the card must answer and the key set it creates, from the shared secret
    /// (ECDH of eSK.DP.ECKA and PK.ECASD.ECKA), the CRT of 3A02 and the card's derivation random.
    public static func expected(sharedSecret: SecureBytes, crt: TLV, derivationRandom: [UInt8]?) throws(CryptoError)
        -> (receipt: [UInt8], keys: SCP03Keys)
    {
        let parameters = try KeyEstablishmentParameters(crt: crt)
        let (receiptKey, keys) = try ScenarioThree.derive(sharedSecret: sharedSecret, parameters: parameters, derivationRandom: derivationRandom)
        return (try ScenarioThree.receipt(receiptKey: receiptKey, crt: crt, derivationRandom: derivationRandom), keys)
    }
}

/// An SCP03t session seen from outside, given the ISD-P's static keys and AID.
public struct SCP03tObserver: Sendable {
    public let keys: SCP03Keys
    public let aid: [UInt8]
    var hostChallenge: [UInt8] = []
    var cardChallenge: [UInt8] = []
    var sessionKeys: SCP03SessionKeys?
    var session: SCP03Session?
    /// False once a command was missing (elided) or failed its C-MAC: the chaining value is unknown.
    public private(set) var macChainKnown = true
    /// Why the chain is unknown (for reports).
    public private(set) var macChainLost: String?

    public init(keys: SCP03Keys, aid: [UInt8]) {
        self.keys = keys
        self.aid = aid
    }

    /// What INITIALIZE UPDATE and its answer say.
    public struct InitializeUpdate: Sendable, Hashable {
        public var keyVersion: UInt8
        /// The `i` parameter (70: pseudo-random card challenge).
        public var i: UInt8
        public var cardChallenge: [UInt8]
        public var sequenceCounter: [UInt8]
        /// Whether the card challenge was checked against the pseudo-random derivation (i = 70).
        public var challengeChecked: Bool
    }

    /// Checks `84 0A KVN KeyID HC` and the card's `84 20 <answer>`: key version, pseudo-random card
    /// challenge (when i says so), card cryptogram. Derives the session keys.
    public mutating func initializeUpdate(command: TLV, response: TLV) throws(CryptoError) -> InitializeUpdate {
        session = nil
        sessionKeys = nil
        macChainKnown = true
        macChainLost = nil
        guard command.tag == 0x84, command.value.count == 10 else {
            throw CryptoError(code: .invalidInput, detail: "INITIALIZE UPDATE is 84 0A <KVN> <key id> <host challenge 8>")
        }
        if response.tag == 0x9F44 { throw CryptoError(code: .invalidMAC, detail: "the card refused INITIALIZE UPDATE (9F44 \(Hex.encode(response.value)))") }
        guard response.tag == 0x84, response.value.count == 32 else {
            throw CryptoError(code: .invalidInput, detail: "the answer is not 84 20 <INITIALIZE UPDATE response>")
        }
        let requested = command.value[0]
        guard requested == 0 || requested == keys.keyVersion else {
            throw CryptoError(code: .invalidKey, detail: "the command asks for key version \(Hex.encode([requested])), the keyring holds \(Hex.encode([keys.keyVersion]))")
        }
        let value = response.value
        let answeredVersion = value[10]
        guard answeredVersion == keys.keyVersion else {
            throw CryptoError(code: .invalidKey, detail: "the card answers with key version \(Hex.encode([answeredVersion])), the keyring holds \(Hex.encode([keys.keyVersion]))")
        }
        guard value[11] == 0x03 else { throw CryptoError(code: .invalidInput, detail: "SCP identifier \(Hex.encode([value[11]])) is not SCP03") }
        let i = value[12]
        let challenge = Array(value[13..<21])
        let cryptogram = Array(value[21..<29])
        let counter = Array(value[29..<32])
        hostChallenge = Array(command.value[2...])
        var checked = false
        if i & 0x10 != 0 {
            let expected = try SCP03.pseudoRandomCardChallenge(keys, sequenceCounter: counter, aid: aid)
            guard ConstantTime.equal(expected, challenge) else {
                throw CryptoError(code: .invalidMAC, detail: "the card challenge is not the pseudo-random challenge of AID \(Hex.encode(aid)) and counter \(Hex.encode(counter))")
            }
            checked = true
        }
        let derived = try SCP03.sessionKeys(keys, hostChallenge: hostChallenge, cardChallenge: challenge)
        let expected = try SCP03.derive(key: derived.mac, .cardCryptogram, context: hostChallenge + challenge, bits: 64)
        guard ConstantTime.equal(expected, cryptogram) else {
            throw CryptoError(code: .invalidMAC, detail: "the card cryptogram does not match (wrong keys, or a changed challenge)")
        }
        cardChallenge = challenge
        sessionKeys = derived
        return InitializeUpdate(keyVersion: answeredVersion, i: i, cardChallenge: challenge, sequenceCounter: counter, challengeChecked: checked)
    }

    /// Checks `85 11 <level> <host cryptogram> <C-MAC>`; opens the session. Returns the level.
    public mutating func externalAuthenticate(command: TLV) throws(CryptoError) -> SCP03SecurityLevel {
        guard let sessionKeys else { throw CryptoError(code: .wrongState, detail: "no INITIALIZE UPDATE before EXTERNAL AUTHENTICATE") }
        guard command.tag == 0x85, command.value.count == 17 else {
            throw CryptoError(code: .invalidInput, detail: "EXTERNAL AUTHENTICATE is 85 11 <level> <host cryptogram 8> <C-MAC 8>")
        }
        let level = SCP03SecurityLevel(rawValue: command.value[0])
        guard level.isValid else { throw CryptoError(code: .invalidInput, detail: "security level \(Hex.encode([level.rawValue])) is not valid") }
        let cryptogram = Array(command.value[1..<9])
        let expected = try SCP03.derive(key: sessionKeys.mac, .hostCryptogram, context: hostChallenge + cardChallenge, bits: 64)
        guard ConstantTime.equal(expected, cryptogram) else { throw CryptoError(code: .invalidMAC, detail: "the host cryptogram does not match") }
        var opened = try SCP03Session(keys: sessionKeys, level: level, mcv: [UInt8](repeating: 0, count: 16))
        do throws(CryptoError) {
            try opened.verifyCommandMAC(header: [0x85, 0x11, level.rawValue], data: cryptogram, mac: Array(command.value[9...]))
        } catch {
            throw CryptoError(code: .invalidMAC, detail: "the C-MAC of EXTERNAL AUTHENTICATE does not match")
        }
        session = opened
        macChainKnown = true
        macChainLost = nil
        return level
    }

    /// A segment or an answer, opened.
    public struct Opened: Sendable, Hashable {
        /// The plaintext (nil for an empty answer `86 00`).
        public var plain: [UInt8]?
        /// Whether the MAC was checked (false after an elided command: the chain is unknown).
        public var macChecked: Bool
    }

    /// `count` commands are missing from the capture: the counter moves on, the MAC chain is lost.
    public mutating func elide(_ count: Int) {
        guard var session else { return }
        session.advance(by: UInt32(clamping: max(0, count)))
        self.session = session
        macChainKnown = false
        macChainLost = "commands elided before"
    }

    /// Checks a segment `86 <C-ENC(data)> <C-MAC>` and decrypts it.
    public mutating func segment(_ tlv: TLV) throws(CryptoError) -> Opened {
        guard var session else { throw CryptoError(code: .wrongState, detail: "a segment before the session opened") }
        guard tlv.tag == 0x86, tlv.value.count > 8 else { throw CryptoError(code: .invalidInput, detail: "a segment is 86 <data> <C-MAC 8>") }
        let cipher = Array(tlv.value.dropLast(8))
        session.nextCommand()
        var checked = false
        if macChainKnown {
            do throws(CryptoError) {
                try session.verifyCommandMAC(header: [0x86] + BERLength.encode(tlv.value.count), data: cipher, mac: Array(tlv.value.suffix(8)))
                checked = true
            } catch {
                self.session = session
                macChainKnown = false
                macChainLost = "a C-MAC failed before"
                throw CryptoError(code: .invalidMAC, detail: "the C-MAC of segment \(session.counter) does not match")
            }
        }
        self.session = session
        guard session.level.contains(.cDECRYPTION) else { return Opened(plain: cipher, macChecked: checked) }
        guard cipher.count % 16 == 0 else { throw CryptoError(code: .invalidInput, detail: "segment \(session.counter): \(cipher.count) bytes of ciphertext, not whole blocks") }
        do throws(CryptoError) {
            return Opened(plain: try session.decryptCommand(cipher), macChecked: checked)
        } catch {
            throw CryptoError(code: .invalidInput, detail: "segment \(session.counter) does not decrypt to 80 00… padded data")
        }
    }

    /// Checks an answer to a segment: `86 00`, or `86 <R-ENC(data)> <R-MAC>` (decrypted).
    public func response(_ tlv: TLV) throws(CryptoError) -> Opened {
        if tlv.tag == 0x9F46 { throw CryptoError(code: .invalidMAC, detail: "the card refused the command (9F46 \(Hex.encode(tlv.value)))") }
        guard tlv.tag == 0x86 else { throw CryptoError(code: .invalidInput, detail: "expected an 86 answer, got \(tlv.tag)") }
        guard !tlv.value.isEmpty else { return Opened(plain: nil, macChecked: true) }
        guard let session else { throw CryptoError(code: .wrongState, detail: "an answer before the session opened") }
        guard tlv.value.count > 8 else { throw CryptoError(code: .invalidInput, detail: "an 86 answer with data is <data> <R-MAC 8>") }
        let cipher = Array(tlv.value.dropLast(8))
        var checked = false
        if macChainKnown {  // SCP03t answers always carry an R-MAC (SCP03tCard.answer, SCP03tHost checks it)
            let expected = session.responseMAC([0x86] + BERLength.encode(tlv.value.count), cipher)
            guard ConstantTime.equal(expected, Array(tlv.value.suffix(8))) else { throw CryptoError(code: .invalidMAC, detail: "the R-MAC does not match") }
            checked = true
        }
        guard session.level.contains(.rENCRYPTION) else { return Opened(plain: cipher, macChecked: checked) }
        do throws(CryptoError) {
            return Opened(plain: try session.decryptResponse(cipher), macChecked: checked)
        } catch {
            throw CryptoError(code: .invalidInput, detail: "the answer does not decrypt to 80 00… padded data")
        }
    }

    /// Whether INITIALIZE UPDATE checked out (EXTERNAL AUTHENTICATE can be checked).
    public var isInitialized: Bool { sessionKeys != nil }

    /// The session's encryption counter (commands since EXTERNAL AUTHENTICATE).
    public var counter: UInt32 { session?.counter ?? 0 }
    public var isOpen: Bool { session != nil }
}

/// SCP80 packets seen from outside, given the key sets named by KIc and KID.
public enum SCP80Observer {
    public struct Opened: Sendable, Hashable {
        public var counter: SCP80Counter
        /// The PoR status (nil for a command packet).
        public var status: SCP80PoRStatus?
        /// The secured data without counter, padding count, CC and padding.
        public var data: [UInt8]
        public var paddingCount: Int
        /// Whether a CC was present and checked (false: the SPI asked for none).
        public var checksumChecked: Bool
        /// Whether the data was ciphered (and deciphered).
        public var deciphered: Bool
    }

    static func keySet(_ keySets: [SCP80KeySet], _ identifier: SCP80KeyIdentifier, cipher: Bool) throws(CryptoError) -> SCP80KeySet {
        guard let keys = SCP80KeySet.named(identifier, cipher: cipher, in: keySets) else {
            throw CryptoError(code: .invalidKey, detail: "no SCP80 key set \(identifier.keyVersion) with the algorithm \(cipher ? "KIc" : "KID") \(identifier) names in the keyring")
        }
        return keys
    }

    static func decipher(_ data: [UInt8], with keys: SCP80KeySet) throws(CryptoError) -> [UInt8] {
        guard data.count % keys.cipherAlgorithm.blockSize == 0 else {
            throw CryptoError(code: .invalidInput, detail: "ciphered data of \(data.count) bytes is not whole blocks")
        }
        return try SCP80Crypto.decrypt(keys.cipherAlgorithm, key: keys.kic, data)
    }

    /// The key sets a command packet needs (KIc when ciphered, KID with a CC), by key version.
    public static func neededKeyVersions(_ packet: SCP80CommandPacket) -> [UInt8] {
        var versions: [UInt8] = []
        if packet.spi.ciphered || packet.spi.porCiphered { versions.append(packet.kic.keyVersion) }
        if packet.spi.integrity == .cryptographicChecksum || packet.spi.porIntegrity == .cryptographicChecksum { versions.append(packet.kid.keyVersion) }
        return Array(Set(versions)).sorted()
    }

    /// Deciphers a command packet and checks its CC, as its SPI says. Throws `invalidKey` when a key
    /// set is missing, `invalidMAC` when the CC does not match, `invalidInput` when it is malformed.
    public static func openCommand(_ packet: SCP80CommandPacket, keySets: [SCP80KeySet]) throws(CryptoError) -> Opened {
        try SCP80Crypto.wire { () throws(SCP80Error) in try packet.validate() }
        let spi = packet.spi
        var plain = packet.securedData
        if spi.ciphered { plain = try decipher(plain, with: try keySet(keySets, packet.kic, cipher: true)) }
        let ccLength = packet.checksumLength
        let fields = try SCP80Crypto.wire { () throws(SCP80Error) in try SCP80CommandFields(plain: plain, checksumLength: ccLength) }
        var checked = false
        if spi.integrity == .cryptographicChecksum {
            let keys = try keySet(keySets, packet.kid, cipher: false)
            guard keys.allowsChecksumLength(ccLength) else {
                throw CryptoError(code: .invalidMAC, detail: "CHL announces a \(ccLength)-byte CC: the card refuses it (8 bytes, or 4 with AES)")
            }
            let input = packet.header + fields.counter.bytes + [fields.paddingCount] + fields.data + fields.padding
            let expected = try SCP80Crypto.checksum(keys.checksumAlgorithm, key: keys.kid, input, length: ccLength)
            guard ConstantTime.equal(expected, fields.checksum) else { throw CryptoError(code: .invalidMAC, detail: "the CC does not match") }
            checked = true
        }
        return Opened(counter: fields.counter, status: nil, data: fields.data, paddingCount: Int(fields.paddingCount), checksumChecked: checked,
                      deciphered: spi.ciphered)
    }

    /// Opens the PoR answering `command`, as the command's SPI asked it to be secured. A PoR that
    /// reports an error before the card authenticated the command comes unsecured (RHL 0A): it is
    /// opened as it is, with `checksumChecked` false.
    public static func openPoR(_ packet: SCP80ResponsePacket, command: SCP80CommandPacket, keySets: [SCP80KeySet]) throws(CryptoError) -> Opened {
        let spi = command.spi
        let expectsCC = spi.porIntegrity == .cryptographicChecksum
        let ccLength = expectsCC ? (command.checksumLength > 0 ? command.checksumLength : 8) : 0
        if packet.checksumLength == 0, expectsCC || spi.porCiphered,
           let fields = try? packet.plainFields(), fields.status != .ok {
            return Opened(counter: fields.counter, status: fields.status, data: fields.data, paddingCount: Int(fields.paddingCount),
                          checksumChecked: false, deciphered: false)
        }
        guard packet.checksumLength == ccLength else {
            throw CryptoError(code: .invalidMAC, detail: "RHL \(packet.headerLength) does not announce the \(ccLength)-byte CC the command asked for")
        }
        var plain = packet.securedData
        if spi.porCiphered { plain = try decipher(plain, with: try keySet(keySets, command.kic, cipher: true)) }
        let fields = try SCP80Crypto.wire { () throws(SCP80Error) in try SCP80ResponseFields(plain: plain, checksumLength: ccLength) }
        if expectsCC {
            let keys = try keySet(keySets, command.kid, cipher: false)
            guard keys.allowsChecksumLength(ccLength) else {
                throw CryptoError(code: .invalidMAC, detail: "a \(ccLength)-byte PoR CC is not one the keys can make (8 bytes, or 4 with AES)")
            }
            let expected = try SCP80Crypto.checksum(keys.checksumAlgorithm, key: keys.kid, SCP80Crypto.checksumInput(packet, fields), length: ccLength)
            guard ConstantTime.equal(expected, fields.checksum) else { throw CryptoError(code: .invalidMAC, detail: "the PoR's CC does not match") }
        }
        return Opened(counter: fields.counter, status: fields.status, data: fields.data, paddingCount: Int(fields.paddingCount),
                      checksumChecked: expectsCC, deciphered: spi.porCiphered)
    }
}
