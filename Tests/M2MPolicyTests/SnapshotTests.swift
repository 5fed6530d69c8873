// Every snapshot type round trips: Swift → encoded → Lua proxy (read field by field through
// __pairs/__index) → plain Lua tables → encoded → Swift, and equals the original. Also the JSON
// form (decision records) and the fixture rules.

import Foundation
import M2MCore
@testable import M2MPolicy
import Testing

@Suite("Snapshots")
struct SnapshotTests {
    /// Hands `encoded` to Lua as a typed proxy, copies it with m2m.util.copy and returns
    /// { copy = plain table, name = tostring(proxy), n = #proxy }.
    static func throughLua(_ encoded: [UInt8]) throws -> PolicyValue {
        let runtime = try LuaRuntime(
            set: try PolicySet(bundles: [], plugins: [:]), limits: .testing, mode: .test(coverage: false), services: PolicyServices())
        let source = """
            local m2m = require "m2m"
            return function(v)
              local fields = 0
              for _ in pairs(v) do fields = fields + 1 end
              return { copy = m2m.util.copy(v), name = tostring(v), n = #v, fields = fields, same = (v == v) }
            end
            """
        let scope = try runtime.newScope([PolicySourceFile(path: "rt.lua", module: "rt", text: source)], layer: "rt")
        let ref = try runtime.require("rt", in: scope, layer: "rt")
        var w = ValueWriter()
        w.beginArray(count: 1)
        w.element()
        w.raw(encoded)
        w.endArray()
        return try runtime.call(ref, encoded: w.bytes, layer: "rt")
    }

    static func check<S: PolicySnapshot>(_ snapshot: S, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try throughLua(snapshot.encoded)
        #expect(result["name"].stringValue?.hasPrefix(S.kind.luaName + ": ") == true, "\(result["name"])", sourceLocation: sourceLocation)
        #expect(result["same"] == .bool(true), sourceLocation: sourceLocation)
        let back = try S(policyValue: result["copy"])
        #expect(back == snapshot, sourceLocation: sourceLocation)
        #expect(back.encoded == snapshot.encoded, sourceLocation: sourceLocation)
        #expect(result["fields"].intValue == snapshot.policyValue.recordValue?.count, sourceLocation: sourceLocation)
        // JSON (decision records): the same value again
        let json = try JSONEncoder().encode(snapshot)
        #expect(try JSONDecoder().decode(S.self, from: json) == snapshot, sourceLocation: sourceLocation)
    }

    static let plma = PLMASnapshot(PLMA(
        mnoID: Sample.mno, m2mSPID: Sample.sp, profileType: "M2M_DEFAULT", authorisedFunctions: [.enableProfile, .deleteProfile],
        authorisedNotifications: [.profileEnabled, .smsrChange]))
    static let onc = ONCSnapshot(ONC(mnoID: Sample.mno, profileType: "M2M_DEFAULT", discardedNotifications: [.profileDownloaded]))
    static let profiles = [
        Sample.profile(1, state: .enabled, fallback: true, rules: [POL2.Rule(action: .disable, qualification: .notAllowed)]),
        Sample.profile(2, emergency: true, rules: [POL2.Rule(action: .disable, qualification: .autoDelete), POL2.Rule(action: .delete, qualification: .notAllowed)]),
        Sample.profile(3, state: .created, owner: Sample.otherMNO, smdp: nil),
    ]
    static let notification = NotificationSnapshot(
        type: .profileDisabled, eid: Sample.eid, profile: profiles[0].profile, requester: Sample.sp, timestamp: Timestamp(seconds: 1_714_553_600))

    @Test func profile() throws {
        for p in Self.profiles { try Self.check(p) }
    }

    @Test func eis() throws {
        try Self.check(Sample.eis(Self.profiles))
        try Self.check(Sample.eis([]))
    }

    @Test func callerOperationPLMAONCNotification() throws {
        for role in CallerSnapshot.Role.allCases { try Self.check(CallerSnapshot(role: role, oid: Sample.mno)) }
        try Self.check(OperationSnapshot(
            interface: "ES4", name: "EnableProfile",
            arguments: ["iccid": .string(Sample.iccid(2).text), "required_memory": 4096, "enable": true, "ratio": .number(0.5),
                        "tags": ["a", "b"], "nested": ["x": 1]]))
        try Self.check(OperationSnapshot(interface: "ES2", name: "DownloadProfile"))
        try Self.check(Self.plma)
        try Self.check(Self.onc)
        try Self.check(Self.notification)
        try Self.check(NotificationSnapshot(type: .smsrChange, eid: Sample.eid, smsrID: "1.3.6.1.4.1.47800.9", timestamp: FixtureDefaults.timestamp))
    }

    @Test func input() throws {
        let input = PolicyInput.pol2(
            .beforeEnableProfile, operation: OperationSnapshot(interface: "ES4", name: "EnableProfile"),
            caller: CallerSnapshot(role: .m2mSP, oid: Sample.sp), eis: Sample.eis(Self.profiles), profile: Self.profiles[1], plma: [Self.plma])
        try Self.check(input)
        #expect(input.enabledProfile == Self.profiles[0])
        try Self.check(PolicyInput.notification(.filterNotification, Self.notification, onc: [Self.onc, Self.onc]))
    }

    @Test("Lua sees typed fields, derived POL2 flags, lists with # and ipairs")
    func luaView() throws {
        let result = try Self.throughLua(Self.profiles[1].encoded)
        let copy = result["copy"]
        #expect(copy["iccid"] == .string(Sample.iccid(2).text))
        #expect(copy["emergency"] == true)
        #expect(copy["disable_not_allowed"] == false)
        #expect(copy["auto_delete"] == true)
        #expect(copy["delete_not_allowed"] == true)
        #expect(copy["pol2"].arrayValue?.count == 2)
        #expect(copy["pol2"].arrayValue?.first?["action"] == "DISABLE")
        let list = try Self.throughLua(PLMASnapshot(PLMA(mnoID: Sample.mno, m2mSPID: Sample.sp, profileType: "T")).encoded)
        #expect(list["copy"]["functions"] == .array([]))
    }

    @Test("strict decoding refuses what production would never send")
    func strict() throws {
        var value = Self.profiles[0].policyValue.recordValue!
        value["iccid"] = "8988"
        #expect(throws: PolicyError(code: .invalidInput, message: "")) { try ProfileSnapshot(policyValue: .record(value)) }
        value = Self.profiles[0].policyValue.recordValue!
        value["unknown"] = 1
        #expect(throws: PolicyError(code: .invalidInput, message: "")) { try ProfileSnapshot(policyValue: .record(value)) }
        value = Self.profiles[0].policyValue.recordValue!
        value["disable_not_allowed"] = false  // derived: must agree with the rules
        #expect(throws: PolicyError(code: .invalidInput, message: "")) { try ProfileSnapshot(policyValue: .record(value)) }
        value = Self.profiles[0].policyValue.recordValue!
        value.removeValue(forKey: "state")
        #expect(throws: PolicyError(code: .invalidInput, message: "")) { try ProfileSnapshot(policyValue: .record(value)) }
    }

    @Test("fixtures fill defaults and validate like production")
    func fixtures() throws {
        let profile = try ValueReader.decode(try Fixtures.build(kind: "profile", ["iccid": .string(Sample.iccid(7).text)]))
        #expect(profile["state"] == "Disabled")
        #expect(profile["mno_id"] == .string(FixtureDefaults.mnoID.text))
        #expect(profile["profile_type"] == "M2M_DEFAULT")
        #expect(profile["smdp_id"] == .null)
        #expect(throws: PolicyError(code: .invalidInput, message: "")) { try Fixtures.build(kind: "eis", ["eid": "123"]) }
        #expect(throws: PolicyError(code: .invalidInput, message: "")) { try Fixtures.build(kind: "caller", ["role": "ADMIN"]) }
        #expect(throws: PolicyError(code: .invalidInput, message: "")) { try Fixtures.build(kind: "nope", [:]) }
    }

    @Test("the value encoding round trips any PolicyValue and rejects truncation")
    func codec() throws {
        let value: PolicyValue = ["a": 1, "b": [true, false, .null], "c": ["d": .number(-2.5), "e": "é"], "f": .integer(.min)]
        #expect(try ValueReader.decode(value.encoded) == value)
        let bytes = value.encoded
        for cut in [1, bytes.count / 2, bytes.count - 1] {
            #expect(throws: ValueDecodingError.self) { try ValueReader.decode(Array(bytes.prefix(cut))) }
        }
    }

    @Test("the input digest is XXH64 and stable")
    func digest() {
        // XXH64 reference values (seed 0) from the xxHash test suite.
        #expect(XXH64.hash([]) == 0xEF46DB3751D8E999)
        #expect(XXH64.hash(Array("abc".utf8)) == 0x44BC2CF5AD770999)
        let input = PolicyInput(hook: .beforeEnableProfile, profile: Self.profiles[0])
        #expect(input.digest == PolicyInput(hook: .beforeEnableProfile, profile: Self.profiles[0]).digest)
        #expect(input.digest != PolicyInput(hook: .beforeEnableProfile, profile: Self.profiles[1]).digest)
        #expect(input.digest.count == 16)
    }
}

@Suite("PolicyResult JSON")
struct PolicyResultJSONTests {
    @Test("The hand-written JSON of every kind of result decodes back equal with JSONDecoder")
    func roundTrip() throws {
        let results: [PolicyResult] = [
            .decision(DecisionOutcome(.allow)),
            .decision(DecisionOutcome(.allowWithWarning(subject: SubjectCode.pol2, reason: ReasonCode.refused, message: "warn \"quoted\"\n"), autoDelete: [
                try ICCID(withoutCheckDigit: "894450000000000012")])),
            .decision(DecisionOutcome(.deny(subject: SubjectCode.pol2, reason: ReasonCode.refused, message: nil))),
            .routes([Route(via: .es2, smdp: "1.3.6.1.4.1.99999.3.1", recipient: "1.3.6.1.4.1.99999.4.1", role: .mno, retry: .critical),
                     Route(via: .es4, recipient: "1.3.6.1.4.1.99999.5.1", role: .m2mSP, retry: .bestEffort)]),
            .routes([]),
            .filter(.keep), .filter(.drop(message: "discarded by ONC")), .filter(.drop(message: nil)),
        ]
        for result in results {
            let decoded = try JSONDecoder().decode(PolicyResult.self, from: Data(result.jsonText.utf8))
            #expect(decoded == result, "\(result.jsonText)")
        }
    }
}
