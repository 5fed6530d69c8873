// M2MCore's error type: a value failed validation. Equality uses `code` only; `value` and `detail`
// are diagnostics. Each code maps to SGP.02 subject/reason codes.

/// A value from the wire, JSON or the command line is not valid.
public struct IdentifierError: Error, Hashable, Sendable, CustomStringConvertible, FunctionExecutionStatusConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public let subject: SubjectCode
        public var description: String { name }

        public static let invalidEID = Code(name: "invalidEID", subject: .eid)
        public static let invalidICCID = Code(name: "invalidICCID", subject: .profileICCID)
        public static let invalidAID = Code(name: "invalidAID", subject: .protocolFormat)
        public static let invalidTAR = Code(name: "invalidTAR", subject: .protocolFormat)
        public static let invalidOID = Code(name: "invalidOID", subject: .protocolFormat)
        public static let invalidIMSI = Code(name: "invalidIMSI", subject: .subscriptionAddress)
        public static let invalidMSISDN = Code(name: "invalidMSISDN", subject: .subscriptionAddress)
        public static let invalidHex = Code(name: "invalidHex", subject: .protocolFormat)
        public static let invalidValue = Code(name: "invalidValue", subject: .protocolFormat)
    }

    public let code: Code
    /// The offending value, truncated for logs.
    public let value: String
    public let detail: String

    public init(code: Code, value: String = "", detail: String = "") {
        self.code = code
        self.value = value.count > 64 ? String(value.prefix(64)) + "…" : value
        self.detail = detail
    }

    public static func == (lhs: IdentifierError, rhs: IdentifierError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String {
        "\(code): '\(value)'" + (detail.isEmpty ? "" : ": \(detail)")
    }

    /// Every validation failure is reason 2.1 (Invalid) with the subject of the value.
    public var executionStatus: FunctionExecutionStatus {
        .failed(code.subject, .invalid, identifier: value, message: description)
    }

    @inline(never) public static func invalidEID(_ v: String, _ d: String) -> Self { .init(code: .invalidEID, value: v, detail: d) }
    @inline(never) public static func invalidICCID(_ v: String, _ d: String) -> Self { .init(code: .invalidICCID, value: v, detail: d) }
    @inline(never) public static func invalidAID(_ v: String, _ d: String) -> Self { .init(code: .invalidAID, value: v, detail: d) }
    @inline(never) public static func invalidTAR(_ v: String, _ d: String) -> Self { .init(code: .invalidTAR, value: v, detail: d) }
    @inline(never) public static func invalidOID(_ v: String) -> Self {
        .init(code: .invalidOID, value: v, detail: "an OID is dotted decimal numbers")
    }
    @inline(never) public static func invalidIMSI(_ v: String) -> Self { .init(code: .invalidIMSI, value: v, detail: "up to 15 digits") }
    @inline(never) public static func invalidMSISDN(_ v: String) -> Self { .init(code: .invalidMSISDN, value: v, detail: "3 to 15 digits") }
    @inline(never) public static func invalidHex(_ v: String) -> Self { .init(code: .invalidHex, value: v, detail: "not hexadecimal bytes") }
    @inline(never) public static func invalidValue(_ type: String, _ v: String) -> Self {
        .init(code: .invalidValue, value: v, detail: "not a valid \(type)")
    }
}
