// What the engine needs from its host: a logger for `m2m.log` and engine events, a data source
// for `m2m.lookup.*`, and the limits of each state.

public import M2MCore

/// Severity of a log line.
public enum PolicyLogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug, info, warning, error
    public static func < (a: PolicyLogLevel, b: PolicyLogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// Where `m2m.log`, `print` and engine events (errors, reloads) go.
public protocol PolicyLogger: Sendable {
    func log(_ level: PolicyLogLevel, _ message: String, source: String)
}

/// Discards everything.
public struct NullPolicyLogger: PolicyLogger {
    public init() {}
    public func log(_ level: PolicyLogLevel, _ message: String, source: String) {}
}

/// Lookups plugins may make (`m2m.lookup.eis(eid)`, `.plma(mno_id)`, `.onc(mno_id)`). Roles
/// implement it over their stores; Policy never imports Storage (ARCHITECTURE.md).
public protocol PolicyDataSource: Sendable {
    func eis(_ eid: EID) -> EISSnapshot?
    func plma(operator: OID) -> [PLMASnapshot]
    func onc(operator: OID) -> [ONCSnapshot]
}

/// Budgets of each Lua state (docs/policy.md, "Budgets").
public struct PolicyLimits: Sendable, Hashable {
    /// Bytes the allocator grants a whole state (code, data, every call).
    public var memory: Int
    /// VM instructions per call.
    public var instructions: Int
    /// Wall-clock time per call.
    public var timeout: Duration
    /// Instructions between two budget checks.
    public var hookInterval: Int
    /// Instructions and time for loading a state's files (top-level code only).
    public var loadInstructions: Int
    public var loadTimeout: Duration

    public init(
        memory: Int = 32 << 20, instructions: Int = 1_000_000, timeout: Duration = .milliseconds(50),
        hookInterval: Int = 1000, loadInstructions: Int = 50_000_000, loadTimeout: Duration = .seconds(5)
    ) {
        self.memory = memory
        self.instructions = instructions
        self.timeout = timeout
        self.hookInterval = hookInterval
        self.loadInstructions = loadInstructions
        self.loadTimeout = loadTimeout
    }

    /// Per-test budgets of `m2mrsp policy test` (tests build fixtures and run several decisions).
    public static let testing = PolicyLimits(memory: 64 << 20, instructions: 20_000_000, timeout: .seconds(2))
}

/// The host side of a state: logging, lookups, and (tests) configuration schemas.
struct PolicyServices: Sendable {
    var logger: any PolicyLogger = NullPolicyLogger()
    var dataSource: (any PolicyDataSource)? = nil
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, a) = components
        return s * 1_000_000_000 + a / 1_000_000_000
    }
}
