/// Read-only view of the document bytes, with the comparisons the parser needs.
///
/// Kept apart from the parser's mutable state on purpose: these helpers run on every tag, and as non-mutating
/// methods of the (large) parser struct each call would copy that whole state.
struct XMLInput {
    let bytes: UnsafeBufferPointer<UInt8>

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    var count: Int { bytes.count }

    @inline(__always)
    subscript(offset: Int) -> UInt8 {
        bytes[offset]
    }

    enum Match {
        case yes
        case no
        /// The input ends before the literal could be matched or ruled out.
        case truncated
    }

    /// Whether `literal` occurs at `offset`.
    func matches(_ literal: StaticString, at offset: Int) -> Match {
        literal.withUTF8Buffer { expected in
            for index in 0..<expected.count {
                let position = offset + index
                guard position < bytes.count else { return .truncated }
                guard bytes[position] == expected[index] else { return .no }
            }
            return .yes
        }
    }

    /// Whether `bytes[start..<end]` equals the ASCII `literal` (optionally ignoring ASCII case).
    func equals(_ start: Int, _ end: Int, _ literal: StaticString, ignoringCase: Bool = false) -> Bool {
        literal.withUTF8Buffer { expected in
            guard end - start == expected.count else { return false }
            for index in 0..<expected.count {
                var byte = bytes[start + index]
                if ignoringCase && byte &- 0x41 < 26 {
                    byte |= 0x20
                }
                guard byte == expected[index] else { return false }
            }
            return true
        }
    }

    /// Whether the `count` bytes at `first` equal those at `second` (both ranges must lie within the input).
    @inline(__always)
    func bytesEqual(_ first: Int, _ second: Int, count: Int) -> Bool {
        assert(first >= 0 && second >= 0 && first + count <= bytes.count && second + count <= bytes.count)
        guard count > 0 else { return true }
        let base = bytes.baseAddress!
        return memoryEqual(base + first, base + second, count)
    }

    func slice(_ start: Int, _ end: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: bytes[start..<end])
    }

    /// The bytes as a `String` (the caller has validated them as UTF-8 where needed).
    func string(_ start: Int, _ end: Int) -> String {
        String(decoding: slice(start, end), as: UTF8.self)
    }

    /// A short, safe rendering of input bytes for error details (at most 80 bytes, invalid UTF-8 repaired).
    func excerpt(_ start: Int, _ end: Int) -> String {
        let clampedStart = min(max(start, 0), bytes.count)
        let clampedEnd = min(max(end, clampedStart), bytes.count, clampedStart + 80)
        return string(clampedStart, clampedEnd)
    }

    /// Eight bytes at `offset` (which must leave eight bytes to read), little-endian.
    @inline(__always)
    func word(at offset: Int) -> UInt64 {
        UnsafeRawPointer(bytes.baseAddress!).loadUnaligned(fromByteOffset: offset, as: UInt64.self)
    }

    /// Whether the bytes hold only XML whitespace.
    func isWhitespace(_ start: Int, _ end: Int) -> Bool {
        var index = start
        while end - index >= 8 {
            let word = word(at: index)
            let spaces = SWAR.equal(word, ASCII.space) | SWAR.equal(word, ASCII.lineFeed)
                | SWAR.equal(word, ASCII.tab) | SWAR.equal(word, ASCII.carriageReturn)
            guard spaces == SWAR.highBits else { return false }
            index &+= 8
        }
        while index < end {
            guard ASCII.isWhitespace(bytes[index]) else { return false }
            index &+= 1
        }
        return true
    }

    /// Offset of the first invalid UTF-8 sequence (or XML-forbidden non-character) in the range, if any.
    func firstInvalidUTF8(from start: Int, to end: Int) -> Int? {
        M2MXML.firstInvalidUTF8(in: bytes, from: start, to: end)
    }
}
