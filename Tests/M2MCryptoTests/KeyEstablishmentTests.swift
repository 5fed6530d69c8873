// Key establishment scenario #3: the real-card vector (our SM-DP side reproduces the receipt the
// card returned) and full host ↔ card runs on both curves, with the negative cases.

import M2MCore
import M2MCrypto
import M2MWire
import Testing

struct TestPKI {
    let curve: Curve
    let ci: ECPrivateKey
    let dp: ECPrivateKey
    let ecasd: ECPrivateKey
    let dpCertificate: GPCertificate

    init(curve: Curve, role: GPCertificate.Role = .smdp) throws {
        self.curve = curve
        ci = try ECPrivateKey(generatingOn: curve)
        dp = try ECPrivateKey(generatingOn: curve)
        ecasd = try ECPrivateKey(generatingOn: curve)
        let unsigned = GPCertificate(
            serialNumber: [0x02], caIdentifier: [0x02], subjectIdentifier: [0x02], keyUsage: [0x88],
            expirationDate: GPCertificate.bcdDate(year: 2145, month: 1, day: 1), discretionaryData: [TLV(0xC8, [role.rawValue])],
            publicKeyPoint: dp.publicKey.x962Representation, keyParameterReference: curve.keyParameterReference)
        dpCertificate = try GPCertificateVerifier.sign(unsigned, with: ci)
    }
}

@Suite("Key establishment (scenario #3)")
struct KeyEstablishmentTests {
    @Test("Real card (test vector 4): shared secret, X9.63 key data, and the card's receipt")
    func realCard() throws {
        let v = RealCardVectors.file.key_establishment
        #expect(try X963KDF.derive(sharedSecret: hex(v.shared_secret), sharedInfo: hex(v.shared_info), length: 64).bytes == hex(v.key_data))
        let ecasd = try ECPublicKey(x962Representation: hex(v.pk_ecasd_ecka), curve: .p256)
        let pki = try TestPKI(curve: .p256)
        var host = try KeyEstablishmentHost(
            certificate: pki.dpCertificate, signingKey: pki.dp, ecasdPublicKey: ecasd,
            ephemeralKey: try ECPrivateKey(rawScalar: hex(v.esk_dp_ecka), curve: .p256))
        let second = try host.keyAgreementData(cardResponse: TLV(0x85, [UInt8](repeating: 0x11, count: 16)).encoded)
        // The CRT we send is the real one, byte for byte.
        #expect(Array(second[3..<(3 + 23)]) == hex(v.crt))
        #expect(Array(second[0..<3]) == hex("3A0217"))
        let keys = try host.processReceipt(cardResponse: TLV(0x86, hex(v.receipt)).encoded)
        #expect(keys.enc.bytes == hex("5b1e9a222561b351deeb5542442c82c1"))
        #expect(keys.mac.bytes == hex("5ea8297e11e4f73feb9e88c16340b3eb"))
        #expect(keys.dek.bytes == hex("3f6511403d11a9e107aa51f8f0069390"))
        #expect(keys.keyVersion == 0x30)
        var wrong = hex(v.receipt)
        wrong[0] ^= 1
        #expect(throws: CryptoError(code: .invalidMAC)) { try host.processReceipt(cardResponse: TLV(0x86, wrong).encoded) }
    }

    @Test("GP certificate: byte-exact round trip, verification, role", arguments: Curve.allCases)
    func certificate(curve: Curve) throws {
        let pki = try TestPKI(curve: curve)
        let encoded = pki.dpCertificate.encoded
        let parsed = try GPCertificate(encoded: encoded)
        #expect(parsed == pki.dpCertificate)
        #expect(parsed.encoded == encoded)
        #expect(parsed.role == .smdp)
        try GPCertificateVerifier.verify(parsed, issuer: pki.ci.publicKey)
        #expect(throws: CryptoError(code: .invalidCertificate)) { try GPCertificateVerifier.verify(parsed, issuer: pki.dp.publicKey) }
        var tampered = parsed
        tampered.serialNumber = [0x03]
        #expect(throws: CryptoError(code: .invalidCertificate)) { try GPCertificateVerifier.verify(tampered, issuer: pki.ci.publicKey) }
        #expect(try parsed.publicKey(defaultCurve: .p256).curve == curve)
    }

    @Test("Host ↔ card on both curves: same keys, DR variant, then the keys open an SCP03t session",
          arguments: [(Curve.p256, UInt8(0x09)), (.brainpoolP256r1, 0x09), (.p256, 0x0B)])
    func roundTrip(curve: Curve, scenario: UInt8) throws {
        let pki = try TestPKI(curve: curve)
        let parameters = KeyEstablishmentParameters(scenarioParameter: scenario)
        var host = try KeyEstablishmentHost(certificate: pki.dpCertificate, signingKey: pki.dp, ecasdPublicKey: pki.ecasd.publicKey,
                                            parameters: parameters)
        var card = KeyEstablishmentCard(ecasdKey: pki.ecasd, ciPublicKey: pki.ci.publicKey, expectedRole: .smdp)
        let challenge = try card.processCertificate(host.certificateData())
        let (answer, cardKeys) = try card.processKeyAgreement(host.keyAgreementData(cardResponse: challenge))
        let hostKeys = try host.processReceipt(cardResponse: answer)
        #expect(hostKeys == cardKeys)
        #expect(hostKeys.enc != hostKeys.mac)
        #expect(try TLV.parseAll(answer).contains { $0.tag == 0x85 } == parameters.usesDerivationRandom)

        let aid = hex("A0000005591010FFFFFFFF8900001100")
        var sHost = SCP03tHost(keys: hostKeys, aid: aid)
        var sCard = SCP03tCard(keys: cardKeys, aid: aid)
        _ = sCard.process(sHost.initializeUpdate())
        #expect(sCard.process(try sHost.precomputedExternalAuthenticate(sequenceCounter: 1)) == .answer(TLV(0x85, [])))
    }

    @Test("Negative: CI mismatch, wrong role, tampered signature, wrong challenge, garbage, out of order")
    func negative() throws {
        let pki = try TestPKI(curve: .p256)
        let otherCI = try ECPrivateKey(generatingOn: .p256)
        var host = try KeyEstablishmentHost(certificate: pki.dpCertificate, signingKey: pki.dp, ecasdPublicKey: pki.ecasd.publicKey)

        var strangerCard = KeyEstablishmentCard(ecasdKey: pki.ecasd, ciPublicKey: otherCI.publicKey, expectedRole: .smdp)
        #expect(throws: CryptoError(code: .invalidCertificate)) { try strangerCard.processCertificate(host.certificateData()) }

        var srCard = KeyEstablishmentCard(ecasdKey: pki.ecasd, ciPublicKey: pki.ci.publicKey, expectedRole: .smsr)
        #expect(throws: CryptoError(code: .invalidCertificate)) { try srCard.processCertificate(host.certificateData()) }

        var card = KeyEstablishmentCard(ecasdKey: pki.ecasd, ciPublicKey: pki.ci.publicKey, expectedRole: .smdp)
        #expect(throws: CryptoError(code: .wrongState)) { try card.processKeyAgreement([0x3A, 0x02, 0x00]) }
        #expect(throws: CryptoError(code: .invalidInput)) { try card.processCertificate([0x3A, 0x01, 0x05, 1, 2]) }

        let challenge = try card.processCertificate(host.certificateData())
        var data = try host.keyAgreementData(cardResponse: challenge)
        data[data.count - 5] ^= 0x01  // inside the signature
        #expect(throws: CryptoError(code: .invalidSignature)) { try card.processKeyAgreement(data) }

        // Signed over another challenge.
        let challenge2 = try card.processCertificate(host.certificateData())
        _ = challenge2
        let replayed = try host.keyAgreementData(cardResponse: TLV(0x85, [UInt8](repeating: 0xAA, count: 16)).encoded)
        #expect(throws: CryptoError(code: .invalidSignature)) { try card.processKeyAgreement(replayed) }

        #expect(throws: CryptoError(code: .invalidInput)) { try host.keyAgreementData(cardResponse: [0x86, 0x00]) }
        #expect(throws: CryptoError(code: .unsupported)) { try KeyEstablishmentParameters(crt: TLV(0xA6, children: [TLV(0x90, [0x01, 0x00])])) }
    }
}
