// The SM-DP's persistent state (issue #7; docs/storage.md, "SM-DP"): Profile Types with their
// template package (sealed by the role before it gets here), and the inventory — one row per ICCID
// of a type's pool, with its IMSI and its sealed Ki/OPc, moving available → reserved (an order took
// it) → installed, or released. ICCIDs are keyed by their digits (`8944…1` and `8944…1F` are one). A reservation takes the lowest available ICCID of the type
// in one write transaction, so two orders never get the same one.

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
}

public protocol SMDPWriting: SMDPReading {
    func upsertParty(_ party: Party) throws(StorageError)
    /// A new Profile Type, or a new template for an existing one (its pool stays).
    func upsertProfileType(_ record: ProfileTypeRecord, now: Timestamp) throws(StorageError)
    /// New pool entries (an ICCID or IMSI already known is a constraint error: nothing of the batch stays).
    func insertInventory(_ items: [InventoryItem], now: Timestamp) throws(StorageError)
    /// Takes the lowest available ICCID of the type for `eid`; nil when none is left.
    func reserveInventory(profileType: String, eid: EID, order: String, now: Timestamp) throws(StorageError) -> InventoryItem?
    /// Moves an ICCID from `from` (any state when nil) to `state`; a constraint error when it is not there.
    func setInventoryState(_ iccid: ICCID, _ state: InventoryItem.State, from: InventoryItem.State?, now: Timestamp) throws(StorageError)
}

public protocol SMDPStore: Sendable {
    func read<R>(_ body: (any SMDPReading) throws -> R) throws -> R
    func write<R>(_ body: (any SMDPWriting) throws -> R) throws -> R
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
}
