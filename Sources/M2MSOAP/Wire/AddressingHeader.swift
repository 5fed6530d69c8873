// The RPS header as WS-Addressing 1.0 headers (spec/sgp02-offcard.md §4.2):
//   SenderEntity      → wsa:From/wsa:Address   <uri>?EntityId=<OID>[&EntityName=<name>]
//   ReceiverEntity    → wsa:To                 <uri>?EntityId=<OID>
//   ResponseEndpoint  → wsa:ReplyTo/wsa:Address
//   MessageId (+ TransactionId, ContextId, MessageDate) → wsa:MessageID <id>?TransactionID=…&ContextID=…&MessageDate=…
//   MessageType       → wsa:Action;   RelatesTo → wsa:RelatesTo
// Query parameter names are matched without regard to case on input (real traffic spells
// `TransactionId`); output uses the spec's spelling. Other parameters are kept, in order.

public import M2MCore
import M2MXML

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
        var uri = uri
        let result = uri.withUTF8 { bytes in Result { () throws(SOAPError) in try EndpointAddress(uri: bytes) } }
        self = try result.get()
    }

    /// Parses the URI from its UTF-8 bytes (as `init(uri:)`; the header decoder reads it from the document).
    init(uri: UnsafeBufferPointer<UInt8>) throws(SOAPError) {
        var query = QueryString.Parser(uri)
        self.address = query.base
        var others: [QueryParameter] = []
        while let parameter = query.next() {
            switch parameter.name {
            case .entityID:
                let value = parameter.value()
                guard let oid = try? OID(text: value) else {
                    throw SOAPError(code: .invalidAddressingHeader, path: "EntityId",
                                    detail: "EntityId '\(value.prefix(40))' is not an OID",
                                    status: .failed(.functionRequester, .invalid, identifier: value))
                }
                entityID = oid
            case .entityName: entityName = parameter.value()
            default: others.append(QueryParameter(name: parameter.nameString(), value: parameter.value()))
            }
        }
        parameters = others.isEmpty ? nil : others
    }

    /// Writes `uri` as the text of the element being written.
    func write(to writer: inout XMLWriter) {
        var room = 0
        if case .some = entityID { room += QueryString.Builder.room("EntityId", entityID?.text ?? "") }
        if case .some = entityName { room += QueryString.Builder.room("EntityName", entityName ?? "") }
        if case .some = parameters { for p in parameters ?? [] { room += QueryString.Builder.room(p.name, p.value) } }
        // Optionals are tested in place: binding them with `if let` would copy (retain) their strings.
        QueryString.Builder.write(base: address, capacity: room, to: &writer) { query in
            if case .some = entityID { query.append("EntityId", entityID?.text ?? "") }
            if case .some = entityName { query.append("EntityName", entityName ?? "") }
            if case .some = parameters { for p in parameters ?? [] { query.append(p.name, p.value) } }
        }
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
        var uri = uri
        let result = uri.withUTF8 { bytes in Result { () throws(SOAPError) in try MessageID(uri: bytes) } }
        self = try result.get()
    }

    /// Parses the URI from its UTF-8 bytes (as `init(uri:)`; the header decoder reads it from the document).
    init(uri: UnsafeBufferPointer<UInt8>) throws(SOAPError) {
        var query = QueryString.Parser(uri)
        guard !query.baseBytes.isEmpty else {
            throw SOAPError(code: .invalidAddressingHeader, path: "wsa:MessageID", detail: "empty MessageID")
        }
        id = query.base
        var others: [QueryParameter] = []
        while let parameter = query.next() {
            switch parameter.name {
            case .transactionID: transactionID = parameter.value()
            case .contextID: contextID = parameter.value()
            case .messageDate:
                guard let date = parameter.timestamp() else {
                    let value = parameter.value()
                    throw SOAPError(code: .invalidAddressingHeader, path: "wsa:MessageID/MessageDate",
                                    detail: "MessageDate '\(value.prefix(40))' is not an xs:dateTime")
                }
                messageDate = date
            default: others.append(QueryParameter(name: parameter.nameString(), value: parameter.value()))
            }
        }
        parameters = others.isEmpty ? nil : others
    }

    /// Writes `uri` as the text of the element being written.
    func write(to writer: inout XMLWriter) {
        var room = 0
        if let transactionID { room += QueryString.Builder.room("TransactionID", transactionID) }
        if let contextID { room += QueryString.Builder.room("ContextID", contextID) }
        if messageDate != nil { room += 2 + 11 + 64 }
        for p in parameters ?? [] { room += QueryString.Builder.room(p.name, p.value) }
        QueryString.Builder.write(base: id, capacity: room, to: &writer) { query in
            if let transactionID { query.append("TransactionID", transactionID) }
            if let contextID { query.append("ContextID", contextID) }
            if let messageDate {
                // Digits, '-', ':', '.', 'T' and 'Z' are never percent-encoded.
                messageDate.withUTF8Text { query.append("MessageDate", unencoded: $0) }
            }
            for p in parameters ?? [] { query.append(p.name, p.value) }
        }
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
    /// Splits `base?name=value&…` in place: `base`, then each parameter with its name recognised without
    /// allocating (ASCII case-insensitively) when it has no percent escape. Same results as `split`.
    struct Parser {
        private let bytes: UnsafeBufferPointer<UInt8>
        /// The part before the first `?`.
        let baseBytes: UnsafeBufferPointer<UInt8>
        private var start: Int

        init(_ bytes: UnsafeBufferPointer<UInt8>) {
            self.bytes = bytes
            if let mark = bytes.firstIndex(of: 0x3F) {
                baseBytes = UnsafeBufferPointer(rebasing: bytes[..<mark])
                start = mark + 1
            } else {
                baseBytes = bytes
                start = bytes.count + 1
            }
        }

        var base: String { String(decoding: baseBytes, as: UTF8.self) }

        struct Parameter {
            /// The names we interpret (matched as their lower-cased form), or any other.
            enum Name: Equatable {
                case entityID, entityName, transactionID, contextID, messageDate
                case other
            }

            let name: Name
            let rawName: UnsafeBufferPointer<UInt8>
            let rawValue: UnsafeBufferPointer<UInt8>

            func nameString() -> String { QueryString.decode(rawName) }
            func value() -> String { QueryString.decode(rawValue) }

            /// The value as an xs:dateTime, or nil.
            func timestamp() -> Timestamp? {
                guard !rawValue.contains(0x25) else { return try? Timestamp(text: value()) }
                return Timestamp(utf8: rawValue)
            }
        }

        /// The next `name=value` (or `name` alone, with an empty value); empty parts are skipped.
        mutating func next() -> Parameter? {
            while start <= bytes.count {
                var end = start
                while end < bytes.count, bytes[end] != 0x26 { end += 1 }
                defer { start = end + 1 }
                guard end > start else { continue }
                let part = UnsafeBufferPointer(rebasing: bytes[start..<end])
                let name: UnsafeBufferPointer<UInt8>
                let value: UnsafeBufferPointer<UInt8>
                if let eq = part.firstIndex(of: 0x3D) {
                    name = UnsafeBufferPointer(rebasing: part[..<eq])
                    value = UnsafeBufferPointer(rebasing: part[(eq + 1)...])
                } else {
                    name = part
                    value = UnsafeBufferPointer(start: nil, count: 0)
                }
                return Parameter(name: Self.recognise(name), rawName: name, rawValue: value)
            }
            return nil
        }

        private static let knownNames: [(StaticStringKey, Parameter.Name)] = [
            ("entityid", .entityID), ("entityname", .entityName), ("transactionid", .transactionID),
            ("contextid", .contextID), ("messagedate", .messageDate),
        ]

        /// The known name this is, compared as `decode(name).lowercased()` would be.
        private static func recognise(_ name: UnsafeBufferPointer<UInt8>) -> Parameter.Name {
            if name.firstIndex(of: 0x25) != nil {
                // Percent escapes: decode and lower-case as the String-based parser does.
                let lowered = QueryString.decode(name).lowercased()
                return knownNames.first { $0.0.matches(lowered) }?.1 ?? .other
            }
            // Known names have distinct lengths (8, 10, 13, 9, 11): one comparison at most.
            switch name.count {
            case 8: return StaticStringKey("entityid").matchesIgnoringASCIICase(name) ? .entityID : .other
            case 10: return StaticStringKey("entityname").matchesIgnoringASCIICase(name) ? .entityName : .other
            case 13: return StaticStringKey("transactionid").matchesIgnoringASCIICase(name) ? .transactionID : .other
            case 9: return StaticStringKey("contextid").matchesIgnoringASCIICase(name) ? .contextID : .other
            case 11: return StaticStringKey("messagedate").matchesIgnoringASCIICase(name) ? .messageDate : .other
            default: return .other
            }
        }
    }

    /// Builds `base?name=value&…` as `join` spells it (names and values percent-encoded) in a temporary buffer,
    /// then writes it as element text in one piece: no `String` is made for the URI.
    struct Builder {
        private let buffer: UnsafeMutableBufferPointer<UInt8>
        private var count = 0
        private var first = true

        /// Room needed for one `&name=value` at worst (every byte percent-encoded).
        static func room(_ name: String, _ value: String) -> Int {
            2 + 3 * (name.utf8.count + value.utf8.count)
        }

        /// Builds the URI with `body` in a buffer of `capacity` bytes and writes it as text.
        static func write(
            base: String, capacity: Int, to writer: inout XMLWriter, _ body: (inout Builder) -> Void
        ) {
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: base.utf8.count + capacity) { buffer in
                var builder = Builder(buffer: buffer)
                builder.appendRaw(base)
                body(&builder)
                writer.text(utf8: UnsafeBufferPointer(start: buffer.baseAddress, count: builder.count))
            }
        }

        private init(buffer: UnsafeMutableBufferPointer<UInt8>) {
            self.buffer = buffer
        }

        private mutating func appendRaw(_ string: String) {
            let out = buffer.baseAddress! + count
            count += string.withUTF8Bytes { bytes in
                if let source = bytes.baseAddress {
                    out.update(from: source, count: bytes.count)
                }
                return bytes.count
            }
        }

        private mutating func appendEncoded(_ string: String) {
            let out = buffer.baseAddress! + count
            count += string.withUTF8Bytes { Builder.encode($0, into: out) }
        }

        /// Writes `bytes` percent-encoded at `out`; returns the number of bytes written.
        private static func encode(_ bytes: UnsafeBufferPointer<UInt8>, into out: UnsafeMutablePointer<UInt8>) -> Int {
            var n = 0
            for byte in bytes {
                if QueryString.needsEncoding(byte) {
                    out[n] = 0x25
                    out[n + 1] = Hex.upperDigit(byte >> 4)
                    out[n + 2] = Hex.upperDigit(byte & 0x0F)
                    n += 3
                } else {
                    out[n] = byte
                    n += 1
                }
            }
            return n
        }

        /// Appends `?` or `&`, then `name=value`, both percent-encoded.
        mutating func append(_ name: String, _ value: String) {
            separator()
            appendEncoded(name)
            buffer[count] = 0x3D
            count += 1
            appendEncoded(value)
        }

        /// Appends `?` or `&`, then `name=` and bytes that need no encoding (room: 2 + name + value).
        mutating func append(_ name: String, unencoded value: UnsafeBufferPointer<UInt8>) {
            separator()
            appendRaw(name)
            buffer[count] = 0x3D
            count += 1
            for byte in value {
                buffer[count] = byte
                count += 1
            }
        }

        private mutating func separator() {
            buffer[count] = first ? 0x3F : 0x26
            count += 1
            first = false
        }
    }

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
        guard bytes.firstIndex(of: 0x25) != nil else { return String(decoding: bytes, as: UTF8.self) }
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

    /// `%`, `&`, `=`, `#`, `?`, space, controls and every byte from 0x7F: one bit per byte value below 128.
    /// For each byte value, `1` when it is percent-encoded: `%`, `&`, `=`, `#`, `?`, space, controls and every
    /// byte from 0x7F. A constant string: reading it needs no lazy initialisation and no bounds check.
    private static let encodedBytes: StaticString = """
        1111111111111111111111111111111110010110000000000000000000000101\
        0000000000000000000000000000000000000000000000000000000000000001\
        1111111111111111111111111111111111111111111111111111111111111111\
        1111111111111111111111111111111111111111111111111111111111111111
        """

    @inline(__always)
    static func needsEncoding(_ b: UInt8) -> Bool {
        encodedBytes.utf8Start[Int(b)] == 0x31
    }

    /// Whether any byte of `text` needs percent-encoding.
    static func needsEncoding(_ text: String) -> Bool {
        text.withUTF8Bytes { bytes in
            for byte in bytes where needsEncoding(byte) {
                return true
            }
            return false
        }
    }

    static func encode(_ text: String) -> String {
        guard needsEncoding(text) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 8)
        let digits: [UInt8] = Array("0123456789ABCDEF".utf8)
        for b in text.utf8 {
            if needsEncoding(b) {
                out.append(0x25)
                out.append(digits[Int(b >> 4)])
                out.append(digits[Int(b & 0x0F)])
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A lower-case ASCII name known at compile time, compared with bytes read from a document.
struct StaticStringKey: ExpressibleByStringLiteral {
    let text: StaticString

    init(stringLiteral value: StaticString) {
        text = value
    }

    init(_ value: StaticString) {
        text = value
    }

    /// Whether `bytes` spell this name in any ASCII case.
    func matchesIgnoringASCIICase(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        let expected = text.utf8Start
        for index in 0..<bytes.count {
            let byte = bytes[index]
            let lowered = byte &- 0x41 < 26 ? byte | 0x20 : byte
            guard lowered == expected[index] else { return false }
        }
        return true
    }

    func matches(_ string: String) -> Bool {
        string.utf8.elementsEqual(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }
}
