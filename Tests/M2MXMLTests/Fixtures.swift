import M2MXML

enum NS {
    static let env = "http://www.w3.org/2003/05/soap-envelope"
    static let wsa = "http://www.w3.org/2005/08/addressing"
    static let rps = "http://namespaces.gsma.org/esim-messaging/1"
    static let xml = "http://www.w3.org/XML/1998/namespace"
}

enum Fixtures {
    /// A realistic SGP.02 ES3 request (about 2 KB) with env/wsa/rps prefixes.
    static let envelope = """
        <?xml version="1.0" encoding="UTF-8"?>
        <env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"
                      xmlns:wsa="http://www.w3.org/2005/08/addressing"
                      xmlns:rps="http://namespaces.gsma.org/esim-messaging/1">
          <!-- ES3 DownloadProfile request -->
          <env:Header>
            <wsa:From>
              <wsa:Address>http://smdp.example.com/ES3?EntityId=1.3.6.1.4.1.31746.1&amp;EntityName=SM-DP</wsa:Address>
            </wsa:From>
            <wsa:To env:mustUnderstand="true">http://smsr.example.com/ES3?EntityId=1.3.6.1.4.1.31746.2</wsa:To>
            <wsa:ReplyTo env:mustUnderstand="true">
              <wsa:Address>http://smdp.example.com/ES3/Callback?EntityId=1.3.6.1.4.1.31746.1</wsa:Address>
            </wsa:ReplyTo>
            <wsa:MessageID env:mustUnderstand="true">http://smdp.example.com/ES3?MessageId=8f9b4c3a-3a41-4d8e-9c55-7b1a2f6e0d11</wsa:MessageID>
            <wsa:Action env:mustUnderstand="true">http://gsma.com/ES3/ProfileManagement/ES3-DownloadProfile</wsa:Action>
            <rps:MessageType>http://gsma.com/ES3/ProfileManagement/ES3-DownloadProfile</rps:MessageType>
            <rps:MessageDate>2024-05-17T10:21:07Z</rps:MessageDate>
          </env:Header>
          <env:Body>
            <rps:ES3-DownloadProfileRequest>
              <rps:FunctionCallIdentifier>fcid-0001</rps:FunctionCallIdentifier>
              <rps:ValidityPeriod>86400</rps:ValidityPeriod>
              <rps:Eid>89001012012341234012345678901224</rps:Eid>
              <rps:Iccid>8988211000000012345</rps:Iccid>
              <rps:ProfileType xml:lang="en">Operational Profile – “Café” ✓</rps:ProfileType>
              <rps:EnableProfile>true</rps:EnableProfile>
              <rps:ProfileData wsa:IsReferenceParameter="false">MIIBCgKCAQEAu4+xJ0bO7lKk2c9xgk3D9S0s6zWm8l0aZ3Hn2Q5pCqQ+vJ0f7m1yQfE3aT0b6Vd0wQ==</rps:ProfileData>
              <rps:Note><![CDATA[raw <data> & more]]></rps:Note>
              <rps:Empty/>
            </rps:ES3-DownloadProfileRequest>
          </env:Body>
        </env:Envelope>

        """

    /// The same shape with the envelope namespace as default namespace and an undeclared-default child.
    static let defaultNamespaceEnvelope = """
        <?xml version='1.0' encoding='utf-8' standalone='yes'?>
        <Envelope xmlns="http://www.w3.org/2003/05/soap-envelope">
          <Header/>
          <Body>
            <DownloadProfileResponse xmlns="http://namespaces.gsma.org/esim-messaging/1" Version="1">
              <Status>Executed-Success</Status>
              <Plain xmlns=""><Item>1</Item></Plain>
            </DownloadProfileResponse>
          </Body>
        </Envelope>
        """
}

extension XMLElement {
    /// The tree with diagnostics (`line`, `prefix`) cleared, for structural comparison.
    var stripped: XMLElement {
        XMLElement(
            name: name,
            prefix: nil,
            attributes: attributes,
            children: children.map(\.stripped),
            text: text,
            line: 0
        )
    }

    func child(_ localName: String) -> XMLElement? {
        children.first { $0.name.localName == localName }
    }

    /// Depth-first search by local name.
    func find(_ localName: String) -> XMLElement? {
        if name.localName == localName { return self }
        for child in children {
            if let found = child.find(localName) { return found }
        }
        return nil
    }
}

/// Parses and returns the error code, or nil on success.
func errorCode(_ text: String, limits: XMLLimits = .default) -> XMLError.Code? {
    errorCode(Array(text.utf8), limits: limits)
}

func errorCode(_ bytes: [UInt8], limits: XMLLimits = .default) -> XMLError.Code? {
    do {
        _ = try XMLReader.parse(bytes, limits: limits)
        return nil
    } catch {
        return error.code
    }
}

/// SplitMix64: small, seedable, deterministic.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func next(below bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }
}
