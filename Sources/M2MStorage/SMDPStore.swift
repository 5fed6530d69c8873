// The SM-DP's persistent state (issue #7; docs/storage.md, "SM-DP"): Profile Types with their
// template package (sealed by the role before it gets here), and the inventory — one row per ICCID
// of a type's pool, with its IMSI and its sealed Ki/OPc, moving available → reserved (an order took
// it) → installed, or released. ICCIDs are keyed by their digits (`8944…1` and `8944…1F` are one). A reservation takes the lowest available ICCID of the type
// in one write transaction, so two orders never get the same one. Version 2 adds the orders: the
// function-call record (idempotency), DownloadProfile state machines, the Profiles it downloaded, the
// ONCs set through it, its outbox (ES2 notifications, asynchronous responses) and decision records.

public import M2MCore
import Foundation

/// A Profile Type the SM-DP can download: its owner and its template (sealed).
public struct ProfileTypeRecord: Sendable, Hashable {
    public var name: String
    public var mno: OID
    public var sealedTemplate: [UInt8]
    /// SHA-256 of the template in clear (what was imported).
    public var templateDigest: [UInt8]

    public init(name: String, mno: OID, sealedTemplate: [UInt8], templateDigest: [UInt8]) {
        self.name = name
        self.mno = mno
        self.sealedTemplate = sealedTemplate
        self.templateDigest = templateDigest
    }
}

/// One ICCID of a Profile Type's pool.
public struct InventoryItem: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, CaseIterable {
        case available, reserved, installed, released
    }

    public var iccid: ICCID
    public var profileType: String
    public var imsi: IMSI?
    public var sealedKi: [UInt8]?
    public var sealedOPc: [UInt8]?
    public var state: State
    /// The eUICC an order reserved it for.
    public var eid: EID?
    /// The order (an ES2 FunctionCallIdentifier or an operator's reference).
    public var order: String?

    public init(iccid: ICCID, profileType: String, imsi: IMSI? = nil, sealedKi: [UInt8]? = nil, sealedOPc: [UInt8]? = nil, state: State = .available,
                eid: EID? = nil, order: String? = nil) {
        self.iccid = iccid
        self.profileType = profileType
        self.imsi = imsi
        self.sealedKi = sealedKi
        self.sealedOPc = sealedOPc
        self.state = state
        self.eid = eid
        self.order = order
    }
}

/// A DownloadProfile order being executed (its state machine is the role's, opaque here).
public struct DownloadRecord: Sendable, Hashable {
    public enum State: String, Sendable { case active, completed, failed }
    public var id: Int64
    public var functionCallID: Int64
    public var eid: EID
    public var iccid: ICCID
    public var state: State
    public var machine: [UInt8]

    public init(id: Int64, functionCallID: Int64, eid: EID, iccid: ICCID, state: State, machine: [UInt8]) {
        self.id = id
        self.functionCallID = functionCallID
        self.eid = eid
        self.iccid = iccid
        self.state = state
        self.machine = machine
    }
}

/// A Profile this SM-DP downloaded, as it last knew it: which Operator owns it, on which eUICC and
/// behind which SM-SR (relays and forwarded notifications are checked against it).
public struct SMDPProfileRecord: Sendable, Hashable {
    public var iccid: ICCID
    public var eid: EID
    public var mno: OID
    public var smsr: OID
    public var profileType: String?
    /// The last state the SM-SR reported: Disabled, Enabled or Deleted.
    public var state: String

    public init(iccid: ICCID, eid: EID, mno: OID, smsr: OID, profileType: String?, state: String) {
        self.iccid = iccid
        self.eid = eid
        self.mno = mno
        self.smsr = smsr
        self.profileType = profileType
        self.state = state
    }
}

public struct InventoryCount: Sendable, Hashable {
    public var profileType: String
    public var state: InventoryItem.State
    public var count: Int
}

public protocol SMDPReading {
    func party(_ oid: OID) throws(StorageError) -> Party?
    func profileType(_ name: String) throws(StorageError) -> ProfileTypeRecord?
    func profileTypes() throws(StorageError) -> [ProfileTypeRecord]
    func inventoryItem(_ iccid: ICCID) throws(StorageError) -> InventoryItem?
    func inventoryCounts() throws(StorageError) -> [InventoryCount]
    func inventoryItems(profileType: String, state: InventoryItem.State) throws(StorageError) -> [InventoryItem]
    func functionCall(caller: OID, identifier: String) throws(StorageError) -> FunctionCallRecord?
    func download(_ id: Int64) throws(StorageError) -> DownloadRecord?
    func activeDownloads() throws(StorageError) -> [DownloadRecord]
    func profile(_ iccid: ICCID) throws(StorageError) -> SMDPProfileRecord?
    func oncs(mno: OID, profileType: String?) throws(StorageError) -> [ONC]
    func outbox(states: [OutboxItem.State]) throws(StorageError) -> [OutboxItem]
    func dueOutbox(now: Timestamp, limit: Int) throws(StorageError) -> [OutboxItem]
}

public protocol SMDPWriting: SMDPReading, FunctionCallLedger {
    func upsertParty(_ party: Party) throws(StorageError)
    /// A new Profile Type, or a new template for an existing one (its pool stays).
    func upsertProfileType(_ record: ProfileTypeRecord, now: Timestamp) throws(StorageError)
    /// New pool entries (an ICCID or IMSI already known is a constraint error: nothing of the batch stays).
    func insertInventory(_ items: [InventoryItem], now: Timestamp) throws(StorageError)
    /// Takes the lowest available ICCID of the type for `eid`; nil when none is left.
    func reserveInventory(profileType: String, eid: EID, order: String, now: Timestamp) throws(StorageError) -> InventoryItem?
    /// Moves an ICCID from `from` (any state when nil) to `state`; a constraint error when it is not there.
    func setInventoryState(_ iccid: ICCID, _ state: InventoryItem.State, from: InventoryItem.State?, now: Timestamp) throws(StorageError)
    /// Takes this available ICCID for `eid` (an order naming its ICCID); nil when it is not available.
    func reserveInventory(iccid: ICCID, eid: EID, order: String, now: Timestamp) throws(StorageError) -> InventoryItem?
    func beginFunctionCall(caller: OID, identifier: String, function: String, digest: [UInt8], now: Timestamp) throws(StorageError) -> Int64
    /// Stores the call's response — once: a call already answered keeps its first answer.
    func completeFunctionCall(_ id: Int64, response: [UInt8], now: Timestamp) throws(StorageError)
    /// Forgets a call left unanswered (its outcome unknown) unless a download carries it on: the same
    /// request again runs again.
    func forgetFunctionCall(_ id: Int64) throws(StorageError)
    /// A new active download (one per eUICC and per ICCID at a time: else a constraint error).
    func insertDownload(functionCallID: Int64, eid: EID, iccid: ICCID, machine: [UInt8], now: Timestamp) throws(StorageError) -> Int64
    func updateDownload(_ id: Int64, state: DownloadRecord.State, machine: [UInt8], now: Timestamp) throws(StorageError)
    func upsertProfile(_ profile: SMDPProfileRecord, now: Timestamp) throws(StorageError)
    func upsertONC(_ onc: ONC, now: Timestamp) throws(StorageError)
    func appendOutbox(_ items: [NewOutboxItem], operationID: Int64?, now: Timestamp) throws(StorageError)
    func markDelivered(_ id: Int64, now: Timestamp) throws(StorageError)
    func reschedule(_ id: Int64, attempts: Int, at: Timestamp, error: String, dead: Bool) throws(StorageError)
    /// A policy decision (the summary as JSON, the input in the engine's binary form).
    func appendDecision(hook: String, record: [UInt8], input: [UInt8]?, downloadID: Int64?, functionCallID: Int64?, now: Timestamp) throws(StorageError)
}

public protocol SMDPStore: OutboxStore {
    func read<R>(_ body: (any SMDPReading) throws -> R) throws -> R
    func write<R>(_ body: (any SMDPWriting) throws -> R) throws -> R
}

extension SMDPStore {
    public func dueOutbox(now: Timestamp, limit: Int) throws -> [OutboxItem] { try read { try $0.dueOutbox(now: now, limit: limit) } }
    public func markDelivered(_ id: Int64, now: Timestamp) throws { try write { try $0.markDelivered(id, now: now) } }
    public func reschedule(_ id: Int64, attempts: Int, at: Timestamp, error: String, dead: Bool) throws {
        try write { try $0.reschedule(id, attempts: attempts, at: at, error: error, dead: dead) }
    }
}

public enum SMDPSchema {
    public static let migrations: [Migration] = [
        Migration(version: 1, name: "sm-dp-inventory", sql: """
            CREATE TABLE party(oid TEXT PRIMARY KEY, role TEXT NOT NULL CHECK(role IN ('MNO','M2MSP','SMDP','EUM','SMSR'))) STRICT;
            CREATE TABLE profile_type(name TEXT PRIMARY KEY, mno_id TEXT NOT NULL, template BLOB NOT NULL, template_digest BLOB NOT NULL,
              created_at TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT, WITHOUT ROWID;
            CREATE TABLE inventory(iccid TEXT PRIMARY KEY, profile_type TEXT NOT NULL REFERENCES profile_type(name), imsi TEXT UNIQUE,
              ki BLOB, opc BLOB, state TEXT NOT NULL CHECK(state IN ('available','reserved','installed','released')), eid TEXT,
              order_ref TEXT, updated_at TEXT NOT NULL) STRICT, WITHOUT ROWID;
            CREATE INDEX inventory_available ON inventory(profile_type, iccid) WHERE state = 'available';
            """),
        Migration(version: 2, name: "sm-dp-orders", sql: """
            CREATE TABLE function_call(id INTEGER PRIMARY KEY, caller TEXT NOT NULL, identifier TEXT NOT NULL, function TEXT NOT NULL,
              request_digest BLOB NOT NULL, state TEXT NOT NULL CHECK(state IN ('accepted','completed')), response BLOB,
              received_at TEXT NOT NULL, completed_at TEXT, UNIQUE(caller, identifier)) STRICT;
            CREATE TABLE download(id INTEGER PRIMARY KEY, function_call_id INTEGER NOT NULL REFERENCES function_call(id), eid TEXT NOT NULL,
              iccid TEXT NOT NULL, state TEXT NOT NULL CHECK(state IN ('active','completed','failed')), machine BLOB NOT NULL,
              created_at TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT;
            CREATE UNIQUE INDEX download_one_per_euicc ON download(eid) WHERE state = 'active';
            CREATE UNIQUE INDEX download_one_per_iccid ON download(iccid) WHERE state = 'active';
            CREATE TABLE profile(iccid TEXT PRIMARY KEY, eid TEXT NOT NULL, mno_id TEXT NOT NULL, smsr_id TEXT NOT NULL, profile_type TEXT,
              state TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT, WITHOUT ROWID;
            CREATE TABLE onc(mno_id TEXT NOT NULL, profile_type TEXT NOT NULL, document BLOB NOT NULL, updated_at TEXT NOT NULL,
              PRIMARY KEY(mno_id, profile_type)) STRICT, WITHOUT ROWID;
            CREATE TABLE outbox(id INTEGER PRIMARY KEY, message_type TEXT NOT NULL, via TEXT NOT NULL, recipient TEXT NOT NULL,
              recipient_role TEXT NOT NULL, smdp TEXT, body BLOB NOT NULL, retry_class TEXT NOT NULL,
              state TEXT NOT NULL CHECK(state IN ('pending','delivered','dead')), attempts INTEGER NOT NULL DEFAULT 0,
              next_attempt_at INTEGER NOT NULL, last_error TEXT, operation_id INTEGER REFERENCES download(id),
              created_at TEXT NOT NULL, delivered_at TEXT, relates_to TEXT) STRICT;
            CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE state = 'pending';
            CREATE TABLE decision(id INTEGER PRIMARY KEY, hook TEXT NOT NULL, record BLOB NOT NULL, input BLOB, download_id INTEGER,
              function_call_id INTEGER, created_at TEXT NOT NULL) STRICT;
            """),
    ]
}

/// The SM-DP store on one SQLite file.
public final class SQLiteSMDPStore: SMDPStore {
    public let database: SQLiteDatabase

    public init(path: String, configuration: SQLiteDatabase.Configuration = .init()) throws(StorageError) {
        database = try SQLiteDatabase(path: path, configuration: configuration, migrations: SMDPSchema.migrations)
    }

    public func read<R>(_ body: (any SMDPReading) throws -> R) throws -> R {
        try database.read { try body(SQLiteSMDPTransaction(connection: $0)) }
    }

    public func write<R>(_ body: (any SMDPWriting) throws -> R) throws -> R {
        try database.write { try body(SQLiteSMDPTransaction(connection: $0)) }
    }
}

struct SQLiteSMDPTransaction: SMDPWriting {
    let connection: SQLiteConnection

    static let itemColumns = "iccid, profile_type, imsi, ki, opc, state, eid, order_ref"

    func item(_ row: SQLiteRow) throws(StorageError) -> InventoryItem {
        guard let iccidText = row[0].string, let iccid = try? ICCID(text: iccidText), let type = row[1].string,
            let state = row[5].string.flatMap(InventoryItem.State.init(rawValue:))
        else { throw StorageError(.corrupt, "inventory row") }
        return InventoryItem(iccid: iccid, profileType: type, imsi: row[2].string.flatMap { try? IMSI(text: $0) }, sealedKi: row[3].isNull ? nil : row[3].bytes,
                             sealedOPc: row[4].isNull ? nil : row[4].bytes, state: state, eid: row[6].string.flatMap { try? EID(text: $0) },
                             order: row[7].string)
    }

    func party(_ oid: OID) throws(StorageError) -> Party? {
        guard let role = try connection.row("SELECT role FROM party WHERE oid = ?1", [.text(oid.text)])?[0].string.flatMap(Party.Role.init(rawValue:)) else {
            return nil
        }
        return Party(oid: oid, role: role)
    }

    func profileType(_ name: String) throws(StorageError) -> ProfileTypeRecord? {
        try connection.query("SELECT name, mno_id, template, template_digest FROM profile_type WHERE name = ?1", [.text(name)]).first.map {
            (row) throws(StorageError) in try record(row)
        }
    }

    func record(_ row: SQLiteRow) throws(StorageError) -> ProfileTypeRecord {
        guard let name = row[0].string, let mno = row[1].string.flatMap({ try? OID(text: $0) }), let template = row[2].bytes, let digest = row[3].bytes else {
            throw StorageError(.corrupt, "profile_type row")
        }
        return ProfileTypeRecord(name: name, mno: mno, sealedTemplate: template, templateDigest: digest)
    }

    func profileTypes() throws(StorageError) -> [ProfileTypeRecord] {
        try connection.query("SELECT name, mno_id, template, template_digest FROM profile_type ORDER BY name").map { (row) throws(StorageError) in try record(row) }
    }

    func inventoryItem(_ iccid: ICCID) throws(StorageError) -> InventoryItem? {
        try connection.query("SELECT \(Self.itemColumns) FROM inventory WHERE iccid = ?1", [.text(iccid.digits)]).first.map {
            (row) throws(StorageError) in try item(row)
        }
    }

    func inventoryCounts() throws(StorageError) -> [InventoryCount] {
        try connection.query("SELECT profile_type, state, count(*) FROM inventory GROUP BY profile_type, state ORDER BY profile_type, state").map {
            (row) throws(StorageError) in
            guard let type = row[0].string, let state = row[1].string.flatMap(InventoryItem.State.init(rawValue:)) else {
                throw StorageError(.corrupt, "inventory count")
            }
            return InventoryCount(profileType: type, state: state, count: row[2].int ?? 0)
        }
    }

    func inventoryItems(profileType: String, state: InventoryItem.State) throws(StorageError) -> [InventoryItem] {
        try connection.query("SELECT \(Self.itemColumns) FROM inventory WHERE profile_type = ?1 AND state = ?2 ORDER BY iccid",
                             [.text(profileType), .text(state.rawValue)]).map { (row) throws(StorageError) in try item(row) }
    }

    func upsertParty(_ party: Party) throws(StorageError) {
        try connection.run("INSERT INTO party(oid, role) VALUES (?1, ?2) ON CONFLICT(oid) DO UPDATE SET role = excluded.role",
                           [.text(party.oid.text), .text(party.role.rawValue)])
    }

    func upsertProfileType(_ record: ProfileTypeRecord, now: Timestamp) throws(StorageError) {
        try connection.run(
            """
            INSERT INTO profile_type(name, mno_id, template, template_digest, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)
            ON CONFLICT(name) DO UPDATE SET mno_id = excluded.mno_id, template = excluded.template, template_digest = excluded.template_digest,
              updated_at = excluded.updated_at
            """, [.text(record.name), .text(record.mno.text), .blob(record.sealedTemplate), .blob(record.templateDigest), .text(now.text)])
    }

    func insertInventory(_ items: [InventoryItem], now: Timestamp) throws(StorageError) {
        for item in items {
            try connection.run(
                "INSERT INTO inventory(\(Self.itemColumns), updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                [.text(item.iccid.digits), .text(item.profileType), SQLiteValue(item.imsi?.text), SQLiteValue(item.sealedKi), SQLiteValue(item.sealedOPc),
                 .text(item.state.rawValue), SQLiteValue(item.eid?.text), SQLiteValue(item.order), .text(now.text)])
        }
    }

    func reserveInventory(profileType: String, eid: EID, order: String, now: Timestamp) throws(StorageError) -> InventoryItem? {
        guard let row = try connection.row(
            "SELECT \(Self.itemColumns) FROM inventory WHERE profile_type = ?1 AND state = 'available' ORDER BY iccid LIMIT 1", [.text(profileType)])
        else { return nil }
        var taken = try item(row)
        try connection.run("UPDATE inventory SET state = 'reserved', eid = ?2, order_ref = ?3, updated_at = ?4 WHERE iccid = ?1 AND state = 'available'",
                           [.text(taken.iccid.text), .text(eid.text), .text(order), .text(now.text)])
        taken.state = .reserved
        taken.eid = eid
        taken.order = order
        return taken
    }

    func setInventoryState(_ iccid: ICCID, _ state: InventoryItem.State, from: InventoryItem.State?, now: Timestamp) throws(StorageError) {
        let changed = try connection.run("UPDATE inventory SET state = ?2, updated_at = ?3 WHERE iccid = ?1 AND (?4 IS NULL OR state = ?4)",
                                         [.text(iccid.digits), .text(state.rawValue), .text(now.text), SQLiteValue(from?.rawValue)])
        guard changed == 1 else { throw StorageError(.constraint, "no inventory ICCID \(iccid.text)\(from.map { " in state \($0.rawValue)" } ?? "")") }
    }

    func functionCall(caller: OID, identifier: String) throws(StorageError) -> FunctionCallRecord? {
        try FunctionCallSQL.find(connection, caller: caller, identifier: identifier)
    }

    func beginFunctionCall(caller: OID, identifier: String, function: String, digest: [UInt8], now: Timestamp) throws(StorageError) -> Int64 {
        try FunctionCallSQL.begin(connection, caller: caller, identifier: identifier, function: function, digest: digest, now: now)
    }

    func completeFunctionCall(_ id: Int64, response: [UInt8], now: Timestamp) throws(StorageError) {
        try FunctionCallSQL.complete(connection, id, response: response, now: now)
    }

    func forgetFunctionCall(_ id: Int64) throws(StorageError) {
        try connection.run(
            "DELETE FROM function_call WHERE id = ?1 AND state = 'accepted' AND NOT EXISTS (SELECT 1 FROM download WHERE function_call_id = ?1)",
            [.integer(id)])
    }

    func reserveInventory(iccid: ICCID, eid: EID, order: String, now: Timestamp) throws(StorageError) -> InventoryItem? {
        let changed = try connection.run(
            "UPDATE inventory SET state = 'reserved', eid = ?2, order_ref = ?3, updated_at = ?4 WHERE iccid = ?1 AND state = 'available'",
            [.text(iccid.digits), .text(eid.text), .text(order), .text(now.text)])
        return changed == 1 ? try inventoryItem(iccid) : nil
    }

    static let downloadColumns = "id, function_call_id, eid, iccid, state, machine"

    func downloadRecord(_ row: SQLiteRow) throws(StorageError) -> DownloadRecord {
        guard case .integer(let id) = row[0], case .integer(let call) = row[1], let eid = row[2].string.flatMap({ try? EID(text: $0) }),
            let iccid = row[3].string.flatMap({ try? ICCID(text: $0) }), let state = row[4].string.flatMap(DownloadRecord.State.init(rawValue:)),
            let machine = row[5].bytes
        else { throw StorageError(.corrupt, "download row") }
        return DownloadRecord(id: id, functionCallID: call, eid: eid, iccid: iccid, state: state, machine: machine)
    }

    func download(_ id: Int64) throws(StorageError) -> DownloadRecord? {
        try connection.row("SELECT \(Self.downloadColumns) FROM download WHERE id = ?1", [.integer(id)]).map { (row) throws(StorageError) in
            try downloadRecord(row)
        }
    }

    func activeDownloads() throws(StorageError) -> [DownloadRecord] {
        try connection.query("SELECT \(Self.downloadColumns) FROM download WHERE state = 'active' ORDER BY id").map { (row) throws(StorageError) in
            try downloadRecord(row)
        }
    }

    func insertDownload(functionCallID: Int64, eid: EID, iccid: ICCID, machine: [UInt8], now: Timestamp) throws(StorageError) -> Int64 {
        try connection.run(
            "INSERT INTO download(function_call_id, eid, iccid, state, machine, created_at, updated_at) VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?5)",
            [.integer(functionCallID), .text(eid.text), .text(iccid.digits), .blob(machine), .text(now.text)])
        return connection.lastInsertRowID
    }

    func updateDownload(_ id: Int64, state: DownloadRecord.State, machine: [UInt8], now: Timestamp) throws(StorageError) {
        try connection.run("UPDATE download SET state = ?2, machine = ?3, updated_at = ?4 WHERE id = ?1",
                           [.integer(id), .text(state.rawValue), .blob(machine), .text(now.text)])
    }

    func profile(_ iccid: ICCID) throws(StorageError) -> SMDPProfileRecord? {
        guard let row = try connection.row("SELECT eid, mno_id, smsr_id, profile_type, state FROM profile WHERE iccid = ?1", [.text(iccid.digits)]) else {
            return nil
        }
        guard let eid = row[0].string.flatMap({ try? EID(text: $0) }), let mno = row[1].string.flatMap({ try? OID(text: $0) }),
            let smsr = row[2].string.flatMap({ try? OID(text: $0) }), let state = row[4].string
        else { throw StorageError(.corrupt, "profile row") }
        return SMDPProfileRecord(iccid: iccid, eid: eid, mno: mno, smsr: smsr, profileType: row[3].string, state: state)
    }

    func upsertProfile(_ profile: SMDPProfileRecord, now: Timestamp) throws(StorageError) {
        try connection.run(
            """
            INSERT INTO profile(iccid, eid, mno_id, smsr_id, profile_type, state, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            ON CONFLICT(iccid) DO UPDATE SET eid = excluded.eid, mno_id = excluded.mno_id, smsr_id = excluded.smsr_id,
              profile_type = excluded.profile_type, state = excluded.state, updated_at = excluded.updated_at
            """,
            [.text(profile.iccid.digits), .text(profile.eid.text), .text(profile.mno.text), .text(profile.smsr.text), SQLiteValue(profile.profileType),
             .text(profile.state), .text(now.text)])
    }

    func oncs(mno: OID, profileType: String?) throws(StorageError) -> [ONC] {
        try connection.query("SELECT document FROM onc WHERE mno_id = ?1 AND (?2 IS NULL OR profile_type = ?2) ORDER BY profile_type",
                             [.text(mno.text), SQLiteValue(profileType)]).map { (row) throws(StorageError) in
            guard let bytes = row[0].bytes, let onc = try? JSONDecoder().decode(ONC.self, from: Data(bytes)) else { throw StorageError(.corrupt, "onc row") }
            return onc
        }
    }

    func upsertONC(_ onc: ONC, now: Timestamp) throws(StorageError) {
        guard let document = try? JSONEncoder().encode(onc) else { throw StorageError(.corrupt, "cannot encode an ONC") }
        try connection.run(
            """
            INSERT INTO onc(mno_id, profile_type, document, updated_at) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT(mno_id, profile_type) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at
            """, [.text(onc.mnoID.text), .text(onc.profileType.text), .blob(Array(document)), .text(now.text)])
    }

    func outbox(states: [OutboxItem.State]) throws(StorageError) -> [OutboxItem] { try OutboxSQL.all(connection, states: states) }
    func dueOutbox(now: Timestamp, limit: Int) throws(StorageError) -> [OutboxItem] { try OutboxSQL.due(connection, now: now, limit: limit) }
    func appendOutbox(_ items: [NewOutboxItem], operationID: Int64?, now: Timestamp) throws(StorageError) {
        try OutboxSQL.append(connection, items, operationID: operationID, now: now)
    }
    func markDelivered(_ id: Int64, now: Timestamp) throws(StorageError) { try OutboxSQL.markDelivered(connection, id, now: now) }
    func reschedule(_ id: Int64, attempts: Int, at: Timestamp, error: String, dead: Bool) throws(StorageError) {
        try OutboxSQL.reschedule(connection, id, attempts: attempts, at: at, error: error, dead: dead)
    }

    func appendDecision(hook: String, record: [UInt8], input: [UInt8]?, downloadID: Int64?, functionCallID: Int64?, now: Timestamp) throws(StorageError) {
        try DecisionSQL.append(connection, column: "download_id", hook: hook, record: record, input: input, operationID: downloadID,
                               functionCallID: functionCallID, now: now)
    }

}
