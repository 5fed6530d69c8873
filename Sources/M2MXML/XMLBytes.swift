/// Byte constants and byte-level classification shared by the reader and the writer.
enum ASCII {
    static let tab: UInt8 = 0x09
    static let lineFeed: UInt8 = 0x0A
    static let carriageReturn: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let exclamation: UInt8 = 0x21
    static let doubleQuote: UInt8 = 0x22
    static let hash: UInt8 = 0x23
    static let ampersand: UInt8 = 0x26
    static let singleQuote: UInt8 = 0x27
    static let hyphen: UInt8 = 0x2D
    static let period: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let zero: UInt8 = 0x30
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let lessThan: UInt8 = 0x3C
    static let equals: UInt8 = 0x3D
    static let greaterThan: UInt8 = 0x3E
    static let question: UInt8 = 0x3F
    static let leftBracket: UInt8 = 0x5B
    static let rightBracket: UInt8 = 0x5D
    static let underscore: UInt8 = 0x5F
    static let lowercaseX: UInt8 = 0x78

    /// XML `S`: space, tab, line feed, carriage return.
    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == space || byte == lineFeed || byte == tab || byte == carriageReturn
    }

    /// First byte of a name: ASCII letter, `_`, or any non-ASCII byte (validated as UTF-8 separately).
    @inline(__always)
    static func isNameStart(_ byte: UInt8) -> Bool {
        (byte | 0x20) &- 0x61 < 26 || byte == underscore || byte >= 0x80
    }

    /// Subsequent byte of a name (colon excluded; QNames are split by the caller).
    @inline(__always)
    static func isNameByte(_ byte: UInt8) -> Bool {
        isNameStart(byte) || byte &- zero < 10 || byte == hyphen || byte == period
    }

    /// `isNameByte` for every byte value as `0`/`1`, in a constant string: reading it needs neither a lazy
    /// initialiser nor a bounds check.
    private static let nameBytes: StaticString = """
        0000000000000000000000000000000000000000000001101111111111000000\
        0111111111111111111111111110000101111111111111111111111111100000\
        1111111111111111111111111111111111111111111111111111111111111111\
        1111111111111111111111111111111111111111111111111111111111111111
        """

    /// `isNameByte` by table lookup (for the name scanning loop).
    @inline(__always)
    static func isNameByteFast(_ byte: UInt8) -> Bool {
        nameBytes.utf8Start[Int(byte)] == 0x31
    }

    /// Per-byte classes for the scanning loops: one table load replaces a chain of comparisons.
    struct ByteClass: OptionSet {
        let rawValue: UInt8

        /// May start a name: ASCII letter, `_`, or a non-ASCII byte.
        static let nameStart = ByteClass(rawValue: 1)
        /// May continue a name (colon excluded).
        static let name = ByteClass(rawValue: 2)
        /// Ends the fast path in character data: `<`, `&`, `]`, CR and forbidden controls.
        static let textSpecial = ByteClass(rawValue: 4)
        /// Ends the fast path in attribute values: `<`, `&`, both quotes, and all controls including TAB/LF/CR.
        static let attributeSpecial = ByteClass(rawValue: 8)
    }

    /// `ByteClass` of every byte value.
    static let byteClasses: [ByteClass] = (0...255).map { value in
        let byte = UInt8(value)
        var result: ByteClass = []
        if isNameStart(byte) { result.insert(.nameStart) }
        if isNameByte(byte) { result.insert(.name) }
        switch byte {
        case lessThan, ampersand, rightBracket, carriageReturn: result.insert(.textSpecial)
        case tab, lineFeed: break
        case ..<space: result.insert(.textSpecial)
        default: break
        }
        switch byte {
        case lessThan, ampersand, doubleQuote, singleQuote, ..<space: result.insert(.attributeSpecial)
        default: break
        }
        return result
    }

    /// Whether `scalar` is an XML 1.0 `Char`.
    @inline(__always)
    static func isXMLChar(_ scalar: UInt32) -> Bool {
        switch scalar {
        case 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: return true
        case 0x09, 0x0A, 0x0D: return true
        default: return false
        }
    }

    /// Whether `name` is a valid NCName under the same rules the reader applies.
    static func isNCName(_ name: String) -> Bool {
        var iterator = name.utf8.makeIterator()
        guard let first = iterator.next(), isNameStart(first) else { return false }
        while let byte = iterator.next() {
            guard isNameByte(byte) else { return false }
        }
        return true
    }
}

/// Validates UTF-8 in `buffer[start..<end]`, also rejecting the non-characters U+FFFE and U+FFFF that XML forbids.
/// Returns the offset of the first invalid sequence, or `nil` when the range is valid.
func firstInvalidUTF8(in buffer: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int? {
    var index = start
    while index < end {
        let lead = buffer[index]
        if lead < 0x80 {
            index += 1
            continue
        }
        let length: Int
        var lowerBound: UInt8 = 0x80
        var upperBound: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF:
            length = 2
        case 0xE0:
            length = 3
            lowerBound = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF:
            length = 3
        case 0xED:
            length = 3
            upperBound = 0x9F  // excludes UTF-16 surrogates
        case 0xF0:
            length = 4
            lowerBound = 0x90
        case 0xF1...0xF3:
            length = 4
        case 0xF4:
            length = 4
            upperBound = 0x8F  // caps at U+10FFFF
        default:
            return index
        }
        guard end - index >= length else { return index }
        let second = buffer[index + 1]
        guard second >= lowerBound && second <= upperBound else { return index }
        var offset = 2
        while offset < length {
            guard buffer[index + offset] & 0xC0 == 0x80 else { return index }
            offset += 1
        }
        // U+FFFE and U+FFFF are EF BF BE / EF BF BF.
        if lead == 0xEF && second == 0xBF && buffer[index + 2] >= 0xBE {
            return index
        }
        index += length
    }
    return nil
}

extension Array where Element == UInt8 {
    /// Appends the UTF-8 encoding of a scalar known to be valid.
    @inline(__always)
    mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            append(UInt8(truncatingIfNeeded: scalar))
        case 0x80..<0x800:
            append(UInt8(truncatingIfNeeded: 0xC0 | (scalar >> 6)))
            append(UInt8(truncatingIfNeeded: 0x80 | (scalar & 0x3F)))
        case 0x800..<0x10000:
            append(UInt8(truncatingIfNeeded: 0xE0 | (scalar >> 12)))
            append(UInt8(truncatingIfNeeded: 0x80 | ((scalar >> 6) & 0x3F)))
            append(UInt8(truncatingIfNeeded: 0x80 | (scalar & 0x3F)))
        default:
            append(UInt8(truncatingIfNeeded: 0xF0 | (scalar >> 18)))
            append(UInt8(truncatingIfNeeded: 0x80 | ((scalar >> 12) & 0x3F)))
            append(UInt8(truncatingIfNeeded: 0x80 | ((scalar >> 6) & 0x3F)))
            append(UInt8(truncatingIfNeeded: 0x80 | (scalar & 0x3F)))
        }
    }
}

/// Eight bytes at a time ("SIMD within a register"): each test sets the high bit of exactly the bytes that match.
enum SWAR {
    // Computed constants: stored statics would be read through a lazy initialiser check.
    @inline(__always) static var highBits: UInt64 { 0x8080_8080_8080_8080 }
    @inline(__always) private static var lowBits: UInt64 { 0x7F7F_7F7F_7F7F_7F7F }
    @inline(__always) private static var ones: UInt64 { 0x0101_0101_0101_0101 }

    /// High bit set in the bytes of `word` equal to `byte`.
    @inline(__always)
    static func equal(_ word: UInt64, _ byte: UInt8) -> UInt64 {
        let x = word ^ (ones &* UInt64(byte))
        return ~(((x & lowBits) &+ lowBits) | x | lowBits)
    }

    /// `ByteClass.textSpecial` for eight bytes: `<`, `&`, `]`, CR and the controls other than TAB and LF.
    @inline(__always)
    static func textSpecial(_ word: UInt64) -> UInt64 {
        (lessThanSpace(word) & ~(equal(word, ASCII.tab) | equal(word, ASCII.lineFeed)))
            | equal(word, ASCII.lessThan) | equal(word, ASCII.ampersand) | equal(word, ASCII.rightBracket)
    }

    /// `ByteClass.attributeSpecial` for eight bytes: `<`, `&`, both quotes and all controls.
    @inline(__always)
    static func attributeSpecial(_ word: UInt64) -> UInt64 {
        lessThanSpace(word) | equal(word, ASCII.lessThan) | equal(word, ASCII.ampersand)
            | equal(word, ASCII.doubleQuote) | equal(word, ASCII.singleQuote)
    }

    /// High bit set in the bytes of `word` below 0x20 (C0 controls, including TAB, LF and CR).
    @inline(__always)
    static func lessThanSpace(_ word: UInt64) -> UInt64 {
        ~(((word & lowBits) &+ 0x6060_6060_6060_6060) | word) & highBits
    }
}
