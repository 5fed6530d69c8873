// The EIS signature and the registration chain, on both curves, with a PKI from `pki init`'s
// generator; the X.509 parts are also checked with the stock `openssl verify`.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MRoles
import M2MSOAP
import M2MTestKit
import M2MWire
import Testing

@Suite("EIS signature and registration chain")
struct EISSignatureTests {
    static let pkis: [Curve: TestPKI] = {
        var map: [Curve: TestPKI] = [:]
        for curve in Curve.allCases { map[curve] = try! TestPKI.generate(curve: curve) }
        return map
    }()

    static func signedEIS(_ pki: TestPKI) throws -> EIS {
        var eis = SampleMessages.eis()
        eis.eumSignedInfo.eid = pki.sampleEID
        eis.eumSignedInfo.ecasd.keysets = [Keyset(version: 115, type: .ca, items: [
            .certificate(GPCertificateReference(index: 1, caID: TestPKI.ciID, value: HexBinary(pki.sampleECASDCertificate.encoded))),
        ])]
        eis.eumSignature = try EISSignature.sign(eis.eumSignedInfo, with: pki.eumKey, keyName: "EUM-TEST")
        return eis
    }

    @Test("Sign, send through SOAP, verify the chain and the signature", arguments: Curve.allCases)
    func roundTrip(curve: Curve) throws {
        let pki = Self.pkis[curve]!
        let eis = try Self.signedEIS(pki)
        // Through the wire: RegisterEIS envelope, indented, parsed back.
        var envelope = SampleMessages.registerEISEnvelope()
        envelope.body = .message(ES1.RegisterEISRequest(functionCallIdentifier: "fc", eis: eis))
        let received = try #require(try SOAPCodec.decode(SOAPCodec.encode(envelope)).message as? ES1.RegisterEISRequest).eis
        let ecasdKey = try EISSignature.verifyRegistration(received, eum: pki.eum, ci: pki.ci)
        #expect(ecasdKey == pki.sampleECASDKey.publicKey)
        // Formatting does not matter: the compact form verifies too.
        let compact = try #require(try SOAPCodec.decode(SOAPCodec.encode(envelope, indent: 0)).message as? ES1.RegisterEISRequest).eis
        try EISSignature.verify(compact, eumKey: pki.eum.publicKey)
    }

    @Test("The canonical forms written directly equal the written, read back and canonicalised forms", arguments: Curve.allCases)
    func canonicalFormsAgree(curve: Curve) throws {
        let pki = Self.pkis[curve]!
        let fleet = try Fleet(seed: Array("c14n".utf8), count: 3, curve: curve, ciPublicKey: pki.ci.publicKey,
                              eum: EUMIssuer(key: pki.eumKey, eumID: "1.3.6.1.4.1.99999.1.1"))
        var samples = [try Self.signedEIS(pki)]
        for index in 0..<3 {
            let info = try fleet.eumSignedInfo(at: index, productionDate: SystemClock().now())
            let signature = try EISSignature.sign(info, with: pki.eumKey, keyName: "EUM <&> \"key\"")
            samples.append(try fleet.eis(at: index, signedInfo: info, signature: signature, smsrID: "1.3.6.1.4.1.99999.2.1"))
        }
        for eis in samples {
            #expect(EISSignature.canonicalSignedInfo(eis.eumSignedInfo) == EISSignature.canonicalSignedInfoByReparsing(eis.eumSignedInfo))
            #expect(EISSignature.canonicalSignedInfoOfSignature(eis.eumSignature) == EISSignature.canonicalSignedInfoOfSignatureByReparsing(eis.eumSignature))
            try EISSignature.verify(eis, eumKey: pki.eum.publicKey)
        }
    }

    @Test("Any change to EumSignedInfo, the signature or the chain is refused", arguments: Curve.allCases)
    func tampering(curve: Curve) throws {
        let pki = Self.pkis[curve]!
        let eis = try Self.signedEIS(pki)
        var changed = eis
        changed.eumSignedInfo.platformType = "Other-Platform"
        #expect(throws: CryptoError(code: .invalidSignature)) { try EISSignature.verify(changed, eumKey: pki.eum.publicKey) }
        var badValue = eis
        badValue.eumSignature.signatureValue.bytes[5] ^= 1
        #expect(throws: CryptoError(code: .invalidSignature)) { try EISSignature.verify(badValue, eumKey: pki.eum.publicKey) }
        // Signed by another EUM.
        let other = Self.pkis[curve == .p256 ? .brainpoolP256r1 : .p256]!
        #expect(throws: CryptoError.self) { try EISSignature.verifyRegistration(eis, eum: other.eum, ci: other.ci) }
        // EUM certificate from another CI.
        #expect(throws: CryptoError(code: .invalidCertificate)) { try pki.eum.verify(root: other.ci) }
        // Expired at a time far in the future.
        #expect(throws: CryptoError(code: .invalidCertificate)) {
            try pki.eum.verify(root: pki.ci, at: Timestamp(seconds: 4_102_444_800 * 2))
        }
        var noCertificate = eis
        noCertificate.eumSignedInfo.ecasd.keysets = [Keyset(version: 1)]
        #expect(throws: CryptoError(code: .invalidCertificate)) { try EISSignature.verifyRegistration(noCertificate, eum: pki.eum, ci: pki.ci) }
    }

    @Test("pki init output: every X.509 part verifies with the stock openssl", arguments: Curve.allCases)
    func opensslVerify(curve: Curve) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("m2mrsp-pki-\(curve.rawValue)-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        let files = try Self.pkis[curve]!.write(to: directory)
        #expect(files.contains("ci/ci.key.pem"))
        let checks: [[String]] = [
            ["-CAfile", "ci/ci.crt.pem", "eum/eum.crt.pem"],
            ["-CAfile", "tls/tls-ca.crt.pem", "smsr/tls-server.crt.pem"],
            ["-CAfile", "tls/tls-ca.crt.pem", "smdp/tls-client.crt.pem"],
            ["-CAfile", "tls/tls-ca.crt.pem", "mno/tls-client.crt.pem"],
            ["-CAfile", "tls/tls-ca.crt.pem", "eum/tls-client.crt.pem"],
        ]
        for arguments in checks {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["openssl", "verify"] + arguments.map { $0.hasSuffix(".pem") ? directory.appendingPathComponent($0).path : $0 }
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "openssl verify \(arguments): \(output)")
            #expect(output.contains(": OK"))
        }
        // Private keys are not world-readable.
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent("ci/ci.key.pem").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // GP certificates re-read from disk verify against the CI.
        let pki = Self.pkis[curve]!
        let dp = try GPCertificate(encoded: Array(Data(contentsOf: directory.appendingPathComponent("smdp/cert-dp-ecdsa.gpcert"))))
        try GPCertificateVerifier.verify(dp, issuer: pki.ci.publicKey)
        #expect(dp.role == .smdp)
        let ci = try X509Certificate(pem: String(decoding: try Data(contentsOf: directory.appendingPathComponent("ci/ci.crt.pem")), as: UTF8.self))
        #expect(ci == pki.ci)
        #expect(ci.publicKey.curve == curve)
        try? FileManager.default.removeItem(at: directory)
    }
}
