// SOAP 1.2 envelopes carrying one SGP.02 message or a Fault, with WS-Addressing headers.
// Decoding checks, in order: well-formed XML within limits (no DTD); a SOAP 1.2 Envelope (a SOAP
// 1.1 one is a VersionMismatch); Header then Body and nothing else; every mustUnderstand header
// understood; exactly one body element, an SGP.02 message of the rps namespace or a Fault; wsa:Action
// and wsa:MessageID present; the Action names the same function as the body; then the message's own
// elements against its schema. Encoding is deterministic (golden files are byte-compared).

public import M2MCore
public import M2MXML

/// An SGP.02 message or a Fault, with its addressing headers.
public struct SGP02Envelope: Sendable {
    public enum Body: Sendable {
        case message(any SGP02Message)
        case fault(SOAPFault)
    }

    public var header: AddressingHeader
    public var body: Body

    public init(header: AddressingHeader, body: Body) {
        self.header = header
        self.body = body
    }

    public init(header: AddressingHeader, message: any SGP02Message) {
        self.init(header: header, body: .message(message))
    }

    /// The message, when the body is not a Fault.
    public var message: (any SGP02Message)? {
        if case .message(let message) = body { return message }
        return nil
    }

    /// The message's descriptor, when the body is not a Fault.
    public var descriptor: MessageDescriptor? { message?.descriptor }
}

/// Reads and writes SGP.02 SOAP envelopes.
public enum SOAPCodec {
    /// Known WS-Addressing header blocks (we process all of them; FaultTo is accepted and ignored).
    private enum AddressingHeaderKind: Int, Sendable {
        case to, from, replyTo, faultTo, relatesTo, messageID, action
    }

    private static let addressingHeaders = UTF8Table<AddressingHeaderKind>([
        ("To", .to), ("From", .from), ("ReplyTo", .replyTo), ("FaultTo", .faultTo), ("RelatesTo", .relatesTo),
        ("MessageID", .messageID), ("Action", .action),
    ])

    private static let messageTypes: [String: any SGP02Message.Type] = {
        var map: [String: any SGP02Message.Type] = [:]
        for info in FunctionInfo.all {
            map[info.message.descriptor.elementName] = info.message
            if let response = info.response { map[response.descriptor.elementName] = response }
        }
        return map
    }()

    private static let messageTypesLowercased: [String: any SGP02Message.Type] = {
        Dictionary(uniqueKeysWithValues: messageTypes.map { ($0.key.lowercased(), $0.value) })
    }()

    /// What decoding needs about a message type, found from the body element's name bytes.
    private struct BodyInfo: Sendable {
        let type: any SGP02Message.Type
        let descriptor: MessageDescriptor
        /// The function's canonical Actions and what `ActionTable.resolve` answers for them.
        let actions: [(uri: String, resolved: ResolvedAction)]
    }

    private static let bodyInfo = UTF8Table<BodyInfo>(messageTypes.map { name, type in
        (name, BodyInfo(type: type, descriptor: type.descriptor,
                        actions: ActionTable.canonicalActions(for: type.descriptor.function)))
    })

    /// The message type whose body element has this local name (ASCII case-insensitive).
    public static func messageType(forElement name: String) -> (any SGP02Message.Type)? {
        messageTypes[name] ?? messageTypesLowercased[name.lowercased()]
    }

    /// The body info for an element name: exact bytes first, then any ASCII case.
    private static func bodyInfo(for element: XMLElement) -> BodyInfo? {
        if let info = element.withUnsafeLocalName({ bodyInfo.value(for: $0) }) {
            return info
        }
        guard let type = messageType(forElement: element.localName) else { return nil }
        return type.descriptor.elementName.withUTF8Bytes { bodyInfo.value(for: $0) }
    }

    // MARK: Decoding

    public static func decode(_ bytes: [UInt8], limits: XMLLimits = .default) throws(SOAPError) -> SGP02Envelope {
        let root: XMLElement
        do {
            root = try XMLReader.parse(bytes, limits: limits, knownNamespaces: Namespace.known)
        } catch {
            throw SOAPError.malformed(error)
        }
        return try decode(root)
    }

    public static func decode(_ root: XMLElement) throws(SOAPError) -> SGP02Envelope {
        guard root.hasLocalName("Envelope") else {
            throw SOAPError(code: .notAnEnvelope, detail: "the root element is \(root.localName), not a SOAP Envelope")
        }
        guard root.isInNamespace(Namespace.soapEnvelope) else {
            let which = root.isInNamespace(Namespace.soap11Envelope) ? "SOAP 1.1" : "namespace '\(root.namespace)'"
            throw SOAPError(code: .versionMismatch,
                            detail: "\(which) envelope received; this endpoint speaks SOAP 1.2 (\(Namespace.soapEnvelope))",
                            status: .failed(.protocolVersion, .unsupported))
        }
        var r = ChildReader(root, path: "Envelope", namespace: Namespace.soapEnvelope)
        let headerElement = try r.next("Header")
        guard let bodyElement = try r.next("Body") else {
            throw SOAPError(code: .notAnEnvelope, path: "Envelope/Body", detail: "the envelope has no Body")
        }
        do {
            try r.finish()
        } catch {
            throw SOAPError(code: .notAnEnvelope, path: error.path, detail: "only Header and Body may appear in an Envelope")
        }
        let header = try readHeader(headerElement)

        let bodyChildren = bodyElement.children
        guard bodyChildren.count == 1, let element = bodyChildren.first else {
            throw SOAPError(code: .notAnEnvelope, path: "Envelope/Body",
                            detail: "the Body holds \(bodyChildren.count) elements; SGP.02 sends exactly one")
        }
        if element.hasLocalName("Fault") && element.isInNamespace(Namespace.soapEnvelope) {
            return SGP02Envelope(header: header, body: .fault(try SOAPFault(xmlElement: element)))
        }
        guard let info = bodyInfo(for: element) else {
            let name = element.localName
            throw SOAPError(code: .unknownMessage, path: name,
                            detail: "\(name) is not an SGP.02 message",
                            status: .failed(.function, .unsupported, identifier: name))
        }
        let descriptor = info.descriptor
        guard element.isInNamespace(Namespace.rps) else {
            let name = element.localName
            var error = SOAPError(code: .wrongNamespace, path: name,
                                  detail: "\(name) is in namespace '\(element.namespace)', expected '\(Namespace.rps)'",
                                  status: .failed(.protocolVersion, .unsupported, identifier: element.namespace))
            error.function = descriptor.function
            throw error
        }
        guard let action = header.action else {
            var error = SOAPError(code: .missingAddressingHeader, path: "wsa:Action", detail: "wsa:Action is missing",
                                  status: .failed(.protocolFormat, .mandatoryElementMissing, identifier: "wsa:Action"))
            error.function = descriptor.function
            throw error
        }
        guard case .some = header.messageID else {
            var error = SOAPError(code: .missingAddressingHeader, path: "wsa:MessageID", detail: "wsa:MessageID is missing",
                                  status: .failed(.protocolFormat, .mandatoryElementMissing, identifier: "wsa:MessageID"))
            error.function = descriptor.function
            throw error
        }
        // The usual case: the Action is one of the function's canonical URIs.
        guard let resolved = info.actions.first(where: { $0.uri == action })?.resolved ?? ActionTable.resolve(action) else {
            var error = SOAPError(code: .unknownAction, path: "wsa:Action", detail: "unknown Action \(action)",
                                  status: .failed(.function, .unsupported, identifier: action))
            error.function = descriptor.function
            throw error
        }
        guard resolved.function == descriptor.function, agrees(resolved.role, descriptor.kind) else {
            var error = SOAPError(code: .actionMismatch, path: "wsa:Action",
                                  detail: "Action \(action) names \(resolved.function) (\(resolved.role.rawValue)) but the body is \(descriptor.elementName)",
                                  status: .failed(.function, .invalid, identifier: action))
            error.function = descriptor.function
            throw error
        }
        do {
            return SGP02Envelope(header: header, body: .message(try info.type.init(xmlElement: element)))
        } catch {
            var error = error
            error.function = descriptor.function
            throw error
        }
    }

    private static func agrees(_ role: ResolvedAction.Role, _ kind: MessageKind) -> Bool {
        switch role {
        case .unspecified: true
        case .request: kind == .request
        case .response, .callback: kind == .response
        case .notification: kind == .notification
        }
    }

    private static func readHeader(_ element: XMLElement?) throws(SOAPError) -> AddressingHeader {
        var header = AddressingHeader()
        guard let element else { return header }
        var seen = 0
        for block in element.children {
            let kind = block.isInNamespace(Namespace.addressing)
                ? block.withUnsafeLocalName { addressingHeaders.value(for: $0) } : nil
            guard let kind else {
                let mustUnderstand = block.attribute(XMLName(Namespace.soapEnvelope, "mustUnderstand"))
                if mustUnderstand == "true" || mustUnderstand == "1" {
                    let name = block.name
                    var error = SOAPError(
                        code: .mustUnderstand, path: name.localName,
                        detail: "header {\(name.namespace)}\(name.localName) is marked mustUnderstand and is not understood",
                        status: .failed(.protocol, .unsupported, identifier: name.localName))
                    error.notUnderstood = name
                    throw error
                }
                continue
            }
            guard seen & (1 << kind.rawValue) == 0 else {
                let name = block.localName
                throw SOAPError(code: .invalidAddressingHeader, path: "wsa:\(name)", detail: "wsa:\(name) appears twice")
            }
            seen |= 1 << kind.rawValue
            switch kind {
            case .to: header.to = try block.withUnsafeText { (text) throws(SOAPError) in try EndpointAddress(uri: collapsed(text)) }
            case .from: header.from = try endpoint(block)
            case .replyTo: header.replyTo = try endpoint(block)
            case .relatesTo: header.relatesTo = block.withUnsafeText { String(decoding: collapsed($0), as: UTF8.self) }
            case .messageID: header.messageID = try block.withUnsafeText { (text) throws(SOAPError) in try MessageID(uri: collapsed(text)) }
            case .action: header.action = block.withUnsafeText { String(decoding: collapsed($0), as: UTF8.self) }
            case .faultTo: break
            }
        }
        return header
    }

    private static func endpoint(_ block: XMLElement) throws(SOAPError) -> EndpointAddress {
        guard let address = block.children.first(where: { $0.hasLocalName("Address") && $0.isInNamespace(Namespace.addressing) }) else {
            let name = block.localName
            throw SOAPError(code: .invalidAddressingHeader, path: "wsa:\(name)/wsa:Address",
                            detail: "wsa:\(name) has no wsa:Address")
        }
        return try address.withUnsafeText { (text) throws(SOAPError) in try EndpointAddress(uri: collapsed(text)) }
    }

    // MARK: Encoding

    /// Writes an envelope. `indent` 2 gives the readable form of the golden files; 0 the compact form.
    public static func encode(_ envelope: SGP02Envelope, indent: Int = 2) -> [UInt8] {
        var w = XMLWriter(declaration: true, indent: indent, capacity: 4096)
        w.startElement("env:Envelope")
        w.attribute("xmlns:env", Namespace.soapEnvelope)
        w.attribute("xmlns:wsa", Namespace.addressing)
        w.attribute("xmlns:rps", Namespace.rps)
        if case .fault(let fault) = envelope.body, fault.code == .versionMismatch || fault.notUnderstood != nil {
            w.startElement("env:Header")
            writeFaultHeaders(fault, to: &w)
            writeAddressing(envelope.header, to: &w)
            w.endElement()
        } else if hasAddressing(envelope.header) {
            w.startElement("env:Header")
            writeAddressing(envelope.header, to: &w)
            w.endElement()
        }
        w.startElement("env:Body")
        switch envelope.body {
        case .message(let message): message.writeElement(to: &w)
        case .fault(let fault): fault.write(to: &w)
        }
        w.endElement()
        w.endElement()
        return w.bytes
    }

    /// Whether any addressing header is set (tested in place: copying the header would retain all its strings).
    private static func hasAddressing(_ h: borrowing AddressingHeader) -> Bool {
        if case .some = h.to { return true }
        if case .some = h.from { return true }
        if case .some = h.replyTo { return true }
        if case .some = h.relatesTo { return true }
        if case .some = h.messageID { return true }
        if case .some = h.action { return true }
        return false
    }

    private static func writeAddressing(_ h: borrowing AddressingHeader, to w: inout XMLWriter) {
        if case .some = h.to {
            w.startElement("wsa:To")
            w.attribute("env:mustUnderstand", "true")
            h.to?.write(to: &w)
            w.endElement()
        }
        if case .some = h.from {
            w.startElement("wsa:From")
            w.startElement("wsa:Address")
            h.from?.write(to: &w)
            w.endElement()
            w.endElement()
        }
        if case .some = h.replyTo {
            w.startElement("wsa:ReplyTo")
            w.startElement("wsa:Address")
            h.replyTo?.write(to: &w)
            w.endElement()
            w.endElement()
        }
        if case .some = h.relatesTo { w.leaf("wsa:RelatesTo", h.relatesTo ?? "") }
        if case .some = h.messageID {
            w.startElement("wsa:MessageID")
            h.messageID?.write(to: &w)
            w.endElement()
        }
        if case .some = h.action {
            w.startElement("wsa:Action")
            w.attribute("env:mustUnderstand", "true")
            w.text(h.action ?? "")
            w.endElement()
        }
    }

    private static func writeFaultHeaders(_ fault: SOAPFault, to w: inout XMLWriter) {
        if fault.code == .versionMismatch {
            w.startElement("env:Upgrade")
            w.startElement("env:SupportedEnvelope")
            w.attribute("qname", "env:Envelope")
            w.endElement()
            w.endElement()
        }
        if let header = fault.notUnderstood {
            w.startElement("env:NotUnderstood")
            w.attribute("qname", "nu:\(header.localName)")
            w.attribute("xmlns:nu", header.namespace)
            w.endElement()
        }
    }

    /// The Fault envelope that answers a request that failed before any function response could be built.
    public static func faultEnvelope(for error: SOAPError, relatesTo: String? = nil, messageID: MessageID? = nil) -> SGP02Envelope {
        SGP02Envelope(
            header: AddressingHeader(relatesTo: relatesTo, messageID: messageID, action: SOAPFault.action),
            body: .fault(error.fault))
    }
}
