// ES2.DownloadProfile end to end in one process: SM-DP → ES3 → SM-SR → ES5 → emulated eUICC, with
// real key establishment and SCP03t, on both curves; every TS.48 fixture; the refusals and failures
// of the issue with their status and no ISD-P left behind; a crash at each step resumed by
// `recover()` with exactly one outcome.

import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MRoles
import M2MSOAP
import M2MStorage
import M2MTestKit
import M2MWire
import M2MXML
import Synchronization
import Testing

@Suite("SM-DP DownloadProfile (ES2 → ES3 → ES5)", .serialized)
struct SMDPDownloadTests {
    typealias D = SMDPHarness
    typealias H = SMSRHarness

    /// The download's Profile as the card holds it, checked against the inventory's package.
    static func checkInstalled(_ d: D, card: Int, response: ES2.DownloadProfileResponse, enabled: Bool) throws {
        #expect(response.functionExecutionStatus == .success, "\(response.functionExecutionStatus)")
        let iccid = try #require(response.iccid)
        let isdps = d.isdps(card: card, iccid: iccid)
        try #require(isdps.count == 1)
        let package = try d.smdp.inventory.package(for: iccid).package
        #expect(isdps[0].profileDigest == SHA256.hash(package))
        #expect(isdps[0].lifeCycle == (enabled ? .enabled : .disabled))
        let profile = try #require(try d.sr.stored(card)?.profiles.first { $0.iccid == iccid })
        #expect(profile.state == (enabled ? .enabled : .disabled) && profile.smdpID == H.smdp && profile.mnoID == H.mno)
        #expect(profile.subscriptionAddress.imsi != nil)
        #expect(try d.inventoryState(iccid) == .installed)
    }

    @Test("Every TS.48 fixture downloaded through SM-DP and SM-SR, on P-256 and brainpoolP256r1", arguments: [Curve.p256, Curve.brainpoolP256r1])
    func everyFixture(curve: Curve) throws {
        let d = try D(curve: curve)
        defer { d.cleanUp() }
        for card in 0..<3 { try d.sr.register(card: card) }
        for (card, name) in D.fixtureNames.enumerated() {
            let response = d.download(card: card, type: name, enable: card == 1)
            try Self.checkInstalled(d, card: card, response: response, enabled: card == 1)
        }
        // A second Profile on card 2, this time by ICCID.
        let iccid = try #require(try d.store.read { try $0.inventoryItems(profileType: D.fixtureNames[0], state: .available) }.first?.iccid)
        let second = d.download(card: 2, iccid: iccid, fci: "by-iccid")
        try Self.checkInstalled(d, card: 2, response: second, enabled: false)
        // The same order again: the stored answer, nothing new on the card.
        let again = d.download(card: 2, iccid: iccid, fci: "by-iccid")
        #expect(again.functionExecutionStatus == .success && again.iccid == second.iccid && d.isdps(card: 2, iccid: iccid).count == 1)
    }

    @Test("SCP03t in several SendData calls (4 segments each) and in 1 segment per call give the same installed Profile")
    func segmented() throws {
        for per in [1, 4] {
            let d = try D(configure: { $0.segmentsPerSendData = per })
            defer { d.cleanUp() }
            try d.sr.register(card: 1)
            try Self.checkInstalled(d, card: 1, response: d.download(card: 1, type: D.fixtureNames[2]), enabled: false)
        }
    }

    @Test("Refusals before any ISD-P: unknown type 8.2.5/3.9, none left 8.2.5/3.7, another Operator's type, unknown SM-SR, insufficient memory")
    func refusals() throws {
        let d = try D(configure: { _ in })
        defer { d.cleanUp() }
        try d.sr.register(card: 1)
        #expect(d.download(card: 1, type: "NO-SUCH-TYPE").functionExecutionStatus.codes == "8.2.5/3.9")
        #expect(d.download(card: 1, type: D.fixtureNames[0], caller: H.otherMNO).functionExecutionStatus.codes == "8.2.5/1.2")
        let unknownSMSR = d.smdp.downloadProfile(ES2.DownloadProfileRequest(functionCallIdentifier: "x", eid: d.sr.eid(1), smsrID: "1.3.6.1.4.1.99999.2.9",
                                                                            profileType: D.fixtureNames[0], enableProfile: false), context: RequestContext(caller: H.mno))
        #expect(unknownSMSR.functionExecutionStatus.codes == "8.7/3.9")
        // An unregistered eUICC: the SM-SR's 8.1.1/3.9, and the ICCID goes back to the pool.
        let unregistered = d.download(card: 2, type: D.fixtureNames[0])
        #expect(unregistered.functionExecutionStatus.codes == "8.1.1/3.9")
        #expect(try d.store.read { try $0.inventoryItems(profileType: D.fixtureNames[0], state: .available) }.count == 4)
        // Pool of 4: four downloads (two cards hold two each), then none left.
        try d.sr.register(card: 0)
        for k in 0..<4 {
            #expect(d.download(card: k % 2, type: D.fixtureNames[0], fci: "n\(k)").functionExecutionStatus == .success)
        }
        #expect(d.download(card: 1, type: D.fixtureNames[0], fci: "n5").functionExecutionStatus.codes == "8.2.5/3.7")

        // Insufficient memory, seen in the EIS before CreateISDP: nothing on the card, ICCID back in the pool.
        let big = try D(configure: { $0.memoryMargin = 600 * 1024 })
        defer { big.cleanUp() }
        try big.sr.register(card: 1)
        let before = big.sr.fleet.card(at: 1).isdps.count
        #expect(big.download(card: 1).functionExecutionStatus.codes == "8.1/4.8")
        #expect(big.sr.fleet.card(at: 1).isdps.count == before)
        #expect(try big.store.read { try $0.inventoryItems(profileType: D.fixtureNames[0], state: .available) }.count == 4)
    }

    @Test("Failures after CreateISDP clean up: bad receipt 8.4/6.1, the card refusing CERT.DP, the card refusing the package, expiry — no ISD-P left")
    func failuresCleanUp() throws {
        // A receipt altered on its way back.
        let tampered = try D(wrap: { inner in
            TamperingES3(inner: inner) { request, response in
                guard let send = request as? ES3.SendDataRequest, send.functionCallIdentifier.hasSuffix("ke2"), var answer = response as? ES3.SendDataResponse,
                    let bytes = answer.euiccResponseData?.bytes, let script = try? ExpandedResponseScript(bytes: bytes)
                else { return response }
                var responses = script.responses
                var receipt = responses[responses.count - 1]
                receipt.data[receipt.data.count - 1] ^= 0x01
                responses[responses.count - 1] = receipt
                answer.euiccResponseData = HexBinary(ExpandedResponseScript(executed: script.executedCommands.map { UInt8($0) }, responses: responses).encoded)
                return answer
            }
        })
        defer { tampered.cleanUp() }
        try tampered.sr.register(card: 1)
        let before = tampered.sr.fleet.card(at: 1).isdps.count
        let profiles = try #require(try tampered.sr.stored(1)).profiles.count
        let bad = tampered.download(card: 1)
        #expect(bad.functionExecutionStatus.codes == "8.4/6.1", "\(bad.functionExecutionStatus)")
        #expect(tampered.sr.fleet.card(at: 1).isdps.count == before)
        #expect(try tampered.sr.stored(1)?.profiles.count == profiles)
        #expect(try tampered.store.read { try $0.inventoryItems(profileType: D.fixtureNames[0], state: .released) }.count == 1)

        // CERT.DP.ECDSA from another CI: the card refuses it.
        let other = try TestPKI.generate(curve: .p256)
        let foreign = try D(configure: { $0.credentials = [SMDPCredential(certificate: other.smdp.certificate!, key: other.smdp.key!)] })
        defer { foreign.cleanUp() }
        try foreign.sr.register(card: 1)
        let refused = foreign.download(card: 1)
        #expect(refused.functionExecutionStatus.codes == "8.4/4.2", "\(refused.functionExecutionStatus)")
        #expect(foreign.sr.fleet.card(at: 1).isdps.count == before)

        // The card refuses the package: it has less free memory than its EIS says (the Profile does not
        // fit beside its quota), so the SCP03t stream ends with an error from the card.
        let refusing = try D(configure: { $0.memoryMargin = -1_000_000 })
        defer { refusing.cleanUp() }
        try refusing.sr.register(card: 1)
        refusing.sr.fleet.withCard(at: 1) { card in card.totalMemory = card.isdps.reduce(0) { $0 + $1.allocatedMemory } + 4096 }
        let rejected = refusing.download(card: 1)
        #expect(rejected.functionExecutionStatus.codes == "8.2/4.2", "\(rejected.functionExecutionStatus)")
        #expect(refusing.sr.fleet.card(at: 1).isdps.count == before)
        #expect(try refusing.sr.stored(1)?.profiles.count == profiles)

        // The ValidityPeriod ends mid-download (the clock jumps 100 s once the ISD-P exists): EXPIRED, cleaned up.
        let clock = Mutex<TestClock?>(nil)
        let slow = try D(wrap: { inner in
            TamperingES3(inner: inner) { request, response in
                if request is ES3.CreateISDPRequest { clock.withLock { $0?.advance(100) } }
                return response
            }
        })
        defer { slow.cleanUp() }
        clock.withLock { $0 = slow.sr.clock }
        try slow.sr.register(card: 1)
        let expired = slow.download(card: 1, validity: 60)
        #expect(expired.functionExecutionStatus.status == .expired, "\(expired.functionExecutionStatus)")
        #expect(slow.sr.fleet.card(at: 1).isdps.count == before)
        #expect(try slow.sr.stored(1)?.profiles.count == profiles)
    }

    @Test("A crash at each step of a download: recover() ends it with one installed Profile, the answer in the outbox for the Operator",
          arguments: SMDPFaults.Point.allCases)
    func crashAndRecover(point: SMDPFaults.Point) throws {
        var d = try D(faults: SMDPFaults(crashAt: point))
        defer { d.cleanUp() }
        try d.sr.register(card: 1)
        let crashed = d.download(card: 1, enable: true, fci: "crash")
        #expect(crashed.functionExecutionStatus.statusCodeData?.message?.contains("simulated crash") == true)
        try d.restartSMDP()
        // The retried call waits for the recovery.
        #expect(d.download(card: 1, enable: true, fci: "crash").functionExecutionStatus.codes == "1.6/4.4")
        #expect(try d.smdp.recover() == 1)
        let outbox = try d.store.read { try $0.outbox(states: [.pending]) }.filter { $0.messageType == "ES2-DownloadProfileResponse" }
        try #require(outbox.count == 1)
        #expect(outbox[0].recipient == H.mno && outbox[0].relatesTo == "crash")
        let response = try StoredMessage(outbox[0].body).decode(ES2.DownloadProfileResponse.self)
        try Self.checkInstalled(d, card: 1, response: response, enabled: true)
        // Now the retried call gets the answer.
        #expect(d.download(card: 1, enable: true, fci: "crash").iccid == response.iccid)
        #expect(try d.smdp.recover() == 0)
    }
}

/// Decodes stored message bytes (the body element alone) in tests.
struct StoredMessage {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func decode<M: SGP02Message>(_ type: M.Type) throws -> M {
        let root = try XMLReader.parse(bytes, limits: .default, knownNamespaces: Namespace.known)
        return try M(xmlElement: root)
    }
}
