// The typed JSON form of an envelope, as `m2mrsp soap decode` prints it and `m2mrsp soap encode`
// reads it:
//   { "function": "ES3.CreateISDP", "kind": "request",
//     "header": { "to": {...}, "from": {...}, "replyTo": {...}, "relatesTo": "...",
//                 "messageID": {"id", "transactionID", "contextID", "messageDate"}, "action": "..." },
//     "body": { the message's fields by their Swift names } }
// or, for a Fault, "fault": { "code", "subcode", "reason", "status" } instead of function/kind/body.
// Identifiers are strings, validated when read; numbers and booleans are JSON numbers and booleans.

public import Foundation
public import M2MCore
public import M2MXML

/// Envelope ⇄ JSON.
public struct EnvelopeJSON: Codable {
    public var envelope: SGP02Envelope

    public init(_ envelope: SGP02Envelope) { self.envelope = envelope }

    private enum Keys: String, CodingKey { case function, kind, header, body, fault }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let header = try c.decodeIfPresent(AddressingHeader.self, forKey: .header) ?? AddressingHeader()
        if let fault = try c.decodeIfPresent(SOAPFault.self, forKey: .fault) {
            envelope = SGP02Envelope(header: header, body: .fault(fault))
            return
        }
        let functionName = try c.decode(String.self, forKey: .function)
        let kind = try c.decode(MessageKind.self, forKey: .kind)
        guard let info = FunctionInfo.all.first(where: { $0.id.description.lowercased() == functionName.lowercased() }) else {
            throw SOAPError(code: .invalidJSON, path: "function", detail: "unknown function '\(functionName)' (try `m2mrsp soap functions`)")
        }
        let type: any SGP02Message.Type
        switch kind {
        case .request, .notification:
            guard info.message.descriptor.kind == kind else {
                throw SOAPError(code: .invalidJSON, path: "kind", detail: "\(info.id) has no \(kind.rawValue)")
            }
            type = info.message
        case .response:
            guard let response = info.response else {
                throw SOAPError(code: .invalidJSON, path: "kind", detail: "\(info.id) is a notification: it has no response")
            }
            type = response
        }
        let message = try Self.decodeBody(type, from: c)
        var filled = header
        if filled.action == nil { filled.action = ActionTable.action(for: type.descriptor) }
        envelope = SGP02Envelope(header: filled, body: .message(message))
    }

    private static func decodeBody<T: SGP02Message>(_ type: T.Type, from c: KeyedDecodingContainer<Keys>) throws -> any SGP02Message {
        try c.decode(T.self, forKey: .body)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        switch envelope.body {
        case .message(let message):
            try c.encode(message.descriptor.function.description, forKey: .function)
            try c.encode(message.descriptor.kind, forKey: .kind)
            try c.encode(envelope.header, forKey: .header)
            try c.encode(message, forKey: .body)
        case .fault(let fault):
            try c.encode(envelope.header, forKey: .header)
            try c.encode(fault, forKey: .fault)
        }
    }

    /// Envelope bytes → pretty JSON bytes.
    public static func json(fromEnvelope bytes: [UInt8], limits: XMLLimits = .default) throws -> Data {
        let envelope = try SOAPCodec.decode(bytes, limits: limits)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .withoutEscapingSlashes]
        return try encoder.encode(EnvelopeJSON(envelope))
    }

    /// JSON bytes → envelope bytes. Every identifier is validated on the way.
    public static func envelope(fromJSON data: Data, indent: Int = 2) throws -> [UInt8] {
        let envelope: SGP02Envelope
        do {
            envelope = try JSONDecoder().decode(EnvelopeJSON.self, from: data).envelope
        } catch let error as SOAPError {
            throw error
        } catch let error as IdentifierError {
            throw SOAPError(code: .invalidJSON, detail: error.description, status: error.executionStatus)
        } catch let DecodingError.dataCorrupted(context) {
            throw SOAPError(code: .invalidJSON, path: Self.path(context.codingPath),
                            detail: (context.underlyingError.map { "\($0)" }) ?? context.debugDescription)
        } catch let DecodingError.keyNotFound(key, context) {
            throw SOAPError(code: .invalidJSON, path: Self.path(context.codingPath + [key]), detail: "missing key '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            throw SOAPError(code: .invalidJSON, path: Self.path(context.codingPath), detail: context.debugDescription)
        } catch let DecodingError.valueNotFound(_, context) {
            throw SOAPError(code: .invalidJSON, path: Self.path(context.codingPath), detail: context.debugDescription)
        }
        return SOAPCodec.encode(envelope, indent: indent)
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
    }
}
