// Profile life-cycle over ES5 (spec §3.2–3.8, §5.4–5.5; docs/smsr.md): enable, disable, delete,
// set fall-back attribute, audit — the same for ES4 (the Operator or an M2M SP with a PLMA) and ES3
// (the SM-DP relaying the Operator's ES2 call).
//
//   checks → POL2 (Lua `before_*`, decision stored) → operation row (one per eUICC) → ES5 command
//   → the card's default notification (02 done, 03 rolled back) → one transaction: EIS, audit,
//   decisions, notifications (ONC + routing), card notifications seen, operation and function call
//   completed → 3A08 confirmations → POL2/POL1 auto-deletes as platform operations.
//
// A crash anywhere leaves an active operation; `recover()` asks the card what really happened (MO
// notifications, GET STATUS) and commits exactly one outcome for it.

public import M2MCore
import M2MCrypto
import M2MPolicy
public import M2MSOAP
public import M2MStorage
import M2MTransport
import M2MWire
import Foundation

/// A life-cycle operation as stored in its operation row (enough to finish it after a restart).
struct LifecycleMachine: Codable {
    enum Kind: String, Codable { case enable, disable, delete, setFallBack, setEmergency }
    var kind: Kind
    var iccid: ICCID
    var aid: AID
    /// `ES4.EnableProfile` …: which response type the function call gets.
    var function: String
    var caller: OID?
    /// Who the notifications say caused the change (nil: the platform).
    var requester: OID?
    var autoDelete: [ICCID]
    /// The request's deadline (ValidityPeriod): past it, the command is not sent (EXPIRED).
    var deadline: Timestamp? = nil
    /// The ValidityPeriod honoured when the one asked for was cut (echoed in the response).
    var acceptableValidityPeriod: Int? = nil
    /// Set once the card answered the command.
    var commandAccepted = false
    /// POL2 allowed with a warning: a success is answered EXECUTED_WITHWARNING with these codes.
    var warning: FunctionExecutionStatus? = nil
}

extension SMSR {
    /// The response a life-cycle function returns, by its function name.
    static func lifecycleResponse(_ function: String, status: FunctionExecutionStatus, at now: Timestamp, acceptable: Int? = nil) -> [UInt8] {
        func encoded<R: SGP02Response>(_ response: R) -> [UInt8] {
            var response = response
            response.processingEnd = now
            response.acceptableValidityPeriod = acceptable
            return MessageBytes.encode(response)
        }
        switch function {
        case "ES4.EnableProfile": return encoded(ES4.EnableProfileResponse(functionExecutionStatus: status))
        case "ES4.DisableProfile": return encoded(ES4.DisableProfileResponse(functionExecutionStatus: status))
        case "ES4.DeleteProfile": return encoded(ES4.DeleteProfileResponse(functionExecutionStatus: status))
        case "ES4.SetFallBackAttribute": return encoded(ES4.SetFallBackAttributeResponse(functionExecutionStatus: status))
        case "ES4.SetEmergencyProfileAttribute": return encoded(ES4.SetEmergencyProfileAttributeResponse(functionExecutionStatus: status))
        case "ES3.EnableProfile": return encoded(ES3.EnableProfileResponse(functionExecutionStatus: status))
        case "ES3.DisableProfile": return encoded(ES3.DisableProfileResponse(functionExecutionStatus: status))
        case "ES3.DeleteISDP": return encoded(ES3.DeleteISDPResponse(functionExecutionStatus: status))
        case "ES3.SetFallBackAttribute": return encoded(ES3.SetFallBackAttributeResponse(functionExecutionStatus: status))
        case "ES3.SetEmergencyProfileAttribute": return encoded(ES3.SetEmergencyProfileAttributeResponse(functionExecutionStatus: status))
        default: return []
        }
    }

    static func hook(for kind: LifecycleMachine.Kind) -> PolicyHook {
        switch kind {
        case .enable: .beforeEnableProfile
        case .disable: .beforeDisableProfile
        case .delete: .beforeDeleteProfile
        case .setFallBack: .beforeSetFallBackAttribute
        case .setEmergency: .beforeSetEmergencyProfileAttribute
        }
    }

    /// Runs a life-cycle function for `call` and returns its final status.
    func lifecycle(_ kind: LifecycleMachine.Kind, interface: String, name: String, eid: EID, iccid: ICCID, call: Call) throws -> FunctionExecutionStatus {
        let stored = try requireEIS(eid)
        let profile = try requireProfile(iccid, in: stored.eis)
        let caller = call.caller
        if caller.role == .smdp, profile.smdpID != caller.oid {
            throw Refusal(.profileICCID, .notAllowed, "the Profile was not downloaded by this SM-DP", identifier: iccid.text)
        }
        let plma = try store.read { try $0.plmas(mno: profile.mnoID, m2mSP: nil, profileType: profile.profileType?.text) }
        // The caller's rights, in Swift first (a bundle can narrow them, never widen them): the owner
        // Operator, or an M2M SP holding the owner's PLMA for this function and Profile Type.
        let delegated: PLMAFunction = switch kind {
        case .enable: .enableProfile
        case .disable: .disableProfile
        case .delete: .deleteProfile
        case .setFallBack: .setFallBackAttribute
        case .setEmergency: .setEmergencyProfileAttribute
        }
        switch caller.role {
        case .mno where profile.mnoID != caller.oid:
            throw Refusal(.profileICCID, .notAllowed, "the Profile belongs to another Operator", identifier: iccid.text)
        case .m2mSP where !plma.contains(where: { $0.m2mSPID == caller.oid && $0.profileType == profile.profileType && $0.authorises(delegated) }):
            throw Refusal(.functionRequester, .notAllowed, "no PLMA of the Operator authorises \(delegated.rawValue)", identifier: caller.oid.text)
        case .eum, .smsr:
            throw Refusal(.functionRequester, .notAllowed, "not a caller of this function", identifier: caller.oid.text)
        default: break
        }
        // POL2 (and the rights again) in Lua, before any ES5 command.
        let callerRole: CallerSnapshot.Role = switch caller.role {
        case .mno: .mno
        case .m2mSP: .m2mSP
        case .smdp: .smdp
        case .eum: .eum
        case .smsr: .smsr
        }
        let input = PolicyInput.pol2(
            Self.hook(for: kind), operation: OperationSnapshot(interface: interface, name: name, arguments: ["iccid": .string(iccid.text)]),
            caller: CallerSnapshot(role: callerRole, oid: caller.oid), eis: EISSnapshot(stored.eis), profile: ProfileSnapshot(profile),
            plma: plma.map(PLMASnapshot.init))
        let decision = policy.evaluate(input)
        let outcome = decision.result.decision ?? DecisionOutcome(.allow)
        guard outcome.decision.isAllowed else {
            try store.write { try call.record(decision, in: $0) }
            throw Refusal(status: outcome.decision.executionStatus)
        }
        let machine = LifecycleMachine(
            kind: kind, iccid: iccid, aid: profile.isdPAID, function: call.function, caller: caller.oid,
            requester: caller.role == .smdp ? profile.mnoID : caller.oid, autoDelete: outcome.autoDelete, deadline: call.deadline,
            acceptableValidityPeriod: call.acceptableValidityPeriod)
        let operationID: Int64
        do {
            operationID = try store.write { tx throws -> Int64 in
                guard try tx.activeOperation(eid) == nil else {
                    throw Refusal(.euicc, .pendingOperation, "another operation is running on this eUICC", identifier: eid.text)
                }
                // A download holds the eUICC; only its own clean-up (DeleteISDP of that Profile) passes.
                if let lease = try liveLease(eid, in: tx), !(kind == .delete && lease.iccid == iccid) {
                    throw Refusal(.euicc, .pendingOperation, "a Profile download is in progress on this eUICC", identifier: eid.text)
                }
                try call.record(decision, in: tx)
                return try tx.insertOperation(eid: eid, kind: kind.rawValue, iccid: iccid, functionCallID: call.id,
                                              machine: try JSONCoding.encode(machine), now: call.now)
            }
        } catch let error as StorageError where error.code == .constraint {
            throw Refusal(.euicc, .pendingOperation, "another operation is running on this eUICC", identifier: eid.text)
        }
        do {
            return try execute(machine, eid: eid, operationID: operationID, functionCallID: call.id)
        } catch let crash as SimulatedCrash {
            throw crash
        } catch let unresolved as Unresolved {
            throw unresolved
        } catch {
            // A store or key failure after the operation was recorded: the card may or may not have
            // the change; the operation stays active and recovery decides.
            throw Unresolved(detail: "\(type(of: error))")
        }
    }

    /// The ES5 command of an operation.
    static func command(for machine: LifecycleMachine) -> CommandAPDU {
        func store(_ dgi: UInt16) -> CommandAPDU { .storeData(p1: 0x88, data: DGI(dgi, TLV(0x4F, machine.aid.bytes).encoded).encoded) }
        switch machine.kind {
        case .enable: return store(0x3A03)
        case .disable: return store(0x3A04)
        case .setFallBack: return store(0x3A05)
        case .setEmergency: return store(0x3A06)
        case .delete: return CommandAPDU(cla: 0x80, ins: 0xE4, p1: 0x00, p2: 0x40, data: TLV(0x4F, machine.aid.bytes).encoded)
        }
    }

    /// ES5 and the final commit of one operation; returns the outcome committed.
    func execute(_ machine: LifecycleMachine, eid: EID, operationID: Int64, functionCallID: Int64?) throws -> FunctionExecutionStatus {
        try crash(at: .beforeES5)
        if let deadline = machine.deadline, clock.now() > deadline {
            let expired = FunctionExecutionStatus(
                status: .expired,
                statusCodeData: .init(subject: .function, reason: .timeToLiveExpired, subjectIdentifier: machine.iccid.text,
                                      message: "the ValidityPeriod ended before the command could be sent; nothing was done"))
            return try finish(machine, eid: eid, operationID: operationID, functionCallID: functionCallID, status: expired, notes: [], session: nil)
        }
        var session: CardSession?
        var failure: FunctionExecutionStatus?
        var response = ResponseAPDU(sw: .success)
        do {
            let opened: CardSession
            do {
                opened = try CardSession(smsr: self, eid: eid)
            } catch let error as ES5Failure {
                throw error
            } catch {
                // Nothing was sent: the stored keys do not open (tampered, or another storage key).
                throw ES5Failure(status: .failed(.isdr, .verificationFailed, identifier: eid.text,
                                                 message: "the stored ISD-R keys do not open (\(type(of: error)))"))
            }
            session = opened
            response = try opened.send(Self.command(for: machine))
        } catch let error as ES5Failure {
            if error.uncertain, let session {
                // The packet may have reached the card: ask it before answering anything.
                guard let states = try? session.isdpStates(), let executed = Self.executed(machine, states: states) else {
                    throw Unresolved(detail: "no answer from the card after the command was sent")
                }
                if executed {
                    var done = machine
                    done.commandAccepted = true
                    let notes = awaitNotifications(for: done, session: session)
                    return try finish(done, eid: eid, operationID: operationID, functionCallID: functionCallID, status: nil, notes: notes, session: session)
                }
            }
            failure = error.status
        }
        if let failure {
            return try finish(machine, eid: eid, operationID: operationID, functionCallID: functionCallID, status: failure, notes: [], session: session)
        }
        try crash(at: .afterES5)
        let accepted = response.sw.isSuccessOrWarning || (machine.kind == .delete && response.sw == .referencedDataNotFound)
        if !accepted {
            return try finish(machine, eid: eid, operationID: operationID, functionCallID: functionCallID,
                              status: CardSession.status(of: response, iccid: machine.iccid), notes: [], session: session)
        }
        var done = machine
        done.commandAccepted = true
        let notes = session.map { awaitNotifications(for: done, session: $0) } ?? []
        try crash(at: .beforeCommit)
        return try finish(done, eid: eid, operationID: operationID, functionCallID: functionCallID, status: nil, notes: notes, session: session)
    }

    /// Whether the card carried the operation out, from GET STATUS of its ISD-Ps; nil when that does
    /// not tell (the attributes are not visible there).
    static func executed(_ machine: LifecycleMachine, states: [AID: UInt8]) -> Bool? {
        switch machine.kind {
        case .enable: states[machine.aid] == 0x3F
        case .disable: states[machine.aid] != 0x3F  // disabled, or deleted by its POL1 once disabled
        case .delete: states[machine.aid] == nil
        case .setFallBack, .setEmergency: nil
        }
    }

    /// The card's default notifications after an enable or disable (polled a few times).
    func awaitNotifications(for machine: LifecycleMachine, session: CardSession) -> [CardNotification] {
        guard machine.kind == .enable || machine.kind == .disable else { return [] }
        // Only the notifications about a profile change (02 done, 03 rolled back) belong to the
        // operation; anything else (05 fall-back) stays pending for `pollNotifications` to apply.
        var notes: [CardNotification] = []
        for _ in 0..<max(1, configuration.notificationPolls) {
            for note in (try? session.notifications()) ?? []
            where (note.kind == .profileChangeSucceeded || note.kind == .profileChangeFailedRolledBack) && !notes.contains(note) {
                notes.append(note)
            }
            if !notes.isEmpty { break }
        }
        return notes
    }

    /// Commits the outcome of an operation. `status` nil: the card accepted the command and `notes`
    /// (and, when they say nothing, GET STATUS) tell what happened.
    func finish(
        _ machine: LifecycleMachine, eid: EID, operationID: Int64, functionCallID: Int64?, status given: FunctionExecutionStatus?,
        notes: [CardNotification], session: CardSession?
    ) throws -> FunctionExecutionStatus {
        let now = clock.now()
        var status = given ?? .success
        var cardStates: [AID: UInt8]?
        if given == nil {
            if machine.kind == .enable || machine.kind == .disable {
                if notes.contains(where: { $0.kind == .profileChangeFailedRolledBack }) {
                    status = .failed(.profileICCID, .inaccessible, identifier: machine.iccid.text,
                                     message: "the card could not attach with the Profile and rolled back (notification 03)")
                }
            }
            // What the card holds now (POL1 may have deleted a disabled Profile by itself).
            cardStates = try? session?.isdpStates()
            if machine.kind == .enable, status.status == .executedSuccess, let states = cardStates, states[machine.aid] != 0x3F {
                status = .failed(.profileICCID, .inaccessible, identifier: machine.iccid.text, message: "the Profile is not enabled on the card")
            }
        }
        if status.status == .executedSuccess, let warning = machine.warning { status = warning }
        let succeeded = status.status == .executedSuccess || status.status == .executedWithWarning
        // (An EXPIRED operation is not "failed" on the card: nothing was sent.)
        var autoDeletion: (LifecycleMachine, Int64)?
        let events: [ProfileEvent] = try store.write { tx throws -> [ProfileEvent] in
            guard var stored = try tx.eis(eid) else { return [] }
            var events: [ProfileEvent] = []
            if succeeded {
                events = apply(machine, to: &stored.eis, cardStates: cardStates)
                try tx.updateEIS(stored.eis, now: now)
            }
            let operationType: HexBinary = switch machine.kind {
            case .enable: AuditOperation.enable
            case .disable: AuditOperation.disable
            case .delete: AuditOperation.delete
            case .setFallBack: AuditOperation.setFallBack
            case .setEmergency: AuditOperation.setEmergency
            }
            try tx.appendAudit(AuditTrailRecord(eid: eid, smsrID: configuration.smsrID, operationDate: now, operationType: operationType,
                                                requesterID: machine.caller, operationExecutionStatus: status, isdPAID: machine.aid, iccid: machine.iccid),
                               now: now)
            for note in notes {
                try tx.recordCardNotification(eid, sequence: note.sequence, type: Int(note.rawType), aid: note.aid?.bytes ?? [], now: now)
            }
            if !events.isEmpty {
                let call = functionCallID.map { Call(smsr: self, id: $0, caller: Party(oid: machine.caller ?? configuration.smsrID, role: .mno),
                                                     function: machine.function, now: now) }
                try notify(events, eis: stored.eis, requester: machine.requester, call: call, operation: operationID, in: tx)
            }
            if succeeded, machine.kind == .delete, try tx.downloadLease(eid)?.iccid == machine.iccid { try tx.setDownloadLease(eid, nil) }
            try tx.updateOperation(operationID, state: succeeded ? .completed : .failed, machine: try JSONCoding.encode(machine), now: now)
            if let functionCallID {
                try tx.completeFunctionCall(
                    functionCallID, response: Self.lifecycleResponse(machine.function, status: status, at: now, acceptable: machine.acceptableValidityPeriod),
                    now: now)
            }
            // POL2 Auto-Delete — only of what this operation just disabled and whose own POL2 says so —
            // is recorded now, in this transaction, as the next operation on the eUICC: a crash before
            // it runs leaves it for recovery.
            if succeeded {
                let doomed = machine.autoDelete.compactMap { iccid in
                    stored.eis.profiles.first { $0.iccid == iccid && $0.state == .disabled && $0.pol2.autoDeleteOnDisable && !$0.fallbackAttribute }
                }
                if let profile = doomed.first {
                    let delete = LifecycleMachine(kind: .delete, iccid: profile.iccid, aid: profile.isdPAID, function: "platform.AutoDelete", caller: nil,
                                                  requester: nil, autoDelete: [])
                    autoDeletion = (delete, try tx.insertOperation(eid: eid, kind: "delete", iccid: profile.iccid, functionCallID: nil,
                                                                   machine: try JSONCoding.encode(delete), now: now))
                }
            }
            return events
        }
        _ = events
        try crash(at: .afterCommit)
        // The card resends a notification until it is confirmed (3A08).
        for note in notes { confirm(note, eid: eid, session: session) }
        if let (delete, id) = autoDeletion {
            _ = try? execute(delete, eid: eid, operationID: id, functionCallID: nil)
        }
        return status
    }

    /// The EIS after a successful operation; the notifications it causes.
    func apply(_ machine: LifecycleMachine, to eis: inout EIS, cardStates: [AID: UInt8]?) -> [ProfileEvent] {
        var events: [ProfileEvent] = []
        guard let index = eis.profiles.firstIndex(where: { $0.iccid == machine.iccid }) else { return [] }
        switch machine.kind {
        case .enable:
            for i in eis.profiles.indices where eis.profiles[i].state == .enabled && i != index {
                eis.profiles[i].state = .disabled
                events.append(ProfileEvent(type: .profileDisabled, profile: eis.profiles[i]))
            }
            eis.profiles[index].state = .enabled
            events.insert(ProfileEvent(type: .profileEnabled, profile: eis.profiles[index]), at: 0)
        case .disable:
            eis.profiles[index].state = .disabled
            events.append(ProfileEvent(type: .profileDisabled, profile: eis.profiles[index]))
            if let fallBack = eis.profiles.firstIndex(where: { $0.fallbackAttribute && $0.iccid != machine.iccid }) {
                eis.profiles[fallBack].state = .enabled
                events.append(ProfileEvent(type: .profileEnabled, profile: eis.profiles[fallBack]))
            }
        case .delete:
            let removed = eis.profiles.remove(at: index)
            eis.remainingMemory += removed.allocatedMemory
            events.append(ProfileEvent(type: .profileDeleted, profile: removed))
        case .setFallBack:
            for i in eis.profiles.indices where eis.profiles[i].fallbackAttribute && i != index {
                eis.profiles[i].fallbackAttribute = false
                events.append(ProfileEvent(type: .fallBackAttributeUnset, profile: eis.profiles[i]))
            }
            eis.profiles[index].fallbackAttribute = true
            events.insert(ProfileEvent(type: .fallBackAttributeSet, profile: eis.profiles[index]), at: 0)
        case .setEmergency:
            for i in eis.profiles.indices where eis.profiles[i].emergencyProfileAttribute && i != index {
                eis.profiles[i].emergencyProfileAttribute = false
                events.append(ProfileEvent(type: .emergencyProfileAttributeUnset, profile: eis.profiles[i]))
            }
            eis.profiles[index].emergencyProfileAttribute = true
            events.insert(ProfileEvent(type: .emergencyProfileAttributeSet, profile: eis.profiles[index]), at: 0)
        }
        // Profiles the card no longer has (POL1 "delete when disabled"): gone from the EIS too.
        if let states = cardStates {
            for profile in eis.profiles where profile.state != .created && states[profile.isdPAID] == nil {
                eis.profiles.removeAll { $0.iccid == profile.iccid }
                eis.remainingMemory += profile.allocatedMemory
                events.append(ProfileEvent(type: .profileDeleted, profile: profile))
            }
        }
        return events
    }

    /// 3A08 for a notification; once the card has it, the record of the sequence number is dropped
    /// (the card never sends a confirmed one again, and its 16-bit sequence wraps).
    func confirm(_ note: CardNotification, eid: EID, session: CardSession?) {
        guard let session, (try? session.confirm(note.sequence)) != nil else { return }
        _ = try? store.write { try $0.forgetCardNotification(eid, sequence: note.sequence) }
    }

    // MARK: Recovery and card events

    /// Finishes every operation a crash left active: asks the card what happened and commits one
    /// outcome each. Returns how many were finished.
    @discardableResult
    /// `includingSMSRChanges: false` leaves the SM-SR changes to a later `recoverSMSRChanges()` (a
    /// server calls it once it listens: the other SM-SR calls back while a change finishes).
    public func recover(includingSMSRChanges: Bool = true) throws -> Int {
        // Calls that died without an operation (GetEIS, SendData, CreateISDP …) are forgotten: a
        // retry runs them again (the SM-DP reconciles a download with AuditEIS).
        _ = try store.write { try $0.forgetUnansweredCalls() }
        let active = try store.read { try $0.activeOperations() }
        var finished = includingSMSRChanges ? try recoverSMSRChanges() : 0
        for operation in active {
            if operation.kind == Self.smsrChangeKind { continue }  // recoverSMSRChanges
            if operation.kind == CreateISDPMachine.kind {
                if try recoverCreateISDP(operation) { finished += 1 }
                continue
            }
            guard let machine = try? JSONDecoder().decode(LifecycleMachine.self, from: Data(operation.machine)) else { continue }
            guard let session = try? CardSession(smsr: self, eid: operation.eid) else { continue }
            // Without the card's answer the outcome is not known: the operation stays active.
            guard let states = try? session.isdpStates() else { continue }
            let notes = ((try? session.notifications()) ?? []).filter {
                $0.kind == .profileChangeSucceeded || $0.kind == .profileChangeFailedRolledBack
            }
            switch Self.executed(machine, states: states) {
            case true?:
                var done = machine
                done.commandAccepted = true
                _ = try finish(done, eid: operation.eid, operationID: operation.id, functionCallID: operation.functionCallID, status: nil,
                               notes: notes, session: session)
            case nil:
                // Not visible in GET STATUS (the attributes): send the idempotent command again.
                do {
                    _ = try execute(machine, eid: operation.eid, operationID: operation.id, functionCallID: operation.functionCallID)
                } catch is Unresolved {
                    continue
                }
            case false? where machine.caller == nil:
                // A platform operation (POL2 Auto-Delete) that never reached the card: nobody waits
                // for an answer and nothing says to give it up; it runs now.
                do {
                    _ = try execute(machine, eid: operation.eid, operationID: operation.id, functionCallID: operation.functionCallID)
                } catch is Unresolved {
                    continue
                }
            case false?:
                let expired = machine.deadline.map { clock.now() > $0 } ?? false
                let status = expired
                    ? FunctionExecutionStatus(status: .expired, statusCodeData: .init(
                        subject: .function, reason: .timeToLiveExpired, subjectIdentifier: machine.iccid.text,
                        message: "interrupted by an SM-SR restart; the ValidityPeriod ended; nothing changed"))
                    : FunctionExecutionStatus.failed(
                        .functionProvider, .executionError, identifier: machine.iccid.text,
                        message: "interrupted by an SM-SR restart before the card carried it out; nothing changed")
                _ = try finish(machine, eid: operation.eid, operationID: operation.id, functionCallID: operation.functionCallID, status: status,
                               notes: notes, session: session)
            }
            finished += 1
        }
        return finished
    }

    /// Reads the card's pending default notifications and applies what the card did on its own
    /// (fall-back after a connectivity loss: notification 05). Returns how many were new.
    @discardableResult
    public func pollNotifications(eid: EID) throws -> Int {
        // An operation in progress reads its own notifications; the rest waits for the next poll.
        if try store.read({ try $0.activeOperation(eid) }) != nil { return 0 }
        let session = try CardSession(smsr: self, eid: eid)
        let notes = try session.notifications()
        var fresh = 0
        for note in notes {
            if try store.read({ try $0.cardNotificationSeen(eid, sequence: note.sequence) }) {
                confirm(note, eid: eid, session: session)
                continue
            }
            fresh += 1
            let now = clock.now()
            try store.write { tx in
                guard var stored = try tx.eis(eid) else { return }
                var events: [ProfileEvent] = []
                if note.kind == .profileChangeAfterFallBack || note.kind == .profileChangeSucceeded, let aid = note.aid,
                    let index = stored.eis.profiles.firstIndex(where: { $0.isdPAID == aid }), stored.eis.profiles[index].state != .enabled
                {
                    for i in stored.eis.profiles.indices where stored.eis.profiles[i].state == .enabled {
                        stored.eis.profiles[i].state = .disabled
                        events.append(ProfileEvent(type: .profileDisabled, profile: stored.eis.profiles[i]))
                    }
                    stored.eis.profiles[index].state = .enabled
                    events.append(ProfileEvent(type: .profileEnabled, profile: stored.eis.profiles[index]))
                    try tx.updateEIS(stored.eis, now: now)
                    try tx.appendAudit(AuditTrailRecord(eid: eid, smsrID: configuration.smsrID, operationDate: now, operationType: AuditOperation.cardFallBack,
                                                        operationExecutionStatus: .success, isdPAID: aid, iccid: stored.eis.profiles[index].iccid), now: now)
                    try notify(events, eis: stored.eis, requester: nil, call: nil, operation: nil, in: tx)
                }
                try tx.recordCardNotification(eid, sequence: note.sequence, type: Int(note.rawType), aid: note.aid?.bytes ?? [], now: now)
            }
            confirm(note, eid: eid, session: session)
        }
        return fresh
    }

    /// AuditEIS: GET STATUS of the card's ISD-Ps reconciled into the EIS (states; Profiles the
    /// card no longer has are removed), then the caller's view of it.
    func audit<Response: SGP02Response>(eid: EID, iccids: [ICCID], call: Call, answer: (EIS) -> Response) throws -> Response {
        let stored = try requireEIS(eid)
        if try store.read({ tx in try tx.activeOperation(eid) != nil || liveLease(eid, in: tx) != nil }) {
            throw Refusal(.euicc, .pendingOperation, "an operation or download is in progress on this eUICC", identifier: eid.text)
        }
        let visible = try store.read { try visibleProfiles(stored.eis, for: call.caller, function: .auditEIS, in: $0) }
        if call.caller.role != .smdp, visible.isEmpty {
            throw Refusal(.eid, .notAllowed, "the caller has no Profile on this eUICC", identifier: eid.text)
        }
        for iccid in iccids where !visible.contains(where: { $0.iccid == iccid }) {
            throw Refusal(.profileICCID, .notAllowed, "the Profile is not the caller's", identifier: iccid.text)
        }
        let session: CardSession
        let states: [AID: UInt8]
        do {
            session = try CardSession(smsr: self, eid: eid)
            states = try session.isdpStates()
        } catch let failure as ES5Failure {
            throw Refusal(status: failure.status)
        }
        _ = session
        let now = clock.now()
        // The reconciliation, its audit and notifications, and the answer: one transaction.
        return try call.commit { tx throws -> Response in
            var current = try requireEIS(eid, in: tx)
            var events: [ProfileEvent] = []
            for profile in current.eis.profiles {
                switch states[profile.isdPAID] {
                case nil where profile.state != .created:
                    current.eis.profiles.removeAll { $0.iccid == profile.iccid }
                    current.eis.remainingMemory += profile.allocatedMemory
                    events.append(ProfileEvent(type: .profileDeleted, profile: profile))
                case 0x3F?: if let i = current.eis.profiles.firstIndex(where: { $0.iccid == profile.iccid }) { current.eis.profiles[i].state = .enabled }
                case 0x1F?: if let i = current.eis.profiles.firstIndex(where: { $0.iccid == profile.iccid }) { current.eis.profiles[i].state = .disabled }
                default: break
                }
            }
            current.eis.lastAuditDate = now
            try tx.updateEIS(current.eis, now: now)
            try tx.appendAudit(AuditTrailRecord(eid: eid, smsrID: configuration.smsrID, operationDate: now, operationType: AuditOperation.audit,
                                                requesterID: call.caller.oid, operationExecutionStatus: .success), now: now)
            if !events.isEmpty { try notify(events, eis: current.eis, requester: nil, call: call, operation: nil, in: tx) }
            let profiles = try visibleProfiles(current.eis, for: call.caller, function: .auditEIS, in: tx)
                .filter { iccids.isEmpty || iccids.contains($0.iccid) }
            return answer(try filtered(current.eis, profiles: profiles, in: tx))
        }
    }
}
