// What `m2mrsp trace` prints: one entry per decoded unit (an APDU, a script item, a packet, a TLV),
// each with its checks; a closing summary with the first failure. Text by default, JSON for tools.

import Foundation

/// One verification: passed, failed (with why), or skipped (with what was missing).
public struct TraceCheck: Sendable, Hashable, Codable {
    public enum Outcome: String, Sendable, Hashable, Codable {
        case passed, failed, skipped
    }

    public var name: String
    public var outcome: Outcome
    public var reason: String?

    public static func passed(_ name: String, _ reason: String? = nil) -> TraceCheck { TraceCheck(name: name, outcome: .passed, reason: reason) }
    public static func failed(_ name: String, _ reason: String) -> TraceCheck { TraceCheck(name: name, outcome: .failed, reason: reason) }
    public static func skipped(_ name: String, _ reason: String) -> TraceCheck { TraceCheck(name: name, outcome: .skipped, reason: reason) }
}

/// One decoded unit of the capture.
public struct TraceEntry: Sendable, Hashable, Codable {
    /// 1-based index of the exchange in the capture, and its line in the file.
    public var exchange: Int
    public var line: Int
    public var direction: TraceDirection
    public var layer: TraceLayer
    /// What it is: "STORE DATA → ISD-P A0…: DGI 3A01 …".
    public var title: String
    public var details: [String]
    public var checks: [TraceCheck]
    public var note: String?
}

/// One Profile Element of the reassembled package.
public struct TraceProfileElement: Sendable, Hashable, Codable {
    public var index: Int
    public var type: String
    public var identification: Int?
    public var size: Int
}

public struct TraceSummary: Sendable, Hashable, Codable {
    public var exchanges: Int
    public var entries: Int
    public var passed: Int
    public var failed: Int
    public var skipped: Int
    /// The first failed check: exchange, line, check and reason.
    public var firstFailure: FirstFailure?

    public struct FirstFailure: Sendable, Hashable, Codable {
        public var exchange: Int
        public var line: Int
        public var check: String
        public var reason: String
    }
}

public struct TraceReport: Sendable, Hashable, Codable {
    public var entries: [TraceEntry]
    /// The decrypted profile package's elements, when an SCP03t download was decrypted.
    public var profileElements: [TraceProfileElement]
    /// Its header: version, ICCID, Profile Type, mandated services.
    public var profileHeader: [String] = []
    public var summary: TraceSummary
    /// The decrypted profile package bytes (not in the JSON output: `--extract-profile` writes them).
    public var profilePackage: [UInt8]?

    enum CodingKeys: String, CodingKey { case entries, profileElements, profileHeader, summary }

    public var hasFailures: Bool { summary.failed > 0 }

    /// The readable listing.
    public func text() -> String {
        var out = ""
        for entry in entries {
            let arrow = entry.direction == .toCard ? "→" : "←"
            out += "#\(entry.exchange) (line \(entry.line)) \(arrow) [\(entry.layer.rawValue)] \(entry.title)\n"
            if let note = entry.note { out += "    note: \(note)\n" }
            for detail in entry.details { out += "    \(detail)\n" }
            for check in entry.checks {
                let mark = switch check.outcome {
                case .passed: "✓"
                case .failed: "✗"
                case .skipped: "–"
                }
                out += "    \(mark) \(check.name)\(check.reason.map { ": \($0)" } ?? "")\n"
            }
        }
        if !profileElements.isEmpty {
            out += "Profile package (\(profileElements.count) elements):\n"
            for line in profileHeader { out += "    \(line)\n" }
            for element in profileElements {
                out += "    PE \(element.index) \(element.type)\(element.identification.map { " id \($0)" } ?? ""), \(element.size) bytes\n"
            }
        }
        let s = summary
        out += "Summary: \(s.exchanges) exchanges, \(s.entries) entries decoded; checks: \(s.passed) passed, \(s.failed) failed, \(s.skipped) skipped\n"
        if let first = s.firstFailure {
            out += "First failure: exchange #\(first.exchange) (line \(first.line)): \(first.check): \(first.reason)\n"
        } else {
            out += "No check failed.\n"
        }
        return out
    }

    /// The JSON form (entries, profile elements, summary).
    public func json() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self)) + [0x0A]
    }
}
