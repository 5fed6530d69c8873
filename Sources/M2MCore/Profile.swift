// Profiles as the EIS lists them (`ProfileInfo` in euicc.common.types.xsd), with POL2 and the
// subscription address, plus the v4 emergency attribute (not in the v3 schema: docs/wire.md).

/// `ProfileStateType`. Deleted ISD-Ps simply disappear from the EIS.
public enum ProfileState: String, Sendable, Hashable, Codable, CaseIterable {
    case created = "Created"
    case disabled = "Disabled"
    case enabled = "Enabled"
}

/// `SubscriptionAddressType`.
public struct SubscriptionAddress: Sendable, Hashable, Codable {
    public var imsi: IMSI?
    public var msisdn: MSISDN?
    public init(imsi: IMSI? = nil, msisdn: MSISDN? = nil) {
        self.imsi = imsi
        self.msisdn = msisdn
    }
}

/// One ISD-P and its Profile in the EIS.
public struct ProfileInfo: Sendable, Hashable, Codable {
    public var iccid: ICCID
    /// Allocated by the SM-SR at CreateISDP.
    public var isdPAID: AID
    /// The Operator owning the Profile, fixed for its lifetime.
    public var mnoID: OID
    /// The Fall-Back Attribute: the Profile the eUICC falls back to on connectivity loss.
    public var fallbackAttribute: Bool
    /// The Emergency Profile Attribute (SGP.02 v4). Not an element of the v3 `ProfileInfo`: on the
    /// wire it travels as an EIS AdditionalProperty (docs/wire.md).
    public var emergencyProfileAttribute: Bool
    public var subscriptionAddress: SubscriptionAddress
    public var state: ProfileState
    /// Absent for Profiles loaded at manufacturing.
    public var smdpID: OID?
    /// The SM-DP's Profile Type reference (e.g. "3G_16K").
    public var profileType: String100?
    public var allocatedMemory: Int
    public var freeMemory: Int?
    public var pol2: POL2

    public init(
        iccid: ICCID, isdPAID: AID, mnoID: OID, fallbackAttribute: Bool = false, emergencyProfileAttribute: Bool = false,
        subscriptionAddress: SubscriptionAddress = .init(), state: ProfileState, smdpID: OID? = nil,
        profileType: String100? = nil, allocatedMemory: Int, freeMemory: Int? = nil, pol2: POL2 = .init()
    ) {
        self.iccid = iccid
        self.isdPAID = isdPAID
        self.mnoID = mnoID
        self.fallbackAttribute = fallbackAttribute
        self.emergencyProfileAttribute = emergencyProfileAttribute
        self.subscriptionAddress = subscriptionAddress
        self.state = state
        self.smdpID = smdpID
        self.profileType = profileType
        self.allocatedMemory = allocatedMemory
        self.freeMemory = freeMemory
        self.pol2 = pol2
    }
}

/// POL2: the Operator's rules for its Profile, enforced by the SM-SR (`POL2Type`). May be empty.
public struct POL2: Sendable, Hashable, Codable {
    /// `POL2RuleType`.
    public struct Rule: Sendable, Hashable, Codable {
        /// `POL2RuleSubjectType`: only `PROFILE` exists.
        public enum Subject: String, Sendable, Hashable, Codable { case profile = "PROFILE" }
        /// `POL2RuleActionType`.
        public enum Action: String, Sendable, Hashable, Codable, CaseIterable {
            case enable = "ENABLE"
            case disable = "DISABLE"
            case delete = "DELETE"
        }
        /// `POL2RuleQualificationType`.
        public enum Qualification: String, Sendable, Hashable, Codable {
            case notAllowed = "Not-Allowed"
            case autoDelete = "Auto-Delete"
        }

        public var subject: Subject
        public var action: Action
        public var qualification: Qualification

        public init(subject: Subject = .profile, action: Action, qualification: Qualification) {
            self.subject = subject
            self.action = action
            self.qualification = qualification
        }
    }

    public var rules: [Rule]

    public init(rules: [Rule] = []) { self.rules = rules }

    /// "Disabling not allowed".
    public var disablingNotAllowed: Bool { rules.contains { $0.action == .disable && $0.qualification == .notAllowed } }
    /// "Deletion not allowed".
    public var deletionNotAllowed: Bool { rules.contains { $0.action == .delete && $0.qualification == .notAllowed } }
    /// "Profile deletion is mandatory when it is disabled" (DISABLE + Auto-Delete, as njiwa reads it).
    public var autoDeleteOnDisable: Bool { rules.contains { $0.action == .disable && $0.qualification == .autoDelete } }
}
