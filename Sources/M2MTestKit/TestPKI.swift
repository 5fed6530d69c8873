// A complete test PKI for development, tests and the demo: `m2mrsp pki init`.
//
//   CI (X.509, self-signed)  ── signs ──▶ EUM (X.509), CERT.DP.ECDSA (GP, C8=01), CERT.SR.ECDSA (GP, C8=02)
//   EUM                      ── signs ──▶ CERT.ECASD.ECKA (GP) of each emulated eUICC
//   TLS CA (X.509, P-256)    ── signs ──▶ TLS server/client certificates of every role
//
// eSIM keys are on the chosen curve (P-256 or brainpoolP256r1). TLS keys are always P-256: the TLS
// stack (NIOSSL's BoringSSL) cannot load brainpool certificates, and in GSMA's scheme the TLS
// certificates are a separate concern from the eUICC PKI (docs/pki.md). Every private key is a file
// of its own, in the folder of the role that owns it, so a role is configured with its own keys
// only. All of it is TEST material: the CI's private key exists only here.

public import Foundation
public import M2MCore
public import M2MCrypto
public import M2MWire

public struct TestPKI: Sendable {
    public struct Role: Sendable {
        public let name: String
        public let entityID: OID
        /// The eSIM signing key and GP certificate (SM-DP, SM-SR), when the role has one.
        public let key: ECPrivateKey?
        public let certificate: GPCertificate?
        /// TLS identities (P-256).
        public let tlsServer: (certificate: X509Certificate, key: ECPrivateKey)?
        public let tlsClient: (certificate: X509Certificate, key: ECPrivateKey)
    }

    public let curve: Curve
    public let ciKey: ECPrivateKey
    public let ci: X509Certificate
    public let eumKey: ECPrivateKey
    public let eum: X509Certificate
    public let tlsCAKey: ECPrivateKey
    public let tlsCA: X509Certificate
    public let smdp: Role
    public let smsr: Role
    /// A second SM-SR (the new one of an SM-SR change: ES7, docs/smsr-change.md).
    public let smsr2: Role
    public let mno: Role
    public let m2msp: Role
    public let eumRole: Role
    /// One sample eUICC: its ECASD key and CERT.ECASD.ECKA.
    public let sampleECASDKey: ECPrivateKey
    public let sampleECASDCertificate: GPCertificate
    public let sampleEID: EID

    public static let ciID: OID = "1.3.6.1.4.1.99999.0.1"

    /// Generates everything on `curve`.
    public static func generate(curve: Curve) throws(CryptoError) -> TestPKI {
        try TestPKI(curve: curve)
    }

    init(curve: Curve) throws(CryptoError) {
        self.curve = curve
        let years20 = 20 * 365 * 86_400
        ciKey = try ECPrivateKey(generatingOn: curve)
        ci = try X509Certificate.issue(
            X509Profile(country: "XX", organization: "M2MRSP test PKI", commonName: "M2MRSP Test CI (TEST ONLY)", validity: years20,
                        basicConstraints: "critical,CA:TRUE", keyUsage: "critical,keyCertSign,cRLSign"),
            subjectKey: ciKey.publicKey, issuerKey: ciKey, issuer: nil)
        eumKey = try ECPrivateKey(generatingOn: curve)
        eum = try X509Certificate.issue(
            X509Profile(country: "XX", organization: "M2MRSP test EUM", commonName: "M2MRSP Test EUM (TEST ONLY)", validity: years20,
                        basicConstraints: "critical,CA:TRUE,pathlen:0", keyUsage: "critical,keyCertSign,digitalSignature"),
            subjectKey: eumKey.publicKey, issuerKey: ciKey, issuer: ci)
        tlsCAKey = try ECPrivateKey(generatingOn: .p256)
        tlsCA = try X509Certificate.issue(
            X509Profile(country: "XX", organization: "M2MRSP test PKI", commonName: "M2MRSP Test TLS CA (TEST ONLY)", validity: years20,
                        basicConstraints: "critical,CA:TRUE", keyUsage: "critical,keyCertSign,cRLSign"),
            subjectKey: tlsCAKey.publicKey, issuerKey: tlsCAKey, issuer: nil)

        let tlsCAKey = self.tlsCAKey
        let tlsCA = self.tlsCA
        let ciKey = self.ciKey
        func tls(_ name: String, _ id: OID, server: Bool) throws(CryptoError) -> (certificate: X509Certificate, key: ECPrivateKey) {
            let key = try ECPrivateKey(generatingOn: .p256)
            let certificate = try X509Certificate.issue(
                X509Profile(country: "XX", organization: "M2MRSP test \(name)", commonName: "\(name) \(server ? "server" : "client") (TEST ONLY)",
                            validity: 5 * 365 * 86_400, basicConstraints: "critical,CA:FALSE", keyUsage: "critical,digitalSignature",
                            extendedKeyUsage: server ? "serverAuth" : "clientAuth",
                            subjectAltName: server ? "DNS:localhost,IP:127.0.0.1,RID:\(id.text)" : "RID:\(id.text)"),
                subjectKey: key.publicKey, issuerKey: tlsCAKey, issuer: tlsCA)
            return (certificate, key)
        }
        let ciKeyID = Array(SHA256.hash(ciKey.publicKey.x962Representation).prefix(8))
        let expires = TestPKI.bcdDate(yearsFromNow: 20)
        func gpCertificate(_ role: GPCertificate.Role, key: ECPrivateKey, serial: [UInt8], subject: [UInt8]) throws(CryptoError) -> GPCertificate {
            try GPCertificateVerifier.sign(
                GPCertificate(serialNumber: serial, caIdentifier: ciKeyID, subjectIdentifier: subject, keyUsage: [0x00, 0x82],
                              expirationDate: expires, discretionaryData: [TLV(0xC8, [role.rawValue])],
                              publicKeyPoint: key.publicKey.x962Representation, keyParameterReference: curve.keyParameterReference),
                with: ciKey)
        }
        let smdpKey = try ECPrivateKey(generatingOn: curve)
        let smsrKey = try ECPrivateKey(generatingOn: curve)
        let smdpID: OID = "1.3.6.1.4.1.99999.3.1"
        let smsrID: OID = "1.3.6.1.4.1.99999.2.1"
        smdp = Role(name: "SM-DP", entityID: smdpID, key: smdpKey,
                    certificate: try gpCertificate(.smdp, key: smdpKey, serial: [0x01], subject: Array(smdpID.text.utf8.prefix(16))),
                    tlsServer: try tls("SM-DP", smdpID, server: true), tlsClient: try tls("SM-DP", smdpID, server: false))
        smsr = Role(name: "SM-SR", entityID: smsrID, key: smsrKey,
                    certificate: try gpCertificate(.smsr, key: smsrKey, serial: [0x02], subject: Array(smsrID.text.utf8.prefix(16))),
                    tlsServer: try tls("SM-SR", smsrID, server: true), tlsClient: try tls("SM-SR", smsrID, server: false))
        let smsr2Key = try ECPrivateKey(generatingOn: curve)
        let smsr2ID: OID = "1.3.6.1.4.1.99999.2.2"
        smsr2 = Role(name: "SM-SR2", entityID: smsr2ID, key: smsr2Key,
                     certificate: try gpCertificate(.smsr, key: smsr2Key, serial: [0x03], subject: Array(smsr2ID.text.utf8.prefix(16))),
                     tlsServer: try tls("SM-SR2", smsr2ID, server: true), tlsClient: try tls("SM-SR2", smsr2ID, server: false))
        mno = Role(name: "MNO", entityID: "1.3.6.1.4.1.99999.4.1", key: nil, certificate: nil, tlsServer: try tls("MNO", "1.3.6.1.4.1.99999.4.1", server: true),
                   tlsClient: try tls("MNO", "1.3.6.1.4.1.99999.4.1", server: false))
        m2msp = Role(name: "M2M SP", entityID: "1.3.6.1.4.1.99999.5.1", key: nil, certificate: nil,
                     tlsServer: try tls("M2M SP", "1.3.6.1.4.1.99999.5.1", server: true), tlsClient: try tls("M2M SP", "1.3.6.1.4.1.99999.5.1", server: false))
        eumRole = Role(name: "EUM", entityID: "1.3.6.1.4.1.99999.1.1", key: nil, certificate: nil, tlsServer: nil,
                       tlsClient: try tls("EUM", "1.3.6.1.4.1.99999.1.1", server: false))
        sampleEID = try! EID(prefix30: "890490320000000000000000000001")
        sampleECASDKey = try ECPrivateKey(generatingOn: curve)
        sampleECASDCertificate = try TestPKI.ecasdCertificate(for: sampleECASDKey.publicKey, eid: sampleEID, eumKey: eumKey, curve: curve)
    }

    /// CERT.ECASD.ECKA for an eUICC, signed by the EUM (what an emulated fleet needs for each card).
    public static func ecasdCertificate(for key: ECPublicKey, eid: EID, eumKey: ECPrivateKey, curve: Curve) throws(CryptoError) -> GPCertificate {
        try GPCertificateVerifier.sign(
            GPCertificate(serialNumber: Array(eid.bytes.suffix(8)), caIdentifier: Array(SHA256.hash(eumKey.publicKey.x962Representation).prefix(8)),
                          subjectIdentifier: eid.bytes, keyUsage: [0x00, 0x80], expirationDate: bcdDate(yearsFromNow: 30),
                          discretionaryData: [], publicKeyPoint: key.x962Representation, keyParameterReference: curve.keyParameterReference),
            with: eumKey)
    }

    static func bcdDate(yearsFromNow years: Int) -> [UInt8] {
        let now = SystemClock().now().text  // YYYY-MM-DD…
        let year = (Int(now.prefix(4)) ?? 2026) + years
        return GPCertificate.bcdDate(year: year, month: 12, day: 31)
    }

    // MARK: Files

    /// Writes the PKI under `directory` (see docs/pki.md for the layout). Returns the files written.
    @discardableResult
    public func write(to directory: URL) throws -> [String] {
        var written: [String] = []
        let fm = FileManager.default
        func put(_ path: String, _ data: Data, secret: Bool = false) throws {
            let url = directory.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try data.write(to: url, options: .atomic)
            if secret { try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path) }
            written.append(path)
        }
        func text(_ path: String, _ s: String, secret: Bool = false) throws { try put(path, Data(s.utf8), secret: secret) }
        let banner = "# TEST KEY — generated by `m2mrsp pki init` for development and tests only. Never use in production.\n"
        try text("ci/ci.crt.pem", ci.pem)
        try text("ci/ci.key.pem", banner + ciKey.pkcs8PEM, secret: true)
        try text("eum/eum.crt.pem", eum.pem)
        try text("eum/eum.key.pem", banner + eumKey.pkcs8PEM, secret: true)
        try text("eum/ca-chain.pem", eum.pem + ci.pem)
        try text("tls/tls-ca.crt.pem", tlsCA.pem)
        try text("tls/tls-ca.key.pem", banner + tlsCAKey.pkcs8PEM, secret: true)
        for role in [smdp, smsr, smsr2, mno, m2msp, eumRole] {
            let folder = role.name.lowercased().replacingOccurrences(of: " ", with: "").replacingOccurrences(of: "-", with: "")
            if let key = role.key, let certificate = role.certificate {
                let kind = role.name == "SM-DP" ? "dp" : "sr"
                try put("\(folder)/cert-\(kind)-ecdsa.gpcert", Data(certificate.encoded))
                try text("\(folder)/cert-\(kind)-ecdsa.hex", Hex.encode(certificate.encoded) + "\n")
                try text("\(folder)/sk-\(kind)-ecdsa.key.pem", banner + key.pkcs8PEM, secret: true)
            }
            if let server = role.tlsServer {
                try text("\(folder)/tls-server.crt.pem", server.certificate.pem + tlsCA.pem)
                try text("\(folder)/tls-server.key.pem", banner + server.key.pkcs8PEM, secret: true)
            }
            try text("\(folder)/tls-client.crt.pem", role.tlsClient.certificate.pem + tlsCA.pem)
            try text("\(folder)/tls-client.key.pem", banner + role.tlsClient.key.pkcs8PEM, secret: true)
            try text("\(folder)/tls-ca.crt.pem", tlsCA.pem)
            try text("\(folder)/ci.crt.pem", ci.pem)
        }
        try text("euicc/ecasd-sample.key.pem", banner + sampleECASDKey.pkcs8PEM, secret: true)
        try put("euicc/cert-ecasd-ecka-sample.gpcert", Data(sampleECASDCertificate.encoded))
        try text("euicc/cert-ecasd-ecka-sample.hex", Hex.encode(sampleECASDCertificate.encoded) + "\n")
        try text("euicc/sample.eid", sampleEID.text + "\n")
        try text("euicc/ci.crt.pem", ci.pem)
        let manifest: [String: Any] = [
            "testOnly": true, "curve": curve.rawValue, "tlsCurve": Curve.p256.rawValue,
            "ci": ["id": TestPKI.ciID.text, "certificate": "ci/ci.crt.pem"],
            "eum": ["id": eumRole.entityID.text, "certificate": "eum/eum.crt.pem", "key": "eum/eum.key.pem"],
            "smdp": ["id": smdp.entityID.text, "gpCertificate": "smdp/cert-dp-ecdsa.gpcert"],
            "smsr": ["id": smsr.entityID.text, "gpCertificate": "smsr/cert-sr-ecdsa.gpcert"],
            "smsr2": ["id": smsr2.entityID.text, "gpCertificate": "smsr2/cert-sr-ecdsa.gpcert"],
            "mno": ["id": mno.entityID.text], "m2msp": ["id": m2msp.entityID.text],
            "sampleEUICC": ["eid": sampleEID.text, "ecasdCertificate": "euicc/cert-ecasd-ecka-sample.gpcert"],
        ]
        try put("pki.json", try JSONSerialization.data(withJSONObject: manifest, options: [.prettyPrinted, .sortedKeys]))
        try text("README.md", """
            # Test PKI (TEST ONLY)

            Generated by `m2mrsp pki init` on curve \(curve.rawValue). Every private key here is a labelled test key.
            Each folder belongs to one role; configure a role with its own folder only. The CI's private key
            (`ci/ci.key.pem`) exists only here: no running role needs it. Layout and checks: docs/pki.md.

            """)
        return written.sorted()
    }
}
