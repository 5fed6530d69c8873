// The snapshot types: Profile, EIS, caller, operation, PLMA, ONC, notification. Field names in
// Lua are listed in docs/plugins.md ("Snapshots"); identifiers appear as their wire text and
// instants as xs:dateTime text in UTC (`2024-01-01T00:00:00Z`).

public import M2MCore

// MARK: - Profile

/// A Profile as the EIS lists it (`m2m.Profile`): the whole `ProfileInfo`, no secrets in it.
public struct ProfileSnapshot: PolicySnapshot {
    public static let kind = SnapshotKind.profile
    public let profile: ProfileInfo
    public let encoded: [UInt8]

    public init(_ profile: ProfileInfo) {
        self.profile = profile
        var w = ValueWriter(capacity: 192)
        Self.write(profile, into: &w)
        encoded = w.bytes
    }

    static func write(_ p: ProfileInfo, into w: inout ValueWriter) {
        // The fields hooks read most come first (a record is scanned in order).
        w.beginRecord(.profile)
        w.field(.iccid, p.iccid.text)
        w.field(.state, p.state.rawValue)
        w.field(.mnoID, p.mnoID.text)
        w.field(.profileType, p.profileType?.text)
        w.field(.fallback, p.fallbackAttribute)
        w.field(.emergency, p.emergencyProfileAttribute)
        // Derived from the POL2 rules, so hooks need not walk them (read-only; not input).
        w.field(.enableNotAllowed, p.pol2.rules.contains { $0.action == .enable && $0.qualification == .notAllowed })
        w.field(.disableNotAllowed, p.pol2.disablingNotAllowed)
        w.field(.deleteNotAllowed, p.pol2.deletionNotAllowed)
        w.field(.autoDelete, p.pol2.autoDeleteOnDisable)
        w.field(.isdpAID, p.isdPAID.text)
        w.field(.smdpID, p.smdpID?.text)
        w.field(.allocatedMemory, p.allocatedMemory)
        w.field(.freeMemory, p.freeMemory)
        w.field(.imsi, p.subscriptionAddress.imsi?.text)
        w.field(.msisdn, p.subscriptionAddress.msisdn?.text)
        w.key(.pol2)
        w.beginArray(count: p.pol2.rules.count)
        for rule in p.pol2.rules {
            w.element()
            w.beginRecord(.pol2Rule)
            w.field(.subject, rule.subject.rawValue)
            w.field(.action, rule.action.rawValue)
            w.field(.qualification, rule.qualification.rawValue)
            w.endRecord()
        }
        w.endArray()
        w.endRecord()
    }

    public init(policyValue: PolicyValue) throws(PolicyError) {
        try self.init(policyValue: policyValue, path: "profile", defaults: false)
    }

    init(policyValue: PolicyValue, path: String, defaults: Bool) throws(PolicyError) {
        let r = try FieldReader(
            policyValue, path: path, defaults: defaults,
            allowed: [.iccid, .isdpAID, .mnoID, .fallback, .emergency, .state, .smdpID, .profileType,
                      .allocatedMemory, .freeMemory, .imsi, .msisdn, .pol2,
                      .enableNotAllowed, .disableNotAllowed, .deleteNotAllowed, .autoDelete])
        var rules: [POL2.Rule] = []
        for (i, item) in try r.list(.pol2).enumerated() {
            let rr = try FieldReader(item, path: "\(path).pol2[\(i + 1)]", defaults: defaults, allowed: [.subject, .action, .qualification])
            let subject = try rr.string(.subject, default: "PROFILE")
            let action = try rr.string(.action, default: "")
            let qualification = try rr.string(.qualification, default: "")
            guard let s = POL2.Rule.Subject(rawValue: subject), let a = POL2.Rule.Action(rawValue: action),
                let q = POL2.Rule.Qualification(rawValue: qualification)
            else {
                throw .invalidInput("\(path).pol2[\(i + 1)]: not a POL2 rule (\(subject), \(action), \(qualification))")
            }
            rules.append(POL2.Rule(subject: s, action: a, qualification: q))
        }
        let stateText = try r.string(.state, default: ProfileState.disabled.rawValue)
        guard let state = ProfileState(rawValue: stateText) else {
            throw .invalidInput("\(path).state: '\(stateText)' is not Created, Disabled or Enabled")
        }
        let profile = ProfileInfo(
            iccid: try r.required(.iccid, default: FixtureDefaults.iccid, parse(ICCID.self)),
            isdPAID: try r.required(.isdpAID, default: FixtureDefaults.isdpAID, parse(AID.self)),
            mnoID: try r.required(.mnoID, default: FixtureDefaults.mnoID, parse(OID.self)),
            fallbackAttribute: try r.bool(.fallback, default: false),
            emergencyProfileAttribute: try r.bool(.emergency, default: false),
            subscriptionAddress: SubscriptionAddress(imsi: try r.optional(.imsi, parse(IMSI.self)), msisdn: try r.optional(.msisdn, parse(MSISDN.self))),
            state: state,
            smdpID: try r.optional(.smdpID, parse(OID.self)),
            profileType: defaults && !r.has(.profileType) ? FixtureDefaults.profileType : try r.optional(.profileType, parse(String100.self)),
            allocatedMemory: try r.int(.allocatedMemory, default: 16_384),
            freeMemory: try r.optionalInt(.freeMemory),
            pol2: POL2(rules: rules))
        self.init(profile)
        // The four POL2 booleans are derived from the rules: a value given must agree with them.
        let derived: [(PolicyKey, Bool)] = [
            (.enableNotAllowed, rules.contains { $0.action == .enable && $0.qualification == .notAllowed }),
            (.disableNotAllowed, profile.pol2.disablingNotAllowed), (.deleteNotAllowed, profile.pol2.deletionNotAllowed),
            (.autoDelete, profile.pol2.autoDeleteOnDisable),
        ]
        for (key, value) in derived where r.has(key) && r.value(key).boolValue != value {
            throw .invalidInput("\(path).\(key.name) is derived from pol2: set the POL2 rules instead")
        }
    }
}

// MARK: - EIS

/// The EIS as plugins see it (`m2m.EIS`): identity, memory, capabilities, Profiles and
/// additional properties. Key sets, signatures and the audit trail are not part of it.
public struct EISSnapshot: PolicySnapshot {
    public static let kind = SnapshotKind.eis
    public let eid: EID
    public let eumID: OID
    public let smsrID: OID
    public let productionDate: Timestamp
    public let platformType: String100
    public let platformVersion: ThreeDigitVersion
    public let remainingMemory: Int
    public let availableMemory: Int
    public let lastAuditDate: Timestamp?
    public let capabilities: EUICCCapabilities
    public let profiles: [ProfileSnapshot]
    public let isdrAID: AID
    public let ecasdAID: AID
    public let additionalProperties: [String: String]
    public let encoded: [UInt8]

    public init(
        eid: EID, eumID: OID, smsrID: OID, productionDate: Timestamp, platformType: String100,
        platformVersion: ThreeDigitVersion, remainingMemory: Int, availableMemory: Int, lastAuditDate: Timestamp? = nil,
        capabilities: EUICCCapabilities, profiles: [ProfileSnapshot], isdrAID: AID, ecasdAID: AID,
        additionalProperties: [String: String] = [:]
    ) {
        self.eid = eid
        self.eumID = eumID
        self.smsrID = smsrID
        self.productionDate = productionDate
        self.platformType = platformType
        self.platformVersion = platformVersion
        self.remainingMemory = remainingMemory
        self.availableMemory = availableMemory
        self.lastAuditDate = lastAuditDate
        self.capabilities = capabilities
        self.profiles = profiles
        self.isdrAID = isdrAID
        self.ecasdAID = ecasdAID
        self.additionalProperties = additionalProperties
        var w = ValueWriter(capacity: 256 + 192 * profiles.count)
        w.beginRecord(.eis)
        w.field(.eid, eid.text)
        w.field(.eumID, eumID.text)
        w.field(.smsrID, smsrID.text)
        w.field(.productionDate, productionDate.text)
        w.field(.platformType, platformType.text)
        w.field(.platformVersion, platformVersion.text)
        w.field(.remainingMemory, remainingMemory)
        w.field(.availableMemory, availableMemory)
        w.field(.lastAuditDate, lastAuditDate?.text)
        w.key(.capabilities)
        w.beginRecord(.capabilities)
        w.field(.cattpSupport, capabilities.cattpSupport)
        w.field(.cattpVersion, capabilities.cattpVersion?.text)
        w.field(.httpSupport, capabilities.httpSupport)
        w.field(.httpVersion, capabilities.httpVersion?.text)
        w.field(.securePacketVersion, capabilities.securePacketVersion.text)
        w.field(.remoteProvisioningVersion, capabilities.remoteProvisioningVersion.text)
        w.endRecord()
        w.key(.profiles)
        w.beginArray(count: profiles.count)
        for p in profiles {
            w.element()
            w.raw(p.encoded)
        }
        w.endArray()
        w.field(.isdrAID, isdrAID.text)
        w.field(.ecasdAID, ecasdAID.text)
        w.key(.additionalProperties)
        w.beginRecord()
        for k in additionalProperties.keys.sorted() {
            w.key(k)
            w.string(additionalProperties[k]!)
        }
        w.endRecord()
        w.endRecord()
        encoded = w.bytes
    }

    /// The policy view of a full EIS.
    public init(_ eis: EIS) {
        var properties: [String: String] = [:]
        for p in eis.additionalProperties ?? [] { properties[p.key] = p.value }
        self.init(
            eid: eis.eid, eumID: eis.eumSignedInfo.eumID, smsrID: eis.smsrID, productionDate: eis.eumSignedInfo.productionDate,
            platformType: eis.eumSignedInfo.platformType, platformVersion: eis.eumSignedInfo.platformVersion,
            remainingMemory: eis.remainingMemory, availableMemory: eis.availableMemoryForProfiles,
            lastAuditDate: eis.lastAuditDate, capabilities: eis.eumSignedInfo.capabilities,
            profiles: eis.profiles.map(ProfileSnapshot.init), isdrAID: eis.isdR.aid, ecasdAID: eis.eumSignedInfo.ecasd.aid,
            additionalProperties: properties)
    }

    /// The Profile with this ICCID, if the EIS lists it.
    public func profile(_ iccid: ICCID) -> ProfileSnapshot? { profiles.first { $0.profile.iccid == iccid } }

    public init(policyValue: PolicyValue) throws(PolicyError) {
        try self.init(policyValue: policyValue, path: "eis", defaults: false)
    }

    init(policyValue: PolicyValue, path: String, defaults: Bool) throws(PolicyError) {
        let r = try FieldReader(
            policyValue, path: path, defaults: defaults,
            allowed: [.eid, .eumID, .smsrID, .productionDate, .platformType, .platformVersion, .remainingMemory,
                      .availableMemory, .lastAuditDate, .capabilities, .profiles, .isdrAID, .ecasdAID, .additionalProperties])
        var capabilities = FixtureDefaults.capabilities
        if r.has(.capabilities) || !defaults {
            let c = try FieldReader(
                r.value(.capabilities), path: "\(path).capabilities", defaults: defaults,
                allowed: [.cattpSupport, .cattpVersion, .httpSupport, .httpVersion, .securePacketVersion, .remoteProvisioningVersion])
            let d = FixtureDefaults.capabilities
            capabilities = EUICCCapabilities(
                cattpSupport: try c.bool(.cattpSupport, default: d.cattpSupport),
                cattpVersion: try c.optional(.cattpVersion, parse(ThreeDigitVersion.self)),
                httpSupport: try c.bool(.httpSupport, default: d.httpSupport),
                httpVersion: defaults && !c.has(.httpVersion) ? d.httpVersion : try c.optional(.httpVersion, parse(ThreeDigitVersion.self)),
                securePacketVersion: try c.required(.securePacketVersion, default: d.securePacketVersion, parse(ThreeDigitVersion.self)),
                remoteProvisioningVersion: try c.required(.remoteProvisioningVersion, default: d.remoteProvisioningVersion, parse(ThreeDigitVersion.self)))
        }
        var profiles: [ProfileSnapshot] = []
        for (i, item) in try r.list(.profiles).enumerated() {
            profiles.append(try ProfileSnapshot(policyValue: item, path: "\(path).profiles[\(i + 1)]", defaults: defaults))
        }
        var properties: [String: String] = [:]
        if r.has(.additionalProperties) || !defaults {
            guard let fields = r.value(.additionalProperties).recordValue else {
                throw .invalidInput("\(path).additional_properties: a table of strings is expected")
            }
            for (k, v) in fields {
                guard let s = v.stringValue else { throw .invalidInput("\(path).additional_properties.\(k): a string is expected") }
                properties[k] = s
            }
        }
        self.init(
            eid: try r.required(.eid, default: FixtureDefaults.eid, parse(EID.self)),
            eumID: try r.required(.eumID, default: FixtureDefaults.eumID, parse(OID.self)),
            smsrID: try r.required(.smsrID, default: FixtureDefaults.smsrID, parse(OID.self)),
            productionDate: try r.required(.productionDate, default: FixtureDefaults.timestamp, parse(Timestamp.self)),
            platformType: try r.required(.platformType, default: "M2M-PLATFORM", parse(String100.self)),
            platformVersion: try r.required(.platformVersion, default: try! ThreeDigitVersion(text: "1.0.0"), parse(ThreeDigitVersion.self)),
            remainingMemory: try r.int(.remainingMemory, default: 65_536),
            availableMemory: try r.int(.availableMemory, default: 131_072),
            lastAuditDate: try r.optional(.lastAuditDate, parse(Timestamp.self)),
            capabilities: capabilities, profiles: profiles,
            isdrAID: try r.required(.isdrAID, default: FixtureDefaults.isdrAID, parse(AID.self)),
            ecasdAID: try r.required(.ecasdAID, default: try! AID(text: "A0000005591010FFFFFFFF8900000200"), parse(AID.self)),
            additionalProperties: properties)
    }
}

// MARK: - Caller

/// Who calls: the role the mutual-TLS identity maps to, and its OID (`m2m.Caller`).
public struct CallerSnapshot: PolicySnapshot {
    /// Roles of SGP.02 entities (plus the platform itself, for internal triggers).
    public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
        case mno = "MNO"
        case m2mSP = "M2MSP"
        case smdp = "SMDP"
        case smsr = "SMSR"
        case eum = "EUM"
        case platform = "PLATFORM"
    }

    public static let kind = SnapshotKind.caller
    public let role: Role
    public let oid: OID
    public let encoded: [UInt8]

    public init(role: Role, oid: OID) {
        self.role = role
        self.oid = oid
        var w = ValueWriter(capacity: 48)
        w.beginRecord(.caller)
        w.field(.role, role.rawValue)
        w.field(.oid, oid.text)
        w.endRecord()
        encoded = w.bytes
    }

    public init(policyValue: PolicyValue) throws(PolicyError) {
        try self.init(policyValue: policyValue, path: "caller", defaults: false)
    }

    init(policyValue: PolicyValue, path: String, defaults: Bool) throws(PolicyError) {
        let r = try FieldReader(policyValue, path: path, defaults: defaults, allowed: [.role, .oid])
        let roleText = try r.string(.role, default: Role.mno.rawValue)
        guard let role = Role(rawValue: roleText) else {
            throw .invalidInput("\(path).role: '\(roleText)' is not one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let defaultOID = role == .m2mSP ? FixtureDefaults.m2mSPID : role == .smdp ? FixtureDefaults.smdpID : FixtureDefaults.mnoID
        self.init(role: role, oid: try r.required(.oid, default: defaultOID, parse(OID.self)))
    }
}

// MARK: - Operation

/// The operation under decision (`m2m.Operation`): interface, function and its arguments.
public struct OperationSnapshot: PolicySnapshot {
    public static let kind = SnapshotKind.operation
    /// `ES2`, `ES3`, `ES4`, `ES4A` …
    public let interface: String
    /// The SGP.02 function name, e.g. `EnableProfile`.
    public let name: String
    /// The request's arguments that policies may read (`iccid`, `eid`, `required_memory` …).
    public let arguments: [String: PolicyValue]
    public let encoded: [UInt8]

    public init(interface: String, name: String, arguments: [String: PolicyValue] = [:]) {
        self.interface = interface
        self.name = name
        self.arguments = arguments
        var w = ValueWriter(capacity: 96)
        w.beginRecord(.operation)
        w.field(.interface, interface)
        w.field(.name, name)
        w.key(.args)
        w.value(.record(arguments))
        w.endRecord()
        encoded = w.bytes
    }

    public init(policyValue: PolicyValue) throws(PolicyError) {
        try self.init(policyValue: policyValue, path: "operation", defaults: false)
    }

    init(policyValue: PolicyValue, path: String, defaults: Bool) throws(PolicyError) {
        let r = try FieldReader(policyValue, path: path, defaults: defaults, allowed: [.interface, .name, .args])
        let args = r.value(.args)
        guard let fields = args.isNull ? [:] : args.recordValue else {
            throw .invalidInput("\(path).args: a table is expected, got \(args.typeName)")
        }
        self.init(
            interface: try r.string(.interface, default: "ES4"), name: try r.string(.name, default: "EnableProfile"),
            arguments: fields)
    }
}

// MARK: - PLMA and ONC

/// One PLMA entry (`m2m.PLMA`).
public struct PLMASnapshot: PolicySnapshot {
    public static let kind = SnapshotKind.plma
    public let plma: PLMA
    public let encoded: [UInt8]

    public init(_ plma: PLMA) {
        self.plma = plma
        var w = ValueWriter(capacity: 160)
        w.beginRecord(.plma)
        w.field(.mnoID, plma.mnoID.text)
        w.field(.m2mSPID, plma.m2mSPID.text)
        w.field(.profileType, plma.profileType.text)
        w.stringList(.functions, plma.authorisedFunctions.map(\.rawValue))
        w.stringList(.notifications, plma.authorisedNotifications.map(\.rawValue))
        w.endRecord()
        encoded = w.bytes
    }

    public init(policyValue: PolicyValue) throws(PolicyError) {
        try self.init(policyValue: policyValue, path: "plma", defaults: false)
    }

    init(policyValue: PolicyValue, path: String, defaults: Bool) throws(PolicyError) {
        let r = try FieldReader(
            policyValue, path: path, defaults: defaults, allowed: [.mnoID, .m2mSPID, .profileType, .functions, .notifications])
        self.init(
            PLMA(
                mnoID: try r.required(.mnoID, default: FixtureDefaults.mnoID, parse(OID.self)),
                m2mSPID: try r.required(.m2mSPID, default: FixtureDefaults.m2mSPID, parse(OID.self)),
                profileType: try r.required(.profileType, default: FixtureDefaults.profileType, parse(String100.self)),
                authorisedFunctions: try r.enumList(.functions, PLMAFunction.self),
                authorisedNotifications: try r.enumList(.notifications, NotificationType.self)))
    }
}

/// One ONC entry (`m2m.ONC`): notifications the Operator wants discarded.
public struct ONCSnapshot: PolicySnapshot {
    public static let kind = SnapshotKind.onc
    public let onc: ONC
    public let encoded: [UInt8]

    public init(_ onc: ONC) {
        self.onc = onc
        var w = ValueWriter(capacity: 128)
        w.beginRecord(.onc)
        w.field(.mnoID, onc.mnoID.text)
        w.field(.profileType, onc.profileType.text)
        w.stringList(.discarded, onc.discardedNotifications.map(\.rawValue))
        w.endRecord()
        encoded = w.bytes
    }

    public init(policyValue: PolicyValue) throws(PolicyError) {
        try self.init(policyValue: policyValue, path: "onc", defaults: false)
    }

    init(policyValue: PolicyValue, path: String, defaults: Bool) throws(PolicyError) {
        let r = try FieldReader(policyValue, path: path, defaults: defaults, allowed: [.mnoID, .profileType, .discarded])
        self.init(
            ONC(
                mnoID: try r.required(.mnoID, default: FixtureDefaults.mnoID, parse(OID.self)),
                profileType: try r.required(.profileType, default: FixtureDefaults.profileType, parse(String100.self)),
                discardedNotifications: try r.enumList(.discarded, NotificationType.self)))
    }
}

// MARK: - Notification

/// A Handle*Notification about to be sent (`m2m.Notification`).
public struct NotificationSnapshot: PolicySnapshot {
    public static let kind = SnapshotKind.notification
    public let type: NotificationType
    public let eid: EID
    /// The Profile concerned (absent for SMSRChange).
    public let iccid: ICCID?
    /// The Operator owning that Profile.
    public let mnoID: OID?
    public let profileType: String100?
    /// The SM-DP of that Profile (the ES2 relay), when it has one.
    public let smdpID: OID?
    /// The party whose request caused the notification (it is not notified of its own call).
    public let requester: OID?
    /// SMSRChange: the new SM-SR.
    public let smsrID: OID?
    public let timestamp: Timestamp
    public let encoded: [UInt8]

    public init(
        type: NotificationType, eid: EID, iccid: ICCID? = nil, mnoID: OID? = nil, profileType: String100? = nil,
        smdpID: OID? = nil, requester: OID? = nil, smsrID: OID? = nil, timestamp: Timestamp
    ) {
        self.type = type
        self.eid = eid
        self.iccid = iccid
        self.mnoID = mnoID
        self.profileType = profileType
        self.smdpID = smdpID
        self.requester = requester
        self.smsrID = smsrID
        self.timestamp = timestamp
        var w = ValueWriter(capacity: 160)
        w.beginRecord(.notification)
        w.field(.type, type.rawValue)
        w.field(.eid, eid.text)
        w.field(.iccid, iccid?.text)
        w.field(.mnoID, mnoID?.text)
        w.field(.profileType, profileType?.text)
        w.field(.smdpID, smdpID?.text)
        w.field(.requester, requester?.text)
        w.field(.smsrID, smsrID?.text)
        w.field(.timestamp, timestamp.text)
        w.endRecord()
        encoded = w.bytes
    }

    /// A notification about a Profile, with the Profile's owner, type and SM-DP.
    public init(type: NotificationType, eid: EID, profile: ProfileInfo, requester: OID? = nil, timestamp: Timestamp) {
        self.init(
            type: type, eid: eid, iccid: profile.iccid, mnoID: profile.mnoID, profileType: profile.profileType,
            smdpID: profile.smdpID, requester: requester, timestamp: timestamp)
    }

    public init(policyValue: PolicyValue) throws(PolicyError) {
        try self.init(policyValue: policyValue, path: "notification", defaults: false)
    }

    init(policyValue: PolicyValue, path: String, defaults: Bool) throws(PolicyError) {
        let r = try FieldReader(
            policyValue, path: path, defaults: defaults,
            allowed: [.type, .eid, .iccid, .mnoID, .profileType, .smdpID, .requester, .smsrID, .timestamp])
        let typeText = try r.string(.type, default: NotificationType.profileEnabled.rawValue)
        guard let type = NotificationType(rawValue: typeText) else {
            throw .invalidInput("\(path).type: unknown notification type '\(typeText)'")
        }
        self.init(
            type: type, eid: try r.required(.eid, default: FixtureDefaults.eid, parse(EID.self)),
            iccid: try r.optional(.iccid, parse(ICCID.self)), mnoID: try r.optional(.mnoID, parse(OID.self)),
            profileType: try r.optional(.profileType, parse(String100.self)), smdpID: try r.optional(.smdpID, parse(OID.self)),
            requester: try r.optional(.requester, parse(OID.self)), smsrID: try r.optional(.smsrID, parse(OID.self)),
            timestamp: try r.required(.timestamp, default: FixtureDefaults.timestamp, parse(Timestamp.self)))
    }
}
