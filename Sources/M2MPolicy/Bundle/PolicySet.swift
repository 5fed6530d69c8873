// Bundles, plugins and the immutable set the engine runs. A set is read from disk once (the
// same bytes are validated and then loaded into every state), never changes, and is swapped
// whole on reload: a call sees one set from start to end.

public import M2MCore

/// One Lua file of a bundle or plugin, as read from disk.
public struct PolicySourceFile: Sendable, Hashable {
    /// The path shown in tracebacks and coverage (`policies/example-operator/pol2.lua`).
    public let path: String
    /// The `require` name inside its bundle or plugin (`pol2`, `lib.windows`).
    public let module: String
    public let text: String

    public init(path: String, module: String, text: String) {
        self.path = path
        self.module = module
        self.text = text
    }

    /// The chunk name given to Lua: `@` + path, so messages read `path:line:`.
    var chunkName: String { "@" + path }
}

/// A platform plugin: `plugins/<name>/plugin.lua`, `schema.lua`, `README.md`, `spec/`.
public struct PluginPackage: Sendable, Hashable {
    public let name: String
    public let version: String
    /// Higher runs first among a bundle's plugins.
    public let priority: Int
    public let directory: String
    /// `plugin.lua` and its helper modules (not `schema.lua`, not the specs).
    public let files: [PolicySourceFile]
    /// `spec/*_test.lua`.
    public let tests: [PolicySourceFile]
    public let schema: PluginSchema
}

/// `bundle.lua`: what a bundle is and how it is assembled.
public struct BundleManifest: Sendable, Hashable {
    /// A plugin the bundle uses, with its configuration (validated against the plugin's schema).
    public struct PluginUse: Sendable, Hashable {
        public let name: String
        public let configuration: PolicyValue
    }

    public let name: String
    public let version: ThreeDigitVersion
    /// The Operator the bundle governs; nil for the default bundle (`operator = "*"`).
    public let operatorID: OID?
    public let description: String
    public let failureModes: [PolicyPoint: FailureMode]
    public let plugins: [PluginUse]
    /// Policy files, in order (module names without `.lua`); nil: those of pol2, routing, onc
    /// that exist.
    public let policies: [String]?
    /// Passed to the bundle's own policy files as `conf`.
    public let configuration: PolicyValue

    public func failureMode(_ point: PolicyPoint) -> FailureMode {
        failureModes[point] ?? (point == .pol2 ? .failClosed : .failOpen)
    }
}

/// A version as three integers, for comparisons (`1.10.0` > `1.9.3`).
extension ThreeDigitVersion {
    var parts: [Int] { text.split(separator: ".").map { Int($0) ?? 0 } }
    static func < (a: ThreeDigitVersion, b: ThreeDigitVersion) -> Bool { a.parts.lexicographicallyPrecedes(b.parts) }
}

/// A loaded bundle: manifest, files, tests, and its resolved layers.
public struct PolicyBundle: Sendable, Hashable {
    /// One step of a hook pipeline: a plugin with its configuration, or a policy file.
    public struct Layer: Sendable, Hashable {
        public enum Source: Sendable, Hashable {
            case plugin(String)
            case file(String)
        }
        /// The name decisions report (`sgp02-pol2`, `example-operator/pol2`).
        public let name: String
        public let source: Source
        /// The configuration the layer's hooks receive as `conf` (encoded, frozen in Lua).
        public let configuration: PolicyValue
    }

    public let manifest: BundleManifest
    public let directory: String
    /// Policy files and their helper modules (not `bundle.lua`, not tests).
    public let files: [PolicySourceFile]
    public let tests: [PolicySourceFile]
    public let layers: [Layer]
    /// Digest of every file of the bundle (a changed bundle must change its version).
    public let contentDigest: String

    public var id: BundleID { BundleID(name: manifest.name, version: manifest.version.text) }
}

/// Names a bundle version in decision records.
public struct BundleID: Sendable, Hashable, Codable, CustomStringConvertible {
    public let name: String
    public let version: String
    public init(name: String, version: String) {
        self.name = name
        self.version = version
    }
    public var description: String { "\(name)@\(version)" }
}

/// The bundles and plugins the engine runs. Immutable; a reload builds a new set.
public final class PolicySet: Sendable {
    public let bundles: [PolicyBundle]
    public let plugins: [String: PluginPackage]
    /// Operator OID → bundle index; the default bundle under "*".
    private let byOperator: [String: Int]

    public init(bundles: [PolicyBundle], plugins: [String: PluginPackage]) throws(PolicyError) {
        var byOperator: [String: Int] = [:]
        for (i, bundle) in bundles.enumerated() {
            let key = bundle.manifest.operatorID?.text ?? "*"
            if let other = byOperator[key] {
                throw .invalidManifest(
                    "bundles \(bundles[other].manifest.name) and \(bundle.manifest.name) both govern operator \(key)")
            }
            byOperator[key] = i
            for layer in bundle.layers {
                if case .plugin(let name) = layer.source, plugins[name] == nil {
                    throw PolicyError(code: .pluginNotFound, message: "plugin '\(name)' is not loaded", layer: bundle.manifest.name)
                }
            }
        }
        self.bundles = bundles
        self.plugins = plugins
        self.byOperator = byOperator
    }

    /// The bundle deciding for an Operator: its own, else the default one.
    public func bundleIndex(for operatorID: OID?) -> Int? {
        if let operatorID, let i = byOperator[operatorID.text] { return i }
        return byOperator["*"]
    }

    /// The index of the bundle named `name`.
    public func bundleIndex(named name: String) -> Int? { bundles.firstIndex { $0.manifest.name == name } }

    /// A set with `bundle` replacing the bundle of the same name (or added).
    public func replacing(_ bundle: PolicyBundle, plugins extra: [String: PluginPackage]) throws(PolicyError) -> PolicySet {
        var bundles = self.bundles
        if let i = bundleIndex(named: bundle.manifest.name) {
            bundles[i] = bundle
        } else {
            bundles.append(bundle)
        }
        return try PolicySet(bundles: bundles, plugins: plugins.merging(extra) { _, new in new })
    }

    /// Plugins in a stable order (the order they are loaded into a state).
    var pluginsInOrder: [PluginPackage] { plugins.values.sorted { $0.name < $1.name } }
}
