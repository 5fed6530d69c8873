// The asynchronous responses a server owes (issue #8; docs/server.md): each callback is written
// here before its first delivery attempt and removed once its receiver acknowledged it (or refused it
// for good), so a callback survives a crash of the process — a restarted server sends what is left.
// Its own small SQLite file beside the roles' databases (a server-level concern: the role stores do
// not know ReplyTo addresses).

public import M2MCore

/// A callback not acknowledged yet.
public struct PendingCallback: Sendable, Hashable {
    public var id: Int64
    /// The ReplyTo address.
    public var url: String
    /// The whole envelope, as it is sent.
    public var envelope: [UInt8]
    public var attempts: Int
}

public final class SQLiteCallbackStore: Sendable {
    public let database: SQLiteDatabase

    static let migrations = [
        Migration(version: 1, name: "callbacks", sql: """
            CREATE TABLE callback(id INTEGER PRIMARY KEY, url TEXT NOT NULL, envelope BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
              created_at TEXT NOT NULL) STRICT;
            """),
    ]

    public init(path: String) throws(StorageError) {
        database = try SQLiteDatabase(path: path, configuration: .init(), migrations: Self.migrations)
    }

    public func add(url: String, envelope: [UInt8], now: Timestamp) throws -> Int64 {
        try database.write { connection -> Int64 in
            _ = try connection.run("INSERT INTO callback(url, envelope, created_at) VALUES (?1, ?2, ?3)", [.text(url), .blob(envelope), .text(now.text)])
            return connection.lastInsertRowID
        }
    }

    public func attempted(_ id: Int64) throws {
        _ = try database.write { connection in try connection.run("UPDATE callback SET attempts = attempts + 1 WHERE id = ?1", [.integer(id)]) }
    }

    public func remove(_ id: Int64) throws {
        _ = try database.write { connection in try connection.run("DELETE FROM callback WHERE id = ?1", [.integer(id)]) }
    }

    public func pending() throws -> [PendingCallback] {
        try database.read { connection -> [PendingCallback] in
            try connection.query("SELECT id, url, envelope, attempts FROM callback ORDER BY id").map { (row) throws(StorageError) in
                guard case .integer(let id) = row[0], let url = row[1].string, let envelope = row[2].bytes else { throw StorageError(.corrupt, "callback row") }
                return PendingCallback(id: id, url: url, envelope: envelope, attempts: row[3].int ?? 0)
            }
        }
    }
}
