// `m2mrsp call <ES>.<Function> --param name=value … --to URL --pki DIR --as ROLE` (issue #8;
// docs/cli/call.md): one SGP.02 request over HTTPS with mutual TLS, as an operator's script would
// send it; prints the typed response (JSON). With `--reply-to`, the asynchronous pattern: the call is
// accepted (202) and this command serves the callback endpoint until the response arrives.

import ArgumentParser
import Foundation
import M2MCore
import M2MServer
import M2MSOAP
import NIOCore
import NIOPosix

struct CallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Call one SGP.02 function over SOAP/HTTPS with mutual TLS and print the response.",
        discussion: """
            Parameters are the request's fields by their Swift names (`m2mrsp soap functions`, `m2mrsp soap decode`): \
            --param eid=8904… --param iccid=8944… ; a value that is a number, true/false, or JSON ({…}, […]) is taken as such; \
            @FILE reads the value from a file (an EIS as `m2mrsp emulate --eis` prints it). \
            FunctionCallIdentifier defaults to a fresh UUID. Example: \
            m2mrsp call ES4.GetEIS --to https://127.0.0.1:8443/ES4 --pki demo/pki --as mno --param eid=89049032…
            """
    )

    @Argument(help: "The function, e.g. ES4.GetEIS or ES2.DownloadProfile.")
    var function: String

    @Option(name: .customLong("param"), help: "A request field: name=value (repeat).")
    var params: [String] = []

    @Option(help: "The endpoint URL (e.g. https://127.0.0.1:8443/ES4).")
    var to: String

    @Option(help: "The receiver's entity OID (default: the PKI's entity for the endpoint's role, from the URL's interface).")
    var toEntity: String?

    @Option(help: "A `m2mrsp pki init` directory: the TLS identity and trust.")
    var pki: String

    @Option(name: .customLong("as"), help: "Whose TLS identity: mno, m2msp, smdp, smsr or eum.")
    var role: String = "mno"

    @Option(help: "Asynchronous: serve this callback endpoint (e.g. https://127.0.0.1:9443/callbacks) and wait for the response.")
    var replyTo: String?

    @Option(help: "Seconds to wait for an asynchronous response.")
    var wait: Double = 120

    @Flag(help: "Plain HTTP (a server started with plainHTTP: development only).")
    var plainHTTP = false

    func run() throws {
        let directory = try PKIDirectory(pki)
        let folder = role == "m2msp" ? "m2msp" : role
        let me = try directory.id(role)
        // The request from its JSON form.
        // Scalars that look like numbers or booleans go as such; when the request does not decode that
        // way (a FunctionCallIdentifier "12345", say), every scalar goes as text.
        var body: [String: Any] = [:]
        var texts: [String: Any] = [:]
        for param in params {
            guard let equals = param.firstIndex(of: "=") else { throw ValidationError("--param '\(param)' is not name=value") }
            let name = String(param[..<equals])
            var text = String(param[param.index(after: equals)...])
            if text.hasPrefix("@") {
                guard let data = FileManager.default.contents(atPath: String(text.dropFirst())) else { throw ValidationError("cannot read \(text.dropFirst())") }
                text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            texts[name] = text
            if let number = Int(text), !text.hasPrefix("0") || text == "0" {
                body[name] = number
            } else if text == "true" || text == "false" {
                body[name] = text == "true"
            } else if text.hasPrefix("{") || text.hasPrefix("["), let json = try? JSONSerialization.jsonObject(with: Data(text.utf8)) {
                body[name] = json
                texts[name] = json
            } else {
                body[name] = text
            }
        }
        if body["functionCallIdentifier"] == nil {
            body["functionCallIdentifier"] = "call-\(UUID().uuidString.lowercased())"
            texts["functionCallIdentifier"] = body["functionCallIdentifier"]
        }
        func decode(_ fields: [String: Any]) throws -> (any SGP02Message)? {
            let json = try JSONSerialization.data(withJSONObject: ["function": function, "kind": "request", "body": fields])
            return try JSONDecoder().decode(EnvelopeJSON.self, from: json).envelope.message
        }
        let message: any SGP02Message
        do {
            guard let decoded = try (try? decode(body)) ?? decode(texts) else { throw ValidationError("no message") }
            message = decoded
        } catch {
            throw ValidationError("the parameters do not make a \(function) request: \(error)")
        }
        let receiverID: OID? = try toEntity.map { try OID(text: $0) } ?? {
            switch message.descriptor.function.interface {
            case .es2: return try? directory.id("smdp")
            default: return try? directory.id("smsr")
            }
        }()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let client = try SOAPClient(identity: EndpointAddress(address: replyTo ?? "urn:m2mrsp:call", entityID: me),
                                    tls: plainHTTP ? nil : try directory.tls(folder, server: false), group: group)
        defer { client.shutdown() }
        let destination = EndpointAddress(address: to, entityID: receiverID)
        var receiver: (server: SOAPServer, recorder: RecordingReceiver)?
        var replyAddress: EndpointAddress?
        if let replyTo {
            guard let url = URL(string: replyTo), let port = url.port else { throw ValidationError("--reply-to needs a URL with a port") }
            let recorder = RecordingReceiver()
            var configuration = SOAPServer.Configuration(address: EndpointAddress(address: replyTo, entityID: me),
                                                         tls: plainHTTP ? nil : try directory.tls(folder, server: true))
            configuration.allowPlainHTTP = plainHTTP
            configuration.host = url.host ?? "127.0.0.1"
            configuration.port = port
            let server = SOAPServer(configuration: configuration, endpoints: [url.path.isEmpty ? "/" : url.path: recorder], client: nil, group: group)
            try server.start()
            receiver = (server, recorder)
            replyAddress = EndpointAddress(address: replyTo, entityID: me)
        }
        defer { receiver?.server.shutdown(grace: 1) }
        let envelope = client.envelope(message, to: destination, replyTo: replyAddress)
        switch try client.post(envelope, to: destination.uri) {
        case .envelope(let answer):
            try show(answer)
        case .accepted:
            guard let receiver else { Swift.print("accepted (HTTP 202)"); return }
            FileHandle.standardError.write(Data("accepted (HTTP 202); waiting for the response at \(replyTo ?? "")…\n".utf8))
            let deadline = Date().addingTimeInterval(wait)
            while Date() < deadline {
                if let callback = receiver.recorder.all.first(where: { $0.header.relatesTo == envelope.header.messageID?.uri }) {
                    try show(SGP02Envelope(header: callback.header, message: callback.message))
                    return
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
            throw CallFailure("no response within \(wait) s")
        case .status(let code, let text):
            throw CallFailure("HTTP \(code): \(text)")
        }
    }

    func show(_ envelope: SGP02Envelope) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        FileHandle.standardOutput.write(try encoder.encode(EnvelopeJSON(envelope)))
        FileHandle.standardOutput.write(Data("\n".utf8))
        if case .fault = envelope.body { throw ExitCode(2) }
        if let response = envelope.message as? any SGP02Response, response.functionExecutionStatus.status == .failed || response.functionExecutionStatus.status == .expired {
            throw ExitCode(2)
        }
    }
}

struct CallFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
