// The built-in rules: Swift versions of the default plugins (plugins/sgp02-pol2,
// notification-router, onc-filter with their default configuration). They are what a failing
// policy falls back to (FailureMode), so a broken operator script can never bypass SGP.02's POL2
// rules when it fails open. `BuiltInRulesTests` checks that these and the Lua plugins agree.

public import M2MCore

public enum BuiltInRules {
    /// The SGP.02 POL2 decision (sgp02-pol2 with its default configuration).
    public static func pol2(_ input: PolicyInput) -> DecisionOutcome {
        func deny(_ s: SubjectCode, _ r: ReasonCode, _ m: String) -> DecisionOutcome { DecisionOutcome(.deny(subject: s, reason: r, message: m)) }
        let hook = input.hook
        if hook == .beforeDownloadProfile {
            if let required = input.operation?.arguments["required_memory"]?.intValue, let eis = input.eis,
                eis.remainingMemory < required
            {
                return deny(.euicc, .insufficientMemory, "the eUICC does not have the memory the Profile needs")
            }
            if let text = input.operation?.arguments["iccid"]?.stringValue, let iccid = try? ICCID(text: text),
                input.eis?.profile(iccid) != nil
            {
                return deny(.profileICCID, .alreadyInUse, "a Profile with this ICCID is already on the eUICC")
            }
            return DecisionOutcome(.allow)
        }
        if hook == .beforeSMSRChange {
            // No opinion without an EIS (the new SM-SR at PrepareSMSRChange), as sgp02-pol2.
            guard let eis = input.eis else { return DecisionOutcome(.allow) }
            let profiles = eis.profiles.map(\.profile)
            if profiles.contains(where: { $0.state == .created }) {
                return deny(.euicc, .pendingOperation, "a Profile download is in progress on the eUICC")
            }
            if let caller = input.caller, caller.role == .mno, !profiles.contains(where: { $0.mnoID == caller.oid }) {
                return deny(.functionRequester, .notAllowed, "the Operator owns no Profile on the eUICC")
            }
            return DecisionOutcome(.allow)
        }
        guard let p = input.profile?.profile else { return deny(.profileICCID, .unknown, "unknown Profile") }
        if let caller = input.caller {
            if caller.role == .mno, caller.oid != p.mnoID {
                return deny(.profileICCID, .notAllowed, "the Profile belongs to another Operator")
            }
            if caller.role == .m2mSP {
                let function = functionName(hook)
                let granted = input.plma.contains {
                    $0.plma.m2mSPID == caller.oid && $0.plma.mnoID == p.mnoID && $0.plma.profileType == p.profileType
                        && ($0.plma.authorisedFunctions.contains { $0.rawValue == function })
                }
                if !granted { return deny(.functionRequester, .notAllowed, "no PLMA of the Operator authorises \(function)") }
            }
        }
        let profiles = input.eis?.profiles.map(\.profile) ?? []
        switch hook {
        case .beforeEnableProfile:
            if p.state == .enabled { return deny(.profileICCID, .invalidTransition, "the Profile is already enabled") }
            if p.state == .created { return deny(.profileICCID, .invalidTransition, "the Profile is not fully installed") }
            if p.pol2.rules.contains(where: { $0.action == .enable && $0.qualification == .notAllowed }) {
                return deny(.pol2, .refused, "POL2 of the Profile does not allow enabling it")
            }
            if let current = profiles.first(where: { $0.state == .enabled }), current.iccid != p.iccid {
                if current.pol2.disablingNotAllowed {
                    return deny(.pol2, .refused, "POL2 of the enabled Profile does not allow disabling it")
                }
                if current.pol2.autoDeleteOnDisable { return DecisionOutcome(.allow, autoDelete: [current.iccid]) }
            }
            return DecisionOutcome(.allow)
        case .beforeDisableProfile:
            if p.state != .enabled { return deny(.profileICCID, .invalidTransition, "the Profile is not enabled") }
            if p.fallbackAttribute { return deny(.profileICCID, .refused, "the Fall-Back Profile cannot be disabled") }
            if p.pol2.disablingNotAllowed { return deny(.pol2, .refused, "POL2 of the Profile does not allow disabling it") }
            if p.pol2.autoDeleteOnDisable { return DecisionOutcome(.allow, autoDelete: [p.iccid]) }
            return DecisionOutcome(.allow)
        case .beforeDeleteProfile:
            if p.pol2.deletionNotAllowed { return deny(.pol2, .refused, "POL2 of the Profile does not allow deleting it") }
            if p.fallbackAttribute { return deny(.pol2, .refused, "the Fall-Back Profile cannot be deleted") }
            if p.state == .enabled { return deny(.profileICCID, .invalidTransition, "the Profile is enabled: disable it first") }
            return DecisionOutcome(.allow)
        case .beforeSetFallBackAttribute:
            if p.state == .created { return deny(.profileICCID, .invalidTransition, "the Profile is not fully installed") }
            if p.emergencyProfileAttribute {
                return deny(.profileICCID, .refused, "a Profile cannot hold both the Fall-Back and the Emergency attribute")
            }
            return DecisionOutcome(.allow)
        case .beforeSetEmergencyProfileAttribute:
            if p.state == .created { return deny(.profileICCID, .invalidTransition, "the Profile is not fully installed") }
            if p.fallbackAttribute {
                return deny(.profileICCID, .refused, "a Profile cannot hold both the Fall-Back and the Emergency attribute")
            }
            if let other = profiles.first(where: { $0.emergencyProfileAttribute && $0.mnoID != p.mnoID }), let caller = input.caller {
                let granted = input.plma.contains {
                    $0.plma.m2mSPID == caller.oid && $0.plma.mnoID == other.mnoID && $0.plma.profileType == other.profileType
                        && $0.plma.authorises(.setEmergencyProfileAttribute)
                }
                if !granted {
                    return deny(.functionRequester, .notAllowed, "replacing another Operator's Emergency Profile needs its PLMA")
                }
            }
            return DecisionOutcome(.allow)
        default:
            return DecisionOutcome(.allow)
        }
    }

    static func functionName(_ hook: PolicyHook) -> String {
        switch hook {
        case .beforeEnableProfile: "EnableProfile"
        case .beforeDisableProfile: "DisableProfile"
        case .beforeDeleteProfile: "DeleteProfile"
        case .beforeSetFallBackAttribute: "SetFallBackAttribute"
        case .beforeSetEmergencyProfileAttribute: "SetEmergencyProfileAttribute"
        case .beforeDownloadProfile: "DownloadProfile"
        case .beforeSMSRChange: "SMSRChange"
        default: hook.rawValue
        }
    }

    /// Default routing (notification-router with its default configuration). Without
    /// `includeM2MSPs`, only Operators are notified (fail-closed).
    public static func routes(_ input: PolicyInput, includeM2MSPs: Bool = true) -> [Route] {
        guard let n = input.notification else { return [] }
        let retry: RetryClass = n.type == .smsrChange || n.type == .profileDeleted ? .critical : .standard
        var out: [Route] = []
        func owner(_ mno: OID?, _ smdp: OID?) {
            guard let mno, mno != n.requester else { return }
            if out.contains(where: { $0.recipient == mno && $0.role == .mno }) { return }
            out.append(smdp.map { Route(via: .es2, smdp: $0, recipient: mno, role: .mno, retry: retry) }
                ?? Route(via: .es4, recipient: mno, role: .mno, retry: retry))
        }
        func serviceProviders(_ mno: OID, _ type: String100?) {
            guard includeM2MSPs else { return }
            for entry in input.plma where entry.plma.mnoID == mno && entry.plma.profileType == type && entry.plma.authorises(n.type) {
                let sp = entry.plma.m2mSPID
                if sp != n.requester, !out.contains(where: { $0.recipient == sp && $0.role == .m2mSP }) {
                    out.append(Route(via: .es4, recipient: sp, role: .m2mSP, retry: .standard))
                }
            }
        }
        if n.type == .smsrChange {
            for p in input.eis?.profiles.map(\.profile) ?? [] {
                owner(p.mnoID, p.smdpID)
                serviceProviders(p.mnoID, p.profileType)
            }
        } else {
            owner(n.mnoID, n.smdpID)
            if let mno = n.mnoID { serviceProviders(mno, n.profileType) }
        }
        return out
    }

    /// Default ONC filtering (onc-filter with its default configuration).
    public static func onc(_ input: PolicyInput) -> FilterDecision {
        guard let n = input.notification else { return .keep }
        for entry in input.onc where entry.onc.mnoID == n.mnoID && entry.onc.profileType == n.profileType && entry.onc.discards(n.type) {
            return .drop(message: "discarded by the ONC of \(entry.onc.mnoID) for \(entry.onc.profileType)")
        }
        return .keep
    }
}
