// The SM-DP (issue #7; docs/smdp.md): the ES2 provider for Operators, the ES3 client toward the
// SM-SRs, the inventory (SMDPInventory) and DownloadProfile as a persisted state machine
// (SMDP+Download.swift), the ES2 management functions relayed onto ES3 (SMDP+Relays.swift), and the
// SM-SRs' ES3 notifications forwarded to the owning Operators over ES2 (SMDP+Notifications.swift).
//
// Every ES2 function runs one pipeline (`SMDPCall`): the caller must be a registered Operator
// (1.1/1.1, 1.1/1.2); idempotency on (caller, FunctionCallIdentifier) — the same request gets the
// stored answer, another request under a used identifier 1.6/3.3; the SM-SR named by the request
// must be one this SM-DP reaches (8.7/3.9); then the function, whose answer is stored with its
// last state change in one SQLite transaction.
//
// ES3 calls carry FunctionCallIdentifiers derived from what they serve (the Operator's call, or the
// download, its attempt and step), so a call repeated after a crash or a lost answer is the same
// call to the SM-SR, which answers it with what it stored the first time.

public import M2MCore
public import M2MCrypto
public import M2MPolicy
import M2MSOAP
public import M2MWire
public import M2MStorage
import Foundation

/// A key-establishment credential on one curve: a GP certificate (CERT.DP.ECDSA of an SM-DP,
/// CERT.SR.ECDSA of an SM-SR) and its private key.
public typealias SMDPCredential = GPCredential

/// A key-establishment credential on one curve: the GP certificate and its private key.
public struct GPCredential: Sendable {
    public var certificate: GPCertificate
    public var key: ECPrivateKey

    public init(certificate: GPCertificate, key: ECPrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    /// PK.ECASD.ECKA from the EIS's CERT.ECASD.ECKA and the credential on its curve, if one is.
    static func choose(for eis: EIS, among credentials: [GPCredential]) -> (ECPublicKey, GPCredential)? {
        for case .certificate(let reference) in eis.eumSignedInfo.ecasd.keysets.flatMap(\.items) {
            guard let certificate = try? GPCertificate(encoded: reference.value.bytes) else { continue }
            for credential in credentials {
                if let key = try? certificate.publicKey(defaultCurve: credential.key.curve), key.curve == credential.key.curve {
                    return (key, credential)
                }
            }
        }
        return nil
    }
}

/// What an SM-DP is configured with.
public struct SMDPConfiguration: Sendable {
    /// This SM-DP's OID (the `Smdp-id` the SM-SR records on its Profiles).
    public var smdpID: OID
    /// 32 bytes sealing templates and keys at rest (SMDPInventory).
    public var storageKey: SecureBytes
    /// One per curve the SM-DP can download to (P-256, brainpoolP256r1).
    public var credentials: [SMDPCredential]
    /// The longest ValidityPeriod honoured (seconds); longer ones are cut and echoed back.
    public var maximumValidityPeriod = 7 * 24 * 3600
    /// Bytes asked in CreateISDP beyond the personalised package (rounded up to 1 KiB).
    public var memoryMargin = 4096
    /// SCP03t plaintext bytes per segment (a command TLV of at most 1 KB).
    public var segmentSize = 1020
    /// Segments per SendData; 0: the whole SCP03t stream (with INITIALIZE UPDATE and EXTERNAL
    /// AUTHENTICATE) in one SendData — the SM-SR splits it for the card's transport.
    public var segmentsPerSendData = 0
    /// How many times a download interrupted mid-way (a crash, a lost answer) starts again on a new
    /// ISD-P before it fails.
    public var downloadAttempts = 3

    public init(smdpID: OID, storageKey: SecureBytes, credentials: [SMDPCredential]) {
        self.smdpID = smdpID
        self.storageKey = storageKey
        self.credentials = credentials
    }
}

/// Test hook: simulated crashes at named points of a download.
public struct SMDPFaults: Sendable {
    public enum Point: String, Sendable, CaseIterable {
        /// The order is recorded and its ICCID reserved, nothing sent to the SM-SR.
        case afterReserve
        /// The SM-SR created the ISD-P; the SM-DP has not recorded it.
        case afterCreateISDP
        /// Key establishment done (the ISD-P has keys); no SCP03t sent.
        case afterKeyEstablishment
        /// The Profile package is on the card; the SM-DP has not recorded it.
        case afterLoad
        /// ProfileDownloadCompleted answered; the SM-DP has not recorded it.
        case afterCompleted
    }

    public var crashAt: Point?

    public init(crashAt: Point? = nil) { self.crashAt = crashAt }
}

/// The simulated crash `SMDPFaults` throws.
public struct SMDPSimulatedCrash: Error, Sendable {
    public let point: SMDPFaults.Point
}

/// The SM-DP.
public final class SMDP: Sendable {
    public let configuration: SMDPConfiguration
    public let store: any SMDPStore
    public let inventory: SMDPInventory
    public let policy: PolicyEngine
    /// The SM-SRs this SM-DP reaches, by `SmSr-id`.
    public let smsrs: [OID: any ES3Endpoint]
    public let clock: any Clock
    public let faults: SMDPFaults
    /// Callers' parties as calls look them up (PartyCache).
    let parties = PartyCache()

    public init(configuration: SMDPConfiguration, store: any SMDPStore, policy: PolicyEngine, smsrs: [OID: any ES3Endpoint],
                clock: any Clock = SystemClock(), faults: SMDPFaults = SMDPFaults()) throws(CryptoError) {
        self.configuration = configuration
        self.store = store
        self.inventory = try SMDPInventory(store: store, storageKey: configuration.storageKey, clock: clock)
        self.policy = policy
        self.smsrs = smsrs
        self.clock = clock
        self.faults = faults
    }

    /// Registers (or changes the role of) a party the SM-DP serves.
    public func register(_ party: Party) throws {
        try store.write { try $0.upsertParty(party) }
        parties.put(party)
    }

    func crash(at point: SMDPFaults.Point) throws(SMDPSimulatedCrash) {
        guard faults.crashAt == point else { return }
        throw SMDPSimulatedCrash(point: point)
    }

    /// The SM-SR `id`, or 8.7/3.9.
    func endpoint(_ id: OID) throws(Refusal) -> any ES3Endpoint {
        guard let endpoint = smsrs[id] else { throw Refusal(.smsr, .unknown, "this SM-DP does not reach that SM-SR", identifier: id.text) }
        return endpoint
    }

    /// Calls the SM-SR; a transport failure is an unknown outcome (the call is asked again later).
    func send<Request: SGP02Request>(_ request: Request, to smsr: OID) throws -> Request.Response {
        do {
            return try endpoint(smsr).call(request)
        } catch let error as ES3TransportError {
            throw Unresolved(detail: "\(error)")
        }
    }
}

// MARK: - The ES2 call pipeline

/// One ES2 function call being served.
struct SMDPCall {
    let smdp: SMDP
    let id: Int64
    let caller: Party
    let now: Timestamp
    let functionCallIdentifier: String
    var deadline: Timestamp? = nil
    var acceptableValidityPeriod: Int? = nil
    /// False for a read-only function: nothing of the call is stored (a repeated call reads again).
    var recorded = true

    /// The answer of a read-only function (or, when recorded, committed as any other).
    func answer<Response: SGP02Response>(_ response: Response) throws -> Response {
        recorded ? try commit { _ in response } : finish(response)
    }

    /// The identifier of the ES3 call relaying this one: the same for a repeated request, unique per
    /// Operator and identifier.
    var relayIdentifier: String { "es2:\(caller.oid.text):\(functionCallIdentifier)" }

    /// Seconds left of the ValidityPeriod (passed on to the SM-SR), nil when none was given.
    func remainingValidity(now: Timestamp) -> Int? {
        deadline.map { max(1, Int($0.seconds - now.seconds)) }
    }

    /// Completes the response's header fields.
    func finish<Response: SGP02Response>(_ response: Response) -> Response {
        var response = response
        response.processingStart = response.processingStart ?? now
        response.acceptableValidityPeriod = response.acceptableValidityPeriod ?? acceptableValidityPeriod
        response.processingEnd = response.processingEnd ?? smdp.clock.now()
        return response
    }

    /// Commits `body`'s writes and the response in one transaction.
    func commit<Response: SGP02Response>(_ body: (any SMDPWriting) throws -> Response) throws -> Response {
        try smdp.store.write { tx in
            let response = finish(try body(tx))
            try tx.completeFunctionCall(id, response: MessageBytes.encode(response), now: smdp.clock.now())
            return response
        }
    }
}

extension SMDP {
    /// Runs one ES2 call through the pipeline; `smsrID` is the SM-SR the request names.
    func serve<Request: SGP02Request>(
        _ request: Request, context: RequestContext, smsrID: OID?, readOnly: Bool = false,
        failure makeFailure: (FunctionExecutionStatus) -> Request.Response,
        _ body: (SMDPCall) throws -> Request.Response
    ) -> Request.Response {
        let now = clock.now()
        func refused(_ status: FunctionExecutionStatus) -> Request.Response {
            var response = makeFailure(status)
            if let period = request.validityPeriod, period > configuration.maximumValidityPeriod {
                response.acceptableValidityPeriod = configuration.maximumValidityPeriod
            }
            response.processingStart = now
            response.processingEnd = clock.now()
            return response
        }
        let party: Party
        do {
            guard let known = try parties.party(context.caller, load: { try store.read { try $0.party(context.caller) } }) else {
                return refused(.failed(.functionRequester, .unknownIdentity, identifier: context.caller.text, message: "unknown caller"))
            }
            party = known
        } catch {
            return refused(.failed(.functionProvider, .executionError, message: "the SM-DP store failed"))
        }
        guard party.role == .mno else {
            return refused(.failed(.functionRequester, .notAllowed, identifier: context.caller.text,
                                   message: "\(party.role.rawValue) may not call \(Request.descriptor.function)"))
        }
        let function = "\(Request.descriptor.function)"
        var callID: Int64 = 0
        if !readOnly {
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
                return refused(.failed(.functionProvider, .executionError, message: "the SM-DP store failed"))
            }
        }
        var call = SMDPCall(smdp: self, id: callID, caller: party, now: now, functionCallIdentifier: request.functionCallIdentifier)
        call.recorded = !readOnly
        if let period = request.validityPeriod {
            let honoured = min(period, configuration.maximumValidityPeriod)
            call.deadline = Timestamp(seconds: now.seconds + Int64(honoured), nanoseconds: now.nanoseconds)
            if honoured < period { call.acceptableValidityPeriod = honoured }
        }
        func stored(_ response: Request.Response) -> Request.Response {
            guard !readOnly else { return response }
            _ = try? self.store.write { try $0.completeFunctionCall(callID, response: MessageBytes.encode(response), now: clock.now()) }
            return response
        }
        do {
            if let smsrID { _ = try endpoint(smsrID) }
            return try body(call)
        } catch let refusal as Refusal {
            return stored(refused(refusal.status))
        } catch let unresolved as Unresolved {
            // Not stored: the same request again continues (relays ask the SM-SR again under the same
            // identifier; a download resumes from its last recorded step).
            if !readOnly { _ = try? self.store.write { try $0.forgetFunctionCall(callID) } }
            return refused(.failed(.functionProvider, .executionError, identifier: request.functionCallIdentifier,
                                   message: "the SM-SR did not answer (\(unresolved.detail)): retry this call"))
        } catch let crash as SMDPSimulatedCrash {
            return refused(.failed(.functionProvider, .executionError, message: "simulated crash at \(crash.point.rawValue)"))
        } catch {
            return stored(refused(.failed(.functionProvider, .executionError, message: "the SM-DP failed (\(type(of: error)))")))
        }
    }

    /// Records a policy decision.
    func record(_ decision: DecisionRecord, download: Int64?, call: Int64?, in tx: any SMDPWriting) throws {
        try tx.appendDecision(hook: decision.hook.rawValue, record: SMSR.encodeDecision(decision), input: decision.input.encoded, downloadID: download,
                              functionCallID: call, now: clock.now())
    }
}
