// The SM-SR (issue #6; docs/smsr.md): ES1, ES3, ES4 and ES4A functions over ES5 to the cards, with
// SQLite persistence (M2MStorage), POL2/PLMA/ONC and notification routing through the Lua policy
// engine (M2MPolicy), and the cards reached through M2MTransport's `EUICCTransport`.
//
// Every function runs the same pipeline (`Call`):
//   1. the caller must be a registered party of the role the interface serves (ES1 EUM, ES3 SM-DP,
//      ES4 MNO or M2M SP, ES4A MNO), else 1.1/1.1 (unknown) or 1.1/1.2 (not allowed);
//   2. idempotency on (caller, FunctionCallIdentifier): the same request again gets the stored
//      response; another request under a used identifier gets 1.6/3.3;
//   3. the function's own checks, POL2 (Lua, before any ES5 command), ES5;
//   4. one SQLite transaction commits the change, its audit row, its decision records, its outbox
//      rows and the stored response together.
// Functions that talk to a card first record an active operation (one per eUICC: a second change
// gets 8.1/4.4 while one runs), so a restart finds and reconciles it (`recover()`).

public import M2MCore
public import M2MCrypto
public import M2MPolicy
public import M2MSOAP
public import M2MStorage
public import M2MTransport
import M2MWire
import M2MXML
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What an SM-SR is configured with.
public struct SMSRConfiguration: Sendable {
    /// This SM-SR's OID (the `Smsr-id` an EIS must carry).
    public var smsrID: OID
    /// 32 bytes: AES-128 encryption key ‖ CMAC key sealing the ISD-R keys at rest.
    public var storageKey: SecureBytes
    /// Accept ISD-R keys in clear in an EIS (test fleets only; a real EUM encrypts them).
    public var acceptClearISDRKeys = false
    /// Check EUM signatures (CERT.ECASD.ECKA, the EIS) with a table of multiples of each EUM key, built
    /// on its first check: ~1.7× faster (M2MCrypto `prepareForRepeatedVerification`, docs/crypto.md).
    /// false keeps every check in OpenSSL's EVP layer, e.g. where a FIPS provider must do them.
    public var eumKeyTables = true
    /// The longest ValidityPeriod honoured (seconds); longer ones are cut and echoed back.
    public var maximumValidityPeriod = 7 * 24 * 3600
    /// MO polls after a profile change while waiting for the card's default notification.
    public var notificationPolls = 4
    /// How long a download holds its eUICC after CreateISDP or its last SendData (seconds).
    public var downloadLeaseSeconds = 600
    /// How SendData and UpdateConnectivityParameters scripts reach the card.
    public var scriptRoute = ScriptRoute.automatic
    /// CERT.SR.ECDSA and SK.SR.ECDSA per curve: what this SM-SR shows a card when it takes the card
    /// over at an SM-SR change (ES7, docs/smsr-change.md). Without one it refuses to be the new SM-SR.
    public var credentials: [GPCredential] = []

    public enum ScriptRoute: Sendable {
        /// SCP81 when an admin server is configured, else the transport's own scripts (in process)
        /// when it runs them, else SMS.
        case automatic
        /// SCP80 packets, the script segmented to fit SMS.
        case sms
    }

    public init(smsrID: OID, storageKey: SecureBytes) {
        self.smsrID = smsrID
        self.storageKey = storageKey
    }
}

/// The certificates registration checks against: the CI, and each EUM's certificate by its OID. An
/// EUM's public key is prepared for repeated verification when it first checks an EIS (M2MCrypto
/// `ECPublicKey.prepareForRepeatedVerification`); copies of this value share that preparation.
public struct SMSRTrust: Sendable {
    public var ci: X509Certificate
    public var eums: [OID: X509Certificate]

    public init(ci: X509Certificate, eums: [OID: X509Certificate]) {
        self.ci = ci
        self.eums = eums
    }
}

/// Who is calling (the server layer fills it from the mutual-TLS identity).
public struct RequestContext: Sendable {
    public var caller: OID
    public init(caller: OID) { self.caller = caller }
}

/// Test hook: simulated crashes at named points of a lifecycle operation.
public struct SMSRFaults: Sendable {
    public enum Point: String, Sendable, CaseIterable {
        /// After the operation row is committed, before any ES5 command.
        case beforeES5
        /// After the card executed the command, before its notification is read.
        case afterES5
        /// After the card's notification was read, before the outcome is committed.
        case beforeCommit
        /// After the outcome is committed, before the card's notifications are confirmed (3A08) and
        /// before a POL2 Auto-Delete it recorded runs.
        case afterCommit
        /// SM-SR change, current SM-SR: the eUICC locked, before ES7.HandoverEUICC is sent.
        case changeBeforeHandover
        /// SM-SR change, new SM-SR: the card made the new key set, before the receipt is checked.
        case changeBeforeCommit
        /// SM-SR change, new SM-SR: after the commit point, before FinaliseISDRhandover.
        case changeAfterCommit
    }

    public var crashAt: Point?
    /// Kill the process (SIGKILL) at the point instead of throwing: `m2mrsp smsr … --crash-at`
    /// and scripts/crash-test.sh kill a real SM-SR process mid-operation.
    public var killProcess = false

    public init(crashAt: Point? = nil, killProcess: Bool = false) {
        self.crashAt = crashAt
        self.killProcess = killProcess
    }
}

/// The simulated crash `SMSRFaults` throws.
public struct SimulatedCrash: Error, Sendable {
    public let point: SMSRFaults.Point
}

/// An operation whose outcome is not known yet (the card could not be asked): it stays active for
/// `recover()`, and the call is left unanswered until then — the caller gets a transient failure
/// now and the recovered outcome when it retries.
struct Unresolved: Error {
    let detail: String
}

/// A refusal: the function's status, computed before or instead of doing anything.
struct Refusal: Error {
    let status: FunctionExecutionStatus

    init(_ subject: SubjectCode, _ reason: ReasonCode, _ message: String, identifier: String? = nil) {
        status = .failed(subject, reason, identifier: identifier, message: message)
    }

    init(status: FunctionExecutionStatus) { self.status = status }

    static func storage(_ error: any Error) -> Refusal {
        Refusal(.functionProvider, .executionError, "the SM-SR store failed: \(error)")
    }
}

/// The SM-SR.
public final class SMSR: Sendable {
    public let configuration: SMSRConfiguration
    public let trust: SMSRTrust
    public let store: any SMSRStore
    public let policy: PolicyEngine
    public let transport: any EUICCTransport
    public let clock: any Clock
    public let faults: SMSRFaults
    /// Where cards open SCP81 admin sessions; nil: scripts go through `transport.runScript`.
    public let adminServer: SCP81AdminServer?
    let sealer: KeySealer
    /// SCP80 counters reserved in the store and not used yet, per eUICC (CardSession.reserveCounter).
    let counterBlocks = Mutex<[EID: (next: UInt64, limit: UInt64)]>([:])
    /// How many SCP80 counters one store transaction reserves.
    static let counterBlock: UInt64 = 16
    /// The other SM-SRs this one can reach over ES7 (SM-SR change), by their OID.
    let peers = Mutex<[OID: any ES7Endpoint]>([:])
    /// The eUICCs whose SM-SR change runs in this process now.
    let changesInFlight = Mutex<Set<EID>>([])
    /// Callers' parties as calls look them up (PartyCache).
    let parties = PartyCache()

    public init(
        configuration: SMSRConfiguration, trust: SMSRTrust, store: any SMSRStore, policy: PolicyEngine, transport: any EUICCTransport,
        adminServer: SCP81AdminServer? = nil, clock: any Clock = SystemClock(), faults: SMSRFaults = SMSRFaults()
    ) throws(CryptoError) {
        self.adminServer = adminServer
        self.configuration = configuration
        self.trust = trust
        self.store = store
        self.policy = policy
        self.transport = transport
        self.clock = clock
        self.faults = faults
        self.sealer = try KeySealer(storageKey: configuration.storageKey)
    }

    /// Registers (or changes the role of) a party the SM-SR serves.
    public func register(_ party: Party) throws {
        try store.write { try $0.upsertParty(party) }
        parties.put(party)
    }

    func crash(at point: SMSRFaults.Point) throws(SimulatedCrash) {
        guard faults.crashAt == point else { return }
        if faults.killProcess { kill(getpid(), SIGKILL) }
        throw SimulatedCrash(point: point)
    }
}

// MARK: - Message bytes

/// A message body element alone (with its namespace declaration), as stored for idempotent replies
/// and outbox rows; read back with the same decoder a received envelope uses.
enum MessageBytes {
    static func encode(_ message: some SGP02Message) -> [UInt8] {
        var writer = XMLWriter(declaration: false, indent: 0)
        writer.startElement(message.descriptor.qualifiedName)
        writer.attribute("xmlns:rps", Namespace.rps)
        message.writeContent(to: &writer)
        writer.endElement()
        return writer.bytes
    }

    static func decode<M: SGP02Message>(_ type: M.Type, _ bytes: [UInt8]) throws -> M {
        let root = try XMLReader.parse(bytes, limits: .default, knownNamespaces: Namespace.known)
        return try M(xmlElement: root)
    }
}

// MARK: - The call pipeline

/// What a recorded call does once its idempotency row is looked at (SM-SR and SM-DP pipelines).
enum RecordedCall<Response: SGP02Response> {
    /// Run it: its function-call row.
    case run(Int64)
    /// The same request again, completed: its stored answer.
    case answer(Response)
    /// Not run: the identifier was used for another request (1.6/3.3), or the call still runs (1.6/4.4).
    case refuse(FunctionExecutionStatus)

    /// Digests `request` and records its start through `record` (the role's own store), then resolves.
    static func start<Request: SGP02Request>(_ request: Request, record: ([UInt8]) throws -> FunctionCallStart) throws -> RecordedCall
        where Request.Response == Response
    {
        resolve(try record(SHA256.hash(MessageBytes.encode(request))), Response.self, identifier: request.functionCallIdentifier)
    }

    static func resolve(_ start: FunctionCallStart, _ type: Response.Type, identifier: String) -> RecordedCall {
        switch start {
        case .begun(let id): return .run(id)
        case .reused:
            return .refuse(.failed(.function, .alreadyInUse, identifier: identifier, message: "FunctionCallIdentifier \(identifier) was used for another request"))
        case .repeated(let seen):
            if let bytes = seen.response, let response = try? MessageBytes.decode(Response.self, bytes) { return .answer(response) }
            return .refuse(.failed(.function, .pendingOperation, identifier: identifier, message: "this call is still being executed"))
        }
    }
}

/// One function call being served.
struct Call {
    let smsr: SMSR
    let id: Int64
    let caller: Party
    let function: String
    let now: Timestamp
    var functionCallIdentifier = ""
    /// When the request stops being valid (reception + ValidityPeriod, cut to the maximum).
    var deadline: Timestamp? = nil
    /// Set when the ValidityPeriod asked for was cut: echoed as AcceptableValidityPeriod.
    var acceptableValidityPeriod: Int? = nil
    /// False for a read-only function: nothing of the call is stored (a repeated call reads again).
    var recorded = true

    /// The answer of a read-only function: its header fields completed, nothing written.
    func answer<Response: SGP02Response>(_ response: Response) throws -> Response {
        guard recorded else {
            var response = response
            response.processingStart = response.processingStart ?? now
            response.acceptableValidityPeriod = response.acceptableValidityPeriod ?? acceptableValidityPeriod
            response.processingEnd = response.processingEnd ?? smsr.clock.now()
            return response
        }
        return try commit { _ in response }
    }

    /// Commits `body`'s writes and the response in one transaction; the response is returned.
    func commit<Response: SGP02Response>(_ body: (any SMSRWriting) throws -> Response) throws -> Response {
        try smsr.store.write { tx in
            var response = try body(tx)
            response.processingStart = response.processingStart ?? now
            response.acceptableValidityPeriod = response.acceptableValidityPeriod ?? acceptableValidityPeriod
            response.processingEnd = response.processingEnd ?? smsr.clock.now()
            try tx.completeFunctionCall(id, response: MessageBytes.encode(response), now: smsr.clock.now())
            return response
        }
    }

    /// Records a decision record of the policy engine with this call.
    func record(_ decision: DecisionRecord, operation: Int64? = nil, in tx: any SMSRWriting) throws {
        try tx.appendDecision(hook: decision.hook.rawValue, record: SMSR.encodeDecision(decision), input: decision.input.encoded, operationID: operation,
                              functionCallID: id, now: now)
    }
}

extension SMSR {
    /// A decision record as stored: a JSON summary (what decided, the result, the input's digest)
    /// beside the input in the engine's binary form (`DecisionRecord.input.encoded`). Foundation's
    /// JSON of the whole record (input included) cost more than the rest of an enable.
    static func encodeDecision(_ record: DecisionRecord) -> [UInt8] {
        let quoted = JSONText.quoted
        var text = "{\"v\":1,\"sequence\":\(record.sequence),\"time\":\"\(record.time.text)\",\"hook\":\"\(record.hook.rawValue)\""
        if let bundle = record.bundle { text += ",\"bundle\":" + quoted(bundle.description) }
        if let decidedBy = record.decidedBy { text += ",\"decided_by\":" + quoted(decidedBy) }
        if let error = record.error { text += ",\"error\":" + quoted("\(error)") }
        text += ",\"input_digest\":\"\(record.inputDigest)\",\"duration_ns\":\(record.durationNanoseconds)"
        let result = record.result.jsonText
        text += ",\"result\":" + result + "}"
        return Array(text.utf8)
    }

    /// The functions served with `readOnly` (they read the database and touch no card): a server may
    /// run them on a pool of their own (M2MServer `SOAPServer.Configuration.quickFunctions`).
    public static let readOnlyFunctions: Set<String> = [
        "ES3.GetEIS", "ES3.GetPLMA", "ES3.GetONC", "ES4.GetEIS", "ES4.GetPLMA", "ES4A.GetPLMA", "ES4A.GetONC",
    ]

    /// Runs one function call through the pipeline. `roles` are the caller roles the interface
    /// serves; `makeFailure` builds the response carrying a refusal; `body` does the work.
    /// `readOnly`: a function that changes nothing (GetEIS, GetPLMA, GetONC) is not recorded — no
    /// idempotency row, no stored answer (a repeated call reads again; the database does not grow
    /// with every read).
    func serve<Request: SGP02Request>(
        _ request: Request, context: RequestContext, roles: Set<Party.Role>, readOnly: Bool = false,
        failure makeFailure: (FunctionExecutionStatus) -> Request.Response,
        _ body: (Call) throws -> Request.Response
    ) -> Request.Response {
        let now = clock.now()
        let function = "\(Request.descriptor.function)"
        func refused(_ status: FunctionExecutionStatus) -> Request.Response {
            var response = makeFailure(status)
            if let period = request.validityPeriod, period > configuration.maximumValidityPeriod {
                response.acceptableValidityPeriod = configuration.maximumValidityPeriod
            }
            response.processingStart = now
            response.processingEnd = clock.now()
            return response
        }
        // 1. The caller.
        let party: Party
        do {
            guard let known = try parties.party(context.caller, load: { try store.read { try $0.party(context.caller) } }) else {
                return refused(.failed(.functionRequester, .unknownIdentity, identifier: context.caller.text, message: "unknown caller"))
            }
            party = known
        } catch {
            return refused(Refusal.storage(error).status)
        }
        guard roles.contains(party.role) else {
            return refused(.failed(.functionRequester, .notAllowed, identifier: context.caller.text,
                                   message: "\(party.role.rawValue) may not call \(function)"))
        }
        // 2. Idempotency.
        let callID: Int64
        if readOnly {
            callID = 0
        } else {
            do {
                let recorded = try RecordedCall.start(request) { digest in
                    try store.write {
                        try $0.startFunctionCall(caller: party.oid, identifier: request.functionCallIdentifier, function: function, digest: digest, now: now)
                    }
                }
                switch recorded {
                case .run(let id): callID = id
                case .answer(let response): return response
                case .refuse(let status): return refused(status)
                }
            } catch {
                return refused(Refusal.storage(error).status)
            }
        }
        var call = Call(smsr: self, id: callID, caller: party, function: function, now: now, functionCallIdentifier: request.functionCallIdentifier)
        call.recorded = !readOnly
        if let period = request.validityPeriod {
            let honoured = min(period, configuration.maximumValidityPeriod)
            call.deadline = Timestamp(seconds: now.seconds + Int64(honoured), nanoseconds: now.nanoseconds)
            if honoured < period { call.acceptableValidityPeriod = honoured }
        }
        // 3–4. The function.
        do {
            return try body(call)
        } catch let refusal as Refusal {
            let response = refused(refusal.status)
            if !readOnly { _ = try? store.write { try $0.completeFunctionCall(callID, response: MessageBytes.encode(response), now: clock.now()) } }
            return response
        } catch let unresolved as Unresolved {
            // Not stored: recovery will store the one true outcome.
            return refused(.failed(.functionProvider, .executionError, identifier: request.functionCallIdentifier,
                                   message: "the outcome is not known yet (\(unresolved.detail)); it will be reconciled with the card: retry this call later"))
        } catch let crash as SimulatedCrash {
            // Tests only: the process "dies" here; nothing more is written.
            return refused(.failed(.functionProvider, .executionError, message: "simulated crash at \(crash.point.rawValue)"))
        } catch {
            // The detail (SQLite text, paths) stays out of the answer.
            let response = refused(.failed(.functionProvider, .executionError, message: "the SM-SR failed (\(type(of: error)))"))
            if !readOnly { _ = try? store.write { try $0.completeFunctionCall(callID, response: MessageBytes.encode(response), now: clock.now()) } }
            return response
        }
    }

    /// The stored EIS of `eid`, or 8.1.1/3.9.
    func requireEIS(_ eid: EID) throws -> StoredEIS {
        try store.read { try requireEIS(eid, in: $0) }
    }

    /// The stored EIS of `eid` in `tx`'s snapshot, or 8.1.1/3.9.
    func requireEIS(_ eid: EID, in tx: any SMSRReading) throws -> StoredEIS {
        guard let stored = try tx.eis(eid) else { throw Refusal(.eid, .unknown, "unknown eUICC", identifier: eid.text) }
        return stored
    }

    /// The download holding `eid` now (a lease not yet expired), if any.
    func liveLease(_ eid: EID, in tx: any SMSRReading) throws -> DownloadLease? {
        guard let lease = try tx.downloadLease(eid), lease.until > clock.now().seconds else { return nil }
        return lease
    }

    func newLease(smdp: OID, iccid: ICCID) -> DownloadLease {
        DownloadLease(smdp: smdp, iccid: iccid, until: clock.now().seconds + Int64(configuration.downloadLeaseSeconds))
    }

    /// The profile `iccid` in `eis`, or 8.2.1/3.9.
    func requireProfile(_ iccid: ICCID, in eis: EIS) throws(Refusal) -> ProfileInfo {
        guard let profile = eis.profiles.first(where: { $0.iccid == iccid }) else {
            throw Refusal(.profileICCID, .unknown, "no such Profile on this eUICC", identifier: iccid.text)
        }
        return profile
    }
}

/// JSON of the documents the SM-SR stores (sorted keys: equal values, equal bytes).
enum JSONCoding {
    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(value))
    }
}
