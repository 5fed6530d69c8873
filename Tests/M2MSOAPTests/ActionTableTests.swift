// The Action tables against GSMA's WSDLs: every Action a WSDL declares resolves to the function of
// the message it carries, in the right direction; what we write for v3 functions is a WSDL Action.

import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import M2MSOAP
import M2MXML
import Testing

@Suite("Action URIs")
struct ActionTableTests {
    struct WSDLAction: CustomStringConvertible {
        let file: String
        let element: String
        let action: String
        var description: String { "\(file): \(element) → \(action)" }
    }

    /// Reads the WSDLs with FoundationXML's parser as an independent oracle (GSMA's ES3_SMSR.wsdl
    /// even has stray text, "/>", inside an operation, which our SOAP reader rightly refuses).
    final class WSDLReader: NSObject, XMLParserDelegate {
        var messages: [String: String] = [:]
        var currentMessage: String?
        var pending: [(String, String)] = []  // (message name, action)
        var inPortType = false

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes: [String: String] = [:]) {
            switch elementName {
            case "message": currentMessage = attributes["name"]
            case "part":
                if let message = currentMessage, let element = attributes["element"] {
                    messages[message] = String(element.split(separator: ":").last ?? "")
                }
            case "portType": inPortType = true
            case "input", "output":
                guard inPortType, let message = attributes["message"],
                    let action = attributes.first(where: { $0.key.hasSuffix("Action") })?.value
                else { return }
                pending.append((String(message.split(separator: ":").last ?? ""), action))
            default: break
            }
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
            if elementName == "portType" { inPortType = false }
            if elementName == "message" { currentMessage = nil }
        }
    }

    static func actions() throws -> [WSDLAction] {
        var found: [WSDLAction] = []
        let folder = Repo.xsd.appendingPathComponent("gsma")
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() where name.hasSuffix(".wsdl") {
            let parser = XMLParser(data: try Data(contentsOf: folder.appendingPathComponent(name)))
            parser.shouldProcessNamespaces = true
            let reader = WSDLReader()
            parser.delegate = reader
            #expect(parser.parse(), "\(name) does not parse")
            for (message, action) in reader.pending {
                guard var element = reader.messages[message] else { continue }
                // ES7_SMSR_Provider.wsdl names a non-existent element; the XSD spells it with "SMSR".
                if element == "ES7-AuthenticateSMSRequest" { element = "ES7-AuthenticateSMSRRequest" }
                found.append(WSDLAction(file: name, element: element, action: action))
            }
        }
        return found
    }

    @Test("Every WSDL Action resolves to the function and direction of its message")
    func wsdlActionsResolve() throws {
        let all = try Self.actions()
        #expect(all.count >= 100)
        var checked = 0
        for entry in all {
            guard let type = SOAPCodec.messageType(forElement: entry.element) else {
                // ES7-HandleSMSRChangeNotification is in the older schema only; not one of the 85.
                #expect(entry.element == "ES7-HandleSMSRChangeNotification", "\(entry)")
                continue
            }
            let resolved = try #require(ActionTable.resolve(entry.action), "\(entry)")
            #expect(resolved.function == type.descriptor.function, "\(entry)")
            switch resolved.role {
            case .request: #expect(type.descriptor.kind == .request, "\(entry)")
            case .response, .callback: #expect(type.descriptor.kind == .response, "\(entry)")
            case .notification: #expect(type.descriptor.kind == .notification, "\(entry)")
            case .unspecified: break
            }
            checked += 1
        }
        #expect(checked >= 100)
    }

    @Test("What we write for a GSMA-defined function is an Action of GSMA's WSDLs")
    func canonicalFromWSDL() throws {
        let declared = Set(try Self.actions().map(\.action))
        for info in FunctionInfo.all where info.source == .gsma {
            let entry = try #require(ActionTable.entry(for: info.id))
            if info.pattern == .notification {
                if info.id.interface == .es3 { #expect(declared.contains(entry.notification ?? ""), "\(info.id)") }
            } else {
                #expect(declared.contains(entry.request ?? ""), "\(info.id)")
            }
        }
    }

    @Test("One table per interface, one entry per function, no Action used twice")
    func tables() {
        #expect(ActionTable.es1.count == 2)
        #expect(ActionTable.es2.count == 25)
        #expect(ActionTable.es3.count == 28)
        #expect(ActionTable.es4.count == 23)
        #expect(ActionTable.es4a.count == 4)
        #expect(ActionTable.es7.count == 3)
        var seen: [String: FunctionID] = [:]
        for entry in ActionTable.all {
            for action in [entry.request, entry.response, entry.callback, entry.notification].compactMap({ $0 }) {
                #expect(seen[action] == nil, "\(action) is used by \(seen[action]!) and \(entry.function)")
                seen[action] = entry.function
            }
        }
    }

    @Test("Tolerant matching: suffixes, case of the host path, the WSDL typo, unknown Actions")
    func tolerant() {
        #expect(ActionTable.resolve("http://gsma.com/ES4/PlatformManagement/ES4-EnableProfileRequest")?.function == FunctionID(.es4, "EnableProfile"))
        #expect(ActionTable.resolve("http://example.org/ES4/Whatever/ES4-EnableProfile")?.function == FunctionID(.es4, "EnableProfile"))
        #expect(ActionTable.resolve("http://gsma.com/ES3/ProfileManagement/ES3-ProfileDownloadedCompletedRequest")?.function == FunctionID(.es3, "ProfileDownloadCompleted"))
        #expect(ActionTable.resolve("http://gsma.com/ES3/ProfileManagementCallBack/ES3-SendData")?.role == .callback)
        #expect(ActionTable.resolve("http://gsma.com/ES4/PlatformManagement/ES4-Reboot") == nil)
        #expect(ActionTable.resolve("") == nil)
    }
}
