// SGP.02 v4 Operator settings held by the SM-SR: PLMA (Profile Lifecycle Management Authorisation,
// Operator → M2M SP) and ONC (Operator Notifications Configuration). Not in GSMA's v3 schema; the
// wire form is ours (xsd/m2mrsp-v4.xsd, docs/wire.md).

/// Kinds of Handle*Notification an Operator or M2M SP can receive.
public enum NotificationType: String, Sendable, Hashable, Codable, CaseIterable {
    case profileEnabled = "ProfileEnabled"
    case profileDisabled = "ProfileDisabled"
    case profileDeleted = "ProfileDeleted"
    case profileDownloaded = "ProfileDownloaded"
    case smsrChange = "SMSRChange"
    case profilePOL2Updated = "ProfilePOL2Updated"
    case plmaSetting = "PLMASetting"
    case emergencyProfileAttributeSet = "EmergencyProfileAttributeSet"
    case emergencyProfileAttributeUnset = "EmergencyProfileAttributeUnset"
    case fallBackAttributeSet = "FallBackAttributeSet"
    case fallBackAttributeUnset = "FallBackAttributeUnset"
}

/// ES4 functions an Operator can delegate to an M2M SP through a PLMA. POL2 management is never
/// delegable (UpdatePolicyRules is absent on purpose).
public enum PLMAFunction: String, Sendable, Hashable, Codable, CaseIterable {
    case getEIS = "GetEIS"
    case auditEIS = "AuditEIS"
    case enableProfile = "EnableProfile"
    case disableProfile = "DisableProfile"
    case deleteProfile = "DeleteProfile"
    case setFallBackAttribute = "SetFallBackAttribute"
    case setEmergencyProfileAttribute = "SetEmergencyProfileAttribute"
}

/// One PLMA: what an Operator lets an M2M SP do with its Profiles of one Profile Type.
public struct PLMA: Sendable, Hashable, Codable {
    /// The granting Operator.
    public var mnoID: OID
    /// The authorised M2M Service Provider.
    public var m2mSPID: OID
    public var profileType: String100
    public var authorisedFunctions: [PLMAFunction]
    public var authorisedNotifications: [NotificationType]

    public init(
        mnoID: OID, m2mSPID: OID, profileType: String100, authorisedFunctions: [PLMAFunction] = [],
        authorisedNotifications: [NotificationType] = []
    ) {
        self.mnoID = mnoID
        self.m2mSPID = m2mSPID
        self.profileType = profileType
        self.authorisedFunctions = authorisedFunctions
        self.authorisedNotifications = authorisedNotifications
    }

    public func authorises(_ function: PLMAFunction) -> Bool { authorisedFunctions.contains(function) }
    public func authorises(_ notification: NotificationType) -> Bool { authorisedNotifications.contains(notification) }
}

/// One ONC entry: the notifications about an Operator's Profiles of one Profile Type that the
/// SM-SR discards (default: send all).
public struct ONC: Sendable, Hashable, Codable {
    public var mnoID: OID
    public var profileType: String100
    public var discardedNotifications: [NotificationType]

    public init(mnoID: OID, profileType: String100, discardedNotifications: [NotificationType] = []) {
        self.mnoID = mnoID
        self.profileType = profileType
        self.discardedNotifications = discardedNotifications
    }

    public func discards(_ notification: NotificationType) -> Bool { discardedNotifications.contains(notification) }
}
