/// The W3C namespace permanently bound to the `xml` prefix.
let xmlNamespaceURI = "http://www.w3.org/XML/1998/namespace"
/// The namespace of `xmlns` declarations themselves; it can never be bound to a prefix.
let xmlnsNamespaceURI = "http://www.w3.org/2000/xmlns/"

/// An expanded name: a namespace URI and a local name.
public struct XMLName: Hashable, Sendable {
    /// The namespace URI, or `""` when the name is in no namespace.
    public var namespace: String
    /// The local part of the name (without any prefix).
    public var localName: String

    /// Creates an expanded name from a namespace URI (`""` for none) and a local name.
    public init(_ namespace: String, _ localName: String) {
        self.namespace = namespace
        self.localName = localName
    }
}

/// An attribute with its namespace-resolved name and its normalised value.
public struct XMLAttribute: Hashable, Sendable {
    /// The expanded name. Unprefixed attributes are in no namespace (`""`).
    public var name: XMLName
    /// The attribute value, entity-decoded and whitespace-normalised as XML 1.0 requires.
    public var value: String

    /// Creates an attribute.
    public init(name: XMLName, value: String) {
        self.name = name
        self.value = value
    }
}

/// An element of a parsed or constructed document.
///
/// Element-only or text-only content (no mixed content: SOAP/RPS never uses it).
public struct XMLElement: Hashable, Sendable {
    /// The expanded name of the element.
    public var name: XMLName
    /// The prefix seen in the document (diagnostics only; equality of documents should ignore it).
    public var prefix: String?
    /// Attributes in document order, namespace declarations excluded.
    public var attributes: [XMLAttribute]
    /// Child elements in document order.
    public var children: [XMLElement]
    /// Character data of a leaf element, entity-decoded (`""` when it has children).
    public var text: String
    /// 1-based line of the start tag (for error messages); 0 for constructed elements.
    public var line: Int

    /// Creates an element.
    public init(
        name: XMLName,
        prefix: String? = nil,
        attributes: [XMLAttribute] = [],
        children: [XMLElement] = [],
        text: String = "",
        line: Int = 0
    ) {
        self.name = name
        self.prefix = prefix
        self.attributes = attributes
        self.children = children
        self.text = text
        self.line = line
    }

    /// The value of the attribute with the given expanded name, if present.
    public func attribute(_ name: XMLName) -> String? {
        for attribute in attributes where attribute.name == name {
            return attribute.value
        }
        return nil
    }

    /// The value of the unqualified attribute (namespace `""`) with the given local name, if present.
    public func attribute(_ localName: String) -> String? {
        for attribute in attributes where attribute.name.namespace.isEmpty && attribute.name.localName == localName {
            return attribute.value
        }
        return nil
    }
}

/// Resource limits applied by `XMLReader` to untrusted input. Exceeding any of them yields `.limitExceeded`.
public struct XMLLimits: Sendable {
    /// Maximum size of the whole document in bytes (checked before parsing starts).
    public var maxDocumentBytes: Int = 4 << 20
    /// Maximum element nesting depth (the root element is at depth 1).
    public var maxDepth: Int = 64
    /// Maximum number of attributes on one element, namespace declarations included.
    public var maxAttributesPerElement: Int = 32
    /// Maximum length in bytes of an element or attribute name, prefix included.
    public var maxNameLength: Int = 256
    /// Maximum size in bytes of the text of one element or of one attribute value.
    public var maxTextBytes: Int = 2 << 20
    /// Maximum number of elements in the document.
    public var maxElements: Int = 100_000

    /// Creates the default limits.
    public init() {}

    /// The default limits, suitable for SOAP messages.
    public static let `default` = XMLLimits()
}
