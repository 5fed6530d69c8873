// ES2.DownloadProfile as a persisted state machine (spec §3.1, offcard §7.2; docs/smdp.md):
//
//   reserved ── GetEIS, eligibility, CreateISDP ──▶ created ── key establishment (SendData 3A01,
//   3A02, receipt verified) and the SCP03t stream (SendData) ──▶ loaded ── ProfileDownloadCompleted
//   ──▶ completed ── EnableProfile when asked ──▶ finished
//
// Any failure goes to `cleanup`: ES3.DeleteISDP when an ISD-P was created, then `finished` with the
// failure's status. Each arrow commits the machine (one SQLite row) before the next step; the ES3
// calls of a step carry identifiers made of the download, its attempt and the step, so a step
// repeated after a crash is the same call to the SM-SR (which answers with what it stored). A
// download interrupted between `created` and `loaded` (the session keys are gone with the process)
// deletes its ISD-P and starts again on a new one, up to `downloadAttempts` times.
//
// The ICCID is reserved with the order (one transaction with the download row); it becomes
// installed with `completed`, goes back to the pool when no ISD-P was ever created for it, and is
// released otherwise.

public import M2MCore
import M2MCrypto
import M2MPolicy
public import M2MSOAP
import M2MStorage
import M2MWire
import Foundation

struct DownloadMachine: Codable {
    enum Step: String, Codable { case reserved, created, loaded, completed, cleanup, finished }
    var step: Step
    var caller: OID
    var functionCallIdentifier: String
    var eid: EID
    var smsr: OID
    var iccid: ICCID
    var profileType: String
    var mno: OID
    var imsi: IMSI?
    var enable: Bool
    var deadline: Timestamp?
    var requiredMemory: Int
    var attempt = 1
    var aid: AID?
    /// An ISD-P was created for this ICCID at least once.
    var reachedCard = false
    /// The status answered once the clean-up is done.
    var failure: FunctionExecutionStatus?
    var status: FunctionExecutionStatus?

    /// The ES3 FunctionCallIdentifier of `step` in this attempt.
    func identifier(_ id: Int64, _ step: String) -> String { "dl\(id)-a\(attempt)-\(step)" }

    /// The machine as stored: JSON, written by hand — Foundation's JSONEncoder cost more than a
    /// SQLite transaction per save (bench download); read back with JSONDecoder (tested equal).
    var encoded: [UInt8] {
        var members: [(String, String)] = [
            ("step", JSONText.quoted(step.rawValue)), ("caller", JSONText.quoted(caller.text)),
            ("functionCallIdentifier", JSONText.quoted(functionCallIdentifier)), ("eid", JSONText.quoted(eid.text)), ("smsr", JSONText.quoted(smsr.text)),
            ("iccid", JSONText.quoted(iccid.text)), ("profileType", JSONText.quoted(profileType)), ("mno", JSONText.quoted(mno.text)),
            ("enable", enable ? "true" : "false"), ("requiredMemory", "\(requiredMemory)"), ("attempt", "\(attempt)"),
            ("reachedCard", reachedCard ? "true" : "false"),
        ]
        if let imsi { members.append(("imsi", JSONText.quoted(imsi.text))) }
        if let deadline { members.append(("deadline", JSONText.quoted(deadline.text))) }
        if let aid { members.append(("aid", JSONText.quoted(aid.text))) }
        if let failure { members.append(("failure", JSONText.status(failure))) }
        if let status { members.append(("status", JSONText.status(status))) }
        return JSONText.object(members)
    }
}

extension DownloadMachine {
    init(encoded: [UInt8]) throws {
        self = try JSONDecoder().decode(DownloadMachine.self, from: Data(encoded))
    }
}

extension JSONText {
    /// FunctionExecutionStatus in its Codable form.
    static func status(_ status: FunctionExecutionStatus) -> String {
        var members = [("status", quoted(status.status.rawValue))]
        if let data = status.statusCodeData {
            var inner = [("subject", quoted(data.subject.rawValue)), ("reason", quoted(data.reason.rawValue))]
            if let identifier = data.subjectIdentifier { inner.append(("subjectIdentifier", quoted(identifier))) }
            if let message = data.message { inner.append(("message", quoted(message))) }
            members.append(("statusCodeData", String(decoding: object(inner), as: UTF8.self)))
        }
        return String(decoding: object(members), as: UTF8.self)
    }
}

/// A step of the download failed with this status (the ISD-P, if any, is then deleted).
struct DownloadFailure: Error {
    let status: FunctionExecutionStatus
    init(_ status: FunctionExecutionStatus) { self.status = status }
    init(_ subject: SubjectCode, _ reason: ReasonCode, _ message: String, identifier: String? = nil) {
        status = .failed(subject, reason, identifier: identifier, message: message)
    }
}

public protocol ES2Provider: Sendable {
    func getEIS(_ request: ES2.GetEISRequest, context: RequestContext) -> ES2.GetEISResponse
    func downloadProfile(_ request: ES2.DownloadProfileRequest, context: RequestContext) -> ES2.DownloadProfileResponse
    func updatePolicyRules(_ request: ES2.UpdatePolicyRulesRequest, context: RequestContext) -> ES2.UpdatePolicyRulesResponse
    func updateSubscriptionAddress(_ request: ES2.UpdateSubscriptionAddressRequest, context: RequestContext) -> ES2.UpdateSubscriptionAddressResponse
    func enableProfile(_ request: ES2.EnableProfileRequest, context: RequestContext) -> ES2.EnableProfileResponse
    func disableProfile(_ request: ES2.DisableProfileRequest, context: RequestContext) -> ES2.DisableProfileResponse
    func deleteProfile(_ request: ES2.DeleteProfileRequest, context: RequestContext) -> ES2.DeleteProfileResponse
    func auditEIS(_ request: ES2.AuditEISRequest, context: RequestContext) -> ES2.AuditEISResponse
    func setPLMA(_ request: ES2.SetPLMARequest, context: RequestContext) -> ES2.SetPLMAResponse
    func getPLMA(_ request: ES2.GetPLMARequest, context: RequestContext) -> ES2.GetPLMAResponse
    func setONC(_ request: ES2.SetONCRequest, context: RequestContext) -> ES2.SetONCResponse
    func getONC(_ request: ES2.GetONCRequest, context: RequestContext) -> ES2.GetONCResponse
    func setEmergencyProfileAttribute(_ request: ES2.SetEmergencyProfileAttributeRequest, context: RequestContext)
        -> ES2.SetEmergencyProfileAttributeResponse
    func setFallBackAttribute(_ request: ES2.SetFallBackAttributeRequest, context: RequestContext) -> ES2.SetFallBackAttributeResponse
}

extension SMDP {
    public func downloadProfile(_ request: ES2.DownloadProfileRequest, context: RequestContext) -> ES2.DownloadProfileResponse {
        serve(request, context: context, smsrID: request.smsrID, failure: { ES2.DownloadProfileResponse(functionExecutionStatus: $0) }) { call in
            guard request.profileType != nil || request.iccid != nil else {
                throw Refusal(.profileType, .conditionalElementMissing, "ProfileType or Iccid is required")
            }
            let (record, reserved, machine) = try startDownload(request, call: call)
            try crash(at: .afterReserve)
            return try runDownload(record.id, package: reserved, started: (record, machine), recovered: false)
        }
    }

    /// Reserves the ICCID and records the download, in one transaction; returns the record as written.
    func startDownload(_ request: ES2.DownloadProfileRequest, call: SMDPCall) throws -> (DownloadRecord, ReservedProfile, DownloadMachine) {
        do {
            return try store.write { tx throws -> (DownloadRecord, ReservedProfile, DownloadMachine) in
                let item = try inventory.take(profileType: request.profileType, iccid: request.iccid, eid: request.eid,
                                              order: "\(call.caller.oid.text):\(call.functionCallIdentifier)", now: call.now, in: tx)
                let reserved = try inventory.personalized(item, in: tx)
                // An Operator orders its own Profile Types only.
                guard reserved.mno == call.caller.oid else {
                    throw Refusal(.profileType, .notAllowed, "the Profile Type belongs to another Operator", identifier: reserved.profileType)
                }
                let required = max(1024, (reserved.package.count + configuration.memoryMargin + 1023) / 1024 * 1024)
                let machine = DownloadMachine(
                    step: .reserved, caller: call.caller.oid, functionCallIdentifier: call.functionCallIdentifier, eid: request.eid, smsr: request.smsrID,
                    iccid: reserved.iccid, profileType: reserved.profileType, mno: reserved.mno, imsi: reserved.imsi, enable: request.enableProfile,
                    deadline: call.deadline, requiredMemory: required)
                let encoded = machine.encoded
                let id = try tx.insertDownload(functionCallID: call.id, eid: request.eid, iccid: reserved.iccid, machine: encoded, now: call.now)
                return (DownloadRecord(id: id, functionCallID: call.id, eid: request.eid, iccid: reserved.iccid, state: .active, machine: encoded),
                        reserved, machine)
            }
        } catch let error as InventoryError {
            throw Refusal(status: error.status)
        } catch let error as StorageError where error.code == .constraint {
            throw Refusal(.euicc, .pendingOperation, "a download to this eUICC (or of this ICCID) is in progress", identifier: request.eid.text)
        }
    }

    /// Resumes every download a stopped process left active; returns how many finished now (the
    /// others wait for their SM-SR). Their responses go to the outbox for the Operators.
    @discardableResult
    public func recover() throws -> Int {
        var finished = 0
        for record in try store.read({ try $0.activeDownloads() }) {
            do {
                _ = try runDownload(record.id, package: nil, recovered: true)
                finished += 1
            } catch is Unresolved {
                continue
            }
        }
        return finished
    }

    func save(_ id: Int64, _ machine: DownloadMachine, also: ((any SMDPWriting) throws -> Void)? = nil) throws {
        try store.write { tx in
            try tx.updateDownload(id, state: .active, machine: machine.encoded, now: clock.now())
            try also?(tx)
        }
    }

    /// Runs the download's machine from its recorded step to the end.
    /// `started`: the record and machine `startDownload` just wrote (not read back and decoded
    /// again: a read transaction and Foundation's JSON decoder per download); nil reads the record.
    func runDownload(_ id: Int64, package known: ReservedProfile?, started: (DownloadRecord, DownloadMachine)? = nil, recovered: Bool) throws
        -> ES2.DownloadProfileResponse
    {
        let record: DownloadRecord
        var machine: DownloadMachine
        if let started {
            (record, machine) = started
        } else {
            guard let stored = try store.read({ try $0.download(id) }) else { throw DownloadFailure(.function, .unknown, "no download \(id)") }
            record = stored
            machine = try DownloadMachine(encoded: stored.machine)
        }
        var package = known
        // Set when this run passed `reserved`: the key establishment may start on that ISD-P.
        var session: (ecasd: ECPublicKey, credential: SMDPCredential)?
        while true {
            if let deadline = machine.deadline, [.reserved, .created, .loaded].contains(machine.step), clock.now() >= deadline {
                machine.failure = FunctionExecutionStatus(status: .expired, statusCodeData: .init(
                    subject: .function, reason: .timeToLiveExpired, subjectIdentifier: machine.iccid.text,
                    message: "the ValidityPeriod ended during the download (\(machine.step.rawValue))"))
                machine.step = .cleanup
                try save(id, machine)
            }
            do {
                switch machine.step {
                case .reserved:
                    session = try prepareISDP(id, &machine)
                    try crash(at: .afterCreateISDP)
                    machine.step = .created
                    try save(id, machine)
                case .created:
                    guard let session, let aid = machine.aid else {
                        try startAgain(id, &machine)
                        continue
                    }
                    let reserved = try package ?? inventory.package(for: machine.iccid)
                    package = reserved
                    try load(id, machine, aid: aid, package: reserved.package, ecasd: session.ecasd, credential: session.credential)
                    try crash(at: .afterLoad)
                    machine.step = .loaded
                    try save(id, machine)
                case .loaded:
                    let done = try send(ES3.ProfileDownloadCompletedRequest(
                        functionCallIdentifier: machine.identifier(id, "completed"), validityPeriod: remaining(machine), eid: machine.eid, iccid: machine.iccid,
                        profileType: machine.profileType, subscriptionAddress: machine.imsi.map { SubscriptionAddress(imsi: $0) }), to: machine.smsr)
                    guard done.functionExecutionStatus.status != .failed, done.functionExecutionStatus.status != .expired else {
                        throw DownloadFailure(done.functionExecutionStatus)
                    }
                    try crash(at: .afterCompleted)
                    machine.step = .completed
                    let profile = SMDPProfileRecord(iccid: machine.iccid, eid: machine.eid, mno: machine.mno, smsr: machine.smsr,
                                                    profileType: machine.profileType, state: ProfileState.disabled.rawValue)
                    try save(id, machine) { tx in
                        try tx.setInventoryState(machine.iccid, .installed, from: .reserved, now: self.clock.now())
                        try tx.upsertProfile(profile, now: self.clock.now())
                    }
                case .completed:
                    var status = FunctionExecutionStatus.success
                    if machine.enable {
                        let enabled = try send(ES3.EnableProfileRequest(functionCallIdentifier: machine.identifier(id, "enable"), validityPeriod: remaining(machine),
                                                                        eid: machine.eid, iccid: machine.iccid), to: machine.smsr)
                        if enabled.functionExecutionStatus.status == .executedSuccess || enabled.functionExecutionStatus.status == .executedWithWarning {
                            try store.write { tx in
                                try tx.upsertProfile(SMDPProfileRecord(iccid: machine.iccid, eid: machine.eid, mno: machine.mno, smsr: machine.smsr,
                                                                       profileType: machine.profileType, state: ProfileState.enabled.rawValue), now: clock.now())
                            }
                        } else {
                            // The Profile is installed (Disabled): the download stands, the enable is reported.
                            var data = enabled.functionExecutionStatus.statusCodeData
                            let detail = data?.message ?? enabled.functionExecutionStatus.status.rawValue
                            data?.message = "downloaded; enabling failed: \(detail)"
                            status = FunctionExecutionStatus(status: .executedWithWarning, statusCodeData: data)
                        }
                    }
                    return try finish(id, &machine, record: record, status: status, recovered: recovered)
                case .cleanup:
                    var status = machine.failure ?? .failed(.functionProvider, .executionError, message: "download failed")
                    if let aid = machine.aid {
                        let deleted = try send(ES3.DeleteISDPRequest(functionCallIdentifier: machine.identifier(id, "cleanup"), eid: machine.eid,
                                                                     iccid: machine.iccid), to: machine.smsr)
                        let gone = deleted.functionExecutionStatus == .success || deleted.functionExecutionStatus.statusCodeData.map {
                            $0.subject == .profileICCID && $0.reason == .unknown
                        } == true
                        if !gone {
                            var data = status.statusCodeData
                            let detail = data?.message ?? ""
                            data?.message = detail + "; ISD-P \(aid.text) could not be deleted: \(deleted.functionExecutionStatus)"
                            status.statusCodeData = data
                        }
                    }
                    return try finish(id, &machine, record: record, status: status, recovered: recovered)
                case .finished:
                    let stored = try store.read { try $0.functionCall(caller: machine.caller, identifier: machine.functionCallIdentifier) }
                    if let bytes = stored?.response, let response = try? MessageBytes.decode(ES2.DownloadProfileResponse.self, bytes) { return response }
                    return ES2.DownloadProfileResponse(functionExecutionStatus: machine.status ?? .success, iccid: machine.iccid)
                }
            } catch let failure as DownloadFailure {
                machine.failure = failure.status
                machine.step = .cleanup
                try save(id, machine)
            }
        }
    }

    /// Seconds left of the order's ValidityPeriod, passed on to the SM-SR.
    func remaining(_ machine: DownloadMachine) -> Int? {
        machine.deadline.map { max(1, Int($0.seconds - clock.now().seconds)) }
    }

    /// GetEIS, eligibility and CreateISDP: the ISD-P's AID goes into `machine`.
    func prepareISDP(_ id: Int64, _ machine: inout DownloadMachine) throws -> (ECPublicKey, SMDPCredential) {
        let got = try send(ES3.GetEISRequest(functionCallIdentifier: machine.identifier(id, "eis"), validityPeriod: remaining(machine), eid: machine.eid),
                           to: machine.smsr)
        guard got.functionExecutionStatus.status == .executedSuccess, let eis = got.eis else { throw DownloadFailure(got.functionExecutionStatus) }
        // Eligibility: this ICCID not there yet, a curve this SM-DP has a credential for, the memory.
        // A resumed download may find its own ISD-P (Created, by this SM-DP) from the CreateISDP that ran
        // before the crash: CreateISDP again under the same identifier gives that ISD-P back.
        let ours = eis.profiles.first(where: { $0.iccid == machine.iccid }).map { $0.state == .created && $0.smdpID == configuration.smdpID }
        if ours == false {
            throw DownloadFailure(.profileICCID, .alreadyInUse, "the ICCID is already on the eUICC", identifier: machine.iccid.text)
        }
        guard let chosen = GPCredential.choose(for: eis, among: configuration.credentials) else {
            throw DownloadFailure(.ecasd, .unsupported, "no CERT.ECASD.ECKA on a curve this SM-DP downloads to", identifier: machine.eid.text)
        }
        guard ours == true || eis.remainingMemory >= machine.requiredMemory else {
            throw DownloadFailure(.euicc, .insufficientMemory, "\(machine.requiredMemory) bytes needed, \(eis.remainingMemory) free", identifier: machine.eid.text)
        }
        let created = try send(ES3.CreateISDPRequest(functionCallIdentifier: machine.identifier(id, "create"), validityPeriod: remaining(machine), eid: machine.eid,
                                                     iccid: machine.iccid, mnoID: machine.mno, requiredMemory: machine.requiredMemory), to: machine.smsr)
        guard created.functionExecutionStatus.status == .executedSuccess || created.functionExecutionStatus.status == .executedWithWarning else {
            throw DownloadFailure(created.functionExecutionStatus)
        }
        machine.aid = created.isdPAID
        machine.reachedCard = true
        return chosen
    }

    /// A download resumed after `created` lost its session keys: its ISD-P goes, a new attempt starts.
    func startAgain(_ id: Int64, _ machine: inout DownloadMachine) throws {
        guard machine.attempt < configuration.downloadAttempts else {
            throw DownloadFailure(.functionProvider, .executionError, "the download was interrupted \(machine.attempt) times", identifier: machine.iccid.text)
        }
        let deleted = try send(ES3.DeleteISDPRequest(functionCallIdentifier: machine.identifier(id, "restart"), eid: machine.eid, iccid: machine.iccid),
                               to: machine.smsr)
        let gone = deleted.functionExecutionStatus == .success || deleted.functionExecutionStatus.statusCodeData.map {
            $0.subject == .profileICCID && $0.reason == .unknown
        } == true
        guard gone else { throw DownloadFailure(deleted.functionExecutionStatus) }
        machine.attempt += 1
        machine.aid = nil
        machine.step = .reserved
        try save(id, machine)
    }

    /// Key establishment and the SCP03t stream of `package` into the ISD-P `aid`.
    func load(_ id: Int64, _ machine: DownloadMachine, aid: AID, package: [UInt8], ecasd: ECPublicKey, credential: SMDPCredential) throws {
        var calls = 0
        func sendData(_ items: [TLV], _ step: String) throws -> [TLV] {
            calls += 1
            let answer = try send(ES3.SendDataRequest(functionCallIdentifier: machine.identifier(id, "\(step)\(calls)"), validityPeriod: remaining(machine),
                                                      eid: machine.eid, sdAID: aid, data: HexBinary(items.flatMap(\.encoded))), to: machine.smsr)
            guard answer.functionExecutionStatus.status == .executedSuccess || answer.functionExecutionStatus.status == .executedWithWarning else {
                throw DownloadFailure(answer.functionExecutionStatus)
            }
            guard let data = answer.euiccResponseData, let script = try? ExpandedResponseScript(bytes: data.bytes) else {
                throw DownloadFailure(.isdp, .executionError, "the SM-SR returned no eUICC response script", identifier: aid.text)
            }
            return script.items
        }
        func command(_ apdu: CommandAPDU) -> TLV { TLV(ExpandedCommandScript.commandTag, apdu.bytes) }
        func lastResponse(_ items: [TLV], _ what: String) throws -> ResponseAPDU {
            let responses = items.filter { $0.tag == ExpandedResponseScript.responseTag }.compactMap { try? ResponseAPDU(bytes: $0.value) }
            guard let last = responses.last, responses.allSatisfy({ $0.sw == .success }) else {
                let sw = responses.first { $0.sw != .success }?.sw
                throw DownloadFailure(.isdp, .executionError, "the eUICC refused \(what)\(sw.map { " (SW \($0))" } ?? "")", identifier: aid.text)
            }
            return last
        }
        // Key establishment (ES8.EstablishISDPKeySet): CERT.DP.ECDSA, then the signed ePK.DP.ECKA.
        var host: KeyEstablishmentHost
        do {
            host = try KeyEstablishmentHost(certificate: credential.certificate, signingKey: credential.key, ecasdPublicKey: ecasd)
        } catch {
            throw DownloadFailure(.ecasd, .unsupported, "key establishment: \(error)", identifier: machine.eid.text)
        }
        let challenge = try lastResponse(try sendData([command(.storeData(p1: 0x89, data: host.certificateData(), le: 0))], "ke"), "CERT.DP.ECDSA")
        let agreement: [UInt8]
        do { agreement = try host.keyAgreementData(cardResponse: challenge.data) } catch {
            throw DownloadFailure(.isdp, .executionError, "the eUICC's challenge is malformed: \(error)", identifier: aid.text)
        }
        let receipt = try lastResponse(try sendData([command(.storeData(p1: 0x89, block: 1, data: agreement, le: 0))], "ke"), "ePK.DP.ECKA")
        let keys: SCP03Keys
        do { keys = try host.processReceipt(cardResponse: receipt.data) } catch {
            throw DownloadFailure(.isdp, .verificationFailed, "the eUICC's receipt does not verify: \(error)", identifier: aid.text)
        }
        try crash(at: .afterKeyEstablishment)
        // The SCP03t stream: INITIALIZE UPDATE, EXTERNAL AUTHENTICATE (precomputed: a new ISD-P's first
        // session), then the package in segments.
        var channel = SCP03tHost(keys: keys, aid: aid.bytes)
        var items = [channel.initializeUpdate(), try channel.precomputedExternalAuthenticate(sequenceCounter: 1)]
        let size = max(16, configuration.segmentSize)
        for start in stride(from: 0, to: package.count, by: size) {
            items.append(try channel.segment(Array(package[start..<min(start + size, package.count)])))
        }
        let perCall = configuration.segmentsPerSendData > 0 ? configuration.segmentsPerSendData : items.count
        var answers: [TLV] = []
        var sent = 0
        while sent < items.count {
            // The first call carries the two session commands on top of its segments.
            let count = sent == 0 ? min(items.count, perCall + (configuration.segmentsPerSendData > 0 ? 2 : 0)) : min(items.count - sent, perCall)
            let got = try sendData(Array(items[sent..<sent + count]), "load")
            answers += got
            sent += count
            if got.count < count { break }  // the card stopped: its last answer says why
        }
        var final: [UInt8]?
        do {
            guard answers.count >= 2 else { throw DownloadFailure(.isdp, .executionError, "the eUICC did not open the SCP03t session", identifier: aid.text) }
            try channel.processInitializeUpdate(answers[0])
            try channel.processExternalAuthenticate(answers[1])
            for answer in answers.dropFirst(2) {
                if let plain = try channel.processSegmentResponse(answer) { final = plain }
            }
        } catch let failure as DownloadFailure {
            throw failure
        } catch {
            throw DownloadFailure(.isdp, .verificationFailed, "the eUICC's SCP03t answer does not verify: \(error)", identifier: aid.text)
        }
        guard let final else { throw DownloadFailure(.isdp, .executionError, "the eUICC gave no installation result", identifier: aid.text) }
        guard final == EUICCResponse.success.encoded else {
            let detail = (try? EUICCResponse(encoded: final)).map { "\($0)" } ?? final.map { String(format: "%02X", $0) }.joined()
            throw DownloadFailure(.profile, .executionError, "the eUICC refused the Profile package: \(detail)", identifier: machine.iccid.text)
        }
    }

    /// Ends the download: its state, the ICCID's, the stored answer (and, after a restart, the
    /// answer in the outbox for the Operator) in one transaction.
    func finish(_ id: Int64, _ machine: inout DownloadMachine, record: DownloadRecord, status: FunctionExecutionStatus, recovered: Bool) throws
        -> ES2.DownloadProfileResponse
    {
        let succeeded = status.status == .executedSuccess || status.status == .executedWithWarning
        machine.step = .finished
        machine.status = status
        let now = clock.now()
        let response = ES2.DownloadProfileResponse(processingEnd: now, functionExecutionStatus: status, iccid: succeeded ? machine.iccid : nil)
        let finished = machine
        return try store.write { tx in
            try tx.updateDownload(id, state: succeeded ? .completed : .failed, machine: finished.encoded, now: now)
            if !succeeded, let item = try tx.inventoryItem(finished.iccid), item.state == .reserved {
                try tx.setInventoryState(finished.iccid, finished.reachedCard ? .released : .available, from: .reserved, now: now)
            }
            let bytes = MessageBytes.encode(response)
            try tx.completeFunctionCall(record.functionCallID, response: bytes, now: now)
            if recovered {
                try tx.appendOutbox([NewOutboxItem(messageType: ES2.DownloadProfileResponse.descriptor.elementName, via: RouteVia.es2.rawValue,
                                                   recipient: finished.caller, recipientRole: RecipientRole.mno.rawValue, smdp: nil, body: bytes,
                                                   retryClass: RetryClass.critical.rawValue, relatesTo: finished.functionCallIdentifier)],
                                   operationID: id, now: now)
            }
            return response
        }
    }
}
