// Key establishment, GP Amendment E scenario #3 (ECKA-EG with certificate), both sides, as
// SGP.02 uses it for ES8.EstablishISDPKeySet (SM-DP ↔ ISD-P) and ES5.EstablishISDRKeySet (new SM-SR ↔
// ISD-R). spec/sgp02-oncard.md §2.3 and §4 (verified against a real card):
//
//   host → card  STORE DATA 3A01 { CERT.DP.ECDSA (7F21 …) }           card: verify with PK.CI, role C8
//   card → host  85 10 <random challenge RC>
//   host → card  STORE DATA 3A02 { A6 CRT } 7F49 <ePK> 5F37 <r‖s>       signed: 3A02‖L‖A6 … ‖ 7F49‖L‖ePK ‖ 0085‖L‖RC
//   card         ShS = ECDH(SK.ECASD, ePK); KeyData = X9.63-SHA256(ShS, SharedInfo = 95‖80‖81 values [‖ DR])
//                receipt key ‖ K-ENC ‖ K-MAC ‖ K-DEK; receipt = CMAC(receipt key, A6 TLV as sent [‖ 85 L DR])
//   card → host  [85 L DR] 86 10 <receipt>
//   host         same ShS from eSK and PK.ECASD; checks the receipt; the new SCP03 key set is ready.

public import M2MWire

/// The A6 control reference template of scenario #3 and what it implies.
public struct KeyEstablishmentParameters: Sendable, Hashable {
    /// Tag 90: scenario 03 and its parameter (09 in the real trace: certificate verification + b1).
    public var scenarioParameter: UInt8
    /// Tag 95: key usage qualifier of the created keys (10 = SCP03 set of three keys).
    public var keyUsage: UInt8
    /// Tag 80: key type (88 = AES).
    public var keyType: UInt8
    /// Tag 81: key length in bytes.
    public var keyLength: UInt8
    /// Tag 82: first key identifier.
    public var firstKeyID: UInt8
    /// Tag 83: key version number of the new SCP03 key set (30 for an ISD-P).
    public var keyVersion: UInt8
    /// Tag 91: initial sequence counter (empty in the real trace).
    public var initialSequenceCounter: [UInt8]

    public init(scenarioParameter: UInt8 = 0x09, keyUsage: UInt8 = 0x10, keyType: UInt8 = 0x88, keyLength: UInt8 = 0x10,
                firstKeyID: UInt8 = 0x01, keyVersion: UInt8 = 0x30, initialSequenceCounter: [UInt8] = []) {
        self.scenarioParameter = scenarioParameter
        self.keyUsage = keyUsage
        self.keyType = keyType
        self.keyLength = keyLength
        self.firstKeyID = firstKeyID
        self.keyVersion = keyVersion
        self.initialSequenceCounter = initialSequenceCounter
    }

    /// Scenario parameter bit 2: a derivation random (DR) from the card enters the derivation.
    public var usesDerivationRandom: Bool { scenarioParameter & 0x02 != 0 }

    /// Keys created: three (ENC, MAC, DEK) for usage 10, one otherwise.
    public var keyCount: Int { keyUsage == 0x10 ? 3 : 1 }

    /// The A6 TLV exactly as sent.
    public var crt: TLV {
        TLV(0xA6, children: [
            TLV(0x90, [0x03, scenarioParameter]), TLV(0x95, [keyUsage]), TLV(0x80, [keyType]), TLV(0x81, [keyLength]),
            TLV(0x82, [firstKeyID]), TLV(0x83, [keyVersion]), TLV(0x91, initialSequenceCounter),
        ])
    }

    /// Reads an A6 TLV (tags in any order; 90 must name scenario 03).
    public init(crt: TLV) throws(CryptoError) {
        guard crt.tag == 0xA6, let children = try? crt.children() else {
            throw CryptoError(code: .invalidInput, detail: "not an A6 control reference template")
        }
        func one(_ tag: TLVTag) throws(CryptoError) -> UInt8 {
            guard let value = children.first(where: { $0.tag == tag })?.value, value.count == 1 else {
                throw CryptoError(code: .invalidInput, detail: "A6 lacks a one-byte \(tag)")
            }
            return value[0]
        }
        guard let scenario = children.first(where: { $0.tag == 0x90 })?.value, scenario.count == 2, scenario[0] == 0x03 else {
            throw CryptoError(code: .unsupported, detail: "only key establishment scenario #3 is supported")
        }
        self.init(scenarioParameter: scenario[1], keyUsage: try one(0x95), keyType: try one(0x80), keyLength: try one(0x81),
                  firstKeyID: try one(0x82), keyVersion: try one(0x83),
                  initialSequenceCounter: children.first(where: { $0.tag == 0x91 })?.value ?? [])
        guard keyType == 0x88, [16, 24, 32].contains(Int(keyLength)) else {
            throw CryptoError(code: .unsupported, detail: "only AES keys of 16, 24 or 32 bytes")
        }
    }

    /// SharedInfo: key usage ‖ key type ‖ key length [‖ DR].
    func sharedInfo(derivationRandom: [UInt8]?) -> [UInt8] {
        [keyUsage, keyType, keyLength] + (derivationRandom ?? [])
    }
}

/// Key derivation common to both sides.
enum ScenarioThree {
    /// Splits X9.63 key data into the receipt key and the SCP03 key set.
    static func derive(sharedSecret: SecureBytes, parameters: KeyEstablishmentParameters, derivationRandom: [UInt8]?)
        throws(CryptoError) -> (receiptKey: SecureBytes, keys: SCP03Keys)
    {
        let length = Int(parameters.keyLength)
        let data = try X963KDF.derive(sharedSecret: sharedSecret, sharedInfo: parameters.sharedInfo(derivationRandom: derivationRandom),
                                      length: length * (1 + parameters.keyCount))
        let receiptKey = data[0..<length]
        let enc = data[length..<(2 * length)]
        let mac = parameters.keyCount == 3 ? data[(2 * length)..<(3 * length)] : enc
        let dek = parameters.keyCount == 3 ? data[(3 * length)..<(4 * length)] : enc
        return (receiptKey, SCP03Keys(keyVersion: parameters.keyVersion, enc: enc, mac: mac, dek: dek))
    }

    static func receipt(receiptKey: SecureBytes, crt: TLV, derivationRandom: [UInt8]?) throws(CryptoError) -> [UInt8] {
        var input = crt.encoded
        if let derivationRandom { input += TLV(0x85, derivationRandom).encoded }
        return try AESCMAC.mac(key: receiptKey, input)
    }

    /// The data the host signs: 3A02 DGI ‖ 7F49 ePK ‖ 0085 L RC.
    static func signedData(dgi: [UInt8], ephemeralKey: TLV, randomChallenge: [UInt8]) -> [UInt8] {
        dgi + ephemeralKey.encoded + [0x00, 0x85] + BERLength.encode(randomChallenge.count) + randomChallenge
    }
}

/// The off-card side (SM-DP, or the new SM-SR): holds its certificate and signing key, and learns
/// PK.ECASD.ECKA from the eUICC's certificate in the EIS.
public struct KeyEstablishmentHost: Sendable {
    public let certificate: GPCertificate
    let signingKey: ECPrivateKey
    public let ecasdPublicKey: ECPublicKey
    public let parameters: KeyEstablishmentParameters
    let ephemeralKey: ECPrivateKey
    var sent: (crt: TLV, challenge: [UInt8])?

    /// `ephemeralKey` is generated when not given (tests inject the real-card vector's eSK.DP).
    public init(certificate: GPCertificate, signingKey: ECPrivateKey, ecasdPublicKey: ECPublicKey,
                parameters: KeyEstablishmentParameters = .init(), ephemeralKey: ECPrivateKey? = nil) throws(CryptoError) {
        guard signingKey.curve == ecasdPublicKey.curve else {
            throw CryptoError(code: .invalidKey, detail: "SM key on \(signingKey.curve), eUICC key on \(ecasdPublicKey.curve)")
        }
        self.certificate = certificate
        self.signingKey = signingKey
        self.ecasdPublicKey = ecasdPublicKey
        self.parameters = parameters
        if let ephemeralKey {
            self.ephemeralKey = ephemeralKey
        } else {
            self.ephemeralKey = try ECPrivateKey(generatingOn: ecasdPublicKey.curve)
        }
    }

    /// STORE DATA data of the first command: DGI 3A01 with the certificate.
    public func certificateData() -> [UInt8] { DGI(0x3A01, certificate.encoded).encoded }

    /// STORE DATA data of the second command, given the card's answer to the first (85 L RC).
    public mutating func keyAgreementData(cardResponse: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let tlv = try? TLV.parseOne(cardResponse), tlv.tag == 0x85, !tlv.value.isEmpty else {
            throw CryptoError(code: .invalidInput, detail: "expected 85 <random challenge> from the card")
        }
        let crt = parameters.crt
        let dgi = DGI(0x3A02, crt.encoded).encoded
        let ePK = TLV(0x7F49, ephemeralKey.publicKey.x962Representation)
        let signature = try signingKey.signature(for: ScenarioThree.signedData(dgi: dgi, ephemeralKey: ePK, randomChallenge: tlv.value))
        sent = (crt, tlv.value)
        return dgi + ePK.encoded + TLV(0x5F37, signature.rawRepresentation).encoded
    }

    /// Checks the card's receipt ([85 L DR] 86 L receipt) and returns the new SCP03 key set.
    public func processReceipt(cardResponse: [UInt8]) throws(CryptoError) -> SCP03Keys {
        guard let sent else { throw CryptoError(code: .wrongState, detail: "send the key agreement data first") }
        guard let items = try? TLV.parseAll(cardResponse), let receipt = items.first(where: { $0.tag == 0x86 })?.value else {
            throw CryptoError(code: .invalidInput, detail: "expected 86 <receipt> from the card")
        }
        let dr = items.first(where: { $0.tag == 0x85 })?.value
        if parameters.usesDerivationRandom, dr == nil {
            throw CryptoError(code: .invalidInput, detail: "the card returned no derivation random")
        }
        let shared = try ephemeralKey.sharedSecret(with: ecasdPublicKey)
        let (receiptKey, keys) = try ScenarioThree.derive(sharedSecret: shared, parameters: parameters, derivationRandom: dr)
        let expected = try ScenarioThree.receipt(receiptKey: receiptKey, crt: sent.crt, derivationRandom: dr)
        guard ConstantTime.equal(expected, receipt) else { throw CryptoError(code: .invalidMAC, detail: "receipt does not match") }
        return keys
    }
}

/// The eUICC side (ECASD with the ISD-P or ISD-R): verifies the certificate against PK.CI, the
/// signed key agreement data against PK.DP/PK.SR, derives the keys and answers with the receipt.
public struct KeyEstablishmentCard: Sendable {
    let ecasdKey: ECAgreementKey
    let ciPublicKey: ECPublicKey
    public let expectedRole: GPCertificate.Role
    var peerKey: ECPublicKey?
    var randomChallenge: [UInt8]?

    public init(ecasdKey: ECPrivateKey, ciPublicKey: ECPublicKey, expectedRole: GPCertificate.Role) {
        self.init(ecasdKey: ECAgreementKey(ecasdKey), ciPublicKey: ciPublicKey, expectedRole: expectedRole)
    }

    /// With SK.ECASD.ECKA as an agreement-only key (no public point needed on the card side).
    public init(ecasdKey: ECAgreementKey, ciPublicKey: ECPublicKey, expectedRole: GPCertificate.Role) {
        self.ecasdKey = ecasdKey
        self.ciPublicKey = ciPublicKey
        self.expectedRole = expectedRole
    }

    /// Processes STORE DATA 3A01: verifies the certificate; answers 85 10 <RC>.
    public mutating func processCertificate(_ data: [UInt8], randomChallenge: [UInt8] = SecureRandom.bytes(16)) throws(CryptoError) -> [UInt8] {
        peerKey = nil
        var offset = 0
        guard let dgi = try? DGI.parse(data, offset: &offset), dgi.tag == 0x3A01, offset == data.count,
            let certificate = try? GPCertificate(encoded: dgi.value)
        else { throw CryptoError(code: .invalidInput, detail: "STORE DATA is not DGI 3A01 with a GP certificate") }
        try GPCertificateVerifier.verify(certificate, issuer: ciPublicKey)
        guard certificate.role == expectedRole else {
            throw CryptoError(code: .invalidCertificate, detail: "certificate role \(String(describing: certificate.role)) is not \(expectedRole)")
        }
        let key = try certificate.publicKey(defaultCurve: ecasdKey.curve)
        guard key.curve == ecasdKey.curve else { throw CryptoError(code: .invalidCertificate, detail: "certificate key is on \(key.curve)") }
        peerKey = key
        self.randomChallenge = randomChallenge
        return TLV(0x85, randomChallenge).encoded
    }

    /// Processes STORE DATA 3A02 ‖ 7F49 ‖ 5F37: verifies the signature, derives the keys and
    /// returns the answer ([85 DR] 86 receipt) with the new key set.
    public mutating func processKeyAgreement(_ data: [UInt8], derivationRandom: [UInt8]? = nil) throws(CryptoError)
        -> (response: [UInt8], keys: SCP03Keys)
    {
        guard let peerKey, let randomChallenge else { throw CryptoError(code: .wrongState, detail: "no verified certificate") }
        defer {
            self.peerKey = nil
            self.randomChallenge = nil
        }
        var offset = 0
        guard let dgi = try? DGI.parse(data, offset: &offset), dgi.tag == 0x3A02,
            let crt = try? TLV.parseOne(dgi.value),
            let ePKTLV = try? TLV.parse(data, offset: &offset), ePKTLV.tag == 0x7F49,
            let signatureTLV = try? TLV.parse(data, offset: &offset), signatureTLV.tag == 0x5F37, offset == data.count
        else { throw CryptoError(code: .invalidInput, detail: "STORE DATA is not 3A02 { A6 } 7F49 5F37") }
        let parameters = try KeyEstablishmentParameters(crt: crt)
        let dgiBytes = Array(data[0..<(data.count - ePKTLV.encoded.count - signatureTLV.encoded.count)])
        let signed = ScenarioThree.signedData(dgi: dgiBytes, ephemeralKey: ePKTLV, randomChallenge: randomChallenge)
        try peerKey.verify(try ECDSASignature(rawRepresentation: signatureTLV.value, curve: peerKey.curve), for: signed)
        // 7F49 carries the bare point in real traffic; njiwa wraps it in B0/F0: accept both.
        var point = ePKTLV.value
        if point.first == 0xB0, let inner = try? TLV.parseAll(point), let b0 = inner.first(where: { $0.tag == 0xB0 }) { point = b0.value }
        let ephemeral = try ECPublicKey(x962Representation: point, curve: ecasdKey.curve)
        let dr = parameters.usesDerivationRandom ? (derivationRandom ?? SecureRandom.bytes(16)) : nil
        let shared = try ecasdKey.sharedSecret(with: ephemeral)
        let (receiptKey, keys) = try ScenarioThree.derive(sharedSecret: shared, parameters: parameters, derivationRandom: dr)
        let receipt = try ScenarioThree.receipt(receiptKey: receiptKey, crt: crt, derivationRandom: dr)
        var response: [UInt8] = []
        if let dr { response += TLV(0x85, dr).encoded }
        response += TLV(0x86, receipt).encoded
        return (response, keys)
    }
}

/// Verifying and issuing GP-format certificates.
public enum GPCertificateVerifier {
    /// Checks the 5F37 signature (ECDSA-SHA256, r‖s) over the TLVs 93 … 7F49 with the issuer's key.
    public static func verify(_ certificate: GPCertificate, issuer: ECPublicKey) throws(CryptoError) {
        guard let signature = try? ECDSASignature(rawRepresentation: certificate.signature, curve: issuer.curve) else {
            throw CryptoError(code: .invalidCertificate, detail: "certificate signature is not r‖s on \(issuer.curve)")
        }
        guard issuer.isValidSignature(signature, for: certificate.signedData) else {
            throw CryptoError(code: .invalidCertificate, detail: "certificate signature does not verify with the issuer key")
        }
    }

    /// Signs a certificate's 93 … 7F49 with the issuer's key (test PKIs, emulated EUMs).
    public static func sign(_ certificate: GPCertificate, with issuerKey: ECPrivateKey) throws(CryptoError) -> GPCertificate {
        var signed = certificate
        signed.signature = try issuerKey.signature(for: certificate.signedData).rawRepresentation
        return signed
    }
}

extension GPCertificate {
    /// The certified public key (curve from the key parameter reference, else `defaultCurve`).
    public func publicKey(defaultCurve: Curve) throws(CryptoError) -> ECPublicKey {
        let curve: Curve
        if let reference = keyParameterReference {
            guard let known = Curve(keyParameterReference: reference) else {
                throw CryptoError(code: .unsupported, detail: "key parameter reference \(reference) is not supported")
            }
            curve = known
        } else {
            curve = defaultCurve
        }
        return try ECPublicKey(x962Representation: publicKeyPoint, curve: curve)
    }
}
