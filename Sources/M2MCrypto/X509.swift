// X.509 certificates of the eSIM PKI (CERT.CI, CERT.EUM — SGP.14 profiles) and of the TLS test PKI,
// on OpenSSL 3: parse (DER/PEM), build and sign (test PKIs only), verify chains with OpenSSL's own
// verifier (X509_STORE_CTX, strict mode), and read the subject key. The eUICC chain
// CI → EUM → CERT.ECASD.ECKA ends in a GP-format certificate: `EUICCChain` checks all three links.

internal import COpenSSL
public import M2MCore
public import M2MWire

final class X509Box: @unchecked Sendable {
    // X509 objects are not mutated after creation here; reference counted by OpenSSL.
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
    deinit { X509_free(pointer) }
}

/// An X.509 certificate with an EC key on P-256 or brainpoolP256r1.
public struct X509Certificate: Sendable, Hashable, CustomStringConvertible {
    let box: X509Box
    public let derRepresentation: [UInt8]
    public let publicKey: ECPublicKey

    init(box: X509Box) throws(CryptoError) {
        self.box = box
        var pointer: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509(box.pointer, &pointer)
        guard length > 0, let pointer else { throw CryptoError.openSSL(.invalidCertificate, "cannot encode the certificate") }
        derRepresentation = Array(UnsafeBufferPointer(start: pointer, count: Int(length)))
        CRYPTO_free(pointer, #fileID, #line)
        guard let key = X509_get0_pubkey(box.pointer) else { throw CryptoError.openSSL(.invalidCertificate, "no public key") }
        EVP_PKEY_up_ref(key)
        let keyBox = PKeyBox(key)
        var name = [CChar](repeating: 0, count: 64)
        var nameLength = 0
        guard EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, &name, name.count, &nameLength) == 1,
            let curve = Curve(name: String(decoding: name.prefix(nameLength).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        else { throw CryptoError.openSSL(.unsupported, "the certificate key is not on P-256 or brainpoolP256r1") }
        // Re-import from the point: a key decoded inside an X509 can be a legacy-backed EVP_PKEY that
        // OpenSSL 3 re-exports to its provider on every operation; a provider-native key does not.
        publicKey = try ECPublicKey(x962Representation: try ECPublicKey.point(of: keyBox.pointer), curve: curve)
    }

    /// From DER.
    public init(derRepresentation der: [UInt8]) throws(CryptoError) {
        let x509: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var pointer: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &pointer, buffer.count)
        }
        guard let x509 else { throw CryptoError.openSSL(.invalidCertificate, "not a DER X.509 certificate") }
        try self.init(box: X509Box(x509))
    }

    /// From PEM.
    public init(pem: String) throws(CryptoError) {
        var text = pem
        let x509 = text.withUTF8 { buffer in
            buffer.withMemoryRebound(to: CChar.self) { m2m_x509_from_pem($0.baseAddress, $0.count) }
        }
        guard let x509 else { throw CryptoError.openSSL(.invalidCertificate, "not a PEM X.509 certificate") }
        try self.init(box: X509Box(x509))
    }

    public var pem: String {
        var out = [CChar](repeating: 0, count: 8192)
        let length = m2m_x509_pem(box.pointer, &out, out.count)
        return String(decoding: out.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The subjectAltName's registeredID entries: the platform's TLS certificates name their
    /// entity's OID there (docs/pki.md); the server maps a client certificate to a party with it.
    public var registeredIDs: [OID] {
        var out = [CChar](repeating: 0, count: 2048)
        let length = m2m_x509_registered_ids(box.pointer, &out, out.count)
        let text = String(decoding: out.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: "\n").compactMap { try? OID(text: String($0)) }
    }

    /// notAfter, seconds since 1970.
    public var notAfter: Int64 { Int64(m2m_x509_not_after(box.pointer)) }

    public var subject: String { name(issuer: false) }
    public var issuer: String { name(issuer: true) }

    func name(issuer: Bool) -> String {
        var out = [CChar](repeating: 0, count: 1024)
        let length = m2m_x509_name(box.pointer, issuer ? 1 : 0, &out, out.count)
        return String(decoding: out.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func == (lhs: X509Certificate, rhs: X509Certificate) -> Bool { lhs.derRepresentation == rhs.derRepresentation }
    public func hash(into hasher: inout Hasher) { hasher.combine(derRepresentation) }
    public var description: String { "X509Certificate(\(subject), issued by \(issuer))" }
}

/// What to put in a certificate built for a test PKI.
public struct X509Profile: Sendable {
    public var country: String?
    public var organization: String?
    public var commonName: String
    public var serialNumber: [UInt8]
    /// Seconds of validity from now (and 60 s back-dating, for clock skew).
    public var validity: Int
    public var basicConstraints: String?
    public var keyUsage: String?
    public var extendedKeyUsage: String?
    public var subjectAltName: String?
    public var certificatePolicies: String?

    public init(country: String? = nil, organization: String? = nil, commonName: String, serialNumber: [UInt8] = SecureRandom.bytes(8),
                validity: Int = 10 * 365 * 86_400, basicConstraints: String? = nil, keyUsage: String? = nil,
                extendedKeyUsage: String? = nil, subjectAltName: String? = nil, certificatePolicies: String? = nil) {
        self.country = country
        self.organization = organization
        self.commonName = commonName
        self.serialNumber = serialNumber.first.map { $0 & 0x7F == $0 ? serialNumber : [0x00] + serialNumber } ?? [0x01]
        self.validity = validity
        self.basicConstraints = basicConstraints
        self.keyUsage = keyUsage
        self.extendedKeyUsage = extendedKeyUsage
        self.subjectAltName = subjectAltName
        self.certificatePolicies = certificatePolicies
    }
}

extension X509Certificate {
    /// Builds and signs a certificate for `subjectKey` with `issuerKey` (self-signed when `issuer` is nil).
    public static func issue(_ profile: X509Profile, subjectKey: ECPublicKey, issuerKey: ECPrivateKey, issuer: X509Certificate?)
        throws(CryptoError) -> X509Certificate
    {
        let x509 = profile.serialNumber.withUnsafeBufferPointer { serial in
            m2m_x509_build(subjectKey.box.pointer, issuerKey.box.pointer, issuer?.box.pointer, profile.country, profile.organization,
                           profile.commonName, serial.baseAddress, serial.count, -60, profile.validity, profile.basicConstraints,
                           profile.keyUsage, profile.extendedKeyUsage, profile.subjectAltName, profile.certificatePolicies)
        }
        guard let x509 else { throw CryptoError.openSSL(.openSSLFailure, "building certificate \(profile.commonName)") }
        return try X509Certificate(box: X509Box(x509))
    }

    /// Verifies this certificate up to `root` through `intermediates`, at `time` (default now).
    public func verify(root: X509Certificate, intermediates: [X509Certificate] = [], at time: Timestamp? = nil) throws(CryptoError) {
        var chain: [OpaquePointer?] = intermediates.map { $0.box.pointer }
        var error: Int32 = 0
        var depth: Int32 = 0
        let ok = chain.withUnsafeMutableBufferPointer { buffer in
            m2m_x509_verify_chain(box.pointer, buffer.baseAddress, Int32(buffer.count), root.box.pointer,
                                  time.map { Int($0.seconds) } ?? 0, &error, &depth)
        }
        guard ok == 1 else {
            _ = OpenSSLErrorStack.drain()
            let reason = X509_verify_cert_error_string(Int(error)).map { String(cString: $0) } ?? "error \(error)"
            throw CryptoError(code: .invalidCertificate, detail: "chain does not verify at depth \(depth): \(reason)")
        }
    }
}

/// The eUICC's certificate chain: CERT.CI (X.509, trust anchor) → CERT.EUM (X.509) → CERT.ECASD.ECKA
/// (GP format, signed by the EUM key). Returns PK.ECASD.ECKA once all links hold.
public enum EUICCChain {
    public static func verify(ecasdCertificate: GPCertificate, eum: X509Certificate, ci: X509Certificate, at time: Timestamp? = nil)
        throws(CryptoError) -> ECPublicKey
    {
        try eum.verify(root: ci, at: time)
        try GPCertificateVerifier.verify(ecasdCertificate, issuer: eum.publicKey)
        return try ecasdCertificate.publicKey(defaultCurve: eum.publicKey.curve)
    }
}
