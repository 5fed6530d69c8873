// How values map to XML elements: one protocol for simple and complex content, a child cursor that
// reads a sequence in schema order, and writer helpers that spell each element as the schema does.
// Reading is tolerant where GSMA's own schema set is inconsistent: element names match without
// regard to ASCII case (`Smsr-id`/`SmSr-id`, `CompletionTimestamp`/`completionTimestamp`). Output is
// exactly what the schema says.

public import M2MCore
public import M2MXML

/// A value that is the content (and attributes) of one XML element.
public protocol XMLValue: Sendable {
    /// Reads the value from its element. `path` names the element for error messages.
    init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError)
    /// Writes the element named `qname` (prefix:local) with this value as its content.
    func write(_ qname: String, to writer: inout XMLWriter)
}

/// A value written as the text of a leaf element.
public protocol XMLTextValue: XMLValue {
    init(xmlText: String, path: @autoclosure () -> String) throws(SOAPError)
    var xmlText: String { get }
}

extension XMLTextValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        guard element.children.isEmpty else {
            throw SOAPError.invalid(path(), "\(element.name.localName) must have text content, not child elements")
        }
        try self.init(xmlText: element.text, path: path())
    }

    public func write(_ qname: String, to writer: inout XMLWriter) {
        writer.leaf(qname, xmlText)
    }
}

/// XML Schema's whitespace "collapse" for token-like types (hexBinary, integer, boolean, dateTime,
/// patterns): leading and trailing whitespace is not part of the value.
@inline(__always)
func collapsed(_ text: String) -> String {
    guard let first = text.utf8.first, let last = text.utf8.last else { return text }
    if !isXMLSpace(first) && !isXMLSpace(last) { return text }
    var utf8 = Substring(text).utf8[...]
    while let f = utf8.first, isXMLSpace(f) { utf8 = utf8.dropFirst() }
    while let l = utf8.last, isXMLSpace(l) { utf8 = utf8.dropLast() }
    return String(Substring(utf8))
}

@inline(__always)
func isXMLSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

/// M2MCore's validated identifiers are text values with their own validation.
extension XMLTextValue where Self: TextRepresentable {
    public init(xmlText: String, path: @autoclosure () -> String) throws(SOAPError) {
        do {
            try self.init(text: collapsed(xmlText))
        } catch {
            throw SOAPError.invalid(path(), error)
        }
    }

    public var xmlText: String { text }
}

extension EID: XMLTextValue {}
extension ICCID: XMLTextValue {}
extension AID: XMLTextValue {}
extension TAR: XMLTextValue {}
extension OID: XMLTextValue {}
extension IMSI: XMLTextValue {}
extension MSISDN: XMLTextValue {}
extension HexBinary: XMLTextValue {}
extension Base64Binary: XMLTextValue {}
extension Timestamp: XMLTextValue {}
extension ThreeDigitVersion: XMLTextValue {}
extension String100: XMLTextValue {}

/// Schema enumerations map through their raw values.
extension XMLTextValue where Self: RawRepresentable, RawValue == String {
    public init(xmlText: String, path: @autoclosure () -> String) throws(SOAPError) {
        guard let value = Self(rawValue: collapsed(xmlText)) else {
            throw SOAPError.invalid(path(), "'\(xmlText.prefix(40))' is not a value of \(Self.self)")
        }
        self = value
    }

    public var xmlText: String { rawValue }
}

extension ProfileState: XMLTextValue {}
extension SecurityDomain.Role: XMLTextValue {}
extension Keyset.Usage: XMLTextValue {}
extension POL2.Rule.Subject: XMLTextValue {}
extension POL2.Rule.Action: XMLTextValue {}
extension POL2.Rule.Qualification: XMLTextValue {}
extension FunctionExecutionStatus.Status: XMLTextValue {}
extension NotificationType: XMLTextValue {}
extension PLMAFunction: XMLTextValue {}

extension SubjectCode: XMLTextValue {
    public init(xmlText: String, path: @autoclosure () -> String) throws(SOAPError) {
        guard let code = SubjectCode(rawValue: collapsed(xmlText)) else { throw SOAPError.invalid(path(), "not a subject code") }
        self = code
    }
    public var xmlText: String { rawValue }
}

extension ReasonCode: XMLTextValue {
    public init(xmlText: String, path: @autoclosure () -> String) throws(SOAPError) {
        guard let code = ReasonCode(rawValue: collapsed(xmlText)) else { throw SOAPError.invalid(path(), "not a reason code") }
        self = code
    }
    public var xmlText: String { rawValue }
}

/// xs:string: the text as it is (whitespace preserved).
extension String: XMLTextValue {
    public init(xmlText: String, path: @autoclosure () -> String) throws(SOAPError) { self = xmlText }
    public var xmlText: String { self }
}

/// xs:integer and its restrictions (positiveInteger, nonNegativeInteger, byte …).
extension Int: XMLTextValue {
    public init(xmlText: String, path: @autoclosure () -> String) throws(SOAPError) {
        var text = collapsed(xmlText)
        if text.hasPrefix("+") { text.removeFirst() }
        guard let value = Int(text) else { throw SOAPError.invalid(path(), "'\(xmlText.prefix(40))' is not an integer") }
        self = value
    }
    public var xmlText: String { String(self) }
}

/// xs:boolean: true/false/1/0 in, true/false out.
extension Bool: XMLTextValue {
    public init(xmlText: String, path: @autoclosure () -> String) throws(SOAPError) {
        switch collapsed(xmlText) {
        case "true", "1": self = true
        case "false", "0": self = false
        default: throw SOAPError.invalid(path(), "'\(xmlText.prefix(40))' is not a boolean")
        }
    }
    public var xmlText: String { self ? "true" : "false" }
}

// MARK: - Reading a sequence

/// Reads the child elements of one element in schema order.
public struct ChildReader {
    public let element: XMLElement
    public let path: String
    public let namespace: String
    private var index = 0

    public init(_ element: XMLElement, path: String, namespace: String = Namespace.rps) {
        self.element = element
        self.path = path
        self.namespace = namespace
    }

    /// The next child if its local name is `name` (ASCII case-insensitive); it must be in our namespace.
    public mutating func next(_ name: String) throws(SOAPError) -> XMLElement? {
        guard index < element.children.count else { return nil }
        let child = element.children[index]
        guard ChildReader.sameName(child.name.localName, name) else { return nil }
        guard child.name.namespace == namespace else {
            throw SOAPError(
                code: .wrongNamespace, path: "\(path)/\(name)",
                detail: "\(name) is in namespace '\(child.name.namespace)', expected '\(namespace)'",
                status: .failed(.protocolFormat, .invalid, identifier: name, message: "wrong namespace"))
        }
        index += 1
        return child
    }

    public mutating func required<T: XMLValue>(_ name: String, as type: T.Type = T.self) throws(SOAPError) -> T {
        guard let child = try next(name) else { throw SOAPError.missing("\(path)/\(name)") }
        return try T(xmlElement: child, path: "\(path)/\(name)")
    }

    public mutating func optional<T: XMLValue>(_ name: String, as type: T.Type = T.self) throws(SOAPError) -> T? {
        guard let child = try next(name) else { return nil }
        return try T(xmlElement: child, path: "\(path)/\(name)")
    }

    public mutating func repeated<T: XMLValue>(
        _ name: String, as type: T.Type = T.self, min: Int = 0, max: Int = .max
    ) throws(SOAPError) -> [T] {
        var values: [T] = []
        while let child = try next(name) {
            guard values.count < max else {
                throw SOAPError.invalid("\(path)/\(name)", "at most \(max) \(name) elements are allowed")
            }
            values.append(try T(xmlElement: child, path: "\(path)/\(name)"))
        }
        guard values.count >= min else { throw SOAPError.missing("\(path)/\(name)") }
        return values
    }

    /// Every child must have been read.
    public func finish() throws(SOAPError) {
        guard index < element.children.count else { return }
        let extra = element.children[index]
        throw SOAPError.unexpected("\(path)/\(extra.name.localName)", found: extra.name)
    }

    @inline(__always)
    static func sameName(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        let x = a.utf8, y = b.utf8
        guard x.count == y.count else { return false }
        for (p, q) in zip(x, y) where p != q {
            guard p | 0x20 == q | 0x20, (p | 0x20) >= 0x61, (p | 0x20) <= 0x7A else { return false }
        }
        return true
    }
}

// MARK: - Writing

extension XMLWriter {
    @inline(__always)
    public mutating func element<T: XMLValue>(_ qname: String, _ value: T) {
        value.write(qname, to: &self)
    }

    @inline(__always)
    public mutating func optional<T: XMLValue>(_ qname: String, _ value: T?) {
        if let value { value.write(qname, to: &self) }
    }

    @inline(__always)
    public mutating func each<T: XMLValue>(_ qname: String, _ values: [T]) {
        for value in values { value.write(qname, to: &self) }
    }
}

/// Attribute helper for complex types that carry attributes.
extension XMLElement {
    func requiredAttribute(_ name: String, path: String) throws(SOAPError) -> String {
        guard let value = attribute(name) else {
            throw SOAPError(
                code: .missingElement, path: "\(path)/@\(name)", detail: "mandatory attribute \(name) is missing",
                status: .failed(.protocolFormat, .mandatoryElementMissing, identifier: name))
        }
        return value
    }
}

// MARK: - Integers with a range (positiveInteger, KeysetVersionType, xs:byte …)

extension ChildReader {
    public mutating func requiredInt(_ name: String, min: Int?, max: Int?) throws(SOAPError) -> Int {
        let value: Int = try required(name)
        try ChildReader.check(value, min: min, max: max, path: "\(path)/\(name)")
        return value
    }

    public mutating func optionalInt(_ name: String, min: Int?, max: Int?) throws(SOAPError) -> Int? {
        guard let value: Int = try optional(name) else { return nil }
        try ChildReader.check(value, min: min, max: max, path: "\(path)/\(name)")
        return value
    }

    static func check(_ value: Int, min: Int?, max: Int?, path: String) throws(SOAPError) {
        if let min, value < min { throw SOAPError.invalid(path, "\(value) is below the minimum \(min)") }
        if let max, value > max { throw SOAPError.invalid(path, "\(value) is above the maximum \(max)") }
    }
}

/// `ECCKeyLengthType` (ES7.CreateAdditionalKeySet).
public enum ECCKeyLength: String, Sendable, Hashable, Codable, CaseIterable, XMLTextValue {
    case ecc256 = "ECC-256"
    case ecc384 = "ECC-384"
    case ecc512 = "ECC-512"
    case ecc521 = "ECC-521"
}
