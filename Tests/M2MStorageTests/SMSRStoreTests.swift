// The SM-SR store on real SQLite files: migrations (applied once, newer schema refused), WAL and
// foreign keys on, EIS round trips with their profiles, the one-enabled/one-fall-back indexes,
// transactions that roll back everything a failing body wrote, idempotency rows, the outbox
// lifecycle, and durability across a reopen.

import Foundation
import M2MCore
import M2MStorage
import M2MTestKit
import Testing

final class TempDatabase {
    let directory: URL
    var path: String { directory.appendingPathComponent("smsr.sqlite").path }

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("m2mrsp-storage-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

@Suite("SM-SR store (SQLite)")
struct SMSRStoreTests {
    static let now = try! Timestamp(text: "2026-11-27T12:00:00Z")

    @Test("Migrations: applied once, WAL and foreign keys on, a newer schema refused")
    func migrations() throws {
        let temp = try TempDatabase()
        do {
            let store = try SQLiteSMSRStore(path: temp.path)
            let (mode, foreignKeys, versions) = try store.database.read { connection throws -> (String?, Int?, [Int?]) in
                (try connection.row("PRAGMA journal_mode")?[0].string, try connection.row("PRAGMA foreign_keys")?[0].int,
                 try connection.query("SELECT version FROM schema_migration").map { $0[0].int })
            }
            #expect(mode == "wal")
            #expect(foreignKeys == 1)
            #expect(versions == [1, 2, 3, 4, 5])
            try store.database.write { try $0.run("INSERT INTO schema_migration(version, name, applied_at) VALUES (99, 'future', 'x')") }
            store.database.close()
        }
        #expect(throws: StorageError(.migration, "")) { _ = try SQLiteSMSRStore(path: temp.path) }
    }

    @Test("An EIS with its profiles and sealed keys round-trips; key values are not in the document")
    func eisRoundTrip() throws {
        let temp = try TempDatabase()
        let store = try SQLiteSMSRStore(path: temp.path)
        let eis = SampleMessages.eis()
        let key = SealedKey(keysetVersion: 1, keyIndex: 1, keyType: 0x88, kcv: [0xA1, 0xB2, 0xC3], sealed: Array(repeating: 0xEE, count: 48))
        try store.write { try $0.insertEIS(eis, keys: [key], scp80Counter: 7, now: Self.now) }
        let stored = try #require(try store.read { try $0.eis(eis.eid) })
        #expect(stored.eis == eis)
        #expect(stored.version == 1)
        #expect(try store.read { try $0.isdrKeys(eis.eid) } == [key])
        #expect(try store.read { try $0.scp80Counter(eis.eid) } == 7)
        #expect(try store.read { try $0.profileLocation(eis.profiles[1].iccid) } == eis.eid)
        var changed = eis
        changed.profiles[0].state = .disabled
        changed.profiles[1].state = .enabled
        changed.remainingMemory = 1
        try store.write { try $0.updateEIS(changed, now: Self.now) }
        let again = try #require(try store.read { try $0.eis(eis.eid) })
        #expect(again.eis == changed && again.version == 2)
        // A second EIS with the same EID, or a profile ICCID already registered, is a constraint error.
        #expect(throws: StorageError(.constraint, "")) { try store.write { try $0.insertEIS(eis, keys: [], scp80Counter: 0, now: Self.now) } }
    }

    @Test("Two enabled profiles or two fall-back profiles on one eUICC are refused by the indexes; the transaction rolls back")
    func oneEnabled() throws {
        let temp = try TempDatabase()
        let store = try SQLiteSMSRStore(path: temp.path)
        let eis = SampleMessages.eis()
        try store.write { try $0.insertEIS(eis, keys: [], scp80Counter: 0, now: Self.now) }
        for mutate in [{ (e: inout EIS) in e.profiles[1].state = .enabled }, { (e: inout EIS) in e.profiles[1].fallbackAttribute = true }] {
            var bad = eis
            mutate(&bad)
            #expect(throws: StorageError(.constraint, "")) {
                try store.write { (tx) throws in
                    try tx.appendAudit(AuditTrailRecord(eid: eis.eid, smsrID: eis.smsrID, operationDate: Self.now, operationType: [1, 1]), now: Self.now)
                    try tx.updateEIS(bad, now: Self.now)
                }
            }
            #expect(try store.read { try $0.eis(eis.eid) }?.eis == eis)
            #expect(try store.read { try $0.auditTrail(eis.eid) }.isEmpty, "the audit row of the failed transaction is gone too")
        }
    }

    @Test("Function calls, operations, outbox, decisions, PLMA, ONC, card notifications; all survive a reopen")
    func operationalTables() throws {
        let temp = try TempDatabase()
        let eis = SampleMessages.eis()
        let mno: OID = "1.3.6.1.4.1.99999.4.1"
        let sp: OID = "1.3.6.1.4.1.99999.5.1"
        do {
            let store = try SQLiteSMSRStore(path: temp.path)
            try store.write { (tx) throws in
                try tx.upsertParty(Party(oid: mno, role: .mno))
                try tx.insertEIS(eis, keys: [], scp80Counter: 0, now: Self.now)
                let call = try tx.beginFunctionCall(caller: mno, identifier: "fc-1", function: "ES4.EnableProfile", digest: [1, 2], now: Self.now)
                let operation = try tx.insertOperation(eid: eis.eid, kind: "enable", iccid: eis.profiles[1].iccid, functionCallID: call,
                                                       machine: [9], now: Self.now)
                try tx.appendDecision(hook: "before_enable_profile", record: Array("{}".utf8), input: [1, 2], operationID: operation, functionCallID: call, now: Self.now)
                try tx.appendOutbox([NewOutboxItem(messageType: "ES4-HandleProfileEnabledNotification", via: "es4", recipient: sp,
                                                   recipientRole: "m2mSP", smdp: nil, body: [1], retryClass: "standard")],
                                    operationID: operation, now: Self.now)
                try tx.upsertPLMA(PLMA(mnoID: mno, m2mSPID: sp, profileType: "M2M-3G-16K", authorisedFunctions: [.enableProfile],
                                       authorisedNotifications: [.profileEnabled]), now: Self.now)
                try tx.upsertONC(ONC(mnoID: mno, profileType: "M2M-3G-16K", discardedNotifications: [.profileDisabled]), now: Self.now)
                try tx.recordCardNotification(eis.eid, sequence: 4, type: 2, aid: [0xA0], now: Self.now)
                try tx.setSCP80Counter(eis.eid, 41)
            }
            // A second active operation on the same eUICC is refused.
            #expect(throws: StorageError(.constraint, "")) {
                try store.write { _ = try $0.insertOperation(eid: eis.eid, kind: "delete", iccid: nil, functionCallID: nil, machine: [], now: Self.now) }
            }
            // The same (caller, FunctionCallIdentifier) twice is refused.
            #expect(throws: StorageError(.constraint, "")) {
                try store.write { _ = try $0.beginFunctionCall(caller: mno, identifier: "fc-1", function: "x", digest: [], now: Self.now) }
            }
            store.database.close()
        }
        let store = try SQLiteSMSRStore(path: temp.path)
        try store.read { (tx) throws in
            #expect(try tx.party(mno)?.role == .mno)
            let call = try #require(try tx.functionCall(caller: mno, identifier: "fc-1"))
            #expect(call.state == .accepted && call.response == nil && call.requestDigest == [1, 2])
            #expect(try tx.activeOperation(eis.eid)?.kind == "enable")
            #expect(try tx.decisionCount(functionCallID: call.id) == 1)
            #expect(try tx.dueOutbox(now: Self.now, limit: 10).map(\.messageType) == ["ES4-HandleProfileEnabledNotification"])
            #expect(try tx.plmas(mno: nil, m2mSP: sp, profileType: nil).count == 1)
            #expect(try tx.oncs(mno: mno, profileType: "M2M-3G-16K").first?.discardedNotifications == [.profileDisabled])
            #expect(try tx.cardNotificationSeen(eis.eid, sequence: 4))
            #expect(try tx.downloadLease(eis.eid) == nil)
            #expect(try tx.scp80Counter(eis.eid) == 41)
        }
        let item = try #require(try store.read { try $0.dueOutbox(now: Self.now, limit: 1).first })
        try store.write { try $0.reschedule(item.id, attempts: 1, at: Timestamp(seconds: Self.now.seconds + 60), error: "HTTP 503", dead: false) }
        #expect(try store.read { try $0.dueOutbox(now: Self.now, limit: 10) }.isEmpty)
        #expect(try store.read { try $0.dueOutbox(now: Timestamp(seconds: Self.now.seconds + 60), limit: 10) }.count == 1)
        try store.write { (tx) throws in
            try tx.markDelivered(item.id, now: Self.now)
            let call = try #require(try tx.functionCall(caller: mno, identifier: "fc-1"))
            try tx.completeFunctionCall(call.id, response: [7, 7], now: Self.now)
            let operation = try #require(try tx.activeOperation(eis.eid))
            try tx.updateOperation(operation.id, state: .completed, machine: [], now: Self.now)
        }
        try store.write { (tx) throws in
            try tx.forgetCardNotification(eis.eid, sequence: 4)
            try tx.setDownloadLease(eis.eid, DownloadLease(smdp: "1.3.6.1.4.1.99999.3.1", iccid: eis.profiles[1].iccid, until: 99))
        }
        try store.read { (tx) throws in
            #expect(try tx.cardNotificationSeen(eis.eid, sequence: 4) == false, "a confirmed sequence number may come again after the wrap")
            #expect(try tx.downloadLease(eis.eid)?.until == 99)
            #expect(try tx.outbox(states: [.delivered]).count == 1)
            #expect(try tx.functionCall(caller: mno, identifier: "fc-1")?.response == [7, 7])
            #expect(try tx.activeOperations().isEmpty)
        }
    }

    @Test("A prepared EIS goes in with its keys, counter and audit record; a call answered at once is one completed row")
    func preparedRegistration() throws {
        let temp = try TempDatabase()
        let store = try SQLiteSMSRStore(path: temp.path)
        let eis = SampleMessages.eis()
        let key = SealedKey(keysetVersion: 1, keyIndex: 1, keyType: 0x88, kcv: [1, 2, 3], sealed: [UInt8](repeating: 9, count: 48))
        let audit = AuditTrailRecord(eid: eis.eid, smsrID: eis.smsrID, operationDate: Self.now, operationType: [1, 1], requesterID: "1.3.6.1.4.1.99999.1.1",
                                     operationExecutionStatus: .success)
        let new = try store.prepare(eis, keys: [key], scp80Counter: 5, audit: audit)
        try store.write { (tx) throws in
            try tx.insertEIS(new, now: Self.now)
            try tx.recordFunctionCall(caller: "1.3.6.1.4.1.99999.1.1", identifier: "reg-1", function: "ES1.RegisterEIS", digest: [1], response: [2, 3],
                                      now: Self.now)
        }
        try store.read { (tx) throws in
            var expected = eis
            expected.auditTrail = nil
            #expect(try tx.eis(eis.eid)?.eis == expected)
            #expect(try tx.isdrKeys(eis.eid) == [key])
            #expect(try tx.scp80Counter(eis.eid) == 5)
            #expect(try tx.auditTrail(eis.eid) == [audit])
            let call = try #require(try tx.functionCall(caller: "1.3.6.1.4.1.99999.1.1", identifier: "reg-1"))
            #expect(call.state == .completed && call.response == [2, 3] && call.requestDigest == [1])
        }
        // The same EID again: the UNIQUE constraint refuses it and the transaction rolls back.
        #expect(throws: StorageError(.constraint, "")) { try store.write { try $0.insertEIS(new, now: Self.now) } }
    }

    @Test("A new database takes the configured page size (4 KiB by default); an existing one keeps its own")
    func pageSize() throws {
        let temp = try TempDatabase()
        do {
            var configuration = SQLiteDatabase.Configuration()
            configuration.pageSize = 8192
            let store = try SQLiteSMSRStore(path: temp.path, configuration: configuration)
            #expect(try store.database.read { try $0.row("PRAGMA page_size")?[0].int } == 8192)
            store.database.close()
        }
        let reopened = try SQLiteSMSRStore(path: temp.path)
        #expect(try reopened.database.read { try $0.row("PRAGMA page_size")?[0].int } == 8192)
        let other = try TempDatabase()
        let fresh = try SQLiteSMSRStore(path: other.path)
        #expect(try fresh.database.read { try $0.row("PRAGMA page_size")?[0].int } == 4096)
    }
}
