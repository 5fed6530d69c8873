// What every SGP.02 message type is: a typed value with a descriptor (interface, function, kind,
// element name), read from and written to its body element, and Codable for the JSON form that
// `m2mrsp soap decode/encode` prints and reads (Swift property names, identifiers as strings).

public import M2MCore
public import M2MXML

/// The off-card interfaces.
public enum Interface: String, Sendable, Hashable, Codable, CaseIterable {
    /// EUM → SM-SR.
    case es1 = "ES1"
    /// MNO → SM-DP.
    case es2 = "ES2"
    /// SM-DP → SM-SR.
    case es3 = "ES3"
    /// MNO / M2M SP → SM-SR.
    case es4 = "ES4"
    /// MNO → SM-SR, PLMA and ONC (v4).
    case es4a = "ES4A"
    /// SM-SR ↔ SM-SR (SM-SR change).
    case es7 = "ES7"
}

/// Namespaces for the message types, one per interface: `ES3.CreateISDPRequest`.
public enum ES1 {}
public enum ES2 {}
public enum ES3 {}
public enum ES4 {}
public enum ES4A {}
public enum ES7 {}

/// Identifies one function, e.g. ES3.CreateISDP.
public struct FunctionID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public var interface: Interface
    public var name: String
    public init(_ interface: Interface, _ name: String) {
        self.interface = interface
        self.name = name
    }
    public var description: String { "\(interface.rawValue).\(name)" }
    public static func < (lhs: FunctionID, rhs: FunctionID) -> Bool { lhs.description < rhs.description }
}

/// Which message of a function.
public enum MessageKind: String, Sendable, Hashable, Codable {
    case request, response, notification
}

/// How a function is normally exchanged (spec/sgp02-offcard.md §2, MEP column).
public enum ExchangePattern: String, Sendable, Hashable, Codable {
    /// Answered in the HTTP response.
    case synchronous
    /// ReplyTo → HTTP 202 → later callback with RelatesTo.
    case asynchronous
    /// One-way.
    case notification
}

/// Whose schema defines the element.
public enum SchemaSource: String, Sendable, Hashable, Codable {
    /// GSMA's v3 schema (xsd/gsma/).
    case gsma
    /// Our v4 additions (xsd/m2mrsp-v4.xsd; docs/wire.md).
    case m2mrsp
}

/// Static facts about one message type.
public struct MessageDescriptor: Sendable, Hashable {
    public let function: FunctionID
    public let kind: MessageKind
    /// The body element's local name, e.g. `ES3-CreateISDPRequest`.
    public let elementName: String
    public let pattern: ExchangePattern
    public let source: SchemaSource
    /// SGP.02 section (v4.2 numbering; most are inferred: spec/sgp02-offcard.md §2).
    public let section: String
    /// The element name with our prefix, as written (`rps:ES3-CreateISDPRequest`).
    public let qualifiedName: String

    public init(
        function: FunctionID, kind: MessageKind, elementName: String, pattern: ExchangePattern, source: SchemaSource,
        section: String
    ) {
        self.function = function
        self.kind = kind
        self.elementName = elementName
        self.pattern = pattern
        self.source = source
        self.section = section
        self.qualifiedName = "rps:" + elementName
    }
}

/// An SGP.02 request, response or notification.
public protocol SGP02Message: Sendable, Hashable, Codable {
    static var descriptor: MessageDescriptor { get }
    /// Reads the message from its body element (already checked to be the right element).
    init(xmlElement element: XMLElement) throws(SOAPError)
    /// Writes the message's children, in schema order.
    func writeContent(to writer: inout XMLWriter)
}

extension SGP02Message {
    public var descriptor: MessageDescriptor { Self.descriptor }

    /// Writes the whole body element.
    public func writeElement(to writer: inout XMLWriter) {
        writer.startElement(Self.descriptor.qualifiedName)
        writeContent(to: &writer)
        writer.endElement()
    }
}

/// `BaseRequestType`.
public protocol SGP02Request: SGP02Message {
    associatedtype Response: SGP02Response
    /// Identifies the call (retries, idempotence).
    var functionCallIdentifier: String { get set }
    /// Seconds during which the request is valid, from its reception.
    var validityPeriod: Int? { get set }
}

/// `BaseResponseType`.
public protocol SGP02Response: SGP02Message {
    var processingStart: Timestamp? { get set }
    var processingEnd: Timestamp? { get set }
    var acceptableValidityPeriod: Int? { get set }
    var functionExecutionStatus: FunctionExecutionStatus { get set }
}

/// `BaseNotificationType`.
public protocol SGP02Notification: SGP02Message {}
