// `m2mrsp policy test|check|replay`: the operator's tools for Lua policy bundles (docs/cli/policy.md).

import ArgumentParser
import Foundation
import M2MCore
import M2MPolicy

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Test, check and replay Lua policy bundles and plugins.",
        subcommands: [Test.self, Check.self, Replay.self]
    )

    /// Plugin directories: those given, else `./plugins` and every `plugins` directory next to or
    /// above the given paths.
    static func pluginPaths(given: [String], near paths: [String]) -> [String] {
        if !given.isEmpty { return given }
        var found: [String] = []
        func add(_ dir: String) {
            var isDirectory: ObjCBool = false
            let standard = (dir as NSString).standardizingPath
            if FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue,
                !found.contains(where: { ($0 as NSString).standardizingPath == standard })
            {
                found.append(dir)
            }
        }
        add("plugins")
        for path in paths {
            var dir = (path as NSString).standardizingPath
            if (dir as NSString).lastPathComponent == "plugins" { add(path) }
            for _ in 0..<4 {
                add((dir as NSString).appendingPathComponent("plugins"))
                let parent = (dir as NSString).deletingLastPathComponent
                if parent == dir || parent.isEmpty { break }
                dir = parent
            }
        }
        return found
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the *_test.lua files of bundles and plugins in the production sandbox.",
            discussion: """
                PATHS are test files or directories searched recursively for *_test.lua. Each test file runs with \
                the bundle (bundle.lua) or plugin (plugin.lua) of its directory loaded as production loads it. \
                Prints every test, the line coverage of the policy files, and closes with 'N passed, N failed'. \
                Exits 1 when a test fails or no test is found. Needs no server and no database.
                """
        )

        @Argument(help: "Test files or directories (default: the current directory).")
        var paths: [String] = ["."]

        @Option(name: .customLong("plugins"), help: "A plugin directory (repeatable). Default: ./plugins and plugins/ near the paths.")
        var pluginPaths: [String] = []

        @Flag(help: "Do not print the coverage table.")
        var noCoverage = false

        @Flag(help: "Print m2m.log output of the tests.")
        var verbose = false

        func run() throws {
            let plugins = PolicyCommand.pluginPaths(given: pluginPaths, near: paths)
            let runner = PolicyTestRunner(
                pluginPaths: plugins, logger: verbose ? StandardErrorLogger(prefix: "      log") : NullPolicyLogger(),
                progress: { event in
                    switch event {
                    case .file(let path): print(path)
                    case .result(let r):
                        print("  \(r.passed ? "ok  " : "FAIL") \(r.name)")
                        if let message = r.message, !r.passed {
                            for line in message.split(separator: "\n", omittingEmptySubsequences: false) { print("       \(line)") }
                        }
                    }
                })
            let report = runner.run(paths: paths)
            if !noCoverage && !report.coverage.isEmpty {
                print("coverage (lines of code run by the tests)")
                let width = report.coverage.map(\.path.count).max() ?? 0
                for c in report.coverage.sorted(by: { $0.path < $1.path }) {
                    let padded = c.path.padding(toLength: width, withPad: " ", startingAt: 0)
                    let counts = "\(c.covered)/\(c.active.count)".padding(toLength: 9, withPad: " ", startingAt: 0)
                    var line = "  \(padded)  \(counts) \(String(format: "%5.1f%%", c.percent))"
                    if !c.missed.isEmpty { line += "  missed: " + Self.ranges(c.missed) }
                    print(line)
                }
            }
            if report.results.isEmpty { print("no *_test.lua found in \(paths.joined(separator: " "))") }
            print("\(report.passed) passed, \(report.failed) failed")
            if report.failed > 0 || report.results.isEmpty { throw ExitCode(1) }
        }

        /// `[3, 4, 5, 9]` → `3-5, 9`.
        static func ranges(_ lines: [Int]) -> String {
            var parts: [String] = []
            var i = 0
            while i < lines.count {
                var j = i
                while j + 1 < lines.count && lines[j + 1] == lines[j] + 1 { j += 1 }
                parts.append(i == j ? "\(lines[i])" : "\(lines[i])-\(lines[j])")
                i = j + 1
            }
            return parts.joined(separator: ", ")
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate bundles as a reload would: manifest, plugins and their configurations, compilation, tests.",
            discussion: "Exits 1 when a bundle would be refused."
        )

        @Argument(help: "Bundle directories (each holds bundle.lua), or directories of bundles.")
        var paths: [String]

        @Option(name: .customLong("plugins"), help: "A plugin directory (repeatable).")
        var pluginPaths: [String] = []

        /// Loads, builds and tests one bundle; returns whether it passes and what to print.
        static func check(_ dir: String, loader: PolicyLoader) throws(PolicyError) -> (Bool, [String]) {
            let (bundle, plugins) = try loader.loadBundle(at: dir)
            // Building an engine compiles and loads every file with its plugins.
            let set = try PolicySet(bundles: [bundle], plugins: plugins)
            _ = try PolicyEngine(set: set, decisionLog: NoDecisionLog())
            let report = PolicyTestRunner(pluginPaths: loader.pluginPaths).run(bundle: bundle, plugins: plugins)
            if report.failed > 0 {
                return (false, ["FAIL \(bundle.id) (\(dir)): \(report.failed) test(s) failed"]
                    + report.results.filter { !$0.passed }.map { "     \($0.file): \($0.name): \($0.message ?? "")" })
            }
            let layers = bundle.layers.map(\.name).joined(separator: ", ")
            return (true, ["ok   \(bundle.id) (\(dir)) operator \(bundle.manifest.operatorID?.text ?? "*"): \(layers); \(report.passed) tests passed"])
        }

        func run() throws {
            let loader = PolicyLoader(pluginPaths: PolicyCommand.pluginPaths(given: pluginPaths, near: paths))
            let directories = paths.flatMap { PolicyLoader.bundleDirectories(under: $0) }
            guard !directories.isEmpty else { throw ValidationError("no bundle.lua under \(paths.joined(separator: " "))") }
            var failed = 0
            for dir in directories {
                let lines: [String]
                let ok: Bool
                do {
                    (ok, lines) = try Self.check(dir, loader: loader)
                } catch {
                    (ok, lines) = (false, ["FAIL \(dir): \(error)"])
                }
                if !ok { failed += 1 }
                for line in lines { print(line) }
            }
            if failed > 0 { throw ExitCode(1) }
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-run recorded decisions against candidate bundles and list every decision that would change.",
            discussion: """
                Reads the JSON-lines decision log written by JSONLinesDecisionLog (--log), loads the candidate \
                bundles, and evaluates every recorded input at its recorded time. Prints each change (old → new) \
                and closes with 'N decisions, N changed'. With --fail-on-change, exits 1 when any decision changes.
                """
        )

        @Option(help: "The decision log (JSON lines).")
        var log: String

        @Argument(help: "Candidate bundle directories, or directories of bundles.")
        var paths: [String]

        @Option(name: .customLong("plugins"), help: "A plugin directory (repeatable).")
        var pluginPaths: [String] = []

        @Flag(help: "Exit 1 when a decision would change.")
        var failOnChange = false

        func run() throws {
            let records = try JSONLinesDecisionLog.read(path: log)
            let loader = PolicyLoader(pluginPaths: PolicyCommand.pluginPaths(given: pluginPaths, near: paths))
            let set = try loader.loadSet(bundles: paths.flatMap { PolicyLoader.bundleDirectories(under: $0) })
            var configuration = PolicyConfiguration()
            configuration.runBundleTestsOnReload = false
            let engine = try PolicyEngine(set: set, configuration: configuration, decisionLog: NoDecisionLog())
            print("replaying \(records.count) decisions from \(log) against \(set.bundles.map(\.id.description).joined(separator: ", "))")
            let report = PolicyReplay.run(records, against: engine)
            for change in report.changes {
                let r = change.record
                print("  #\(r.sequence) \(r.hook.rawValue) at \(r.time.text) input \(r.inputDigest) (was \(r.bundle?.description ?? "no bundle"))")
                print("      before: \(r.result)" + (r.error.map { " [policy failed: \($0.code)]" } ?? ""))
                print("      after:  \(change.replayed.result)" + (change.replayed.error.map { " [policy failed: \($0.code)]" } ?? "")
                      + (change.replayed.decidedBy.map { " (by \($0))" } ?? ""))
            }
            print("\(report.total) decisions, \(report.changes.count) changed")
            if failOnChange && !report.changes.isEmpty { throw ExitCode(1) }
        }
    }
}

/// Prints log lines on standard error.
struct StandardErrorLogger: PolicyLogger {
    var prefix = "policy"
    func log(_ level: PolicyLogLevel, _ message: String, source: String) {
        FileHandle.standardError.write(Data("\(prefix) [\(level)] \(message)\n".utf8))
    }
}
