// An SM-DP in front of a whole SM-SR (SMSRHarness) in one process: its own SQLite file, the SM-SR
// reached through `InProcessES3` (optionally wrapped by a test endpoint that tampers or fails), a
// Profile Type per TS.48 fixture with an ICCID pool, and both outboxes delivered in process: the
// SM-SR's ES3 notifications to the SM-DP, everything addressed to an Operator or M2M SP recorded.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MPolicy
import M2MRoles
import M2MSOAP
import M2MStorage
import M2MTestKit
import Synchronization
import Testing

/// Records what reaches the Operators' and M2M SPs' endpoints.
final class Recorder: NotificationDelivery, @unchecked Sendable {
    let items = Mutex<[OutboxItem]>([])
    func deliver(_ item: OutboxItem) -> DeliveryResult {
        items.withLock { $0.append(item) }
        return .delivered
    }
    var all: [OutboxItem] { items.withLock { $0 } }
}

struct SMDPHarness {
    typealias H = SMSRHarness
    static let fixtureNames = ["TS48v5_SAIP2.1A_NoBERTLV", "TS48v2_SAIP2.1_BERTLV", "TS48v5_SAIP2.3_BERTLV_SUCI"]

    var sr: SMSRHarness
    var smdp: SMDP
    var store: SQLiteSMDPStore
    let storageKey = SecureBytes(SecureRandom.bytes(32))
    let recorder = Recorder()
    var configuration: SMDPConfiguration
    let wrap: (@Sendable (any ES3Endpoint) -> any ES3Endpoint)?
    var dbPath: String { sr.directory.appendingPathComponent("smdp.sqlite").path }

    static func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: H.repository.appendingPathComponent("Tests/M2MWireTests/Fixtures/profiles/\(name).der")))
    }

    static func pool(_ count: Int, series: Int) throws -> [PoolEntry] {
        try (0..<count).map { k in
            PoolEntry(iccid: try ICCID(withoutCheckDigit: String(format: "8944502%01d000000%05d", series, k)), imsi: try IMSI(text: String(format: "20801%01d000%06d", series, k)),
                      ki: SecureBytes(SecureRandom.bytes(16)), opc: SecureBytes(SecureRandom.bytes(16)))
        }
    }

    init(cards: Int = 3, curve: Curve = .p256, faults: SMDPFaults = SMDPFaults(), configure: (inout SMDPConfiguration) -> Void = { _ in },
         wrap: (@Sendable (any ES3Endpoint) -> any ES3Endpoint)? = nil) throws {
        sr = try SMSRHarness(cards: cards, curve: curve)
        var configuration = SMDPConfiguration(smdpID: H.smdp, storageKey: storageKey,
                                              credentials: [SMDPCredential(certificate: sr.pki.smdp.certificate!, key: sr.pki.smdp.key!)])
        configure(&configuration)
        self.configuration = configuration
        self.wrap = wrap
        store = try SQLiteSMDPStore(path: sr.directory.appendingPathComponent("smdp.sqlite").path)
        smdp = try Self.makeSMDP(store: store, sr: sr, configuration: configuration, faults: faults, wrap: wrap)
        for party in [Party(oid: H.mno, role: .mno), Party(oid: H.otherMNO, role: .mno)] { try smdp.register(party) }
        for (series, name) in Self.fixtureNames.enumerated() {
            try smdp.inventory.importProfileType(name, mno: H.mno, template: try Self.fixture(name), pool: try Self.pool(4, series: series))
        }
    }

    static func makeSMDP(store: SQLiteSMDPStore, sr: SMSRHarness, configuration: SMDPConfiguration, faults: SMDPFaults,
                         wrap: (@Sendable (any ES3Endpoint) -> any ES3Endpoint)?) throws -> SMDP {
        let loader = PolicyLoader(pluginPaths: [H.repository.appendingPathComponent("plugins").path])
        let set = try loader.loadSet(bundles: PolicyLoader.bundleDirectories(under: H.repository.appendingPathComponent("policies").path))
        let engine = try PolicyEngine(set: set, clock: sr.clock, decisionLog: NoDecisionLog())
        let direct = InProcessES3(smsr: sr.smsr, caller: H.smdp)
        return try SMDP(configuration: configuration, store: store, policy: engine, smsrs: [H.smsrID: wrap?(direct) ?? direct], clock: sr.clock, faults: faults)
    }

    /// A new SM-DP process on the same database (after a crash); the SM-SR keeps running.
    mutating func restartSMDP(faults: SMDPFaults = SMDPFaults()) throws {
        store.database.close()
        store = try SQLiteSMDPStore(path: dbPath)
        smdp = try Self.makeSMDP(store: store, sr: sr, configuration: configuration, faults: faults, wrap: wrap)
    }

    func download(card: Int, type: String = fixtureNames[0], iccid: ICCID? = nil, enable: Bool = false, fci: String? = nil, validity: Int? = nil,
                  caller: OID = H.mno) -> ES2.DownloadProfileResponse {
        smdp.downloadProfile(ES2.DownloadProfileRequest(functionCallIdentifier: fci ?? "order-\(card)-\(type)", validityPeriod: validity, eid: sr.eid(card),
                                                        smsrID: H.smsrID, profileType: iccid == nil ? type : nil, iccid: iccid, enableProfile: enable),
                             context: RequestContext(caller: caller))
    }

    /// Delivers both outboxes until nothing is due: the SM-SR's to the SM-DP (ES3) and to the
    /// recorder (ES4), then the SM-DP's ES2 rows to the recorder.
    func deliverAll() throws {
        let fromSMSR = OutboxDispatcher(store: sr.store, delivery: LocalNotificationDelivery(sender: H.smsrID, smdps: [H.smdp: smdp], direct: recorder),
                                        clock: sr.clock)
        let fromSMDP = OutboxDispatcher(store: store, delivery: recorder, clock: sr.clock)
        while try fromSMSR.runOnce() + fromSMDP.runOnce() > 0 {}
    }

    /// The ISD-Ps on the card holding `iccid`.
    func isdps(card: Int, iccid: ICCID) -> [ISDP] {
        sr.fleet.card(at: card).isdps.filter { $0.iccid?.digits == iccid.digits }
    }

    func inventoryState(_ iccid: ICCID) throws -> InventoryItem.State? { try store.read { try $0.inventoryItem(iccid) }?.state }

    func cleanUp() { sr.cleanUp() }
}

/// An ES3 endpoint that lets a test change requests and answers on their way.
struct TamperingES3: ES3Endpoint {
    let inner: any ES3Endpoint
    let answer: @Sendable (any SGP02Request, any SGP02Response) throws(ES3TransportError) -> any SGP02Response

    func call<Request: SGP02Request>(_ request: Request) throws(ES3TransportError) -> Request.Response {
        let response = try inner.call(request)
        return try answer(request, response) as? Request.Response ?? response
    }
}
