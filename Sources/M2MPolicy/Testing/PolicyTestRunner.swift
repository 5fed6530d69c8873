// `m2mrsp policy test`: runs `*_test.lua` files (describe/it/assert, fixtures, mocks) in the
// production sandbox, with the bundle or plugin they belong to loaded as production loads it,
// and measures line coverage of the policy files. Needs no server and no database.

import Foundation
import M2MCore

/// One test's outcome.
public struct PolicyTestResult: Sendable, Hashable {
    public let file: String
    public let name: String
    public let passed: Bool
    /// The failure, with its traceback.
    public let message: String?
}

/// Line coverage of one policy file.
public struct FileCoverage: Sendable, Hashable {
    public let path: String
    /// Lines that hold code.
    public var active: Set<Int>
    /// Lines that ran during the tests.
    public var executed: Set<Int>

    public var covered: Int { active.intersection(executed).count }
    public var percent: Double { active.isEmpty ? 100 : Double(covered) * 100 / Double(active.count) }
    public var missed: [Int] { active.subtracting(executed).sorted() }
}

/// The outcome of a run.
public struct PolicyTestReport: Sendable {
    public var results: [PolicyTestResult] = []
    public var coverage: [FileCoverage] = []
    public var passed: Int { results.filter(\.passed).count }
    public var failed: Int { results.count - passed }

    mutating func merge(_ other: PolicyTestReport) {
        results += other.results
        for c in other.coverage {
            if let i = coverage.firstIndex(where: { $0.path == c.path }) {
                coverage[i].active.formUnion(c.active)
                coverage[i].executed.formUnion(c.executed)
            } else {
                coverage.append(c)
            }
        }
    }
}

/// Progress of a run, for printing as it goes.
public enum PolicyTestEvent: Sendable {
    case file(String)
    case result(PolicyTestResult)
}

/// Runs policy tests.
public struct PolicyTestRunner: Sendable {
    public var limits: PolicyLimits
    public var pluginPaths: [String]
    public var logger: any PolicyLogger
    public var progress: (@Sendable (PolicyTestEvent) -> Void)?

    public init(
        limits: PolicyLimits = .testing, pluginPaths: [String] = [], logger: any PolicyLogger = NullPolicyLogger(),
        progress: (@Sendable (PolicyTestEvent) -> Void)? = nil
    ) {
        self.limits = limits
        self.pluginPaths = pluginPaths
        self.logger = logger
        self.progress = progress
    }

    /// Every `*_test.lua` under `paths` (files or directories, searched recursively), sorted.
    public static func discover(_ paths: [String]) -> [String] {
        var found: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if !isDirectory.boolValue {
                found.append(path)
                continue
            }
            let enumerator = FileManager.default.enumerator(atPath: path)
            while let next = enumerator?.nextObject() as? String {
                if next.hasSuffix("_test.lua") { found.append(PolicyLoader.displayPath(path, next)) }
            }
        }
        return Array(Set(found)).sorted()
    }

    /// The directory above `file` holding `bundle.lua` or `plugin.lua`, if any.
    static func owner(of file: String) -> (directory: String, isBundle: Bool)? {
        var dir = (file as NSString).deletingLastPathComponent
        while true {
            let probe = dir.isEmpty ? "." : dir
            if FileManager.default.fileExists(atPath: PolicyLoader.displayPath(probe, "bundle.lua")) { return (probe, true) }
            if FileManager.default.fileExists(atPath: PolicyLoader.displayPath(probe, "plugin.lua")) { return (probe, false) }
            if dir.isEmpty || dir == "/" || dir == "." { return nil }
            dir = (dir as NSString).deletingLastPathComponent
        }
    }

    /// Runs the tests found under `paths`, each with its bundle or plugin. A file that does not
    /// load, or whose bundle does not load, counts as one failed test.
    public func run(paths: [String]) -> PolicyTestReport {
        var report = PolicyTestReport()
        let files = Self.discover(paths)
        var groups: [String: (isBundle: Bool?, files: [String])] = [:]
        var order: [String] = []
        for file in files {
            let owner = Self.owner(of: file)
            let key = owner?.directory ?? ""
            if groups[key] == nil {
                groups[key] = (owner?.isBundle, [])
                order.append(key)
            }
            groups[key]!.files.append(file)
        }
        let loader = PolicyLoader(pluginPaths: pluginPaths, limits: limits)
        for key in order {
            let (isBundle, selected) = groups[key]!
            do throws(PolicyError) {
                switch isBundle {
                case true:
                    let (bundle, plugins) = try loader.loadBundle(at: key)
                    report.merge(run(bundle: bundle, plugins: plugins, only: Set(selected)))
                case false:
                    let plugin = try loader.loadPlugin(at: key)
                    report.merge(run(plugin: plugin, only: Set(selected)))
                default:
                    var tests: [PolicySourceFile] = []
                    for path in selected {
                        let text = (FileManager.default.contents(atPath: path)).flatMap { String(data: $0, encoding: .utf8) } ?? ""
                        tests.append(PolicySourceFile(path: path, module: "test", text: text))
                    }
                    let set = try PolicySet(bundles: [], plugins: [:])
                    report.merge(run(set: set, tests: tests, scope: .none, coverageFiles: []))
                }
            } catch {
                for file in selected {
                    progress?(.file(file))
                    let result = PolicyTestResult(file: file, name: "(load)", passed: false, message: error.description)
                    progress?(.result(result))
                    report.results.append(result)
                }
            }
        }
        return report
    }

    /// Runs a bundle's tests (all, or those in `only`) with the plugins it uses.
    public func run(bundle: PolicyBundle, plugins: [String: PluginPackage], only: Set<String>? = nil) -> PolicyTestReport {
        let tests = bundle.tests.filter { only?.contains($0.path) ?? true }
        do throws(PolicyError) {
            let used = bundle.layers.compactMap { layer -> String? in if case .plugin(let n) = layer.source { n } else { nil } }
            let set = try PolicySet(bundles: [bundle], plugins: plugins.filter { used.contains($0.key) })
            let coverage = bundle.files.filter { !$0.path.contains("/spec/") } + set.pluginsInOrder.flatMap { p in
                p.files.filter { !$0.path.contains("/spec/") }
            }
            return run(set: set, tests: tests, scope: .bundle, coverageFiles: coverage)
        } catch {
            return failAll(tests, error)
        }
    }

    /// Runs a plugin's specs, with the plugin loaded alone with its default configuration.
    public func run(plugin: PluginPackage, only: Set<String>? = nil) -> PolicyTestReport {
        let tests = plugin.tests.filter { only?.contains($0.path) ?? true }
        do throws(PolicyError) {
            let conf = try plugin.schema.validate(.record([:]), path: "\(plugin.name) default conf")
            let manifest = BundleManifest(
                name: "plugin-\(plugin.name)", version: try! .init(text: "0.0.0"), operatorID: nil, description: "", failureModes: [:],
                plugins: [.init(name: plugin.name, configuration: conf)], policies: [], configuration: .record([:]))
            let bundle = PolicyBundle(
                manifest: manifest, directory: plugin.directory, files: [], tests: tests,
                layers: [.init(name: plugin.name, source: .plugin(plugin.name), configuration: conf)], contentDigest: "")
            let set = try PolicySet(bundles: [bundle], plugins: [plugin.name: plugin])
            return run(set: set, tests: tests, scope: .plugin(plugin.name), coverageFiles: plugin.files.filter { !$0.path.contains("/spec/") })
        } catch {
            return failAll(tests, error)
        }
    }

    private func failAll(_ tests: [PolicySourceFile], _ error: PolicyError) -> PolicyTestReport {
        var report = PolicyTestReport()
        for file in tests {
            progress?(.file(file.path))
            let result = PolicyTestResult(file: file.path, name: "(load)", passed: false, message: error.description)
            progress?(.result(result))
            report.results.append(result)
        }
        return report
    }

    /// A failure message without the harness's own traceback lines.
    static func trimmed(_ message: String) -> String {
        message.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.contains("m2m.prelude:") && !$0.hasSuffix("[C]: in ?") && !$0.hasSuffix("[C]: in function 'xpcall'") }
            .joined(separator: "\n")
    }

    enum Scope {
        case none, bundle
        case plugin(String)
    }

    /// A test state: the set loaded in test mode, coverage registered, one test file loaded.
    private final class Session {
        let runtime: LuaRuntime
        let count: Int
        let runRef: Int32

        init(set: PolicySet, limits: PolicyLimits, logger: any PolicyLogger, file: PolicySourceFile, scope: Scope,
             coverageFiles: [PolicySourceFile]) throws(PolicyError) {
            runtime = try LuaRuntime(
                set: set, limits: limits, mode: .test(coverage: true), services: PolicyServices(logger: logger), coverage: coverageFiles)
            let scopeID: Int32
            switch scope {
            case .none: scopeID = try runtime.newScope([], layer: file.path)
            case .bundle: scopeID = runtime.bundleScopes[0]
            case .plugin(let name): scopeID = runtime.pluginScopes[name]!
            }
            let module = "test:" + file.path
            try runtime.add(PolicySourceFile(path: file.path, module: module, text: file.text), to: scopeID, layer: file.path)
            _ = try runtime.require(module, in: scopeID, test: true, layer: file.path)
            let countRef = try runtime.preludeRef("count")
            count = try runtime.call(countRef, [], layer: file.path).intValue ?? 0
            runRef = try runtime.preludeRef("run")
        }

        func coverage() -> [FileCoverage] {
            runtime.coverageIDs.map { path, id in
                let (active, executed) = runtime.coverage(id)
                return FileCoverage(path: path, active: active, executed: executed)
            }
        }
    }

    private func run(set: PolicySet, tests: [PolicySourceFile], scope: Scope, coverageFiles: [PolicySourceFile]) -> PolicyTestReport {
        var report = PolicyTestReport()
        for file in tests {
            progress?(.file(file.path))
            func record(_ r: PolicyTestResult) {
                progress?(.result(r))
                report.results.append(r)
            }
            var session: Session
            do {
                session = try Session(set: set, limits: limits, logger: logger, file: file, scope: scope, coverageFiles: coverageFiles)
            } catch {
                record(PolicyTestResult(file: file.path, name: "(load)", passed: false, message: error.description))
                continue
            }
            if session.count == 0 {
                record(PolicyTestResult(file: file.path, name: "(no tests)", passed: false, message: "the file defines no it(…) test"))
            }
            var i = 1
            while i <= session.count {
                do throws(PolicyError) {
                    let r = try session.runtime.call(session.runRef, [.integer(Int64(i))], layer: file.path)
                    record(PolicyTestResult(
                        file: file.path, name: r["name"].stringValue ?? "test \(i)", passed: r["ok"].boolValue ?? false,
                        message: r["message"].stringValue.map(Self.trimmed)))
                } catch {
                    // The test blew a budget or broke the harness: the state is in doubt, so the
                    // remaining tests run in a new one.
                    record(PolicyTestResult(file: file.path, name: "test \(i)", passed: false, message: error.description))
                    report.merge(PolicyTestReport(results: [], coverage: session.coverage()))
                    guard let fresh = try? Session(set: set, limits: limits, logger: logger, file: file, scope: scope, coverageFiles: coverageFiles)
                    else { break }
                    session = fresh
                }
                i += 1
            }
            report.merge(PolicyTestReport(results: [], coverage: session.coverage()))
        }
        return report
    }
}
