// Decision records: every evaluation is recorded with its input, result, bundle version, time
// and duration, through the `DecisionLog` interface. Here: an in-memory ring and a JSON-lines
// file (enough for `m2mrsp policy replay`); the SQLite log comes with the SM-SR.

import Foundation
public import M2MCore
import Synchronization

/// One recorded evaluation. Copies share one immutable storage (logging a record is one
/// reference, not a copy of its parts).
public struct DecisionRecord: Sendable, Hashable, Codable {
    private final class Storage: Sendable {
        let sequence: UInt64
        let time: Timestamp
        let hook: PolicyHook
        let bundle: BundleID?
        let input: PolicyInput
        let result: PolicyResult
        let error: PolicyError?
        let decidedBy: String?
        let durationNanoseconds: Int64

        init(
            sequence: UInt64, time: Timestamp, hook: PolicyHook, bundle: BundleID?, input: PolicyInput, result: PolicyResult,
            error: PolicyError?, decidedBy: String?, durationNanoseconds: Int64
        ) {
            self.sequence = sequence
            self.time = time
            self.hook = hook
            self.bundle = bundle
            self.input = input
            self.result = result
            self.error = error
            self.decidedBy = decidedBy
            self.durationNanoseconds = durationNanoseconds
        }
    }

    private let storage: Storage

    /// Increasing per engine.
    public var sequence: UInt64 { storage.sequence }
    /// The instant the policy saw (`m2m.clock`); replays run at this instant.
    public var time: Timestamp { storage.time }
    public var hook: PolicyHook { storage.hook }
    /// The bundle version that decided (nil when no bundle applied).
    public var bundle: BundleID? { storage.bundle }
    public var input: PolicyInput { storage.input }
    /// The result that took effect (after the failure mode, when the policy failed).
    public var result: PolicyResult { storage.result }
    /// Why the policy failed, if it did (the result then comes from the failure mode).
    public var error: PolicyError? { storage.error }
    /// The layer that decided (deny, warning, drop) or failed.
    public var decidedBy: String? { storage.decidedBy }
    public var durationNanoseconds: Int64 { storage.durationNanoseconds }

    public init(
        sequence: UInt64, time: Timestamp, hook: PolicyHook, bundle: BundleID?, input: PolicyInput, result: PolicyResult,
        error: PolicyError?, decidedBy: String?, durationNanoseconds: Int64
    ) {
        storage = Storage(
            sequence: sequence, time: time, hook: hook, bundle: bundle, input: input, result: result, error: error,
            decidedBy: decidedBy, durationNanoseconds: durationNanoseconds)
    }

    public static func == (a: DecisionRecord, b: DecisionRecord) -> Bool {
        a.storage === b.storage
            || (a.sequence == b.sequence && a.time == b.time && a.hook == b.hook && a.bundle == b.bundle && a.input == b.input
                && a.result == b.result && a.error == b.error && a.decidedBy == b.decidedBy
                && a.durationNanoseconds == b.durationNanoseconds)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(sequence)
        hasher.combine(time)
        hasher.combine(input)
    }

    /// The digest of the input (XXH64 of its encoding).
    public var inputDigest: String { input.digest }

    private enum CodingKeys: String, CodingKey {
        case sequence, time, hook, bundle, inputDigest = "input_digest", input, result, error, decidedBy = "decided_by"
        case durationNanoseconds = "duration_ns"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            sequence: try c.decode(UInt64.self, forKey: .sequence), time: try c.decode(Timestamp.self, forKey: .time),
            hook: try c.decode(PolicyHook.self, forKey: .hook), bundle: try c.decodeIfPresent(BundleID.self, forKey: .bundle),
            input: try c.decode(PolicyInput.self, forKey: .input), result: try c.decode(PolicyResult.self, forKey: .result),
            error: try c.decodeIfPresent(PolicyError.self, forKey: .error),
            decidedBy: try c.decodeIfPresent(String.self, forKey: .decidedBy),
            durationNanoseconds: try c.decode(Int64.self, forKey: .durationNanoseconds))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sequence, forKey: .sequence)
        try c.encode(time, forKey: .time)
        try c.encode(hook, forKey: .hook)
        try c.encodeIfPresent(bundle, forKey: .bundle)
        try c.encode(inputDigest, forKey: .inputDigest)
        try c.encode(input, forKey: .input)
        try c.encode(result, forKey: .result)
        try c.encodeIfPresent(error, forKey: .error)
        try c.encodeIfPresent(decidedBy, forKey: .decidedBy)
        try c.encode(durationNanoseconds, forKey: .durationNanoseconds)
    }
}

/// Where decision records go. `record` is called on the decision path: keep it cheap.
public protocol DecisionLog: Sendable {
    func record(_ record: DecisionRecord)
}

/// Keeps the last `capacity` records in memory.
public final class InMemoryDecisionLog: DecisionLog {
    private struct Ring {
        var items: [DecisionRecord] = []
        var next = 0
        var total: UInt64 = 0
    }

    public let capacity: Int
    private let ring = Mutex(Ring())

    public init(capacity: Int = 10_000) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    public func record(_ record: DecisionRecord) {
        ring.withLock { r in
            r.total += 1
            if r.items.count < capacity {
                r.items.append(record)
            } else {
                r.items[r.next] = record
                r.next = (r.next + 1) % capacity
            }
        }
    }

    /// The records kept, oldest first.
    public var records: [DecisionRecord] {
        ring.withLock { r in Array(r.items[r.next...] + r.items[..<r.next]) }
    }

    /// How many records were ever logged (kept or overwritten).
    public var total: UInt64 { ring.withLock { $0.total } }
}

/// Appends one JSON object per line to a file (`m2mrsp policy replay --log FILE` reads it).
/// Lines are buffered and written every `flushEvery` records, on `flush()` and on deinit.
public final class JSONLinesDecisionLog: DecisionLog {
    private struct Writer: ~Copyable {
        var handle: FileHandle
        var pending: [DecisionRecord] = []
    }

    public let path: String
    private let flushEvery: Int
    private let writer: Mutex<Writer>

    public init(path: String, flushEvery: Int = 64) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw PolicyError(code: .internalError, message: "cannot create \(path)")
            }
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        self.path = path
        self.flushEvery = max(1, flushEvery)
        writer = Mutex(Writer(handle: handle))
    }

    deinit { flush() }

    public func record(_ record: DecisionRecord) {
        let full = writer.withLock { w -> Bool in
            w.pending.append(record)
            return w.pending.count >= flushEvery
        }
        if full { flush() }
    }

    /// Writes the buffered records.
    public func flush() {
        writer.withLock { w in
            guard !w.pending.isEmpty else { return }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var data = Data()
            for record in w.pending {
                if let line = try? encoder.encode(record) {
                    data.append(line)
                    data.append(0x0A)
                }
            }
            w.pending.removeAll(keepingCapacity: true)
            try? w.handle.write(contentsOf: data)
        }
    }

    /// Reads every record of a JSON-lines file.
    public static func read(path: String) throws -> [DecisionRecord] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PolicyError(code: .internalError, message: "cannot read \(path)")
        }
        let decoder = JSONDecoder()
        var records: [DecisionRecord] = []
        for (i, line) in data.split(separator: 0x0A).enumerated() where !line.isEmpty {
            do {
                records.append(try decoder.decode(DecisionRecord.self, from: Data(line)))
            } catch {
                throw PolicyError(code: .invalidInput, message: "\(path):\(i + 1): \(error)")
            }
        }
        return records
    }
}

/// Discards records (benchmarks of the bare decision path, or when recording is off).
public struct NoDecisionLog: DecisionLog {
    public init() {}
    public func record(_ record: DecisionRecord) {}
}
