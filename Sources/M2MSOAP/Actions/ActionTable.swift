// wsa:Action URIs: one table per interface (ActionURIs+ESx.swift, generated from GSMA's WSDLs and
// checked against them by a test). Output always uses the canonical URI; input is matched
// tolerantly: the exact canonical or alias URI, or failing that the last path segment with or
// without a `Request`/`Response` suffix, for the interface named in the path (the WSDLs mix both
// forms and even misspell ES3-ProfileDownloadedCompleted).

/// The Action URIs of one function.
public struct ActionEntry: Sendable, Hashable {
    public let function: FunctionID
    /// The request's Action.
    public let request: String?
    /// A synchronous response's Action.
    public let response: String?
    /// An asynchronous response's Action (the callback to ReplyTo).
    public let callback: String?
    /// A notification's Action.
    public let notification: String?
    /// Other spellings seen in GSMA's WSDLs, accepted on input.
    public let aliases: [String]

    public init(
        function: FunctionID, request: String? = nil, response: String? = nil, callback: String? = nil,
        notification: String? = nil, aliases: [String] = []
    ) {
        self.function = function
        self.request = request
        self.response = response
        self.callback = callback
        self.notification = notification
        self.aliases = aliases
    }
}

/// What an Action URI names.
public struct ResolvedAction: Sendable, Hashable {
    public enum Role: String, Sendable, Hashable { case request, response, callback, notification, unspecified }
    public let function: FunctionID
    /// Which message the URI names, when it says so.
    public let role: Role
}

/// All Action tables and the tolerant lookup.
public enum ActionTable {
    public static let all: [ActionEntry] = es1 + es2 + es3 + es4 + es4a + es7

    private static let exact: [String: ResolvedAction] = {
        var map: [String: ResolvedAction] = [:]
        for entry in all {
            if let a = entry.request { map[a] = ResolvedAction(function: entry.function, role: .request) }
            if let a = entry.response { map[a] = ResolvedAction(function: entry.function, role: .response) }
            if let a = entry.callback { map[a] = ResolvedAction(function: entry.function, role: .callback) }
            if let a = entry.notification { map[a] = ResolvedAction(function: entry.function, role: .notification) }
            for alias in entry.aliases where map[alias] == nil {
                map[alias] = ResolvedAction(function: entry.function, role: .unspecified)
            }
        }
        return map
    }()

    private static let byName: [String: FunctionID] = {
        var map: [String: FunctionID] = [:]
        for entry in all { map["\(entry.function.interface.rawValue)-\(entry.function.name)".lowercased()] = entry.function }
        return map
    }()

    private static let byFunction: [FunctionID: ActionEntry] = {
        var map: [FunctionID: ActionEntry] = [:]
        for entry in all { map[entry.function] = entry }
        return map
    }()

    /// The table entry of a function.
    public static func entry(for function: FunctionID) -> ActionEntry? { byFunction[function] }

    /// The Action to write for a message.
    public static func action(for descriptor: MessageDescriptor, asynchronous: Bool? = nil) -> String {
        guard let entry = byFunction[descriptor.function] else {
            preconditionFailure("no Action entry for \(descriptor.function)")
        }
        switch descriptor.kind {
        case .request:
            return entry.request ?? ""
        case .notification:
            return entry.notification ?? ""
        case .response:
            let async = asynchronous ?? (descriptor.pattern == .asynchronous)
            return (async ? entry.callback : entry.response) ?? entry.response ?? ""
        }
    }

    /// The canonical Action URIs of a function with what `resolve` answers for each: checking an incoming
    /// Action against these first (the usual case) gives `resolve`'s answer without hashing the URI.
    static func canonicalActions(for function: FunctionID) -> [(uri: String, resolved: ResolvedAction)] {
        guard let entry = byFunction[function] else { return [] }
        return [entry.request, entry.response, entry.callback, entry.notification].compactMap { uri in
            guard let uri, let resolved = exact[uri] else { return nil }
            return (uri, resolved)
        }
    }

    /// Resolves an incoming Action URI; nil when it names no function we know.
    public static func resolve(_ action: String) -> ResolvedAction? {
        if let hit = exact[action] { return hit }
        // Tolerant: http://gsma.com/<ES>/<Group>[CallBack]/<ES>-<Name>[Request|Response]
        var segments = action.split(separator: "/", omittingEmptySubsequences: true)
        guard let last = segments.popLast() else { return nil }
        var name = String(last)
        var role = ResolvedAction.Role.unspecified
        if segments.last?.hasSuffix("CallBack") == true || segments.last?.hasSuffix("Callback") == true { role = .callback }
        if name.hasSuffix("Request") {
            name.removeLast("Request".count)
            role = .request
        } else if name.hasSuffix("Response") {
            name.removeLast("Response".count)
            if role == .unspecified { role = .response }
        }
        var key = name.lowercased()
        if key == "es3-profiledownloadedcompleted" { key = "es3-profiledownloadcompleted" }  // ES3_SMSR.wsdl typo
        guard let function = byName[key] else { return nil }
        return ResolvedAction(function: function, role: role)
    }
}
