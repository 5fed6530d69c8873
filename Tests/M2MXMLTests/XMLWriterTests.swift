import M2MXML
import Testing

@Suite struct XMLWriterTests {
    @Test func indentedFormatting() {
        var writer = XMLWriter()
        writer.startElement("env:Envelope", attributes: [("xmlns:env", NS.env)])
        writer.startElement("env:Header")
        writer.endElement()
        writer.startElement("env:Body")
        writer.leaf("m:Value", "42", attributes: [("m:unit", "s"), ("id", "1")])
        writer.leaf("m:Empty", "")
        writer.endElement()
        writer.endElement()
        #expect(
            writer.string == """
                <?xml version="1.0" encoding="UTF-8"?>
                <env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">
                  <env:Header/>
                  <env:Body>
                    <m:Value m:unit="s" id="1">42</m:Value>
                    <m:Empty/>
                  </env:Body>
                </env:Envelope>

                """
        )
        #expect(writer.bytes == Array(writer.string.utf8))
    }

    @Test func compactFormatting() {
        var writer = XMLWriter(declaration: false, indent: 0)
        writer.startElement("a")
        writer.startElement("b")
        writer.text("x")
        writer.text("y")
        writer.endElement()
        writer.leaf("c", "")
        writer.endElement()
        #expect(writer.string == "<a><b>xy</b><c/></a>")

        var declared = XMLWriter(declaration: true, indent: 0)
        declared.leaf("a", "1")
        #expect(declared.string == "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>1</a>")

        var wide = XMLWriter(declaration: false, indent: 4)
        wide.startElement("a")
        wide.leaf("b", "1")
        wide.endElement()
        #expect(wide.string == "<a>\n    <b>1</b>\n</a>\n")
    }

    @Test func unclosedElementsAreClosedInOutput() {
        var writer = XMLWriter(declaration: false, indent: 0)
        writer.startElement("a")
        writer.leaf("b", "1")
        #expect(writer.string == "<a><b>1</b></a>")
        writer.leaf("c", "2")
        writer.endElement()
        #expect(writer.string == "<a><b>1</b><c>2</c></a>")
    }

    @Test func escaping() {
        #expect(XMLWriter.escapeText("<&>\"'\r\n\t") == "&lt;&amp;&gt;\"'&#xD;\n\t")
        #expect(XMLWriter.escapeAttribute("<&>\"'\r\n\t") == "&lt;&amp;>&quot;'&#xD;&#xA;&#x9;")
        #expect(XMLWriter.escapeText("plain ✓ 😀") == "plain ✓ 😀")
        #expect(XMLWriter.escapeText("") == "")
    }

    static let trickyStrings: [String] = [
        "<&>\"'\r\n\t",
        "\r\n",
        "\r",
        "  leading and trailing  ",
        "]]>",
        "a]]>b<![CDATA[c",
        "naïve café – Ünïcødé",
        "emoji 😀👍🏽🇫🇷 mixed",
        "&amp; already escaped &#x41;",
        "line1\nline2\r\nline3\rline4",
        "tab\tseparated\tvalues",
        "\u{7F}\u{85}\u{2028}\u{FFFD}",
    ]

    @Test(arguments: trickyStrings)
    func trickyStringsRoundTrip(_ value: String) throws {
        var writer = XMLWriter()
        writer.startElement("r", attributes: [("single", value), ("xmlns:p", "urn:p"), ("p:q", value)])
        writer.leaf("t", value, attributes: [("a", value)])
        writer.endElement()
        let root = try XMLReader.parse(writer.bytes)
        #expect(root.attribute("single") == value)
        #expect(root.attribute(XMLName("urn:p", "q")) == value)
        #expect(root.children.first?.text == value)
        #expect(root.children.first?.attribute("a") == value)
    }

    @Test func writerOutputParsesToTheExpectedTree() throws {
        var writer = XMLWriter()
        writer.startElement(
            "env:Envelope",
            attributes: [("xmlns:env", NS.env), ("xmlns:wsa", NS.wsa), ("xmlns:rps", NS.rps)]
        )
        writer.startElement("env:Header")
        writer.leaf("wsa:To", "http://smsr.example.com/ES3?a=1&b=2", attributes: [("env:mustUnderstand", "true")])
        writer.endElement()
        writer.startElement("env:Body")
        writer.startElement("rps:Response", attributes: [("xmlns", "urn:default")])
        writer.leaf("Status", "Executed-Success")
        writer.endElement()
        writer.endElement()
        writer.endElement()

        let root = try XMLReader.parse(writer.bytes)
        let expected = XMLElement(
            name: XMLName(NS.env, "Envelope"),
            children: [
                XMLElement(
                    name: XMLName(NS.env, "Header"),
                    children: [
                        XMLElement(
                            name: XMLName(NS.wsa, "To"),
                            attributes: [XMLAttribute(name: XMLName(NS.env, "mustUnderstand"), value: "true")],
                            text: "http://smsr.example.com/ES3?a=1&b=2"
                        )
                    ]
                ),
                XMLElement(
                    name: XMLName(NS.env, "Body"),
                    children: [
                        XMLElement(
                            name: XMLName(NS.rps, "Response"),
                            children: [XMLElement(name: XMLName("urn:default", "Status"), text: "Executed-Success")]
                        )
                    ]
                ),
            ]
        )
        #expect(root.stripped == expected)
    }

    @Test(arguments: ["prefixed", "default namespace"])
    func envelopeRoundTrip(_ variant: String) throws {
        let root = try XMLReader.parse(variant == "prefixed" ? Fixtures.envelope : Fixtures.defaultNamespaceEnvelope)
        let preferred = [NS.env: "env", NS.wsa: "wsa", NS.rps: "rps"]
        for indent in [0, 2] {
            let bytes = root.serialized(preferredPrefixes: preferred, indent: indent)
            let reparsed = try XMLReader.parse(bytes)
            #expect(reparsed.stripped == root.stripped)
            // Serialising the re-parsed tree is a fixed point.
            #expect(reparsed.serialized(preferredPrefixes: preferred, indent: indent) == bytes)
        }
    }

    @Test func serializedUsesPreferredPrefixes() throws {
        let root = try XMLReader.parse(Fixtures.envelope)
        let text = String(
            decoding: root.serialized(preferredPrefixes: [NS.env: "env", NS.wsa: "wsa", NS.rps: "rps"]),
            as: UTF8.self
        )
        #expect(text.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<env:Envelope xmlns:env=\"\(NS.env)\" xmlns:wsa=\"\(NS.wsa)\" xmlns:rps=\"\(NS.rps)\">\n  <env:Header>\n"))
        #expect(text.contains("\n      <rps:Eid>89001012012341234012345678901224</rps:Eid>\n"))
        #expect(text.contains("<rps:Note>raw &lt;data&gt; &amp; more</rps:Note>"))
        #expect(text.contains("<rps:ProfileType xml:lang=\"en\">"))
        #expect(text.contains("<rps:Empty/>"))
        #expect(text.hasSuffix("</env:Envelope>\n"))
    }

    @Test func serializedBodyElementDeclaresExactlyWhatItUses() throws {
        let root = try XMLReader.parse(Fixtures.envelope)
        let request = try #require(root.child("Body")?.child("ES3-DownloadProfileRequest"))

        let bytes = request.serialized(preferredPrefixes: [NS.env: "env", NS.rps: "rps", NS.wsa: "wsa"], indent: 0)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(
            text.hasPrefix(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rps:ES3-DownloadProfileRequest xmlns:rps=\"\(NS.rps)\" xmlns:wsa=\"\(NS.wsa)\"><rps:FunctionCallIdentifier>"
            )
        )
        #expect(!text.contains("xmlns:env"))
        #expect(!text.contains("\n", after: 40))
        #expect(try XMLReader.parse(bytes).stripped == request.stripped)

        // Without preferences the fallback prefixes are generated in order of first use.
        let fallback = String(decoding: request.serialized(declaration: false, indent: 0), as: UTF8.self)
        #expect(fallback.hasPrefix("<ns0:ES3-DownloadProfileRequest xmlns:ns0=\"\(NS.rps)\" xmlns:ns1=\"\(NS.wsa)\">"))
        #expect(try XMLReader.parse(fallback).stripped == request.stripped)

        // A leaf in no namespace needs no declaration at all.
        let leaf = XMLElement(name: XMLName("", "x"), text: "1")
        #expect(leaf.serialized(declaration: false) == Array("<x>1</x>\n".utf8))
    }

    @Test func serializedWithDefaultNamespace() throws {
        let tree = XMLElement(
            name: XMLName("urn:a", "root"),
            attributes: [
                XMLAttribute(name: XMLName("urn:a", "attr"), value: "1"),
                XMLAttribute(name: XMLName("", "plain"), value: "2"),
            ],
            children: [
                XMLElement(name: XMLName("urn:a", "child"), text: "x"),
                XMLElement(
                    name: XMLName("", "local"),
                    children: [XMLElement(name: XMLName("urn:a", "back"), text: "y")]
                ),
                XMLElement(name: XMLName("urn:b", "other"), text: "z"),
            ]
        )
        let bytes = tree.serialized(preferredPrefixes: ["urn:a": "", "urn:b": "ns0"], declaration: false, indent: 0)
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == #"<root xmlns="urn:a" xmlns:ns1="urn:a" xmlns:ns0="urn:b" ns1:attr="1" plain="2"><child>x</child><local xmlns=""><back xmlns="urn:a">y</back></local><ns0:other>z</ns0:other></root>"#
        )
        #expect(try XMLReader.parse(bytes).stripped == tree)
    }

    @Test func serializedIgnoresInvalidOrConflictingPreferences() throws {
        let tree = XMLElement(
            name: XMLName("urn:a", "a"),
            children: [
                XMLElement(name: XMLName("urn:b", "b")),
                XMLElement(name: XMLName("urn:c", "c")),
            ]
        )
        let bytes = tree.serialized(
            preferredPrefixes: ["urn:a": "p", "urn:b": "p", "urn:c": "xml"],
            declaration: false,
            indent: 0
        )
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == #"<p:a xmlns:p="urn:a" xmlns:ns0="urn:b" xmlns:ns1="urn:c"><ns0:b/><ns1:c/></p:a>"#
        )
        #expect(try XMLReader.parse(bytes).stripped == tree)
    }
}

extension String {
    fileprivate func contains(_ character: Character, after offset: Int) -> Bool {
        dropFirst(offset).contains(character)
    }
}
