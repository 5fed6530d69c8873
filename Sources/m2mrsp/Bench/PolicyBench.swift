// `m2mrsp bench policy`: decisions/s of the policy engine (budgets and the capped allocator on,
// decision records kept in memory) for a POL2 rule, a routing call and an ONC call, beside the
// same Lua functions called with plain lua_pcall in the same run (PolicyBaselineRunner).
// Target: at most 2× the raw cost, i.e. a ratio engine/raw ≥ 0.5.

import ArgumentParser
import Foundation
import M2MCore
import M2MPolicy

struct PolicyBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Policy decisions/s (POL2, routing, ONC) beside raw lua_pcall of the same Lua functions."
    )

    @Flag(help: "Print the figures as JSON.")
    var json = false

    @Flag(help: "Short run (a few seconds).")
    var quick = false

    @Option(help: "The operator bundle to run.")
    var bundle = "policies/example-operator"

    @Option(name: .customLong("plugins"), help: "The plugin directory.")
    var pluginPath = "plugins"

    func run() throws {
        let loader = PolicyLoader(pluginPaths: [pluginPath])
        let set = try loader.loadSet(bundles: [bundle])
        let log = InMemoryDecisionLog(capacity: 4096)
        let engine = try PolicyEngine(set: set, decisionLog: log)
        let raw = try PolicyBaselineRunner(set: set)
        let mno: OID = set.bundles[0].manifest.operatorID ?? "1.3.6.1.4.1.47800.10"
        let cases = Self.cases(mno: mno)
        var figures: [BenchFigure] = []
        let rounds = quick ? 1 : 3
        let seconds = quick ? 0.3 : 1.0
        for (name, input, expected) in cases {
            // Check before timing: the engine decides as expected, the baseline runs the same functions.
            let record = engine.evaluate(input)
            guard record.error == nil, expected(record.result) else {
                throw ValidationError("\(name): unexpected result \(record.result) \(record.error.map { "\($0)" } ?? "")")
            }
            guard raw.run(input) > 0 else { throw ValidationError("\(name): the baseline failed") }
            let (measured, baseline) = Bench.compare(rounds: rounds, seconds: seconds, {
                _ = engine.evaluate(input)
            }, baseline: {
                precondition(raw.run(input) > 0)
            })
            let ratio = measured / baseline
            figures.append(BenchFigure(
                name: "\(name) (\(String(format: "%.2f", 1e6 / measured)) µs/decision, raw \(String(format: "%.2f", 1e6 / baseline)) µs)",
                value: measured, unit: "decisions/s", baseline: baseline, ratio: ratio, target: 0.5, meets: ratio >= 0.5))
        }
        try Bench.print(BenchReport(suite: "policy", figures: figures), json: json)
    }

    /// A POL2 rule (enable, with an enabled Profile whose POL2 must be read), a routing call
    /// (owner via SM-DP and two M2M SPs by PLMA) and an ONC call (two entries), each through the
    /// bundle's plugins and its own policy files.
    static func cases(mno: OID) -> [(String, PolicyInput, (PolicyResult) -> Bool)] {
        let smdp: OID = "1.3.6.1.4.1.47800.3"
        let sp1: OID = "1.3.6.1.4.1.47800.20", sp2: OID = "1.3.6.1.4.1.47800.21"
        func profile(_ n: Int, _ state: ProfileState, _ rules: [POL2.Rule]) -> ProfileSnapshot {
            ProfileSnapshot(ProfileInfo(
                iccid: try! ICCID(withoutCheckDigit: "89883010000000000\(n)"), isdPAID: try! AID(text: "A0000005591010FFFFFFFF890000100\(n)"),
                mnoID: mno, subscriptionAddress: SubscriptionAddress(imsi: try! IMSI(text: "23415000000000\(n)")), state: state,
                smdpID: smdp, profileType: "M2M_DEFAULT", allocatedMemory: 16_384, pol2: POL2(rules: rules)))
        }
        let profiles = [
            profile(1, .enabled, [POL2.Rule(action: .delete, qualification: .notAllowed)]),
            profile(2, .disabled, []),
            profile(3, .disabled, [POL2.Rule(action: .disable, qualification: .notAllowed)]),
        ]
        let eis = EISSnapshot(
            eid: FixtureDefaults.eid, eumID: FixtureDefaults.eumID, smsrID: FixtureDefaults.smsrID,
            productionDate: FixtureDefaults.timestamp, platformType: "M2M-PLATFORM", platformVersion: try! ThreeDigitVersion(text: "1.0.0"),
            remainingMemory: 65_536, availableMemory: 131_072, capabilities: FixtureDefaults.capabilities, profiles: profiles,
            isdrAID: FixtureDefaults.isdrAID, ecasdAID: try! AID(text: "A0000005591010FFFFFFFF8900000200"))
        let pol2 = PolicyInput.pol2(
            .beforeEnableProfile,
            operation: OperationSnapshot(interface: "ES4", name: "EnableProfile", arguments: ["iccid": .string(profiles[1].profile.iccid.text)]),
            caller: CallerSnapshot(role: .mno, oid: mno), eis: eis, profile: profiles[1])
        let plma = [
            PLMASnapshot(PLMA(mnoID: mno, m2mSPID: sp1, profileType: "M2M_DEFAULT", authorisedFunctions: [.enableProfile],
                              authorisedNotifications: [.profileEnabled, .profileDisabled])),
            PLMASnapshot(PLMA(mnoID: mno, m2mSPID: sp2, profileType: "M2M_DEFAULT", authorisedNotifications: [.profileEnabled])),
        ]
        let notification = NotificationSnapshot(
            type: .profileEnabled, eid: FixtureDefaults.eid, profile: profiles[1].profile, timestamp: FixtureDefaults.timestamp)
        let routing = PolicyInput.notification(.routeNotification, notification, profile: profiles[1], plma: plma)
        let onc = [
            ONCSnapshot(ONC(mnoID: mno, profileType: "OTHER_TYPE", discardedNotifications: [.profileEnabled])),
            ONCSnapshot(ONC(mnoID: mno, profileType: "M2M_DEFAULT", discardedNotifications: [.profileDownloaded])),
        ]
        let filter = PolicyInput.notification(.filterNotification, notification, profile: profiles[1], onc: onc)
        return [
            ("POL2 before_enable_profile", pol2, { $0.decision?.decision == .allow }),
            ("routing route_notification", routing, { $0.routes?.count == 3 }),
            ("ONC filter_notification", filter, { $0.filter == .keep }),
        ]
    }
}
