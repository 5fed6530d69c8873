// `m2mrsp bench change` (issue #9): SM-SR changes of a batch of cards in one process — for each card
// ES4.PrepareSMSRChange at the new SM-SR and ES4.SMSRChange at the current one, ES7 between them
// (InProcessES7), ES5 to emulated eUICCs (the key establishment as admin scripts in process,
// FinaliseISDRhandover and the PUT KEY of the PSK over SCP80), both SM-SRs on SQLite — beside the
// crypto floor of the same operations measured in the same run: per change, the new SM-SR's checks
// of the EIS (the EUM's X.509 certificate against the CI, CERT.ECASD.ECKA, the EIS signature: three
// ECDSA verifications) and the ISD-R key establishment on both sides (CERT.SR.ECDSA and the signed
// key agreement verified by the card, ephemeral key, ECDH twice, X9.63, receipt). One thread; best of
// the rounds. No target is set by the issue: the figure is printed with its ratio.

import ArgumentParser
import Foundation
import M2MCore
import M2MCrypto
import M2MEmulator
import M2MRoles
import M2MSOAP
import M2MStorage
import M2MTestKit
import M2MWire

struct ChangeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "change",
        abstract: "SM-SR changes/s for a batch of cards (two SM-SRs on SQLite, ES7 in process, emulated cards), beside the crypto floor of the same operations.",
        discussion: "Build with -c release. --quick changes 40 cards in 1 round (< 30 s). The databases go to a temporary directory, removed afterwards."
    )

    @Flag(help: "Print the figures as JSON.")
    var json = false

    @Flag(help: "Short run (40 cards, 1 round).")
    var quick = false

    @Option(help: "Curve of the PKI and cards: p256 or brainpoolP256r1.")
    var curve: String = "p256"

    @Option(help: "Cards changed per round (default 200, --quick 40).")
    var cards: Int?

    static let smsr2ID: OID = "1.3.6.1.4.1.99999.2.2"
    static let aid = try! AID(text: "A0000005591010FFFFFFFF8900001000")

    func run() throws {
        guard let curve = Curve(argument: curve) else { throw ValidationError("--curve is p256 or brainpoolP256r1") }
        let count = cards ?? (quick ? 40 : 200)
        let rounds = quick ? 1 : 3
        let total = count * rounds
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("m2mrsp-bench-change-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pki = try TestPKI.generate(curve: curve)
        SMSRBench.progress("change: \(total) cards on \(curve), each with an enabled Profile, registered at SM-SR1…")
        let fleet = try Fleet(seed: Array("bench change".utf8), count: total, curve: curve, ciPublicKey: pki.ci.publicKey,
                              eum: EUMIssuer(key: pki.eumKey, eumID: SMSRBench.eumID))
        for index in 0..<total {
            let iccid = try ICCID(withoutCheckDigit: String(format: "8944503100%09d", index))
            guard fleet.withCard(at: index, { $0.manufacture(ISDP(aid: Self.aid, lifeCycle: .enabled, iccid: iccid, profileType: "BENCH", allocatedMemory: 20_000)) })
            else { throw ValidationError("card \(index): no Profile") }
        }
        let (one, store1) = try SMSRBench.makeSMSR(pki: pki, path: directory.appendingPathComponent("smsr1.sqlite").path, fleet: fleet)
        let credential = GPCredential(certificate: try requireValue(pki.smsr2.certificate), key: try requireValue(pki.smsr2.key))
        let (two, store2) = try SMSRBench.makeSMSR(pki: pki, path: directory.appendingPathComponent("smsr2.sqlite").path, fleet: fleet, smsrID: Self.smsr2ID,
                                              credentials: [credential])
        try one.register(Party(oid: Self.smsr2ID, role: .smsr))
        try two.register(Party(oid: SMSRBench.smsrID, role: .smsr))
        one.connect(smsr: Self.smsr2ID, endpoint: InProcessES7(smsr: two, caller: SMSRBench.smsrID))
        two.connect(smsr: SMSRBench.smsrID, endpoint: InProcessES7(smsr: one, caller: Self.smsr2ID))
        let now = SystemClock().now()
        var registrations: [ES1.RegisterEISRequest] = []
        var documents: [EIS] = []
        for index in 0..<total {
            let info = try fleet.eumSignedInfo(at: index, productionDate: now)
            let signature = try EISSignature.sign(info, with: pki.eumKey, keyName: "EUM-TEST-KEY")
            let eis = try fleet.eis(at: index, signedInfo: info, signature: signature, smsrID: SMSRBench.smsrID, mnoID: SMSRBench.mno)
            registrations.append(ES1.RegisterEISRequest(functionCallIdentifier: "reg-\(index)", eis: eis))
            if index < 64 { documents.append(eis) }
        }
        guard one.registerEISBatch(registrations, context: RequestContext(caller: SMSRBench.eumID)).allSatisfy({ $0.functionExecutionStatus == .success }) else {
            throw ValidationError("registration failed")
        }

        // The floor's inputs: the same cards' ECASD keys and EIS, the same certificates.
        let ecasd = try (0..<min(total, 64)).map { try fleet.identity(at: $0).ecasdKey() }
        let srCertificate = credential.certificate
        func floorOnce(_ index: Int) throws {
            try ChangeFloor.once(eis: documents[index % documents.count], ecasd: ecasd[index % ecasd.count], certificate: srCertificate, key: credential.key,
                                 pki: pki)
        }

        let mno = RequestContext(caller: SMSRBench.mno)
        var ours = 0.0, floor = 0.0
        for round in 0..<rounds {
            SMSRBench.progress("change: round \(round + 1)/\(rounds), \(count) cards…")
            let before = (store1.database.transactionCounts, store2.database.transactionCounts)
            let start = DispatchTime.now().uptimeNanoseconds
            for k in 0..<count {
                let index = round * count + k
                let eid = fleet.eid(at: index)
                let prepared = two.prepareSMSRChange(
                    ES4.PrepareSMSRChangeRequest(functionCallIdentifier: "p-\(index)", eid: eid, currentSMSRID: SMSRBench.smsrID), context: mno)
                guard prepared.functionExecutionStatus == .success else { throw ValidationError("prepare \(index): \(prepared.functionExecutionStatus)") }
                let changed = one.smsrChange(ES4.SMSRChangeRequest(functionCallIdentifier: "c-\(index)", eid: eid, targetSMSRID: Self.smsr2ID), context: mno)
                guard changed.functionExecutionStatus == .success else { throw ValidationError("change \(index): \(changed.functionExecutionStatus)") }
            }
            let elapsed = DispatchTime.now().uptimeNanoseconds - start
            ours = max(ours, Double(count) / (Double(elapsed) / 1e9))
            let after = (store1.database.transactionCounts, store2.database.transactionCounts)
            SMSRBench.progress(String(format: "  %.0f µs per change; SQLite transactions per change: SM-SR1 %.1f writes, %.1f reads; SM-SR2 %.1f writes, %.1f reads",
                                      Double(elapsed) / Double(count) / 1e3,
                                      Double(after.0.writes - before.0.writes) / Double(count), Double(after.0.reads - before.0.reads) / Double(count),
                                      Double(after.1.writes - before.1.writes) / Double(count), Double(after.1.reads - before.1.reads) / Double(count)))
            var next = 0
            floor = max(floor, try Bench.rate(seconds: quick ? 1 : 3) {
                try floorOnce(next)
                next += 1
            })
        }
        // Every card changed hands: only the new SM-SR's key sets are on it.
        for index in 0..<total where fleet.card(at: index).isdrKeyVersions.sorted() != [0x02, 0x41] {
            throw ValidationError("card \(index) still holds \(fleet.card(at: index).isdrKeyVersions)")
        }
        let figure = BenchFigure(name: "SM-SR change end to end, \(curve) (Prepare + SMSRChange + ES7 + ES5, two SM-SRs on SQLite; floor: EIS checks + ISD-R key establishment both sides)",
                                 value: ours, unit: "changes/s", baseline: floor, ratio: ours / floor, target: 0, meets: true)
        try Bench.print(BenchReport(suite: "change", figures: [figure]), json: json)
    }
}

/// The crypto floor of one SM-SR change: the new SM-SR's EIS checks (the EUM certificate against the
/// CI, CERT.ECASD.ECKA against the EUM, the EIS signature) and the ISD-R key establishment, both sides.
enum ChangeFloor {
    static func once(eis: EIS, ecasd key: ECPrivateKey, certificate: GPCertificate, key srKey: ECPrivateKey, pki: TestPKI) throws {
        try pki.eum.verify(root: pki.ci, at: SystemClock().now())
        for case .certificate(let reference) in eis.eumSignedInfo.ecasd.keysets.flatMap(\.items) {
            try GPCertificateVerifier.verify(try GPCertificate(encoded: reference.value.bytes), issuer: pki.eum.publicKey)
        }
        try EISSignature.verify(eis, eumKey: pki.eum.publicKey)
        let parameters = KeyEstablishmentParameters(keyVersion: 0x02)
        var host = try KeyEstablishmentHost(certificate: certificate, signingKey: srKey, ecasdPublicKey: key.publicKey, parameters: parameters)
        var card = KeyEstablishmentCard(ecasdKey: key, ciPublicKey: pki.ci.publicKey, expectedRole: .smsr)
        let challenge = try card.processCertificate(host.certificateData())
        let agreement = try host.keyAgreementData(cardResponse: challenge)
        let (receipt, _) = try card.processKeyAgreement(agreement)
        _ = try host.processReceipt(cardResponse: receipt)
    }
}
