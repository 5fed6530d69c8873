import M2MXML
import Testing

@Suite struct XMLReaderTests {
    @Test func parsesSOAPEnvelope() throws {
        let root = try XMLReader.parse(Fixtures.envelope)
        #expect(root.name == XMLName(NS.env, "Envelope"))
        #expect(root.prefix == "env")
        #expect(root.line == 2)
        #expect(root.attributes.isEmpty, "namespace declarations are not attributes")
        #expect(root.children.map(\.name.localName) == ["Header", "Body"])
        #expect(root.text == "")

        let header = try #require(root.child("Header"))
        let from = try #require(header.child("From"))
        #expect(from.name == XMLName(NS.wsa, "From"))
        #expect(from.text == "", "whitespace between children is dropped")
        #expect(
            from.child("Address")?.text
                == "http://smdp.example.com/ES3?EntityId=1.3.6.1.4.1.31746.1&EntityName=SM-DP"
        )
        let to = try #require(header.child("To"))
        #expect(to.attribute(XMLName(NS.env, "mustUnderstand")) == "true")
        #expect(to.attribute("mustUnderstand") == nil, "prefixed attribute is not unqualified")
        #expect(header.child("MessageDate")?.name == XMLName(NS.rps, "MessageDate"))

        let request = try #require(root.child("Body")?.child("ES3-DownloadProfileRequest"))
        #expect(request.name.namespace == NS.rps)
        #expect(request.child("Eid")?.text == "89001012012341234012345678901224")
        let profileType = try #require(request.child("ProfileType"))
        #expect(profileType.text == "Operational Profile – “Café” ✓")
        #expect(profileType.attribute(XMLName(NS.xml, "lang")) == "en")
        #expect(request.child("ProfileData")?.attribute(XMLName(NS.wsa, "IsReferenceParameter")) == "false")
        #expect(request.child("Note")?.text == "raw <data> & more")
        #expect(request.child("Empty")?.text == "")
        #expect(request.child("Empty")?.children.isEmpty == true)
    }

    @Test func bytesAndStringInputAgree() throws {
        let fromString = try XMLReader.parse(Fixtures.envelope)
        let fromBytes = try XMLReader.parse(Array(Fixtures.envelope.utf8))
        #expect(fromString == fromBytes)
    }

    @Test func defaultNamespaces() throws {
        let root = try XMLReader.parse(Fixtures.defaultNamespaceEnvelope)
        #expect(root.name == XMLName(NS.env, "Envelope"))
        #expect(root.prefix == nil)
        let header = try #require(root.child("Header"))
        #expect(header.name == XMLName(NS.env, "Header"))
        let response = try #require(root.child("Body")?.child("DownloadProfileResponse"))
        #expect(response.name == XMLName(NS.rps, "DownloadProfileResponse"))
        #expect(response.attribute("Version") == "1", "default namespace does not apply to attributes")
        #expect(response.attributes == [XMLAttribute(name: XMLName("", "Version"), value: "1")])
        #expect(response.child("Status")?.name == XMLName(NS.rps, "Status"))
        let plain = try #require(response.child("Plain"))
        #expect(plain.name == XMLName("", "Plain"))
        #expect(plain.child("Item")?.name == XMLName("", "Item"))
    }

    @Test func namespaceScopingAndRedeclaration() throws {
        let root = try XMLReader.parse(
            """
            <p:a xmlns:p="urn:one"><p:b xmlns:p="urn:two"><p:c/></p:b><p:d/></p:a>
            """
        )
        #expect(root.name == XMLName("urn:one", "a"))
        #expect(root.children[0].name == XMLName("urn:two", "b"))
        #expect(root.children[0].children[0].name == XMLName("urn:two", "c"))
        #expect(root.children[1].name == XMLName("urn:one", "d"), "binding restored after </p:b>")
    }

    @Test func namespacesOnAttributes() throws {
        let root = try XMLReader.parse(
            """
            <a xmlns="urn:default" xmlns:p="urn:p" xmlns:q='urn:q' x="1" p:x="2" q:y="3" xml:lang="fr" />
            """
        )
        #expect(root.name == XMLName("urn:default", "a"))
        #expect(
            root.attributes == [
                XMLAttribute(name: XMLName("", "x"), value: "1"),
                XMLAttribute(name: XMLName("urn:p", "x"), value: "2"),
                XMLAttribute(name: XMLName("urn:q", "y"), value: "3"),
                XMLAttribute(name: XMLName(NS.xml, "lang"), value: "fr"),
            ]
        )
        #expect(root.attribute("x") == "1")
        #expect(root.attribute(XMLName("urn:p", "x")) == "2")
        #expect(root.attribute("y") == nil)
    }

    @Test func declarationAfterUseInSameTagStillApplies() throws {
        let root = try XMLReader.parse(#"<p:a p:x="1" xmlns:p="urn:p"/>"#)
        #expect(root.name == XMLName("urn:p", "a"))
        #expect(root.attribute(XMLName("urn:p", "x")) == "1")
    }

    @Test func namespaceURIStringsAreShared() throws {
        let root = try XMLReader.parse(Fixtures.envelope)
        func storage(_ s: String) -> UnsafePointer<UInt8>? {
            s.utf8.withContiguousStorageIfAvailable { $0.baseAddress } ?? nil
        }
        let header = try #require(root.child("Header"))
        let body = try #require(root.child("Body"))
        #expect(storage(root.name.namespace) == storage(header.name.namespace))
        #expect(storage(root.name.namespace) == storage(body.name.namespace))

        // Separate declarations of the same URI are interned too.
        let siblings = try XMLReader.parse(
            #"<r><a xmlns="urn:example:a-rather-long-namespace"/><b xmlns="urn:example:a-rather-long-namespace"/></r>"#
        )
        #expect(storage(siblings.children[0].name.namespace) == storage(siblings.children[1].name.namespace))
    }

    @Test func entitiesAndCharacterReferences() throws {
        let root = try XMLReader.parse(
            #"<a v="&lt;&amp;&gt;&quot;&apos;&#65;&#x42;&#xe9;">&lt;&gt;&amp;&apos;&quot;|&#233;|&#x1F600;|&#x41;</a>"#
        )
        #expect(root.attribute("v") == "<&>\"'ABé")
        #expect(root.text == "<>&'\"|é|😀|A")
    }

    @Test func lineEndingsAndAttributeNormalisation() throws {
        let root = try XMLReader.parse("<a v=\"1\t2\n3\r\n4\r5&#xA;6&#x9;7&#xD;8\">l1\r\nl2\rl3\nl4&#xD;</a>")
        #expect(root.attribute("v") == "1 2 3 4 5\n6\t7\r8")
        #expect(root.text == "l1\nl2\nl3\nl4\r")
    }

    @Test func cdataSections() throws {
        let root = try XMLReader.parse("<a>x<![CDATA[<b>&amp;]]]]><![CDATA[>\r\n]]>y&amp;</a>")
        #expect(root.text == "x<b>&amp;]]>\ny&")
        let empty = try XMLReader.parse("<a><![CDATA[]]></a>")
        #expect(empty.text == "")
        let whitespace = try XMLReader.parse("<a><![CDATA[ ]]><b/></a>")
        #expect(whitespace.children.count == 1)
    }

    @Test func commentsAreSkipped() throws {
        let root = try XMLReader.parse(
            """
            <!-- before --><!---->
            <a><!-- first --><b>te<!-- in text -->xt</b><!-- - single hyphens - are fine --></a>
            <!-- after -->
            """
        )
        #expect(root.children.count == 1)
        #expect(root.children[0].text == "text")
    }

    @Test func leafTextKeepsWhitespace() throws {
        let root = try XMLReader.parse("<a><b>  padded  </b><c>\n</c><d> </d></a>")
        #expect(root.children.map(\.text) == ["  padded  ", "\n", " "])
    }

    @Test func prologVariants() throws {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        #expect(try XMLReader.parse(bom + Array("<a/>".utf8)).name.localName == "a")
        #expect(try XMLReader.parse(bom + Array("<?xml version=\"1.0\"?><a/>".utf8)).name.localName == "a")
        #expect(try XMLReader.parse("<?xml version=\"1.0\" encoding=\"UTF8\"?>\n<a/>").name.localName == "a")
        #expect(try XMLReader.parse("<?xml version = '1.1' standalone='no' ?><a/>").name.localName == "a")
        #expect(try XMLReader.parse("\n\n  <a/>\n\n").line == 3)
        #expect(try XMLReader.parse("<a\n/>").name.localName == "a")
        #expect(try XMLReader.parse("<a  x = 'y' ></a >").attribute("x") == "y")
    }

    @Test func nonASCIINamesAndLines() throws {
        let root = try XMLReader.parse("<données>\r\n  <élément attr-1.x='ü'>ok</élément>\r<x/></données>")
        #expect(root.name.localName == "données")
        #expect(root.children[0].name.localName == "élément")
        #expect(root.children[0].attribute("attr-1.x") == "ü")
        #expect(root.children[0].line == 2)
        #expect(root.children[1].line == 3)
    }

    @Test func lineNumbersWithMixedLineEndings() throws {
        var random = SplitMix64(seed: 2024)
        let breaks = ["\n", "\r\n", "\r", "  ", "\t", "\r\n\r\n", "\n\r"]
        for _ in 0..<50 {
            var document = "<root>"
            for index in 0..<40 {
                for _ in 0..<random.next(below: 4) {
                    document += breaks[random.next(below: breaks.count)]
                    document += String(repeating: " ", count: random.next(below: 12))
                }
                document += "<e\(index) a='x'/>"
            }
            document += "</root>"

            // Naive reference: LF, CRLF and lone CR each end a line.
            let bytes = Array(document.utf8)
            var expected: [Int] = []
            var line = 1
            for (offset, byte) in bytes.enumerated() {
                if byte == UInt8(ascii: "<") && bytes[offset + 1] == UInt8(ascii: "e") {
                    expected.append(line)
                }
                if byte == 0x0A || (byte == 0x0D && bytes[offset + 1] != 0x0A) {
                    line += 1
                }
            }
            let root = try XMLReader.parse(document)
            #expect(root.children.map(\.line) == expected)
        }
    }

    @Test func limitsCanBeRaised() throws {
        var limits = XMLLimits()
        limits.maxDepth = 200
        let deep = String(repeating: "<a>", count: 150) + String(repeating: "</a>", count: 150)
        var element = try XMLReader.parse(deep, limits: limits)
        var depth = 1
        while let child = element.children.first {
            element = child
            depth += 1
        }
        #expect(depth == 150)
    }
}
