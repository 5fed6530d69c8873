// The card's SCP80 side driven as the SM-SR drives it: AA scripts in secured packets over the
// in-process transport, PoRs with AB scripts opened by the sender, MO notifications, ISD-P TARs
// (SCP03t and SCP03 APDU mode), and every rejection with its PoR status and the card unchanged.

import M2MCore
import M2MCrypto
import M2MEmulator
import M2MTransport
import M2MTestKit
import M2MWire
import Testing

/// A small fleet with two Profiles manufactured on card 1: A (fall-back, enabled) and B (disabled).
struct SMSBench {
    static let a = Platform.aid(0x10)
    static let b = Platform.aid(0x11)
    static let iccidA = try! ICCID(withoutCheckDigit: "894450000000000012")
    static let iccidB = try! ICCID(withoutCheckDigit: "894450000000000034")

    let pki: TestPKI
    let fleet: Fleet
    let transport: InProcessTransport
    let index = 1
    var eid: EID { fleet.eid(at: index) }

    init(curve: Curve = .p256) throws {
        pki = try TestPKI.generate(curve: curve)
        fleet = try Fleet(seed: Array("scp80-tests".utf8), count: 4, curve: curve, ciPublicKey: pki.ci.publicKey, eum: EUMIssuer(key: pki.eumKey))
        transport = InProcessTransport(fleet: fleet)
        let ok = fleet.withCard(at: 1) { card in
            card.manufacture(ISDP(aid: SMSBench.a, lifeCycle: .enabled, iccid: SMSBench.iccidA, profileType: "TS.48", fallBack: true,
                                  allocatedMemory: 16_000))
                && card.manufacture(ISDP(aid: SMSBench.b, lifeCycle: .disabled, iccid: SMSBench.iccidB, allocatedMemory: 16_000))
        }
        #expect(ok)
    }

    func peer(tar: SCP80TAR = .isdR, counter: SCP80Counter = .zero) throws -> SCP80Peer {
        try SCP80Peer(keys: fleet.identity(at: index).scp80KeySet, tar: tar, counter: counter)
    }

    static func getStatus(_ aid: AID) -> CommandAPDU {
        CommandAPDU(cla: 0x80, ins: 0xF2, p1: 0x40, p2: 0x02, data: TLV(0x4F, aid.bytes).encoded + TLV(0x5C, [0x4F, 0x9F, 0x70]).encoded, le: 0)
    }

    static func store(_ dgi: UInt16, _ aid: AID) -> CommandAPDU {
        .storeData(p1: 0x88, data: DGI(dgi, TLV(0x4F, aid.bytes).encoded).encoded)
    }

    /// Sends `commands` to the ISD-R in one packet and opens the PoR.
    func send(_ commands: [CommandAPDU], with peer: inout SCP80Peer, spi: SCP80SPI = SCP80Peer.defaultSPI) throws
        -> (por: SCP80ReceivedPoR, script: ExpandedResponseScript?)
    {
        let command = try peer.secure(ExpandedCommandScript(commands: commands), spi: spi)
        let por = try #require(try transport.deliverSMS(command.userData, to: eid))
        return try peer.open(por, for: command)
    }
}

@Suite("SCP80 endpoint")
struct SCP80EndpointTests {
    @Test("An AA script in a secured packet runs on the ISD-R; the PoR carries the AB script", arguments: Curve.allCases)
    func endToEnd(curve: Curve) throws {
        let bench = try SMSBench(curve: curve)
        var peer = try bench.peer()
        let (por, script) = try bench.send([SMSBench.getStatus(SMSBench.a), SMSBench.store(0x3A03, SMSBench.b)], with: &peer)
        #expect(por.status == .ok)
        #expect(por.isAuthenticated)
        #expect(por.counter == 1)
        let response = try #require(script)
        #expect(response.coding == .definite)
        #expect(response.executedCommands == 2)
        #expect(response.responses == [
            ResponseAPDU(data: TLV(0xE3, children: [TLV(0x4F, SMSBench.a.bytes), TLV(0x9F70, [0x3F])]).encoded, sw: .success),
            ResponseAPDU(sw: .success),
        ])
        let card = bench.fleet.card(at: bench.index)
        #expect(card.enabledISDP?.aid == SMSBench.b)
        #expect(card.scp80Counter == 1)

        // The card reports the change MO; the SM-SR opens the packet and confirms over SCP80.
        let mo = try bench.transport.moMessages(from: bench.eid)
        #expect(mo.count == 1)
        #expect(mo[0].count <= 140)
        let payload = try peer.openMO(mo[0])
        let e1 = try TLV.parseOne(payload)
        #expect(e1.tag == 0xE1)
        #expect(try e1.child(0x4C)?.value == bench.eid.bytes)
        #expect(try e1.child(0x4D)?.value == [0x02])
        #expect(try e1.child(0x4F)?.value == SMSBench.b.bytes)
        let sequence = try #require(try e1.child(0x4E)).value
        let confirm = CommandAPDU.storeData(p1: 0x89, data: DGI(0x3A08, TLV(0x4E, sequence).encoded).encoded, le: 0)
        let (confirmed, answer) = try bench.send([confirm], with: &peer)
        #expect(confirmed.status == .ok)
        #expect(answer?.responses == [ResponseAPDU(data: [0x80, 0x00], sw: .success)])
        #expect(try bench.transport.moMessages(from: bench.eid).isEmpty)
        #expect(bench.fleet.card(at: bench.index).scp80Counter == 2)
    }

    @Test("The script stops at the first failing command; the count says how many ran")
    func stopsAtFailure() throws {
        let bench = try SMSBench()
        var peer = try bench.peer()
        let (_, script) = try bench.send([SMSBench.store(0x3A04, SMSBench.b), SMSBench.getStatus(SMSBench.a)], with: &peer)
        #expect(script?.executedCommands == 1)
        #expect(script?.responses.map(\.sw) == [.conditionsNotSatisfied])
    }

    @Test("Indefinite scripts (AE) are answered AF")
    func indefinite() throws {
        let bench = try SMSBench()
        var peer = try bench.peer()
        let command = try peer.secure(ExpandedCommandScript(commands: [SMSBench.getStatus(SMSBench.b)], coding: .indefinite))
        let (por, script) = try peer.open(try #require(try bench.transport.deliverSMS(command.userData, to: bench.eid)), for: command)
        #expect(por.status == .ok)
        #expect(por.data.first == 0xAF)
        #expect(script?.coding == .indefinite)
        #expect(script?.responses.first?.data == TLV(0xE3, children: [TLV(0x4F, SMSBench.b.bytes), TLV(0x9F70, [0x1F])]).encoded)
    }

    @Test("Replayed and low counters, a bad CC, an unknown TAR, a weak SPI: the PoR status says so and the card is unchanged")
    func rejections() throws {
        let bench = try SMSBench()
        var peer = try bench.peer()
        let first = try peer.secure(ExpandedCommandScript(commands: [SMSBench.store(0x3A03, SMSBench.b)]))
        #expect(try peer.open(try #require(try bench.transport.deliverSMS(first.userData, to: bench.eid)), for: first).por.status == .ok)
        let before = bench.fleet.record(at: bench.index)
        #expect(!before.isEmpty)

        func status(_ userData: [UInt8], for command: SCP80SecuredCommand, with peer: SCP80Peer) throws -> (SCP80PoRStatus, Bool) {
            let por = try #require(try bench.transport.deliverSMS(userData, to: bench.eid))
            let opened = try peer.open(por, for: command).por
            return (opened.status, opened.isAuthenticated)
        }
        // The same packet again: counter low, in a PoR secured with the card's keys.
        #expect(try status(first.userData, for: first, with: peer) == (.counterLow, true))
        // A lower counter from a sender that lost track.
        var stale = try bench.peer(counter: .zero)
        let low = try stale.secure(ExpandedCommandScript(commands: [SMSBench.store(0x3A04, SMSBench.b)]))
        #expect(try status(low.userData, for: low, with: stale) == (.counterLow, true))
        // A flipped byte in the ciphertext: the CC fails, the PoR is unsecured.
        let good = try peer.secure(ExpandedCommandScript(commands: [SMSBench.store(0x3A04, SMSBench.b)]))
        var tampered = good.userData
        tampered[tampered.count - 3] ^= 0x40
        #expect(try status(tampered, for: good, with: peer) == (.integrityFailed, false))
        // A TAR no application answers for.
        var stranger = try bench.peer(tar: 0x00ABCD, counter: 10)
        let unknown = try stranger.secure(ExpandedCommandScript(commands: [SMSBench.getStatus(SMSBench.a)]))
        #expect(try status(unknown.userData, for: unknown, with: stranger) == (.tarUnknown, false))
        // No ciphering: below the ISD-R's minimum security level.
        let weakSPI = SCP80SPI(counter: .higher, ciphered: false, integrity: .cryptographicChecksum, por: .required)
        let weak = try peer.secure(ExpandedCommandScript(commands: [SMSBench.store(0x3A04, SMSBench.b)]), spi: weakSPI)
        #expect(try status(weak.userData, for: weak, with: peer) == (.insufficientSecurityLevel, false))
        // Keys of another card.
        var other = try SCP80Peer(keys: bench.fleet.identity(at: 2).scp80KeySet, counter: 20)
        let foreign = try other.secure(ExpandedCommandScript(commands: [SMSBench.store(0x3A04, SMSBench.b)]))
        #expect(try status(foreign.userData, for: foreign, with: other) == (.integrityFailed, false))
        // A counter far ahead is accepted ("higher" mode), so the rejections above changed nothing.
        #expect(bench.fleet.record(at: bench.index) == before)
        #expect(bench.fleet.card(at: bench.index).scp80Counter == 1)
        // Not a packet at all: nothing to answer.
        #expect(throws: TransportError.self) { try bench.transport.deliverSMS([0x02, 0x70, 0x00, 0x00, 0x01], to: bench.eid) }
        #expect(throws: TransportError.self) { try bench.transport.deliverSMS(first.userData, to: try EID(prefix30: "890490320000000000000000000099")) }
        #expect(bench.fleet.record(at: bench.index) == before)
        // The SM-SR's own next packet still goes through.
        let (next, _) = try bench.send([SMSBench.getStatus(SMSBench.b)], with: &peer)
        #expect(next.status == .ok)
    }

    @Test("An authentic packet whose script is malformed: bad format 90, nothing executed, the counter moves")
    func badFormat() throws {
        let bench = try SMSBench()
        var peer = try bench.peer()
        let profiles = bench.fleet.card(at: bench.index).isdps
        // A 22 item holding a truncated APDU, then an unknown item.
        for items in [[TLV(0x22, [0x80, 0xE2, 0x88]), TLV(0x22, SMSBench.store(0x3A03, SMSBench.b).bytes)],
                      [TLV(0x22, SMSBench.store(0x3A03, SMSBench.b).bytes), TLV(0x84, [1, 2, 3])]] {
            let command = try peer.secure(ExpandedCommandScript(items: items))
            let (por, script) = try peer.open(try #require(try bench.transport.deliverSMS(command.userData, to: bench.eid)), for: command)
            #expect(por.status == .ok)
            #expect(script?.executedCommands == 0)
            #expect(script?.otherItems.first?.tag == 0x90)
        }
        #expect(bench.fleet.card(at: bench.index).isdps == profiles)
        #expect(bench.fleet.card(at: bench.index).scp80Counter == 2)
    }

    @Test("An ISD-P's TAR reaches the ISD-P: SCP03t TLVs and an SCP03 APDU-mode session over SMS")
    func isdpTARs() throws {
        let bench = try SMSBench()
        let c = try AID(text: "A0000005591010FFFFFFFF8900001200")  // TAR 000012 (A and B share TAR 000010)
        let keys = SCP03Keys(keyVersion: 0x30, enc: SecureBytes(SecureRandom.bytes(16)), mac: SecureBytes(SecureRandom.bytes(16)),
                             dek: SecureBytes(SecureRandom.bytes(16)))
        let made = bench.fleet.withCard(at: bench.index) { $0.manufacture(ISDP(aid: c, lifeCycle: .personalized, allocatedMemory: 0), keys: keys) }
        #expect(made)
        let tar = try SCP80TAR(bytes: c.bytes[12..<15])
        var peer = try bench.peer(tar: tar)

        // SCP03t: INITIALIZE UPDATE and the precomputed EXTERNAL AUTHENTICATE in one packet.
        var host = SCP03tHost(keys: keys, aid: c.bytes)
        let open = try peer.secure(ExpandedCommandScript(items: [host.initializeUpdate(), try host.precomputedExternalAuthenticate(sequenceCounter: 1)]))
        let (por, script) = try peer.open(try #require(try bench.transport.deliverSMS(open.userData, to: bench.eid)), for: open)
        #expect(por.status == .ok)
        #expect(por.packet.tar == tar)
        let answers = try #require(script).otherItems
        #expect(answers.map(\.tag) == [0x84, 0x85])
        try host.processInitializeUpdate(answers[0])
        try host.processExternalAuthenticate(answers[1])

        // SCP03 APDU mode: INITIALIZE UPDATE, then EXTERNAL AUTHENTICATE and a wrapped STORE DATA 3A07.
        var apdu = SCP03Host(keys: keys)
        let (_, first) = try bench.send([apdu.initializeUpdate()], with: &peer)
        let iu = try #require(first?.responses.first)
        #expect(iu.sw == .success)
        try apdu.processInitializeUpdate(response: iu.data)
        let parameters = DGI(0x3A07, TLV(0xA0, children: [TLV(0x06, [0x91, 0x44, 0x77, 0x00, 0x90, 0x01, 0x23])]).encoded).encoded
        let authenticate = try apdu.externalAuthenticate(level: .full)
        let store = try apdu.wrap(.storeData(p1: 0x88, data: parameters))
        let (_, second) = try bench.send([authenticate, store], with: &peer)
        let responses = try #require(second).responses
        #expect(responses.map(\.sw) == [.success, .success])
        #expect(try apdu.unwrap(responses[1]).sw == .success)
        let isdp = try #require(bench.fleet.card(at: bench.index).isdp(c))
        #expect(isdp.connectivityParameters == Array(parameters[3...]))
        #expect(isdp.sequenceCounter == 2)
        // Unwrapped commands are refused inside the ISD-P.
        let (_, third) = try bench.send([.storeData(p1: 0x88, data: parameters)], with: &peer)
        #expect(third?.responses.map(\.sw) == [.securityStatusNotSatisfied])
    }

    @Test("MO notifications: counter zero with the no-counter SPI by default, or the card's increasing MO counter")
    func moCounters() throws {
        let bench = try SMSBench()
        var peer = try bench.peer()
        _ = try bench.send([SMSBench.store(0x3A03, SMSBench.b), SMSBench.store(0x3A04, SMSBench.b)], with: &peer)
        let plain = try bench.transport.moMessages(from: bench.eid)
        #expect(plain.count == 2)
        for packet in plain {
            let fields = try SCP80CommandPacket(userData: packet)
            #expect(fields.spi.counter == .none)
            #expect(fields.spi.ciphered)
            #expect(fields.spi.por == .none)
            #expect(fields.tar == .isdR)
        }
        // Sent again until confirmed.
        #expect(try bench.transport.moMessages(from: bench.eid).count == 2)
        let counting = InProcessTransport(fleet: bench.fleet, moCounterMode: .increasing)
        var receiver = try SCP80Receiver(tars: [.isdR], keySets: [bench.fleet.identity(at: bench.index).scp80KeySet],
                                         minimumSecurityLevel: SCP80MinimumSecurityLevel(counter: .higher, ciphering: true, integrity: .cryptographicChecksum))
        for packet in try counting.moMessages(from: bench.eid) {
            guard case .accepted = try receiver.receive(packet) else { Issue.record("MO packet refused"); return }
        }
        #expect(bench.fleet.card(at: bench.index).moCounter == 2)
        #expect(receiver.counter(keyVersion: 1) == 2)
        let replayed = try counting.moMessages(from: bench.eid)
        #expect(try SCP80CommandPacket(userData: replayed[0]) != SCP80CommandPacket(userData: plain[0]))
        #expect(bench.fleet.card(at: bench.index).moCounter == 4)
    }

    @Test("The loopback datagram framing carries MT packets, PoRs and MO polls")
    func datagrams() throws {
        let bench = try SMSBench()
        var peer = try bench.peer()
        let command = try peer.secure(ExpandedCommandScript(commands: [SMSBench.store(0x3A03, SMSBench.b)]))
        let answer = SCP80Datagram.handle(SCP80Datagram.smsRequest(eid: bench.eid, userData: command.userData), transport: bench.transport)
        #expect(Array(answer.prefix(2)) == [0x81, 0x00])
        #expect(try peer.open(Array(answer.dropFirst(2)), for: command).por.status == .ok)
        let poll = SCP80Datagram.handle(SCP80Datagram.pollRequest(eid: bench.eid), transport: bench.transport)
        let packets = try #require(SCP80Datagram.moPackets(in: poll))
        #expect(packets.count == 1)
        #expect(try TLV.parseOne(try peer.openMO(packets[0])).tag == 0xE1)
        let stranger = try EID(prefix30: "890490320000000000000000000099")
        #expect(SCP80Datagram.handle(SCP80Datagram.pollRequest(eid: stranger), transport: bench.transport) == [0x82, 0xE1])
        #expect(SCP80Datagram.handle(SCP80Datagram.smsRequest(eid: bench.eid, userData: [1, 2, 3]), transport: bench.transport) == [0x81, 0xE2])
        #expect(SCP80Datagram.handle([0x07, 0x01], transport: bench.transport) == [0xFF, 0xE3])
        let noPoR = SCP80SPI(counter: .higher, ciphered: true, integrity: .cryptographicChecksum, por: .none)
        let silent = try peer.secure(ExpandedCommandScript(commands: [SMSBench.getStatus(SMSBench.a)]), spi: noPoR)
        #expect(SCP80Datagram.handle(SCP80Datagram.smsRequest(eid: bench.eid, userData: silent.userData), transport: bench.transport) == [0x81, 0x01])
    }
}
