// Mutual TLS for the off-card interfaces (issue #8; docs/server.md): a role's TLS identity (its
// certificate chain and private key, PEM) and the CAs it trusts for its peers, turned into NIOSSL
// configurations; and the peer's entity, read from its certificate's subjectAltName registeredID
// (the platform's TLS certificates name their entity's OID there: docs/pki.md).
//
// TLS keys are P-256: NIOSSL's BoringSSL cannot load brainpool certificates (ARCHITECTURE.md); the
// GlobalPlatform PKI of the cards may be on either curve, independently.

public import M2MCore
import M2MCrypto
public import NIOSSL

/// A TLS identity and the roots its peers must chain to.
public struct TLSCredentials: Sendable {
    /// The certificate, then its issuers (PEM).
    public var certificateChainPEM: String
    /// The private key (PKCS#8 PEM): a secret — never logged.
    public var privateKeyPEM: String
    /// The CAs peers' certificates must chain to (PEM).
    public var trustRootsPEM: [String]

    public init(certificateChainPEM: String, privateKeyPEM: String, trustRootsPEM: [String]) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.trustRootsPEM = trustRootsPEM
    }

    func chain() throws -> [NIOSSLCertificateSource] {
        try NIOSSLCertificate.fromPEMBytes(Array(certificateChainPEM.utf8)).map { .certificate($0) }
    }

    func key() throws -> NIOSSLPrivateKeySource {
        .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem))
    }

    func roots() throws -> NIOSSLTrustRoots {
        .certificates(try trustRootsPEM.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) })
    }

    /// A server that requires a client certificate chaining to the trust roots (TLS 1.2 or 1.3).
    public func serverConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: try chain(), privateKey: try key())
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = try roots()
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// A client presenting this identity and checking the server's certificate (chain and host name).
    public func clientConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = try chain()
        configuration.privateKey = try key()
        configuration.trustRoots = try roots()
        configuration.certificateVerification = .fullVerification
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }
}

public enum PeerIdentity {
    /// The entity OID a (verified) peer certificate names in its subjectAltName registeredID.
    public static func entityID(of certificate: NIOSSLCertificate) -> OID? {
        guard let der = try? certificate.toDERBytes(), let parsed = try? X509Certificate(derRepresentation: der) else { return nil }
        return parsed.registeredIDs.first
    }
}
