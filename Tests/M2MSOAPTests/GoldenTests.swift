// One golden envelope per SGP.02 message type (137 for the 85 functions), written by
// scripts/gen_messages.py from sample values, with the typed JSON the same values give. For each:
// parse → the right message type → fields equal the JSON's → serialise → byte-identical; and
// JSON → envelope → byte-identical (what `m2mrsp soap decode`/`encode` do).

import Foundation
import M2MCore
import M2MSOAP
import M2MXML
import Testing

@Suite("Golden envelopes")
struct GoldenTests {
    static let files: [URL] = (try? Repo.goldenFiles()) ?? []

    @Test("There is one golden file for every message type of the 85 functions")
    func coverage() throws {
        #expect(FunctionInfo.all.count == 85)
        let perInterface = Dictionary(grouping: FunctionInfo.all, by: \.id.interface).mapValues(\.count)
        #expect(perInterface == [.es1: 2, .es2: 25, .es3: 28, .es4: 23, .es4a: 4, .es7: 3])
        var expected: Set<String> = []
        for info in FunctionInfo.all {
            expected.insert(info.message.descriptor.elementName)
            if let response = info.response { expected.insert(response.descriptor.elementName) }
        }
        #expect(expected.count == 137)
        let present = Set(Self.files.map { $0.deletingPathExtension().lastPathComponent })
        #expect(present == expected)
    }

    @Test("parse → fields → serialise is byte-identical", arguments: files)
    func roundTrip(file: URL) throws {
        let bytes = try Repo.bytes(file)
        let envelope = try SOAPCodec.decode(bytes)
        let message = try #require(envelope.message)
        #expect(message.descriptor.elementName == file.deletingPathExtension().lastPathComponent)

        // Fields: the value parsed from XML equals the value decoded from the independent JSON.
        let json = try Data(contentsOf: file.deletingPathExtension().appendingPathExtension("json"))
        let expected = try JSONDecoder().decode(EnvelopeJSON.self, from: json).envelope
        #expect(envelope.header == expected.header)
        #expect(Self.equal(message, try #require(expected.message)))

        let written = SOAPCodec.encode(envelope)
        #expect(written == bytes, "serialised form differs from \(file.lastPathComponent)")
    }

    @Test("JSON → envelope is byte-identical (soap encode)", arguments: files)
    func fromJSON(file: URL) throws {
        let json = try Data(contentsOf: file.deletingPathExtension().appendingPathExtension("json"))
        #expect(try EnvelopeJSON.envelope(fromJSON: json) == Repo.bytes(file))
    }

    @Test("envelope → JSON → envelope (soap decode then encode) is byte-identical", arguments: files)
    func throughJSON(file: URL) throws {
        let bytes = try Repo.bytes(file)
        let json = try EnvelopeJSON.json(fromEnvelope: bytes)
        #expect(try EnvelopeJSON.envelope(fromJSON: json) == bytes)
    }

    static func equal(_ a: any SGP02Message, _ b: any SGP02Message) -> Bool {
        func open<T: SGP02Message>(_ a: T) -> Bool { (b as? T) == a }
        return open(a)
    }
}

@Suite("Fields of selected messages")
struct FieldTests {
    static func message<T: SGP02Message>(_ type: T.Type) throws -> T {
        let url = Repo.golden.appendingPathComponent(type.descriptor.function.interface.rawValue)
            .appendingPathComponent(type.descriptor.elementName + ".xml")
        return try #require(try SOAPCodec.decode(Repo.bytes(url)).message as? T)
    }

    @Test("JSON: a list field left out is empty (as an absent element in XML); a mandatory field left out is an error")
    func jsonLists() throws {
        let json = Data(#"{"function":"ES4.AuditEIS","kind":"request","body":{"functionCallIdentifier":"a","eid":"89049032000000000000000000001230"}}"#.utf8)
        let audit = try #require(try JSONDecoder().decode(EnvelopeJSON.self, from: json).envelope.message as? ES4.AuditEISRequest)
        #expect(audit.iccids.isEmpty && audit.validityPeriod == nil)
        let missing = Data(#"{"function":"ES4.AuditEIS","kind":"request","body":{"functionCallIdentifier":"a"}}"#.utf8)
        #expect(throws: (any Error).self) { try JSONDecoder().decode(EnvelopeJSON.self, from: missing) }
    }

    @Test("ES3.CreateISDP request: every element")
    func createISDP() throws {
        let m = try Self.message(ES3.CreateISDPRequest.self)
        #expect(m.functionCallIdentifier == "fc-2026-0001")
        #expect(m.validityPeriod == 600)
        #expect(m.eid.text == "89049032000000000000000000001230")
        #expect(m.iccid.text == "8944500000000000121")
        #expect(m.mnoID == OID("1.3.6.1.4.1.99999.4.1"))
        #expect(m.requiredMemory == 65536)
        #expect(m.moreToDo == false)
    }

    @Test("ES1.RegisterEIS: the whole EIS, its signature, key sets and the emergency attribute")
    func registerEIS() throws {
        let eis = try Self.message(ES1.RegisterEISRequest.self).eis
        #expect(eis.eid.text == "89049032000000000000000000001230")
        #expect(eis.eumSignedInfo.ecasd.role == .ecasd)
        #expect(eis.eumSignedInfo.capabilities.httpVersion?.text == "1.1.0")
        #expect(eis.eumSignature.signatureMethod == XMLSignature.ecdsaSHA256)
        #expect(eis.eumSignature.references.first?.digestValue.bytes.count == 32)
        #expect(eis.profiles.count == 2)
        #expect(eis.enabledProfile?.pol2.disablingNotAllowed == true)
        #expect(eis.profiles[1].emergencyProfileAttribute)
        #expect(eis.additionalProperties == [AdditionalProperty(key: "HardwareRevision", value: "B2")])
        guard case .key(let key) = eis.isdR.keysets.first?.items.first else {
            Issue.record("ISD-R key set has no key")
            return
        }
        #expect(key.components.first?.type == 0x88)
        #expect(eis.auditTrail?.first?.operationExecutionStatus == .success)
    }

    @Test("Responses: status, processing times and the async callback Action")
    func response() throws {
        let url = Repo.golden.appendingPathComponent("ES3/ES3-CreateISDPResponse.xml")
        let envelope = try SOAPCodec.decode(Repo.bytes(url))
        let m = try #require(envelope.message as? ES3.CreateISDPResponse)
        #expect(m.functionExecutionStatus == .success)
        #expect(m.processingEnd?.nanoseconds == 250_000_000)
        #expect(m.isdPAID.text == "A0000005591010FFFFFFFF8900001000")
        #expect(envelope.header.action == "http://gsma.com/ES3/ProfileManagementCallBack/ES3-CreateISDP")
        #expect(envelope.header.relatesTo != nil)
        #expect(envelope.header.messageID?.transactionID != nil)
    }

    @Test("v4 PLMA and ONC")
    func plmaAndONC() throws {
        let plma = try Self.message(ES4A.SetPLMARequest.self).plma
        #expect(plma.authorises(.enableProfile))
        #expect(!plma.authorises(.deleteProfile))
        #expect(plma.authorises(.profileEnabled))
        let oncs = try Self.message(ES4A.GetONCResponse.self).oncs
        #expect(oncs.first?.discards(.profileDownloaded) == true)
    }
}
