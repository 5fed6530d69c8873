// The input of one decision: the hook and the snapshots the role hands over. Plugins receive it
// as `ctx` (`m2m.Input`), with each part read lazily.

public import M2MCore

/// Everything a hook may read, encoded once when built. Copies share one immutable storage
/// (records keep their input without copying it).
public struct PolicyInput: PolicySnapshot {
    private final class Storage: Sendable {
        let hook: PolicyHook
        let operatorID: OID?
        let operation: OperationSnapshot?
        let caller: CallerSnapshot?
        let eis: EISSnapshot?
        let profile: ProfileSnapshot?
        let notification: NotificationSnapshot?
        let plma: [PLMASnapshot]
        let onc: [ONCSnapshot]
        let encoded: [UInt8]

        init(
            hook: PolicyHook, operatorID: OID?, operation: OperationSnapshot?, caller: CallerSnapshot?, eis: EISSnapshot?,
            profile: ProfileSnapshot?, notification: NotificationSnapshot?, plma: [PLMASnapshot], onc: [ONCSnapshot],
            encoded: [UInt8]
        ) {
            self.hook = hook
            self.operatorID = operatorID
            self.operation = operation
            self.caller = caller
            self.eis = eis
            self.profile = profile
            self.notification = notification
            self.plma = plma
            self.onc = onc
            self.encoded = encoded
        }
    }

    public static let kind = SnapshotKind.input
    private let storage: Storage

    public var hook: PolicyHook { storage.hook }
    /// The Operator whose bundle decides: given, or the Profile's owner, or the notification's.
    public var operatorID: OID? { storage.operatorID }
    public var operation: OperationSnapshot? { storage.operation }
    public var caller: CallerSnapshot? { storage.caller }
    public var eis: EISSnapshot? { storage.eis }
    /// The target Profile of the operation.
    public var profile: ProfileSnapshot? { storage.profile }
    public var notification: NotificationSnapshot? { storage.notification }
    /// The PLMA entries that may matter (the role passes those of the Profile's owner).
    public var plma: [PLMASnapshot] { storage.plma }
    /// The ONC entries of the owner.
    public var onc: [ONCSnapshot] { storage.onc }
    public var encoded: [UInt8] { storage.encoded }

    /// The Profile enabled on the eUICC (from `eis`), which hooks see as `ctx.enabled_profile`.
    public var enabledProfile: ProfileSnapshot? { eis?.profiles.first { $0.profile.state == .enabled } }

    public init(
        hook: PolicyHook, operation: OperationSnapshot? = nil, caller: CallerSnapshot? = nil, eis: EISSnapshot? = nil,
        profile: ProfileSnapshot? = nil, notification: NotificationSnapshot? = nil, plma: [PLMASnapshot] = [],
        onc: [ONCSnapshot] = [], operatorID: OID? = nil
    ) {
        let operatorID = operatorID ?? profile?.profile.mnoID ?? notification?.mnoID
        let enabled = eis?.profiles.first { $0.profile.state == .enabled }
        var size = 64 + (operation?.encoded.count ?? 0) + (caller?.encoded.count ?? 0) + (eis?.encoded.count ?? 0)
        size += (profile?.encoded.count ?? 0) + (notification?.encoded.count ?? 0) + (enabled?.encoded.count ?? 0)
        size += plma.reduce(0) { $0 + $1.encoded.count + 4 } + onc.reduce(0) { $0 + $1.encoded.count + 4 }
        var w = ValueWriter(capacity: size)
        w.beginRecord(.input)
        w.field(.hook, hook.rawValue)
        w.field(.operator, operatorID?.text)
        // Small, often read parts first; the EIS last among them (it is skipped by length).
        for (key, part) in [(PolicyKey.caller, caller?.encoded), (.profile, profile?.encoded), (.operation, operation?.encoded),
                            (.notification, notification?.encoded), (.enabledProfile, enabled?.encoded), (.eis, eis?.encoded)] {
            if let part {
                w.key(key)
                w.raw(part)
            }
        }
        w.key(.plma)
        w.beginArray(count: plma.count)
        for entry in plma {
            w.element()
            w.raw(entry.encoded)
        }
        w.endArray()
        w.key(.onc)
        w.beginArray(count: onc.count)
        for entry in onc {
            w.element()
            w.raw(entry.encoded)
        }
        w.endArray()
        w.endRecord()
        storage = Storage(
            hook: hook, operatorID: operatorID, operation: operation, caller: caller, eis: eis, profile: profile,
            notification: notification, plma: plma, onc: onc, encoded: w.bytes)
    }

    public init(policyValue: PolicyValue) throws(PolicyError) {
        try self.init(policyValue: policyValue, path: "input", defaults: false)
    }

    init(policyValue: PolicyValue, path: String, defaults: Bool) throws(PolicyError) {
        let r = try FieldReader(
            policyValue, path: path, defaults: defaults,
            allowed: [.hook, .operator, .operation, .caller, .eis, .profile, .notification, .plma, .onc, .enabledProfile])
        let hookText = try r.string(.hook, default: PolicyHook.beforeEnableProfile.rawValue)
        guard let hook = PolicyHook(rawValue: hookText) else { throw .invalidInput("\(path).hook: unknown hook '\(hookText)'") }
        var plma: [PLMASnapshot] = []
        for (i, item) in try r.list(.plma).enumerated() {
            plma.append(try PLMASnapshot(policyValue: item, path: "\(path).plma[\(i + 1)]", defaults: defaults))
        }
        var onc: [ONCSnapshot] = []
        for (i, item) in try r.list(.onc).enumerated() {
            onc.append(try ONCSnapshot(policyValue: item, path: "\(path).onc[\(i + 1)]", defaults: defaults))
        }
        func part<T>(_ key: PolicyKey, _ make: (PolicyValue, String, Bool) throws(PolicyError) -> T) throws(PolicyError) -> T? {
            r.has(key) ? try make(r.value(key), "\(path).\(key.name)", defaults) : nil
        }
        self.init(
            hook: hook,
            operation: try part(.operation) { (v, p, d) throws(PolicyError) in try OperationSnapshot(policyValue: v, path: p, defaults: d) },
            caller: try part(.caller) { (v, p, d) throws(PolicyError) in try CallerSnapshot(policyValue: v, path: p, defaults: d) },
            eis: try part(.eis) { (v, p, d) throws(PolicyError) in try EISSnapshot(policyValue: v, path: p, defaults: d) },
            profile: try part(.profile) { (v, p, d) throws(PolicyError) in try ProfileSnapshot(policyValue: v, path: p, defaults: d) },
            notification: try part(.notification) { (v, p, d) throws(PolicyError) in
                try NotificationSnapshot(policyValue: v, path: p, defaults: d)
            },
            plma: plma, onc: onc, operatorID: try r.optional(.operator, parse(OID.self)))
        if r.has(.enabledProfile), r.value(.enabledProfile) != enabledProfile?.policyValue {
            throw .invalidInput("\(path).enabled_profile is derived from eis: list the enabled Profile in eis instead")
        }
    }
}

extension PolicyInput {
    /// The input of a POL2 decision on `profile` (the target of the operation) within `eis`.
    public static func pol2(
        _ hook: PolicyHook, operation: OperationSnapshot, caller: CallerSnapshot, eis: EISSnapshot,
        profile: ProfileSnapshot?, plma: [PLMASnapshot] = []
    ) -> PolicyInput {
        PolicyInput(hook: hook, operation: operation, caller: caller, eis: eis, profile: profile, plma: plma)
    }

    /// The input of routing or filtering one notification.
    public static func notification(
        _ hook: PolicyHook, _ notification: NotificationSnapshot, eis: EISSnapshot? = nil, profile: ProfileSnapshot? = nil,
        plma: [PLMASnapshot] = [], onc: [ONCSnapshot] = []
    ) -> PolicyInput {
        PolicyInput(hook: hook, eis: eis, profile: profile, notification: notification, plma: plma, onc: onc)
    }

    /// A 64-bit digest of the encoded input (XXH64, seed 0), as 16 hex digits: equal inputs have
    /// equal digests across runs and machines. Computed on demand, not on the decision path.
    public var digest: String {
        let h = XXH64.hash(encoded)
        return Hex.encode((0..<8).reversed().map { UInt8(truncatingIfNeeded: h >> (8 * UInt64($0))) })
    }
}

/// XXH64 (Yann Collet's xxHash, 64-bit variant), written from the algorithm's description.
enum XXH64 {
    private static let p1: UInt64 = 11_400_714_785_074_694_791
    private static let p2: UInt64 = 14_029_467_366_897_019_727
    private static let p3: UInt64 = 1_609_587_929_392_839_161
    private static let p4: UInt64 = 9_650_029_242_287_828_579
    private static let p5: UInt64 = 2_870_177_450_012_600_261

    @inline(__always) private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 { (x << r) | (x >> (64 - r)) }
    @inline(__always) private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }
    @inline(__always) private static func merge(_ acc: UInt64, _ val: UInt64) -> UInt64 {
        (acc ^ round(0, val)) &* p1 &+ p4
    }

    static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { b -> UInt64 in
            let n = b.count
            var i = 0
            func u64(_ at: Int) -> UInt64 { b.loadUnaligned(fromByteOffset: at, as: UInt64.self).littleEndian }
            func u32(_ at: Int) -> UInt64 { UInt64(b.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian) }
            var h: UInt64
            if n >= 32 {
                var v1 = seed &+ p1 &+ p2, v2 = seed &+ p2, v3 = seed, v4 = seed &- p1
                while i + 32 <= n {
                    v1 = round(v1, u64(i))
                    v2 = round(v2, u64(i + 8))
                    v3 = round(v3, u64(i + 16))
                    v4 = round(v4, u64(i + 24))
                    i += 32
                }
                h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
                h = merge(h, v1)
                h = merge(h, v2)
                h = merge(h, v3)
                h = merge(h, v4)
            } else {
                h = seed &+ p5
            }
            h = h &+ UInt64(n)
            while i + 8 <= n {
                h ^= round(0, u64(i))
                h = rotl(h, 27) &* p1 &+ p4
                i += 8
            }
            if i + 4 <= n {
                h ^= u32(i) &* p1
                h = rotl(h, 23) &* p2 &+ p3
                i += 4
            }
            while i < n {
                h ^= UInt64(b[i]) &* p5
                h = rotl(h, 11) &* p1
                i += 1
            }
            h ^= h >> 33
            h = h &* p2
            h ^= h >> 29
            h = h &* p3
            h ^= h >> 32
            return h
        }
    }
}
