// The SM-SR stores EIS and ProfileInfo documents in their SGP.02 XML form (the same writer and
// reader as the wire, docs/wire.md), wrapped in one element that declares the namespace. Measured
// against Foundation's JSONEncoder/JSONDecoder in `m2mrsp bench smsr` (docs/smsr.md): the JSON
// codec spent most of a registration's and an enable's time encoding and decoding EIS documents.

public import M2MCore
import M2MSOAP
public import M2MStorage
import M2MXML

public struct XMLDocumentCodec: SMSRDocumentCodec {
    public init() {}

    struct Malformed: Error {}

    static func wrap(_ body: (inout XMLWriter) -> Void) -> [UInt8] {
        var writer = XMLWriter(declaration: false, indent: 0)
        writer.startElement("rps:Document")
        writer.attribute("xmlns:rps", Namespace.rps)
        body(&writer)
        writer.endElement()
        return writer.bytes
    }

    static func unwrap(_ bytes: [UInt8]) throws -> XMLElement {
        let root = try XMLReader.parse(bytes, limits: .default, knownNamespaces: Namespace.known)
        guard let child = root.children.first else { throw Malformed() }
        return child
    }

    public func encode(_ eis: EIS) throws -> [UInt8] { Self.wrap { eis.write("rps:Eis", to: &$0) } }
    public func decodeEIS(_ bytes: [UInt8]) throws -> EIS { try EIS(xmlElement: try Self.unwrap(bytes), path: "Eis") }
    public func encode(_ profile: ProfileInfo) throws -> [UInt8] { Self.wrap { profile.write("rps:ProfileInfo", to: &$0) } }
    public func decodeProfile(_ bytes: [UInt8]) throws -> ProfileInfo { try ProfileInfo(xmlElement: try Self.unwrap(bytes), path: "ProfileInfo") }
    public func encode(_ record: AuditTrailRecord) throws -> [UInt8] { Self.wrap { record.write("rps:AuditTrailRecord", to: &$0) } }

    /// An audit record; rows written by the JSON codec (before the XML codec kept audit records,
    /// docs/storage.md) still read.
    public func decodeAuditRecord(_ bytes: [UInt8]) throws -> AuditTrailRecord {
        if bytes.first == UInt8(ascii: "{") { return try JSONDocumentCodec().decodeAuditRecord(bytes) }
        return try AuditTrailRecord(xmlElement: try Self.unwrap(bytes), path: "AuditTrailRecord")
    }
}
