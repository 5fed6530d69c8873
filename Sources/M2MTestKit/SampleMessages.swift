// Sample SGP.02 values for tests, benchmarks and demos: a complete EIS with an ECASD, an ISD-R
// key set, two Profiles and a signature block, and ready-made envelopes. Test data only: the key
// component below is a labelled test value, not a secret.

public import M2MCore
public import M2MSOAP

public enum SampleMessages {
    public static let eid = try! EID(prefix30: "890490320000000000000000000012")
    public static let iccid = try! ICCID(withoutCheckDigit: "894450000000000012")
    public static let iccid2 = try! ICCID(withoutCheckDigit: "894450000000000034")
    public static let eumID: OID = "1.3.6.1.4.1.99999.1.1"
    public static let smsrID: OID = "1.3.6.1.4.1.99999.2.1"
    public static let smdpID: OID = "1.3.6.1.4.1.99999.3.1"
    public static let mnoID: OID = "1.3.6.1.4.1.99999.4.1"
    public static let date = try! Timestamp(text: "2026-11-27T10:15:30Z")

    /// A complete EIS as an EUM would register it.
    public static func eis() -> EIS {
        let ecasd = SecurityDomain(
            aid: try! AID(text: "A0000005591010FFFFFFFF8900000200"), sin: [1, 2, 3, 4, 5], sdin: [0xA1, 0xA2, 0xA3, 0xA4],
            role: .ecasd,
            keysets: [Keyset(version: 115, type: .ca, items: [
                .certificate(GPCertificateReference(index: 1, caID: "1.3.6.1.4.1.99999.0.1", value: HexBinary(Array(repeating: 0x7F, count: 220)))),
            ])])
        let isdR = SecurityDomain(
            aid: try! AID(text: "A0000005591010FFFFFFFF8900000100"), tars: [try! TAR(text: "000001")], sin: [1, 2, 3, 4, 5],
            sdin: [0xA1, 0xA2, 0xA3, 0xA4], role: .isdR,
            keysets: [Keyset(version: 1, type: .scp80, counter: 0, items: [
                .key(Key(kcv: [0xA1, 0xB2, 0xC3], index: 1, components: [.init(type: 0x88, value: HexBinary(Array(0..<16)))])),
            ])])
        let signedInfo = EUMSignedInfo(
            eid: eid, eumID: eumID, productionDate: date, platformType: "M2M-eUICC-Platform",
            platformVersion: try! ThreeDigitVersion(text: "4.2.0"),
            isdPLoadFileAID: try! AID(text: "A0000005591010FFFFFFFF8900000D00"),
            isdPModuleAID: try! AID(text: "A0000005591010FFFFFFFF8900000E00"), ecasd: ecasd,
            capabilities: EUICCCapabilities(
                cattpSupport: false, httpSupport: true, httpVersion: try! ThreeDigitVersion(text: "1.1.0"),
                securePacketVersion: try! ThreeDigitVersion(text: "12.1.0"),
                remoteProvisioningVersion: try! ThreeDigitVersion(text: "4.2.0")))
        let signature = XMLSignature(
            canonicalizationMethod: XMLSignature.exclusiveC14N, signatureMethod: XMLSignature.ecdsaSHA256,
            references: [.init(uri: "", transforms: [XMLSignature.exclusiveC14N], digestMethod: XMLSignature.sha256,
                               digestValue: Base64Binary(Array(repeating: 0x5A, count: 32)))],
            signatureValue: Base64Binary(Array(repeating: 0x3C, count: 64)), keyName: "EUM-TEST-KEY-1")
        let profiles = [
            ProfileInfo(
                iccid: iccid, isdPAID: try! AID(text: "A0000005591010FFFFFFFF8900001000"), mnoID: mnoID, fallbackAttribute: true,
                subscriptionAddress: SubscriptionAddress(imsi: try! IMSI(text: "234150999999999"), msisdn: try! MSISDN(text: "447700900123")),
                state: .enabled, smdpID: smdpID, profileType: "M2M-3G-16K", allocatedMemory: 65536, freeMemory: 4096,
                pol2: POL2(rules: [.init(action: .disable, qualification: .notAllowed)])),
            ProfileInfo(
                iccid: iccid2, isdPAID: try! AID(text: "A0000005591010FFFFFFFF8900001100"), mnoID: mnoID, state: .disabled,
                allocatedMemory: 32768),
        ]
        return EIS(
            eumSignedInfo: signedInfo, eumSignature: signature, remainingMemory: 120_000, availableMemoryForProfiles: 250_000,
            lastAuditDate: date, smsrID: smsrID, profiles: profiles, isdR: isdR)
    }

    /// Addressing headers for a request from `from` to `to`.
    public static func header(action: String, from: OID, to: OID, replyTo: Bool) -> AddressingHeader {
        AddressingHeader(
            to: EndpointAddress(address: "https://smsr.example.com/ES", entityID: to),
            from: EndpointAddress(address: "https://caller.example.com/ES", entityID: from),
            replyTo: replyTo ? EndpointAddress(address: "https://caller.example.com/callback", entityID: from) : nil,
            messageID: MessageID(id: "//\(from)/urn:uuid:6f1c2a3e-0000-4000-8000-000000000001",
                                 transactionID: "urn:uuid:0b7d0000-1111-4222-8333-444455550001", messageDate: date),
            action: action)
    }

    /// An ES4.EnableProfile request envelope (MNO → SM-SR, asynchronous).
    public static func enableProfileEnvelope() -> SGP02Envelope {
        let message = ES4.EnableProfileRequest(functionCallIdentifier: "fc-0001", validityPeriod: 600, eid: eid, iccid: iccid2)
        return SGP02Envelope(
            header: header(action: ActionTable.action(for: ES4.EnableProfileRequest.descriptor), from: mnoID, to: smsrID, replyTo: true),
            message: message)
    }

    /// An ES1.RegisterEIS request envelope (EUM → SM-SR) carrying the sample EIS.
    public static func registerEISEnvelope() -> SGP02Envelope {
        let message = ES1.RegisterEISRequest(functionCallIdentifier: "fc-0002", eis: eis())
        return SGP02Envelope(
            header: header(action: ActionTable.action(for: ES1.RegisterEISRequest.descriptor), from: eumID, to: smsrID, replyTo: false),
            message: message)
    }
}
