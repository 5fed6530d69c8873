// The compact stored form of a card: the persistent state of an EUICC as one small byte string.
// A fleet keeps idle cards in this form (a few hundred bytes with one Profile, docs/emulator.md
// §Memory) and writes the same bytes to its file; a card is materialised as an EUICC value only
// while a session runs on it. Secrets are never stored when they can be derived: the identity
// (EID, SK.ECASD, SCP80 keys, SCP81 PSK) comes from the fleet seed and the card's index
// (CardIdentity). What is stored is what the card learnt: ISD-Ps and their SCP03 keys, counters,
// notifications, parameters set over the air, CERT.ECASD.ECKA's signature.
//
// Layout (record version 1; integers big endian):
//   version u8 = 1 | flags u8 (01 certificate signature, 02 SM-SR addressing parameters, 04 IMEI
//   other than the default, 08 unreachable ICCIDs, 10 ISD-R key sets changed over the air) | total memory u32 | next notification sequence
//   u16 | SCP80 counter u40 | MO counter u40 | [signature: u8 length ‖ bytes] | [addressing: u16
//   length ‖ bytes] | [IMEI: u8 length ‖ bytes] | ISD-P count u8, each ISD-P:
//     AID (u8 length ‖ bytes) | life cycle u8 | POL1 u8 | flags u8 (01 fall-back, 02 emergency,
//     04 ICCID, 08 Profile type, 10 digest, 20 SCP03 keys, 40 connectivity parameters) |
//     allocated memory u32 | [ICCID: u8 nibble count ‖ packed nibbles, F = padding] | [type: u16
//     length ‖ UTF-8] | [digest: 32 bytes] | [keys: KVN u8 ‖ u8 key length ‖ 3 keys ‖ sequence
//     counter u24] | [connectivity: u16 length ‖ bytes]
//   | notification count u16, each: type u8 ‖ sequence u16 ‖ AID (u8 length ‖ bytes)
//   | [unreachable ICCIDs: u16 count, each packed as above]
//   | [ISD-R key sets: u8 deleted factory sets (01 SCP80, 02 SCP81) ‖ u8 count, each: kind u8 (1 SCP80,
//     2 SCP81) ‖ KVN u8 ‖ u8 key bytes ‖ key bytes ‖ counter u40]

import M2MCore
public import M2MCrypto
import M2MWire

/// A stored card record could not be read.
public struct CardRecordError: Error, Hashable, Sendable, CustomStringConvertible {
    public let detail: String
    public init(_ detail: String) { self.detail = detail }
    public var description: String { "card record: \(detail)" }
}

extension EUICC {
    /// Version of the record layout written by `encodedState()`.
    public static let recordVersion: UInt8 = 1

    /// The persistent state as a compact record (open sessions are not part of it).
    public func encodedState() -> [UInt8] {
        let size = recordSize
        var w = RecordWriter(capacity: size)
        defer { assert(w.out.count == size, "record size \(w.out.count), computed \(size)") }
        var flags: UInt8 = 0
        if ecasdCertificateSignature != nil { flags |= 0x01 }
        if smsrAddressingParameters != nil { flags |= 0x02 }
        if imei != EUICC.defaultIMEI { flags |= 0x04 }
        if !unreachableICCIDs.isEmpty { flags |= 0x08 }
        if !isdrKeySets.isEmpty || !deletedFactoryKeySets.isEmpty { flags |= 0x10 }
        w.u8(EUICC.recordVersion)
        w.u8(flags)
        w.u32(UInt32(clamping: totalMemory))
        w.u16(nextSequence)
        w.u40(scp80Counter.value)
        w.u40(moCounter.value)
        if let signature = ecasdCertificateSignature { w.short(signature) }
        if let parameters = smsrAddressingParameters { w.long(parameters) }
        if flags & 0x04 != 0 { w.short(imei) }
        w.u8(UInt8(isdps.count))
        for isdp in isdps {
            w.short(isdp.aid.bytes)
            w.u8(isdp.lifeCycle.rawValue)
            w.u8(isdp.pol1.rawValue)
            var f: UInt8 = 0
            if isdp.fallBack { f |= 0x01 }
            if isdp.emergency { f |= 0x02 }
            if isdp.iccid != nil { f |= 0x04 }
            if isdp.profileType != nil { f |= 0x08 }
            if isdp.profileDigest?.count == 32 { f |= 0x10 }
            if let keys = isdp.scp03, keys.count % 3 == 0, [16, 24, 32].contains(keys.count / 3) { f |= 0x20 }
            if isdp.connectivityParameters != nil { f |= 0x40 }
            w.u8(f)
            w.u32(UInt32(clamping: isdp.allocatedMemory))
            if let iccid = isdp.iccid { w.iccid(iccid) }
            if let type = isdp.profileType { w.long(Array(type.utf8)) }
            if f & 0x10 != 0, let digest = isdp.profileDigest { w.bytes(digest) }
            if f & 0x20 != 0, let keys = isdp.scp03 {
                w.u8(isdp.scp03KeyVersion)
                w.u8(UInt8(keys.count / 3))
                w.bytes(keys)
                w.u24(isdp.sequenceCounter)
            }
            if let parameters = isdp.connectivityParameters { w.long(parameters) }
        }
        w.u16(UInt16(clamping: pendingNotifications.count))
        for notification in pendingNotifications.prefix(Int(UInt16.max)) {
            w.u8(notification.kind.rawValue)
            w.u16(notification.sequenceNumber)
            w.short(notification.enabledAID.bytes)
        }
        if flags & 0x08 != 0 {
            let sorted = unreachableICCIDs.sorted { $0.text < $1.text }
            w.u16(UInt16(clamping: sorted.count))
            for iccid in sorted.prefix(Int(UInt16.max)) { w.iccid(iccid) }
        }
        if flags & 0x10 != 0 {
            w.u8(deletedFactoryKeySets.rawValue)
            w.u8(UInt8(clamping: isdrKeySets.count))
            for set in isdrKeySets.prefix(255) {
                w.u8(set.kind.rawValue)
                w.u8(set.version)
                w.short(set.keys)
                w.u40(set.counter.value)
            }
        }
        return w.out
    }

    /// The exact size of `encodedState()`, so the record is allocated once at its size.
    var recordSize: Int {
        var size = 1 + 1 + 4 + 2 + 5 + 5
        if let signature = ecasdCertificateSignature { size += 1 + min(signature.count, 255) }
        if let parameters = smsrAddressingParameters { size += 2 + min(parameters.count, 65535) }
        if imei != EUICC.defaultIMEI { size += 1 + min(imei.count, 255) }
        size += 1
        for isdp in isdps {
            size += 1 + isdp.aid.bytes.count + 3 + 4
            if let iccid = isdp.iccid { size += RecordWriter.iccidSize(iccid) }
            if let type = isdp.profileType { size += 2 + min(type.utf8.count, 65535) }
            if isdp.profileDigest?.count == 32 { size += 32 }
            if let keys = isdp.scp03, keys.count % 3 == 0, [16, 24, 32].contains(keys.count / 3) { size += 2 + keys.count + 3 }
            if let parameters = isdp.connectivityParameters { size += 2 + min(parameters.count, 65535) }
        }
        size += 2
        for notification in pendingNotifications.prefix(Int(UInt16.max)) { size += 4 + notification.enabledAID.bytes.count }
        if !unreachableICCIDs.isEmpty { size += 2 + unreachableICCIDs.reduce(0) { $0 + RecordWriter.iccidSize($1) } }
        if !isdrKeySets.isEmpty || !deletedFactoryKeySets.isEmpty {
            size += 2 + isdrKeySets.prefix(255).reduce(0) { $0 + 3 + min($1.keys.count, 255) + 5 }
        }
        return size
    }

    /// Materialises a card from its record. Every field is checked; a record that does not read
    /// exactly (truncated, trailing bytes, invalid identifiers, two enabled Profiles) throws.
    public init(identity: CardIdentity, ciPublicKey: ECPublicKey, record: [UInt8]) throws(CardRecordError) {
        var r = RecordReader(record)
        guard try r.u8() == EUICC.recordVersion else {
            throw CardRecordError("record version \(record.first ?? 0) is not \(EUICC.recordVersion)")
        }
        let flags = try r.u8()
        guard flags & 0xE0 == 0 else { throw CardRecordError("unknown flags \(Hex.encode([flags]))") }
        self.init(identity: identity, ciPublicKey: ciPublicKey, totalMemory: Int(try r.u32()))
        nextSequence = try r.u16()
        scp80Counter = try r.counter()
        moCounter = try r.counter()
        if flags & 0x01 != 0 { ecasdCertificateSignature = try r.short() }
        if flags & 0x02 != 0 { smsrAddressingParameters = try r.long() }
        if flags & 0x04 != 0 { imei = try r.short() }
        let count = Int(try r.u8())
        var list: [ISDP] = []
        list.reserveCapacity(count)
        var enabled = 0
        for _ in 0..<count {
            guard let aid = try? AID(bytes: try r.short()) else { throw CardRecordError("invalid ISD-P AID") }
            guard let lifeCycle = ISDPLifeCycle(rawValue: try r.u8()) else { throw CardRecordError("invalid life-cycle state") }
            let pol1 = POL1(rawValue: try r.u8())
            let f = try r.u8()
            guard f & 0x80 == 0 else { throw CardRecordError("unknown ISD-P flags \(Hex.encode([f]))") }
            var isdp = ISDP(aid: aid, lifeCycle: lifeCycle, pol1: pol1, fallBack: f & 0x01 != 0, emergency: f & 0x02 != 0,
                            allocatedMemory: Int(try r.u32()))
            if f & 0x04 != 0 { isdp.iccid = try r.iccid() }
            if f & 0x08 != 0 { isdp.profileType = String(decoding: try r.long(), as: UTF8.self) }
            if f & 0x10 != 0 { isdp.profileDigest = try r.bytes(32) }
            if f & 0x20 != 0 {
                isdp.scp03KeyVersion = try r.u8()
                let length = Int(try r.u8())
                guard [16, 24, 32].contains(length) else { throw CardRecordError("SCP03 key length \(length)") }
                isdp.scp03 = try r.bytes(3 * length)
                isdp.sequenceCounter = try r.u24()
            }
            if f & 0x40 != 0 { isdp.connectivityParameters = try r.long() }
            for other in list where other.aid == aid { throw CardRecordError("two ISD-Ps with AID \(other.aid.text)") }
            if lifeCycle == .enabled { enabled += 1 }
            list.append(isdp)
        }
        guard enabled <= 1 else { throw CardRecordError("two enabled Profiles") }
        isdps = list
        let notifications = Int(try r.u16())
        if notifications > 0 {
            var pending: [DefaultNotification] = []
            pending.reserveCapacity(notifications)
            for _ in 0..<notifications {
                guard let kind = NotificationKind(rawValue: try r.u8()) else { throw CardRecordError("invalid notification type") }
                let sequence = try r.u16()
                guard let aid = try? AID(bytes: try r.short()) else { throw CardRecordError("invalid notification AID") }
                pending.append(DefaultNotification(kind: kind, sequenceNumber: sequence, enabledAID: aid))
            }
            pendingNotifications = pending
        }
        if flags & 0x08 != 0 {
            for _ in 0..<Int(try r.u16()) { unreachableICCIDs.insert(try r.iccid()) }
        }
        if flags & 0x10 != 0 {
            deletedFactoryKeySets = FactoryKeySets(rawValue: try r.u8())
            for _ in 0..<Int(try r.u8()) {
                guard let kind = ISDRKeySet.Kind(rawValue: try r.u8()) else { throw CardRecordError("invalid ISD-R key set kind") }
                let version = try r.u8()
                let keys = try r.short()
                guard kind == .scp80 ? [48, 72, 96].contains(keys.count) : [16, 24, 32].contains(keys.count) else {
                    throw CardRecordError("ISD-R key set \(version): \(keys.count) key bytes")
                }
                isdrKeySets.append(ISDRKeySet(kind: kind, version: version, keys: keys, counter: try r.counter()))
            }
        }
        guard r.isAtEnd else { throw CardRecordError("\(record.count - r.offset) bytes after the record") }
    }
}

/// Appends big-endian fields.
struct RecordWriter {
    var out: [UInt8] = []

    init(capacity: Int = 64) { out.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { out.append(v) }
    mutating func u16(_ v: UInt16) { out.append(UInt8(v >> 8)); out.append(UInt8(v & 0xFF)) }
    mutating func u24(_ v: UInt32) { for shift in [16, 8, 0] { out.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) } }
    mutating func u32(_ v: UInt32) { for shift in [24, 16, 8, 0] { out.append(UInt8(truncatingIfNeeded: v >> UInt32(shift))) } }
    mutating func u40(_ v: UInt64) { for shift in [32, 24, 16, 8, 0] { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) } }
    mutating func u64(_ v: UInt64) { for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) } }
    mutating func bytes(_ b: [UInt8]) { out.append(contentsOf: b) }
    /// u8 length ‖ bytes (at most 255).
    mutating func short(_ b: [UInt8]) {
        let n = min(b.count, 255)
        u8(UInt8(n))
        if n == b.count { out.append(contentsOf: b) } else { out.append(contentsOf: b[0..<n]) }
    }
    /// u16 length ‖ bytes (at most 65535).
    mutating func long(_ b: [UInt8]) {
        let n = min(b.count, 65535)
        u16(UInt16(n))
        if n == b.count { out.append(contentsOf: b) } else { out.append(contentsOf: b[0..<n]) }
    }
    /// ICCID text packed as nibbles (digits 0–9, F padding).
    mutating func iccid(_ iccid: ICCID) {
        let text = iccid.text.utf8
        u8(UInt8(text.count))
        var high: UInt8?
        for c in text {
            if let h = high {
                out.append(h << 4 | RecordWriter.nibble(c))
                high = nil
            } else {
                high = RecordWriter.nibble(c)
            }
        }
        if let h = high { out.append(h << 4 | 0x0F) }
    }

    /// The bytes `iccid` takes.
    static func iccidSize(_ iccid: ICCID) -> Int { 1 + (iccid.text.utf8.count + 1) / 2 }
    static func nibble(_ c: UInt8) -> UInt8 { c >= 0x30 && c <= 0x39 ? c - 0x30 : 0x0F }
}

/// Reads big-endian fields; every read checks the bytes left.
struct RecordReader {
    let data: [UInt8]
    var offset: Int
    let end: Int

    init(_ data: [UInt8]) {
        self.data = data
        offset = 0
        end = data.count
    }

    /// Reads `data[range]` only.
    init(_ data: [UInt8], range: Range<Int>) {
        self.data = data
        offset = range.lowerBound
        end = range.upperBound
    }

    var isAtEnd: Bool { offset == end }

    @inline(__always)
    mutating func need(_ n: Int) throws(CardRecordError) {
        guard n >= 0, end - offset >= n else { throw CardRecordError("truncated at byte \(offset)") }
    }

    @inline(__always)
    mutating func integer(_ n: Int) throws(CardRecordError) -> UInt64 {
        try need(n)
        var value: UInt64 = 0
        for index in offset..<(offset + n) { value = value << 8 | UInt64(data[index]) }
        offset += n
        return value
    }
    mutating func u8() throws(CardRecordError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return data[offset]
    }
    mutating func u16() throws(CardRecordError) -> UInt16 { UInt16(try integer(2)) }
    mutating func u24() throws(CardRecordError) -> UInt32 { UInt32(try integer(3)) }
    mutating func u32() throws(CardRecordError) -> UInt32 { UInt32(try integer(4)) }
    mutating func u64() throws(CardRecordError) -> UInt64 { try integer(8) }
    mutating func counter() throws(CardRecordError) -> SCP80Counter { SCP80Counter(exactly: try integer(5))! }
    mutating func bytes(_ n: Int) throws(CardRecordError) -> [UInt8] {
        try need(n)
        defer { offset += n }
        return Array(data[offset..<(offset + n)])
    }
    mutating func short() throws(CardRecordError) -> [UInt8] { try bytes(Int(try u8())) }
    mutating func long() throws(CardRecordError) -> [UInt8] { try bytes(Int(try u16())) }
    mutating func iccid() throws(CardRecordError) -> ICCID {
        let count = Int(try u8())
        try need((count + 1) / 2)
        let text = String(unsafeUninitializedCapacity: count) { buffer in
            for index in 0..<count {
                let byte = data[offset + index / 2]
                let nibble = index % 2 == 0 ? byte >> 4 : byte & 0x0F
                buffer[index] = nibble < 10 ? 0x30 + nibble : 0x46
            }
            return count
        }
        offset += (count + 1) / 2
        guard let iccid = try? ICCID(text: text) else { throw CardRecordError("invalid ICCID") }
        return iccid
    }
}
