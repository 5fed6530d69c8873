// The binary value encoding shared with Sources/CLuaShims/m2m_codec.c (little endian):
//
//   nil 0 | false 1 | true 2 | integer 3 i64 | float 4 f64 | string 5 u32 bytes
//   record 6 kind u32(bodylen) | u16(count) (key value)*
//   array  7 kind u32(bodylen) | u16(count) u32(offset)*count value*
//   key: 8 u8(id of a PolicyKey) | a string | an integer
//
// Records and arrays carry their byte length, so the C side skips what a hook does not read, and
// arrays carry element offsets for O(1) indexing. Encoding is deterministic (records from
// dictionaries are written in key order), so equal values have equal bytes.

/// Snapshot kinds: the `__name` a plugin sees (`m2m.Profile` …). Order is the wire kind byte.
public enum SnapshotKind: UInt8, Sendable, CaseIterable {
    case record, list, input, operation, caller, eis, capabilities, profile, pol2Rule, plma, onc, notification

    /// The metatable name in Lua.
    public var luaName: String {
        switch self {
        case .record: "m2m.Record"
        case .list: "m2m.List"
        case .input: "m2m.Input"
        case .operation: "m2m.Operation"
        case .caller: "m2m.Caller"
        case .eis: "m2m.EIS"
        case .capabilities: "m2m.Capabilities"
        case .profile: "m2m.Profile"
        case .pol2Rule: "m2m.POL2Rule"
        case .plma: "m2m.PLMA"
        case .onc: "m2m.ONC"
        case .notification: "m2m.Notification"
        }
    }
}

/// Field names known to both sides; encoded as one-byte ids (the C side compares ids, not
/// strings, when a hook reads `profile.state`). Any other key travels as a string.
public enum PolicyKey: UInt8, Sendable, CaseIterable {
    case hook, `operator`, operation, caller, eis, profile, notification, plma, onc
    case interface, name, args, role, oid
    case eid, eumID, smsrID, productionDate, platformType, platformVersion, remainingMemory, availableMemory
    case lastAuditDate, capabilities, profiles, isdrAID, ecasdAID, additionalProperties
    case cattpSupport, cattpVersion, httpSupport, httpVersion, securePacketVersion, remoteProvisioningVersion
    case iccid, isdpAID, mnoID, fallback, emergency, state, smdpID, profileType, allocatedMemory, freeMemory
    case imsi, msisdn, pol2, subject, action, qualification
    case m2mSPID, functions, notifications, discarded
    case type, requester, timestamp, requiredMemory, targetSMSRID, enable
    case enabledProfile, enableNotAllowed, disableNotAllowed, deleteNotAllowed, autoDelete

    /// The Lua spelling (snake_case).
    public var name: String {
        switch self {
        case .eumID: "eum_id"
        case .smsrID: "smsr_id"
        case .productionDate: "production_date"
        case .platformType: "platform_type"
        case .platformVersion: "platform_version"
        case .remainingMemory: "remaining_memory"
        case .availableMemory: "available_memory"
        case .lastAuditDate: "last_audit_date"
        case .isdrAID: "isdr_aid"
        case .ecasdAID: "ecasd_aid"
        case .additionalProperties: "additional_properties"
        case .cattpSupport: "cattp_support"
        case .cattpVersion: "cattp_version"
        case .httpSupport: "http_support"
        case .httpVersion: "http_version"
        case .securePacketVersion: "secure_packet_version"
        case .remoteProvisioningVersion: "remote_provisioning_version"
        case .isdpAID: "isdp_aid"
        case .mnoID: "mno_id"
        case .smdpID: "smdp_id"
        case .profileType: "profile_type"
        case .allocatedMemory: "allocated_memory"
        case .freeMemory: "free_memory"
        case .m2mSPID: "m2msp_id"
        case .requiredMemory: "required_memory"
        case .targetSMSRID: "target_smsr_id"
        case .enabledProfile: "enabled_profile"
        case .enableNotAllowed: "enable_not_allowed"
        case .disableNotAllowed: "disable_not_allowed"
        case .deleteNotAllowed: "delete_not_allowed"
        case .autoDelete: "auto_delete"
        default: "\(self)"
        }
    }

    static let byName: [String: PolicyKey] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.name, $0) })
}

enum ValueTag {
    static let null: UInt8 = 0, `false`: UInt8 = 1, `true`: UInt8 = 2, integer: UInt8 = 3, float: UInt8 = 4
    static let string: UInt8 = 5, record: UInt8 = 6, array: UInt8 = 7, key: UInt8 = 8
}

/// Writes the encoding. Records and arrays are opened and closed; lengths and counts are
/// patched when they close.
struct ValueWriter {
    private(set) var bytes: [UInt8] = []
    /// Open containers: where their header starts, how many entries so far, and (arrays) where
    /// the offsets and the values start.
    private var open: [(start: Int, count: Int, offsets: Int, values: Int)] = []
    /// When set, known keys are written by name (the vocabulary is read before keys exist).
    var stringKeysOnly = false

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func null() { bytes.append(ValueTag.null) }
    mutating func bool(_ b: Bool) { bytes.append(b ? ValueTag.true : ValueTag.false) }

    mutating func integer(_ i: Int64) {
        bytes.append(ValueTag.integer)
        append64(UInt64(bitPattern: i))
    }

    mutating func integer(_ i: Int) { integer(Int64(i)) }

    mutating func number(_ d: Double) {
        bytes.append(ValueTag.float)
        append64(d.bitPattern)
    }

    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            bytes.append(ValueTag.string)
            append32(UInt32(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// Copies an already encoded value (a snapshot's bytes).
    mutating func raw(_ encoded: [UInt8]) { bytes.append(contentsOf: encoded) }

    mutating func beginRecord(_ kind: SnapshotKind = .record) {
        open.append((bytes.count, 0, 0, 0))
        bytes.append(contentsOf: [ValueTag.record, kind.rawValue, 0, 0, 0, 0, 0, 0])
    }

    mutating func key(_ key: PolicyKey) {
        if stringKeysOnly {
            self.key(key.name)
            return
        }
        open[open.count - 1].count += 1
        bytes.append(ValueTag.key)
        bytes.append(key.rawValue)
    }

    mutating func key(_ name: String) {
        if !stringKeysOnly, let known = PolicyKey.byName[name] {
            self.key(known)
            return
        }
        open[open.count - 1].count += 1
        string(name)
    }

    mutating func endRecord() {
        let frame = open.removeLast()
        patch16(frame.start + 6, frame.count)
        patch32(frame.start + 2, bytes.count - frame.start - 6)
    }

    mutating func beginArray(_ kind: SnapshotKind = .list, count: Int) {
        let start = bytes.count
        bytes.append(contentsOf: [ValueTag.array, kind.rawValue, 0, 0, 0, 0, 0, 0])
        patch16(start + 6, count)
        let offsets = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: 4 * count))
        open.append((start, 0, offsets, bytes.count))
    }

    /// Marks the start of the next array element.
    mutating func element() {
        let frame = open[open.count - 1]
        patch32(frame.offsets + 4 * frame.count, bytes.count - frame.values)
        open[open.count - 1].count += 1
    }

    mutating func endArray() {
        let frame = open.removeLast()
        patch32(frame.start + 2, bytes.count - frame.start - 6)
    }

    // Field helpers: optional fields are left out when nil.
    mutating func field(_ k: PolicyKey, _ s: String?) {
        guard let s else { return }
        key(k)
        string(s)
    }
    mutating func field(_ k: PolicyKey, _ i: Int?) {
        guard let i else { return }
        key(k)
        integer(i)
    }
    mutating func field(_ k: PolicyKey, _ b: Bool) {
        key(k)
        bool(b)
    }
    mutating func stringList(_ k: PolicyKey, _ items: [String]) {
        key(k)
        beginArray(count: items.count)
        for item in items {
            element()
            string(item)
        }
        endArray()
    }

    /// A generic value (records in key order).
    mutating func value(_ v: PolicyValue) {
        switch v {
        case .null: null()
        case .bool(let b): bool(b)
        case .integer(let i): integer(i)
        case .number(let d): number(d)
        case .string(let s): string(s)
        case .array(let items):
            beginArray(count: items.count)
            for item in items {
                element()
                value(item)
            }
            endArray()
        case .record(let fields):
            beginRecord()
            for name in fields.keys.sorted() {
                key(name)
                value(fields[name]!)
            }
            endRecord()
        }
    }

    private mutating func append32(_ v: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: v))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v >> 16))
        bytes.append(UInt8(truncatingIfNeeded: v >> 24))
    }

    private mutating func append64(_ v: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    private mutating func patch16(_ at: Int, _ v: Int) {
        bytes[at] = UInt8(truncatingIfNeeded: v)
        bytes[at + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }

    private mutating func patch32(_ at: Int, _ v: Int) {
        for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }
}

/// A malformed encoding (a bug on one side of the bridge, never plugin input).
struct ValueDecodingError: Error, CustomStringConvertible {
    let description: String
}

/// Reads the encoding back into `PolicyValue`s (test harness results, fixtures, configurations).
enum ValueReader {
    static func decode(_ bytes: [UInt8]) throws(ValueDecodingError) -> PolicyValue {
        try bytes.withUnsafeBufferPointer { (buffer) throws(ValueDecodingError) -> PolicyValue in
            try decode(UnsafeRawBufferPointer(buffer))
        }
    }

    static func decode(_ buffer: UnsafeRawBufferPointer) throws(ValueDecodingError) -> PolicyValue {
        var position = 0
        let value = try read(buffer, &position, depth: 0)
        guard position == buffer.count else { throw ValueDecodingError(description: "trailing bytes after value") }
        return value
    }

    private static func u16(_ b: UnsafeRawBufferPointer, _ at: Int) -> Int { Int(b[at]) | Int(b[at + 1]) << 8 }
    private static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> Int {
        Int(b[at]) | Int(b[at + 1]) << 8 | Int(b[at + 2]) << 16 | Int(b[at + 3]) << 24
    }
    private static func u64(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in (0..<8).reversed() { v = v << 8 | UInt64(b[at + i]) }
        return v
    }

    private static func need(_ b: UnsafeRawBufferPointer, _ at: Int, _ n: Int) throws(ValueDecodingError) {
        guard at >= 0, n >= 0, at + n <= b.count else { throw ValueDecodingError(description: "truncated value") }
    }

    private static func read(_ b: UnsafeRawBufferPointer, _ p: inout Int, depth: Int) throws(ValueDecodingError) -> PolicyValue {
        guard depth < 64 else { throw ValueDecodingError(description: "value nested too deeply") }
        try need(b, p, 1)
        let tag = b[p]
        p += 1
        switch tag {
        case ValueTag.null: return .null
        case ValueTag.false: return .bool(false)
        case ValueTag.true: return .bool(true)
        case ValueTag.integer:
            try need(b, p, 8)
            defer { p += 8 }
            return .integer(Int64(bitPattern: u64(b, p)))
        case ValueTag.float:
            try need(b, p, 8)
            defer { p += 8 }
            return .number(Double(bitPattern: u64(b, p)))
        case ValueTag.string:
            return .string(try readString(b, &p))
        case ValueTag.record:
            try need(b, p, 7)
            let length = u32(b, p + 1)
            let end = p + 5 + length
            try need(b, p + 5, length)
            let count = u16(b, p + 5)
            p += 7
            var fields: [String: PolicyValue] = [:]
            for _ in 0..<count {
                let key = try readKey(b, &p)
                fields[key] = try read(b, &p, depth: depth + 1)
            }
            guard p == end else { throw ValueDecodingError(description: "record length mismatch") }
            return .record(fields)
        case ValueTag.array:
            try need(b, p, 7)
            let length = u32(b, p + 1)
            let end = p + 5 + length
            try need(b, p + 5, length)
            let count = u16(b, p + 5)
            p += 7 + 4 * count
            var items: [PolicyValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try read(b, &p, depth: depth + 1)) }
            guard p == end else { throw ValueDecodingError(description: "array length mismatch") }
            return .array(items)
        default:
            throw ValueDecodingError(description: "unknown tag \(tag)")
        }
    }

    private static func readString(_ b: UnsafeRawBufferPointer, _ p: inout Int) throws(ValueDecodingError) -> String {
        try need(b, p, 4)
        let n = u32(b, p)
        try need(b, p + 4, n)
        defer { p += 4 + n }
        return String(decoding: UnsafeRawBufferPointer(rebasing: b[(p + 4)..<(p + 4 + n)]), as: UTF8.self)
    }

    private static func readKey(_ b: UnsafeRawBufferPointer, _ p: inout Int) throws(ValueDecodingError) -> String {
        try need(b, p, 1)
        let tag = b[p]
        p += 1
        switch tag {
        case ValueTag.key:
            try need(b, p, 1)
            defer { p += 1 }
            guard let key = PolicyKey(rawValue: b[p]) else { throw ValueDecodingError(description: "unknown key id") }
            return key.name
        case ValueTag.string:
            return try readString(b, &p)
        case ValueTag.integer:
            try need(b, p, 8)
            defer { p += 8 }
            return String(Int64(bitPattern: u64(b, p)))
        default:
            throw ValueDecodingError(description: "bad key tag \(tag)")
        }
    }
}

extension PolicyValue {
    /// The binary encoding (records in key order).
    var encoded: [UInt8] {
        var writer = ValueWriter()
        writer.value(self)
        return writer.bytes
    }
}
