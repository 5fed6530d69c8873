// M2MXML — the XML layer of the SGP.02 SOAP 1.2 platform.
//
// A small, pure-Swift (stdlib only) reader and writer for the XML that SOAP 1.2 and the GSMA RPS
// messages actually use. Input arrives from the network and is untrusted, so the reader accepts a
// deliberately strict subset of XML 1.0 + Namespaces 1.0 and is built to never crash, hang or
// allocate without bound:
//
// * UTF-8 only. A UTF-8 BOM is skipped; an XML declaration is accepted only at the very start and
//   must name UTF-8. Text, attribute values, names and comments are checked for well-formed UTF-8
//   and for characters XML forbids (C0 controls other than TAB/LF/CR, U+FFFE, U+FFFF).
// * No DTD at all: any `<!DOCTYPE` is rejected, so no entity is ever expanded (billion laughs and
//   external-entity attacks are impossible). Only the five predefined entities and character
//   references are decoded.
// * No processing instructions besides the leading declaration (SOAP 1.2 forbids them).
// * No mixed content: an element holds either child elements (whitespace between them is dropped)
//   or character data. That is all SOAP and RPS ever use, and it keeps the tree simple.
// * Every resource is bounded by `XMLLimits` (document size, depth, element count, attributes,
//   name and text length), checked as early as possible.
// * The parser is iterative (the open elements are chained through their own records, so nesting
//   never recurses) and works on an `UnsafeBufferPointer<UInt8>`, eight bytes at a time where it
//   can. It builds a compact, immutable tree (`XMLTree`): one record per element in document
//   order, with names, text and attribute values kept as byte ranges of a copy of the document
//   (decoded text, when references or line ends had to be rewritten, in a side buffer), and each
//   namespace URI as one shared `String` (the caller's own, for `knownNamespaces`). `XMLElement`
//   is a handle into it; strings are made only when asked for. Prefixes resolve against a small
//   array-based binding stack, compared as bytes.

/// Parses UTF-8 XML documents into `XMLElement` trees.
public enum XMLReader {
    /// Parses one UTF-8 document into its root element. Namespace-aware: every element and attribute name is resolved
    /// to its namespace URI; `xmlns`/`xmlns:p` declarations are consumed (not reported as attributes); the `xml` prefix is
    /// pre-bound to http://www.w3.org/XML/1998/namespace.
    ///
    /// The tree keeps a copy of `bytes`: names and text that need no decoding are read from it.
    ///
    /// `knownNamespaces` are URIs the caller will compare names against (`isInNamespace(_:)`, `name.namespace`):
    /// when the document declares one of them, the tree uses that very `String`, so no string is made for it and
    /// comparing with it is immediate.
    public static func parse(
        _ bytes: [UInt8], limits: XMLLimits = .default, knownNamespaces: [String] = []
    ) throws(XMLError) -> XMLElement {
        try checkDocumentSize(bytes.count, limits: limits)
        let result = bytes.withUnsafeBufferPointer { buffer in
            parse(buffer: buffer, limits: limits, knownNamespaces: knownNamespaces)
        }
        return XMLElement(tree: try result.get(), index: 0)
    }

    /// Parses one document given as a `String` (its UTF-8 form is parsed in place; the tree keeps a copy).
    public static func parse(
        _ string: String, limits: XMLLimits = .default, knownNamespaces: [String] = []
    ) throws(XMLError) -> XMLElement {
        try checkDocumentSize(string.utf8.count, limits: limits)
        var string = string
        let result = string.withUTF8 { buffer in
            parse(buffer: buffer, limits: limits, knownNamespaces: knownNamespaces)
        }
        return XMLElement(tree: try result.get(), index: 0)
    }

    private static func checkDocumentSize(_ count: Int, limits: XMLLimits) throws(XMLError) {
        guard count <= limits.maxDocumentBytes && count <= Int(Int32.max) else {
            throw XMLError(
                code: .limitExceeded,
                line: 1,
                detail: "document of \(count) bytes exceeds maxDocumentBytes (\(min(limits.maxDocumentBytes, Int(Int32.max))))"
            )
        }
    }

    private static func parse(
        buffer: UnsafeBufferPointer<UInt8>, limits: XMLLimits, knownNamespaces: [String]
    ) -> Result<XMLTree, XMLError> {
        var parser = XMLByteParser(input: buffer, limits: limits, knownNamespaces: knownNamespaces)
        do {
            return .success(try parser.parseDocument())
        } catch {
            return .failure(error)
        }
    }
}
