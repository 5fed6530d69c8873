/// The iterative, byte-level parser behind `XMLReader`.
///
/// One instance parses one document held in a buffer that outlives it. Open elements live on an explicit stack
/// (`openElements`/`frames`), so nesting never recurses. All methods are `mutating` or live on the small helper
/// structs (`XMLInput`, `NamespaceScope`, `TextCollector`), so no call ever copies the parser's state.
struct XMLByteParser {
    private let input: XMLInput
    private let end: Int
    private let limits: XMLLimits
    private let classes: [ASCII.ByteClass]
    /// Offset of the next unread byte.
    private var pos = 0

    /// Lines are counted lazily, and monotonically, only when a start tag or an error needs one.
    private var lineScanOffset = 0
    private var lineAtScanOffset = 1

    /// Elements whose start tag has been read and whose end tag has not (innermost last)…
    private var openElements: [XMLElement] = []
    /// …and their parsing state, kept apart so an element can be moved out whole when it ends.
    private var frames: [Frame] = []
    private var scope = NamespaceScope()
    private var rawAttributes: [RawAttribute] = []
    private var text = TextCollector()
    /// Decoded value of the attribute being parsed.
    private var valueBuffer: [UInt8] = []
    private var elementCount = 0
    private var root: XMLElement?

    init(input: UnsafeBufferPointer<UInt8>, limits: XMLLimits) {
        self.input = XMLInput(input)
        self.end = input.count
        self.limits = limits
        self.classes = ASCII.byteClasses
        frames.reserveCapacity(16)
        openElements.reserveCapacity(16)
    }

    /// Parses the whole document and returns its root element.
    mutating func parseDocument() throws(XMLError) -> XMLElement {
        try parseProlog()
        try parseStartTag()
        while !frames.isEmpty {
            try parseContent()
        }
        try parseEpilog()
        guard let root else {
            throw fail(.noRootElement, "no root element")
        }
        return root
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

    /// Parsing state of an open element.
    private struct Frame {
        /// `scope.mark` before this element's declarations; restored at its end tag.
        var scopeMark: Int
        var qname: QName
    }

    /// An attribute read from a start tag, resolved once all the tag's declarations are known.
    private struct RawAttribute {
        var qname: QName
        var value: String
        var offset: Int
    }

    /// What a scan of a run of character data or an attribute value found.
    private struct RunFlags {
        var reference = false
        var carriageReturn = false
        var tabOrLineFeed = false
        var nonASCII = false

        var needsAttributeDecoding: Bool { reference || carriageReturn || tabOrLineFeed }
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
        let flags = try scanCharacterData()
        if pos > runStart {
            try appendText(from: runStart, to: pos, flags: flags, cdata: false)
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
        guard frames.count < limits.maxDepth else {
            throw fail(.limitExceeded, "element nesting exceeds maxDepth (\(limits.maxDepth))")
        }
        elementCount += 1
        guard elementCount <= limits.maxElements else {
            throw fail(.limitExceeded, "number of elements exceeds maxElements (\(limits.maxElements))")
        }
        if let top = frames.last {
            if text.isSignificant(in: input) {
                throw mixedContent(in: top.qname, at: pos)
            }
            text.reset()
        }

        pos += 1
        let qname = try scanQName()
        let scopeMark = scope.mark
        if !rawAttributes.isEmpty {
            rawAttributes.removeAll(keepingCapacity: true)
        }
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

        let line = line(at: tagOffset)
        let namespace: String
        var prefix: String? = nil
        if qname.hasPrefix {
            if input.equals(qname.start, qname.colon, "xmlns") {
                throw fail(.malformed, "element names cannot use the xmlns prefix", at: tagOffset)
            }
            guard let binding = scope.lookup(prefixStart: qname.start, prefixEnd: qname.colon, in: input) else {
                throw fail(.unboundPrefix, "unbound prefix '\(input.excerpt(qname.start, qname.colon))'", at: tagOffset)
            }
            namespace = binding.uri
            prefix = binding.prefix
        } else {
            namespace = scope.lookup(prefixStart: qname.start, prefixEnd: qname.start, in: input)?.uri ?? ""
        }
        let name = XMLName(namespace, input.string(qname.localStart, qname.end))
        let attributes = rawAttributes.isEmpty ? [] : try resolveAttributes()

        let element = Self.makeElement(name: name, prefix: prefix, attributes: attributes, line: line)
        if selfClosing {
            scope.pop(to: scopeMark)
            if let parent = openElements.indices.last {
                appendChild(element, to: parent)
            } else {
                root = element
            }
        } else {
            openElements.append(element)
            frames.append(Frame(scopeMark: scopeMark, qname: qname))
        }
    }

    @inline(__always)
    private mutating func appendChild(_ child: consuming XMLElement, to parent: Int) {
        if openElements[parent].children.isEmpty {
            // Skips the 1 → 2 → 4 regrowth that most SOAP elements with children would otherwise go through.
            openElements[parent].children.reserveCapacity(4)
        }
        openElements[parent].children.append(child)
    }

    /// Builds a new element. Kept out of line on purpose: inlined at each call site, the optimiser emits an extra
    /// copy and destroy of the whole element per site (measured); here it pays that cost once.
    @inline(never)
    private static func makeElement(
        name: consuming XMLName,
        prefix: consuming String?,
        attributes: consuming [XMLAttribute],
        line: Int
    ) -> XMLElement {
        XMLElement(name: name, prefix: prefix, attributes: attributes, line: line)
    }

    /// Reads `name="value"` at `pos`; namespace declarations are bound immediately, other attributes kept raw.
    private mutating func parseAttribute(scopeMark: Int) throws(XMLError) {
        let offset = pos
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
            let value: String
            if flags.needsAttributeDecoding {
                try decodeAttributeValue(from: valueStart, to: valueEnd)
                value = String(decoding: valueBuffer, as: UTF8.self)
            } else {
                value = input.string(valueStart, valueEnd)
            }
            rawAttributes.append(RawAttribute(qname: qname, value: value, offset: offset))
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
        let uri: String
        if flags.needsAttributeDecoding {
            try decodeAttributeValue(from: valueStart, to: valueEnd)
            uri = valueBuffer.withUnsafeBufferPointer { scope.uri(for: $0) }
        } else {
            uri = scope.uri(for: input.slice(valueStart, valueEnd))
        }
        let prefix = prefixLength == 0 ? "" : input.string(prefixStart, prefixStart + prefixLength)
        if prefixLength > 0 && uri.isEmpty {
            throw fail(.malformed, "xmlns:\(prefix)=\"\" is not allowed in Namespaces 1.0")
        }
        switch prefix {
        case "xmlns":
            throw fail(.malformed, "the xmlns prefix cannot be declared")
        case "xml":
            guard uri == xmlNamespaceURI else {
                throw fail(.malformed, "the xml prefix cannot be bound to another namespace")
            }
        default:
            guard uri != xmlNamespaceURI && uri != xmlnsNamespaceURI else {
                throw fail(.malformed, "reserved namespace '\(uri)' cannot be bound to '\(prefix)'")
            }
        }
        scope.push(NamespaceScope.Binding(prefixStart: prefixStart, prefixLength: prefixLength, prefix: prefix, uri: uri))
    }

    /// Resolves the raw attributes of the current start tag and rejects duplicate expanded names.
    private mutating func resolveAttributes() throws(XMLError) -> [XMLAttribute] {
        var result: [XMLAttribute] = []
        result.reserveCapacity(rawAttributes.count)
        for index in rawAttributes.indices {
            let qname = rawAttributes[index].qname
            var namespace = ""
            if qname.hasPrefix {
                guard let binding = scope.lookup(prefixStart: qname.start, prefixEnd: qname.colon, in: input) else {
                    throw fail(
                        .unboundPrefix,
                        "unbound prefix '\(input.excerpt(qname.start, qname.colon))' on an attribute",
                        at: rawAttributes[index].offset
                    )
                }
                namespace = binding.uri
            }
            let name = XMLName(namespace, input.string(qname.localStart, qname.end))
            for existing in result where existing.name == name {
                let shown = Self.text(of: qname, in: input)
                throw fail(.duplicateAttribute, "duplicate attribute '\(shown)'", at: rawAttributes[index].offset)
            }
            result.append(XMLAttribute(name: name, value: rawAttributes[index].value))
        }
        return result
    }

    /// Reads an end tag at `pos` (`</`) and closes the innermost element.
    private mutating func parseEndTag() throws(XMLError) {
        let tagOffset = pos
        pos += 2
        let qname: QName
        if let expected = frames.last?.qname, let matched = matchName(expected) {
            // Fast path: the name is the one of the open element (checked byte for byte), not a longer name.
            qname = matched
        } else {
            qname = try scanQName()
        }
        skipWhitespace()
        guard pos < end else { throw truncated("end tag") }
        guard input[pos] == ASCII.greaterThan else {
            throw fail(.malformed, "expected '>' in an end tag")
        }
        pos += 1
        guard let frame = frames.popLast(), let top = openElements.indices.last else {
            throw fail(.malformed, "end tag without a start tag", at: tagOffset)
        }
        let length = qname.end - qname.start
        guard frame.qname.end - frame.qname.start == length, input.bytesEqual(frame.qname.start, qname.start, count: length)
        else {
            throw fail(
                .mismatchedEndTag,
                "expected </\(Self.text(of: frame.qname, in: input))> but found </\(Self.text(of: qname, in: input))>",
                at: tagOffset
            )
        }
        if openElements[top].children.isEmpty {
            openElements[top].text = text.string(in: input)
        }
        text.reset()
        scope.pop(to: frame.scopeMark)
        if top == 0 {
            root = openElements.removeLast()
        } else {
            appendChild(openElements.removeLast(), to: top - 1)
        }
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
            if classes[Int(byte)].contains(.name) {
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
        var index = pos
        while index < end {
            let byte = input[index]
            guard classes[Int(byte)].contains(.textSpecial) else {
                seen |= byte
                index &+= 1
                continue
            }
            switch byte {
            case ASCII.lessThan:
                pos = index
                flags.nonASCII = seen >= 0x80
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
        let start = pos
        var index = pos
        while index < end {
            let byte = input[index]
            guard classes[Int(byte)].contains(.attributeSpecial) else {
                seen |= byte
                index &+= 1
                continue
            }
            switch byte {
            case quote:
                guard index - start <= limits.maxTextBytes else {
                    throw fail(.limitExceeded, "attribute value longer than maxTextBytes (\(limits.maxTextBytes))", at: start)
                }
                pos = index
                flags.nonASCII = seen >= 0x80
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
        guard let top = openElements.indices.last else { return }
        guard openElements[top].children.isEmpty else {
            // Between child elements only whitespace may appear; it is dropped.
            if flags.reference || !input.isWhitespace(start, stop) {
                throw mixedContent(in: frames[top].qname, at: start)
            }
            return
        }
        let needsDecoding = flags.carriageReturn || (flags.reference && !cdata)
        if !needsDecoding && text.isEmpty {
            guard stop - start <= limits.maxTextBytes else {
                throw textLimitExceeded(at: start)
            }
            text.setSlice(start, stop)
            return
        }
        if flags.reference && !cdata {
            text.hasReference = true
        }
        var buffer = text.takeBuffer(from: input)
        defer { text.restoreBuffer(buffer) }
        if needsDecoding {
            try decode(from: start, to: stop, into: &buffer, mode: cdata ? .cdata : .text)
        } else {
            buffer.append(contentsOf: input.slice(start, stop))
        }
        guard buffer.count <= limits.maxTextBytes else {
            throw textLimitExceeded(at: start)
        }
    }

    private mutating func decodeAttributeValue(from start: Int, to stop: Int) throws(XMLError) {
        var buffer: [UInt8] = []
        swap(&buffer, &valueBuffer)
        defer { swap(&buffer, &valueBuffer) }
        buffer.removeAll(keepingCapacity: true)
        try decode(from: start, to: stop, into: &buffer, mode: .attribute)
    }

    /// Decodes references (except in CDATA) and normalises line ends (and, in attributes, whitespace).
    private mutating func decode(from start: Int, to stop: Int, into out: inout [UInt8], mode: DecodeMode) throws(XMLError) {
        var index = start
        var chunk = start
        while index < stop {
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
        var index = lineScanOffset
        var line = lineAtScanOffset
        if let base = input.bytes.baseAddress {
            // Eight bytes at a time: count line feeds, plus carriage returns not followed by a line feed.
            let raw = UnsafeRawPointer(base)
            while target - index >= 8 {
                let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                let lineFeeds = Self.zeroBytes(word ^ 0x0A0A_0A0A_0A0A_0A0A)
                var carriageReturns = Self.zeroBytes(word ^ 0x0D0D_0D0D_0D0D_0D0D)
                if carriageReturns != 0 {
                    // Little-endian: the byte after byte i is byte i + 1, eight bits higher.
                    var followedByLineFeed = lineFeeds >> 8
                    if index + 8 < end && input[index + 8] == ASCII.lineFeed {
                        followedByLineFeed |= 0x80 << 56
                    }
                    carriageReturns &= ~followedByLineFeed
                }
                line &+= Self.countMarkedBytes(lineFeeds) &+ Self.countMarkedBytes(carriageReturns)
                index &+= 8
            }
        }
        while index < target {
            let byte = input[index]
            if byte == ASCII.lineFeed {
                line &+= 1
            } else if byte == ASCII.carriageReturn && (index + 1 >= end || input[index + 1] != ASCII.lineFeed) {
                line &+= 1
            }
            index &+= 1
        }
        lineScanOffset = target
        lineAtScanOffset = line
        return line
    }

    /// High bit set in exactly the bytes of `word` that are zero.
    @inline(__always)
    private static func zeroBytes(_ word: UInt64) -> UInt64 {
        let low: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        return ~(((word & low) &+ low) | word | low)
    }

    /// Number of bytes whose high bit is set in a `zeroBytes` result (the multiply sums them into the top byte).
    @inline(__always)
    private static func countMarkedBytes(_ marks: UInt64) -> Int {
        Int(truncatingIfNeeded: ((marks >> 7) &* 0x0101_0101_0101_0101) >> 56)
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
