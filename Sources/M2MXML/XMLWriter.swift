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
    private struct OpenElement {
        /// Written before the local name with a `:` when not empty.
        var prefix: String
        var localName: String
        var hasChildElements = false
    }

    private var output: [UInt8] = []
    private var openElements: [OpenElement] = []
    /// True while `<name attrs` has been written but not yet `>` or `/>`.
    private var startTagOpen = false
    private var wroteRootElement = false
    private let indent: Int

    /// Creates a writer, optionally emitting the XML declaration, indenting by `indent` spaces per level
    /// (clamped to 0…16).
    public init(declaration: Bool = true, indent: Int = 2) {
        self.indent = min(max(0, indent), 16)
        output.reserveCapacity(1024)
        if declaration {
            Self.append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", to: &output)
        }
    }

    /// Opens an element. `qname` is written as given (`"prefix:local"` or `"local"`); namespace declarations are
    /// passed as ordinary attributes, e.g. `("xmlns:env", uri)`.
    public mutating func startElement(_ qname: String, attributes: [(String, String)] = []) {
        startElement(prefix: "", localName: qname)
        for (name, value) in attributes {
            attribute(prefix: "", localName: name, value: value)
        }
    }

    /// Opens an element named `prefix:localName` (just `localName` when `prefix` is empty).
    mutating func startElement(prefix: String, localName: String) {
        if openElements.isEmpty {
            if wroteRootElement {
                newline(depth: 0)
            }
            wroteRootElement = true
        } else {
            closeStartTag()
            openElements[openElements.count - 1].hasChildElements = true
            newline(depth: openElements.count)
        }
        output.append(ASCII.lessThan)
        appendName(prefix: prefix, localName: localName)
        openElements.append(OpenElement(prefix: prefix, localName: localName))
        startTagOpen = true
    }

    /// Adds an attribute to the start tag just opened (ignored once content has been written).
    mutating func attribute(prefix: String, localName: String, value: String) {
        guard startTagOpen else { return }
        output.append(ASCII.space)
        appendName(prefix: prefix, localName: localName)
        output.append(ASCII.equals)
        output.append(ASCII.doubleQuote)
        Self.appendEscaped(value, attribute: true, to: &output)
        output.append(ASCII.doubleQuote)
    }

    private mutating func appendName(prefix: String, localName: String) {
        if !prefix.isEmpty {
            Self.append(prefix, to: &output)
            output.append(ASCII.colon)
        }
        Self.append(localName, to: &output)
    }

    /// Appends the UTF-8 of `s` in one copy (contiguous storage is available for all native strings).
    private static func append(_ s: String, to out: inout [UInt8]) {
        let copied: Void? = s.utf8.withContiguousStorageIfAvailable { out.append(contentsOf: $0) }
        if copied == nil {
            out.append(contentsOf: s.utf8)
        }
    }

    /// Closes the innermost open element (as `/>` if it had no content). Does nothing when no element is open.
    public mutating func endElement() {
        guard let element = openElements.popLast() else { return }
        if startTagOpen {
            output.append(ASCII.slash)
            output.append(ASCII.greaterThan)
            startTagOpen = false
        } else {
            if element.hasChildElements {
                newline(depth: openElements.count)
            }
            output.append(ASCII.lessThan)
            output.append(ASCII.slash)
            appendName(prefix: element.prefix, localName: element.localName)
            output.append(ASCII.greaterThan)
        }
        if openElements.isEmpty && indent > 0 {
            output.append(ASCII.lineFeed)
        }
    }

    /// Writes escaped character data into the innermost open element: `&`, `<`, `>` escaped and `"\r"` as `&#xD;`.
    /// Empty text writes nothing (the element stays empty); text outside any element is ignored.
    public mutating func text(_ s: String) {
        guard !s.isEmpty, !openElements.isEmpty else { return }
        closeStartTag()
        Self.appendEscaped(s, attribute: false, to: &output)
    }

    /// Writes a complete leaf element on one line: start tag, text, end tag (`<a/>` when `text` is empty).
    public mutating func leaf(_ qname: String, _ text: String, attributes: [(String, String)] = []) {
        startElement(qname, attributes: attributes)
        self.text(text)
        endElement()
    }

    /// The finished document. Elements still open are closed in the returned bytes (the writer is unchanged).
    public var bytes: [UInt8] {
        guard !openElements.isEmpty else { return output }
        var finished = self
        while !finished.openElements.isEmpty {
            finished.endElement()
        }
        return finished.output
    }

    /// The finished document as a `String`.
    public var string: String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// Escapes character data: `&`, `<`, `>` as entities and `"\r"` as `&#xD;` (so it survives line-end normalisation).
    public static func escapeText(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        appendEscaped(s, attribute: false, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Escapes an attribute value for double quotes: `&`, `<`, `"` as entities and TAB, LF, CR as
    /// `&#x9;`, `&#xA;`, `&#xD;` (so they survive attribute-value normalisation).
    public static func escapeAttribute(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        appendEscaped(s, attribute: true, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func closeStartTag() {
        if startTagOpen {
            output.append(ASCII.greaterThan)
            startTagOpen = false
        }
    }

    private mutating func newline(depth: Int) {
        guard indent > 0 else { return }
        output.append(ASCII.lineFeed)
        output.append(contentsOf: repeatElement(ASCII.space, count: depth * indent))
    }

    private static func append(_ literal: StaticString, to out: inout [UInt8]) {
        literal.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    private static func appendEscaped(_ s: String, attribute: Bool, to out: inout [UInt8]) {
        var s = s
        s.withUTF8 { bytes in
            var chunk = 0
            for index in 0..<bytes.count {
                let replacement: StaticString
                switch bytes[index] {
                case ASCII.ampersand: replacement = "&amp;"
                case ASCII.lessThan: replacement = "&lt;"
                case ASCII.greaterThan where !attribute: replacement = "&gt;"
                case ASCII.doubleQuote where attribute: replacement = "&quot;"
                case ASCII.carriageReturn: replacement = "&#xD;"
                case ASCII.lineFeed where attribute: replacement = "&#xA;"
                case ASCII.tab where attribute: replacement = "&#x9;"
                default: continue
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[chunk..<index]))
                append(replacement, to: &out)
                chunk = index + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[chunk...]))
        }
    }
}
