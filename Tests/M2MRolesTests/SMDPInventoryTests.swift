// The SM-DP's inventory (issue #7, first part): Profile Types imported with a TS.48 template and a
// pool; orders reserve ICCIDs in order and get the template personalised; unknown types and empty
// pools answer with their SGP.02 codes; a bad pool is refused whole; templates and keys are sealed
// at rest (not in the database file in clear).

import Foundation
import M2MCore
import M2MCrypto
import M2MRoles
import M2MStorage
import M2MWire
import Testing

@Suite("SM-DP inventory")
struct SMDPInventoryTests {
    static let mno: OID = "1.3.6.1.4.1.99999.4.1"
    static let eid = try! EID(text: "89049032123451234512345678901235")

    struct Fixture {
        let directory: URL
        let inventory: SMDPInventory
        let template: [UInt8]
        var path: String { directory.appendingPathComponent("smdp.sqlite").path }

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("m2mrsp-smdp-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let store = try SQLiteSMDPStore(path: directory.appendingPathComponent("smdp.sqlite").path)
            inventory = try SMDPInventory(store: store, storageKey: SecureBytes(SecureRandom.bytes(32)))
            template = Array(try Data(contentsOf: SMSRHarness.repository.appendingPathComponent("Tests/M2MWireTests/Fixtures/profiles/TS48v5_SAIP2.1A_NoBERTLV.der")))
        }

        func cleanUp() { try? FileManager.default.removeItem(at: directory) }
    }

    static func pool(_ count: Int, from first: Int = 0) throws -> [PoolEntry] {
        try (first..<(first + count)).map { k in
            PoolEntry(iccid: try ICCID(withoutCheckDigit: String(format: "89445010000000%05d", k)), imsi: try IMSI(text: String(format: "2080100000%05d", k)),
                      ki: SecureBytes([UInt8](repeating: UInt8(k & 0xFF), count: 16)), opc: SecureBytes([UInt8](repeating: 0xA5, count: 16)))
        }
    }

    @Test("Import, then orders reserve ICCIDs in order, each getting the template personalised with its values; the pool runs out with 8.2.5/3.7")
    func reserve() throws {
        let f = try Fixture()
        defer { f.cleanUp() }
        #expect(try f.inventory.importProfileType("M2M-3G-16K", mno: Self.mno, template: f.template, pool: try Self.pool(3)) == 3)
        var iccids: [String] = []
        for k in 0..<3 {
            let reserved = try f.inventory.reserve(profileType: "M2M-3G-16K", eid: Self.eid, order: "order-\(k)")
            let values = try ProfilePackage.personalizedValues(reserved.package)
            #expect(values.headerICCID.digits == reserved.iccid.digits && values.imsi == reserved.imsi && reserved.mno == Self.mno)
            #expect(values.keys.allSatisfy { $0.ki == [UInt8](repeating: UInt8(k), count: 16) && $0.opc == [UInt8](repeating: 0xA5, count: 16) })
            iccids.append(reserved.iccid.digits)
        }
        #expect(iccids == iccids.sorted() && Set(iccids).count == 3)
        do {
            _ = try f.inventory.reserve(profileType: "M2M-3G-16K", eid: Self.eid, order: "order-3")
            Issue.record("a fourth reservation from a pool of three")
        } catch {
            #expect(error.codes == "8.2.5/3.7")
        }
        do {
            _ = try f.inventory.reserve(profileType: "M2M-LTE", eid: Self.eid, order: "order-4")
            Issue.record("a reservation of an unknown type")
        } catch {
            #expect(error.codes == "8.2.5/3.9")
        }
        try f.inventory.settle(try ICCID(text: iccids[0]), installed: true)
        let counts = try f.inventory.counts()
        #expect(counts.contains { $0.state == .installed && $0.count == 1 } && counts.contains { $0.state == .reserved && $0.count == 2 })
    }

    @Test("A bad pool is refused whole: a duplicate ICCID, an ICCID already imported, a key of the wrong size, a broken template; another owner's type")
    func refusals() throws {
        let f = try Fixture()
        defer { f.cleanUp() }
        try f.inventory.importProfileType("T", mno: Self.mno, template: f.template, pool: try Self.pool(2))
        var duplicate = try Self.pool(2, from: 10)
        duplicate.append(duplicate[0])
        #expect(throws: InventoryError.self) { try f.inventory.importProfileType("T", mno: Self.mno, template: f.template, pool: duplicate) }
        let overlapping = try Self.pool(3, from: 1)  // ICCID 1 exists
        do {
            try f.inventory.importProfileType("T", mno: Self.mno, template: f.template, pool: overlapping)
            Issue.record("an ICCID imported twice")
        } catch {
            #expect(error.codes == "8.2.1/3.3")
        }
        var badKey = try Self.pool(1, from: 20)
        badKey[0].ki = SecureBytes([1, 2, 3])
        #expect(throws: InventoryError.self) { try f.inventory.importProfileType("T", mno: Self.mno, template: f.template, pool: badKey) }
        #expect(throws: InventoryError.self) { try f.inventory.importProfileType("U", mno: Self.mno, template: Array(f.template.prefix(100)), pool: []) }
        #expect(throws: InventoryError.self) { try f.inventory.importProfileType("T", mno: "1.3.6.1.4.1.99999.4.2", template: f.template, pool: try Self.pool(1, from: 30)) }
        // Nothing of the refused batches stayed.
        #expect(try f.inventory.counts().map(\.count).reduce(0, +) == 2)
    }

    @Test("Templates and keys are sealed at rest: neither the template nor a Ki appears in the database file")
    func sealedAtRest() throws {
        let f = try Fixture()
        defer { f.cleanUp() }
        var pool = try Self.pool(1)
        let ki = (0..<16).map { UInt8(0xC0 + $0) }
        pool[0].ki = SecureBytes(ki)
        try f.inventory.importProfileType("T", mno: Self.mno, template: f.template, pool: pool)
        (f.inventory.store as? SQLiteSMDPStore)?.database.close()
        var file = Array(try Data(contentsOf: URL(fileURLWithPath: f.path)))
        if let wal = try? Data(contentsOf: URL(fileURLWithPath: f.path + "-wal")) { file += Array(wal) }
        func contains(_ needle: [UInt8]) -> Bool { file.count >= needle.count && (0...(file.count - needle.count)).contains { Array(file[$0..<($0 + needle.count)]) == needle } }
        #expect(!contains(ki))
        #expect(!contains(Array(f.template[200..<240])), "a slice of the template")
    }

    @Test("Review regressions: one ICCID padded or not is one ICCID; only a reserved ICCID settles; a new template is checked against the waiting pool")
    func regressions() throws {
        let f = try Fixture()
        defer { f.cleanUp() }
        let iccid = try ICCID(withoutCheckDigit: "894450100000000002")  // 19 digits
        try f.inventory.importProfileType("T", mno: Self.mno, template: f.template, pool: [PoolEntry(iccid: iccid)])
        let padded = try ICCID(text: iccid.text + "F")
        do {
            try f.inventory.importProfileType("T", mno: Self.mno, template: f.template, pool: [PoolEntry(iccid: padded)])
            Issue.record("the F-padded form imported as another ICCID")
        } catch {
            #expect(error.codes == "8.2.1/3.3")
        }
        #expect(throws: InventoryError.self) { try f.inventory.settle(iccid, installed: true) }  // still available
        let reserved = try f.inventory.reserve(profileType: "T", eid: Self.eid, order: "o")
        try f.inventory.settle(try ICCID(text: reserved.iccid.digits + "F"), installed: true)
        #expect(throws: InventoryError.self) { try f.inventory.settle(iccid, installed: false) }  // installed is final
        // Another valid template for the type: checked against the pool (here it fits) and taken.
        let other = Array(try Data(contentsOf: SMSRHarness.repository.appendingPathComponent("Tests/M2MWireTests/Fixtures/profiles/TS48v2_SAIP2.1_BERTLV.der")))
        try f.inventory.importProfileType("T", mno: Self.mno, template: other, pool: try Self.pool(1, from: 40))
        #expect(try ProfilePackage(der: try f.inventory.reserve(profileType: "T", eid: Self.eid, order: "o2").package).totalSize == other.count)
    }
}
