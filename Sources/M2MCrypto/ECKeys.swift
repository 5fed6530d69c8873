// EC keys on OpenSSL 3: a value-type façade over a final class that owns the EVP_PKEY (swift-crypto
// style). Public keys are validated once, when created from bytes, so ECDH can skip the check
// (EVP_PKEY_derive_set_peer_ex(…, 0)). ECDSA uses SHA-256; signatures convert between plain r‖s
// (GP certificates, SGP.02 STORE DATA) and DER (X.509, TLS).

internal import COpenSSL
import Synchronization

final class PKeyBox: @unchecked Sendable {
    // EVP_PKEY is reference counted and immutable after creation; safe to share across threads.
    let pointer: OpaquePointer
    /// Verification contexts already through EVP_PKEY_verify_init, each used by one thread at a
    /// time. ECDSA verification keeps no state in its context between calls, so a context serves
    /// call after call; the init (a provider fetch under a lock, the key's export to the provider)
    /// costs about a fifth of a P-256 verification (bench crypto). At most `poolLimit` are kept.
    private let verifiers = Mutex<[Verifier]>([])
    static let poolLimit = 16
    /// A context owned by whichever thread took it from the pool.
    private struct Verifier: @unchecked Sendable { let context: OpaquePointer }

    /// The P-256 key's fixed-base table, once `ECPublicKey.prepareForRepeatedVerification()` built it.
    let fixedBase = AtomicLazyReference<FixedBaseVerifier>()

    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit {
        EVP_PKEY_free(pointer)
        for verifier in verifiers.withLock({ $0 }) { EVP_PKEY_CTX_free(verifier.context) }
    }

    /// Runs `body` with a verify-initialised context of this key (nil when OpenSSL cannot make one).
    func withVerifier<R>(_ body: (OpaquePointer?) -> R) -> R {
        let context: OpaquePointer? = verifiers.withLock { $0.popLast()?.context } ?? {
            guard let context = EVP_PKEY_CTX_new(pointer, nil) else { return nil }
            guard EVP_PKEY_verify_init(context) == 1 else {
                EVP_PKEY_CTX_free(context)
                return nil
            }
            return context
        }()
        let result = body(context)
        if let context {
            let kept = verifiers.withLock { pool -> Bool in
                guard pool.count < Self.poolLimit else { return false }
                pool.append(Verifier(context: context))
                return true
            }
            if !kept { EVP_PKEY_CTX_free(context) }
        }
        return result
    }
}

/// OpenSSL's table of multiples of one P-256 public key, with P-256 itself (COpenSSL
/// `m2m_fixed_verifier`): verifications by that key multiply two fixed bases instead of one. Read-only
/// after creation, so shared by every thread.
final class FixedBaseVerifier: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<m2m_fixed_verifier>
    init(_ pointer: UnsafeMutablePointer<m2m_fixed_verifier>) { self.pointer = pointer }
    deinit { m2m_fixed_verifier_free(pointer) }
}

extension Curve {
    /// A public-only key of this curve, made once by group name: imported points and generated keys
    /// start as copies of it, so OpenSSL copies the group instead of building it again (the build
    /// was most of an import: docs/crypto.md). Only read, never changed, after creation. nil when
    /// OpenSSL could not make it (a curve this OpenSSL lacks): callers then build by name and get
    /// OpenSSL's own error.
    var template: PKeyBox? {
        switch self {
        case .p256: Self.p256Template
        case .brainpoolP256r1: Self.brainpoolTemplate
        }
    }

    private static let p256Template = makeTemplate(.p256)
    private static let brainpoolTemplate = makeTemplate(.brainpoolP256r1)

    private static func makeTemplate(_ curve: Curve) -> PKeyBox? {
        defer { _ = OpenSSLErrorStack.drain() }
        guard let pair = m2m_ec_generate(curve.groupName) else { return nil }
        defer { EVP_PKEY_free(pair) }
        var point = [UInt8](repeating: 0, count: 133)
        let length = m2m_ec_public_point(pair, &point, point.count)
        guard length > 0, let key = m2m_ec_public_from_point(curve.groupName, point, length) else { return nil }
        return PKeyBox(key)
    }
}

/// An EC public key (a point on `curve`), validated on creation.
public struct ECPublicKey: Sendable, Hashable, CustomStringConvertible {
    let box: PKeyBox
    public let curve: Curve
    /// The uncompressed point 04‖X‖Y.
    public let x962Representation: [UInt8]

    /// From an uncompressed (04‖X‖Y) or compressed point. Rejects points not on the curve.
    public init(x962Representation point: [UInt8], curve: Curve) throws(CryptoError) {
        guard point.count == 1 + 2 * curve.coordinateSize || point.count == 1 + curve.coordinateSize else {
            throw CryptoError(code: .invalidKey, detail: "a \(curve) point is 65 (or 33 compressed) bytes, not \(point.count)")
        }
        guard let pkey = point.withUnsafeBufferPointer({ bytes in
            curve.template.map { m2m_ec_public_from_template($0.pointer, bytes.baseAddress, bytes.count) }
                ?? m2m_ec_public_from_point(curve.groupName, bytes.baseAddress, bytes.count)
        }) else {
            throw CryptoError.openSSL(.invalidKey, "not a point on \(curve)")
        }
        let box = PKeyBox(pkey)
        guard let ctx = EVP_PKEY_CTX_new_from_pkey(nil, pkey, nil) else { throw CryptoError.openSSL(.openSSLFailure, "EVP_PKEY_CTX_new") }
        defer { EVP_PKEY_CTX_free(ctx) }
        // Both curves have cofactor 1: on the curve and not at infinity is the full check (the n·Q test
        // of EVP_PKEY_public_check adds a scalar multiplication and nothing else).
        guard EVP_PKEY_public_check_quick(ctx) == 1 else { throw CryptoError.openSSL(.invalidKey, "public key check failed on \(curve)") }
        self.box = box
        self.curve = curve
        self.x962Representation = try ECPublicKey.point(of: pkey)
    }

    init(box: PKeyBox, curve: Curve) throws(CryptoError) {
        self.box = box
        self.curve = curve
        self.x962Representation = try ECPublicKey.point(of: box.pointer)
    }

    static func point(of pkey: OpaquePointer) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 133)
        let length = m2m_ec_public_point(pkey, &out, out.count)
        guard length > 0 else { throw CryptoError.openSSL(.openSSLFailure, "cannot read the public point") }
        return Array(out[0..<length])
    }

    /// Builds, once, OpenSSL's table of multiples of this P-256 key, so that its signature checks
    /// multiply two fixed bases (~34 µs instead of ~59 µs here; building took ~20 ms; ~150 KB by OpenSSL's table layout,
    /// docs/crypto.md). For keys that check many signatures: an EUM's, the CI's. Every copy of this key
    /// uses the table; results are the same as without it. Returns false, and changes nothing, on
    /// brainpoolP256r1 (OpenSSL's generic code is slower with such a table) or when OpenSSL cannot build it.
    @discardableResult
    public func prepareForRepeatedVerification() -> Bool {
        guard curve == .p256 else { return false }
        if box.fixedBase.load() != nil { return true }
        // One build at a time (builds are rare): threads that start checking with a new key at once
        // wait for the first one's table instead of each building their own.
        return Self.preparing.withLock { _ in
            if box.fixedBase.load() != nil { return true }
            guard let pointer = x962Representation.withUnsafeBufferPointer({ m2m_fixed_verifier_new_p256($0.baseAddress, $0.count) }) else {
                _ = OpenSSLErrorStack.drain()
                return false
            }
            _ = box.fixedBase.storeIfNil(FixedBaseVerifier(pointer))
            return true
        }
    }

    private static let preparing = Mutex<Void>(())

    /// The table's answer for a digest: 1 valid, 0 not valid, -1 OpenSSL failed; nil without a table
    /// (or for a signature that is not 64 bytes). Internal so that tests can see the path was taken.
    func fixedBaseVerification(_ signature: ECDSASignature, digest: [UInt8]) -> Int32? {
        guard let fixed = box.fixedBase.load(), signature.rawRepresentation.count == 64, digest.count == 32 else { return nil }
        return digest.withUnsafeBufferPointer { d in
            signature.rawRepresentation.withUnsafeBufferPointer { m2m_fixed_verifier_verify(fixed.pointer, d.baseAddress, $0.baseAddress) }
        }
    }

    /// Whether `prepareForRepeatedVerification()` built this key's table.
    public var isPreparedForRepeatedVerification: Bool { box.fixedBase.load() != nil }

    /// Verifies an ECDSA-SHA256 signature over `message`.
    public func isValidSignature(_ signature: ECDSASignature, for message: some ContiguousBytes) -> Bool {
        // SHA-256 first, then the ECDSA verification of the digest: the same check as
        // EVP_DigestVerify without a digest context's set-up per call (measured in bench smsr's ingest).
        let digest = SHA256.hash(message)
        if let result = fixedBaseVerification(signature, digest: digest) {
            if result >= 0 { return result == 1 }
            _ = OpenSSLErrorStack.drain() // OpenSSL failed (out of memory): EVP below decides
        }
        let der: [UInt8]
        do { der = try signature.derRepresentation } catch { return false }
        // The context comes initialised from the key's pool (PKeyBox.withVerifier).
        let ok = box.withVerifier { context in
            guard let context else { return false }
            return EVP_PKEY_verify(context, der, der.count, digest, digest.count) == 1
        }
        if !ok { _ = OpenSSLErrorStack.drain() }
        return ok
    }

    /// Throws `invalidSignature` unless the signature verifies.
    public func verify(_ signature: ECDSASignature, for message: some ContiguousBytes) throws(CryptoError) {
        guard isValidSignature(signature, for: message) else {
            throw CryptoError(code: .invalidSignature, detail: "ECDSA-SHA256 signature does not verify on \(curve)")
        }
    }

    /// SubjectPublicKeyInfo DER.
    public var derRepresentation: [UInt8] {
        var pointer: UnsafeMutablePointer<UInt8>?
        let length = i2d_PUBKEY(box.pointer, &pointer)
        guard length > 0, let pointer else { return [] }
        defer { CRYPTO_free(pointer, #fileID, #line) }
        return Array(UnsafeBufferPointer(start: pointer, count: Int(length)))
    }

    public static func == (lhs: ECPublicKey, rhs: ECPublicKey) -> Bool {
        lhs.curve == rhs.curve && lhs.x962Representation == rhs.x962Representation
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(x962Representation) }

    public var description: String { "ECPublicKey(\(curve), \(x962Representation.prefix(9).map { String($0, radix: 16) }.joined())…)" }
}

/// An EC private key. Its scalar never leaves except through `rawScalar` (a SecureBytes) or PKCS#8.
public struct ECPrivateKey: Sendable, CustomStringConvertible {
    let box: PKeyBox
    public let curve: Curve
    public let publicKey: ECPublicKey

    /// A fresh random key.
    public init(generatingOn curve: Curve) throws(CryptoError) {
        guard let pkey = curve.template.map({ m2m_ec_generate_from_template($0.pointer) }) ?? m2m_ec_generate(curve.groupName) else { throw CryptoError.openSSL(.openSSLFailure, "EC key generation on \(curve)") }
        try self.init(box: PKeyBox(pkey), curve: curve)
    }

    /// From a raw big-endian scalar (1 ≤ d < n).
    public init(rawScalar scalar: some ContiguousBytes, curve: Curve) throws(CryptoError) {
        let pkey = scalar.withUnsafeBytes { bytes in
            m2m_ec_private_from_scalar(curve.groupName, curve.nid, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        guard let pkey else { throw CryptoError.openSSL(.invalidKey, "not a valid private scalar on \(curve)") }
        try self.init(box: PKeyBox(pkey), curve: curve)
    }

    /// From PKCS#8 (or traditional) DER or PEM.
    public init(pkcs8 data: [UInt8]) throws(CryptoError) {
        let pkey: OpaquePointer? = data.withUnsafeBufferPointer { buffer in
            if data.starts(with: Array("-----".utf8)) {
                guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
                defer { BIO_free(bio) }
                return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
            }
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_AutoPrivateKey(nil, &pointer, buffer.count)
        }
        guard let pkey else { throw CryptoError.openSSL(.invalidKey, "not a PKCS#8 EC private key") }
        let box = PKeyBox(pkey)
        var name = [CChar](repeating: 0, count: 64)
        var length = 0
        guard EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, &name, name.count, &length) == 1,
            let curve = Curve(name: String(decoding: name.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        else { throw CryptoError.openSSL(.unsupported, "the key is not on P-256 or brainpoolP256r1") }
        try self.init(box: box, curve: curve)
    }

    init(box: PKeyBox, curve: Curve) throws(CryptoError) {
        self.box = box
        self.curve = curve
        self.publicKey = try ECPublicKey(box: box, curve: curve)
    }

    /// The private scalar (32 bytes), as secret bytes.
    public var rawScalar: SecureBytes {
        get throws(CryptoError) {
            var failed = false
            let secret = SecureBytes(count: curve.coordinateSize) { buffer in
                failed = m2m_ec_private_scalar(box.pointer, buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), buffer.count) != 1
            }
            if failed { throw CryptoError.openSSL(.openSSLFailure, "cannot read the private scalar") }
            return secret
        }
    }

    /// PKCS#8 DER (unencrypted: for test PKIs written by `pki init`; production keys are encrypted at rest).
    public var pkcs8DER: SecureBytes {
        var pointer: UnsafeMutablePointer<UInt8>?
        let length = i2d_PrivateKey(box.pointer, &pointer)
        guard length > 0, let pointer else { return SecureBytes([]) }
        defer {
            m2m_openssl_cleanse(pointer, Int(length))
            CRYPTO_free(pointer, #fileID, #line)
        }
        return SecureBytes(UnsafeBufferPointer(start: pointer, count: Int(length)))
    }

    /// PKCS#8 PEM.
    public var pkcs8PEM: String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PKCS8PrivateKey(bio, box.pointer, nil, nil, 0, nil, nil) == 1 else { return "" }
        var pointer: UnsafeMutablePointer<CChar>?
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
        guard length > 0, let pointer else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    /// ECDSA-SHA256 over `message`.
    public func signature(for message: some ContiguousBytes) throws(CryptoError) -> ECDSASignature {
        var der = [UInt8](repeating: 0, count: 80)
        var length = der.count
        let ok = message.withUnsafeBytes { data -> Bool in
            guard let mdctx = EVP_MD_CTX_new() else { return false }
            defer { EVP_MD_CTX_free(mdctx) }
            guard EVP_DigestSignInit(mdctx, nil, Algorithms.sha256, nil, box.pointer) == 1 else { return false }
            return EVP_DigestSign(mdctx, &der, &length, data.baseAddress?.assumingMemoryBound(to: UInt8.self), data.count) == 1
        }
        guard ok else { throw CryptoError.openSSL(.openSSLFailure, "ECDSA signing") }
        return try ECDSASignature(derRepresentation: Array(der[0..<length]), curve: curve)
    }

    /// ECKA (ECDH): the x-coordinate of d·Q, as secret bytes. `peer` was validated when created.
    public func sharedSecret(with peer: ECPublicKey) throws(CryptoError) -> SecureBytes {
        try Self.derive(box, curve: curve, peer: peer)
    }

    static func derive(_ box: PKeyBox, curve: Curve, peer: ECPublicKey) throws(CryptoError) -> SecureBytes {
        guard peer.curve == curve else { throw CryptoError(code: .invalidKey, detail: "peer key is on \(peer.curve), not \(curve)") }
        guard let ctx = EVP_PKEY_CTX_new_from_pkey(nil, box.pointer, nil) else { throw CryptoError.openSSL(.openSSLFailure, "EVP_PKEY_CTX_new") }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_derive_init(ctx) == 1, EVP_PKEY_derive_set_peer_ex(ctx, peer.box.pointer, 0) == 1 else {
            throw CryptoError.openSSL(.openSSLFailure, "ECDH set-up")
        }
        var length = curve.coordinateSize
        var failed = false
        let secret = SecureBytes(count: curve.coordinateSize) { buffer in
            failed = EVP_PKEY_derive(ctx, buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), &length) != 1
        }
        guard !failed, length == curve.coordinateSize else { throw CryptoError.openSSL(.openSSLFailure, "ECDH derive") }
        return secret
    }

    public var description: String { "ECPrivateKey(\(curve), redacted)" }
}

/// A private scalar for ECKA (ECDH) only: no public point is computed, so importing it costs a
/// third of an `ECPrivateKey` on P-256 and a fourteenth on brainpoolP256r1 (no d·G). For keys that
/// live in a store and are used once per session, like an emulated card's SK.ECASD.ECKA.
public struct ECAgreementKey: Sendable, CustomStringConvertible {
    let box: PKeyBox
    public let curve: Curve

    /// From a raw big-endian scalar (1 ≤ d < n, checked).
    public init(rawScalar scalar: some ContiguousBytes, curve: Curve) throws(CryptoError) {
        guard curve.isValidScalar(scalar) else { throw CryptoError(code: .invalidKey, detail: "not a valid private scalar on \(curve)") }
        let pkey = scalar.withUnsafeBytes { bytes in
            m2m_ec_agreement_from_scalar(curve.groupName, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        }
        guard let pkey else { throw CryptoError.openSSL(.invalidKey, "EC private scalar import on \(curve)") }
        self.box = PKeyBox(pkey)
        self.curve = curve
    }

    /// The agreement half of a full key pair.
    public init(_ key: ECPrivateKey) {
        self.box = key.box
        self.curve = key.curve
    }

    /// ECKA (ECDH): the x-coordinate of d·Q, as secret bytes.
    public func sharedSecret(with peer: ECPublicKey) throws(CryptoError) -> SecureBytes {
        try ECPrivateKey.derive(box, curve: curve, peer: peer)
    }

    public var description: String { "ECAgreementKey(\(curve), redacted)" }
}

/// An ECDSA signature, kept as plain r‖s.
public struct ECDSASignature: Sendable, Hashable {
    /// r‖s, each half the curve's coordinate size.
    public let rawRepresentation: [UInt8]
    public let curve: Curve

    public init(rawRepresentation: [UInt8], curve: Curve) throws(CryptoError) {
        guard rawRepresentation.count == 2 * curve.coordinateSize else {
            throw CryptoError(code: .invalidSignature, detail: "an r‖s signature on \(curve) is \(2 * curve.coordinateSize) bytes, not \(rawRepresentation.count)")
        }
        self.rawRepresentation = rawRepresentation
        self.curve = curve
    }

    public init(derRepresentation der: [UInt8], curve: Curve) throws(CryptoError) {
        var raw = [UInt8](repeating: 0, count: 2 * curve.coordinateSize)
        guard m2m_ecdsa_der_to_raw(der, der.count, &raw, curve.coordinateSize) == 1 else {
            throw CryptoError.openSSL(.invalidSignature, "not a DER ECDSA-Sig-Value")
        }
        self.rawRepresentation = raw
        self.curve = curve
    }

    /// DER ECDSA-Sig-Value.
    public var derRepresentation: [UInt8] {
        get throws(CryptoError) {
            var der = [UInt8](repeating: 0, count: 80)
            let length = rawRepresentation.withUnsafeBufferPointer {
                m2m_ecdsa_raw_to_der($0.baseAddress, curve.coordinateSize, &der, der.count)
            }
            guard length > 0 else { throw CryptoError.openSSL(.invalidSignature, "cannot encode r‖s as DER") }
            return Array(der[0..<length])
        }
    }
}
