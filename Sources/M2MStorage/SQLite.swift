// SQLite through its C API (ARCHITECTURE.md: raw API behind repository protocols, WAL +
// synchronous=NORMAL, cached prepared statements). One writer connection behind a lock, a few
// reader connections (WAL lets them read a consistent snapshot while the writer works). Every write
// runs in `BEGIN IMMEDIATE … COMMIT` and rolls back when its body throws, so a state change and the
// rows that go with it (audit, decisions, outbox) commit together or not at all. Values are bound,
// never spliced into SQL; errors carry SQLite's message but never the bound values (they may be
// secrets or personal data).

internal import CSQLite
import Synchronization

/// A storage failure.
public struct StorageError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        /// The database file cannot be opened or configured.
        case open
        /// A statement failed (syntax, I/O, full disk …).
        case sql
        /// A UNIQUE, CHECK or FOREIGN KEY constraint refused the change.
        case constraint
        /// Another process holds the database past the busy timeout.
        case busy
        /// The schema is newer than this build, or a migration failed.
        case migration
        /// A stored value does not decode (damaged row, foreign writer).
        case corrupt
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public static func == (lhs: StorageError, rhs: StorageError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { "storage \(code.rawValue): \(detail)" }
}

/// A value bound to, or read from, a statement.
public enum SQLiteValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case text(String)
    case blob([UInt8])

    public var int: Int? { if case .integer(let v) = self { Int(v) } else { nil } }
    public var string: String? { if case .text(let v) = self { v } else { nil } }
    public var bytes: [UInt8]? {
        switch self {
        case .blob(let v): v
        case .text(let v): Array(v.utf8)
        default: nil
        }
    }
    public var isNull: Bool { self == .null }
}

extension SQLiteValue: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral, ExpressibleByNilLiteral {
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .text(value) }
    public init(nilLiteral: ()) { self = .null }
}

extension SQLiteValue {
    public init(_ value: Int) { self = .integer(Int64(value)) }
    public init(_ value: Bool) { self = .integer(value ? 1 : 0) }
    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    public init(_ value: [UInt8]?) { self = value.map { .blob($0) } ?? .null }
}

/// One row of a result.
public struct SQLiteRow: Sendable {
    public let values: [SQLiteValue]
    public subscript(_ index: Int) -> SQLiteValue { values[index] }
}

/// One connection. Not thread-safe: the database hands it to one body at a time, under its slot's
/// lock (hence unchecked Sendable: it only ever crosses threads inside that lock).
public final class SQLiteConnection: @unchecked Sendable {
    let handle: OpaquePointer
    var statements: [String: OpaquePointer] = [:]

    init(path: String, readOnly: Bool) throws(StorageError) {
        var db: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &db, flags, nil) == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw StorageError(.open, "\(path): \(message)")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 5000)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    func failure(_ result: Int32, _ what: String) -> StorageError {
        let message = String(cString: sqlite3_errmsg(handle))
        switch result & 0xFF {
        case SQLITE_CONSTRAINT: return StorageError(.constraint, "\(what): \(message)")
        case SQLITE_BUSY, SQLITE_LOCKED: return StorageError(.busy, "\(what): \(message)")
        case SQLITE_CORRUPT, SQLITE_NOTADB: return StorageError(.corrupt, "\(what): \(message)")
        default: return StorageError(.sql, "\(what): \(message)")
        }
    }

    /// Runs SQL text with no parameters (schema, pragmas, transaction control); several statements allowed.
    public func execute(_ sql: String) throws(StorageError) {
        var error: UnsafeMutablePointer<CChar>?
        let result = sqlite3_exec(handle, sql, nil, nil, &error)
        if result != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(error)
            throw result & 0xFF == SQLITE_CONSTRAINT ? StorageError(.constraint, message) : StorageError(.sql, message)
        }
    }

    /// Transaction control (BEGIN, BEGIN IMMEDIATE, COMMIT, ROLLBACK) on cached statements.
    /// `sqlite3_exec` compiled the text again each time: measured in `bench server`, the two
    /// statements of a read transaction took about a sixth of a GetEIS's worker time.
    func control(_ sql: String) throws(StorageError) {
        let statement = try statement(sql)
        let result = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard result == SQLITE_DONE else { throw failure(result, sql) }
    }

    func statement(_ sql: String) throws(StorageError) -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        let result = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard result == SQLITE_OK, let statement else { throw failure(result, "prepare") }
        statements[sql] = statement
        return statement
    }

    func bind(_ statement: OpaquePointer, _ arguments: [SQLiteValue]) throws(StorageError) {
        for (offset, value) in arguments.enumerated() {
            let index = Int32(offset + 1)
            let result: Int32
            switch value {
            case .null: result = sqlite3_bind_null(statement, index)
            case .integer(let v): result = sqlite3_bind_int64(statement, index, v)
            case .text(let v): result = sqlite3_bind_text(statement, index, v, -1, m2m_sqlite_transient())
            case .blob(let v):
                result = v.withUnsafeBytes { sqlite3_bind_blob(statement, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(v.count), m2m_sqlite_transient()) }
            }
            guard result == SQLITE_OK else { throw failure(result, "bind parameter \(index)") }
        }
    }

    func column(_ statement: OpaquePointer, _ index: Int32) -> SQLiteValue {
        switch sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, index))
        case SQLITE_TEXT:
            guard let text = sqlite3_column_text(statement, index) else { return .text("") }
            return .text(String(cString: text))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, index))
            guard count > 0, let pointer = sqlite3_column_blob(statement, index) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: pointer, count: count)))
        case SQLITE_FLOAT: return .integer(Int64(sqlite3_column_double(statement, index)))
        default: return .null
        }
    }

    /// Runs a statement; returns its rows.
    @discardableResult
    public func query(_ sql: String, _ arguments: [SQLiteValue] = []) throws(StorageError) -> [SQLiteRow] {
        let statement = try statement(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        try bind(statement, arguments)
        var rows: [SQLiteRow] = []
        let columns = sqlite3_column_count(statement)
        while true {
            let result = sqlite3_step(statement)
            if result == SQLITE_DONE { return rows }
            guard result == SQLITE_ROW else { throw failure(result, "step") }
            rows.append(SQLiteRow(values: (0..<columns).map { column(statement, $0) }))
        }
    }

    /// The first row, or nil.
    public func row(_ sql: String, _ arguments: [SQLiteValue] = []) throws(StorageError) -> SQLiteRow? {
        try query(sql, arguments).first
    }

    /// Runs a statement that returns no rows; the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ arguments: [SQLiteValue] = []) throws(StorageError) -> Int {
        try query(sql, arguments)
        return Int(sqlite3_changes(handle))
    }

    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }
}

/// The database: a writer and a pool of readers on one file.
public final class SQLiteDatabase: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// `NORMAL` survives process kills (WAL); `FULL` also power loss, at a cost per commit.
        public var synchronousFull = false
        /// Reader connections (each with its own page cache, 2 MiB by default).
        public var readers = 4
        /// The page size of a database this creates (an existing one keeps its own). SQLite's 4 KiB
        /// by default: measured in `m2mrsp bench smsr`, 16 KiB registers EIS ~5 % faster (a commit
        /// writes fewer, larger WAL frames) but enables ~20 % slower (each small update writes a
        /// whole page to the WAL): docs/storage.md, "Page size".
        public var pageSize = 4096

        public init() {}
    }

    /// A connection behind its lock (Mutex is not copyable, so the pool holds these).
    final class Slot: Sendable {
        let connection: Mutex<SQLiteConnection?>
        init(_ connection: SQLiteConnection) { self.connection = Mutex(connection) }
    }

    public let path: String
    let writer: Slot
    let readers: [Slot]
    let nextReader = Atomic<Int>(0)

    /// Opens (creating when absent) and migrates the database at `path`.
    public init(path: String, configuration: Configuration = .init(), migrations: [Migration]) throws(StorageError) {
        self.path = path
        let connection = try SQLiteConnection(path: path, readOnly: false)
        // Only an empty database takes a page size, and only before WAL mode writes its header.
        if try connection.row("PRAGMA page_count")?[0].int == 0 {
            try connection.execute("PRAGMA page_size=\(configuration.pageSize)")
        }
        let mode = try connection.row("PRAGMA journal_mode=WAL")?[0].string
        guard mode?.lowercased() == "wal" else { throw StorageError(.open, "\(path): WAL journal mode refused (\(mode ?? "?"))") }
        try connection.execute("PRAGMA synchronous=\(configuration.synchronousFull ? "FULL" : "NORMAL"); PRAGMA foreign_keys=ON;")
        try Migration.apply(migrations, on: connection)
        writer = Slot(connection)
        var pool: [Slot] = []
        for _ in 0..<max(1, configuration.readers) {
            let reader = try SQLiteConnection(path: path, readOnly: true)
            try reader.execute("PRAGMA foreign_keys=ON;")
            pool.append(Slot(reader))
        }
        readers = pool
    }

    /// Transactions run so far (write, read): what `bench download --breakdown` counts per download.
    public var transactionCounts: (writes: Int, reads: Int) { (writeCount.load(ordering: .relaxed), readCount.load(ordering: .relaxed)) }
    let writeCount = Atomic<Int>(0)
    let readCount = Atomic<Int>(0)

    /// Runs `body` in one write transaction (BEGIN IMMEDIATE): committed when it returns, rolled back
    /// when it throws.

    public func write<R>(_ body: (SQLiteConnection) throws -> R) throws -> R {
        writeCount.add(1, ordering: .relaxed)
        return try writer.connection.withLock { connection throws -> R in
            guard let connection else { throw StorageError(.open, "\(path) is closed") }
            try connection.control("BEGIN IMMEDIATE")
            do {
                let result = try body(connection)
                try connection.control("COMMIT")
                return result
            } catch {
                try? connection.control("ROLLBACK")
                throw error
            }
        }
    }

    /// Runs `body` on a reader, in one read transaction (a consistent snapshot).
    /// Not re-entrant: a body must not call `read` again (it could wait on its own reader). The
    /// first free reader from the next one round, or (all busy) that one when it frees: a fixed
    /// round robin had two threads queue on one reader while another sat idle (measured in
    /// `bench server`: the wait, spinning in the lock, was a tenth of a GetEIS's worker time).
    public func read<R>(_ body: (SQLiteConnection) throws -> R) throws -> R {
        readCount.add(1, ordering: .relaxed)
        let start = nextReader.add(1, ordering: .relaxed).oldValue
        for offset in 0..<readers.count {
            var result: Result<R, any Error>?
            readers[(start + offset) % readers.count].connection.withLockIfAvailable { connection in
                result = Result { try transaction(connection, body) }
            }
            if let result { return try result.get() }
        }
        var result: Result<R, any Error>?
        readers[start % readers.count].connection.withLock { connection in result = Result { try transaction(connection, body) } }
        return try result!.get()
    }

    private func transaction<R>(_ connection: SQLiteConnection?, _ body: (SQLiteConnection) throws -> R) throws -> R {
        guard let connection else { throw StorageError(.open, "\(path) is closed") }
        try connection.control("BEGIN")
        // A read transaction that cannot end is rolled back, so the next BEGIN on this reader works.
        defer { if (try? connection.control("COMMIT")) == nil { try? connection.control("ROLLBACK") } }
        return try body(connection)
    }

    /// Closes every connection (later calls fail with `.open`); what is committed stays.
    public func close() {
        writer.connection.withLock { $0 = nil }
        for reader in readers { reader.connection.withLock { $0 = nil } }
    }
}

/// A schema step: applied once, in order, recorded in `schema_migration`.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    static func apply(_ migrations: [Migration], on connection: SQLiteConnection) throws(StorageError) {
        try connection.execute("CREATE TABLE IF NOT EXISTS schema_migration(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT")
        let applied = try connection.query("SELECT version FROM schema_migration ORDER BY version").compactMap { $0[0].int }
        let known = migrations.map(\.version)
        if let newest = applied.last, let ours = known.max(), newest > ours {
            throw StorageError(.migration, "the database is at schema version \(newest); this build knows up to \(ours)")
        }
        for migration in migrations.sorted(by: { $0.version < $1.version }) where !applied.contains(migration.version) {
            do {
                try connection.execute("BEGIN IMMEDIATE")
                try connection.execute(migration.sql)
                try connection.run(
                    "INSERT INTO schema_migration(version, name, applied_at) VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
                    [SQLiteValue(migration.version), .text(migration.name)])
                try connection.execute("COMMIT")
            } catch {
                try? connection.execute("ROLLBACK")
                throw StorageError(.migration, "migration \(migration.version) (\(migration.name)): \(error.detail)")
            }
        }
    }
}
