// The m2m PDK: constants generated from the Swift tables (names checked against the sources of
// M2MCore), phase gating, verdict values.

import Foundation
import M2MCore
@testable import M2MPolicy
import Testing

@Suite("PDK")
struct PDKTests {
    static let core = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources/M2MCore")

    /// `public static let name = Type("code")` declarations of a table file, as (code, name).
    static func declarations(_ file: String, type: String) throws -> [(String, String)] {
        let text = try String(contentsOf: core.appendingPathComponent(file), encoding: .utf8)
        var out: [(String, String)] = []
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix("public static let "), t.contains("= \(type)(\"") else { continue }
            let name = t.dropFirst("public static let ".count).prefix { $0 != " " }.replacingOccurrences(of: "`", with: "")
            let code = t.split(separator: "\"")[1]
            out.append((String(code), name))
        }
        return out
    }

    @Test("every row of SubjectCode.table and ReasonCode.table has its Swift constant's name")
    func namesMatchSources() throws {
        let subjects = try Self.declarations("SubjectCode+Table.swift", type: "SubjectCode")
        let reasons = try Self.declarations("ReasonCode+Table.swift", type: "ReasonCode")
        #expect(subjects.count == SubjectCode.table.count)
        #expect(reasons.count == ReasonCode.table.count)
        #expect(Dictionary(uniqueKeysWithValues: subjects) == StatusCodeNames.subjects)
        #expect(Dictionary(uniqueKeysWithValues: reasons) == StatusCodeNames.reasons)
        #expect(StatusCodeNames.upperSnake(camel: "profileICCID") == "PROFILE_ICCID")
        #expect(StatusCodeNames.upperSnake(camel: "euiccRemoteProvisioning") == "EUICC_REMOTE_PROVISIONING")
        #expect(StatusCodeNames.upperSnake(camel: "timeToLiveExpired") == "TIME_TO_LIVE_EXPIRED")
        #expect(StatusCodeNames.upperSnake(specName: "Not Allowed (Authorisation)") == "NOT_ALLOWED")
    }

    @Test("m2m.subject and m2m.reason hold every row, with code, name and meaning")
    func constantsInLua() throws {
        let runtime = try LuaRuntime(
            set: try PolicySet(bundles: [], plugins: [:]), limits: .testing, mode: .production, services: PolicyServices())
        let source = """
            local m2m = require "m2m"
            return function()
              local s, r = {}, {}
              for k, v in pairs(m2m.subject) do s[k] = v.code .. "|" .. v.meaning end
              for k, v in pairs(m2m.reason) do r[k] = tostring(v) end
              return { subject = s, reason = r, eid = m2m.subject.EID.code, refused = m2m.reason.REFUSED.code,
                       same = m2m.subject.EID == m2m.subject.EID, version = m2m.version }
            end
            """
        let scope = try runtime.newScope([PolicySourceFile(path: "c.lua", module: "c", text: source)], layer: "c")
        let v = try runtime.call(try runtime.require("c", in: scope, layer: "c"), [], layer: "c")
        #expect(v["eid"] == "8.1.1")
        #expect(v["refused"] == "3.8")
        #expect(v["same"] == true)
        let subjects = try #require(v["subject"].recordValue)
        #expect(subjects.count == SubjectCode.table.count)
        for entry in SubjectCode.table {
            #expect(subjects[StatusCodeNames.luaName(subject: entry)] == .string("\(entry.code.rawValue)|\(entry.meaning)"))
        }
        let reasons = try #require(v["reason"].recordValue)
        #expect(reasons.count == ReasonCode.table.count)
        for entry in ReasonCode.table { #expect(reasons[StatusCodeNames.luaName(reason: entry)] == .string(entry.code.rawValue)) }
    }

    @Test("hook-only functions are gated by phase", arguments: [
        ("before_enable_profile", "m2m.keep()", "m2m.keep is not available in phase 'before_enable_profile'"),
        ("before_enable_profile", "m2m.route { via = 'ES4', to = '1.2' }", "m2m.route is not available"),
        ("filter_notification", "m2m.allow()", "m2m.allow is not available in phase 'filter_notification'"),
        ("route_notification", "m2m.drop()", "m2m.drop is not available"),
    ])
    func gating(hook: String, call: String, message: String) throws {
        let tree = try singleFileBundle("local m2m = require 'm2m' return { \(hook) = function() return \(call) end }")
        let e = try engine(tree)
        let input: PolicyInput = hook == "before_enable_profile"
            ? Sample.enable(1, in: [Sample.profile(1)]) : EngineTests.notificationInput(PolicyHook(rawValue: hook)!)
        let r = e.evaluate(input)
        #expect(r.error?.code == .pluginFailed)
        #expect(r.error?.message.contains(message) == true, "\(String(describing: r.error))")
    }

    @Test("a misspelt hook or a non-table module is refused at load")
    func moduleShape() throws {
        for (source, text) in [("return { before_enabel_profile = function() end }", "unknown hook 'before_enabel_profile'"),
                               ("return { before_enable_profile = 3 }", "must be a function"),
                               ("return 42", "must return a table of hooks")] {
            do {
                _ = try engine(try singleFileBundle(source))
                Issue.record("accepted: \(source)")
            } catch let error as PolicyError {
                #expect(error.code == .loadFailed)
                #expect(error.message.contains(text), "\(error)")
            }
        }
    }

    @Test("bundle files require each other; plugins see only their own files")
    func requireScopes() throws {
        let tree = try TempTree([
            "plugins/p/plugin.lua": #"local h = require "lib.h" return { name = "p", version = "1.0.0", before_enable_profile = function() return h.v() end }"#,
            "plugins/p/lib/h.lua": #"local m2m = require "m2m" return { v = function() return nil end }"#,
            "b/bundle.lua": #"return { name = "r", version = "1.0.0", operator = "*", plugins = { "p" } }"#,
            "b/pol2.lua": #"local w = require "lib.w" return { before_enable_profile = w.hook }"#,
            "b/lib/w.lua": #"local m2m = require "m2m" return { hook = function() return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, "w") end }"#,
        ])
        let e = try engine(tree)
        #expect(e.evaluate(Sample.enable(1, in: [Sample.profile(1)])).result.decision?.decision
            == .deny(subject: .eid, reason: .refused, message: "w"))
        try tree.write(["b/pol2.lua": #"local h = require "lib.h" return {}"#])
        #expect(throws: PolicyError(code: .loadFailed, message: "")) { try engine(tree) }
    }
}
