// SGP.02 subject codes (what a status is about).
// One constant per row; `meaning` quotes the spec's wording. Rows tagged `unverified` are our
// best reading of SGP.02 (spec/sgp02-offcard.md §3.4) and must be checked against the PDF.
// Checked by Tests/M2MCoreTests/Tables/SubjectCode.csv.

extension SubjectCode {
    /// 1 Generic: Generic.
    public static let generic = SubjectCode("1")
    /// 1.1 Function Requester: Identifies the function requester.
    public static let functionRequester = SubjectCode("1.1")
    /// 1.2 Function Provider: Identifies the function provider.
    public static let functionProvider = SubjectCode("1.2")
    /// 1.3 Protocol: The protocol used.
    public static let `protocol` = SubjectCode("1.3")
    /// 1.3.1 Protocol Format: The message format.
    public static let protocolFormat = SubjectCode("1.3.1")
    /// 1.3.2 Protocol Version: The protocol version.
    public static let protocolVersion = SubjectCode("1.3.2")
    /// 1.6 Function: The function called.
    public static let function = SubjectCode("1.6")
    /// 8 eUICC Remote Provisioning: eUICC remote provisioning (SGP.02).
    public static let euiccRemoteProvisioning = SubjectCode("8")
    /// 8.1 eUICC: The eUICC.
    public static let euicc = SubjectCode("8.1")
    /// 8.1.1 EID: The EID of the eUICC.
    public static let eid = SubjectCode("8.1.1")
    /// 8.1.2 EUM Certificate: The EUM certificate (EIS signature at registration).
    public static let eumCertificate = SubjectCode("8.1.2")
    /// 8.1.3 eUICC Certificate: The eUICC certificate (CERT.ECASD.ECKA).
    public static let euiccCertificate = SubjectCode("8.1.3")
    /// 8.2 Profile: A Profile.
    public static let profile = SubjectCode("8.2")
    /// 8.2.1 Profile ICCID: The Profile identified by its ICCID.
    public static let profileICCID = SubjectCode("8.2.1")
    /// 8.2.2 POL1: The Profile's POL1 (enforced by the eUICC). (unverified)
    public static let pol1 = SubjectCode("8.2.2")
    /// 8.2.3 POL2: The Profile's POL2 (enforced by the SM-SR). (unverified)
    public static let pol2 = SubjectCode("8.2.3")
    /// 8.2.4 Subscription Address: The Profile's subscription address (IMSI/MSISDN). (unverified)
    public static let subscriptionAddress = SubjectCode("8.2.4")
    /// 8.2.5 Profile Type: The Profile Type known by the SM-DP.
    public static let profileType = SubjectCode("8.2.5")
    /// 8.3 ISD-R: The ISD-R of the eUICC. (unverified)
    public static let isdr = SubjectCode("8.3")
    /// 8.4 ISD-P: An ISD-P (eUICC execution errors are reported with this subject). (unverified)
    public static let isdp = SubjectCode("8.4")
    /// 8.5 ECASD: The ECASD of the eUICC. (unverified)
    public static let ecasd = SubjectCode("8.5")
    /// 8.6 SM-DP: The SM-DP. (unverified)
    public static let smdp = SubjectCode("8.6")
    /// 8.7 SM-SR: The SM-SR. (unverified)
    public static let smsr = SubjectCode("8.7")

    /// Every row of the table, in spec order.
    public static let table: [StatusCodeEntry<SubjectCode>] = [
        .init(code: .generic, name: "Generic", meaning: "Generic", evidence: .confirmed),
        .init(code: .functionRequester, name: "Function Requester", meaning: "Identifies the function requester", evidence: .confirmed),
        .init(code: .functionProvider, name: "Function Provider", meaning: "Identifies the function provider", evidence: .confirmed),
        .init(code: .`protocol`, name: "Protocol", meaning: "The protocol used", evidence: .confirmed),
        .init(code: .protocolFormat, name: "Protocol Format", meaning: "The message format", evidence: .confirmed),
        .init(code: .protocolVersion, name: "Protocol Version", meaning: "The protocol version", evidence: .confirmed),
        .init(code: .function, name: "Function", meaning: "The function called", evidence: .confirmed),
        .init(code: .euiccRemoteProvisioning, name: "eUICC Remote Provisioning", meaning: "eUICC remote provisioning (SGP.02)", evidence: .confirmed),
        .init(code: .euicc, name: "eUICC", meaning: "The eUICC", evidence: .confirmed),
        .init(code: .eid, name: "EID", meaning: "The EID of the eUICC", evidence: .confirmed),
        .init(code: .eumCertificate, name: "EUM Certificate", meaning: "The EUM certificate (EIS signature at registration)", evidence: .confirmed),
        .init(code: .euiccCertificate, name: "eUICC Certificate", meaning: "The eUICC certificate (CERT.ECASD.ECKA)", evidence: .confirmed),
        .init(code: .profile, name: "Profile", meaning: "A Profile", evidence: .confirmed),
        .init(code: .profileICCID, name: "Profile ICCID", meaning: "The Profile identified by its ICCID", evidence: .confirmed),
        .init(code: .pol1, name: "POL1", meaning: "The Profile's POL1 (enforced by the eUICC)", evidence: .unverified),
        .init(code: .pol2, name: "POL2", meaning: "The Profile's POL2 (enforced by the SM-SR)", evidence: .unverified),
        .init(code: .subscriptionAddress, name: "Subscription Address", meaning: "The Profile's subscription address (IMSI/MSISDN)", evidence: .unverified),
        .init(code: .profileType, name: "Profile Type", meaning: "The Profile Type known by the SM-DP", evidence: .confirmed),
        .init(code: .isdr, name: "ISD-R", meaning: "The ISD-R of the eUICC", evidence: .unverified),
        .init(code: .isdp, name: "ISD-P", meaning: "An ISD-P (eUICC execution errors are reported with this subject)", evidence: .unverified),
        .init(code: .ecasd, name: "ECASD", meaning: "The ECASD of the eUICC", evidence: .unverified),
        .init(code: .smdp, name: "SM-DP", meaning: "The SM-DP", evidence: .unverified),
        .init(code: .smsr, name: "SM-SR", meaning: "The SM-SR", evidence: .unverified),
    ]
}
