// `m2mrsp policy replay`: re-runs recorded decisions against a candidate policy set and lists
// every decision whose result would change. Each record runs at its recorded instant, so time
// rules replay as they were decided. Lookups (m2m.lookup.*) see the candidate engine's data
// source, not the data of the time: a policy that depends on lookups may differ for that reason.

/// A recorded decision whose result differs under the candidate.
public struct ReplayChange: Sendable {
    public let record: DecisionRecord
    /// The candidate's evaluation of the same input at the same instant.
    public let replayed: DecisionRecord
}

/// The outcome of a replay.
public struct ReplayReport: Sendable {
    public var total = 0
    public var changes: [ReplayChange] = []
}

public enum PolicyReplay {
    /// Runs every record through `candidate` (built with the set to try; its own decision log
    /// receives the replayed records) and returns those that change.
    public static func run(_ records: [DecisionRecord], against candidate: PolicyEngine) -> ReplayReport {
        var report = ReplayReport()
        for record in records {
            report.total += 1
            let replayed = candidate.evaluate(record.input, at: record.time)
            if replayed.result != record.result || replayed.error?.code != record.error?.code {
                report.changes.append(ReplayChange(record: record, replayed: replayed))
            }
        }
        return report
    }
}

extension PolicyResult: CustomStringConvertible {
    /// One line: `allow`, `deny 8.2.3/3.8: …`, `keep`, `drop: …`, `routes: ES2 …; ES4 …`.
    public var description: String {
        switch self {
        case .decision(let d):
            var text: String
            switch d.decision {
            case .allow: text = "allow"
            case .allowWithWarning(let s, let r, let m): text = "warn \(s)/\(r)" + (m.map { ": \($0)" } ?? "")
            case .deny(let s, let r, let m): text = "deny \(s)/\(r)" + (m.map { ": \($0)" } ?? "")
            }
            if !d.autoDelete.isEmpty { text += " (auto-delete \(d.autoDelete.map(\.text).joined(separator: ", ")))" }
            return text
        case .filter(.keep): return "keep"
        case .filter(.drop(let m)): return "drop" + (m.map { ": \($0)" } ?? "")
        case .routes(let routes): return routes.isEmpty ? "no routes" : "routes: " + routes.map(\.description).joined(separator: "; ")
        }
    }
}
