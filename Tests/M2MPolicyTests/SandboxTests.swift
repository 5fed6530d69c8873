// The sandbox attack battery: every attack is blocked (a typed PolicyError, or a refusal at
// load), and the same engine answers the next call correctly.

import M2MCore
@testable import M2MPolicy
import Testing

@Suite("Sandbox attack battery")
struct SandboxTests {
    static let limits = PolicyLimits(memory: 16 << 20, instructions: 2_000_000, timeout: .seconds(5))

    /// A bundle whose before_enable_profile runs `body`; before_disable_profile is benign.
    static func bundle(_ body: String, top: String = "") throws -> TempTree {
        try singleFileBundle("""
            local m2m = require "m2m"
            \(top)
            return {
              before_enable_profile = function(ctx, conf)
                \(body)
              end,
              before_disable_profile = function(ctx, conf)
                return m2m.deny(m2m.subject.PROFILE_ICCID, m2m.reason.REFUSED, "still here " .. ctx.profile.iccid .. " " .. string.format("%d", 42))
              end,
            }
            """)
    }

    static let profiles = [Sample.profile(1, state: .enabled), Sample.profile(2)]
    static let attackInput = Sample.enable(2, in: profiles)
    static let benignInput = PolicyInput.pol2(
        .beforeDisableProfile, operation: OperationSnapshot(interface: "ES4", name: "DisableProfile"),
        caller: CallerSnapshot(role: .mno, oid: Sample.mno), eis: Sample.eis(profiles), profile: profiles[0])

    /// Runs the attack, checks its error code, then checks the engine still answers correctly.
    @discardableResult
    static func blocked(
        _ body: String, top: String = "", limits: PolicyLimits = limits, _ codes: [PolicyError.Code],
        message: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> DecisionRecord {
        let tree = try bundle(body, top: top)
        let e = try engine(tree, limits: limits)
        let record = e.evaluate(attackInput)
        let error = try #require(record.error, "the attack was not stopped: \(record.result)", sourceLocation: sourceLocation)
        #expect(codes.contains(error.code), "\(error)", sourceLocation: sourceLocation)
        if let message { #expect(error.message.contains(message), "\(error.message)", sourceLocation: sourceLocation) }
        // fail-closed: the operation is denied with 1.2/4.2
        #expect(record.result.decision?.decision == .deny(
            subject: .functionProvider, reason: .executionError, message: "policy evaluation failed (\(error.code.name))"),
            sourceLocation: sourceLocation)
        for _ in 0..<3 {
            let next = e.evaluate(benignInput)
            #expect(next.error == nil, "\(String(describing: next.error))", sourceLocation: sourceLocation)
            #expect(next.result.decision?.decision == .deny(
                subject: .profileICCID, reason: .refused, message: "still here \(Sample.iccid(1).text) 42"), sourceLocation: sourceLocation)
        }
        return record
    }

    @Test("io, os, debug and package do not exist")
    func libraries() throws {
        try Self.blocked(#"return io.open("/etc/passwd")"#, [.pluginFailed], message: "global 'io'")
        try Self.blocked(#"os.execute("true")"#, [.pluginFailed], message: "global 'os'")
        try Self.blocked(#"return debug.getinfo(1)"#, [.pluginFailed], message: "global 'debug'")
        try Self.blocked(#"return package.loaded"#, [.pluginFailed], message: "global 'package'")
    }

    @Test("require resolves only m2m and the bundle's own files", arguments: ["io", "os", "debug", "package", "string", "/etc/passwd", "../pol2"])
    func requireHost(module: String) throws {
        try Self.blocked("return require(\"\(module)\")", [.pluginFailed], message: "not found")
    }

    @Test("load, loadstring, dofile, loadfile and collectgarbage are gone", arguments: ["load", "loadstring", "dofile", "loadfile", "collectgarbage"])
    func loaders(name: String) throws {
        try Self.blocked("return \(name)(\"return 1\")", [.pluginFailed], message: "global '\(name)'")
    }

    @Test("string.dump is gone, also through the string metatable")
    func dump() throws {
        try Self.blocked("return string.dump(function() end)", [.pluginFailed], message: "field 'dump'")
        try Self.blocked(#"return ("x").dump(function() end)"#, [.pluginFailed], message: "field 'dump'")
    }

    @Test("binary chunks are refused at load")
    func bytecode() throws {
        let tree = try singleFileBundle("\u{1B}Lua\u{54}\u{00}\u{19}\u{93}\r\n\u{1A}\nrest")
        #expect(throws: PolicyError(code: .loadFailed, message: "")) { try engine(tree) }
        do {
            _ = try engine(tree)
        } catch let error as PolicyError {
            #expect(error.message.contains("binary chunk"))
        }
    }

    @Test("the string metatable is locked")
    func stringMetatable() throws {
        let tree = try Self.bundle(#"return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, tostring(getmetatable("")))"#)
        let e = try engine(tree)
        #expect(e.evaluate(Self.attackInput).result.decision?.decision
            == .deny(subject: .eid, reason: .refused, message: "m2m: the string metatable is locked"))
        try Self.blocked(#"getmetatable("").__index.rep = nil"#, [.pluginFailed])
        try Self.blocked(#"setmetatable("", {})"#, [.pluginFailed])
    }

    @Test("m2m, its tables, snapshots and verdicts are read-only")
    func readOnly() throws {
        try Self.blocked("m2m.allow = function() end", [.pluginFailed], message: "read-only")
        try Self.blocked("m2m.subject.EID = m2m.subject.POL2", [.pluginFailed], message: "read-only")
        try Self.blocked("rawset(m2m, 'allow', 1)", [.pluginFailed], message: "global 'rawset'")
        try Self.blocked("setmetatable(m2m, nil)", [.pluginFailed], message: "protected metatable")
        try Self.blocked("ctx.profile.state = 'Enabled'", [.pluginFailed], message: "read-only snapshot")
        try Self.blocked("conf.x = 1", [.pluginFailed], message: "read-only")
        try Self.blocked("local d = m2m.allow(); d.kind = 'deny'", [.pluginFailed])
        try Self.blocked(#"for k, v in pairs(m2m) do if type(v) == "table" then v.x = 1 end end"#, [.pluginFailed], message: "read-only")
    }

    @Test("_G and _ENV tampering stays inside the plugin's own environment")
    func environments() throws {
        // Layer 1 wrecks its globals; layer 2 (another file) still has its own.
        let tree = try TempTree([
            "b/bundle.lua": #"return { name = "t", version = "1.0.0", operator = "*", policies = { "a.lua", "b.lua" } }"#,
            "b/a.lua": """
                local m2m = require "m2m"
                return { before_enable_profile = function(ctx)
                  _G.string = nil; _G.pairs = nil; tostring = nil; _ENV.m2m = nil; setmetatable(_G, { __index = function() error("trap") end })
                  return nil
                end }
                """,
            "b/b.lua": """
                local m2m = require "m2m"
                return { before_enable_profile = function(ctx)
                  return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, string.format("%s %s", tostring(pairs ~= nil), type(_G.string)))
                end }
                """,
        ])
        let e = try engine(tree)
        for _ in 0..<2 {
            #expect(e.evaluate(Self.attackInput).result.decision?.decision == .deny(subject: .eid, reason: .refused, message: "true table"))
        }
        try Self.blocked("local _ENV = {} return print()", [.pluginFailed], message: "global 'print'")
    }

    @Test("coroutines inherit the budget")
    func coroutines() throws {
        try Self.blocked("coroutine.wrap(function() while true do end end)()", [.instructionBudgetExceeded])
        try Self.blocked(
            "local co = coroutine.wrap(function() while true do coroutine.yield() end end) while true do co() end",
            [.instructionBudgetExceeded])
        try Self.blocked(
            "local co = coroutine.create(function() while true do end end) while true do coroutine.resume(co) end",
            [.instructionBudgetExceeded])
    }

    @Test("catching the budget error does not escape it")
    func pcallLoop() throws {
        try Self.blocked("while true do pcall(function() while true do end end) end", [.instructionBudgetExceeded])
        try Self.blocked(
            "while true do xpcall(function() error('x') end, function() while true do end end) end",
            [.instructionBudgetExceeded])
    }

    @Test("infinite loops: the instruction budget, or the deadline")
    func loops() throws {
        try Self.blocked("while true do end", [.instructionBudgetExceeded], message: "instruction budget exceeded")
        var timed = Self.limits
        timed.instructions = 0  // no instruction budget: the wall clock stops it
        timed.timeout = .milliseconds(50)
        let start = ContinuousClock.now
        try Self.blocked("while true do end", limits: timed, [.timeout], message: "deadline exceeded")
        #expect(ContinuousClock.now - start < .seconds(3))
    }

    @Test("memory bombs hit the allocator cap")
    func memory() throws {
        var generous = Self.limits
        generous.instructions = 500_000_000
        try Self.blocked("local s = string.rep('x', 1 << 30) return nil", limits: generous, [.memoryExceeded, .pluginFailed])
        try Self.blocked("local t = {} for i = 1, 1e9 do t[i] = i end", limits: generous, [.memoryExceeded])
        try Self.blocked("local s = 'x' for i = 1, 40 do s = s .. s end", limits: generous, [.memoryExceeded])
        try Self.blocked("local t = {} for i = 1, 1e9 do t[#t + 1] = { i, tostring(i) } end", limits: generous, [.memoryExceeded])
    }

    @Test("deep recursion is stopped (Lua stack, C stack)")
    func recursion() throws {
        var generous = Self.limits
        generous.instructions = 500_000_000
        try Self.blocked("local function f(n) return f(n + 1) + 1 end return f(1)", limits: generous, [.pluginFailed, .memoryExceeded])
        try Self.blocked("local function f() local ok, e = pcall(f) error(e, 0) end f()", limits: generous, [.pluginFailed, .memoryExceeded])
        try Self.blocked("local t = setmetatable({}, {}) getmetatable(t).__index = function(s, k) return s[k] end return t.x",
                         limits: generous, [.pluginFailed, .memoryExceeded])
    }

    @Test("error objects whose __tostring loops or fails cannot hurt the host")
    func errorObjects() throws {
        let start = ContinuousClock.now
        try Self.blocked("error(setmetatable({}, { __tostring = function() while true do end end }))", [.pluginFailed],
                         message: "error object is a table value")
        try Self.blocked("error(setmetatable({}, { __tostring = function() error('boom') end }))", [.pluginFailed],
                         message: "error object is a table value")
        try Self.blocked("error(nil)", [.pluginFailed], message: "error object is a nil value")
        try Self.blocked("error(42)", [.pluginFailed], message: "error object is a number value")
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test("xpcall handlers run as ordinary code; to-be-closed variables too")
    func handlers() throws {
        let tree = try Self.bundle("""
            local ok, msg = xpcall(function(a) error("in " .. a, 0) end, function(e) return "handled " .. e end, "f")
            return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, tostring(ok) .. " " .. msg)
            """)
        #expect(try engine(tree).evaluate(Self.attackInput).result.decision?.decision
            == .deny(subject: .eid, reason: .refused, message: "false handled in f"))
        try Self.blocked("xpcall(function() error('x') end, function() error('again') end)", [.pluginFailed], message: "again")
        try Self.blocked(
            "local x <close> = setmetatable({}, { __close = function() while true do end end }) error('x')",
            [.instructionBudgetExceeded])
    }

    @Test("__gc finalizers are refused (they would run with hooks off)")
    func finalizers() throws {
        try Self.blocked("setmetatable({}, { __gc = function() while true do end end })", [.pluginFailed], message: "__gc")
    }

    @Test("a snapshot kept past its call cannot be read")
    func staleSnapshot() throws {
        let tree = try Self.bundle("""
            if kept then return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, kept.state) end
            kept = ctx.profile
            return nil
            """)
        let e = try engine(tree)
        #expect(e.evaluate(Self.attackInput).error == nil)
        let second = e.evaluate(Self.attackInput)
        #expect(second.error?.code == .pluginFailed)
        #expect(second.error?.message.contains("snapshot used after its call") == true)
    }

    @Test("wrong results and PDK misuse are typed errors")
    func results() throws {
        try Self.blocked(#"return "allow""#, [.invalidResult], message: "must return")
        try Self.blocked("return { kind = 'allow' }", [.invalidResult])
        try Self.blocked("return m2m.keep()", [.pluginFailed], message: "not available in phase 'before_enable_profile'")
        try Self.blocked(#"return m2m.deny("8.2.3", "3.8", "x")"#, [.pluginFailed], message: "m2m.subject constant")
        try Self.blocked("return m2m.deny(m2m.reason.REFUSED, m2m.subject.EID)", [.pluginFailed], message: "other table's constant")
        try Self.blocked("return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, {})", [.pluginFailed], message: "string expected")
        try Self.blocked("return m2m.allow { auto_delete = 'not an iccid' }", [.invalidResult], message: "not an ICCID")
        try Self.blocked("return m2m.allow { typo = 1 }", [.pluginFailed], message: "unknown option")
    }

    @Test("top-level code runs under the load budget and cannot use hook-only functions")
    func loadPhase() throws {
        let loop = try singleFileBundle("while true do end")
        var limits = Self.limits
        limits.loadInstructions = 1_000_000
        #expect(throws: PolicyError(code: .instructionBudgetExceeded, message: "")) { try engine(loop, limits: limits) }
        let clock = try singleFileBundle("local m2m = require 'm2m' local t = m2m.clock.now() return {}")
        do {
            _ = try engine(clock)
            Issue.record("m2m.clock.now() at load was accepted")
        } catch let error as PolicyError {
            #expect(error.code == .loadFailed)
            #expect(error.message.contains("not available in phase 'load'"))
        }
    }

    @Test("a blown budget discards the state; the pool builds a fresh one")
    func recycling() throws {
        let tree = try Self.bundle("while true do end")
        let e = try engine(tree, limits: Self.limits)
        _ = e.evaluate(Self.attackInput)
        #expect(e.metrics.snapshot.statesDiscarded >= 1)
        #expect(e.evaluate(Self.benignInput).error == nil)
        #expect(e.metrics.snapshot.failures[.pol2] == 1)
        #expect(e.metrics.snapshot.errors["instructionBudgetExceeded"] == 1)
    }
}
