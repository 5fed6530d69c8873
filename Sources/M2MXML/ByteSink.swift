/// A growable output buffer of raw bytes for the writers: appends are inlined pointer writes (an `Array`'s
/// `append(contentsOf:)` is a call with uniqueness and capacity checks each time, which dominated writing).
///
/// A class so that `XMLWriter` can stay a value type by copying the buffer on write when it is shared.
final class ByteSink {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var capacity: Int
    var count = 0

    /// A stack of byte ranges of the output (the writer's open element names, for their end tags).
    private var ranges: UnsafeMutablePointer<(start: Int, count: Int)>
    private var rangeCapacity = 16
    /// Number of ranges on the stack.
    private(set) var depth = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
        ranges = .allocate(capacity: rangeCapacity)
    }

    deinit {
        base.deallocate()
        ranges.deallocate()
    }

    /// A copy holding the same bytes and ranges.
    func copy() -> ByteSink {
        let other = ByteSink(capacity: capacity)
        other.base.update(from: base, count: count)
        other.count = count
        other.reserveRanges(depth)
        other.ranges.update(from: ranges, count: depth)
        other.depth = depth
        return other
    }

    private func reserveRanges(_ needed: Int) {
        guard needed > rangeCapacity else { return }
        var newCapacity = rangeCapacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newRanges = UnsafeMutablePointer<(start: Int, count: Int)>.allocate(capacity: newCapacity)
        newRanges.update(from: ranges, count: depth)
        ranges.deallocate()
        ranges = newRanges
        rangeCapacity = newCapacity
    }

    /// Pushes the range of the bytes written since `start`.
    @inline(__always)
    func pushRange(from start: Int) {
        if depth == rangeCapacity {
            reserveRanges(depth + 1)
        }
        ranges[depth] = (start, count - start)
        depth &+= 1
    }

    /// Pops the last range pushed, if any.
    @inline(__always)
    func popRange() -> (start: Int, count: Int)? {
        guard depth > 0 else { return nil }
        depth &-= 1
        return ranges[depth]
    }

    /// Appends a copy of bytes already written (`range` must lie within the output).
    @inline(__always)
    func appendCopy(of range: (start: Int, count: Int)) {
        reserve(range.count)
        append(UnsafeBufferPointer(start: base + range.start, count: range.count))
    }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    func reserve(_ extra: Int) {
        if count + extra > capacity {
            grow(to: count + extra)
        }
    }

    @inline(never)
    private func grow(to needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count &+= 1
    }

    @inline(__always)
    func append(_ byte1: UInt8, _ byte2: UInt8) {
        reserve(2)
        base[count] = byte1
        base[count &+ 1] = byte2
        count &+= 2
    }

    @inline(__always)
    func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        let n = bytes.count
        reserve(n)
        let target = base + count
        if n <= 16 {
            // Names and short values: two overlapping word copies instead of a call to memmove.
            let from = UnsafeRawPointer(source)
            let to = UnsafeMutableRawPointer(target)
            if n >= 8 {
                to.storeBytes(of: from.loadUnaligned(as: UInt64.self), as: UInt64.self)
                (to + (n - 8)).storeBytes(of: from.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self), as: UInt64.self)
            } else if n >= 4 {
                to.storeBytes(of: from.loadUnaligned(as: UInt32.self), as: UInt32.self)
                (to + (n - 4)).storeBytes(of: from.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self), as: UInt32.self)
            } else {
                for index in 0..<n {
                    target[index] = source[index]
                }
            }
        } else {
            target.update(from: source, count: n)
        }
        count &+= n
    }

    @inline(__always)
    func append(_ literal: StaticString) {
        append(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    @inline(__always)
    func append(_ string: String) {
        string.withUTF8Bytes { append($0) }
    }

    /// Appends `count` spaces (eight at a time: indentation is short, and a call to memset costs more).
    @inline(__always)
    func appendSpaces(_ spaces: Int) {
        guard spaces > 0 else { return }
        reserve(spaces + 8)
        let target = UnsafeMutableRawPointer(base + count)
        var written = 0
        while written < spaces {
            (target + written).storeBytes(of: 0x2020_2020_2020_2020 as UInt64, as: UInt64.self)
            written &+= 8
        }
        count &+= spaces
    }

    /// `appendEscaped` for a string's UTF-8.
    @inline(__always)
    func appendEscaped(_ string: String, attribute: Bool) {
        string.withUTF8Bytes { appendEscaped($0, attribute: attribute) }
    }

    /// Bytes that need escaping somewhere: `&`, `<`, `>`, `"`, TAB, LF, CR (one bit per byte value below 64).
    /// Computed, not stored: a stored static would be read through a lazy initialiser check on every byte.
    @inline(__always)
    private static var escapeMask: UInt64 { 0x5000_0044_0000_2600 }

    /// Appends `bytes` escaped for character data (`attribute: false`: `&`, `<`, `>`, CR) or for a double-quoted
    /// attribute value (`&`, `<`, `"`, TAB, LF, CR).
    @inline(__always)
    func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, attribute: Bool) {
        var chunk = 0
        var index = 0
        let count = bytes.count
        while index < count {
            if count - index >= 8 {
                // Skip eight bytes at a time while none needs escaping. Character data: `&`, `<`, `>` or CR (`<` and
                // `>` differ only in bit 1). Attribute values: `&`, `<`, `"` or a control (TAB, LF, CR).
                let word = UnsafeRawPointer(bytes.baseAddress! + index).loadUnaligned(as: UInt64.self)
                let special = attribute
                    ? SWAR.equal(word, ASCII.ampersand) | SWAR.equal(word, ASCII.lessThan)
                        | SWAR.equal(word, ASCII.doubleQuote) | SWAR.lessThanSpace(word)
                    : SWAR.equal(word | 0x0202_0202_0202_0202, ASCII.greaterThan) | SWAR.equal(word, ASCII.ampersand)
                        | SWAR.equal(word, ASCII.carriageReturn)
                if special == 0 {
                    index &+= 8
                    continue
                }
                index &+= special.trailingZeroBitCount >> 3
            }
            let byte = bytes[index]
            if byte >= 64 || Self.escapeMask & (1 << UInt64(byte)) == 0 {
                index &+= 1
                continue
            }
            let replacement: StaticString
            switch byte {
            case ASCII.ampersand: replacement = "&amp;"
            case ASCII.lessThan: replacement = "&lt;"
            case ASCII.greaterThan where !attribute: replacement = "&gt;"
            case ASCII.doubleQuote where attribute: replacement = "&quot;"
            case ASCII.carriageReturn: replacement = "&#xD;"
            case ASCII.lineFeed where attribute: replacement = "&#xA;"
            case ASCII.tab where attribute: replacement = "&#x9;"
            default:
                index &+= 1
                continue
            }
            if index > chunk {
                append(UnsafeBufferPointer(rebasing: bytes[chunk..<index]))
            }
            append(replacement)
            index &+= 1
            chunk = index
        }
        if chunk < count {
            append(UnsafeBufferPointer(rebasing: bytes[chunk..<count]))
        }
    }

    /// The bytes written so far, as an array.
    var bytes: [UInt8] {
        Array(UnsafeBufferPointer(start: base, count: count))
    }
}

extension String {
    /// Calls `body` with the string's UTF-8, in place (no copy of the string, so no reference counting) whenever the
    /// storage is contiguous, as it is for native and literal strings.
    @inlinable @inline(__always)
    func withUTF8Bytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = utf8.withContiguousStorageIfAvailable(body) {
            return result
        }
        var copy = self
        return copy.withUTF8(body)
    }
}
