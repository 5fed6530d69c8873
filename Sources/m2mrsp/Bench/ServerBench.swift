// `m2mrsp bench server` (issue #8; docs/cli/bench.md): the servers' figures, each beside a baseline
// measured in the same run:
//
//   ES4.GetEIS over HTTP and over HTTPS (mutual TLS), keep-alive connections, 16 requests in flight,
//   every request a new FunctionCallIdentifier (the whole pipeline: envelope, caller, idempotency
//   row, EIS read and filter, response row, envelope) — beside nginx (Debian's) answering the same
//   response bytes on the same kind of connection (HTTPS with the same certificates and client
//   verification). The same load generator (AsyncHTTPClient, in this process) drives both.
//   Target ≥ 0.5.
//
//   ES2.DownloadProfile over HTTPS end to end, one at a time: the Operator's client → SM-DP server →
//   its ES3 client → SM-SR server → emulated eUICC, SQLite on both roles — beside the crypto floor of
//   the same operations (as `bench download`). Target ≥ 0.25.

import ArgumentParser
import AsyncHTTPClient
import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MPolicy
import M2MRoles
import M2MServer
import M2MSOAP
import M2MStorage
import M2MTestKit
import M2MTransport
import M2MWire
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

struct ServerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Servers: ES4.GetEIS requests/s over HTTP and HTTPS beside nginx, and DownloadProfile/s over HTTPS beside the crypto floor.",
        discussion: "Build with -c release. Needs nginx on PATH (Debian: apt-get install nginx-light; `make bench` installs it). --quick: 1 s per figure, 40 downloads."
    )

    @Flag(help: "Print the figures as JSON.")
    var json = false

    @Flag(help: "Short run.")
    var quick = false

    @Option(help: "Requests in flight for the GetEIS figures.")
    var concurrency = 16

    @Option(help: "Measure only these figures (comma-separated): geteis, download.")
    var only: String?

    @Flag(help: "Also print where a download's time goes (each ES3 call over HTTPS, as the SM-DP sees it).")
    var breakdown = false

    func wants(_ figure: String) -> Bool { only.map { $0.split(separator: ",").contains(Substring(figure)) } ?? true }

    static let mno: OID = "1.3.6.1.4.1.99999.4.1"
    static let smdpID: OID = "1.3.6.1.4.1.99999.3.1"

    func run() throws {
        guard let nginx = Self.which("nginx") else {
            throw ValidationError("nginx is not installed: the GetEIS baseline is nginx serving the same bytes (Debian: apt-get install nginx-light; `make bench` does it)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("m2mrsp-bench-server-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pki = try TestPKI.generate(curve: .p256)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: ProcessInfo.processInfo.activeProcessorCount)
        defer { try? group.syncShutdownGracefully() }
        var figures: [BenchFigure] = []
        if wants("geteis") { figures += try getEIS(pki: pki, nginx: nginx, directory: directory, group: group) }
        if wants("download") { figures.append(try download(pki: pki, directory: directory, group: group)) }
        try Bench.print(BenchReport(suite: "server", figures: figures), json: json)
    }

    static func which(_ name: String) -> String? {
        for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin").split(separator: ":") + ["/usr/sbin", "/sbin"] {
            let path = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    static func credentials(_ role: TestPKI.Role, _ pki: TestPKI, server: Bool) -> TLSCredentials {
        let identity = server ? role.tlsServer! : role.tlsClient
        return TLSCredentials(certificateChainPEM: identity.certificate.pem + pki.tlsCA.pem, privateKeyPEM: identity.key.pkcs8PEM, trustRootsPEM: [pki.tlsCA.pem])
    }

    static func freePort() throws -> Int {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let channel = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        defer { try? channel.close().wait() }
        return channel.localAddress?.port ?? 0
    }

    /// Requests/s: `concurrency` requests in flight on keep-alive connections for `seconds`.
    static func load(_ client: HTTPClient, url: String, bodies: @escaping @Sendable (Int) -> [UInt8], action: String, concurrency: Int, seconds: Double,
                     check: @escaping @Sendable (HTTPClientResponse, ByteBuffer) -> Bool) throws -> Double {
        final class Counters: Sendable {
            let done = Atomic<Int>(0)
            let bad = Atomic<Int>(0)
            let next = Atomic<Int>(0)
        }
        let counters = Counters()
        let start = DispatchTime.now().uptimeNanoseconds
        let deadline = start + UInt64(seconds * 1e9)
        let finished = DispatchSemaphore(value: 0)
        for _ in 0..<concurrency {
            Task {
                while DispatchTime.now().uptimeNanoseconds < deadline {
                    var request = HTTPClientRequest(url: url)
                    request.method = .POST
                    request.headers.add(name: "content-type", value: "application/soap+xml; charset=utf-8; action=\"\(action)\"")
                    request.body = .bytes(bodies(counters.next.add(1, ordering: .relaxed).newValue))
                    do {
                        let response = try await client.execute(request, timeout: .seconds(30))
                        let body = try await response.body.collect(upTo: 1 << 20)
                        if check(response, body) { counters.done.add(1, ordering: .relaxed) } else { counters.bad.add(1, ordering: .relaxed) }
                    } catch {
                        counters.bad.add(1, ordering: .relaxed)
                    }
                }
                finished.signal()
            }
        }
        for _ in 0..<concurrency { finished.wait() }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        guard counters.bad.load(ordering: .relaxed) == 0 else { throw ValidationError("\(counters.bad.load(ordering: .relaxed)) requests to \(url) failed") }
        return Double(counters.done.load(ordering: .relaxed)) / elapsed
    }

    // MARK: - GetEIS beside nginx

    func getEIS(pki: TestPKI, nginx: String, directory: URL, group: MultiThreadedEventLoopGroup) throws -> [BenchFigure] {
        // One eUICC with a Profile of the MNO, registered.
        let fleet = try Fleet(seed: Array("bench server".utf8), count: 1, curve: .p256, ciPublicKey: pki.ci.publicKey,
                              eum: EUMIssuer(key: pki.eumKey, eumID: SMSRBench.eumID))
        let iccid = try ICCID(withoutCheckDigit: "894450000000000012")
        precondition(fleet.withCard(at: 0) { $0.manufacture(ISDP(aid: try! AID(text: "A0000005591010FFFFFFFF8900001000"), lifeCycle: .enabled, iccid: iccid,
                                                                  profileType: "BENCH", fallBack: true, allocatedMemory: 20_000)) })
        let (smsr, _) = try SMSRBench.makeSMSR(pki: pki, path: directory.appendingPathComponent("geteis.sqlite").path, fleet: fleet)
        let info = try fleet.eumSignedInfo(at: 0, productionDate: SystemClock().now())
        let eis = try fleet.eis(at: 0, signedInfo: info, signature: try EISSignature.sign(info, with: pki.eumKey, keyName: "EUM-TEST-KEY"),
                                smsrID: SMSRBench.smsrID, mnoID: Self.mno)
        guard smsr.registerEIS(ES1.RegisterEISRequest(functionCallIdentifier: "reg", eis: eis), context: RequestContext(caller: SMSRBench.eumID))
            .functionExecutionStatus == .success
        else { throw ValidationError("registration failed") }
        let service = SMSRService(smsr: smsr, interfaces: [.es4])
        let plainPort = try Self.freePort(), tlsPort = try Self.freePort(), nginxPlain = try Self.freePort(), nginxTLS = try Self.freePort()
        var plainConfiguration = SOAPServer.Configuration(address: EndpointAddress(address: "http://127.0.0.1:\(plainPort)/ES4", entityID: SMSRBench.smsrID),
                                                          tls: nil)
        plainConfiguration.allowPlainHTTP = true
        plainConfiguration.port = plainPort
        plainConfiguration.quickFunctions = SMSR.readOnlyFunctions  // as `serve` runs an SM-SR
        var tlsConfiguration = SOAPServer.Configuration(address: EndpointAddress(address: "https://127.0.0.1:\(tlsPort)/ES4", entityID: SMSRBench.smsrID),
                                                        tls: Self.credentials(pki.smsr, pki, server: true))
        tlsConfiguration.port = tlsPort
        tlsConfiguration.quickFunctions = SMSR.readOnlyFunctions
        let plain = SOAPServer(configuration: plainConfiguration, endpoints: ["/ES4": service], client: nil, group: group)
        let secure = SOAPServer(configuration: tlsConfiguration, endpoints: ["/ES4": service], client: nil, group: group)
        try plain.start()
        try secure.start()
        defer {
            plain.shutdown(grace: 1)
            secure.shutdown(grace: 1)
        }
        // Requests: a new FunctionCallIdentifier each time (the whole pipeline, not the replay path).
        let eid = fleet.eid(at: 0)
        let from = EndpointAddress(address: "https://127.0.0.1/mno", entityID: Self.mno)
        let action = ActionTable.action(for: ES4.GetEISRequest.descriptor)
        let run = UUID().uuidString.prefix(8)
        let bodies: @Sendable (Int) -> [UInt8] = { n in
            SOAPCodec.encode(SGP02Envelope(
                header: AddressingHeader(to: EndpointAddress(address: "/ES4", entityID: SMSRBench.smsrID), from: from,
                                         messageID: MessageID(id: "urn:uuid:\(run)-\(n)"), action: action),
                message: ES4.GetEISRequest(functionCallIdentifier: "b-\(run)-\(n)", eid: eid)), indent: 0)
        }
        // The response bytes nginx will serve: one of ours.
        let probe = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: .init())
        var probeRequest = HTTPClientRequest(url: "http://127.0.0.1:\(plainPort)/ES4")
        probeRequest.method = .POST
        probeRequest.body = .bytes(bodies(-1))
        let request = probeRequest
        let sample = try Self.blocking {
            let response = try await probe.execute(request, timeout: .seconds(10))
            return Array(try await response.body.collect(upTo: 1 << 20).readableBytesView)
        }
        try probe.syncShutdown()
        guard String(decoding: sample, as: UTF8.self).contains("EXECUTED_SUCCESS") else { throw ValidationError("GetEIS did not succeed: \(String(decoding: sample, as: UTF8.self))") }
        let responseFile = directory.appendingPathComponent("getEIS-response.xml")
        try Data(sample).write(to: responseFile)
        // nginx: the same bytes, HTTP and HTTPS (same certificates, client certificates verified), keep-alive.
        let tlsDirectory = directory.appendingPathComponent("tls")
        try FileManager.default.createDirectory(at: tlsDirectory, withIntermediateDirectories: true)
        let server = Self.credentials(pki.smsr, pki, server: true)
        try server.certificateChainPEM.write(to: tlsDirectory.appendingPathComponent("server.crt"), atomically: true, encoding: .utf8)
        try server.privateKeyPEM.write(to: tlsDirectory.appendingPathComponent("server.key"), atomically: true, encoding: .utf8)
        try pki.tlsCA.pem.write(to: tlsDirectory.appendingPathComponent("ca.crt"), atomically: true, encoding: .utf8)
        let conf = """
            daemon off;
            worker_processes \(ProcessInfo.processInfo.activeProcessorCount);
            error_log \(directory.path)/nginx-error.log warn;
            pid \(directory.path)/nginx.pid;
            events { worker_connections 1024; }
            http {
              access_log off;
              client_body_temp_path \(directory.path)/body;
              proxy_temp_path \(directory.path)/proxy; fastcgi_temp_path \(directory.path)/fastcgi;
              uwsgi_temp_path \(directory.path)/uwsgi; scgi_temp_path \(directory.path)/scgi;
              keepalive_requests 1000000; keepalive_timeout 60s;
              server {
                listen 127.0.0.1:\(nginxPlain);
                listen 127.0.0.1:\(nginxTLS) ssl;
                ssl_certificate \(tlsDirectory.path)/server.crt;
                ssl_certificate_key \(tlsDirectory.path)/server.key;
                ssl_client_certificate \(tlsDirectory.path)/ca.crt;
                ssl_verify_client optional;
                ssl_protocols TLSv1.2 TLSv1.3;
                # The same response bytes for a POST: the static module answers 405, and error_page
                # turns that into an internal GET of the file with status 200.
                location = /ES4 {
                  client_body_buffer_size 64k; root \(directory.path); default_type "application/soap+xml; charset=utf-8";
                  error_page 405 =200 /static-response; rewrite ^ /getEIS-response.xml break;
                }
                location = /static-response {
                  internal; root \(directory.path); default_type "application/soap+xml; charset=utf-8"; rewrite ^ /getEIS-response.xml break;
                }
              }
            }
            """
        let confFile = directory.appendingPathComponent("nginx.conf")
        try conf.write(to: confFile, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: nginx)
        process.arguments = ["-p", directory.path, "-c", confFile.path]
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        Thread.sleep(forTimeInterval: 0.5)
        guard process.isRunning else {
            let log = (try? String(contentsOf: directory.appendingPathComponent("nginx-error.log"), encoding: .utf8)) ?? ""
            let stderr = String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
            throw ValidationError("nginx did not start: \(stderr.suffix(400)) \(log.suffix(400))")
        }

        let seconds = quick ? 1.0 : 4.0
        let plainClient = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: Self.clientConfiguration(tls: nil, concurrency: concurrency))
        let tlsClient = HTTPClient(eventLoopGroupProvider: .shared(group),
                                   configuration: Self.clientConfiguration(tls: try Self.credentials(pki.mno, pki, server: false).clientConfiguration(),
                                                                           concurrency: concurrency))
        defer {
            try? plainClient.syncShutdown()
            try? tlsClient.syncShutdown()
        }
        // One check for both servers, at the same cost: status 200 and the success status in the body
        // (nginx's body is one of ours). A plain byte scan: the generic `firstRange(of:)` took about a
        // sixth of the process's CPU, and only on our side.
        let success = Array("EXECUTED_SUCCESS".utf8)
        let check: @Sendable (HTTPClientResponse, ByteBuffer) -> Bool = { response, body in
            response.status == .ok && body.withUnsafeReadableBytes { Self.contains($0, success) }
        }
        var best = (plain: 0.0, plainBase: 0.0, tls: 0.0, tlsBase: 0.0)
        for round in 0..<(quick ? 1 : 3) {
            SMSRBench.progress("server: GetEIS round \(round + 1) (HTTP, nginx HTTP, HTTPS, nginx HTTPS; \(concurrency) in flight, \(seconds) s each)…")
            best.plain = max(best.plain, try Self.load(plainClient, url: "http://127.0.0.1:\(plainPort)/ES4", bodies: bodies, action: action,
                                                       concurrency: concurrency, seconds: seconds, check: check))
            best.plainBase = max(best.plainBase, try Self.load(plainClient, url: "http://127.0.0.1:\(nginxPlain)/ES4", bodies: bodies, action: action,
                                                               concurrency: concurrency, seconds: seconds, check: check))
            best.tls = max(best.tls, try Self.load(tlsClient, url: "https://127.0.0.1:\(tlsPort)/ES4", bodies: bodies, action: action,
                                                   concurrency: concurrency, seconds: seconds, check: check))
            best.tlsBase = max(best.tlsBase, try Self.load(tlsClient, url: "https://127.0.0.1:\(nginxTLS)/ES4", bodies: bodies, action: action,
                                                           concurrency: concurrency, seconds: seconds, check: check))
        }
        return [
            BenchFigure(name: "ES4.GetEIS over HTTP, keep-alive, \(concurrency) in flight (baseline: nginx, the same response bytes)", value: best.plain,
                        unit: "requests/s", baseline: best.plainBase, ratio: best.plain / best.plainBase, target: 0.5, meets: best.plain / best.plainBase >= 0.5),
            BenchFigure(name: "ES4.GetEIS over HTTPS with mutual TLS, keep-alive, \(concurrency) in flight (baseline: nginx, same certificates)", value: best.tls,
                        unit: "requests/s", baseline: best.tlsBase, ratio: best.tls / best.tlsBase, target: 0.5, meets: best.tls / best.tlsBase >= 0.5),
        ]
    }

    /// Whether `needle` occurs in `haystack` (the load generator's response check).
    static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard let first = needle.first else { return true }
        guard needle.count <= haystack.count, let base = haystack.baseAddress else { return false }
        var index = 0
        while index <= haystack.count - needle.count {
            if haystack[index] == first, memcmp(base + index, needle, needle.count) == 0 { return true }
            index += 1
        }
        return false
    }

    static func clientConfiguration(tls: TLSConfiguration?, concurrency: Int) -> HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, timeout: .init(connect: .seconds(5), read: .seconds(30)))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency)
        configuration.httpVersion = .http1Only
        return configuration
    }

    static func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let result = Mutex<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let outcome: Result<T, any Error>
            do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            result.withLock { $0 = outcome }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0! }.get()
    }

    // MARK: - DownloadProfile over HTTPS

    func download(pki: TestPKI, directory: URL, group: MultiThreadedEventLoopGroup) throws -> BenchFigure {
        let count = quick ? 40 : 200
        SMSRBench.progress("server: DownloadProfile over HTTPS, \(count) downloads (SM-DP and SM-SR servers, SQLite)…")
        let fleet = try Fleet(seed: Array("bench server download".utf8), count: count, curve: .p256, ciPublicKey: pki.ci.publicKey,
                              eum: EUMIssuer(key: pki.eumKey, eumID: SMSRBench.eumID))
        let (smsr, _) = try SMSRBench.makeSMSR(pki: pki, path: directory.appendingPathComponent("dl-smsr.sqlite").path, fleet: fleet)
        try smsr.register(Party(oid: Self.smdpID, role: .smdp))
        var registrations: [ES1.RegisterEISRequest] = []
        for index in 0..<count {
            let info = try fleet.eumSignedInfo(at: index, productionDate: SystemClock().now())
            registrations.append(ES1.RegisterEISRequest(
                functionCallIdentifier: "reg-\(index)",
                eis: try fleet.eis(at: index, signedInfo: info, signature: try EISSignature.sign(info, with: pki.eumKey, keyName: "EUM-TEST-KEY"),
                                   smsrID: SMSRBench.smsrID)))
        }
        guard smsr.registerEISBatch(registrations, context: RequestContext(caller: SMSRBench.eumID)).allSatisfy({ $0.functionExecutionStatus == .success }) else {
            throw ValidationError("registration failed")
        }
        let smsrPort = try Self.freePort(), smdpPort = try Self.freePort()
        var smsrConfiguration = SOAPServer.Configuration(address: EndpointAddress(address: "https://127.0.0.1:\(smsrPort)", entityID: SMSRBench.smsrID),
                                                         tls: Self.credentials(pki.smsr, pki, server: true))
        smsrConfiguration.port = smsrPort
        smsrConfiguration.quickFunctions = SMSR.readOnlyFunctions
        let smsrServer = SOAPServer(configuration: smsrConfiguration, endpoints: ["/ES3": SMSRService(smsr: smsr, interfaces: [.es3])], client: nil, group: group)
        try smsrServer.start()
        defer { smsrServer.shutdown(grace: 1) }
        let smdpClient = try SOAPClient(identity: EndpointAddress(address: "https://127.0.0.1:\(smdpPort)", entityID: Self.smdpID),
                                        tls: Self.credentials(pki.smdp, pki, server: false), group: group)
        defer { smdpClient.shutdown() }
        let timing = TimingES3(inner: SOAPES3Endpoint(client: smdpClient, smsr: EndpointAddress(address: "https://127.0.0.1:\(smsrPort)/ES3",
                                                                                              entityID: SMSRBench.smsrID)))
        let template = Array(try Data(contentsOf: SMSRBench.root.appendingPathComponent("Tests/M2MWireTests/Fixtures/profiles/TS48v5_SAIP2.1A_NoBERTLV.der")))
        let loader = PolicyLoader(pluginPaths: [SMSRBench.root.appendingPathComponent("plugins").path])
        let set = try loader.loadSet(bundles: PolicyLoader.bundleDirectories(under: SMSRBench.root.appendingPathComponent("policies").path))
        let certificate = try requireValue(pki.smdp.certificate), dpKey = try requireValue(pki.smdp.key)
        let smdp = try SMDP(
            configuration: SMDPConfiguration(smdpID: Self.smdpID, storageKey: SecureBytes(SecureRandom.bytes(32)),
                                             credentials: [SMDPCredential(certificate: certificate, key: dpKey)]),
            store: try SQLiteSMDPStore(path: directory.appendingPathComponent("dl-smdp.sqlite").path),
            policy: try PolicyEngine(set: set, decisionLog: NoDecisionLog()),
            smsrs: [SMSRBench.smsrID: timing])
        try smdp.register(Party(oid: Self.mno, role: .mno))
        let pool = try (0..<count).map { k in
            PoolEntry(iccid: try ICCID(withoutCheckDigit: String(format: "8944506000%09d", k)), imsi: try IMSI(text: String(format: "20806%010d", k)))
        }
        try smdp.inventory.importProfileType("BENCH", mno: Self.mno, template: template, pool: pool)
        var smdpConfiguration = SOAPServer.Configuration(address: EndpointAddress(address: "https://127.0.0.1:\(smdpPort)", entityID: Self.smdpID),
                                                         tls: Self.credentials(pki.smdp, pki, server: true))
        smdpConfiguration.port = smdpPort
        let smdpServer = SOAPServer(configuration: smdpConfiguration, endpoints: ["/ES2": SMDPService(smdp: smdp, interfaces: [.es2])], client: nil, group: group)
        try smdpServer.start()
        defer { smdpServer.shutdown(grace: 1) }
        let mnoClient = try SOAPClient(identity: EndpointAddress(address: "https://127.0.0.1/mno", entityID: Self.mno),
                                       tls: Self.credentials(pki.mno, pki, server: false), group: group)
        defer { mnoClient.shutdown() }
        let es2 = EndpointAddress(address: "https://127.0.0.1:\(smdpPort)/ES2", entityID: Self.smdpID)
        let start = DispatchTime.now().uptimeNanoseconds
        for index in 0..<count {
            let request = ES2.DownloadProfileRequest(functionCallIdentifier: "bench-\(index)", eid: fleet.eid(at: index), smsrID: SMSRBench.smsrID,
                                                     profileType: "BENCH", enableProfile: false)
            guard case .envelope(let answer) = try mnoClient.post(mnoClient.envelope(request, to: es2), to: es2.uri),
                (answer.message as? ES2.DownloadProfileResponse)?.functionExecutionStatus == .success
            else { throw ValidationError("download \(index) failed") }
        }
        let elapsed = DispatchTime.now().uptimeNanoseconds - start
        let ours = Double(count) / (Double(elapsed) / 1e9)
        if breakdown {
            let spent = timing.spent.withLock { $0 }
            let atSMSR = spent.values.reduce(0) { $0 + $1.nanoseconds }
            SMSRBench.progress(String(format: "  per download: %.0f µs in all; outside the ES3 calls %.0f µs", Double(elapsed) / Double(count) / 1e3,
                                      Double(elapsed - atSMSR) / Double(count) / 1e3))
            for (name, entry) in spent.sorted(by: { $0.value.nanoseconds > $1.value.nanoseconds }) {
                SMSRBench.progress(String(format: "  %@ over HTTPS: %.0f µs per call (%d calls)", name, Double(entry.nanoseconds) / Double(entry.calls) / 1e3, entry.calls))
            }
        }
        // The floor: the same crypto as `bench download` (key establishment both sides, SCP03t both ways).
        let ecasd = try (0..<min(count, 32)).map { try fleet.identity(at: $0).ecasdKey() }
        var next = 0
        let floor = try Bench.rate(seconds: quick ? 1 : 3) {
            try DownloadFloor.once(ecasd: ecasd[next % ecasd.count], certificate: certificate, key: dpKey, ci: pki.ci.publicKey, package: template)
            next += 1
        }
        return BenchFigure(name: "ES2.DownloadProfile over HTTPS end to end, one at a time (MNO → SM-DP → ES3 → SM-SR → eUICC, SQLite; floor: KE + SCP03t)",
                           value: ours, unit: "downloads/s", baseline: floor, ratio: ours / floor, target: 0.25, meets: ours / floor >= 0.25)
    }
}
