// What policies decide, as values (STYLE.md §4.3(f)).

public import M2MCore

/// A POL2 decision.
public enum PolicyDecision: Sendable, Hashable {
    /// The operation may go ahead.
    case allow
    /// The operation may go ahead; the response carries EXECUTED_WITHWARNING with these codes.
    case allowWithWarning(subject: SubjectCode, reason: ReasonCode, message: String?)
    /// The operation is refused with these codes (for POL2: 8.2.3 / 3.8).
    case deny(subject: SubjectCode, reason: ReasonCode, message: String?)

    public var isAllowed: Bool { if case .deny = self { false } else { true } }

    /// How the decision appears on the wire when it ends the function.
    public var executionStatus: FunctionExecutionStatus {
        switch self {
        case .allow: .success
        case .allowWithWarning(let s, let r, let m):
            FunctionExecutionStatus(
                status: .executedWithWarning, statusCodeData: .init(subject: s, reason: r, message: m))
        case .deny(let s, let r, let m): .failed(s, r, message: m)
        }
    }
}

extension PolicyDecision: Codable {
    private enum CodingKeys: String, CodingKey { case kind, subject, reason, message }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "allow": self = .allow
        case "warn":
            self = .allowWithWarning(
                subject: try c.decode(SubjectCode.self, forKey: .subject), reason: try c.decode(ReasonCode.self, forKey: .reason),
                message: try c.decodeIfPresent(String.self, forKey: .message))
        default:
            self = .deny(
                subject: try c.decode(SubjectCode.self, forKey: .subject), reason: try c.decode(ReasonCode.self, forKey: .reason),
                message: try c.decodeIfPresent(String.self, forKey: .message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .allow: try c.encode("allow", forKey: .kind)
        case .allowWithWarning(let s, let r, let m):
            try c.encode("warn", forKey: .kind)
            try c.encode(s, forKey: .subject)
            try c.encode(r, forKey: .reason)
            try c.encodeIfPresent(m, forKey: .message)
        case .deny(let s, let r, let m):
            try c.encode("deny", forKey: .kind)
            try c.encode(s, forKey: .subject)
            try c.encode(r, forKey: .reason)
            try c.encodeIfPresent(m, forKey: .message)
        }
    }
}

/// A POL2 decision with its obligations.
public struct DecisionOutcome: Sendable, Hashable, Codable {
    public var decision: PolicyDecision
    /// POL2 Auto-Delete: Profiles to delete once the disable (or the enable that disables them)
    /// has completed.
    public var autoDelete: [ICCID]

    public init(_ decision: PolicyDecision, autoDelete: [ICCID] = []) {
        self.decision = decision
        self.autoDelete = autoDelete
    }
}

/// How a notification reaches a recipient.
public enum RouteVia: String, Sendable, Hashable, Codable, CaseIterable {
    /// `allCases`, computed once (the C side reports indexes into it).
    static let ordered = allCases
    /// ES3 to the Profile's SM-DP, which relays ES2.Handle…Notification to the Operator.
    case es2 = "ES2"
    /// ES4.Handle…Notification directly to the recipient.
    case es4 = "ES4"
}

/// Who receives a notification.
public enum RecipientRole: String, Sendable, Hashable, Codable, CaseIterable {
    static let ordered = allCases
    case mno = "MNO"
    case m2mSP = "M2MSP"
}

/// How hard delivery is retried (the delivery service maps classes to schedules).
public enum RetryClass: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    static let ordered = allCases
    /// Retried until delivered (SM-SR change, deletions): backoff, no expiry.
    case critical
    /// Retried with backoff for a bounded time (default).
    case standard
    /// A few attempts.
    case bestEffort = "best_effort"
    /// One attempt.
    case none

    private var rank: Int {
        switch self {
        case .critical: 0
        case .standard: 1
        case .bestEffort: 2
        case .none: 3
        }
    }
    public static func < (lhs: RetryClass, rhs: RetryClass) -> Bool { lhs.rank > rhs.rank }
}

/// One destination of a notification.
public struct Route: Sendable, Hashable, Codable, CustomStringConvertible {
    public var via: RouteVia
    /// The relaying SM-DP (routes via ES2 only).
    public var smdp: OID?
    public var recipient: OID
    public var role: RecipientRole
    public var retry: RetryClass

    public init(via: RouteVia, smdp: OID? = nil, recipient: OID, role: RecipientRole, retry: RetryClass = .standard) {
        self.via = via
        self.smdp = smdp
        self.recipient = recipient
        self.role = role
        self.retry = retry
    }

    public var description: String {
        "\(via.rawValue)\(smdp.map { " via SM-DP \($0)" } ?? "") to \(role.rawValue) \(recipient) [\(retry.rawValue)]"
    }
}

/// An ONC filtering decision.
public enum FilterDecision: Sendable, Hashable, Codable {
    case keep
    case drop(message: String?)

    public var keeps: Bool { if case .keep = self { true } else { false } }
}

/// The result of one hook call, whatever its kind.
public enum PolicyResult: Sendable, Hashable, Codable {
    case decision(DecisionOutcome)
    case routes([Route])
    case filter(FilterDecision)

    public var decision: DecisionOutcome? { if case .decision(let d) = self { d } else { nil } }
    public var routes: [Route]? { if case .routes(let r) = self { r } else { nil } }
    public var filter: FilterDecision? { if case .filter(let f) = self { f } else { nil } }
}

extension PolicyResult {
    /// The result's Codable form as JSON, written by hand (JSONEncoder cost more than the SQLite
    /// transaction storing a decision record); `JSONDecoder` reads it back equal (tested).
    public var jsonText: String {
        func status(_ kind: String, _ s: SubjectCode, _ r: ReasonCode, _ m: String?) -> String {
            var members = [("kind", JSONText.quoted(kind)), ("subject", JSONText.quoted(s.rawValue)), ("reason", JSONText.quoted(r.rawValue))]
            if let m { members.append(("message", JSONText.quoted(m))) }
            return JSONText.objectText(members)
        }
        switch self {
        case .decision(let outcome):
            let decision: String = switch outcome.decision {
            case .allow: JSONText.objectText([("kind", JSONText.quoted("allow"))])
            case .allowWithWarning(let s, let r, let m): status("warn", s, r, m)
            case .deny(let s, let r, let m): status("deny", s, r, m)
            }
            let autoDelete = JSONText.array(outcome.autoDelete.map { JSONText.quoted($0.text) })
            return JSONText.enumCase("decision", JSONText.objectText([("decision", decision), ("autoDelete", autoDelete)]))
        case .routes(let routes):
            return JSONText.enumCase("routes", JSONText.array(routes.map { route in
                var members = [("via", JSONText.quoted(route.via.rawValue)), ("recipient", JSONText.quoted(route.recipient.text)),
                               ("role", JSONText.quoted(route.role.rawValue)), ("retry", JSONText.quoted(route.retry.rawValue))]
                if let smdp = route.smdp { members.append(("smdp", JSONText.quoted(smdp.text))) }
                return JSONText.objectText(members)
            }))
        case .filter(.keep):
            return JSONText.enumCase("filter", JSONText.enumCase("keep"))
        case .filter(.drop(let message)):
            return JSONText.enumCase("filter", JSONText.objectText([("drop", JSONText.objectText(message.map { [("message", JSONText.quoted($0))] } ?? []))]))
        }
    }
}
