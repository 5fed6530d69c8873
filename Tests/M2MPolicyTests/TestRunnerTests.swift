// `m2mrsp policy test`: the shipped plugins and bundles pass; failures, budgets, load errors
// and coverage are reported.

import Foundation
import M2MCore
@testable import M2MPolicy
import Testing

@Suite("Policy test runner")
struct TestRunnerTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    @Test("the shipped plugins and bundles pass their own tests")
    func shipped() throws {
        let runner = PolicyTestRunner(pluginPaths: [Self.root + "/plugins"])
        let report = runner.run(paths: [Self.root + "/plugins", Self.root + "/policies"])
        for failure in report.results where !failure.passed { Issue.record("\(failure.file): \(failure.name): \(failure.message ?? "")") }
        #expect(report.failed == 0)
        #expect(report.passed >= 50)
        let pol2 = try #require(report.coverage.first { $0.path.hasSuffix("plugins/sgp02-pol2/plugin.lua") })
        #expect(pol2.percent >= 90, "\(pol2.missed)")
        #expect(report.coverage.contains { $0.path.hasSuffix("policies/example-operator/pol2.lua") })
    }

    @Test("failures, budget trips and load errors are failed tests; the rest still runs; coverage shows missed lines")
    func failures() throws {
        let tree = try TempTree([
            "b/bundle.lua": #"return { name = "t", version = "1.0.0", operator = "*" }"#,
            "b/pol2.lua": """
                local m2m = require "m2m"
                local P = {}
                function P.before_enable_profile(ctx)
                  return m2m.allow()
                end
                function P.before_delete_profile(ctx)
                  local never = 1
                  return m2m.deny(m2m.subject.POL2, m2m.reason.REFUSED, "never")
                end
                return P
                """,
            "b/a_test.lua": """
                it("passes", function()
                  assert.allowed(policy.decide("before_enable_profile", fixtures.input { profile = fixtures.profile {} }))
                end)
                it("fails", function() assert.equal("x", "y") end)
                it("loops", function() while true do end end)
                it("runs after the loop", function() assert.is_true(true) end)
                describe("group", function()
                  before_each(function() mock.clock("2024-05-01T10:00:00Z") end)
                  it("sees the mocked clock", function() assert.equal(1714557600, m2m_now()) end)
                end)
                """,
            "b/b_test.lua": "it('is broken', function() end",
        ])
        // m2m_now: the test environment has the PDK through require; expose a helper global
        try tree.write(["b/a_test.lua": try String(contentsOfFile: tree.path("b/a_test.lua"), encoding: .utf8)
            .replacingOccurrences(of: "it(\"passes\"", with: "local m2m = require 'm2m'\nfunction m2m_now() return m2m.clock.now() end\nit(\"passes\"")])
        var limits = PolicyLimits.testing
        limits.instructions = 1_000_000
        let report = PolicyTestRunner(limits: limits).run(paths: [tree.path("b")])
        let byName = Dictionary(report.results.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byName["passes"]?.passed == true)
        #expect(byName["fails"]?.passed == false)
        #expect(byName["fails"]?.message?.contains("expected \"x\", got \"y\"") == true)
        #expect(byName["fails"]?.message?.contains("a_test.lua:") == true)
        let loop = try #require(report.results.first { $0.name == "loops" || $0.name == "test 3" })
        #expect(!loop.passed)
        #expect(loop.message?.contains("instruction budget") == true)
        #expect(byName["runs after the loop"]?.passed == true)
        #expect(byName["group › sees the mocked clock"]?.passed == true, "\(String(describing: byName["group › sees the mocked clock"]?.message))")
        #expect(report.results.contains { $0.file.hasSuffix("b_test.lua") && $0.name == "(load)" && !$0.passed })
        let cov = try #require(report.coverage.first { $0.path.hasSuffix("b/pol2.lua") })
        #expect(cov.missed == [7, 8])
        #expect(cov.executed.isSuperset(of: [2, 3, 4, 6, 10]))
    }

    @Test("a file with no tests, and a path with no test files, fail")
    func empty() throws {
        let tree = try TempTree(["x/none_test.lua": "-- nothing here", "y/readme.txt": "no tests"])
        let none = PolicyTestRunner().run(paths: [tree.path("x")])
        #expect(none.failed == 1 && none.results[0].name == "(no tests)")
        #expect(PolicyTestRunner().run(paths: [tree.path("y")]).results.isEmpty)
    }
}
