// Seeded fuzzing of every entry of the card: APDUs, SCP03t TLVs, scripts and SCP80 packets. Nothing
// may crash; whatever the card refuses (an error status word, a 9F4x answer, a PoR status other than
// 00, a bad-format script, bytes that are not a packet) leaves its persistent state unchanged.

import M2MCore
import M2MCrypto
import M2MEmulator
import M2MTransport
import M2MTestKit
import M2MWire
import Testing

/// SplitMix64: a small seeded generator, so a failing case can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SeededGenerator {
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) } }

    /// Mostly plausible TLV bodies for ISD-R commands (AIDs of existing ISD-Ps, DGIs, nested TLVs),
    /// sometimes pure noise.
    mutating func commandData(aids: [AID]) -> [UInt8] {
        let aid = aids.randomElement(using: &self)?.bytes ?? bytes(16)
        switch Int.random(in: 0..<9, using: &self) {
        case 0: return bytes(Int.random(in: 0...40, using: &self))
        case 1: return TLV(0x4F, aid).encoded
        case 2: return DGI(UInt16(0x3A00 | UInt16.random(in: 0...9, using: &self)), TLV(0x4F, aid).encoded).encoded
        case 3: return DGI(0x3A08, TLV(0x4E, bytes(Int.random(in: 0...3, using: &self))).encoded).encoded
        case 4:
            var data = DGI(0x3A03, TLV(0x4F, aid).encoded).encoded
            data[Int.random(in: 0..<data.count, using: &self)] ^= UInt8.random(in: 1...255, using: &self)
            return data
        case 5:
            func lv(_ b: [UInt8]) -> [UInt8] { [UInt8(b.count)] + b }
            var parts = [lv(EUICC.elfAID.bytes), lv(EUICC.moduleAID.bytes), lv(bytes(Int.random(in: 0...17, using: &self))), lv([0x80, 0xC0, 0x00]),
                         lv(bytes(Int.random(in: 0...8, using: &self))), lv([])]
            if Bool.random(using: &self) { parts.removeLast() }
            return parts.flatMap { $0 }
        case 6: return TLV(0x4F, aid).encoded + TLV(0x5C, [0x4F, 0x9F, 0x70]).encoded
        case 7: return [0x00, 0x00, UInt8.random(in: 0...20, using: &self)] + aid + [0x00, 0x00, 0x00]
        default: return DGI(0x3A01, bytes(Int.random(in: 0...60, using: &self))).encoded
        }
    }
}

@Suite("Malformed inputs")
struct MalformedInputTests {
    /// A card with two Profiles (A enabled with the Fall-Back attribute, B disabled) and a
    /// PERSONALIZED ISD-P C with known SCP03 keys.
    static func card(curve: Curve = .p256) throws -> (EUICC, SCP03Keys) {
        let pki = try TestPKI.generate(curve: curve)
        var card = EUICC(identity: CardIdentity(seed: Array("fuzz".utf8), index: 3, curve: curve), ciPublicKey: pki.ci.publicKey)
        let keys = SCP03Keys(keyVersion: 0x30, enc: SecureBytes([UInt8](repeating: 1, count: 16)), mac: SecureBytes([UInt8](repeating: 2, count: 16)),
                             dek: SecureBytes([UInt8](repeating: 3, count: 16)))
        let made = card.manufacture(ISDP(aid: Platform.aid(0x10), lifeCycle: .enabled, fallBack: true, allocatedMemory: 4000))
            && card.manufacture(ISDP(aid: Platform.aid(0x11), lifeCycle: .disabled, pol1: .deletionNotAllowed, allocatedMemory: 4000))
            && card.manufacture(ISDP(aid: Platform.aid(0x12), lifeCycle: .personalized, allocatedMemory: 0), keys: keys)
        #expect(made)
        return (card, keys)
    }

    @Test("Random APDUs: every refusal is a status word and leaves the card unchanged")
    func apdus() throws {
        var (card, _) = try Self.card()
        var rng = SeededGenerator(seed: 0x5EED_0001)
        let aids = card.isdps.map(\.aid) + [Platform.aid(0x7E)]
        var refused = 0
        for _ in 0..<4000 {
            let cla: UInt8 = [0x80, 0x80, 0x80, 0x00, 0x84, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            let ins: UInt8 = [0xE6, 0xE2, 0xE4, 0xF2, 0xCA, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            let p1: UInt8 = [0x0C, 0x20, 0x88, 0x89, 0x40, 0x00, 0xFF, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            let p2: UInt8 = [0x00, 0x02, 0x40, 0x5A, 0x21, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            let command = CommandAPDU(cla: cla, ins: ins, p1: p1, p2: p2, data: Array(rng.commandData(aids: aids).prefix(255)))
            let before = card.encodedState()
            let response = card.process(command)
            if !response.sw.isSuccessOrWarning {
                refused += 1
                #expect(card.encodedState() == before, "\(command) → \(response)")
            }
            // Keep the card interesting: put it back when a command emptied it.
            if card.isdps.count < 2 { (card, _) = try Self.card() }
        }
        #expect(refused > 2000)
    }

    @Test("Random SCP03t TLVs: 9F44/9F45/9F46 answers, never a crash, the card unchanged unless a session opened")
    func scp03t() throws {
        var (card, keys) = try Self.card()
        var rng = SeededGenerator(seed: 0x5EED_0002)
        let target = Platform.aid(0x12)
        for round in 0..<1500 {
            var items: [TLV] = []
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let tag: TLVTag = [0x84, 0x85, 0x86, 0x9F44, 0x22, TLVTag(UInt32.random(in: 1...0xFE, using: &rng))].randomElement(using: &rng)!
                var value = rng.bytes(Int.random(in: 0...40, using: &rng))
                if tag == 0x84, Bool.random(using: &rng) { value = [0x30, 0x00] + rng.bytes(8) }
                items.append(TLV(tag, value))
            }
            if round % 50 == 0 {
                // A real opening now and then, so later noise meets an open session.
                var host = SCP03tHost(keys: keys, aid: target.bytes)
                let counter = (card.isdp(target)?.sequenceCounter ?? 0) + 1
                items = [host.initializeUpdate(), try host.precomputedExternalAuthenticate(sequenceCounter: counter)] + items
            }
            let before = card.encodedState()
            let answers = card.processSCP03t(items, target: round % 7 == 0 ? Platform.aid(0x10) : target)
            #expect(!answers.isEmpty)
            let opened = answers.contains { $0.tag == 0x84 && $0.value.count == 32 }
            if !opened, answers.allSatisfy({ [0x9F44, 0x9F45, 0x9F46].contains($0.tag.rawValue) }) {
                #expect(card.encodedState() == before)
            }
        }
        (card, keys) = try Self.card()
        #expect(card.processSCP03t([TLV(0x86, rng.bytes(24))], target: target) == [TLV(0x9F46, [0x02])])
    }

    @Test("Random scripts: bad format or per-command status words; refused scripts change nothing")
    func scripts() throws {
        var (card, _) = try Self.card()
        var rng = SeededGenerator(seed: 0x5EED_0003)
        let aids = card.isdps.map(\.aid)
        for _ in 0..<2000 {
            var bytes: [UInt8]
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: bytes = rng.bytes(Int.random(in: 0...60, using: &rng))
            case 1:
                let items = (0..<Int.random(in: 0...3, using: &rng)).map { _ in TLV(0x22, rng.bytes(Int.random(in: 0...12, using: &rng))) }
                bytes = ExpandedCommandScript(items: items, coding: Bool.random(using: &rng) ? .definite : .indefinite).encoded
            case 2:
                let command = CommandAPDU(cla: 0x80, ins: 0xE2, p1: 0x88, p2: 0, data: Array(rng.commandData(aids: aids).prefix(255)))
                bytes = ExpandedCommandScript(commands: [command]).encoded
            default:
                bytes = ExpandedCommandScript(commands: [CommandAPDU(cla: 0x80, ins: 0xCA, p1: 0x00, p2: 0x5A)]).encoded
                bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            }
            let before = card.encodedState()
            let target: ScriptTarget = Bool.random(using: &rng) ? .isdR : .isdP(aids.randomElement(using: &rng)!)
            let answer = card.processScript(bytes, target: target)
            let response = try ExpandedResponseScript(bytes: answer)  // always a well-formed AB/AF
            let badFormat = response.otherItems.contains { $0.tag == ExpandedResponseScript.badFormatTag }
            if badFormat || response.responses.allSatisfy({ !$0.sw.isSuccessOrWarning }) {
                #expect(card.encodedState() == before, "\(Hex.encode(bytes))")
            }
            if card.isdps.count < 2 { (card, _) = try Self.card() }
        }
    }

    @Test("Mutated SCP80 packets: a PoR status, or nothing at all; the card unchanged unless the packet was accepted")
    func scp80Packets() throws {
        let (card, _) = try Self.card()
        var rng = SeededGenerator(seed: 0x5EED_0004)
        var peer = try SCP80Peer(keys: card.identity.scp80KeySet)
        var working = card
        var accepted = 0, rejected = 0, ignored = 0
        for round in 0..<1500 {
            let spi = [SCP80Peer.defaultSPI, SCP80SPI(counter: .higher, ciphered: true, integrity: .cryptographicChecksum, por: .onErrorOnly),
                       SCP80SPI(counter: .noReplayCheck, ciphered: false, integrity: .none, por: .required)].randomElement(using: &rng)!
            let command = try peer.secure(ExpandedCommandScript(commands: [SMSBench.getStatus(Platform.aid(0x10)), SMSBench.store(0x3A03, Platform.aid(0x11))]), spi: spi)
            var packet = command.userData
            switch round % 5 {
            case 0: break
            case 1: packet[Int.random(in: 0..<packet.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            case 2: packet = Array(packet.prefix(Int.random(in: 0..<packet.count, using: &rng)))
            case 3: packet += rng.bytes(Int.random(in: 1...8, using: &rng))
            default: packet = [0x02, 0x70, 0x00] + rng.bytes(Int.random(in: 0...60, using: &rng))
            }
            let before = working.encodedState()
            do {
                let delivery = try working.receiveSMS(packet)
                if delivery.status == .ok {
                    accepted += 1
                } else {
                    rejected += 1
                    #expect(working.encodedState() == before, "round \(round): \(delivery.status)")
                }
            } catch {
                ignored += 1
                #expect(working.encodedState() == before)
            }
            if working.enabledISDP?.aid == Platform.aid(0x11) {
                _ = working.process(SMSBench.store(0x3A04, Platform.aid(0x11)))  // back to A
            }
        }
        #expect(accepted > 100)
        #expect(rejected > 100)
        #expect(ignored > 100)
    }
}
