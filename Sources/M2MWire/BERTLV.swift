// BER-TLV as GlobalPlatform and ETSI use it (ISO/IEC 8825-1 tags and definite lengths): one- to
// three-byte tags, lengths in short form or 81/82/83 long forms. Parsing never trusts a length:
// every length is checked against the bytes present, nesting is bounded, and errors are typed.

public import M2MCore

/// A BER-TLV tag (up to 3 bytes), e.g. `0x7F21`, `0x5F37`, `0x93`.
public struct TLVTag: Hashable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public let rawValue: UInt32

    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public init(integerLiteral value: UInt32) { self.rawValue = value }

    /// The tag's bytes, most significant first.
    public var bytes: [UInt8] {
        if rawValue > 0xFFFF { return [UInt8(rawValue >> 16), UInt8(rawValue >> 8 & 0xFF), UInt8(rawValue & 0xFF)] }
        if rawValue > 0xFF { return [UInt8(rawValue >> 8), UInt8(rawValue & 0xFF)] }
        return [UInt8(rawValue)]
    }

    /// Constructed (bit 6 of the first byte).
    public var isConstructed: Bool { bytes[0] & 0x20 != 0 }

    public var description: String { Hex.encode(bytes) }
}

/// Why a TLV structure could not be read.
public struct TLVError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }
        public static let truncated = Code(name: "truncated")
        public static let badLength = Code(name: "badLength")
        public static let badTag = Code(name: "badTag")
        public static let tooDeep = Code(name: "tooDeep")
        public static let unexpectedTag = Code(name: "unexpectedTag")
        public static let missingTag = Code(name: "missingTag")
        public static let invalidValue = Code(name: "invalidValue")
    }

    public let code: Code
    public let detail: String

    public init(code: Code, detail: String = "") {
        self.code = code
        self.detail = detail
    }

    public static func == (lhs: TLVError, rhs: TLVError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { detail.isEmpty ? "TLV \(code)" : "TLV \(code): \(detail)" }
}

/// One TLV: its tag, value bytes, and (for constructed tags, when parsed) its children.
public struct TLV: Hashable, Sendable, CustomStringConvertible {
    public var tag: TLVTag
    public var value: [UInt8]

    public init(_ tag: TLVTag, _ value: [UInt8]) {
        self.tag = tag
        self.value = value
    }

    /// A constructed TLV from its children.
    public init(_ tag: TLVTag, children: [TLV]) {
        self.tag = tag
        self.value = children.flatMap(\.encoded)
    }

    /// Tag ‖ minimal definite length ‖ value.
    public var encoded: [UInt8] { tag.bytes + BERLength.encode(value.count) + value }

    /// The children of a constructed TLV.
    public func children(maxDepth: Int = 16) throws(TLVError) -> [TLV] {
        guard maxDepth > 0 else { throw TLVError(code: .tooDeep) }
        return try TLV.parseAll(value)
    }

    /// The first child with `tag`.
    public func child(_ tag: TLVTag) throws(TLVError) -> TLV? { try children().first { $0.tag == tag } }

    public var description: String { "\(tag) [\(value.count)] \(Hex.encode(value.prefix(24)))\(value.count > 24 ? "…" : "")" }

    // MARK: Parsing

    /// Parses one TLV at `offset`, advancing it.
    public static func parse(_ bytes: [UInt8], offset: inout Int) throws(TLVError) -> TLV {
        let tag = try readTag(bytes, &offset)
        let length = try BERLength.read(bytes, &offset)
        guard length <= bytes.count - offset else {
            throw TLVError(code: .truncated, detail: "tag \(tag) announces \(length) bytes, \(bytes.count - offset) remain")
        }
        let value = Array(bytes[offset..<(offset + length)])
        offset += length
        return TLV(tag, value)
    }

    /// Parses a sequence of TLVs filling `bytes` exactly.
    public static func parseAll(_ bytes: [UInt8]) throws(TLVError) -> [TLV] {
        var offset = 0
        var out: [TLV] = []
        while offset < bytes.count {
            out.append(try parse(bytes, offset: &offset))
        }
        return out
    }

    /// Parses exactly one TLV that fills `bytes`.
    public static func parseOne(_ bytes: [UInt8]) throws(TLVError) -> TLV {
        var offset = 0
        let tlv = try parse(bytes, offset: &offset)
        guard offset == bytes.count else { throw TLVError(code: .badLength, detail: "\(bytes.count - offset) bytes after the TLV") }
        return tlv
    }

    static func readTag(_ bytes: [UInt8], _ offset: inout Int) throws(TLVError) -> TLVTag {
        guard offset < bytes.count else { throw TLVError(code: .truncated, detail: "no tag") }
        var value = UInt32(bytes[offset])
        offset += 1
        guard value != 0x00 && value != 0xFF else { throw TLVError(code: .badTag, detail: "tag byte \(Hex.encode([UInt8(value)]))") }
        if value & 0x1F == 0x1F {
            var count = 0
            while true {
                guard offset < bytes.count else { throw TLVError(code: .truncated, detail: "tag cut short") }
                let next = bytes[offset]
                offset += 1
                count += 1
                guard count <= 2 else { throw TLVError(code: .badTag, detail: "tags longer than 3 bytes are not used") }
                value = value << 8 | UInt32(next)
                if next & 0x80 == 0 { break }
            }
        }
        return TLVTag(value)
    }
}

/// BER definite lengths.
public enum BERLength {
    public static func encode(_ length: Int) -> [UInt8] {
        precondition(length >= 0 && length <= 0xFF_FFFF)
        switch length {
        case 0..<0x80: return [UInt8(length)]
        case 0x80...0xFF: return [0x81, UInt8(length)]
        case 0x100...0xFFFF: return [0x82, UInt8(length >> 8), UInt8(length & 0xFF)]
        default: return [0x83, UInt8(length >> 16), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
        }
    }

    public static func read(_ bytes: [UInt8], _ offset: inout Int) throws(TLVError) -> Int {
        guard offset < bytes.count else { throw TLVError(code: .truncated, detail: "no length") }
        let first = bytes[offset]
        offset += 1
        if first < 0x80 { return Int(first) }
        let count = Int(first & 0x7F)
        guard (1...3).contains(count) else {
            throw TLVError(code: .badLength, detail: first == 0x80 ? "indefinite length is not allowed here" : "length form \(Hex.encode([first]))")
        }
        guard offset + count <= bytes.count else { throw TLVError(code: .truncated, detail: "length cut short") }
        var length = 0
        for k in 0..<count { length = length << 8 | Int(bytes[offset + k]) }
        offset += count
        return length
    }
}

/// GlobalPlatform DGIs (STORE DATA): a 2-byte tag and a 1-byte length (00–FE), or FF + 2 bytes.
/// Real cards write `3A01 A9 …` even when the inner BER-TLV uses `81 xx` (spec/sgp02-oncard.md §2.2).
public struct DGI: Hashable, Sendable {
    public var tag: UInt16
    public var value: [UInt8]

    public init(_ tag: UInt16, _ value: [UInt8]) {
        self.tag = tag
        self.value = value
    }

    public var encoded: [UInt8] {
        let length: [UInt8] = value.count < 0xFF ? [UInt8(value.count)] : [0xFF, UInt8(value.count >> 8), UInt8(value.count & 0xFF)]
        return [UInt8(tag >> 8), UInt8(tag & 0xFF)] + length + value
    }

    /// Reads one DGI; with `acceptBERLength`, also the 81/82 length forms some implementations send.
    public static func parse(_ bytes: [UInt8], offset: inout Int, acceptBERLength: Bool = true) throws(TLVError) -> DGI {
        guard offset + 3 <= bytes.count else { throw TLVError(code: .truncated, detail: "DGI header") }
        let tag = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        offset += 2
        var length = Int(bytes[offset])
        offset += 1
        if length == 0xFF {
            guard offset + 2 <= bytes.count else { throw TLVError(code: .truncated, detail: "DGI length") }
            length = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
            offset += 2
        } else if acceptBERLength, length == 0x81 || length == 0x82, length > bytes.count - offset {
            // The BER length form njiwa sends: taken only when the 1-byte reading cannot be right.
            var berOffset = offset - 1
            let berLength = try BERLength.read(bytes, &berOffset)
            if berLength <= bytes.count - berOffset {
                length = berLength
                offset = berOffset
            }
        }
        guard length <= bytes.count - offset else { throw TLVError(code: .truncated, detail: "DGI \(String(tag, radix: 16)) announces \(length) bytes") }
        let value = Array(bytes[offset..<(offset + length)])
        offset += length
        return DGI(tag, value)
    }
}
