// Values that cross the Swift/Lua boundary, and their binary encoding.
//
// Snapshots are encoded once, when they are built, into a compact tagged form that the C side
// reads lazily (docs/policy.md, "Value encoding"). `PolicyValue` is the generic, untyped view of
// the same bytes: operation arguments, plugin configurations, manifests, fixture tables and the
// JSON form of decision records all use it.

/// A Lua-compatible value: what a policy can see or return, without functions.
public indirect enum PolicyValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([PolicyValue])
    case record([String: PolicyValue])

    /// The field of a record, or `.null`.
    public subscript(key: String) -> PolicyValue {
        if case .record(let fields) = self { return fields[key] ?? .null }
        return .null
    }

    public var isNull: Bool { if case .null = self { true } else { false } }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }

    public var intValue: Int? {
        switch self {
        case .integer(let i): Int(exactly: i)
        case .number(let d): Int(exactly: d)
        default: nil
        }
    }

    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }

    /// Elements of an array; an empty record (how Lua writes `{}`) is an empty array too.
    public var arrayValue: [PolicyValue]? {
        switch self {
        case .array(let a): a
        case .record(let r) where r.isEmpty: []
        default: nil
        }
    }

    /// Fields of a record; an empty array (`{}` again) is an empty record.
    public var recordValue: [String: PolicyValue]? {
        switch self {
        case .record(let r): r
        case .array(let a) where a.isEmpty: [:]
        default: nil
        }
    }

    /// A short name of the value's type, as Lua would say it.
    public var typeName: String {
        switch self {
        case .null: "nil"
        case .bool: "boolean"
        case .integer, .number: "number"
        case .string: "string"
        case .array, .record: "table"
        }
    }
}

extension PolicyValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: PolicyValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, PolicyValue)...) {
        self = .record(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
    public init(nilLiteral: ()) { self = .null }
}

// MARK: - JSON (decision records, `policy replay`)

extension PolicyValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? container.decode(Int64.self) {
            self = .integer(i)
        } else if let d = try? container.decode(Double.self) {
            self = .number(d)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([PolicyValue].self) {
            self = .array(a)
        } else {
            self = .record(try container.decode([String: PolicyValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .integer(let i): try container.encode(i)
        case .number(let d): try container.encode(d)
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .record(let r): try container.encode(r)
        }
    }
}
