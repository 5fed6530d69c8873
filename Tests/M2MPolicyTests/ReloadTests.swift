// Hot reload: validation before the swap, version rules, the last good version, the watcher,
// and reloads under concurrent calls (never a mixed or missing bundle).

import Foundation
import M2MCore
@testable import M2MPolicy
import Testing

@Suite("Hot reload")
struct ReloadTests {
    /// A bundle whose POL2 hook denies with "v<version>" and whose test checks that.
    static func files(_ version: String, test: String? = nil) -> [String: String] {
        [
            "b/bundle.lua": #"return { name = "hot", version = "\#(version)", operator = "*" }"#,
            "b/pol2.lua": """
                local m2m = require "m2m"
                return { before_enable_profile = function(ctx)
                  return m2m.deny(m2m.subject.EID, m2m.reason.REFUSED, "v\(version)")
                end }
                """,
            "b/pol2_test.lua": test ?? """
                local m2m = require "m2m"
                it("denies with its version", function()
                  local d = policy.decide("before_enable_profile", fixtures.input { hook = "before_enable_profile", profile = fixtures.profile {} })
                  assert.denied(d, m2m.subject.EID, m2m.reason.REFUSED)
                  assert.equal("v\(version)", d.message)
                end)
                """,
        ]
    }

    static let input = Sample.enable(1, in: [Sample.profile(1)])

    static func message(_ r: DecisionRecord) -> String? {
        if case .deny(_, _, let m) = r.result.decision?.decision { return m }
        return nil
    }

    @Test("a newer, valid bundle is swapped in; the same content is left alone")
    func swap() throws {
        let tree = try TempTree(Self.files("1.0.0"))
        let loader = PolicyLoader(pluginPaths: [])
        let e = try PolicyEngine(set: try loader.loadSet(bundles: [tree.path("b")]))
        #expect(Self.message(e.evaluate(Self.input)) == "v1.0.0")
        let same = try e.reload(directory: tree.path("b"), loader: loader)
        #expect(!same.swapped)
        try tree.write(Self.files("1.1.0"))
        let report = try e.reload(directory: tree.path("b"), loader: loader)
        #expect(report.swapped && report.previous?.version == "1.0.0" && report.testsPassed == 1)
        let r = e.evaluate(Self.input)
        #expect(Self.message(r) == "v1.1.0")
        #expect(r.bundle?.version == "1.1.0")
        #expect(e.metrics.snapshot.reloads == 1)
    }

    @Test("refused: a lower version, a changed content with the same version, a compile error, a failing test")
    func refusals() throws {
        let tree = try TempTree(Self.files("2.0.0"))
        let loader = PolicyLoader(pluginPaths: [])
        let e = try PolicyEngine(set: try loader.loadSet(bundles: [tree.path("b")]))
        func refused(_ files: [String: String], _ code: PolicyError.Code, sourceLocation: SourceLocation = #_sourceLocation) throws {
            try tree.write(files)
            #expect(throws: PolicyError(code: code, message: ""), sourceLocation: sourceLocation) {
                try e.reload(directory: tree.path("b"), loader: loader)
            }
            #expect(Self.message(e.evaluate(Self.input)) == "v2.0.0", "the last good version keeps serving", sourceLocation: sourceLocation)
        }
        try refused(Self.files("1.9.9"), .versionNotNewer)
        var changed = Self.files("2.0.0")
        changed["b/pol2.lua"]! += "\n-- changed"
        try refused(changed, .versionNotNewer)
        var broken = Self.files("2.1.0")
        broken["b/pol2.lua"] = "return { before_enable_profile = function( }"
        try refused(broken, .loadFailed)
        try refused(Self.files("2.2.0", test: "it('fails', function() assert.equal(1, 2) end)"), .bundleTestsFailed)
        var badManifest = Self.files("2.3.0")
        badManifest["b/bundle.lua"] = #"return { name = "hot", version = "two", operator = "*" }"#
        try refused(badManifest, .invalidManifest)
        #expect(e.metrics.snapshot.refusedReloads == 5)
        try tree.write(Self.files("2.4.0"))
        #expect(try e.reload(directory: tree.path("b"), loader: loader).swapped)
        #expect(Self.message(e.evaluate(Self.input)) == "v2.4.0")
    }

    @Test("the watcher reloads on change and reports a refused change once")
    func watcher() throws {
        let tree = try TempTree(Self.files("1.0.0"))
        let loader = PolicyLoader(pluginPaths: [])
        let e = try PolicyEngine(set: try loader.loadSet(bundles: [tree.path("b")]))
        let watcher = PolicyWatcher(engine: e, loader: loader, directories: [tree.path("b")])
        #expect(watcher.poll().isEmpty)
        try tree.write(Self.files("1.0.1"))
        let events = watcher.poll()
        #expect(events.count == 1)
        #expect((try? events[0].outcome.get())?.swapped == true)
        #expect(Self.message(e.evaluate(Self.input)) == "v1.0.1")
        var broken = Self.files("1.0.2")
        broken["b/pol2.lua"] = "syntax error here"
        try tree.write(broken)
        let failed = watcher.poll()
        #expect(failed.count == 1)
        if case .failure(let error) = failed[0].outcome { #expect(error.code == .loadFailed) } else { Issue.record("accepted") }
        #expect(watcher.poll().isEmpty)
        #expect(Self.message(e.evaluate(Self.input)) == "v1.0.1")
    }

    @Test("reloads under concurrent calls: every call sees one whole version")
    func underLoad() throws {
        let tree = try TempTree(Self.files("1.0.0"))
        let loader = PolicyLoader(pluginPaths: [])
        var configuration = PolicyConfiguration()
        configuration.poolSize = 4
        configuration.prewarm = 2
        let e = try PolicyEngine(set: try loader.loadSet(bundles: [tree.path("b")]), configuration: configuration,
                                 decisionLog: NoDecisionLog())
        let mixed = Atomicish(), failed = Atomicish(), total = Atomicish()
        let done = Atomicish()
        let seen = VersionSet()
        let group = DispatchGroup()
        // Own threads, not the shared GCD pool (which parallel tests can keep busy), and progress
        // measured in calls, not in wall-clock time: each reload happens while calls are running.
        for _ in 0..<3 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while done.value == 0 {
                    let r = e.evaluate(Self.input)
                    total.bump()
                    guard r.error == nil, let version = r.bundle?.version else {
                        failed.bump()
                        continue
                    }
                    if Self.message(r) != "v\(version)" { mixed.bump() }
                    seen.insert(version)
                }
            }
        }
        /// Waits (up to 60 s) until the workers made `calls` more calls.
        func progress(_ calls: Int) {
            let target = total.value + calls
            let deadline = Date().addingTimeInterval(60)
            while total.value < target, Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
        }
        progress(10)
        for minor in 1...8 {
            try tree.write(Self.files("1.\(minor).0"))
            _ = try e.reload(directory: tree.path("b"), loader: loader)
            progress(5)
        }
        let deadline = Date().addingTimeInterval(60)
        while !seen.values.contains("1.8.0"), Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
        done.bump()
        group.wait()
        #expect(mixed.value == 0)
        #expect(failed.value == 0)
        #expect(total.value > 50)
        #expect(seen.values.contains("1.8.0"))
        #expect(seen.values.count >= 2)
        #expect(Self.message(e.evaluate(Self.input)) == "v1.8.0")
    }
}

/// Versions seen by several threads.
final class VersionSet: @unchecked Sendable {
    private let lock = NSLock()
    private var set = Set<String>()
    func insert(_ v: String) {
        lock.lock()
        set.insert(v)
        lock.unlock()
    }
    var values: Set<String> {
        lock.lock()
        defer { lock.unlock() }
        return set
    }
}
