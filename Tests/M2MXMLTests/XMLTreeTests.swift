// The compact tree behind XMLElement: random documents written with XMLWriter parse back to exactly the
// model they were written from (children found through the tree's links, attributes resolved late,
// text kept as slices or decoded), serialise to the writer's own bytes, and the reading-without-strings
// API agrees with the String API.

import M2MXML
import Testing

/// An independent model of a document: what the tree must reproduce.
private indirect enum Model {
    case leaf(name: String, attributes: [(String, String)], text: String)
    case parent(name: String, attributes: [(String, String)], children: [Model])

    var name: String {
        switch self {
        case .leaf(let name, _, _), .parent(let name, _, _): name
        }
    }

    static func random(_ random: inout SplitMix64, depth: Int) -> Model {
        let names = ["a", "Eid", "FunctionCallIdentifier", "x-y.z", "n_1", "ProfileInfo", "données"]
        let texts = ["", " ", "1", "89049032000000000000000000001230", "a & b < c > d", "line\r\nbreak", "ünï ✓", "  pad  "]
        let name = names[random.next(below: names.count)]
        var attributes: [(String, String)] = []
        for index in 0..<random.next(below: 3) {
            attributes.append(("at\(index)", texts[random.next(below: texts.count)] + "\t\"q\""))
        }
        if depth > 0 && random.next(below: 3) > 0 {
            var children: [Model] = []
            for _ in 0..<(1 + random.next(below: 4)) {
                children.append(Model.random(&random, depth: depth - 1))
            }
            return .parent(name: name, attributes: attributes, children: children)
        }
        return .leaf(name: name, attributes: attributes, text: texts[random.next(below: texts.count)])
    }

    func write(to writer: inout XMLWriter, root: Bool) {
        switch self {
        case .leaf(let name, let attributes, let text):
            writer.startElement("p:" + name)
            if root { writer.attribute("xmlns:p", "urn:p") }
            for (key, value) in attributes { writer.attribute(key, value) }
            writer.text(text)
            writer.endElement()
        case .parent(let name, let attributes, let children):
            writer.startElement("p:" + name)
            if root { writer.attribute("xmlns:p", "urn:p") }
            for (key, value) in attributes { writer.attribute(key, value) }
            for child in children { child.write(to: &writer, root: false) }
            writer.endElement()
        }
    }

    /// Whether a parsed element holds exactly this model (XMLWriter escapes what XML would normalise, so text and
    /// attribute values come back unchanged).
    func matches(_ element: XMLElement) -> Bool {
        guard element.name == XMLName("urn:p", name), element.hasLocalName(name), element.isInNamespace("urn:p"),
            element.prefix == "p"
        else { return false }
        let expectedAttributes: [(String, String)]
        switch self {
        case .leaf(_, let attributes, let text):
            expectedAttributes = attributes
            guard element.isLeaf, element.children.isEmpty, element.text == text,
                element.withUnsafeText({ Array($0) }) == Array(text.utf8)
            else { return false }
        case .parent(_, let attributes, let children):
            expectedAttributes = attributes
            guard !element.isLeaf, element.text == "", element.children.count == children.count else { return false }
            for (model, child) in zip(children, element.children) where !model.matches(child) {
                return false
            }
        }
        return element.attributes == expectedAttributes.map { XMLAttribute(name: XMLName("", $0.0), value: $0.1) }
            && expectedAttributes.allSatisfy { element.attribute($0.0) == $0.1 }
    }
}

@Suite struct XMLTreeTests {
    @Test func randomDocumentsRoundTripThroughTheTree() throws {
        var random = SplitMix64(seed: 0x5EED)
        for round in 0..<200 {
            let model = Model.random(&random, depth: 4)
            for indent in [0, 2] {
                var writer = XMLWriter(indent: indent)
                model.write(to: &writer, root: true)
                let bytes = writer.bytes
                let root = try XMLReader.parse(bytes)
                #expect(model.matches(root), "round \(round), indent \(indent): \(writer.string)")
                // The tree writes back the writer's own bytes, and a copy of it is equal.
                #expect(root.serialized(preferredPrefixes: ["urn:p": "p"], indent: indent) == bytes)
                #expect(XMLElement(name: root.name, prefix: "p", attributes: root.attributes, children: Array(root.children),
                                   text: root.text, line: root.line) == root)
            }
        }
    }

    @Test func constructedTreesKeepParsedSubtreesAndTheirLines() throws {
        let parsed = try XMLReader.parse("<r xmlns='urn:a'>\n  <a k='v'>\n    <b>1</b>\n  </a>\n  <c/>\n</r>")
        let a = try #require(parsed.children.first)
        #expect(a.line == 2 && a.children[0].line == 3 && parsed.children[1].line == 5)
        let built = XMLElement(name: XMLName("urn:b", "wrapper"), children: [a, parsed.children[1], a])
        #expect(built.line == 0)
        #expect(built.children.count == 3)
        #expect(built.children[0] == a && built.children[2] == a)
        #expect(built.children[0].line == 2 && built.children[0].children[0].line == 3 && built.children[1].line == 5)
        #expect(built.children[0].attribute("k") == "v")
        #expect(built.children[0].children[0].text == "1")
        #expect(
            String(decoding: built.serialized(declaration: false, indent: 0), as: UTF8.self)
                == #"<ns0:wrapper xmlns:ns0="urn:b" xmlns:ns1="urn:a"><ns1:a k="v"><ns1:b>1</ns1:b></ns1:a><ns1:c/><ns1:a k="v"><ns1:b>1</ns1:b></ns1:a></ns0:wrapper>"#
        )
        // Equality looks at the diagnostics too (line, prefix), so a copy is equal and a moved one is not.
        #expect(XMLElement(name: a.name, attributes: a.attributes, children: Array(a.children), line: 2) == a)
        #expect(XMLElement(name: a.name, attributes: a.attributes, children: Array(a.children), line: 9) != a)
    }

    @Test func knownNamespacesAreSharedWithTheCaller() throws {
        let uri = "urn:example:a-namespace-long-enough-to-be-allocated"
        func storage(_ s: String) -> UnsafePointer<UInt8>? {
            s.utf8.withContiguousStorageIfAvailable { $0.baseAddress } ?? nil
        }
        let root = try XMLReader.parse("<a xmlns='urn:example:a-namespace-long-enough-to-be-allocated'/>", knownNamespaces: [uri])
        #expect(root.namespace == uri)
        #expect(storage(root.namespace) == storage(uri))
        #expect(root.isInNamespace(uri) && !root.isInNamespace("urn:other"))
        // Without it, an equal but separate string.
        let other = try XMLReader.parse("<a xmlns='urn:example:a-namespace-long-enough-to-be-allocated'/>")
        #expect(other.namespace == uri)
        #expect(storage(other.namespace) != storage(uri))
    }

    @Test func readingWithoutStrings() throws {
        let root = try XMLReader.parse("<Root><FunctionCallIdentifier>fc&amp;1</FunctionCallIdentifier><e/></Root>")
        let child = root.children[0]
        #expect(child.hasLocalName("FunctionCallIdentifier"))
        #expect(!child.hasLocalName("functioncallidentifier"))
        #expect(child.hasLocalName("functioncallidentifier", ignoringASCIICase: true))
        #expect(!child.hasLocalName("FunctionCallIdentifie", ignoringASCIICase: true))
        #expect(child.isInNamespace(""))
        #expect(child.withUnsafeText { String(decoding: $0, as: UTF8.self) } == "fc&1")
        #expect(child.isLeaf && !root.isLeaf && root.children[1].isLeaf)
        #expect(root.children.map(\.localName) == ["FunctionCallIdentifier", "e"])
        #expect(root.description == "<Root><FunctionCallIdentifier>fc&amp;1</FunctionCallIdentifier><e/></Root>")
    }

    @Test func nameCharactersAreExactlyTheXMLSubsetOnes() {
        for byte in UInt8(0x21)...UInt8(0x7E) {
            let character = Character(Unicode.Scalar(byte))
            let isNameByte = character.isASCII && (character.isLetter || character.isNumber || "._-".contains(character))
            let name = "a\(character)b"
            let parsed = try? XMLReader.parse(Array("<\(name)/>".utf8))
            #expect((parsed?.localName == name) == isNameByte, "\(character)")
        }
    }

    @Test func textSplitByCommentsAndCDATAIsJoined() throws {
        let root = try XMLReader.parse("<a><b>one<!-- c --> two<![CDATA[ <3 ]]>&amp;</b><c>\r\n</c>\n  <d> </d></a>")
        #expect(root.children.map(\.text) == ["one two <3 &", "\n", " "])
    }
}

@Suite struct XMLWriterAPITests {
    @Test func attributesLeavesAndBytes() {
        var writer = XMLWriter(declaration: false, indent: 0)
        writer.startElement("r")
        writer.attribute("a", "1 & \"2\"\n")
        writer.leaf("x", utf8: UnsafeBufferPointer(start: nil, count: 0))
        Array("<y>".utf8).withUnsafeBufferPointer { writer.leaf("y", utf8: $0) }
        writer.startElement("z")
        Array("a\rb".utf8).withUnsafeBufferPointer { writer.text(utf8: $0) }
        writer.endElement()
        writer.endElement()
        #expect(writer.string == #"<r a="1 &amp; &quot;2&quot;&#xA;"><x/><y>&lt;y&gt;</y><z>a&#xD;b</z></r>"#)
    }

    @Test func copiesOfAWriterDoNotShareOutput() {
        var first = XMLWriter(declaration: false, indent: 2)
        first.startElement("a")
        first.leaf("b", "1")
        var second = first
        second.leaf("c", "2")
        second.endElement()
        first.leaf("d", "3")
        #expect(first.string == "<a>\n  <b>1</b>\n  <d>3</d>\n</a>\n")
        #expect(second.string == "<a>\n  <b>1</b>\n  <c>2</c>\n</a>\n")
        // Reading the bytes of an unfinished writer leaves it unchanged.
        #expect(first.string == first.string)
        first.endElement()
        #expect(first.string == "<a>\n  <b>1</b>\n  <d>3</d>\n</a>\n")
    }

    @Test func deepNestingPastSixtyFourLevels() throws {
        var writer = XMLWriter(declaration: false, indent: 1)
        for _ in 0..<100 { writer.startElement("e") }
        writer.leaf("leaf", "x")
        for _ in 0..<100 { writer.endElement() }
        var limits = XMLLimits()
        limits.maxDepth = 200
        var element = try XMLReader.parse(writer.bytes, limits: limits)
        var depth = 1
        while let child = element.children.first {
            element = child
            depth += 1
        }
        #expect(depth == 101 && element.text == "x")
        #expect(try XMLReader.parse(writer.bytes, limits: limits).serialized(declaration: false, indent: 1) == writer.bytes)
    }
}
