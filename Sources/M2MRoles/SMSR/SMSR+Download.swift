// The download path of ES3 (SM-DP → SM-SR; spec §5.3, oncard §2.2–2.5; docs/smsr.md):
// CreateISDP (AID allocation, memory, INSTALL [for install and make selectable]), SendData (the
// SM-DP's ES8 scripts passed through to the ISD-P — or, for key establishment's STORE DATA
// 3A01/3A02, to the ISD-R after INSTALL [for personalization] of the ISD-P), ProfileDownloadCompleted
// (GET STATUS: the ISD-P must be DISABLED, then the Profile is Disabled in the EIS and
// ProfileDownloaded goes out) and UpdateConnectivityParameters (SCP03 APDU-mode scripts).
//
// Scripts are run as the HTTPS admin protocol's bodies (SCP81 when an admin server is configured,
// else the transport's own `runScript`, e.g. in process): SCP03t segments of ~1 KB do not fit
// an SMS.

public import M2MCore
import M2MCrypto
import M2MPolicy
public import M2MSOAP
import M2MStorage
import M2MTransport
import M2MWire
import Foundation

/// A CreateISDP as stored in its operation row.
struct CreateISDPMachine: Codable {
    static let kind = "createISDP"
    var iccid: ICCID
    var aid: AID
    var mnoID: OID
    var smdp: OID
    var requiredMemory: Int
}

extension SMSR {
    /// The ISD-P AID of `tar` (2 bytes): A0000005591010FFFFFFFF89 ‖ 00 ‖ TAR ‖ 00 (TAR = bytes 13–15).
    static func isdpAID(tar: Int) -> AID {
        try! AID(bytes: [0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, UInt8(tar >> 8), UInt8(tar & 0xFF), 0x00])
    }

    /// The AID a failed CreateISDP answers with (the response requires one): no ISD-P.
    public static let noISDP = try! AID(text: "A0000005591010FFFFFFFF8900000000")

    /// The first ISD-P AID of this scheme not used on the eUICC, from TAR 0010 (0001, 0002, 000D, 000E
    /// are the ISD-R, ECASD and load file/module).
    static func allocateAID(in eis: EIS, avoiding onCard: Set<AID> = []) -> AID? {
        let used = Set(eis.profiles.map(\.isdPAID)).union(onCard)
        for tar in 0x0010...0xFFFF {
            let aid = isdpAID(tar: tar)
            if !used.contains(aid) { return aid }
        }
        return nil
    }

    func createISDP(_ request: ES3.CreateISDPRequest, call: Call) throws -> ES3.CreateISDPResponse {
        // The EIS, where the ICCID is and the Operator's party from one snapshot (one read transaction);
        // the checks in the order below.
        let (stored, location, operatorParty) = try store.read { tx in
            let stored = try requireEIS(request.eid, in: tx)
            return (stored, try tx.profileLocation(request.iccid), try tx.party(request.mnoID))
        }
        guard request.requiredMemory > 0 else { throw Refusal(.protocolFormat, .invalid, "RequiredMemory must be positive") }
        if let elsewhere = location {
            throw Refusal(.profileICCID, .alreadyInUse, "the ICCID is registered on eUICC \(elsewhere.text)", identifier: request.iccid.text)
        }
        guard request.requiredMemory <= stored.eis.remainingMemory else {
            throw Refusal(.euicc, .insufficientMemory, "\(request.requiredMemory) bytes asked, \(stored.eis.remainingMemory) free", identifier: request.eid.text)
        }
        // The Operator must be one this SM-SR knows: an SM-DP cannot make itself any Operator's agent.
        guard operatorParty?.role == .mno else {
            throw Refusal(.profile, .invalidAssociation, "Operator \(request.mnoID.text) is not known to this SM-SR", identifier: request.mnoID.text)
        }
        // AIDs on the card count too (an ISD-P a crash left behind is not in the EIS).
        let onCard: [AID: UInt8]
        do { onCard = try CardSession(smsr: self, eid: request.eid).isdpStates() } catch let failure as ES5Failure { throw Refusal(status: failure.status) }
        guard let aid = Self.allocateAID(in: stored.eis, avoiding: Set(onCard.keys)) else { throw Refusal(.euicc, .insufficientMemory, "no ISD-P AID left") }
        let busy = try store.read { tx throws -> Bool in
            if try tx.activeOperation(request.eid) != nil { return true }
            return try liveLease(request.eid, in: tx).map { $0.iccid != request.iccid } ?? false
        }
        if busy { throw Refusal(.euicc, .pendingOperation, "another operation or download is in progress on this eUICC", identifier: request.eid.text) }
        let profile = ProfileInfo(iccid: request.iccid, isdPAID: aid, mnoID: request.mnoID, state: .created, smdpID: call.caller.oid,
                                  allocatedMemory: request.requiredMemory)
        // POL2 before a download (the Operator's bundle may restrict Profile Types, memory …).
        let input = PolicyInput.pol2(
            .beforeDownloadProfile,
            operation: OperationSnapshot(interface: "ES3", name: "CreateISDP",
                                         arguments: ["iccid": .string(request.iccid.text), "required_memory": .integer(Int64(request.requiredMemory))]),
            caller: CallerSnapshot(role: .smdp, oid: call.caller.oid), eis: EISSnapshot(stored.eis), profile: ProfileSnapshot(profile))
        let decision = policy.evaluate(input)
        let outcome = decision.result.decision ?? DecisionOutcome(.allow)
        guard outcome.decision.isAllowed else {
            try store.write { try call.record(decision, in: $0) }
            throw Refusal(status: outcome.decision.executionStatus)
        }
        // INSTALL [for install and make selectable] with the memory quota (EF { 83 quota }).
        func lv(_ bytes: [UInt8]) -> [UInt8] { [UInt8(bytes.count)] + bytes }
        let quota = request.requiredMemory
        // The quota on 2 bytes as in the reference traffic (oncard §2.2, `83 02`), 4 when larger.
        let quotaBytes: [UInt8] = quota <= 0xFFFF
            ? [UInt8(quota >> 8), UInt8(quota & 0xFF)]
            : [UInt8(truncatingIfNeeded: quota >> 24), UInt8(truncatingIfNeeded: quota >> 16), UInt8(truncatingIfNeeded: quota >> 8), UInt8(truncatingIfNeeded: quota)]
        let parameters: [UInt8] = [0xC9, 0x04, 0x81, 0x02, 0x03, 0x70] + TLV(0xEF, children: [TLV(0x83, quotaBytes)]).encoded
        let data = lv(stored.eis.eumSignedInfo.isdPLoadFileAID.bytes) + lv(stored.eis.eumSignedInfo.isdPModuleAID.bytes) + lv(aid.bytes)
            + lv([0x80, 0xC0, 0x00]) + lv(parameters) + lv([])
        let install = CommandAPDU(cla: 0x80, ins: 0xE6, p1: 0x0C, p2: 0x00, data: data, le: 0x00)
        // The intent first (an operation row: the eUICC's lock, and what recovery reads), then ES5.
        let machine = CreateISDPMachine(iccid: request.iccid, aid: aid, mnoID: request.mnoID, smdp: call.caller.oid, requiredMemory: request.requiredMemory)
        let operationID: Int64
        do {
            operationID = try store.write { tx throws -> Int64 in
                try call.record(decision, in: tx)
                return try tx.insertOperation(eid: request.eid, kind: CreateISDPMachine.kind, iccid: request.iccid, functionCallID: call.id,
                                              machine: try JSONCoding.encode(machine), now: call.now)
            }
        } catch let error as StorageError where error.code == .constraint {
            throw Refusal(.euicc, .pendingOperation, "another operation is running on this eUICC", identifier: request.eid.text)
        }
        let response: ResponseAPDU
        do {
            response = try CardSession(smsr: self, eid: request.eid).send(install)
        } catch let failure as ES5Failure {
            if failure.uncertain { throw Unresolved(detail: "no answer from the card after INSTALL was sent") }
            try closeCreateISDP(machine, eid: request.eid, operationID: operationID, callID: call.id, status: failure.status)
            throw Refusal(status: failure.status)
        } catch {
            throw Unresolved(detail: "\(type(of: error))")
        }
        guard response.sw.isSuccessOrWarning else {
            let status = CardSession.status(of: response, iccid: request.iccid)
            try closeCreateISDP(machine, eid: request.eid, operationID: operationID, callID: call.id, status: status)
            throw Refusal(status: status)
        }
        return try call.commit { tx in
            try adoptISDP(machine, eid: request.eid, operationID: operationID, requester: call.caller.oid, now: call.now, in: tx)
            return ES3.CreateISDPResponse(functionExecutionStatus: .success, isdPAID: aid, euiccResponseData: HexBinary(response.bytes))
        }
    }

    /// The ISD-P the card created enters the EIS (Created, this SM-DP's), with its lease and audit;
    /// the operation ends.
    func adoptISDP(_ machine: CreateISDPMachine, eid: EID, operationID: Int64, requester: OID, now: Timestamp, in tx: any SMSRWriting) throws {
        var current = try requireEIS(eid, in: tx)
        if !current.eis.profiles.contains(where: { $0.isdPAID == machine.aid }) {
            current.eis.profiles.append(ProfileInfo(iccid: machine.iccid, isdPAID: machine.aid, mnoID: machine.mnoID, state: .created, smdpID: machine.smdp,
                                                    allocatedMemory: machine.requiredMemory))
            current.eis.remainingMemory -= machine.requiredMemory
            try tx.updateEIS(current.eis, now: now)
        }
        try tx.setDownloadLease(eid, newLease(smdp: machine.smdp, iccid: machine.iccid))
        try tx.appendAudit(AuditTrailRecord(eid: eid, smsrID: configuration.smsrID, operationDate: now, operationType: AuditOperation.createISDP,
                                            requesterID: requester, operationExecutionStatus: .success, isdPAID: machine.aid, iccid: machine.iccid),
                           now: now)
        try tx.updateOperation(operationID, state: .completed, machine: try JSONCoding.encode(machine), now: now)
    }

    /// A CreateISDP the card did not carry out: the operation ends failed, the call is answered.
    func closeCreateISDP(_ machine: CreateISDPMachine, eid: EID, operationID: Int64, callID: Int64?, status: FunctionExecutionStatus) throws {
        let now = clock.now()
        try store.write { tx in
            try tx.updateOperation(operationID, state: .failed, machine: try JSONCoding.encode(machine), now: now)
            if let callID {
                try tx.completeFunctionCall(callID, response: MessageBytes.encode(
                    ES3.CreateISDPResponse(processingEnd: now, functionExecutionStatus: status, isdPAID: Self.noISDP)), now: now)
            }
        }
    }

    /// Recovery of a CreateISDP: the card's GET STATUS says whether the ISD-P exists; nil when the
    /// card cannot be asked (the operation stays active).
    func recoverCreateISDP(_ operation: OperationRecord) throws -> Bool {
        guard let machine = try? JSONDecoder().decode(CreateISDPMachine.self, from: Data(operation.machine)),
            let session = try? CardSession(smsr: self, eid: operation.eid), let states = try? session.isdpStates()
        else { return false }
        if states[machine.aid] != nil {
            let now = clock.now()
            try store.write { tx in
                try adoptISDP(machine, eid: operation.eid, operationID: operation.id, requester: machine.smdp, now: now, in: tx)
                if let callID = operation.functionCallID {
                    try tx.completeFunctionCall(callID, response: MessageBytes.encode(
                        ES3.CreateISDPResponse(processingEnd: now, functionExecutionStatus: .success, isdPAID: machine.aid)), now: now)
                }
            }
        } else {
            try closeCreateISDP(machine, eid: operation.eid, operationID: operation.id, callID: operation.functionCallID,
                                status: .failed(.functionProvider, .executionError, identifier: machine.iccid.text,
                                                message: "interrupted by an SM-SR restart before the card created the ISD-P; nothing changed"))
        }
        return true
    }

    /// The Profile behind an ISD-P AID, which must be this SM-DP's.
    func requireSMDPProfile(aid: AID, in eis: EIS, caller: Party) throws(Refusal) -> ProfileInfo {
        guard let profile = eis.profiles.first(where: { $0.isdPAID == aid }) else {
            throw Refusal(.isdp, .unknown, "no such ISD-P on this eUICC", identifier: aid.text)
        }
        guard profile.smdpID == caller.oid else {
            throw Refusal(.isdp, .notAllowed, "the ISD-P was not created for this SM-DP", identifier: aid.text)
        }
        return profile
    }

    /// SendData's script: a whole template (AA/AE) or bare items (22 C-APDUs, or 84/85/86 SCP03t
    /// TLVs). Key establishment (STORE DATA 3A01/3A02) goes to the ISD-R; the rest to the ISD-P.
    static func sendDataScript(_ data: [UInt8], aid: AID) throws(Refusal) -> (script: [UInt8], target: ScriptTarget) {
        let items: [TLV]
        var coding = ScriptLengthCoding.indefinite
        if let first = data.first, first == ExpandedCommandScript.definiteTag || first == ExpandedCommandScript.indefiniteTag {
            guard let script = try? ExpandedCommandScript(bytes: data) else { throw Refusal(.isdp, .invalid, "Data is not a command script") }
            items = script.items
            coding = script.coding
        } else {
            guard let parsed = try? TLV.parseAll(data), !parsed.isEmpty else { throw Refusal(.isdp, .invalid, "Data is neither a script nor script items") }
            items = parsed
        }
        let commands = items.filter { $0.tag == ExpandedCommandScript.commandTag }.compactMap { try? CommandAPDU(bytes: $0.value) }
        let keyEstablishment = !commands.isEmpty && commands.count == items.count && commands.allSatisfy { command in
            command.cla == 0x80 && command.ins == 0xE2 && (command.data.starts(with: [0x3A, 0x01]) || command.data.starts(with: [0x3A, 0x02]))
        }
        if keyEstablishment {
            var routed = items
            if commands.first?.data.starts(with: [0x3A, 0x01]) == true {
                // INSTALL [for personalization] of the ISD-P first: the STORE DATA that follow are for it.
                let perso = CommandAPDU(cla: 0x80, ins: 0xE6, p1: 0x20, p2: 0x00, data: [0x00, 0x00, UInt8(aid.bytes.count)] + aid.bytes + [0x00, 0x00, 0x00], le: 0x00)
                routed.insert(TLV(ExpandedCommandScript.commandTag, perso.bytes), at: 0)
            }
            return (ExpandedCommandScript(items: routed, coding: coding).encoded, .isdR)
        }
        return (ExpandedCommandScript(items: items, coding: coding).encoded, .isdP(aid))
    }

    /// Runs a script as an admin session body; its response script.
    func runScript(_ script: [UInt8], target: ScriptTarget, eid: EID) throws(Refusal) -> [UInt8] {
        do {
            switch configuration.scriptRoute {
            case .automatic:
                if let admin = adminServer { return try admin.run(script: script, target: target, eid: eid, smsr: self) }
                if transport.runsScripts { return try transport.runScript(script, target: target, on: eid) }
                return try CardSession(smsr: self, eid: eid).runScriptOverSMS(script, target: target)
            case .sms:
                return try CardSession(smsr: self, eid: eid).runScriptOverSMS(script, target: target)
            }
        } catch let refusal as Refusal {
            throw refusal
        } catch let failure as ES5Failure {
            throw Refusal(status: failure.status)
        } catch {
            throw Refusal(.euicc, .inaccessible, "\(error)", identifier: eid.text)
        }
    }

    /// The status of a response script: FAILED 8.4/4.2 when a command failed, an SCP03t TLV was
    /// refused (9F44/9F45/9F46) or the script was refused as bad format.
    static func scriptStatus(_ response: [UInt8], aid: AID) -> FunctionExecutionStatus {
        guard let script = try? ExpandedResponseScript(bytes: response) else {
            return .failed(.isdp, .executionError, identifier: aid.text, message: "the card's answer is not a response script")
        }
        if script.items.contains(where: { $0.tag == ExpandedResponseScript.badFormatTag }) {
            return .failed(.isdp, .invalid, identifier: aid.text, message: "the card refused the script as bad format")
        }
        if let failed = script.responses.first(where: { !$0.sw.isSuccessOrWarning }) {
            return .failed(.isdp, .executionError, identifier: aid.text, message: "a command answered \(failed.sw)")
        }
        if script.items.contains(where: { [0x9F44, 0x9F45, 0x9F46].contains($0.tag.rawValue) }) {
            return .failed(.isdp, .executionError, identifier: aid.text, message: "the ISD-P refused an SCP03t command")
        }
        return .success
    }

    func sendData(_ request: ES3.SendDataRequest, call: Call) throws -> ES3.SendDataResponse {
        // The EIS and the download lease from one snapshot (one read transaction).
        let (stored, lease) = try store.read { tx in
            let stored = try requireEIS(request.eid, in: tx)
            return (stored, try liveLease(request.eid, in: tx))
        }
        let profile = try requireSMDPProfile(aid: request.sdAID, in: stored.eis, caller: call.caller)
        if let lease, lease.iccid != profile.iccid {
            throw Refusal(.euicc, .pendingOperation, "another Profile download is in progress on this eUICC", identifier: request.eid.text)
        }
        let (script, target) = try Self.sendDataScript(request.data.bytes, aid: profile.isdPAID)
        let response = try runScript(script, target: target, eid: request.eid)
        let status = Self.scriptStatus(response, aid: profile.isdPAID)
        return try call.commit { tx in
            // Each SendData of a download renews its lease.
            if profile.state == .created { try tx.setDownloadLease(request.eid, newLease(smdp: call.caller.oid, iccid: profile.iccid)) }
            return ES3.SendDataResponse(functionExecutionStatus: status, euiccResponseData: HexBinary(response))
        }
    }

    func profileDownloadCompleted(_ request: ES3.ProfileDownloadCompletedRequest, call: Call) throws -> ES3.ProfileDownloadCompletedResponse {
        let stored = try requireEIS(request.eid)
        let profile = try requireProfile(request.iccid, in: stored.eis)
        guard profile.smdpID == call.caller.oid else {
            throw Refusal(.profileICCID, .notAllowed, "the Profile was not downloaded by this SM-DP", identifier: request.iccid.text)
        }
        guard profile.state == .created else {
            throw Refusal(.profileICCID, .invalidTransition, "the Profile is already installed", identifier: request.iccid.text)
        }
        var profileType: String100?
        if let text = request.profileType {
            do { profileType = try String100(text: text) } catch { throw Refusal(.profileType, .invalid, "ProfileType is 1 to 100 characters") }
        }
        // The card must hold the ISD-P in DISABLED (1F) now: the download really completed.
        let states: [AID: UInt8]
        do {
            states = try CardSession(smsr: self, eid: request.eid).isdpStates()
        } catch let failure as ES5Failure {
            throw Refusal(status: failure.status)
        }
        guard states[profile.isdPAID] == 0x1F else {
            throw Refusal(.isdp, .invalidTransition, "the ISD-P is not DISABLED on the card: the Profile is not installed", identifier: profile.isdPAID.text)
        }
        return try call.commit { tx in
            guard var current = try tx.eis(request.eid), let index = current.eis.profiles.firstIndex(where: { $0.iccid == request.iccid }) else {
                throw Refusal(.profileICCID, .unknown, "no such Profile", identifier: request.iccid.text)
            }
            current.eis.profiles[index].state = .disabled
            current.eis.profiles[index].profileType = profileType
            if let address = request.subscriptionAddress { current.eis.profiles[index].subscriptionAddress = address }
            if let pol2 = request.pol2 { current.eis.profiles[index].pol2 = pol2 }
            try tx.updateEIS(current.eis, now: call.now)
            if try tx.downloadLease(request.eid)?.iccid == request.iccid { try tx.setDownloadLease(request.eid, nil) }
            try tx.appendAudit(AuditTrailRecord(eid: request.eid, smsrID: configuration.smsrID, operationDate: call.now,
                                                operationType: AuditOperation.downloadCompleted, requesterID: call.caller.oid,
                                                operationExecutionStatus: .success, isdPAID: profile.isdPAID, iccid: request.iccid), now: call.now)
            // The SM-DP relays the Operator's ES2 request: the Operator is the requester.
            try notify([ProfileEvent(type: .profileDownloaded, profile: current.eis.profiles[index])], eis: current.eis, requester: profile.mnoID,
                       call: call, operation: nil, in: tx)
            return ES3.ProfileDownloadCompletedResponse(functionExecutionStatus: .success)
        }
    }

    func updateConnectivityParameters(_ request: ES3.UpdateConnectivityParametersRequest, call: Call) throws -> ES3.UpdateConnectivityParametersResponse {
        let stored = try requireEIS(request.eid)
        let profile = try requireProfile(request.iccid, in: stored.eis)
        guard profile.smdpID == call.caller.oid else {
            throw Refusal(.profileICCID, .notAllowed, "the Profile was not downloaded by this SM-DP", identifier: request.iccid.text)
        }
        guard profile.state != .created else {
            throw Refusal(.profileICCID, .invalidTransition, "the Profile is not installed yet", identifier: request.iccid.text)
        }
        let (script, _) = try Self.sendDataScript(request.connectivityParameters.bytes, aid: profile.isdPAID)
        let response = try runScript(script, target: .isdP(profile.isdPAID), eid: request.eid)
        let status = Self.scriptStatus(response, aid: profile.isdPAID)
        return try call.commit { tx in
            try tx.appendAudit(AuditTrailRecord(eid: request.eid, smsrID: configuration.smsrID, operationDate: call.now,
                                                operationType: AuditOperation.updateConnectivity, requesterID: call.caller.oid,
                                                operationExecutionStatus: status, isdPAID: profile.isdPAID, iccid: request.iccid), now: call.now)
            return ES3.UpdateConnectivityParametersResponse(functionExecutionStatus: status, euiccResponseData: HexBinary(response))
        }
    }
}

public protocol ES3DownloadProvider: Sendable {
    func createISDP(_ request: ES3.CreateISDPRequest, context: RequestContext) -> ES3.CreateISDPResponse
    func sendData(_ request: ES3.SendDataRequest, context: RequestContext) -> ES3.SendDataResponse
    func profileDownloadCompleted(_ request: ES3.ProfileDownloadCompletedRequest, context: RequestContext) -> ES3.ProfileDownloadCompletedResponse
    func updateConnectivityParameters(_ request: ES3.UpdateConnectivityParametersRequest, context: RequestContext) -> ES3.UpdateConnectivityParametersResponse
}

extension SMSR: ES3DownloadProvider {
    public func createISDP(_ request: ES3.CreateISDPRequest, context: RequestContext) -> ES3.CreateISDPResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.CreateISDPResponse(functionExecutionStatus: $0, isdPAID: Self.noISDP) }) { call in
            try createISDP(request, call: call)
        }
    }

    public func sendData(_ request: ES3.SendDataRequest, context: RequestContext) -> ES3.SendDataResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.SendDataResponse(functionExecutionStatus: $0) }) { call in
            try sendData(request, call: call)
        }
    }

    public func profileDownloadCompleted(_ request: ES3.ProfileDownloadCompletedRequest, context: RequestContext) -> ES3.ProfileDownloadCompletedResponse {
        serve(request, context: context, roles: [.smdp], failure: { ES3.ProfileDownloadCompletedResponse(functionExecutionStatus: $0) }) { call in
            try profileDownloadCompleted(request, call: call)
        }
    }

    public func updateConnectivityParameters(_ request: ES3.UpdateConnectivityParametersRequest, context: RequestContext)
        -> ES3.UpdateConnectivityParametersResponse
    {
        serve(request, context: context, roles: [.smdp], failure: { ES3.UpdateConnectivityParametersResponse(functionExecutionStatus: $0) }) { call in
            try updateConnectivityParameters(request, call: call)
        }
    }
}
