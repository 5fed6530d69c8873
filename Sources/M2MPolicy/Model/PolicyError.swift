// The policy engine's error type. Equality uses `code` only (STYLE.md §4.3(d)); `message`,
// `layer` and the source position are diagnostics.

public import M2MCore

/// Why a policy could not be loaded or evaluated.
///
/// A Lua runtime error, a blown budget or an invalid hook result is an error of the *policy*, not
/// a decision: the engine counts and logs it, records it, and applies the operator's configured
/// failure mode (`FailureMode`). The SGP.02 status of such a failure is `FAILED` with subject
/// 1.2 (Function Provider) and reason 4.2 (Execution Error): the SM-SR could not evaluate its own
/// policy, which is neither the caller's fault nor a policy refusal (that is 8.2.3 / 3.8).
public struct PolicyError: Error, Hashable, Sendable, CustomStringConvertible, FunctionExecutionStatusConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible, Codable {
        public let name: String
        public var description: String { name }
        public init(_ name: String) { self.name = name }

        public init(from decoder: any Decoder) throws { name = try decoder.singleValueContainer().decode(String.self) }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(name)
        }

        /// A plugin raised a Lua error (or called a PDK function wrongly).
        public static let pluginFailed = Code("pluginFailed")
        /// The call ran past its wall-clock deadline.
        public static let timeout = Code("timeout")
        /// The call used more VM instructions than its budget.
        public static let instructionBudgetExceeded = Code("instructionBudgetExceeded")
        /// The state's allocator refused memory past its cap.
        public static let memoryExceeded = Code("memoryExceeded")
        /// A hook returned a value its kind may not return.
        public static let invalidResult = Code("invalidResult")
        /// A file did not compile, or its top-level code failed.
        public static let loadFailed = Code("loadFailed")
        /// `bundle.lua` is missing a field or has a wrong one.
        public static let invalidManifest = Code("invalidManifest")
        /// A plugin configuration does not match the plugin's `schema.lua`.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// A bundle names a plugin that no plugin directory holds.
        public static let pluginNotFound = Code("pluginNotFound")
        /// The bundle's own `*_test.lua` tests failed, so it was not swapped in.
        public static let bundleTestsFailed = Code("bundleTestsFailed")
        /// A reload offered a lower version (or the same version with other content).
        public static let versionNotNewer = Code("versionNotNewer")
        /// A snapshot or fixture field is missing or invalid.
        public static let invalidInput = Code("invalidInput")
        /// No bundle governs the operator and there is no default (`operator = "*"`) bundle.
        public static let noBundle = Code("noBundle")
        /// The engine itself failed (a state could not be created).
        public static let internalError = Code("internalError")
    }

    public let code: Code
    /// What went wrong, with the Lua traceback for runtime errors.
    public let message: String
    /// The plugin or policy file involved, when known.
    public let layer: String?

    public init(code: Code, message: String, layer: String? = nil) {
        self.code = code
        self.message = message
        self.layer = layer
    }

    public static func == (lhs: PolicyError, rhs: PolicyError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String {
        "\(code)" + (layer.map { " in \($0)" } ?? "") + (message.isEmpty ? "" : ": \(message)")
    }

    /// FAILED 1.2 / 4.2: the function provider could not evaluate its policy.
    public var executionStatus: FunctionExecutionStatus {
        .failed(.functionProvider, .executionError, message: "policy evaluation failed (\(code.name))")
    }

    /// True for errors that leave a Lua state in doubt (the engine discards the state).
    public var discardsState: Bool {
        code == .timeout || code == .instructionBudgetExceeded || code == .memoryExceeded || code == .internalError
    }

    @inline(never) static func pluginFailed(_ message: String, layer: String? = nil) -> Self {
        .init(code: .pluginFailed, message: message, layer: layer)
    }
    @inline(never) static func loadFailed(_ message: String, layer: String? = nil) -> Self {
        .init(code: .loadFailed, message: message, layer: layer)
    }
    @inline(never) static func invalidManifest(_ message: String, layer: String? = nil) -> Self {
        .init(code: .invalidManifest, message: message, layer: layer)
    }
    @inline(never) static func invalidConfiguration(_ message: String, layer: String? = nil) -> Self {
        .init(code: .invalidConfiguration, message: message, layer: layer)
    }
    @inline(never) static func invalidInput(_ message: String) -> Self { .init(code: .invalidInput, message: message) }
    @inline(never) static func internalError(_ message: String) -> Self { .init(code: .internalError, message: message) }
}

extension PolicyError: Codable {
    private enum CodingKeys: String, CodingKey { case code, message, layer }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            code: try c.decode(Code.self, forKey: .code), message: try c.decode(String.self, forKey: .message),
            layer: try c.decodeIfPresent(String.self, forKey: .layer))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(code, forKey: .code)
        try c.encode(message, forKey: .message)
        try c.encodeIfPresent(layer, forKey: .layer)
    }
}
