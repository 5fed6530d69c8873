// Reads plugins and bundles from directories. Every file is read once; the manifest, plugin
// headers and schemas are evaluated in a sandboxed state like any policy code (the manifest is
// Lua, so no TOML/YAML dependency: docs/policy.md, "Bundles").

import Foundation
import M2MCore

/// Loads plugins (`plugins/<name>/`) and operator bundles (`policies/<operator>/`).
public struct PolicyLoader: Sendable {
    /// Directories searched for `<name>/plugin.lua`, in order.
    public var pluginPaths: [String]
    public var limits: PolicyLimits

    public init(pluginPaths: [String], limits: PolicyLimits = PolicyLimits()) {
        self.pluginPaths = pluginPaths
        self.limits = limits
    }

    /// The Lua files of a directory: sources (by module name), `*_test.lua` tests, and test
    /// helpers (other files under `spec/`).
    struct Sources {
        var files: [PolicySourceFile] = []
        var tests: [PolicySourceFile] = []
        var helpers: [PolicySourceFile] = []
    }

    static func displayPath(_ directory: String, _ relative: String) -> String {
        var dir = directory
        while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        if dir == "." || dir.isEmpty { return relative }
        return dir + "/" + relative
    }

    static func readSources(_ directory: String) throws(PolicyError) -> Sources {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .loadFailed("\(directory): no such directory")
        }
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else {
            throw .loadFailed("\(directory): cannot list the directory")
        }
        var relatives: [String] = []
        while let next = enumerator.nextObject() as? String {
            if next.hasSuffix(".lua") { relatives.append(next) }
        }
        var sources = Sources()
        for relative in relatives.sorted() {
            let path = displayPath(directory, relative)
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw .loadFailed("\(path): cannot read the file as UTF-8")
            }
            let module = String(relative.dropLast(4)).replacingOccurrences(of: "/", with: ".")
            let file = PolicySourceFile(path: path, module: module, text: text)
            if relative.hasSuffix("_test.lua") {
                sources.tests.append(file)
            } else if relative.hasPrefix("spec/") {
                sources.helpers.append(file)
            } else {
                sources.files.append(file)
            }
        }
        return sources
    }

    /// Evaluates a module of `files` in a sandboxed state and returns its value (functions left out).
    private func evaluate(_ files: [PolicySourceFile], module: String, layer: String) throws(PolicyError) -> PolicyValue {
        let runtime = try LuaRuntime(set: try PolicySet(bundles: [], plugins: [:]), limits: limits, mode: .production, services: PolicyServices())
        let scope = try runtime.newScope(files, layer: layer)
        let ref = try runtime.require(module, in: scope, layer: layer)
        return try runtime.value(of: ref, layer: layer)
    }

    /// Finds `<name>/plugin.lua` in the plugin paths.
    public func pluginDirectory(named name: String) -> String? {
        for base in pluginPaths {
            let dir = Self.displayPath(base, name)
            if FileManager.default.fileExists(atPath: dir + "/plugin.lua") { return dir }
        }
        return nil
    }

    public func loadPlugin(named name: String) throws(PolicyError) -> PluginPackage {
        guard let dir = pluginDirectory(named: name) else {
            throw PolicyError(
                code: .pluginNotFound, message: "no plugin '\(name)' in \(pluginPaths.isEmpty ? "(no plugin path)" : pluginPaths.joined(separator: ", "))")
        }
        return try loadPlugin(at: dir)
    }

    /// Reads a plugin directory: `plugin.lua` (a table with name, version, priority and hooks),
    /// `schema.lua` (optional), helper modules, `spec/*_test.lua`.
    public func loadPlugin(at directory: String) throws(PolicyError) -> PluginPackage {
        let sources = try Self.readSources(directory)
        let folder = directory.split(separator: "/").last.map(String.init) ?? directory
        guard sources.files.contains(where: { $0.module == "plugin" }) else {
            throw .loadFailed("\(directory): a plugin needs plugin.lua")
        }
        let header = try evaluate(sources.files, module: "plugin", layer: folder)
        guard let name = header["name"].stringValue, name == folder else {
            throw .invalidManifest("\(directory)/plugin.lua: 'name' must be \"\(folder)\" (the directory's name)", layer: folder)
        }
        guard let version = header["version"].stringValue else {
            throw .invalidManifest("\(directory)/plugin.lua: 'version' is missing", layer: name)
        }
        var schema = PluginSchema.empty
        if sources.files.contains(where: { $0.module == "schema" }) {
            schema = try PluginSchema(policyValue: try evaluate(sources.files, module: "schema", layer: name), path: "\(directory)/schema.lua")
        }
        return PluginPackage(
            name: name, version: version, priority: header["priority"].intValue ?? 0, directory: directory,
            files: sources.files.filter { $0.module != "schema" } + sources.helpers, tests: sources.tests, schema: schema)
    }

    /// Reads and checks a bundle directory, resolving its plugins. Returns the bundle and the
    /// plugins it uses.
    public func loadBundle(at directory: String) throws(PolicyError) -> (bundle: PolicyBundle, plugins: [String: PluginPackage]) {
        let sources = try Self.readSources(directory)
        guard sources.files.contains(where: { $0.module == "bundle" }) else {
            throw .invalidManifest("\(directory): a bundle needs bundle.lua")
        }
        let manifest = try BundleManifest(
            policyValue: try evaluate(sources.files, module: "bundle", layer: directory), path: "\(directory)/bundle.lua")
        var plugins: [String: PluginPackage] = [:]
        var uses: [(PluginPackage, PolicyValue, Int)] = []
        for (i, use) in manifest.plugins.enumerated() {
            let plugin: PluginPackage
            if let loaded = plugins[use.name] { plugin = loaded } else { plugin = try loadPlugin(named: use.name) }
            plugins[use.name] = plugin
            let conf = try plugin.schema.validate(use.configuration, path: "\(manifest.name): plugin \(use.name) conf")
            uses.append((plugin, conf, i))
        }
        uses.sort { ($0.0.priority, -$0.2) > ($1.0.priority, -$1.2) }
        var layers = uses.map { PolicyBundle.Layer(name: $0.0.name, source: .plugin($0.0.name), configuration: $0.1) }
        let modules = Set(sources.files.map(\.module))
        let policies = manifest.policies ?? ["pol2", "routing", "onc"].filter { modules.contains($0) }
        for module in policies {
            guard modules.contains(module) else {
                throw .invalidManifest("\(directory): policy file \(module).lua does not exist", layer: manifest.name)
            }
            layers.append(PolicyBundle.Layer(name: "\(manifest.name)/\(module)", source: .file(module), configuration: manifest.configuration))
        }
        var all: [UInt8] = []
        for file in (sources.files + sources.tests + sources.helpers).sorted(by: { $0.path < $1.path }) {
            all += Array(file.module.utf8) + [0] + Array(file.text.utf8) + [0]
        }
        let digest = String(XXH64.hash(all), radix: 16)
        let bundle = PolicyBundle(
            manifest: manifest, directory: directory, files: sources.files.filter { $0.module != "bundle" } + sources.helpers,
            tests: sources.tests, layers: layers, contentDigest: digest)
        return (bundle, plugins)
    }

    /// Loads bundles (each directory holds `bundle.lua`) into one set.
    public func loadSet(bundles directories: [String]) throws(PolicyError) -> PolicySet {
        var bundles: [PolicyBundle] = []
        var plugins: [String: PluginPackage] = [:]
        for dir in directories {
            let (bundle, used) = try loadBundle(at: dir)
            bundles.append(bundle)
            plugins.merge(used) { old, _ in old }
        }
        return try PolicySet(bundles: bundles, plugins: plugins)
    }

    /// Every directory under `root` (and `root` itself) that holds a `bundle.lua`.
    public static func bundleDirectories(under root: String) -> [String] {
        if FileManager.default.fileExists(atPath: displayPath(root, "bundle.lua")) { return [root] }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        return entries.sorted().map { displayPath(root, $0) }.filter {
            FileManager.default.fileExists(atPath: displayPath($0, "bundle.lua"))
        }
    }
}

extension BundleManifest {
    init(policyValue v: PolicyValue, path: String) throws(PolicyError) {
        guard let fields = v.recordValue else { throw .invalidManifest("\(path) must return a table") }
        let known: Set<String> = ["name", "version", "operator", "description", "on_error", "plugins", "policies", "conf"]
        for key in fields.keys.sorted() where !known.contains(key) { throw .invalidManifest("\(path): unknown field '\(key)'") }
        guard let name = v["name"].stringValue, !name.isEmpty,
            name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." })
        else { throw .invalidManifest("\(path): 'name' must be letters, digits, '-', '_' or '.'") }
        guard let versionText = v["version"].stringValue, let version = try? ThreeDigitVersion(text: versionText) else {
            throw .invalidManifest("\(path): 'version' must be major.minor.patch", layer: name)
        }
        guard let operatorText = v["operator"].stringValue else {
            throw .invalidManifest("\(path): 'operator' must be the Operator's OID or \"*\" (default bundle)", layer: name)
        }
        var operatorID: OID?
        if operatorText != "*" {
            guard let oid = try? OID(text: operatorText) else { throw .invalidManifest("\(path): operator '\(operatorText)' is not an OID", layer: name) }
            operatorID = oid
        }
        var modes: [PolicyPoint: FailureMode] = [:]
        if !v["on_error"].isNull {
            guard let entries = v["on_error"].recordValue else { throw .invalidManifest("\(path): 'on_error' must be a table", layer: name) }
            for (key, value) in entries {
                guard let point = PolicyPoint(rawValue: key) else {
                    throw .invalidManifest("\(path): on_error.\(key): the points are pol2, routing, onc", layer: name)
                }
                guard let mode = value.stringValue.flatMap(FailureMode.init(rawValue:)) else {
                    throw .invalidManifest("\(path): on_error.\(key) must be \"fail-closed\" or \"fail-open\"", layer: name)
                }
                modes[point] = mode
            }
        }
        var plugins: [PluginUse] = []
        for (i, item) in (v["plugins"].arrayValue ?? []).enumerated() {
            if let pluginName = item.stringValue {
                plugins.append(PluginUse(name: pluginName, configuration: .record([:])))
            } else if let pluginName = item["name"].stringValue {
                plugins.append(PluginUse(name: pluginName, configuration: item["conf"].isNull ? .record([:]) : item["conf"]))
            } else {
                throw .invalidManifest("\(path): plugins[\(i + 1)] must be a name or { name = …, conf = … }", layer: name)
            }
        }
        if !v["plugins"].isNull && v["plugins"].arrayValue == nil {
            throw .invalidManifest("\(path): 'plugins' must be a list", layer: name)
        }
        var policies: [String]?
        if !v["policies"].isNull {
            guard let items = v["policies"].arrayValue else { throw .invalidManifest("\(path): 'policies' must be a list", layer: name) }
            policies = try items.map { (item) throws(PolicyError) -> String in
                guard let s = item.stringValue else { throw .invalidManifest("\(path): 'policies' lists file names", layer: name) }
                return s.hasSuffix(".lua") ? String(s.dropLast(4)).replacingOccurrences(of: "/", with: ".") : s
            }
        }
        self.init(
            name: name, version: version, operatorID: operatorID, description: v["description"].stringValue ?? "",
            failureModes: modes, plugins: plugins, policies: policies, configuration: v["conf"].isNull ? .record([:]) : v["conf"])
    }
}
