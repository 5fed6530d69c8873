// Tables the SM-SR and the SM-DP both keep, with one implementation: the function-call record
// (idempotency on caller + FunctionCallIdentifier, the stored answer), the outbox (notifications
// and asynchronous responses waiting for delivery, with retry state) and the policy decision records. Each role's schema creates
// the tables with these columns; its transaction type forwards to these statements.

public import M2MCore

/// A store whose outbox `OutboxDispatcher` (M2MRoles) delivers.
public protocol OutboxStore: Sendable {
    func dueOutbox(now: Timestamp, limit: Int) throws -> [OutboxItem]
    func markDelivered(_ id: Int64, now: Timestamp) throws
    func reschedule(_ id: Int64, attempts: Int, at: Timestamp, error: String, dead: Bool) throws
}

/// The function-call record as both roles' write transactions offer it.
public protocol FunctionCallLedger {
    func functionCall(caller: OID, identifier: String) throws(StorageError) -> FunctionCallRecord?
    func beginFunctionCall(caller: OID, identifier: String, function: String, digest: [UInt8], now: Timestamp) throws(StorageError) -> Int64
}

/// How a recorded call starts (`FunctionCallLedger.startFunctionCall`).
public enum FunctionCallStart: Sendable {
    /// A new call: its row, accepted.
    case begun(Int64)
    /// The same request under the same identifier again: its record (the stored answer once completed).
    case repeated(FunctionCallRecord)
    /// The identifier was used for another request.
    case reused
}

extension FunctionCallLedger {
    /// Idempotency on (caller, FunctionCallIdentifier): the row of a new call, or what was seen before.
    public func startFunctionCall(caller: OID, identifier: String, function: String, digest: [UInt8], now: Timestamp) throws(StorageError)
        -> FunctionCallStart
    {
        if let seen = try functionCall(caller: caller, identifier: identifier) {
            return seen.function == function && seen.requestDigest == digest ? .repeated(seen) : .reused
        }
        return .begun(try beginFunctionCall(caller: caller, identifier: identifier, function: function, digest: digest, now: now))
    }
}

enum FunctionCallSQL {
    static func find(_ connection: SQLiteConnection, caller: OID, identifier: String) throws(StorageError) -> FunctionCallRecord? {
        guard let row = try connection.row(
            "SELECT id, function, request_digest, state, response FROM function_call WHERE caller = ?1 AND identifier = ?2",
            [.text(caller.text), .text(identifier)]), case .integer(let id) = row[0]
        else { return nil }
        return FunctionCallRecord(
            id: id, caller: caller, functionCallIdentifier: identifier, function: row[1].string ?? "", requestDigest: row[2].bytes ?? [],
            state: FunctionCallRecord.State(rawValue: row[3].string ?? "") ?? .accepted, response: row[4].isNull ? nil : row[4].bytes)
    }

    static func begin(_ connection: SQLiteConnection, caller: OID, identifier: String, function: String, digest: [UInt8], now: Timestamp)
        throws(StorageError) -> Int64
    {
        try connection.run(
            "INSERT INTO function_call(caller, identifier, function, request_digest, state, received_at) VALUES (?1, ?2, ?3, ?4, 'accepted', ?5)",
            [.text(caller.text), .text(identifier), .text(function), .blob(digest), .text(now.text)])
        return connection.lastInsertRowID
    }

    static func record(_ connection: SQLiteConnection, caller: OID, identifier: String, function: String, digest: [UInt8], response: [UInt8],
                       now: Timestamp) throws(StorageError)
    {
        try connection.run(
            """
            INSERT INTO function_call(caller, identifier, function, request_digest, state, response, received_at, completed_at)
            VALUES (?1, ?2, ?3, ?4, 'completed', ?5, ?6, ?6)
            """,
            [.text(caller.text), .text(identifier), .text(function), .blob(digest), .blob(response), .text(now.text)])
    }

    static func complete(_ connection: SQLiteConnection, _ id: Int64, response: [UInt8], now: Timestamp) throws(StorageError) {
        try connection.run("UPDATE function_call SET state = 'completed', response = ?2, completed_at = ?3 WHERE id = ?1 AND state = 'accepted'",
                           [.integer(id), .blob(response), .text(now.text)])
    }
}

enum DecisionSQL {
    /// A policy decision record; `column` names what the role ties it to (`operation_id`, `download_id`).
    static func append(_ connection: SQLiteConnection, column: String, hook: String, record: [UInt8], input: [UInt8]?, operationID: Int64?,
                       functionCallID: Int64?, now: Timestamp) throws(StorageError)
    {
        try connection.run(
            "INSERT INTO decision(hook, record, input, \(column), function_call_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            [.text(hook), .blob(record), SQLiteValue(input), operationID.map { .integer($0) } ?? .null, functionCallID.map { .integer($0) } ?? .null,
             .text(now.text)])
    }
}

enum OutboxSQL {
    static let columns =
        "id, message_type, via, recipient, recipient_role, smdp, body, retry_class, created_at, state, attempts, next_attempt_at, last_error, operation_id, relates_to"

    static func item(_ row: SQLiteRow) throws(StorageError) -> OutboxItem {
        guard case .integer(let id) = row[0], let recipient = row[3].string.flatMap({ try? OID(text: $0) }),
            let state = row[9].string.flatMap(OutboxItem.State.init(rawValue:))
        else { throw StorageError(.corrupt, "outbox row") }
        let operationID: Int64? = if case .integer(let v) = row[13] { v } else { nil }
        return OutboxItem(
            id: id, messageType: row[1].string ?? "", via: row[2].string ?? "", recipient: recipient, recipientRole: row[4].string ?? "",
            smdp: row[5].string.flatMap { try? OID(text: $0) }, body: row[6].bytes ?? [], retryClass: row[7].string ?? "",
            state: state, attempts: row[10].int ?? 0, nextAttemptAt: Timestamp(seconds: Int64(row[11].int ?? 0)),
            lastError: row[12].string, operationID: operationID, relatesTo: row[14].string)
    }

    static func all(_ connection: SQLiteConnection, states: [OutboxItem.State]) throws(StorageError) -> [OutboxItem] {
        try connection.query("SELECT \(columns) FROM outbox ORDER BY id").map { (row) throws(StorageError) in try item(row) }
            .filter { states.contains($0.state) }
    }

    static func due(_ connection: SQLiteConnection, now: Timestamp, limit: Int) throws(StorageError) -> [OutboxItem] {
        try connection.query(
            "SELECT \(columns) FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY next_attempt_at, id LIMIT ?2",
            [.integer(now.seconds), SQLiteValue(limit)]
        ).map { (row) throws(StorageError) in try item(row) }
    }

    static func append(_ connection: SQLiteConnection, _ items: [NewOutboxItem], operationID: Int64?, now: Timestamp) throws(StorageError) {
        for item in items {
            try connection.run(
                """
                INSERT INTO outbox(message_type, via, recipient, recipient_role, smdp, body, retry_class, state, next_attempt_at, operation_id, created_at,
                  relates_to)
                VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?9, ?10, ?11)
                """,
                [.text(item.messageType), .text(item.via), .text(item.recipient.text), .text(item.recipientRole), SQLiteValue(item.smdp?.text),
                 .blob(item.body), .text(item.retryClass), .integer(now.seconds), operationID.map { .integer($0) } ?? .null, .text(now.text),
                 SQLiteValue(item.relatesTo)])
        }
    }

    static func markDelivered(_ connection: SQLiteConnection, _ id: Int64, now: Timestamp) throws(StorageError) {
        try connection.run("UPDATE outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = ?2 WHERE id = ?1",
                           [.integer(id), .text(now.text)])
    }

    static func reschedule(_ connection: SQLiteConnection, _ id: Int64, attempts: Int, at: Timestamp, error: String, dead: Bool) throws(StorageError) {
        try connection.run("UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4, state = ?5 WHERE id = ?1",
                           [.integer(id), SQLiteValue(attempts), .integer(at.seconds), .text(error), .text(dead ? "dead" : "pending")])
    }
}
