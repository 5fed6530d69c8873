// Symmetric primitives on OpenSSL 3: SHA-256, AES (ECB single block, CBC without padding), 3DES-CBC
// (SCP80 legacy), AES-CMAC, ANSI X9.63 KDF, secure random, key check values. Algorithms are fetched
// once per process (ARCHITECTURE.md: per-call fetches cost more than the operation).

internal import COpenSSL
internal import Synchronization

/// Algorithms fetched once from the default provider.
enum Algorithms {
    // Fetched objects are immutable and thread-safe once created.
    nonisolated(unsafe) static let sha256: OpaquePointer = EVP_MD_fetch(nil, "SHA256", nil)!
    nonisolated(unsafe) static let aes128CBC: OpaquePointer = EVP_CIPHER_fetch(nil, "AES-128-CBC", nil)!
    nonisolated(unsafe) static let aes192CBC: OpaquePointer = EVP_CIPHER_fetch(nil, "AES-192-CBC", nil)!
    nonisolated(unsafe) static let aes256CBC: OpaquePointer = EVP_CIPHER_fetch(nil, "AES-256-CBC", nil)!
    nonisolated(unsafe) static let aes128ECB: OpaquePointer = EVP_CIPHER_fetch(nil, "AES-128-ECB", nil)!
    nonisolated(unsafe) static let aes192ECB: OpaquePointer = EVP_CIPHER_fetch(nil, "AES-192-ECB", nil)!
    nonisolated(unsafe) static let aes256ECB: OpaquePointer = EVP_CIPHER_fetch(nil, "AES-256-ECB", nil)!
    nonisolated(unsafe) static let desEDE3CBC: OpaquePointer = EVP_CIPHER_fetch(nil, "DES-EDE3-CBC", nil)!
    nonisolated(unsafe) static let cmac: OpaquePointer = EVP_MAC_fetch(nil, "CMAC", nil)!
    nonisolated(unsafe) static let x963: OpaquePointer = EVP_KDF_fetch(nil, "X963KDF", nil)!

    static func aesCBC(keyLength: Int) throws(CryptoError) -> OpaquePointer {
        switch keyLength {
        case 16: aes128CBC
        case 24: aes192CBC
        case 32: aes256CBC
        default: throw CryptoError(code: .invalidKey, detail: "an AES key is 16, 24 or 32 bytes, not \(keyLength)")
        }
    }

    static func aesECB(keyLength: Int) throws(CryptoError) -> OpaquePointer {
        switch keyLength {
        case 16: aes128ECB
        case 24: aes192ECB
        case 32: aes256ECB
        default: throw CryptoError(code: .invalidKey, detail: "an AES key is 16, 24 or 32 bytes, not \(keyLength)")
        }
    }
}

/// SHA-256.
public enum SHA256 {
    public static func hash(_ data: some ContiguousBytes) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = data.withUnsafeBytes { EVP_Digest($0.baseAddress, $0.count, &digest, &length, Algorithms.sha256, nil) }
        precondition(ok == 1 && length == 32, "SHA-256 failed: \(OpenSSLErrorStack.drain())")
        return digest
    }
}

/// Block ciphers without padding (callers pad as their protocol says: 80 00… for SCP03, zeros for SCP80).
public enum BlockCipher {
    public enum Algorithm: Sendable { case aes, tripleDES }

    /// CBC encryption or decryption of whole blocks. A 16-byte 3DES key K1‖K2 is used as K1‖K2‖K1.
    public static func cbc(
        _ algorithm: Algorithm, encrypt: Bool, key: some ContiguousBytes, iv: [UInt8], data: some ContiguousBytes
    ) throws(CryptoError) -> [UInt8] {
        var keyBytes: [UInt8] = key.withUnsafeBytes { Array($0) }
        defer { m2m_openssl_cleanse(&keyBytes, keyBytes.count) }
        let cipher: OpaquePointer
        let block: Int
        switch algorithm {
        case .aes:
            cipher = try Algorithms.aesCBC(keyLength: keyBytes.count)
            block = 16
        case .tripleDES:
            guard keyBytes.count == 16 || keyBytes.count == 24 else {
                throw CryptoError(code: .invalidKey, detail: "a 3DES key is 16 or 24 bytes, not \(keyBytes.count)")
            }
            if keyBytes.count == 16 { keyBytes += keyBytes[0..<8] }
            cipher = Algorithms.desEDE3CBC
            block = 8
        }
        guard iv.count == block else { throw CryptoError(code: .invalidInput, detail: "the IV is \(block) bytes") }
        let input: [UInt8] = data.withUnsafeBytes { Array($0) }
        guard input.count % block == 0 else {
            throw CryptoError(code: .invalidInput, detail: "CBC input is \(input.count) bytes, not a multiple of \(block)")
        }
        return try run(cipher: cipher, encrypt: encrypt, key: keyBytes, iv: iv, input: input)
    }

    /// One block of AES-ECB encryption (ICVs, KCVs).
    public static func aesECBEncryptBlock(key: some ContiguousBytes, block: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard block.count == 16 else { throw CryptoError(code: .invalidInput, detail: "an AES block is 16 bytes") }
        var keyBytes: [UInt8] = key.withUnsafeBytes { Array($0) }
        defer { m2m_openssl_cleanse(&keyBytes, keyBytes.count) }
        let cipher = try Algorithms.aesECB(keyLength: keyBytes.count)
        return try run(cipher: cipher, encrypt: true, key: keyBytes, iv: nil, input: block)
    }

    static func run(
        cipher: OpaquePointer, encrypt: Bool, key: [UInt8], iv: [UInt8]?, input: [UInt8]
    ) throws(CryptoError) -> [UInt8] {
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError.openSSL(.openSSLFailure, "EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let initialised: Int32
        if let iv {
            initialised = EVP_CipherInit_ex2(ctx, cipher, key, iv, encrypt ? 1 : 0, nil)
        } else {
            initialised = EVP_CipherInit_ex2(ctx, cipher, key, nil, encrypt ? 1 : 0, nil)
        }
        guard initialised == 1, EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 else { throw CryptoError.openSSL(.openSSLFailure, "cipher init") }
        var output = [UInt8](repeating: 0, count: input.count + 32)
        var written: Int32 = 0
        var final: Int32 = 0
        guard EVP_CipherUpdate(ctx, &output, &written, input, Int32(input.count)) == 1 else {
            throw CryptoError.openSSL(.openSSLFailure, "cipher update")
        }
        let finalOK = output.withUnsafeMutableBufferPointer { EVP_CipherFinal_ex(ctx, $0.baseAddress! + Int(written), &final) }
        guard finalOK == 1 else { throw CryptoError.openSSL(.invalidInput, "cipher final") }
        output.removeSubrange(Int(written + final)...)
        return output
    }
}

/// AES-CMAC (NIST SP 800-38B). A keyed instance keeps one initialised context and restarts it per
/// message (EVP_MAC_init without a key keeps the key schedule), so a key costs its schedule once and
/// a message no allocation. Thread-safe: the context is used under a lock.
public final class AESCMAC: @unchecked Sendable {
    private let context: OpaquePointer
    private let lock = Mutex(())

    public init(key: some ContiguousBytes) throws(CryptoError) {
        guard let ctx = EVP_MAC_CTX_new(Algorithms.cmac) else { throw CryptoError.openSSL(.openSSLFailure, "EVP_MAC_CTX_new") }
        let ok = key.withUnsafeBytes { k -> Bool in
            guard [16, 24, 32].contains(k.count) else { return false }
            return m2m_cmac_init(ctx, k.baseAddress?.assumingMemoryBound(to: UInt8.self), k.count) == 1
        }
        guard ok else {
            EVP_MAC_CTX_free(ctx)
            throw CryptoError.openSSL(.invalidKey, "an AES-CMAC key is 16, 24 or 32 bytes")
        }
        context = ctx
    }

    deinit { EVP_MAC_CTX_free(context) }

    /// The full 16-byte MAC over the concatenation of `parts`.
    public func mac(_ parts: [UInt8]...) -> [UInt8] { mac(parts: parts) }

    public func mac(parts: [[UInt8]]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        lock.withLock { _ in
            precondition(EVP_MAC_init(context, nil, 0, nil) == 1, "CMAC restart: \(OpenSSLErrorStack.drain())")
            for part in parts where !part.isEmpty {
                let ok = part.withUnsafeBufferPointer { EVP_MAC_update(context, $0.baseAddress, $0.count) }
                precondition(ok == 1, "CMAC update: \(OpenSSLErrorStack.drain())")
            }
            var length = 0
            precondition(EVP_MAC_final(context, &out, &length, out.count) == 1 && length == 16, "CMAC final: \(OpenSSLErrorStack.drain())")
        }
        return out
    }

    /// One-shot AES-CMAC.
    public static func mac(key: some ContiguousBytes, _ parts: [UInt8]...) throws(CryptoError) -> [UInt8] {
        try AESCMAC(key: key).mac(parts: parts)
    }
}

/// One AES key for repeated ECB block encryptions and CBC operations (SCP03 session keys): the
/// contexts are keyed once and only get a new IV per operation, instead of a context and a key
/// schedule per call. Thread-safe: the contexts are used under a lock.
public final class AESKeyedCipher: @unchecked Sendable {
    private let ecb: OpaquePointer
    private let cbcEncrypt: OpaquePointer
    private let cbcDecrypt: OpaquePointer
    private let lock = Mutex(())

    public init(key: some ContiguousBytes) throws(CryptoError) {
        var keyBytes: [UInt8] = key.withUnsafeBytes { Array($0) }
        defer { m2m_openssl_cleanse(&keyBytes, keyBytes.count) }
        let ecbCipher = try Algorithms.aesECB(keyLength: keyBytes.count)
        let cbcCipher = try Algorithms.aesCBC(keyLength: keyBytes.count)
        guard let ecb = EVP_CIPHER_CTX_new(), let cbcEncrypt = EVP_CIPHER_CTX_new(), let cbcDecrypt = EVP_CIPHER_CTX_new() else {
            throw CryptoError.openSSL(.openSSLFailure, "EVP_CIPHER_CTX_new")
        }
        self.ecb = ecb
        self.cbcEncrypt = cbcEncrypt
        self.cbcDecrypt = cbcDecrypt
        let zero = [UInt8](repeating: 0, count: 16)
        guard EVP_CipherInit_ex2(ecb, ecbCipher, keyBytes, nil, 1, nil) == 1, EVP_CIPHER_CTX_set_padding(ecb, 0) == 1,
            EVP_CipherInit_ex2(cbcEncrypt, cbcCipher, keyBytes, zero, 1, nil) == 1, EVP_CIPHER_CTX_set_padding(cbcEncrypt, 0) == 1,
            EVP_CipherInit_ex2(cbcDecrypt, cbcCipher, keyBytes, zero, 0, nil) == 1, EVP_CIPHER_CTX_set_padding(cbcDecrypt, 0) == 1
        else { throw CryptoError.openSSL(.openSSLFailure, "AES key set-up") }
    }

    deinit {
        EVP_CIPHER_CTX_free(ecb)
        EVP_CIPHER_CTX_free(cbcEncrypt)
        EVP_CIPHER_CTX_free(cbcDecrypt)
    }

    /// AES(key, block) for one 16-byte block.
    public func encryptBlock(_ block: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard block.count == 16 else { throw CryptoError(code: .invalidInput, detail: "an AES block is 16 bytes") }
        var out = [UInt8](repeating: 0, count: 16)
        var written: Int32 = 0
        let ok = lock.withLock { _ in EVP_CipherUpdate(ecb, &out, &written, block, 16) == 1 && written == 16 }
        guard ok else { throw CryptoError.openSSL(.openSSLFailure, "AES-ECB") }
        return out
    }

    /// CBC over whole blocks with `iv`.
    public func cbc(encrypt: Bool, iv: [UInt8], data: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard iv.count == 16 else { throw CryptoError(code: .invalidInput, detail: "the IV is 16 bytes") }
        guard data.count % 16 == 0 else { throw CryptoError(code: .invalidInput, detail: "CBC input is \(data.count) bytes, not a multiple of 16") }
        guard !data.isEmpty else { return [] }
        let ctx = encrypt ? cbcEncrypt : cbcDecrypt
        var out = [UInt8](repeating: 0, count: data.count)
        var written: Int32 = 0
        let ok = lock.withLock { _ in
            EVP_CipherInit_ex2(ctx, nil, nil, iv, encrypt ? 1 : 0, nil) == 1 && EVP_CipherUpdate(ctx, &out, &written, data, Int32(data.count)) == 1
        }
        guard ok, Int(written) == data.count else { throw CryptoError.openSSL(.openSSLFailure, "AES-CBC") }
        return out
    }
}

/// ANSI X9.63 KDF with SHA-256 (key establishment scenario #3, BSP).
public enum X963KDF {
    public static func derive(sharedSecret: some ContiguousBytes, sharedInfo: [UInt8], length: Int) throws(CryptoError) -> SecureBytes {
        var failed = false
        let out = SecureBytes(count: length) { buffer in
            failed = sharedSecret.withUnsafeBytes { secret in
                sharedInfo.withUnsafeBufferPointer { info in
                    m2m_x963kdf(Algorithms.x963, secret.baseAddress?.assumingMemoryBound(to: UInt8.self), secret.count,
                                info.baseAddress, info.count, buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), length)
                }
            } != 1
        }
        if failed { throw CryptoError.openSSL(.openSSLFailure, "X9.63 KDF") }
        return out
    }
}

/// Cryptographically secure random bytes (RAND_bytes).
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        precondition(RAND_bytes(&out, Int32(count)) == 1, "RAND_bytes: \(OpenSSLErrorStack.drain())")
        return out
    }
}

/// Key check values.
public enum KeyCheckValue {
    /// AES: the first 3 bytes of AES-ECB(key, 16 × 01) (GP; pySim `compute_kcv_aes`).
    public static func aes(_ key: some ContiguousBytes) throws(CryptoError) -> [UInt8] {
        Array(try BlockCipher.aesECBEncryptBlock(key: key, block: [UInt8](repeating: 0x01, count: 16)).prefix(3))
    }

    /// 3DES: the first 3 bytes of 3DES-ECB(key, 8 × 00).
    public static func tripleDES(_ key: some ContiguousBytes) throws(CryptoError) -> [UInt8] {
        Array(try BlockCipher.cbc(.tripleDES, encrypt: true, key: key, iv: [UInt8](repeating: 0, count: 8), data: [UInt8](repeating: 0, count: 8)).prefix(3))
    }
}

/// Incremental SHA-256 (a profile digest computed as segments arrive).
public final class SHA256Hasher: @unchecked Sendable {
    // Used by one owner at a time (a card's download session); not shared across threads.
    private let ctx: OpaquePointer

    public init() {
        ctx = EVP_MD_CTX_new()!
        precondition(EVP_DigestInit_ex2(ctx, Algorithms.sha256, nil) == 1, "SHA-256 init: \(OpenSSLErrorStack.drain())")
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ data: some ContiguousBytes) {
        data.withUnsafeBytes { precondition(EVP_DigestUpdate(ctx, $0.baseAddress, $0.count) == 1) }
    }

    public func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(ctx, &digest, &length) == 1 && length == 32)
        return digest
    }
}
