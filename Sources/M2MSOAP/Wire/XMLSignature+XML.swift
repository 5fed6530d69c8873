// The EIS `EumSignature` is an XML-DSig `ds:SignatureType` (xmldsig-core-schema.xsd). We read and
// write the subset an EIS needs: SignedInfo (CanonicalizationMethod, SignatureMethod, References
// with Transforms, DigestMethod, DigestValue), SignatureValue and KeyInfo (KeyName, X509Data).
// Other KeyInfo children are refused rather than silently dropped.

public import M2MCore
public import M2MXML

extension XMLSignature: XMLValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let path = path()
        var r = ChildReader(element, path: path, namespace: Namespace.xmldsig)
        guard let signedInfo = try r.next("SignedInfo") else { throw SOAPError.missing("\(path)/ds:SignedInfo") }
        var s = ChildReader(signedInfo, path: "\(path)/SignedInfo", namespace: Namespace.xmldsig)
        let c14n = try XMLSignature.algorithm(try s.next("CanonicalizationMethod"), "\(path)/SignedInfo/CanonicalizationMethod")
        let method = try XMLSignature.algorithm(try s.next("SignatureMethod"), "\(path)/SignedInfo/SignatureMethod")
        var references: [Reference] = []
        while let reference = try s.next("Reference") {
            references.append(try XMLSignature.reference(reference, path: "\(path)/SignedInfo/Reference"))
        }
        guard !references.isEmpty else { throw SOAPError.missing("\(path)/SignedInfo/Reference") }
        try s.finish()
        guard let valueElement = try r.next("SignatureValue") else { throw SOAPError.missing("\(path)/SignatureValue") }
        let value = try Base64Binary(xmlElement: valueElement, path: "\(path)/SignatureValue")
        var keyName: String?
        var certificates: [Base64Binary] = []
        if let keyInfo = try r.next("KeyInfo") {
            var k = ChildReader(keyInfo, path: "\(path)/KeyInfo", namespace: Namespace.xmldsig)
            if let name = try k.next("KeyName") { keyName = name.text }
            while let data = try k.next("X509Data") {
                var x = ChildReader(data, path: "\(path)/KeyInfo/X509Data", namespace: Namespace.xmldsig)
                certificates += try x.repeated("X509Certificate", min: 1)
                try x.finish()
            }
            try k.finish()
        }
        try r.finish()
        self.init(
            canonicalizationMethod: c14n, signatureMethod: method, references: references, signatureValue: value,
            keyName: keyName, x509Certificates: certificates)
    }

    public func write(_ qname: String, to w: inout XMLWriter) {
        w.startElement(qname, attributes: [("xmlns:ds", Namespace.xmldsig)])
        w.startElement("ds:SignedInfo")
        w.startElement("ds:CanonicalizationMethod", attributes: [("Algorithm", canonicalizationMethod)])
        w.endElement()
        w.startElement("ds:SignatureMethod", attributes: [("Algorithm", signatureMethod)])
        w.endElement()
        for reference in references {
            w.startElement("ds:Reference", attributes: reference.uri.map { [("URI", $0)] } ?? [])
            if !reference.transforms.isEmpty {
                w.startElement("ds:Transforms")
                for transform in reference.transforms {
                    w.startElement("ds:Transform", attributes: [("Algorithm", transform)])
                    w.endElement()
                }
                w.endElement()
            }
            w.startElement("ds:DigestMethod", attributes: [("Algorithm", reference.digestMethod)])
            w.endElement()
            w.element("ds:DigestValue", reference.digestValue)
            w.endElement()
        }
        w.endElement()
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

    private static func algorithm(_ element: XMLElement?, _ path: String) throws(SOAPError) -> String {
        guard let element else { throw SOAPError.missing(path) }
        let value = try element.requiredAttribute("Algorithm", path: path)
        try ChildReader(element, path: path, namespace: Namespace.xmldsig).finish()
        return value
    }

    private static func reference(_ element: XMLElement, path: String) throws(SOAPError) -> Reference {
        var r = ChildReader(element, path: path, namespace: Namespace.xmldsig)
        var transforms: [String] = []
        if let list = try r.next("Transforms") {
            var t = ChildReader(list, path: "\(path)/Transforms", namespace: Namespace.xmldsig)
            while let transform = try t.next("Transform") {
                transforms.append(try transform.requiredAttribute("Algorithm", path: "\(path)/Transforms/Transform"))
            }
            guard !transforms.isEmpty else { throw SOAPError.missing("\(path)/Transforms/Transform") }
            try t.finish()
        }
        let digestMethod = try algorithm(try r.next("DigestMethod"), "\(path)/DigestMethod")
        let digest: Base64Binary = try r.required("DigestValue")
        try r.finish()
        return Reference(uri: element.attribute("URI"), transforms: transforms, digestMethod: digestMethod, digestValue: digest)
    }
}
