// Helpers: temporary bundle and plugin directories, sample snapshots.

import Foundation
import M2MCore
@testable import M2MPolicy

/// A temporary directory tree written from `files` (relative path → text); removed on deinit.
final class TempTree {
    let root: String

    init(_ files: [String: String]) throws {
        root = NSTemporaryDirectory() + "m2mpolicy-" + UUID().uuidString
        try write(files)
    }

    func write(_ files: [String: String]) throws {
        for (path, text) in files {
            let full = root + "/" + path
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
    }

    func path(_ relative: String) -> String { root + "/" + relative }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

enum Sample {
    static let mno: OID = "1.3.6.1.4.1.47800.10"
    static let otherMNO: OID = "1.3.6.1.4.1.47800.11"
    static let sp: OID = "1.3.6.1.4.1.47800.20"
    static let smdp: OID = "1.3.6.1.4.1.47800.3"
    static let eid = FixtureDefaults.eid

    static func iccid(_ n: Int) -> ICCID {
        let body = "8988301000000000" + String(format: "%02d", n)
        return try! ICCID(withoutCheckDigit: body)
    }

    static func profile(
        _ n: Int, state: ProfileState = .disabled, owner: OID = mno, fallback: Bool = false, emergency: Bool = false,
        rules: [POL2.Rule] = [], type: String100 = "M2M_DEFAULT", smdp: OID? = Sample.smdp
    ) -> ProfileSnapshot {
        ProfileSnapshot(ProfileInfo(
            iccid: iccid(n), isdPAID: try! AID(text: "A0000005591010FFFFFFFF89000010" + String(format: "%02d", n)), mnoID: owner,
            fallbackAttribute: fallback, emergencyProfileAttribute: emergency,
            subscriptionAddress: SubscriptionAddress(imsi: try! IMSI(text: "23415000000000\(n % 10)"), msisdn: nil), state: state,
            smdpID: smdp, profileType: type, allocatedMemory: 16_384, freeMemory: 1024, pol2: POL2(rules: rules)))
    }

    static func eis(_ profiles: [ProfileSnapshot], remaining: Int = 65_536) -> EISSnapshot {
        EISSnapshot(
            eid: eid, eumID: FixtureDefaults.eumID, smsrID: FixtureDefaults.smsrID, productionDate: FixtureDefaults.timestamp,
            platformType: "M2M-PLATFORM", platformVersion: try! ThreeDigitVersion(text: "1.0.0"), remainingMemory: remaining,
            availableMemory: 131_072, lastAuditDate: Timestamp(seconds: 1_714_000_000), capabilities: FixtureDefaults.capabilities,
            profiles: profiles, isdrAID: FixtureDefaults.isdrAID, ecasdAID: try! AID(text: "A0000005591010FFFFFFFF8900000200"),
            additionalProperties: ["vendor": "acme"])
    }

    static func enable(_ target: Int, in profiles: [ProfileSnapshot], caller: CallerSnapshot = CallerSnapshot(role: .mno, oid: mno)) -> PolicyInput {
        PolicyInput.pol2(
            .beforeEnableProfile, operation: OperationSnapshot(interface: "ES4", name: "EnableProfile", arguments: ["iccid": .string(iccid(target).text)]),
            caller: caller, eis: eis(profiles), profile: profiles.first { $0.profile.iccid == iccid(target) })
    }
}

/// Collects log lines.
final class CollectingLogger: PolicyLogger, @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [(PolicyLogLevel, String)] = []
    func log(_ level: PolicyLogLevel, _ message: String, source: String) {
        lock.lock()
        storage.append((level, message))
        lock.unlock()
    }
    var lines: [(PolicyLogLevel, String)] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}

/// A bundle directory with one policy file (`pol2.lua` by default) and a minimal manifest.
func singleFileBundle(_ source: String, file: String = "pol2.lua", version: String = "1.0.0", extra: [String: String] = [:]) throws -> TempTree {
    var files = extra
    files["b/bundle.lua"] = """
        return { name = "t", version = "\(version)", operator = "*", policies = { "\(file)" },
                 on_error = { pol2 = "fail-closed", routing = "fail-open", onc = "fail-open" } }
        """
    files["b/" + file] = source
    return try TempTree(files)
}

func engine(_ tree: TempTree, limits: PolicyLimits = PolicyLimits(), log: any DecisionLog = InMemoryDecisionLog(),
            logger: any PolicyLogger = NullPolicyLogger(), clock: any M2MCore.Clock = FixedClock(FixtureDefaults.timestamp)) throws -> PolicyEngine {
    let loader = PolicyLoader(pluginPaths: [tree.path("plugins")], limits: limits)
    let set = try loader.loadSet(bundles: [tree.path("b")])
    var configuration = PolicyConfiguration(limits: limits)
    configuration.poolSize = 4
    return try PolicyEngine(set: set, configuration: configuration, clock: clock, decisionLog: log, logger: logger)
}
