// A read-only hash table keyed by UTF-8 bytes, for names read from a document: looking one up needs
// no `String` (an element name such as `ES2-HandleProfileDisabledNotification` would otherwise be
// allocated and hashed only to find its message type).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct UTF8Table<Value: Sendable>: Sendable {
    private var keys: [[UInt8]] = []
    private var values: [Value] = []
    /// Open addressing with linear probing: index into `keys`/`values`, or -1 for an empty slot.
    private var slots: [Int32]
    private var mask: Int

    /// Builds the table; for a key given twice the last value wins.
    init(_ entries: [(String, Value)]) {
        var capacity = 8
        while capacity < entries.count * 2 { capacity *= 2 }
        slots = Array(repeating: -1, count: capacity)
        mask = capacity - 1
        for (key, value) in entries {
            let bytes = Array(key.utf8)
            let found = bytes.withUnsafeBufferPointer { slot(for: $0) }
            if slots[found] >= 0 {
                values[Int(slots[found])] = value
            } else {
                slots[found] = Int32(keys.count)
                keys.append(bytes)
                values.append(value)
            }
        }
    }

    /// The value stored for these bytes, if any.
    func value(for bytes: UnsafeBufferPointer<UInt8>) -> Value? {
        let index = slots[slot(for: bytes)]
        return index >= 0 ? values[Int(index)] : nil
    }

    /// The slot holding `bytes`, or the empty slot where they would go.
    private func slot(for bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var slot = Self.hash(bytes) & mask
        while true {
            let index = slots[slot]
            if index < 0 { return slot }
            let matches = keys[Int(index)].withUnsafeBufferPointer { key in
                key.count == bytes.count
                    && (key.isEmpty || memcmp(key.baseAddress!, bytes.baseAddress!, key.count) == 0)
            }
            if matches { return slot }
            slot = (slot + 1) & mask
        }
    }

    /// Mixes the length and three 8-byte words (start, middle, end) of longer keys; short keys byte by byte.
    @inline(__always)
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        let k: UInt64 = 0x9E37_79B9_7F4A_7C15
        var h = UInt64(bytes.count) &* k
        if bytes.count >= 8, let base = bytes.baseAddress {
            let raw = UnsafeRawPointer(base)
            h = (h ^ raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) &* k
            h ^= h >> 29
            h = (h ^ raw.loadUnaligned(fromByteOffset: bytes.count / 2 - 4, as: UInt64.self)) &* k
            h ^= h >> 29
            h = (h ^ raw.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self)) &* k
            h ^= h >> 29
        } else {
            for byte in bytes {
                h = (h ^ UInt64(byte)) &* k
            }
            h ^= h >> 29
        }
        return Int(truncatingIfNeeded: h ^ (h >> 32))
    }
}

extension String {
    /// Calls `body` with the string's UTF-8 in place (no copy of the string, so no reference counting) whenever the
    /// storage is contiguous, as it is for native and literal strings.
    @inline(__always)
    func withUTF8Bytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = utf8.withContiguousStorageIfAvailable(body) {
            return result
        }
        var copy = self
        return copy.withUTF8(body)
    }
}
