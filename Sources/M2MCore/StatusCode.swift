// SGP.02 status codes: subject codes and reason codes (spec/sgp02-offcard.md §3.4). Both are
// dotted numbers on the wire (`ObjectIdentifierType`); a broader code matches its sub-codes, so
// `case .euicc:` catches `8.1.1`. The tables live in SubjectCode+Table.swift and
// ReasonCode+Table.swift, one constant per row with its meaning.

/// An SGP.02 subject code such as `8.1.1` (EID): what the status is about.
public struct SubjectCode: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String

    /// Any dotted number; unknown codes from peers are kept as they are.
    public init?(rawValue: String) {
        guard OID.isValid(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    init(_ code: StaticString) { self.rawValue = "\(code)" }

    public var description: String { rawValue }

    /// A broader code matches all of its sub-codes.
    public static func ~= (pattern: SubjectCode, code: SubjectCode) -> Bool {
        code.rawValue == pattern.rawValue || code.rawValue.hasPrefix(pattern.rawValue + ".")
    }

    /// The meaning from the table, or of the nearest broader code.
    public var meaning: String {
        var code = rawValue
        while true {
            if let entry = SubjectCode.table.first(where: { $0.code.rawValue == code }) { return entry.meaning }
            guard let dot = code.lastIndex(of: ".") else { return "Unknown subject" }
            code = String(code[..<dot])
        }
    }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let value = SubjectCode(rawValue: raw) else { throw IdentifierError.invalidOID(raw) }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// An SGP.02 reason code such as `3.9` (Unknown): why.
public struct ReasonCode: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String

    public init?(rawValue: String) {
        guard OID.isValid(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    init(_ code: StaticString) { self.rawValue = "\(code)" }

    public var description: String { rawValue }

    public static func ~= (pattern: ReasonCode, code: ReasonCode) -> Bool {
        code.rawValue == pattern.rawValue || code.rawValue.hasPrefix(pattern.rawValue + ".")
    }

    public var meaning: String {
        var code = rawValue
        while true {
            if let entry = ReasonCode.table.first(where: { $0.code.rawValue == code }) { return entry.meaning }
            guard let dot = code.lastIndex(of: ".") else { return "Unknown reason" }
            code = String(code[..<dot])
        }
    }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let value = ReasonCode(rawValue: raw) else { throw IdentifierError.invalidOID(raw) }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// One row of a status-code table.
public struct StatusCodeEntry<Code: Sendable>: Sendable {
    public let code: Code
    /// The name the spec gives the code (`"EID"`, `"Unknown"`).
    public let name: String
    /// The meaning, as the spec words it.
    public let meaning: String
    /// Where the row comes from: `confirmed` (SGP.22 table and SGP.02 practice agree) or `unverified`.
    public let evidence: Evidence

    public enum Evidence: String, Sendable { case confirmed, unverified }
}
