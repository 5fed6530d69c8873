// The SM-DP's inventory (issue #7, first part; docs/smdp.md): Profile Types with a TCA template
// package and a pool of ICCIDs (with IMSIs, Ki and OPc), imported by the operator; an order reserves
// the next ICCID of its type and gets the template personalised with that ICCID's values
// (ProfilePackage.personalize). Templates and keys are sealed at rest with the SM-DP's storage key
// (KeySealer: AES-CBC + CMAC, bound to the Profile Type or the ICCID), opened only to personalise.
//
// Import checks everything an order will need, so an order cannot fail later for a bad pool entry:
// the template parses, every entry personalises it (ICCID, IMSI and key sizes fit), no ICCID or IMSI
// twice, none already known. One transaction: a refused batch leaves nothing.

public import M2MCore
public import M2MCrypto
public import M2MStorage
import M2MWire
import Synchronization

/// One ICCID of a pool, with what personalises it.
public struct PoolEntry: Sendable {
    public var iccid: ICCID
    public var imsi: IMSI?
    public var ki: SecureBytes?
    public var opc: SecureBytes?

    public init(iccid: ICCID, imsi: IMSI? = nil, ki: SecureBytes? = nil, opc: SecureBytes? = nil) {
        self.iccid = iccid
        self.imsi = imsi
        self.ki = ki
        self.opc = opc
    }
}

/// A refusal with its SGP.02 status (subject and reason codes).
public struct InventoryError: Error, Sendable, CustomStringConvertible {
    public let status: FunctionExecutionStatus

    init(_ subject: SubjectCode, _ reason: ReasonCode, _ message: String, identifier: String? = nil) {
        status = .failed(subject, reason, identifier: identifier, message: message)
    }

    /// "subject/reason", e.g. 8.2.5/3.7.
    public var codes: String { status.statusCodeData.map { "\($0.subject.rawValue)/\($0.reason.rawValue)" } ?? "\(status.status)" }

    public var description: String { "\(codes): \(status.statusCodeData?.message ?? "")" }
}

/// A reserved ICCID and the package personalised for it.
public struct ReservedProfile: Sendable {
    public let iccid: ICCID
    public let imsi: IMSI?
    public let profileType: String
    public let mno: OID
    public let package: [UInt8]
}

public final class SMDPInventory: Sendable {
    public let store: any SMDPStore
    let sealer: KeySealer
    let clock: any Clock
    /// Where each template (by digest) takes an order's values: one parse per template, not per order.
    let plans = Mutex<[[UInt8]: PersonalizationPlan]>([:])

    /// `storageKey`: 32 bytes (AES-128 key ‖ CMAC key), as the SM-SR's.
    public init(store: any SMDPStore, storageKey: SecureBytes, clock: any Clock = SystemClock()) throws(CryptoError) {
        self.store = store
        self.sealer = try KeySealer(storageKey: storageKey)
        self.clock = clock
    }

    static func templateContext(_ name: String) -> [UInt8] { Array("template:".utf8) + Array(name.utf8) }

    /// Personalises `template`; the plain copies of Ki and OPc it needs are zeroed afterwards (the
    /// personalisation value goes out of scope first, so the zeroing overwrites the only copy).
    static func personalize(_ template: [UInt8], iccid: ICCID, imsi: IMSI?, ki: SecureBytes?, opc: SecureBytes?) throws(ProfilePersonalizationError) -> [UInt8] {
        var kiBytes = ki?.bytes
        var opcBytes = opc?.bytes
        defer {
            if kiBytes != nil { m2mZero(&kiBytes!) }
            if opcBytes != nil { m2mZero(&opcBytes!) }
        }
        return try ProfilePackage.personalize(template, with: ProfilePersonalization(iccid: iccid, imsi: imsi, ki: kiBytes, opc: opcBytes))
    }
    static func keyContext(_ iccid: ICCID, _ which: String) -> [UInt8] { Array("\(which):".utf8) + Array(iccid.digits.utf8) }

    /// Imports (or adds to) a Profile Type: its owner, its template, and ICCIDs for its pool.
    @discardableResult
    public func importProfileType(_ name: String, mno: OID, template: [UInt8], pool: [PoolEntry]) throws(InventoryError) -> Int {
        guard !name.isEmpty, name.utf8.count <= 100 else { throw InventoryError(.profileType, .invalid, "a Profile Type name is 1–100 characters") }
        do throws(ProfilePackageError) {
            _ = try ProfilePackage(der: template)
        } catch {
            throw InventoryError(.profileType, .invalid, "the template is not a valid profile package: \(error)", identifier: name)
        }
        var seen = Set<String>()
        var seenIMSI = Set<String>()
        var items: [InventoryItem] = []
        items.reserveCapacity(pool.count)
        for entry in pool {
            guard seen.insert(entry.iccid.digits).inserted else {
                throw InventoryError(.profileICCID, .alreadyInUse, "the ICCID is twice in the pool", identifier: entry.iccid.text)
            }
            if let imsi = entry.imsi, !seenIMSI.insert(imsi.text).inserted {
                throw InventoryError(.profileICCID, .alreadyInUse, "IMSI \(imsi.text) is twice in the pool", identifier: entry.iccid.text)
            }
            do throws(ProfilePersonalizationError) {
                _ = try Self.personalize(template, iccid: entry.iccid, imsi: entry.imsi, ki: entry.ki, opc: entry.opc)
            } catch {
                throw InventoryError(.profileICCID, .invalid, "the template cannot take this entry: \(error)", identifier: entry.iccid.text)
            }
            do throws(CryptoError) {
                items.append(InventoryItem(
                    iccid: entry.iccid, profileType: name, imsi: entry.imsi,
                    sealedKi: try entry.ki.map { (ki) throws(CryptoError) in try sealer.seal(ki, context: Self.keyContext(entry.iccid, "ki")) },
                    sealedOPc: try entry.opc.map { (opc) throws(CryptoError) in try sealer.seal(opc, context: Self.keyContext(entry.iccid, "opc")) }))
            } catch {
                throw InventoryError(.functionProvider, .executionError, "sealing: \(error)")
            }
        }
        let record: ProfileTypeRecord
        do throws(CryptoError) {
            record = ProfileTypeRecord(name: name, mno: mno, sealedTemplate: try sealer.seal(SecureBytes(template), context: Self.templateContext(name)),
                                       templateDigest: SHA256.hash(template))
        } catch {
            throw InventoryError(.functionProvider, .executionError, "sealing: \(error)")
        }
        let now = clock.now()
        do {
            try store.write { tx in
                if let existing = try tx.profileType(name) {
                    guard existing.mno == mno else {
                        throw InventoryError(.profileType, .alreadyInUse, "the Profile Type belongs to \(existing.mno.text)", identifier: name)
                    }
                    // A new template must take every ICCID still waiting in the pool.
                    if existing.templateDigest != record.templateDigest {
                        for item in try tx.inventoryItems(profileType: name, state: .available) {
                            try self.check(item, fits: template)
                        }
                    }
                }
                try tx.upsertProfileType(record, now: now)
                try tx.insertInventory(items, now: now)
            }
        } catch let error as InventoryError {
            throw error
        } catch let error as StorageError where error.code == .constraint {
            throw InventoryError(.profileICCID, .alreadyInUse, "an ICCID or IMSI of the pool is already in the inventory (nothing imported)")
        } catch {
            throw InventoryError(.functionProvider, .executionError, "the SM-DP store failed: \(error)")
        }
        return items.count
    }

    /// Throws when the pool entry `item` cannot personalise `template`.
    func check(_ item: InventoryItem, fits template: [UInt8]) throws {
        let ki = try item.sealedKi.map { try sealer.open($0, context: Self.keyContext(item.iccid, "ki")) }
        let opc = try item.sealedOPc.map { try sealer.open($0, context: Self.keyContext(item.iccid, "opc")) }
        do {
            _ = try Self.personalize(template, iccid: item.iccid, imsi: item.imsi, ki: ki, opc: opc)
        } catch {
            throw InventoryError(.profileType, .invalid, "the new template cannot take ICCID \(item.iccid.text) of the pool: \(error)", identifier: item.iccid.text)
        }
    }

    /// Reserves the next ICCID of `profileType` for `eid` and personalises the template with it, in one
    /// transaction. Unknown type: 8.2.5/3.9; none left: 8.2.5/3.7.
    public func reserve(profileType: String, eid: EID, order: String) throws(InventoryError) -> ReservedProfile {
        try reserving(profileType) { tx, now in try take(profileType: profileType, iccid: nil, eid: eid, order: order, now: now, in: tx) }
    }

    /// Reserves the ICCID an order names (it must be available; `profileType`, when given, must be its
    /// type). Unknown ICCID: 8.2.1/3.9; taken: 8.2.1/3.3; another type: 8.2.5/3.10.
    public func reserve(iccid: ICCID, profileType: String?, eid: EID, order: String) throws(InventoryError) -> ReservedProfile {
        try reserving(iccid.text) { tx, now in try take(profileType: profileType, iccid: iccid, eid: eid, order: order, now: now, in: tx) }
    }

    /// Takes an ICCID for an order within `tx`: the one named, else the next of the type.
    func take(profileType: String?, iccid: ICCID?, eid: EID, order: String, now: Timestamp, in tx: any SMDPWriting) throws -> InventoryItem {
        if let iccid {
            guard let known = try tx.inventoryItem(iccid) else { throw InventoryError(.profileICCID, .unknown, "the ICCID is not in the inventory", identifier: iccid.text) }
            if let profileType, known.profileType != profileType {
                throw InventoryError(.profileType, .invalidAssociation, "the ICCID is of Profile Type \(known.profileType)", identifier: profileType)
            }
            guard let item = try tx.reserveInventory(iccid: iccid, eid: eid, order: order, now: now) else {
                throw InventoryError(.profileICCID, .alreadyInUse, "the ICCID is \(known.state.rawValue)", identifier: iccid.text)
            }
            return item
        }
        guard let profileType else { throw InventoryError(.profileType, .mandatoryElementMissing, "an order names a Profile Type or an ICCID") }
        guard try tx.profileType(profileType) != nil else { throw InventoryError(.profileType, .unknown, "unknown Profile Type", identifier: profileType) }
        guard let item = try tx.reserveInventory(profileType: profileType, eid: eid, order: order, now: now) else {
            throw InventoryError(.profileType, .unavailable, "no ICCID left for this Profile Type", identifier: profileType)
        }
        return item
    }

    func reserving(_ what: String, _ take: (any SMDPWriting, Timestamp) throws -> InventoryItem) throws(InventoryError) -> ReservedProfile {
        let now = clock.now()
        do {
            return try store.write { tx throws -> ReservedProfile in try personalized(try take(tx, now), in: tx) }
        } catch let error as InventoryError {
            throw error
        } catch {
            throw InventoryError(.functionProvider, .executionError, "reserving from the inventory: \(error)", identifier: what)
        }
    }

    /// The package of a reserved (or installed) ICCID, personalised again: the same bytes as when it
    /// was reserved (personalisation is deterministic), so a resumed download needs no stored copy.
    public func package(for iccid: ICCID) throws(InventoryError) -> ReservedProfile {
        do {
            return try store.read { tx throws -> ReservedProfile in
                guard let item = try tx.inventoryItem(iccid), item.state == .reserved || item.state == .installed else {
                    throw InventoryError(.profileICCID, .unknown, "the ICCID is not reserved", identifier: iccid.text)
                }
                return try personalized(item, in: tx)
            }
        } catch let error as InventoryError {
            throw error
        } catch {
            throw InventoryError(.functionProvider, .executionError, "reading the inventory: \(error)", identifier: iccid.text)
        }
    }

    func personalized(_ item: InventoryItem, in tx: any SMDPReading) throws -> ReservedProfile {
        guard let type = try tx.profileType(item.profileType) else {
            throw InventoryError(.profileType, .unknown, "unknown Profile Type", identifier: item.profileType)
        }
        let template = try sealer.open(type.sealedTemplate, context: Self.templateContext(item.profileType))
        let ki = try item.sealedKi.map { try sealer.open($0, context: Self.keyContext(item.iccid, "ki")) }
        let opc = try item.sealedOPc.map { try sealer.open($0, context: Self.keyContext(item.iccid, "opc")) }
        var plainTemplate = template.bytes
        defer { m2mZero(&plainTemplate) }
        let plan: PersonalizationPlan
        if let known = plans.withLock({ $0[type.templateDigest] }) {
            plan = known
        } else {
            plan = try PersonalizationPlan(template: plainTemplate)
            plans.withLock { $0[type.templateDigest] = plan }
        }
        // Import checked this entry with the full `personalize` (parsed back); the plan replaces the same ranges.
        var kiBytes = ki?.bytes
        var opcBytes = opc?.bytes
        defer {
            if kiBytes != nil { m2mZero(&kiBytes!) }
            if opcBytes != nil { m2mZero(&opcBytes!) }
        }
        let package = try plan.apply(to: plainTemplate, ProfilePersonalization(iccid: item.iccid, imsi: item.imsi, ki: kiBytes, opc: opcBytes))
        return ReservedProfile(iccid: item.iccid, imsi: item.imsi, profileType: item.profileType, mno: type.mno, package: package)
    }

    /// Marks a reserved ICCID installed (its download completed) or released (the order failed: it
    /// is not reused — a released ICCID may have reached a card). Only a reserved ICCID settles.
    public func settle(_ iccid: ICCID, installed: Bool) throws(InventoryError) {
        let now = clock.now()
        do {
            try store.write { try $0.setInventoryState(iccid, installed ? .installed : .released, from: .reserved, now: now) }
        } catch {
            throw InventoryError(.profileICCID, .unknown, "\(error)", identifier: iccid.text)
        }
    }

    /// How many ICCIDs each Profile Type has in each state.
    public func counts() throws -> [InventoryCount] { try store.read { try $0.inventoryCounts() } }
}
