// Validated SGP.02 identifiers. Each type checks its value when created from text (wire, JSON,
// CLI) and throws an `IdentifierError` that knows its SGP.02 subject and reason codes.
// Schema types: shared/spec/gsma-schema/xsd/euicc.common.types.xsd (copied to xsd/gsma/).

/// A value that is written on the wire as text (an XML simple type or a JSON string).
public protocol TextRepresentable: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Parses and validates the wire text.
    init(text: String) throws(IdentifierError)
    /// The canonical wire text.
    var text: String { get }
}

extension TextRepresentable {
    public var description: String { text }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        try self.init(text: raw)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}

// MARK: - EID

/// eUICC identifier: 32 decimal digits whose value mod 97 is 1 (ISO/IEC 7064 MOD 97-10 check
/// digits in positions 31–32, as SGP.29 defines them). Wire type `EIDType` (hexBinary ≤ 32 bytes).
public struct EID: TextRepresentable {
    public let text: String

    public init(text: String) throws(IdentifierError) {
        // nil: not 32 decimal digits; otherwise the value mod 97.
        let remainder: UInt64? = text.withUTF8Bytes { digits in
            guard digits.count == 32 else { return nil }
            // Sixteen digits at a time (below 10^16, so remainder · 10^16 + chunk fits in 64 bits).
            var remainder: UInt64 = 0
            for chunk in 0..<2 {
                var value: UInt64 = 0
                for index in (chunk * 16)..<(chunk * 16 + 16) {
                    let digit = digits[index] &- 0x30
                    guard digit < 10 else { return nil }
                    value = value &* 10 &+ UInt64(digit)
                }
                remainder = (remainder &* 10_000_000_000_000_000 &+ value) % 97
            }
            return remainder
        }
        guard let remainder else { throw .invalidEID(text, "an EID is 32 decimal digits") }
        guard remainder == 1 else {
            throw .invalidEID(text, "check digits fail ISO/IEC 7064 MOD 97-10")
        }
        self.text = text
    }

    /// Builds an EID from its first 30 digits by computing the two check digits.
    public init(prefix30 digits: String) throws(IdentifierError) {
        let bytes = Array(digits.utf8)
        guard bytes.count == 30, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw .invalidEID(digits, "an EID prefix is 30 decimal digits")
        }
        let remainder = EID.mod97(bytes + [0x30, 0x30])
        let check = 98 - remainder
        let checkText = check < 10 ? "0\(check)" : "\(check)"
        try self.init(text: digits + checkText)
    }

    /// The 16 bytes of the EID as the card reports it (GET DATA tag 5A): BCD, two digits a byte.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16)
        var iterator = text.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            out.append((high - 0x30) << 4 | (low - 0x30))
        }
        return out
    }

    static func mod97(_ digits: [UInt8]) -> Int {
        var remainder = 0
        for digit in digits {
            remainder = (remainder * 10 + Int(digit - 0x30)) % 97
        }
        return remainder
    }
}

// MARK: - ICCID

/// Integrated Circuit Card Identifier of a Profile. Wire type `ICCIDType`: pattern `89[0-9fF]{4,18}`
/// ("recommended 19 decimal digits, non-swapped"). A trailing `F` is padding. When the ICCID has
/// 19 or 20 digits (the E.118 lengths), the last digit is a Luhn check digit and is verified.
/// Lower-case `f` is accepted and written as `F` (docs/identifiers.md).
public struct ICCID: TextRepresentable {
    public let text: String

    public init(text: String) throws(IdentifierError) {
        enum Outcome { case valid, lowercase, pattern, padding, luhn }
        let outcome: Outcome = text.withUTF8Bytes { utf8 in
            guard utf8.count >= 6, utf8.count <= 20, utf8[0] == 0x38, utf8[1] == 0x39 else { return .pattern }
            // Digits, then optional trailing F/f padding.
            var digits = 0
            var padding = 0
            var lowercase = false
            for byte in utf8 {
                switch byte {
                case 0x30...0x39:
                    guard padding == 0 else { return .padding }
                    digits += 1
                case 0x46: padding += 1
                case 0x66:
                    padding += 1
                    lowercase = true
                default: return .pattern
                }
            }
            if digits == 19 || digits == 20 {
                var sum = 0
                var index = digits - 1
                var double = false
                while index >= 0 {
                    var value = Int(utf8[index] &- 0x30)
                    if double {
                        value *= 2
                        if value > 9 { value -= 9 }
                    }
                    sum += value
                    double.toggle()
                    index -= 1
                }
                guard sum % 10 == 0 else { return .luhn }
            }
            return lowercase ? .lowercase : .valid
        }
        switch outcome {
        case .valid: self.text = text
        case .lowercase: self.text = String(decoding: text.utf8.map { $0 == 0x66 ? 0x46 : $0 }, as: UTF8.self)
        case .pattern: throw .invalidICCID(text, "an ICCID matches 89[0-9fF]{4,18}")
        case .padding: throw .invalidICCID(text, "'F' is only allowed as trailing padding")
        case .luhn: throw .invalidICCID(text, "the Luhn check digit is wrong")
        }
    }

    /// The digits without padding.
    public var digits: String { String(text.prefix { $0 != "F" }) }

    /// Appends the Luhn check digit to 18 or 19 digits starting with 89.
    public init(withoutCheckDigit digits: String) throws(IdentifierError) {
        let bytes = Array(digits.utf8)
        guard bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw .invalidICCID(digits, "digits only")
        }
        try self.init(text: digits + String(ICCID.luhnCheckDigit(bytes)))
    }

    static func luhnCheckDigit(_ digits: [UInt8]) -> Int {
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            var value = Int(digit - 0x30)
            if offset % 2 == 0 {
                value *= 2
                if value > 9 { value -= 9 }
            }
            sum += value
        }
        return (10 - sum % 10) % 10
    }
}

// MARK: - Byte-string identifiers

/// Application identifier (ISO/IEC 7816-5): 5 to 16 bytes. Wire type `AIDType` (hexBinary).
public struct AID: TextRepresentable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(IdentifierError) {
        guard (5...16).contains(bytes.count) else {
            throw .invalidAID(Hex.encode(bytes), "an AID is 5 to 16 bytes")
        }
        self.bytes = bytes
    }

    public init(text: String) throws(IdentifierError) {
        guard let bytes = Hex.decode(text) else { throw .invalidAID(text, "not hexadecimal") }
        try self.init(bytes: bytes)
    }

    public var text: String { Hex.encode(bytes) }

    /// The default TAR of a security domain: bytes 13 to 15 of its AID (SGP.02 §2.2.1.1, ETSI TS 101 220).
    public var defaultTAR: TAR? {
        guard bytes.count >= 15 else { return nil }
        return try? TAR(bytes: Array(bytes[12..<15]))
    }
}

/// Toolkit application reference: exactly 3 bytes (ETSI TS 101 220). Wire type `TARType`.
public struct TAR: TextRepresentable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(IdentifierError) {
        guard bytes.count == 3 else { throw .invalidTAR(Hex.encode(bytes), "a TAR is 3 bytes") }
        self.bytes = bytes
    }

    public init(text: String) throws(IdentifierError) {
        guard let bytes = Hex.decode(text) else { throw .invalidTAR(text, "not hexadecimal") }
        try self.init(bytes: bytes)
    }

    public var text: String { Hex.encode(bytes) }
}

/// Arbitrary binary data (xs:hexBinary), written in upper-case hex.
public struct HexBinary: TextRepresentable, ExpressibleByArrayLiteral {
    public var bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(arrayLiteral elements: UInt8...) { self.bytes = elements }

    public init(text: String) throws(IdentifierError) {
        guard let bytes = Hex.decode(text) else { throw .invalidHex(text) }
        self.bytes = bytes
    }

    public var text: String { Hex.encode(bytes) }
    public var count: Int { bytes.count }
}

// MARK: - OID

/// An object identifier in dotted form (`ObjectIdentifierType`, pattern `([\d]+[.])*[\d]+`). Used for
/// entity ids (EUM, SM-SR, SM-DP, MNO, M2M SP) and for subject and reason codes.
public struct OID: TextRepresentable, Comparable, ExpressibleByStringLiteral {
    public let text: String

    public init(text: String) throws(IdentifierError) {
        guard OID.isValid(text) else { throw .invalidOID(text) }
        self.text = text
    }

    /// For literals in code; a malformed literal is a programming error.
    public init(stringLiteral value: String) {
        precondition(OID.isValid(value), "malformed OID literal \(value)")
        self.text = value
    }

    static func isValid(_ text: String) -> Bool {
        text.withUTF8Bytes { bytes in
            var sawDigit = false
            for byte in bytes {
                if byte &- 0x30 < 10 {
                    sawDigit = true
                } else if byte == 0x2E && sawDigit {
                    sawDigit = false
                } else {
                    return false
                }
            }
            return sawDigit
        }
    }

    public var arcs: [Int] { text.split(separator: ".").map { Int($0) ?? 0 } }

    public static func < (lhs: OID, rhs: OID) -> Bool { lhs.arcs.lexicographicallyPrecedes(rhs.arcs) }
}

// MARK: - Subscription address parts

/// IMSI (`IMSIType`, `\d{0,15}`).
public struct IMSI: TextRepresentable {
    public let text: String
    public init(text: String) throws(IdentifierError) {
        guard text.utf8.count <= 15, text.withUTF8Bytes(allDigits) else {
            throw .invalidIMSI(text)
        }
        self.text = text
    }
}

/// MSISDN in E.164 form without '+' (`MSISDNType`, `\d{3,15}`).
public struct MSISDN: TextRepresentable {
    public let text: String
    public init(text: String) throws(IdentifierError) {
        guard (3...15).contains(text.utf8.count), text.withUTF8Bytes(allDigits) else {
            throw .invalidMSISDN(text)
        }
        self.text = text
    }
}

/// A `major.minor.patch` version (`ThreeDigitVersion`, `\d+[.]\d+[.]\d+`).
public struct ThreeDigitVersion: TextRepresentable {
    public let text: String
    public init(text: String) throws(IdentifierError) {
        guard ThreeDigitVersion.isValid(text) else { throw .invalidValue("ThreeDigitVersion", text) }
        self.text = text
    }

    /// Three non-empty runs of ASCII digits separated by two dots.
    static func isValid(_ text: String) -> Bool {
        text.withUTF8Bytes { bytes in
            var dots = 0
            var digits = 0
            for byte in bytes {
                if byte &- 0x30 < 10 {
                    digits += 1
                } else if byte == 0x2E && digits > 0 && dots < 2 {
                    dots += 1
                    digits = 0
                } else {
                    return false
                }
            }
            return dots == 2 && digits > 0
        }
    }
}

/// A string of at most 100 characters (`String100`): platform and Profile types.
public struct String100: TextRepresentable, ExpressibleByStringLiteral {
    public let text: String
    public init(text: String) throws(IdentifierError) {
        // At most 100 bytes of UTF-8 are at most 100 characters; only longer text needs counting.
        guard text.utf8.count <= 100 || text.count <= 100 else {
            throw .invalidValue("String100", String(text.prefix(40)) + "…")
        }
        self.text = text
    }
    public init(stringLiteral value: String) {
        precondition(value.count <= 100)
        self.text = value
    }
}

// MARK: - Byte access

extension String {
    /// Calls `body` with the string's UTF-8 bytes, in place for native strings.
    @inline(__always)
    func withUTF8Bytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = utf8.withContiguousStorageIfAvailable(body) {
            return result
        }
        var copy = self
        return copy.withUTF8(body)
    }
}

/// Whether every byte is an ASCII decimal digit.
@inline(__always)
func allDigits(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
    for byte in bytes where byte &- 0x30 >= 10 {
        return false
    }
    return true
}

// MARK: - Hex

/// Hexadecimal helpers (upper case out, either case in).
public enum Hex {
    private static let digits: StaticString = "0123456789ABCDEF"

    public static func encode(_ bytes: [UInt8]) -> String {
        withEncoded(bytes) { String(decoding: $0, as: UTF8.self) }
    }

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        encode(Array(bytes))
    }

    /// Calls `body` with the upper-case hex text of `bytes` as UTF-8 (in a temporary buffer: no `String` is made).
    @inlinable
    public static func withEncoded<R>(_ bytes: [UInt8], _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let count = bytes.count * 2
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(count, 1)) { buffer in
            encode(bytes, into: buffer.baseAddress!)
            return body(UnsafeBufferPointer(start: buffer.baseAddress, count: count))
        }
    }

    /// Writes the upper-case hex text of `bytes` (`2 * bytes.count` bytes of UTF-8) at `out`.
    public static func encode(_ bytes: [UInt8], into out: UnsafeMutablePointer<UInt8>) {
        digits.withUTF8Buffer { digits in
            bytes.withUnsafeBufferPointer { bytes in
                var index = 0
                for byte in bytes {
                    out[index] = digits[Int(byte >> 4)]
                    out[index + 1] = digits[Int(byte & 0x0F)]
                    index += 2
                }
            }
        }
    }

    /// Decodes hex text; `nil` for an odd length or a non-hex character. Surrounding XML
    /// whitespace is not accepted here (the XML layer collapses it first).
    public static func decode(_ text: String) -> [UInt8]? {
        if let decoded = text.utf8.withContiguousStorageIfAvailable({ decode(utf8: $0) }) {
            return decoded
        }
        return Array(text.utf8).withUnsafeBufferPointer { decode(utf8: $0) }
    }

    /// Decodes hex text given as UTF-8 bytes; `nil` for an odd length or a non-hex character.
    public static func decode(utf8 text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let count = text.count
        guard count % 2 == 0 else { return nil }
        var valid = true
        let out = [UInt8](unsafeUninitializedCapacity: count / 2) { buffer, initialized in
            var index = 0
            while index < count / 2 {
                guard let h = nibble(text[2 * index]), let l = nibble(text[2 * index + 1]) else {
                    valid = false
                    break
                }
                buffer[index] = h << 4 | l
                index += 1
            }
            initialized = index
        }
        return valid ? out : nil
    }

    /// The upper-case hex digit for a value 0…15.
    @inline(__always)
    public static func upperDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? 0x30 + value : 0x37 + value
    }

    /// The value of one hexadecimal digit, or nil.
    @inline(__always)
    public static func nibbleValue(_ c: UInt8) -> UInt8? { nibble(c) }

    @inline(__always)
    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x37
        case 0x61...0x66: c - 0x57
        default: nil
        }
    }
}
