// SOAP 1.2 Faults (W3C SOAP 1.2 Part 1 §5.4) as this platform writes and reads them. A fault that
// stems from an SGP.02 condition carries the FunctionExecutionStatus in env:Detail, so a client
// sees the subject and reason codes even when no function response could be built.

public import M2MCore
public import M2MXML

/// A SOAP 1.2 Fault.
public struct SOAPFault: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    /// env:Code/env:Value.
    public enum Code: String, Sendable, Hashable, Codable {
        case versionMismatch = "VersionMismatch"
        case mustUnderstand = "MustUnderstand"
        case dataEncodingUnknown = "DataEncodingUnknown"
        case sender = "Sender"
        case receiver = "Receiver"
    }

    /// The header block that was not understood (MustUnderstand faults).
    public struct NotUnderstood: Sendable, Hashable, Codable {
        public var namespace: String
        public var localName: String
        public init(namespace: String, localName: String) {
            self.namespace = namespace
            self.localName = localName
        }
    }

    public var code: Code
    /// env:Subcode/env:Value as a prefixed name (`wsa:ActionNotSupported`).
    public var subcode: String?
    /// env:Reason/env:Text (xml:lang="en").
    public var reason: String
    /// The SGP.02 status, in env:Detail.
    public var status: FunctionExecutionStatus?
    public var notUnderstood: NotUnderstood?

    public init(
        code: Code, subcode: String? = nil, reason: String, status: FunctionExecutionStatus? = nil,
        notUnderstood: NotUnderstood? = nil
    ) {
        self.code = code
        self.subcode = subcode
        self.reason = reason
        self.status = status
        self.notUnderstood = notUnderstood
    }

    /// The Action of a fault message (WS-Addressing 1.0 SOAP binding).
    public static let action = "http://www.w3.org/2005/08/addressing/soap/fault"

    public var description: String {
        "SOAP Fault env:\(code.rawValue)" + (subcode.map { " (\($0))" } ?? "") + ": \(reason)"
            + (status.map { " — \($0)" } ?? "")
    }

    func write(to w: inout XMLWriter) {
        w.startElement("env:Fault")
        w.startElement("env:Code")
        w.leaf("env:Value", "env:" + code.rawValue)
        if let subcode {
            w.startElement("env:Subcode")
            w.leaf("env:Value", subcode)
            w.endElement()
        }
        w.endElement()
        w.startElement("env:Reason")
        w.startElement("env:Text")
        w.attribute("xml:lang", "en")
        w.text(reason)
        w.endElement()
        w.endElement()
        if let status {
            w.startElement("env:Detail")
            w.element("rps:FunctionExecutionStatus", status)
            w.endElement()
        }
        w.endElement()
    }

    init(xmlElement element: XMLElement) throws(SOAPError) {
        var r = ChildReader(element, path: "Fault", namespace: Namespace.soapEnvelope)
        guard let codeElement = try r.next("Code") else { throw SOAPError.missing("Fault/Code") }
        var c = ChildReader(codeElement, path: "Fault/Code", namespace: Namespace.soapEnvelope)
        guard let value = try c.next("Value") else { throw SOAPError.missing("Fault/Code/Value") }
        let local = value.text.split(separator: ":").last.map(String.init) ?? value.text
        guard let code = Code(rawValue: local) else { throw SOAPError.invalid("Fault/Code/Value", "unknown fault code \(value.text)") }
        var subcode: String?
        if let sub = try c.next("Subcode") {
            var s = ChildReader(sub, path: "Fault/Code/Subcode", namespace: Namespace.soapEnvelope)
            subcode = try s.next("Value")?.text
        }
        guard let reasonElement = try r.next("Reason") else { throw SOAPError.missing("Fault/Reason") }
        let reason = reasonElement.children.first?.text ?? ""
        _ = try r.next("Node")
        _ = try r.next("Role")
        var status: FunctionExecutionStatus?
        if let detail = try r.next("Detail"),
            let child = detail.children.first(where: { $0.name == XMLName(Namespace.rps, "FunctionExecutionStatus") }) {
            status = try FunctionExecutionStatus(xmlElement: child, path: "Fault/Detail/FunctionExecutionStatus")
        }
        try r.finish()
        self.init(code: code, subcode: subcode, reason: reason, status: status)
    }
}
