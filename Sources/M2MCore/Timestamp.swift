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
        guard let value = Timestamp.parse(Array(text.utf8)) else { throw .invalidValue("dateTime", text) }
        self = value
    }

    public var text: String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = Timestamp.civil(fromDays: days)
        var out: [UInt8] = []
        out.reserveCapacity(30)
        if year < 0 { out.append(0x2D) }
        Timestamp.append(Int(year.magnitude), width: 4, to: &out)
        out.append(0x2D)
        Timestamp.append(month, width: 2, to: &out)
        out.append(0x2D)
        Timestamp.append(day, width: 2, to: &out)
        out.append(0x54)
        Timestamp.append(secondOfDay / 3600, width: 2, to: &out)
        out.append(0x3A)
        Timestamp.append(secondOfDay / 60 % 60, width: 2, to: &out)
        out.append(0x3A)
        Timestamp.append(secondOfDay % 60, width: 2, to: &out)
        if nanoseconds != 0 {
            out.append(0x2E)
            var fraction = Int(nanoseconds)
            var width = 9
            while fraction % 10 == 0 {
                fraction /= 10
                width -= 1
            }
            Timestamp.append(fraction, width: width, to: &out)
        }
        out.append(0x5A)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `value` in decimal, zero-padded to `width` digits.
    static func append(_ value: Int, width: Int, to out: inout [UInt8]) {
        var digits: [UInt8] = []
        var v = value
        repeat {
            digits.append(UInt8(v % 10) + 0x30)
            v /= 10
        } while v > 0
        for _ in digits.count..<max(width, digits.count) { out.append(0x30) }
        out.append(contentsOf: digits.reversed())
    }

    /// Adds a number of seconds.
    public func adding(seconds delta: Int64) -> Timestamp {
        Timestamp(seconds: seconds + delta, nanoseconds: nanoseconds)
    }

    // MARK: Parsing

    static func parse(_ b: [UInt8]) -> Timestamp? {
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
