// SM-SR change (issue #9; spec/sgp02-offcard.md §6, docs/smsr-change.md): ES4.PrepareSMSRChange on
// the new SM-SR, ES4.SMSRChange on the current one, and the three ES7 functions between them.
//
//   Operator ──ES4.PrepareSMSRChange──▶ SM-SR2      incoming row "prepared" (before_smsr_change, Lua)
//   Operator ──ES4.SMSRChange─────────▶ SM-SR1      before_smsr_change (Lua); the eUICC locked (an
//                                                    operation: other changes get 8.1/4.4); outgoing row
//   SM-SR1 ──ES7.HandoverEUICC(EIS)───▶ SM-SR2      EIS verified (EUM, CERT.ECASD); incoming "handingOver"
//   SM-SR2 ──ES7.AuthenticateSMSR─────▶ SM-SR1 ──ES5 STORE DATA 3A01 {CERT.SR.ECDSA}──▶ ISD-R → RC
//   SM-SR2 ──ES7.CreateAdditionalKeySet▶ SM-SR1 ──ES5 STORE DATA 3A02 {A6} 7F49 5F37──▶ ISD-R → receipt
//   SM-SR2 verifies the receipt: the commit point. One transaction stores the EIS (Smsr-id = SM-SR2),
//          the new key sets sealed, the audit record and the HandleSMSRChangeNotifications (routed
//          and ONC-filtered in Lua); incoming "committed".
//   SM-SR2 ──ES5 with the new keys: PUT KEY (SCP81 PSK), DELETE {old key sets} (FinaliseISDRhandover)
//          → HandoverEUICC answered (success, or with a warning: never failed after the commit point)
//   SM-SR1 deletes its EIS copy and answers ES4.SMSRChange.
//
// Exactly one SM-SR manages the card at every moment: before the commit point SM-SR1 (its keys stay
// on the card until FinaliseISDRhandover), after it SM-SR2 (it has the new keys). A crash before the
// commit point makes the change fail (SM-SR2's ephemeral key died with it); after it, `recover()`
// finishes it on both sides: SM-SR2 finalises, SM-SR1 asks HandoverEUICC again under the same
// FunctionCallIdentifier and gets the stored answer.

public import M2MCore
import M2MCrypto
import M2MPolicy
public import M2MSOAP
import M2MStorage
import M2MTransport
import M2MWire
import Foundation
import Synchronization

/// ES7 as an SM-SR offers it to another SM-SR.
public protocol ES7Provider: Sendable {
    func handoverEUICC(_ request: ES7.HandoverEUICCRequest, context: RequestContext) -> ES7.HandoverEUICCResponse
    func authenticateSMSR(_ request: ES7.AuthenticateSMSRRequest, context: RequestContext) -> ES7.AuthenticateSMSRResponse
    func createAdditionalKeySet(_ request: ES7.CreateAdditionalKeySetRequest, context: RequestContext) -> ES7.CreateAdditionalKeySetResponse
}

/// A request to another role got no answer: its outcome is unknown (ES3 and ES7 clients).
public typealias ES7TransportError = ES3TransportError

/// Another SM-SR as this one calls it over ES7: in this process (`InProcessES7`) or SOAP over mutual
/// TLS (M2MServer). Throws when the request may not have arrived.
public protocol ES7Endpoint: Sendable {
    func call<Request: SGP02Request>(_ request: Request) throws(ES7TransportError) -> Request.Response
}

/// An SM-SR in this process, called as the SM-SR `caller`.
public struct InProcessES7: ES7Endpoint {
    public let smsr: any ES7Provider
    public let caller: OID

    public init(smsr: any ES7Provider, caller: OID) {
        self.smsr = smsr
        self.caller = caller
    }

    public func call<Request: SGP02Request>(_ request: Request) throws(ES7TransportError) -> Request.Response {
        let context = RequestContext(caller: caller)
        let response: any SGP02Response
        switch request {
        case let r as ES7.HandoverEUICCRequest: response = smsr.handoverEUICC(r, context: context)
        case let r as ES7.AuthenticateSMSRRequest: response = smsr.authenticateSMSR(r, context: context)
        case let r as ES7.CreateAdditionalKeySetRequest: response = smsr.createAdditionalKeySet(r, context: context)
        default: throw ES7TransportError("\(Request.descriptor.elementName) is not an ES7 request")
        }
        guard let typed = response as? Request.Response else { throw ES7TransportError("unexpected response type \(type(of: response))") }
        return typed
    }
}

/// The current SM-SR's side of a change (the `outgoing` row's machine).
struct OutgoingChange: Codable {
    var target: OID
    var requester: OID
    var deadline: Timestamp?
    var acceptableValidityPeriod: Int?
    /// ES7.HandoverEUICC as first built when the eUICC was locked (the EIS then, the ValidityPeriod
    /// left then): every retry sends these very bytes under the same FunctionCallIdentifier, so the
    /// new SM-SR answers a retry with what it stored.
    /// (`Data`: base64 in the row's JSON — a byte array would be written number by number.)
    var handoverRequest: Data
    /// Set (and committed) before the request first leaves: from then on the outcome is the new
    /// SM-SR's to give — no expiry, no giving up on this side.
    var sent = false
    var operationID: Int64
}

/// The new SM-SR's side of a change (the `incoming` row's machine).
struct IncomingChange: Codable {
    var current: OID
    var requester: OID
    var deadline: Timestamp?
    /// The key sets this SM-SR makes on the card and those it deletes there.
    var scp80Version: Int = 0
    var pskVersion: Int = 0
    var oldVersions: [Int] = []
    /// Set at the commit point: what FinaliseISDRhandover still has to send (the PSK, sealed).
    var sealedPSK: [UInt8]?
    /// The FunctionCallIdentifier of the ES7.HandoverEUICC being served (its answer is stored under it).
    var handoverIdentifier: String?
}

extension Refusal {
    /// A pre-commit failure of HandoverEUICC as stored: the codes the current SM-SR reads as "ask
    /// again" (1.2/4.2 not known yet, 1.6/4.4 still running, 1.6/3.3 identifier clash) — which an
    /// ES7 call to it may have answered — become 8.7/4.2, so the change ends instead of staying open.
    var settled: Refusal {
        guard status.status == .failed, let data = status.statusCodeData,
            (data.subject == .functionProvider && data.reason == .executionError)
                || (data.subject == .function && (data.reason == .pendingOperation || data.reason == .alreadyInUse))
        else { return self }
        return Refusal(.smsr, .executionError, "\(data.subject.rawValue)/\(data.reason.rawValue): \(data.message ?? "")", identifier: data.subjectIdentifier)
    }
}

/// States of the change rows.
enum ChangeState {
    static let prepared = "prepared"
    static let handingOver = "handingOver"
    static let committed = "committed"
    static let completed = "completed"
    static let failed = "failed"
}

/// The A6 template both SM-SRs build from ES7.CreateAdditionalKeySet's fields (the new SM-SR signs
/// it, the current one rebuilds it for the card): scenario #3, three AES-128 keys (K-ENC, K-MAC,
/// K-DEK) of key version `keyVersion`, first key 1, initial sequence counter as big-endian bytes
/// (empty for 0).
enum ISDRKeySetTemplate {
    static func parameters(keyVersion: Int, initialSequenceCounter: Int, scenarioParameter: Int) -> KeyEstablishmentParameters {
        var counter: [UInt8] = []
        var value = initialSequenceCounter
        while value > 0 {
            counter.insert(UInt8(value & 0xFF), at: 0)
            value >>= 8
        }
        return KeyEstablishmentParameters(scenarioParameter: UInt8(truncatingIfNeeded: scenarioParameter), keyUsage: 0x10, keyType: 0x88,
                                          keyLength: 0x10, firstKeyID: 0x01, keyVersion: UInt8(truncatingIfNeeded: keyVersion),
                                          initialSequenceCounter: counter)
    }

    /// Scenario #3 parameter: certificate verification precedes (08) + b1, as in the real ISD-P trace.
    static let scenarioParameter = 0x09
}

extension SMSR {
    /// Makes `endpoint` the way to reach SM-SR `smsrID` over ES7 (the SM-SR must also be a registered
    /// party with role SMSR to call this one).
    public func connect(smsr smsrID: OID, endpoint: any ES7Endpoint) {
        peers.withLock { $0[smsrID] = endpoint }
    }

    func peer(_ smsrID: OID) -> (any ES7Endpoint)? { peers.withLock { $0[smsrID] } }

    /// Marks an SM-SR change of `eid` as running in this process (false: one already is).
    func claim(_ eid: EID) -> Bool { changesInFlight.withLock { $0.insert(eid).inserted } }
    func release(_ eid: EID) { _ = changesInFlight.withLock { $0.remove(eid) } }

    /// Functions that rewrite the EIS (POL2, subscription address, properties) wait while an SM-SR
    /// change holds the eUICC: the EIS was handed over as it was when the change began.
    func requireNoSMSRChange(_ eid: EID, in tx: any SMSRReading) throws {
        if let operation = try tx.activeOperation(eid), operation.kind == Self.smsrChangeKind {
            throw Refusal(.euicc, .pendingOperation, "an SM-SR change of this eUICC is in progress", identifier: eid.text)
        }
    }

    static let smsrChangeKind = "SMSRChange"

    static func expired(_ message: String, identifier: String? = nil) -> FunctionExecutionStatus {
        FunctionExecutionStatus(status: .expired, statusCodeData: .init(subject: .function, reason: .timeToLiveExpired,
                                                                        subjectIdentifier: identifier, message: message))
    }

    func isPast(_ deadline: Timestamp?) -> Bool { deadline.map { clock.now() > $0 } ?? false }

    /// before_smsr_change in the requesting Operator's bundle; a refusal is recorded and thrown.
    func checkChangePolicy(_ call: Call, eis: EIS?, name: String, arguments: [String: PolicyValue]) throws {
        let role: CallerSnapshot.Role = call.caller.role == .m2mSP ? .m2mSP : .mno
        let input = PolicyInput(
            hook: .beforeSMSRChange, operation: OperationSnapshot(interface: "ES4", name: name, arguments: arguments),
            caller: CallerSnapshot(role: role, oid: call.caller.oid), eis: eis.map(EISSnapshot.init), operatorID: call.caller.oid)
        let decision = policy.evaluate(input)
        try store.write { try call.record(decision, in: $0) }
        let outcome = decision.result.decision ?? DecisionOutcome(.allow)
        guard outcome.decision.isAllowed else { throw Refusal(status: outcome.decision.executionStatus) }
    }

    // MARK: - ES4 on the new SM-SR

    public func prepareSMSRChange(_ request: ES4.PrepareSMSRChangeRequest, context: RequestContext) -> ES4.PrepareSMSRChangeResponse {
        serve(request, context: context, roles: [.mno], failure: { ES4.PrepareSMSRChangeResponse(functionExecutionStatus: $0) }) { call in
            let eid = request.eid
            guard request.currentSMSRID != configuration.smsrID else {
                throw Refusal(.smsr, .invalidDestination, "this SM-SR is the current one", identifier: request.currentSMSRID.text)
            }
            guard try store.read({ try $0.eis(eid) }) == nil else {
                throw Refusal(.eid, .alreadyInUse, "this SM-SR already manages the eUICC", identifier: eid.text)
            }
            guard try store.read({ try $0.party(request.currentSMSRID) })?.role == .smsr, peer(request.currentSMSRID) != nil else {
                throw Refusal(.smsr, .unknown, "SM-SR \(request.currentSMSRID.text) is not one this SM-SR works with", identifier: request.currentSMSRID.text)
            }
            guard !configuration.credentials.isEmpty else {
                throw Refusal(.smsr, .unsupported, "this SM-SR has no CERT.SR.ECDSA to take over eUICCs with", identifier: configuration.smsrID.text)
            }
            try checkChangePolicy(call, eis: nil, name: "PrepareSMSRChange", arguments: ["current_smsr_id": .string(request.currentSMSRID.text)])
            // A preparation lasts its ValidityPeriod, or the longest one honoured when none was given.
            let deadline = call.deadline ?? Timestamp(seconds: call.now.seconds + Int64(configuration.maximumValidityPeriod))
            let machine = IncomingChange(current: request.currentSMSRID, requester: call.caller.oid, deadline: deadline)
            return try call.commit { tx in
                // Checked and written in one transaction: a change under way is never overwritten, nor
                // another Operator's preparation while it is valid.
                if let open = try tx.smsrChange(eid, direction: .incoming) {
                    if open.state == ChangeState.handingOver || open.state == ChangeState.committed {
                        throw Refusal(.euicc, .pendingOperation, "an SM-SR change of this eUICC is in progress", identifier: eid.text)
                    }
                    if open.state == ChangeState.prepared, let other = try? JSONDecoder().decode(IncomingChange.self, from: Data(open.machine)),
                        other.requester != call.caller.oid, !isPast(other.deadline)
                    {
                        throw Refusal(.euicc, .pendingOperation, "another Operator prepared an SM-SR change of this eUICC", identifier: eid.text)
                    }
                }
                try tx.putSMSRChange(SMSRChangeRecord(eid: eid, direction: .incoming, peer: request.currentSMSRID, state: ChangeState.prepared,
                                                      functionCallID: nil, machine: try JSONCoding.encode(machine)), now: call.now)
                return ES4.PrepareSMSRChangeResponse(functionExecutionStatus: .success)
            }
        }
    }

    // MARK: - ES4 on the current SM-SR

    public func smsrChange(_ request: ES4.SMSRChangeRequest, context: RequestContext) -> ES4.SMSRChangeResponse {
        serve(request, context: context, roles: [.mno], failure: { ES4.SMSRChangeResponse(functionExecutionStatus: $0) }) { call in
            let eid = request.eid
            let stored = try requireEIS(eid)
            guard request.targetSMSRID != configuration.smsrID else {
                throw Refusal(.smsr, .invalidDestination, "the eUICC is already managed by this SM-SR", identifier: request.targetSMSRID.text)
            }
            guard try store.read({ try $0.party(request.targetSMSRID) })?.role == .smsr, peer(request.targetSMSRID) != nil else {
                throw Refusal(.smsr, .unknown, "SM-SR \(request.targetSMSRID.text) is not one this SM-SR works with", identifier: request.targetSMSRID.text)
            }
            guard stored.eis.profiles.contains(where: { $0.mnoID == call.caller.oid }) else {
                throw Refusal(.functionRequester, .notAllowed, "the Operator owns no Profile on the eUICC", identifier: call.caller.oid.text)
            }
            try checkChangePolicy(call, eis: stored.eis, name: "SMSRChange", arguments: ["target_smsr_id": .string(request.targetSMSRID.text)])
            // The eUICC is locked for the whole procedure (step 3): an operation row. While this call runs
            // the change is in flight here: `retrySMSRChanges` leaves it alone.
            guard claim(eid) else { throw Refusal(.euicc, .pendingOperation, "an SM-SR change of this eUICC is in progress", identifier: eid.text) }
            defer { release(eid) }
            var machine = OutgoingChange(target: request.targetSMSRID, requester: call.caller.oid, deadline: call.deadline,
                                         acceptableValidityPeriod: call.acceptableValidityPeriod, handoverRequest: Data(), operationID: 0)
            try store.write { tx in
                if try tx.activeOperation(eid) != nil || liveLease(eid, in: tx) != nil {
                    throw Refusal(.euicc, .pendingOperation, "another operation is in progress on the eUICC", identifier: eid.text)
                }
                let locked = try requireEIS(eid, in: tx)
                machine.handoverRequest = Data(MessageBytes.encode(ES7.HandoverEUICCRequest(
                    functionCallIdentifier: "es7:\(configuration.smsrID.text):\(call.id)",
                    validityPeriod: call.deadline.map { Int(max(1, $0.seconds - clock.now().seconds)) }, eis: locked.eis)))
                machine.operationID = try tx.insertOperation(eid: eid, kind: Self.smsrChangeKind, iccid: nil, functionCallID: call.id,
                                                             machine: try JSONCoding.encode(machine), now: call.now)
                try tx.putSMSRChange(SMSRChangeRecord(eid: eid, direction: .outgoing, peer: request.targetSMSRID, state: ChangeState.handingOver,
                                                      functionCallID: call.id, machine: try JSONCoding.encode(machine)), now: call.now)
            }
            try crash(at: .changeBeforeHandover)
            return try handOver(eid, machine: machine, callID: call.id, processingStart: call.now)
        }
    }

    /// Step 4 onwards on the current SM-SR: ES7.HandoverEUICC to the new one, then the outcome. Throws
    /// `Unresolved` when the new SM-SR did not answer (the change stays open for `recover()`).
    func handOver(_ eid: EID, machine: OutgoingChange, callID: Int64, processingStart: Timestamp) throws -> ES4.SMSRChangeResponse {
        var machine = machine
        if !machine.sent {
            // Expiry is this side's to decide only while the new SM-SR has not been asked.
            if isPast(machine.deadline) {
                return try closeOutgoing(eid, machine: machine, callID: callID, processingStart: processingStart,
                                         status: Self.expired("the ValidityPeriod ended before the handover; the eUICC stays with this SM-SR", identifier: eid.text))
            }
            machine.sent = true
            let record = machine
            try store.write { tx in
                try tx.putSMSRChange(SMSRChangeRecord(eid: eid, direction: .outgoing, peer: record.target, state: ChangeState.handingOver,
                                                      functionCallID: callID, machine: try JSONCoding.encode(record)), now: clock.now())
            }
        }
        guard let peer = peer(machine.target) else { throw Unresolved(detail: "no ES7 endpoint of SM-SR \(machine.target.text)") }
        let request = try MessageBytes.decode(ES7.HandoverEUICCRequest.self, Array(machine.handoverRequest))
        let answer: ES7.HandoverEUICCResponse
        do {
            answer = try peer.call(request)
        } catch {
            // The transport's detail (addresses, errno) stays out of the answer.
            throw Unresolved(detail: "SM-SR \(machine.target.text) did not answer ES7.HandoverEUICC")
        }
        let status = answer.functionExecutionStatus
        // Answers that do not settle the outcome: the new SM-SR still at it (1.6/4.4), its own outcome
        // not known yet (1.2/4.2: it stores none and finishes in its recovery), an identifier clash
        // (1.6/3.3, never expected with the stored bytes). The eUICC stays locked; ask again later.
        if status.status == .failed, let data = status.statusCodeData,
            (data.subject == .function && (data.reason == .pendingOperation || data.reason == .alreadyInUse))
                || (data.subject == .functionProvider && data.reason == .executionError)
        {
            throw Unresolved(detail: "SM-SR \(machine.target.text) has not settled the handover yet")
        }
        return try closeOutgoing(eid, machine: machine, callID: callID, processingStart: processingStart, status: status)
    }

    /// The end of the current SM-SR's side: after a handover (success or warning) the EIS copy and
    /// everything kept for the eUICC go; otherwise the lock is released and the eUICC stays.
    func closeOutgoing(_ eid: EID, machine: OutgoingChange, callID: Int64, processingStart: Timestamp, status: FunctionExecutionStatus) throws
        -> ES4.SMSRChangeResponse
    {
        let handedOver = status.status == .executedSuccess || status.status == .executedWithWarning
        let now = clock.now()
        let response = ES4.SMSRChangeResponse(processingStart: processingStart, processingEnd: now,
                                              acceptableValidityPeriod: machine.acceptableValidityPeriod, functionExecutionStatus: status)
        try store.write { tx in
            if handedOver {
                try tx.deleteEIS(eid)
            } else {
                try tx.updateOperation(machine.operationID, state: .failed, machine: try JSONCoding.encode(machine), now: now)
                try tx.appendAudit(AuditTrailRecord(eid: eid, smsrID: configuration.smsrID, operationDate: now, operationType: AuditOperation.smsrChange,
                                                    requesterID: machine.requester, operationExecutionStatus: status), now: now)
            }
            try tx.putSMSRChange(SMSRChangeRecord(eid: eid, direction: .outgoing, peer: machine.target,
                                                  state: handedOver ? ChangeState.completed : ChangeState.failed, functionCallID: callID,
                                                  machine: try JSONCoding.encode(machine)), now: now)
            try tx.completeFunctionCall(callID, response: MessageBytes.encode(response), now: now)
        }
        return response
    }

    /// The open outgoing change of `eid` to `caller`, or a refusal (ES7.AuthenticateSMSR, CreateAdditionalKeySet).
    func requireOutgoing(_ eid: EID, caller: OID) throws -> OutgoingChange {
        guard let record = try store.read({ try $0.smsrChange(eid, direction: .outgoing) }), record.peer == caller,
            record.state == ChangeState.handingOver, let machine = try? JSONDecoder().decode(OutgoingChange.self, from: Data(record.machine))
        else { throw Refusal(.eid, .notAllowed, "no SM-SR change of this eUICC to the caller is in progress", identifier: eid.text) }
        if isPast(machine.deadline) {
            throw Refusal(status: Self.expired("the ValidityPeriod of the SM-SR change ended", identifier: eid.text))
        }
        return machine
    }

    /// One STORE DATA to the ISD-R as an admin script (SCP81, or in process: the certificate and the
    /// signed key agreement data do not fit one SMS); the response data, or the card's refusal.
    func storeDataToISDR(_ eid: EID, data: [UInt8], p2: UInt8, refusal: (StatusWord) -> Refusal) throws -> [UInt8] {
        let command = CommandAPDU(cla: 0x80, ins: 0xE2, p1: 0x89, p2: p2, data: data, le: 0)
        let answer = try runScript(ExpandedCommandScript(commands: [command]).encoded, target: .isdR, eid: eid)
        guard let script = try? ExpandedResponseScript(bytes: answer), !script.items.contains(where: { $0.tag == ExpandedResponseScript.badFormatTag }),
            let response = script.responses.first
        else { throw Refusal(.isdr, .executionError, "the card executed nothing", identifier: eid.text) }
        guard response.sw == .success else { throw refusal(response.sw) }
        return response.data
    }

    // MARK: - ES7 on the current SM-SR

    public func authenticateSMSR(_ request: ES7.AuthenticateSMSRRequest, context: RequestContext) -> ES7.AuthenticateSMSRResponse {
        serve(request, context: context, roles: [.smsr], failure: { ES7.AuthenticateSMSRResponse(functionExecutionStatus: $0, randomChallenge: []) }) { call in
            let eid = request.eis.eid
            _ = try requireOutgoing(eid, caller: call.caller.oid)
            // ES5.EstablishISDRKeySet, first command: CERT.SR.ECDSA (7F21 …) to the ISD-R.
            let answer = try storeDataToISDR(eid, data: DGI(0x3A01, request.smsrCertificate.bytes).encoded, p2: 0x00) { sw in
                sw == .securityStatusNotSatisfied
                    ? Refusal(.smsr, .verificationFailed, "the eUICC refused CERT.SR.ECDSA (\(sw))", identifier: call.caller.oid.text)
                    : Refusal(.isdr, .executionError, "the eUICC answered \(sw) to CERT.SR.ECDSA", identifier: eid.text)
            }
            guard let challenge = try? TLV.parseOne(answer), challenge.tag == 0x85, !challenge.value.isEmpty else {
                throw Refusal(.isdr, .invalid, "the eUICC returned no random challenge", identifier: eid.text)
            }
            return try call.commit { _ in ES7.AuthenticateSMSRResponse(functionExecutionStatus: .success, randomChallenge: HexBinary(challenge.value)) }
        }
    }

    public func createAdditionalKeySet(_ request: ES7.CreateAdditionalKeySetRequest, context: RequestContext) -> ES7.CreateAdditionalKeySetResponse {
        serve(request, context: context, roles: [.smsr], failure: {
            ES7.CreateAdditionalKeySetResponse(functionExecutionStatus: $0, derivationRandom: [], receipt: [])
        }) { call in
            _ = try requireOutgoing(request.eid, caller: call.caller.oid)
            // The new key set may not replace one in use (this SM-SR's: the versions its EIS lists).
            let inUse = try requireEIS(request.eid).eis.isdR.keysets.map(\.version)
            guard !inUse.contains(request.keyVersionNumber) else {
                throw Refusal(.isdr, .alreadyInUse, "key version \(request.keyVersionNumber) is in use on the eUICC", identifier: request.eid.text)
            }
            guard request.eccKeyLength == .ecc256 else {
                throw Refusal(.ecasd, .unsupported, "\(request.eccKeyLength.rawValue): the eUICC's keys are 256-bit", identifier: request.eid.text)
            }
            guard (1...15).contains(request.keyVersionNumber) else {
                throw Refusal(.isdr, .invalid, "key version \(request.keyVersionNumber) is not an SCP80 key version (1–15)", identifier: request.eid.text)
            }
            // ES5.EstablishISDRKeySet, second command, rebuilt from the fields the new SM-SR signed.
            let parameters = ISDRKeySetTemplate.parameters(keyVersion: request.keyVersionNumber, initialSequenceCounter: request.initialSequenceCounter,
                                                           scenarioParameter: request.scenarioParameter)
            let data = DGI(0x3A02, parameters.crt.encoded).encoded + TLV(0x7F49, request.ephemeralPublicKey.bytes).encoded
                + TLV(0x5F37, request.signature.bytes).encoded
            let answer = try storeDataToISDR(request.eid, data: data, p2: 0x01) { sw in
                sw == .securityStatusNotSatisfied
                    ? Refusal(.smsr, .verificationFailed, "the eUICC refused the key agreement data (\(sw))", identifier: call.caller.oid.text)
                    : Refusal(.isdr, .executionError, "the eUICC answered \(sw) to the key agreement data", identifier: request.eid.text)
            }
            guard let items = try? TLV.parseAll(answer), let receipt = items.first(where: { $0.tag == 0x86 })?.value else {
                throw Refusal(.isdr, .invalid, "the eUICC returned no receipt", identifier: request.eid.text)
            }
            let dr = items.first(where: { $0.tag == 0x85 })?.value ?? []
            return try call.commit { _ in
                ES7.CreateAdditionalKeySetResponse(functionExecutionStatus: .success, derivationRandom: HexBinary(dr), receipt: HexBinary(receipt))
            }
        }
    }

    // MARK: - ES7 on the new SM-SR

    public func handoverEUICC(_ request: ES7.HandoverEUICCRequest, context: RequestContext) -> ES7.HandoverEUICCResponse {
        serve(request, context: context, roles: [.smsr], failure: { ES7.HandoverEUICCResponse(functionExecutionStatus: $0) }) { call in
            let eid = request.eis.eid
            // Claimed before anything is written: `retrySMSRChanges` never touches a change running here.
            guard claim(eid) else { throw Refusal(.smsr, .executionError, "an SM-SR change of this eUICC is running here", identifier: eid.text) }
            defer { release(eid) }
            do {
                return try receiveHandover(request, call: call)
            } catch let refusal as Refusal {
                throw refusal.settled
            } catch let error as Unresolved {
                throw error
            } catch let crash as SimulatedCrash {
                throw crash
            } catch {
                // Stored as this change's end: never a code the current SM-SR would take for "ask again".
                throw Refusal(.smsr, .executionError, "the handover failed before the commit point (\(type(of: error)))", identifier: eid.text)
            }
        }
    }

    /// HandoverEUICC's work (steps 5–13), the eUICC claimed by the caller.
    func receiveHandover(_ request: ES7.HandoverEUICCRequest, call: Call) throws -> ES7.HandoverEUICCResponse {
            let eis = request.eis
            let eid = eis.eid
            guard let record = try store.read({ try $0.smsrChange(eid, direction: .incoming) }), record.state == ChangeState.prepared,
                var machine = try? JSONDecoder().decode(IncomingChange.self, from: Data(record.machine))
            else { throw Refusal(.smsr, .refused, "no ES4.PrepareSMSRChange for this eUICC is open here", identifier: eid.text) }
            guard machine.current == call.caller.oid, eis.smsrID == call.caller.oid else {
                throw Refusal(.functionRequester, .notAllowed, "the change was prepared from SM-SR \(machine.current.text)", identifier: call.caller.oid.text)
            }
            guard try store.read({ try $0.eis(eid) }) == nil else {
                throw Refusal(.eid, .alreadyInUse, "this SM-SR already manages the eUICC", identifier: eid.text)
            }
            // Step 5: the EIS is the EUM's (its certificate chains to the CI; it signed the EIS and CERT.ECASD.ECKA).
            let eumCertificate = try verifiedEUMCertificate(of: eis, at: call.now)
            try Self.checkConsistency(eis)
            try verifyEUMSigned(eis, eumCertificate: eumCertificate)
            // The key sets: SCP80 and SCP81 versions the card does not use yet; the old ones go at the end.
            let used = eis.isdR.keysets.map(\.version)
            guard let scp80 = (1...15).first(where: { !used.contains($0) }), let psk = (0x40...0x4F).first(where: { !used.contains($0) }) else {
                throw Refusal(.isdr, .unavailable, "no free ISD-R key version", identifier: eid.text)
            }
            machine.scp80Version = scp80
            machine.pskVersion = psk
            machine.oldVersions = used
            if let deadline = call.deadline, machine.deadline.map({ deadline < $0 }) ?? true { machine.deadline = deadline }
            try store.write { tx in
                try tx.putSMSRChange(SMSRChangeRecord(eid: eid, direction: .incoming, peer: call.caller.oid, state: ChangeState.handingOver,
                                                      functionCallID: call.id, machine: try JSONCoding.encode(machine)), now: call.now)
            }
            machine.handoverIdentifier = call.functionCallIdentifier
            var committed = false
            do {
                try establishKeys(eis, machine: &machine, call: call, committed: &committed)
            } catch let crash as SimulatedCrash {
                throw crash
            } catch let error where !committed {
                // Before the commit point every failure is this change's end: the row says so (a new
                // PrepareSMSRChange may follow) and the answer is stored. An unexpected error gets an
                // SM-SR-side code: 1.2/4.2 stays for "not known yet" (the current SM-SR asks again).
                try store.write { tx in
                    try tx.putSMSRChange(SMSRChangeRecord(eid: eid, direction: .incoming, peer: call.caller.oid, state: ChangeState.failed,
                                                          functionCallID: call.id, machine: try JSONCoding.encode(machine)), now: clock.now())
                }
                if let refusal = error as? Refusal { throw refusal }
                throw Refusal(.smsr, .executionError, "the handover failed before the commit point (\(type(of: error)))", identifier: eid.text)
            } catch {
                // After the commit point this SM-SR manages the eUICC, whatever failed: no failure is
                // stored; recovery finishes the change and stores its answer.
                throw Unresolved(detail: "committed; finishing (\(type(of: error)))")
            }
            try crash(at: .changeAfterCommit)
            let status = finalise(eid, machine: machine)
            do {
                return try call.commit { tx in
                    // A warning leaves the row committed: the finalisation is tried again until it is done.
                    try tx.putSMSRChange(SMSRChangeRecord(eid: eid, direction: .incoming, peer: call.caller.oid,
                                                          state: status == .success ? ChangeState.completed : ChangeState.committed,
                                                          functionCallID: call.id, machine: try JSONCoding.encode(machine)), now: clock.now())
                    return ES7.HandoverEUICCResponse(functionExecutionStatus: status)
                }
            } catch {
                throw Unresolved(detail: "committed; the answer is not stored yet (\(type(of: error)))")
            }
    }

    /// Steps 6–12 on the new SM-SR: AuthenticateSMSR and CreateAdditionalKeySet through the current
    /// SM-SR, the receipt verified, then the commit: the EIS, keys, audit and notifications.
    func establishKeys(_ eis: EIS, machine: inout IncomingChange, call: Call, committed: inout Bool) throws {
        let eid = eis.eid
        guard let peer = peer(machine.current) else { throw Refusal(.smsr, .unknown, "no ES7 endpoint of SM-SR \(machine.current.text)") }
        guard let chosen = GPCredential.choose(for: eis, among: configuration.credentials) else {
            throw Refusal(.ecasd, .unsupported, "no CERT.SR.ECDSA of this SM-SR is on the eUICC's curve", identifier: eid.text)
        }
        let (ecasdKey, credential) = chosen
        let parameters = ISDRKeySetTemplate.parameters(keyVersion: machine.scp80Version, initialSequenceCounter: 0,
                                                       scenarioParameter: ISDRKeySetTemplate.scenarioParameter)
        var host: KeyEstablishmentHost
        do {
            host = try KeyEstablishmentHost(certificate: credential.certificate, signingKey: credential.key, ecasdPublicKey: ecasdKey, parameters: parameters)
        } catch {
            throw Refusal(.ecasd, .invalid, "key establishment: \(error)", identifier: eid.text)
        }
        func remaining() throws -> Int? {
            guard let deadline = machine.deadline else { return nil }
            let left = deadline.seconds - clock.now().seconds
            guard clock.now() <= deadline else {
                throw Refusal(status: Self.expired("the ValidityPeriod ended before the new key set was made; the eUICC stays with SM-SR \(machine.current.text)",
                                                   identifier: eid.text))
            }
            return Int(max(1, left))
        }
        // Steps 6–8.
        let authentication: ES7.AuthenticateSMSRResponse
        do {
            authentication = try peer.call(ES7.AuthenticateSMSRRequest(
                functionCallIdentifier: "\(call.functionCallIdentifier):auth", validityPeriod: try remaining(), eis: eis,
                smsrCertificate: HexBinary(credential.certificate.encoded)))
        } catch is ES7TransportError {
            throw Refusal(.smsr, .inaccessible, "SM-SR \(machine.current.text) did not answer ES7.AuthenticateSMSR")
        }
        guard authentication.functionExecutionStatus.status == .executedSuccess else {
            throw Refusal(status: authentication.functionExecutionStatus)
        }
        // Steps 9–11.
        let agreement: [UInt8]
        do {
            agreement = try host.keyAgreementData(cardResponse: TLV(0x85, authentication.randomChallenge.bytes).encoded)
        } catch {
            throw Refusal(.isdr, .invalid, "the random challenge: \(error)", identifier: eid.text)
        }
        var offset = 0
        guard (try? DGI.parse(agreement, offset: &offset)) != nil, let ePK = try? TLV.parse(agreement, offset: &offset),
            let signature = try? TLV.parse(agreement, offset: &offset)
        else { throw Refusal(.functionProvider, .executionError, "key agreement data") }
        let keySet: ES7.CreateAdditionalKeySetResponse
        do {
            keySet = try peer.call(ES7.CreateAdditionalKeySetRequest(
                functionCallIdentifier: "\(call.functionCallIdentifier):keyset", validityPeriod: try remaining(), eid: eid,
                keyVersionNumber: machine.scp80Version, initialSequenceCounter: 0, eccKeyLength: .ecc256,
                scenarioParameter: ISDRKeySetTemplate.scenarioParameter, hostID: HexBinary(Array(configuration.smsrID.text.utf8.prefix(16))),
                ephemeralPublicKey: HexBinary(ePK.value), signature: HexBinary(signature.value)))
        } catch is ES7TransportError {
            throw Refusal(.smsr, .inaccessible, "SM-SR \(machine.current.text) did not answer ES7.CreateAdditionalKeySet")
        }
        guard keySet.functionExecutionStatus.status == .executedSuccess else { throw Refusal(status: keySet.functionExecutionStatus) }
        // Step 12: the receipt — the commit point.
        var cardResponse: [UInt8] = []
        if !keySet.derivationRandom.bytes.isEmpty { cardResponse += TLV(0x85, keySet.derivationRandom.bytes).encoded }
        cardResponse += TLV(0x86, keySet.receipt.bytes).encoded
        try crash(at: .changeBeforeCommit)
        let keys: SCP03Keys
        do {
            keys = try host.processReceipt(cardResponse: cardResponse)
        } catch {
            throw Refusal(.isdr, .verificationFailed, "the eUICC's receipt does not match: the key set is not this SM-SR's", identifier: eid.text)
        }
        try commitHandover(eis, keys: keys, machine: &machine, callID: call.id)
        committed = true
    }

    /// The commit point: from here this SM-SR manages the eUICC.
    func commitHandover(_ eis: EIS, keys: SCP03Keys, machine: inout IncomingChange, callID: Int64) throws {
        let eid = eis.eid
        let now = clock.now()
        let psk = SecureBytes(SecureRandom.bytes(16))
        let v80 = machine.scp80Version
        let vPSK = machine.pskVersion
        var sealed: [SealedKey] = []
        for (version, index, type, secret) in [(v80, 1, UInt8(0x88), keys.enc), (v80, 2, 0x88, keys.mac), (v80, 3, 0x88, keys.dek), (vPSK, 1, 0x85, psk)] {
            sealed.append(SealedKey(keysetVersion: version, keyIndex: index, keyType: type, kcv: Array(try KeyCheckValue.aes(secret).prefix(3)),
                                    sealed: try sealer.seal(secret, context: KeySealer.context(eid: eid, keysetVersion: version, keyIndex: index),
                                                            iv: SecureRandom.bytes(16))))
        }
        machine.sealedPSK = sealed.last?.sealed
        var moved = eis
        moved.smsrID = configuration.smsrID
        moved.auditTrail = nil
        moved.isdR.keysets = [Keyset(version: v80, type: .scp80, counter: 0), Keyset(version: vPSK, type: .scp81)]
        let audit = AuditTrailRecord(eid: eid, smsrID: configuration.smsrID, operationDate: now, operationType: AuditOperation.smsrChange,
                                     requesterID: machine.requester, operationExecutionStatus: .success)
        let new = try store.prepare(moved, keys: sealed, scp80Counter: 0, audit: audit)
        let record = machine
        try store.write { tx in
            try tx.insertEIS(new, now: now)
            try tx.putSMSRChange(SMSRChangeRecord(eid: eid, direction: .incoming, peer: record.current, state: ChangeState.committed,
                                                  functionCallID: callID, machine: try JSONCoding.encode(record)), now: now)
            try notifySMSRChange(moved, requester: record.requester, callID: callID, in: tx)
        }
    }

    /// Step 13 on the new SM-SR: with the new keys, the SCP81 PSK (PUT KEY) and FinaliseISDRhandover
    /// (DELETE of the old key sets). Never fails the change: a warning says what is left to do.
    func finalise(_ eid: EID, machine: IncomingChange) -> FunctionExecutionStatus {
        func warning(_ message: String) -> FunctionExecutionStatus {
            FunctionExecutionStatus(status: .executedWithWarning, statusCodeData: .init(subject: .isdr, reason: .executionError, subjectIdentifier: eid.text,
                                                                                      message: message))
        }
        do {
            let session = try CardSession(smsr: self, eid: eid)
            var commands: [CommandAPDU] = []
            if let sealedPSK = machine.sealedPSK, let dek = try dek(eid, version: machine.scp80Version) {
                let psk = try sealer.open(sealedPSK, context: KeySealer.context(eid: eid, keysetVersion: machine.pskVersion, keyIndex: 1))
                let encrypted = try BlockCipher.cbc(.aes, encrypt: true, key: dek, iv: [UInt8](repeating: 0, count: 16), data: psk)
                let kcv = Array(try KeyCheckValue.aes(psk).prefix(3))
                let data = [UInt8(machine.pskVersion), 0x88, UInt8(1 + encrypted.count), UInt8(psk.count)] + encrypted + [0x03] + kcv
                commands.append(CommandAPDU(cla: 0x80, ins: 0xD8, p1: 0x00, p2: 0x01, data: data, le: 0))
            }
            if !machine.oldVersions.isEmpty {
                let data = machine.oldVersions.flatMap { TLV(0xD2, [UInt8(truncatingIfNeeded: $0)]).encoded }
                commands.append(CommandAPDU(cla: 0x80, ins: 0xE4, p1: 0x00, p2: 0x00, data: data, le: 0))
            }
            let responses = try session.sendToISDR(commands)
            // A DELETE answered 6A88 after an earlier attempt ran it: the old key sets are already gone.
            let done = responses.enumerated().allSatisfy { index, response in
                response.sw == .success || (commands[index].ins == 0xE4 && response.sw == .referencedDataNotFound)
            }
            guard responses.count == commands.count, done else {
                return warning("FinaliseISDRhandover: the eUICC answered \(responses.map { "\($0.sw)" }.joined(separator: ", ")); the old key sets may remain")
            }
            return .success
        } catch let failure as ES5Failure {
            return warning("FinaliseISDRhandover did not complete: \(failure.status)")
        } catch {
            return warning("FinaliseISDRhandover did not complete (\(type(of: error)))")
        }
    }

    /// K-DEK of this SM-SR's SCP80 key set `version` (index 3).
    func dek(_ eid: EID, version: Int) throws -> SecureBytes? {
        guard let sealed = try store.read({ try $0.isdrKeys(eid) }).first(where: { $0.keysetVersion == version && $0.keyIndex == 3 }) else { return nil }
        return try sealer.open(sealed.sealed, context: KeySealer.context(eid: eid, keysetVersion: version, keyIndex: 3))
    }

    /// Step 15: HandleSMSRChangeNotification to every Operator with a Profile on the eUICC — over ES4,
    /// or over ES3 to the Profile's SM-DP (which relays it over ES2) — as the Lua router says, each
    /// through its Operator's ONC; the EIS each sees is filtered to its own Profiles.
    func notifySMSRChange(_ eis: EIS, requester: OID, callID: Int64, in tx: any SMSRWriting) throws {
        let now = clock.now()
        let note = NotificationSnapshot(type: .smsrChange, eid: eis.eid, requester: nil, smsrID: configuration.smsrID, timestamp: now)
        let plma = try eis.profiles.flatMap { try tx.plmas(mno: $0.mnoID, m2mSP: nil, profileType: $0.profileType?.text) }
        let routed = policy.evaluate(.notification(.routeNotification, note, eis: EISSnapshot(eis), plma: plma.map(PLMASnapshot.init)))
        try tx.appendDecision(hook: routed.hook.rawValue, record: SMSR.encodeDecision(routed), input: routed.input.encoded, operationID: nil,
                              functionCallID: callID, now: now)
        var items: [NewOutboxItem] = []
        for route in routed.result.routes ?? [] {
            let mno: OID
            let profiles: [ProfileInfo]
            switch route.role {
            case .mno:
                mno = route.recipient
                profiles = eis.profiles.filter { $0.mnoID == mno }
            case .m2mSP:
                profiles = eis.profiles.filter { p in plma.contains { $0.m2mSPID == route.recipient && $0.mnoID == p.mnoID && $0.profileType == p.profileType } }
                guard let owner = profiles.first?.mnoID else { continue }
                mno = owner
            }
            // The owner's ONC decides (once per Profile Type it has there; one "discard" is enough).
            var keep = true
            for profile in profiles where keep {
                let onc = try tx.oncs(mno: profile.mnoID, profileType: profile.profileType?.text).map(ONCSnapshot.init)
                let ownNote = NotificationSnapshot(type: .smsrChange, eid: eis.eid, iccid: profile.iccid, mnoID: profile.mnoID, profileType: profile.profileType,
                                                   smdpID: profile.smdpID, smsrID: configuration.smsrID, timestamp: now)
                let filtered = policy.evaluate(.notification(.filterNotification, ownNote, profile: ProfileSnapshot(profile), onc: onc))
                try tx.appendDecision(hook: filtered.hook.rawValue, record: SMSR.encodeDecision(filtered), input: filtered.input.encoded, operationID: nil,
                                      functionCallID: callID, now: now)
                if let decision = filtered.result.filter, !decision.keeps { keep = false }
            }
            guard keep else { continue }
            var view = eis
            view.profiles = profiles
            let message: any SGP02Message = route.via == .es2
                ? ES3.HandleSMSRChangeNotification(eis: view, mnoID: mno, completionTimestamp: now)
                : ES4.HandleSMSRChangeNotification(eis: view, completionTimestamp: now)
            items.append(NewOutboxItem(messageType: message.descriptor.elementName, via: route.via.rawValue, recipient: route.recipient,
                                       recipientRole: route.role.rawValue, smdp: route.smdp, body: MessageBytes.encode(message),
                                       retryClass: route.retry.rawValue))
        }
        try tx.appendOutbox(items, operationID: nil, now: now)
    }

    // MARK: - Recovery

    /// At start, after a restart: the new SM-SR fails a change that had not reached the commit point
    /// (its ephemeral key died with the process) and finalises one that had; the current SM-SR asks
    /// the new one again (same request bytes, same FunctionCallIdentifier). Returns how many ended.
    @discardableResult
    public func recoverSMSRChanges() throws -> Int { try finishSMSRChanges(afterRestart: true) }

    /// While running (a server every few seconds): asks again about handovers whose outcome was not
    /// known, and finalises committed changes whose FinaliseISDRhandover did not complete. Changes
    /// running in this process are left alone. Returns how many ended.
    @discardableResult
    public func retrySMSRChanges() throws -> Int { try finishSMSRChanges(afterRestart: false) }

    func finishSMSRChanges(afterRestart: Bool) throws -> Int {
        var closed = 0
        var failure: (any Error)?
        let handled: Set<String> = [ChangeState.handingOver, ChangeState.committed]
        for listed in try store.read({ try $0.openSMSRChanges() }) where handled.contains(listed.state) {
            guard claim(listed.eid) else { continue }
            defer { release(listed.eid) }
            // Read again once claimed: a call that ran meanwhile may have moved the change on.
            guard let record = try? store.read({ try $0.smsrChange(listed.eid, direction: listed.direction) }), record == listed else { continue }
            do {
                switch (record.direction, record.state) {
                case (.incoming, ChangeState.handingOver) where afterRestart:
                    // The card may hold a key set nobody knows; a later change with the same version replaces it.
                    try closeIncoming(record, state: ChangeState.failed, status: .failed(
                        .smsr, .executionError, identifier: record.eid.text,
                        message: "interrupted by a restart of the new SM-SR before the commit point; the eUICC stays with SM-SR \(record.peer.text)"))
                    closed += 1
                case (.incoming, ChangeState.committed):
                    guard let machine = try? JSONDecoder().decode(IncomingChange.self, from: Data(record.machine)) else { continue }
                    // The eUICC moved on meanwhile: nothing of this change is left to do here.
                    let status = try store.read({ try $0.eis(record.eid) }) == nil ? .success : finalise(record.eid, machine: machine)
                    try closeIncoming(record, state: status == .success ? ChangeState.completed : ChangeState.committed, status: status,
                                      identifier: machine.handoverIdentifier)
                    if status == .success { closed += 1 }
                case (.outgoing, ChangeState.handingOver):
                    guard let machine = try? JSONDecoder().decode(OutgoingChange.self, from: Data(record.machine)), let callID = record.functionCallID else { continue }
                    do {
                        _ = try handOver(record.eid, machine: machine, callID: callID, processingStart: clock.now())
                        closed += 1
                    } catch is Unresolved {
                        continue
                    }
                default:
                    continue
                }
            } catch {
                // One change's failure does not starve the others; the pass reports it at the end.
                failure = error
            }
        }
        if let failure { throw failure }
        return closed
    }

    /// The new SM-SR's side after a restart or a retry: the row's state and, when none is stored yet,
    /// the HandoverEUICC answer the current SM-SR gets when it asks again (an answer already given —
    /// a warning — stays as it was).
    func closeIncoming(_ record: SMSRChangeRecord, state: String, status: FunctionExecutionStatus, identifier: String? = nil) throws {
        let now = clock.now()
        try store.write { tx in
            try tx.putSMSRChange(SMSRChangeRecord(eid: record.eid, direction: .incoming, peer: record.peer, state: state,
                                                  functionCallID: record.functionCallID, machine: record.machine), now: now)
            if let identifier, try tx.functionCall(caller: record.peer, identifier: identifier)?.state == .completed { return }
            if let callID = record.functionCallID {
                try tx.completeFunctionCall(callID, response: MessageBytes.encode(ES7.HandoverEUICCResponse(processingEnd: now, functionExecutionStatus: status)),
                                            now: now)
            }
        }
    }
}

extension SMSR: ES7Provider {}
