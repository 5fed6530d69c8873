// The EIS `EumSignature` is an XML-DSig `ds:SignatureType` (xmldsig-core-schema.xsd). We read and
// write the subset an EIS needs: SignedInfo (CanonicalizationMethod, SignatureMethod, References
// with Transforms, DigestMethod, DigestValue), SignatureValue and KeyInfo (KeyName, X509Data).
// Other KeyInfo children are refused rather than silently dropped.

public import M2MCore
public import M2MXML

extension XMLSignature: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        self = try ChildReader.read(element, path: path, namespace: Namespace.xmldsig) { (r) throws(SOAPError) in
            guard let signedInfo = try r.next("SignedInfo") else { throw SOAPError.missing("\(r.path)/ds:SignedInfo") }
            let (c14n, method, references) = try ChildReader.read(
                signedInfo, path: { "\(r.path)/SignedInfo" }, namespace: Namespace.xmldsig
            ) { (s) throws(SOAPError) in
                let c14n = try XMLSignature.algorithm(try s.next("CanonicalizationMethod"), "\(s.path)/CanonicalizationMethod")
                let method = try XMLSignature.algorithm(try s.next("SignatureMethod"), "\(s.path)/SignatureMethod")
                var references: [Reference] = []
                while let reference = try s.next("Reference") {
                    references.append(try XMLSignature.reference(reference, path: "\(s.path)/Reference"))
                }
                guard !references.isEmpty else { throw SOAPError.missing("\(s.path)/Reference") }
                try s.finish()
                return (c14n, method, references)
            }
            guard let valueElement = try r.next("SignatureValue") else { throw SOAPError.missing("\(r.path)/SignatureValue") }
            let value = try Base64Binary(xmlElement: valueElement, path: "\(r.path)/SignatureValue")
            var keyName: String?
            var certificates: [Base64Binary] = []
            if let keyInfo = try r.next("KeyInfo") {
                try ChildReader.read(keyInfo, path: { "\(r.path)/KeyInfo" }, namespace: Namespace.xmldsig) { (k) throws(SOAPError) in
                    if let name = try k.next("KeyName") { keyName = name.text }
                    while let data = try k.next("X509Data") {
                        certificates += try ChildReader.read(
                            data, path: { "\(k.path)/X509Data" }, namespace: Namespace.xmldsig
                        ) { (x) throws(SOAPError) in
                            let certificates: [Base64Binary] = try x.repeated("X509Certificate", min: 1)
                            try x.finish()
                            return certificates
                        }
                    }
                    try k.finish()
                }
            }
            try r.finish()
            return XMLSignature(
                canonicalizationMethod: c14n, signatureMethod: method, references: references, signatureValue: value,
                keyName: keyName, x509Certificates: certificates)
        }
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname)
        w.attribute("xmlns:ds", Namespace.xmldsig)
        writeSignedInfo(to: &w)
        w.element("ds:SignatureValue", signatureValue)
        if keyName != nil || !x509Certificates.isEmpty {
            w.startElement("ds:KeyInfo")
            w.optional("ds:KeyName", keyName)
            if !x509Certificates.isEmpty {
                w.startElement("ds:X509Data")
                w.each("ds:X509Certificate", x509Certificates)
                w.endElement()
            }
            w.endElement()
        }
        w.endElement()
    }

    /// Writes ds:SignedInfo (the prefix `ds` must be bound to XML-DSig where it goes).
    public func writeSignedInfo(to w: inout XMLWriter) {
        w.startElement("ds:SignedInfo")
        w.startElement("ds:CanonicalizationMethod")
        w.attribute("Algorithm", canonicalizationMethod)
        w.endElement()
        w.startElement("ds:SignatureMethod")
        w.attribute("Algorithm", signatureMethod)
        w.endElement()
        for reference in references {
            w.startElement("ds:Reference")
            if let uri = reference.uri { w.attribute("URI", uri) }
            if !reference.transforms.isEmpty {
                w.startElement("ds:Transforms")
                for transform in reference.transforms {
                    w.startElement("ds:Transform")
                    w.attribute("Algorithm", transform)
                    w.endElement()
                }
                w.endElement()
            }
            w.startElement("ds:DigestMethod")
            w.attribute("Algorithm", reference.digestMethod)
            w.endElement()
            w.element("ds:DigestValue", reference.digestValue)
            w.endElement()
        }
        w.endElement()
    }

    private static func algorithm(_ element: XMLElement?, _ path: @autoclosure () -> String) throws(SOAPError) -> String {
        guard let element else { throw SOAPError.missing(path()) }
        return try ChildReader.read(element, path: path, namespace: Namespace.xmldsig) { (r) throws(SOAPError) in
            let value = try element.requiredAttribute("Algorithm", path: r.path)
            try r.finish()
            return value
        }
    }

    private static func reference(_ element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) -> Reference {
        try ChildReader.read(element, path: path, namespace: Namespace.xmldsig) { (r) throws(SOAPError) in
            var transforms: [String] = []
            if let list = try r.next("Transforms") {
                transforms = try ChildReader.read(list, path: { "\(r.path)/Transforms" }, namespace: Namespace.xmldsig) {
                    (t) throws(SOAPError) in
                    var transforms: [String] = []
                    while let transform = try t.next("Transform") {
                        transforms.append(try transform.requiredAttribute("Algorithm", path: "\(t.path)/Transform"))
                    }
                    guard !transforms.isEmpty else { throw SOAPError.missing("\(t.path)/Transform") }
                    try t.finish()
                    return transforms
                }
            }
            let digestMethod = try algorithm(try r.next("DigestMethod"), "\(r.path)/DigestMethod")
            let digest: Base64Binary = try r.required("DigestValue")
            try r.finish()
            return Reference(uri: element.attribute("URI"), transforms: transforms, digestMethod: digestMethod, digestValue: digest)
        }
    }
}
