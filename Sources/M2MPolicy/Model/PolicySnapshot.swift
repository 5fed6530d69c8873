// Typed, read-only snapshots handed to plugins. Each is encoded once, when it is built; a call
// copies the bytes into the Lua state and plugins read fields lazily through read-only proxies.
// The JSON form (decision records) is the Lua view: snake_case fields, identifiers as text.

public import M2MCore

/// A value plugins see as a read-only `m2m.*` snapshot.
public protocol PolicySnapshot: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The snapshot kind (the `__name` Lua reports).
    static var kind: SnapshotKind { get }
    /// The value encoding the bridge hands to Lua (docs/policy.md, "Value encoding").
    var encoded: [UInt8] { get }
    /// Reads a snapshot from its generic form, strictly: every required field present and valid.
    init(policyValue: PolicyValue) throws(PolicyError)
}

extension PolicySnapshot {
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.encoded == rhs.encoded }
    public func hash(into hasher: inout Hasher) { hasher.combine(encoded) }

    /// The generic form: exactly what a plugin can read.
    public var policyValue: PolicyValue { (try? ValueReader.decode(encoded)) ?? .null }

    public init(from decoder: any Decoder) throws { try self.init(policyValue: try PolicyValue(from: decoder)) }
    public func encode(to encoder: any Encoder) throws { try policyValue.encode(to: encoder) }
    public var description: String { "\(Self.kind.luaName)(\(encoded.count) bytes)" }
}

/// Reads the fields of a record, with the field path in every error. With `defaults`, missing
/// fields are filled by the caller's default (fixtures); without, they are errors.
struct FieldReader {
    let path: String
    let fields: [String: PolicyValue]
    let defaults: Bool

    init(_ value: PolicyValue, path: String, defaults: Bool, allowed: [PolicyKey]) throws(PolicyError) {
        guard let fields = value.recordValue else {
            throw .invalidInput("\(path): a table is expected, got \(value.typeName)")
        }
        let names = Set(allowed.map(\.name))
        for key in fields.keys where !names.contains(key) {
            throw .invalidInput("\(path): unknown field '\(key)'")
        }
        self.path = path
        self.fields = fields
        self.defaults = defaults
    }

    func has(_ key: PolicyKey) -> Bool { !(fields[key.name] ?? .null).isNull }

    func value(_ key: PolicyKey) -> PolicyValue { fields[key.name] ?? .null }

    func optionalString(_ key: PolicyKey) throws(PolicyError) -> String? {
        switch fields[key.name] ?? .null {
        case .null: return nil
        case .string(let s): return s
        case let other: throw .invalidInput("\(path).\(key.name): a string is expected, got \(other.typeName)")
        }
    }

    func string(_ key: PolicyKey, default value: @autoclosure () -> String) throws(PolicyError) -> String {
        if let s = try optionalString(key) { return s }
        guard defaults else { throw .invalidInput("\(path).\(key.name) is missing") }
        return value()
    }

    func optional<T>(_ key: PolicyKey, _ parse: (String) throws -> T) throws(PolicyError) -> T? {
        guard let s = try optionalString(key) else { return nil }
        do {
            return try parse(s)
        } catch {
            throw .invalidInput("\(path).\(key.name): \(error)")
        }
    }

    func required<T>(_ key: PolicyKey, default value: @autoclosure () -> T, _ parse: (String) throws -> T) throws(PolicyError) -> T {
        if let v = try optional(key, parse) { return v }
        guard defaults else { throw .invalidInput("\(path).\(key.name) is missing") }
        return value()
    }

    func optionalInt(_ key: PolicyKey) throws(PolicyError) -> Int? {
        let v = fields[key.name] ?? .null
        if v.isNull { return nil }
        guard let i = v.intValue else { throw .invalidInput("\(path).\(key.name): an integer is expected, got \(v.typeName)") }
        return i
    }

    func int(_ key: PolicyKey, default value: Int) throws(PolicyError) -> Int {
        if let i = try optionalInt(key) { return i }
        guard defaults else { throw .invalidInput("\(path).\(key.name) is missing") }
        return value
    }

    func bool(_ key: PolicyKey, default value: Bool) throws(PolicyError) -> Bool {
        let v = fields[key.name] ?? .null
        if v.isNull {
            guard defaults else { throw .invalidInput("\(path).\(key.name) is missing") }
            return value
        }
        guard let b = v.boolValue else { throw .invalidInput("\(path).\(key.name): a boolean is expected, got \(v.typeName)") }
        return b
    }

    func list(_ key: PolicyKey) throws(PolicyError) -> [PolicyValue] {
        let v = fields[key.name] ?? .null
        if v.isNull { return [] }
        guard let items = v.arrayValue else { throw .invalidInput("\(path).\(key.name): a list is expected, got \(v.typeName)") }
        return items
    }

    func strings(_ key: PolicyKey) throws(PolicyError) -> [String] {
        var out: [String] = []
        for (i, item) in try list(key).enumerated() {
            guard let s = item.stringValue else {
                throw .invalidInput("\(path).\(key.name)[\(i + 1)]: a string is expected, got \(item.typeName)")
            }
            out.append(s)
        }
        return out
    }

    func enumList<E: RawRepresentable<String>>(_ key: PolicyKey, _ type: E.Type) throws(PolicyError) -> [E] {
        var out: [E] = []
        for s in try strings(key) {
            guard let e = E(rawValue: s) else { throw .invalidInput("\(path).\(key.name): unknown value '\(s)'") }
            out.append(e)
        }
        return out
    }
}

/// Parses a typed value with an `IdentifierError`-throwing initialiser.
func parse<T: TextRepresentable>(_ type: T.Type) -> (String) throws -> T { { try T(text: $0) } }

/// Made-up but valid identifiers used when a fixture leaves a required field out
/// (docs/plugins.md). Optional fields (a Profile's SM-DP, a notification's ICCID …) stay absent,
/// except a Profile's Profile Type, which defaults to `M2M_DEFAULT`.
public enum FixtureDefaults {
    public static let eumID: OID = "1.3.6.1.4.1.47800.1"
    public static let smsrID: OID = "1.3.6.1.4.1.47800.2"
    public static let smdpID: OID = "1.3.6.1.4.1.47800.3"
    public static let mnoID: OID = "1.3.6.1.4.1.47800.10"
    public static let m2mSPID: OID = "1.3.6.1.4.1.47800.20"
    public static let profileType: String100 = "M2M_DEFAULT"
    public static let timestamp = Timestamp(seconds: 1_704_067_200)  // 2024-01-01T00:00:00Z
    public static let eid: EID = try! EID(prefix30: "890490321234512345123456789012")
    public static let iccid: ICCID = try! ICCID(withoutCheckDigit: "898830100000000001")
    public static let isdrAID: AID = try! AID(text: "A0000005591010FFFFFFFF8900000100")
    public static let isdpAID: AID = try! AID(text: "A0000005591010FFFFFFFF8900001000")
    public static let capabilities = EUICCCapabilities(
        cattpSupport: false, httpSupport: true, httpVersion: try! ThreeDigitVersion(text: "1.1.0"),
        securePacketVersion: try! ThreeDigitVersion(text: "2.0.0"),
        remoteProvisioningVersion: try! ThreeDigitVersion(text: "4.0.0"))
}
