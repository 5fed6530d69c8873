// `m2mrsp bench emulator`: the eUICC emulator's throughput and memory, each figure beside a baseline
// measured in the same run (docs/cli/bench.md, docs/emulator.md §Measured):
//
//   RSS per card     fleets of 100k and 1M cards (one installed Profile each: its metadata, digest
//                    and SCP03 keys put in directly), resident memory growth / cards; beside the
//                    4096-byte budget (ratio = budget / measured, target ≥ 1)
//   cards created/s  a fleet of N cards in factory state, beside allocating N bare per-card structs
//   identities/s     EID + SK.ECASD from the seed + CERT.ECASD.ECKA signed by the EUM, beside the raw
//                    OpenSSL floor of its primitives (scalar → key pair, ECDSA sign)
//   APDUs/s          GET STATUS, enable, disable and two notification confirmations, one fleet session
//                    per APDU, five-APDU rounds over 10k cards (far more than the fleet keeps
//                    materialised: every round starts on a cold card, decoded from its record), beside
//                    the same APDUs on EUICC values held in an array (the card model without the fleet)
//   key est./s       the card side of scenario #3 (INSTALL [for personalization], STORE DATA 3A01 and
//                    3A02 through the fleet, SK.ECASD derived per establishment, distinct cards),
//                    beside the raw floor: 2 ECDSA verifies + 2 point imports + ECDH + X9.63 + CMAC
//   downloads/s      the card side of an SCP03t download of a 12 KB TS.48 profile in 1 KB segments
//                    (through the fleet, with the Profile parsed and hashed), and the SCP03t channel
//                    alone (M2MCrypto's SCP03tCard, as the emulator drives it), beside the raw floor of
//                    the same session: CMAC contexts, challenge, session keys, cryptograms, per-segment
//                    CMAC + AES-ECB ICV + AES-CBC, R-ENC and R-MAC
// Card-side figures time only the card's calls: the host's work (ephemeral keys, signatures,
// segment encryption) is done between the timed calls.

import ArgumentParser
import COpenSSL
import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MTransport
import M2MTestKit
import M2MWire

#if canImport(Glibc)
import Glibc
#endif

/// glibc's malloc_trim (malloc.h is not in the Glibc module): returns freed heap pages to the
/// system, so one RSS measurement does not lend memory to the next.
@_silgen_name("malloc_trim")
func mallocTrim(_ pad: Int) -> Int32

struct EmulatorBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator",
        abstract: "eUICC emulator: RSS per card, cards created/s, APDUs/s, card-side key establishments/s and downloads/s beside baselines.",
        discussion: "Build with -c release. --quick measures RSS at 100k cards only and shortens every figure (< 30 s)."
    )

    @Flag(help: "Print the figures as JSON.")
    var json = false

    @Flag(help: "Short run (RSS at 100k cards only).")
    var quick = false

    @Option(help: "Curves for the key establishment figure: p256, brainpoolP256r1 or both.")
    var curve: String = "p256"

    @Option(help: "A TS.48 profile package (DER) for the download figure (default: the 12 KB fixture in the source tree).")
    var profile: String?

    @Option(help: "Measure only these figures (comma-separated): memory, created, identities, apdus, keys, downloads.")
    var only: String?

    func wants(_ figure: String) -> Bool { only.map { $0.split(separator: ",").contains(Substring(figure)) } ?? true }

    func run() throws {
        let curves: [Curve] = curve == "both" ? Curve.allCases : [Curve(name: curve)].compactMap { $0 }
        guard !curves.isEmpty else { throw ValidationError("unknown curve \(curve)") }
        let package = try loadProfile()
        let seconds = quick ? 0.25 : 1.0
        let rounds = quick ? 2 : 3
        var figures: [BenchFigure] = []
        func add(_ name: String, _ value: Double, _ baseline: Double, unit: String, target: Double, ratio: Double? = nil) {
            let ratio = ratio ?? value / baseline
            figures.append(BenchFigure(name: name, value: value, unit: unit, baseline: baseline, ratio: ratio, target: target, meets: ratio >= target))
        }
        let pki = try TestPKI.generate(curve: .p256)

        // Memory first, while the heap is fresh.
        for cards in quick ? [100_000] : [100_000, 1_000_000] where wants("memory") {
            let perCard = try Self.residentBytesPerCard(cards: cards, ci: pki.ci.publicKey)
            add("RSS per card, \(cards / 1000)k cards with one Profile", perCard, 4096, unit: "B", target: 1, ratio: 4096 / perCard)
        }

        // Cards created.
        let created = quick ? 100_000 : 1_000_000
        var fleetRate = 0.0, bareRate = 0.0
        for _ in 0..<(rounds + 2) where wants("created") {
            fleetRate = max(fleetRate, try Self.timed(Double(created)) {
                _ = try Fleet(seed: Array("bench".utf8), count: created, curve: .p256, ciPublicKey: pki.ci.publicKey)
            })
            bareRate = max(bareRate, Self.timed(Double(created)) { Self.allocateBareCards(created) })
        }
        if wants("created") { add("cards created (factory state), \(created / 1000)k", fleetRate, bareRate, unit: "cards/s", target: 0.8) }

        // Identities: EID, SK.ECASD, CERT.ECASD.ECKA.
        if wants("identities") { try figures.append(contentsOf: identities(pki: pki, seconds: seconds, rounds: rounds)) }

        // APDUs.
        if wants("apdus") {
            let (fleetAPDUs, directAPDUs) = try Self.apduRates(ci: pki.ci.publicKey, seconds: seconds, rounds: rounds)
            // Target ¼: a cold card costs one record decode and, when it leaves the recently-used set,
            // one encode (≈ 2 µs together) — the price of ~230 B per idle card instead of a
            // materialised EUICC; amortised over a five-APDU round that keeps ≥ ¼ of the card model.
            add("non-crypto APDUs through fleet sessions, 5-APDU rounds on 10k cards (GET STATUS, enable, disable, 3A08)",
                fleetAPDUs, directAPDUs, unit: "APDUs/s", target: 0.25)
        }

        // Key establishment, card side.
        for curve in curves where wants("keys") {
            let (ours, floor) = try Self.keyEstablishment(curve: curve, seconds: seconds, rounds: rounds)
            add("\(curve) key establishment, card side", ours, floor, unit: "establishments/s", target: 0.8)
        }

        // Downloads, card side.
        if wants("downloads") {
            let (full, channel, floor, floorWithDigest) = try Self.downloads(package: package, ci: pki.ci.publicKey, seconds: seconds, rounds: rounds)
            add("profile download \(package.count / 1000) KB, card side (SCP03t + Profile parse + digest; floor: raw SCP03t + SHA-256)", full,
                floorWithDigest, unit: "downloads/s", target: 0.8)
            add("profile download \(package.count / 1000) KB, card side SCP03t channel only", channel, floor, unit: "downloads/s", target: 0.8)
        }

        try Bench.print(BenchReport(suite: "emulator", figures: figures), json: json)
    }

    func loadProfile() throws -> [UInt8] {
        let path = profile ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/M2MWireTests/Fixtures/profiles/TS48v5_SAIP2.3_BERTLV_SUCI.der").path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read the profile package \(path) (give one with --profile)")
        }
        return Array(data)
    }

    // MARK: - Timing

    /// `count` operations / the seconds `body` took.
    static func timed(_ count: Double, _ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return count / (Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }

    /// Accumulates the time spent inside `card` calls; `step` runs one iteration and calls `card`
    /// around the card's work only. Returns iterations per card-second.
    static func cardRate(seconds: Double, warmUp: Int = 3, _ step: (_ card: (() throws -> Void) throws -> Void) throws -> Void) rethrows -> Double {
        var spent: UInt64 = 0
        var iterations = 0
        func card(_ work: () throws -> Void) throws {
            let start = DispatchTime.now().uptimeNanoseconds
            try work()
            spent += DispatchTime.now().uptimeNanoseconds - start
        }
        for _ in 0..<warmUp { try step(card) }
        spent = 0
        while Double(spent) / 1e9 < seconds {
            try step(card)
            iterations += 1
        }
        return Double(iterations) / (Double(spent) / 1e9)
    }

    // MARK: - Memory

    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// RSS growth per card of a fleet of `cards` cards, each with one installed Profile (ISD-P AID,
    /// ICCID, Profile type, POL1, fall-back attribute, size, SHA-256 digest, SCP03 key set and
    /// counter), put in with `manufacture` through a fleet session per card.
    static func residentBytesPerCard(cards: Int, ci: ECPublicKey) throws -> Double {
        _ = mallocTrim(0)
        let before = residentBytes()
        let fleet = try Fleet(seed: Array("bench memory".utf8), count: cards, curve: .p256, ciPublicKey: ci)
        let aid = try AID(text: "A0000005591010FFFFFFFF8900001000")
        let keys = SCP03Keys(keyVersion: 0x30, enc: SecureBytes(SecureRandom.bytes(16)), mac: SecureBytes(SecureRandom.bytes(16)),
                             dek: SecureBytes(SecureRandom.bytes(16)))
        var digest = SHA256.hash([0x01])
        for index in 0..<cards {
            let iccid = try ICCID(withoutCheckDigit: "8944500" + String(100_000_000_000 + index))
            digest[0] = UInt8(truncatingIfNeeded: index)
            let isdp = ISDP(aid: aid, lifeCycle: .enabled, iccid: iccid, profileType: "GSMA TS.48 v5 SAIP 2.3", fallBack: true,
                            allocatedMemory: 12_284, profileDigest: digest)
            let installed = fleet.withCard(at: index) { $0.manufacture(isdp, keys: keys) }
            precondition(installed)
        }
        let after = residentBytes()
        precondition(fleet.record(at: cards - 1).count > 100)
        withExtendedLifetime(fleet) {}
        return Double(after - before) / Double(cards)
    }

    struct BareCard {
        var index: UInt32
        var totalMemory: UInt32
        var counter: UInt64
        var profiles: [UInt8]
    }

    @inline(never)
    static func allocateBareCards(_ count: Int) {
        let cards = (0..<count).map { BareCard(index: UInt32($0), totalMemory: 512 * 1024, counter: 0, profiles: []) }
        precondition(cards.count == count)
    }

    // MARK: - Identities

    func identities(pki: TestPKI, seconds: Double, rounds: Int) throws -> [BenchFigure] {
        let fleet = try Fleet(seed: Array("bench identities".utf8), count: 1_000_000, curve: .p256, ciPublicKey: pki.ci.publicKey,
                              eum: EUMIssuer(key: pki.eumKey))
        var next = 0
        let md = EVP_MD_fetch(nil, "SHA256", nil)!
        defer { EVP_MD_free(md) }
        let rawEUM = try RawKey(pki.eumKey)
        let body = [UInt8](repeating: 0x42, count: 170)
        var ours = 0.0, floorSeconds = Double.infinity
        for _ in 0..<rounds {
            ours = max(ours, try Bench.rate(seconds: seconds) {
                _ = fleet.eid(at: next)
                _ = try fleet.ecasdCertificate(at: next)
                next += 1
            })
            var scalar = SHA256.hash([UInt8(next & 0xFF)])
            let keyRate = Bench.rate(seconds: seconds / 2) {
                scalar[31] &+= 1
                let key = m2m_ec_private_from_scalar("P-256", NID_X9_62_prime256v1, scalar, scalar.count)
                precondition(key != nil)
                EVP_PKEY_free(key)
            }
            let signRate = Bench.rate(seconds: seconds / 2) { _ = rawEUM.sign(body, md: md) }
            floorSeconds = min(floorSeconds, 1 / keyRate + 1 / signRate)
        }
        let issued = try EUICCChain.verify(ecasdCertificate: fleet.ecasdCertificate(at: 0), eum: pki.eum, ci: pki.ci)
        let derived = try fleet.identity(at: 0).ecasdKey().publicKey
        precondition(issued == derived)
        let floor = 1 / floorSeconds
        return [BenchFigure(name: "P-256 card identities issued (EID, SK.ECASD, CERT.ECASD.ECKA signed by the EUM)", value: ours,
                            unit: "cards/s", baseline: floor, ratio: ours / floor, target: 0.8, meets: ours / floor >= 0.8)]
    }

    // MARK: - APDUs

    /// Two Profiles per card (A: fall-back, enabled; B: disabled); one round = GET STATUS, enable B,
    /// confirm, disable B (A comes back), confirm: five APDUs, the card back where it started.
    static func apduRates(ci: ECPublicKey, seconds: Double, rounds: Int) throws -> (Double, Double) {
        let cards = 10_000
        let a = try AID(text: "A0000005591010FFFFFFFF8900001000")
        let b = try AID(text: "A0000005591010FFFFFFFF8900001100")
        let fleet = try Fleet(seed: Array("bench apdus".utf8), count: cards, curve: .p256, ciPublicKey: ci)
        var direct: [EUICC] = []
        direct.reserveCapacity(cards)
        for index in 0..<cards {
            let ok = fleet.withCard(at: index) { card in
                card.manufacture(ISDP(aid: a, lifeCycle: .enabled, iccid: try? ICCID(withoutCheckDigit: "894450000000000012"), fallBack: true,
                                      allocatedMemory: 12_000, profileDigest: SHA256.hash([1])))
                    && card.manufacture(ISDP(aid: b, lifeCycle: .disabled, iccid: try? ICCID(withoutCheckDigit: "894450000000000034"),
                                             allocatedMemory: 12_000, profileDigest: SHA256.hash([2])))
            }
            precondition(ok)
            direct.append(fleet.card(at: index))
        }
        let status = CommandAPDU(cla: 0x80, ins: 0xF2, p1: 0x40, p2: 0x02, data: TLV(0x4F, a.bytes).encoded + TLV(0x5C, [0x4F, 0x9F, 0x70]).encoded, le: 0)
        let enable = CommandAPDU.storeData(p1: 0x88, data: DGI(0x3A03, TLV(0x4F, b.bytes).encoded).encoded)
        let disable = CommandAPDU.storeData(p1: 0x88, data: DGI(0x3A04, TLV(0x4F, b.bytes).encoded).encoded)
        func confirm(_ sequence: UInt16) -> CommandAPDU {
            .storeData(p1: 0x89, data: DGI(0x3A08, TLV(0x4E, [UInt8(sequence >> 8), UInt8(sequence & 0xFF)]).encoded).encoded, le: 0)
        }
        var sequences = [UInt16](repeating: 0, count: cards)
        var directSequences = sequences
        var card = 0, directCard = 0
        func check(_ response: ResponseAPDU) { precondition(response.sw == .success, "\(response)") }
        let (ours, baseline) = Bench.compare(rounds: rounds + 1, seconds: max(0.25, seconds / 2), {
            let index = card
            card = (card + 1) % cards
            check(fleet.withCard(at: index) { $0.process(status) })
            check(fleet.withCard(at: index) { $0.process(enable) })
            check(fleet.withCard(at: index) { $0.process(confirm(sequences[index])) })
            check(fleet.withCard(at: index) { $0.process(disable) })
            check(fleet.withCard(at: index) { $0.process(confirm(sequences[index] &+ 1)) })
            sequences[index] &+= 2
        }, baseline: {
            let index = directCard
            directCard = (directCard + 1) % cards
            check(direct[index].process(status))
            check(direct[index].process(enable))
            check(direct[index].process(confirm(directSequences[index])))
            check(direct[index].process(disable))
            check(direct[index].process(confirm(directSequences[index] &+ 1)))
            directSequences[index] &+= 2
        })
        return (ours * 5, baseline * 5)
    }

    // MARK: - Key establishment

    static func keyEstablishment(curve: Curve, seconds: Double, rounds: Int) throws -> (Double, Double) {
        let pki = try TestPKI.generate(curve: curve)
        let cards = 512
        let fleet = try Fleet(seed: Array("bench key establishment".utf8), count: cards, curve: curve, ciPublicKey: pki.ci.publicKey)
        let aid = try AID(text: "A0000005591010FFFFFFFF8900001000")
        var ecasd: [ECPublicKey] = []
        for index in 0..<cards {
            let ok = fleet.withCard(at: index) { $0.manufacture(ISDP(aid: aid, lifeCycle: .selectable, allocatedMemory: 0)) }
            precondition(ok)
            ecasd.append(try fleet.identity(at: index).ecasdKey().publicKey)
        }
        let certificate = try requireValue(pki.smdp.certificate)
        let dpKey = try requireValue(pki.smdp.key)
        let perso = CommandAPDU(cla: 0x80, ins: 0xE6, p1: 0x20, p2: 0x00, data: [0x00, 0x00, 0x10] + aid.bytes + [0x00, 0x00, 0x00], le: 0)
        var next = 0
        var checked = false
        var ours = 0.0
        func measure() throws -> Double {
            try cardRate(seconds: seconds) { card in
                let index = next
                next = (next + 1) % cards
                var host = try KeyEstablishmentHost(certificate: certificate, signingKey: dpKey, ecasdPublicKey: ecasd[index])
                let certificateData = host.certificateData()
                var first = ResponseAPDU(sw: .success)
                try card {
                    precondition(fleet.withCard(at: index) { $0.process(perso) }.sw == .success)
                    first = fleet.withCard(at: index) { $0.process(.storeData(p1: 0x89, data: certificateData, le: 0)) }
                }
                precondition(first.sw == .success, "\(first)")
                let agreement = try host.keyAgreementData(cardResponse: first.data)
                var second = ResponseAPDU(sw: .success)
                try card { second = fleet.withCard(at: index) { $0.process(.storeData(p1: 0x89, block: 1, data: agreement, le: 0)) } }
                precondition(second.sw == .success, "\(second)")
                if !checked {
                    let keys = try host.processReceipt(cardResponse: second.data)
                    precondition(fleet.card(at: index).isdp(aid)?.keys == keys)
                    checked = true
                }
            }
        }

        // The raw floor: what any card must do with OpenSSL for the same result.
        let md = EVP_MD_fetch(nil, "SHA256", nil)!
        defer { EVP_MD_free(md) }
        let kdf = EVP_KDF_fetch(nil, "X963KDF", nil)!
        defer { EVP_KDF_free(kdf) }
        let message = [UInt8](repeating: 0x5A, count: 200)
        let rawDP = try RawKey(dpKey)
        let rawECASD = try RawKey(try fleet.identity(at: 0).ecasdKey())
        let signature = try dpKey.signature(for: message).derRepresentation
        let point = dpKey.publicKey.x962Representation
        let secret = [UInt8](repeating: 3, count: 32)
        let crt = [UInt8](repeating: 0xA6, count: 23)
        let cmac = EVP_MAC_fetch(nil, "CMAC", nil)!
        defer { EVP_MAC_free(cmac) }
        let primitives: [() -> Void] = [
            { precondition(rawDP.verify(signature, message, md: md)); precondition(rawDP.verify(signature, message, md: md)) },
            { RawKey.importPoint(curve, point); RawKey.importPoint(curve, point) },
            { rawECASD.derive(with: rawDP) },
            { RawKey.x963(kdf, secret) },
            { RawFreshCMAC.mac(cmac, key: secret.prefix(16), crt) },
        ]
        var floorSeconds = Double.infinity
        for _ in 0..<rounds {
            ours = max(ours, try measure())
            var total = 0.0
            for body in primitives { total += 1 / Bench.rate(seconds: seconds / 4, body) }
            floorSeconds = min(floorSeconds, total)
        }
        return (ours, 1 / floorSeconds)
    }

    // MARK: - Downloads

    /// (full card side, channel only, raw SCP03t floor, raw SCP03t + SHA-256 of the package floor).
    static func downloads(package: [UInt8], ci: ECPublicKey, seconds: Double, rounds: Int) throws -> (Double, Double, Double, Double) {
        let cards = 64
        let aid = try AID(text: "A0000005591010FFFFFFFF8900001000")
        let fleet = try Fleet(seed: Array("bench downloads".utf8), count: cards, curve: .p256, ciPublicKey: ci)
        let keys = SCP03Keys(keyVersion: 0x30, enc: SecureBytes(SecureRandom.bytes(16)), mac: SecureBytes(SecureRandom.bytes(16)),
                             dek: SecureBytes(SecureRandom.bytes(16)))
        let personalized = ISDP(aid: aid, lifeCycle: .personalized, allocatedMemory: 0)
        for index in 0..<cards { precondition(fleet.withCard(at: index) { $0.manufacture(personalized, keys: keys) }) }
        let segmentSize = 1024

        /// The host's side of one download on a freshly personalised ISD-P (sequence counter 0).
        func script(hostChallenge: [UInt8] = SecureRandom.bytes(8)) throws -> [[TLV]] {
            var host = SCP03tHost(keys: keys, aid: aid.bytes, hostChallenge: hostChallenge)
            var scripts = [[host.initializeUpdate(), try host.precomputedExternalAuthenticate(sequenceCounter: 1)]]
            for start in stride(from: 0, to: package.count, by: segmentSize) {
                scripts.append([try host.segment(Array(package[start..<min(start + segmentSize, package.count)]))])
            }
            return scripts
        }

        // The emulator: every script through a fleet session, the Profile parsed and hashed.
        var next = 0
        func measureFull() throws -> Double {
            try cardRate(seconds: seconds) { card in
                let index = next
                next = (next + 1) % cards
                let scripts = try script()
                var last: [TLV] = []
                try card {
                    for items in scripts { last = fleet.withCard(at: index) { $0.processSCP03t(items, target: aid) } }
                }
                precondition(last.count == 1 && last[0].value.count > 8, "download failed: \(last)")
                let done = fleet.withCard(at: index) { card in
                    let installed = card.isdp(aid)?.lifeCycle == .disabled && card.isdp(aid)?.profileDigest != nil
                    _ = card.process(CommandAPDU(cla: 0x80, ins: 0xE4, p1: 0x00, p2: 0x40, data: TLV(0x4F, aid.bytes).encoded))
                    return installed && card.manufacture(personalized, keys: keys)
                }
                precondition(done)
            }
        }

        // The SCP03t channel alone (M2MCrypto's SCP03tCard), on the same scripts.
        func measureChannel() throws -> Double {
            try cardRate(seconds: seconds) { card in
                let scripts = try script()
                var session = SCP03tCard(keys: keys, aid: aid.bytes)
                var outcome: SCP03tCard.Outcome = .answer(TLV(0x86, []))
                try card {
                    for items in scripts {
                        for item in items { outcome = session.process(item) }
                    }
                    outcome = .answer(try session.answer(with: EUICCResponse.success.encoded))
                }
                guard case .answer(let tlv) = outcome, tlv.value.count > 8 else { preconditionFailure("channel failed") }
            }
        }

        // The raw floor on the same bytes; the three measured in turn, best round of each.
        let fixed = try script(hostChallenge: [1, 2, 3, 4, 5, 6, 7, 8])
        let raw = RawSCP03tCard(enc: keys.enc.bytes, mac: keys.mac.bytes, aid: aid.bytes, scripts: fixed)
        let sha256 = EVP_MD_fetch(nil, "SHA256", nil)!
        defer { EVP_MD_free(sha256) }
        var digest = [UInt8](repeating: 0, count: 32)
        var full = 0.0, channel = 0.0, floor = 0.0, hashing = 0.0
        for _ in 0..<rounds {
            full = max(full, try measureFull())
            channel = max(channel, try measureChannel())
            floor = max(floor, Bench.rate(seconds: seconds) { raw.run() })
            hashing = max(hashing, Bench.rate(seconds: seconds / 4) { precondition(EVP_Digest(package, package.count, &digest, nil, sha256, nil) == 1) })
        }
        return (full, channel, floor, 1 / (1 / floor + 1 / hashing))
    }
}

/// CMAC with a key used once (the receipt key is new for every establishment).
enum RawFreshCMAC {
    static func mac(_ algorithm: OpaquePointer, key: ArraySlice<UInt8>, _ data: [UInt8]) {
        let ctx = EVP_MAC_CTX_new(algorithm)
        defer { EVP_MAC_CTX_free(ctx) }
        let key = Array(key)
        var out = [UInt8](repeating: 0, count: 16)
        var length = 0
        precondition(m2m_cmac_init(ctx, key, key.count) == 1 && EVP_MAC_update(ctx, data, data.count) == 1
                     && EVP_MAC_final(ctx, &out, &length, 16) == 1)
    }
}

/// The card side of one SCP03t session done with raw OpenSSL calls on recorded host scripts: the
/// least any card must compute for the same download (i = 70, level 33). Every MAC it computes is
/// checked against the transmitted one, so the floor cannot skip work.
final class RawSCP03tCard {
    let enc: [UInt8]
    let mac: [UInt8]
    let aid: [UInt8]
    let hostChallenge: [UInt8]
    let authenticate: [UInt8]
    let segments: [[UInt8]]
    let cmacAlgorithm: OpaquePointer
    let ecb: OpaquePointer
    let cbc: OpaquePointer

    init(enc: [UInt8], mac: [UInt8], aid: [UInt8], scripts: [[TLV]]) {
        self.enc = enc
        self.mac = mac
        self.aid = aid
        hostChallenge = Array(scripts[0][0].value[2...])
        authenticate = scripts[0][1].value
        segments = scripts.dropFirst().map { $0[0].value }
        cmacAlgorithm = EVP_MAC_fetch(nil, "CMAC", nil)!
        ecb = EVP_CIPHER_fetch(nil, "AES-128-ECB", nil)!
        cbc = EVP_CIPHER_fetch(nil, "AES-128-CBC", nil)!
    }

    deinit {
        EVP_MAC_free(cmacAlgorithm)
        EVP_CIPHER_free(ecb)
        EVP_CIPHER_free(cbc)
    }

    func keyed(_ key: [UInt8]) -> OpaquePointer {
        let ctx = EVP_MAC_CTX_new(cmacAlgorithm)!
        precondition(m2m_cmac_init(ctx, key, key.count) == 1)
        return ctx
    }

    func cmac(_ template: OpaquePointer, _ parts: [UInt8]...) -> [UInt8] {
        let ctx = EVP_MAC_CTX_dup(template)
        defer { EVP_MAC_CTX_free(ctx) }
        for part in parts where !part.isEmpty { precondition(EVP_MAC_update(ctx, part, part.count) == 1) }
        var out = [UInt8](repeating: 0, count: 16)
        var length = 0
        precondition(EVP_MAC_final(ctx, &out, &length, 16) == 1)
        return out
    }

    func label(_ constant: UInt8, bits: Int) -> [UInt8] {
        [UInt8](repeating: 0, count: 11) + [constant, 0x00, UInt8(bits >> 8), UInt8(bits & 0xFF), 0x01]
    }

    func cipher(_ algorithm: OpaquePointer, key: [UInt8], iv: [UInt8]?, encrypt: Bool, _ input: [UInt8]) -> [UInt8] {
        let ctx = EVP_CIPHER_CTX_new()
        defer { EVP_CIPHER_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: input.count + 16)
        var n: Int32 = 0
        precondition(EVP_CipherInit_ex2(ctx, algorithm, key, iv, encrypt ? 1 : 0, nil) == 1 && EVP_CIPHER_CTX_set_padding(ctx, 0) == 1
                     && EVP_CipherUpdate(ctx, &out, &n, input, Int32(input.count)) == 1)
        out.removeSubrange(Int(n)...)
        return out
    }

    func counterBlock(_ counter: UInt32, first: UInt8) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 16)
        block[0] = first
        block[12] = UInt8(counter >> 24)
        block[13] = UInt8(counter >> 16 & 0xFF)
        block[14] = UInt8(counter >> 8 & 0xFF)
        block[15] = UInt8(counter & 0xFF)
        return block
    }

    func run() {
        // INITIALIZE UPDATE: pseudo-random card challenge, session keys, card cryptogram.
        let kENC = keyed(enc), kMAC = keyed(mac)
        defer { EVP_MAC_CTX_free(kENC); EVP_MAC_CTX_free(kMAC) }
        let challenge = Array(cmac(kENC, label(0x02, bits: 64), [0x00, 0x00, 0x01] + aid).prefix(8))
        let context = hostChallenge + challenge
        let sENC = cmac(kENC, label(0x04, bits: 128), context)
        let sMAC = keyed(cmac(kMAC, label(0x06, bits: 128), context))
        let sRMAC = keyed(cmac(kMAC, label(0x07, bits: 128), context))
        defer { EVP_MAC_CTX_free(sMAC); EVP_MAC_CTX_free(sRMAC) }
        _ = cmac(sMAC, label(0x00, bits: 64), context)
        // EXTERNAL AUTHENTICATE: host cryptogram and C-MAC.
        let hostCryptogram = Array(cmac(sMAC, label(0x01, bits: 64), context).prefix(8))
        precondition(Array(authenticate[1..<9]) == hostCryptogram)
        var mcv = cmac(sMAC, [UInt8](repeating: 0, count: 16), [0x85, 0x11, authenticate[0]], hostCryptogram)
        precondition(Array(mcv.prefix(8)) == Array(authenticate[9...]))
        // Segments: C-MAC, ICV, AES-CBC.
        var counter: UInt32 = 0
        for segment in segments {
            counter += 1
            let body = Array(segment.dropLast(8))
            mcv = cmac(sMAC, mcv, [0x86] + BERLength.encode(segment.count), body)
            precondition(Array(mcv.prefix(8)) == Array(segment.suffix(8)))
            let icv = cipher(ecb, key: sENC, iv: nil, encrypt: true, counterBlock(counter, first: 0x00))
            let plain = cipher(cbc, key: sENC, iv: icv, encrypt: false, body)
            precondition(plain.count == body.count)
        }
        // The final answer: R-ENC and R-MAC of the EUICCResponse.
        let icv = cipher(ecb, key: sENC, iv: nil, encrypt: true, counterBlock(counter, first: 0x80))
        let response = cipher(cbc, key: sENC, iv: icv, encrypt: true, Padding.iso9797M2(EUICCResponse.success.encoded))
        _ = cmac(sRMAC, mcv, [0x86] + BERLength.encode(response.count + 8), response)
    }
}
