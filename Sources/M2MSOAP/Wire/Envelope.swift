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
    private static let addressingHeaders: Set<String> = ["To", "From", "ReplyTo", "FaultTo", "RelatesTo", "MessageID", "Action"]

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

    /// The message type whose body element has this local name (ASCII case-insensitive).
    public static func messageType(forElement name: String) -> (any SGP02Message.Type)? {
        messageTypes[name] ?? messageTypesLowercased[name.lowercased()]
    }

    // MARK: Decoding

    public static func decode(_ bytes: [UInt8], limits: XMLLimits = .default) throws(SOAPError) -> SGP02Envelope {
        let root: XMLElement
        do {
            root = try XMLReader.parse(bytes, limits: limits)
        } catch {
            throw SOAPError.malformed(error)
        }
        return try decode(root)
    }

    public static func decode(_ root: XMLElement) throws(SOAPError) -> SGP02Envelope {
        guard root.name.localName == "Envelope" else {
            throw SOAPError(code: .notAnEnvelope, detail: "the root element is \(root.name.localName), not a SOAP Envelope")
        }
        guard root.name.namespace == Namespace.soapEnvelope else {
            let which = root.name.namespace == Namespace.soap11Envelope ? "SOAP 1.1" : "namespace '\(root.name.namespace)'"
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
        if element.name == XMLName(Namespace.soapEnvelope, "Fault") {
            return SGP02Envelope(header: header, body: .fault(try SOAPFault(xmlElement: element)))
        }
        guard let type = messageType(forElement: element.name.localName) else {
            throw SOAPError(code: .unknownMessage, path: element.name.localName,
                            detail: "\(element.name.localName) is not an SGP.02 message",
                            status: .failed(.function, .unsupported, identifier: element.name.localName))
        }
        let descriptor = type.descriptor
        guard element.name.namespace == Namespace.rps else {
            var error = SOAPError(code: .wrongNamespace, path: element.name.localName,
                                  detail: "\(element.name.localName) is in namespace '\(element.name.namespace)', expected '\(Namespace.rps)'",
                                  status: .failed(.protocolVersion, .unsupported, identifier: element.name.namespace))
            error.function = descriptor.function
            throw error
        }
        guard let action = header.action else {
            var error = SOAPError(code: .missingAddressingHeader, path: "wsa:Action", detail: "wsa:Action is missing",
                                  status: .failed(.protocolFormat, .mandatoryElementMissing, identifier: "wsa:Action"))
            error.function = descriptor.function
            throw error
        }
        guard header.messageID != nil else {
            var error = SOAPError(code: .missingAddressingHeader, path: "wsa:MessageID", detail: "wsa:MessageID is missing",
                                  status: .failed(.protocolFormat, .mandatoryElementMissing, identifier: "wsa:MessageID"))
            error.function = descriptor.function
            throw error
        }
        guard let resolved = ActionTable.resolve(action) else {
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
            return SGP02Envelope(header: header, body: .message(try type.init(xmlElement: element)))
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
        var seen: Set<String> = []
        for block in element.children {
            let mustUnderstand = block.attribute(XMLName(Namespace.soapEnvelope, "mustUnderstand"))
            let isAddressing = block.name.namespace == Namespace.addressing && addressingHeaders.contains(block.name.localName)
            guard isAddressing else {
                if mustUnderstand == "true" || mustUnderstand == "1" {
                    var error = SOAPError(
                        code: .mustUnderstand, path: block.name.localName,
                        detail: "header {\(block.name.namespace)}\(block.name.localName) is marked mustUnderstand and is not understood",
                        status: .failed(.protocol, .unsupported, identifier: block.name.localName))
                    error.notUnderstood = block.name
                    throw error
                }
                continue
            }
            let name = block.name.localName
            guard seen.insert(name).inserted else {
                throw SOAPError(code: .invalidAddressingHeader, path: "wsa:\(name)", detail: "wsa:\(name) appears twice")
            }
            switch name {
            case "To": header.to = try EndpointAddress(uri: collapsed(block.text))
            case "From": header.from = try endpoint(block)
            case "ReplyTo": header.replyTo = try endpoint(block)
            case "RelatesTo": header.relatesTo = collapsed(block.text)
            case "MessageID": header.messageID = try MessageID(uri: collapsed(block.text))
            case "Action": header.action = collapsed(block.text)
            default: break
            }
        }
        return header
    }

    private static func endpoint(_ block: XMLElement) throws(SOAPError) -> EndpointAddress {
        guard let address = block.children.first(where: { $0.name == XMLName(Namespace.addressing, "Address") }) else {
            throw SOAPError(code: .invalidAddressingHeader, path: "wsa:\(block.name.localName)/wsa:Address",
                            detail: "wsa:\(block.name.localName) has no wsa:Address")
        }
        return try EndpointAddress(uri: collapsed(address.text))
    }

    // MARK: Encoding

    /// Writes an envelope. `indent` 2 gives the readable form of the golden files; 0 the compact form.
    public static func encode(_ envelope: SGP02Envelope, indent: Int = 2) -> [UInt8] {
        var w = XMLWriter(declaration: true, indent: indent)
        w.startElement("env:Envelope", attributes: [
            ("xmlns:env", Namespace.soapEnvelope), ("xmlns:wsa", Namespace.addressing), ("xmlns:rps", Namespace.rps),
        ])
        let h = envelope.header
        let hasHeader = h.to != nil || h.from != nil || h.replyTo != nil || h.relatesTo != nil || h.messageID != nil
            || h.action != nil
        if case .fault(let fault) = envelope.body, fault.code == .versionMismatch || fault.notUnderstood != nil {
            w.startElement("env:Header")
            writeFaultHeaders(fault, to: &w)
            writeAddressing(h, to: &w)
            w.endElement()
        } else if hasHeader {
            w.startElement("env:Header")
            writeAddressing(h, to: &w)
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

    private static func writeAddressing(_ h: AddressingHeader, to w: inout XMLWriter) {
        if let to = h.to { w.leaf("wsa:To", to.uri, attributes: [("env:mustUnderstand", "true")]) }
        if let from = h.from {
            w.startElement("wsa:From")
            w.leaf("wsa:Address", from.uri)
            w.endElement()
        }
        if let replyTo = h.replyTo {
            w.startElement("wsa:ReplyTo")
            w.leaf("wsa:Address", replyTo.uri)
            w.endElement()
        }
        if let relatesTo = h.relatesTo { w.leaf("wsa:RelatesTo", relatesTo) }
        if let messageID = h.messageID { w.leaf("wsa:MessageID", messageID.uri) }
        if let action = h.action { w.leaf("wsa:Action", action, attributes: [("env:mustUnderstand", "true")]) }
    }

    private static func writeFaultHeaders(_ fault: SOAPFault, to w: inout XMLWriter) {
        if fault.code == .versionMismatch {
            w.startElement("env:Upgrade")
            w.startElement("env:SupportedEnvelope", attributes: [("qname", "env:Envelope")])
            w.endElement()
            w.endElement()
        }
        if let header = fault.notUnderstood {
            w.startElement("env:NotUnderstood", attributes: [("qname", "nu:\(header.localName)"), ("xmlns:nu", header.namespace)])
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
