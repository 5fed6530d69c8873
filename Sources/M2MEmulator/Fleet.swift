// A fleet of emulated eUICCs: N cards made deterministically from a seed, stored compactly, serving
// many sessions at once, saved to and restored from one file (docs/emulator.md).
//
// Identity  card i's EID, SK.ECASD, SCP80 keys and SCP81 PSK are derived from (seed, i) by
//           CardIdentity; EID digits 15–30 are the index, so an EID finds its card without a table.
// Storage   each card is its compact record (CardRecord.swift), empty while the card is in its
//           factory state (so creating a fleet allocates nothing per card). Cards are spread over
//           shards, each behind a Synchronization.Mutex: sessions on cards of different shards run
//           in parallel. A card is materialised (EUICC value) only inside `withCard`; a card with an
//           open multi-command session (key establishment, download, SCP03) stays materialised in its
//           shard until the session ends; idle cards hold no EVP_PKEY, SecureBytes or session.
// EIS       CERT.ECASD.ECKA is signed by the EUM key given to the fleet when first asked for, and
//           its r‖s kept in the card's record (the rest is derived), so the certificate — and an
//           EIS built from it — stays the same across save and restore.
// File      versioned binary, written to a temporary file and renamed (atomic); restore checks the
//           magic, version, seed fingerprint, curve, PK.CI, EUM and a SHA-256 over the whole file.

public import Foundation
public import M2MCore
public import M2MCrypto
public import M2MWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why a fleet operation failed.
public struct FleetError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable {
        case unknownCard, noEUM, fileFormat, unsupportedVersion, wrongSeed, wrongCurve, wrongCI, wrongEUM, io, crypto
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public static func == (lhs: FleetError, rhs: FleetError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { detail }
}

/// The EUM as far as a fleet needs it: the key that signs CERT.ECASD.ECKA, and the identifiers
/// that go into the EIS.
public struct EUMIssuer: Sendable {
    public let key: ECPrivateKey
    public let eumID: OID
    /// The CI whose chain the ECASD certificate belongs to (caID of the ECASD's CA key set).
    public let ciID: OID

    public init(key: ECPrivateKey, eumID: OID = "1.3.6.1.4.1.99999.1.1", ciID: OID = "1.3.6.1.4.1.99999.0.1") {
        self.key = key
        self.eumID = eumID
        self.ciID = ciID
    }
}

/// Progress of a long fleet operation: cards done, of total.
public typealias FleetProgress = @Sendable (_ done: Int, _ total: Int) -> Void

/// N emulated eUICCs.
public final class Fleet: Sendable {
    public let seed: [UInt8]
    public let curve: Curve
    /// PK.CI.ECDSA, the ECASD trust anchor of every card.
    public let ciPublicKey: ECPublicKey
    /// The EUM key and identifiers, when the fleet can issue ECASD certificates and EIS data.
    public let eum: EUMIssuer?
    public let count: Int
    /// Memory of a new card (bytes).
    public let totalMemory: Int
    /// CERT.ECASD.ECKA expiry (BCD YYYYMMDD), fixed per fleet so certificates are reproducible.
    public let certificateExpiry: [UInt8]

    let shards: [FleetShard]
    /// The record of a card in its factory state (stored as an empty record).
    let factoryRecord: [UInt8]
    /// CA identifier of CERT.ECASD.ECKA: the first 8 bytes of SHA-256 of the EUM's public point.
    let eumKeyIdentifier: [UInt8]

    /// 2055-12-31 as BCD YYYYMMDD (written out: GPCertificate.bcdDate mis-encodes, docs/emulator.md).
    public static let defaultCertificateExpiry: [UInt8] = [0x20, 0x55, 0x12, 0x31]

    /// The default shard count: enough for parallel sessions without per-card locks.
    public static let defaultShardCount = 256
    /// Recently used cards kept materialised per shard (a write-back cache: a card the platform
    /// talks to in bursts — script, PoR, MO poll, confirmation — is decoded once per burst).
    public let recentPerShard: Int

    /// Creates `count` cards in their factory state (no ISD-P, counters zero).
    public init(
        seed: [UInt8], count: Int, curve: Curve, ciPublicKey: ECPublicKey, eum: EUMIssuer? = nil, totalMemory: Int = 512 * 1024,
        certificateExpiry: [UInt8] = Fleet.defaultCertificateExpiry, shardCount: Int = Fleet.defaultShardCount,
        recentPerShard: Int = 4, progress: FleetProgress? = nil
    ) throws(FleetError) {
        guard count >= 0, count <= Int(UInt32.max) else { throw FleetError(.fileFormat, "a fleet holds 0 to 2³²−1 cards, not \(count)") }
        guard certificateExpiry.count == 4 else { throw FleetError(.fileFormat, "the certificate expiry is a 4-byte BCD date") }
        guard ciPublicKey.curve == curve else { throw FleetError(.wrongCurve, "PK.CI is on \(ciPublicKey.curve), the fleet on \(curve)") }
        if let eum, eum.key.curve != curve { throw FleetError(.wrongCurve, "the EUM key is on \(eum.key.curve), the fleet on \(curve)") }
        self.seed = seed
        self.count = count
        self.curve = curve
        self.ciPublicKey = ciPublicKey
        self.eum = eum
        self.totalMemory = totalMemory
        self.certificateExpiry = certificateExpiry
        factoryRecord = EUICC.factoryRecord(totalMemory: totalMemory)
        eumKeyIdentifier = Array(SHA256.hash(eum?.key.publicKey.x962Representation ?? []).prefix(8))
        self.recentPerShard = max(0, recentPerShard)
        let shardCount = max(1, min(shardCount, count))
        var shards: [FleetShard] = []
        shards.reserveCapacity(shardCount)
        var created = 0
        for shard in 0..<shardCount {
            let slots = count / shardCount + (shard < count % shardCount ? 1 : 0)
            shards.append(FleetShard(records: [[UInt8]](repeating: [], count: slots)))
            created += slots
            progress?(created, count)
        }
        self.shards = shards
    }

    // MARK: - Identity and lookup

    public func identity(at index: Int) -> CardIdentity { CardIdentity(seed: seed, index: UInt64(index), curve: curve) }
    public func eid(at index: Int) -> EID { identity(at: index).eid }

    /// The card with this EID: its index is EID digits 15–30, checked against the derived EID.
    public func index(of eid: EID) -> Int? {
        let digits = Array(eid.text.utf8)
        guard digits.count == 32 else { return nil }
        var index = 0
        for digit in digits[14..<30] {
            index = index * 10 + Int(digit - 0x30)
            guard index < count else { return nil }
        }
        return self.eid(at: index) == eid ? index : nil
    }

    // MARK: - Sessions

    /// Runs `body` on card `index` (materialised from its record) and stores the result back.
    /// Sessions on cards in different shards run in parallel; a card is never used by two at once.
    public func withCard<R, E: Error>(at index: Int, _ body: (inout EUICC) throws(E) -> R) throws(E) -> R {
        precondition(index >= 0 && index < count, "card \(index) is not in a fleet of \(count)")
        let shard = shards[index % shards.count]
        let slot = index / shards.count
        var outcome: Result<R, E>?
        shard.state.withLock { state in
            // Taken out of its table, so the body mutates it in place (no copy-on-write).
            var card: EUICC
            if let open = state.active.removeValue(forKey: slot) {
                card = open
            } else if let recent = state.recent.removeValue(forKey: slot) {
                card = recent
                if let position = state.order.firstIndex(of: slot) { state.order.remove(at: position) }
            } else {
                card = materialise(index, record: state.records[slot])
            }
            do throws(E) { outcome = .success(try body(&card)) } catch { outcome = .failure(error) }
            if card.hasOpenSession {
                state.active[slot] = card
            } else {
                keepRecent(card, slot: slot, in: &state)
            }
        }
        return try outcome!.get()
    }

    /// Keeps a card materialised among the shard's recently used ones; past `recentPerShard` the
    /// oldest goes back to its record (written only when it changed).
    func keepRecent(_ card: EUICC, slot: Int, in state: inout FleetShard.State) {
        state.recent[slot] = card
        state.order.append(slot)
        while state.recent.count > recentPerShard, !state.order.isEmpty {
            let oldest = state.order.removeFirst()
            guard let evicted = state.recent.removeValue(forKey: oldest) else { continue }
            let record = compactRecord(evicted)
            if record != state.records[oldest] { state.records[oldest] = record }
        }
    }

    /// Writes every recently used card back to its record (the cards stay usable).
    public func flushRecent() {
        for shard in shards {
            shard.state.withLock { state in
                for (slot, card) in state.recent {
                    let record = compactRecord(card)
                    if record != state.records[slot] { state.records[slot] = record }
                }
                state.recent = [:]
                state.order = []
            }
        }
    }

    /// `withCard` for the card with this EID.
    public func withCard<R>(eid: EID, _ body: (inout EUICC) throws -> R) throws -> R {
        guard let index = index(of: eid) else { throw FleetError(.unknownCard, "no card \(eid.text) in this fleet") }
        return try withCard(at: index, body)
    }

    /// A copy of card `index` (its sessions included).
    public func card(at index: Int) -> EUICC { withCard(at: index) { $0 } }

    /// The card's compact record as stored now (empty: factory state).
    public func record(at index: Int) -> [UInt8] {
        let shard = shards[index % shards.count]
        let slot = index / shards.count
        return shard.state.withLock { state in
            if let card = state.active[slot] ?? state.recent[slot] { return compactRecord(card) }
            return state.records[slot]
        }
    }

    /// A card reset: ends the card's open sessions.
    public func reset(at index: Int) { withCard(at: index) { $0.endSessions() } }

    /// Cards with an open session now.
    public var activeCount: Int { shards.reduce(0) { total, shard in total + shard.state.withLock { $0.active.count } } }

    func materialise(_ index: Int, record: [UInt8]) -> EUICC {
        let identity = identity(at: index)
        guard !record.isEmpty else { return EUICC(identity: identity, ciPublicKey: ciPublicKey, totalMemory: totalMemory) }
        do {
            return try EUICC(identity: identity, ciPublicKey: ciPublicKey, record: record)
        } catch {
            // Records are written only by encodedState() and checked when a file is restored.
            preconditionFailure("card \(index): \(error)")
        }
    }

    /// The record to keep: empty for the factory state, else the record (allocated at its size).
    func compactRecord(_ card: EUICC) -> [UInt8] {
        let record = card.encodedState()
        return record == factoryRecord ? [] : record
    }

    // MARK: - ECASD certificate and EIS

    /// CERT.ECASD.ECKA of card `index`, signed by the fleet's EUM. The first call signs it and keeps
    /// the signature in the card; later calls (and restored fleets) return the same certificate.
    public func ecasdCertificate(at index: Int) throws(FleetError) -> GPCertificate {
        let identity = identity(at: index)
        let eid = identity.eid.bytes
        let key: ECPublicKey
        do {
            key = try identity.ecasdKey().publicKey
        } catch {
            throw FleetError(.crypto, "SK.ECASD of card \(index): \(error)")
        }
        var certificate = GPCertificate(
            serialNumber: Array(eid.suffix(8)), caIdentifier: eumKeyIdentifier, subjectIdentifier: eid, keyUsage: [0x00, 0x80],
            expirationDate: certificateExpiry, discretionaryData: [], publicKeyPoint: key.x962Representation,
            keyParameterReference: curve.keyParameterReference)
        if let signature = withCard(at: index, { $0.ecasdCertificateSignature }) {
            certificate.signature = signature
            return certificate
        }
        guard let eum else { throw FleetError(.noEUM, "the fleet has no EUM key to sign CERT.ECASD.ECKA (give it the PKI's eum/eum.key.pem)") }
        let signed: GPCertificate
        do {
            signed = try GPCertificateVerifier.sign(certificate, with: eum.key)
        } catch {
            throw FleetError(.crypto, "signing CERT.ECASD.ECKA of card \(index): \(error)")
        }
        let kept = withCard(at: index) { card in
            if card.ecasdCertificateSignature == nil { card.ecasdCertificateSignature = signed.signature }
            return card.ecasdCertificateSignature ?? signed.signature
        }
        certificate.signature = kept
        return certificate
    }

    /// The part of card `index`'s EIS the EUM signs.
    public func eumSignedInfo(at index: Int, productionDate: Timestamp) throws(FleetError) -> EUMSignedInfo {
        guard let eum else { throw FleetError(.noEUM, "the fleet has no EUM key: EIS data needs the PKI's EUM") }
        let certificate = try ecasdCertificate(at: index)
        let ecasd = SecurityDomain(
            aid: EUICC.ecasdAID, sin: [0x01, 0x02, 0x03, 0x04, 0x05], sdin: HexBinary(Array(identity(at: index).eid.bytes.suffix(8))),
            role: .ecasd,
            keysets: [Keyset(version: 115, type: .ca, items: [
                .certificate(GPCertificateReference(index: 1, caID: eum.ciID, value: HexBinary(certificate.encoded))),
            ])])
        return EUMSignedInfo(
            eid: eid(at: index), eumID: eum.eumID, productionDate: productionDate, platformType: "M2MRSP emulated eUICC",
            platformVersion: try! ThreeDigitVersion(text: "1.0.0"), isdPLoadFileAID: EUICC.elfAID, isdPModuleAID: EUICC.moduleAID,
            ecasd: ecasd,
            capabilities: EUICCCapabilities(
                cattpSupport: false, httpSupport: true, httpVersion: try! ThreeDigitVersion(text: "1.1.0"),
                securePacketVersion: try! ThreeDigitVersion(text: "12.1.0"),
                remoteProvisioningVersion: try! ThreeDigitVersion(text: "3.2.0")))
    }

    /// Card `index`'s EIS for ES1.RegisterEIS, around `signedInfo` and the EUM's `signature` over it
    /// (M2MRoles' EISSignature signs; the emulator does not do XML). The ISD-R key sets carry the
    /// SCP80 keys (version 1: KIc index 1, KID index 2, AES) and the SCP81 PSK (version 0x40) in
    /// clear: test fleets only (a real EUM encrypts them with a transport key). Profiles are listed
    /// when `mnoID` is given (the card does not know its Profiles' owners).
    public func eis(
        at index: Int, signedInfo: EUMSignedInfo, signature: XMLSignature, smsrID: OID, mnoID: OID? = nil
    ) throws(FleetError) -> EIS {
        let identity = identity(at: index)
        let card = card(at: index)
        let scp80 = identity.scp80Keys
        let psk = identity.scp81PSK
        func key(_ index: Int, _ value: SecureBytes, type: UInt8) throws(FleetError) -> Keyset.Item {
            guard let kcv = try? KeyCheckValue.aes(value) else { throw FleetError(.crypto, "key check value") }
            return .key(Key(kcv: HexBinary(kcv), index: index, components: [.init(type: type, value: HexBinary(value.bytes))]))
        }
        let isdR = SecurityDomain(
            aid: EUICC.isdRAID, tars: [try! TAR(bytes: SCP80TAR.isdR.bytes)], sin: [0x01, 0x02, 0x03, 0x04, 0x05],
            sdin: HexBinary(Array(identity.eid.bytes.suffix(8))), role: .isdR,
            keysets: [
                Keyset(version: 1, type: .scp80, counter: Int(card.scp80Counter.value),
                       items: [try key(1, scp80.kic, type: 0x88), try key(2, scp80.kid, type: 0x88)]),
                Keyset(version: 0x40, type: .scp81, items: [try key(1, psk, type: 0x85)]),
            ])
        var profiles: [ProfileInfo] = []
        if let mnoID {
            for isdp in card.isdps {
                guard let iccid = isdp.iccid else { continue }
                let state: ProfileState = isdp.lifeCycle == .enabled ? .enabled : (isdp.lifeCycle == .disabled ? .disabled : .created)
                profiles.append(ProfileInfo(
                    iccid: iccid, isdPAID: isdp.aid, mnoID: mnoID, fallbackAttribute: isdp.fallBack, emergencyProfileAttribute: isdp.emergency,
                    state: state, profileType: isdp.profileType.flatMap { try? String100(text: $0) }, allocatedMemory: isdp.allocatedMemory))
            }
        }
        return EIS(
            eumSignedInfo: signedInfo, eumSignature: signature, remainingMemory: card.freeMemory, availableMemoryForProfiles: card.totalMemory,
            smsrID: smsrID, profiles: profiles, isdR: isdR)
    }

    // MARK: - File

    /// File magic and the format version this build writes and reads.
    public static let fileMagic = Array("M2MFLEET".utf8)
    public static let fileVersion: UInt16 = 1

    /// SHA-256("m2mrsp fleet seed" ‖ seed): what the file records of the seed.
    public static func seedFingerprint(_ seed: [UInt8]) -> [UInt8] { SHA256.hash(Array("m2mrsp fleet seed".utf8) + seed) }

    /// Writes the fleet to `url` atomically (a temporary file in the same directory, then rename).
    /// Open sessions are not saved: a restored card starts as after a reset.
    ///
    /// Layout: "M2MFLEET" ‖ version u16 ‖ curve (key parameter reference) u8 ‖ count u32 ‖ total
    /// memory u32 ‖ certificate expiry (4) ‖ seed fingerprint (32) ‖ PK.CI (u8 length ‖ point) ‖ EUM
    /// public key (u8 length ‖ point, 0 when none) ‖ for each card: u32 length ‖ record (0: factory
    /// state) ‖ SHA-256 of everything before.
    public func save(to url: URL, progress: FleetProgress? = nil) throws(FleetError) {
        var header = RecordWriter()
        header.bytes(Fleet.fileMagic)
        header.u16(Fleet.fileVersion)
        header.u8(curve.keyParameterReference)
        header.u32(UInt32(count))
        header.u32(UInt32(clamping: totalMemory))
        header.bytes(certificateExpiry)
        header.bytes(Fleet.seedFingerprint(seed))
        header.short(ciPublicKey.x962Representation)
        header.short(eum?.key.publicKey.x962Representation ?? [])

        // A snapshot per shard (copy-on-write arrays), with open sessions' persistent state.
        let snapshots: [[[UInt8]]] = shards.map { shard in
            shard.state.withLock { state in
                var records = state.records
                for (slot, card) in state.recent { records[slot] = compactRecord(card) }
                for (slot, card) in state.active { records[slot] = compactRecord(card) }
                return records
            }
        }
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UInt32.random(in: 0...UInt32.max)).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil),
            let handle = try? FileHandle(forWritingTo: temporary)
        else { throw FleetError(.io, "cannot create \(temporary.path)") }
        let hasher = SHA256Hasher()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        func flush() throws(FleetError) {
            hasher.update(buffer)
            do { try handle.write(contentsOf: Data(buffer)) } catch { throw FleetError(.io, "writing \(temporary.path): \(error)") }
            buffer.removeAll(keepingCapacity: true)
        }
        do throws(FleetError) {
            buffer += header.out
            let step = max(1, count / 200)
            for index in 0..<count {
                let record = snapshots[index % shards.count][index / shards.count]
                let n = UInt32(record.count)
                buffer.append(UInt8(n >> 24)); buffer.append(UInt8(n >> 16 & 0xFF)); buffer.append(UInt8(n >> 8 & 0xFF)); buffer.append(UInt8(n & 0xFF))
                buffer += record
                if buffer.count >= 1 << 20 { try flush() }
                if index % step == step - 1 { progress?(index + 1, count) }
            }
            try flush()
            let digest = hasher.finalize()
            do {
                try handle.write(contentsOf: Data(digest))
                try handle.synchronize()
                try handle.close()
            } catch { throw FleetError(.io, "writing \(temporary.path): \(error)") }
            guard rename(temporary.path, url.path) == 0 else { throw FleetError(.io, "cannot rename \(temporary.path) to \(url.path)") }
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
        progress?(count, count)
    }

    /// Reads a fleet file written by `save`. The seed must be the one the fleet was made with, and
    /// `curve`, `ciPublicKey` and `eum`, when given, must match the file; every record is checked.
    public static func restore(
        from url: URL, seed: [UInt8], curve: Curve? = nil, ciPublicKey: ECPublicKey? = nil, eum: EUMIssuer? = nil,
        shardCount: Int = Fleet.defaultShardCount, recentPerShard: Int = 4, progress: FleetProgress? = nil
    ) throws(FleetError) -> Fleet {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch { throw FleetError(.io, "cannot read \(url.path): \(error)") }
        let bytes = [UInt8](data)
        guard bytes.count >= Fleet.fileMagic.count + 2, Array(bytes.prefix(8)) == Fleet.fileMagic else {
            throw FleetError(.fileFormat, "\(url.path) is not a fleet file (no M2MFLEET magic)")
        }
        let version = UInt16(bytes[8]) << 8 | UInt16(bytes[9])
        guard version == Fleet.fileVersion else {
            throw FleetError(.unsupportedVersion, "\(url.path) is fleet file format version \(version); this build reads version \(Fleet.fileVersion)")
        }
        guard bytes.count >= 42,
            ConstantTime.equal(SHA256.hash(bytes[..<(bytes.count - 32)]), Array(bytes.suffix(32)))
        else { throw FleetError(.fileFormat, "\(url.path) is damaged (its SHA-256 does not match)") }
        var r = RecordReader(bytes, range: 10..<(bytes.count - 32))
        do {
            guard let fileCurve = Curve(keyParameterReference: try r.u8()) else { throw CardRecordError("unknown curve") }
            if let curve, curve != fileCurve { throw FleetError(.wrongCurve, "\(url.path) holds a \(fileCurve) fleet, not \(curve)") }
            let count = Int(try r.u32())
            let totalMemory = Int(try r.u32())
            let expiry = try r.bytes(4)
            let fingerprint = try r.bytes(32)
            guard fingerprint == Fleet.seedFingerprint(seed) else {
                throw FleetError(.wrongSeed, "\(url.path) was made with a different seed (give the --seed the fleet was created with)")
            }
            let ciPoint = try r.short()
            let eumPoint = try r.short()
            guard let fileCI = try? ECPublicKey(x962Representation: ciPoint, curve: fileCurve) else { throw CardRecordError("invalid PK.CI") }
            if let ciPublicKey, ciPublicKey != fileCI {
                throw FleetError(.wrongCI, "\(url.path) trusts another PK.CI than the one given (another PKI)")
            }
            if let eum, !eumPoint.isEmpty, eum.key.publicKey.x962Representation != eumPoint {
                throw FleetError(.wrongEUM, "\(url.path) holds ECASD certificates signed by another EUM key than the one given")
            }
            let fleet = try Fleet(seed: seed, count: count, curve: fileCurve, ciPublicKey: fileCI, eum: eum, totalMemory: totalMemory,
                                  certificateExpiry: expiry, shardCount: shardCount, recentPerShard: recentPerShard)
            let step = max(1, count / 200)
            for index in 0..<count {
                if index % step == step - 1 { progress?(index + 1, count) }
                let length = Int(try r.u32())
                guard length > 0 else { continue }
                let record = try r.bytes(length)
                // Check it reads exactly; keep the bytes.
                _ = try EUICC(identity: fleet.identity(at: index), ciPublicKey: fileCI, record: record)
                let shard = fleet.shards[index % fleet.shards.count]
                shard.state.withLock { $0.records[index / fleet.shards.count] = record }
            }
            guard r.isAtEnd else { throw CardRecordError("bytes after the last card") }
            progress?(count, count)
            return fleet
        } catch let error as FleetError {
            throw error
        } catch {
            throw FleetError(.fileFormat, "\(url.path): \(error)")
        }
    }
}

extension EUICC {
    /// The record of a card in its factory state.
    static func factoryRecord(totalMemory: Int) -> [UInt8] {
        var w = RecordWriter()
        w.u8(recordVersion)
        w.u8(0)
        w.u32(UInt32(clamping: totalMemory))
        w.u16(0)
        w.u40(0)
        w.u40(0)
        w.u8(0)
        w.u16(0)
        return w.out
    }
}

/// One shard of a fleet: its cards' records and its materialised cards with open sessions.
final class FleetShard: Sendable {
    struct State: Sendable {
        /// Slot → compact record (empty: factory state).
        var records: [[UInt8]]
        /// Slot → card with an open session.
        var active: [Int: EUICC] = [:]
        /// Slot → recently used card without a session, and the order they came in.
        var recent: [Int: EUICC] = [:]
        var order: [Int] = []
    }

    let state: Mutex<State>

    init(records: [[UInt8]]) { state = Mutex(State(records: records)) }
}
