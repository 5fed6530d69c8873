// The outcome of every SGP.02 function (`ExecutionStatusType` in euicc.common.types.xsd): a value on
// the wire, not an exception. Wire spellings come from the schema's `StatusType` enumeration.

/// SGP.02 FunctionExecutionStatus: `Status` plus optional `StatusCodeData`.
public struct FunctionExecutionStatus: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Status: String, Sendable, Hashable, Codable, CaseIterable {
        case executedSuccess = "EXECUTED_SUCCESS"
        case executedWithWarning = "EXECUTED_WITHWARNING"
        case failed = "FAILED"
        case expired = "EXPIRED"
    }

    /// `StatusCodeDataType`: present when the status is a warning, a failure or an expiry.
    public struct StatusCodeData: Sendable, Hashable, Codable {
        public var subject: SubjectCode
        public var reason: ReasonCode
        /// The identifier concerned (an AID, an ICCID …).
        public var subjectIdentifier: String?
        /// Human-readable text.
        public var message: String?

        public init(subject: SubjectCode, reason: ReasonCode, subjectIdentifier: String? = nil, message: String? = nil) {
            self.subject = subject
            self.reason = reason
            self.subjectIdentifier = subjectIdentifier
            self.message = message
        }
    }

    public var status: Status
    public var statusCodeData: StatusCodeData?

    public init(status: Status, statusCodeData: StatusCodeData? = nil) {
        self.status = status
        self.statusCodeData = statusCodeData
    }

    public static let success = FunctionExecutionStatus(status: .executedSuccess)

    public static func failed(
        _ subject: SubjectCode, _ reason: ReasonCode, identifier: String? = nil, message: String? = nil
    ) -> FunctionExecutionStatus {
        FunctionExecutionStatus(
            status: .failed,
            statusCodeData: StatusCodeData(subject: subject, reason: reason, subjectIdentifier: identifier, message: message)
        )
    }

    public var description: String {
        guard let data = statusCodeData else { return status.rawValue }
        var text = "\(status.rawValue) \(data.subject)/\(data.reason) (\(data.subject.meaning): \(data.reason.meaning))"
        if let identifier = data.subjectIdentifier { text += " [\(identifier)]" }
        if let message = data.message { text += ": \(message)" }
        return text
    }
}

/// Errors that know how they appear on the wire. The SOAP layer turns anything else into a generic
/// failure without leaking internal detail.
public protocol FunctionExecutionStatusConvertible: Error {
    var executionStatus: FunctionExecutionStatus { get }
}
