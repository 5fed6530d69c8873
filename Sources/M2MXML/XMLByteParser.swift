/// The iterative, byte-level parser behind `XMLReader`.
///
/// One instance parses one document held in a buffer that outlives it, and builds its `XMLTree`: elements are
/// appended in document order to flat arrays, names and text stay byte ranges of the input. Nesting never
/// recurses: the open elements form a chain through their own records (see `current`). All methods are `mutating` or live on the small
/// helper structs (`XMLInput`, `NamespaceScope`), so no call ever copies the parser's state.
struct XMLByteParser {
    private let input: XMLInput
    private let end: Int
    private let limits: XMLLimits
    private let classes: [ASCII.ByteClass]
    /// Offset of the next unread byte.
    private var pos = 0

    /// Lines are counted only when an error needs one.
    private var lineScanOffset = 0
    private var lineAtScanOffset = 1

    // The tree being built (see `XMLTree`).
    private var nodes: XMLTree.NodeBuffer
    private var childList: [Int32] = []
    private var attributeNodes: [XMLTree.Attribute] = []
    private var decoded: [UInt8] = []
    private var scope = NamespaceScope()

    /// The innermost element whose start tag has been read and whose end tag has not (-1 before the root and
    /// after it ends). Until its end tag, an open element's record holds its parent's index in `subtreeEnd` and
    /// the namespace scope mark to restore in `firstChild`; `childCount` counts its children so far.
    private var current: Int32 = -1
    /// Number of open elements.
    private var depth = 0
    /// Character data collected for the innermost open element.
    private var text = TextState.empty
    /// A reference was decoded in the collected text: it counts as content even if it decodes to whitespace.
    private var textHasReference = false
    /// The collected text is one run known to be whitespace (from `appendWhitespace`).
    private var textIsWhitespace = false
    /// Decoded value of the namespace declaration being parsed.
    private var valueBuffer: [UInt8] = []
    private var elementCount = 0

    /// The parser owns its node buffer until `parseDocument` hands it to the tree (or frees it on failure), so it
    /// must be used for exactly one `parseDocument` call.
    init(input: UnsafeBufferPointer<UInt8>, limits: XMLLimits, knownNamespaces: [String] = []) {
        self.input = XMLInput(input)
        self.end = input.count
        self.limits = limits
        self.classes = ASCII.byteClasses
        // About one element per 48 bytes in SOAP; the buffers grow as needed.
        let estimate = min(max(input.count / 48, 8), 4096)
        nodes = XMLTree.NodeBuffer(capacity: estimate)
        childList.reserveCapacity(estimate)
        scope.knownNamespaces = knownNamespaces
    }

    /// Parses the whole document and returns its tree.
    mutating func parseDocument() throws(XMLError) -> XMLTree {
        var handedOver = false
        defer {
            if !handedOver {
                nodes.deallocate()
            }
        }
        try parseProlog()
        try parseStartTag()
        while depth > 0 {
            try parseContent()
        }
        try parseEpilog()
        guard !nodes.isEmpty else {
            throw fail(.noRootElement, "no root element")
        }
        handedOver = true
        return XMLTree(
            source: input.bytes, decoded: decoded, namespaces: scope.namespaces, nodes: nodes, childList: childList,
            attributes: attributeNodes, positionsAreOffsets: true
        )
    }
}

// MARK: - Supporting types

extension XMLByteParser {
    /// A qualified name as offsets into the input: `start..<end`, with `colon` the offset of the `:` or -1.
    private struct QName {
        var start: Int
        var colon: Int
        var end: Int

        var hasPrefix: Bool { colon >= 0 }
        var localStart: Int { colon >= 0 ? colon + 1 : start }
    }

    /// The character data collected so far for the innermost open element.
    private enum TextState {
        case empty
        /// One run that needed no decoding: `input[start..<end]`.
        case slice(start: Int, end: Int)
        /// Decoded (or several runs): `decoded[start...]`.
        case decoded(start: Int)
    }

    /// What a scan of a run of character data or an attribute value found.
    private struct RunFlags {
        var reference = false
        var carriageReturn = false
        var tabOrLineFeed = false
        var nonASCII = false

        var needsAttributeDecoding: Bool { reference || carriageReturn || tabOrLineFeed }
    }

    /// The qualified name of an element, from its record.
    private func qname(of index: Int32) -> QName {
        let node = nodes.pointer(Int(index))
        let localStart = Int(node.pointee.localName.start)
        let end = localStart + Int(node.pointee.localName.count)
        return node.pointee.prefix.isAbsent
            ? QName(start: localStart, colon: -1, end: end)
            : QName(start: Int(node.pointee.prefix.start), colon: localStart - 1, end: end)
    }

    private enum DecodeMode {
        case text
        case cdata
        case attribute
    }

    private static let maxEntityNameLength = 32
    private static let maxDeclarationValueLength = 64
}

// MARK: - Document structure

extension XMLByteParser {
    /// Reads the optional BOM and XML declaration, then comments and whitespace, stopping at the root start tag.
    private mutating func parseProlog() throws(XMLError) {
        if end >= 2 && ((input[0] == 0xFE && input[1] == 0xFF) || (input[0] == 0xFF && input[1] == 0xFE)) {
            throw fail(.unsupportedEncoding, "UTF-16 byte order mark; only UTF-8 is supported", at: 0)
        }
        if end >= 3 && input[0] == 0xEF && input[1] == 0xBB && input[2] == 0xBF {
            pos = 3
        }
        switch input.matches("<?xml", at: pos) {
        case .yes:
            guard pos + 5 < end else { throw truncated("XML declaration") }
            let next = input[pos + 5]
            if ASCII.isWhitespace(next) {
                try parseXMLDeclaration()
            } else if next == ASCII.question {
                throw fail(.malformed, "XML declaration without version")
            } else {
                throw fail(.processingInstructionForbidden, "processing instructions are not allowed")
            }
        case .truncated where pos < end:
            throw truncated("XML declaration")
        case .truncated, .no:
            break
        }
        while true {
            skipWhitespace()
            guard pos < end else {
                throw fail(.noRootElement, "no root element")
            }
            guard input[pos] == ASCII.lessThan else {
                throw fail(.malformed, "character data before the root element")
            }
            guard pos + 1 < end else { throw truncated("markup") }
            let next = input[pos + 1]
            if classes[Int(next)].contains(.nameStart) {
                return
            }
            switch next {
            case ASCII.exclamation:
                try parseMarkupDeclaration(allowCDATA: false)
            case ASCII.question:
                throw fail(.processingInstructionForbidden, "processing instructions are not allowed")
            default:
                throw fail(.malformed, "invalid markup before the root element")
            }
        }
    }

    /// Reads `<?xml version="1.x" encoding="..." standalone="..."?>`; `pos` is at `<?xml` followed by whitespace.
    private mutating func parseXMLDeclaration() throws(XMLError) {
        pos += 5
        var seen = 0  // 1 after version, 2 after encoding, 3 after standalone
        while true {
            let hadSpace = skipWhitespace()
            guard pos < end else { throw truncated("XML declaration") }
            if input[pos] == ASCII.question {
                guard pos + 1 < end else { throw truncated("XML declaration") }
                guard input[pos + 1] == ASCII.greaterThan else {
                    throw fail(.malformed, "expected '?>' to end the XML declaration")
                }
                guard seen >= 1 else {
                    throw fail(.malformed, "XML declaration without version")
                }
                pos += 2
                return
            }
            guard hadSpace else {
                throw fail(.malformed, "expected whitespace in the XML declaration")
            }
            let nameStart = pos
            while pos < end && (input[pos] | 0x20) &- 0x61 < 26 && pos - nameStart < 16 {
                pos += 1
            }
            let nameEnd = pos
            skipWhitespace()
            guard pos < end else { throw truncated("XML declaration") }
            guard input[pos] == ASCII.equals else {
                throw fail(.malformed, "expected '=' in the XML declaration")
            }
            pos += 1
            skipWhitespace()
            guard pos < end else { throw truncated("XML declaration") }
            let quote = input[pos]
            guard quote == ASCII.doubleQuote || quote == ASCII.singleQuote else {
                throw fail(.malformed, "expected a quoted value in the XML declaration")
            }
            pos += 1
            let valueStart = pos
            while pos < end && input[pos] != quote {
                guard pos - valueStart < Self.maxDeclarationValueLength else {
                    throw fail(.malformed, "overlong value in the XML declaration")
                }
                pos += 1
            }
            guard pos < end else { throw truncated("XML declaration") }
            let valueEnd = pos
            pos += 1

            if seen == 0 && input.equals(nameStart, nameEnd, "version") {
                guard Self.isVersion1(input, valueStart, valueEnd) else {
                    throw fail(.malformed, "unsupported XML version '\(input.excerpt(valueStart, valueEnd))'")
                }
                seen = 1
            } else if seen == 1 && input.equals(nameStart, nameEnd, "encoding") {
                guard input.equals(valueStart, valueEnd, "utf-8", ignoringCase: true)
                    || input.equals(valueStart, valueEnd, "utf8", ignoringCase: true)
                else {
                    throw fail(.unsupportedEncoding, "unsupported encoding '\(input.excerpt(valueStart, valueEnd))'")
                }
                seen = 2
            } else if (seen == 1 || seen == 2) && input.equals(nameStart, nameEnd, "standalone") {
                guard input.equals(valueStart, valueEnd, "yes") || input.equals(valueStart, valueEnd, "no") else {
                    throw fail(.malformed, "standalone must be 'yes' or 'no'")
                }
                seen = 3
            } else {
                let name = input.excerpt(nameStart, nameEnd)
                throw fail(.malformed, "unexpected '\(name)' in the XML declaration", at: nameStart)
            }
        }
    }

    /// `1.` followed by one or more digits (XML 1.0, fifth edition).
    private static func isVersion1(_ input: XMLInput, _ start: Int, _ stop: Int) -> Bool {
        guard stop - start >= 3, input[start] == 0x31, input[start + 1] == ASCII.period else { return false }
        for index in (start + 2)..<stop where input[index] &- ASCII.zero >= 10 {
            return false
        }
        return true
    }

    /// Reads one step of element content: a run of character data, then one piece of markup.
    private mutating func parseContent() throws(XMLError) {
        let runStart = pos
        // Fast path for indentation: spaces, tabs and line feeds, then markup.
        var index = pos
        while index < end {
            let byte = input[index]
            guard byte == ASCII.space || byte == ASCII.lineFeed || byte == ASCII.tab else { break }
            index &+= 1
        }
        if index < end && input[index] == ASCII.lessThan {
            pos = index
            if index > runStart {
                try appendWhitespace(from: runStart, to: index)
            }
        } else {
            let flags = try scanCharacterData()
            if pos > runStart {
                try appendText(from: runStart, to: pos, flags: flags, cdata: false)
            }
        }
        guard pos + 1 < end else { throw truncated("element content") }
        switch input[pos + 1] {
        case ASCII.slash:
            try parseEndTag()
        case ASCII.exclamation:
            try parseMarkupDeclaration(allowCDATA: true)
        case ASCII.question:
            throw fail(.processingInstructionForbidden, "processing instructions are not allowed")
        default:
            try parseStartTag()
        }
    }

    /// Handles `<!`: a comment, a CDATA section (in content only) or a forbidden DOCTYPE.
    private mutating func parseMarkupDeclaration(allowCDATA: Bool) throws(XMLError) {
        var sawTruncation = false
        switch input.matches("<!--", at: pos) {
        case .yes: return try skipComment()
        case .truncated: sawTruncation = true
        case .no: break
        }
        switch input.matches("<![CDATA[", at: pos) {
        case .yes:
            guard allowCDATA else {
                throw fail(.malformed, "CDATA section outside the root element")
            }
            return try parseCDATA()
        case .truncated: sawTruncation = true
        case .no: break
        }
        switch input.matches("<!DOCTYPE", at: pos) {
        case .yes: throw fail(.doctypeForbidden, "document type declarations are not allowed")
        case .truncated: sawTruncation = true
        case .no: break
        }
        if sawTruncation {
            throw truncated("markup declaration")
        }
        throw fail(.malformed, "invalid markup declaration '\(input.excerpt(pos, pos + 12))'")
    }

    /// After the root element only whitespace and comments may follow.
    private mutating func parseEpilog() throws(XMLError) {
        while true {
            skipWhitespace()
            guard pos < end else { return }
            guard input[pos] == ASCII.lessThan, pos + 1 < end else {
                throw fail(.trailingContent, "content after the root element")
            }
            switch input[pos + 1] {
            case ASCII.exclamation:
                if input.matches("<!--", at: pos) == .yes {
                    try skipComment()
                } else if input.matches("<!DOCTYPE", at: pos) == .yes {
                    throw fail(.doctypeForbidden, "document type declarations are not allowed")
                } else {
                    throw fail(.trailingContent, "content after the root element")
                }
            case ASCII.question:
                throw fail(.processingInstructionForbidden, "processing instructions are not allowed")
            default:
                throw fail(.trailingContent, "content after the root element")
            }
        }
    }

    /// Skips `<!-- ... -->` at `pos`; `--` may only appear as part of the closing `-->`.
    private mutating func skipComment() throws(XMLError) {
        let start = pos + 4
        var index = start
        var seen: UInt8 = 0
        while index < end {
            let byte = input[index]
            if byte == ASCII.hyphen {
                if index + 1 < end && input[index + 1] == ASCII.hyphen {
                    guard index + 2 < end else { break }
                    guard input[index + 2] == ASCII.greaterThan else {
                        throw fail(.malformed, "'--' inside a comment", at: index)
                    }
                    if seen >= 0x80, let bad = input.firstInvalidUTF8(from: start, to: index) {
                        throw fail(.invalidCharacter, "invalid UTF-8 in a comment", at: bad)
                    }
                    pos = index + 3
                    return
                }
            } else if byte < ASCII.space && !ASCII.isWhitespace(byte) {
                throw invalidControl(byte, at: index)
            }
            seen |= byte
            index &+= 1
        }
        pos = end
        throw truncated("comment")
    }

    /// Reads `<![CDATA[ ... ]]>` at `pos` as character data (no references; line ends normalised).
    private mutating func parseCDATA() throws(XMLError) {
        let start = pos + 9
        var index = start
        var flags = RunFlags()
        var seen: UInt8 = 0
        while index < end {
            let byte = input[index]
            if byte >= ASCII.space && byte != ASCII.rightBracket {
                seen |= byte
                index &+= 1
                continue
            }
            switch byte {
            case ASCII.rightBracket:
                if index + 2 < end && input[index + 1] == ASCII.rightBracket && input[index + 2] == ASCII.greaterThan {
                    pos = index + 3
                    flags.nonASCII = seen >= 0x80
                    if index > start {
                        try appendText(from: start, to: index, flags: flags, cdata: true)
                    }
                    return
                }
            case ASCII.carriageReturn:
                flags.carriageReturn = true
            case ASCII.lineFeed, ASCII.tab:
                break
            default:
                throw invalidControl(byte, at: index)
            }
            index &+= 1
        }
        pos = end
        throw truncated("CDATA section")
    }
}

// MARK: - Tags

extension XMLByteParser {
    /// Reads a start tag at `pos` (`<` followed by a name start byte) and opens an element or, for `<a/>`,
    /// delivers it complete.
    private mutating func parseStartTag() throws(XMLError) {
        let tagOffset = pos
        guard depth < limits.maxDepth else {
            throw fail(.limitExceeded, "element nesting exceeds maxDepth (\(limits.maxDepth))")
        }
        elementCount += 1
        guard elementCount <= limits.maxElements else {
            throw fail(.limitExceeded, "number of elements exceeds maxElements (\(limits.maxElements))")
        }
        if current >= 0 {
            if isTextSignificant() {
                throw mixedContent(in: qname(of: current), at: pos)
            }
            resetText(keep: false)
        }

        pos += 1
        let qname = try scanQName()
        let scopeMark = scope.mark
        let firstAttribute = attributeNodes.count
        var attributeCount = 0
        var selfClosing = false
        while true {
            let hadSpace = skipWhitespace()
            guard pos < end else { throw truncated("start tag") }
            let byte = input[pos]
            if byte == ASCII.greaterThan {
                pos += 1
                break
            }
            if byte == ASCII.slash {
                guard pos + 1 < end else { throw truncated("start tag") }
                guard input[pos + 1] == ASCII.greaterThan else {
                    throw fail(.malformed, "expected '>' after '/' in a start tag")
                }
                pos += 2
                selfClosing = true
                break
            }
            guard hadSpace else {
                throw fail(.malformed, "expected whitespace, '>' or '/>' in a start tag")
            }
            attributeCount += 1
            guard attributeCount <= limits.maxAttributesPerElement else {
                throw fail(
                    .limitExceeded,
                    "attributes on one element exceed maxAttributesPerElement (\(limits.maxAttributesPerElement))"
                )
            }
            try parseAttribute(scopeMark: scopeMark)
        }

        let namespace: Int32
        var prefix = XMLTree.Span.absent
        if qname.hasPrefix {
            if input.equals(qname.start, qname.colon, "xmlns") {
                throw fail(.malformed, "element names cannot use the xmlns prefix", at: tagOffset)
            }
            guard let bound = scope.lookup(prefixStart: qname.start, prefixEnd: qname.colon, in: input) else {
                throw fail(.unboundPrefix, "unbound prefix '\(input.excerpt(qname.start, qname.colon))'", at: tagOffset)
            }
            namespace = bound
            prefix = .source(qname.start, qname.colon)
        } else {
            namespace = scope.lookup(prefixStart: qname.start, prefixEnd: qname.start, in: input) ?? 0
        }
        if attributeNodes.count > firstAttribute {
            try resolveAttributes(from: firstAttribute)
        }
        let index = Int32(truncatingIfNeeded: nodes.count)
        if current >= 0 {
            nodes.pointer(Int(current)).pointee.childCount &+= 1
        }
        // An open element keeps its parent and scope mark in fields its end tag fills (see `current`).
        nodes.append(
            XMLTree.Node(
                localName: .source(qname.localStart, qname.end), prefix: prefix, text: .empty, namespace: namespace,
                firstChild: selfClosing ? Int32(truncatingIfNeeded: childList.count) : Int32(truncatingIfNeeded: scopeMark),
                childCount: 0,
                firstAttribute: Int32(truncatingIfNeeded: firstAttribute),
                attributeCount: Int32(truncatingIfNeeded: attributeNodes.count - firstAttribute),
                subtreeEnd: selfClosing ? index + 1 : current,
                position: tagOffset
            )
        )
        if selfClosing {
            scope.pop(to: scopeMark)
        } else {
            current = index
            depth += 1
        }
    }

    /// Reads `name="value"` at `pos`; namespace declarations are bound immediately, other attributes kept raw.
    private mutating func parseAttribute(scopeMark: Int) throws(XMLError) {
        let qname = try scanQName()
        skipWhitespace()
        guard pos < end else { throw truncated("start tag") }
        guard input[pos] == ASCII.equals else {
            throw fail(.malformed, "expected '=' after attribute name")
        }
        pos += 1
        skipWhitespace()
        guard pos < end else { throw truncated("start tag") }
        let quote = input[pos]
        guard quote == ASCII.doubleQuote || quote == ASCII.singleQuote else {
            throw fail(.malformed, "attribute value must be quoted")
        }
        pos += 1
        let valueStart = pos
        let flags = try scanAttributeValue(quote: quote)
        let valueEnd = pos
        pos += 1
        if flags.nonASCII, let bad = input.firstInvalidUTF8(from: valueStart, to: valueEnd) {
            throw fail(.invalidCharacter, "invalid UTF-8 in an attribute value", at: bad)
        }

        if !qname.hasPrefix && input.equals(qname.start, qname.end, "xmlns") {
            try declareNamespace(
                prefixStart: qname.start, prefixLength: 0,
                valueStart: valueStart, valueEnd: valueEnd, flags: flags, scopeMark: scopeMark
            )
        } else if qname.hasPrefix && input.equals(qname.start, qname.colon, "xmlns") {
            try declareNamespace(
                prefixStart: qname.colon + 1, prefixLength: qname.end - qname.colon - 1,
                valueStart: valueStart, valueEnd: valueEnd, flags: flags, scopeMark: scopeMark
            )
        } else {
            let value: XMLTree.Span
            if flags.needsAttributeDecoding {
                let start = decoded.count
                var buffer: [UInt8] = []
                swap(&buffer, &decoded)
                defer { swap(&buffer, &decoded) }
                try decode(from: valueStart, to: valueEnd, into: &buffer, mode: .attribute)
                value = .decoded(start, buffer.count)
            } else {
                value = .source(valueStart, valueEnd)
            }
            // The namespace is resolved once the tag's declarations are all known: until then a prefixed
            // attribute holds -(prefix length + 1) there.
            attributeNodes.append(
                XMLTree.Attribute(
                    localName: .source(qname.localStart, qname.end), value: value,
                    namespace: qname.hasPrefix ? Int32(truncatingIfNeeded: qname.start - qname.colon - 1) : 0
                )
            )
        }
    }

    private mutating func declareNamespace(
        prefixStart: Int,
        prefixLength: Int,
        valueStart: Int,
        valueEnd: Int,
        flags: RunFlags,
        scopeMark: Int
    ) throws(XMLError) {
        if scope.isDeclared(prefixStart: prefixStart, prefixLength: prefixLength, since: scopeMark, in: input) {
            let shown = input.excerpt(prefixStart, prefixStart + prefixLength)
            throw fail(.duplicateAttribute, "namespace prefix '\(shown)' declared twice")
        }
        let namespace: Int32
        if flags.needsAttributeDecoding {
            var buffer: [UInt8] = []
            swap(&buffer, &valueBuffer)
            defer { swap(&buffer, &valueBuffer) }
            buffer.removeAll(keepingCapacity: true)
            try decode(from: valueStart, to: valueEnd, into: &buffer, mode: .attribute)
            namespace = buffer.withUnsafeBufferPointer { scope.intern($0) }
        } else {
            namespace = scope.intern(input.slice(valueStart, valueEnd))
        }
        let uri = scope.namespaces[Int(namespace)]
        let isXMLPrefix = prefixLength == 3 && input.equals(prefixStart, prefixStart + 3, "xml")
        if prefixLength > 0 && uri.isEmpty {
            throw fail(.malformed, "xmlns:\(input.excerpt(prefixStart, prefixStart + prefixLength))=\"\" is not allowed in Namespaces 1.0")
        }
        if prefixLength == 5 && input.equals(prefixStart, prefixStart + 5, "xmlns") {
            throw fail(.malformed, "the xmlns prefix cannot be declared")
        } else if isXMLPrefix {
            guard namespace == NamespaceScope.xmlNamespace else {
                throw fail(.malformed, "the xml prefix cannot be bound to another namespace")
            }
        } else if namespace == NamespaceScope.xmlNamespace || uri == xmlnsNamespaceURI {
            let prefix = input.string(prefixStart, prefixStart + prefixLength)
            throw fail(.malformed, "reserved namespace '\(uri)' cannot be bound to '\(prefix)'")
        }
        scope.push(NamespaceScope.Binding(prefixStart: prefixStart, prefixLength: prefixLength, namespace: namespace))
    }

    /// Resolves the namespaces of the current start tag's attributes (`attributeNodes[first...]`) and rejects
    /// duplicate expanded names.
    private mutating func resolveAttributes(from first: Int) throws(XMLError) {
        for index in first..<attributeNodes.count {
            let localStart = Int(attributeNodes[index].localName.start)
            let length = Int(attributeNodes[index].localName.count)
            var namespace = attributeNodes[index].namespace
            var start = localStart
            if namespace < 0 {
                let prefixLength = Int(-namespace) - 1
                start = localStart - 1 - prefixLength
                guard let bound = scope.lookup(prefixStart: start, prefixEnd: localStart - 1, in: input) else {
                    throw fail(
                        .unboundPrefix,
                        "unbound prefix '\(input.excerpt(start, localStart - 1))' on an attribute",
                        at: start
                    )
                }
                namespace = bound
                attributeNodes[index].namespace = bound
            }
            var other = first
            while other < index {
                let existing = attributeNodes[other]
                if existing.namespace == namespace && Int(existing.localName.count) == length
                    && input.bytesEqual(Int(existing.localName.start), localStart, count: length)
                {
                    let shown = input.excerpt(start, localStart + length)
                    throw fail(.duplicateAttribute, "duplicate attribute '\(shown)'", at: start)
                }
                other += 1
            }
        }
    }

    /// Reads an end tag at `pos` (`</`) and closes the innermost element.
    private mutating func parseEndTag() throws(XMLError) {
        let tagOffset = pos
        pos += 2
        guard current >= 0 else {
            throw fail(.malformed, "end tag without a start tag", at: tagOffset)
        }
        let index = Int(current)
        let expected = qname(of: current)
        let qname: QName
        var matched = false
        if let name = matchName(expected) {
            // Fast path: the name is the one of the open element (checked byte for byte), not a longer name.
            qname = name
            matched = true
        } else {
            qname = try scanQName()
        }
        skipWhitespace()
        guard pos < end else { throw truncated("end tag") }
        guard input[pos] == ASCII.greaterThan else {
            throw fail(.malformed, "expected '>' in an end tag")
        }
        pos += 1
        let length = qname.end - qname.start
        guard matched
            || (expected.end - expected.start == length
                && input.bytesEqual(expected.start, qname.start, count: length))
        else {
            throw fail(
                .mismatchedEndTag,
                "expected </\(Self.text(of: expected, in: input))> but found </\(Self.text(of: qname, in: input))>",
                at: tagOffset
            )
        }
        let node = nodes.pointer(index)
        let parent = node.pointee.subtreeEnd
        let scopeMark = Int(node.pointee.firstChild)
        node.pointee.firstChild = Int32(truncatingIfNeeded: childList.count)
        if node.pointee.childCount == 0 {
            switch text {
            case .empty: break
            case .slice(let start, let stop): node.pointee.text = .source(start, stop)
            case .decoded(let start): node.pointee.text = .decoded(start, decoded.count)
            }
        } else {
            // The children, all closed: the first follows this element, each next one ends the one before.
            let count = nodes.count
            var child = index + 1
            while child < count {
                childList.append(Int32(truncatingIfNeeded: child))
                child = Int(nodes.pointer(child).pointee.subtreeEnd)
            }
        }
        node.pointee.subtreeEnd = Int32(truncatingIfNeeded: nodes.count)
        resetText(keep: true)
        scope.pop(to: scopeMark)
        current = parent
        depth -= 1
    }

    /// Consumes the bytes of `expected` at `pos` when they are there and not followed by more name bytes.
    private mutating func matchName(_ expected: QName) -> QName? {
        let length = expected.end - expected.start
        guard end - pos > length, input.bytesEqual(expected.start, pos, count: length) else { return nil }
        let next = input[pos + length]
        guard !classes[Int(next)].contains(.name) && next != ASCII.colon else { return nil }
        let start = pos
        pos += length
        return QName(start: start, colon: expected.colon < 0 ? -1 : start + (expected.colon - expected.start), end: pos)
    }

    /// Reads a QName at `pos`: NCName, optionally `:` NCName.
    private mutating func scanQName() throws(XMLError) -> QName {
        let start = pos
        guard pos < end else { throw truncated("name") }
        guard classes[Int(input[pos])].contains(.nameStart) else {
            throw fail(.malformed, "invalid name character")
        }
        // Scanning stops one byte past the longest allowed name, so an overlong name is caught early.
        let scanEnd = start + min(end - start, max(limits.maxNameLength, 0) + 1)
        var index = pos &+ 1
        var colon = -1
        var seen = input[pos]
        while index < scanEnd {
            let byte = input[index]
            if ASCII.isNameByteFast(byte) {
                seen |= byte
                index &+= 1
                continue
            }
            guard byte == ASCII.colon else { break }
            guard colon < 0 else {
                throw fail(.malformed, "more than one ':' in a name", at: index)
            }
            guard index + 1 < end else { throw truncated("name") }
            guard classes[Int(input[index + 1])].contains(.nameStart) else {
                throw fail(.malformed, "invalid local name after ':'", at: index)
            }
            colon = index
            index &+= 1
        }
        guard index - start <= limits.maxNameLength else {
            throw fail(.limitExceeded, "name longer than maxNameLength (\(limits.maxNameLength))", at: start)
        }
        guard index < end else { throw truncated("name") }
        if seen >= 0x80, let bad = input.firstInvalidUTF8(from: start, to: index) {
            throw fail(.invalidCharacter, "invalid UTF-8 in a name", at: bad)
        }
        pos = index
        return QName(start: start, colon: colon, end: index)
    }
}

// MARK: - Character data

extension XMLByteParser {
    /// Scans character data from `pos` to the next `<`, leaving `pos` there.
    private mutating func scanCharacterData() throws(XMLError) -> RunFlags {
        var flags = RunFlags()
        var seen: UInt8 = 0
        var seenWords: UInt64 = 0
        var index = pos
        while index < end {
            let byte: UInt8
            if end - index >= 8 {
                // Eight bytes at a time: skip to the first byte that ends the fast path, if any.
                let word = input.word(at: index)
                let special = SWAR.textSpecial(word)
                if special == 0 {
                    seenWords |= word
                    index &+= 8
                    continue
                }
                let skip = special.trailingZeroBitCount >> 3
                seenWords |= word & ((1 << UInt64(skip << 3)) &- 1)
                index &+= skip
                byte = input[index]
            } else {
                byte = input[index]
                guard classes[Int(byte)].contains(.textSpecial) else {
                    seen |= byte
                    index &+= 1
                    continue
                }
            }
            switch byte {
            case ASCII.lessThan:
                pos = index
                flags.nonASCII = seen >= 0x80 || seenWords & SWAR.highBits != 0
                return flags
            case ASCII.carriageReturn:
                flags.carriageReturn = true
            case ASCII.ampersand:
                flags.reference = true
            case ASCII.rightBracket:
                if index + 2 < end && input[index + 1] == ASCII.rightBracket && input[index + 2] == ASCII.greaterThan {
                    throw fail(.malformed, "']]>' in character data", at: index)
                }
            default:
                throw invalidControl(byte, at: index)
            }
            index &+= 1
        }
        pos = end
        throw truncated("element content")
    }

    /// Scans an attribute value from `pos` to the closing `quote`, leaving `pos` there.
    private mutating func scanAttributeValue(quote: UInt8) throws(XMLError) -> RunFlags {
        var flags = RunFlags()
        var seen: UInt8 = 0
        var seenWords: UInt64 = 0
        let start = pos
        var index = pos
        while index < end {
            let byte: UInt8
            if end - index >= 8 {
                let word = input.word(at: index)
                let special = SWAR.attributeSpecial(word)
                if special == 0 {
                    seenWords |= word
                    index &+= 8
                    continue
                }
                let skip = special.trailingZeroBitCount >> 3
                seenWords |= word & ((1 << UInt64(skip << 3)) &- 1)
                index &+= skip
                byte = input[index]
            } else {
                byte = input[index]
                guard classes[Int(byte)].contains(.attributeSpecial) else {
                    seen |= byte
                    index &+= 1
                    continue
                }
            }
            switch byte {
            case quote:
                guard index - start <= limits.maxTextBytes else {
                    throw fail(.limitExceeded, "attribute value longer than maxTextBytes (\(limits.maxTextBytes))", at: start)
                }
                pos = index
                flags.nonASCII = seen >= 0x80 || seenWords & SWAR.highBits != 0
                return flags
            case ASCII.doubleQuote, ASCII.singleQuote:
                break
            case ASCII.lessThan:
                throw fail(.malformed, "'<' in an attribute value", at: index)
            case ASCII.ampersand:
                flags.reference = true
            case ASCII.carriageReturn:
                flags.carriageReturn = true
            case ASCII.lineFeed, ASCII.tab:
                flags.tabOrLineFeed = true
            default:
                throw invalidControl(byte, at: index)
            }
            index &+= 1
        }
        pos = end
        throw truncated("attribute value")
    }

    /// Adds a run of character data (or a CDATA section) to the innermost element.
    private mutating func appendText(from start: Int, to stop: Int, flags: RunFlags, cdata: Bool) throws(XMLError) {
        if flags.nonASCII, let bad = input.firstInvalidUTF8(from: start, to: stop) {
            throw fail(.invalidCharacter, "invalid UTF-8 in character data", at: bad)
        }
        guard current >= 0 else { return }
        guard nodes.pointer(Int(current)).pointee.childCount == 0 else {
            // Between child elements only whitespace may appear; it is dropped.
            if flags.reference || !input.isWhitespace(start, stop) {
                throw mixedContent(in: qname(of: current), at: start)
            }
            return
        }
        let needsDecoding = flags.carriageReturn || (flags.reference && !cdata)
        textIsWhitespace = false
        let textStart: Int
        switch text {
        case .empty:
            if !needsDecoding {
                guard stop - start <= limits.maxTextBytes else {
                    throw textLimitExceeded(at: start)
                }
                text = .slice(start: start, end: stop)
                return
            }
            textStart = decoded.count
        case .slice(let sliceStart, let sliceEnd):
            // A second run (after a comment or CDATA section): continue in the decoded buffer.
            textStart = decoded.count
            decoded.append(contentsOf: input.slice(sliceStart, sliceEnd))
        case .decoded(let start):
            textStart = start
        }
        text = .decoded(start: textStart)
        if flags.reference && !cdata {
            textHasReference = true
        }
        if needsDecoding {
            var buffer: [UInt8] = []
            swap(&buffer, &decoded)
            defer { swap(&buffer, &decoded) }
            try decode(from: start, to: stop, into: &buffer, mode: cdata ? .cdata : .text)
        } else {
            decoded.append(contentsOf: input.slice(start, stop))
        }
        guard decoded.count - textStart <= limits.maxTextBytes else {
            throw textLimitExceeded(at: start)
        }
    }

    /// `appendText` for a run known to hold only spaces, tabs and line feeds.
    private mutating func appendWhitespace(from start: Int, to stop: Int) throws(XMLError) {
        guard current >= 0 else { return }
        // Between child elements it is dropped; the first run of an element is kept as a slice, known blank.
        guard nodes.pointer(Int(current)).pointee.childCount == 0 else { return }
        guard case .empty = text else {
            return try appendText(from: start, to: stop, flags: RunFlags(), cdata: false)
        }
        guard stop - start <= limits.maxTextBytes else {
            throw textLimitExceeded(at: start)
        }
        text = .slice(start: start, end: stop)
        textIsWhitespace = true
    }

    /// Whether the collected text is more than whitespace.
    private func isTextSignificant() -> Bool {
        if textHasReference {
            return true
        }
        if textIsWhitespace {
            return false
        }
        switch text {
        case .empty:
            return false
        case .slice(let start, let stop):
            return !input.isWhitespace(start, stop)
        case .decoded(let start):
            return !decoded[start...].allSatisfy(ASCII.isWhitespace)
        }
    }

    /// Forgets the collected text; unless `keep`, drops its decoded bytes too (they are no element's text).
    private mutating func resetText(keep: Bool) {
        if !keep, case .decoded(let start) = text {
            decoded.removeSubrange(start...)
        }
        text = .empty
        textHasReference = false
        textIsWhitespace = false
    }

    /// Decodes references (except in CDATA) and normalises line ends (and, in attributes, whitespace).
    private mutating func decode(from start: Int, to stop: Int, into out: inout [UInt8], mode: DecodeMode) throws(XMLError) {
        var index = start
        var chunk = start
        while index < stop {
            if stop - index >= 8 {
                // Skip eight bytes at a time to the next byte this mode changes.
                let word = input.word(at: index)
                let special: UInt64
                switch mode {
                case .text: special = SWAR.equal(word, ASCII.ampersand) | SWAR.equal(word, ASCII.carriageReturn)
                case .cdata: special = SWAR.equal(word, ASCII.carriageReturn)
                case .attribute: special = SWAR.equal(word, ASCII.ampersand) | SWAR.lessThanSpace(word)
                }
                if special == 0 {
                    index &+= 8
                    continue
                }
                index &+= special.trailingZeroBitCount >> 3
            }
            let byte = input[index]
            if byte == ASCII.ampersand && mode != .cdata {
                out.append(contentsOf: input.slice(chunk, index))
                index = try decodeReference(at: index, stop: stop, into: &out)
                chunk = index
            } else if byte == ASCII.carriageReturn {
                out.append(contentsOf: input.slice(chunk, index))
                out.append(mode == .attribute ? ASCII.space : ASCII.lineFeed)
                index &+= 1
                if index < stop && input[index] == ASCII.lineFeed {
                    index &+= 1
                }
                chunk = index
            } else if mode == .attribute && (byte == ASCII.lineFeed || byte == ASCII.tab) {
                out.append(contentsOf: input.slice(chunk, index))
                out.append(ASCII.space)
                index &+= 1
                chunk = index
            } else {
                index &+= 1
            }
        }
        out.append(contentsOf: input.slice(chunk, stop))
    }

    /// Decodes the reference at `index` (`&`) into `out`; returns the offset after its `;`.
    private mutating func decodeReference(at index: Int, stop: Int, into out: inout [UInt8]) throws(XMLError) -> Int {
        var cursor = index + 1
        if cursor < stop && input[cursor] == ASCII.hash {
            cursor += 1
            var radix: UInt32 = 10
            if cursor < stop && input[cursor] == ASCII.lowercaseX {
                radix = 16
                cursor += 1
            }
            var value: UInt32 = 0
            var digits = 0
            while cursor < stop && input[cursor] != ASCII.semicolon {
                let digit = Self.digitValue(input[cursor])
                guard digit < radix else {
                    throw fail(.malformed, "invalid character reference", at: index)
                }
                value = min(value * radix + digit, 0x110000)  // saturates: never overflows
                digits += 1
                cursor += 1
            }
            guard cursor < stop, digits > 0 else {
                throw fail(.malformed, "malformed character reference", at: index)
            }
            guard ASCII.isXMLChar(value) else {
                throw fail(.invalidCharacter, "character reference to a character XML forbids", at: index)
            }
            out.appendUTF8(value)
            return cursor + 1
        }

        let nameStart = cursor
        while cursor < stop && (classes[Int(input[cursor])].contains(.name) || input[cursor] == ASCII.colon) {
            cursor += 1
        }
        guard cursor < stop, input[cursor] == ASCII.semicolon, cursor > nameStart else {
            throw fail(.malformed, "'&' must start a reference ending with ';'", at: index)
        }
        let replacement: UInt8
        if input.equals(nameStart, cursor, "lt") {
            replacement = ASCII.lessThan
        } else if input.equals(nameStart, cursor, "gt") {
            replacement = ASCII.greaterThan
        } else if input.equals(nameStart, cursor, "amp") {
            replacement = ASCII.ampersand
        } else if input.equals(nameStart, cursor, "apos") {
            replacement = ASCII.singleQuote
        } else if input.equals(nameStart, cursor, "quot") {
            replacement = ASCII.doubleQuote
        } else {
            let shown = input.excerpt(nameStart, min(cursor, nameStart + Self.maxEntityNameLength))
            throw fail(.unknownEntity, "unknown entity '&\(shown);'", at: index)
        }
        out.append(replacement)
        return cursor + 1
    }

    /// Value of a decimal or hexadecimal digit; 99 for anything else.
    private static func digitValue(_ byte: UInt8) -> UInt32 {
        switch byte {
        case 0x30...0x39: return UInt32(byte - 0x30)
        case 0x41...0x46: return UInt32(byte - 0x41 + 10)
        case 0x61...0x66: return UInt32(byte - 0x61 + 10)
        default: return 99
        }
    }
}

// MARK: - Positions and errors

extension XMLByteParser {
    @discardableResult
    private mutating func skipWhitespace() -> Bool {
        let start = pos
        while pos < end && ASCII.isWhitespace(input[pos]) {
            pos &+= 1
        }
        return pos > start
    }

    private static func text(of qname: QName, in input: XMLInput) -> String {
        input.excerpt(qname.start, qname.end)
    }

    /// 1-based line of `offset`: LF, CRLF and lone CR each end a line.
    private mutating func line(at offset: Int) -> Int {
        let target = min(max(offset, 0), end)
        if target < lineScanOffset {
            lineScanOffset = 0
            lineAtScanOffset = 1
        }
        let line = lineNumber(in: input.bytes, at: target, from: lineScanOffset, line: lineAtScanOffset)
        lineScanOffset = target
        lineAtScanOffset = line
        return line
    }

    private mutating func fail(_ code: XMLError.Code, _ detail: String, at offset: Int? = nil) -> XMLError {
        XMLError(code: code, line: line(at: offset ?? pos), detail: detail)
    }

    private mutating func truncated(_ context: String) -> XMLError {
        fail(.truncated, "unexpected end of input in \(context)", at: end)
    }

    private mutating func invalidControl(_ byte: UInt8, at offset: Int) -> XMLError {
        let hex = String(byte, radix: 16, uppercase: true)
        return fail(.invalidCharacter, "control character U+\(byte < 0x10 ? "000" : "00")\(hex) is not allowed", at: offset)
    }

    private mutating func mixedContent(in element: QName, at offset: Int) -> XMLError {
        let name = Self.text(of: element, in: input)
        return fail(.mixedContent, "<\(name)> mixes character data and child elements", at: offset)
    }

    private mutating func textLimitExceeded(at offset: Int) -> XMLError {
        fail(.limitExceeded, "character data longer than maxTextBytes (\(limits.maxTextBytes))", at: offset)
    }
}
