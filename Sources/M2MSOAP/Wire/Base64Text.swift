// xs:base64Binary text on the XML hot path: decoding straight from the text bytes and encoding into a
// temporary buffer, with exactly the rules of M2MCore's `Base64Binary` (RFC 4648 alphabet, padding,
// whitespace anywhere ignored). `Base64Binary(text:)` remains the reference: text this decoder
// refuses is handed to it, so errors are the same.

enum Base64Text {
    private static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    /// Decoded value of each byte: 0…63, or 64 for whitespace, 65 for `=`, 255 for anything else.
    private static let values: [UInt8] = (0...255).map { byte -> UInt8 in
        switch UInt8(byte) {
        case 0x41...0x5A: UInt8(byte) - 0x41
        case 0x61...0x7A: UInt8(byte) - 0x61 + 26
        case 0x30...0x39: UInt8(byte) - 0x30 + 52
        case 0x2B: 62
        case 0x2F: 63
        case 0x20, 0x09, 0x0A, 0x0D: 64
        case 0x3D: 65
        default: 255
        }
    }

    /// The bytes of base64 `text`, or nil when `Base64Binary.decode` would refuse it.
    static func decode(_ text: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        values.withUnsafeBufferPointer { table -> [UInt8]? in
            var count = 0
            var padding = 0
            for byte in text {
                switch table[Int(byte)] {
                case 64: continue
                case 65: padding += 1
                case 255: return nil
                default:
                    guard padding == 0 else { return nil }
                    count += 1
                }
            }
            guard (count + padding) % 4 == 0, padding <= 2, count % 4 != 1 else { return nil }
            let length = count / 4 * 3 + max(count % 4 - 1, 0)
            return [UInt8](unsafeUninitializedCapacity: length) { out, initialized in
                var group: UInt32 = 0
                var inGroup = 0
                var n = 0
                for byte in text {
                    let value = table[Int(byte)]
                    guard value < 64 else { continue }
                    group = group << 6 | UInt32(value)
                    inGroup += 1
                    if inGroup == 4 {
                        out[n] = UInt8(truncatingIfNeeded: group >> 16)
                        out[n + 1] = UInt8(truncatingIfNeeded: group >> 8)
                        out[n + 2] = UInt8(truncatingIfNeeded: group)
                        n += 3
                        group = 0
                        inGroup = 0
                    }
                }
                if inGroup > 0 {
                    group <<= UInt32(6 * (4 - inGroup))
                    out[n] = UInt8(truncatingIfNeeded: group >> 16)
                    n += 1
                    if inGroup > 2 {
                        out[n] = UInt8(truncatingIfNeeded: group >> 8)
                        n += 1
                    }
                }
                initialized = n
            }
        }
    }

    /// Calls `body` with the base64 text of `bytes` (with padding) as UTF-8.
    static func withEncoded<R>(_ bytes: [UInt8], _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let length = (bytes.count + 2) / 3 * 4
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(length, 1)) { out in
            alphabet.withUTF8Buffer { alphabet in
                var i = 0
                var n = 0
                while i + 2 < bytes.count {
                    let group = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
                    out[n] = alphabet[Int(group >> 18 & 63)]
                    out[n + 1] = alphabet[Int(group >> 12 & 63)]
                    out[n + 2] = alphabet[Int(group >> 6 & 63)]
                    out[n + 3] = alphabet[Int(group & 63)]
                    i += 3
                    n += 4
                }
                let rest = bytes.count - i
                if rest > 0 {
                    let group = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
                    out[n] = alphabet[Int(group >> 18 & 63)]
                    out[n + 1] = alphabet[Int(group >> 12 & 63)]
                    out[n + 2] = rest == 2 ? alphabet[Int(group >> 6 & 63)] : 0x3D
                    out[n + 3] = 0x3D
                }
            }
            return body(UnsafeBufferPointer(start: out.baseAddress, count: length))
        }
    }
}
