// Decisions, failure modes, records and metrics of the engine.

import Foundation
import M2MCore
@testable import M2MPolicy
import Testing

@Suite("Engine")
struct EngineTests {
    static let profiles = [Sample.profile(1, state: .enabled), Sample.profile(2)]

    @Test("a deny from a layer is the decision, with the layer that decided")
    func allowDeny() throws {
        let tree = try singleFileBundle("""
            local m2m = require "m2m"
            return {
              before_enable_profile = function(ctx)
                if ctx.profile.state == "Enabled" then
                  return m2m.deny(m2m.subject.PROFILE_ICCID, m2m.reason.INVALID_TRANSITION, "already")
                end
                return m2m.allow()
              end,
            }
            """)
        let e = try engine(tree)
        let r1 = e.evaluate(Sample.enable(2, in: Self.profiles))
        #expect(r1.error == nil)
        #expect(r1.result.decision?.decision == .allow)
        let r2 = e.evaluate(Sample.enable(1, in: Self.profiles))
        #expect(r2.result.decision?.decision == .deny(subject: .profileICCID, reason: .invalidTransition, message: "already"))
        #expect(r2.decidedBy == "t/pol2")
        #expect(r2.bundle == BundleID(name: "t", version: "1.0.0"))
        #expect(r2.sequence == r1.sequence + 1)
        #expect(r2.time == FixtureDefaults.timestamp)
        #expect(r2.durationNanoseconds > 0)
    }

    @Test("decisions map to SGP.02 statuses; a policy failure is FAILED 1.2/4.2")
    func statuses() {
        #expect(PolicyDecision.allow.executionStatus == .success)
        #expect(PolicyDecision.deny(subject: .pol2, reason: .refused, message: "m").executionStatus == .failed(.pol2, .refused, message: "m"))
        let warn = PolicyDecision.allowWithWarning(subject: .profileType, reason: .unsupported, message: nil).executionStatus
        #expect(warn.status == .executedWithWarning)
        #expect(warn.statusCodeData?.subject == .profileType)
        let error = PolicyError(code: .timeout, message: "x")
        #expect(error.executionStatus.status == .failed)
        #expect(error.executionStatus.statusCodeData?.subject == .functionProvider)
        #expect(error.executionStatus.statusCodeData?.reason == .executionError)
    }

    static let failing = """
        local m2m = require "m2m"
        return {
          before_disable_profile = function(ctx) error("boom") end,
          route_notification = function(ctx, routes) error("boom") end,
          filter_notification = function(ctx) error("boom") end,
        }
        """

    static func failingEngine(_ modes: String) throws -> (TempTree, PolicyEngine) {
        let tree = try TempTree([
            "b/bundle.lua": "return { name = \"f\", version = \"1.0.0\", operator = \"*\", policies = { \"p.lua\" }, on_error = { \(modes) } }",
            "b/p.lua": failing,
        ])
        return (tree, try engine(tree))
    }

    static let disableInput = PolicyInput.pol2(
        .beforeDisableProfile, operation: OperationSnapshot(interface: "ES4", name: "DisableProfile"),
        caller: CallerSnapshot(role: .mno, oid: Sample.mno),
        eis: Sample.eis([Sample.profile(1, state: .enabled, rules: [POL2.Rule(action: .disable, qualification: .notAllowed)])]),
        profile: Sample.profile(1, state: .enabled, rules: [POL2.Rule(action: .disable, qualification: .notAllowed)]))

    static func notificationInput(_ hook: PolicyHook) -> PolicyInput {
        let p = Sample.profile(1)
        return PolicyInput.notification(
            hook, NotificationSnapshot(type: .profileEnabled, eid: Sample.eid, profile: p.profile, timestamp: FixtureDefaults.timestamp),
            profile: p,
            plma: [PLMASnapshot(PLMA(mnoID: Sample.mno, m2mSPID: Sample.sp, profileType: "M2M_DEFAULT", authorisedNotifications: [.profileEnabled]))],
            onc: [ONCSnapshot(ONC(mnoID: Sample.mno, profileType: "M2M_DEFAULT", discardedNotifications: [.profileEnabled]))])
    }

    @Test("fail-closed: deny 1.2/4.2, owner-only routes, drop")
    func failClosed() throws {
        let (_, e) = try Self.failingEngine(#"pol2 = "fail-closed", routing = "fail-closed", onc = "fail-closed""#)
        let d = e.evaluate(Self.disableInput)
        #expect(d.error?.code == .pluginFailed)
        #expect(d.error?.layer == "f/p")
        #expect(d.error?.message.contains("boom") == true)
        #expect(d.error?.message.contains("stack traceback") == true)
        #expect(d.result.decision?.decision == .deny(subject: .functionProvider, reason: .executionError, message: "policy evaluation failed (pluginFailed)"))
        let r = e.evaluate(Self.notificationInput(.routeNotification))
        #expect(r.result.routes == [Route(via: .es2, smdp: Sample.smdp, recipient: Sample.mno, role: .mno)])
        let f = e.evaluate(Self.notificationInput(.filterNotification))
        #expect(f.result.filter == .drop(message: "policy evaluation failed (pluginFailed)"))
        let m = e.metrics.snapshot
        #expect(m.failures[.pol2] == 1 && m.failures[.routing] == 1 && m.failures[.onc] == 1)
        #expect(m.errors["pluginFailed"] == 3)
    }

    @Test("fail-open: the built-in SGP.02 rules still apply")
    func failOpen() throws {
        let (_, e) = try Self.failingEngine(#"pol2 = "fail-open", routing = "fail-open", onc = "fail-open""#)
        // POL2 "disabling not allowed" is enforced by the floor even though the policy failed.
        #expect(e.evaluate(Self.disableInput).result.decision?.decision
            == .deny(subject: .pol2, reason: .refused, message: "POL2 of the Profile does not allow disabling it"))
        #expect(e.evaluate(Self.notificationInput(.routeNotification)).result.routes == [
            Route(via: .es2, smdp: Sample.smdp, recipient: Sample.mno, role: .mno),
            Route(via: .es4, recipient: Sample.sp, role: .m2mSP),
        ])
        #expect(e.evaluate(Self.notificationInput(.filterNotification)).result.filter
            == .drop(message: "discarded by the ONC of \(Sample.mno) for M2M_DEFAULT"))
    }

    @Test("no bundle for the operator: noBundle, the engine's default modes")
    func noBundle() throws {
        let tree = try TempTree([
            "b/bundle.lua": #"return { name = "only", version = "1.0.0", operator = "1.3.6.1.4.1.47800.99", policies = {} }"#,
        ])
        let e = try engine(tree)
        let r = e.evaluate(Sample.enable(2, in: Self.profiles))
        #expect(r.error?.code == .noBundle)
        #expect(r.bundle == nil)
        #expect(r.result.decision?.decision.isAllowed == false)
    }

    @Test("bundles are chosen by the Profile's owner, else the default one")
    func selection() throws {
        let tree = try TempTree([
            "plugins/.keep": "",
            "a/bundle.lua": #"return { name = "a", version = "1.0.0", operator = "1.3.6.1.4.1.47800.10" }"#,
            "a/pol2.lua": #"local m2m = require "m2m" return { before_enable_profile = function() return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, "a") end }"#,
            "d/bundle.lua": #"return { name = "d", version = "1.0.0", operator = "*" }"#,
            "d/pol2.lua": #"local m2m = require "m2m" return { before_enable_profile = function() return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, "d") end }"#,
        ])
        let set = try PolicyLoader(pluginPaths: []).loadSet(bundles: [tree.path("a"), tree.path("d")])
        let e = try PolicyEngine(set: set)
        let mine = e.evaluate(Sample.enable(2, in: Self.profiles))
        #expect(mine.result.decision?.decision == .deny(subject: .eid, reason: .refused, message: "a"))
        let theirs = [Sample.profile(1, owner: Sample.otherMNO)]
        let other = e.evaluate(Sample.enable(1, in: theirs))
        #expect(other.result.decision?.decision == .deny(subject: .eid, reason: .refused, message: "d"))
        #expect(other.bundle?.name == "d")
    }

    @Test("warnings and Auto-Delete obligations combine across layers; the first deny wins")
    func composition() throws {
        let tree = try TempTree([
            "b/bundle.lua": #"return { name = "c", version = "1.0.0", operator = "*", policies = { "one.lua", "two.lua", "three.lua" } }"#,
            "b/one.lua": #"local m2m = require "m2m" return { before_enable_profile = function(ctx) return m2m.allow { auto_delete = ctx.profile.iccid } end }"#,
            "b/two.lua": #"local m2m = require "m2m" return { before_enable_profile = function(ctx) if ctx.caller.role == "M2MSP" then return m2m.deny(m2m.subject.FUNCTION_REQUESTER, m2m.reason.NOT_ALLOWED, "sp") end return m2m.warn(m2m.subject.PROFILE_TYPE, m2m.reason.UNSUPPORTED, "w2") end }"#,
            "b/three.lua": #"local m2m = require "m2m" return { before_enable_profile = function(ctx) return m2m.warn(m2m.subject.EID, m2m.reason.REFUSED, "w3", { auto_delete = { "89883010000000000100" } }) end }"#,
        ])
        let e = try engine(tree)
        let r = e.evaluate(Sample.enable(2, in: Self.profiles))
        #expect(r.result.decision == DecisionOutcome(
            .allowWithWarning(subject: .profileType, reason: .unsupported, message: "w2"),
            autoDelete: [Sample.iccid(2), try ICCID(text: "89883010000000000100")]))
        #expect(r.decidedBy == "c/two")
        let sp = e.evaluate(Sample.enable(2, in: Self.profiles, caller: CallerSnapshot(role: .m2mSP, oid: Sample.sp)))
        #expect(sp.result.decision == DecisionOutcome(.deny(subject: .functionRequester, reason: .notAllowed, message: "sp")))
    }

    @Test("routes are validated, typed and merged (most insistent retry wins)")
    func routes() throws {
        let tree = try singleFileBundle("""
            local m2m = require "m2m"
            return { route_notification = function(ctx, routes)
              routes[#routes + 1] = m2m.route { via = "ES4", to = "1.2.3", role = "M2MSP", retry = "none" }
              routes[#routes + 1] = m2m.route { via = "ES4", to = "1.2.3", role = "M2MSP", retry = "critical" }
              routes[#routes + 1] = m2m.route { via = "ES2", to = "1.2.4", smdp = "1.2.5" }
              return routes
            end }
            """, file: "routing.lua")
        let e = try engine(tree)
        #expect(e.route(Self.notificationInput(.routeNotification)) == [
            Route(via: .es4, recipient: "1.2.3", role: .m2mSP, retry: .critical),
            Route(via: .es2, smdp: "1.2.5", recipient: "1.2.4", role: .mno, retry: .standard),
        ])
        for bad in [#"{ via = "ES9", to = "1.2.3" }"#, #"{ via = "ES2", to = "1.2.3" }"#, #"{ via = "ES4", to = "x" }"#,
                    #"{ via = "ES4", to = "1.2", retry = "often" }"#, #"{ via = "ES4", to = "1.2", typo = 1 }"#] {
            let t = try singleFileBundle("local m2m = require 'm2m' return { route_notification = function() return { m2m.route \(bad) } end }", file: "routing.lua")
            let r = try engine(t).evaluate(Self.notificationInput(.routeNotification))
            #expect(r.error?.code == .pluginFailed, "\(bad)")
        }
    }

    @Test("m2m.log and print reach the host logger; m2m.clock reads the decision's instant")
    func logAndClock() throws {
        let logger = CollectingLogger()
        let tree = try singleFileBundle("""
            local m2m = require "m2m"
            return { before_enable_profile = function(ctx)
              m2m.log.warn("window", 3, true, nil, {})
              print("hello")
              local t = m2m.clock.utc()
              return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, m2m.clock.iso() .. " " .. t.hour .. " " .. m2m.clock.now() .. " " .. m2m.clock.parse("2024-01-01T01:00:00+01:00"))
            end }
            """)
        let e = try engine(tree, logger: logger, clock: FixedClock(try Timestamp(text: "2024-05-01T13:45:00Z")))
        let r = e.evaluate(Sample.enable(2, in: Self.profiles))
        #expect(r.result.decision?.decision == .deny(subject: .eid, reason: .refused, message: "2024-05-01T13:45:00Z 13 1714571100 1704067200"))
        #expect(logger.lines.map(\.1) == ["window 3 true nil <table>", "hello"])
        #expect(logger.lines.first?.0 == .warning)
    }

    @Test("lookups reach the data source; errors of the host are Lua errors a plugin can catch")
    func lookups() throws {
        struct Source: PolicyDataSource {
            func eis(_ eid: EID) -> EISSnapshot? { eid == Sample.eid ? Sample.eis([Sample.profile(5)]) : nil }
            func plma(operator: OID) -> [PLMASnapshot] { [SnapshotTests.plma] }
            func onc(operator: OID) -> [ONCSnapshot] { [] }
        }
        let tree = try singleFileBundle("""
            local m2m = require "m2m"
            return { before_enable_profile = function(ctx)
              local e = m2m.lookup.eis(ctx.eis.eid)
              local ok, err = pcall(m2m.lookup.eis, "not-an-eid")
              return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED,
                e.profiles[1].iccid .. " " .. #m2m.lookup.plma("1.2.3") .. " " .. #m2m.lookup.onc("1.2.3") .. " " .. tostring(ok) .. " " .. err)
            end }
            """)
        let loader = PolicyLoader(pluginPaths: [])
        let e = try PolicyEngine(set: try loader.loadSet(bundles: [tree.path("b")]), dataSource: Source())
        let r = e.evaluate(Sample.enable(2, in: Self.profiles))
        #expect(r.result.decision?.decision == .deny(
            subject: .eid, reason: .refused, message: "\(Sample.iccid(5).text) 1 0 false m2m.lookup.eis: 'not-an-eid' is not an EID"))
        // and the state still answers
        #expect(e.evaluate(Sample.enable(2, in: Self.profiles)).error == nil)
    }

    @Test("calls from many threads use separate states")
    func concurrency() throws {
        let tree = try singleFileBundle("""
            local m2m = require "m2m"
            local calls = 0
            return { before_enable_profile = function(ctx)
              calls = calls + 1
              local x = 0
              for i = 1, 2000 do x = x + i end
              return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, ctx.profile.iccid)
            end }
            """)
        // A generous deadline: on a loaded machine a call may wait for a core longer than 50 ms.
        let e = try engine(tree, limits: PolicyLimits(timeout: .seconds(10)))
        let inputs = (1...4).map { n in Sample.enable(n, in: (1...4).map { Sample.profile($0) }) }
        let wrong = Atomicish()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for k in 0..<300 {
                let n = (worker + k) % 4
                let r = e.evaluate(inputs[n])
                if r.result.decision?.decision != .deny(subject: .eid, reason: .refused, message: Sample.iccid(n + 1).text) { wrong.bump() }
            }
        }
        #expect(wrong.value == 0)
        #expect(e.metrics.snapshot.calls[.pol2] == 2400)
    }
}

/// A counter for tests that run on several threads.
final class Atomicish: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func bump() {
        lock.lock()
        count += 1
        lock.unlock()
    }
    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }
}
