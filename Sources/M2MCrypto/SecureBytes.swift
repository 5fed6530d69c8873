// Secret bytes (keys, shared secrets, session keys) in memory that is zeroed with OPENSSL_cleanse
// when the last reference goes, and never printed.

internal import COpenSSL

/// Secret key material: zeroed when freed, redacted in descriptions, compared in constant time.
public struct SecureBytes: Sendable, Hashable, CustomStringConvertible {
    final class Storage: @unchecked Sendable {
        // Never mutated after init; @unchecked because of the raw buffer.
        let pointer: UnsafeMutableRawBufferPointer

        init(count: Int) {
            pointer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
            pointer.initializeMemory(as: UInt8.self, repeating: 0)
        }

        deinit {
            m2m_openssl_cleanse(pointer.baseAddress, pointer.count)
            pointer.deallocate()
        }
    }

    let storage: Storage
    public let count: Int

    public init(_ bytes: some Collection<UInt8>) {
        count = bytes.count
        storage = Storage(count: count)
        _ = UnsafeMutableRawBufferPointer(rebasing: storage.pointer[0..<count]).copyBytes(from: bytes)
    }

    /// `count` bytes filled by `body`.
    init(count: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        self.count = count
        storage = Storage(count: count)
        try body(UnsafeMutableRawBufferPointer(rebasing: storage.pointer[0..<count]))
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage.pointer[0..<count]))
    }

    /// A copy of the bytes as an array (for wire formats that need it; the caller owns the copy).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// A sub-range (for splitting derived key data).
    public subscript(range: Range<Int>) -> SecureBytes {
        withUnsafeBytes { SecureBytes(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    public static func == (lhs: SecureBytes, rhs: SecureBytes) -> Bool {
        lhs.count == rhs.count && lhs.withUnsafeBytes { a in rhs.withUnsafeBytes { b in ConstantTime.equal(a, b) } }
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(count) }

    public var description: String { "SecureBytes(\(count) bytes redacted)" }
}

/// Constant-time comparison (CRYPTO_memcmp): for MACs, cryptograms and receipts.
public enum ConstantTime {
    public static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard a.count > 0 else { return true }
        return CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0
    }

    public static func equal(_ a: some ContiguousBytes, _ b: some ContiguousBytes) -> Bool {
        a.withUnsafeBytes { x in b.withUnsafeBytes { y in equal(x, y) } }
    }
}

/// Byte containers that expose contiguous storage (arrays, slices, SecureBytes).
public protocol ContiguousBytes {
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: ContiguousBytes where Element == UInt8 {}
extension ArraySlice: ContiguousBytes where Element == UInt8 {}
extension SecureBytes: ContiguousBytes {}
