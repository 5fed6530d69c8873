// `m2mrsp listen --url URL --pki DIR --as ROLE` (docs/cli/listen.md): an Operator's or M2M SP's
// endpoint for notifications and asynchronous responses, over HTTPS with mutual TLS; prints one line
// per message received (time, sender, message, its fields as JSON) until interrupted or `--seconds`.

import ArgumentParser
import Foundation
import M2MCore
import M2MServer
import M2MSOAP
import NIOCore
import NIOPosix

struct ListenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "listen",
        abstract: "Receive notifications and callbacks (an Operator's or M2M SP's endpoint) and print each one.",
        discussion: "Each message is acknowledged (HTTP 202) and printed on one line: time, sender's entity, message, fields (JSON). See docs/cli/listen.md."
    )

    @Option(help: "The endpoint URL to serve, e.g. https://127.0.0.1:9443/notifications.")
    var url: String

    @Option(help: "A `m2mrsp pki init` directory: the TLS identity and trust.")
    var pki: String

    @Option(name: .customLong("as"), help: "Whose TLS identity: mno or m2msp.")
    var role: String = "mno"

    @Option(help: "Stop after this many seconds (default: until interrupted).")
    var seconds: Double?

    @Flag(help: "Plain HTTP (development only).")
    var plainHTTP = false

    final class Printer: SOAPService, @unchecked Sendable {
        let interfaces = Set(Interface.allCases)
        let encoder: JSONEncoder = {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return encoder
        }()
        let lock = NSLock()

        func handle(_ message: any SGP02Message, caller: OID) -> SOAPOutcome {
            handle(message, caller: caller, header: AddressingHeader())
        }

        func handle(_ message: any SGP02Message, caller: OID, header: AddressingHeader) -> SOAPOutcome {
            let fields = (try? encoder.encode(EnvelopeJSON(SGP02Envelope(header: AddressingHeader(), message: message))))
                .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }?["body"]
            let body = fields.flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys, .withoutEscapingSlashes]) }
                .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            let relates = header.relatesTo.map { " relatesTo=\($0)" } ?? ""
            lock.lock()
            FileHandle.standardOutput.write(Data("\(SystemClock().now().text) from \(caller.text) \(message.descriptor.elementName)\(relates) \(body)\n".utf8))
            lock.unlock()
            return .accepted
        }
    }

    func run() throws {
        let directory = try PKIDirectory(pki)
        let me = try directory.id(role)
        guard let address = URL(string: url), let port = address.port else { throw ValidationError("--url needs a port") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        var configuration = SOAPServer.Configuration(address: EndpointAddress(address: url, entityID: me),
                                                     tls: plainHTTP ? nil : try directory.tls(role, server: true))
        configuration.allowPlainHTTP = plainHTTP
        configuration.host = address.host ?? "127.0.0.1"
        configuration.port = port
        let server = SOAPServer(configuration: configuration, endpoints: [address.path.isEmpty ? "/" : address.path: Printer()], client: nil, group: group)
        try server.start()
        FileHandle.standardError.write(Data("listening at \(url) as \(role) \(me.text)\n".utf8))
        StopSignal.wait(seconds: seconds)
        server.shutdown(grace: 1)
    }
}
