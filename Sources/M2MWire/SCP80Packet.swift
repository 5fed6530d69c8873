// SCP80 secured packets (ETSI TS 102 225, 3GPP TS 31.115 for SMS) as wire structures, without any
// cryptography: the SPI, KIc/KID, TAR and counter fields, the command packet and the response packet
// (Proof of Receipt), the PoR status codes, and the ETSI TS 102 226 remote command formats carried
// inside them (expanded AA/AB/AE/AF scripts, compact responses). spec/sgp02-oncard.md §2.1, §3.3.
//
//   command: UDH 02 70 00 | CPL(2) | CHL(1) | SPI(2) | KIc | KID | TAR(3) | CNTR(5) PCNTR CC data pad
//   PoR:     UDH 02 71 00 | RPL(2) | RHL(1) | TAR(3) | CNTR(5) PCNTR status CC data pad
//
// CPL counts from CHL to the end, RPL from RHL to the end (padding included); CHL = 13 + CC length,
// RHL = 10 + CC length. When the SPI asks for ciphering everything from CNTR on is ciphertext, so the
// wire types keep that part opaque (`securedData`) and the `…Fields` types read it once it is clear.
// Every parser checks each length against the bytes present and throws a typed error.

import M2MCore

// MARK: - Errors

/// Why bytes could not be read as an SCP80 structure.
public struct SCP80Error: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }

        /// Fewer bytes than a field or a length announces.
        public static let truncated = Code(name: "truncated")
        /// A length field (CPL/RPL, CHL/RHL) disagrees with the bytes or with the fixed header size.
        public static let badLength = Code(name: "badLength")
        /// The user data header is malformed or lacks the CPI (70) / RPI (71) element.
        public static let badUserDataHeader = Code(name: "badUserDataHeader")
        /// PCNTR announces more padding than there is data.
        public static let badPadding = Code(name: "badPadding")
        /// A field holds a value outside its range (status code, counter, TAR, key version).
        public static let invalidValue = Code(name: "invalidValue")
    }

    public let code: Code
    public let detail: String

    public init(code: Code, detail: String = "") {
        self.code = code
        self.detail = detail
    }

    public static func == (lhs: SCP80Error, rhs: SCP80Error) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { detail.isEmpty ? "SCP80 \(code)" : "SCP80 \(code): \(detail)" }
}

// MARK: - SPI

/// The two-byte Security Parameter Indicator (TS 102 225 §5.1.1). Reserved bits are kept as received
/// (they are covered by the CC) and ignored by the accessors.
public struct SCP80SPI: Hashable, Sendable, CustomStringConvertible {
    /// SPI1 b5b4.
    public enum CounterMode: UInt8, Sendable, CaseIterable, Comparable {
        /// No counter.
        case none = 0
        /// Counter available, no replay or sequence checking.
        case noReplayCheck = 1
        /// The counter must be higher than the receiver's.
        case higher = 2
        /// The counter must be exactly one higher than the receiver's.
        case exactlyPlusOne = 3

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// SPI1 b2b1 (command) and SPI2 b4b3 (PoR): redundancy check, cryptographic checksum, signature.
    public enum Integrity: UInt8, Sendable, CaseIterable, Comparable {
        case none = 0
        case redundancyCheck = 1
        case cryptographicChecksum = 2
        case digitalSignature = 3

        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// SPI2 b2b1.
    public enum PoRMode: UInt8, Sendable, CaseIterable {
        case none = 0
        case required = 1
        case onErrorOnly = 2
        /// `11`, reserved for future use.
        case reserved = 3
    }

    /// SPI1.
    public var first: UInt8
    /// SPI2.
    public var second: UInt8

    public init(first: UInt8, second: UInt8) {
        self.first = first
        self.second = second
    }

    /// Reads the two SPI bytes.
    public init(bytes: some Collection<UInt8>) throws(SCP80Error) {
        guard bytes.count == 2 else { throw SCP80Error(code: .badLength, detail: "the SPI is 2 bytes, not \(bytes.count)") }
        let array = Array(bytes)
        self.init(first: array[0], second: array[1])
    }

    public init(
        counter: CounterMode, ciphered: Bool, integrity: Integrity,
        por: PoRMode, porIntegrity: Integrity = .none, porCiphered: Bool = false, porViaSMSSubmit: Bool = false
    ) {
        first = counter.rawValue << 3 | (ciphered ? 0x04 : 0) | integrity.rawValue
        second = (porViaSMSSubmit ? 0x20 : 0) | (porCiphered ? 0x10 : 0) | porIntegrity.rawValue << 2 | por.rawValue
    }

    public var bytes: [UInt8] { [first, second] }

    public var counter: CounterMode { CounterMode(rawValue: first >> 3 & 0x03)! }
    public var ciphered: Bool { first & 0x04 != 0 }
    public var integrity: Integrity { Integrity(rawValue: first & 0x03)! }
    public var por: PoRMode { PoRMode(rawValue: second & 0x03)! }
    public var porIntegrity: Integrity { Integrity(rawValue: second >> 2 & 0x03)! }
    public var porCiphered: Bool { second & 0x10 != 0 }
    /// PoR sent in an SMS-SUBMIT (else in the SMS-DELIVER-REPORT).
    public var porViaSMSSubmit: Bool { second & 0x20 != 0 }

    public var description: String { Hex.encode(bytes) }
}

// MARK: - KIc / KID

/// The algorithm coded in the low nibble of KIc (ciphering) or KID (cryptographic checksum), TS 102 225
/// §5.1.2/§5.1.3.1: DES-CBC, triple DES outer-CBC with two or three keys, AES (CBC for KIc, CMAC for KID).
public enum SCP80Algorithm: UInt8, Sendable, CaseIterable {
    case des = 0x1
    case aes = 0x2
    case tripleDES2Key = 0x5
    case tripleDES3Key = 0x9

    /// The cipher block size: 16 for AES, 8 for the DES family.
    public var blockSize: Int { self == .aes ? 16 : 8 }
}

/// A KIc or KID byte: key version number (high nibble) ‖ algorithm (low nibble).
public struct SCP80KeyIdentifier: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
    public let rawValue: UInt8

    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public init(keyVersion: UInt8, algorithm: SCP80Algorithm) {
        precondition(keyVersion <= 0x0F, "a key version is one nibble")
        rawValue = keyVersion << 4 | algorithm.rawValue
    }

    /// The key version number (0–15; SCP80 key sets use 1–15).
    public var keyVersion: UInt8 { rawValue >> 4 }
    /// The raw algorithm nibble.
    public var algorithmCode: UInt8 { rawValue & 0x0F }
    /// `0`: the algorithm is known implicitly by both entities.
    public var isImplicit: Bool { algorithmCode == 0 }
    /// The explicit algorithm, or nil when implicit, proprietary or not supported (e.g. DES-ECB `D`).
    public var algorithm: SCP80Algorithm? { SCP80Algorithm(rawValue: algorithmCode) }

    public var description: String { Hex.encode([rawValue]) }
}

// MARK: - TAR and counter

/// The 3-byte Toolkit Application Reference (ISD-R `000001`; an ISD-P's TAR is AID bytes 13–15).
public struct SCP80TAR: Hashable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public let value: UInt32

    public init(integerLiteral value: UInt32) {
        precondition(value <= 0xFF_FFFF, "a TAR is 3 bytes")
        self.value = value
    }

    public init(bytes: some Collection<UInt8>) throws(SCP80Error) {
        guard bytes.count == 3 else { throw SCP80Error(code: .badLength, detail: "a TAR is 3 bytes, not \(bytes.count)") }
        value = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }

    public var bytes: [UInt8] { [UInt8(value >> 16), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    public var description: String { Hex.encode(bytes) }

    /// The ISD-R (SGP.02).
    public static let isdR: SCP80TAR = 0x000001
}

/// The 5-byte replay counter (0 … 2⁴⁰−1).
public struct SCP80Counter: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public let value: UInt64

    /// 2⁴⁰ − 1: a receiver whose counter reached this value is blocked (PoR status 04).
    public static let max = SCP80Counter(checked: 0xFF_FFFF_FFFF)
    public static let zero = SCP80Counter(checked: 0)

    private init(checked value: UInt64) { self.value = value }

    public init(integerLiteral value: UInt64) {
        precondition(value <= 0xFF_FFFF_FFFF, "an SCP80 counter is 5 bytes")
        self.value = value
    }

    /// Nil when `value` does not fit in 5 bytes.
    public init?(exactly value: UInt64) {
        guard value <= 0xFF_FFFF_FFFF else { return nil }
        self.value = value
    }

    public init(bytes: some Collection<UInt8>) throws(SCP80Error) {
        guard bytes.count == 5 else { throw SCP80Error(code: .badLength, detail: "a counter is 5 bytes, not \(bytes.count)") }
        value = bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    public var bytes: [UInt8] { (0..<5).map { UInt8(truncatingIfNeeded: value >> (8 * (4 - $0))) } }

    /// The next value, nil at the maximum.
    public var next: SCP80Counter? { self == .max ? nil : SCP80Counter(checked: value + 1) }

    public static func < (lhs: SCP80Counter, rhs: SCP80Counter) -> Bool { lhs.value < rhs.value }
    public var description: String { Hex.encode(bytes) }
}

// MARK: - PoR status

/// Response status codes (TS 102 225 table 5.5, 3GPP TS 31.115).
public enum SCP80PoRStatus: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case ok = 0x00
    /// RC/CC/DS failed.
    case integrityFailed = 0x01
    case counterLow = 0x02
    case counterHigh = 0x03
    case counterBlocked = 0x04
    case cipheringError = 0x05
    case undefinedSecurityError = 0x06
    case insufficientMemory = 0x07
    case moreTimeNeeded = 0x08
    case tarUnknown = 0x09
    case insufficientSecurityLevel = 0x0A
    /// The actual response is sent in an SMS-SUBMIT.
    case responseInSMSSubmit = 0x0B
    /// The actual response is sent using USSD.
    case responseInUSSD = 0x0C

    public init(byte: UInt8) throws(SCP80Error) {
        guard let status = SCP80PoRStatus(rawValue: byte) else {
            throw SCP80Error(code: .invalidValue, detail: "PoR status \(Hex.encode([byte])) is not defined")
        }
        self = status
    }

    public var description: String { "\(Hex.encode([rawValue])) \(name)" }

    var name: String {
        switch self {
        case .ok: "PoR OK"
        case .integrityFailed: "RC/CC/DS failed"
        case .counterLow: "CNTR low"
        case .counterHigh: "CNTR high"
        case .counterBlocked: "CNTR blocked"
        case .cipheringError: "ciphering error"
        case .undefinedSecurityError: "unidentified security error"
        case .insufficientMemory: "insufficient memory"
        case .moreTimeNeeded: "more time needed"
        case .tarUnknown: "TAR unknown"
        case .insufficientSecurityLevel: "insufficient security level"
        case .responseInSMSSubmit: "response sent in SMS-SUBMIT"
        case .responseInUSSD: "response sent using USSD"
        }
    }
}

// MARK: - User data header

/// The TP-UD user data header of an SCP80 SMS: UDHL ‖ information elements. A command carries the
/// CPI element `70 00`, a PoR the RPI element `71 00`; other elements are tolerated and kept.
public enum SCP80UserDataHeader {
    /// `02 70 00`.
    public static let command: [UInt8] = [0x02, 0x70, 0x00]
    /// `02 71 00`.
    public static let response: [UInt8] = [0x02, 0x71, 0x00]

    /// Splits TP-UD into its header and the packet; the header must contain element `iei` with no data.
    public static func split(_ userData: [UInt8], requiring iei: UInt8) throws(SCP80Error) -> (header: [UInt8], packet: [UInt8]) {
        guard let udhl = userData.first else { throw SCP80Error(code: .truncated, detail: "no user data header") }
        let end = 1 + Int(udhl)
        guard end <= userData.count else { throw SCP80Error(code: .truncated, detail: "UDHL \(udhl) exceeds the user data") }
        var offset = 1
        var found = false
        while offset < end {
            guard offset + 2 <= end else { throw SCP80Error(code: .badUserDataHeader, detail: "element header cut short") }
            let id = userData[offset]
            let length = Int(userData[offset + 1])
            guard offset + 2 + length <= end else { throw SCP80Error(code: .badUserDataHeader, detail: "element \(Hex.encode([id])) overruns the header") }
            if id == iei {
                guard length == 0, !found else { throw SCP80Error(code: .badUserDataHeader, detail: "element \(Hex.encode([id])) must appear once with no data") }
                found = true
            }
            offset += 2 + length
        }
        guard found else { throw SCP80Error(code: .badUserDataHeader, detail: "no \(Hex.encode([iei])) element") }
        return (Array(userData[..<end]), Array(userData[end...]))
    }
}

// MARK: - Command packet

/// A command packet as transmitted (CPL to the end). When the SPI asks for ciphering, `securedData`
/// (CNTR ‖ PCNTR ‖ CC ‖ data ‖ padding) is ciphertext.
public struct SCP80CommandPacket: Hashable, Sendable, CustomStringConvertible {
    /// CHL (13 + RC/CC/DS length).
    public var headerLength: UInt8
    public var spi: SCP80SPI
    public var kic: SCP80KeyIdentifier
    public var kid: SCP80KeyIdentifier
    public var tar: SCP80TAR
    /// CNTR ‖ PCNTR ‖ RC/CC/DS ‖ data ‖ padding, ciphered when `spi.ciphered`.
    public var securedData: [UInt8]

    /// Bytes of CHL, SPI, KIc, KID and TAR.
    public static let fixedHeaderLength = 8
    /// Bytes of SPI, KIc, KID, TAR, CNTR and PCNTR counted by CHL besides the checksum.
    public static let minimumHeaderLength: UInt8 = 13

    public init(headerLength: UInt8, spi: SCP80SPI, kic: SCP80KeyIdentifier, kid: SCP80KeyIdentifier, tar: SCP80TAR, securedData: [UInt8]) {
        self.headerLength = headerLength
        self.spi = spi
        self.kic = kic
        self.kid = kid
        self.tar = tar
        self.securedData = securedData
    }

    /// CPL: from CHL to the end, padding included.
    public var packetLength: Int { Self.fixedHeaderLength + securedData.count }
    /// The RC/CC/DS length announced by CHL.
    public var checksumLength: Int { Int(headerLength) - Int(Self.minimumHeaderLength) }

    /// CPL ‖ CHL ‖ SPI ‖ KIc ‖ KID ‖ TAR: the unciphered header, the first part of the CC input.
    public var header: [UInt8] {
        [UInt8(packetLength >> 8 & 0xFF), UInt8(packetLength & 0xFF), headerLength] + spi.bytes + [kic.rawValue, kid.rawValue] + tar.bytes
    }

    /// CPL to the end (what follows the UDH).
    public var encoded: [UInt8] { header + securedData }
    /// The TP-UD: `02 70 00` ‖ packet.
    public var userData: [UInt8] { SCP80UserDataHeader.command + encoded }

    /// Reads a packet from CPL on; CPL must match the bytes exactly.
    public init(bytes: [UInt8]) throws(SCP80Error) {
        guard bytes.count >= 2 + Self.fixedHeaderLength else {
            throw SCP80Error(code: .truncated, detail: "a command packet header is 10 bytes, got \(bytes.count)")
        }
        let cpl = Int(bytes[0]) << 8 | Int(bytes[1])
        guard cpl == bytes.count - 2 else { throw SCP80Error(code: .badLength, detail: "CPL \(cpl) but \(bytes.count - 2) bytes follow") }
        headerLength = bytes[2]
        spi = SCP80SPI(first: bytes[3], second: bytes[4])
        kic = SCP80KeyIdentifier(rawValue: bytes[5])
        kid = SCP80KeyIdentifier(rawValue: bytes[6])
        tar = try SCP80TAR(bytes: bytes[7..<10])
        securedData = Array(bytes[10...])
        try validate()
    }

    /// Checks what `init(bytes:)` checks, for packets assembled field by field: CHL at least 13, the
    /// secured data holding CNTR, PCNTR and the announced checksum, CPL within two bytes.
    public func validate() throws(SCP80Error) {
        guard headerLength >= Self.minimumHeaderLength else {
            throw SCP80Error(code: .badLength, detail: "CHL \(headerLength) is below 13")
        }
        guard securedData.count >= 6 + checksumLength else {
            throw SCP80Error(code: .truncated, detail: "CHL \(headerLength) announces more than the \(packetLength) bytes of the packet")
        }
        guard packetLength <= 0xFFFF else { throw SCP80Error(code: .badLength, detail: "CPL \(packetLength) exceeds two bytes") }
    }

    /// Reads TP-UD: a user data header with the CPI element, then the packet.
    public init(userData: [UInt8]) throws(SCP80Error) {
        let (_, packet) = try SCP80UserDataHeader.split(userData, requiring: 0x70)
        try self.init(bytes: packet)
    }

    /// The secured data read in clear (only meaningful when the packet is not ciphered).
    public func plainFields() throws(SCP80Error) -> SCP80CommandFields {
        try SCP80CommandFields(plain: securedData, checksumLength: checksumLength)
    }

    public var description: String {
        "CPL \(packetLength) CHL \(headerLength) SPI \(spi) KIc \(kic) KID \(kid) TAR \(tar) [\(securedData.count) secured bytes]"
    }
}

/// CNTR ‖ PCNTR ‖ RC/CC/DS ‖ data ‖ padding of a command packet, in clear.
public struct SCP80CommandFields: Hashable, Sendable {
    public var counter: SCP80Counter
    /// RC/CC/DS as transmitted.
    public var checksum: [UInt8]
    /// The secured data without the padding.
    public var data: [UInt8]
    /// The padding as transmitted (its length is PCNTR).
    public var padding: [UInt8]

    public init(counter: SCP80Counter, checksum: [UInt8], data: [UInt8], padding: [UInt8] = []) {
        precondition(padding.count <= 0xFF, "PCNTR is one byte")
        self.counter = counter
        self.checksum = checksum
        self.data = data
        self.padding = padding
    }

    /// Splits clear secured data; PCNTR may not exceed the data.
    public init(plain: [UInt8], checksumLength: Int) throws(SCP80Error) {
        guard checksumLength >= 0, plain.count >= 6 + checksumLength else {
            throw SCP80Error(code: .truncated, detail: "secured data shorter than CNTR, PCNTR and the checksum")
        }
        counter = try SCP80Counter(bytes: plain[0..<5])
        let paddingCount = Int(plain[5])
        checksum = Array(plain[6..<(6 + checksumLength)])
        let rest = plain[(6 + checksumLength)...]
        guard paddingCount <= rest.count else {
            throw SCP80Error(code: .badPadding, detail: "PCNTR \(paddingCount) but \(rest.count) data bytes")
        }
        data = Array(rest.dropLast(paddingCount))
        padding = Array(rest.suffix(paddingCount))
    }

    /// PCNTR.
    public var paddingCount: UInt8 { UInt8(padding.count) }
    /// CNTR ‖ PCNTR ‖ RC/CC/DS ‖ data ‖ padding.
    public var encoded: [UInt8] { counter.bytes + [paddingCount] + checksum + data + padding }
}

// MARK: - Response packet (PoR)

/// A response packet as transmitted (RPL to the end). When the SPI asks for a ciphered PoR,
/// `securedData` (CNTR ‖ PCNTR ‖ status ‖ CC ‖ data ‖ padding) is ciphertext.
public struct SCP80ResponsePacket: Hashable, Sendable, CustomStringConvertible {
    /// The user data header as received (it is covered by the PoR CC); `02 71 00` when built here.
    public var userDataHeader: [UInt8]
    /// RHL (10 + RC/CC/DS length).
    public var headerLength: UInt8
    public var tar: SCP80TAR
    /// CNTR ‖ PCNTR ‖ status ‖ RC/CC/DS ‖ data ‖ padding, ciphered when the PoR is.
    public var securedData: [UInt8]

    /// Bytes of TAR, CNTR, PCNTR and status counted by RHL besides the checksum.
    public static let minimumHeaderLength: UInt8 = 10

    public init(userDataHeader: [UInt8] = SCP80UserDataHeader.response, headerLength: UInt8, tar: SCP80TAR, securedData: [UInt8]) {
        self.userDataHeader = userDataHeader
        self.headerLength = headerLength
        self.tar = tar
        self.securedData = securedData
    }

    /// RPL: from RHL to the end, padding included.
    public var packetLength: Int { 4 + securedData.count }
    /// The RC/CC/DS length announced by RHL.
    public var checksumLength: Int { Int(headerLength) - Int(Self.minimumHeaderLength) }

    /// RPL ‖ RHL ‖ TAR.
    public var header: [UInt8] { [UInt8(packetLength >> 8 & 0xFF), UInt8(packetLength & 0xFF), headerLength] + tar.bytes }
    /// RPL to the end.
    public var encoded: [UInt8] { header + securedData }
    /// The TP-UD: user data header ‖ packet.
    public var userData: [UInt8] { userDataHeader + encoded }

    /// Reads TP-UD: a user data header with the RPI element, then RPL … (RPL must match exactly).
    public init(userData: [UInt8]) throws(SCP80Error) {
        let (udh, bytes) = try SCP80UserDataHeader.split(userData, requiring: 0x71)
        guard bytes.count >= 6 else { throw SCP80Error(code: .truncated, detail: "a response packet header is 6 bytes, got \(bytes.count)") }
        let rpl = Int(bytes[0]) << 8 | Int(bytes[1])
        guard rpl == bytes.count - 2 else { throw SCP80Error(code: .badLength, detail: "RPL \(rpl) but \(bytes.count - 2) bytes follow") }
        userDataHeader = udh
        headerLength = bytes[2]
        tar = try SCP80TAR(bytes: bytes[3..<6])
        securedData = Array(bytes[6...])
        guard headerLength >= Self.minimumHeaderLength else {
            throw SCP80Error(code: .badLength, detail: "RHL \(headerLength) is below 10")
        }
        guard securedData.count >= 7 + checksumLength else {
            throw SCP80Error(code: .truncated, detail: "RHL \(headerLength) announces more than the \(rpl) bytes of the packet")
        }
    }

    /// The secured data read in clear (only meaningful when the PoR is not ciphered).
    public func plainFields() throws(SCP80Error) -> SCP80ResponseFields {
        try SCP80ResponseFields(plain: securedData, checksumLength: checksumLength)
    }

    public var description: String { "RPL \(packetLength) RHL \(headerLength) TAR \(tar) [\(securedData.count) secured bytes]" }
}

/// CNTR ‖ PCNTR ‖ status ‖ RC/CC/DS ‖ data ‖ padding of a PoR, in clear.
public struct SCP80ResponseFields: Hashable, Sendable {
    /// The counter of the command packet this PoR answers.
    public var counter: SCP80Counter
    public var status: SCP80PoRStatus
    public var checksum: [UInt8]
    /// The response data (compact or expanded remote response) without the padding.
    public var data: [UInt8]
    public var padding: [UInt8]

    public init(counter: SCP80Counter, status: SCP80PoRStatus, checksum: [UInt8] = [], data: [UInt8] = [], padding: [UInt8] = []) {
        precondition(padding.count <= 0xFF, "PCNTR is one byte")
        self.counter = counter
        self.status = status
        self.checksum = checksum
        self.data = data
        self.padding = padding
    }

    public init(plain: [UInt8], checksumLength: Int) throws(SCP80Error) {
        guard checksumLength >= 0, plain.count >= 7 + checksumLength else {
            throw SCP80Error(code: .truncated, detail: "secured data shorter than CNTR, PCNTR, status and the checksum")
        }
        counter = try SCP80Counter(bytes: plain[0..<5])
        let paddingCount = Int(plain[5])
        status = try SCP80PoRStatus(byte: plain[6])
        checksum = Array(plain[7..<(7 + checksumLength)])
        let rest = plain[(7 + checksumLength)...]
        guard paddingCount <= rest.count else {
            throw SCP80Error(code: .badPadding, detail: "PCNTR \(paddingCount) but \(rest.count) data bytes")
        }
        data = Array(rest.dropLast(paddingCount))
        padding = Array(rest.suffix(paddingCount))
    }

    public var paddingCount: UInt8 { UInt8(padding.count) }
    /// CNTR ‖ PCNTR ‖ status ‖ RC/CC/DS ‖ data ‖ padding.
    public var encoded: [UInt8] { counter.bytes + [paddingCount, status.rawValue] + checksum + data + padding }
}

// MARK: - Remote command formats (ETSI TS 102 226 §5)

/// Definite (`AA`/`AB`) or indefinite (`AE 80 … 00 00` / `AF 80 … 00 00`) length coding of a script.
public enum ScriptLengthCoding: Sendable, Hashable {
    case definite
    case indefinite
}

/// Command scripting template of the expanded remote command format (TS 102 226 §5.2.1): `AA` (SMS)
/// or `AE 80 … 00 00` (HTTPS). Items are usually C-APDUs (`22`); SGP.02 puts SCP03t TLVs (84/85/86)
/// in an indefinite template instead.
public struct ExpandedCommandScript: Hashable, Sendable {
    public static let definiteTag: UInt8 = 0xAA
    public static let indefiniteTag: UInt8 = 0xAE
    /// C-APDU.
    public static let commandTag: TLVTag = 0x22

    public var coding: ScriptLengthCoding
    public var items: [TLV]

    public init(items: [TLV], coding: ScriptLengthCoding = .definite) {
        self.items = items
        self.coding = coding
    }

    /// One `22` item per C-APDU.
    public init(commands: [CommandAPDU], coding: ScriptLengthCoding = .definite) {
        self.init(items: commands.map { TLV(Self.commandTag, $0.bytes) }, coding: coding)
    }

    /// Reads an `AA` or `AE 80 … 00 00` template filling `bytes` exactly.
    public init(bytes: [UInt8]) throws(TLVError) {
        (coding, items) = try ScriptTemplate.parse(bytes, definiteTag: Self.definiteTag, indefiniteTag: Self.indefiniteTag)
    }

    public var encoded: [UInt8] {
        ScriptTemplate.encode(items, coding: coding, definiteTag: Self.definiteTag, indefiniteTag: Self.indefiniteTag)
    }

    /// The C-APDUs (`22` items, parsed as short APDUs); other items are skipped.
    public func commands() throws(TLVError) -> [CommandAPDU] {
        var out: [CommandAPDU] = []
        for item in items where item.tag == Self.commandTag { out.append(try CommandAPDU(bytes: item.value)) }
        return out
    }
}

/// Response scripting template of the expanded remote format (TS 102 226 §5.2.2): `AB` or
/// `AF 80 … 00 00`, holding `80 01 n` (number of executed commands) and one `23` R-APDU per
/// executed command, plus error TLVs (`81` immediate action, `83` script chaining, `90` bad format)
/// or, in SGP.02, SCP03t answers (84/85/86).
public struct ExpandedResponseScript: Hashable, Sendable {
    public static let definiteTag: UInt8 = 0xAB
    public static let indefiniteTag: UInt8 = 0xAF
    /// Number of executed C-APDUs.
    public static let executedTag: TLVTag = 0x80
    /// R-APDU.
    public static let responseTag: TLVTag = 0x23
    /// Bad format (TS 102 226 table 5.x; NJ constant `90`).
    public static let badFormatTag: TLVTag = 0x90

    public var coding: ScriptLengthCoding
    /// The items in order; every `80` is one byte and every `23` holds at least SW1 SW2.
    public private(set) var items: [TLV]

    /// A template from items; `80` must be one byte and every `23` must hold at least SW1 SW2.
    public init(items: [TLV], coding: ScriptLengthCoding = .definite) throws(TLVError) {
        try Self.validate(items)
        self.items = items
        self.coding = coding
    }

    /// `80 01 n` (when `executed` is given) followed by one `23` per response.
    public init(executed: UInt8?, responses: [ResponseAPDU], coding: ScriptLengthCoding = .definite) {
        var items: [TLV] = []
        if let executed { items.append(TLV(Self.executedTag, [executed])) }
        items += responses.map { TLV(Self.responseTag, $0.bytes) }
        self.items = items
        self.coding = coding
    }

    /// Reads an `AB` or `AF 80 … 00 00` template filling `bytes` exactly (items validated as above).
    public init(bytes: [UInt8]) throws(TLVError) {
        (coding, items) = try ScriptTemplate.parse(bytes, definiteTag: Self.definiteTag, indefiniteTag: Self.indefiniteTag)
        try Self.validate(items)
    }

    static func validate(_ items: [TLV]) throws(TLVError) {
        for item in items {
            if item.tag == Self.executedTag, item.value.count != 1 {
                throw TLVError(code: .invalidValue, detail: "number of executed commands is 1 byte, not \(item.value.count)")
            }
            if item.tag == Self.responseTag, item.value.count < 2 {
                throw TLVError(code: .invalidValue, detail: "an R-APDU holds at least SW1 SW2")
            }
        }
    }

    public var encoded: [UInt8] {
        ScriptTemplate.encode(items, coding: coding, definiteTag: Self.definiteTag, indefiniteTag: Self.indefiniteTag)
    }

    /// `80 01 n`, when present (indefinite responses often omit it).
    public var executedCommands: Int? {
        items.first { $0.tag == Self.executedTag }.map { Int($0.value[0]) }
    }

    /// The R-APDUs in order.
    public var responses: [ResponseAPDU] {
        items.filter { $0.tag == Self.responseTag }.map { item in
            ResponseAPDU(data: Array(item.value.dropLast(2)), sw: StatusWord(sw1: item.value[item.value.count - 2], sw2: item.value[item.value.count - 1]))
        }
    }

    /// Items other than `80` and `23` (error TLVs, SCP03t answers).
    public var otherItems: [TLV] { items.filter { $0.tag != Self.executedTag && $0.tag != Self.responseTag } }
}

/// Shared framing of the four scripting templates.
enum ScriptTemplate {
    static func encode(_ items: [TLV], coding: ScriptLengthCoding, definiteTag: UInt8, indefiniteTag: UInt8) -> [UInt8] {
        let body = items.flatMap(\.encoded)
        switch coding {
        case .definite: return [definiteTag] + BERLength.encode(body.count) + body
        case .indefinite: return [indefiniteTag, 0x80] + body + [0x00, 0x00]
        }
    }

    static func parse(_ bytes: [UInt8], definiteTag: UInt8, indefiniteTag: UInt8) throws(TLVError) -> (ScriptLengthCoding, [TLV]) {
        guard let first = bytes.first else { throw TLVError(code: .truncated, detail: "empty script") }
        if first == definiteTag {
            let template = try TLV.parseOne(bytes)
            return (.definite, try TLV.parseAll(template.value))
        }
        guard first == indefiniteTag else {
            throw TLVError(code: .unexpectedTag, detail: "expected \(Hex.encode([definiteTag])) or \(Hex.encode([indefiniteTag])), got \(Hex.encode([first]))")
        }
        guard bytes.count >= 2 else { throw TLVError(code: .truncated, detail: "no length") }
        guard bytes[1] == 0x80 else { throw TLVError(code: .badLength, detail: "\(Hex.encode([indefiniteTag])) uses the indefinite length 80") }
        var offset = 2
        var items: [TLV] = []
        while true {
            guard offset < bytes.count else { throw TLVError(code: .truncated, detail: "no end-of-contents 00 00") }
            if bytes[offset] == 0x00 {
                guard offset + 1 < bytes.count, bytes[offset + 1] == 0x00 else {
                    throw TLVError(code: .truncated, detail: "end-of-contents cut short")
                }
                guard offset + 2 == bytes.count else {
                    throw TLVError(code: .badLength, detail: "\(bytes.count - offset - 2) bytes after the end-of-contents")
                }
                return (.indefinite, items)
            }
            items.append(try TLV.parse(bytes, offset: &offset))
        }
    }
}

/// Compact remote response (TS 102 226 §5.1.2): number of commands ‖ last SW1 SW2 ‖ last response data.
public struct CompactRemoteResponse: Hashable, Sendable {
    public var executedCommands: UInt8
    public var lastResponse: ResponseAPDU

    public init(executedCommands: UInt8, lastResponse: ResponseAPDU) {
        self.executedCommands = executedCommands
        self.lastResponse = lastResponse
    }

    public init(bytes: [UInt8]) throws(SCP80Error) {
        guard bytes.count >= 3 else { throw SCP80Error(code: .truncated, detail: "a compact response is at least 3 bytes") }
        executedCommands = bytes[0]
        lastResponse = ResponseAPDU(data: Array(bytes[3...]), sw: StatusWord(sw1: bytes[1], sw2: bytes[2]))
    }

    public var encoded: [UInt8] { [executedCommands] + lastResponse.sw.bytes + lastResponse.data }
}
