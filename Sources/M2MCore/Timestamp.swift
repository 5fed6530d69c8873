// xs:dateTime values (MessageDate, ProcessingStart/End, CompletionTimestamp, ProductionDate …).
// Stored as an instant (seconds and nanoseconds since 1970-01-01T00:00:00Z). Parsing accepts any
// time-zone offset, or none (taken as UTC: docs/wire.md); output is always UTC with `Z`, with the
// fraction written only when it is not zero, without trailing zeros. No Foundation on this path.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An instant on the wire as xs:dateTime.
public struct Timestamp: TextRepresentable, Comparable {
    /// Whole seconds since the Unix epoch.
    public var seconds: Int64
    /// Nanoseconds within the second (0 ..< 1_000_000_000).
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32 = 0) {
        precondition((0..<1_000_000_000).contains(nanoseconds))
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        (lhs.seconds, lhs.nanoseconds) < (rhs.seconds, rhs.nanoseconds)
    }

    public init(text: String) throws(IdentifierError) {
        let parsed = text.utf8.withContiguousStorageIfAvailable { Timestamp.parse($0) }
            ?? Array(text.utf8).withUnsafeBufferPointer { Timestamp.parse($0) }
        guard let value = parsed else { throw .invalidValue("dateTime", text) }
        self = value
    }

    /// Parses xs:dateTime text given as UTF-8 bytes; nil when it is not one (`init(text:)` says why).
    public init?(utf8 text: UnsafeBufferPointer<UInt8>) {
        guard let value = Timestamp.parse(text) else { return nil }
        self = value
    }

    public var text: String {
        withUTF8Text { String(decoding: $0, as: UTF8.self) }
    }

    /// Room that `write(utf8Into:)` needs: a sign, a 12-digit year (the most `seconds` can hold) and the rest of
    /// `-MM-DDThh:mm:ss.nnnnnnnnnZ`, rounded up.
    public static let maxUTF8TextLength = 48

    /// Calls `body` with `text` as UTF-8, written into a temporary buffer (no `String` is made).
    @inlinable
    public func withUTF8Text<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Timestamp.maxUTF8TextLength) { buffer in
            let count = write(utf8Into: buffer.baseAddress!)
            return body(UnsafeBufferPointer(start: buffer.baseAddress, count: count))
        }
    }

    /// Writes `text` as UTF-8 at `out`, which must have room for `maxUTF8TextLength` bytes; returns the length.
    public func write(utf8Into out: UnsafeMutablePointer<UInt8>) -> Int {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = Timestamp.civil(fromDays: days)
        let nanoseconds = Int(self.nanoseconds)
        var n = 0
        if year < 0 {
            out[n] = 0x2D
            n += 1
        }
        Timestamp.put(Int(year.magnitude), width: 4, into: out, at: &n)
        out[n] = 0x2D
        n += 1
        Timestamp.put(month, width: 2, into: out, at: &n)
        out[n] = 0x2D
        n += 1
        Timestamp.put(day, width: 2, into: out, at: &n)
        out[n] = 0x54
        n += 1
        Timestamp.put(secondOfDay / 3600, width: 2, into: out, at: &n)
        out[n] = 0x3A
        n += 1
        Timestamp.put(secondOfDay / 60 % 60, width: 2, into: out, at: &n)
        out[n] = 0x3A
        n += 1
        Timestamp.put(secondOfDay % 60, width: 2, into: out, at: &n)
        if nanoseconds != 0 {
            out[n] = 0x2E
            n += 1
            var fraction = nanoseconds
            var width = 9
            while fraction % 10 == 0 {
                fraction /= 10
                width -= 1
            }
            Timestamp.put(fraction, width: width, into: out, at: &n)
        }
        out[n] = 0x5A
        n += 1
        return n
    }

    /// Writes `value` (non-negative) in decimal, zero-padded to `width` digits, at `out[n...]`.
    private static func put(_ value: Int, width: Int, into out: UnsafeMutablePointer<UInt8>, at n: inout Int) {
        var length = 1
        var rest = value / 10
        while rest > 0 {
            length += 1
            rest /= 10
        }
        let total = max(width, length)
        var v = value
        var index = n + total - 1
        while index >= n {
            out[index] = UInt8(truncatingIfNeeded: v % 10) + 0x30
            v /= 10
            index -= 1
        }
        n += total
    }

    /// Adds a number of seconds.
    public func adding(seconds delta: Int64) -> Timestamp {
        Timestamp(seconds: seconds + delta, nanoseconds: nanoseconds)
    }

    // MARK: Parsing

    static func parse(_ b: UnsafeBufferPointer<UInt8>) -> Timestamp? {
        var i = 0
        func number(_ count: Int) -> Int? {
            guard i + count <= b.count else { return nil }
            var value = 0
            for k in i..<(i + count) {
                guard b[k] >= 0x30 && b[k] <= 0x39 else { return nil }
                value = value * 10 + Int(b[k] - 0x30)
            }
            i += count
            return value
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        var negativeYear = false
        if i < b.count, b[i] == 0x2D {
            negativeYear = true
            i += 1
        }
        var yearDigits = 0
        while i + yearDigits < b.count, b[i + yearDigits] >= 0x30, b[i + yearDigits] <= 0x39 { yearDigits += 1 }
        guard yearDigits >= 4, yearDigits <= 9, let yearValue = number(yearDigits) else { return nil }
        guard expect(0x2D), let month = number(2), expect(0x2D), let day = number(2), expect(0x54),
            let hour = number(2), expect(0x3A), let minute = number(2), expect(0x3A), let second = number(2)
        else { return nil }
        var nanos = 0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var digits = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                if digits < 9 { nanos = nanos * 10 + Int(b[i] - 0x30) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            if digits < 9 {
                for _ in digits..<9 { nanos *= 10 }
            }
        }
        var offsetSeconds = 0
        if i < b.count {
            if b[i] == 0x5A {
                i += 1
            } else if b[i] == 0x2B || b[i] == 0x2D {
                let sign = b[i] == 0x2D ? -1 : 1
                i += 1
                guard let oh = number(2), expect(0x3A), let om = number(2), oh <= 14, om <= 59 else { return nil }
                offsetSeconds = sign * (oh * 3600 + om * 60)
            } else {
                return nil
            }
        }
        guard i == b.count else { return nil }
        let year = negativeYear ? -yearValue : yearValue
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            (hour < 24 && minute < 60 && second < 60) || (hour == 24 && minute == 0 && second == 0 && nanos == 0)
        else { return nil }
        let days = daysFromCivil(year: Int64(year), month: month, day: day)
        let total = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetSeconds)
        return Timestamp(seconds: total, nanoseconds: Int32(nanos))
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days.
    static func daysFromCivil(year: Int64, month: Int, day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (Int64, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = Int(doy - (153 * mp + 2) / 5 + 1)
        let month = Int(mp < 10 ? mp + 3 : mp - 9)
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}

/// Where time comes from. Production uses `SystemClock`; tests use a fixed or stepped clock.
public protocol Clock: Sendable {
    func now() -> Timestamp
}

/// The system's real-time clock.
public struct SystemClock: Clock {
    public init() {}
    public func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(seconds: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec))
    }
}

/// A clock that always reads the same instant (tests, replays, `policy test`).
public struct FixedClock: Clock {
    public var instant: Timestamp
    public init(_ instant: Timestamp) { self.instant = instant }
    public func now() -> Timestamp { instant }
}
