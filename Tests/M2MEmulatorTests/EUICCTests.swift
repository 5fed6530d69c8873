// The emulated eUICC driven through bytes only, as the SM-SR and SM-DP would drive a real card:
// CreateISDP, key establishment (scenario #3), SCP03t download of every TS.48 profile, enable,
// disable with fall-back, delete, GET STATUS, notifications — and the error status words.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MTransport
import M2MTestKit
import M2MWire
import Testing

enum Fixtures {
    static let profiles = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("M2MWireTests/Fixtures/profiles")

    static func all() throws -> [(String, [UInt8])] {
        try FileManager.default.contentsOfDirectory(atPath: profiles.path).filter { $0.hasSuffix(".der") }.sorted().map {
            ($0, Array(try Data(contentsOf: profiles.appendingPathComponent($0))))
        }
    }
}

/// The platform side, reduced to the bytes it sends.
struct Platform {
    let pki: TestPKI
    var card: EUICC

    init(curve: Curve) throws {
        pki = try TestPKI.generate(curve: curve)
        card = EUICC(identity: CardIdentity(seed: Array("fleet-seed".utf8), index: 7, curve: curve), ciPublicKey: pki.ci.publicKey)
    }

    static func aid(_ n: UInt8) -> AID { try! AID(bytes: Hex.decode("A0000005591010FFFFFFFF89000010")! + [n]) }

    func createISDPCommand(_ aid: AID, memory: Int? = nil) -> CommandAPDU { Self.createISDP(aid, memory: memory) }

    static func createISDP(_ aid: AID, memory: Int? = nil) -> CommandAPDU {
        func lv(_ b: [UInt8]) -> [UInt8] { [UInt8(b.count)] + b }
        var parameters: [UInt8] = [0xC9, 0x04, 0x81, 0x02, 0x03, 0x70]
        if let memory { parameters += TLV(0xEF, children: [TLV(0x83, [UInt8(memory >> 8), UInt8(memory & 0xFF)])]).encoded }
        let data = lv(EUICC.elfAID.bytes) + lv(EUICC.moduleAID.bytes) + lv(aid.bytes) + lv([0x80, 0xC0, 0x00]) + lv(parameters) + lv([])
        return CommandAPDU(cla: 0x80, ins: 0xE6, p1: 0x0C, p2: 0x00, data: data, le: 0x00)
    }

    /// CreateISDP + key establishment; returns the ISD-P's new keys as the SM-DP derived them.
    mutating func createAndPersonalize(_ aid: AID) throws -> SCP03Keys {
        #expect(card.process(createISDPCommand(aid)).bytes == [0x00, 0x90, 0x00])
        let perso = CommandAPDU(cla: 0x80, ins: 0xE6, p1: 0x20, p2: 0x00, data: [0x00, 0x00, 0x10] + aid.bytes + [0x00, 0x00, 0x00], le: 0x00)
        #expect(card.process(perso).sw == .success)
        var host = try KeyEstablishmentHost(
            certificate: pki.smdp.certificate!, signingKey: pki.smdp.key!,
            ecasdPublicKey: try card.identity.ecasdKey().publicKey)
        let first = card.process(.storeData(p1: 0x89, data: host.certificateData(), le: 0x00))
        #expect(first.sw == .success)
        let second = card.process(.storeData(p1: 0x89, block: 1, data: try host.keyAgreementData(cardResponse: first.data), le: 0x00))
        #expect(second.sw == .success)
        return try host.processReceipt(cardResponse: second.data)
    }

    /// SCP03t download of `package` in `segmentSize` segments; returns the card's EUICCResponse.
    mutating func download(_ package: [UInt8], into aid: AID, keys: SCP03Keys, segmentSize: Int = 1024) throws -> [UInt8] {
        var host = SCP03tHost(keys: keys, aid: aid.bytes)
        let counter = (card.isdp(aid).map { _ in UInt32(1) }) ?? 1
        let open = card.processSCP03t([host.initializeUpdate(), try host.precomputedExternalAuthenticate(sequenceCounter: counter)], target: aid)
        try #require(open.count == 2)
        try host.processInitializeUpdate(open[0])
        try host.processExternalAuthenticate(open[1])
        var final: [UInt8]?
        for start in stride(from: 0, to: package.count, by: segmentSize) {
            let answers = card.processSCP03t([try host.segment(Array(package[start..<min(start + segmentSize, package.count)]))], target: aid)
            try #require(answers.count == 1)
            if let plain = try host.processSegmentResponse(answers[0]) {
                final = plain  // the card answered with its EUICCResponse: the download is over
                break
            }
        }
        return try #require(final)
    }
}

@Suite("Emulated eUICC")
struct EUICCTests {
    @Test("Every TS.48 profile installs over SCP03t after a real key establishment", arguments: Curve.allCases)
    func downloadAllFixtures(curve: Curve) throws {
        var platform = try Platform(curve: curve)
        let fixtures = try Fixtures.all()
        #expect(fixtures.count == 3)
        for (k, (name, package)) in fixtures.enumerated() {
            let aid = Platform.aid(UInt8(k))
            let keys = try platform.createAndPersonalize(aid)
            #expect(platform.card.isdp(aid)?.lifeCycle == .personalized)
            let response = try platform.download(package, into: aid, keys: keys, segmentSize: [1024, 512, 1020][k % 3])
            #expect(response == EUICCResponse.success.encoded, "\(name)")
            let isdp = try #require(platform.card.isdp(aid))
            #expect(isdp.lifeCycle == .disabled)
            #expect(isdp.profileDigest == SHA256.hash(package))
            #expect(isdp.iccid != nil)
        }
        #expect(platform.card.isdps.count == 3)
    }

    @Test("Personalised copies of one template (ICCID, IMSI, Ki, OPc per order) install as distinct Profiles")
    func personalisedPackages() throws {
        var platform = try Platform(curve: .p256)
        let template = try #require(try Fixtures.all().first).1
        for k in 0..<3 {
            let order = ProfilePersonalization(iccid: try ICCID(withoutCheckDigit: "89445000000000001\(k)"), imsi: try IMSI(text: "20801000000000\(k)"),
                                               ki: [UInt8](repeating: UInt8(k + 1), count: 16), opc: [UInt8](repeating: UInt8(k + 9), count: 16))
            let package = try ProfilePackage.personalize(template, with: order)
            let aid = Platform.aid(UInt8(k))
            let keys = try platform.createAndPersonalize(aid)
            #expect(try platform.download(package, into: aid, keys: keys) == EUICCResponse.success.encoded)
            let isdp = try #require(platform.card.isdp(aid))
            #expect(isdp.iccid?.digits == order.iccid.digits && isdp.profileDigest == SHA256.hash(package))
        }
        #expect(Set(platform.card.isdps.compactMap(\.iccid?.digits)).count == 3)
    }

    @Test("Enable, disable to the Fall-Back Profile, delete; notifications and their confirmation")
    func lifeCycle() throws {
        var platform = try Platform(curve: .p256)
        let (_, package) = try Fixtures.all()[0]
        let a = Platform.aid(0x10), b = Platform.aid(0x11)
        for aid in [a, b] {
            let keys = try platform.createAndPersonalize(aid)
            _ = try platform.download(package.count > 0 ? package : [], into: aid, keys: keys)
        }
        func store(_ dgi: UInt16, _ aid: AID) -> ResponseAPDU {
            platform.card.process(.storeData(p1: 0x88, data: DGI(dgi, TLV(0x4F, aid.bytes).encoded).encoded))
        }
        #expect(store(0x3A05, a).sw == .success)              // a gets the Fall-Back Attribute
        #expect(store(0x3A03, b).sw == .success)              // enable b
        #expect(platform.card.enabledISDP?.aid == b)
        #expect(store(0x3A03, b).sw == .conditionsNotSatisfied) // already enabled
        #expect(platform.card.pendingNotifications.count == 1)
        let payload = try #require(platform.card.notificationPayloads().first)
        let e1 = try TLV.parseOne(payload)
        #expect(e1.tag == 0xE1)
        #expect(try e1.child(0x4C)?.value == platform.card.eid.bytes)
        #expect(try e1.child(0x4D)?.value == [0x02])
        #expect(try e1.child(0x4F)?.value == b.bytes)
        // Confirm it: 3A08 { 4E seq }.
        let seq = try #require(try e1.child(0x4E)).value
        #expect(platform.card.process(.storeData(p1: 0x89, data: DGI(0x3A08, TLV(0x4E, seq).encoded).encoded)).sw == .success)
        #expect(platform.card.pendingNotifications.isEmpty)
        #expect(platform.card.process(.storeData(p1: 0x89, data: DGI(0x3A08, TLV(0x4E, seq).encoded).encoded)).sw == .referencedDataNotFound)

        #expect(store(0x3A04, b).sw == .success)               // disable b → a (fall-back) enabled
        #expect(platform.card.enabledISDP?.aid == a)
        #expect(store(0x3A04, a).sw == .conditionsNotSatisfied) // the fall-back profile cannot be disabled
        let delete = { (aid: AID) in platform.card.process(CommandAPDU(cla: 0x80, ins: 0xE4, p1: 0x00, p2: 0x40, data: TLV(0x4F, aid.bytes).encoded)) }
        #expect(delete(a).sw == .conditionsNotSatisfied)       // enabled and fall-back
        #expect(delete(b).sw == .success)
        #expect(delete(b).sw == .referencedDataNotFound)
        let status = platform.card.process(CommandAPDU(cla: 0x80, ins: 0xF2, p1: 0x40, p2: 0x02,
                                                       data: TLV(0x4F, a.bytes).encoded + TLV(0x5C, [0x4F, 0x9F, 0x70]).encoded, le: 0))
        #expect(status.data == TLV(0xE3, children: [TLV(0x4F, a.bytes), TLV(0x9F70, [0x3F])]).encoded)
        let missing = platform.card.process(CommandAPDU(cla: 0x80, ins: 0xF2, p1: 0x40, p2: 0x02, data: TLV(0x4F, b.bytes).encoded, le: 0))
        #expect(missing.sw == .referencedDataNotFound)
    }

    @Test("Error status words leave the card unchanged")
    func errors() throws {
        var platform = try Platform(curve: .p256)
        let aid = Platform.aid(0x20)
        #expect(platform.card.process(platform.createISDPCommand(aid, memory: 0xFFFF)).sw == .success)
        #expect(platform.card.process(platform.createISDPCommand(aid)).sw == .wrongData)          // exists
        #expect(platform.card.process(platform.createISDPCommand(Platform.aid(0x21), memory: 0xFFFF)).sw == .success)
        let before = platform.card.isdps
        #expect(platform.card.process(platform.createISDPCommand(Platform.aid(0x22), memory: 0xFFFF)).sw == .success)
        #expect(platform.card.process(platform.createISDPCommand(Platform.aid(0x23), memory: 0xFFFF)).sw == .success)
        #expect(platform.card.process(platform.createISDPCommand(Platform.aid(0x24), memory: 0xFFFF)).sw == .success)
        #expect(platform.card.process(platform.createISDPCommand(Platform.aid(0x25), memory: 0xFFFF)).sw == .success)
        #expect(platform.card.process(platform.createISDPCommand(Platform.aid(0x26), memory: 0xFFFF)).sw == .success)
        #expect(platform.card.process(platform.createISDPCommand(Platform.aid(0x27), memory: 0xFFFF)).sw == .success)
        let full = platform.card.isdps
        #expect(platform.card.process(platform.createISDPCommand(Platform.aid(0x28), memory: 0xFFFF)).sw == .notEnoughMemory)
        #expect(platform.card.isdps == full)
        #expect(before.count == 2)
        #expect(platform.card.process(CommandAPDU(cla: 0x80, ins: 0xE6, p1: 0x0C, p2: 0x00, data: [0x05, 1, 2])).sw == .wrongData)
        // Enable/disable an ISD-P without a profile.
        let enable = platform.card.process(.storeData(p1: 0x88, data: DGI(0x3A03, TLV(0x4F, aid.bytes).encoded).encoded))
        #expect(enable.sw == .conditionsNotSatisfied)
        #expect(platform.card.process(.storeData(p1: 0x88, data: DGI(0x3A03, TLV(0x4F, Platform.aid(0x7F).bytes).encoded).encoded)).sw
                == .referencedDataNotFound)
        #expect(platform.card.process(CommandAPDU(cla: 0x00, ins: 0xA4, p1: 0, p2: 0)).sw == .claNotSupported)
        #expect(platform.card.process(CommandAPDU(cla: 0x80, ins: 0x01, p1: 0, p2: 0)).sw == .insNotSupported)
        // Key establishment with a certificate from another CI.
        let other = try TestPKI.generate(curve: .p256)
        let perso = CommandAPDU(cla: 0x80, ins: 0xE6, p1: 0x20, p2: 0x00, data: [0x00, 0x00, 0x10] + aid.bytes + [0x00, 0x00, 0x00], le: 0x00)
        #expect(platform.card.process(perso).sw == .success)
        let host = try KeyEstablishmentHost(certificate: other.smdp.certificate!, signingKey: other.smdp.key!,
                                            ecasdPublicKey: try platform.card.identity.ecasdKey().publicKey)
        #expect(platform.card.process(.storeData(p1: 0x89, data: host.certificateData(), le: 0)).sw == .securityStatusNotSatisfied)
        #expect(platform.card.isdp(aid)?.lifeCycle == .selectable)
        // SCP03t before personalisation: 9F44 01 03.
        var scp = SCP03tHost(keys: SCP03Keys(keyVersion: 0x30, enc: SecureBytes(SecureRandom.bytes(16)), mac: SecureBytes(SecureRandom.bytes(16)),
                                             dek: SecureBytes(SecureRandom.bytes(16))), aid: aid.bytes)
        #expect(platform.card.processSCP03t([scp.initializeUpdate()], target: aid) == [TLV(0x9F44, [0x03])])
    }

    @Test("A corrupted package is refused with its EUICCResponse; a tampered segment with 9F46")
    func badDownloads() throws {
        var platform = try Platform(curve: .p256)
        var (_, package) = try Fixtures.all()[1]
        package[3] ^= 0xFF  // break the header
        let aid = Platform.aid(0x30)
        let keys = try platform.createAndPersonalize(aid)
        let response = try platform.download(package, into: aid, keys: keys)
        let decoded = try EUICCResponse(encoded: response)
        #expect(!decoded.isSuccess)
        #expect(platform.card.isdp(aid)?.lifeCycle == .personalized)

        var host = SCP03tHost(keys: keys, aid: aid.bytes)
        let open = platform.card.processSCP03t([host.initializeUpdate(), try host.precomputedExternalAuthenticate(sequenceCounter: 2)], target: aid)
        #expect(open.count == 2)
        var segment = try host.segment([1, 2, 3, 4])
        segment.value[0] ^= 1
        #expect(platform.card.processSCP03t([segment], target: aid) == [TLV(0x9F46, [0x02])])
    }

    @Test("Connectivity failure rolls back to the previous Profile and says so; fall-back on connectivity loss")
    func rollBack() throws {
        var platform = try Platform(curve: .p256)
        let (_, package) = try Fixtures.all()[2]
        let a = Platform.aid(0x40), b = Platform.aid(0x41)
        for aid in [a, b] { _ = try platform.download(package, into: aid, keys: try platform.createAndPersonalize(aid)) }
        func store(_ dgi: UInt16, _ aid: AID) -> ResponseAPDU {
            platform.card.process(.storeData(p1: 0x88, data: DGI(dgi, TLV(0x4F, aid.bytes).encoded).encoded))
        }
        #expect(store(0x3A05, a).sw == .success)
        #expect(store(0x3A03, a).sw == .success)
        platform.card.unreachableICCIDs = [platform.card.isdp(b)!.iccid!]
        #expect(store(0x3A03, b).sw == .success)
        #expect(platform.card.enabledISDP?.aid == a)
        let last = try TLV.parseOne(try #require(platform.card.notificationPayloads().last))
        #expect(try last.child(0x4D)?.value == [0x03])
        platform.card.unreachableICCIDs = []
        #expect(store(0x3A03, b).sw == .success)
        let fellBack = platform.card.loseConnectivity()
        #expect(fellBack)
        #expect(platform.card.enabledISDP?.aid == a)
        #expect(try TLV.parseOne(try #require(platform.card.notificationPayloads().last)).child(0x4D)?.value == [0x05])
    }
}
