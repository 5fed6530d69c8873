// `m2mrsp serve --config FILE` (issue #8; docs/cli/serve.md): the SM-SR and/or the SM-DP as SOAP
// servers over HTTPS with mutual TLS, on embedded defaults — SQLite files and storage keys in the data
// directory, TLS identities and trust from a `m2mrsp pki init` directory, the Lua plugins and policy
// bundles (reloaded when their files change), an optional built-in emulated fleet (saved in the data
// directory on shutdown), outboxes delivered over SOAP, recovery at start, a Prometheus endpoint, logs
// through swift-log (text or JSON lines), and graceful shutdown on SIGINT/SIGTERM through
// swift-service-lifecycle that answers what it accepted.

import ArgumentParser
import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MPolicy
import M2MRoles
import M2MServer
import M2MSOAP
import M2MStorage
import M2MTransport
import M2MWire
import NIOCore
import Logging
import NIOPosix
import Prometheus
import ServiceLifecycle
import UnixSignals
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The configuration file (JSON).
struct ServeConfiguration: Codable {
    struct SMSRPart: Codable {
        var port: Int
        /// Emulated cards served in process (their EIS registered at start); none: no cards.
        var cards: Int?
        var fleetSeed: String?
        /// Register the fleet's EIS at start as their EUM would (default true; false: register them with ES1.RegisterEIS).
        var register: Bool?
        /// The PKI role this SM-SR is (`smsr` by default; `smsr2` for a second SM-SR, as at an SM-SR change).
        var identity: String?
        /// Other SM-SRs this one works with over ES7 (SM-SR change): PKI role → base URL (`<url>/ES7`).
        var peers: [String: String]?
        /// Cards served by another process over the loopback SCP80 framing (HOST:PORT), instead of `cards`.
        var scp80: String?
        /// Serve the built-in fleet over the loopback SCP80 framing too (HOST:PORT), so another SM-SR can reach it.
        var serveSCP80: String?
        /// Seconds an ES7 call waits for the peer's callback (default 120).
        var es7Timeout: Double?
        /// TEST ONLY: kill this process (SIGKILL) at the named point of an operation (`SMSRFaults.Point`:
        /// beforeES5, afterES5, beforeCommit, afterCommit, changeBeforeHandover, changeBeforeCommit,
        /// changeAfterCommit) — scripts/change-crash-test.sh.
        var crashAt: String?
        /// Check EUM signatures with a table per EUM key (default true; false: OpenSSL's EVP only, e.g. FIPS).
        var eumKeyTables: Bool?
    }

    struct SMDPPart: Codable {
        var port: Int
        /// The SM-SR's base URL (its ES3 endpoint is `<url>/ES3`).
        var smsr: String
        /// More SM-SRs (PKI role → base URL): where Profiles go after an SM-SR change.
        var otherSMSRs: [String: String]?
    }

    /// A `m2mrsp pki init` directory.
    var pki: String
    /// Where the databases, storage keys and fleet live.
    var data: String
    var plugins: String?
    var policies: String?
    var host: String?
    /// Development only: plain HTTP (the caller taken from wsa:From).
    var plainHTTP: Bool?
    var smsr: SMSRPart?
    var smdp: SMDPPart?
    /// Where parties take notifications and callbacks: entity OID → URL.
    var endpoints: [String: String]?
    /// Seconds between outbox passes.
    var outboxInterval: Double?
    /// "text" (default) or "json" log lines on standard error.
    var log: String?
    /// The WSDL directory (default: the source tree's xsd, with gsma/ and m2mrsp/).
    var wsdl: String?
    /// HOST:PORT of a plain-HTTP Prometheus endpoint (`/metrics`); none: no metrics endpoint.
    var metrics: String?
}

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the SM-SR and/or the SM-DP over SOAP 1.2 + HTTPS with mutual TLS.",
        discussion: """
            The configuration file (JSON) names the PKI directory (`m2mrsp pki init`), the data directory, the roles to host \
            with their ports, an optional emulated fleet for the SM-SR, and the parties' notification endpoints. Stops on \
            SIGINT or SIGTERM after answering what it accepted. See docs/cli/serve.md.
            """
    )

    @Option(help: "The configuration file (JSON).")
    var config: String

    @Option(help: "Stop after this many seconds (tests and demos; default: until interrupted).")
    var seconds: Double?

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func run() throws {
        guard let data = FileManager.default.contents(atPath: config) else { throw ServeFailure("cannot read \(config)") }
        let settings: ServeConfiguration
        do { settings = try JSONDecoder().decode(ServeConfiguration.self, from: data) } catch { throw ServeFailure("\(config): \(error)") }
        let log = ServeLog(json: settings.log == "json")
        let node = try ServeNode(settings: settings, log: log)
        try node.start()
        // swift-service-lifecycle: SIGINT/SIGTERM (or --seconds) start a graceful shutdown; the node
        // then stops accepting, lets what it accepted finish, and saves its state.
        let group = ServiceGroup(services: [ServeService(node: node)], gracefulShutdownSignals: [.sigterm, .sigint], logger: log.logger)
        let done = DispatchSemaphore(value: 0)
        Task {
            do { try await group.run() } catch { log.error("service group", ["error": "\(error)"]) }
            done.signal()
        }
        if let seconds {
            Task {
                try? await Task.sleep(for: .seconds(seconds))
                await group.triggerGracefulShutdown()
            }
        }
        done.wait()
        log.info("stopped")
    }
}

/// The node as a swift-service-lifecycle service: it runs until a graceful shutdown is asked for.
struct ServeService: Service {
    let node: ServeNode

    func run() async throws {
        try? await gracefulShutdown()
        node.log.info("stopping: no new connections; answering what was accepted")
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                node.stop()
                continuation.resume()
            }
        }
    }
}

/// Blocks until SIGINT or SIGTERM, or until `seconds` passed (listen).
enum StopSignal {
    static func wait(seconds: Double?) {
        let stop = DispatchSemaphore(value: 0)
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let sources = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            return source
        }
        if let seconds { DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { stop.signal() } }
        stop.wait()
        sources.forEach { $0.cancel() }
    }
}

struct ServeFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The node's log: swift-log's `Logger` with a handler writing one line per event on standard error,
/// as text or as JSON (keys never appear: nothing logs them).
struct ServeLog: Sendable {
    let logger: Logger

    init(json: Bool) {
        logger = Logger(label: "m2mrsp.serve") { _ in LineLogHandler(json: json) }
    }

    func info(_ message: String, _ fields: [String: String] = [:]) { logger.info("\(message)", metadata: fields.mapValues { .string($0) }) }
    func error(_ message: String, _ fields: [String: String] = [:]) { logger.error("\(message)", metadata: fields.mapValues { .string($0) }) }
}

/// One line per log event on standard error: `time level message key=value…`, or a JSON object.
struct LineLogHandler: LogHandler {
    let json: Bool
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level, message = event.message
        let fields = metadata.merging(event.metadata ?? [:]) { $1 }.mapValues { "\($0)" }
        let time = SystemClock().now().text
        let text: String
        if json {
            var members = [("time", JSONText.quoted(time)), ("level", JSONText.quoted(level.rawValue)), ("message", JSONText.quoted("\(message)"))]
            for (key, value) in fields { members.append((key, JSONText.quoted(value))) }
            text = String(decoding: JSONText.object(members), as: UTF8.self)
        } else {
            text = "\(time) \(level.rawValue) \(message)" + fields.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

/// The PKI directory's material.
struct PKIDirectory {
    let root: URL
    let manifest: [String: Any]

    init(_ path: String) throws {
        root = URL(fileURLWithPath: path)
        guard let data = FileManager.default.contents(atPath: root.appendingPathComponent("pki.json").path),
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw ServeFailure("cannot read \(path)/pki.json (is \(path) a `m2mrsp pki init` directory?)") }
        manifest = object
    }

    func text(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: root.appendingPathComponent(path).path) else {
            throw ServeFailure("cannot read \(root.appendingPathComponent(path).path)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A PEM key file without its TEST KEY banner line.
    func key(_ path: String) throws -> String {
        let text = try text(path)
        guard let begin = text.range(of: "-----BEGIN") else { throw ServeFailure("\(path) holds no PEM key") }
        return String(text[begin.lowerBound...])
    }

    func id(_ role: String) throws -> OID {
        guard let entry = manifest[role] as? [String: Any], let text = entry["id"] as? String else { throw ServeFailure("pki.json has no \(role) id") }
        return try OID(text: text)
    }

    var curve: Curve { (manifest["curve"] as? String) == "brainpoolP256r1" ? .brainpoolP256r1 : .p256 }

    /// A role folder's TLS server or client identity, trusting the TLS CA.
    func tls(_ folder: String, server: Bool) throws -> TLSCredentials {
        let kind = server ? "tls-server" : "tls-client"
        return TLSCredentials(certificateChainPEM: try text("\(folder)/\(kind).crt.pem"), privateKeyPEM: try key("\(folder)/\(kind).key.pem"),
                              trustRootsPEM: [try text("tls/tls-ca.crt.pem")])
    }
}

/// The roles one `serve` process hosts, wired together.
final class ServeNode: @unchecked Sendable {
    let settings: ServeConfiguration
    let log: ServeLog
    let pki: PKIDirectory
    let group = MultiThreadedEventLoopGroup(numberOfThreads: max(2, ProcessInfo.processInfo.activeProcessorCount))
    var servers: [SOAPServer] = []
    var datagramServers: [SCP80DatagramServer] = []
    /// Where the SM-SR's ES7 answers come back (woken at shutdown).
    var mailboxes: [CallbackMailbox] = []
    var clients: [SOAPClient] = []
    var dispatchers: [(name: String, dispatcher: OutboxDispatcher)] = []
    var engines: [PolicyEngine] = []
    var fleet: Fleet?
    var smsr: SMSR?
    var smdp: SMDP?
    let running = Atomic<Bool>(true)
    let worker = DispatchGroup()
    /// Prometheus metrics (`metrics` in the configuration).
    let registry = PrometheusCollectorRegistry()
    /// Callbacks owed, kept until acknowledged (`<data>/callbacks.sqlite`).
    var callbacks: SQLiteCallbackStore?

    init(settings: ServeConfiguration, log: ServeLog) throws {
        self.settings = settings
        self.log = log
        pki = try PKIDirectory(settings.pki)
    }

    var host: String { settings.host ?? "127.0.0.1" }
    var scheme: String { settings.plainHTTP == true ? "http" : "https" }
    var dataURL: URL { URL(fileURLWithPath: settings.data) }
    var wsdlDirectory: String { settings.wsdl ?? ServeCommand.root.appendingPathComponent("xsd").path }

    func engine() throws -> PolicyEngine {
        let plugins = settings.plugins ?? "plugins", policies = settings.policies ?? "policies"
        let set = try PolicyLoader(pluginPaths: [plugins]).loadSet(bundles: PolicyLoader.bundleDirectories(under: policies))
        let engine = try PolicyEngine(set: set, decisionLog: NoDecisionLog())
        engines.append(engine)
        return engine
    }

    /// The notification and callback endpoints of the parties.
    func directory() throws -> [OID: EndpointAddress] {
        var directory: [OID: EndpointAddress] = [:]
        for (id, url) in settings.endpoints ?? [:] {
            let oid = try OID(text: id)
            directory[oid] = EndpointAddress(address: url, entityID: oid)
        }
        if let part = settings.smdp {
            let smdpID = try pki.id("smdp")
            directory[smdpID] = EndpointAddress(address: "\(scheme)://\(host):\(part.port)/ES3", entityID: smdpID)
        }
        return directory
    }

    func server(_ folder: String, id: OID, port: Int, endpoints: [String: any SOAPService], wsdls: [String: String], client: SOAPClient) throws -> Int {
        var configuration = SOAPServer.Configuration(address: EndpointAddress(address: "\(scheme)://\(host):\(port)", entityID: id),
                                                     tls: settings.plainHTTP == true ? nil : try pki.tls(folder, server: true))
        configuration.allowPlainHTTP = settings.plainHTTP == true
        // An SM-SR change waits for the other SM-SR, which calls back here: asynchronous SMSRChange and
        // HandoverEUICC run on threads of their own (the short ES7 functions and the callbacks they
        // wait for keep the workers), and there are more workers than the default for synchronous ones.
        if folder.hasPrefix("smsr") {
            configuration.workerThreads = max(configuration.workerThreads, 32)
            configuration.waitingFunctions = ["ES4.SMSRChange", "ES7.HandoverEUICC"]
            // GetEIS, GetPLMA, GetONC only read the database: one thread per core, not the 32 workers.
            configuration.quickFunctions = SMSR.readOnlyFunctions
        }
        configuration.host = host
        configuration.port = port
        configuration.wsdls = wsdls.mapValues { "\(wsdlDirectory)/\($0)" }
        configuration.callbacks = callbacks
        let registry = self.registry
        let role = folder.hasPrefix("smsr") ? "SM-SR" : "SM-DP"
        let durations = registry.makeDurationHistogram(
            name: "m2mrsp_soap_request_duration_seconds", labels: [("role", role)],
            buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(20), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10)],
            help: "Time to serve one SOAP message")
        configuration.observe = { observation in
            registry.makeCounter(name: "m2mrsp_soap_requests_total",
                                 labels: [("role", role), ("function", observation.function), ("outcome", observation.outcome)],
                                 help: "SOAP messages served, by function and outcome").increment()
            durations.recordNanoseconds(Int64(observation.seconds * 1e9))
        }
        let server = SOAPServer(configuration: configuration, endpoints: endpoints, client: client, group: group)
        let bound = try server.start()
        servers.append(server)
        return bound
    }

    func client(_ folder: String, id: OID, base: String) throws -> SOAPClient {
        let client = try SOAPClient(identity: EndpointAddress(address: base, entityID: id),
                                    tls: settings.plainHTTP == true ? nil : try pki.tls(folder, server: false), group: group)
        clients.append(client)
        return client
    }

    func start() throws {
        try FileManager.default.createDirectory(at: dataURL, withIntermediateDirectories: true)
        if settings.plainHTTP == true { log.info("PLAIN HTTP (development only): callers are whoever wsa:From says") }
        callbacks = try SQLiteCallbackStore(path: dataURL.appendingPathComponent("callbacks.sqlite").path)
        let parties: [Party] = [Party(oid: try pki.id("eum"), role: .eum), Party(oid: try pki.id("mno"), role: .mno),
                                Party(oid: try pki.id("m2msp"), role: .m2mSP), Party(oid: try pki.id("smdp"), role: .smdp)]
        if let part = settings.smsr { try startSMSR(part, parties: parties) }
        if let part = settings.smdp { try startSMDP(part, parties: parties) }
        if let metrics = settings.metrics { try startMetrics(metrics) }
        // Callbacks a stopped process still owed go out again.
        if let callbacks, let client = clients.first {
            let owed = try client.resendCallbacks(from: callbacks)
            if owed > 0 { log.info("callbacks owed from before, sent again", ["callbacks": "\(owed)"]) }
        }
        // Outboxes every second; policy bundles checked for changes every 2 seconds.
        let interval = settings.outboxInterval ?? 1
        worker.enter()
        Thread.detachNewThread { [self] in
            defer { worker.leave() }
            var ticks = 0
            while running.load(ordering: .relaxed) {
                deliverOutboxes()
                ticks += 1
                if ticks % max(1, Int(2 / interval)) == 0 { reloadPolicies() }
                Thread.sleep(forTimeInterval: interval)
            }
        }
    }

    func startSMSR(_ part: ServeConfiguration.SMSRPart, parties: [Party]) throws {
        let folder = part.identity ?? "smsr"
        let smsrID = try pki.id(folder)
        let ci = try X509Certificate(pem: try pki.text("ci/ci.crt.pem"))
        let eum = try X509Certificate(pem: try pki.text("eum/eum.crt.pem"))
        var configuration = SMSRConfiguration(smsrID: smsrID,
                                              storageKey: try StorageKeyFile.load(dataURL.appendingPathComponent("smsr.key").path, create: true, role: "SM-SR"))
        configuration.acceptClearISDRKeys = true  // the built-in fleet's EIS carry their keys in clear (test cards)
        configuration.eumKeyTables = part.eumKeyTables ?? true
        // CERT.SR.ECDSA and its key: what this SM-SR shows a card it takes over at an SM-SR change.
        let certificateFile = pki.root.appendingPathComponent("\(folder)/cert-sr-ecdsa.gpcert")
        if FileManager.default.fileExists(atPath: certificateFile.path) {
            configuration.credentials = [GPCredential(certificate: try GPCertificate(encoded: Array(try Data(contentsOf: certificateFile))),
                                                      key: try ECPrivateKey(pkcs8: Array(try pki.key("\(folder)/sk-sr-ecdsa.key.pem").utf8)))]
        }
        var transport: any EUICCTransport = SMSRCommand.NoCards()
        if let scp80 = part.scp80 {
            let parts = scp80.split(separator: ":")
            guard parts.count == 2, let port = UInt16(parts[1]) else { throw ServeFailure("smsr.scp80 '\(scp80)' is not HOST:PORT") }
            transport = try SCP80DatagramTransport(host: String(parts[0]), port: port)
        }
        if let cards = part.cards, cards > 0 {
            let eumKey = try ECPrivateKey(pkcs8: Array(try pki.key("eum/eum.key.pem").utf8))
            let issuer = EUMIssuer(key: eumKey, eumID: try pki.id("eum"))
            let seed = Array((part.fleetSeed ?? "m2mrsp serve").utf8)
            let file = dataURL.appendingPathComponent("fleet.m2mfleet")
            if FileManager.default.fileExists(atPath: file.path) {
                fleet = try Fleet.restore(from: file, seed: seed, curve: pki.curve, ciPublicKey: ci.publicKey, eum: issuer)
                log.info("fleet loaded", ["cards": "\(fleet!.count)", "file": file.path])
            } else {
                fleet = try Fleet(seed: seed, count: cards, curve: pki.curve, ciPublicKey: ci.publicKey, eum: issuer)
                log.info("fleet created", ["cards": "\(cards)"])
            }
            transport = InProcessTransport(fleet: fleet!)
            if let listen = part.serveSCP80 {
                let parts = listen.split(separator: ":")
                guard parts.count == 2, let port = UInt16(parts[1]) else { throw ServeFailure("smsr.serveSCP80 '\(listen)' is not HOST:PORT") }
                // The framing has no authentication of its own (an MO poll drains a card's notifications):
                // loopback only.
                let octets = parts[0].split(separator: ".").compactMap { UInt8($0) }
                guard parts[0] == "localhost" || (octets.count == 4 && octets[0] == 127) else {
                    throw ServeFailure("smsr.serveSCP80 must be a loopback address (127.x.x.x or localhost), not \(parts[0])")
                }
                let server = try SCP80DatagramServer(host: String(parts[0]), port: port, transport: transport)
                server.start(workers: 2)
                datagramServers.append(server)
                log.info("fleet served over SCP80/UDP", ["address": "udp://\(parts[0]):\(server.port)"])
            }
        }
        let store = try SQLiteSMSRStore(path: dataURL.appendingPathComponent("smsr.sqlite").path, codec: XMLDocumentCodec())
        var faults = SMSRFaults()
        if let point = part.crashAt {
            guard let crash = SMSRFaults.Point(rawValue: point) else {
                throw ServeFailure("smsr.crashAt '\(point)' is not one of \(SMSRFaults.Point.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            faults = SMSRFaults(crashAt: crash, killProcess: true)
            log.info("TEST ONLY: this SM-SR kills itself at \(point)")
        }
        let smsr = try SMSR(configuration: configuration, trust: SMSRTrust(ci: ci, eums: [try pki.id("eum"): eum]), store: store, policy: try engine(),
                            transport: transport, faults: faults)
        for party in parties { try smsr.register(party) }
        self.smsr = smsr
        let client = try client(folder, id: smsrID, base: "\(scheme)://\(host):\(part.port)")
        // ES7 to the other SM-SRs, asynchronously: ReplyTo this SM-SR's /callbacks, where the mailbox
        // hands each answer to the call waiting for it.
        let mailbox = CallbackMailbox()
        mailboxes.append(mailbox)
        let replyTo = EndpointAddress(address: "\(scheme)://\(host):\(part.port)/callbacks", entityID: smsrID)
        for (role, url) in part.peers ?? [:] {
            let peerID = try pki.id(role)
            try smsr.register(Party(oid: peerID, role: .smsr))
            smsr.connect(smsr: peerID, endpoint: SOAPES7Endpoint(client: client, smsr: EndpointAddress(address: "\(url)/ES7", entityID: peerID),
                                                                 callbacks: (mailbox, replyTo, part.es7Timeout ?? 120)))
        }
        // SM-SR changes are finished once this SM-SR listens (the other SM-SR calls back), below.
        let recovered = try smsr.recover(includingSMSRChanges: false)
        log.info("SM-SR recovery", ["operations": "\(recovered)"])
        // The built-in fleet's cards are registered as their EUM would (once).
        if let fleet, part.register ?? true {
            let now = SystemClock().now()
            var requests: [ES1.RegisterEISRequest] = []
            for index in 0..<fleet.count where try store.read({ try $0.eis(fleet.eid(at: index)) }) == nil {
                let info = try fleet.eumSignedInfo(at: index, productionDate: now)
                let eumKey = try ECPrivateKey(pkcs8: Array(try pki.key("eum/eum.key.pem").utf8))
                let signature = try EISSignature.sign(info, with: eumKey, keyName: "EUM-TEST-KEY")
                requests.append(ES1.RegisterEISRequest(functionCallIdentifier: "serve-register-\(fleet.eid(at: index).text)",
                                                       eis: try fleet.eis(at: index, signedInfo: info, signature: signature, smsrID: smsrID, mnoID: try pki.id("mno"))))
            }
            if !requests.isEmpty {
                let refused = smsr.registerEISBatch(requests, context: RequestContext(caller: try pki.id("eum"))).filter { $0.functionExecutionStatus.status == .failed }
                log.info("fleet registered", ["cards": "\(requests.count)", "refused": "\(refused.count)"])
            }
        }
        let port = try server(folder, id: smsrID, port: part.port,
                              endpoints: ["/ES1": SMSRService(smsr: smsr, interfaces: [.es1]), "/ES3": SMSRService(smsr: smsr, interfaces: [.es3]),
                                          "/ES4": SMSRService(smsr: smsr, interfaces: [.es4]), "/ES4A": SMSRService(smsr: smsr, interfaces: [.es4a]),
                                          "/ES7": SMSRService(smsr: smsr, interfaces: [.es7]), "/callbacks": mailbox],
                              wsdls: ["/ES1": "gsma/ES1_SMSR.wsdl", "/ES3": "gsma/ES3_SMSR.wsdl", "/ES4": "gsma/ES4_SMSR.wsdl", "/ES4A": "m2mrsp/ES4A_SMSR.wsdl",
                                      "/ES7": "gsma/ES7_SMSR.wsdl",
                                      "/ES1?v4": "m2mrsp/ES1_SMSR-v4.wsdl", "/ES3?v4": "m2mrsp/ES3_SMSR-v4.wsdl", "/ES4?v4": "m2mrsp/ES4_SMSR-v4.wsdl"],
                              client: client)
        dispatchers.append(("SM-SR", OutboxDispatcher(store: store, delivery: SOAPNotificationDelivery(client: client, directory: try directory()),
                                                      clock: SystemClock())))
        log.info("SM-SR serving", ["id": smsrID.text, "url": "\(scheme)://\(host):\(port)", "endpoints": "/ES1 /ES3 /ES4 /ES4A /ES7"])
        // Then, every 5 seconds, changes whose outcome was not known yet or whose finalisation did not
        // complete are tried again.
        worker.enter()
        Thread.detachNewThread { [self] in
            defer { worker.leave() }
            var first = true
            while running.load(ordering: .relaxed) {
                do {
                    let changes = first ? try smsr.recoverSMSRChanges() : try smsr.retrySMSRChanges()
                    if changes > 0 { log.info(first ? "SM-SR change recovery" : "SM-SR changes finished", ["changes": "\(changes)"]) }
                    first = false  // the restart's recovery passes again until it went through
                } catch {
                    log.error("SM-SR change recovery failed", ["error": "\(error)"])
                }
                for _ in 0..<50 where running.load(ordering: .relaxed) { Thread.sleep(forTimeInterval: 0.1) }
            }
        }
    }

    func startSMDP(_ part: ServeConfiguration.SMDPPart, parties: [Party]) throws {
        let smdpID = try pki.id("smdp")
        let certificate = try GPCertificate(encoded: Array(try Data(contentsOf: pki.root.appendingPathComponent("smdp/cert-dp-ecdsa.gpcert"))))
        let key = try ECPrivateKey(pkcs8: Array(try pki.key("smdp/sk-dp-ecdsa.key.pem").utf8))
        let configuration = SMDPConfiguration(
            smdpID: smdpID, storageKey: try StorageKeyFile.load(dataURL.appendingPathComponent("smdp.key").path, create: true, role: "SM-DP"),
            credentials: [SMDPCredential(certificate: certificate, key: key)])
        let client = try client("smdp", id: smdpID, base: "\(scheme)://\(host):\(part.port)")
        let smsrID = try pki.id("smsr")
        let store = try SQLiteSMDPStore(path: dataURL.appendingPathComponent("smdp.sqlite").path)
        var smsrs: [OID: any ES3Endpoint] = [smsrID: SOAPES3Endpoint(client: client, smsr: EndpointAddress(address: "\(part.smsr)/ES3", entityID: smsrID))]
        for (role, url) in part.otherSMSRs ?? [:] {
            let id = try pki.id(role)
            smsrs[id] = SOAPES3Endpoint(client: client, smsr: EndpointAddress(address: "\(url)/ES3", entityID: id))
        }
        let smdp = try SMDP(configuration: configuration, store: store, policy: try engine(), smsrs: smsrs)
        for party in parties where party.role == .mno { try smdp.register(party) }
        self.smdp = smdp
        let port = try server("smdp", id: smdpID, port: part.port,
                              endpoints: ["/ES2": SMDPService(smdp: smdp, interfaces: [.es2]), "/ES3": SMDPService(smdp: smdp, interfaces: [.es3])],
                              wsdls: ["/ES2": "gsma/ES2_SMDP.wsdl", "/ES3": "gsma/ES3_SMDP.wsdl", "/ES2?v4": "m2mrsp/ES2_SMDP-v4.wsdl"], client: client)
        dispatchers.append(("SM-DP", OutboxDispatcher(store: store, delivery: SOAPNotificationDelivery(client: client, directory: try directory()),
                                                      clock: SystemClock())))
        log.info("SM-DP serving", ["id": smdpID.text, "url": "\(scheme)://\(host):\(port)", "endpoints": "/ES2 /ES3"])
        // Downloads a stopped process left are resumed once the SM-SR answers (in the background).
        worker.enter()
        Thread.detachNewThread { [self] in
            defer { worker.leave() }
            do {
                let finished = try smdp.recover()
                log.info("SM-DP recovery", ["downloads": "\(finished)"])
            } catch {
                log.error("SM-DP recovery failed", ["error": "\(error)"])
            }
        }
    }

    /// `/metrics` in the Prometheus text format, plain HTTP (bind it to loopback or a private network).
    func startMetrics(_ address: String) throws {
        let parts = address.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ServeFailure("metrics '\(address)' is not HOST:PORT") }
        var configuration = SOAPServer.Configuration(address: EndpointAddress(address: "http://\(address)"), tls: nil)
        configuration.allowPlainHTTP = true
        configuration.host = String(parts[0])
        configuration.port = port
        let registry = self.registry
        configuration.resources = ["/metrics": { ("text/plain; version=0.0.4; charset=utf-8", registry.emitToBuffer()) }]
        let server = SOAPServer(configuration: configuration, endpoints: [:], client: nil, group: group)
        try server.start()
        servers.append(server)
        log.info("metrics serving", ["url": "http://\(address)/metrics"])
    }

    func deliverOutboxes() {
        for (name, dispatcher) in dispatchers {
            do {
                let delivered = try dispatcher.runOnce()
                registry.makeCounter(name: "m2mrsp_outbox_delivered_total", labels: [("role", name)], help: "Notifications and callbacks delivered")
                    .increment(by: Int64(delivered))
                if delivered > 0 { log.info("outbox delivered", ["role": name, "messages": "\(delivered)"]) }
            } catch {
                log.error("outbox", ["role": name, "error": "\(error)"])
            }
        }
    }

    /// Each bundle directory reloaded when its files changed (the engine refuses a bad one and keeps
    /// the last good version).
    var stamps: [String: Date] = [:]
    func reloadPolicies() {
        let policies = settings.policies ?? "policies"
        let loader = PolicyLoader(pluginPaths: [settings.plugins ?? "plugins"])
        for directory in PolicyLoader.bundleDirectories(under: policies) {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            let latest = files.compactMap { try? FileManager.default.attributesOfItem(atPath: "\(directory)/\($0)")[.modificationDate] as? Date }.max() ?? .distantPast
            if let seen = stamps[directory], seen >= latest { continue }
            let first = stamps[directory] == nil
            stamps[directory] = latest
            if first { continue }
            for engine in engines {
                do {
                    let report = try engine.reload(directory: directory, loader: loader)
                    log.info("policy bundle reloaded", ["bundle": "\(report.bundle)", "swapped": "\(report.swapped)"])
                } catch {
                    log.error("policy bundle refused, the last good version stays", ["directory": directory, "error": "\(error)"])
                }
            }
        }
    }

    func stop() {
        // Loops stop first, and calls waiting for another SM-SR's answer give up (recovery settles them
        // at the next start): shutdown never waits for an ES7 timeout.
        running.store(false, ordering: .relaxed)
        for mailbox in mailboxes { mailbox.cancelAll() }
        for server in servers { server.shutdown() }
        for server in datagramServers { server.stop() }
        _ = worker.wait(timeout: .now() + 30)
        deliverOutboxes()
        for client in clients { client.shutdown() }
        if let fleet {
            let file = dataURL.appendingPathComponent("fleet.m2mfleet")
            do {
                try fleet.save(to: file)
                log.info("fleet saved", ["file": file.path])
            } catch {
                log.error("fleet not saved", ["error": "\(error)"])
            }
        }
        try? group.syncShutdownGracefully()
    }
}
