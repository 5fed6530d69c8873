// SCP80 (ETSI TS 102 225 secured packets, 3GPP TS 31.115 for SMS) as pure values usable by both
// ends (spec/sgp02-oncard.md §3.3, checked against pySim's recorded vectors):
//
//   SCP80Sender    builds command packets (SM-SR → card, or the card's MO packets) and opens the PoRs
//                  that answer them;
//   SCP80Receiver  verifies and deciphers command packets, enforces the counter policy and the minimum
//                  security level, and builds the PoR (the card's ISD-R / RFM endpoint, or the SM-SR
//                  receiving MO packets).
//
// CC input    CPL ‖ CHL ‖ SPI ‖ KIc ‖ KID ‖ TAR ‖ CNTR ‖ PCNTR ‖ data ‖ padding (no UDH)
// CC          AES: AES-CMAC(KID) truncated to the CC length (8, or 4);
//             DES/3DES: last block of CBC (zero IV) over the input zero-padded to 8 bytes
// ciphering   CBC with a zero IV over CNTR ‖ PCNTR ‖ CC ‖ data ‖ padding; zero padding to the block
//             (16 AES, 8 DES) counted in PCNTR
// PoR CC      over UDH ‖ RPL ‖ RHL ‖ TAR ‖ CNTR ‖ PCNTR ‖ status ‖ data ‖ padding; PoR ciphering over
//             CNTR ‖ PCNTR ‖ status ‖ CC ‖ data ‖ padding
//
// Single DES is run as 3DES with K ‖ K ‖ K (identical to DES). RC (CRC) and DS are recognised in the
// SPI but not implemented: the sender refuses them and the receiver answers 06.

public import M2MWire

// MARK: - Keys

/// One SCP80 key set of a security domain: KIc and KID at one key version (1–15).
public struct SCP80KeySet: Sendable, Hashable {
    public let keyVersion: UInt8
    public let cipherAlgorithm: SCP80Algorithm
    public let kic: SecureBytes
    public let checksumAlgorithm: SCP80Algorithm
    public let kid: SecureBytes

    public init(
        keyVersion: UInt8, cipherAlgorithm: SCP80Algorithm, kic: SecureBytes, checksumAlgorithm: SCP80Algorithm, kid: SecureBytes
    ) throws(CryptoError) {
        guard (1...15).contains(keyVersion) else {
            throw CryptoError(code: .invalidKey, detail: "an SCP80 key version is 1–15, not \(keyVersion)")
        }
        try Self.check(kic, cipherAlgorithm, "KIc")
        try Self.check(kid, checksumAlgorithm, "KID")
        self.keyVersion = keyVersion
        self.cipherAlgorithm = cipherAlgorithm
        self.kic = kic
        self.checksumAlgorithm = checksumAlgorithm
        self.kid = kid
    }

    /// KIc and KID with the same algorithm.
    public init(keyVersion: UInt8, algorithm: SCP80Algorithm, kic: SecureBytes, kid: SecureBytes) throws(CryptoError) {
        try self.init(keyVersion: keyVersion, cipherAlgorithm: algorithm, kic: kic, checksumAlgorithm: algorithm, kid: kid)
    }

    /// The KIc byte this key set is announced with.
    public var kicIdentifier: SCP80KeyIdentifier { SCP80KeyIdentifier(keyVersion: keyVersion, algorithm: cipherAlgorithm) }
    /// The KID byte this key set is announced with.
    public var kidIdentifier: SCP80KeyIdentifier { SCP80KeyIdentifier(keyVersion: keyVersion, algorithm: checksumAlgorithm) }

    static func check(_ key: SecureBytes, _ algorithm: SCP80Algorithm, _ name: String) throws(CryptoError) {
        let lengths: [Int] = switch algorithm {
        case .des: [8]
        case .tripleDES2Key: [16]
        case .tripleDES3Key: [24]
        case .aes: [16, 24, 32]
        }
        guard lengths.contains(key.count) else {
            throw CryptoError(code: .invalidKey, detail: "\(name) for \(algorithm) is \(lengths.map(String.init).joined(separator: "/")) bytes, not \(key.count)")
        }
    }

    /// The key set a KIc (`cipher`) or KID names among `keySets`: its key version, and its algorithm
    /// unless the identifier says "implicit".
    static func named(_ identifier: SCP80KeyIdentifier, cipher: Bool, in keySets: [SCP80KeySet]) -> SCP80KeySet? {
        guard let keys = keySets.first(where: { $0.keyVersion == identifier.keyVersion }) else { return nil }
        let algorithm = cipher ? keys.cipherAlgorithm : keys.checksumAlgorithm
        guard identifier.isImplicit || identifier.algorithm == algorithm else { return nil }
        return keys
    }

    /// The CC lengths a key set can produce: 8 for the DES family, 8 or 4 for AES-CMAC.
    func allowsChecksumLength(_ length: Int) -> Bool {
        checksumAlgorithm == .aes ? (length == 8 || length == 4) : length == 8
    }
}

// MARK: - Primitives

/// Ciphering and checksums for the four SCP80 algorithms.
enum SCP80Crypto {
    static func cipher(_ algorithm: SCP80Algorithm, key: SecureBytes) -> (BlockCipher.Algorithm, SecureBytes) {
        switch algorithm {
        case .aes: return (.aes, key)
        case .tripleDES2Key, .tripleDES3Key: return (.tripleDES, key)
        case .des:
            // K ‖ K, which BlockCipher runs as K ‖ K ‖ K: EDE with one key is single DES.
            let doubled = SecureBytes(count: 16) { buffer in
                key.withUnsafeBytes { k in
                    for index in 0..<16 { buffer[index] = k[index % 8] }
                }
            }
            return (.tripleDES, doubled)
        }
    }

    static func encrypt(_ algorithm: SCP80Algorithm, key: SecureBytes, _ data: [UInt8]) throws(CryptoError) -> [UInt8] {
        let (cipher, key) = cipher(algorithm, key: key)
        return try BlockCipher.cbc(cipher, encrypt: true, key: key, iv: [UInt8](repeating: 0, count: algorithm.blockSize), data: data)
    }

    static func decrypt(_ algorithm: SCP80Algorithm, key: SecureBytes, _ data: [UInt8]) throws(CryptoError) -> [UInt8] {
        let (cipher, key) = cipher(algorithm, key: key)
        return try BlockCipher.cbc(cipher, encrypt: false, key: key, iv: [UInt8](repeating: 0, count: algorithm.blockSize), data: data)
    }

    /// The cryptographic checksum of `input`, `length` bytes.
    static func checksum(_ algorithm: SCP80Algorithm, key: SecureBytes, _ input: [UInt8], length: Int) throws(CryptoError) -> [UInt8] {
        switch algorithm {
        case .aes:
            return Array(try AESCMAC.mac(key: key, input).prefix(length))
        case .des, .tripleDES2Key, .tripleDES3Key:
            let blocks = try encrypt(algorithm, key: key, zeroPadded(input, to: 8))
            return Array(blocks.suffix(8).prefix(length))
        }
    }

    static func zeroPadded(_ data: [UInt8], to block: Int) -> [UInt8] {
        let remainder = data.count % block
        return remainder == 0 ? data : data + [UInt8](repeating: 0, count: block - remainder)
    }

    /// Zero bytes that bring `count` to a multiple of `block`.
    static func padding(for count: Int, block: Int) -> [UInt8] {
        let remainder = count % block
        return remainder == 0 ? [] : [UInt8](repeating: 0, count: block - remainder)
    }

    /// Builds a PoR (TP-UD with `02 71 00`), with a CC of `checksumLength` bytes made with `checksumKeys`
    /// and ciphered with `cipherKeys` when they are given.
    static func responsePacket(
        tar: SCP80TAR, counter: SCP80Counter, status: SCP80PoRStatus, data: [UInt8],
        checksumKeys: SCP80KeySet?, checksumLength: Int, cipherKeys: SCP80KeySet?
    ) throws(CryptoError) -> SCP80ResponsePacket {
        let ccLength = checksumKeys == nil ? 0 : checksumLength
        let padding = cipherKeys.map { Self.padding(for: 7 + ccLength + data.count, block: $0.cipherAlgorithm.blockSize) } ?? []
        let securedLength = 7 + ccLength + data.count + padding.count
        guard 4 + securedLength <= 0xFFFF else { throw CryptoError(code: .invalidInput, detail: "a PoR of \(securedLength) bytes does not fit RPL") }
        var packet = SCP80ResponsePacket(headerLength: UInt8(10 + ccLength), tar: tar, securedData: [UInt8](repeating: 0, count: securedLength))
        let counterPart = counter.bytes + [UInt8(padding.count), status.rawValue]
        var checksum: [UInt8] = []
        if let checksumKeys {
            let input = packet.userDataHeader + packet.header + counterPart + data + padding
            checksum = try SCP80Crypto.checksum(checksumKeys.checksumAlgorithm, key: checksumKeys.kid, input, length: ccLength)
        }
        let plain = counterPart + checksum + data + padding
        if let cipherKeys {
            packet.securedData = try encrypt(cipherKeys.cipherAlgorithm, key: cipherKeys.kic, plain)
        } else {
            packet.securedData = plain
        }
        return packet
    }

    /// What a PoR's CC covers: UDH ‖ RPL RHL TAR ‖ counter, padding count, status ‖ data ‖ padding.
    static func checksumInput(_ packet: SCP80ResponsePacket, _ fields: SCP80ResponseFields) -> [UInt8] {
        packet.userDataHeader + packet.header + fields.counter.bytes + [fields.paddingCount, fields.status.rawValue] + fields.data + fields.padding
    }

    /// SCP80Error → CryptoError (.invalidInput) for wire-format failures.
    static func wire<T>(_ body: () throws(SCP80Error) -> T) throws(CryptoError) -> T {
        do throws(SCP80Error) {
            return try body()
        } catch {
            throw CryptoError(code: .invalidInput, detail: error.description)
        }
    }
}

// MARK: - Sender

/// A command packet built by `SCP80Sender`, with what is needed to open its PoR.
public struct SCP80SecuredCommand: Hashable, Sendable {
    /// The packet as transmitted.
    public let packet: SCP80CommandPacket
    /// The counter it carries (zero when the SPI says "no counter").
    public let counter: SCP80Counter
    /// The secured data in clear (the script).
    public let data: [UInt8]
    /// The CC length a PoR with a CC will carry: the command's CC length, or 8 without one.
    public let responseChecksumLength: Int

    public var spi: SCP80SPI { packet.spi }
    public var tar: SCP80TAR { packet.tar }
    /// TP-UD: `02 70 00` ‖ packet.
    public var userData: [UInt8] { packet.userData }
}

/// A PoR opened by the sender of the command it answers.
public struct SCP80ReceivedPoR: Hashable, Sendable {
    /// The packet as received.
    public let packet: SCP80ResponsePacket
    /// The secured data in clear.
    public let fields: SCP80ResponseFields
    /// True when the PoR carried a CC that verified; false for PoRs without a CC, including the
    /// unsecured error PoRs receivers send for packets they could not authenticate.
    public let isAuthenticated: Bool

    public var status: SCP80PoRStatus { fields.status }
    public var counter: SCP80Counter { fields.counter }
    /// The response data (a compact response or an AB/AF script), padding removed.
    public var data: [UInt8] { fields.data }
}

/// The sending end of SCP80: the SM-SR towards a card, or a card sending MO packets. Keeps the last
/// counter it used.
public struct SCP80Sender: Sendable {
    public let keys: SCP80KeySet
    public let tar: SCP80TAR
    /// CC length of command packets (8; AES key sets may use 4).
    public let checksumLength: Int
    /// The largest TP-UD (UDH included) accepted, 140 for one SMS; nil for no limit but CPL's.
    public let maximumUserDataLength: Int?
    /// The last counter value sent.
    public private(set) var counter: SCP80Counter

    public init(
        keys: SCP80KeySet, tar: SCP80TAR, counter: SCP80Counter = .zero, checksumLength: Int = 8, maximumUserDataLength: Int? = 140
    ) throws(CryptoError) {
        guard keys.allowsChecksumLength(checksumLength) else {
            throw CryptoError(code: .invalidInput, detail: "a \(keys.checksumAlgorithm) CC cannot be \(checksumLength) bytes")
        }
        self.keys = keys
        self.tar = tar
        self.counter = counter
        self.checksumLength = checksumLength
        self.maximumUserDataLength = maximumUserDataLength
    }

    /// Secures `data` with the next counter (none for "no counter" SPIs) and records the counter.
    public mutating func secure(_ data: [UInt8], spi: SCP80SPI) throws(CryptoError) -> SCP80SecuredCommand {
        guard spi.counter != .none else { return try secure(data, spi: spi, counter: .zero) }
        guard let next = counter.next else { throw CryptoError(code: .counterRejected, detail: "the counter is exhausted") }
        let command = try secure(data, spi: spi, counter: next)
        counter = next
        return command
    }

    /// Secures `data` with an explicit counter; the recorded counter is not changed.
    public func secure(_ data: [UInt8], spi: SCP80SPI, counter: SCP80Counter) throws(CryptoError) -> SCP80SecuredCommand {
        guard spi.integrity == .none || spi.integrity == .cryptographicChecksum else {
            throw CryptoError(code: .unsupported, detail: "only CC integrity is implemented, not \(spi.integrity)")
        }
        guard spi.porIntegrity == .none || spi.porIntegrity == .cryptographicChecksum else {
            throw CryptoError(code: .unsupported, detail: "only CC PoR integrity is implemented, not \(spi.porIntegrity)")
        }
        guard spi.por != .reserved else { throw CryptoError(code: .invalidInput, detail: "PoR mode 11 is reserved") }
        let ccLength = spi.integrity == .cryptographicChecksum ? checksumLength : 0
        let padding = spi.ciphered ? SCP80Crypto.padding(for: 6 + ccLength + data.count, block: keys.cipherAlgorithm.blockSize) : []
        let securedLength = 6 + ccLength + data.count + padding.count
        guard SCP80CommandPacket.fixedHeaderLength + securedLength <= 0xFFFF else {
            throw CryptoError(code: .invalidInput, detail: "\(data.count) bytes do not fit CPL")
        }
        var packet = SCP80CommandPacket(
            headerLength: SCP80CommandPacket.minimumHeaderLength + UInt8(ccLength), spi: spi,
            kic: keys.kicIdentifier, kid: keys.kidIdentifier, tar: tar,
            securedData: [UInt8](repeating: 0, count: securedLength))
        if let maximumUserDataLength, packet.userData.count > maximumUserDataLength {
            throw CryptoError(code: .invalidInput, detail: "\(packet.userData.count) bytes of user data exceed \(maximumUserDataLength)")
        }
        let counterPart = counter.bytes + [UInt8(padding.count)]
        var checksum: [UInt8] = []
        if ccLength > 0 {
            checksum = try SCP80Crypto.checksum(keys.checksumAlgorithm, key: keys.kid, packet.header + counterPart + data + padding, length: ccLength)
        }
        let plain = counterPart + checksum + data + padding
        packet.securedData = spi.ciphered ? try SCP80Crypto.encrypt(keys.cipherAlgorithm, key: keys.kic, plain) : plain
        return SCP80SecuredCommand(packet: packet, counter: counter, data: data, responseChecksumLength: ccLength > 0 ? ccLength : 8)
    }

    /// Opens the PoR (TP-UD with the RPI element) that answers `command`: deciphers and checks the CC
    /// as the command's SPI asked, and checks TAR and counter. An unsecured PoR is accepted only when
    /// the SPI asked for none, or when it reports an error (`isAuthenticated` is then false).
    public func openProofOfReceipt(_ userData: [UInt8], for command: SCP80SecuredCommand) throws(CryptoError) -> SCP80ReceivedPoR {
        let packet = try SCP80Crypto.wire { () throws(SCP80Error) in try SCP80ResponsePacket(userData: userData) }
        guard packet.tar == command.tar else {
            throw CryptoError(code: .invalidInput, detail: "PoR for TAR \(packet.tar), the command went to \(command.tar)")
        }
        let spi = command.spi
        let expectsCC = spi.porIntegrity == .cryptographicChecksum
        guard expectsCC || spi.porIntegrity == .none else {
            throw CryptoError(code: .unsupported, detail: "PoR integrity \(spi.porIntegrity) is not implemented")
        }
        do throws(CryptoError) {
            return try openSecured(packet, spi: spi, expectsCC: expectsCC, command: command)
        } catch {
            // A receiver that rejects a packet before authenticating it answers without CC or ciphering.
            if expectsCC || spi.porCiphered, packet.checksumLength == 0,
               let fields = try? packet.plainFields(), fields.status != .ok {
                return SCP80ReceivedPoR(packet: packet, fields: fields, isAuthenticated: false)
            }
            throw error
        }
    }

    func openSecured(
        _ packet: SCP80ResponsePacket, spi: SCP80SPI, expectsCC: Bool, command: SCP80SecuredCommand
    ) throws(CryptoError) -> SCP80ReceivedPoR {
        let ccLength = expectsCC ? command.responseChecksumLength : 0
        guard packet.checksumLength == ccLength else {
            throw CryptoError(code: .invalidMAC, detail: "RHL \(packet.headerLength) does not announce the \(ccLength)-byte CC asked for")
        }
        var plain = packet.securedData
        if spi.porCiphered {
            guard plain.count % keys.cipherAlgorithm.blockSize == 0 else {
                throw CryptoError(code: .invalidInput, detail: "ciphered PoR of \(plain.count) bytes is not whole blocks")
            }
            plain = try SCP80Crypto.decrypt(keys.cipherAlgorithm, key: keys.kic, plain)
        }
        let fields = try SCP80Crypto.wire { () throws(SCP80Error) in try SCP80ResponseFields(plain: plain, checksumLength: ccLength) }
        guard expectsCC else { return SCP80ReceivedPoR(packet: packet, fields: fields, isAuthenticated: false) }
        let expected = try SCP80Crypto.checksum(keys.checksumAlgorithm, key: keys.kid, SCP80Crypto.checksumInput(packet, fields), length: ccLength)
        guard ConstantTime.equal(expected, fields.checksum) else { throw CryptoError(code: .invalidMAC, detail: "PoR CC does not match") }
        guard fields.counter == command.counter else {
            throw CryptoError(code: .counterRejected, detail: "PoR counter \(fields.counter), the command carried \(command.counter)")
        }
        return SCP80ReceivedPoR(packet: packet, fields: fields, isAuthenticated: true)
    }
}

// MARK: - Receiver

/// The minimum security level of a receiving entity (TS 102 226 MSL, coded like SPI1): the counter
/// mode, ciphering and integrity a command packet must at least use.
public struct SCP80MinimumSecurityLevel: Hashable, Sendable {
    public var counter: SCP80SPI.CounterMode
    public var ciphering: Bool
    public var integrity: SCP80SPI.Integrity

    public init(counter: SCP80SPI.CounterMode, ciphering: Bool, integrity: SCP80SPI.Integrity) {
        self.counter = counter
        self.ciphering = ciphering
        self.integrity = integrity
    }

    /// From the SPI1-style MSL byte (b5b4 counter, b3 ciphering, b2b1 integrity).
    public init(rawValue: UInt8) {
        let spi = SCP80SPI(first: rawValue, second: 0)
        self.init(counter: spi.counter, ciphering: spi.ciphered, integrity: spi.integrity)
    }

    public var rawValue: UInt8 { SCP80SPI(counter: counter, ciphered: ciphering, integrity: integrity, por: .none).first }

    /// Anything goes.
    public static let none = SCP80MinimumSecurityLevel(counter: .none, ciphering: false, integrity: .none)

    /// Counter mode, ciphering and integrity at least as strong as required.
    public func isSatisfied(by spi: SCP80SPI) -> Bool {
        spi.counter >= counter && (spi.ciphered || !ciphering) && spi.integrity >= integrity
    }
}

/// A command packet the receiver accepted: its secured data in clear and what the PoR needs.
public struct SCP80IncomingCommand: Hashable, Sendable {
    public let tar: SCP80TAR
    public let spi: SCP80SPI
    public let kic: SCP80KeyIdentifier
    public let kid: SCP80KeyIdentifier
    public let counter: SCP80Counter
    /// The secured data without padding (the script).
    public let data: [UInt8]
    /// The CC length a PoR with a CC carries.
    public let responseChecksumLength: Int
}

/// What the receiver made of a command packet.
public enum SCP80Reception: Hashable, Sendable {
    /// Verified; the counter was updated. Execute `data`, then build the PoR with `proofOfReceipt`.
    case accepted(SCP80IncomingCommand)
    /// Refused with this status; the receiver's state is unchanged. `proofOfReceipt` is the TP-UD to
    /// send back, nil when the SPI asks for no PoR.
    case rejected(SCP80PoRStatus, proofOfReceipt: [UInt8]?)

    public var status: SCP80PoRStatus {
        switch self {
        case .accepted: .ok
        case .rejected(let status, _): status
        }
    }
}

/// The receiving end of SCP80: the card's ISD-R / RFM endpoint (or the SM-SR receiving MO packets).
/// Holds the TARs it answers for, its key sets, the minimum security level and one counter per key
/// version; a rejected packet never changes the counters.
///
/// Checks, in this order (first failure wins):
///   TAR known (09) → PoR mode not reserved (06) → minimum security level (0A) → integrity is none
///   (CHL 13) or CC, the keys named by KIc/KID exist with that algorithm (06) → CC length valid: 8,
///   or 4 with AES (01) → the PoR's security is possible (06) → ciphertext whole blocks (05) → CC (01) → PCNTR within the data (05 when
///   ciphered, else 06) → counter: blocked at 2⁴⁰−1 (04), not above the stored one (02), above
///   stored + 1 in "exactly +1" mode or beyond `maximumCounterIncrement` in "higher" mode (03).
/// Failures up to and including the CC check are answered with an unsecured PoR (RHL 0A, counter
/// zero, not ciphered); later ones with a PoR secured as SPI2 asks and carrying the packet's counter.
public struct SCP80Receiver: Sendable {
    public let tars: Set<SCP80TAR>
    public let keySets: [SCP80KeySet]
    public let minimumSecurityLevel: SCP80MinimumSecurityLevel
    /// In "higher" mode, the largest accepted step above the stored counter (nil: any).
    public let maximumCounterIncrement: UInt64?
    /// The last accepted counter per key version (absent: zero).
    public private(set) var counters: [UInt8: SCP80Counter]

    public init(
        tars: Set<SCP80TAR>, keySets: [SCP80KeySet], minimumSecurityLevel: SCP80MinimumSecurityLevel,
        counters: [UInt8: SCP80Counter] = [:], maximumCounterIncrement: UInt64? = nil
    ) throws(CryptoError) {
        guard Set(keySets.map(\.keyVersion)).count == keySets.count else {
            throw CryptoError(code: .invalidKey, detail: "two key sets share a key version")
        }
        self.tars = tars
        self.keySets = keySets
        self.minimumSecurityLevel = minimumSecurityLevel
        self.counters = counters
        self.maximumCounterIncrement = maximumCounterIncrement
    }

    /// The stored counter of a key version.
    public func counter(keyVersion: UInt8) -> SCP80Counter { counters[keyVersion] ?? .zero }

    /// Receives TP-UD (UDH with the CPI element, then the packet). Bytes that are not a command packet
    /// at all (no readable header, CPL or CHL wrong) throw `.invalidInput`: there is nothing to answer.
    public mutating func receive(_ userData: [UInt8]) throws(CryptoError) -> SCP80Reception {
        let packet = try SCP80Crypto.wire { () throws(SCP80Error) in try SCP80CommandPacket(userData: userData) }
        return try receive(packet: packet)
    }

    /// Receives a parsed command packet.
    public mutating func receive(packet: SCP80CommandPacket) throws(CryptoError) -> SCP80Reception {
        try SCP80Crypto.wire { () throws(SCP80Error) in try packet.validate() }
        let spi = packet.spi
        let responseCC = packet.checksumLength > 0 ? packet.checksumLength : 8
        func reject(_ status: SCP80PoRStatus) throws(CryptoError) -> SCP80Reception {
            guard spi.por != .none else { return .rejected(status, proofOfReceipt: nil) }
            let por = try SCP80Crypto.responsePacket(
                tar: packet.tar, counter: .zero, status: status, data: [],
                checksumKeys: nil, checksumLength: 0, cipherKeys: nil)
            return .rejected(status, proofOfReceipt: por.userData)
        }

        guard tars.contains(packet.tar) else { return try reject(.tarUnknown) }
        guard spi.por != .reserved else { return try reject(.undefinedSecurityError) }
        guard minimumSecurityLevel.isSatisfied(by: spi) else { return try reject(.insufficientSecurityLevel) }

        var checksumKeys: SCP80KeySet?
        switch spi.integrity {
        case .none:
            guard packet.checksumLength == 0 else { return try reject(.undefinedSecurityError) }
        case .cryptographicChecksum:
            guard let keys = keySet(packet.kid, cipher: false) else { return try reject(.undefinedSecurityError) }
            checksumKeys = keys
        case .redundancyCheck, .digitalSignature:
            return try reject(.undefinedSecurityError)
        }
        var cipherKeys: SCP80KeySet?
        if spi.ciphered {
            guard let keys = keySet(packet.kic, cipher: true) else { return try reject(.undefinedSecurityError) }
            cipherKeys = keys
        }
        if let checksumKeys, !checksumKeys.allowsChecksumLength(packet.checksumLength) { return try reject(.integrityFailed) }
        if spi.por != .none {
            switch spi.porIntegrity {
            case .none: break
            case .cryptographicChecksum:
                guard let keys = keySet(packet.kid, cipher: false), keys.allowsChecksumLength(responseCC) else {
                    return try reject(.undefinedSecurityError)
                }
            case .redundancyCheck, .digitalSignature: return try reject(.undefinedSecurityError)
            }
            if spi.porCiphered, keySet(packet.kic, cipher: true) == nil { return try reject(.undefinedSecurityError) }
        }

        var plain = packet.securedData
        if let cipherKeys {
            guard plain.count % cipherKeys.cipherAlgorithm.blockSize == 0 else { return try reject(.cipheringError) }
            do throws(CryptoError) {
                plain = try SCP80Crypto.decrypt(cipherKeys.cipherAlgorithm, key: cipherKeys.kic, plain)
            } catch {
                return try reject(.cipheringError)
            }
        }
        let ccLength = packet.checksumLength
        if let checksumKeys {
            let input = packet.header + plain[0..<6] + plain[(6 + ccLength)...]
            let expected = try SCP80Crypto.checksum(checksumKeys.checksumAlgorithm, key: checksumKeys.kid, input, length: ccLength)
            guard ConstantTime.equal(expected, plain[6..<(6 + ccLength)]) else { return try reject(.integrityFailed) }
        }

        // Authenticated as far as the SPI and the MSL ask: later failures get a secured PoR.
        let received = try SCP80Crypto.wire { () throws(SCP80Error) in try SCP80Counter(bytes: plain[0..<5]) }
        let command = SCP80IncomingCommand(
            tar: packet.tar, spi: spi, kic: packet.kic, kid: packet.kid, counter: received, data: [], responseChecksumLength: responseCC)
        func refuse(_ status: SCP80PoRStatus) throws(CryptoError) -> SCP80Reception {
            .rejected(status, proofOfReceipt: try proofOfReceipt(for: command, status: status))
        }
        let fields: SCP80CommandFields
        do throws(SCP80Error) {
            fields = try SCP80CommandFields(plain: plain, checksumLength: ccLength)
        } catch {
            return try refuse(spi.ciphered ? .cipheringError : .undefinedSecurityError)
        }

        let counterKeyVersion = spi.integrity == .cryptographicChecksum || !spi.ciphered ? packet.kid.keyVersion : packet.kic.keyVersion
        let stored = counter(keyVersion: counterKeyVersion)
        switch spi.counter {
        case .none, .noReplayCheck:
            break
        case .higher:
            if stored == .max { return try refuse(.counterBlocked) }
            if received <= stored { return try refuse(.counterLow) }
            if let maximumCounterIncrement, received.value - stored.value > maximumCounterIncrement { return try refuse(.counterHigh) }
        case .exactlyPlusOne:
            if stored == .max { return try refuse(.counterBlocked) }
            if received <= stored { return try refuse(.counterLow) }
            if received.value != stored.value + 1 { return try refuse(.counterHigh) }
        }
        if spi.counter == .higher || spi.counter == .exactlyPlusOne { counters[counterKeyVersion] = received }
        return .accepted(SCP80IncomingCommand(
            tar: packet.tar, spi: spi, kic: packet.kic, kid: packet.kid, counter: received, data: fields.data,
            responseChecksumLength: responseCC))
    }

    /// The PoR (TP-UD with `02 71 00`) answering an accepted command, secured as its SPI2 asks; nil
    /// when the SPI asks for no PoR, or for one only on error and `status` is `.ok`. `data` is the
    /// response (compact, or an AB script).
    public func proofOfReceipt(for command: SCP80IncomingCommand, status: SCP80PoRStatus = .ok, data: [UInt8] = []) throws(CryptoError) -> [UInt8]? {
        switch command.spi.por {
        case .none: return nil
        case .onErrorOnly where status == .ok: return nil
        default: break
        }
        var checksumKeys: SCP80KeySet?
        if command.spi.porIntegrity == .cryptographicChecksum {
            guard let keys = keySet(command.kid, cipher: false) else { throw CryptoError(code: .invalidKey, detail: "no KID for key version \(command.kid.keyVersion)") }
            checksumKeys = keys
        }
        var cipherKeys: SCP80KeySet?
        if command.spi.porCiphered {
            guard let keys = keySet(command.kic, cipher: true) else { throw CryptoError(code: .invalidKey, detail: "no KIc for key version \(command.kic.keyVersion)") }
            cipherKeys = keys
        }
        return try SCP80Crypto.responsePacket(
            tar: command.tar, counter: command.counter, status: status, data: data,
            checksumKeys: checksumKeys, checksumLength: command.responseChecksumLength, cipherKeys: cipherKeys).userData
    }

    /// The key set named by a KIc/KID byte: its key version must exist and its algorithm nibble must be
    /// implicit (0) or the key set's algorithm.
    func keySet(_ identifier: SCP80KeyIdentifier, cipher: Bool) -> SCP80KeySet? { SCP80KeySet.named(identifier, cipher: cipher, in: keySets) }
}
