// `m2mrsp emulate`: create or load a fleet of emulated eUICCs, list their EIDs, print a card's EIS,
// save the fleet, and serve the cards' SCP80 side on a loopback UDP endpoint (docs/cli/emulate.md,
// docs/emulator.md). `--probe-scp80` is the SM-SR-side test peer for that endpoint.

import ArgumentParser
import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MTransport
import M2MRoles
import M2MTestKit
import M2MWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct EmulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulate",
        abstract: "Run a fleet of emulated SGP.02 eUICCs: create or load, list EIDs and EIS, save, serve SCP80 on loopback.",
        discussion: """
            Cards are derived from --seed: the same seed, curve and count give the same EIDs and keys. \
            --pki names a directory made by `m2mrsp pki init`: its CI is every card's PK.CI, its EUM key \
            signs the cards' CERT.ECASD.ECKA and EIS. Without --pki a throw-away test PKI is generated \
            (a loaded fleet then has no EUM and cannot print EIS). --serve-scp80 answers SCP80 command \
            packets addressed by EID over UDP (framing in docs/emulator.md) until interrupted, then saves \
            to --save if given; an SCP81 push (triggering parameters to the ISD-R) makes the card open a \
            PSK-TLS admin session to the address in the push or to --admin-server. --probe-scp80 and \
            --probe-scp81 are the SM-SR-side test peers. Progress is shown on standard error for large fleets.
            """
    )

    @Option(help: "Number of cards to create (ignored with --load).")
    var cards: Int = 10

    @Option(help: "Fleet seed: text, or hex:<hex digits>. Every card secret derives from it.")
    var seed: String = "m2mrsp-emulator"

    @Option(help: "Curve: p256 or brainpoolP256r1 (default: the PKI's, else p256).")
    var curve: String?

    @Option(help: "A `m2mrsp pki init` directory (ci/ci.crt.pem, eum/eum.key.pem, eum/eum.crt.pem).")
    var pki: String?

    @Option(help: "Load the fleet from this file instead of creating it.")
    var load: String?

    @Option(help: "Save the fleet to this file (after creating or loading, and again when serving stops).")
    var save: String?

    @Flag(help: "Print every card's index and EID.")
    var list = false

    @Option(help: "With --list, print at most this many cards.")
    var limit: Int?

    @Option(help: "Print the EIS of one card, by index or EID.")
    var eis: String?

    @Option(help: "Print the `m2mrsp trace` keyring of one card, by index or EID: PK.CI, PK.ECASD.ECKA, its ISD-R SCP80 key set, its SCP81 PSK (test keys).")
    var keyring: String?

    @Option(help: "EIS output: json or summary.")
    var format: String = "json"

    @Option(help: "The SM-SR OID written in the EIS.")
    var smsr: String = "1.3.6.1.4.1.99999.2.1"

    @Option(help: "Install this many test Profiles on every new card (the first enabled, with the Fall-Back Attribute; ICCIDs 8944 ‖ card index ‖ Profile number).")
    var profiles: Int = 0

    @Option(help: "With --eis: the Operator that owns the cards' Profiles (lists them in the EIS).")
    var mno: String?

    @Option(name: .customLong("serve-scp80"), help: "Serve SCP80 on loopback UDP, HOST:PORT (e.g. 127.0.0.1:8880).")
    var serveSCP80: String?

    @Option(help: "With --serve-scp80, stop after this many seconds (default: until interrupted).")
    var serveSeconds: Double?

    @Option(name: .customLong("probe-scp80"), help: "Act as the SM-SR test peer: send GET STATUS and GET DATA to --card at HOST:PORT, poll its MO packets.")
    var probeSCP80: String?

    @Option(name: .customLong("admin-server"), help: "With --serve-scp80: where cards open SCP81 admin sessions, HOST:PORT (default: the address in the push).")
    var adminServer: String?

    @Option(name: .customLong("probe-scp81"), help: "Act as the SM-SR test peer over SCP81: push a trigger to --card at the SCP80 endpoint HOST:PORT, serve its PSK-TLS admin session, send GET DATA and GET STATUS.")
    var probeSCP81: String?

    @Option(help: "With --probe-scp80/--probe-scp81, the card's index.")
    var card: Int = 0

    @Flag(help: "No progress bar.")
    var quiet = false

    func validate() throws {
        guard cards >= 0, cards <= Int(UInt32.max) else { throw ValidationError("--cards is 0 to 4294967295") }
        guard ["json", "summary"].contains(format) else { throw ValidationError("--format is json or summary") }
        guard (0...16).contains(profiles) else { throw ValidationError("--profiles is 0 to 16") }
    }

    func run() throws {
        let seedBytes = try Self.seedBytes(seed)
        if let probe = probeSCP80 {
            try probeEndpoint(probe, seed: seedBytes)
            return
        }
        if let probe = probeSCP81 {
            try probeAdminSession(probe, seed: seedBytes)
            return
        }
        let material = try loadPKI()
        var eumMaterial = material
        let fleet: Fleet
        if let load {
            let bar = ProgressBar(label: "loading", enabled: !quiet)
            let curve = try requestedCurve()
            do {
                fleet = try Fleet.restore(
                    from: URL(fileURLWithPath: load), seed: seedBytes, curve: curve, ciPublicKey: material?.ci.publicKey,
                    eum: material.map { EUMIssuer(key: $0.eumKey) }, progress: bar.update)
            } catch {
                bar.finish()
                throw EmulateFailure(error.description)
            }
            bar.finish()
        } else {
            let curve = try requestedCurve() ?? material?.ci.publicKey.curve ?? .p256
            let pkiMaterial = try material ?? generatedPKI(curve: curve)
            guard pkiMaterial.ci.publicKey.curve == curve else {
                throw EmulateFailure("the PKI is on \(pkiMaterial.ci.publicKey.curve), --curve asks for \(curve)")
            }
            let bar = ProgressBar(label: "creating", enabled: !quiet)
            fleet = try Fleet(seed: seedBytes, count: cards, curve: curve, ciPublicKey: pkiMaterial.ci.publicKey,
                              eum: EUMIssuer(key: pkiMaterial.eumKey), progress: bar.update)
            bar.finish()
            if profiles > 0 { try Self.installTestProfiles(profiles, on: fleet) }
            eumMaterial = pkiMaterial
        }
        FileHandle.standardError.write(Data("\(fleet.count) emulated eUICCs on \(fleet.curve), seed fingerprint \(Hex.encode(Fleet.seedFingerprint(seedBytes).prefix(8)))\n".utf8))
        if let save { try saveFleet(fleet, to: save) }

        if list {
            var out = ""
            for index in 0..<min(fleet.count, limit ?? fleet.count) {
                out += "\(index)\t\(fleet.eid(at: index).text)\n"
                if out.utf8.count > 1 << 16 {
                    FileHandle.standardOutput.write(Data(out.utf8))
                    out = ""
                }
            }
            FileHandle.standardOutput.write(Data(out.utf8))
        }
        if let eis { try printEIS(eis, fleet: fleet, material: eumMaterial) }
        if let keyring { try printKeyring(keyring, fleet: fleet) }
        if let serveSCP80 {
            try serve(fleet, on: serveSCP80)
            if let save { try saveFleet(fleet, to: save) }
        }
    }

    /// Card i, Profile k: ISD-P A0000005591010FFFFFFFF89 00 00(10+k) 00, ICCID 8944 ‖ i (12 digits) ‖ k
    /// (2 digits) ‖ Luhn, Profile Type M2M-TEST, 16 000 bytes; Profile 0 enabled with the Fall-Back
    /// Attribute, the others disabled.
    static func installTestProfiles(_ count: Int, on fleet: Fleet) throws {
        for index in 0..<fleet.count {
            for k in 0..<count {
                let aid = try AID(bytes: [0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89, 0x00, 0x00, UInt8(0x10 + k), 0x00])
                let digits = String(index)
                let iccid = try ICCID(withoutCheckDigit: "8944" + String(repeating: "0", count: 12 - min(12, digits.count)) + digits.suffix(12) + (k < 10 ? "0" : "") + String(k))
                let isdp = ISDP(aid: aid, lifeCycle: k == 0 ? .enabled : .disabled, iccid: iccid, profileType: "M2M-TEST", fallBack: k == 0, allocatedMemory: 16_000)
                guard fleet.withCard(at: index, { $0.manufacture(isdp) }) else { throw EmulateFailure("card \(index) has no room for \(count) Profiles") }
            }
        }
    }

    // MARK: - Seed, curve, PKI

    static func seedBytes(_ text: String) throws -> [UInt8] {
        if text.hasPrefix("hex:") {
            guard let bytes = Hex.decode(String(text.dropFirst(4))), !bytes.isEmpty else { throw ValidationError("--seed hex:… is not hexadecimal") }
            return bytes
        }
        guard !text.isEmpty else { throw ValidationError("--seed is empty") }
        return Array(text.utf8)
    }

    func requestedCurve() throws -> Curve? {
        guard let curve else { return nil }
        guard let parsed = Curve(name: curve) else { throw ValidationError("unknown curve '\(curve)': use p256 or brainpoolP256r1") }
        return parsed
    }

    struct PKIMaterial {
        let ci: X509Certificate
        let eum: X509Certificate
        let eumKey: ECPrivateKey
    }

    func loadPKI() throws -> PKIMaterial? {
        guard let pki else { return nil }
        let root = URL(fileURLWithPath: pki)
        func text(_ path: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: root.appendingPathComponent(path).path) else {
                throw EmulateFailure("cannot read \(root.appendingPathComponent(path).path) (is \(pki) a `m2mrsp pki init` directory?)")
            }
            return String(decoding: data, as: UTF8.self)
        }
        let ci = try X509Certificate(pem: try text("ci/ci.crt.pem"))
        let eum = try X509Certificate(pem: try text("eum/eum.crt.pem"))
        // The key file starts with a TEST KEY banner line; the PEM block follows.
        let keyText = try text("eum/eum.key.pem")
        guard let begin = keyText.range(of: "-----BEGIN") else { throw EmulateFailure("eum/eum.key.pem holds no PEM key") }
        let eumKey = try ECPrivateKey(pkcs8: Array(keyText[begin.lowerBound...].utf8))
        try eum.verify(root: ci)
        guard eum.publicKey == eumKey.publicKey else { throw EmulateFailure("eum/eum.key.pem is not the key of eum/eum.crt.pem") }
        return PKIMaterial(ci: ci, eum: eum, eumKey: eumKey)
    }

    func generatedPKI(curve: Curve) throws -> PKIMaterial {
        FileHandle.standardError.write(Data("no --pki: using a throw-away test PKI on \(curve) (give --pki DIR to register these cards with a platform)\n".utf8))
        let pki = try TestPKI.generate(curve: curve)
        return PKIMaterial(ci: pki.ci, eum: pki.eum, eumKey: pki.eumKey)
    }

    func saveFleet(_ fleet: Fleet, to path: String) throws {
        let bar = ProgressBar(label: "saving", enabled: !quiet)
        defer { bar.finish() }
        do {
            try fleet.save(to: URL(fileURLWithPath: path), progress: bar.update)
        } catch {
            throw EmulateFailure(error.description)
        }
    }

    // MARK: - EIS

    func cardIndex(_ selector: String, fleet: Fleet) throws -> Int {
        let index: Int
        if let number = Int(selector), selector.count < 32 {
            index = number
        } else if let eid = try? EID(text: selector), let found = fleet.index(of: eid) {
            index = found
        } else {
            throw ValidationError("no card '\(selector)' (give an index or an EID of this fleet)")
        }
        guard index >= 0, index < fleet.count else { throw ValidationError("card \(index) is not in a fleet of \(fleet.count)") }
        return index
    }

    /// The keyring `m2mrsp trace` reads (docs/trace.md) for one emulated card: test keys only.
    func printKeyring(_ selector: String, fleet: Fleet) throws {
        let index = try cardIndex(selector, fleet: fleet)
        let identity = fleet.identity(at: index)
        let scp80 = identity.scp80Keys
        let object: [String: Any] = [
            "comment": "TEST ONLY: the keys of emulated card \(index) (\(identity.eid.text)), derived from the fleet seed",
            "curve": fleet.curve.rawValue,
            "pk_ci": Hex.encode(fleet.ciPublicKey.x962Representation),
            "pk_ecasd_ecka": Hex.encode(try identity.ecasdKey().publicKey.x962Representation),
            "scp80": [["kvn": 1, "algorithm": "aes", "kic": Hex.encode(scp80.kic.bytes), "kid": Hex.encode(scp80.kid.bytes)]],
            "scp81_psk": ["key": Hex.encode(identity.scp81PSK.bytes)],
        ]
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    func printEIS(_ selector: String, fleet: Fleet, material: PKIMaterial?) throws {
        let index = try cardIndex(selector, fleet: fleet)
        guard let material else { throw EmulateFailure("printing an EIS needs the EUM key: give --pki DIR") }
        let smsrID = try OID(text: smsr)
        let info = try fleet.eumSignedInfo(at: index, productionDate: SystemClock().now())
        let signature = try EISSignature.sign(info, with: material.eumKey, keyName: "EUM-TEST-KEY")
        let eis = try fleet.eis(at: index, signedInfo: info, signature: signature, smsrID: smsrID, mnoID: try mno.map { try OID(text: $0) })
        // What an SM-SR checks at registration, before we show it.
        let ecasdKey = try EISSignature.verifyRegistration(eis, eum: material.eum, ci: material.ci)
        if format == "json" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            FileHandle.standardOutput.write(try encoder.encode(eis))
            FileHandle.standardOutput.write(Data("\n".utf8))
            return
        }
        let card = fleet.card(at: index)
        let certificate = try fleet.ecasdCertificate(at: index)
        print("""
            card          \(index)
            EID           \(eis.eid.text)
            EUM           \(eis.eumSignedInfo.eumID.text), EIS signature verifies (exc-c14n, ecdsa-sha256)
            ECASD         CERT.ECASD.ECKA serial \(Hex.encode(certificate.serialNumber)), expires \(certificate.expirationText), \
            chains to the CI; PK.ECASD \(Hex.encode(ecasdKey.x962Representation.prefix(9)))…
            ISD-R         TAR 000001, SCP80 key set 1 (AES, counter \(card.scp80Counter.value)), SCP81 key set 0x40
            memory        \(eis.remainingMemory) of \(eis.availableMemoryForProfiles) bytes free
            ISD-Ps        \(card.isdps.isEmpty ? "none" : card.isdps.map { "\($0.aid.text) \($0.lifeCycle)" }.joined(separator: ", "))
            notifications \(card.pendingNotifications.count) pending
            """)
    }

    // MARK: - SCP80 over loopback UDP

    static func address(_ text: String) throws -> sockaddr_in {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw ValidationError("'\(text)' is not HOST:PORT") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, String(parts[0] == "localhost" ? "127.0.0.1" : parts[0]), &address.sin_addr) == 1 else {
            throw ValidationError("'\(parts[0])' is not an IPv4 address")
        }
        return address
    }

    func serve(_ fleet: Fleet, on text: String) throws {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1]) else { throw ValidationError("'\(text)' is not HOST:PORT") }
        let transport = InProcessTransport(fleet: fleet)
        let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let adminOverride = try adminServer.map { text -> (String, UInt16) in
            let parts = text.split(separator: ":")
            guard parts.count == 2, let port = UInt16(parts[1]) else { throw ValidationError("--admin-server '\(text)' is not HOST:PORT") }
            return (String(parts[0]), port)
        }
        let agentContext = try PSKTLSContext(role: .client)
        let sessions = DispatchGroup()
        // An SCP81 push: the card's agent opens the admin session on its own thread, as a card's BIP
        // channel runs beside its SMS traffic.
        let onTrigger: @Sendable (EID, AdminSessionTrigger) -> Void = { eid, trigger in
            guard let index = fleet.index(of: eid) else { return }
            sessions.enter()
            Thread.detachNewThread {
                defer { sessions.leave() }
                do {
                    let report = try SCP81Client.runSession(
                        fleet: fleet, index: index, trigger: trigger, host: adminOverride?.0, port: adminOverride?.1, context: agentContext)
                    FileHandle.standardError.write(Data("card \(index): SCP81 session done (\(report.protocolVersion) \(report.cipherSuite), \(report.statuses.count) script(s))\n".utf8))
                } catch {
                    FileHandle.standardError.write(Data("card \(index): SCP81 session failed: \(error)\n".utf8))
                }
            }
        }
        let server = try SCP80DatagramServer(host: String(parts[0]), port: port, transport: transport, onAdminSessionTrigger: onTrigger)
        signal(SIGINT) { _ in EmulateCommand.stop.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in EmulateCommand.stop.store(true, ordering: .relaxed) }
        let deadline = serveSeconds.map { Date().addingTimeInterval($0) }
        FileHandle.standardError.write(Data("serving SCP80 for \(fleet.count) cards on udp://\(text) with \(workers) workers (framing: docs/emulator.md); Ctrl-C stops\n".utf8))
        server.start(workers: workers)
        while !EmulateCommand.stop.load(ordering: .relaxed) {
            if let deadline, Date() >= deadline { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        server.stop()
        sessions.wait()
        FileHandle.standardError.write(Data("stopped after \(server.served) datagrams\n".utf8))
    }

    static let stop = Atomic<Bool>(false)

    /// The SM-SR side: GET STATUS and GET DATA (EID) to card `card` over the endpoint, then an MO poll.
    /// The counter is the time in centiseconds, so successive probes rise above the card's counter.
    func probeEndpoint(_ text: String, seed: [UInt8]) throws {
        var address = try Self.address(text)
        let curve = try requestedCurve() ?? .p256
        let identity = CardIdentity(seed: seed, index: UInt64(card), curve: curve)
        let eid = identity.eid
        let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard socket >= 0 else { throw EmulateFailure("cannot open a UDP socket") }
        defer { close(socket) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func exchange(_ request: [UInt8]) throws -> [UInt8] {
            let sent = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(socket, request, request.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard sent == request.count else { throw EmulateFailure("cannot send to \(text)") }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let received = recv(socket, &buffer, buffer.count, 0)
            guard received > 0 else { throw EmulateFailure("no answer from \(text) within 2 s") }
            return Array(buffer[0..<received])
        }
        let counter = SCP80Counter(exactly: UInt64(Date().timeIntervalSince1970 * 100)) ?? .zero
        var peer = try SCP80Peer(keys: identity.scp80KeySet, counter: counter)
        let status = CommandAPDU(cla: 0x80, ins: 0xF2, p1: 0x40, p2: 0x02, data: TLV(0x4F, []).encoded + TLV(0x5C, [0x4F, 0x9F, 0x70]).encoded, le: 0)
        let command = try peer.secure(ExpandedCommandScript(commands: [CommandAPDU(cla: 0x80, ins: 0xCA, p1: 0x00, p2: 0x5A, le: 0), status]))
        print("card \(card) EID \(eid.text): sending \(command.userData.count)-byte SMS, counter \(command.counter)")
        let answer = try exchange(SCP80Datagram.smsRequest(eid: eid, userData: command.userData))
        guard answer.count >= 2, answer[0] == 0x81 else { throw EmulateFailure("endpoint answered \(Hex.encode(answer))") }
        guard answer[1] == SCP80Datagram.porFollows else { throw EmulateFailure("endpoint status \(Hex.encode([answer[1]])) (E1 unknown EID: same --seed and --curve?)") }
        let (por, script) = try peer.open(Array(answer.dropFirst(2)), for: command)
        print("PoR status \(por.status), \(por.isAuthenticated ? "authenticated" : "NOT authenticated")")
        for response in script?.responses ?? [] { print("  R-APDU \(Hex.encode(response.bytes))") }
        for item in script?.otherItems ?? [] { print("  \(item)") }
        let poll = try exchange(SCP80Datagram.pollRequest(eid: eid))
        guard let packets = SCP80Datagram.moPackets(in: poll) else { throw EmulateFailure("MO poll answered \(Hex.encode(poll))") }
        print("\(packets.count) MO packet(s)")
        for packet in packets {
            let payload = try peer.openMO(packet)
            print("  notification \(Hex.encode(payload))")
        }
    }
}

extension EmulateCommand {
    /// The SM-SR side over SCP81: listens for the card's admin session on a loopback TCP port, pushes
    /// the triggering parameters (that port) to card `card` through the SCP80 endpoint, then serves the
    /// session: GET DATA (EID) and GET STATUS to the ISD-R, 204.
    func probeAdminSession(_ text: String, seed: [UInt8]) throws {
        var address = try Self.address(text)
        let curve = try requestedCurve() ?? .p256
        let identity = CardIdentity(seed: seed, index: UInt64(card), curve: curve)
        let eid = identity.eid
        let listener = try TCPSocket.listen(host: "127.0.0.1", port: 0)
        defer { TCPSocket.close(listener) }
        let port = TCPSocket.boundPort(listener)
        let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard socket >= 0 else { throw EmulateFailure("cannot open a UDP socket") }
        defer { close(socket) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let counter = SCP80Counter(exactly: UInt64(Date().timeIntervalSince1970 * 100)) ?? .zero
        var peer = try SCP80Peer(keys: identity.scp80KeySet, counter: counter)
        let push = try peer.securePush(AdminSessionTrigger(port: port, ipv4: [127, 0, 0, 1], uri: AdminProtocol.defaultURI))
        let request = SCP80Datagram.smsRequest(eid: eid, userData: push.userData)
        let sent = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(socket, request, request.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard sent == request.count else { throw EmulateFailure("cannot send to \(text)") }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let received = recv(socket, &buffer, buffer.count, 0)
        guard received >= 2, buffer[0] == 0x81, buffer[1] == SCP80Datagram.porFollows else {
            throw EmulateFailure(received > 0 ? "endpoint answered \(Hex.encode(buffer[0..<received]))" : "no answer from \(text) within 2 s")
        }
        let (por, _) = try peer.open(Array(buffer[2..<received]), for: push)
        print("card \(card) EID \(eid.text): push sent (admin server 127.0.0.1:\(port)), PoR status \(por.status)")
        let status = CommandAPDU(cla: 0x80, ins: 0xF2, p1: 0x40, p2: 0x02, data: TLV(0x4F, []).encoded + TLV(0x5C, [0x4F, 0x9F, 0x70]).encoded, le: 0)
        let script = ExpandedCommandScript(commands: [CommandAPDU(cla: 0x80, ins: 0xCA, p1: 0x00, p2: 0x5A, le: 0), status], coding: .indefinite)
        let session = try SCP81Peer.serveOne(
            listener: listener, context: try PSKTLSContext(role: .server), timeout: 10,
            keyFor: { $0.eid == eid ? identity.scp81PSK : nil }, scripts: [AdminScript(target: EUICC.isdRAID, script: script.encoded)])
        print("SCP81 session: PSK identity \(session.pskIdentity ?? "-"), \(session.cipherSuite ?? "-")")
        for result in session.results {
            print("  script to \(AdminProtocol.applicationURI(result.script.target)): X-Admin-Script-Status \(result.status.rawValue)")
            for response in (try? ExpandedResponseScript(bytes: result.response))?.responses ?? [] { print("  R-APDU \(Hex.encode(response.bytes))") }
        }
    }
}

/// A failure while running (printed as `Error: …`, without the usage text).
struct EmulateFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A one-line progress bar on standard error, redrawn at most every percent.
final class ProgressBar: Sendable {
    let label: String
    let enabled: Bool
    let state = Mutex<(shown: Int, drawn: Bool)>((-1, false))

    init(label: String, enabled: Bool) {
        self.label = label
        self.enabled = enabled
    }

    @Sendable func update(_ done: Int, _ total: Int) {
        guard enabled, total >= 50_000 else { return }
        let percent = total == 0 ? 100 : done * 100 / total
        let redraw = state.withLock { state -> Bool in
            guard percent != state.shown else { return false }
            state.shown = percent
            state.drawn = true
            return true
        }
        guard redraw else { return }
        let width = 30
        let filled = percent * width / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(percent)% \(done)/\(total) cards".utf8))
    }

    func finish() {
        let drawn = state.withLock { state -> Bool in
            defer { state.drawn = false }
            return state.drawn
        }
        if drawn { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
