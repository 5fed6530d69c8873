/// Builds a UTF-8 XML document with deterministic formatting.
///
/// Output starts with `<?xml version="1.0" encoding="UTF-8"?>` and a newline (when `declaration` is true), then
/// elements indented by `indent` spaces per level (0 = no newlines between elements at all). A leaf element is
/// written on one line (`<p:a>text</p:a>`), an empty element as `<p:a/>`, attributes in the order given with
/// double quotes, and a newline follows the last end tag when indenting.
///
/// The writer does not check names or namespace declarations: callers pass qualified names as they should be
/// written and declare namespaces as ordinary `xmlns`/`xmlns:p` attributes. Characters XML 1.0 cannot represent at
/// all (C0 controls other than TAB/LF/CR, U+FFFE, U+FFFF) are written as they are and the result will not parse.
public struct XMLWriter {
    /// The output and the names of the open elements (shared between copies of a writer until one of them writes).
    private var sink: ByteSink
    /// Whether the open element at each depth has child elements: bit `depth`, then `deepHasChildren` past 64.
    private var hasChildren: UInt64 = 0
    private var deepHasChildren: [Bool] = []
    /// True while `<name attrs` has been written but not yet `>` or `/>`.
    private var startTagOpen = false
    private var wroteRootElement = false
    private let indent: Int
    /// Namespaces, buffered attributes and rendered declarations in canonical mode (nil otherwise).
    private var canonical: CanonicalState?

    /// Creates a writer, optionally emitting the XML declaration, indenting by `indent` spaces per level
    /// (clamped to 0…16), with room for `capacity` bytes before the output buffer grows.
    public init(declaration: Bool = true, indent: Int = 2, capacity: Int = 1024) {
        self.indent = min(max(0, indent), 16)
        sink = ByteSink(capacity: capacity)
        if declaration {
            sink.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        }
    }

    /// A writer of the exclusive canonical form (W3C exc-c14n 1.0 without comments) of the elements written
    /// into it, as ExclusiveC14N gives for the same elements written by an ordinary writer and read back:
    /// no declaration and no indentation; start and end tags always (no `<a/>`); namespace declarations
    /// only where a prefix is visibly utilised (the element's or a qualified attribute's) and not already
    /// rendered by an output ancestor, sorted by prefix; other attributes sorted by namespace URI, then
    /// local name; text escaped as `text(_:)` does (the canonical text escapes) and attribute values as
    /// `attribute(_:_:)` does (the canonical attribute escapes). `inScope` maps prefixes ("" for the
    /// default namespace) to the namespaces declared by the ancestors of the first element, which are
    /// not written themselves. Mixed content is not supported (M2MXML's reader refuses it too).
    public init(canonicalIn inScope: [String: String], capacity: Int = 1024) {
        indent = 0
        sink = ByteSink(capacity: capacity)
        canonical = CanonicalState(inScope: inScope)
    }

    /// Makes the output this writer's own before it writes (copies of a writer share it until then).
    @inline(__always)
    private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&sink) {
            sink = sink.copy()
        }
    }

    /// Opens an element. `qname` is written as given (`"prefix:local"` or `"local"`); namespace declarations are
    /// passed as ordinary attributes, e.g. `("xmlns:env", uri)`.
    public mutating func startElement(_ qname: String, attributes: [(String, String)]) {
        startElement(qname)
        for (name, value) in attributes {
            attribute(name, value)
        }
    }

    /// Opens an element named `qname` (`"prefix:local"` or `"local"`), written as given.
    public mutating func startElement(_ qname: String) {
        makeUnique()
        let depth = sink.depth
        if depth == 0 {
            if wroteRootElement {
                newline(depth: 0)
            }
            wroteRootElement = true
        } else {
            closeStartTag()
            setHasChildren(depth: depth - 1)
            newline(depth: depth)
        }
        sink.append(ASCII.lessThan)
        let nameStart = sink.count
        sink.append(qname)
        // The end tag copies the name from here.
        sink.pushRange(from: nameStart)
        startTagOpen = true
        canonical?.open(qname)
    }

    /// Adds the attribute `qname="value"` to the start tag just opened (ignored once content has been written).
    public mutating func attribute(_ qname: String, _ value: String) {
        guard startTagOpen else { return }
        if canonical != nil {
            canonical!.pending.append((qname, value))
            return
        }
        makeUnique()
        sink.append(ASCII.space)
        sink.append(qname)
        sink.append(ASCII.equals, ASCII.doubleQuote)
        sink.appendEscaped(value, attribute: true)
        sink.append(ASCII.doubleQuote)
    }

    /// Closes the innermost open element (as `/>` if it had no content). Does nothing when no element is open.
    public mutating func endElement() {
        guard sink.depth > 0 else { return }
        makeUnique()
        guard let name = sink.popRange() else { return }
        let depth = sink.depth
        if canonical != nil {
            closeStartTag()
            sink.append(ASCII.lessThan, ASCII.slash)
            sink.appendCopy(of: name)
            sink.append(ASCII.greaterThan)
            canonical!.close()
            return
        }
        if startTagOpen {
            sink.append(ASCII.slash, ASCII.greaterThan)
            startTagOpen = false
        } else {
            if takeHasChildren(depth: depth) {
                newline(depth: depth)
            }
            sink.append(ASCII.lessThan, ASCII.slash)
            sink.appendCopy(of: name)
            sink.append(ASCII.greaterThan)
        }
        if depth == 0 && indent > 0 {
            sink.append(ASCII.lineFeed)
        }
    }

    /// Writes escaped character data into the innermost open element: `&`, `<`, `>` escaped and `"\r"` as `&#xD;`.
    /// Empty text writes nothing (the element stays empty); text outside any element is ignored.
    public mutating func text(_ s: String) {
        s.withUTF8Bytes { text(utf8: $0) }
    }

    /// Writes character data given as UTF-8 bytes (escaped as `text(_:)` does; the bytes must be valid UTF-8).
    public mutating func text(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        guard !bytes.isEmpty, sink.depth > 0 else { return }
        makeUnique()
        closeStartTag()
        sink.appendEscaped(bytes, attribute: false)
    }

    /// Writes a complete leaf element on one line: start tag, text, end tag (`<a/>` when `text` is empty).
    public mutating func leaf(_ qname: String, _ text: String) {
        text.withUTF8Bytes { leaf(qname, utf8: $0) }
    }

    /// Writes a complete leaf element whose text is given as UTF-8 bytes (escaped as `text(_:)` does).
    public mutating func leaf(_ qname: String, utf8 text: UnsafeBufferPointer<UInt8>) {
        let depth = sink.depth
        guard depth > 0, canonical == nil else {
            // A leaf as the root element: the general path.
            startElement(qname)
            self.text(utf8: text)
            endElement()
            return
        }
        // What startElement, text and endElement write, in one step and without touching the open-element stack.
        makeUnique()
        closeStartTag()
        setHasChildren(depth: depth - 1)
        newline(depth: depth)
        sink.append(ASCII.lessThan)
        let nameStart = sink.count
        sink.append(qname)
        if text.isEmpty {
            sink.append(ASCII.slash, ASCII.greaterThan)
        } else {
            let name = (start: nameStart, count: sink.count - nameStart)
            sink.append(ASCII.greaterThan)
            sink.appendEscaped(text, attribute: false)
            sink.append(ASCII.lessThan, ASCII.slash)
            sink.appendCopy(of: name)
            sink.append(ASCII.greaterThan)
        }
    }

    /// Writes a complete leaf element with attributes on one line.
    public mutating func leaf(_ qname: String, _ text: String, attributes: [(String, String)]) {
        startElement(qname, attributes: attributes)
        self.text(text)
        endElement()
    }

    /// The finished document. Elements still open are closed in the returned bytes (the writer is unchanged).
    public var bytes: [UInt8] {
        guard sink.depth > 0 else { return sink.bytes }
        var finished = self
        while finished.sink.depth > 0 {
            finished.endElement()
        }
        return finished.sink.bytes
    }

    /// The finished document as a `String`.
    public var string: String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// Escapes character data: `&`, `<`, `>` as entities and `"\r"` as `&#xD;` (so it survives line-end normalisation).
    public static func escapeText(_ s: String) -> String {
        escape(s, attribute: false)
    }

    /// Escapes an attribute value for double quotes: `&`, `<`, `"` as entities and TAB, LF, CR as
    /// `&#x9;`, `&#xA;`, `&#xD;` (so they survive attribute-value normalisation).
    public static func escapeAttribute(_ s: String) -> String {
        escape(s, attribute: true)
    }

    private static func escape(_ s: String, attribute: Bool) -> String {
        let out = ByteSink(capacity: s.utf8.count + 16)
        s.withUTF8Bytes { out.appendEscaped($0, attribute: attribute) }
        return String(decoding: UnsafeBufferPointer(start: out.base, count: out.count), as: UTF8.self)
    }

    // MARK: Internals

    @inline(__always)
    private mutating func setHasChildren(depth: Int) {
        if depth < 64 {
            hasChildren |= 1 << UInt64(depth)
        } else {
            while deepHasChildren.count <= depth - 64 { deepHasChildren.append(false) }
            deepHasChildren[depth - 64] = true
        }
    }

    /// Whether the element at `depth` had children, clearing the mark for the next element at that depth.
    @inline(__always)
    private mutating func takeHasChildren(depth: Int) -> Bool {
        if depth < 64 {
            let bit: UInt64 = 1 << UInt64(depth)
            defer { hasChildren &= ~bit }
            return hasChildren & bit != 0
        }
        guard depth - 64 < deepHasChildren.count else { return false }
        defer { deepHasChildren[depth - 64] = false }
        return deepHasChildren[depth - 64]
    }

    @inline(__always)
    private mutating func closeStartTag() {
        if startTagOpen {
            if canonical != nil { canonical!.flush(into: sink) }
            sink.append(ASCII.greaterThan)
            startTagOpen = false
        }
    }

    @inline(__always)
    private func newline(depth: Int) {
        guard indent > 0 else { return }
        sink.append(ASCII.lineFeed)
        sink.appendSpaces(depth * indent)
    }
}

/// The namespace bookkeeping of a canonical writer. Bindings are short lists (an element has one or
/// two prefixes in scope), searched linearly: cheaper than hashing a prefix per element.
private struct CanonicalState {
    typealias Bindings = [(prefix: Substring, namespace: String)]
    /// Namespaces declared in the input (prefix "" the default namespace); later entries win.
    var inScope: Bindings
    /// Namespaces declared in the output by the open elements; later entries win.
    var rendered: Bindings = []
    /// Per open element: the list lengths to restore at its end.
    var saved: [(inScope: Int, rendered: Int)] = []
    /// The open start tag's name and attributes (written, sorted, when it closes).
    var name = ""
    var pending: [(String, String)] = []
    /// Bumped whenever a binding list changes.
    var generation = 0
    /// "prefix:" of the last element that needed no declaration, and the generation it was true in:
    /// the next element with that prefix and no attributes needs none either (most elements).
    var settled: (prefixColon: String, generation: Int)?

    init(inScope: [String: String]) {
        self.inScope = inScope.sorted { $0.key < $1.key }.map { (Substring($0.key), $0.value) }
    }

    mutating func open(_ qname: String) {
        name = qname
        pending.removeAll(keepingCapacity: true)
        saved.append((inScope.count, rendered.count))
    }

    mutating func close() {
        guard let last = saved.popLast() else { return }
        if inScope.count != last.inScope || rendered.count != last.rendered {
            inScope.removeSubrange(last.inScope...)
            rendered.removeSubrange(last.rendered...)
            generation += 1
        }
    }

    static func lookup(_ bindings: Bindings, _ prefix: Substring) -> String? {
        var index = bindings.count
        while index > 0 {
            index -= 1
            if bindings[index].prefix == prefix { return bindings[index].namespace }
        }
        return nil
    }

    static func split(_ qname: String) -> (prefix: Substring, local: Substring) {
        guard let colon = qname.utf8.firstIndex(of: UInt8(ascii: ":")) else { return ("", qname[...]) }
        return (qname[..<colon], qname[qname.utf8.index(after: colon)...])
    }

    /// Writes the open start tag's namespace declarations and attributes.
    mutating func flush(into sink: ByteSink) {
        if pending.isEmpty, let settled, settled.generation == generation, name.utf8.starts(with: settled.prefixColon.utf8) { return }
        let (prefix, _) = Self.split(name)
        if pending.isEmpty {
            // The common case: no attributes, the element's prefix already rendered as it is bound.
            if let output = Self.lookup(rendered, prefix), output == Self.lookup(inScope, prefix) ?? "" {
                if !prefix.isEmpty { settled = (prefix + ":", generation) }
                return
            }
        }
        var attributes: [(namespace: String, local: Substring, qname: String, value: String)] = []
        for (qname, value) in pending {
            if qname == "xmlns" {
                inScope.append(("", value))
                generation += 1
            } else if qname.utf8.starts(with: "xmlns:".utf8) {
                inScope.append((Substring(qname.utf8.dropFirst(6)), value))
                generation += 1
            } else {
                attributes.append(("", qname[...], qname, value))
            }
        }
        // Visibly utilised prefixes: the element's, then those of qualified attributes.
        var needed: [(prefix: Substring, namespace: String)] = []
        let namespace = Self.lookup(inScope, prefix) ?? ""
        let output = Self.lookup(rendered, prefix)
        if output != namespace, !(prefix.isEmpty && namespace.isEmpty && output == nil) {
            needed.append((prefix, namespace))
        }
        for index in attributes.indices {
            let (p, local) = Self.split(attributes[index].qname)
            guard !p.isEmpty else { continue }
            let uri = p == "xml" ? "http://www.w3.org/XML/1998/namespace" : Self.lookup(inScope, p) ?? ""
            attributes[index].namespace = uri
            attributes[index].local = local
            if p != "xml", Self.lookup(rendered, p) != uri, !needed.contains(where: { $0.prefix == p }) {
                needed.append((p, uri))
            }
        }
        if !needed.isEmpty {
            needed.sort { $0.prefix < $1.prefix }
            for (p, uri) in needed {
                sink.append(ASCII.space)
                sink.append(p.isEmpty ? "xmlns" : "xmlns:" + p)
                sink.append(ASCII.equals, ASCII.doubleQuote)
                sink.appendEscaped(uri, attribute: true)
                sink.append(ASCII.doubleQuote)
                rendered.append((p, uri))
            }
            generation += 1
        }
        if attributes.count > 1 {
            attributes.sort { ($0.namespace, $0.local) < ($1.namespace, $1.local) }
        }
        for attribute in attributes {
            sink.append(ASCII.space)
            sink.append(attribute.qname)
            sink.append(ASCII.equals, ASCII.doubleQuote)
            sink.appendEscaped(attribute.value, attribute: true)
            sink.append(ASCII.doubleQuote)
        }
        pending.removeAll(keepingCapacity: true)
    }
}
