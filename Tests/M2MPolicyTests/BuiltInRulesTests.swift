// The built-in rules (the fail-open floor) and the default plugins decide alike.

import Foundation
import M2MCore
@testable import M2MPolicy
import Testing

@Suite("Built-in rules agree with the default plugins")
struct BuiltInRulesTests {
    static let root = TestRunnerTests.root

    static func defaultEngine() throws -> PolicyEngine {
        let loader = PolicyLoader(pluginPaths: [root + "/plugins"])
        return try PolicyEngine(set: try loader.loadSet(bundles: [root + "/policies/default"]), decisionLog: NoDecisionLog())
    }

    static let ruleSets: [[POL2.Rule]] = [
        [], [POL2.Rule(action: .disable, qualification: .notAllowed)], [POL2.Rule(action: .disable, qualification: .autoDelete)],
        [POL2.Rule(action: .delete, qualification: .notAllowed)], [POL2.Rule(action: .enable, qualification: .notAllowed)],
    ]

    @Test("POL2: every hook over states, attributes, rules and callers")
    func pol2() throws {
        let e = try Self.defaultEngine()
        let callers = [CallerSnapshot(role: .mno, oid: Sample.mno), CallerSnapshot(role: .mno, oid: Sample.otherMNO),
                       CallerSnapshot(role: .m2mSP, oid: Sample.sp), CallerSnapshot(role: .smdp, oid: Sample.smdp)]
        let grant = PLMASnapshot(PLMA(mnoID: Sample.mno, m2mSPID: Sample.sp, profileType: "M2M_DEFAULT",
                                      authorisedFunctions: [.enableProfile, .deleteProfile, .setEmergencyProfileAttribute]))
        var compared = 0
        for hook in PolicyHook.allCases where hook.kind == .decision {
            for state in ProfileState.allCases {
                for rules in Self.ruleSets {
                    for (fallback, emergency) in [(false, false), (true, false), (false, true)] {
                        for caller in callers {
                            for plma in [[], [grant]] {
                                let target = Sample.profile(2, state: state, fallback: fallback, emergency: emergency, rules: rules)
                                let current = Sample.profile(
                                    1, state: state == .enabled ? .disabled : .enabled,
                                    emergency: !emergency && hook == .beforeSetEmergencyProfileAttribute, rules: rules.reversed())
                                let other = Sample.profile(3, owner: Sample.otherMNO, emergency: true)
                                let input = PolicyInput.pol2(
                                    hook, operation: OperationSnapshot(interface: "ES4", name: BuiltInRules.functionName(hook),
                                                                       arguments: ["required_memory": 70_000, "iccid": .string(Sample.iccid(1).text)]),
                                    caller: caller, eis: Sample.eis([current, target, other]), profile: target, plma: plma)
                                let lua = e.evaluate(input)
                                #expect(lua.error == nil)
                                #expect(lua.result.decision == BuiltInRules.pol2(input), "\(hook) \(state) \(rules) \(caller.role)")
                                compared += 1
                            }
                        }
                    }
                }
            }
        }
        #expect(compared > 1000)
    }

    @Test("routing and ONC over every notification type")
    func notifications() throws {
        let e = try Self.defaultEngine()
        let plma = [
            PLMASnapshot(PLMA(mnoID: Sample.mno, m2mSPID: Sample.sp, profileType: "M2M_DEFAULT", authorisedNotifications: NotificationType.allCases)),
            PLMASnapshot(PLMA(mnoID: Sample.otherMNO, m2mSPID: "1.3.6.1.4.1.47800.21", profileType: "M2M_DEFAULT", authorisedNotifications: [.smsrChange])),
        ]
        let onc = [ONCSnapshot(ONC(mnoID: Sample.mno, profileType: "M2M_DEFAULT", discardedNotifications: [.profileEnabled, .plmaSetting]))]
        let eis = Sample.eis([Sample.profile(1), Sample.profile(2, owner: Sample.otherMNO, smdp: nil)])
        for type in NotificationType.allCases {
            for requester in [nil, Sample.mno, Sample.sp] {
                for smdp in [Sample.smdp, nil] {
                    let p = Sample.profile(1, smdp: smdp).profile
                    let n = type == .smsrChange
                        ? NotificationSnapshot(type: type, eid: Sample.eid, requester: requester, smsrID: "1.3.6.1.4.1.47800.9", timestamp: FixtureDefaults.timestamp)
                        : NotificationSnapshot(type: type, eid: Sample.eid, profile: p, requester: requester, timestamp: FixtureDefaults.timestamp)
                    let routing = PolicyInput.notification(.routeNotification, n, eis: eis, plma: plma)
                    #expect(e.route(routing) == BuiltInRules.routes(routing), "\(type) \(String(describing: requester))")
                    let filtering = PolicyInput.notification(.filterNotification, n, onc: onc)
                    #expect(e.filter(filtering) == BuiltInRules.onc(filtering), "\(type)")
                }
            }
        }
    }
}
