// Exclusive XML Canonicalization 1.0 without comments (http://www.w3.org/2001/10/xml-exc-c14n#) of
// an element subtree, as the EIS signature (ds:SignatureType in EumSignature) needs it: for
// EumSignedInfo (the signed data) and for ds:SignedInfo (what the ECDSA signature covers).
//
// Rules applied (W3C exc-c14n §3 over C14N 1.0 §2.3): UTF-8; start and end tags always (no
// empty-element form); namespace declarations only where a prefix is visibly utilised and not
// already in effect in the output, sorted by prefix (default first); attributes sorted by namespace
// URI then local name; text escapes & < > and CR; attribute values escape & < " TAB LF CR.
// Whitespace-only text between elements does not reach this function (M2MXML drops it), so the
// form is independent of indentation: see docs/crypto.md, "EIS signature".

public import M2MXML

public enum ExclusiveC14N {
    /// The canonical bytes of `element` and its descendants.
    /// `prefixFor` names the prefix of a namespace-qualified attribute (M2MXML keeps element prefixes
    /// only); the defaults cover the namespaces of this platform.
    public static func canonicalize(_ element: XMLElement, prefixFor: [String: String] = Namespace.preferredPrefixes) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        var rendered: [String: String] = [:]  // prefix → URI in effect in the output
        write(element, rendered: &rendered, prefixFor: prefixFor, into: &out)
        return out
    }

    private struct Frame {
        let element: XMLElement
        let prefix: String
        /// The rendered namespaces before this element, when it declared any (restored at its end).
        let restore: [String: String]?
        var next = 0
    }

    private static func write(_ root: XMLElement, rendered: inout [String: String], prefixFor: [String: String], into out: inout [UInt8]) {
        // Iterative, like the reader. Names and text are copied as bytes from the tree; a String is
        // made only for the prefix (the key of the namespaces in effect).
        var stack: [Frame] = []
        func open(_ element: XMLElement) {
            let prefix = element.prefix ?? ""
            let namespace = element.namespace
            let attributes = element.attributes
            var needed: [(String, String)] = []
            // The element's own prefix.
            if rendered[prefix] != namespace, !(prefix.isEmpty && namespace.isEmpty && rendered[""] == nil) {
                needed.append((prefix, namespace))
            }
            // Prefixes of qualified attributes.
            for attribute in attributes where !attribute.name.namespace.isEmpty && attribute.name.namespace != Namespace.xml {
                let p = prefixFor[attribute.name.namespace] ?? "ns"
                if rendered[p] != attribute.name.namespace, !needed.contains(where: { $0.0 == p }) {
                    needed.append((p, attribute.name.namespace))
                }
            }
            let restore: [String: String]? = needed.isEmpty ? nil : rendered
            out.append(0x3C)
            appendName(prefix, element, to: &out)
            if !needed.isEmpty {
                needed.sort { $0.0 < $1.0 }
                for (p, uri) in needed {
                    out.append(0x20)
                    append(p.isEmpty ? "xmlns" : "xmlns:" + p, to: &out)
                    append("=\"", to: &out)
                    escape(uri, attribute: true, into: &out)
                    out.append(0x22)
                    rendered[p] = uri
                }
            }
            if !attributes.isEmpty {
                let sorted = attributes.sorted {
                    ($0.name.namespace, $0.name.localName) < ($1.name.namespace, $1.name.localName)
                }
                for attribute in sorted {
                    out.append(0x20)
                    let ns = attribute.name.namespace
                    let name = ns.isEmpty ? attribute.name.localName
                        : qname(ns == Namespace.xml ? "xml" : (prefixFor[ns] ?? "ns"), attribute.name.localName)
                    append(name, to: &out)
                    append("=\"", to: &out)
                    escape(attribute.value, attribute: true, into: &out)
                    out.append(0x22)
                }
            }
            out.append(0x3E)
            if element.isLeaf { element.withUnsafeText { escape($0, attribute: false, into: &out) } }
            stack.append(Frame(element: element, prefix: prefix, restore: restore))
        }

        open(root)
        while var frame = stack.popLast() {
            if frame.next < frame.element.children.count {
                let child = frame.element.children[frame.next]
                frame.next += 1
                stack.append(frame)
                open(child)
            } else {
                out.append(0x3C)
                out.append(0x2F)
                appendName(frame.prefix, frame.element, to: &out)
                out.append(0x3E)
                if let restore = frame.restore { rendered = restore }
            }
        }
    }

    /// prefix:local (or local) of an element, the local name copied as bytes.
    private static func appendName(_ prefix: String, _ element: XMLElement, to out: inout [UInt8]) {
        if !prefix.isEmpty {
            out.append(contentsOf: prefix.utf8)
            out.append(0x3A)
        }
        element.withUnsafeLocalName { out.append(contentsOf: $0) }
    }

    private static func escape(_ bytes: UnsafeBufferPointer<UInt8>, attribute: Bool, into out: inout [UInt8]) {
        // Runs of bytes that need no escape are copied at once.
        var start = 0
        for (index, byte) in bytes.enumerated() {
            let replacement: String?
            switch byte {
            case 0x26: replacement = "&amp;"
            case 0x3C: replacement = "&lt;"
            case 0x3E where !attribute: replacement = "&gt;"
            case 0x22 where attribute: replacement = "&quot;"
            case 0x09 where attribute: replacement = "&#x9;"
            case 0x0A where attribute: replacement = "&#xA;"
            case 0x0D: replacement = "&#xD;"
            default: replacement = nil
            }
            if let replacement {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
                append(replacement, to: &out)
                start = index + 1
            }
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<bytes.count]))
    }

    private static func qname(_ prefix: String, _ local: String) -> String { prefix.isEmpty ? local : prefix + ":" + local }

    private static func append(_ s: String, to out: inout [UInt8]) { out.append(contentsOf: s.utf8) }

    private static func escape(_ s: String, attribute: Bool, into out: inout [UInt8]) {
        for byte in s.utf8 {
            switch byte {
            case 0x26: append("&amp;", to: &out)
            case 0x3C: append("&lt;", to: &out)
            case 0x3E where !attribute: append("&gt;", to: &out)
            case 0x22 where attribute: append("&quot;", to: &out)
            case 0x09 where attribute: append("&#x9;", to: &out)
            case 0x0A where attribute: append("&#xA;", to: &out)
            case 0x0D: append("&#xD;", to: &out)
            default: out.append(byte)
            }
        }
    }
}
