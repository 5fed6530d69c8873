// ISD-R keys at rest: sealed with the SM-SR's storage key before they reach the database
// (encrypt-then-MAC: AES-128-CBC with a random IV, 80 00… padding, then AES-CMAC over IV ‖
// ciphertext), opened only when a session needs them. The storage key is 32 bytes: the AES key ‖
// the CMAC key. Sealed bytes: IV (16) ‖ ciphertext ‖ MAC (16). The MAC also covers a context (the
// EID, key set version and key index), so a sealed key moved to another row or card does not open.

import M2MCore
import M2MCrypto

struct KeySealer: Sendable {
    /// The AES key, scheduled once (a registration seals three keys).
    let cipher: AESKeyedCipher
    let mac: AESCMAC

    init(storageKey: SecureBytes) throws(CryptoError) {
        guard storageKey.count == 32 else { throw CryptoError(code: .invalidKey, detail: "the storage key is 32 bytes (AES-128 key ‖ CMAC key)") }
        cipher = try AESKeyedCipher(key: storageKey[0..<16])
        mac = try AESCMAC(key: storageKey[16..<32])
    }

    /// Seals `secret`; `iv` is 16 fresh random bytes (the caller may draw several at once).
    func seal(_ secret: SecureBytes, context: [UInt8] = [], iv: [UInt8] = SecureRandom.bytes(16)) throws(CryptoError) -> [UInt8] {
        guard iv.count == 16 else { throw CryptoError(code: .invalidInput, detail: "the IV is 16 bytes") }
        var padded = Padding.iso9797M2(secret.bytes)
        defer { m2mZero(&padded) }
        let ciphertext = try cipher.cbc(encrypt: true, iv: iv, data: padded)
        let body = iv + ciphertext
        return body + mac.mac(Self.bound(context), body)
    }

    /// The context as the MAC sees it: its length, then its bytes.
    static func bound(_ context: [UInt8]) -> [UInt8] { [UInt8(context.count >> 8), UInt8(context.count & 0xFF)] + context }

    /// The context of an ISD-R key.
    static func context(eid: EID, keysetVersion: Int, keyIndex: Int) -> [UInt8] {
        eid.bytes + [UInt8(truncatingIfNeeded: keysetVersion), UInt8(truncatingIfNeeded: keyIndex)]
    }

    func open(_ sealed: [UInt8], context: [UInt8] = []) throws(CryptoError) -> SecureBytes {
        guard sealed.count >= 48, (sealed.count - 32) % 16 == 0 else { throw CryptoError(code: .invalidInput, detail: "not a sealed key") }
        let body = Array(sealed.dropLast(16))
        guard ConstantTime.equal(mac.mac(Self.bound(context), body), Array(sealed.suffix(16))) else {
            throw CryptoError(code: .invalidMAC, detail: "a sealed key does not verify under this storage key")
        }
        var plain = try cipher.cbc(encrypt: false, iv: Array(body.prefix(16)), data: Array(body.dropFirst(16)))
        defer { m2mZero(&plain) }
        return SecureBytes(try Padding.removeISO9797M2(plain))
    }
}

/// Overwrites a temporary copy of key material.
func m2mZero(_ bytes: inout [UInt8]) {
    for index in bytes.indices { bytes[index] = 0 }
}
