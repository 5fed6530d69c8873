// The DownloadProfile state machine as stored: JSON written by hand (the hot path), read back by
// JSONDecoder — every field, failures with awkward text included.

import Foundation
import M2MCore
@testable import M2MRoles
import Testing

@Suite("SM-DP download machine encoding")
struct SMDPMachineTests {
    @Test("Hand-written JSON decodes back equal, with and without the optional fields")
    func roundTrip() throws {
        var machine = DownloadMachine(
            step: .reserved, caller: "1.3.6.1.4.1.99999.4.1", functionCallIdentifier: "order \"7\"\n\\x", eid: try EID(text: "89049032123451234512345678901235"),
            smsr: "1.3.6.1.4.1.99999.2.1", iccid: try ICCID(withoutCheckDigit: "894450000000000012"), profileType: "M2M-3G-16K ünï", mno: "1.3.6.1.4.1.99999.4.1",
            imsi: nil, enable: true, deadline: nil, requiredMemory: 17_408)
        func check() throws {
            let back = try DownloadMachine(encoded: machine.encoded)
            #expect(back.encoded == machine.encoded)
            #expect(back.step == machine.step && back.functionCallIdentifier == machine.functionCallIdentifier && back.profileType == machine.profileType)
            #expect(back.failure == machine.failure && back.status == machine.status && back.aid == machine.aid && back.deadline == machine.deadline)
            #expect(back.imsi == machine.imsi && back.attempt == machine.attempt && back.reachedCard == machine.reachedCard && back.enable == machine.enable)
        }
        try check()
        machine.step = .cleanup
        machine.imsi = try IMSI(text: "208010000000001")
        machine.deadline = Timestamp(seconds: 1_800_000_000)
        machine.aid = try AID(text: "A0000005591010FFFFFFFF8900001000")
        machine.attempt = 2
        machine.reachedCard = true
        machine.failure = .failed(.isdp, .verificationFailed, identifier: "A0000005591010FFFFFFFF8900001000", message: "receipt \"bad\"\t\u{1}")
        machine.status = FunctionExecutionStatus(status: .expired, statusCodeData: .init(subject: .function, reason: .timeToLiveExpired))
        try check()
        machine.status = .success
        try check()
    }
}
