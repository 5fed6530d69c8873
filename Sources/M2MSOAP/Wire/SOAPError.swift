// M2MSOAP's error type. Every error knows both ways it can be answered: as a SOAP 1.2 Fault (when
// the message cannot be tied to a function) and as an SGP.02 FunctionExecutionStatus (when it can).

public import M2MCore
public import M2MXML

/// A SOAP envelope or an SGP.02 message could not be read or is not acceptable.
public struct SOAPError: Error, Hashable, Sendable, CustomStringConvertible, FunctionExecutionStatusConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public var description: String { name }

        /// Not well-formed XML, a DOCTYPE, a processing instruction, an unbound prefix, a limit …
        public static let malformedXML = Code(name: "malformedXML")
        /// A SOAP 1.1 envelope (or another envelope version).
        public static let versionMismatch = Code(name: "versionMismatch")
        /// The document is not a SOAP envelope, or its Header/Body structure is wrong.
        public static let notAnEnvelope = Code(name: "notAnEnvelope")
        /// A header block marked mustUnderstand that we do not process.
        public static let mustUnderstand = Code(name: "mustUnderstand")
        /// wsa:Action, wsa:MessageID or wsa:To is missing.
        public static let missingAddressingHeader = Code(name: "missingAddressingHeader")
        /// A wsa header's value is not acceptable.
        public static let invalidAddressingHeader = Code(name: "invalidAddressingHeader")
        /// The Action names no SGP.02 function we know.
        public static let unknownAction = Code(name: "unknownAction")
        /// The body element is not one of the SGP.02 messages.
        public static let unknownMessage = Code(name: "unknownMessage")
        /// The Action and the body element name different functions or directions.
        public static let actionMismatch = Code(name: "actionMismatch")
        /// An element of the body is in the wrong namespace.
        public static let wrongNamespace = Code(name: "wrongNamespace")
        /// A mandatory element is missing.
        public static let missingElement = Code(name: "missingElement")
        /// An element that the schema does not allow at this place.
        public static let unexpectedElement = Code(name: "unexpectedElement")
        /// An element's or attribute's value is not valid for its type.
        public static let invalidValue = Code(name: "invalidValue")
        /// The peer answered with a SOAP Fault.
        public static let faultReceived = Code(name: "faultReceived")
        /// JSON given to `soap encode` does not describe a message.
        public static let invalidJSON = Code(name: "invalidJSON")
    }

    public let code: Code
    /// Where: an element path such as `ES3-CreateISDPRequest/Eid`, or a header name.
    public let path: String
    public let detail: String
    /// The SGP.02 status to answer with when the function is known.
    public let executionStatus: FunctionExecutionStatus
    /// The underlying XML error, when the document was not well-formed.
    public let xmlError: XMLError?
    /// The function the message was for, when that was known before the error.
    public var function: FunctionID?
    /// The header block that was not understood (mustUnderstand errors).
    public var notUnderstood: XMLName?

    public init(
        code: Code, path: String = "", detail: String, status: FunctionExecutionStatus? = nil, xmlError: XMLError? = nil
    ) {
        self.code = code
        self.path = path
        self.detail = detail
        self.xmlError = xmlError
        self.executionStatus = status ?? .failed(.protocolFormat, .invalid, identifier: path.isEmpty ? nil : path, message: detail)
    }

    public static func == (lhs: SOAPError, rhs: SOAPError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String {
        var text = "\(code)"
        if !path.isEmpty { text += " at \(path)" }
        text += ": \(detail)"
        if let data = executionStatus.statusCodeData {
            text += " [SGP.02 \(data.subject)/\(data.reason): \(data.subject.meaning) – \(data.reason.meaning)]"
        }
        return text
    }

    /// The SOAP 1.2 Fault this error is answered with when no function response can be built.
    public var fault: SOAPFault {
        switch code {
        case .versionMismatch:
            return SOAPFault(code: .versionMismatch, reason: detail)
        case .mustUnderstand:
            return SOAPFault(
                code: .mustUnderstand, reason: detail,
                notUnderstood: notUnderstood.map { .init(namespace: $0.namespace, localName: $0.localName) })
        case .missingAddressingHeader:
            return SOAPFault(
                code: .sender, subcode: "wsa:MessageAddressingHeaderRequired", reason: detail, status: executionStatus)
        case .invalidAddressingHeader:
            return SOAPFault(code: .sender, subcode: "wsa:InvalidAddressingHeader", reason: detail, status: executionStatus)
        case .unknownAction, .actionMismatch:
            return SOAPFault(code: .sender, subcode: "wsa:ActionNotSupported", reason: detail, status: executionStatus)
        default:
            return SOAPFault(code: .sender, reason: description, status: executionStatus)
        }
    }

    // MARK: Factories

    @inline(never)
    static func malformed(_ error: XMLError) -> SOAPError {
        SOAPError(
            code: .malformedXML, detail: error.description,
            status: .failed(.protocolFormat, error.code == .limitExceeded ? .maximumSizeExceeded : .invalid, message: error.description),
            xmlError: error)
    }

    @inline(never)
    static func missing(_ path: String) -> SOAPError {
        let element = path.split(separator: "/").last.map(String.init) ?? path
        return SOAPError(
            code: .missingElement, path: path, detail: "mandatory element \(element) is missing",
            status: .failed(SOAPError.subject(forElement: element), .mandatoryElementMissing, identifier: element,
                            message: "mandatory element \(element) is missing"))
    }

    @inline(never)
    static func unexpected(_ path: String, found: XMLName) -> SOAPError {
        SOAPError(
            code: .unexpectedElement, path: path,
            detail: "element {\(found.namespace)}\(found.localName) is not allowed here",
            status: .failed(.protocolFormat, .invalid, identifier: found.localName,
                            message: "unexpected element \(found.localName)"))
    }

    @inline(never)
    static func invalid(_ path: String, _ error: IdentifierError) -> SOAPError {
        var status = error.executionStatus
        if status.statusCodeData?.subject == .protocolFormat {
            let element = path.split(separator: "/").last.map(String.init) ?? path
            status = .failed(SOAPError.subject(forElement: element), .invalid, identifier: error.value,
                             message: error.description)
        }
        return SOAPError(code: .invalidValue, path: path, detail: error.description, status: status)
    }

    @inline(never)
    static func invalid(_ path: String, _ detail: String) -> SOAPError {
        let element = path.split(separator: "/").last.map(String.init) ?? path
        return SOAPError(code: .invalidValue, path: path, detail: detail,
                         status: .failed(SOAPError.subject(forElement: element), .invalid, identifier: element, message: detail))
    }

    /// The subject code an element's value is about (spec/sgp02-offcard.md §3.4 typical pairs).
    static func subject(forElement element: String) -> SubjectCode {
        switch element.lowercased() {
        case "eid": .eid
        case "iccid": .profileICCID
        case "profiletype": .profileType
        case "pol2": .pol2
        case "smsr-id", "target-smsr-id", "currentsmsrid": .smsr
        case "newsubscriptionaddress", "subscriptionaddress", "imsi", "msisdn": .subscriptionAddress
        case "eis", "eumsignature": .euicc
        default: .protocolFormat
        }
    }
}
