// Exclusive C14N checked against an independent implementation: libxml2's (`xmllint --exc-c14n`,
// installed by scripts/bootstrap.sh). Every golden envelope's body, and the EIS parts the EUM signs
// (EumSignedInfo, ds:SignedInfo), must canonicalise to the same bytes with both.

import Foundation
import M2MCore
import M2MSOAP
import M2MTestKit
import M2MXML
import Testing

@Suite("Exclusive C14N against libxml2")
struct ExclusiveC14NTests {
    static func xmllintC14N(_ document: [UInt8]) throws -> [UInt8] {
        let path = try XMLLint.temporaryFile(document, name: "c14n-\(UUID().uuidString).xml")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["xmllint", "--nonet", "--exc-c14n", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return Array(data)
    }

    /// Our form of `element` (written alone, as a document, without indentation) against libxml2's.
    static func check(_ write: (inout XMLWriter) -> Void) throws {
        var writer = XMLWriter(declaration: false, indent: 0)
        write(&writer)
        let document = writer.bytes
        let root = try XMLReader.parse(document, limits: .default, knownNamespaces: Namespace.known)
        let ours = ExclusiveC14N.canonicalize(root)
        let theirs = try xmllintC14N(document)
        #expect(ours == theirs, "\(String(decoding: ours.prefix(300), as: UTF8.self)) ≠ \(String(decoding: theirs.prefix(300), as: UTF8.self))")
    }

    @Test("EumSignedInfo, EumSignature and every golden body canonicalise as libxml2 does")
    func againstLibxml2() throws {
        let eis = SampleMessages.eis()
        try Self.check { w in
            w.startElement("rps:EumSignedInfo")
            w.attribute("xmlns:rps", Namespace.rps)
            w.endElement()
        }
        try Self.check { w in
            w.startElement("rps:Eis")
            w.attribute("xmlns:rps", Namespace.rps)
            w.endElement()
        }
        // The whole sample EIS (signed info, signature with ds: elements, profiles, escapes in text).
        var writer = XMLWriter(declaration: false, indent: 0)
        writer.startElement("rps:Wrapper")
        writer.attribute("xmlns:rps", Namespace.rps)
        eis.write("rps:Eis", to: &writer)
        writer.endElement()
        try Self.check { $0 = writer }
        // Golden envelopes: the Body's first element of each, as its own document.
        var checked = 0
        for url in try Repo.goldenFiles() {
            let root = try XMLReader.parse(try Repo.bytes(url), limits: .default, knownNamespaces: Namespace.known)
            guard let body = root.children.first(where: { $0.localName == "Body" })?.children.first else { continue }
            let ours = ExclusiveC14N.canonicalize(body)
            // libxml2 on the same subtree: our canonical form is itself a document; canonicalising
            // it again must be the identity with libxml2 too.
            let theirs = try Self.xmllintC14N(ours)
            #expect(ours == theirs, "\(url.lastPathComponent)")
            checked += 1
        }
        #expect(checked > 10)
    }

    @Test("The canonical writer gives ExclusiveC14N's bytes for the EIS parts, and libxml2's for namespaces, attributes and escapes")
    func canonicalWriter() throws {
        let eis = SampleMessages.eis()
        // EIS parts: the canonical writer against ExclusiveC14N over the same subtree written, read back.
        let parts: [(String, [String: String], (inout XMLWriter) -> Void)] = [
            ("Eis", ["rps": Namespace.rps], { eis.write("rps:Eis", to: &$0) }),
            ("EumSignedInfo", ["rps": Namespace.rps], { eis.eumSignedInfo.write("rps:EumSignedInfo", to: &$0) }),
            ("SignedInfo", ["rps": Namespace.rps, "ds": Namespace.xmldsig], { eis.eumSignature.writeSignedInfo(to: &$0) }),
        ]
        for (name, inScope, write) in parts {
            var canonical = XMLWriter(canonicalIn: inScope)
            write(&canonical)
            var ordinary = XMLWriter(declaration: false, indent: 2)
            ordinary.startElement("rps:Wrapper")
            for (prefix, uri) in inScope.sorted(by: { $0.key < $1.key }) { ordinary.attribute("xmlns:\(prefix)", uri) }
            write(&ordinary)
            ordinary.endElement()
            let root = try XMLReader.parse(ordinary.bytes, limits: .default, knownNamespaces: Namespace.known)
            let expected = ExclusiveC14N.canonicalize(try #require(root.children.first))
            #expect(canonical.bytes == expected, "\(name)")
            #expect(try Self.xmllintC14N(canonical.bytes) == canonical.bytes, "\(name): libxml2 finds the form canonical")
        }
        // Namespaces declared, redeclared, undeclared; prefixed and plain attributes in any order;
        // escapes in text and attributes; empty and whitespace-only leaves: against libxml2 directly.
        func document(_ w: inout XMLWriter) {
            w.startElement("a:root")
            w.attribute("z", "1")
            w.attribute("xmlns:b", "urn:b")
            w.attribute("b:y", "2")
            w.attribute("xmlns:a", "urn:a")
            w.attribute("a:x", "3")
            w.attribute("m", "q\"<&>\t\n\r")
            w.attribute("xmlns:unused", "urn:unused")
            w.startElement("b:child")
            w.attribute("xmlns:a", "urn:other")
            w.leaf("a:grand", " x & < > \r ")
            w.leaf("b:again", "y")
            w.endElement()
            w.startElement("plain")
            w.attribute("xmlns", "urn:default")
            w.startElement("inner")
            w.attribute("xmlns", "")
            w.attribute("a:x", "4")
            w.endElement()
            w.leaf("deep", "d")
            w.endElement()
            w.leaf("a:empty", "")
            w.leaf("a:spaces", "   ")
            w.endElement()
        }
        var canonical = XMLWriter(canonicalIn: [:])
        document(&canonical)
        var ordinary = XMLWriter(declaration: true, indent: 0)
        document(&ordinary)
        let theirs = try Self.xmllintC14N(ordinary.bytes)
        #expect(canonical.bytes == theirs, "\(String(decoding: canonical.bytes, as: UTF8.self)) ≠ \(String(decoding: theirs, as: UTF8.self))")
    }
}
