// The ES2 management functions relayed onto ES3 (offcard §1.1: same name, except DeleteProfile →
// DeleteISDP). The SM-DP checks what it can before relaying — the Operator owns the Profile (the
// SM-DP's record of the Profiles it downloaded: 8.2.1/3.9 unknown, 8.2.1/1.2 another Operator's),
// the SM-SR named is the Profile's (8.7/3.10) — and the SM-SR checks the rest (POL1, POL2, states)
// and runs it on the card. The relayed call's FunctionCallIdentifier is made of the Operator's and
// its own, so a repeated ES2 call is a repeated ES3 call. The SM-SR's status comes back as the
// ES2 status unchanged.

public import M2MCore
import M2MPolicy
public import M2MSOAP
import M2MStorage

extension SMDP: ES2Provider {
    /// The state the SM-DP records for a Profile deleted from its eUICC.
    static let deleted = "Deleted"

    /// The caller's Profile `iccid` on `eid` behind `smsr`, as this SM-DP downloaded it.
    func ownedProfile(_ iccid: ICCID, eid: EID, smsr: OID, call: SMDPCall) throws -> SMDPProfileRecord {
        guard let profile = try store.read({ try $0.profile(iccid) }), profile.eid == eid, profile.state != SMDP.deleted else {
            throw Refusal(.profileICCID, .unknown, "this SM-DP holds no such Profile on that eUICC", identifier: iccid.text)
        }
        guard profile.mno == call.caller.oid else { throw Refusal(.profileICCID, .notAllowed, "the Profile belongs to another Operator", identifier: iccid.text) }
        guard profile.smsr == smsr else { throw Refusal(.smsr, .invalidAssociation, "the eUICC is managed by SM-SR \(profile.smsr.text)", identifier: smsr.text) }
        return profile
    }

    /// Relays a life-cycle or attribute function; `state` is what the Profile is after success.
    func relay<Response: SGP02Response, Relayed: SGP02Request>(
        _ relayed: Relayed, profile: SMDPProfileRecord, state: String?, call: SMDPCall, make: (Relayed.Response) -> Response
    ) throws -> Response {
        let answer = try send(relayed, to: profile.smsr)
        return try call.commit { tx in
            let status = answer.functionExecutionStatus.status
            if let state, status == .executedSuccess || status == .executedWithWarning {
                var changed = profile
                changed.state = state
                try tx.upsertProfile(changed, now: clock.now())
            }
            return make(answer)
        }
    }

    /// The EIS as the Operator may see it: its own Profiles only.
    func forOperator(_ eis: EIS?, _ mno: OID) -> EIS? {
        guard var eis else { return nil }
        eis.profiles = eis.profiles.filter { $0.mnoID == mno }
        return eis
    }

    public func getEIS(_ request: ES2.GetEISRequest, context: RequestContext) -> ES2.GetEISResponse {
        serve(request, context: context, smsrID: request.smsrID, readOnly: true, failure: { ES2.GetEISResponse(functionExecutionStatus: $0) }) { call in
            let answer = try send(ES3.GetEISRequest(functionCallIdentifier: call.relayIdentifier, validityPeriod: call.remainingValidity(now: clock.now()),
                                                    eid: request.eid), to: request.smsrID)
            return try call.answer(ES2.GetEISResponse(functionExecutionStatus: answer.functionExecutionStatus, eis: forOperator(answer.eis, call.caller.oid)))
        }
    }

    public func auditEIS(_ request: ES2.AuditEISRequest, context: RequestContext) -> ES2.AuditEISResponse {
        serve(request, context: context, smsrID: request.smsrID, failure: { ES2.AuditEISResponse(functionExecutionStatus: $0) }) { call in
            for iccid in request.iccids { _ = try ownedProfile(iccid, eid: request.eid, smsr: request.smsrID, call: call) }
            let answer = try send(ES3.AuditEISRequest(functionCallIdentifier: call.relayIdentifier, validityPeriod: call.remainingValidity(now: clock.now()),
                                                      eid: request.eid, iccids: request.iccids), to: request.smsrID)
            return try call.commit { _ in
                ES2.AuditEISResponse(functionExecutionStatus: answer.functionExecutionStatus, eis: forOperator(answer.eis, call.caller.oid))
            }
        }
    }

    public func updatePolicyRules(_ request: ES2.UpdatePolicyRulesRequest, context: RequestContext) -> ES2.UpdatePolicyRulesResponse {
        serve(request, context: context, smsrID: request.smsrID, failure: { ES2.UpdatePolicyRulesResponse(functionExecutionStatus: $0) }) { call in
            let profile = try ownedProfile(request.iccid, eid: request.eid, smsr: request.smsrID, call: call)
            return try relay(ES3.UpdatePolicyRulesRequest(functionCallIdentifier: call.relayIdentifier, validityPeriod: call.remainingValidity(now: clock.now()),
                                                          eid: request.eid, iccid: request.iccid, pol2: request.pol2),
                             profile: profile, state: nil, call: call) { ES2.UpdatePolicyRulesResponse(functionExecutionStatus: $0.functionExecutionStatus) }
        }
    }

    public func updateSubscriptionAddress(_ request: ES2.UpdateSubscriptionAddressRequest, context: RequestContext) -> ES2.UpdateSubscriptionAddressResponse {
        serve(request, context: context, smsrID: request.smsrID, failure: { ES2.UpdateSubscriptionAddressResponse(functionExecutionStatus: $0) }) { call in
            let profile = try ownedProfile(request.iccid, eid: request.eid, smsr: request.smsrID, call: call)
            return try relay(ES3.UpdateSubscriptionAddressRequest(functionCallIdentifier: call.relayIdentifier,
                                                                  validityPeriod: call.remainingValidity(now: clock.now()), eid: request.eid, iccid: request.iccid,
                                                                  newSubscriptionAddress: request.newSubscriptionAddress),
                             profile: profile, state: nil, call: call) { ES2.UpdateSubscriptionAddressResponse(functionExecutionStatus: $0.functionExecutionStatus) }
        }
    }

    public func enableProfile(_ request: ES2.EnableProfileRequest, context: RequestContext) -> ES2.EnableProfileResponse {
        serve(request, context: context, smsrID: request.smsrID, failure: { ES2.EnableProfileResponse(functionExecutionStatus: $0) }) { call in
            let profile = try ownedProfile(request.iccid, eid: request.eid, smsr: request.smsrID, call: call)
            return try relay(ES3.EnableProfileRequest(functionCallIdentifier: call.relayIdentifier, validityPeriod: call.remainingValidity(now: clock.now()),
                                                      eid: request.eid, iccid: request.iccid),
                             profile: profile, state: ProfileState.enabled.rawValue, call: call) { ES2.EnableProfileResponse(functionExecutionStatus: $0.functionExecutionStatus) }
        }
    }

    public func disableProfile(_ request: ES2.DisableProfileRequest, context: RequestContext) -> ES2.DisableProfileResponse {
        serve(request, context: context, smsrID: request.smsrID, failure: { ES2.DisableProfileResponse(functionExecutionStatus: $0) }) { call in
            let profile = try ownedProfile(request.iccid, eid: request.eid, smsr: request.smsrID, call: call)
            return try relay(ES3.DisableProfileRequest(functionCallIdentifier: call.relayIdentifier, validityPeriod: call.remainingValidity(now: clock.now()),
                                                       eid: request.eid, iccid: request.iccid),
                             profile: profile, state: ProfileState.disabled.rawValue, call: call) { ES2.DisableProfileResponse(functionExecutionStatus: $0.functionExecutionStatus) }
        }
    }

    public func deleteProfile(_ request: ES2.DeleteProfileRequest, context: RequestContext) -> ES2.DeleteProfileResponse {
        serve(request, context: context, smsrID: request.smsrID, failure: { ES2.DeleteProfileResponse(functionExecutionStatus: $0) }) { call in
            let profile = try ownedProfile(request.iccid, eid: request.eid, smsr: request.smsrID, call: call)
            return try relay(ES3.DeleteISDPRequest(functionCallIdentifier: call.relayIdentifier, validityPeriod: call.remainingValidity(now: clock.now()),
                                                   eid: request.eid, iccid: request.iccid),
                             profile: profile, state: SMDP.deleted, call: call) { ES2.DeleteProfileResponse(functionExecutionStatus: $0.functionExecutionStatus) }
        }
    }

    public func setFallBackAttribute(_ request: ES2.SetFallBackAttributeRequest, context: RequestContext) -> ES2.SetFallBackAttributeResponse {
        serve(request, context: context, smsrID: request.smsrID, failure: { ES2.SetFallBackAttributeResponse(functionExecutionStatus: $0) }) { call in
            let profile = try ownedProfile(request.iccid, eid: request.eid, smsr: request.smsrID, call: call)
            return try relay(ES3.SetFallBackAttributeRequest(functionCallIdentifier: call.relayIdentifier,
                                                             validityPeriod: call.remainingValidity(now: clock.now()), eid: request.eid, iccid: request.iccid),
                             profile: profile, state: nil, call: call) {
                ES2.SetFallBackAttributeResponse(functionExecutionStatus: $0.functionExecutionStatus, euiccResponseData: $0.euiccResponseData)
            }
        }
    }

    public func setEmergencyProfileAttribute(_ request: ES2.SetEmergencyProfileAttributeRequest, context: RequestContext)
        -> ES2.SetEmergencyProfileAttributeResponse
    {
        serve(request, context: context, smsrID: request.smsrID, failure: { ES2.SetEmergencyProfileAttributeResponse(functionExecutionStatus: $0) }) { call in
            let profile = try ownedProfile(request.iccid, eid: request.eid, smsr: request.smsrID, call: call)
            return try relay(ES3.SetEmergencyProfileAttributeRequest(functionCallIdentifier: call.relayIdentifier,
                                                                     validityPeriod: call.remainingValidity(now: clock.now()), eid: request.eid, iccid: request.iccid),
                             profile: profile, state: nil, call: call) {
                ES2.SetEmergencyProfileAttributeResponse(functionExecutionStatus: $0.functionExecutionStatus, euiccResponseData: $0.euiccResponseData)
            }
        }
    }

    public func setPLMA(_ request: ES2.SetPLMARequest, context: RequestContext) -> ES2.SetPLMAResponse {
        serve(request, context: context, smsrID: request.smsrID, failure: { ES2.SetPLMAResponse(functionExecutionStatus: $0) }) { call in
            guard request.plma.mnoID == call.caller.oid else {
                throw Refusal(.functionRequester, .notAllowed, "an Operator grants its own PLMAs", identifier: request.plma.mnoID.text)
            }
            let answer = try send(ES3.SetPLMARequest(functionCallIdentifier: call.relayIdentifier, validityPeriod: call.remainingValidity(now: clock.now()),
                                                     plma: request.plma), to: request.smsrID)
            return try call.commit { _ in ES2.SetPLMAResponse(functionExecutionStatus: answer.functionExecutionStatus) }
        }
    }

    public func getPLMA(_ request: ES2.GetPLMARequest, context: RequestContext) -> ES2.GetPLMAResponse {
        serve(request, context: context, smsrID: request.smsrID, readOnly: true, failure: { ES2.GetPLMAResponse(functionExecutionStatus: $0) }) { call in
            let answer = try send(ES3.GetPLMARequest(functionCallIdentifier: call.relayIdentifier, validityPeriod: call.remainingValidity(now: clock.now()),
                                                     mnoID: call.caller.oid, profileType: request.profileType), to: request.smsrID)
            return try call.answer(ES2.GetPLMAResponse(functionExecutionStatus: answer.functionExecutionStatus,
                                                       plmas: answer.plmas.filter { $0.mnoID == call.caller.oid }))
        }
    }

    public func setONC(_ request: ES2.SetONCRequest, context: RequestContext) -> ES2.SetONCResponse {
        serve(request, context: context, smsrID: request.smsrID, failure: { ES2.SetONCResponse(functionExecutionStatus: $0) }) { call in
            guard request.onc.mnoID == call.caller.oid else {
                throw Refusal(.functionRequester, .notAllowed, "an Operator configures its own notifications", identifier: request.onc.mnoID.text)
            }
            let answer = try send(ES3.SetONCRequest(functionCallIdentifier: call.relayIdentifier, validityPeriod: call.remainingValidity(now: clock.now()),
                                                    onc: request.onc), to: request.smsrID)
            return try call.commit { tx in
                // The SM-DP keeps a copy: it filters what it forwards with it too.
                if answer.functionExecutionStatus.status == .executedSuccess { try tx.upsertONC(request.onc, now: clock.now()) }
                return ES2.SetONCResponse(functionExecutionStatus: answer.functionExecutionStatus)
            }
        }
    }

    public func getONC(_ request: ES2.GetONCRequest, context: RequestContext) -> ES2.GetONCResponse {
        serve(request, context: context, smsrID: request.smsrID, readOnly: true, failure: { ES2.GetONCResponse(functionExecutionStatus: $0) }) { call in
            let answer = try send(ES3.GetONCRequest(functionCallIdentifier: call.relayIdentifier, validityPeriod: call.remainingValidity(now: clock.now()),
                                                    mnoID: call.caller.oid, profileType: request.profileType), to: request.smsrID)
            return try call.answer(ES2.GetONCResponse(functionExecutionStatus: answer.functionExecutionStatus,
                                                      oncs: answer.oncs.filter { $0.mnoID == call.caller.oid }))
        }
    }
}
