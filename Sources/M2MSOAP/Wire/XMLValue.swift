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
        try self.init(xmlText: element.textForValue(path: path()), path: path())
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

/// `collapsed` on UTF-8 bytes: the bytes without leading and trailing XML whitespace.
@inline(__always)
func collapsed(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
    var start = 0
    var end = bytes.count
    while start < end && isXMLSpace(bytes[start]) { start += 1 }
    while end > start && isXMLSpace(bytes[end - 1]) { end -= 1 }
    return start == 0 && end == bytes.count ? bytes : UnsafeBufferPointer(rebasing: bytes[start..<end])
}

/// Whether `bytes` are exactly the ASCII `literal`.
@inline(__always)
func equalsASCII(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
    guard bytes.count == literal.utf8CodeUnitCount else { return false }
    let expected = literal.utf8Start
    for index in 0..<bytes.count where bytes[index] != expected[index] {
        return false
    }
    return true
}

extension XMLElement {
    /// The text of a leaf element holding a simple value; an error when it has child elements.
    @inline(__always)
    func textForValue(path: @autoclosure () -> String) throws(SOAPError) -> String {
        guard isLeaf else {
            throw SOAPError.invalid(path(), "\(localName) must have text content, not child elements")
        }
        return text
    }

    /// Calls `body` with the (collapsed) text bytes of a leaf element; an error when it has child elements.
    @inline(__always)
    func withCollapsedText<R>(path: @autoclosure () -> String, _ body: (UnsafeBufferPointer<UInt8>) -> R) throws(SOAPError) -> R {
        guard isLeaf else {
            throw SOAPError.invalid(path(), "\(localName) must have text content, not child elements")
        }
        return withUnsafeText { body(collapsed($0)) }
    }
}

/// M2MCore's validated identifiers are text values with their own validation.
extension XMLTextValue where Self: TextRepresentable {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        // Collapsing the bytes first makes the `String` once, already collapsed.
        let text = try element.withCollapsedText(path: path()) { String(decoding: $0, as: UTF8.self) }
        do {
            try self.init(text: text)
        } catch {
            throw SOAPError.invalid(path(), error)
        }
    }

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
extension OID: XMLTextValue {}
extension IMSI: XMLTextValue {}
extension MSISDN: XMLTextValue {}
extension ThreeDigitVersion: XMLTextValue {}
extension String100: XMLTextValue {}

// Values kept as bytes or numbers are read from the text bytes and written without building a `String`. Only
// valid text takes the fast path; anything else goes through `init(text:)`, which gives the usual error.

extension AID: XMLTextValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        if let bytes = try element.withCollapsedText(path: path(), { Hex.decode(utf8: $0) }) {
            do { try self.init(bytes: bytes) } catch { throw SOAPError.invalid(path(), error) }
            return
        }
        try self.init(xmlText: element.text, path: path())
    }

    public func write(_ qname: String, to writer: inout XMLWriter) {
        writer.hexLeaf(qname, bytes)
    }
}

extension TAR: XMLTextValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        if let bytes = try element.withCollapsedText(path: path(), { Hex.decode(utf8: $0) }) {
            do { try self.init(bytes: bytes) } catch { throw SOAPError.invalid(path(), error) }
            return
        }
        try self.init(xmlText: element.text, path: path())
    }

    public func write(_ qname: String, to writer: inout XMLWriter) {
        writer.hexLeaf(qname, bytes)
    }
}

extension HexBinary: XMLTextValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        if let bytes = try element.withCollapsedText(path: path(), { Hex.decode(utf8: $0) }) {
            self.init(bytes)
            return
        }
        try self.init(xmlText: element.text, path: path())
    }

    public func write(_ qname: String, to writer: inout XMLWriter) {
        writer.hexLeaf(qname, bytes)
    }
}

extension Timestamp: XMLTextValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        if let value = try element.withCollapsedText(path: path(), { Timestamp(utf8: $0) }) {
            self = value
            return
        }
        try self.init(xmlText: element.text, path: path())
    }

    public func write(_ qname: String, to writer: inout XMLWriter) {
        withUTF8Text { writer.leaf(qname, utf8: $0) }
    }
}

extension Base64Binary: XMLTextValue {
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        if let bytes = try element.withCollapsedText(path: path(), { Base64Text.decode($0) }) {
            self.init(bytes)
            return
        }
        try self.init(xmlText: element.text, path: path())
    }

    public func write(_ qname: String, to writer: inout XMLWriter) {
        Base64Text.withEncoded(bytes) { writer.leaf(qname, utf8: $0) }
    }
}

extension XMLWriter {
    /// A leaf element whose text is `bytes` in upper-case hex.
    @inline(__always)
    mutating func hexLeaf(_ qname: String, _ bytes: [UInt8]) {
        Hex.withEncoded(bytes) { leaf(qname, utf8: $0) }
    }
}

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
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        // Fast path: up to 18 digits with an optional sign need no String; anything else takes `init(xmlText:)`.
        if element.isLeaf, let value = element.withUnsafeText({ Int.parseShortDecimal(collapsed($0)) }) {
            self = value
            return
        }
        try self.init(xmlText: element.textForValue(path: path()), path: path())
    }

    /// `[+-]?[0-9]{1,18}`, or nil.
    @inline(__always)
    static func parseShortDecimal(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        var index = 0
        var negative = false
        if let first = bytes.first, first == 0x2B || first == 0x2D {
            negative = first == 0x2D
            index = 1
        }
        let digits = bytes.count - index
        guard digits > 0 && digits <= 18 else { return nil }
        var value = 0
        while index < bytes.count {
            let digit = bytes[index] &- 0x30
            guard digit < 10 else { return nil }
            value = value &* 10 &+ Int(digit)
            index &+= 1
        }
        return negative ? -value : value
    }

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
    public init(xmlElement element: XMLElement, path: @autoclosure () -> String) throws(SOAPError) {
        let value: Bool? = element.isLeaf ? element.withUnsafeText { text in
            let text = collapsed(text)
            if equalsASCII(text, "true") || equalsASCII(text, "1") { return true }
            if equalsASCII(text, "false") || equalsASCII(text, "0") { return false }
            return nil
        } : nil
        if let value {
            self = value
            return
        }
        try self.init(xmlText: element.textForValue(path: path()), path: path())
    }

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
    public let namespace: String
    private let children: XMLElement.Children
    private var index = 0
    private let pathSource: PathSource

    /// Where the reader's path comes from: given, or rendered from the caller's path only when an error needs it.
    private enum PathSource {
        case text(String)
        case deferred(() -> String)
    }

    /// The element's path, for error messages (`ES1-RegisterEISRequest/Eis/EumSignedInfo`).
    public var path: String {
        switch pathSource {
        case .text(let text): text
        case .deferred(let render): render()
        }
    }

    public init(_ element: XMLElement, path: String, namespace: String = Namespace.rps) {
        self.element = element
        self.pathSource = .text(path)
        self.namespace = namespace
        self.children = element.children
    }

    private init(_ element: XMLElement, deferredPath: @escaping () -> String, namespace: String) {
        self.element = element
        self.pathSource = .deferred(deferredPath)
        self.namespace = namespace
        self.children = element.children
    }

    /// Reads the children of `element` with `body`. `path` is only called if an error message needs it, so
    /// nested values (whose paths grow with each level) cost nothing to name until something is wrong.
    public static func read<T>(
        _ element: XMLElement, path: () -> String, namespace: String = Namespace.rps,
        _ body: (inout ChildReader) throws(SOAPError) -> T
    ) throws(SOAPError) -> T {
        try withoutActuallyEscaping(path) { (path) throws(SOAPError) -> T in
            var reader = ChildReader(element, deferredPath: path, namespace: namespace)
            return try body(&reader)
        }
    }

    /// The next child if its local name is `name` (ASCII case-insensitive); it must be in our namespace.
    public mutating func next(_ name: String) throws(SOAPError) -> XMLElement? {
        guard index < children.count else { return nil }
        let child = children[index]
        guard child.hasLocalName(name, ignoringASCIICase: true) else { return nil }
        guard child.isInNamespace(namespace) else {
            throw SOAPError(
                code: .wrongNamespace, path: "\(path)/\(name)",
                detail: "\(name) is in namespace '\(child.namespace)', expected '\(namespace)'",
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
        guard index < children.count else { return }
        let extra = children[index]
        throw SOAPError.unexpected("\(path)/\(extra.localName)", found: extra.name)
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
    func requiredAttribute(_ name: String, path: @autoclosure () -> String) throws(SOAPError) -> String {
        guard let value = attribute(name) else {
            throw SOAPError(
                code: .missingElement, path: "\(path())/@\(name)", detail: "mandatory attribute \(name) is missing",
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

    static func check(_ value: Int, min: Int?, max: Int?, path: @autoclosure () -> String) throws(SOAPError) {
        if let min, value < min { throw SOAPError.invalid(path(), "\(value) is below the minimum \(min)") }
        if let max, value > max { throw SOAPError.invalid(path(), "\(value) is above the maximum \(max)") }
    }
}

/// `ECCKeyLengthType` (ES7.CreateAdditionalKeySet).
public enum ECCKeyLength: String, Sendable, Hashable, Codable, CaseIterable, XMLTextValue {
    case ecc256 = "ECC-256"
    case ecc384 = "ECC-384"
    case ecc512 = "ECC-512"
    case ecc521 = "ECC-521"
}
