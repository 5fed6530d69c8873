// The SM-SR functions that change or read stored state only (no ES5): GetEIS with per-requester
// filtering, PLMA and ONC (ES4A, ES3, ES4.GetPLMA), POL2 and subscription address updates
// (docs/smsr.md). The SM-SR change functions are in SMSR+Change.swift.

public import M2MCore
import M2MPolicy
public import M2MSOAP
public import M2MStorage

extension SMSR {
    // MARK: Authorisation and filtering

    /// The Profiles of `eis` a caller may see, and whether the caller is related to the eUICC.
    func visibleProfiles(_ eis: EIS, for caller: Party, function: PLMAFunction, in tx: any SMSRReading) throws -> [ProfileInfo] {
        switch caller.role {
        case .mno: return eis.profiles.filter { $0.mnoID == caller.oid }
        case .m2mSP:
            let grants = try tx.plmas(mno: nil, m2mSP: caller.oid, profileType: nil)
            return eis.profiles.filter { profile in
                grants.contains { $0.mnoID == profile.mnoID && $0.profileType == profile.profileType && $0.authorisedFunctions.contains(function) }
            }
        case .smdp: return eis.profiles.filter { $0.smdpID == caller.oid }
        case .eum, .smsr: return []
        }
    }

    /// The EIS as `caller` may see it: the signed eUICC data, memory, ISD-R (no key values are
    /// stored at all), its visible Profiles and the audit records about them.
    func filtered(_ eis: EIS, profiles: [ProfileInfo], in tx: any SMSRReading) throws -> EIS {
        var view = eis
        view.profiles = profiles
        let visible = Set(profiles.map(\.iccid))
        // The records about visible Profiles (and eUICC-wide ones), the latest 100; who asked for a
        // record is shown only when it is about a visible Profile.
        let audit = try tx.auditTrail(eis.eid).filter { record in record.iccid.map(visible.contains) ?? true }.suffix(100).map { record in
            var shown = record
            if record.iccid == nil { shown.requesterID = nil }
            return shown
        }
        view.auditTrail = audit.isEmpty ? nil : Array(audit)
        return view
    }

    /// The caller must own the Profile (MNO) or be its SM-DP (ES3).
    func requireOwner(_ profile: ProfileInfo, caller: Party) throws(Refusal) {
        switch caller.role {
        case .mno where profile.mnoID == caller.oid: return
        case .smdp where profile.smdpID == caller.oid: return
        case .m2mSP: throw Refusal(.functionRequester, .notAllowed, "this function is not delegable to an M2M SP", identifier: caller.oid.text)
        default: throw Refusal(.profileICCID, .notAllowed, "the Profile is not the caller's", identifier: profile.iccid.text)
        }
    }

    func getEIS(_ eid: EID, call: Call) throws -> EIS {
        // The EIS and what the caller may see of it from one snapshot (one read transaction).
        try store.read { tx in
            let stored = try requireEIS(eid, in: tx)
            let profiles = try visibleProfiles(stored.eis, for: call.caller, function: .getEIS, in: tx)
            // An SM-DP needs the signed eUICC data (ECASD certificate) before it downloads its first
            // Profile there, so it is related to every registered eUICC; MNOs and M2M SPs only through
            // Profiles they own or hold a PLMA for.
            if call.caller.role != .smdp, profiles.isEmpty {
                throw Refusal(.eid, .notAllowed, "the caller has no Profile on this eUICC", identifier: eid.text)
            }
            return try filtered(stored.eis, profiles: profiles, in: tx)
        }
    }

    // MARK: PLMA and ONC

    /// Stores (or, with both lists empty, revokes) a PLMA and tells the M2M SP.
    func writePLMA(_ plma: PLMA, call: Call, in tx: any SMSRWriting) throws {
        if plma.authorisedFunctions.isEmpty && plma.authorisedNotifications.isEmpty {
            try tx.deletePLMA(mno: plma.mnoID, m2mSP: plma.m2mSPID, profileType: plma.profileType.text)
        } else {
            try tx.upsertPLMA(plma, now: call.now)
        }
        try notifyPLMA(plma, requester: call.caller.oid, call: call, in: tx)
    }

    /// Stores (or, with no discarded notification, removes) an ONC.
    func writeONC(_ onc: ONC, call: Call, in tx: any SMSRWriting) throws {
        if onc.discardedNotifications.isEmpty {
            try tx.deleteONC(mno: onc.mnoID, profileType: onc.profileType.text)
        } else {
            try tx.upsertONC(onc, now: call.now)
        }
    }

    /// An SM-DP acts for an Operator it downloaded Profiles for.
    func requireSMDPServes(_ mno: OID, call: Call) throws {
        guard try store.read({ try $0.smdpServes(call.caller.oid, mno: mno) }) else {
            throw Refusal(.functionRequester, .notAllowed, "the SM-DP holds no Profile of Operator \(mno.text)", identifier: call.caller.oid.text)
        }
    }

    // MARK: POL2 and subscription address

    /// Checks an UpdatePolicyRules and returns the writes that apply it (run inside `call.commit`).
    /// The writes re-read the EIS inside their transaction and change that Profile only, so a change
    /// committed meanwhile (an enable, a fall-back) is never overwritten by the copy read here.
    func updatePOL2(eid: EID, iccid: ICCID, pol2: POL2, call: Call) throws -> (any SMSRWriting) throws -> Void {
        let stored = try requireEIS(eid)
        let profile = try requireProfile(iccid, in: stored.eis)
        try requireOwner(profile, caller: call.caller)
        guard !pol2.rules.contains(where: { $0.qualification == .autoDelete && $0.action != .disable }) else {
            throw Refusal(.pol2, .invalid, "Auto-Delete qualifies only DISABLE", identifier: iccid.text)
        }
        // An ES3 call relays the owner's ES2 request: the owner is the requester.
        let requester = call.caller.role == .smdp ? profile.mnoID : call.caller.oid
        return { [self] tx in
            try requireNoSMSRChange(eid, in: tx)
            guard var current = try tx.eis(eid), let index = current.eis.profiles.firstIndex(where: { $0.iccid == iccid }) else {
                throw Refusal(.profileICCID, .unknown, "no such Profile on this eUICC", identifier: iccid.text)
            }
            current.eis.profiles[index].pol2 = pol2
            let updated = current.eis.profiles[index]
            try tx.updateEIS(current.eis, now: call.now)
            try tx.appendAudit(AuditTrailRecord(eid: eid, smsrID: configuration.smsrID, operationDate: call.now, operationType: AuditOperation.updatePOL2,
                                                requesterID: call.caller.oid, operationExecutionStatus: .success, isdPAID: updated.isdPAID, iccid: iccid),
                               now: call.now)
            try notify([ProfileEvent(type: .profilePOL2Updated, profile: updated, pol2: pol2)], eis: current.eis, requester: requester, call: call,
                       operation: nil, in: tx)
        }
    }

    /// Checks an UpdateSubscriptionAddress and returns the writes that apply it (re-reading the EIS
    /// inside their transaction, as above).
    func updateAddress(eid: EID, iccid: ICCID, address: SubscriptionAddress, call: Call) throws -> (any SMSRWriting) throws -> Void {
        let stored = try requireEIS(eid)
        let profile = try requireProfile(iccid, in: stored.eis)
        try requireOwner(profile, caller: call.caller)
        return { [self] tx in
            try requireNoSMSRChange(eid, in: tx)
            guard var current = try tx.eis(eid), let index = current.eis.profiles.firstIndex(where: { $0.iccid == iccid }) else {
                throw Refusal(.profileICCID, .unknown, "no such Profile on this eUICC", identifier: iccid.text)
            }
            current.eis.profiles[index].subscriptionAddress = address
            try tx.updateEIS(current.eis, now: call.now)
            try tx.appendAudit(AuditTrailRecord(eid: eid, smsrID: configuration.smsrID, operationDate: call.now, operationType: AuditOperation.updateAddress,
                                                requesterID: call.caller.oid, operationExecutionStatus: .success, isdPAID: profile.isdPAID, iccid: iccid),
                               now: call.now)
        }
    }
}

// MARK: - ES4A

public protocol ES4AProvider: Sendable {
    func setPLMA(_ request: ES4A.SetPLMARequest, context: RequestContext) -> ES4A.SetPLMAResponse
    func getPLMA(_ request: ES4A.GetPLMARequest, context: RequestContext) -> ES4A.GetPLMAResponse
    func setONC(_ request: ES4A.SetONCRequest, context: RequestContext) -> ES4A.SetONCResponse
    func getONC(_ request: ES4A.GetONCRequest, context: RequestContext) -> ES4A.GetONCResponse
}

extension SMSR: ES4AProvider {
    public func setPLMA(_ request: ES4A.SetPLMARequest, context: RequestContext) -> ES4A.SetPLMAResponse {
        serve(request, context: context, roles: [.mno], failure: { ES4A.SetPLMAResponse(functionExecutionStatus: $0) }) { call in
            guard request.plma.mnoID == call.caller.oid else {
                throw Refusal(.functionRequester, .notAllowed, "a PLMA is set by its Operator", identifier: call.caller.oid.text)
            }
            return try call.commit { tx in
                try writePLMA(request.plma, call: call, in: tx)
                return ES4A.SetPLMAResponse(functionExecutionStatus: .success)
            }
        }
    }

    public func getPLMA(_ request: ES4A.GetPLMARequest, context: RequestContext) -> ES4A.GetPLMAResponse {
        serve(request, context: context, roles: [.mno], readOnly: true, failure: { ES4A.GetPLMAResponse(functionExecutionStatus: $0) }) { call in
            let plmas = try store.read { try $0.plmas(mno: call.caller.oid, m2mSP: request.m2mSPID, profileType: request.profileType?.text) }
            return try call.answer(ES4A.GetPLMAResponse(functionExecutionStatus: .success, plmas: plmas))
        }
    }

    public func setONC(_ request: ES4A.SetONCRequest, context: RequestContext) -> ES4A.SetONCResponse {
        serve(request, context: context, roles: [.mno], failure: { ES4A.SetONCResponse(functionExecutionStatus: $0) }) { call in
            guard request.onc.mnoID == call.caller.oid else {
                throw Refusal(.functionRequester, .notAllowed, "an ONC is set by its Operator", identifier: call.caller.oid.text)
            }
            return try call.commit { tx in
                try writeONC(request.onc, call: call, in: tx)
                return ES4A.SetONCResponse(functionExecutionStatus: .success)
            }
        }
    }

    public func getONC(_ request: ES4A.GetONCRequest, context: RequestContext) -> ES4A.GetONCResponse {
        serve(request, context: context, roles: [.mno], readOnly: true, failure: { ES4A.GetONCResponse(functionExecutionStatus: $0) }) { call in
            let oncs = try store.read { try $0.oncs(mno: call.caller.oid, profileType: request.profileType?.text) }
            return try call.answer(ES4A.GetONCResponse(functionExecutionStatus: .success, oncs: oncs))
        }
    }
}
