// The RPS header as WS-Addressing 1.0 headers (spec/sgp02-offcard.md §4.2):
//   SenderEntity      → wsa:From/wsa:Address   <uri>?EntityId=<OID>[&EntityName=<name>]
//   ReceiverEntity    → wsa:To                 <uri>?EntityId=<OID>
//   ResponseEndpoint  → wsa:ReplyTo/wsa:Address
//   MessageId (+ TransactionId, ContextId, MessageDate) → wsa:MessageID <id>?TransactionID=…&ContextID=…&MessageDate=…
//   MessageType       → wsa:Action;   RelatesTo → wsa:RelatesTo
// Query parameter names are matched without regard to case on input (real traffic spells
// `TransactionId`); output uses the spec's spelling. Other parameters are kept, in order.

public import M2MCore

/// One `name=value` query parameter we do not interpret.
public struct QueryParameter: Sendable, Hashable, Codable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// An endpoint URI with the SGP.02 entity parameters (wsa:To, wsa:From, wsa:ReplyTo).
public struct EndpointAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The URI without its query.
    public var address: String
    public var entityID: OID?
    public var entityName: String?
    public var parameters: [QueryParameter]?

    public init(address: String, entityID: OID? = nil, entityName: String? = nil, parameters: [QueryParameter]? = nil) {
        self.address = address
        self.entityID = entityID
        self.entityName = entityName
        self.parameters = parameters
    }

    /// Parses `uri?EntityId=…&EntityName=…`.
    public init(uri: String) throws(SOAPError) {
        let (base, query) = QueryString.split(uri)
        self.address = base
        var others: [QueryParameter] = []
        for (name, value) in query {
            switch name.lowercased() {
            case "entityid":
                guard let oid = try? OID(text: value) else {
                    throw SOAPError(code: .invalidAddressingHeader, path: "EntityId",
                                    detail: "EntityId '\(value.prefix(40))' is not an OID",
                                    status: .failed(.functionRequester, .invalid, identifier: value))
                }
                entityID = oid
            case "entityname": entityName = value
            default: others.append(QueryParameter(name: name, value: value))
            }
        }
        parameters = others.isEmpty ? nil : others
    }

    /// The URI as written on the wire.
    public var uri: String {
        var query: [(String, String)] = []
        if let entityID { query.append(("EntityId", entityID.text)) }
        if let entityName { query.append(("EntityName", entityName)) }
        for p in parameters ?? [] { query.append((p.name, p.value)) }
        return QueryString.join(address, query)
    }

    public var description: String { uri }
}

/// wsa:MessageID with the RPS parameters.
public struct MessageID: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The unique id, prefixed with the sender's domain.
    public var id: String
    public var transactionID: String?
    /// End-to-end logging id, copied into onward requests.
    public var contextID: String?
    public var messageDate: Timestamp?
    public var parameters: [QueryParameter]?

    public init(id: String, transactionID: String? = nil, contextID: String? = nil, messageDate: Timestamp? = nil,
                parameters: [QueryParameter]? = nil) {
        self.id = id
        self.transactionID = transactionID
        self.contextID = contextID
        self.messageDate = messageDate
        self.parameters = parameters
    }

    public init(uri: String) throws(SOAPError) {
        let (base, query) = QueryString.split(uri)
        guard !base.isEmpty else {
            throw SOAPError(code: .invalidAddressingHeader, path: "wsa:MessageID", detail: "empty MessageID")
        }
        id = base
        var others: [QueryParameter] = []
        for (name, value) in query {
            switch name.lowercased() {
            case "transactionid": transactionID = value
            case "contextid": contextID = value
            case "messagedate":
                guard let date = try? Timestamp(text: value) else {
                    throw SOAPError(code: .invalidAddressingHeader, path: "wsa:MessageID/MessageDate",
                                    detail: "MessageDate '\(value.prefix(40))' is not an xs:dateTime")
                }
                messageDate = date
            default: others.append(QueryParameter(name: name, value: value))
            }
        }
        parameters = others.isEmpty ? nil : others
    }

    public var uri: String {
        var query: [(String, String)] = []
        if let transactionID { query.append(("TransactionID", transactionID)) }
        if let contextID { query.append(("ContextID", contextID)) }
        if let messageDate { query.append(("MessageDate", messageDate.text)) }
        for p in parameters ?? [] { query.append((p.name, p.value)) }
        return QueryString.join(id, query)
    }

    public var description: String { uri }
}

/// The WS-Addressing headers of an SGP.02 message.
public struct AddressingHeader: Sendable, Hashable, Codable {
    /// The function provider (ReceiverEntity).
    public var to: EndpointAddress?
    /// The function requester (SenderEntity).
    public var from: EndpointAddress?
    /// Where an asynchronous response goes (ResponseEndpoint).
    public var replyTo: EndpointAddress?
    /// The MessageID of the request this message answers.
    public var relatesTo: String?
    public var messageID: MessageID?
    public var action: String?

    public init(
        to: EndpointAddress? = nil, from: EndpointAddress? = nil, replyTo: EndpointAddress? = nil,
        relatesTo: String? = nil, messageID: MessageID? = nil, action: String? = nil
    ) {
        self.to = to
        self.from = from
        self.replyTo = replyTo
        self.relatesTo = relatesTo
        self.messageID = messageID
        self.action = action
    }
}

/// Query-string handling on UTF-8 bytes with percent-decoding (no Foundation; on the hot path of
/// every envelope, so no Character-level work).
enum QueryString {
    static func split(_ uri: String) -> (String, [(String, String)]) {
        var uri = uri
        return uri.withUTF8 { bytes -> (String, [(String, String)]) in
            guard let mark = bytes.firstIndex(of: 0x3F) else { return (String(decoding: bytes, as: UTF8.self), []) }
            let base = String(decoding: UnsafeBufferPointer(rebasing: bytes[..<mark]), as: UTF8.self)
            var pairs: [(String, String)] = []
            var start = mark + 1
            while start <= bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != 0x26 { end += 1 }
                if end > start {
                    let part = UnsafeBufferPointer(rebasing: bytes[start..<end])
                    if let eq = part.firstIndex(of: 0x3D) {
                        pairs.append((decode(UnsafeBufferPointer(rebasing: part[..<eq])),
                                      decode(UnsafeBufferPointer(rebasing: part[(eq + 1)...]))))
                    } else {
                        pairs.append((decode(part), ""))
                    }
                }
                start = end + 1
            }
            return (base, pairs)
        }
    }

    static func join(_ base: String, _ pairs: [(String, String)]) -> String {
        guard !pairs.isEmpty else { return base }
        var out = base
        var separator = "?"
        for (name, value) in pairs {
            out += separator
            out += encode(name)
            out += "="
            out += encode(value)
            separator = "&"
        }
        return out
    }

    static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard bytes.contains(0x25) else { return String(decoding: bytes, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x25, i + 2 < bytes.count, let h = Hex.nibbleValue(bytes[i + 1]), let l = Hex.nibbleValue(bytes[i + 2]) {
                out.append(h << 4 | l)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    static func needsEncoding(_ b: UInt8) -> Bool {
        switch b {
        case 0x25, 0x26, 0x3D, 0x23, 0x3F, 0x20, 0x00...0x1F, 0x7F...0xFF: true
        default: false
        }
    }

    static func encode(_ text: String) -> String {
        guard text.utf8.contains(where: needsEncoding) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 8)
        let digits: [UInt8] = Array("0123456789ABCDEF".utf8)
        for b in text.utf8 {
            if needsEncoding(b) {
                out += [0x25, digits[Int(b >> 4)], digits[Int(b & 0x0F)]]
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
