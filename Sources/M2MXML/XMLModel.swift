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

/// An element of a parsed or constructed document: an immutable value.
///
/// Element-only or text-only content (no mixed content: SOAP/RPS never uses it).
///
/// A whole document lives in one compact, immutable store (`XMLTree`): the parsed bytes, flat arrays of
/// elements and attributes, and each namespace URI once. An `XMLElement` is a reference into that store, so
/// copying one is cheap and reading a document allocates almost nothing. Names, text and attribute values are
/// kept as bytes and become `String`s when asked for (`name`, `text`, `attributes`, `attribute(_:)`); the
/// `withUnsafe…` accessors and `hasLocalName(_:)` read them without creating strings. An element keeps its
/// whole document alive, as a `Substring` keeps its `String`.
public struct XMLElement: Sendable {
    @usableFromInline let tree: XMLTree
    @usableFromInline let index: Int

    init(tree: XMLTree, index: Int) {
        self.tree = tree
        self.index = index
    }

    @inlinable
    var node: XMLTree.Node { tree.nodes[index] }

    /// Creates an element (a new standalone tree; `children` are copied into it).
    public init(
        name: XMLName,
        prefix: String? = nil,
        attributes: [XMLAttribute] = [],
        children: [XMLElement] = [],
        text: String = "",
        line: Int = 0
    ) {
        var builder = XMLTree.Builder()
        builder.addRoot(name: name, prefix: prefix, attributes: attributes, children: children, text: text, line: line)
        self.init(tree: builder.finish(), index: 0)
    }

    /// The expanded name of the element.
    public var name: XMLName {
        XMLName(namespace, localName)
    }

    /// The namespace URI of the element (`""` for none). Shared by every element of the document in that namespace.
    public var namespace: String {
        tree.namespaces[Int(node.namespace)]
    }

    /// The local part of the element's name.
    public var localName: String {
        tree.string(node.localName)
    }

    /// The prefix seen in the document (diagnostics only; equality of documents should ignore it).
    public var prefix: String? {
        let span = node.prefix
        return span.isAbsent ? nil : tree.string(span)
    }

    /// Attributes in document order, namespace declarations excluded.
    public var attributes: [XMLAttribute] {
        let node = node
        guard node.attributeCount > 0 else { return [] }
        var result: [XMLAttribute] = []
        result.reserveCapacity(Int(node.attributeCount))
        for offset in 0..<Int(node.attributeCount) {
            let attribute = tree.attributes[Int(node.firstAttribute) + offset]
            result.append(
                XMLAttribute(
                    name: XMLName(tree.namespaces[Int(attribute.namespace)], tree.string(attribute.localName)),
                    value: tree.string(attribute.value)
                )
            )
        }
        return result
    }

    /// Child elements in document order.
    public var children: Children {
        let node = node
        return Children(tree: tree, start: Int(node.firstChild), count: Int(node.childCount))
    }

    /// Character data of a leaf element, entity-decoded (`""` when it has children).
    public var text: String {
        tree.string(node.text)
    }

    /// 1-based line of the start tag (for error messages); 0 for constructed elements.
    public var line: Int {
        tree.line(of: index)
    }

    /// The value of the attribute with the given expanded name, if present.
    public func attribute(_ name: XMLName) -> String? {
        guard let namespace = tree.namespaceIndex(of: name.namespace) else { return nil }
        return attributeValue(namespace: namespace, localName: name.localName)
    }

    /// The value of the unqualified attribute (namespace `""`) with the given local name, if present.
    public func attribute(_ localName: String) -> String? {
        attributeValue(namespace: 0, localName: localName)
    }

    private func attributeValue(namespace: Int32, localName: String) -> String? {
        let node = node
        for offset in 0..<Int(node.attributeCount) {
            let attribute = tree.attributes[Int(node.firstAttribute) + offset]
            if attribute.namespace == namespace && tree.equals(attribute.localName, localName) {
                return tree.string(attribute.value)
            }
        }
        return nil
    }

    // MARK: Reading without creating strings

    /// Whether the element's local name is `localName`, compared as UTF-8 bytes, optionally ignoring the case of
    /// ASCII letters.
    @inlinable
    public func hasLocalName(_ localName: String, ignoringASCIICase: Bool = false) -> Bool {
        let span = node.localName
        return localName.withUTF8Bytes { expected in
            guard expected.count == Int(span.count) else { return false }
            return tree.withBytes(span) { bytes in
                if bytes.isEmpty || memoryEqual(bytes.baseAddress!, expected.baseAddress!, bytes.count) {
                    return true
                }
                return ignoringASCIICase && equalIgnoringASCIICase(bytes, expected)
            }
        }
    }

    /// Whether the element is in the namespace `uri` (`""` for none).
    @inlinable
    public func isInNamespace(_ uri: String) -> Bool {
        tree.namespaces[Int(node.namespace)] == uri
    }

    /// Whether the element has no child elements (cheaper than `children.isEmpty`).
    @inlinable
    public var isLeaf: Bool {
        node.childCount == 0
    }

    /// Calls `body` with the UTF-8 bytes of the local name.
    @inlinable
    public func withUnsafeLocalName<R, E: Error>(_ body: (UnsafeBufferPointer<UInt8>) throws(E) -> R) throws(E) -> R {
        try tree.withBytes(node.localName, body)
    }

    /// Calls `body` with the UTF-8 bytes of `text` (empty when the element has children).
    @inlinable
    public func withUnsafeText<R, E: Error>(_ body: (UnsafeBufferPointer<UInt8>) throws(E) -> R) throws(E) -> R {
        try tree.withBytes(node.text, body)
    }

    /// Calls `body` with the UTF-8 bytes of the value of the unqualified attribute `localName`, or `nil`
    /// when the element has no such attribute.
    public func withUnsafeAttribute<R, E: Error>(
        _ localName: String,
        _ body: (UnsafeBufferPointer<UInt8>?) throws(E) -> R
    ) throws(E) -> R {
        let node = node
        for offset in 0..<Int(node.attributeCount) {
            let attribute = tree.attributes[Int(node.firstAttribute) + offset]
            if attribute.namespace == 0 && tree.equals(attribute.localName, localName) {
                return try tree.withBytes(attribute.value, body)
            }
        }
        return try body(nil)
    }
}

extension XMLElement {
    /// The child elements of an element, in document order.
    public struct Children: RandomAccessCollection, Sendable {
        let tree: XMLTree
        let start: Int
        /// The number of children.
        public let count: Int

        public var startIndex: Int { 0 }
        public var endIndex: Int { count }

        public subscript(position: Int) -> XMLElement {
            precondition(position >= 0 && position < count, "XMLElement.Children index out of range")
            return XMLElement(tree: tree, index: Int(tree.childList[start + position]))
        }
    }
}

extension XMLElement: Hashable {
    /// Elements are equal when their names, prefixes, attributes (in order), text, lines and children are.
    public static func == (lhs: XMLElement, rhs: XMLElement) -> Bool {
        if lhs.tree === rhs.tree && lhs.index == rhs.index { return true }
        var leftLines = XMLTree.LineCursor()
        var rightLines = XMLTree.LineCursor()
        // Depth-first in document order, so the line cursors only move forward.
        var pending: [(Int, Int)] = [(lhs.index, rhs.index)]
        while let (left, right) = pending.popLast() {
            let a = lhs.tree.nodes[left]
            let b = rhs.tree.nodes[right]
            guard a.childCount == b.childCount, a.attributeCount == b.attributeCount,
                a.prefix.isAbsent == b.prefix.isAbsent,
                lhs.tree.namespaces[Int(a.namespace)] == rhs.tree.namespaces[Int(b.namespace)],
                XMLTree.equal(lhs.tree, a.localName, rhs.tree, b.localName),
                a.prefix.isAbsent || XMLTree.equal(lhs.tree, a.prefix, rhs.tree, b.prefix),
                XMLTree.equal(lhs.tree, a.text, rhs.tree, b.text),
                leftLines.line(of: left, in: lhs.tree) == rightLines.line(of: right, in: rhs.tree)
            else { return false }
            for offset in 0..<Int(a.attributeCount) {
                let x = lhs.tree.attributes[Int(a.firstAttribute) + offset]
                let y = rhs.tree.attributes[Int(b.firstAttribute) + offset]
                guard lhs.tree.namespaces[Int(x.namespace)] == rhs.tree.namespaces[Int(y.namespace)],
                    XMLTree.equal(lhs.tree, x.localName, rhs.tree, y.localName),
                    XMLTree.equal(lhs.tree, x.value, rhs.tree, y.value)
                else { return false }
            }
            var offset = Int(a.childCount) - 1
            while offset >= 0 {
                pending.append((
                    Int(lhs.tree.childList[Int(a.firstChild) + offset]),
                    Int(rhs.tree.childList[Int(b.firstChild) + offset])
                ))
                offset -= 1
            }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        let node = node
        hasher.combine(namespace)
        tree.withBytes(node.localName) { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        tree.withBytes(node.text) { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        hasher.combine(node.attributeCount)
        hasher.combine(node.childCount)
    }
}

extension XMLElement: CustomStringConvertible {
    public var description: String {
        String(decoding: serialized(declaration: false, indent: 0), as: UTF8.self)
    }
}

/// Resource limits applied by `XMLReader` to untrusted input. Exceeding any of them yields `.limitExceeded`.
public struct XMLLimits: Sendable {
    /// Maximum size of the whole document in bytes (checked before parsing starts). Documents are in any case
    /// limited to 2 GiB − 1 bytes (positions are stored in 32 bits).
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
