// `m2mrsp trace` (M2MTrace): the real card's published session (key establishment receipt, SCP03t
// opening, final answer) decodes with every check the bytes allow passing; one byte flipped in each
// kind of field fails at that exchange with the right check; captures made from the emulator (a
// whole download over APDUs and SCP03t, the same over the SCP81 HTTP layer, SCP80 scripts with
// PoRs and an MO notification) trace with every check passing and the package extracted intact.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MTestKit
import M2MTrace
import M2MTransport
import M2MWire
import Testing

enum Captures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Captures")

    static func load(_ name: String) throws -> ([TraceExchange], TraceKeyring) {
        let capture = try Data(contentsOf: directory.appendingPathComponent("\(name).jsonl"))
        let keys = try Data(contentsOf: directory.appendingPathComponent("\(name).keys.json"))
        return (try TraceCapture.parse(Array(capture), source: name), try TraceKeyring.parse(Array(keys), source: name))
    }

    static func profiles() throws -> [(String, [UInt8])] {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("M2MWireTests/Fixtures/profiles")
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".der") }.sorted().map {
            ($0, Array(try Data(contentsOf: directory.appendingPathComponent($0))))
        }
    }
}

extension TraceReport {
    func checks(_ outcome: TraceCheck.Outcome) -> [String] { entries.flatMap(\.checks).filter { $0.outcome == outcome }.map(\.name) }
}

/// A capture being recorded from the emulator.
struct Recorder {
    var exchanges: [TraceExchange] = []

    mutating func add(_ direction: TraceDirection, _ layer: TraceLayer, _ bytes: [UInt8]) {
        exchanges.append(TraceExchange(line: exchanges.count + 1, direction: direction, layer: layer, bytes: bytes))
    }
}

/// An emulated download, recorded: CreateISDP, INSTALL [for personalization], 3A01, 3A02 (APDUs to
/// the ISD-R), then SCP03t: INITIALIZE UPDATE + EXTERNAL AUTHENTICATE and the package in segments.
struct RecordedDownload {
    let pki: TestPKI
    let identity: CardIdentity
    let aid = try! AID(text: "A0000005591010FFFFFFFF8900001100")
    let ephemeral: ECPrivateKey
    let package: [UInt8]
    var capture: Recorder
    var card: EUICC

    /// `http`: the SCP03t part inside SCP81 admin-protocol messages (scripts targeted at the ISD-P).
    init(http: Bool = false, segmentSize: Int = 1024) throws {
        let pki = try TestPKI.generate(curve: .p256)
        let identity = CardIdentity(seed: Array("trace tests".utf8), index: 0, curve: .p256)
        let ephemeral = try ECPrivateKey(generatingOn: .p256)
        let package = try #require(try Captures.profiles().first).1
        let aid = self.aid
        var card = EUICC(identity: identity, ciPublicKey: pki.ci.publicKey)
        var capture = Recorder()
        func apdu(_ command: CommandAPDU) -> ResponseAPDU {
            capture.add(.toCard, .apdu, command.bytes)
            let response = card.process(command)
            capture.add(.fromCard, .apdu, response.bytes)
            return response
        }
        func lv(_ b: [UInt8]) -> [UInt8] { [UInt8(b.count)] + b }
        let create = CommandAPDU(cla: 0x80, ins: 0xE6, p1: 0x0C, p2: 0x00,
                                 data: lv(EUICC.elfAID.bytes) + lv(EUICC.moduleAID.bytes) + lv(aid.bytes) + lv([0x80, 0xC0, 0x00])
                                     + lv([0xC9, 0x04, 0x81, 0x02, 0x03, 0x70]) + lv([]), le: 0x00)
        #expect(apdu(create).sw == .success)
        #expect(apdu(CommandAPDU(cla: 0x80, ins: 0xE6, p1: 0x20, p2: 0x00, data: [0x00, 0x00, 0x10] + aid.bytes + [0x00, 0x00, 0x00], le: 0x00)).sw == .success)
        var host = try KeyEstablishmentHost(certificate: try #require(pki.smdp.certificate), signingKey: try #require(pki.smdp.key),
                                            ecasdPublicKey: try identity.ecasdKey().publicKey, ephemeralKey: ephemeral)
        let first = apdu(.storeData(p1: 0x89, data: host.certificateData(), le: 0x00))
        let second = apdu(.storeData(p1: 0x89, block: 1, data: try host.keyAgreementData(cardResponse: first.data), le: 0x00))
        let keys = try host.processReceipt(cardResponse: second.data)

        var session = SCP03tHost(keys: keys, aid: aid.bytes)
        let target = aid
        func send(_ tlvs: [TLV]) -> [TLV] {
            if http {
                let script = ExpandedCommandScript(items: tlvs, coding: .indefinite).encoded
                var headers = HTTPHeaders([("X-Admin-Protocol", AdminProtocol.version), ("Content-Type", AdminProtocol.commandContentType)])
                headers.add("X-Admin-Targeted-Application", AdminProtocol.applicationURI(target))
                capture.add(.toCard, .scp81HTTP, HTTPResponse(status: 200, reason: "OK", headers: headers, body: script).encoded)
                let answer = card.processScript(script, target: .isdP(target))
                let post = HTTPRequest(method: "POST", target: AdminProtocol.defaultURI,
                                       headers: HTTPHeaders([("X-Admin-Protocol", AdminProtocol.version), ("Content-Type", AdminProtocol.responseContentType),
                                                             ("X-Admin-Script-Status", "ok")]), body: answer)
                capture.add(.fromCard, .scp81HTTP, post.encoded)
                return (try? ExpandedResponseScript(bytes: answer))?.items ?? []
            }
            capture.add(.toCard, .scp03t, tlvs.flatMap(\.encoded))
            let answers = card.processSCP03t(tlvs, target: target)
            capture.add(.fromCard, .scp03t, answers.flatMap(\.encoded))
            return answers
        }
        let opening = send([session.initializeUpdate(), try session.precomputedExternalAuthenticate(sequenceCounter: 1)])
        try session.processInitializeUpdate(opening[0])
        try session.processExternalAuthenticate(opening[1])
        var offset = 0
        while offset < package.count {
            let end = min(package.count, offset + segmentSize)
            _ = send([try session.segment(Array(package[offset..<end]))])
            offset = end
        }
        if http {
            capture.add(.toCard, .scp81HTTP, HTTPResponse(status: 204, reason: "No Content", headers: HTTPHeaders([("X-Admin-Protocol", AdminProtocol.version)])).encoded)
        }
        #expect(card.isdp(aid)?.lifeCycle == .disabled, "the card installed the package")
        self.pki = pki
        self.identity = identity
        self.ephemeral = ephemeral
        self.package = package
        self.card = card
        self.capture = capture
    }

    var keyring: TraceKeyring {
        var keyring = TraceKeyring()
        keyring.ciPublicKey = pki.ci.publicKey
        keyring.ecasdPublicKey = try! identity.ecasdKey().publicKey
        keyring.ephemeralPrivateKey = ephemeral
        return keyring
    }
}

@Suite("m2mrsp trace")
struct TracerTests {
    @Test("The real card's session (test vectors 4 and 2): receipt, challenge, cryptograms, C-MAC, final answer pass; what is not published is skipped")
    func realCard() throws {
        let (exchanges, keyring) = try Captures.load("real-card-2016-11-08")
        let report = Tracer.run(exchanges, keyring: keyring)
        #expect(report.summary.failed == 0, "\(report.text())")
        let passed = report.checks(.passed)
        for name in ["ePK.DP.ECKA is eSK.DP.ECKA·G", "receipt", "card challenge", "card cryptogram", "host cryptogram", "C-MAC of EXTERNAL AUTHENTICATE",
                     "profile installed"] {
            #expect(passed.contains(name), "\(name) passed")
        }
        #expect(Set(report.checks(.skipped)) == ["3A02 signature", "R-MAC"], "the signature's certificate and the segments are not published")
        // Without the keyring: formats only, every cryptographic check skipped, none failed.
        let bare = Tracer.run(exchanges, keyring: TraceKeyring())
        #expect(bare.summary.failed == 0)
        #expect(!bare.checks(.passed).contains("receipt") && bare.checks(.skipped).contains("receipt"))
    }

    /// (exchange index, byte index, exchange that must fail first, the failing check).
    static let flips: [(Int, Int, Int, String)] = [
        (3, 2, 4, "receipt"),  // the card's receipt
        (2, 40, 3, "ePK.DP.ECKA is eSK.DP.ECKA·G"),  // ePK.DP.ECKA
        (2, 28, 4, "receipt"),  // the CRT's key version: the receipt covers the CRT
        (5, 15, 6, "card challenge"),  // INITIALIZE UPDATE answer: card challenge
        (5, 23, 6, "card cryptogram"),  // card cryptogram
        (4, 15, 5, "host cryptogram"),  // EXTERNAL AUTHENTICATE: host cryptogram
        (4, 23, 5, "C-MAC of EXTERNAL AUTHENTICATE"),  // its C-MAC
        (0, 20, 6, "card challenge"),  // the ISD-P AID in INSTALL: the pseudo-random challenge is the AID's
    ]

    @Test("One byte flipped in each kind of field of the real card's session fails at that exchange with the right check", arguments: 0..<flips.count)
    func realCardFlips(case index: Int) throws {
        let (exchange, byte, failing, check) = Self.flips[index]
        var (exchanges, keyring) = try Captures.load("real-card-2016-11-08")
        exchanges[exchange].bytes[byte] ^= 0x01
        let report = Tracer.run(exchanges, keyring: keyring)
        let first = try #require(report.summary.firstFailure, "a failure for flip \(index)")
        #expect(first.exchange == failing && first.check == check, "flip \(index): \(first)")
        #expect(first.line == exchanges[failing - 1].line)
    }

    @Test("The final answer flipped: it no longer decrypts to a well-formed EUICCResponse")
    func realCardFinalAnswer() throws {
        var (exchanges, keyring) = try Captures.load("real-card-2016-11-08")
        exchanges[7].bytes[9] ^= 0x40
        let report = Tracer.run(exchanges, keyring: keyring)
        let first = try #require(report.summary.firstFailure)
        #expect(first.exchange == 8)
        #expect(["final answer", "EUICCResponse", "profile installed"].contains(first.check), "\(first)")
    }

    @Test("An emulated download captured (APDUs, SCP03t): every check passes, the package comes out intact; flips fail where they are", arguments: [false, true])
    func emulatedDownload(http: Bool) throws {
        let download = try RecordedDownload(http: http)
        let report = Tracer.run(download.capture.exchanges, keyring: download.keyring)
        #expect(report.summary.failed == 0, "\(report.text())")
        #expect(report.summary.skipped == 0, "\(report.text())")
        let passed = report.checks(.passed)
        for name in ["CERT.DP.ECDSA signed by the CI", "3A02 signed with CERT.DP's key over 3A02 ‖ ePK ‖ the card's challenge", "receipt", "card challenge",
                     "card cryptogram", "host cryptogram", "C-MAC of EXTERNAL AUTHENTICATE", "C-MAC", "R-MAC", "profile installed", "profile package"] {
            #expect(passed.contains(name), "\(name) passed")
        }
        #expect(report.profilePackage == download.package)
        #expect(report.profileElements.first?.type == "header" && report.profileElements.last?.type == "end")
        let header = try ProfilePackage(der: download.package).header
        #expect(report.profileHeader.first?.contains("ICCID \(header.iccid.text)") == true)
        #expect(passed.filter { $0 == "C-MAC" }.count == (download.package.count + 1023) / 1024, "one per segment")

        // Flips: the certificate's signature, the 3A02 signature, a segment's C-MAC, the final R-MAC.
        let exchanges = download.capture.exchanges
        func firstFailure(flipping exchange: Int, at byte: (TraceExchange) -> Int) -> TraceSummary.FirstFailure? {
            var changed = exchanges
            changed[exchange].bytes[byte(changed[exchange])] ^= 0x01
            return Tracer.run(changed, keyring: download.keyring).summary.firstFailure
        }
        let certificate = try #require(exchanges.firstIndex { $0.bytes.starts(with: [0x80, 0xE2, 0x89, 0x00]) })
        let failure1 = firstFailure(flipping: certificate) { $0.bytes.count - 3 }  // inside 5F37 of CERT.DP
        #expect(failure1?.exchange == certificate + 1 && failure1?.check == "CERT.DP.ECDSA signed by the CI", "\(String(describing: failure1))")
        let agreement = try #require(exchanges.firstIndex { $0.bytes.starts(with: [0x80, 0xE2, 0x89, 0x01]) })
        let failure2 = firstFailure(flipping: agreement) { $0.bytes.count - 3 }  // inside 5F37 of 3A02
        #expect(failure2?.exchange == agreement + 1 && failure2?.check == "3A02 signed with CERT.DP's key over 3A02 ‖ ePK ‖ the card's challenge")
        let layer: TraceLayer = http ? .scp81HTTP : .scp03t
        let segments = exchanges.indices.filter { exchanges[$0].layer == layer && exchanges[$0].direction == .toCard }
        let secondSegment = segments[2]  // 0: the opening, 1: the first segment
        let failure3 = firstFailure(flipping: secondSegment) { $0.bytes.count - (http ? 3 : 1) }  // the C-MAC's last byte
        #expect(failure3?.exchange == secondSegment + 1 && failure3?.check == "C-MAC", "\(String(describing: failure3))")
        let last = try #require(exchanges.lastIndex { $0.layer == layer && $0.direction == .fromCard })
        let failure4 = firstFailure(flipping: last) { $0.bytes.count - (http ? 3 : 1) }  // the R-MAC's last byte
        #expect(failure4?.exchange == last + 1 && failure4?.check == "R-MAC", "\(String(describing: failure4))")
    }

    @Test("SCP80: scripts over secured SMS with their PoRs and an MO notification; a wrong key, a flipped byte, a replayed counter fail")
    func scp80() throws {
        let pki = try TestPKI.generate(curve: .p256)
        let identity = CardIdentity(seed: Array("trace scp80".utf8), index: 3, curve: .p256)
        var card = EUICC(identity: identity, ciPublicKey: pki.ci.publicKey)
        let a = try AID(text: "A0000005591010FFFFFFFF8900001000")
        let b = try AID(text: "A0000005591010FFFFFFFF8900001100")
        #expect(card.manufacture(ISDP(aid: a, lifeCycle: .enabled, iccid: try ICCID(withoutCheckDigit: "894450000000000012"), profileType: "T", fallBack: true,
                                      allocatedMemory: 1000)))
        #expect(card.manufacture(ISDP(aid: b, lifeCycle: .disabled, iccid: try ICCID(withoutCheckDigit: "894450000000000034"), profileType: "T",
                                      allocatedMemory: 1000)))
        var sender = try SCP80Sender(keys: identity.scp80KeySet, tar: .isdR, counter: 0)
        let spi = SCP80SPI(counter: .higher, ciphered: true, integrity: .cryptographicChecksum, por: .required, porIntegrity: .cryptographicChecksum,
                           porCiphered: true)
        var capture = Recorder()
        func sms(_ commands: [CommandAPDU]) throws {
            let secured = try sender.secure(ExpandedCommandScript(commands: commands).encoded, spi: spi)
            capture.add(.toCard, .scp80, secured.userData)
            let delivery = try card.receiveSMS(secured.userData)
            #expect(delivery.status == .ok)
            capture.add(.fromCard, .scp80, try #require(delivery.proofOfReceipt))
        }
        try sms([CommandAPDU(cla: 0x80, ins: 0xCA, p1: 0x00, p2: 0x5A, le: 0x00),
                 CommandAPDU(cla: 0x80, ins: 0xF2, p1: 0x40, p2: 0x02, data: [0x4F, 0x00], le: 0x00)])
        try sms([.storeData(p1: 0x88, data: DGI(0x3A03, TLV(0x4F, b.bytes).encoded).encoded, le: 0x00)])
        for packet in card.notificationPackets() { capture.add(.fromCard, .scp80, packet) }

        var keyring = TraceKeyring()
        keyring.scp80 = [identity.scp80KeySet]
        let report = Tracer.run(capture.exchanges, keyring: keyring)
        #expect(report.summary.failed == 0, "\(report.text())")
        #expect(report.checks(.passed).filter { $0 == "CC" }.count == 3, "two MT packets and the MO notification")
        #expect(report.checks(.passed).filter { $0 == "PoR CC" }.count == 2, "\(report.text())")
        #expect(report.checks(.passed).contains("counter"), "the second packet's counter is above the first's")
        #expect(report.entries.contains { $0.title.hasPrefix("answer to GET DATA") && $0.details.contains("EID \(identity.eid.text)") })
        #expect(report.entries.contains { $0.title == "default notification" && $0.details.contains { $0.hasPrefix("type 02") } })

        // Without the key set: decoded headers, the cryptographic checks skipped.
        let bare = Tracer.run(capture.exchanges, keyring: TraceKeyring())
        #expect(bare.summary.failed == 0 && bare.checks(.skipped).contains("SCP80 deciphered and CC checked"))
        // Another KID: the CC fails at the first packet.
        var wrong = TraceKeyring()
        wrong.scp80 = [try SCP80KeySet(keyVersion: 1, algorithm: .aes, kic: identity.scp80Keys.kic, kid: SecureBytes([UInt8](repeating: 7, count: 16)))]
        let wrongReport = Tracer.run(capture.exchanges, keyring: wrong)
        #expect(wrongReport.summary.firstFailure?.exchange == 1 && wrongReport.summary.firstFailure?.check == "CC")
        // A flipped ciphertext byte of the second packet.
        var flipped = capture.exchanges
        flipped[2].bytes[flipped[2].bytes.count - 1] ^= 0x01
        #expect(Tracer.run(flipped, keyring: keyring).summary.firstFailure?.exchange == 3)
        // The first packet sent again (a replay): its counter is not above the previous one.
        var replayed = capture.exchanges
        replayed.append(TraceExchange(line: 99, direction: .toCard, layer: .scp80, bytes: capture.exchanges[0].bytes))
        let replay = Tracer.run(replayed, keyring: keyring).summary.firstFailure
        #expect(replay?.line == 99 && replay?.check == "counter")
    }

    @Test("Captures and keyrings that cannot be read name the line and the field")
    func inputErrors() throws {
        func error(_ text: String) -> TraceInputError? {
            do {
                _ = try TraceCapture.parse(Array(text.utf8), source: "c")
                return nil
            } catch {
                return error
            }
        }
        #expect(error("{\"dir\":\"to-card\",\"layer\":\"apdu\",\"hex\":\"00A4\"}\n{\"dir\":\"sideways\",\"layer\":\"apdu\",\"hex\":\"00\"}")?.line == 2)
        #expect(error("# comment\n\n{\"dir\":\"to-card\",\"layer\":\"apdu\",\"hex\":\"0G\"}")?.line == 3)
        #expect(error("{\"dir\":\"to-card\",\"layer\":\"tls\",\"hex\":\"00\"}")?.detail.contains("layer") == true)
        #expect(error("{\"dir\":\"to-card\",\"layer\":\"apdu\",\"hex\":\"00\",\"extra\":1}")?.detail.contains("extra") == true)
        #expect(error("{\"dir\":\"from-card\",\"layer\":\"scp03t\",\"elided\":2}") != nil)
        #expect(error("not json") != nil)
        #expect(throws: TraceInputError.self) { try TraceKeyring.parse(Array("{\"pk_ci\": \"04ZZ\"}".utf8)) }
        #expect(throws: TraceInputError.self) { try TraceKeyring.parse(Array("{\"pk_ecasd_ecka\": \"0401\"}".utf8)) }
        #expect(throws: TraceInputError.self) { try TraceKeyring.parse(Array("{\"scp80\": [{\"kvn\": 1, \"algorithm\": \"rot13\", \"kic\": \"00\", \"kid\": \"00\"}]}".utf8)) }
        #expect(throws: TraceInputError.self) { try TraceKeyring.parse(Array("{\"secret\": \"00\"}".utf8)) }
        // Bytes that are not what the layer says are a failed format check, not a crash.
        let garbage = [TraceExchange(line: 1, direction: .toCard, layer: .scp80, bytes: [0x01]),
                       TraceExchange(line: 2, direction: .fromCard, layer: .script, bytes: [0xAB]),
                       TraceExchange(line: 3, direction: .toCard, layer: .scp81HTTP, bytes: Array("HTTP/9".utf8)),
                       TraceExchange(line: 4, direction: .fromCard, layer: .scp03t, bytes: [0x86])]
        let report = Tracer.run(garbage, keyring: TraceKeyring())
        #expect(report.summary.failed == 4 && report.summary.firstFailure?.line == 1, "\(report.text())")
    }

    @Test("JSON output: entries, profile elements and summary round-trip; the text names the first failure")
    func output() throws {
        var (exchanges, keyring) = try Captures.load("real-card-2016-11-08")
        exchanges[3].bytes[2] ^= 0x01
        let report = Tracer.run(exchanges, keyring: keyring)
        let decoded = try JSONDecoder().decode(TraceReport.self, from: Data(try report.json()))
        #expect(decoded.summary == report.summary && decoded.entries == report.entries)
        #expect(report.text().contains("First failure: exchange #4 (line \(exchanges[3].line)): receipt:"))
    }

    @Test("Review regressions: a zero-length CC never passes, a huge elided count is refused, CRLF captures read, segments sent with the opening are checked")
    func regressions() throws {
        // CHL 0D with an SPI asking for a CC: no CC at all, so not checked-and-passed.
        let identity = CardIdentity(seed: Array("trace regressions".utf8), index: 0, curve: .p256)
        let spi = SCP80SPI(counter: .higher, ciphered: false, integrity: .cryptographicChecksum, por: .none)
        let plain = [0, 0, 0, 0, 1, 0] + ExpandedCommandScript(commands: [CommandAPDU(cla: 0x80, ins: 0xCA, p1: 0x00, p2: 0x5A, le: 0)]).encoded
        let packet = SCP80CommandPacket(headerLength: 0x0D, spi: spi, kic: identity.scp80KeySet.kicIdentifier, kid: identity.scp80KeySet.kidIdentifier,
                                        tar: .isdR, securedData: plain)
        var keyring = TraceKeyring()
        keyring.scp80 = [identity.scp80KeySet]
        let noCC = Tracer.run([TraceExchange(line: 1, direction: .toCard, layer: .scp80, bytes: packet.userData)], keyring: keyring)
        #expect(!noCC.checks(.passed).contains("CC") && noCC.summary.failed > 0, "\(noCC.text())")

        // elided: capped; a large count is refused, not a crash.
        #expect(throws: TraceInputError.self) {
            _ = try TraceCapture.parse(Array("{\"dir\":\"to-card\",\"layer\":\"scp03t\",\"elided\":9223372036854775807}".utf8))
        }
        let elided = try TraceCapture.parse(Array("{\"dir\":\"to-card\",\"layer\":\"scp03t\",\"elided\":1000000}\n{\"dir\":\"to-card\",\"layer\":\"scp03t\",\"hex\":\"8609000000000000000000\"}".utf8))
        #expect(Tracer.run(elided, keyring: TraceKeyring()).summary.exchanges == 2)

        // CRLF line ends and line breaks inside hex.
        let crlf = try TraceCapture.parse(Array("{\"dir\":\"to-card\",\"layer\":\"apdu\",\"hex\":\"80CA\\r\\n005A00\"}\r\n{\"dir\":\"from-card\",\"layer\":\"apdu\",\"hex\":\"9000\"}\r\n".utf8))
        #expect(crlf.count == 2 && crlf[0].bytes == [0x80, 0xCA, 0x00, 0x5A, 0x00])

        // The first segment in the same script as INITIALIZE UPDATE and EXTERNAL AUTHENTICATE.
        let download = try RecordedDownload()
        var exchanges = download.capture.exchanges
        let opening = try #require(exchanges.firstIndex { $0.layer == .scp03t && $0.direction == .toCard })
        exchanges[opening].bytes += exchanges[opening + 2].bytes  // + the first segment
        exchanges[opening + 1].bytes += exchanges[opening + 3].bytes  // + its 86 00
        exchanges.removeSubrange((opening + 2)...(opening + 3))
        let merged = Tracer.run(exchanges, keyring: download.keyring)
        #expect(merged.summary.failed == 0, "\(merged.text())")
        #expect(merged.checks(.passed).filter { $0 == "C-MAC" }.count == (download.package.count + 1023) / 1024)
        #expect(merged.profilePackage == download.package)
    }

    @Test("A script the card stopped early: its unexecuted commands are dropped, the next script's answers pair with the next script")
    func stoppedScript() throws {
        let pki = try TestPKI.generate(curve: .p256)
        var card = EUICC(identity: CardIdentity(seed: Array("trace stop".utf8), index: 0, curve: .p256), ciPublicKey: pki.ci.publicKey)
        var capture = Recorder()
        func script(_ commands: [CommandAPDU]) {
            let bytes = ExpandedCommandScript(commands: commands).encoded
            capture.add(.toCard, .script, bytes)
            capture.add(.fromCard, .script, card.processScript(bytes, target: .isdR))
        }
        // DELETE of an ISD-P that does not exist fails (6A88): the GET DATA after it is not executed.
        script([CommandAPDU(cla: 0x80, ins: 0xE4, p1: 0x00, p2: 0x00, data: TLV(0x4F, Array(repeating: 0xA0, count: 16)).encoded, le: 0),
                CommandAPDU(cla: 0x80, ins: 0xCA, p1: 0x00, p2: 0x5A, le: 0)])
        script([CommandAPDU(cla: 0x80, ins: 0xF2, p1: 0x40, p2: 0x02, data: [0x4F, 0x00], le: 0)])
        let report = Tracer.run(capture.exchanges, keyring: TraceKeyring())
        #expect(report.entries.contains { $0.title == "1 command(s) of the script not executed" })
        #expect(report.entries.contains { $0.title.hasPrefix("answer to GET STATUS") }, "\(report.text())")
        #expect(!report.entries.contains { $0.title.hasPrefix("answer to GET DATA") })
        #expect(report.summary.failed == 1, "the DELETE's refusal, nothing else")
    }
}
