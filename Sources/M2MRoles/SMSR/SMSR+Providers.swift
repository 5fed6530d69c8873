// The ES3 and ES4 provider protocols of the SM-SR and their wiring to the pipeline (SMSR.swift),
// the settings functions (SMSR+Settings.swift) and the life-cycle over ES5 (SMSR+Lifecycle.swift).
// The download path of ES3 (CreateISDP, SendData, ProfileDownloadCompleted,
// UpdateConnectivityParameters) is in SMSR+Download.swift.

public import M2MCore
public import M2MSOAP
import M2MStorage

public protocol ES4Provider: Sendable {
    func getEIS(_ request: ES4.GetEISRequest, context: RequestContext) -> ES4.GetEISResponse
    func auditEIS(_ request: ES4.AuditEISRequest, context: RequestContext) -> ES4.AuditEISResponse
    func updatePolicyRules(_ request: ES4.UpdatePolicyRulesRequest, context: RequestContext) -> ES4.UpdatePolicyRulesResponse
    func updateSubscriptionAddress(_ request: ES4.UpdateSubscriptionAddressRequest, context: RequestContext) -> ES4.UpdateSubscriptionAddressResponse
    func enableProfile(_ request: ES4.EnableProfileRequest, context: RequestContext) -> ES4.EnableProfileResponse
    func disableProfile(_ request: ES4.DisableProfileRequest, context: RequestContext) -> ES4.DisableProfileResponse
    func deleteProfile(_ request: ES4.DeleteProfileRequest, context: RequestContext) -> ES4.DeleteProfileResponse
    func setFallBackAttribute(_ request: ES4.SetFallBackAttributeRequest, context: RequestContext) -> ES4.SetFallBackAttributeResponse
    func setEmergencyProfileAttribute(_ request: ES4.SetEmergencyProfileAttributeRequest, context: RequestContext)
        -> ES4.SetEmergencyProfileAttributeResponse
    func getPLMA(_ request: ES4.GetPLMARequest, context: RequestContext) -> ES4.GetPLMAResponse
    func prepareSMSRChange(_ request: ES4.PrepareSMSRChangeRequest, context: RequestContext) -> ES4.PrepareSMSRChangeResponse
    func smsrChange(_ request: ES4.SMSRChangeRequest, context: RequestContext) -> ES4.SMSRChangeResponse
}

public protocol ES3Provider: Sendable {
    func getEIS(_ request: ES3.GetEISRequest, context: RequestContext) -> ES3.GetEISResponse
    func auditEIS(_ request: ES3.AuditEISRequest, context: RequestContext) -> ES3.AuditEISResponse
    func updatePolicyRules(_ request: ES3.UpdatePolicyRulesRequest, context: RequestContext) -> ES3.UpdatePolicyRulesResponse
    func updateSubscriptionAddress(_ request: ES3.UpdateSubscriptionAddressRequest, context: RequestContext) -> ES3.UpdateSubscriptionAddressResponse
    func enableProfile(_ request: ES3.EnableProfileRequest, context: RequestContext) -> ES3.EnableProfileResponse
    func disableProfile(_ request: ES3.DisableProfileRequest, context: RequestContext) -> ES3.DisableProfileResponse
    func deleteISDP(_ request: ES3.DeleteISDPRequest, context: RequestContext) -> ES3.DeleteISDPResponse
    func setFallBackAttribute(_ request: ES3.SetFallBackAttributeRequest, context: RequestContext) -> ES3.SetFallBackAttributeResponse
    func setEmergencyProfileAttribute(_ request: ES3.SetEmergencyProfileAttributeRequest, context: RequestContext)
        -> ES3.SetEmergencyProfileAttributeResponse
    func setPLMA(_ request: ES3.SetPLMARequest, context: RequestContext) -> ES3.SetPLMAResponse
    func getPLMA(_ request: ES3.GetPLMARequest, context: RequestContext) -> ES3.GetPLMAResponse
    func setONC(_ request: ES3.SetONCRequest, context: RequestContext) -> ES3.SetONCResponse
    func getONC(_ request: ES3.GetONCRequest, context: RequestContext) -> ES3.GetONCResponse
}

extension SMSR {
    /// The stored response of a call whose operation committed it, decoded.
    func storedResponse<Response: SGP02Response>(_ type: Response.Type, call: Call) -> Response? {
        guard let record = try? store.read({ try $0.functionCall(caller: call.caller.oid, identifier: call.functionCallIdentifier) }),
            let bytes = record.response
        else { return nil }
        return try? MessageBytes.decode(Response.self, bytes)
    }

    /// A life-cycle function: runs it and answers with what was committed.
    func lifecycleCall<Response: SGP02Response>(
        _ kind: LifecycleMachine.Kind, interface: String, name: String, eid: EID, iccid: ICCID, call: Call,
        make: (FunctionExecutionStatus) -> Response
    ) throws -> Response {
        let status = try lifecycle(kind, interface: interface, name: name, eid: eid, iccid: iccid, call: call)
        return storedResponse(Response.self, call: call) ?? make(status)
    }
}

extension SMSR: ES4Provider {
    static let es4Callers: Set<Party.Role> = [.mno, .m2mSP]

    public func getEIS(_ request: ES4.GetEISRequest, context: RequestContext) -> ES4.GetEISResponse {
        serve(request, context: context, roles: Self.es4Callers, readOnly: true, failure: { ES4.GetEISResponse(functionExecutionStatus: $0) }) { call in
            let eis = try getEIS(request.eid, call: call)
            return try call.answer(ES4.GetEISResponse(functionExecutionStatus: .success, eis: eis))
        }
    }

    public func auditEIS(_ request: ES4.AuditEISRequest, context: RequestContext) -> ES4.AuditEISResponse {
        serve(request, context: context, roles: Self.es4Callers, failure: { ES4.AuditEISResponse(functionExecutionStatus: $0) }) { call in
            try audit(eid: request.eid, iccids: request.iccids, call: call) { ES4.AuditEISResponse(functionExecutionStatus: .success, eis: $0) }
        }
    }

    public func updatePolicyRules(_ request: ES4.UpdatePolicyRulesRequest, context: RequestContext) -> ES4.UpdatePolicyRulesResponse {
        serve(request, context: context, roles: Self.es4Callers, failure: { ES4.UpdatePolicyRulesResponse(functionExecutionStatus: $0) }) { call in
            let writes = try updatePOL2(eid: request.eid, iccid: request.iccid, pol2: request.pol2, call: call)
            return try call.commit { tx in
                try writes(tx)
                return ES4.UpdatePolicyRulesResponse(functionExecutionStatus: .success)
            }
        }
    }

    public func updateSubscriptionAddress(_ request: ES4.UpdateSubscriptionAddressRequest, context: RequestContext) -> ES4.UpdateSubscriptionAddressResponse {
        serve(request, context: context, roles: Self.es4Callers, failure: { ES4.UpdateSubscriptionAddressResponse(functionExecutionStatus: $0) }) { call in
            let writes = try updateAddress(eid: request.eid, iccid: request.iccid, address: request.newSubscriptionAddress, call: call)
            return try call.commit { tx in
                try writes(tx)
                return ES4.UpdateSubscriptionAddressResponse(functionExecutionStatus: .success)
            }
        }
    }

    public func enableProfile(_ request: ES4.EnableProfileRequest, context: RequestContext) -> ES4.EnableProfileResponse {
        serve(request, context: context, roles: Self.es4Callers, failure: { ES4.EnableProfileResponse(functionExecutionStatus: $0) }) { call in
            try lifecycleCall(.enable, interface: "ES4", name: "EnableProfile", eid: request.eid, iccid: request.iccid, call: call) {
                ES4.EnableProfileResponse(functionExecutionStatus: $0)
            }
        }
    }

    public func disableProfile(_ request: ES4.DisableProfileRequest, context: RequestContext) -> ES4.DisableProfileResponse {
        serve(request, context: context, roles: Self.es4Callers, failure: { ES4.DisableProfileResponse(functionExecutionStatus: $0) }) { call in
            try lifecycleCall(.disable, interface: "ES4", name: "DisableProfile", eid: request.eid, iccid: request.iccid, call: call) {
                ES4.DisableProfileResponse(functionExecutionStatus: $0)
            }
        }
    }

    public func deleteProfile(_ request: ES4.DeleteProfileRequest, context: RequestContext) -> ES4.DeleteProfileResponse {
        serve(request, context: context, roles: Self.es4Callers, failure: { ES4.DeleteProfileResponse(functionExecutionStatus: $0) }) { call in
            try lifecycleCall(.delete, interface: "ES4", name: "DeleteProfile", eid: request.eid, iccid: request.iccid, call: call) {
                ES4.DeleteProfileResponse(functionExecutionStatus: $0)
            }
        }
    }

    public func setFallBackAttribute(_ request: ES4.SetFallBackAttributeRequest, context: RequestContext) -> ES4.SetFallBackAttributeResponse {
        serve(request, context: context, roles: Self.es4Callers, failure: { ES4.SetFallBackAttributeResponse(functionExecutionStatus: $0) }) { call in
            try lifecycleCall(.setFallBack, interface: "ES4", name: "SetFallBackAttribute", eid: request.eid, iccid: request.iccid, call: call) {
                ES4.SetFallBackAttributeResponse(functionExecutionStatus: $0)
            }
        }
    }

    public func setEmergencyProfileAttribute(_ request: ES4.SetEmergencyProfileAttributeRequest, context: RequestContext)
        -> ES4.SetEmergencyProfileAttributeResponse
    {
        serve(request, context: context, roles: Self.es4Callers, failure: { ES4.SetEmergencyProfileAttributeResponse(functionExecutionStatus: $0) }) { call in
            try lifecycleCall(.setEmergency, interface: "ES4", name: "SetEmergencyProfileAttribute", eid: request.eid, iccid: request.iccid, call: call) {
                ES4.SetEmergencyProfileAttributeResponse(functionExecutionStatus: $0)
            }
        }
    }

    public func getPLMA(_ request: ES4.GetPLMARequest, context: RequestContext) -> ES4.GetPLMAResponse {
        serve(request, context: context, roles: Self.es4Callers, readOnly: true, failure: { ES4.GetPLMAResponse(functionExecutionStatus: $0) }) { call in
            let plmas: [PLMA]
            switch call.caller.role {
            case .m2mSP:
                plmas = try store.read { try $0.plmas(mno: request.mnoID, m2mSP: call.caller.oid, profileType: request.profileType?.text) }
            default:
                guard request.mnoID == nil || request.mnoID == call.caller.oid else {
                    throw Refusal(.functionRequester, .notAllowed, "an Operator reads its own PLMAs", identifier: call.caller.oid.text)
                }
                plmas = try store.read { try $0.plmas(mno: call.caller.oid, m2mSP: nil, profileType: request.profileType?.text) }
            }
            return try call.answer(ES4.GetPLMAResponse(functionExecutionStatus: .success, plmas: plmas))
        }
    }
    // prepareSMSRChange and smsrChange: SMSR+Change.swift.
}

extension SMSR: ES3Provider {
    public func getEIS(_ request: ES3.GetEISRequest, context: RequestContext) -> ES3.GetEISResponse {
        serve(request, context: context, roles: [.smdp], readOnly: true, failure: { ES3.GetEISResponse(functionExecutionStatus: $0) }) { call in
            let eis = try getEIS(request.eid, call: call)
            return try call.answer(ES3.GetEISResponse(functionExecutionStatus: .success, eis: eis))
        }
    }

    public func auditEIS(_ request: ES3.AuditEISRequest, context: RequestContext) -> ES3.AuditEISResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.AuditEISResponse(functionExecutionStatus: $0) }) { call in
            try audit(eid: request.eid, iccids: request.iccids, call: call) { ES3.AuditEISResponse(functionExecutionStatus: .success, eis: $0) }
        }
    }

    public func updatePolicyRules(_ request: ES3.UpdatePolicyRulesRequest, context: RequestContext) -> ES3.UpdatePolicyRulesResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.UpdatePolicyRulesResponse(functionExecutionStatus: $0) }) { call in
            let writes = try updatePOL2(eid: request.eid, iccid: request.iccid, pol2: request.pol2 ?? POL2(), call: call)
            return try call.commit { tx in
                try writes(tx)
                return ES3.UpdatePolicyRulesResponse(functionExecutionStatus: .success)
            }
        }
    }

    public func updateSubscriptionAddress(_ request: ES3.UpdateSubscriptionAddressRequest, context: RequestContext) -> ES3.UpdateSubscriptionAddressResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.UpdateSubscriptionAddressResponse(functionExecutionStatus: $0) }) { call in
            let writes = try updateAddress(eid: request.eid, iccid: request.iccid, address: request.newSubscriptionAddress, call: call)
            return try call.commit { tx in
                try writes(tx)
                return ES3.UpdateSubscriptionAddressResponse(functionExecutionStatus: .success)
            }
        }
    }

    public func enableProfile(_ request: ES3.EnableProfileRequest, context: RequestContext) -> ES3.EnableProfileResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.EnableProfileResponse(functionExecutionStatus: $0) }) { call in
            try lifecycleCall(.enable, interface: "ES3", name: "EnableProfile", eid: request.eid, iccid: request.iccid, call: call) {
                ES3.EnableProfileResponse(functionExecutionStatus: $0)
            }
        }
    }

    public func disableProfile(_ request: ES3.DisableProfileRequest, context: RequestContext) -> ES3.DisableProfileResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.DisableProfileResponse(functionExecutionStatus: $0) }) { call in
            try lifecycleCall(.disable, interface: "ES3", name: "DisableProfile", eid: request.eid, iccid: request.iccid, call: call) {
                ES3.DisableProfileResponse(functionExecutionStatus: $0)
            }
        }
    }

    public func deleteISDP(_ request: ES3.DeleteISDPRequest, context: RequestContext) -> ES3.DeleteISDPResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.DeleteISDPResponse(functionExecutionStatus: $0) }) { call in
            try lifecycleCall(.delete, interface: "ES3", name: "DeleteISDP", eid: request.eid, iccid: request.iccid, call: call) {
                ES3.DeleteISDPResponse(functionExecutionStatus: $0)
            }
        }
    }

    public func setFallBackAttribute(_ request: ES3.SetFallBackAttributeRequest, context: RequestContext) -> ES3.SetFallBackAttributeResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.SetFallBackAttributeResponse(functionExecutionStatus: $0) }) { call in
            try lifecycleCall(.setFallBack, interface: "ES3", name: "SetFallBackAttribute", eid: request.eid, iccid: request.iccid, call: call) {
                ES3.SetFallBackAttributeResponse(functionExecutionStatus: $0)
            }
        }
    }

    public func setEmergencyProfileAttribute(_ request: ES3.SetEmergencyProfileAttributeRequest, context: RequestContext)
        -> ES3.SetEmergencyProfileAttributeResponse
    {
        serve(request, context: context, roles: [.smdp], failure: { ES3.SetEmergencyProfileAttributeResponse(functionExecutionStatus: $0) }) { call in
            try lifecycleCall(.setEmergency, interface: "ES3", name: "SetEmergencyProfileAttribute", eid: request.eid, iccid: request.iccid, call: call) {
                ES3.SetEmergencyProfileAttributeResponse(functionExecutionStatus: $0)
            }
        }
    }

    public func setPLMA(_ request: ES3.SetPLMARequest, context: RequestContext) -> ES3.SetPLMAResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.SetPLMAResponse(functionExecutionStatus: $0) }) { call in
            try requireSMDPServes(request.plma.mnoID, call: call)
            return try call.commit { tx in
                try writePLMA(request.plma, call: call, in: tx)
                return ES3.SetPLMAResponse(functionExecutionStatus: .success)
            }
        }
    }

    public func getPLMA(_ request: ES3.GetPLMARequest, context: RequestContext) -> ES3.GetPLMAResponse {
        serve(request, context: context, roles: [.smdp], readOnly: true, failure: { ES3.GetPLMAResponse(functionExecutionStatus: $0) }) { call in
            try requireSMDPServes(request.mnoID, call: call)
            let plmas = try store.read { try $0.plmas(mno: request.mnoID, m2mSP: request.m2mSPID, profileType: request.profileType?.text) }
            return try call.answer(ES3.GetPLMAResponse(functionExecutionStatus: .success, plmas: plmas))
        }
    }

    public func setONC(_ request: ES3.SetONCRequest, context: RequestContext) -> ES3.SetONCResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.SetONCResponse(functionExecutionStatus: $0) }) { call in
            try requireSMDPServes(request.onc.mnoID, call: call)
            return try call.commit { tx in
                try writeONC(request.onc, call: call, in: tx)
                return ES3.SetONCResponse(functionExecutionStatus: .success)
            }
        }
    }

    public func getONC(_ request: ES3.GetONCRequest, context: RequestContext) -> ES3.GetONCResponse {
        serve(request, context: context, roles: [.smdp], readOnly: true, failure: { ES3.GetONCResponse(functionExecutionStatus: $0) }) { call in
            try requireSMDPServes(request.mnoID, call: call)
            let oncs = try store.read { try $0.oncs(mno: request.mnoID, profileType: request.profileType?.text) }
            return try call.answer(ES3.GetONCResponse(functionExecutionStatus: .success, oncs: oncs))
        }
    }
}
