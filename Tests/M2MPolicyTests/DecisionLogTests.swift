// Decision records: in memory, as JSON lines, and `policy replay` against a candidate bundle.

import Foundation
import M2MCore
@testable import M2MPolicy
import Testing

@Suite("Decision records and replay")
struct DecisionLogTests {
    @Test("the in-memory log keeps the last records, oldest first")
    func ring() throws {
        let log = InMemoryDecisionLog(capacity: 3)
        let tree = try singleFileBundle("return {}")
        let e = try engine(tree, log: log)
        for n in 1...5 { e.evaluate(Sample.enable(1, in: [Sample.profile(n)])) }
        #expect(log.total == 5)
        #expect(log.records.map(\.sequence) == [3, 4, 5])
    }

    @Test("JSON lines: every field round trips, including the input and the error")
    func jsonLines() throws {
        let path = NSTemporaryDirectory() + "decisions-\(UUID().uuidString).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try JSONLinesDecisionLog(path: path, flushEvery: 2)
        let tree = try singleFileBundle("""
            local m2m = require "m2m"
            return { before_enable_profile = function(ctx)
              if ctx.profile.state == "Created" then error("half") end
              return m2m.deny(m2m.subject.POL2, m2m.reason.REFUSED, "no")
            end }
            """)
        let e = try engine(tree, log: log)
        let profiles = [Sample.profile(1, state: .enabled, rules: [POL2.Rule(action: .disable, qualification: .notAllowed)]),
                        Sample.profile(2, state: .created)]
        let a = e.evaluate(Sample.enable(1, in: profiles))
        let b = e.evaluate(Sample.enable(2, in: profiles))
        let c = e.evaluate(Sample.enable(1, in: profiles))
        log.flush()
        let read = try JSONLinesDecisionLog.read(path: path)
        #expect(read == [a, b, c])
        #expect(read[1].error?.code == .pluginFailed)
        #expect(read[1].error?.message.contains("half") == true)
        let line = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")[0]
        #expect(line.contains("\"input_digest\":\"\(a.inputDigest)\""))
        #expect(line.contains("\"hook\":\"before_enable_profile\""))
        #expect(line.contains("\"disable_not_allowed\":true"))
    }

    @Test("replay lists exactly the decisions a candidate bundle would change")
    func replay() throws {
        let v1 = try TempTree([
            "b/bundle.lua": #"return { name = "op", version = "1.0.0", operator = "*" }"#,
            "b/pol2.lua": """
                local m2m = require "m2m"
                return { before_enable_profile = function(ctx)
                  if m2m.clock.utc().hour >= 18 then return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, "late") end
                  return m2m.allow()
                end }
                """,
        ])
        let candidate = try TempTree([
            "b/bundle.lua": #"return { name = "op", version = "1.1.0", operator = "*" }"#,
            "b/pol2.lua": """
                local m2m = require "m2m"
                return { before_enable_profile = function(ctx)
                  if m2m.clock.utc().hour >= 20 then return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, "late") end
                  return m2m.allow()
                end }
                """,
        ])
        let log = InMemoryDecisionLog()
        let loader = PolicyLoader(pluginPaths: [])
        let e = try PolicyEngine(set: try loader.loadSet(bundles: [v1.path("b")]), decisionLog: log)
        let input = Sample.enable(1, in: [Sample.profile(1)])
        for hour in [9, 18, 19, 20, 23] {
            e.evaluate(input, at: try Timestamp(text: "2024-05-01T" + String(format: "%02d", hour) + ":30:00Z"))
        }
        let next = try PolicyEngine(set: try loader.loadSet(bundles: [candidate.path("b")]), decisionLog: NoDecisionLog())
        let report = PolicyReplay.run(log.records, against: next)
        #expect(report.total == 5)
        #expect(report.changes.map(\.record.time.text) == ["2024-05-01T18:30:00Z", "2024-05-01T19:30:00Z"])
        #expect(report.changes.allSatisfy { $0.replayed.result.decision?.decision == .allow && $0.replayed.bundle?.version == "1.1.0" })
        #expect("\(report.changes[0].record.result)" == "deny 8.1.1/3.8: late")
    }
}
