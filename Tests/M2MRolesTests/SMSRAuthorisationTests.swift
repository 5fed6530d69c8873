// The authorisation matrix: every SM-SR function implemented so far × the owner Operator, another
// Operator, an M2M SP holding a PLMA for everything, an M2M SP without one, an SM-DP that did not
// download the Profile, and the EUM. Expected: the allowed cells succeed, every other cell is
// FAILED with a subject/reason code, changes nothing on the card, and there are 0 unauthorised
// successes. State-changing functions get a fresh SM-SR and fleet per cell.

import M2MCore
import M2MEmulator
import M2MRoles
import M2MSOAP
import M2MStorage
import Testing

@Suite("SM-SR authorisation matrix", .serialized)
struct SMSRAuthorisationTests {
    typealias H = SMSRHarness

    enum Caller: String, CaseIterable {
        case owner, otherMNO, spWithPLMA, spWithout, smdp, eum

        var oid: OID {
            switch self {
            case .owner: H.mno
            case .otherMNO: H.otherMNO
            case .spWithPLMA: H.sp
            case .spWithout: H.otherSP
            case .smdp: H.smdp
            case .eum: H.eumID
            }
        }
    }

    struct Function: Sendable {
        let name: String
        let allowed: Set<Caller>
        let changesCard: Bool
        let run: @Sendable (H, RequestContext, String) -> FunctionExecutionStatus
    }

    static let functions: [Function] = [
        Function(name: "ES1.UpdateEISAdditionalProperties", allowed: [.eum], changesCard: false) { h, c, f in
            h.smsr.updateEISAdditionalProperties(
                ES1.UpdateEISAdditionalPropertiesRequest(functionCallIdentifier: f, eid: h.eid(0), additionalProperties: PropertyList([AdditionalProperty(key: "k", value: "v")])),
                context: c).functionExecutionStatus
        },
        Function(name: "ES4.GetEIS", allowed: [.owner, .spWithPLMA], changesCard: false) { h, c, f in
            h.smsr.getEIS(ES4.GetEISRequest(functionCallIdentifier: f, eid: h.eid(0)), context: c).functionExecutionStatus
        },
        Function(name: "ES4.AuditEIS", allowed: [.owner, .spWithPLMA], changesCard: false) { h, c, f in
            h.smsr.auditEIS(ES4.AuditEISRequest(functionCallIdentifier: f, eid: h.eid(0)), context: c).functionExecutionStatus
        },
        Function(name: "ES4.UpdatePolicyRules", allowed: [.owner], changesCard: false) { h, c, f in
            h.smsr.updatePolicyRules(ES4.UpdatePolicyRulesRequest(functionCallIdentifier: f, eid: h.eid(0), iccid: H.iccidB, pol2: POL2()), context: c)
                .functionExecutionStatus
        },
        Function(name: "ES4.UpdateSubscriptionAddress", allowed: [.owner], changesCard: false) { h, c, f in
            h.smsr.updateSubscriptionAddress(
                ES4.UpdateSubscriptionAddressRequest(functionCallIdentifier: f, eid: h.eid(0), iccid: H.iccidB,
                                                     newSubscriptionAddress: SubscriptionAddress(imsi: try? IMSI(text: "234150999999998"))),
                context: c).functionExecutionStatus
        },
        Function(name: "ES4.EnableProfile", allowed: [.owner, .spWithPLMA], changesCard: true) { h, c, f in
            h.smsr.enableProfile(ES4.EnableProfileRequest(functionCallIdentifier: f, eid: h.eid(0), iccid: H.iccidB), context: c).functionExecutionStatus
        },
        Function(name: "ES4.DeleteProfile", allowed: [.owner, .spWithPLMA], changesCard: true) { h, c, f in
            h.smsr.deleteProfile(ES4.DeleteProfileRequest(functionCallIdentifier: f, eid: h.eid(0), iccid: H.iccidB), context: c).functionExecutionStatus
        },
        Function(name: "ES4.SetFallBackAttribute", allowed: [.owner, .spWithPLMA], changesCard: true) { h, c, f in
            h.smsr.setFallBackAttribute(ES4.SetFallBackAttributeRequest(functionCallIdentifier: f, eid: h.eid(0), iccid: H.iccidB), context: c)
                .functionExecutionStatus
        },
        Function(name: "ES4.SetEmergencyProfileAttribute", allowed: [.owner, .spWithPLMA], changesCard: true) { h, c, f in
            h.smsr.setEmergencyProfileAttribute(ES4.SetEmergencyProfileAttributeRequest(functionCallIdentifier: f, eid: h.eid(0), iccid: H.iccidB), context: c)
                .functionExecutionStatus
        },
        Function(name: "ES3.EnableProfile", allowed: [], changesCard: true) { h, c, f in
            h.smsr.enableProfile(ES3.EnableProfileRequest(functionCallIdentifier: f, eid: h.eid(0), iccid: H.iccidB), context: c).functionExecutionStatus
        },
        Function(name: "ES3.DeleteISDP", allowed: [], changesCard: true) { h, c, f in
            h.smsr.deleteISDP(ES3.DeleteISDPRequest(functionCallIdentifier: f, eid: h.eid(0), iccid: H.iccidB), context: c).functionExecutionStatus
        },
        Function(name: "ES3.UpdatePolicyRules", allowed: [], changesCard: false) { h, c, f in
            h.smsr.updatePolicyRules(ES3.UpdatePolicyRulesRequest(functionCallIdentifier: f, eid: h.eid(0), iccid: H.iccidB), context: c).functionExecutionStatus
        },
        Function(name: "ES3.GetEIS", allowed: [.smdp], changesCard: false) { h, c, f in
            h.smsr.getEIS(ES3.GetEISRequest(functionCallIdentifier: f, eid: h.eid(0)), context: c).functionExecutionStatus
        },
        Function(name: "ES4A.SetPLMA", allowed: [.owner], changesCard: false) { h, c, f in
            let plma = PLMA(mnoID: H.mno, m2mSPID: H.otherSP, profileType: try! String100(text: H.profileType), authorisedFunctions: [.getEIS],
                            authorisedNotifications: [])
            return h.smsr.setPLMA(ES4A.SetPLMARequest(functionCallIdentifier: f, plma: plma), context: c).functionExecutionStatus
        },
        Function(name: "ES4A.SetONC", allowed: [.owner], changesCard: false) { h, c, f in
            let onc = ONC(mnoID: H.mno, profileType: try! String100(text: H.profileType), discardedNotifications: [.profileDeleted])
            return h.smsr.setONC(ES4A.SetONCRequest(functionCallIdentifier: f, onc: onc), context: c).functionExecutionStatus
        },
        Function(name: "ES4.PrepareSMSRChange", allowed: [], changesCard: false) { h, c, f in
            h.smsr.prepareSMSRChange(ES4.PrepareSMSRChangeRequest(functionCallIdentifier: f, eid: h.eid(0), currentSMSRID: H.smsrID), context: c)
                .functionExecutionStatus
        },
    ]

    static func harness() throws -> H {
        let h = try H()
        #expect(try h.register(card: 0).functionExecutionStatus == .success)
        try h.grantPLMA(functions: PLMAFunction.allCases, notifications: NotificationType.allCases)
        return h
    }

    @Test("Every implemented function × every kind of caller: 0 unauthorised successes, every allowed cell succeeds")
    func matrix() throws {
        var unauthorisedSuccesses: [String] = []
        var refusedAllowed: [String] = []
        let shared = try Self.harness()
        defer { shared.cleanUp() }
        var cell = 0
        for function in Self.functions {
            for caller in Caller.allCases {
                cell += 1
                let h = function.changesCard ? try Self.harness() : shared
                defer { if function.changesCard { h.cleanUp() } }
                let record = h.fleet.record(at: 0)
                let status = function.run(h, RequestContext(caller: caller.oid), "m-\(cell)")
                let succeeded = status.status == .executedSuccess || status.status == .executedWithWarning
                if function.allowed.contains(caller) {
                    if !succeeded { refusedAllowed.append("\(function.name) × \(caller.rawValue): \(status)") }
                } else {
                    if succeeded { unauthorisedSuccesses.append("\(function.name) × \(caller.rawValue)") }
                    #expect(status.statusCodeData != nil, "\(function.name) × \(caller.rawValue): a refusal carries its codes")
                    #expect(h.fleet.record(at: 0) == record, "\(function.name) × \(caller.rawValue): the card is unchanged")
                }
            }
        }
        #expect(unauthorisedSuccesses.isEmpty, "\(unauthorisedSuccesses)")
        #expect(refusedAllowed.isEmpty, "\(refusedAllowed)")
        #expect(cell == Self.functions.count * Caller.allCases.count)
    }
}
