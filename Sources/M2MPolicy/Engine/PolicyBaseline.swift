// The baseline of `m2mrsp bench policy`: the same Lua functions called with plain lua_pcall.

/// Calls a hook pipeline's Lua functions the minimal way: one `lua_pcall` of a C function that
/// decodes `ctx` from the input's bytes (as the engine does) and calls each layer's function with
/// `lua_call`, on a state with the system allocator, no hook, no budget, no message handler, no
/// result conversion and no decision record. What `m2mrsp bench policy` compares the engine to.
public final class PolicyBaselineRunner {
    private let runtime: LuaRuntime

    public init(set: PolicySet) throws(PolicyError) {
        runtime = try LuaRuntime(set: set, limits: PolicyLimits(), mode: .raw, services: PolicyServices())
    }

    /// Runs `input.hook` of bundle `bundle`; returns the number of Lua functions called, or -1
    /// when one raised an error.
    public func run(_ input: PolicyInput, bundle: Int = 0) -> Int {
        input.encoded.withUnsafeBufferPointer { Int(runtime.runRaw(bundle: bundle, hook: input.hook, encoded: $0)) }
    }
}
