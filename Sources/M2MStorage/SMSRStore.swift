// The SM-SR's persistent state (issue #6; docs/storage.md): EIS, ISD-R key material kept apart and
// sealed by the caller, profiles (one enabled / one fall-back / one emergency per eUICC enforced by
// partial unique indexes), PLMA, ONC, the audit trail, function-call idempotency, pending
// operations with their state-machine state, the notification outbox, policy decision records,
// card notifications seen, and the SCP80 counter per eUICC.
//
// Roles use the repository protocols `SMSRReading` / `SMSRWriting` inside `SMSRStore.read` /
// `write`: one write body is one SQLite transaction, so an EIS change, its audit row, its decision
// records and its outbox rows commit together (or not at all). Documents (EIS, ProfileInfo, PLMA,
// ONC, audit records) are stored as sorted-key JSON beside the columns that are queried.

public import M2MCore
import Foundation
import Synchronization

// MARK: - Stored values

/// An EIS as stored: profiles assembled from their rows, ISD-R key values never included (they
/// live sealed in `isdr_key`).
public struct StoredEIS: Sendable, Hashable {
    public var eis: EIS
    /// Bumped on every change of the EIS or its profiles.
    public var version: Int
}

/// An ISD-R key, sealed by the caller (encrypt-then-MAC under the storage key); metadata in clear.
public struct SealedKey: Sendable, Hashable {
    public var keysetVersion: Int
    public var keyIndex: Int
    public var keyType: UInt8
    public var kcv: [UInt8]
    public var sealed: [UInt8]

    public init(keysetVersion: Int, keyIndex: Int, keyType: UInt8, kcv: [UInt8], sealed: [UInt8]) {
        self.keysetVersion = keysetVersion
        self.keyIndex = keyIndex
        self.keyType = keyType
        self.kcv = kcv
        self.sealed = sealed
    }
}

/// A function call seen, keyed by (caller, FunctionCallIdentifier).
public struct FunctionCallRecord: Sendable, Hashable {
    public enum State: String, Sendable { case accepted, completed }
    public var id: Int64
    public var caller: OID
    public var functionCallIdentifier: String
    public var function: String
    public var requestDigest: [UInt8]
    public var state: State
    /// The response as the role encoded it (opaque here).
    public var response: [UInt8]?
}

/// A pending operation on one eUICC (one active at a time per eUICC).
public struct OperationRecord: Sendable, Hashable {
    public enum State: String, Sendable { case active, completed, failed }
    public var id: Int64
    public var eid: EID
    public var kind: String
    public var iccid: ICCID?
    public var functionCallID: Int64?
    public var state: State
    /// The state machine, as the role encoded it.
    public var machine: [UInt8]
}

/// One side of an SM-SR change for one eUICC (docs/smsr-change.md): `outgoing` on the current SM-SR
/// (from ES4.SMSRChange until the EIS is handed over or the change failed), `incoming` on the new one
/// (from ES4.PrepareSMSRChange through ES7.HandoverEUICC). The machine is the role's (opaque here).
public struct SMSRChangeRecord: Sendable, Hashable {
    public enum Direction: String, Sendable, Hashable { case incoming, outgoing }
    public var eid: EID
    public var direction: Direction
    /// The other SM-SR.
    public var peer: OID
    public var state: String
    public var functionCallID: Int64?
    public var machine: [UInt8]

    public init(eid: EID, direction: Direction, peer: OID, state: String, functionCallID: Int64?, machine: [UInt8]) {
        self.eid = eid
        self.direction = direction
        self.peer = peer
        self.state = state
        self.functionCallID = functionCallID
        self.machine = machine
    }
}

/// A notification (or asynchronous response) waiting for delivery.
public struct OutboxItem: Sendable, Hashable {
    public enum State: String, Sendable { case pending, delivered, dead }
    public var id: Int64
    /// The message element, e.g. `ES4-HandleProfileEnabledNotification`.
    public var messageType: String
    /// `es2` (through the SM-DP) or `es4` (to the MNO / M2M SP directly).
    public var via: String
    public var recipient: OID
    public var recipientRole: String
    public var smdp: OID?
    public var body: [UInt8]
    public var retryClass: String
    public var state: State
    public var attempts: Int
    public var nextAttemptAt: Timestamp
    public var lastError: String?
    public var operationID: Int64?
    /// An asynchronous response: the FunctionCallIdentifier of the call it answers (the server maps
    /// it to the request's wsa:MessageID for RelatesTo).
    public var relatesTo: String?
}

/// A new outbox row.
public struct NewOutboxItem: Sendable, Hashable {
    public var messageType: String
    public var via: String
    public var recipient: OID
    public var recipientRole: String
    public var smdp: OID?
    public var body: [UInt8]
    public var retryClass: String
    public var relatesTo: String?

    public init(messageType: String, via: String, recipient: OID, recipientRole: String, smdp: OID?, body: [UInt8], retryClass: String,
                relatesTo: String? = nil) {
        self.relatesTo = relatesTo
        self.messageType = messageType
        self.via = via
        self.recipient = recipient
        self.recipientRole = recipientRole
        self.smdp = smdp
        self.body = body
        self.retryClass = retryClass
    }
}

/// A new eUICC's rows, encoded before the transaction that inserts them (`SMSRStore.prepare`,
/// callable on any thread): a batch of registrations encodes its documents on every core and its
/// write transaction holds only SQLite work.
public struct NewEIS: Sendable {
    public let eid: EID
    let eumID: OID
    let smsrID: OID
    /// The EIS document without profiles or audit trail.
    let document: [UInt8]
    let profiles: [(profile: ProfileInfo, document: [UInt8])]
    public let keys: [SealedKey]
    let scp80Counter: UInt64
    /// The registration's audit record, encoded.
    let audit: [UInt8]?
}

/// A registered party and its role.
public struct Party: Sendable, Hashable {
    public enum Role: String, Sendable, Hashable, CaseIterable { case mno = "MNO", m2mSP = "M2MSP", smdp = "SMDP", eum = "EUM", smsr = "SMSR" }
    public var oid: OID
    public var role: Role

    public init(oid: OID, role: Role) {
        self.oid = oid
        self.role = role
    }
}

// MARK: - Document codec

/// How EIS and ProfileInfo documents are stored. The default is sorted-key JSON; M2MRoles stores
/// the SGP.02 XML form instead (`XMLDocumentCodec`: ~10× faster than Foundation's JSON here, and
/// the form GSMA's schema describes).
public protocol SMSRDocumentCodec: Sendable {
    func encode(_ eis: EIS) throws -> [UInt8]
    func decodeEIS(_ bytes: [UInt8]) throws -> EIS
    func encode(_ profile: ProfileInfo) throws -> [UInt8]
    func decodeProfile(_ bytes: [UInt8]) throws -> ProfileInfo
    func encode(_ record: AuditTrailRecord) throws -> [UInt8]
    func decodeAuditRecord(_ bytes: [UInt8]) throws -> AuditTrailRecord
}

/// Sorted-key JSON documents.
public struct JSONDocumentCodec: SMSRDocumentCodec {
    public init() {}

    func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    public func encode(_ eis: EIS) throws -> [UInt8] { Array(try encoder().encode(eis)) }
    public func decodeEIS(_ bytes: [UInt8]) throws -> EIS { try JSONDecoder().decode(EIS.self, from: Data(bytes)) }
    public func encode(_ record: AuditTrailRecord) throws -> [UInt8] { Array(try encoder().encode(record)) }
    public func decodeAuditRecord(_ bytes: [UInt8]) throws -> AuditTrailRecord { try JSONDecoder().decode(AuditTrailRecord.self, from: Data(bytes)) }
    public func encode(_ profile: ProfileInfo) throws -> [UInt8] { Array(try encoder().encode(profile)) }
    public func decodeProfile(_ bytes: [UInt8]) throws -> ProfileInfo { try JSONDecoder().decode(ProfileInfo.self, from: Data(bytes)) }
}

// MARK: - Repository protocols

public protocol SMSRReading {
    func party(_ oid: OID) throws(StorageError) -> Party?
    func eis(_ eid: EID) throws(StorageError) -> StoredEIS?
    func eisCount() throws(StorageError) -> Int
    func profileLocation(_ iccid: ICCID) throws(StorageError) -> EID?
    func isdrKeys(_ eid: EID) throws(StorageError) -> [SealedKey]
    func scp80Counter(_ eid: EID) throws(StorageError) -> UInt64?
    func plmas(mno: OID?, m2mSP: OID?, profileType: String?) throws(StorageError) -> [PLMA]
    func oncs(mno: OID, profileType: String?) throws(StorageError) -> [ONC]
    func auditTrail(_ eid: EID) throws(StorageError) -> [AuditTrailRecord]
    func functionCall(caller: OID, identifier: String) throws(StorageError) -> FunctionCallRecord?
    func activeOperations() throws(StorageError) -> [OperationRecord]
    func activeOperation(_ eid: EID) throws(StorageError) -> OperationRecord?
    func outbox(states: [OutboxItem.State]) throws(StorageError) -> [OutboxItem]
    func dueOutbox(now: Timestamp, limit: Int) throws(StorageError) -> [OutboxItem]
    func decisionCount(functionCallID: Int64?) throws(StorageError) -> Int
    func cardNotificationSeen(_ eid: EID, sequence: Int) throws(StorageError) -> Bool
    /// Whether the SM-DP holds at least one Profile of the Operator (it acts for that Operator).
    func smdpServes(_ smdp: OID, mno: OID) throws(StorageError) -> Bool
    /// The download holding the eUICC, if any (expired or not: the caller compares `until`).
    func downloadLease(_ eid: EID) throws(StorageError) -> DownloadLease?
    /// One side of an SM-SR change of `eid`.
    func smsrChange(_ eid: EID, direction: SMSRChangeRecord.Direction) throws(StorageError) -> SMSRChangeRecord?
    /// The SM-SR changes not finished (state other than completed or failed).
    func openSMSRChanges() throws(StorageError) -> [SMSRChangeRecord]
}

/// A download in progress on an eUICC.
public struct DownloadLease: Sendable, Hashable {
    public var smdp: OID
    public var iccid: ICCID
    /// Seconds since the epoch.
    public var until: Int64

    public init(smdp: OID, iccid: ICCID, until: Int64) {
        self.smdp = smdp
        self.iccid = iccid
        self.until = until
    }
}

public protocol SMSRWriting: SMSRReading, FunctionCallLedger {
    func upsertParty(_ party: Party) throws(StorageError)
    /// A new EIS (profiles included, key values stripped by the caller) and its sealed ISD-R keys.
    func insertEIS(_ eis: EIS, keys: [SealedKey], scp80Counter: UInt64, now: Timestamp) throws(StorageError)
    /// A new EIS prepared by `SMSRStore.prepare` (with its audit record when it has one).
    func insertEIS(_ new: NewEIS, now: Timestamp) throws(StorageError)
    /// Replaces the EIS document and its profiles (a whole-EIS update, as a role computes it).
    func updateEIS(_ eis: EIS, now: Timestamp) throws(StorageError)
    func setSCP80Counter(_ eid: EID, _ counter: UInt64) throws(StorageError)
    func appendAudit(_ record: AuditTrailRecord, now: Timestamp) throws(StorageError)
    func upsertPLMA(_ plma: PLMA, now: Timestamp) throws(StorageError)
    func deletePLMA(mno: OID, m2mSP: OID, profileType: String) throws(StorageError)
    func upsertONC(_ onc: ONC, now: Timestamp) throws(StorageError)
    func deleteONC(mno: OID, profileType: String) throws(StorageError)
    func beginFunctionCall(caller: OID, identifier: String, function: String, digest: [UInt8], now: Timestamp) throws(StorageError) -> Int64
    /// Stores the call's response — once: a call already answered keeps its first answer.
    func completeFunctionCall(_ id: Int64, response: [UInt8], now: Timestamp) throws(StorageError)
    /// A call answered within the transaction that received it (begin and complete in one row).
    func recordFunctionCall(caller: OID, identifier: String, function: String, digest: [UInt8], response: [UInt8], now: Timestamp)
        throws(StorageError)
    func insertOperation(eid: EID, kind: String, iccid: ICCID?, functionCallID: Int64?, machine: [UInt8], now: Timestamp) throws(StorageError) -> Int64
    func updateOperation(_ id: Int64, state: OperationRecord.State, machine: [UInt8], now: Timestamp) throws(StorageError)
    func appendOutbox(_ items: [NewOutboxItem], operationID: Int64?, now: Timestamp) throws(StorageError)
    func markDelivered(_ id: Int64, now: Timestamp) throws(StorageError)
    func reschedule(_ id: Int64, attempts: Int, at: Timestamp, error: String, dead: Bool) throws(StorageError)
    /// A policy decision: `record` the summary (JSON), `input` the policy input in the engine's binary form.
    func appendDecision(hook: String, record: [UInt8], input: [UInt8]?, operationID: Int64?, functionCallID: Int64?, now: Timestamp) throws(StorageError)
    func recordCardNotification(_ eid: EID, sequence: Int, type: Int, aid: [UInt8], now: Timestamp) throws(StorageError)
    /// Drops the record of a notification the card confirmed receiving (3A08).
    func forgetCardNotification(_ eid: EID, sequence: Int) throws(StorageError)
    /// Takes or renews the eUICC's download lease; nil releases it.
    func setDownloadLease(_ eid: EID, _ lease: DownloadLease?) throws(StorageError)
    /// Writes one side of an SM-SR change (insert or replace).
    func putSMSRChange(_ record: SMSRChangeRecord, now: Timestamp) throws(StorageError)
    /// Removes the eUICC and everything kept for it (keys, Profiles, counters, operations, audit
    /// trail), after its EIS went to a new SM-SR; outbox rows and decisions stay.
    func deleteEIS(_ eid: EID) throws(StorageError)
    /// Forgets the calls left unanswered without an operation to finish them (a restart killed them
    /// mid-way): their retry runs again. Returns how many.
    func forgetUnansweredCalls() throws(StorageError) -> Int
}

/// The SM-SR's store: reads on a snapshot, writes in one transaction each.
public protocol SMSRStore: OutboxStore {
    func read<R>(_ body: (any SMSRReading) throws -> R) throws -> R
    func write<R>(_ body: (any SMSRWriting) throws -> R) throws -> R
    /// Encodes a new eUICC's rows for `SMSRWriting.insertEIS(_:now:)` (no database access).
    func prepare(_ eis: EIS, keys: [SealedKey], scp80Counter: UInt64, audit: AuditTrailRecord?) throws(StorageError) -> NewEIS
}

extension SMSRStore {
    public func dueOutbox(now: Timestamp, limit: Int) throws -> [OutboxItem] { try read { try $0.dueOutbox(now: now, limit: limit) } }
    public func markDelivered(_ id: Int64, now: Timestamp) throws { try write { try $0.markDelivered(id, now: now) } }
    public func reschedule(_ id: Int64, attempts: Int, at: Timestamp, error: String, dead: Bool) throws {
        try write { try $0.reschedule(id, attempts: attempts, at: at, error: error, dead: dead) }
    }
}

// MARK: - Schema

public enum SMSRSchema {
    public static let migrations: [Migration] = [
        Migration(version: 1, name: "sm-sr", sql: """
            CREATE TABLE party(oid TEXT PRIMARY KEY, role TEXT NOT NULL CHECK(role IN ('MNO','M2MSP','SMDP','EUM','SMSR'))) STRICT;
            CREATE TABLE eis(
              id INTEGER PRIMARY KEY, eid TEXT NOT NULL UNIQUE, eum_id TEXT NOT NULL, smsr_id TEXT NOT NULL,
              document BLOB NOT NULL, version INTEGER NOT NULL DEFAULT 1, registered_at TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT;
            CREATE TABLE isdr_key(
              eis_id INTEGER NOT NULL REFERENCES eis(id) ON DELETE CASCADE, keyset_version INTEGER NOT NULL, key_index INTEGER NOT NULL,
              key_type INTEGER NOT NULL, kcv BLOB NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY(eis_id, keyset_version, key_index)) STRICT;
            CREATE TABLE scp80_state(eis_id INTEGER PRIMARY KEY REFERENCES eis(id) ON DELETE CASCADE, counter INTEGER NOT NULL) STRICT;
            CREATE TABLE profile(
              id INTEGER PRIMARY KEY, eis_id INTEGER NOT NULL REFERENCES eis(id) ON DELETE CASCADE, iccid TEXT NOT NULL UNIQUE,
              isdp_aid TEXT NOT NULL, mno_id TEXT NOT NULL, smdp_id TEXT, profile_type TEXT,
              state TEXT NOT NULL CHECK(state IN ('Created','Disabled','Enabled')),
              fallback INTEGER NOT NULL, emergency INTEGER NOT NULL, position INTEGER NOT NULL, document BLOB NOT NULL,
              UNIQUE(eis_id, isdp_aid)) STRICT;
            CREATE INDEX profile_by_eis ON profile(eis_id);
            CREATE INDEX profile_by_owner ON profile(mno_id, profile_type);
            CREATE INDEX profile_by_smdp ON profile(smdp_id, mno_id);
            CREATE UNIQUE INDEX profile_one_enabled ON profile(eis_id) WHERE state = 'Enabled';
            CREATE UNIQUE INDEX profile_one_fallback ON profile(eis_id) WHERE fallback = 1;
            CREATE UNIQUE INDEX profile_one_emergency ON profile(eis_id) WHERE emergency = 1;
            CREATE TABLE audit_trail(id INTEGER PRIMARY KEY, eis_id INTEGER NOT NULL REFERENCES eis(id) ON DELETE CASCADE,
              record BLOB NOT NULL, created_at TEXT NOT NULL) STRICT;
            CREATE INDEX audit_by_eis ON audit_trail(eis_id, id);
            CREATE TABLE plma(mno_id TEXT NOT NULL, m2msp_id TEXT NOT NULL, profile_type TEXT NOT NULL, document BLOB NOT NULL,
              updated_at TEXT NOT NULL, PRIMARY KEY(mno_id, m2msp_id, profile_type)) STRICT, WITHOUT ROWID;
            CREATE INDEX plma_by_sp ON plma(m2msp_id);
            CREATE TABLE onc(mno_id TEXT NOT NULL, profile_type TEXT NOT NULL, document BLOB NOT NULL, updated_at TEXT NOT NULL,
              PRIMARY KEY(mno_id, profile_type)) STRICT, WITHOUT ROWID;
            CREATE TABLE function_call(id INTEGER PRIMARY KEY, caller TEXT NOT NULL, identifier TEXT NOT NULL, function TEXT NOT NULL,
              request_digest BLOB NOT NULL, state TEXT NOT NULL CHECK(state IN ('accepted','completed')), response BLOB,
              received_at TEXT NOT NULL, completed_at TEXT, UNIQUE(caller, identifier)) STRICT;
            CREATE TABLE operation(id INTEGER PRIMARY KEY, eis_id INTEGER NOT NULL REFERENCES eis(id), kind TEXT NOT NULL, iccid TEXT,
              function_call_id INTEGER REFERENCES function_call(id), state TEXT NOT NULL CHECK(state IN ('active','completed','failed')),
              machine BLOB NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT;
            CREATE UNIQUE INDEX operation_one_active ON operation(eis_id) WHERE state = 'active';
            CREATE TABLE outbox(id INTEGER PRIMARY KEY, message_type TEXT NOT NULL, via TEXT NOT NULL, recipient TEXT NOT NULL,
              recipient_role TEXT NOT NULL, smdp TEXT, body BLOB NOT NULL, retry_class TEXT NOT NULL,
              state TEXT NOT NULL CHECK(state IN ('pending','delivered','dead')), attempts INTEGER NOT NULL DEFAULT 0,
              next_attempt_at INTEGER NOT NULL, last_error TEXT, operation_id INTEGER REFERENCES operation(id),
              created_at TEXT NOT NULL, delivered_at TEXT) STRICT;
            CREATE INDEX outbox_due ON outbox(next_attempt_at) WHERE state = 'pending';
            CREATE TABLE decision(id INTEGER PRIMARY KEY, hook TEXT NOT NULL, record BLOB NOT NULL, input BLOB, operation_id INTEGER,
              function_call_id INTEGER, created_at TEXT NOT NULL) STRICT;
            CREATE INDEX decision_by_call ON decision(function_call_id);
            CREATE TABLE card_notification(eis_id INTEGER NOT NULL REFERENCES eis(id) ON DELETE CASCADE, sequence INTEGER NOT NULL,
              type INTEGER NOT NULL, aid BLOB NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY(eis_id, sequence)) STRICT;
            """),
        // A download in progress holds its eUICC (CreateISDP … ProfileDownloadCompleted), renewed by
        // each SendData, released at the end or when it expires.
        Migration(version: 2, name: "download-lease", sql: """
            CREATE TABLE download_lease(eis_id INTEGER PRIMARY KEY REFERENCES eis(id) ON DELETE CASCADE, smdp TEXT NOT NULL,
              iccid TEXT NOT NULL, until INTEGER NOT NULL) STRICT;
            """),
        // Lookups recovery and audits make: an operation by its call, decisions by operation.
        Migration(version: 3, name: "operation-indexes", sql: """
            CREATE INDEX operation_by_call ON operation(function_call_id);
            CREATE INDEX decision_by_operation ON decision(operation_id);
            """),
        // Asynchronous responses in the outbox name the call they answer.
        Migration(version: 4, name: "outbox-relates-to", sql: """
            ALTER TABLE outbox ADD COLUMN relates_to TEXT;
            """),
        // SM-SR change (ES4.PrepareSMSRChange/SMSRChange, ES7): one row per eUICC and direction.
        Migration(version: 5, name: "smsr-change", sql: """
            CREATE TABLE smsr_change(eid TEXT NOT NULL, direction TEXT NOT NULL CHECK(direction IN ('incoming','outgoing')),
              peer TEXT NOT NULL, state TEXT NOT NULL, function_call_id INTEGER, machine BLOB NOT NULL,
              created_at TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY(eid, direction)) STRICT, WITHOUT ROWID;
            """),
    ]
}

// MARK: - SQLite implementation

/// The SM-SR store on one SQLite file.
public final class SQLiteSMSRStore: SMSRStore {
    public let database: SQLiteDatabase
    public let codec: any SMSRDocumentCodec
    /// The last documents decoded, by their bytes: every function reads its eUICC's EIS, and a
    /// download or an enable reads the same one several times (docs/storage.md).
    let memo = DocumentMemo(capacity: 4096)

    public init(path: String, configuration: SQLiteDatabase.Configuration = .init(), codec: any SMSRDocumentCodec = JSONDocumentCodec()) throws(StorageError) {
        database = try SQLiteDatabase(path: path, configuration: configuration, migrations: SMSRSchema.migrations)
        self.codec = codec
    }

    public func read<R>(_ body: (any SMSRReading) throws -> R) throws -> R {
        try database.read { try body(SQLiteSMSRTransaction(connection: $0, codec: codec, memo: memo)) }
    }

    public func write<R>(_ body: (any SMSRWriting) throws -> R) throws -> R {
        try database.write { try body(SQLiteSMSRTransaction(connection: $0, codec: codec, memo: memo)) }
    }

    public func prepare(_ eis: EIS, keys: [SealedKey], scp80Counter: UInt64, audit: AuditTrailRecord?) throws(StorageError) -> NewEIS {
        try SQLiteSMSRTransaction.prepare(eis, keys: keys, scp80Counter: scp80Counter, audit: audit, codec: codec)
    }
}

struct SQLiteSMSRTransaction: SMSRWriting {
    let connection: SQLiteConnection
    let codec: any SMSRDocumentCodec
    var memo: DocumentMemo? = nil

    func encodeEIS(_ eis: EIS) throws(StorageError) -> [UInt8] {
        do { return try codec.encode(eis) } catch { throw StorageError(.corrupt, "cannot encode an EIS document") }
    }

    func encodeProfile(_ profile: ProfileInfo) throws(StorageError) -> [UInt8] {
        do { return try codec.encode(profile) } catch { throw StorageError(.corrupt, "cannot encode a Profile document") }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    func encode(_ value: some Encodable) throws(StorageError) -> [UInt8] {
        do { return Array(try Self.encoder.encode(value)) } catch { throw StorageError(.corrupt, "cannot encode \(type(of: value))") }
    }

    func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]?) throws(StorageError) -> T {
        guard let bytes else { throw StorageError(.corrupt, "missing \(T.self) document") }
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch { throw StorageError(.corrupt, "\(T.self) document does not decode") }
    }

    func eisID(_ eid: EID) throws(StorageError) -> Int64? {
        guard case .integer(let id) = try connection.row("SELECT id FROM eis WHERE eid = ?1", [.text(eid.text)])?[0] else { return nil }
        return id
    }

    func requireEISID(_ eid: EID) throws(StorageError) -> Int64 {
        guard let id = try eisID(eid) else { throw StorageError(.constraint, "no EIS \(eid.text)") }
        return id
    }

    // MARK: Reading

    func party(_ oid: OID) throws(StorageError) -> Party? {
        guard let row = try connection.row("SELECT role FROM party WHERE oid = ?1", [.text(oid.text)]) else { return nil }
        guard let role = row[0].string.flatMap(Party.Role.init(rawValue:)) else { throw StorageError(.corrupt, "party role") }
        return Party(oid: oid, role: role)
    }

    func eis(_ eid: EID) throws(StorageError) -> StoredEIS? {
        guard let row = try connection.row("SELECT id, document, version FROM eis WHERE eid = ?1", [.text(eid.text)]),
            case .integer(let id) = row[0]
        else { return nil }
        var eis: EIS
        do {
            let bytes = row[1].bytes ?? []
            eis = try memo?.eis(bytes, codec.decodeEIS) ?? codec.decodeEIS(bytes)
        } catch { throw StorageError(.corrupt, "EIS document of \(eid.text) does not decode") }
        // The emergency attribute is a column too: SGP.02's XML carries it at EIS level, not in ProfileInfo.
        eis.profiles = try connection.query("SELECT document, emergency FROM profile WHERE eis_id = ?1 ORDER BY position, id", [.integer(id)])
            .map { (row) throws(StorageError) in
                var profile: ProfileInfo
                do {
                    let bytes = row[0].bytes ?? []
                    profile = try memo?.profile(bytes, codec.decodeProfile) ?? codec.decodeProfile(bytes)
                } catch { throw StorageError(.corrupt, "Profile document does not decode") }
                profile.emergencyProfileAttribute = row[1].int == 1
                return profile
            }
        return StoredEIS(eis: eis, version: row[2].int ?? 0)
    }

    func eisCount() throws(StorageError) -> Int { try connection.row("SELECT count(*) FROM eis")?[0].int ?? 0 }

    func profileLocation(_ iccid: ICCID) throws(StorageError) -> EID? {
        guard let text = try connection.row("SELECT eis.eid FROM profile JOIN eis ON eis.id = profile.eis_id WHERE profile.iccid = ?1",
                                            [.text(iccid.text)])?[0].string
        else { return nil }
        do { return try EID(text: text) } catch { throw StorageError(.corrupt, "stored EID") }
    }

    func isdrKeys(_ eid: EID) throws(StorageError) -> [SealedKey] {
        guard let id = try eisID(eid) else { return [] }
        return try connection.query(
            "SELECT keyset_version, key_index, key_type, kcv, sealed FROM isdr_key WHERE eis_id = ?1 ORDER BY keyset_version, key_index",
            [.integer(id)]
        ).map { row in
            SealedKey(keysetVersion: row[0].int ?? 0, keyIndex: row[1].int ?? 0, keyType: UInt8(truncatingIfNeeded: row[2].int ?? 0),
                      kcv: row[3].bytes ?? [], sealed: row[4].bytes ?? [])
        }
    }

    func scp80Counter(_ eid: EID) throws(StorageError) -> UInt64? {
        guard let id = try eisID(eid), let value = try connection.row("SELECT counter FROM scp80_state WHERE eis_id = ?1", [.integer(id)])?[0].int
        else { return nil }
        return UInt64(value)
    }

    func plmas(mno: OID?, m2mSP: OID?, profileType: String?) throws(StorageError) -> [PLMA] {
        try connection.query(
            """
            SELECT document FROM plma WHERE (?1 IS NULL OR mno_id = ?1) AND (?2 IS NULL OR m2msp_id = ?2) AND (?3 IS NULL OR profile_type = ?3)
            ORDER BY mno_id, m2msp_id, profile_type
            """, [SQLiteValue(mno?.text), SQLiteValue(m2mSP?.text), SQLiteValue(profileType)]
        ).map { (row) throws(StorageError) in try decode(PLMA.self, row[0].bytes) }
    }

    func oncs(mno: OID, profileType: String?) throws(StorageError) -> [ONC] {
        try connection.query(
            "SELECT document FROM onc WHERE mno_id = ?1 AND (?2 IS NULL OR profile_type = ?2) ORDER BY profile_type",
            [.text(mno.text), SQLiteValue(profileType)]
        ).map { (row) throws(StorageError) in try decode(ONC.self, row[0].bytes) }
    }

    func auditTrail(_ eid: EID) throws(StorageError) -> [AuditTrailRecord] {
        guard let id = try eisID(eid) else { return [] }
        return try connection.query("SELECT record FROM audit_trail WHERE eis_id = ?1 ORDER BY id", [.integer(id)])
            .map { (row) throws(StorageError) in
                let bytes = row[0].bytes ?? []
                do { return try memo?.audit(bytes, codec.decodeAuditRecord) ?? codec.decodeAuditRecord(bytes) } catch {
                    throw StorageError(.corrupt, "an audit record does not decode")
                }
            }
    }

    func functionCall(caller: OID, identifier: String) throws(StorageError) -> FunctionCallRecord? {
        try FunctionCallSQL.find(connection, caller: caller, identifier: identifier)
    }

    func operation(_ row: SQLiteRow) throws(StorageError) -> OperationRecord {
        guard case .integer(let id) = row[0], let eidText = row[1].string, let eid = try? EID(text: eidText),
            let state = row[5].string.flatMap(OperationRecord.State.init(rawValue:))
        else { throw StorageError(.corrupt, "operation row") }
        let iccid = row[3].string.flatMap { try? ICCID(text: $0) }
        let callID: Int64? = if case .integer(let v) = row[4] { v } else { nil }
        return OperationRecord(id: id, eid: eid, kind: row[2].string ?? "", iccid: iccid, functionCallID: callID, state: state,
                               machine: row[6].bytes ?? [])
    }

    static let operationColumns = "operation.id, eis.eid, operation.kind, operation.iccid, operation.function_call_id, operation.state, operation.machine"

    func activeOperations() throws(StorageError) -> [OperationRecord] {
        try connection.query(
            "SELECT \(Self.operationColumns) FROM operation JOIN eis ON eis.id = operation.eis_id WHERE operation.state = 'active' ORDER BY operation.id"
        ).map { (row) throws(StorageError) in try operation(row) }
    }

    func activeOperation(_ eid: EID) throws(StorageError) -> OperationRecord? {
        try connection.query(
            "SELECT \(Self.operationColumns) FROM operation JOIN eis ON eis.id = operation.eis_id WHERE eis.eid = ?1 AND operation.state = 'active'",
            [.text(eid.text)]
        ).first.map { (row) throws(StorageError) in try operation(row) }
    }



    func outbox(states: [OutboxItem.State]) throws(StorageError) -> [OutboxItem] { try OutboxSQL.all(connection, states: states) }

    func dueOutbox(now: Timestamp, limit: Int) throws(StorageError) -> [OutboxItem] { try OutboxSQL.due(connection, now: now, limit: limit) }

    func decisionCount(functionCallID: Int64?) throws(StorageError) -> Int {
        if let functionCallID {
            return try connection.row("SELECT count(*) FROM decision WHERE function_call_id = ?1", [.integer(functionCallID)])?[0].int ?? 0
        }
        return try connection.row("SELECT count(*) FROM decision")?[0].int ?? 0
    }

    func cardNotificationSeen(_ eid: EID, sequence: Int) throws(StorageError) -> Bool {
        guard let id = try eisID(eid) else { return false }
        return try connection.row("SELECT 1 FROM card_notification WHERE eis_id = ?1 AND sequence = ?2", [.integer(id), SQLiteValue(sequence)]) != nil
    }

    func smdpServes(_ smdp: OID, mno: OID) throws(StorageError) -> Bool {
        // Installed Profiles only: a Created one (CreateISDP names any Operator) proves nothing yet.
        try connection.row("SELECT 1 FROM profile WHERE smdp_id = ?1 AND mno_id = ?2 AND state <> 'Created' LIMIT 1", [.text(smdp.text), .text(mno.text)]) != nil
    }

    func downloadLease(_ eid: EID) throws(StorageError) -> DownloadLease? {
        guard let row = try connection.row(
            "SELECT download_lease.smdp, download_lease.iccid, download_lease.until FROM download_lease JOIN eis ON eis.id = download_lease.eis_id WHERE eis.eid = ?1",
            [.text(eid.text)])
        else { return nil }
        guard let smdp = row[0].string.flatMap({ try? OID(text: $0) }), let iccid = row[1].string.flatMap({ try? ICCID(text: $0) }),
            case .integer(let until) = row[2]
        else { throw StorageError(.corrupt, "download lease row") }
        return DownloadLease(smdp: smdp, iccid: iccid, until: until)
    }

    func forgetCardNotification(_ eid: EID, sequence: Int) throws(StorageError) {
        try connection.run("DELETE FROM card_notification WHERE eis_id = ?1 AND sequence = ?2", [.integer(try requireEISID(eid)), SQLiteValue(sequence)])
    }

    func forgetUnansweredCalls() throws(StorageError) -> Int {
        try connection.run("""
            DELETE FROM function_call WHERE state = 'accepted'
              AND id NOT IN (SELECT function_call_id FROM operation WHERE function_call_id IS NOT NULL)
              AND id NOT IN (SELECT function_call_id FROM smsr_change WHERE function_call_id IS NOT NULL)
            """)
    }

    func smsrChangeRecord(_ row: SQLiteRow) throws(StorageError) -> SMSRChangeRecord {
        guard let eidText = row[0].string, let eid = try? EID(text: eidText), let direction = row[1].string.flatMap(SMSRChangeRecord.Direction.init),
            let peerText = row[2].string, let peer = try? OID(text: peerText), let state = row[3].string
        else { throw StorageError(.corrupt, "smsr_change row") }
        let callID: Int64? = if case .integer(let v) = row[4] { v } else { nil }
        return SMSRChangeRecord(eid: eid, direction: direction, peer: peer, state: state, functionCallID: callID, machine: row[5].bytes ?? [])
    }

    func smsrChange(_ eid: EID, direction: SMSRChangeRecord.Direction) throws(StorageError) -> SMSRChangeRecord? {
        try connection.query(
            "SELECT eid, direction, peer, state, function_call_id, machine FROM smsr_change WHERE eid = ?1 AND direction = ?2",
            [.text(eid.text), .text(direction.rawValue)]
        ).first.map { (row) throws(StorageError) in try smsrChangeRecord(row) }
    }

    func openSMSRChanges() throws(StorageError) -> [SMSRChangeRecord] {
        try connection.query(
            "SELECT eid, direction, peer, state, function_call_id, machine FROM smsr_change WHERE state NOT IN ('completed','failed') ORDER BY created_at"
        ).map { (row) throws(StorageError) in try smsrChangeRecord(row) }
    }

    func putSMSRChange(_ record: SMSRChangeRecord, now: Timestamp) throws(StorageError) {
        try connection.run(
            """
            INSERT INTO smsr_change(eid, direction, peer, state, function_call_id, machine, created_at, updated_at)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
            ON CONFLICT(eid, direction) DO UPDATE SET peer = excluded.peer, state = excluded.state,
              function_call_id = excluded.function_call_id, machine = excluded.machine, updated_at = excluded.updated_at
            """,
            [.text(record.eid.text), .text(record.direction.rawValue), .text(record.peer.text), .text(record.state),
             record.functionCallID.map { .integer($0) } ?? .null, .blob(record.machine), .text(now.text)])
    }

    func deleteEIS(_ eid: EID) throws(StorageError) {
        let id = try requireEISID(eid)
        try connection.run("UPDATE outbox SET operation_id = NULL WHERE operation_id IN (SELECT id FROM operation WHERE eis_id = ?1)", [.integer(id)])
        try connection.run("DELETE FROM operation WHERE eis_id = ?1", [.integer(id)])
        try connection.run("DELETE FROM eis WHERE id = ?1", [.integer(id)])
    }

    func setDownloadLease(_ eid: EID, _ lease: DownloadLease?) throws(StorageError) {
        let id = try requireEISID(eid)
        guard let lease else {
            try connection.run("DELETE FROM download_lease WHERE eis_id = ?1", [.integer(id)])
            return
        }
        try connection.run(
            """
            INSERT INTO download_lease(eis_id, smdp, iccid, until) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT(eis_id) DO UPDATE SET smdp = excluded.smdp, iccid = excluded.iccid, until = excluded.until
            """, [.integer(id), .text(lease.smdp.text), .text(lease.iccid.text), .integer(lease.until)])
    }

    // MARK: Writing

    func upsertParty(_ party: Party) throws(StorageError) {
        try connection.run("INSERT INTO party(oid, role) VALUES (?1, ?2) ON CONFLICT(oid) DO UPDATE SET role = excluded.role",
                           [.text(party.oid.text), .text(party.role.rawValue)])
    }

    static func prepare(_ eis: EIS, keys: [SealedKey], scp80Counter: UInt64, audit: AuditTrailRecord?, codec: any SMSRDocumentCodec)
        throws(StorageError) -> NewEIS
    {
        var document = eis
        document.profiles = []
        document.auditTrail = nil
        func encoded<T>(_ what: String, _ body: () throws -> T) throws(StorageError) -> T {
            do { return try body() } catch { throw StorageError(.corrupt, "cannot encode \(what)") }
        }
        return NewEIS(eid: eis.eid, eumID: eis.eumSignedInfo.eumID, smsrID: eis.smsrID,
                      document: try encoded("an EIS document") { try codec.encode(document) },
                      profiles: try encoded("a Profile document") { try eis.profiles.map { ($0, try codec.encode($0)) } },
                      keys: keys, scp80Counter: scp80Counter,
                      audit: try encoded("an audit record") { try audit.map { try codec.encode($0) } })
    }

    func insertEIS(_ eis: EIS, keys: [SealedKey], scp80Counter: UInt64, now: Timestamp) throws(StorageError) {
        try insertEIS(try Self.prepare(eis, keys: keys, scp80Counter: scp80Counter, audit: nil, codec: codec), now: now)
    }

    func insertEIS(_ new: NewEIS, now: Timestamp) throws(StorageError) {
        try connection.run(
            "INSERT INTO eis(eid, eum_id, smsr_id, document, registered_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
            [.text(new.eid.text), .text(new.eumID.text), .text(new.smsrID.text), .blob(new.document), .text(now.text)])
        let id = connection.lastInsertRowID
        for key in new.keys {
            try connection.run(
                "INSERT INTO isdr_key(eis_id, keyset_version, key_index, key_type, kcv, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                [.integer(id), SQLiteValue(key.keysetVersion), SQLiteValue(key.keyIndex), SQLiteValue(Int(key.keyType)), .blob(key.kcv), .blob(key.sealed)])
        }
        try connection.run("INSERT INTO scp80_state(eis_id, counter) VALUES (?1, ?2)", [.integer(id), .integer(Int64(bitPattern: new.scp80Counter))])
        try insertProfiles(new.profiles, eisID: id)
        if let audit = new.audit {
            try connection.run("INSERT INTO audit_trail(eis_id, record, created_at) VALUES (?1, ?2, ?3)", [.integer(id), .blob(audit), .text(now.text)])
        }
    }

    func insertProfiles(_ profiles: [(profile: ProfileInfo, document: [UInt8])], eisID id: Int64) throws(StorageError) {
        for (position, (profile, document)) in profiles.enumerated() {
            try connection.run(
                """
                INSERT INTO profile(eis_id, iccid, isdp_aid, mno_id, smdp_id, profile_type, state, fallback, emergency, position, document)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                """,
                [.integer(id), .text(profile.iccid.text), .text(profile.isdPAID.text), .text(profile.mnoID.text), SQLiteValue(profile.smdpID?.text),
                 SQLiteValue(profile.profileType?.text), .text(profile.state.rawValue), SQLiteValue(profile.fallbackAttribute),
                 SQLiteValue(profile.emergencyProfileAttribute), SQLiteValue(position), .blob(document)])
        }
    }

    func writeProfiles(_ profiles: [ProfileInfo], eisID id: Int64) throws(StorageError) {
        try connection.run("DELETE FROM profile WHERE eis_id = ?1", [.integer(id)])
        try insertProfiles(try profiles.map { (profile) throws(StorageError) in (profile, try encodeProfile(profile)) }, eisID: id)
    }


    func updateEIS(_ eis: EIS, now: Timestamp) throws(StorageError) {
        let id = try requireEISID(eis.eid)
        var document = eis
        document.profiles = []
        document.auditTrail = nil
        try connection.run("UPDATE eis SET document = ?2, version = version + 1, updated_at = ?3 WHERE id = ?1",
                           [.integer(id), .blob(try encodeEIS(document)), .text(now.text)])
        try writeProfiles(eis.profiles, eisID: id)
    }

    func setSCP80Counter(_ eid: EID, _ counter: UInt64) throws(StorageError) {
        try connection.run("UPDATE scp80_state SET counter = ?2 WHERE eis_id = ?1", [.integer(try requireEISID(eid)), .integer(Int64(bitPattern: counter))])
    }

    func appendAudit(_ record: AuditTrailRecord, now: Timestamp) throws(StorageError) {
        let bytes: [UInt8]
        do { bytes = try codec.encode(record) } catch { throw StorageError(.corrupt, "cannot encode an audit record") }
        try connection.run("INSERT INTO audit_trail(eis_id, record, created_at) VALUES (?1, ?2, ?3)",
                           [.integer(try requireEISID(record.eid)), .blob(bytes), .text(now.text)])
    }

    func upsertPLMA(_ plma: PLMA, now: Timestamp) throws(StorageError) {
        try connection.run(
            """
            INSERT INTO plma(mno_id, m2msp_id, profile_type, document, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
            ON CONFLICT(mno_id, m2msp_id, profile_type) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at
            """, [.text(plma.mnoID.text), .text(plma.m2mSPID.text), .text(plma.profileType.text), .blob(try encode(plma)), .text(now.text)])
    }

    func deletePLMA(mno: OID, m2mSP: OID, profileType: String) throws(StorageError) {
        try connection.run("DELETE FROM plma WHERE mno_id = ?1 AND m2msp_id = ?2 AND profile_type = ?3",
                           [.text(mno.text), .text(m2mSP.text), .text(profileType)])
    }

    func upsertONC(_ onc: ONC, now: Timestamp) throws(StorageError) {
        try connection.run(
            """
            INSERT INTO onc(mno_id, profile_type, document, updated_at) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT(mno_id, profile_type) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at
            """, [.text(onc.mnoID.text), .text(onc.profileType.text), .blob(try encode(onc)), .text(now.text)])
    }

    func deleteONC(mno: OID, profileType: String) throws(StorageError) {
        try connection.run("DELETE FROM onc WHERE mno_id = ?1 AND profile_type = ?2", [.text(mno.text), .text(profileType)])
    }

    func beginFunctionCall(caller: OID, identifier: String, function: String, digest: [UInt8], now: Timestamp) throws(StorageError) -> Int64 {
        try FunctionCallSQL.begin(connection, caller: caller, identifier: identifier, function: function, digest: digest, now: now)
    }

    func recordFunctionCall(caller: OID, identifier: String, function: String, digest: [UInt8], response: [UInt8], now: Timestamp)
        throws(StorageError)
    {
        try FunctionCallSQL.record(connection, caller: caller, identifier: identifier, function: function, digest: digest, response: response, now: now)
    }

    func completeFunctionCall(_ id: Int64, response: [UInt8], now: Timestamp) throws(StorageError) {
        try FunctionCallSQL.complete(connection, id, response: response, now: now)
    }

    func insertOperation(eid: EID, kind: String, iccid: ICCID?, functionCallID: Int64?, machine: [UInt8], now: Timestamp) throws(StorageError) -> Int64 {
        try connection.run(
            """
            INSERT INTO operation(eis_id, kind, iccid, function_call_id, state, machine, created_at, updated_at)
            VALUES (?1, ?2, ?3, ?4, 'active', ?5, ?6, ?6)
            """,
            [.integer(try requireEISID(eid)), .text(kind), SQLiteValue(iccid?.text), functionCallID.map { .integer($0) } ?? .null, .blob(machine),
             .text(now.text)])
        return connection.lastInsertRowID
    }

    func updateOperation(_ id: Int64, state: OperationRecord.State, machine: [UInt8], now: Timestamp) throws(StorageError) {
        try connection.run("UPDATE operation SET state = ?2, machine = ?3, updated_at = ?4 WHERE id = ?1",
                           [.integer(id), .text(state.rawValue), .blob(machine), .text(now.text)])
    }

    func appendOutbox(_ items: [NewOutboxItem], operationID: Int64?, now: Timestamp) throws(StorageError) {
        try OutboxSQL.append(connection, items, operationID: operationID, now: now)
    }

    func markDelivered(_ id: Int64, now: Timestamp) throws(StorageError) { try OutboxSQL.markDelivered(connection, id, now: now) }

    func reschedule(_ id: Int64, attempts: Int, at: Timestamp, error: String, dead: Bool) throws(StorageError) {
        try OutboxSQL.reschedule(connection, id, attempts: attempts, at: at, error: error, dead: dead)
    }

    func appendDecision(hook: String, record: [UInt8], input: [UInt8]?, operationID: Int64?, functionCallID: Int64?, now: Timestamp) throws(StorageError) {
        try DecisionSQL.append(connection, column: "operation_id", hook: hook, record: record, input: input, operationID: operationID,
                               functionCallID: functionCallID, now: now)
    }

    func recordCardNotification(_ eid: EID, sequence: Int, type: Int, aid: [UInt8], now: Timestamp) throws(StorageError) {
        try connection.run(
            """
            INSERT INTO card_notification(eis_id, sequence, type, aid, received_at) VALUES (?1, ?2, ?3, ?4, ?5)
            ON CONFLICT(eis_id, sequence) DO UPDATE SET type = excluded.type, aid = excluded.aid, received_at = excluded.received_at
            """, [.integer(try requireEISID(eid)), SQLiteValue(sequence), SQLiteValue(type), .blob(aid), .text(now.text)])
    }
}

/// Decoded documents by their exact bytes (decoding is a pure function of them, so an entry is never
/// stale). Bounded: emptied when full.
final class DocumentMemo: Sendable {
    let capacity: Int
    let eisDocuments = Mutex<[Key: EIS]>([:])
    let profileDocuments = Mutex<[Key: ProfileInfo]>([:])
    /// Audit records (GetEIS shows an eUICC's trail: decoding it was ~7 % of a GetEIS's worker time).
    let auditDocuments = Mutex<[Key: AuditTrailRecord]>([:])

    /// The bytes, hashed as one buffer ([UInt8]'s own hash feeds the hasher byte by byte).
    struct Key: Hashable {
        let bytes: [UInt8]
        func hash(into hasher: inout Hasher) { bytes.withUnsafeBytes { hasher.combine(bytes: $0) } }
    }

    init(capacity: Int) { self.capacity = capacity }

    func eis(_ bytes: [UInt8], _ decode: ([UInt8]) throws -> EIS) throws -> EIS {
        try Self.lookup(eisDocuments, bytes, capacity, decode)
    }

    func profile(_ bytes: [UInt8], _ decode: ([UInt8]) throws -> ProfileInfo) throws -> ProfileInfo {
        try Self.lookup(profileDocuments, bytes, capacity, decode)
    }

    func audit(_ bytes: [UInt8], _ decode: ([UInt8]) throws -> AuditTrailRecord) throws -> AuditTrailRecord {
        try Self.lookup(auditDocuments, bytes, capacity, decode)
    }

    static func lookup<V: Sendable>(_ table: borrowing Mutex<[Key: V]>, _ bytes: [UInt8], _ capacity: Int, _ decode: ([UInt8]) throws -> V) throws -> V {
        let key = Key(bytes: bytes)
        if let known = table.withLock({ $0[key] }) { return known }
        let value = try decode(bytes)
        table.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = value
        }
        return value
    }
}
