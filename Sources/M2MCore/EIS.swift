// The eUICC Information Set (EIS) and its parts, as `EISType` in euicc.common.types.xsd defines them.
// Content may be partial: the SM-SR filters it per requester (owner MNO, SM-DP, M2M SP by PLMA).

/// eUICC Information Set.
public struct EIS: Sendable, Hashable, Codable {
    /// The part signed by the EUM.
    public var eumSignedInfo: EUMSignedInfo
    /// XML-DSig signature by the EUM over `eumSignedInfo` (docs/wire.md: canonicalisation).
    public var eumSignature: XMLSignature
    /// Free memory now, in bytes.
    public var remainingMemory: Int
    /// Memory available for Profiles with no Profile installed, in bytes.
    public var availableMemoryForProfiles: Int
    public var lastAuditDate: Timestamp?
    /// The SM-SR in charge of the eUICC.
    public var smsrID: OID
    public var profiles: [ProfileInfo]
    public var isdR: SecurityDomain
    public var auditTrail: [AuditTrailRecord]?
    public var additionalProperties: [AdditionalProperty]?

    public init(
        eumSignedInfo: EUMSignedInfo, eumSignature: XMLSignature, remainingMemory: Int, availableMemoryForProfiles: Int,
        lastAuditDate: Timestamp? = nil, smsrID: OID, profiles: [ProfileInfo] = [], isdR: SecurityDomain,
        auditTrail: [AuditTrailRecord]? = nil, additionalProperties: [AdditionalProperty]? = nil
    ) {
        self.eumSignedInfo = eumSignedInfo
        self.eumSignature = eumSignature
        self.remainingMemory = remainingMemory
        self.availableMemoryForProfiles = availableMemoryForProfiles
        self.lastAuditDate = lastAuditDate
        self.smsrID = smsrID
        self.profiles = profiles
        self.isdR = isdR
        self.auditTrail = auditTrail
        self.additionalProperties = additionalProperties
    }

    public var eid: EID { eumSignedInfo.eid }

    /// The Profile with this ICCID, if the EIS lists it.
    public func profile(_ iccid: ICCID) -> ProfileInfo? { profiles.first { $0.iccid == iccid } }

    /// The enabled Profile, if any.
    public var enabledProfile: ProfileInfo? { profiles.first { $0.state == .enabled } }
}

/// `EumSignedInfo`: what the EUM vouches for.
public struct EUMSignedInfo: Sendable, Hashable, Codable {
    public var eid: EID
    public var eumID: OID
    public var productionDate: Timestamp
    public var platformType: String100
    public var platformVersion: ThreeDigitVersion
    public var isdPLoadFileAID: AID
    public var isdPModuleAID: AID
    public var ecasd: SecurityDomain
    public var capabilities: EUICCCapabilities

    public init(
        eid: EID, eumID: OID, productionDate: Timestamp, platformType: String100, platformVersion: ThreeDigitVersion,
        isdPLoadFileAID: AID, isdPModuleAID: AID, ecasd: SecurityDomain, capabilities: EUICCCapabilities
    ) {
        self.eid = eid
        self.eumID = eumID
        self.productionDate = productionDate
        self.platformType = platformType
        self.platformVersion = platformVersion
        self.isdPLoadFileAID = isdPLoadFileAID
        self.isdPModuleAID = isdPModuleAID
        self.ecasd = ecasd
        self.capabilities = capabilities
    }
}

/// `EuiccCapabilities`.
public struct EUICCCapabilities: Sendable, Hashable, Codable {
    public var cattpSupport: Bool
    public var cattpVersion: ThreeDigitVersion?
    public var httpSupport: Bool
    public var httpVersion: ThreeDigitVersion?
    public var securePacketVersion: ThreeDigitVersion
    public var remoteProvisioningVersion: ThreeDigitVersion

    public init(
        cattpSupport: Bool, cattpVersion: ThreeDigitVersion? = nil, httpSupport: Bool, httpVersion: ThreeDigitVersion? = nil,
        securePacketVersion: ThreeDigitVersion, remoteProvisioningVersion: ThreeDigitVersion
    ) {
        self.cattpSupport = cattpSupport
        self.cattpVersion = cattpVersion
        self.httpSupport = httpSupport
        self.httpVersion = httpVersion
        self.securePacketVersion = securePacketVersion
        self.remoteProvisioningVersion = remoteProvisioningVersion
    }
}

/// `SecurityDomainType`: the ECASD or the ISD-R with its key sets.
public struct SecurityDomain: Sendable, Hashable, Codable {
    public enum Role: String, Sendable, Hashable, Codable {
        case isdR = "ISD-R"
        case ecasd = "ECASD"
    }

    public var aid: AID
    /// TARs; when empty, the default TAR is bytes 13–15 of the AID.
    public var tars: [TAR]
    /// Security Domain Provider Identification Number (≤ 16 bytes).
    public var sin: HexBinary
    /// Security Domain Image Number (≤ 16 bytes).
    public var sdin: HexBinary
    public var role: Role
    /// 1 to 127 key sets.
    public var keysets: [Keyset]

    public init(aid: AID, tars: [TAR] = [], sin: HexBinary, sdin: HexBinary, role: Role, keysets: [Keyset]) {
        self.aid = aid
        self.tars = tars
        self.sin = sin
        self.sdin = sdin
        self.role = role
        self.keysets = keysets
    }
}

/// A key set of a security domain: keys or certificates.
public struct Keyset: Sendable, Hashable, Codable {
    /// `KeysetUsageType`.
    public enum Usage: String, Sendable, Hashable, Codable {
        case scp03 = "SCP03"
        case scp80 = "SCP80"
        case scp81 = "SCP81"
        case tokenGeneration = "TokenGeneration"
        case receiptVerification = "ReceiptVerification"
        case ca = "CA"
    }

    /// A key or a certificate (the schema's choice).
    public enum Item: Sendable, Hashable, Codable {
        case key(Key)
        case certificate(GPCertificateReference)

        private enum CodingKeys: String, CodingKey { case key, certificate }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if let key = try container.decodeIfPresent(Key.self, forKey: .key) {
                self = .key(key)
            } else {
                self = .certificate(try container.decode(GPCertificateReference.self, forKey: .certificate))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .key(let key): try container.encode(key, forKey: .key)
            case .certificate(let certificate): try container.encode(certificate, forKey: .certificate)
            }
        }
    }

    /// Key set version, 1 to 127.
    public var version: Int
    public var type: Usage?
    /// Counter (SCP80 replay counter …), default 0.
    public var counter: Int?
    /// Up to 128 keys or certificates.
    public var items: [Item]

    public init(version: Int, type: Usage? = nil, counter: Int? = nil, items: [Item] = []) {
        self.version = version
        self.type = type
        self.counter = counter
        self.items = items
    }
}

/// `KeyType`: a key with its components. Component values are secret: at registration they are
/// encrypted with a transport key; `description` never prints them.
public struct Key: Sendable, Hashable, Codable, CustomStringConvertible {
    public struct Component: Sendable, Hashable, Codable, CustomStringConvertible {
        /// GlobalPlatform key type coding (1 byte, e.g. 0x88 AES).
        public var type: UInt8
        public var value: HexBinary
        public init(type: UInt8, value: HexBinary) {
            self.type = type
            self.value = value
        }
        public var description: String { "Component(type: \(Hex.encode([type])), value: <\(value.count) bytes redacted>)" }
    }

    /// Key check value.
    public var kcv: HexBinary
    /// Key index, 0 to 127.
    public var index: Int
    public var components: [Component]

    public init(kcv: HexBinary, index: Int, components: [Component]) {
        self.kcv = kcv
        self.index = index
        self.components = components
    }

    public var description: String { "Key(index: \(index), kcv: \(kcv), \(components.count) component(s) redacted)" }
}

/// `GPCertificateType` inside a key set: a certificate with the CA that issued it.
public struct GPCertificateReference: Sendable, Hashable, Codable {
    public var index: Int
    public var caID: OID
    /// The certificate in GlobalPlatform format (tag 7F21 …).
    public var value: HexBinary

    public init(index: Int, caID: OID, value: HexBinary) {
        self.index = index
        self.caID = caID
        self.value = value
    }
}

/// `AuditTrailRecordType`.
public struct AuditTrailRecord: Sendable, Hashable, Codable {
    public var eid: EID
    public var smsrID: OID
    public var operationDate: Timestamp
    /// Two-byte operation code (SGP.02 annex; the code list is not public: docs/wire.md).
    public var operationType: HexBinary
    public var requesterID: OID?
    public var operationExecutionStatus: FunctionExecutionStatus?
    public var isdPAID: AID?
    public var iccid: ICCID?
    public var imei: HexBinary?
    public var meid: HexBinary?

    public init(
        eid: EID, smsrID: OID, operationDate: Timestamp, operationType: HexBinary, requesterID: OID? = nil,
        operationExecutionStatus: FunctionExecutionStatus? = nil, isdPAID: AID? = nil, iccid: ICCID? = nil,
        imei: HexBinary? = nil, meid: HexBinary? = nil
    ) {
        self.eid = eid
        self.smsrID = smsrID
        self.operationDate = operationDate
        self.operationType = operationType
        self.requesterID = requesterID
        self.operationExecutionStatus = operationExecutionStatus
        self.isdPAID = isdPAID
        self.iccid = iccid
        self.imei = imei
        self.meid = meid
    }
}

/// `PropertyType`: an extension key/value pair of the EIS.
public struct AdditionalProperty: Sendable, Hashable, Codable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// The subset of an XML-DSig `ds:Signature` (`ds:SignatureType`) an EIS carries: one SignedInfo with
/// its references, the signature value, and optional key information.
public struct XMLSignature: Sendable, Hashable, Codable {
    public struct Reference: Sendable, Hashable, Codable {
        public var uri: String?
        public var transforms: [String]
        public var digestMethod: String
        /// The digest bytes (base64 on the wire).
        public var digestValue: Base64Binary

        public init(uri: String? = nil, transforms: [String] = [], digestMethod: String, digestValue: Base64Binary) {
            self.uri = uri
            self.transforms = transforms
            self.digestMethod = digestMethod
            self.digestValue = digestValue
        }
    }

    public var canonicalizationMethod: String
    public var signatureMethod: String
    public var references: [Reference]
    /// The signature bytes (base64 on the wire).
    public var signatureValue: Base64Binary
    /// `ds:KeyInfo/ds:KeyName`, when present.
    public var keyName: String?
    /// `ds:KeyInfo/ds:X509Data/ds:X509Certificate` values (DER), when present.
    public var x509Certificates: [Base64Binary]

    public init(
        canonicalizationMethod: String, signatureMethod: String, references: [Reference], signatureValue: Base64Binary,
        keyName: String? = nil, x509Certificates: [Base64Binary] = []
    ) {
        self.canonicalizationMethod = canonicalizationMethod
        self.signatureMethod = signatureMethod
        self.references = references
        self.signatureValue = signatureValue
        self.keyName = keyName
        self.x509Certificates = x509Certificates
    }

    public static let exclusiveC14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
    public static let ecdsaSHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    public static let sha256 = "http://www.w3.org/2001/04/xmlenc#sha256"
}
