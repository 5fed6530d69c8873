// TCA (SIMalliance / Trusted Connectivity Alliance) "eUICC Profile Package: Interoperable Format" reader, as
// the eUICC emulator receives the package in SCP03t segments (spec/sgp02-oncard.md §5, §2.4), and the
// EUICCResponse the card answers with. docs/profile-package.md describes what is and is not checked.
//
// ASN.1 (module PEDefinitions, OID 2.23.143.1.1.3, AUTOMATIC TAGS, EXTENSIBILITY IMPLIED), as read in
// osmocom/pysim `pySim/esim/asn1/saip/PE_Definitions-3.3.1.asn`:
//
//   package        = ProfileElement ProfileElement …           (DER, no outer wrapper)
//   ProfileElement ::= CHOICE { header A0, genericFileManagement A1, pinCodes A2, pukCodes A3, akaParameter A4,
//                      cdmaParameter A5, securityDomain A6, rfm A7, application A8, nonStandard A9, end AA,
//                      rfu1…rfu5 AB…AF, mf B0, cd B1, telecom B2, usim B3, opt-usim B4, isim B5, opt-isim B6,
//                      phonebook B7, gsm-access B8, csim B9, opt-csim BA, eap BB, df-5gs BC, df-saip BD,
//                      df-snpn BE, df-5gprose BF1F, iot BF20, opt-iot BF21, ... }
//   PEHeader       ::= SEQUENCE { mandated [0] NULL OPTIONAL (80 00), identification [1] UInt15 (81 …) }
//                      — the first component ([0] → A0) of every PE except the ProfileHeader
//   ProfileHeader  ::= SEQUENCE { major-version [0] UInt8, minor-version [1] UInt8,
//                      profileType [2] UTF8String (SIZE (1..100)) OPTIONAL, iccid [3] OCTET STRING (SIZE (10)),
//                      pol [4] OCTET STRING OPTIONAL, eUICC-Mandatory-services [5] ServicesList,
//                      eUICC-Mandatory-GFSTEList [6] SEQUENCE OF OBJECT IDENTIFIER,
//                      connectivityParameters [7] OCTET STRING OPTIONAL,
//                      eUICC-Mandatory-AIDs [8] SEQUENCE OF SEQUENCE { aid [0], version [1] (SIZE(2)) } OPTIONAL,
//                      iotOptions [9] IotOptions OPTIONAL }
//   PE-End         ::= SEQUENCE { end-header PEHeader }
//   PEStatus       ::= SEQUENCE { status [0] INTEGER, identification [1] UInt15 OPTIONAL,
//                      additional-information [2] UInt8 OPTIONAL, offset [3] UInt31 OPTIONAL }
//   EUICCResponse  ::= SEQUENCE { peStatus [0] SEQUENCE OF PEStatus, profileInstallationAborted [1] NULL OPTIONAL,
//                      statusMessage [2] UTF8String (SIZE (2..64)) OPTIONAL }
//
// So the success answer a real card sent (spec §2.4, WT logs) is `30 07 A0 05 30 03 80 01 00`.
//
// The ICCID in the ProfileHeader is plain BCD, first digit in the high nibble, right-padded with F — pySim's
// `Iccid.apply_val` writes `h2b(rpad(iccid, 20))` into the header and the nibble-swapped `enc_iccid` form only
// into MF/EF.ICCID (osmocom/pysim `pySim/esim/saip/personalization.py`); the TS.48 fixtures agree
// (header `83 0A 89 00 01 23 …`, EF.ICCID `98 00 10 32 …`).
//
// Ordering and occurrence rules: pySim `pySim/esim/saip/validation.py` (CheckBasicStructure): header first,
// MF second, End last; one header, one MF, at most one of end/cd/telecom/usim/isim/csim/opt-*/df-saip/df-5gs;
// opt-usim, gsm-access, phonebook, df-5gs, df-saip need usim, opt-isim needs isim, opt-csim needs csim;
// mandatory services need their NAA PE; identification numbers unique.
//
// Parsing never trusts a length: every length is checked against the enclosing element, the nesting depth is
// bounded, the whole DER tree of each PE is walked, and every failure is a typed ProfilePackageError that maps to
// a PEStatus code. File-system contents (FCPs, file data, keys, applets) are deliberately not interpreted.

public import M2MCore

// MARK: - Profile element types

/// A ProfileElement CHOICE alternative, identified by its context tag (automatic tagging, see file header).
public struct ProfileElementType: Hashable, Sendable, CustomStringConvertible {
    /// The outer tag (`A0` … `BE`, `BF1F` …).
    public let tag: TLVTag
    /// The ASN.1 alternative name (`opt-usim`, `df-5gs`), or `unknown(XX)`.
    public let name: String

    private init(_ tag: UInt32, _ name: String) {
        self.tag = TLVTag(tag)
        self.name = name
    }

    public static let header = ProfileElementType(0xA0, "header")
    public static let genericFileManagement = ProfileElementType(0xA1, "genericFileManagement")
    public static let pinCodes = ProfileElementType(0xA2, "pinCodes")
    public static let pukCodes = ProfileElementType(0xA3, "pukCodes")
    public static let akaParameter = ProfileElementType(0xA4, "akaParameter")
    public static let cdmaParameter = ProfileElementType(0xA5, "cdmaParameter")
    public static let securityDomain = ProfileElementType(0xA6, "securityDomain")
    public static let rfm = ProfileElementType(0xA7, "rfm")
    public static let application = ProfileElementType(0xA8, "application")
    public static let nonStandard = ProfileElementType(0xA9, "nonStandard")
    public static let end = ProfileElementType(0xAA, "end")
    public static let rfu1 = ProfileElementType(0xAB, "rfu1")
    public static let rfu2 = ProfileElementType(0xAC, "rfu2")
    public static let rfu3 = ProfileElementType(0xAD, "rfu3")
    public static let rfu4 = ProfileElementType(0xAE, "rfu4")
    public static let rfu5 = ProfileElementType(0xAF, "rfu5")
    public static let mf = ProfileElementType(0xB0, "mf")
    public static let cd = ProfileElementType(0xB1, "cd")
    public static let telecom = ProfileElementType(0xB2, "telecom")
    public static let usim = ProfileElementType(0xB3, "usim")
    public static let optUSIM = ProfileElementType(0xB4, "opt-usim")
    public static let isim = ProfileElementType(0xB5, "isim")
    public static let optISIM = ProfileElementType(0xB6, "opt-isim")
    public static let phonebook = ProfileElementType(0xB7, "phonebook")
    public static let gsmAccess = ProfileElementType(0xB8, "gsm-access")
    public static let csim = ProfileElementType(0xB9, "csim")
    public static let optCSIM = ProfileElementType(0xBA, "opt-csim")
    public static let eap = ProfileElementType(0xBB, "eap")
    public static let df5GS = ProfileElementType(0xBC, "df-5gs")
    public static let dfSAIP = ProfileElementType(0xBD, "df-saip")
    public static let dfSNPN = ProfileElementType(0xBE, "df-snpn")
    public static let df5GProSe = ProfileElementType(0xBF1F, "df-5gprose")
    public static let iot = ProfileElementType(0xBF20, "iot")
    public static let optIoT = ProfileElementType(0xBF21, "opt-iot")

    /// Every alternative of PE_Definitions 3.3.1, in CHOICE order.
    public static let known: [ProfileElementType] = [
        .header, .genericFileManagement, .pinCodes, .pukCodes, .akaParameter, .cdmaParameter, .securityDomain, .rfm,
        .application, .nonStandard, .end, .rfu1, .rfu2, .rfu3, .rfu4, .rfu5, .mf, .cd, .telecom, .usim, .optUSIM, .isim,
        .optISIM, .phonebook, .gsmAccess, .csim, .optCSIM, .eap, .df5GS, .dfSAIP, .dfSNPN, .df5GProSe, .iot, .optIoT,
    ]

    private static let byTag: [UInt32: ProfileElementType] = {
        var table: [UInt32: ProfileElementType] = [:]
        for type in known { table[type.tag.rawValue] = type }
        return table
    }()

    /// The type for an outer tag; tags outside the table give `unknown(tag)`.
    public init(tag: TLVTag) {
        self = ProfileElementType.byTag[tag.rawValue] ?? ProfileElementType(tag.rawValue, "unknown(\(tag))")
    }

    /// Named in PE_Definitions 3.3.1 and not one of the rfu placeholders.
    public var isDefined: Bool { ProfileElementType.byTag[tag.rawValue] != nil && !isReserved }

    /// rfu1…rfu5 (PE-Dummy placeholders that only keep the tag numbering stable).
    public var isReserved: Bool { (0xAB...0xAF).contains(tag.rawValue) }

    public static func == (lhs: ProfileElementType, rhs: ProfileElementType) -> Bool { lhs.tag == rhs.tag }
    public func hash(into hasher: inout Hasher) { hasher.combine(tag) }
    public var description: String { name }
}

// MARK: - Elements

/// The PEHeader of a profile element (all PEs except the ProfileHeader).
public struct PEHeader: Hashable, Sendable {
    /// `mandated NULL` present: the eUICC must support this PE.
    public var mandated: Bool
    /// The PE's identification number (UInt15), unique in the package.
    public var identification: Int

    public init(mandated: Bool, identification: Int) {
        self.mandated = mandated
        self.identification = identification
    }
}

/// One profile element as received: its bytes and the little the card needs to route and report it.
public struct ProfileElement: Hashable, Sendable, CustomStringConvertible {
    /// Position in the package (0 = the ProfileHeader).
    public let index: Int
    public let type: ProfileElementType
    /// Offset of the PE's first tag byte in the package.
    public let offset: Int
    /// The whole TLV: tag, length and value, exactly as received.
    public let encoded: [UInt8]
    /// Where the value starts inside `encoded` (tag and length bytes before it).
    public let valueOffset: Int
    /// The PEHeader; nil for the ProfileHeader.
    public let elementHeader: PEHeader?
    /// False for a PE the card skips: an unknown/rfu/unsupported type whose PEHeader is not `mandated`.
    public let isSupported: Bool

    public var tag: TLVTag { type.tag }
    public var identification: Int? { elementHeader?.identification }
    public var mandated: Bool { elementHeader?.mandated ?? false }
    /// The PE's value (the SEQUENCE contents).
    public var value: ArraySlice<UInt8> { encoded[valueOffset...] }
    /// Size of the whole TLV.
    public var size: Int { encoded.count }
    /// The PE's byte range in the package.
    public var range: Range<Int> { offset..<(offset + encoded.count) }

    public var description: String {
        let id = identification.map { " #\($0)" } ?? ""
        return "PE[\(index)] \(type)\(id)\(mandated ? " mandated" : "") @\(offset) \(size) bytes\(isSupported ? "" : " (skipped)")"
    }
}

// MARK: - ProfileHeader

/// The ProfileHeader PE (`A0`), typed.
public struct ProfileHeader: Hashable, Sendable, CustomStringConvertible {
    /// One entry of eUICC-Mandatory-AIDs.
    public struct MandatoryAID: Hashable, Sendable {
        public var aid: [UInt8]
        /// Two bytes.
        public var version: [UInt8]

        public init(aid: [UInt8], version: [UInt8]) {
            self.aid = aid
            self.version = version
        }
    }

    public var majorVersion: Int
    public var minorVersion: Int
    /// UTF8String (SIZE (1..100)), optional in the ASN.1.
    public var profileType: String?
    /// Decoded from the 10 plain-BCD bytes (trailing F padding kept, as ICCIDType allows).
    public var iccid: ICCID
    /// The 10 bytes as received.
    public var iccidBytes: [UInt8]
    /// `pol` (SGP.02 POL1 travels here: spec §1.3; its bit coding is not confirmed, so it stays raw).
    public var pol: [UInt8]?
    /// The contents of eUICC-Mandatory-services `[5]` (a sequence of NULLs), raw.
    public var mandatoryServices: [UInt8]
    /// Names of the mandatory services (ServicesList component names; `service-N` beyond the 3.3.1 list).
    public var mandatoryServiceNames: [String]
    /// eUICC-Mandatory-GFSTEList `[6]`: generic file structure template OIDs.
    public var mandatoryGFSTEList: [OID]
    /// `connectivityParameters` (SGP.02 connectivity parameters, raw).
    public var connectivityParameters: [UInt8]?
    /// The contents of eUICC-Mandatory-AIDs `[8]`, raw; nil when absent.
    public var mandatoryAIDs: [UInt8]?
    /// eUICC-Mandatory-AIDs decoded.
    public var mandatoryAIDList: [MandatoryAID]
    /// The contents of iotOptions `[9]`, raw.
    public var iotOptions: [UInt8]?
    /// Extension fields (context tags above `[9]`) as received, for a newer minor version.
    public var extensions: [TLV]

    /// ServicesList components in order (automatic tags [0]…[29]), PE_Definitions 3.3.1.
    public static let serviceNames: [String] = [
        "contactless", "usim", "isim", "csim", "milenage", "tuak128", "cave", "gba-usim", "gba-isim", "mbms", "eap",
        "javacard", "multos", "multiple-usim", "multiple-isim", "multiple-csim", "tuak256", "usim-test-algorithm",
        "ber-tlv", "dfLink", "cat-tp", "get-identity", "profile-a-x25519", "profile-b-p256", "suciCalculatorApi",
        "dns-resolution", "scp11ac", "scp11c-authorization-mechanism", "s16mode", "eaka",
    ]

    public func requiresService(_ name: String) -> Bool { mandatoryServiceNames.contains(name) }

    public var description: String {
        "ProfileHeader(v\(majorVersion).\(minorVersion), type \(profileType.map { "\"\($0)\"" } ?? "none"), ICCID \(iccid.text), services \(mandatoryServiceNames.joined(separator: ",")))"
    }

    /// Parses a stand-alone ProfileHeader TLV (`A0 …`) with the default options.
    public init(encoded: [UInt8], options: ProfilePackage.Options = .init()) throws(ProfilePackageError) {
        do throws(Fault) {
            let top = try DERScan.fieldHeader(encoded, at: 0, end: encoded.count, options: options)
            guard top.tag == 0xA0 else { throw Fault(.invalidProfileHeader, 0, "a ProfileHeader is tagged A0") }
            guard top.headerLength + top.length == encoded.count else {
                throw Fault(.malformed, top.headerLength + top.length, "bytes after the ProfileHeader")
            }
            try DERScan.walk(encoded, from: top.headerLength, to: encoded.count, depth: 1, options: options)
            self = try ProfileHeader(encoded, from: top.headerLength, to: encoded.count, options: options)
        } catch {
            throw error.packageError(index: 0, type: .header, elementOffset: 0, identification: nil)
        }
    }

    /// Parses the ProfileHeader fields in `bytes[from..<to]` (the value of the A0 TLV, already walked).
    init(_ bytes: [UInt8], from start: Int, to end: Int, options: ProfilePackage.Options) throws(Fault) {
        var cursor = start
        var lastNumber = -1
        var major: Int?
        var minor: Int?
        var iccidRange: Range<Int>?
        var services: (Range<Int>, [String])?
        var gfste: [OID]?
        profileType = nil
        pol = nil
        connectivityParameters = nil
        mandatoryAIDs = nil
        mandatoryAIDList = []
        iotOptions = nil
        extensions = []
        while cursor < end {
            let field = try DERScan.fieldHeader(bytes, at: cursor, end: end, options: options)
            let value = (cursor + field.headerLength)..<(cursor + field.headerLength + field.length)
            guard field.tagClass == 2 else {
                throw Fault(.invalidProfileHeader, cursor, "tag \(Hex.encode(field.tagBytes)) is not a ProfileHeader field")
            }
            guard field.number > lastNumber else {
                throw Fault(.invalidProfileHeader, cursor, "field [\(field.number)] repeated or out of order")
            }
            lastNumber = field.number
            let expectConstructed = [5, 6, 8, 9].contains(field.number)
            if field.number <= 9 && field.constructed != expectConstructed {
                throw Fault(.invalidProfileHeader, cursor, "field [\(field.number)] must be \(expectConstructed ? "constructed" : "primitive")")
            }
            switch field.number {
            case 0, 1:
                guard let version = DER.unsigned(bytes[value], max: 255) else {
                    throw Fault(.invalidProfileHeader, cursor, "\(field.number == 0 ? "major" : "minor")-version is not a DER UInt8")
                }
                if field.number == 0 {
                    guard options.supportedMajorVersions.contains(version) else {
                        throw Fault(.unsupportedProfileVersion, cursor, "major version \(version), supported \(options.supportedMajorVersions)")
                    }
                    major = version
                } else {
                    minor = version
                }
            case 2:
                guard let text = String(validating: bytes[value], as: UTF8.self), (1...100).contains(text.count) else {
                    throw Fault(.invalidProfileHeader, cursor, "profileType is not UTF-8 of 1 to 100 characters")
                }
                profileType = text
            case 3:
                guard value.count == 10 else { throw Fault(.invalidICCID, cursor, "iccid is \(value.count) bytes, not 10") }
                iccidRange = value
            case 4: pol = Array(bytes[value])
            case 5: services = (value, try ProfileHeader.serviceList(bytes, value, options))
            case 6: gfste = try ProfileHeader.oidList(bytes, value, options)
            case 7: connectivityParameters = Array(bytes[value])
            case 8:
                mandatoryAIDs = Array(bytes[value])
                mandatoryAIDList = try ProfileHeader.aidList(bytes, value, options)
            case 9:
                let pix = try DERScan.fieldHeader(bytes, at: value.lowerBound, end: value.upperBound, options: options)
                guard pix.tag == 0x80, (7...11).contains(pix.length) else {
                    throw Fault(.invalidProfileHeader, value.lowerBound, "iotOptions.pix is [0] OCTET STRING (SIZE (7..11))")
                }
                iotOptions = Array(bytes[value])
            default:
                extensions.append(TLV(TLVTag(field.tag), Array(bytes[value])))
            }
            cursor = value.upperBound
        }
        guard let major else { throw Fault(.invalidProfileHeader, start, "major-version missing") }
        guard let minor else { throw Fault(.invalidProfileHeader, start, "minor-version missing") }
        guard let iccidRange else { throw Fault(.invalidProfileHeader, start, "iccid missing") }
        guard let services else { throw Fault(.invalidProfileHeader, start, "eUICC-Mandatory-services missing") }
        guard let gfste else { throw Fault(.invalidProfileHeader, start, "eUICC-Mandatory-GFSTEList missing") }
        majorVersion = major
        minorVersion = minor
        iccidBytes = Array(bytes[iccidRange])
        iccid = try ProfileHeader.decodeICCID(iccidBytes, at: iccidRange.lowerBound)
        mandatoryServices = Array(bytes[services.0])
        mandatoryServiceNames = services.1
        mandatoryGFSTEList = gfste
        try checkServiceConsistency(at: services.0.lowerBound)
    }

    /// Plain BCD, high nibble first, `F` only as trailing padding; then M2MCore's ICCID rules (89…, Luhn).
    static func decodeICCID(_ bytes: [UInt8], at offset: Int) throws(Fault) -> ICCID {
        var text = ""
        var padding = false
        for byte in bytes {
            for nibble in [byte >> 4, byte & 0x0F] {
                if nibble == 0x0F {
                    padding = true
                    text.append("F")
                } else if nibble <= 9 && !padding {
                    text.append(Character(Unicode.Scalar(0x30 + nibble)))
                } else {
                    throw Fault(.invalidICCID, offset, "iccid \(Hex.encode(bytes)) is not BCD digits with trailing F padding")
                }
            }
        }
        do throws(IdentifierError) {
            return try ICCID(text: text)
        } catch {
            throw Fault(.invalidICCID, offset, error.description)
        }
    }

    static func serviceList(_ bytes: [UInt8], _ range: Range<Int>, _ options: ProfilePackage.Options) throws(Fault) -> [String] {
        var names: [String] = []
        var cursor = range.lowerBound
        var last = -1
        while cursor < range.upperBound {
            let item = try DERScan.fieldHeader(bytes, at: cursor, end: range.upperBound, options: options)
            guard item.tagClass == 2, !item.constructed, item.length == 0, item.number > last else {
                throw Fault(.invalidProfileHeader, cursor, "eUICC-Mandatory-services holds NULLs in tag order")
            }
            last = item.number
            names.append(item.number < serviceNames.count ? serviceNames[item.number] : "service-\(item.number)")
            cursor += item.headerLength
        }
        return names
    }

    static func oidList(_ bytes: [UInt8], _ range: Range<Int>, _ options: ProfilePackage.Options) throws(Fault) -> [OID] {
        var oids: [OID] = []
        var cursor = range.lowerBound
        while cursor < range.upperBound {
            let item = try DERScan.fieldHeader(bytes, at: cursor, end: range.upperBound, options: options)
            let value = bytes[(cursor + item.headerLength)..<(cursor + item.headerLength + item.length)]
            guard item.tag == 0x06, let text = DER.objectIdentifier(value), let oid = try? OID(text: text) else {
                throw Fault(.invalidProfileHeader, cursor, "eUICC-Mandatory-GFSTEList holds OBJECT IDENTIFIERs")
            }
            oids.append(oid)
            cursor += item.headerLength + item.length
        }
        return oids
    }

    static func aidList(_ bytes: [UInt8], _ range: Range<Int>, _ options: ProfilePackage.Options) throws(Fault) -> [MandatoryAID] {
        var list: [MandatoryAID] = []
        var cursor = range.lowerBound
        while cursor < range.upperBound {
            let entry = try DERScan.fieldHeader(bytes, at: cursor, end: range.upperBound, options: options)
            let entryEnd = cursor + entry.headerLength + entry.length
            guard entry.tag == 0x30 else { throw Fault(.invalidProfileHeader, cursor, "eUICC-Mandatory-AIDs entries are SEQUENCEs") }
            var inner = cursor + entry.headerLength
            var aid: [UInt8]?
            var version: [UInt8]?
            while inner < entryEnd {
                let field = try DERScan.fieldHeader(bytes, at: inner, end: entryEnd, options: options)
                let value = Array(bytes[(inner + field.headerLength)..<(inner + field.headerLength + field.length)])
                switch field.tag {
                case 0x80 where aid == nil && (5...16).contains(value.count): aid = value
                case 0x81 where aid != nil && version == nil && value.count == 2: version = value
                default:
                    guard field.tagClass == 2, field.number > 1, version != nil else {
                        throw Fault(.invalidProfileHeader, inner, "eUICC-Mandatory-AIDs entry is { aid [0] (5..16 bytes), version [1] (2 bytes) }")
                    }
                }
                inner += field.headerLength + field.length
            }
            guard let aid, let version else { throw Fault(.invalidProfileHeader, cursor, "eUICC-Mandatory-AIDs entry incomplete") }
            list.append(MandatoryAID(aid: aid, version: version))
            cursor = entryEnd
        }
        return list
    }

    /// The header-internal half of pySim's `check_mandatory_services` (the other half needs the PEs: see the
    /// stream). pySim tests `profile-a-p256`, which is not a ServicesList name; `profile-b-p256` is meant.
    func checkServiceConsistency(at offset: Int) throws(Fault) {
        let rules: [(String, [String])] = [
            ("gba-usim", ["usim"]), ("gba-isim", ["isim"]), ("multiple-usim", ["usim"]), ("multiple-isim", ["isim"]),
            ("multiple-csim", ["csim"]), ("get-identity", ["usim", "isim"]), ("profile-a-x25519", ["usim", "isim"]),
            ("profile-b-p256", ["usim", "isim"]),
        ]
        for (service, needs) in rules where requiresService(service) && !needs.contains(where: requiresService) {
            throw Fault(.invalidProfileHeader, offset, "\(service) is mandatory but \(needs.joined(separator: " or ")) is not")
        }
    }
}

// MARK: - Errors

/// Why a profile package was refused. Equality compares `code` only; the rest locates the failure.
public struct ProfilePackageError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        /// The PEStatus the eUICC reports for this failure.
        public let status: PEStatus.Status
        public var description: String { name }

        /// Nothing was received.
        public static let empty = Code(name: "empty", status: .invalidRequestFormat)
        /// The package ends inside a PE (or inside its tag/length).
        public static let truncated = Code(name: "truncated", status: .invalidRequestFormat)
        /// Not DER: bad tag or length form, a child exceeding or not filling its parent, nesting too deep.
        public static let malformed = Code(name: "malformed", status: .invalidRequestFormat)
        /// A top-level tag that is not a context-specific constructed ProfileElement alternative.
        public static let notAProfileElement = Code(name: "notAProfileElement", status: .invalidRequestFormat)
        /// A known PE type without its PEHeader (`A0 { [80 00] 81 id }`) as first component.
        public static let missingElementHeader = Code(name: "missingElementHeader", status: .invalidRequestFormat)
        /// The first PE is not the ProfileHeader.
        public static let headerNotFirst = Code(name: "headerNotFirst", status: .invalidRequestFormat)
        /// The second PE is not PE-MF.
        public static let mfNotSecond = Code(name: "mfNotSecond", status: .invalidRequestFormat)
        /// A second header, MF, End, or other single-occurrence PE.
        public static let duplicateElement = Code(name: "duplicateElement", status: .invalidRequestFormat)
        /// Bytes after PE-End (another PE or garbage).
        public static let dataAfterEnd = Code(name: "dataAfterEnd", status: .invalidRequestFormat)
        /// The package ends without PE-End.
        public static let missingEnd = Code(name: "missingEnd", status: .invalidRequestFormat)
        /// opt-usim/gsm-access/phonebook/df-5gs/df-saip before any usim, opt-isim before isim, opt-csim before csim.
        public static let missingPrerequisite = Code(name: "missingPrerequisite", status: .invalidRequestFormat)
        /// PEHeader values out of range or not DER (identification not UInt15, mandated not an empty NULL).
        public static let invalidElementHeader = Code(name: "invalidElementHeader", status: .badValues)
        /// Two PEs with the same identification number.
        public static let duplicateIdentification = Code(name: "duplicateIdentification", status: .badValues)
        /// ProfileHeader fields missing, out of order, of the wrong type or size.
        public static let invalidProfileHeader = Code(name: "invalidProfileHeader", status: .badValues)
        /// The header ICCID is not 10 BCD bytes forming a valid ICCID (89…, Luhn).
        public static let invalidICCID = Code(name: "invalidICCID", status: .badValues)
        /// A mandatory NAA service (usim/isim/csim) whose PE never came.
        public static let mandatoryServiceWithoutElement = Code(name: "mandatoryServiceWithoutElement", status: .badValues)
        /// major-version outside `Options.supportedMajorVersions`.
        public static let unsupportedProfileVersion = Code(name: "unsupportedProfileVersion", status: .unsupportedProfileVersion)
        /// A `mandated` PE of an unknown, rfu or unsupported type (or an unknown one without PEHeader).
        public static let unsupportedElement = Code(name: "unsupportedElement", status: .peNotSupported)
        /// A PE larger than `Options.maximumElementSize`.
        public static let elementTooLarge = Code(name: "elementTooLarge", status: .notEnoughMemory)
        /// The package would exceed `Options.maximumPackageSize`.
        public static let packageTooLarge = Code(name: "packageTooLarge", status: .notEnoughMemory)

        public static let all: [Code] = [
            .empty, .truncated, .malformed, .notAProfileElement, .missingElementHeader, .headerNotFirst, .mfNotSecond,
            .duplicateElement, .dataAfterEnd, .missingEnd, .missingPrerequisite, .invalidElementHeader,
            .duplicateIdentification, .invalidProfileHeader, .invalidICCID, .mandatoryServiceWithoutElement,
            .unsupportedProfileVersion, .unsupportedElement, .elementTooLarge, .packageTooLarge,
        ]
    }

    public let code: Code
    /// Position of the offending PE in the package, when the failure belongs to one.
    public let elementIndex: Int?
    public let elementType: ProfileElementType?
    /// The offending PE's identification number, when its PEHeader could be read.
    public let identification: Int?
    /// Package offset of the offending PE's first byte.
    public let elementOffset: Int?
    /// Package offset of the failure itself.
    public let offset: Int?
    public let detail: String

    public init(
        code: Code, elementIndex: Int? = nil, elementType: ProfileElementType? = nil, identification: Int? = nil,
        elementOffset: Int? = nil, offset: Int? = nil, detail: String = ""
    ) {
        self.code = code
        self.elementIndex = elementIndex
        self.elementType = elementType
        self.identification = identification
        self.elementOffset = elementOffset
        self.offset = offset
        self.detail = detail
    }

    /// The PEStatus the card reports: the code's status, the PE's identification, and as `offset` the position
    /// of the failure inside the PE (0 = its tag), when both are known.
    public var peStatus: PEStatus {
        var relative: Int?
        if let offset, let elementOffset, offset >= elementOffset, offset - elementOffset <= PEStatus.maxOffset {
            relative = offset - elementOffset
        }
        return PEStatus(status: code.status, identification: identification, offset: relative)
    }

    /// The answer for a refused package: this PEStatus and `profileInstallationAborted`.
    public var euiccResponse: EUICCResponse { EUICCResponse(peStatus: [peStatus], profileInstallationAborted: true) }

    public static func == (lhs: ProfilePackageError, rhs: ProfilePackageError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String {
        var parts = ["profile package \(code) (PEStatus \(code.status))"]
        if let elementIndex { parts.append("PE[\(elementIndex)]" + (elementType.map { " \($0)" } ?? "")) }
        if let identification { parts.append("id \(identification)") }
        if let offset { parts.append("at \(offset)") }
        if !detail.isEmpty { parts.append(detail) }
        return parts.joined(separator: ", ")
    }
}

/// A failure before it is placed in the package (offsets are into the buffer being read).
struct Fault: Error {
    let code: ProfilePackageError.Code
    let offset: Int
    let detail: String

    init(_ code: ProfilePackageError.Code, _ offset: Int, _ detail: String) {
        self.code = code
        self.offset = offset
        self.detail = detail
    }

    /// `offset` is relative to the PE's first byte; the error carries package offsets.
    /// The same fault with its offset moved (from buffer to PE coordinates).
    func shifted(by delta: Int) -> Fault { Fault(code, offset + delta, detail) }

    func packageError(index: Int, type: ProfileElementType?, elementOffset: Int, identification: Int?) -> ProfilePackageError {
        ProfilePackageError(
            code: code, elementIndex: index, elementType: type, identification: identification, elementOffset: elementOffset,
            offset: elementOffset + offset, detail: detail)
    }
}

// MARK: - Package

/// A whole profile package, parsed and validated (the same checks as `ProfilePackageStream`, which it uses).
public struct ProfilePackage: Hashable, Sendable {
    /// Limits and choices of the reader.
    public struct Options: Hashable, Sendable {
        /// ProfileHeader major versions accepted; others give unsupported-profile-version (31). TS.48 fixtures
        /// are 2.1 and 2.3, PE_Definitions 3.3.1 is 3.3, the SGP.02-era WT trace 2.0.
        public var supportedMajorVersions: ClosedRange<Int>
        /// Known PE types this card does not implement: refused (pe-not-supported) when `mandated`, else skipped.
        /// Header, MF and End cannot be unsupported.
        public var unsupportedTypes: Set<ProfileElementType>
        /// The largest PE accepted (the stream buffers at most one PE): not-enough-memory beyond it.
        public var maximumElementSize: Int
        /// The largest package accepted: not-enough-memory beyond it.
        public var maximumPackageSize: Int
        /// Maximum nesting of constructed TLVs, the PE itself counted as 1 (TS.48 profiles reach 6).
        public var maximumDepth: Int
        /// Refuse non-minimal length encodings (strict DER). Off by default: BER lengths are tolerated.
        public var requireMinimalLengths: Bool

        public init(
            supportedMajorVersions: ClosedRange<Int> = 2...3, unsupportedTypes: Set<ProfileElementType> = [],
            maximumElementSize: Int = 256 * 1024, maximumPackageSize: Int = 1024 * 1024, maximumDepth: Int = 16,
            requireMinimalLengths: Bool = false
        ) {
            self.supportedMajorVersions = supportedMajorVersions
            self.unsupportedTypes = unsupportedTypes
            self.maximumElementSize = maximumElementSize
            self.maximumPackageSize = maximumPackageSize
            self.maximumDepth = maximumDepth
            self.requireMinimalLengths = requireMinimalLengths
        }
    }

    public let elements: [ProfileElement]
    public let summary: ProfilePackageSummary

    /// Parses and validates a whole package (`SEQUENCE OF ProfileElement` contents, no outer wrapper).
    public init(der bytes: [UInt8], options: Options = .init()) throws(ProfilePackageError) {
        var stream = ProfilePackageStream(options: options)
        elements = try stream.append(bytes)
        summary = try stream.finish()
    }

    public var header: ProfileHeader { summary.header }
    /// Bytes in the package (what the caller's SHA-256 covers).
    public var totalSize: Int { summary.totalSize }
    public var counts: [ProfileElementType: Int] { summary.counts }
    public func count(of type: ProfileElementType) -> Int { summary.count(of: type) }
    /// The PEs of one type, in order.
    public func elements(of type: ProfileElementType) -> [ProfileElement] { elements.filter { $0.type == type } }
    /// The package bytes again (the PEs' encodings concatenated, which is exactly the input).
    public var encoded: [UInt8] { elements.flatMap(\.encoded) }
}

/// What the eUICC keeps of an installed package: header, sizes and counts (the caller adds the SHA-256 of the
/// bytes, fed PE by PE from the stream or over `ProfilePackage.encoded`).
public struct ProfilePackageSummary: Hashable, Sendable, CustomStringConvertible {
    public let header: ProfileHeader
    public let totalSize: Int
    /// PE types in package order.
    public let elementTypes: [ProfileElementType]
    /// Identification numbers in package order (the ProfileHeader has none).
    public let identifications: [Int]
    public let counts: [ProfileElementType: Int]
    /// PEs accepted but skipped (non-mandated unknown/rfu/unsupported types).
    public let skippedCount: Int

    public var elementCount: Int { elementTypes.count }
    public func count(of type: ProfileElementType) -> Int { counts[type] ?? 0 }

    public var description: String {
        let byType = elementTypes.reduce(into: [ProfileElementType]()) { if !$0.contains($1) { $0.append($1) } }
            .map { "\($0)×\(counts[$0] ?? 0)" }.joined(separator: " ")
        return "\(header), \(totalSize) bytes, \(elementCount) PEs: \(byType)"
    }
}

// MARK: - Stream

/// Reads a profile package as it arrives (SCP03t segments of any size, PEs not aligned to them): each `append`
/// returns the PEs it completed, validated in order, and throws at the first bad PE — as soon as its tag and
/// length are in when those are enough (wrong order, too large, after End), else when the PE is complete. Only
/// the incomplete PE is buffered. After an error the stream stays failed: every call rethrows that error.
///
/// The PEs' `encoded` bytes, concatenated in order, are the package: feed them to SHA-256 as they come.
public struct ProfilePackageStream: Sendable {
    public let options: ProfilePackage.Options

    private var buffer: [UInt8] = []
    /// Package offset of `buffer[0]`.
    private var bufferOffset = 0
    /// Tag and length of the PE at the start of the buffer, once read and checked.
    private var pending: DERScan.Header?
    private var elementTypes: [ProfileElementType] = []
    private var identifications: [Int] = []
    private var seenIdentifications: Set<Int> = []
    private var counts: [ProfileElementType: Int] = [:]
    private var skipped = 0
    private var ended = false
    private var failure: ProfilePackageError?
    public private(set) var header: ProfileHeader?

    public init(options: ProfilePackage.Options = .init()) { self.options = options }

    /// Bytes held for the incomplete PE.
    public var bufferedByteCount: Int { buffer.count }
    /// Bytes received so far.
    public var receivedByteCount: Int { bufferOffset + buffer.count }
    /// PEs completed so far.
    public var elementCount: Int { elementTypes.count }
    /// PE-End has been received.
    public var isComplete: Bool { ended }

    /// Adds the next bytes; returns the PEs they complete.
    public mutating func append<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(ProfilePackageError) -> [ProfileElement] {
        var completed: [ProfileElement] = []
        try process(bytes) { completed.append($0()) }
        return completed
    }

    /// Adds the next bytes with every check of `append`, without copying the PEs out (a card that
    /// keeps only the summary); returns how many PEs they complete.
    public mutating func consume<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(ProfilePackageError) -> Int {
        var count = 0
        try process(bytes) { _ in count += 1 }
        return count
    }

    /// The PEs complete in the buffer are checked in place; `found` gets each, as a closure that
    /// copies it out when called.
    private mutating func process<Bytes: Collection<UInt8>>(
        _ bytes: Bytes, _ found: (() -> ProfileElement) -> Void
    ) throws(ProfilePackageError) {
        if let failure { throw failure }
        buffer.append(contentsOf: bytes)
        var cursor = 0
        do throws(ProfilePackageError) {
            while cursor < buffer.count {
                if ended {
                    throw ProfilePackageError(
                        code: .dataAfterEnd, elementIndex: elementCount, elementOffset: bufferOffset + cursor,
                        offset: bufferOffset + cursor, detail: "\(buffer.count - cursor)+ bytes after PE-End")
                }
                let top: DERScan.Header
                if let pending {
                    top = pending
                } else {
                    do throws(DERScan.Failure) {
                        top = try DERScan.header(buffer, at: cursor, end: buffer.count, minimalLengths: options.requireMinimalLengths)
                    } catch let scan where scan.incomplete {
                        break
                    } catch let scan {
                        throw ProfilePackageError(
                            code: .malformed, elementIndex: elementCount, elementOffset: bufferOffset + cursor,
                            offset: bufferOffset + scan.offset, detail: scan.detail)
                    }
                    try checkArrival(top, at: bufferOffset + cursor)
                    pending = top
                }
                let size = top.headerLength + top.length
                guard buffer.count - cursor >= size else { break }
                let (index, type, elementHeader, supported) = try complete(start: cursor, end: cursor + size, top, at: bufferOffset + cursor)
                let start = cursor
                let offset = bufferOffset + cursor
                found {
                    ProfileElement(
                        index: index, type: type, offset: offset, encoded: Array(buffer[start..<(start + size)]), valueOffset: top.headerLength,
                        elementHeader: elementHeader, isSupported: supported)
                }
                pending = nil
                cursor += size
            }
        } catch {
            fail(error)
            throw error
        }
        if cursor == buffer.count {
            buffer.removeAll(keepingCapacity: true)
        } else if cursor > 0 {
            buffer.removeSubrange(0..<cursor)
        }
        bufferOffset += cursor
    }

    /// Ends the package: it must be complete (PE-End received, nothing pending).
    public mutating func finish() throws(ProfilePackageError) -> ProfilePackageSummary {
        if let failure { throw failure }
        var error: ProfilePackageError?
        if !buffer.isEmpty {
            let expected = pending.map { " of \($0.headerLength + $0.length)" } ?? " (tag/length incomplete)"
            error = ProfilePackageError(
                code: .truncated, elementIndex: elementCount, elementType: pending.map { ProfileElementType(tag: TLVTag($0.tag)) },
                elementOffset: bufferOffset, offset: receivedByteCount, detail: "\(buffer.count) bytes\(expected) received")
        } else if elementTypes.isEmpty {
            error = ProfilePackageError(code: .empty, offset: 0, detail: "no profile element")
        } else if elementTypes.count == 1 {
            error = ProfilePackageError(code: .mfNotSecond, elementIndex: 1, offset: receivedByteCount, detail: "the package ends after the header")
        } else if !ended {
            error = ProfilePackageError(code: .missingEnd, elementIndex: elementCount, offset: receivedByteCount, detail: "no PE-End")
        }
        if let error {
            fail(error)
            throw error
        }
        guard let header else { preconditionFailure("PEs without a header cannot have been accepted") }
        return ProfilePackageSummary(
            header: header, totalSize: bufferOffset, elementTypes: elementTypes, identifications: identifications,
            counts: counts, skippedCount: skipped)
    }

    private mutating func fail(_ error: ProfilePackageError) {
        failure = error
        buffer = []
        pending = nil
    }

    // MARK: Checks

    /// Checks that need only the tag and length: class, size limits, order and occurrence.
    private func checkArrival(_ top: DERScan.Header, at offset: Int) throws(ProfilePackageError) {
        let index = elementCount
        let type = top.tagClass == 2 && top.constructed ? ProfileElementType(tag: TLVTag(top.tag)) : nil
        func refuse(_ code: ProfilePackageError.Code, _ detail: String) -> ProfilePackageError {
            ProfilePackageError(code: code, elementIndex: index, elementType: type, elementOffset: offset, offset: offset, detail: detail)
        }
        guard let type else {
            throw refuse(.notAProfileElement, "tag \(Hex.encode(top.tagBytes)) is not a ProfileElement")
        }
        let size = top.headerLength + top.length
        guard size <= options.maximumElementSize else {
            throw refuse(.elementTooLarge, "\(type) announces \(size) bytes, at most \(options.maximumElementSize) accepted")
        }
        guard size <= options.maximumPackageSize - offset else {
            throw refuse(.packageTooLarge, "the package would exceed \(options.maximumPackageSize) bytes")
        }
        if index == 0 {
            guard type == .header else { throw refuse(.headerNotFirst, "the first PE is \(type), not the ProfileHeader") }
            return
        }
        if type == .header { throw refuse(.duplicateElement, "a second ProfileHeader") }
        if index == 1, type != .mf { throw refuse(.mfNotSecond, "the second PE is \(type), not PE-MF") }
        if counts[type, default: 0] > 0, isSingle(type) { throw refuse(.duplicateElement, "a second PE-\(type)") }
        if let needed = ProfilePackageStream.prerequisite[type], counts[needed, default: 0] == 0 {
            throw refuse(.missingPrerequisite, "PE-\(type) before any PE-\(needed)")
        }
    }

    /// pySim `check_number_of_occurrence`; the NAA families may repeat when the header mandates multiple-usim/isim/csim.
    private func isSingle(_ type: ProfileElementType) -> Bool {
        switch type {
        case .header, .mf, .end, .cd, .telecom: return true
        case .usim, .optUSIM, .df5GS, .dfSAIP: return header?.requiresService("multiple-usim") != true
        case .isim, .optISIM: return header?.requiresService("multiple-isim") != true
        case .csim, .optCSIM: return header?.requiresService("multiple-csim") != true
        default: return false
        }
    }

    /// pySim `check_optional_ordering`, read as "after": the parent ADF must have been created first.
    private static let prerequisite: [ProfileElementType: ProfileElementType] = [
        .optUSIM: .usim, .gsmAccess: .usim, .phonebook: .usim, .df5GS: .usim, .dfSAIP: .usim, .optISIM: .isim, .optCSIM: .csim,
    ]

    /// Checks on the complete PE: DER tree, ProfileHeader or PEHeader, identification, support, End rules.
    /// The PE is `buffer[start..<end]`; fault offsets are made relative to its start.
    private mutating func complete(start: Int, end: Int, _ top: DERScan.Header, at offset: Int) throws(ProfilePackageError)
        -> (index: Int, type: ProfileElementType, elementHeader: PEHeader?, supported: Bool)
    {
        let index = elementCount
        let type = ProfileElementType(tag: TLVTag(top.tag))
        var elementHeader: PEHeader?
        var parsedHeader: ProfileHeader?
        var supported = true
        do throws(Fault) {
            if type == .header {
                try DERScan.walk(buffer, from: start + top.headerLength, to: end, depth: 1, options: options)
                parsedHeader = try ProfileHeader(buffer, from: start + top.headerLength, to: end, options: options)
            } else {
                do throws(Fault) {
                    elementHeader = try DERScan.elementHeader(buffer, at: start + top.headerLength, end: end, options: options)
                } catch {
                    if type.isDefined && !options.unsupportedTypes.contains(type) { throw error }
                    throw Fault(.unsupportedElement, start, "PE-\(type) is not supported and has no readable PEHeader (\(error.detail))")
                }
                try DERScan.walk(buffer, from: start + top.headerLength, to: end, depth: 1, options: options)
            }
        } catch {
            throw error.shifted(by: -start).packageError(index: index, type: type, elementOffset: offset, identification: elementHeader?.identification)
        }
        if let elementHeader {
            guard !seenIdentifications.contains(elementHeader.identification) else {
                throw ProfilePackageError(
                    code: .duplicateIdentification, elementIndex: index, elementType: type, identification: elementHeader.identification,
                    elementOffset: offset, offset: offset + top.headerLength,
                    detail: "identification \(elementHeader.identification) already used")
            }
            if !type.isDefined || (options.unsupportedTypes.contains(type) && type != .mf && type != .end) {
                guard !elementHeader.mandated else {
                    throw ProfilePackageError(
                        code: .unsupportedElement, elementIndex: index, elementType: type, identification: elementHeader.identification,
                        elementOffset: offset, offset: offset, detail: "PE-\(type) is mandated but not supported")
                }
                supported = false
            }
        }
        if type == .end { try checkMandatoryServices(index: index, offset: offset, identification: elementHeader?.identification) }
        elementTypes.append(type)
        counts[type, default: 0] += 1
        if let elementHeader {
            identifications.append(elementHeader.identification)
            seenIdentifications.insert(elementHeader.identification)
        }
        if !supported { skipped += 1 }
        if type == .end { ended = true }
        if let parsedHeader { header = parsedHeader }
        return (index, type, elementHeader, supported)
    }

    /// pySim `check_mandatory_services`, PE half: a mandatory usim/isim/csim service needs its PE.
    private func checkMandatoryServices(index: Int, offset: Int, identification: Int?) throws(ProfilePackageError) {
        guard let header else { return }
        for (service, type) in [("usim", ProfileElementType.usim), ("isim", .isim), ("csim", .csim)]
        where header.requiresService(service) && counts[type, default: 0] == 0 {
            throw ProfilePackageError(
                code: .mandatoryServiceWithoutElement, elementIndex: index, elementType: .end, identification: identification,
                elementOffset: offset, offset: offset, detail: "\(service) is a mandatory service but no PE-\(type) came")
        }
    }
}

// MARK: - PEStatus and EUICCResponse

/// `PEStatus ::= SEQUENCE { status [0], identification [1] OPTIONAL, additional-information [2] OPTIONAL, offset [3] OPTIONAL }`.
public struct PEStatus: Hashable, Sendable, CustomStringConvertible {
    /// The status INTEGER: named values, ISO SWs `6xxx`/`9xxx` as their own value, proprietary 40960…65535.
    public struct Status: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public init(integerLiteral value: Int) { self.rawValue = value }

        public static let ok: Status = 0
        public static let peNotSupported: Status = 1
        public static let memoryFailure: Status = 2
        public static let badValues: Status = 3
        public static let notEnoughMemory: Status = 4
        public static let invalidRequestFormat: Status = 5
        public static let invalidParameter: Status = 6
        public static let runtimeNotSupported: Status = 7
        public static let libNotSupported: Status = 8
        public static let templateNotSupported: Status = 9
        public static let featureNotSupported: Status = 10
        public static let pinCodeMissing: Status = 11
        public static let unsupportedProfileVersion: Status = 31

        private static let names: [Int: String] = [
            0: "ok", 1: "pe-not-supported", 2: "memory-failure", 3: "bad-values", 4: "not-enough-memory",
            5: "invalid-request-format", 6: "invalid-parameter", 7: "runtime-not-supported", 8: "lib-not-supported",
            9: "template-not-supported", 10: "feature-not-supported", 11: "pin-code-missing", 31: "unsupported-profile-version",
        ]

        /// An ISO 7816 status word `6xxx` or `9xxx`, reported as its own value (24576…28671, 36864…40959).
        public init?(statusWord: UInt16) {
            guard (0x6000...0x6FFF).contains(statusWord) || (0x9000...0x9FFF).contains(statusWord) else { return nil }
            rawValue = Int(statusWord)
        }

        public var statusWord: UInt16? {
            (0x6000...0x6FFF).contains(rawValue) || (0x9000...0x9FFF).contains(rawValue) ? UInt16(rawValue) : nil
        }

        public var name: String {
            if let name = Status.names[rawValue] { return name }
            if let statusWord { return "sw-\(Hex.encode([UInt8(statusWord >> 8), UInt8(statusWord & 0xFF)]))" }
            return rawValue >= 40960 ? "proprietary-\(rawValue)" : "status-\(rawValue)"
        }

        public var description: String { "\(rawValue) \(name)" }
    }

    static let maxStatus = 65535
    static let maxIdentification = 32767
    static let maxAdditionalInformation = 255
    static let maxOffset = 2_147_483_647

    public var status: Status
    /// The PE that triggered the status (UInt15).
    public var identification: Int?
    /// UInt8.
    public var additionalInformation: Int?
    /// Position in the PE (UInt31).
    public var offset: Int?

    public init(status: Status, identification: Int? = nil, additionalInformation: Int? = nil, offset: Int? = nil) {
        self.status = status
        self.identification = identification
        self.additionalInformation = additionalInformation
        self.offset = offset
    }

    /// SEQUENCE { 80 status [81 id] [82 info] [83 offset] }. Values are encoded as given (the decoder checks ranges).
    public var tlv: TLV {
        var fields = [TLV(0x80, DER.encodeUnsigned(status.rawValue))]
        if let identification { fields.append(TLV(0x81, DER.encodeUnsigned(identification))) }
        if let additionalInformation { fields.append(TLV(0x82, DER.encodeUnsigned(additionalInformation))) }
        if let offset { fields.append(TLV(0x83, DER.encodeUnsigned(offset))) }
        return TLV(0x30, children: fields)
    }

    init(tlv: TLV) throws(TLVError) {
        guard tlv.tag == 0x30 else { throw TLVError(code: .unexpectedTag, detail: "PEStatus is a SEQUENCE, not \(tlv.tag)") }
        var status: Status?
        var identification: Int?
        var additionalInformation: Int?
        var offset: Int?
        var last = -1
        for field in try tlv.children() {
            let bytes = field.tag.bytes
            guard bytes.count == 1, bytes[0] & 0xC0 == 0x80, Int(bytes[0] & 0x1F) > last else {
                throw TLVError(code: .unexpectedTag, detail: "PEStatus field \(field.tag) unexpected or out of order")
            }
            let number = Int(bytes[0] & 0x1F)
            last = number
            guard number <= 3 else { continue }  // an extension addition
            guard !field.tag.isConstructed else { throw TLVError(code: .invalidValue, detail: "PEStatus field \(field.tag) is an INTEGER") }
            let limits = [PEStatus.maxStatus, PEStatus.maxIdentification, PEStatus.maxAdditionalInformation, PEStatus.maxOffset]
            guard let value = DER.unsigned(field.value[...], max: limits[number]) else {
                throw TLVError(code: .invalidValue, detail: "PEStatus field \(field.tag) is not a DER integer in range")
            }
            switch number {
            case 0: status = Status(rawValue: value)
            case 1: identification = value
            case 2: additionalInformation = value
            default: offset = value
            }
        }
        guard let status else { throw TLVError(code: .missingTag, detail: "PEStatus without status") }
        self.init(status: status, identification: identification, additionalInformation: additionalInformation, offset: offset)
    }

    public var description: String {
        var text = "PEStatus(\(status)"
        if let identification { text += ", id \(identification)" }
        if let additionalInformation { text += ", info \(additionalInformation)" }
        if let offset { text += ", offset \(offset)" }
        return text + ")"
    }
}

/// `EUICCResponse ::= SEQUENCE { peStatus [0] SEQUENCE OF PEStatus, profileInstallationAborted [1] NULL OPTIONAL,
/// statusMessage [2] UTF8String (SIZE (2..64)) OPTIONAL }` — the eUICC's answer at the end of the SCP03t stream.
public struct EUICCResponse: Hashable, Sendable, CustomStringConvertible {
    public var peStatus: [PEStatus]
    public var profileInstallationAborted: Bool
    public var statusMessage: String?

    public init(peStatus: [PEStatus], profileInstallationAborted: Bool = false, statusMessage: String? = nil) {
        self.peStatus = peStatus
        self.profileInstallationAborted = profileInstallationAborted
        self.statusMessage = statusMessage
    }

    /// One PEStatus ok: `30 07 A0 05 30 03 80 01 00`, as the real card in the WT trace answered.
    public static let success = EUICCResponse(peStatus: [PEStatus(status: .ok)])

    /// The answer for a refused package.
    public static func failure(_ error: ProfilePackageError, statusMessage: String? = nil) -> EUICCResponse {
        EUICCResponse(peStatus: [error.peStatus], profileInstallationAborted: true, statusMessage: statusMessage)
    }

    /// Every PEStatus is ok and the installation was not aborted.
    public var isSuccess: Bool { !profileInstallationAborted && peStatus.allSatisfy { $0.status == .ok } }

    /// DER. The status message is encoded as given; callers keep it within 2…64 characters.
    public var encoded: [UInt8] {
        var fields = [TLV(0xA0, children: peStatus.map(\.tlv))]
        if profileInstallationAborted { fields.append(TLV(0x81, [])) }
        if let statusMessage { fields.append(TLV(0x82, Array(statusMessage.utf8))) }
        return TLV(0x30, children: fields).encoded
    }

    /// Decodes an EUICCResponse; extension fields (context tags above [2]) are skipped.
    public init(encoded bytes: [UInt8]) throws(TLVError) {
        let outer = try TLV.parseOne(bytes)
        guard outer.tag == 0x30 else { throw TLVError(code: .unexpectedTag, detail: "EUICCResponse is a SEQUENCE, not \(outer.tag)") }
        var statuses: [PEStatus]?
        var aborted = false
        var message: String?
        var last = -1
        for field in try outer.children() {
            let tagBytes = field.tag.bytes
            guard tagBytes.count == 1, tagBytes[0] & 0xC0 == 0x80, Int(tagBytes[0] & 0x1F) > last else {
                throw TLVError(code: .unexpectedTag, detail: "EUICCResponse field \(field.tag) unexpected or out of order")
            }
            last = Int(tagBytes[0] & 0x1F)
            switch field.tag {
            case 0xA0: statuses = try field.children().map { (item) throws(TLVError) in try PEStatus(tlv: item) }
            case 0x81:
                guard field.value.isEmpty else { throw TLVError(code: .invalidValue, detail: "profileInstallationAborted is NULL") }
                aborted = true
            case 0x82:
                guard let text = String(validating: field.value, as: UTF8.self), (2...64).contains(text.count) else {
                    throw TLVError(code: .invalidValue, detail: "statusMessage is UTF-8 of 2 to 64 characters")
                }
                message = text
            default:
                guard last > 2 else { throw TLVError(code: .unexpectedTag, detail: "EUICCResponse field \(field.tag) has the wrong form") }
            }
        }
        guard let statuses else { throw TLVError(code: .missingTag, detail: "EUICCResponse without peStatus") }
        self.init(peStatus: statuses, profileInstallationAborted: aborted, statusMessage: message)
    }

    public var description: String {
        "EUICCResponse(\(peStatus.map(\.description).joined(separator: ", "))\(profileInstallationAborted ? ", aborted" : "")\(statusMessage.map { ", \"\($0)\"" } ?? ""))"
    }
}

// MARK: - DER scanning (index-based, no copies)

enum DERScan {
    /// A tag and length read at some offset.
    struct Header {
        /// The tag bytes as one number (`BF20`), as TLVTag holds it.
        let tag: UInt32
        /// The tag number (class and form bits removed).
        let number: Int
        let firstByte: UInt8
        /// Tag plus length bytes.
        let headerLength: Int
        let length: Int

        var constructed: Bool { firstByte & 0x20 != 0 }
        /// 0 universal, 1 application, 2 context-specific, 3 private.
        var tagClass: UInt8 { firstByte >> 6 }
        var tagBytes: [UInt8] { TLVTag(tag).bytes }
    }

    struct Failure: Error {
        /// More bytes could complete it (only meaningful at the end of a stream buffer).
        let incomplete: Bool
        /// Offset of the failure in the scanned array.
        let offset: Int
        let detail: String
    }

    /// Reads a tag (1 to 3 bytes, DER-minimal) and a definite length (short form, 81, 82, 83) at `start`, not
    /// reading at or beyond `end`. The value's length is not checked here.
    static func header(_ bytes: [UInt8], at start: Int, end: Int, minimalLengths: Bool) throws(Failure) -> Header {
        var cursor = start
        guard cursor < end else { throw Failure(incomplete: true, offset: cursor, detail: "no tag") }
        let first = bytes[cursor]
        cursor += 1
        var tag = UInt32(first)
        var number = Int(first & 0x1F)
        if first == 0x00 { throw Failure(incomplete: false, offset: start, detail: "tag 00 (end-of-contents) in DER") }
        if number == 0x1F {
            number = 0
            var count = 0
            while true {
                guard cursor < end else { throw Failure(incomplete: true, offset: cursor, detail: "tag cut short") }
                let next = bytes[cursor]
                cursor += 1
                count += 1
                guard count <= 2 else { throw Failure(incomplete: false, offset: start, detail: "tag longer than 3 bytes") }
                guard count > 1 || next != 0x80 else { throw Failure(incomplete: false, offset: start, detail: "tag number with a leading zero") }
                tag = tag << 8 | UInt32(next)
                number = number << 7 | Int(next & 0x7F)
                if next & 0x80 == 0 { break }
            }
            guard number >= 0x1F else { throw Failure(incomplete: false, offset: start, detail: "tag number \(number) in the long form") }
        }
        guard cursor < end else { throw Failure(incomplete: true, offset: cursor, detail: "no length") }
        let lengthByte = bytes[cursor]
        cursor += 1
        var length = Int(lengthByte)
        if lengthByte >= 0x80 {
            let count = Int(lengthByte & 0x7F)
            guard (1...3).contains(count) else {
                let what = lengthByte == 0x80 ? "indefinite length (not DER)" : "length form \(Hex.encode([lengthByte]))"
                throw Failure(incomplete: false, offset: cursor - 1, detail: what)
            }
            guard end - cursor >= count else { throw Failure(incomplete: true, offset: cursor, detail: "length cut short") }
            length = 0
            for k in 0..<count { length = length << 8 | Int(bytes[cursor + k]) }
            if minimalLengths, length < 0x80 || bytes[cursor] == 0 {
                throw Failure(incomplete: false, offset: cursor - 1, detail: "length \(length) not in its shortest form")
            }
            cursor += count
        }
        return Header(tag: tag, number: number, firstByte: first, headerLength: cursor - start, length: length)
    }

    /// A header whose value must lie within `end` (inside a complete PE: running short is malformed, not incomplete).
    static func fieldHeader(_ bytes: [UInt8], at start: Int, end: Int, options: ProfilePackage.Options) throws(Fault) -> Header {
        try fieldHeader(bytes, at: start, end: end, minimalLengths: options.requireMinimalLengths)
    }

    static func fieldHeader(_ bytes: [UInt8], at start: Int, end: Int, minimalLengths: Bool) throws(Fault) -> Header {
        let item: Header
        do throws(DERScan.Failure) {
            item = try header(bytes, at: start, end: end, minimalLengths: minimalLengths)
        } catch {
            throw Fault(.malformed, error.offset, error.detail)
        }
        guard item.length <= end - start - item.headerLength else {
            throw Fault(.malformed, start, "tag \(Hex.encode(item.tagBytes)) announces \(item.length) bytes, \(end - start - item.headerLength) remain in its parent")
        }
        return item
    }

    /// Checks that `bytes[from..<to]` is a sequence of TLVs filling it exactly, recursing into constructed ones.
    static func walk(_ bytes: [UInt8], from start: Int, to end: Int, depth: Int, options: ProfilePackage.Options) throws(Fault) {
        // The two options the walk needs, as plain values: passing the Options struct down the
        // recursion retained and released its collections at every level.
        try walk(bytes, from: start, to: end, depth: depth, maximumDepth: options.maximumDepth, minimalLengths: options.requireMinimalLengths)
    }

    static func walk(_ bytes: [UInt8], from start: Int, to end: Int, depth: Int, maximumDepth: Int, minimalLengths: Bool) throws(Fault) {
        // The fast check accepts a subset of what the checked walk below accepts (same rules, no
        // messages); anything it does not accept is walked again to find and describe the fault.
        if quickWalk(bytes, from: start, to: end, depth: depth, maximumDepth: maximumDepth, minimalLengths: minimalLengths) { return }
        try checkedWalk(bytes, from: start, to: end, depth: depth, maximumDepth: maximumDepth, minimalLengths: minimalLengths)
    }

    /// The walk's rules on raw memory, iteratively: tags (not 00; long form of at most 2 more bytes,
    /// no leading 80, number ≥ 31), lengths (short, or 1–3 bytes, shortest form when asked), every
    /// value inside its parent, nesting below `maximumDepth`. True when all hold. (TS.48 packages have
    /// ~2 400 TLVs in 12 KB; DERWalkTests proves the two walks agree on mutated packages.)
    static func quickWalk(_ bytes: [UInt8], from start: Int, to end: Int, depth: Int, maximumDepth: Int, minimalLengths: Bool) -> Bool {
        guard start >= 0, end <= bytes.count, start <= end else { return false }
        return bytes.withUnsafeBufferPointer { buffer -> Bool in
            guard let base = buffer.baseAddress else { return start == end }
            // Ends of the open constructed values, innermost last.
            var ends = [Int](repeating: 0, count: 0)
            ends.reserveCapacity(16)
            var limit = end
            var cursor = start
            var level = depth
            guard level < maximumDepth else { return false }
            while true {
                while cursor == limit {
                    guard let outer = ends.popLast() else { return true }
                    limit = outer
                    level -= 1
                }
                let first = base[cursor]
                cursor += 1
                if first == 0 { return false }
                if first & 0x1F == 0x1F {
                    var number = 0
                    var count = 0
                    while true {
                        guard cursor < limit else { return false }
                        let next = base[cursor]
                        cursor += 1
                        count += 1
                        if count > 2 || (count == 1 && next == 0x80) { return false }
                        number = number << 7 | Int(next & 0x7F)
                        if next & 0x80 == 0 { break }
                    }
                    if number < 0x1F { return false }
                }
                guard cursor < limit else { return false }
                let lengthByte = base[cursor]
                cursor += 1
                var length = Int(lengthByte)
                if lengthByte >= 0x80 {
                    let count = Int(lengthByte & 0x7F)
                    guard count >= 1, count <= 3, limit - cursor >= count else { return false }
                    length = 0
                    for k in 0..<count { length = length << 8 | Int(base[cursor + k]) }
                    if minimalLengths, length < 0x80 || base[cursor] == 0 { return false }
                    cursor += count
                }
                guard length <= limit - cursor else { return false }
                if first & 0x20 != 0 {
                    // Entering a constructed value: the checked walk recurses with depth + 1.
                    guard level + 1 < maximumDepth else { return false }
                    ends.append(limit)
                    limit = cursor + length
                    level += 1
                } else {
                    cursor += length
                }
            }
        }
    }

    static func checkedWalk(_ bytes: [UInt8], from start: Int, to end: Int, depth: Int, maximumDepth: Int, minimalLengths: Bool) throws(Fault) {
        guard depth < maximumDepth else { throw Fault(.malformed, start, "nesting deeper than \(maximumDepth)") }
        var cursor = start
        while cursor < end {
            let item = try fieldHeader(bytes, at: cursor, end: end, minimalLengths: minimalLengths)
            let valueStart = cursor + item.headerLength
            if item.constructed {
                try checkedWalk(bytes, from: valueStart, to: valueStart + item.length, depth: depth + 1, maximumDepth: maximumDepth, minimalLengths: minimalLengths)
            }
            cursor = valueStart + item.length
        }
    }

    /// The PEHeader that must open a PE's value: `A0 { [80 00] 81 <UInt15> }` (extension fields tolerated).
    static func elementHeader(_ bytes: [UInt8], at start: Int, end limit: Int? = nil, options: ProfilePackage.Options) throws(Fault) -> PEHeader {
        let limit = limit ?? bytes.count
        guard start < limit else { throw Fault(.missingElementHeader, start, "empty PE: no PEHeader") }
        let outer = try fieldHeader(bytes, at: start, end: limit, options: options)
        guard outer.tag == 0xA0 else {
            throw Fault(.missingElementHeader, start, "the first component is \(Hex.encode(outer.tagBytes)), not the PEHeader A0")
        }
        let end = start + outer.headerLength + outer.length
        var cursor = start + outer.headerLength
        var mandated = false
        var identification: Int?
        var last = -1
        while cursor < end {
            let field = try fieldHeader(bytes, at: cursor, end: end, options: options)
            let value = bytes[(cursor + field.headerLength)..<(cursor + field.headerLength + field.length)]
            guard field.tagClass == 2, field.number > last else {
                throw Fault(.invalidElementHeader, cursor, "PEHeader field \(Hex.encode(field.tagBytes)) unexpected or out of order")
            }
            last = field.number
            switch field.number {
            case 0:
                guard !field.constructed, value.isEmpty else { throw Fault(.invalidElementHeader, cursor, "mandated is NULL (80 00)") }
                mandated = true
            case 1:
                guard !field.constructed, let id = DER.unsigned(value, max: PEStatus.maxIdentification) else {
                    throw Fault(.invalidElementHeader, cursor, "identification is not a DER UInt15")
                }
                identification = id
            default:
                guard identification != nil else { throw Fault(.invalidElementHeader, cursor, "PEHeader field [\(field.number)] before identification") }
            }
            cursor += field.headerLength + field.length
        }
        guard let identification else { throw Fault(.invalidElementHeader, start, "PEHeader without identification") }
        return PEHeader(mandated: mandated, identification: identification)
    }
}

// MARK: - DER values

enum DER {
    /// A non-negative DER INTEGER (minimal two's complement) not above `max`.
    static func unsigned(_ bytes: ArraySlice<UInt8>, max: Int) -> Int? {
        guard let first = bytes.first, bytes.count <= 5, first & 0x80 == 0 else { return nil }
        if bytes.count > 1, first == 0, bytes[bytes.startIndex + 1] & 0x80 == 0 { return nil }
        var value = 0
        for byte in bytes { value = value << 8 | Int(byte) }
        return value <= max ? value : nil
    }

    /// The minimal DER INTEGER contents of a non-negative value.
    static func encodeUnsigned(_ value: Int) -> [UInt8] {
        precondition(value >= 0, "negative INTEGER")
        var bytes: [UInt8] = []
        var rest = value
        repeat {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        } while rest > 0
        if bytes[0] & 0x80 != 0 { bytes.insert(0, at: 0) }
        return bytes
    }

    /// Dotted text of OBJECT IDENTIFIER contents (minimal base-128 arcs).
    static func objectIdentifier(_ bytes: ArraySlice<UInt8>) -> String? {
        guard let last = bytes.last, last & 0x80 == 0 else { return nil }
        var arcs: [Int] = []
        var value = 0
        var fresh = true
        for byte in bytes {
            if fresh && byte == 0x80 { return nil }
            guard value <= Int.max >> 8 else { return nil }
            value = value << 7 | Int(byte & 0x7F)
            fresh = byte & 0x80 == 0
            if fresh {
                if arcs.isEmpty {
                    let first = min(value / 40, 2)
                    arcs = [first, value - first * 40]
                } else {
                    arcs.append(value)
                }
                value = 0
            }
        }
        return arcs.map(String.init).joined(separator: ".")
    }
}
