// One Lua state with a policy set loaded: the Swift side of the bridge.
//
// Swift never calls a Lua API function that can raise: it calls the `m2m_*` entry points of
// CLuaShims, which run their work under lua_pcall and return a status. Lua reaches Swift only
// through `hostCallback`, which sees bytes, never the lua_State, and returns a status; the C
// trampoline raises afterwards (STYLE.md §4.7 rule 1).

import CLuaShims
import M2MCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What one pipeline call produced, before the engine applies failure modes and records it.
struct RuntimeResult {
    var result: PolicyResult?
    var error: PolicyError?
    /// The layer that decided (deny, warn, drop) or failed.
    var layer: String?
}

/// Receives host calls from Lua. Lives as long as its state; the reply buffer stays valid until
/// the next call, which is all the C trampoline needs (it copies the reply at once).
final class HostBridge {
    var services: PolicyServices
    /// Schemas of the loaded plugins (for `policy.call` configurations in tests).
    var schemas: [String: PluginSchema] = [:]
    /// Fixtures are only offered to test states.
    var fixtures = false
    private var reply: UnsafeMutableRawBufferPointer = .allocate(byteCount: 256, alignment: 8)
    private var replyLength = 0

    init(services: PolicyServices) { self.services = services }
    deinit { reply.deallocate() }

    private func setReply(_ bytes: [UInt8]) {
        if bytes.count > reply.count {
            reply.deallocate()
            reply = .allocate(byteCount: max(bytes.count, reply.count * 2), alignment: 8)
        }
        bytes.withUnsafeBytes { reply.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        replyLength = bytes.count
    }

    /// Handles one host call. Never throws: errors become an error reply.
    func handle(_ function: Int32, _ args: UnsafeRawBufferPointer, _ out: UnsafeMutablePointer<m2m_host_reply>) {
        do throws(PolicyError) {
            let value: PolicyValue
            do {
                value = try ValueReader.decode(args)
            } catch {
                throw .internalError("host call: \(error)")
            }
            let bytes = try answer(function, value.arrayValue ?? [])
            setReply(bytes)
            out.pointee = m2m_host_reply(data: reply.baseAddress!.assumingMemoryBound(to: UInt8.self), length: bytes.count, is_error: 0)
        } catch {
            setReply(Array(error.message.utf8))
            out.pointee = m2m_host_reply(data: reply.baseAddress!.assumingMemoryBound(to: UInt8.self), length: replyLength, is_error: 1)
        }
    }

    private func answer(_ function: Int32, _ args: [PolicyValue]) throws(PolicyError) -> [UInt8] {
        func arg(_ i: Int) -> PolicyValue { i < args.count ? args[i] : .null }
        switch function {
        case Int32(M2M_HOST_LOG):
            let level = PolicyLogLevel(rawValue: arg(0).intValue ?? 1) ?? .info
            services.logger.log(level, arg(1).stringValue ?? "", source: "lua")
            return []
        case Int32(M2M_HOST_PARSE_TIME):
            guard let text = arg(0).stringValue, let t = try? Timestamp(text: text) else {
                throw .invalidInput("m2m.clock.parse: '\(arg(0).stringValue ?? arg(0).typeName)' is not an xs:dateTime")
            }
            return PolicyValue.array([.integer(t.seconds), .integer(Int64(t.nanoseconds))]).encoded
        case Int32(M2M_HOST_LOOKUP):
            return try lookup(arg(0).stringValue ?? "", arg(1))
        case Int32(M2M_HOST_FIXTURE):
            guard fixtures else { throw .invalidInput("fixtures are only available in tests") }
            return try Fixtures.build(kind: arg(0).stringValue ?? "", arg(1))
        case Int32(M2M_HOST_CONF):
            let name = arg(0).stringValue ?? ""
            guard let schema = schemas[name] else { throw .invalidConfiguration("no plugin named '\(name)' is loaded") }
            return try schema.validate(arg(1), path: "\(name) conf").encoded
        default:
            throw .internalError("unknown host function \(function)")
        }
    }

    private func lookup(_ name: String, _ key: PolicyValue) throws(PolicyError) -> [UInt8] {
        guard let source = services.dataSource else { throw .invalidInput("m2m.lookup.\(name): no data source is attached") }
        guard let text = key.stringValue else { throw .invalidInput("m2m.lookup.\(name): a string key is expected") }
        switch name {
        case "eis":
            guard let eid = try? EID(text: text) else { throw .invalidInput("m2m.lookup.eis: '\(text)' is not an EID") }
            return source.eis(eid)?.encoded ?? []
        case "plma", "onc":
            guard let oid = try? OID(text: text) else { throw .invalidInput("m2m.lookup.\(name): '\(text)' is not an OID") }
            var w = ValueWriter()
            let entries = name == "plma" ? source.plma(operator: oid).map(\.encoded) : source.onc(operator: oid).map(\.encoded)
            w.beginArray(count: entries.count)
            for e in entries {
                w.element()
                w.raw(e)
            }
            w.endArray()
            return w.bytes
        default:
            throw .invalidInput("m2m.lookup.\(name) does not exist")
        }
    }
}

private let hostCallback: m2m_host_fn = { ud, function, args, length, reply in
    guard let ud, let reply else { return 0 }
    let bridge = Unmanaged<HostBridge>.fromOpaque(ud).takeUnretainedValue()
    bridge.handle(function, UnsafeRawBufferPointer(start: args, count: length), reply)
    return 0
}

/// One sandboxed Lua state with a policy set loaded.
///
/// Not thread-safe: one thread uses it at a time. The engine's pool hands a runtime to one
/// caller and takes it back afterwards (the lock on the pool orders the hand-over), which is
/// why the conformance is `@unchecked Sendable`.
final class LuaRuntime: @unchecked Sendable {
    enum Mode {
        case production
        case test(coverage: Bool)
        /// The benchmark baseline: system allocator, no hook, no cap.
        case raw
    }

    let state: OpaquePointer
    let set: PolicySet
    let bridge: HostBridge
    let limits: PolicyLimits
    /// Layer names per bundle, in pipeline order.
    private(set) var layerNames: [[String]] = []
    /// Module scope per bundle and per plugin (tests load their files into these).
    private(set) var bundleScopes: [Int32] = []
    private(set) var pluginScopes: [String: Int32] = [:]
    private(set) var pluginModules: [String: Int32] = [:]
    /// Set when a call blew a budget: the engine discards the state.
    var poisoned = false

    /// Coverage ids of the files registered at creation (test mode with coverage).
    private(set) var coverageIDs: [(path: String, id: Int32)] = []

    init(set: PolicySet, limits: PolicyLimits, mode: Mode, services: PolicyServices, coverage: [PolicySourceFile] = []) throws(PolicyError) {
        var flags: Int32 = 0
        switch mode {
        case .production: break
        case .test(let coverage): flags = Int32(M2M_FLAG_TEST) | (coverage ? Int32(M2M_FLAG_COVERAGE) : 0)
        case .raw: flags = Int32(M2M_FLAG_RAW)
        }
        var load = Self.cLimits(limits, loading: true)
        guard let state = m2m_state_new(&load, flags) else { throw .internalError("cannot create a Lua state") }
        self.state = state
        self.set = set
        self.limits = limits
        self.bridge = HostBridge(services: services)
        if case .test = mode { bridge.fixtures = true }
        for plugin in set.plugins.values { bridge.schemas[plugin.name] = plugin.schema }

        let prelude = Prelude.source
        let status = Vocabulary.encoded.withUnsafeBufferPointer { vocab in
            prelude.utf8CString.withUnsafeBufferPointer { text in
                m2m_state_setup(
                    state, vocab.baseAddress, vocab.count, text.baseAddress, text.count - 1, hostCallback,
                    Unmanaged.passUnretained(bridge).toOpaque())
            }
        }
        try check(status, code: .internalError, layer: "m2m")
        m2m_finish(state)
        // Registered before anything loads, so the top-level code of each file counts too.
        for file in coverage {
            let id = registerCoverage(file)
            if id >= 0 { coverageIDs.append((file.path, id)) }
        }
        try loadSet()
        var call = Self.cLimits(limits, loading: false)
        m2m_state_set_limits(state, &call)
    }

    deinit { m2m_state_free(state) }

    static func cLimits(_ l: PolicyLimits, loading: Bool) -> m2m_limits {
        m2m_limits(
            memory_limit: l.memory, instruction_limit: Int64(loading ? l.loadInstructions : l.instructions),
            timeout_ns: loading ? l.loadTimeout.nanoseconds : l.timeout.nanoseconds, hook_interval: Int32(l.hookInterval))
    }

    /// The error of the last call, as a PolicyError (classified by what stopped it).
    private func lastError(_ code: PolicyError.Code, layer: String?) -> PolicyError {
        let o = m2m_state_outcome(state)!
        let message = o.pointee.error.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: o.pointee.error_length), as: UTF8.self) } ?? "unknown error"
        switch o.pointee.tripped {
        case Int32(M2M_TRIP_INSTRUCTIONS):
            return PolicyError(code: .instructionBudgetExceeded, message: message, layer: layer)
        case Int32(M2M_TRIP_DEADLINE):
            return PolicyError(code: .timeout, message: message, layer: layer)
        case Int32(M2M_TRIP_MEMORY):
            return PolicyError(code: .memoryExceeded, message: message, layer: layer)
        default:
            return PolicyError(code: o.pointee.invalid_result != 0 ? .invalidResult : code, message: message, layer: layer)
        }
    }

    private func check(_ status: Int32, code: PolicyError.Code, layer: String?) throws(PolicyError) {
        guard status == LUA_OK else {
            let error = lastError(code, layer: layer)
            m2m_finish(state)
            if error.discardsState { poisoned = true }
            throw error
        }
    }

    // MARK: Loading

    /// Creates a module scope holding `files` (each `require`-able by its module name).
    func newScope(_ files: [PolicySourceFile], layer: String) throws(PolicyError) -> Int32 {
        let scope = m2m_scope_new(state)
        guard scope > 0 else { throw lastError(.internalError, layer: layer) }
        for file in files { try add(file, to: scope, layer: layer) }
        return scope
    }

    func add(_ file: PolicySourceFile, to scope: Int32, layer: String) throws(PolicyError) {
        let status = file.text.utf8CString.withUnsafeBufferPointer { text in
            m2m_scope_add_source(state, scope, file.module, text.baseAddress, text.count - 1, file.chunkName)
        }
        try check(status, code: .loadFailed, layer: layer)
    }

    /// Runs a module of a scope (once) and returns a ref to its value.
    func require(_ module: String, in scope: Int32, test: Bool = false, layer: String) throws(PolicyError) -> Int32 {
        var ref: Int32 = 0
        let status = m2m_scope_require(state, scope, module, test ? 1 : 0, &ref)
        try check(status, code: .loadFailed, layer: layer)
        return ref
    }

    /// The value behind a ref, without functions (metadata: manifests, plugin headers, schemas).
    func value(of ref: Int32, layer: String) throws(PolicyError) -> PolicyValue {
        let status = m2m_encode_ref(state, ref)
        try check(status, code: .loadFailed, layer: layer)
        defer { m2m_finish(state) }
        let o = m2m_state_outcome(state)!
        do {
            return try ValueReader.decode(UnsafeRawBufferPointer(start: o.pointee.bytes, count: o.pointee.bytes_length))
        } catch {
            throw .internalError("\(layer): \(error)")
        }
    }

    /// Calls the function behind `ref` with `args` and decodes its first result.
    func call(_ ref: Int32, _ args: [PolicyValue], layer: String) throws(PolicyError) -> PolicyValue {
        try call(ref, encoded: PolicyValue.array(args).encoded, layer: layer)
    }

    /// Calls the function behind `ref` with already encoded arguments (an array value whose
    /// elements may be snapshots, which Lua then sees as typed proxies).
    func call(_ ref: Int32, encoded: [UInt8], layer: String) throws(PolicyError) -> PolicyValue {
        let status = encoded.withUnsafeBufferPointer { m2m_call_ref(state, ref, $0.baseAddress, $0.count) }
        try check(status, code: .pluginFailed, layer: layer)
        defer { m2m_finish(state) }
        let o = m2m_state_outcome(state)!
        do {
            return try ValueReader.decode(UnsafeRawBufferPointer(start: o.pointee.bytes, count: o.pointee.bytes_length))
        } catch {
            throw .internalError("\(layer): \(error)")
        }
    }

    func preludeRef(_ name: String) throws(PolicyError) -> Int32 {
        let ref = m2m_prelude_ref(state, name)
        guard ref > 0 else { throw .internalError("the prelude has no '\(name)'") }
        return ref
    }

    /// Loads every plugin the set uses, then every bundle, building the hook pipelines.
    private func loadSet() throws(PolicyError) {
        for plugin in set.pluginsInOrder {
            let scope = try newScope(plugin.files, layer: plugin.name)
            pluginScopes[plugin.name] = scope
            pluginModules[plugin.name] = try require("plugin", in: scope, layer: plugin.name)
        }
        for (b, bundle) in set.bundles.enumerated() {
            let scope = try newScope(bundle.files, layer: bundle.manifest.name)
            bundleScopes.append(scope)
            var names: [String] = []
            for (l, layer) in bundle.layers.enumerated() {
                let module: Int32
                switch layer.source {
                case .plugin(let name):
                    guard let ref = pluginModules[name] else {
                        throw PolicyError(code: .pluginNotFound, message: "plugin '\(name)' is not loaded", layer: bundle.manifest.name)
                    }
                    module = ref
                case .file(let name):
                    module = try require(name, in: scope, layer: layer.name)
                }
                let conf = layer.configuration.encoded
                var hooks: Int64 = 0
                let status = conf.withUnsafeBufferPointer {
                    m2m_pipeline_add(state, Int32(b), Int32(l), layer.name, module, $0.baseAddress, $0.count, &hooks)
                }
                try check(status, code: .loadFailed, layer: layer.name)
                names.append(layer.name)
            }
            layerNames.append(names)
        }
    }

    // MARK: Calls

    /// Runs the pipeline of `input.hook` of bundle `bundle`.
    func run(bundle: Int, input: PolicyInput, now: Timestamp) -> RuntimeResult {
        m2m_state_set_clock(state, now.seconds, now.nanoseconds)
        let status = input.encoded.withUnsafeBufferPointer {
            m2m_run(state, Int32(bundle), input.hook.id, $0.baseAddress, $0.count)
        }
        defer { m2m_finish(state) }
        let o = m2m_state_outcome(state)!
        let names = layerNames[bundle]
        let layer = o.pointee.layer >= 0 && Int(o.pointee.layer) < names.count ? names[Int(o.pointee.layer)] : nil
        guard status == LUA_OK else {
            let error = lastError(.pluginFailed, layer: layer)
            if error.discardsState { poisoned = true }
            return RuntimeResult(result: nil, error: error, layer: layer)
        }
        do throws(PolicyError) {
            return RuntimeResult(result: try Self.read(o, hook: input.hook), error: nil, layer: layer)
        } catch {
            return RuntimeResult(result: nil, error: PolicyError(code: error.code, message: error.message, layer: layer), layer: layer)
        }
    }

    private static func string(_ p: UnsafePointer<CChar>?, _ n: Int) -> String? {
        guard let p else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// Converts the C outcome into Swift values, checking every identifier.
    static func read(_ o: UnsafePointer<m2m_outcome>, hook: PolicyHook) throws(PolicyError) -> PolicyResult {
        let out = o.pointee
        switch hook.kind {
        case .decision:
            var autoDelete: [ICCID] = []
            for i in 0..<Int(out.obligation_count) {
                var n = 0
                let s = string(m2m_outcome_obligation(o, Int32(i), &n), n) ?? ""
                guard let iccid = try? ICCID(text: s) else {
                    throw PolicyError(code: .invalidResult, message: "auto_delete: '\(s)' is not an ICCID")
                }
                autoDelete.append(iccid)
            }
            let message = string(out.message, out.message_length)
            switch out.kind {
            case Int32(M2M_VERDICT_DENY):
                return .decision(DecisionOutcome(
                    .deny(subject: SubjectCode.table[Int(out.subject)].code, reason: ReasonCode.table[Int(out.reason)].code, message: message)))
            case Int32(M2M_VERDICT_WARN):
                return .decision(DecisionOutcome(
                    .allowWithWarning(
                        subject: SubjectCode.table[Int(out.subject)].code, reason: ReasonCode.table[Int(out.reason)].code, message: message),
                    autoDelete: autoDelete))
            default:
                return .decision(DecisionOutcome(.allow, autoDelete: autoDelete))
            }
        case .filter:
            if out.kind == Int32(M2M_VERDICT_DROP) { return .filter(.drop(message: string(out.message, out.message_length))) }
            return .filter(.keep)
        case .route:
            var routes: [Route] = []
            for i in 0..<Int(out.route_count) {
                let r = m2m_outcome_route(o, Int32(i))!.pointee
                let to = string(r.to, r.to_length) ?? ""
                guard let recipient = try? OID(text: to) else { throw PolicyError(code: .invalidResult, message: "route to '\(to)': not an OID") }
                var smdp: OID?
                if let s = string(r.smdp, r.smdp_length) {
                    guard let oid = try? OID(text: s) else { throw PolicyError(code: .invalidResult, message: "route smdp '\(s)': not an OID") }
                    smdp = oid
                }
                let route = Route(
                    via: RouteVia.ordered[Int(r.via)], smdp: smdp, recipient: recipient, role: RecipientRole.ordered[Int(r.role)],
                    retry: RetryClass.ordered[Int(r.retry)])
                // One route per recipient and channel: the most insistent retry class wins.
                if let j = routes.firstIndex(where: { $0.via == route.via && $0.recipient == route.recipient && $0.smdp == route.smdp }) {
                    if route.retry > routes[j].retry { routes[j].retry = route.retry }
                } else {
                    routes.append(route)
                }
            }
            return .routes(routes)
        }
    }

    /// The benchmark baseline call (see m2m_bench_raw).
    func runRaw(bundle: Int, hook: PolicyHook, encoded: UnsafeBufferPointer<UInt8>) -> Int32 {
        m2m_bench_raw(state, Int32(bundle), hook.id, encoded.baseAddress, encoded.count)
    }

    /// Bytes the state holds.
    var memoryInUse: Int { m2m_state_memory(state) }

    // MARK: Coverage

    func registerCoverage(_ file: PolicySourceFile) -> Int32 {
        file.text.utf8CString.withUnsafeBufferPointer { text in
            m2m_coverage_register(state, file.chunkName, text.baseAddress, text.count - 1)
        }
    }

    /// (active lines, executed lines) of a registered file.
    func coverage(_ id: Int32) -> (active: Set<Int>, executed: Set<Int>) {
        let n = Int(m2m_coverage_read(state, id, nil, 0))
        var lines = [UInt8](repeating: 0, count: max(n, 1))
        _ = m2m_coverage_read(state, id, &lines, Int32(n))
        var active = Set<Int>(), executed = Set<Int>()
        for (line, bits) in lines.enumerated() where bits & 1 != 0 {
            active.insert(line)
            if bits & 2 != 0 { executed.insert(line) }
        }
        return (active, executed)
    }
}

/// The monotonic clock, in nanoseconds (durations of decisions).
@inline(__always) func monotonicNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
}
