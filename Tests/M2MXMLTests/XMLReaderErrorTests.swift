import M2MXML
import Testing

struct ErrorCase: Sendable, CustomTestStringConvertible {
    var input: [UInt8]
    var code: XMLError.Code

    init(_ input: String, _ code: XMLError.Code) {
        self.input = Array(input.utf8)
        self.code = code
    }

    init(bytes: [UInt8], _ code: XMLError.Code) {
        self.input = bytes
        self.code = code
    }

    var testDescription: String {
        "\(code): \(String(decoding: input.prefix(60), as: UTF8.self).debugDescription)"
    }
}

@Suite struct XMLReaderErrorTests {
    static let cases: [ErrorCase] = [
        // truncated
        ErrorCase("<a>", .truncated),
        ErrorCase("<a", .truncated),
        ErrorCase("<a x='1", .truncated),
        ErrorCase("<a><b></b>", .truncated),
        ErrorCase("<a>text", .truncated),
        ErrorCase("<a><!-- x", .truncated),
        ErrorCase("<a><![CDATA[x", .truncated),
        ErrorCase("<a></a", .truncated),
        ErrorCase("<?xml version='1.0'", .truncated),
        ErrorCase("<!-", .truncated),
        // malformed
        ErrorCase("< a/>", .malformed),
        ErrorCase("<a b></a>", .malformed),
        ErrorCase("<a b=c></a>", .malformed),
        ErrorCase("<a x='1'y='2'/>", .malformed),
        ErrorCase("<a:b:c/>", .malformed),
        ErrorCase("<1a/>", .malformed),
        ErrorCase("<a x='<'/>", .malformed),
        ErrorCase("<a>]]></a>", .malformed),
        ErrorCase("<a>a & b</a>", .malformed),
        ErrorCase("<a>&#;</a>", .malformed),
        ErrorCase("<a>&#X41;</a>", .malformed),
        ErrorCase("<a>&#x4G;</a>", .malformed),
        ErrorCase("<a>&amp</a>", .malformed),
        ErrorCase("<a><!-- a -- b --></a>", .malformed),
        ErrorCase("<a><!-- a ---></a>", .malformed),
        ErrorCase("<a><!ELEMENT a ANY></a>", .malformed),
        ErrorCase("text<a/>", .malformed),
        ErrorCase("<![CDATA[x]]><a/>", .malformed),
        ErrorCase("<a xmlns:p=''/>", .malformed),
        ErrorCase("<a xmlns:xml='urn:other'/>", .malformed),
        ErrorCase("<a xmlns:p='http://www.w3.org/XML/1998/namespace'/>", .malformed),
        ErrorCase("<a xmlns:xmlns='urn:x'/>", .malformed),
        ErrorCase("<xmlns:a/>", .malformed),
        ErrorCase("<?xml?><a/>", .malformed),
        ErrorCase("<?xml encoding='UTF-8'?><a/>", .malformed),
        ErrorCase("<?xml version='2.0'?><a/>", .malformed),
        ErrorCase("<?xml version='1.0' standalone='maybe'?><a/>", .malformed),
        ErrorCase("<?xml version='1.0' standalone='yes' encoding='UTF-8'?><a/>", .malformed),
        ErrorCase("<a/ >", .malformed),
        // doctypeForbidden
        ErrorCase("<!DOCTYPE a><a/>", .doctypeForbidden),
        ErrorCase("<?xml version='1.0'?>\n<!DOCTYPE a SYSTEM 'file:///etc/passwd'><a>&xxe;</a>", .doctypeForbidden),
        ErrorCase("<a><!DOCTYPE a></a>", .doctypeForbidden),
        ErrorCase("<a/><!DOCTYPE a>", .doctypeForbidden),
        // processingInstructionForbidden
        ErrorCase("<?pi data?><a/>", .processingInstructionForbidden),
        ErrorCase("<?xml-stylesheet href='x'?><a/>", .processingInstructionForbidden),
        ErrorCase("<a><?pi?></a>", .processingInstructionForbidden),
        ErrorCase("<a/><?pi?>", .processingInstructionForbidden),
        ErrorCase(" <?xml version='1.0'?><a/>", .processingInstructionForbidden),
        ErrorCase("<!-- c --><?xml version='1.0'?><a/>", .processingInstructionForbidden),
        // unboundPrefix
        ErrorCase("<p:a/>", .unboundPrefix),
        ErrorCase("<a p:x='1'/>", .unboundPrefix),
        ErrorCase("<a xmlns:p='urn:p'/><!-- --><p:b/>", .trailingContent),
        ErrorCase("<r><a xmlns:p='urn:p'/><p:b/></r>", .unboundPrefix),
        // duplicateAttribute
        ErrorCase("<a x='1' x='2'/>", .duplicateAttribute),
        ErrorCase("<a xmlns:p='urn:u' xmlns:q='urn:u' p:x='1' q:x='2'/>", .duplicateAttribute),
        ErrorCase("<a xmlns:p='urn:u' xmlns:p='urn:v'/>", .duplicateAttribute),
        ErrorCase("<a xmlns='urn:u' xmlns='urn:v'/>", .duplicateAttribute),
        // mismatchedEndTag
        ErrorCase("<a></b>", .mismatchedEndTag),
        ErrorCase("<a><b></a></b>", .mismatchedEndTag),
        ErrorCase("<p:a xmlns:p='urn:p' xmlns:q='urn:p'></q:a>", .mismatchedEndTag),
        ErrorCase("<ab></abc>", .mismatchedEndTag),
        ErrorCase("<abc></ab>", .mismatchedEndTag),
        ErrorCase("<p:b xmlns:p='urn:p'></p:bc>", .mismatchedEndTag),
        ErrorCase("<p:b xmlns:p='urn:p'></p:b:c>", .malformed),
        ErrorCase("<averyveryverylongelementname></averyveryverylongelementnamf>", .mismatchedEndTag),
        // invalidCharacter
        ErrorCase("<a>\u{01}</a>", .invalidCharacter),
        ErrorCase("<a x='\u{1B}'/>", .invalidCharacter),
        ErrorCase("<a>\u{0}</a>", .invalidCharacter),
        ErrorCase("<a><!-- \u{7} --></a>", .invalidCharacter),
        ErrorCase("<a>&#0;</a>", .invalidCharacter),
        ErrorCase("<a>&#x1;</a>", .invalidCharacter),
        ErrorCase("<a>&#xD800;</a>", .invalidCharacter),
        ErrorCase("<a>&#xFFFE;</a>", .invalidCharacter),
        ErrorCase("<a>&#x110000;</a>", .invalidCharacter),
        ErrorCase("<a>&#99999999999999999999999;</a>", .invalidCharacter),
        ErrorCase(bytes: Array("<a>".utf8) + [0xFF] + Array("</a>".utf8), .invalidCharacter),
        ErrorCase(bytes: Array("<a>".utf8) + [0xC0, 0x80] + Array("</a>".utf8), .invalidCharacter),
        ErrorCase(bytes: Array("<a>".utf8) + [0xED, 0xA0, 0x80] + Array("</a>".utf8), .invalidCharacter),
        ErrorCase(bytes: Array("<a>".utf8) + [0xEF, 0xBF, 0xBF] + Array("</a>".utf8), .invalidCharacter),
        ErrorCase(bytes: Array("<a>".utf8) + [0xF4, 0x90, 0x80, 0x80] + Array("</a>".utf8), .invalidCharacter),
        ErrorCase(bytes: Array("<a>".utf8) + [0xE2, 0x82] + Array("</a>".utf8), .invalidCharacter),
        ErrorCase(bytes: Array("<a x='".utf8) + [0x80] + Array("'/>".utf8), .invalidCharacter),
        ErrorCase(bytes: Array("<a".utf8) + [0xC3, 0x28] + Array("/>".utf8), .invalidCharacter),
        ErrorCase(bytes: Array("<a><![CDATA[".utf8) + [0xFE] + Array("]]></a>".utf8), .invalidCharacter),
        // unknownEntity
        ErrorCase("<a>&foo;</a>", .unknownEntity),
        ErrorCase("<a x='&nbsp;'/>", .unknownEntity),
        ErrorCase("<a>&AMP;</a>", .unknownEntity),
        // unsupportedEncoding
        ErrorCase("<?xml version='1.0' encoding='ISO-8859-1'?><a/>", .unsupportedEncoding),
        ErrorCase("<?xml version='1.0' encoding='UTF-16'?><a/>", .unsupportedEncoding),
        ErrorCase(bytes: [0xFF, 0xFE, 0x3C, 0x00, 0x61, 0x00, 0x2F, 0x00, 0x3E, 0x00], .unsupportedEncoding),
        ErrorCase(bytes: [0xFE, 0xFF, 0x00, 0x3C, 0x00, 0x61, 0x00, 0x2F, 0x00, 0x3E], .unsupportedEncoding),
        // mixedContent
        ErrorCase("<a>x<b/></a>", .mixedContent),
        ErrorCase("<a><b/>x</a>", .mixedContent),
        ErrorCase("<a><b/> <c/> &amp; </a>", .mixedContent),
        ErrorCase("<a><![CDATA[x]]><b/></a>", .mixedContent),
        ErrorCase("<a><b/><![CDATA[x]]></a>", .mixedContent),
        // trailingContent
        ErrorCase("<a/><b/>", .trailingContent),
        ErrorCase("<a/>x", .trailingContent),
        ErrorCase("<a></a>\n<!-- ok -->\n&amp;", .trailingContent),
        ErrorCase("<a/><![CDATA[x]]>", .trailingContent),
        // noRootElement
        ErrorCase("", .noRootElement),
        ErrorCase(" \n\t ", .noRootElement),
        ErrorCase("<?xml version='1.0' encoding='UTF-8'?>\n", .noRootElement),
        ErrorCase("<!-- only a comment -->", .noRootElement),
        ErrorCase(bytes: [0xEF, 0xBB, 0xBF], .noRootElement),
    ]

    @Test(arguments: cases)
    func minimalInputProducesCode(_ errorCase: ErrorCase) {
        #expect(errorCode(errorCase.input) == errorCase.code)
    }

    @Test func expectThrowsMatchesOnCodeOnly() {
        #expect(throws: XMLError(code: .truncated)) {
            try XMLReader.parse("<a><b>")
        }
        #expect(XMLError(code: .malformed, line: 3, detail: "x") == XMLError(code: .malformed))
        #expect(XMLError(code: .malformed) != XMLError(code: .truncated))
    }

    @Test func errorsCarryLineAndShortDetail() throws {
        let error = try #require(throws: XMLError.self) {
            try XMLReader.parse("<a>\n  <b>\n  </c>\n</a>")
        }
        #expect(error.code == .mismatchedEndTag)
        #expect(error.line == 3)
        #expect(error.detail == "expected </b> but found </c>")
        #expect(error.description == "XML error (mismatchedEndTag) at line 3: expected </b> but found </c>")

        let longName = String(repeating: "n", count: 1000)
        let unknown = try #require(throws: XMLError.self) {
            try XMLReader.parse("<a>\r\n\r\n&\(longName);</a>")
        }
        #expect(unknown.code == .unknownEntity)
        #expect(unknown.line == 3)
        #expect(unknown.detail.utf8.count < 100)
    }

    @Test func limitsAreEnforced() {
        var limits = XMLLimits()
        limits.maxDepth = 3
        #expect(errorCode("<a><b><c/></b></a>", limits: limits) == nil)
        #expect(errorCode("<a><b><c><d/></c></b></a>", limits: limits) == .limitExceeded)

        limits = XMLLimits()
        limits.maxElements = 3
        #expect(errorCode("<a><b/><c/></a>", limits: limits) == nil)
        #expect(errorCode("<a><b/><c/><d/></a>", limits: limits) == .limitExceeded)

        limits = XMLLimits()
        limits.maxAttributesPerElement = 2
        #expect(errorCode("<a x='1' xmlns:p='urn:p'/>", limits: limits) == nil)
        #expect(errorCode("<a x='1' y='2' xmlns:p='urn:p'/>", limits: limits) == .limitExceeded)

        limits = XMLLimits()
        limits.maxNameLength = 8
        #expect(errorCode("<ab:cdefg xmlns:ab='urn:a'/>", limits: limits) == nil)
        #expect(errorCode("<ab:cdefgh xmlns:ab='urn:a'/>", limits: limits) == .limitExceeded)
        #expect(errorCode("<a abcdefghi='1'/>", limits: limits) == .limitExceeded)

        limits = XMLLimits()
        limits.maxTextBytes = 4
        #expect(errorCode("<a>abcd</a>", limits: limits) == nil)
        #expect(errorCode("<a>abcde</a>", limits: limits) == .limitExceeded)
        #expect(errorCode("<a>ab<!-- -->cde</a>", limits: limits) == .limitExceeded)
        #expect(errorCode("<a>ab&amp;de</a>", limits: limits) == .limitExceeded)
        #expect(errorCode("<a x='abcde'/>", limits: limits) == .limitExceeded)

        limits = XMLLimits()
        limits.maxDocumentBytes = 10
        #expect(errorCode("<a>1234</a>", limits: limits) == .limitExceeded)
        #expect(errorCode("<a>123</a>", limits: limits) == nil)
    }

    @Test func limitDetailNamesTheLimit() throws {
        let error = try #require(throws: XMLError.self) {
            try XMLReader.parse(String(repeating: "<a>", count: 65))
        }
        #expect(error.code == .limitExceeded)
        #expect(error.detail.contains("maxDepth"))
    }

    @Test func everyTruncationOfTheEnvelopeFails() throws {
        let bytes = Array(Fixtures.envelope.utf8)
        let closing = Array("</env:Envelope>".utf8)
        let rootEnd = try #require(
            (0...(bytes.count - closing.count)).last { Array(bytes[$0..<($0 + closing.count)]) == closing }
        ) + closing.count
        let rootStart = try #require(
            (0..<bytes.count).first { bytes[$0] == UInt8(ascii: "<") && bytes[$0 + 1] == UInt8(ascii: "e") }
        )
        for length in 0..<bytes.count {
            let code = errorCode(Array(bytes[0..<length]))
            if length >= rootEnd {
                #expect(code == nil, "prefix of \(length) bytes contains the whole root element")
            } else if length > rootStart {
                #expect(code == .truncated, "prefix of \(length) bytes")
            } else {
                #expect(code == .truncated || code == .noRootElement, "prefix of \(length) bytes")
            }
        }
    }

    @Test func billionLaughsIsRejectedWithoutExpansion() {
        let lol = """
            <?xml version="1.0"?>
            <!DOCTYPE lolz [
              <!ENTITY lol "lol">
              <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
              <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
              <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
              <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
              <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
              <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
              <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
              <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
              <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
            ]>
            <lolz>&lol9;</lolz>
            """
        #expect(errorCode(lol) == .doctypeForbidden)
        // Without the DTD the reference is simply unknown.
        #expect(errorCode("<lolz>&lol9;</lolz>") == .unknownEntity)
    }

    @Test func deepNestingIsRejectedQuickly() {
        let deep = String(repeating: "<a>", count: 100_000) + String(repeating: "</a>", count: 100_000)
        let clock = ContinuousClock()
        var code: XMLError.Code?
        let elapsed = clock.measure {
            code = errorCode(deep)
        }
        #expect(code == .limitExceeded)
        #expect(elapsed < .milliseconds(200))

        // Also when the caller raises the depth limit: still iterative, so no stack overflow while parsing.
        var limits = XMLLimits()
        limits.maxDepth = 200_000
        #expect(errorCode(String(repeating: "<a>", count: 100_000), limits: limits) == .truncated)
    }

    @Test func oversizedDocumentIsRejectedBeforeParsing() throws {
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 5 << 20)
        let document = Array("<a>".utf8) + body + Array("</a>".utf8)
        let clock = ContinuousClock()
        var thrown: XMLError?
        let elapsed = clock.measure {
            thrown = #expect(throws: XMLError.self) { try XMLReader.parse(document) }
        }
        #expect(thrown?.code == .limitExceeded)
        #expect(thrown?.detail.contains("maxDocumentBytes") == true)
        #expect(elapsed < .milliseconds(50))

        let asString = String(decoding: document, as: UTF8.self)
        #expect(throws: XMLError(code: .limitExceeded)) { try XMLReader.parse(asString) }
    }

    @Test func fuzzedEnvelopesNeverCrash() throws {
        let original = Array(Fixtures.envelope.utf8)
        let interesting: [UInt8] = Array("<>/&;:=\"'![]-?#x \n\r\t".utf8) + [0x00, 0x01, 0x80, 0xBF, 0xC3, 0xE2, 0xF0, 0xFF]
        var random = SplitMix64(seed: 0x5347_5030_32)
        var successes = 0
        for _ in 0..<2000 {
            var bytes = original
            for _ in 0..<(1 + random.next(below: 4)) {
                guard !bytes.isEmpty else { break }
                let index = random.next(below: bytes.count)
                switch random.next(below: 6) {
                case 0:
                    bytes[index] = interesting[random.next(below: interesting.count)]
                case 1:
                    bytes[index] = UInt8(truncatingIfNeeded: random.next())
                case 2:
                    let length = min(random.next(below: 32) + 1, bytes.count - index)
                    bytes.removeSubrange(index..<(index + length))
                case 3:
                    bytes.insert(interesting[random.next(below: interesting.count)], at: index)
                case 4:
                    let length = min(random.next(below: 64) + 1, bytes.count - index)
                    let chunk = bytes[index..<(index + length)]
                    bytes.insert(contentsOf: chunk, at: random.next(below: bytes.count))
                default:
                    bytes.removeSubrange(index...)
                }
            }
            let root: XMLElement
            do {
                root = try XMLReader.parse(bytes)
            } catch {
                #expect(!error.detail.isEmpty)
                #expect(error.line >= 1)
                continue
            }
            successes += 1
            // Whatever parses must survive a write/read round trip unchanged.
            let reparsed = try XMLReader.parse(root.serialized())
            #expect(reparsed.stripped == root.stripped)
        }
        #expect(successes > 0)
    }
}
