// Namespaces and the prefixes this platform writes. Readers never rely on prefixes, only on the
// namespace URIs (spec/sgp02-offcard.md §4.1).

/// XML namespace URIs of the SGP.02 SOAP binding.
public enum Namespace {
    /// SOAP 1.2 envelope.
    public static let soapEnvelope = "http://www.w3.org/2003/05/soap-envelope"
    /// SOAP 1.1 envelope: answered with a VersionMismatch fault.
    public static let soap11Envelope = "http://schemas.xmlsoap.org/soap/envelope/"
    /// WS-Addressing 1.0 core.
    public static let addressing = "http://www.w3.org/2005/08/addressing"
    /// GSMA RPS messages (v3; our v4 additions use it too: docs/wire.md).
    public static let rps = "http://namespaces.gsma.org/esim-messaging/3"
    /// XML-DSig (the EIS `EumSignature`).
    public static let xmldsig = "http://www.w3.org/2000/09/xmldsig#"
    /// The `xml` prefix's namespace (xml:lang on fault reasons).
    public static let xml = "http://www.w3.org/XML/1998/namespace"

    /// The URIs decoding compares against, shared with parsed documents (`XMLReader.parse(_:limits:knownNamespaces:)`).
    public static let known: [String] = [soapEnvelope, addressing, rps, xmldsig, soap11Envelope]

    /// Prefixes written on output.
    public static let preferredPrefixes: [String: String] = [
        soapEnvelope: "env", addressing: "wsa", rps: "rps", xmldsig: "ds",
    ]
}
