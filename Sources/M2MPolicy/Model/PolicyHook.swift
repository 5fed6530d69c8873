// The policy points of the platform and their hooks (docs/plugins.md lists what each receives).

/// A hook a plugin or policy file can define. The raw value is its Lua name.
public enum PolicyHook: String, Sendable, Hashable, Codable, CaseIterable {
    // POL2 decisions (SGP.02 §3.2–3.8, §3.25–3.29): allow / warn / deny.
    case beforeDownloadProfile = "before_download_profile"
    case beforeEnableProfile = "before_enable_profile"
    case beforeDisableProfile = "before_disable_profile"
    case beforeDeleteProfile = "before_delete_profile"
    case beforeSetFallBackAttribute = "before_set_fallback_attribute"
    case beforeSetEmergencyProfileAttribute = "before_set_emergency_profile_attribute"
    case beforeSMSRChange = "before_smsr_change"
    // Notifications: where each Handle*Notification goes, and whether it goes at all.
    case routeNotification = "route_notification"
    case filterNotification = "filter_notification"

    /// What a hook returns.
    public enum Kind: Int32, Sendable {
        /// `m2m.allow()`, `m2m.warn(…)`, `m2m.deny(…)` or nil.
        case decision = 1
        /// A list of `m2m.route{…}` values, or nil to keep the routes so far.
        case route = 2
        /// `m2m.keep()`, `m2m.drop(…)` or nil.
        case filter = 3
    }

    public var kind: Kind {
        switch self {
        case .routeNotification: .route
        case .filterNotification: .filter
        default: .decision
        }
    }

    /// The policy point the hook belongs to (each has its own failure mode).
    public var point: PolicyPoint {
        switch kind {
        case .decision: .pol2
        case .route: .routing
        case .filter: .onc
        }
    }

    /// The hook id shared with the C side (its position in `allCases`).
    var id: Int32 {
        switch self {
        case .beforeDownloadProfile: 0
        case .beforeEnableProfile: 1
        case .beforeDisableProfile: 2
        case .beforeDeleteProfile: 3
        case .beforeSetFallBackAttribute: 4
        case .beforeSetEmergencyProfileAttribute: 5
        case .beforeSMSRChange: 6
        case .routeNotification: 7
        case .filterNotification: 8
        }
    }

    /// The POL2 hook guarding an SGP.02 function, if any (`EnableProfile` → `before_enable_profile`).
    public init?(function: String) {
        switch function {
        case "DownloadProfile", "CreateISDP": self = .beforeDownloadProfile
        case "EnableProfile": self = .beforeEnableProfile
        case "DisableProfile": self = .beforeDisableProfile
        case "DeleteProfile", "DeleteISDP": self = .beforeDeleteProfile
        case "SetFallBackAttribute": self = .beforeSetFallBackAttribute
        case "SetEmergencyProfileAttribute": self = .beforeSetEmergencyProfileAttribute
        case "SMSRChange", "PrepareSMSRChange": self = .beforeSMSRChange
        default: return nil
        }
    }
}

/// The three policy points of the mission.
public enum PolicyPoint: String, Sendable, Hashable, Codable, CaseIterable {
    /// POL2 decisions before Profile lifecycle operations.
    case pol2
    /// Notification routing: destinations and retry classes.
    case routing
    /// ONC filtering: keep or drop each notification.
    case onc
}

/// What happens when a policy fails (a Lua error, a blown budget, an invalid result).
public enum FailureMode: String, Sendable, Hashable, Codable {
    /// POL2: deny (FAILED 1.2/4.2). Routing: only the owner Operator, by the built-in rules.
    /// ONC: drop.
    case failClosed = "fail-closed"
    /// POL2: the built-in SGP.02 POL2 rules decide. Routing: the built-in rules (owner and M2M
    /// SPs by PLMA). ONC: the Operator's ONC data decide (keep unless discarded).
    case failOpen = "fail-open"
}
