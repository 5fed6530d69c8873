// `m2mrsp bench download` (issue #7): end-to-end Profile downloads in one process — ES2
// DownloadProfile at the SM-DP (inventory reservation and personalisation, the persisted state
// machine in SQLite), ES3 to the SM-SR (idempotency rows, POL2 in Lua, the download lease, SQLite),
// ES5 to emulated eUICCs (SCP80 for CreateISDP and GET STATUS, the scripts in process), with real
// key establishment and SCP03t — beside the crypto floor of the same operations measured in the
// same run: per download, the SM-DP's and the card's key establishment (certificate and signature
// checks, ephemeral key, ECDH, X9.63, receipt) and the SCP03t stream of the same package both ways,
// through M2MCrypto alone. Both sides run on one thread; best of the rounds. Target ≥ 0.7 on P-256.

import ArgumentParser
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
import M2MWire
import Synchronization

struct DownloadBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download",
        abstract: "SM-DP → SM-SR → emulator: end-to-end DownloadProfile/s with SQLite, beside the crypto floor of the same operations.",
        discussion: "Build with -c release. --quick downloads 40 Profiles per round in 1 round (< 30 s). The databases go to a temporary directory, removed afterwards."
    )

    @Flag(help: "Print the figures as JSON.")
    var json = false

    @Flag(help: "Short run (40 downloads, 1 round).")
    var quick = false

    @Option(help: "Curve of the PKI and cards: p256 or brainpoolP256r1.")
    var curve: String = "p256"

    @Option(help: "Downloads per round (default 300, --quick 40).")
    var downloads: Int?

    @Option(help: "The profile package (default: the TS.48 v5 SAIP 2.1A fixture of the source tree).")
    var profile: String?

    @Flag(help: "Also print where a download's time goes: each ES3 function at the SM-SR, and the SM-DP's own share.")
    var breakdown = false

    static let root = SMSRBench.root
    static let smdpID: OID = "1.3.6.1.4.1.99999.3.1"

    func run() throws {
        guard let curve = Curve(argument: curve) else { throw ValidationError("--curve is p256 or brainpoolP256r1") }
        let count = downloads ?? (quick ? 40 : 300)
        let rounds = quick ? 1 : 3
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("m2mrsp-bench-download-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let template = Array(try Data(contentsOf: URL(fileURLWithPath: profile ?? Self.root.appendingPathComponent(
            "Tests/M2MWireTests/Fixtures/profiles/TS48v5_SAIP2.1A_NoBERTLV.der").path)))
        let pki = try TestPKI.generate(curve: curve)
        let total = count * rounds
        SMSRBench.progress("download: \(total) cards on \(curve), SM-SR and SM-DP on SQLite, \(total) ICCIDs imported…")
        let fleet = try Fleet(seed: Array("bench download".utf8), count: total, curve: curve, ciPublicKey: pki.ci.publicKey,
                              eum: EUMIssuer(key: pki.eumKey, eumID: SMSRBench.eumID))
        let (smsr, smsrStore) = try SMSRBench.makeSMSR(pki: pki, path: directory.appendingPathComponent("smsr.sqlite").path, fleet: fleet)
        try smsr.register(Party(oid: Self.smdpID, role: .smdp))
        let now = SystemClock().now()
        var registrations: [ES1.RegisterEISRequest] = []
        for index in 0..<total {
            let info = try fleet.eumSignedInfo(at: index, productionDate: now)
            let signature = try EISSignature.sign(info, with: pki.eumKey, keyName: "EUM-TEST-KEY")
            registrations.append(ES1.RegisterEISRequest(functionCallIdentifier: "reg-\(index)",
                                                        eis: try fleet.eis(at: index, signedInfo: info, signature: signature, smsrID: SMSRBench.smsrID)))
        }
        guard smsr.registerEISBatch(registrations, context: RequestContext(caller: SMSRBench.eumID)).allSatisfy({ $0.functionExecutionStatus == .success }) else {
            throw ValidationError("registration failed")
        }
        let timing = TimingES3(inner: InProcessES3(smsr: smsr, caller: Self.smdpID))
        let smdpStore = try SQLiteSMDPStore(path: directory.appendingPathComponent("smdp.sqlite").path)
        let loader = PolicyLoader(pluginPaths: [Self.root.appendingPathComponent("plugins").path])
        let set = try loader.loadSet(bundles: PolicyLoader.bundleDirectories(under: Self.root.appendingPathComponent("policies").path))
        let certificate = try requireValue(pki.smdp.certificate)
        let dpKey = try requireValue(pki.smdp.key)
        let smdp = try SMDP(
            configuration: SMDPConfiguration(smdpID: Self.smdpID, storageKey: SecureBytes(SecureRandom.bytes(32)),
                                             credentials: [SMDPCredential(certificate: certificate, key: dpKey)]),
            store: smdpStore, policy: try PolicyEngine(set: set, decisionLog: NoDecisionLog()),
            smsrs: [SMSRBench.smsrID: timing])
        try smdp.register(Party(oid: SMSRBench.mno, role: .mno))
        let pool = try (0..<total).map { k in
            PoolEntry(iccid: try ICCID(withoutCheckDigit: String(format: "8944503000%09d", k)), imsi: try IMSI(text: String(format: "20803%010d", k)),
                      ki: SecureBytes(SecureRandom.bytes(16)), opc: SecureBytes(SecureRandom.bytes(16)))
        }
        try smdp.inventory.importProfileType("BENCH", mno: SMSRBench.mno, template: template, pool: pool)

        // The floor's inputs: the same cards' ECASD keys, the same (personalised-size) package.
        let ecasd = try (0..<min(total, 64)).map { try fleet.identity(at: $0).ecasdKey() }
        func floorOnce(_ index: Int) throws {
            try DownloadFloor.once(ecasd: ecasd[index % ecasd.count], certificate: certificate, key: dpKey, ci: pki.ci.publicKey, package: template)
        }

        var ours = 0.0, floor = 0.0
        for round in 0..<rounds {
            SMSRBench.progress("download: round \(round + 1)/\(rounds), \(count) downloads…")
            let before = (smsrStore.database.transactionCounts, smdpStore.database.transactionCounts)
            let start = DispatchTime.now().uptimeNanoseconds
            for k in 0..<count {
                let index = round * count + k
                let response = smdp.downloadProfile(
                    ES2.DownloadProfileRequest(functionCallIdentifier: "bench-\(index)", eid: fleet.eid(at: index), smsrID: SMSRBench.smsrID, profileType: "BENCH",
                                               enableProfile: false), context: RequestContext(caller: SMSRBench.mno))
                guard response.functionExecutionStatus == .success else { throw ValidationError("download \(index): \(response.functionExecutionStatus)") }
            }
            let elapsed = DispatchTime.now().uptimeNanoseconds - start
            ours = max(ours, Double(count) / (Double(elapsed) / 1e9))
            if breakdown {
                let spent = timing.spent.withLock { $0 }
                timing.spent.withLock { $0 = [:] }
                let atSMSR = spent.values.reduce(0) { $0 + $1.nanoseconds }
                SMSRBench.progress(String(format: "  per download: %.0f µs in all; SM-DP's own %.0f µs", Double(elapsed) / Double(count) / 1e3,
                                          Double(elapsed - atSMSR) / Double(count) / 1e3))
                let after = (smsrStore.database.transactionCounts, smdpStore.database.transactionCounts)
                SMSRBench.progress(String(format: "  SQLite transactions per download: SM-SR %.1f writes, %.1f reads; SM-DP %.1f writes, %.1f reads",
                                          Double(after.0.writes - before.0.writes) / Double(count), Double(after.0.reads - before.0.reads) / Double(count),
                                          Double(after.1.writes - before.1.writes) / Double(count), Double(after.1.reads - before.1.reads) / Double(count)))
                for (name, entry) in spent.sorted(by: { $0.value.nanoseconds > $1.value.nanoseconds }) {
                    SMSRBench.progress(String(format: "  %@: %.0f µs per download (%d calls)", name, Double(entry.nanoseconds) / Double(count) / 1e3, entry.calls))
                }
            }
            var next = 0
            floor = max(floor, try Bench.rate(seconds: quick ? 1 : 3) {
                try floorOnce(next)
                next += 1
            })
        }
        // Every download really installed its Profile.
        for index in 0..<total where fleet.card(at: index).isdps.filter({ $0.lifeCycle == .disabled && $0.profileDigest != nil }).count != 1 {
            throw ValidationError("card \(index) holds no installed Profile")
        }
        let ratio = ours / floor
        let target = curve == .p256 ? 0.7 : 0.0
        let figure = BenchFigure(name: "DownloadProfile end to end, \(curve), \(template.count / 1000) KB TS.48 (SM-DP → SM-SR → eUICC, SQLite; floor: KE both sides + SCP03t both ways)",
                                 value: ours, unit: "downloads/s", baseline: floor, ratio: ratio, target: target, meets: target == 0 || ratio >= target)
        try Bench.print(BenchReport(suite: "download", figures: [figure]), json: json)
    }
}

/// The crypto floor of one download: the SM-DP's and the card's key establishment (certificate and
/// signature checks, ephemeral key, ECDH, X9.63, receipt) and the SCP03t stream of the package both
/// ways, through M2MCrypto alone (bench download, bench server).
enum DownloadFloor {
    static let aid = try! AID(text: "A0000005591010FFFFFFFF8900001000")

    static func once(ecasd key: ECPrivateKey, certificate: GPCertificate, key dpKey: ECPrivateKey, ci: ECPublicKey, package: [UInt8]) throws {
        var host = try KeyEstablishmentHost(certificate: certificate, signingKey: dpKey, ecasdPublicKey: key.publicKey)
        var card = KeyEstablishmentCard(ecasdKey: key, ciPublicKey: ci, expectedRole: .smdp)
        let challenge = try card.processCertificate(host.certificateData())
        let agreement = try host.keyAgreementData(cardResponse: challenge)
        let (receipt, cardKeys) = try card.processKeyAgreement(agreement)
        let hostKeys = try host.processReceipt(cardResponse: receipt)
        var channel = SCP03tHost(keys: hostKeys, aid: aid.bytes)
        var session = SCP03tCard(keys: cardKeys, aid: aid.bytes)
        var items = [channel.initializeUpdate(), try channel.precomputedExternalAuthenticate(sequenceCounter: 1)]
        for start in stride(from: 0, to: package.count, by: 1020) {
            items.append(try channel.segment(Array(package[start..<min(start + 1020, package.count)])))
        }
        var answers: [TLV] = []
        for item in items {
            if case .answer(let tlv) = session.process(item) { answers.append(tlv) }
        }
        let final = try session.answer(with: EUICCResponse.success.encoded)
        try channel.processInitializeUpdate(answers[0])
        try channel.processExternalAuthenticate(answers[1])
        guard try channel.processSegmentResponse(final) == EUICCResponse.success.encoded else { throw ValidationError("floor: the stream failed") }
    }
}

/// Times each ES3 function at the SM-SR (bench download --breakdown).
final class TimingES3: ES3Endpoint, @unchecked Sendable {
    let inner: any ES3Endpoint
    let spent = Mutex<[String: (nanoseconds: UInt64, calls: Int)]>([:])
    init(inner: any ES3Endpoint) { self.inner = inner }

    func call<Request: SGP02Request>(_ request: Request) throws(ES3TransportError) -> Request.Response {
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            let elapsed = DispatchTime.now().uptimeNanoseconds - start
            spent.withLock { $0[Request.descriptor.elementName, default: (0, 0)].nanoseconds += elapsed; $0[Request.descriptor.elementName, default: (0, 0)].calls += 1 }
        }
        return try inner.call(request)
    }
}

extension Curve {
    init?(argument: String) {
        switch argument.lowercased() {
        case "p256", "p-256", "nistp256": self = .p256
        case "brainpoolp256r1", "brainpool": self = .brainpoolP256r1
        default: return nil
        }
    }
}
