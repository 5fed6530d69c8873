// A whole SM-SR for tests: a test PKI, an emulated fleet reached through the in-process transport
// (the SM-SR meets it only through SCP80 bytes), a temporary SQLite file, the repository's Lua
// plugins and bundles, and the parties of the authorisation matrix.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MPolicy
import M2MRoles
import M2MSOAP
import M2MStorage
import M2MTestKit
import M2MTransport
import Synchronization
import Testing

/// A clock tests move by hand.
final class TestClock: Clock {
    let value: Mutex<Timestamp>
    /// Seconds every reading moves the clock on (0: it moves only by `advance`).
    let step = Atomic<Int64>(0)
    init(_ start: Timestamp) { value = Mutex(start) }
    func now() -> Timestamp {
        let step = step.load(ordering: .relaxed)
        return value.withLock { now in
            defer { now = Timestamp(seconds: now.seconds + step, nanoseconds: now.nanoseconds) }
            return now
        }
    }
    func advance(_ seconds: Int64) { value.withLock { $0 = Timestamp(seconds: $0.seconds + seconds) } }
}

struct SMSRHarness {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let smsrID: OID = "1.3.6.1.4.1.99999.2.1"
    static let eumID: OID = "1.3.6.1.4.1.99999.1.1"
    static let mno: OID = "1.3.6.1.4.1.99999.4.1"
    static let otherMNO: OID = "1.3.6.1.4.1.99999.4.2"
    static let sp: OID = "1.3.6.1.4.1.99999.5.1"
    static let otherSP: OID = "1.3.6.1.4.1.99999.5.2"
    static let smdp: OID = "1.3.6.1.4.1.99999.3.1"
    static let a = try! AID(text: "A0000005591010FFFFFFFF8900001000")
    static let b = try! AID(text: "A0000005591010FFFFFFFF8900001100")
    static let c = try! AID(text: "A0000005591010FFFFFFFF8900001200")
    static let iccidA = try! ICCID(withoutCheckDigit: "894450000000000012")
    static let iccidB = try! ICCID(withoutCheckDigit: "894450000000000034")
    static let iccidC = try! ICCID(withoutCheckDigit: "894450000000000056")
    static let profileType = "M2M-3G-16K"

    let pki: TestPKI
    let fleet: Fleet
    let directory: URL
    let storageKey = SecureBytes(SecureRandom.bytes(32))
    /// Starts now: the test PKI's certificates are valid from the moment they were made.
    let clock = TestClock(Timestamp(seconds: SystemClock().now().seconds))
    var smsr: SMSR
    var store: SQLiteSMSRStore
    /// Where the ES5 traffic is captured (`m2mrsp trace` format), when a test asks.
    let capture: (any CaptureSink)?

    var dbPath: String { directory.appendingPathComponent("smsr.sqlite").path }

    /// `cards` cards; card 0 holds A (enabled, fall-back) and B (disabled), card 1 A′ alone.
    init(cards: Int = 3, faults: SMSRFaults = SMSRFaults(), capture: (any CaptureSink)? = nil, curve: Curve = .p256) throws {
        self.capture = capture
        pki = try TestPKI.generate(curve: curve)
        fleet = try Fleet(seed: Array("smsr-tests".utf8), count: cards, curve: curve, ciPublicKey: pki.ci.publicKey,
                          eum: EUMIssuer(key: pki.eumKey, eumID: Self.eumID))
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("m2mrsp-smsr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let ok = fleet.withCard(at: 0) { card in
            card.manufacture(ISDP(aid: Self.a, lifeCycle: .enabled, iccid: Self.iccidA, profileType: Self.profileType, fallBack: true, allocatedMemory: 20_000))
                && card.manufacture(ISDP(aid: Self.b, lifeCycle: .disabled, iccid: Self.iccidB, profileType: Self.profileType, allocatedMemory: 20_000))
        }
        #expect(ok)
        store = try SQLiteSMSRStore(path: directory.appendingPathComponent("smsr.sqlite").path, codec: XMLDocumentCodec())
        smsr = try Self.makeSMSR(store: store, pki: pki, fleet: fleet, storageKey: storageKey, clock: clock, faults: faults, capture: capture)
        for party in [Party(oid: Self.eumID, role: .eum), Party(oid: Self.mno, role: .mno), Party(oid: Self.otherMNO, role: .mno),
                      Party(oid: Self.sp, role: .m2mSP), Party(oid: Self.otherSP, role: .m2mSP), Party(oid: Self.smdp, role: .smdp)] {
            try smsr.register(party)
        }
    }

    static func makeSMSR(store: SQLiteSMSRStore, pki: TestPKI, fleet: Fleet, storageKey: SecureBytes, clock: TestClock, faults: SMSRFaults,
                         capture: (any CaptureSink)? = nil, eum: X509Certificate? = nil,
                         configure: (inout SMSRConfiguration) -> Void = { _ in }) throws -> SMSR {
        var configuration = SMSRConfiguration(smsrID: smsrID, storageKey: storageKey)
        configuration.acceptClearISDRKeys = true
        configure(&configuration)
        let loader = PolicyLoader(pluginPaths: [repository.appendingPathComponent("plugins").path])
        let set = try loader.loadSet(bundles: PolicyLoader.bundleDirectories(under: repository.appendingPathComponent("policies").path))
        let engine = try PolicyEngine(set: set, clock: clock, decisionLog: NoDecisionLog())
        return try SMSR(configuration: configuration, trust: SMSRTrust(ci: pki.ci, eums: [eumID: eum ?? pki.eum]), store: store, policy: engine,
                        transport: capture.map { CapturingTransport(InProcessTransport(fleet: fleet), sink: $0) } ?? InProcessTransport(fleet: fleet),
                        clock: clock, faults: faults)
    }

    /// A new SM-SR process on the same database and fleet (after a crash).
    mutating func restart(faults: SMSRFaults = SMSRFaults()) throws {
        store.database.close()
        store = try SQLiteSMSRStore(path: dbPath, codec: XMLDocumentCodec())
        smsr = try Self.makeSMSR(store: store, pki: pki, fleet: fleet, storageKey: storageKey, clock: clock, faults: faults, capture: capture)
    }

    func eid(_ card: Int) -> EID { fleet.eid(at: card) }

    /// The EIS of `card` as its EUM registers it (Profiles owned by `mno`).
    func eis(card: Int, owner: OID = mno) throws -> EIS {
        let info = try fleet.eumSignedInfo(at: card, productionDate: clock.now())
        let signature = try EISSignature.sign(info, with: pki.eumKey, keyName: "EUM-TEST-KEY")
        return try fleet.eis(at: card, signedInfo: info, signature: signature, smsrID: Self.smsrID, mnoID: owner)
    }

    @discardableResult
    func register(card: Int, owner: OID = mno, fci: String? = nil) throws -> ES1.RegisterEISResponse {
        let response = smsr.registerEIS(ES1.RegisterEISRequest(functionCallIdentifier: fci ?? "reg-\(card)", eis: try eis(card: card, owner: owner)),
                                        context: RequestContext(caller: Self.eumID))
        return response
    }

    func stored(_ card: Int) throws -> EIS? { try store.read { try $0.eis(eid(card)) }?.eis }

    func outbox() throws -> [OutboxItem] { try store.read { try $0.outbox(states: [.pending, .delivered, .dead]) } }

    func grantPLMA(functions: [PLMAFunction], notifications: [NotificationType], to sp: OID = sp) throws {
        let plma = PLMA(mnoID: Self.mno, m2mSPID: sp, profileType: try String100(text: Self.profileType), authorisedFunctions: functions,
                        authorisedNotifications: notifications)
        let response = smsr.setPLMA(ES4A.SetPLMARequest(functionCallIdentifier: "plma-\(UUID().uuidString)", plma: plma), context: RequestContext(caller: Self.mno))
        #expect(response.functionExecutionStatus == .success)
    }

    /// Card 0 registered, B enabled (A disabled), B's POL2 "DISABLE → Auto-Delete", the M2M SP told
    /// of deletions: the next enable of A has B deleted by the platform. Returns the EID.
    func prepareAutoDelete() throws -> EID {
        try register(card: 0)
        let eid = eid(0)
        try grantPLMA(functions: [], notifications: [.profileDeleted])
        #expect(smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e1", eid: eid, iccid: Self.iccidB), context: RequestContext(caller: Self.mno))
            .functionExecutionStatus == .success)
        let rules = POL2(rules: [.init(action: .disable, qualification: .autoDelete)])
        #expect(smsr.updatePolicyRules(ES4.UpdatePolicyRulesRequest(functionCallIdentifier: "p", eid: eid, iccid: Self.iccidB, pol2: rules),
                                       context: RequestContext(caller: Self.mno)).functionExecutionStatus == .success)
        return eid
    }

    func cleanUp() { try? FileManager.default.removeItem(at: directory) }
}

extension FunctionExecutionStatus {
    var codes: String {
        guard let data = statusCodeData else { return status.rawValue }
        return "\(data.subject.rawValue)/\(data.reason.rawValue)"
    }
}
