// The EUM's signature over an EIS (EumSignature, ds:SignatureType): created by the EUM when it
// registers an eUICC (ES1.RegisterEIS) and verified by the SM-SR, together with the certificate
// chain CI → EUM → CERT.ECASD.ECKA. Canonicalisation and signature choices: docs/crypto.md.
//
//   digest    = SHA-256(exc-c14n(EumSignedInfo))                 Reference without URI (the EIS's own
//                                                                  EumSignedInfo), Transform exc-c14n
//   signature = ECDSA-SHA256(exc-c14n(ds:SignedInfo)), r‖s, base64  (XML-DSig 1.1 ecdsa-sha256)

public import M2MCore
public import M2MCrypto
import M2MSOAP
import M2MWire
import M2MXML

public enum EISSignature {
    /// exc-c14n of EumSignedInfo as this platform writes it, written directly in canonical form
    /// (XMLWriter(canonicalIn:)); the same bytes as ExclusiveC14N over the element written and read
    /// back (`canonicalSignedInfoByReparsing`, the tests' oracle), without the parse.
    public static func canonicalSignedInfo(_ info: EUMSignedInfo) -> [UInt8] {
        var writer = XMLWriter(canonicalIn: ["rps": Namespace.rps], capacity: 4096)
        info.write("rps:EumSignedInfo", to: &writer)
        return writer.bytes
    }

    /// exc-c14n of EumSignedInfo the long way: written, read back, canonicalised.
    public static func canonicalSignedInfoByReparsing(_ info: EUMSignedInfo) -> [UInt8] {
        ExclusiveC14N.canonicalize(element(named: "EumSignedInfo", namespace: Namespace.rps) { info.write("rps:EumSignedInfo", to: &$0) })
    }

    /// Signs `info` with the EUM's key.
    public static func sign(_ info: EUMSignedInfo, with key: ECPrivateKey, keyName: String? = nil) throws(CryptoError) -> XMLSignature {
        let digest = SHA256.hash(canonicalSignedInfo(info))
        var signature = XMLSignature(
            canonicalizationMethod: XMLSignature.exclusiveC14N, signatureMethod: XMLSignature.ecdsaSHA256,
            references: [.init(uri: nil, transforms: [XMLSignature.exclusiveC14N], digestMethod: XMLSignature.sha256,
                               digestValue: Base64Binary(digest))],
            signatureValue: Base64Binary([]), keyName: keyName)
        let value = try key.signature(for: canonicalSignedInfoOfSignature(signature))
        signature.signatureValue = Base64Binary(value.rawRepresentation)
        return signature
    }

    /// Verifies the EIS signature with the EUM's public key.
    public static func verify(_ eis: EIS, eumKey: ECPublicKey) throws(CryptoError) {
        let signature = eis.eumSignature
        guard signature.canonicalizationMethod == XMLSignature.exclusiveC14N, signature.signatureMethod == XMLSignature.ecdsaSHA256,
            signature.references.count == 1, let reference = signature.references.first,
            reference.digestMethod == XMLSignature.sha256, reference.transforms.allSatisfy({ $0 == XMLSignature.exclusiveC14N })
        else {
            throw CryptoError(code: .unsupported, detail: "EumSignature must use exc-c14n, ecdsa-sha256 and one sha256 reference")
        }
        let digest = SHA256.hash(canonicalSignedInfo(eis.eumSignedInfo))
        guard ConstantTime.equal(digest, reference.digestValue.bytes) else {
            throw CryptoError(code: .invalidSignature, detail: "EumSignedInfo digest does not match")
        }
        let value = try ECDSASignature(rawRepresentation: signature.signatureValue.bytes, curve: eumKey.curve)
        try eumKey.verify(value, for: canonicalSignedInfoOfSignature(signature))
    }

    /// Verifies everything an SM-SR checks at registration: CI → EUM (X.509), EUM → CERT.ECASD.ECKA
    /// (the GP certificate in the ECASD's CA key set) and the EIS signature. Returns PK.ECASD.ECKA.
    public static func verifyRegistration(_ eis: EIS, eum: X509Certificate, ci: X509Certificate, at time: Timestamp? = nil)
        throws(CryptoError) -> ECPublicKey
    {
        let certificates = eis.eumSignedInfo.ecasd.keysets.flatMap(\.items).compactMap { item -> GPCertificateReference? in
            if case .certificate(let c) = item { return c }
            return nil
        }
        guard let reference = certificates.first, let ecasd = try? GPCertificate(encoded: reference.value.bytes) else {
            throw CryptoError(code: .invalidCertificate, detail: "the EIS's ECASD has no GP certificate")
        }
        let key = try EUICCChain.verify(ecasdCertificate: ecasd, eum: eum, ci: ci, at: time)
        try verify(eis, eumKey: eum.publicKey)
        return key
    }

    /// exc-c14n of ds:SignedInfo of `signature`, written directly in canonical form.
    public static func canonicalSignedInfoOfSignature(_ signature: XMLSignature) -> [UInt8] {
        var writer = XMLWriter(canonicalIn: ["rps": Namespace.rps, "ds": Namespace.xmldsig], capacity: 1024)
        signature.writeSignedInfo(to: &writer)
        return writer.bytes
    }

    /// exc-c14n of ds:SignedInfo the long way: the signature written, read back, its SignedInfo canonicalised.
    public static func canonicalSignedInfoOfSignatureByReparsing(_ signature: XMLSignature) -> [UInt8] {
        let wrapper = element(named: "EumSignature", namespace: Namespace.rps) { signature.write("rps:EumSignature", to: &$0) }
        guard let signedInfo = wrapper.children.first(where: { $0.name == XMLName(Namespace.xmldsig, "SignedInfo") }) else { return [] }
        return ExclusiveC14N.canonicalize(signedInfo)
    }

    /// Writes an element with our writer and reads it back as a tree (the same path a received
    /// EIS takes), so signing and verifying canonicalise the same form.
    static func element(named name: String, namespace: String, _ body: (inout XMLWriter) -> Void) -> XMLElement {
        var writer = XMLWriter(declaration: false, indent: 0)
        writer.startElement("rps:Wrapper", attributes: [("xmlns:rps", Namespace.rps)])
        body(&writer)
        writer.endElement()
        let root = try? XMLReader.parse(writer.bytes)
        return root?.children.first { $0.name == XMLName(namespace, name) } ?? XMLElement(name: XMLName(namespace, name))
    }
}
