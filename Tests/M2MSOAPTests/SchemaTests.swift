// Every golden envelope, and every body element on its own, validates with xmllint against GSMA's
// schema (xsd/gsma, through our envelope and all-messages wrappers) or our v4 XSD. A broken copy
// must fail, so the check is known to bite.

import Foundation
import M2MCore
import M2MSOAP
import M2MXML
import Testing

@Suite("Schema validation (xmllint)")
struct SchemaTests {
    @Test("All golden envelopes validate against SOAP 1.2 + WS-Addressing + GSMA/v4 schemas")
    func envelopes() throws {
        let files = try Repo.goldenFiles().map(\.path)
        #expect(files.count == 137)
        let result = try XMLLint.validate(schema: "envelope.xsd", files: files)
        #expect(result.status == 0, "\(result.output)")
    }

    @Test("Each body element alone validates against m2mrsp-all.xsd (GSMA all-interfaces + v4)")
    func bodies() throws {
        var paths: [String] = []
        for file in try Repo.goldenFiles() {
            let root = try XMLReader.parse(Repo.bytes(file))
            let body = try #require(root.children.last?.children.first)
            let bytes = body.serialized(preferredPrefixes: Namespace.preferredPrefixes)
            paths.append(try XMLLint.temporaryFile(bytes, name: file.lastPathComponent))
        }
        let result = try XMLLint.validate(schema: "m2mrsp-all.xsd", files: paths)
        #expect(result.status == 0, "\(result.output)")
    }

    @Test("GSMA-defined messages validate against GSMA's own all-interfaces.xsd, untouched")
    func gsmaOnly() throws {
        var paths: [String] = []
        for info in FunctionInfo.all where info.source == .gsma {
            for type in [info.message] + (info.response.map { [$0] } ?? []) {
                let file = Repo.golden.appendingPathComponent("\(info.id.interface.rawValue)/\(type.descriptor.elementName).xml")
                let body = try #require(try XMLReader.parse(Repo.bytes(file)).children.last?.children.first)
                paths.append(try XMLLint.temporaryFile(body.serialized(preferredPrefixes: Namespace.preferredPrefixes),
                                                       name: "gsma-" + file.lastPathComponent))
            }
        }
        #expect(paths.count == 74)
        let result = try XMLLint.validate(schema: "gsma/xsd/all-interfaces.xsd", files: paths)
        #expect(result.status == 0, "\(result.output)")
    }

    @Test("A fault envelope we write validates too")
    func fault() throws {
        let error = SOAPError(code: .unknownAction, path: "wsa:Action", detail: "unknown Action x",
                              status: .failed(.function, .unsupported))
        let bytes = SOAPCodec.encode(SOAPCodec.faultEnvelope(for: error, relatesTo: "urn:uuid:1", messageID: MessageID(id: "urn:uuid:2")))
        let path = try XMLLint.temporaryFile(bytes, name: "fault.xml")
        let result = try XMLLint.validate(schema: "envelope.xsd", files: [path])
        #expect(result.status == 0, "\(result.output)")
    }

    @Test("The validation bites: a golden without its mandatory Eid fails")
    func negative() throws {
        let file = Repo.golden.appendingPathComponent("ES3/ES3-CreateISDPRequest.xml")
        let text = String(decoding: try Repo.bytes(file), as: UTF8.self)
        let broken = text.split(separator: "\n").filter { !$0.contains("<rps:Eid>") }.joined(separator: "\n")
        let path = try XMLLint.temporaryFile(Array(broken.utf8), name: "broken.xml")
        let result = try XMLLint.validate(schema: "envelope.xsd", files: [path])
        #expect(result.status != 0)
        #expect(result.output.contains("Eid"))
    }
}
