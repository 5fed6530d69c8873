// The policy engine: a pool of Lua states over one immutable policy set, the failure modes,
// decision records, metrics, and hot reload by atomic swap.

public import M2MCore
import Synchronization

/// How the engine runs.
public struct PolicyConfiguration: Sendable {
    public var limits: PolicyLimits
    /// Idle states kept per engine (one is in use per concurrent call; states are never shared).
    public var poolSize: Int
    /// States built right after a reload, so the first calls do not pay for loading.
    public var prewarm: Int
    /// Failure modes when no bundle applies (no bundle for the Operator, no default bundle).
    public var defaultFailureModes: [PolicyPoint: FailureMode]
    /// A reload runs the bundle's own `*_test.lua` first and refuses the bundle if one fails.
    public var runBundleTestsOnReload: Bool

    public init(
        limits: PolicyLimits = PolicyLimits(), poolSize: Int = 8, prewarm: Int = 1,
        defaultFailureModes: [PolicyPoint: FailureMode] = [.pol2: .failClosed, .routing: .failOpen, .onc: .failOpen],
        runBundleTestsOnReload: Bool = true
    ) {
        self.limits = limits
        self.poolSize = poolSize
        self.prewarm = prewarm
        self.defaultFailureModes = defaultFailureModes
        self.runBundleTestsOnReload = runBundleTestsOnReload
    }
}

/// Counters of one engine (per policy point).
public final class PolicyMetrics: Sendable {
    public struct Snapshot: Sendable, Hashable {
        public var calls: [PolicyPoint: Int] = [:]
        public var failures: [PolicyPoint: Int] = [:]
        /// Failures by error code.
        public var errors: [String: Int] = [:]
        public var denials = 0
        public var drops = 0
        public var reloads = 0
        public var refusedReloads = 0
        public var statesCreated = 0
        public var statesDiscarded = 0
    }

    private let pol2Calls = Atomic<Int>(0), routingCalls = Atomic<Int>(0), oncCalls = Atomic<Int>(0)
    private let pol2Failures = Atomic<Int>(0), routingFailures = Atomic<Int>(0), oncFailures = Atomic<Int>(0)
    let denials = Atomic<Int>(0)
    let drops = Atomic<Int>(0)
    let reloads = Atomic<Int>(0)
    let refusedReloads = Atomic<Int>(0)
    let statesCreated = Atomic<Int>(0)
    let statesDiscarded = Atomic<Int>(0)
    private let errors = Mutex<[String: Int]>([:])

    private func calls(_ p: PolicyPoint) -> Int {
        switch p {
        case .pol2: pol2Calls.load(ordering: .relaxed)
        case .routing: routingCalls.load(ordering: .relaxed)
        case .onc: oncCalls.load(ordering: .relaxed)
        }
    }

    private func failures(_ p: PolicyPoint) -> Int {
        switch p {
        case .pol2: pol2Failures.load(ordering: .relaxed)
        case .routing: routingFailures.load(ordering: .relaxed)
        case .onc: oncFailures.load(ordering: .relaxed)
        }
    }

    func called(_ point: PolicyPoint) {
        switch point {
        case .pol2: pol2Calls.add(1, ordering: .relaxed)
        case .routing: routingCalls.add(1, ordering: .relaxed)
        case .onc: oncCalls.add(1, ordering: .relaxed)
        }
    }

    func failed(_ point: PolicyPoint, _ code: PolicyError.Code) {
        switch point {
        case .pol2: pol2Failures.add(1, ordering: .relaxed)
        case .routing: routingFailures.add(1, ordering: .relaxed)
        case .onc: oncFailures.add(1, ordering: .relaxed)
        }
        errors.withLock { $0[code.name, default: 0] += 1 }
    }

    public var snapshot: Snapshot {
        var s = Snapshot()
        for p in PolicyPoint.allCases {
            s.calls[p] = calls(p)
            s.failures[p] = failures(p)
        }
        s.errors = errors.withLock { $0 }
        s.denials = denials.load(ordering: .relaxed)
        s.drops = drops.load(ordering: .relaxed)
        s.reloads = reloads.load(ordering: .relaxed)
        s.refusedReloads = refusedReloads.load(ordering: .relaxed)
        s.statesCreated = statesCreated.load(ordering: .relaxed)
        s.statesDiscarded = statesDiscarded.load(ordering: .relaxed)
        return s
    }
}

/// What a reload did.
public struct ReloadReport: Sendable, Hashable {
    public var bundle: BundleID
    public var previous: BundleID?
    /// False when the bundle was already loaded with the same content.
    public var swapped: Bool
    public var testsPassed: Int
}

/// The policy engine.
///
/// Calls are synchronous and may come from any thread: each takes a Lua state from the pool
/// (or builds one), runs the hook pipeline, and gives the state back. A state is used by one
/// thread at a time and never shared. A reload validates the new bundle, then swaps the policy
/// set atomically: a call runs entirely on the set it started with, and records that set's
/// bundle version.
public final class PolicyEngine: Sendable {
    private struct Pool {
        var set: PolicySet
        var idle: [LuaRuntime] = []
    }

    public let configuration: PolicyConfiguration
    public let metrics = PolicyMetrics()
    private let pool: Mutex<Pool>
    private let reloading = Mutex<Void>(())
    private let sequence = Atomic<UInt64>(0)
    private let clock: any Clock
    private let decisionLog: any DecisionLog
    private let services: PolicyServices

    /// Builds an engine over a loaded set; one state is built at once, so a set that does not
    /// load is refused here.
    public init(
        set: PolicySet, configuration: PolicyConfiguration = PolicyConfiguration(), clock: any Clock = SystemClock(),
        decisionLog: any DecisionLog = InMemoryDecisionLog(), dataSource: (any PolicyDataSource)? = nil,
        logger: any PolicyLogger = NullPolicyLogger()
    ) throws(PolicyError) {
        self.configuration = configuration
        self.clock = clock
        self.decisionLog = decisionLog
        self.services = PolicyServices(logger: logger, dataSource: dataSource)
        let first = try LuaRuntime(set: set, limits: configuration.limits, mode: .production, services: services)
        metrics.statesCreated.add(1, ordering: .relaxed)
        pool = Mutex(Pool(set: set, idle: [first]))
    }

    /// The set calls run on now.
    public var policySet: PolicySet { pool.withLock { $0.set } }

    /// The bundles loaded now.
    public var bundles: [BundleID] { policySet.bundles.map(\.id) }

    // MARK: Decisions

    /// Runs `input.hook` now (the engine's clock) and records the decision.
    @discardableResult
    public func evaluate(_ input: PolicyInput) -> DecisionRecord { evaluate(input, at: clock.now()) }

    /// Runs `input.hook` as if at `now` (replays) and records the decision.
    @discardableResult
    public func evaluate(_ input: PolicyInput, at now: Timestamp) -> DecisionRecord {
        let start = monotonicNanoseconds()
        let point = input.hook.point
        metrics.called(point)
        let (pooled, set) = checkout()
        var runtime = pooled
        let bundleIndex = set.bundleIndex(for: input.operatorID)
        let raw: RuntimeResult
        if let b = bundleIndex {
            var creationError: PolicyError?
            if runtime == nil {
                do {
                    runtime = try LuaRuntime(set: set, limits: configuration.limits, mode: .production, services: services)
                    metrics.statesCreated.add(1, ordering: .relaxed)
                } catch {
                    creationError = error
                }
            }
            if let runtime {
                raw = runtime.run(bundle: b, input: input, now: now)
            } else {
                raw = RuntimeResult(result: nil, error: creationError ?? .internalError("no Lua state"), layer: nil)
            }
        } else {
            raw = RuntimeResult(
                result: nil, error: PolicyError(code: .noBundle, message: "no bundle for operator \(input.operatorID?.text ?? "(none)")"),
                layer: nil)
        }
        if let runtime { checkin(runtime) }
        let bundle = bundleIndex.map { set.bundles[$0] }
        var result: PolicyResult
        if let r = raw.result {
            result = r
        } else {
            let error = raw.error ?? .internalError("no result")
            metrics.failed(point, error.code)
            let mode = bundle?.manifest.failureMode(point) ?? configuration.defaultFailureModes[point] ?? .failClosed
            result = Self.fallback(input, error: error, mode: mode)
            services.logger.log(
                .error, "\(input.hook.rawValue) failed (\(mode.rawValue) applies): \(error)", source: bundle?.id.description ?? "engine")
        }
        switch result {
        case .decision(let d) where !d.decision.isAllowed: metrics.denials.add(1, ordering: .relaxed)
        case .filter(.drop): metrics.drops.add(1, ordering: .relaxed)
        default: break
        }
        let record = DecisionRecord(
            sequence: sequence.add(1, ordering: .relaxed).newValue, time: now, hook: input.hook, bundle: bundle?.id, input: input,
            result: result, error: raw.error, decidedBy: raw.layer, durationNanoseconds: monotonicNanoseconds() - start)
        decisionLog.record(record)
        return record
    }

    /// A POL2 decision (`input.hook` must be a `before_*` hook).
    public func decide(_ input: PolicyInput) -> DecisionOutcome {
        precondition(input.hook.kind == .decision, "\(input.hook) is not a decision hook")
        return evaluate(input).result.decision ?? DecisionOutcome(.allow)
    }

    /// The destinations of a notification (`input.hook` is `.routeNotification`).
    public func route(_ input: PolicyInput) -> [Route] {
        precondition(input.hook == .routeNotification)
        return evaluate(input).result.routes ?? []
    }

    /// Whether a notification is sent (`input.hook` is `.filterNotification`).
    public func filter(_ input: PolicyInput) -> FilterDecision {
        precondition(input.hook == .filterNotification)
        return evaluate(input).result.filter ?? .keep
    }

    /// What a failed policy point yields (FailureMode).
    static func fallback(_ input: PolicyInput, error: PolicyError, mode: FailureMode) -> PolicyResult {
        switch input.hook.kind {
        case .decision:
            if mode == .failOpen { return .decision(BuiltInRules.pol2(input)) }
            return .decision(DecisionOutcome(.deny(
                subject: .functionProvider, reason: .executionError, message: "policy evaluation failed (\(error.code.name))")))
        case .route:
            return .routes(BuiltInRules.routes(input, includeM2MSPs: mode == .failOpen))
        case .filter:
            return .filter(mode == .failOpen ? BuiltInRules.onc(input) : .drop(message: "policy evaluation failed (\(error.code.name))"))
        }
    }

    // MARK: Pool

    private func checkout() -> (LuaRuntime?, PolicySet) {
        pool.withLock { p in (p.idle.popLast(), p.set) }
    }

    private func checkin(_ runtime: LuaRuntime) {
        if runtime.poisoned {
            metrics.statesDiscarded.add(1, ordering: .relaxed)
            return
        }
        let limit = configuration.poolSize
        pool.withLock { p in
            if runtime.set === p.set && p.idle.count < limit { p.idle.append(runtime) }
        }
    }

    // MARK: Reload

    /// Loads the bundle in `directory` and swaps it in (see `reload(_:plugins:)`).
    @discardableResult
    public func reload(directory: String, loader: PolicyLoader) throws(PolicyError) -> ReloadReport {
        let loaded: (bundle: PolicyBundle, plugins: [String: PluginPackage])
        do {
            loaded = try loader.loadBundle(at: directory)
        } catch {
            metrics.refusedReloads.add(1, ordering: .relaxed)
            services.logger.log(.error, "reload of \(directory) refused, keeping the current version: \(error)", source: "engine")
            throw error
        }
        return try reload(loaded.bundle, plugins: loaded.plugins)
    }

    /// Validates `bundle` and swaps it in for the bundle of the same name (or adds it).
    ///
    /// Validation: a lower version is refused, and so is the same version with other content;
    /// every file compiles and loads in a fresh state with its plugins; hook names and plugin
    /// configurations are checked; the bundle's own tests pass. Only then is the set swapped, in
    /// one step. On any failure the current set stays (the last good version).
    @discardableResult
    public func reload(_ bundle: PolicyBundle, plugins: [String: PluginPackage]) throws(PolicyError) -> ReloadReport {
        do {
            let report = try reloading.withLock { _ throws(PolicyError) -> ReloadReport in try swap(bundle, plugins: plugins) }
            if report.swapped {
                metrics.reloads.add(1, ordering: .relaxed)
                services.logger.log(.info, "reloaded \(report.bundle) (was \(report.previous?.description ?? "absent"))", source: "engine")
            }
            return report
        } catch {
            metrics.refusedReloads.add(1, ordering: .relaxed)
            services.logger.log(.error, "reload of \(bundle.id) refused, keeping the current version: \(error)", source: "engine")
            throw error
        }
    }

    private func swap(_ bundle: PolicyBundle, plugins: [String: PluginPackage]) throws(PolicyError) -> ReloadReport {
        let current = policySet
        let previous = current.bundleIndex(named: bundle.manifest.name).map { current.bundles[$0] }
        if let previous {
            if bundle.manifest.version < previous.manifest.version {
                throw PolicyError(
                    code: .versionNotNewer, message: "version \(bundle.manifest.version) is lower than the loaded \(previous.manifest.version)",
                    layer: bundle.manifest.name)
            }
            if bundle.manifest.version.parts == previous.manifest.version.parts {
                if bundle.contentDigest == previous.contentDigest {
                    return ReloadReport(bundle: bundle.id, previous: previous.id, swapped: false, testsPassed: 0)
                }
                throw PolicyError(
                    code: .versionNotNewer, message: "the content changed but the version is still \(bundle.manifest.version)",
                    layer: bundle.manifest.name)
            }
        }
        let candidate = try current.replacing(bundle, plugins: plugins)
        let first = try LuaRuntime(set: candidate, limits: configuration.limits, mode: .production, services: services)
        var passed = 0
        if configuration.runBundleTestsOnReload && !bundle.tests.isEmpty {
            let runner = PolicyTestRunner(limits: .testing)
            let report = runner.run(bundle: bundle, plugins: candidate.plugins)
            guard report.failed == 0 else {
                let failures = report.results.filter { !$0.passed }.prefix(3).map { "\($0.name): \($0.message ?? "")" }
                throw PolicyError(
                    code: .bundleTestsFailed, message: "\(report.failed) test(s) failed: " + failures.joined(separator: "; "),
                    layer: bundle.manifest.name)
            }
            passed = report.passed
        }
        var warm = [first]
        for _ in 1..<max(1, configuration.prewarm) {
            if let r = try? LuaRuntime(set: candidate, limits: configuration.limits, mode: .production, services: services) { warm.append(r) }
        }
        metrics.statesCreated.add(warm.count, ordering: .relaxed)
        let retired = pool.withLock { p -> [LuaRuntime] in
            let old = p.idle
            p.set = candidate
            p.idle = warm
            return old
        }
        metrics.statesDiscarded.add(retired.count, ordering: .relaxed)
        return ReloadReport(bundle: bundle.id, previous: previous?.id, swapped: true, testsPassed: passed)
    }
}

