// Hot reload on change: polls bundle directories (and the plugins they use) and reloads a
// bundle whose files changed. Reload on command is `PolicyEngine.reload(directory:loader:)`.

import Foundation
import Synchronization

/// Watches bundle directories and reloads the engine when their content changes.
public final class PolicyWatcher: Sendable {
    /// What one poll did for one directory.
    public struct Event: Sendable {
        public let directory: String
        /// The reload report, or why the new content was refused (the engine keeps the last good version).
        public let outcome: Result<ReloadReport, PolicyError>
    }

    public let engine: PolicyEngine
    public let loader: PolicyLoader
    public let directories: [String]
    private let fingerprints: Mutex<[String: UInt64]>

    /// Starts from the content on disk now (call after the engine loaded it).
    public init(engine: PolicyEngine, loader: PolicyLoader, directories: [String]) {
        self.engine = engine
        self.loader = loader
        self.directories = directories
        var initial: [String: UInt64] = [:]
        for dir in directories { initial[dir] = Self.fingerprint(dir, loader: loader) }
        fingerprints = Mutex(initial)
    }

    /// A digest of every `.lua` file of the bundle and of the plugins its manifest names.
    static func fingerprint(_ directory: String, loader: PolicyLoader) -> UInt64 {
        var bytes: [UInt8] = []
        func add(_ dir: String) {
            guard let enumerator = FileManager.default.enumerator(atPath: dir) else { return }
            var files: [String] = []
            while let next = enumerator.nextObject() as? String { if next.hasSuffix(".lua") { files.append(next) } }
            for file in files.sorted() {
                bytes += Array(file.utf8) + [0]
                bytes += FileManager.default.contents(atPath: PolicyLoader.displayPath(dir, file)).map { Array($0) } ?? []
                bytes.append(0)
            }
        }
        add(directory)
        // Plugins named by the manifest (read textually: a broken manifest is the reload's to report).
        if let data = FileManager.default.contents(atPath: PolicyLoader.displayPath(directory, "bundle.lua")),
            let text = String(data: data, encoding: .utf8)
        {
            for name in loader.pluginPaths.flatMap({ base in
                ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).filter { text.contains("\"\($0)\"") }
            }).sorted() {
                if let dir = loader.pluginDirectory(named: name) { add(dir) }
            }
        }
        return XXH64.hash(bytes)
    }

    /// Checks every directory once and reloads those whose content changed.
    @discardableResult
    public func poll() -> [Event] {
        var events: [Event] = []
        for dir in directories {
            let now = Self.fingerprint(dir, loader: loader)
            let changed = fingerprints.withLock { f -> Bool in
                guard f[dir] != now else { return false }
                f[dir] = now  // a refused content is reported once, not at every poll
                return true
            }
            guard changed else { continue }
            do {
                events.append(Event(directory: dir, outcome: .success(try engine.reload(directory: dir, loader: loader))))
            } catch {
                events.append(Event(directory: dir, outcome: .failure(error)))
            }
        }
        return events
    }

    /// Polls every `interval` until the task is cancelled.
    public func run(every interval: Duration = .seconds(2), onEvent: @Sendable (Event) -> Void = { _ in }) async {
        while !Task.isCancelled {
            for event in poll() { onEvent(event) }
            try? await Task.sleep(for: interval)
        }
    }
}
