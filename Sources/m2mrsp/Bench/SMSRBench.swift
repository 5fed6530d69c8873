// `m2mrsp bench smsr` (issue #6): the SM-SR's figures, each beside a baseline measured in the
// same run (docs/cli/bench.md, docs/smsr.md):
//
//   RegisterEIS ingest     batches of 1 000 through `registerEISBatch` (EUM certificate once per
//                          batch, CERT.ECASD.ECKA and the EIS signature per EIS on every core, keys
//                          sealed, slices of 100 written while the next are checked), best of 3
//                          rounds, beside raw SQLite inserts of the same rows — and beside its crypto
//                          floor: the 2 ECDSA verifications per EIS alone on every core, same rounds.
//                          Target ≥ 10 000 EIS/s.
//   GetEIS latency         p50/p99 of ES4.GetEIS by the owner (the whole pipeline: caller,
//                          idempotency row, read, filter, response row) with 1M EIS stored
//                          (50k with --quick), beside raw SQLite lookups of the same rows. The store
//                          is populated through the repository without signature checks (said so).
//                          Target p99 ≤ 2 ms.
//   EnableProfile          ES4.EnableProfile round trips, alternating A ↔ B on in-process cards
//                          (SCP80 both ways, Lua POL2 + ONC + routing, MO notification, GET STATUS,
//                          3A08, SQLite) beside the emulator alone answering the same APDUs.

import ArgumentParser
import CSQLite
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

struct SMSRBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smsr",
        abstract: "SM-SR: RegisterEIS ingest/s, GetEIS p50/p99 with 1M EIS stored, ES4.EnableProfile round trips/s, beside baselines.",
        discussion: "Build with -c release. --quick ingests 2 000 EIS and stores 50k for GetEIS (< 1 min). The database goes to a temporary directory, removed afterwards."
    )

    @Flag(help: "Print the figures as JSON.")
    var json = false

    @Flag(help: "Short run (2 000 EIS ingested, 50k stored).")
    var quick = false

    @Option(help: "EIS stored for the GetEIS figure (default 1000000, --quick 50000).")
    var stored: Int?

    @Option(help: "Measure only these figures (comma-separated): ingest, geteis, enable.")
    var only: String?

    @Option(help: "The plugins directory (default: the source tree's).")
    var plugins: String?

    @Option(help: "The policies directory (default: the source tree's).")
    var policies: String?

    func wants(_ figure: String) -> Bool { only.map { $0.split(separator: ",").contains(Substring(figure)) } ?? true }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let smsrID: OID = "1.3.6.1.4.1.99999.2.1"
    static let eumID: OID = "1.3.6.1.4.1.99999.1.1"
    static let mno: OID = "1.3.6.1.4.1.99999.4.1"

    func run() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("m2mrsp-bench-smsr-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pki = try TestPKI.generate(curve: .p256)
        var figures: [BenchFigure] = []
        if wants("ingest") { figures += try ingest(pki: pki, directory: directory) }
        if wants("geteis") { figures += try getEIS(pki: pki, directory: directory) }
        if wants("enable") { figures.append(try enable(pki: pki, directory: directory)) }
        try Bench.print(BenchReport(suite: "smsr", figures: figures), json: json)
    }

    func makeSMSR(pki: TestPKI, path: String, fleet: Fleet) throws -> (SMSR, SQLiteSMSRStore) {
        try Self.makeSMSR(pki: pki, path: path, fleet: fleet, plugins: plugins, policies: policies)
    }

    static func makeSMSR(pki: TestPKI, path: String, fleet: Fleet, plugins: String? = nil, policies: String? = nil, smsrID: OID = smsrID,
                         credentials: [GPCredential] = []) throws -> (SMSR, SQLiteSMSRStore) {
        let store = try SQLiteSMSRStore(path: path, codec: XMLDocumentCodec())
        var configuration = SMSRConfiguration(smsrID: smsrID, storageKey: SecureBytes(SecureRandom.bytes(32)))
        configuration.acceptClearISDRKeys = true
        configuration.credentials = credentials
        let loader = PolicyLoader(pluginPaths: [plugins ?? Self.root.appendingPathComponent("plugins").path])
        let set = try loader.loadSet(bundles: PolicyLoader.bundleDirectories(under: policies ?? Self.root.appendingPathComponent("policies").path))
        let engine = try PolicyEngine(set: set, decisionLog: NoDecisionLog())
        let smsr = try SMSR(configuration: configuration, trust: SMSRTrust(ci: pki.ci, eums: [Self.eumID: pki.eum]), store: store, policy: engine,
                            transport: InProcessTransport(fleet: fleet))
        for party in [Party(oid: Self.eumID, role: .eum), Party(oid: Self.mno, role: .mno)] { try smsr.register(party) }
        return (smsr, store)
    }

    static func progress(_ text: String) { FileHandle.standardError.write(Data("\(text)\n".utf8)) }

    // MARK: - Ingest

    func ingest(pki: TestPKI, directory: URL) throws -> [BenchFigure] {
        let count = quick ? 2_000 : 10_000
        let batch = 1_000
        let rounds = quick ? 1 : 3
        Self.progress("ingest: building \(count) EIS (each CERT.ECASD.ECKA and EIS signed by the test EUM)…")
        let fleet = try Fleet(seed: Array("bench smsr ingest".utf8), count: count, curve: .p256, ciPublicKey: pki.ci.publicKey,
                              eum: EUMIssuer(key: pki.eumKey, eumID: Self.eumID))
        let now = SystemClock().now()
        var requests: [ES1.RegisterEISRequest] = []
        // What the crypto floor verifies: per EIS, CERT.ECASD.ECKA's signed data and the EIS's canonical SignedInfo.
        var signatures: [(message: [UInt8], signature: ECDSASignature)] = []
        for index in 0..<count {
            let info = try fleet.eumSignedInfo(at: index, productionDate: now)
            let signature = try EISSignature.sign(info, with: pki.eumKey, keyName: "EUM-TEST-KEY")
            let eis = try fleet.eis(at: index, signedInfo: info, signature: signature, smsrID: Self.smsrID)
            requests.append(ES1.RegisterEISRequest(functionCallIdentifier: "ingest-\(index)", eis: eis))
            let certificate = try fleet.ecasdCertificate(at: index)
            signatures.append((certificate.signedData, try ECDSASignature(rawRepresentation: certificate.signature, curve: .p256)))
            signatures.append((EISSignature.canonicalSignedInfoOfSignature(signature),
                               try ECDSASignature(rawRepresentation: signature.signatureValue.bytes, curve: .p256)))
        }
        // Each round: a fresh SM-SR and database, the same requests; then the same rows raw; then the
        // floor. The best round of each counts (a burst of noise on the machine does not decide).
        var ours = 0.0, rawRate = 0.0, floor = 0.0
        let sealed = [UInt8](repeating: 0x5A, count: 48)
        for round in 0..<rounds {
            let (smsr, store) = try makeSMSR(pki: pki, path: directory.appendingPathComponent("ingest-\(round).sqlite").path, fleet: fleet)
            let start = DispatchTime.now().uptimeNanoseconds
            var refused = 0
            for offset in stride(from: 0, to: count, by: batch) {
                let answers = smsr.registerEISBatch(Array(requests[offset..<min(offset + batch, count)]), context: RequestContext(caller: Self.eumID))
                refused += answers.filter { $0.functionExecutionStatus != .success }.count
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            guard refused == 0 else { throw ValidationError("\(refused) EIS were refused in the ingest run") }
            ours = max(ours, Double(count) / seconds)
            // The baseline: the same stripped EIS documents and key rows, raw SQLite, same batches.
            let codec = XMLDocumentCodec()
            let documents = try store.read { tx in try requests.map { request -> [UInt8] in try codec.encode(try tx.eis(request.eis.eid)!.eis) } }
            store.database.close()
            let raw = try RawSQLite(path: directory.appendingPathComponent("raw-\(round).sqlite").path)
            try raw.execute("""
                CREATE TABLE eis(id INTEGER PRIMARY KEY, eid TEXT NOT NULL UNIQUE, eum_id TEXT NOT NULL, smsr_id TEXT NOT NULL, document BLOB NOT NULL,
                  version INTEGER NOT NULL DEFAULT 1, registered_at TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT;
                CREATE TABLE isdr_key(eis_id INTEGER NOT NULL, keyset_version INTEGER NOT NULL, key_index INTEGER NOT NULL, key_type INTEGER NOT NULL,
                  kcv BLOB NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY(eis_id, keyset_version, key_index)) STRICT;
                """)
            let rawStart = DispatchTime.now().uptimeNanoseconds
            for offset in stride(from: 0, to: count, by: batch) {
                try raw.execute("BEGIN IMMEDIATE")
                for index in offset..<min(offset + batch, count) {
                    let eid = requests[index].eis.eid.text
                    try raw.insert("INSERT INTO eis(eid, eum_id, smsr_id, document, registered_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                                   [.text(eid), .text(Self.eumID.text), .text(Self.smsrID.text), .blob(documents[index]), .text(now.text)])
                    let id = raw.lastInsertRowID
                    for (version, key) in [(1, 1), (1, 2), (0x40, 1)] {
                        try raw.insert("INSERT INTO isdr_key(eis_id, keyset_version, key_index, key_type, kcv, sealed) VALUES (?1, ?2, ?3, 136, ?4, ?5)",
                                       [.integer(id), .integer(Int64(version)), .integer(Int64(key)), .blob([1, 2, 3]), .blob(sealed)])
                    }
                }
                try raw.execute("COMMIT")
            }
            rawRate = max(rawRate, Double(count) / (Double(DispatchTime.now().uptimeNanoseconds - rawStart) / 1e9))
            // The floor: the two ECDSA verifications per EIS alone, on every core, with the EUM key's
            // table as the SM-SR uses it.
            let key = pki.eum.publicKey
            key.prepareForRepeatedVerification()
            let list = signatures
            let failures = Atomic<Int>(0)
            let floorStart = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: list.count) { index in
                if !key.isValidSignature(list[index].signature, for: list[index].message) { failures.add(1, ordering: .relaxed) }
            }
            floor = max(floor, Double(count) / (Double(DispatchTime.now().uptimeNanoseconds - floorStart) / 1e9))
            guard failures.load(ordering: .relaxed) == 0 else { throw ValidationError("a signature of the floor run does not verify") }
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let what = "\(count) EIS in batches of \(batch), best of \(rounds) (CERT.ECASD.ECKA + EIS signature verified, ISD-R keys sealed)"
        return [
            BenchFigure(name: "RegisterEIS ingest, \(what); baseline: raw SQLite insert of the same rows", value: ours, unit: "EIS/s",
                        baseline: rawRate, ratio: ours / rawRate, target: 0, meets: ours >= 10_000, absoluteTarget: "≥ 10000 EIS/s"),
            BenchFigure(name: "RegisterEIS ingest beside its crypto floor (baseline: the 2 ECDSA P-256 verifications per EIS alone, with the EUM key's table, on all \(cores) cores)",
                        value: ours, unit: "EIS/s", baseline: floor, ratio: ours / floor, target: 0, meets: true, absoluteTarget: nil),
        ]
    }

    // MARK: - GetEIS

    func getEIS(pki: TestPKI, directory: URL) throws -> [BenchFigure] {
        let count = stored ?? (quick ? 50_000 : 1_000_000)
        let fleet = try Fleet(seed: Array("bench smsr geteis".utf8), count: 1, curve: .p256, ciPublicKey: pki.ci.publicKey,
                              eum: EUMIssuer(key: pki.eumKey, eumID: Self.eumID))
        _ = fleet.withCard(at: 0) { card in
            card.manufacture(ISDP(aid: try! AID(text: "A0000005591010FFFFFFFF8900001000"), lifeCycle: .enabled, iccid: try! ICCID(withoutCheckDigit: "894450000000000012"),
                                  profileType: "M2M-3G-16K", fallBack: true, allocatedMemory: 20_000))
        }
        let info = try fleet.eumSignedInfo(at: 0, productionDate: SystemClock().now())
        let template = try fleet.eis(at: 0, signedInfo: info, signature: try EISSignature.sign(info, with: pki.eumKey), smsrID: Self.smsrID, mnoID: Self.mno)
        let path = directory.appendingPathComponent("geteis.sqlite").path
        let (smsr, store) = try makeSMSR(pki: pki, path: path, fleet: fleet)
        Self.progress("geteis: storing \(count) EIS through the repository (no signature checks: population only)…")
        var eids: [EID] = []
        eids.reserveCapacity(count)
        let now = SystemClock().now()
        let chunk = 10_000
        for offset in stride(from: 0, to: count, by: chunk) {
            try store.write { tx in
                for index in offset..<min(offset + chunk, count) {
                    let digits = String(index)
                    let eid = try EID(prefix30: "89049032" + String(repeating: "0", count: 22 - digits.count) + digits)
                    var eis = template
                    eis.eumSignedInfo.eid = eid
                    eis.profiles[0].iccid = try ICCID(withoutCheckDigit: "8944" + String(repeating: "0", count: 14 - digits.count) + digits)
                    try tx.insertEIS(eis, keys: [], scp80Counter: 0, now: now)
                    eids.append(eid)
                }
            }
            if offset % 200_000 == 0, offset > 0 { Self.progress("  \(offset) stored") }
        }
        var generator = SystemRandomNumberGenerator()
        let samples = quick ? 5_000 : 20_000
        var ours: [UInt64] = []
        ours.reserveCapacity(samples)
        for sample in 0..<samples {
            let eid = eids[Int.random(in: 0..<count, using: &generator)]
            let start = DispatchTime.now().uptimeNanoseconds
            let response = smsr.getEIS(ES4.GetEISRequest(functionCallIdentifier: "g-\(sample)", eid: eid), context: RequestContext(caller: Self.mno))
            ours.append(DispatchTime.now().uptimeNanoseconds - start)
            guard response.eis?.eid == eid else { throw ValidationError("GetEIS failed: \(response.functionExecutionStatus)") }
        }
        // Baseline: raw SQLite lookup of the same rows (EIS document + its profile documents).
        store.database.close()
        let raw = try RawSQLite(path: path)
        var baseline: [UInt64] = []
        baseline.reserveCapacity(samples)
        for _ in 0..<samples {
            let eid = eids[Int.random(in: 0..<count, using: &generator)]
            let start = DispatchTime.now().uptimeNanoseconds
            let rows = try raw.lookup(eid: eid.text)
            baseline.append(DispatchTime.now().uptimeNanoseconds - start)
            guard rows == 2 else { throw ValidationError("raw lookup found \(rows) rows") }
        }
        func percentile(_ values: [UInt64], _ p: Double) -> Double {
            let sorted = values.sorted()
            return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6
        }
        let label = count >= 1_000_000 ? "\(count / 1_000_000)M" : "\(count / 1000)k"
        let p50 = percentile(ours, 0.5), p99 = percentile(ours, 0.99)
        return [
            BenchFigure(name: "ES4.GetEIS p50 with \(label) EIS stored (baseline: raw SQLite lookup of the same rows)", value: p50, unit: "ms",
                        baseline: percentile(baseline, 0.5), ratio: percentile(baseline, 0.5) / p50, target: 0, meets: true, absoluteTarget: nil),
            BenchFigure(name: "ES4.GetEIS p99 with \(label) EIS stored (baseline: raw SQLite lookup of the same rows)", value: p99, unit: "ms",
                        baseline: percentile(baseline, 0.99), ratio: percentile(baseline, 0.99) / p99, target: 0, meets: p99 <= 2, absoluteTarget: "≤ 2 ms"),
        ]
    }

    // MARK: - EnableProfile

    func enable(pki: TestPKI, directory: URL) throws -> BenchFigure {
        let cards = quick ? 200 : 1_000
        let fleet = try Fleet(seed: Array("bench smsr enable".utf8), count: cards, curve: .p256, ciPublicKey: pki.ci.publicKey,
                              eum: EUMIssuer(key: pki.eumKey, eumID: Self.eumID))
        let a = try AID(text: "A0000005591010FFFFFFFF8900001000")
        let b = try AID(text: "A0000005591010FFFFFFFF8900001100")
        let (smsr, _) = try makeSMSR(pki: pki, path: directory.appendingPathComponent("enable.sqlite").path, fleet: fleet)
        var iccids: [(ICCID, ICCID)] = []
        var registrations: [ES1.RegisterEISRequest] = []
        for index in 0..<cards {
            let digits = String(index)
            let pad = String(repeating: "0", count: 13 - digits.count)
            let pair = (try ICCID(withoutCheckDigit: "8944" + pad + digits + "1"), try ICCID(withoutCheckDigit: "8944" + pad + digits + "2"))
            iccids.append(pair)
            _ = fleet.withCard(at: index) { card in
                card.manufacture(ISDP(aid: a, lifeCycle: .enabled, iccid: pair.0, profileType: "M2M-3G-16K", fallBack: true, allocatedMemory: 20_000))
                    && card.manufacture(ISDP(aid: b, lifeCycle: .disabled, iccid: pair.1, profileType: "M2M-3G-16K", allocatedMemory: 20_000))
            }
            let info = try fleet.eumSignedInfo(at: index, productionDate: SystemClock().now())
            let eis = try fleet.eis(at: index, signedInfo: info, signature: try EISSignature.sign(info, with: pki.eumKey), smsrID: Self.smsrID, mnoID: Self.mno)
            registrations.append(ES1.RegisterEISRequest(functionCallIdentifier: "r-\(index)", eis: eis))
        }
        guard smsr.registerEISBatch(registrations, context: RequestContext(caller: Self.eumID)).allSatisfy({ $0.functionExecutionStatus == .success }) else {
            throw ValidationError("registration failed")
        }
        let seconds = quick ? 1.0 : 3.0
        var round = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var done = 0
        while Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 < seconds {
            for index in 0..<cards {
                let target = round % 2 == 0 ? iccids[index].1 : iccids[index].0
                let response = smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: "e-\(round)-\(index)", eid: fleet.eid(at: index), iccid: target),
                                                  context: RequestContext(caller: Self.mno))
                guard response.functionExecutionStatus == .success else { throw ValidationError("enable failed: \(response.functionExecutionStatus)") }
                done += 1
                if Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 >= seconds { break }
            }
            round += 1
        }
        let ours = Double(done) / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        // Baseline: the emulator alone answering the same APDUs (enable, GET STATUS, 3A08) on the same cards.
        let status = CommandAPDU(cla: 0x80, ins: 0xF2, p1: 0x40, p2: 0x02, data: TLV(0x4F, []).encoded + TLV(0x5C, [0x4F, 0x9F, 0x70]).encoded, le: 0)
        var flip = 0
        var next = 0
        let emulator = Bench.rate(seconds: seconds / 2) {
            let index = next % cards
            next += 1
            if index == 0 { flip += 1 }
            let aid = flip % 2 == 0 ? a : b
            fleet.withCard(at: index) { card in
                _ = card.process(.storeData(p1: 0x88, data: DGI(0x3A03, TLV(0x4F, aid.bytes).encoded).encoded))
                _ = card.process(status)
                for notification in card.pendingNotifications {
                    _ = card.process(.storeData(p1: 0x89, data: DGI(0x3A08, TLV(0x4E, [UInt8(notification.sequenceNumber >> 8), UInt8(notification.sequenceNumber & 0xFF)]).encoded).encoded))
                }
            }
        }
        return BenchFigure(
            name: "ES4.EnableProfile round trips on \(cards) in-process cards (SCP80 both ways, Lua POL2/ONC/routing, MO + 3A08, SQLite; baseline: the emulator alone, same APDUs)",
            value: ours, unit: "enables/s", baseline: emulator, ratio: ours / emulator, target: 0, meets: true, absoluteTarget: nil)
    }
}

/// The raw SQLite C API, for the baselines.
final class RawSQLite {
    let db: OpaquePointer
    var statements: [String: OpaquePointer] = [:]

    init(path: String) throws {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK, let handle else {
            throw ValidationError("cannot open \(path)")
        }
        db = handle
        // The same settings as the SM-SR's store (WAL, synchronous=NORMAL, SQLite's page size).
        try execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(db)
    }

    func execute(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw ValidationError("SQLite: \(String(cString: sqlite3_errmsg(db)))") }
    }

    func statement(_ sql: String) throws -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK, let statement else { throw ValidationError("prepare: \(String(cString: sqlite3_errmsg(db)))") }
        statements[sql] = statement
        return statement
    }

    func insert(_ sql: String, _ values: [SQLiteValue]) throws {
        let s = try statement(sql)
        defer { sqlite3_reset(s) }
        for (i, value) in values.enumerated() {
            switch value {
            case .integer(let v): sqlite3_bind_int64(s, Int32(i + 1), v)
            case .text(let v): sqlite3_bind_text(s, Int32(i + 1), v, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
            case .blob(let v): _ = v.withUnsafeBytes { sqlite3_bind_blob(s, Int32(i + 1), $0.baseAddress, Int32(v.count), unsafeBitCast(-1, to: sqlite3_destructor_type.self)) }
            case .null: sqlite3_bind_null(s, Int32(i + 1))
            }
        }
        guard sqlite3_step(s) == SQLITE_DONE else { throw ValidationError("insert: \(String(cString: sqlite3_errmsg(db)))") }
    }

    var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(db) }

    /// The EIS document and its profile documents (what GetEIS reads); the number of rows read.
    func lookup(eid: String) throws -> Int {
        let s = try statement("SELECT id, document FROM eis WHERE eid = ?1")
        defer { sqlite3_reset(s) }
        sqlite3_bind_text(s, 1, eid, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        guard sqlite3_step(s) == SQLITE_ROW else { return 0 }
        let id = sqlite3_column_int64(s, 0)
        var bytes = Int(sqlite3_column_bytes(s, 1))
        let p = try statement("SELECT document FROM profile WHERE eis_id = ?1 ORDER BY position, id")
        defer { sqlite3_reset(p) }
        sqlite3_bind_int64(p, 1, id)
        var rows = 1
        while sqlite3_step(p) == SQLITE_ROW {
            bytes += Int(sqlite3_column_bytes(p, 0))
            rows += 1
        }
        precondition(bytes > 0)
        return rows
    }
}
