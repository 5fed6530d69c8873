import M2MCore
import Testing

@Suite("xs:dateTime")
struct TimestampTests {
    @Test("Parses offsets, fractions and leap days; writes UTC with Z", arguments: [
        ("2026-11-27T10:15:30Z", "2026-11-27T10:15:30Z"),
        ("2026-11-27T12:15:30+02:00", "2026-11-27T10:15:30Z"),
        ("2026-11-27T10:15:30.250Z", "2026-11-27T10:15:30.25Z"),
        ("2026-11-27T10:15:30.000Z", "2026-11-27T10:15:30Z"),
        ("2026-11-27T10:15:30", "2026-11-27T10:15:30Z"),
        ("2024-02-29T23:59:59-00:30", "2024-03-01T00:29:59Z"),
        ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"),
        ("2000-01-01T24:00:00Z", "2000-01-02T00:00:00Z"),
        ("2018-12-19T02:44:49.123456789123Z", "2018-12-19T02:44:49.123456789Z"),
    ])
    func roundTrip(input: String, output: String) throws {
        #expect(try Timestamp(text: input).text == output)
    }

    @Test("Rejects what xs:dateTime does not allow", arguments: [
        "", "2026-11-27", "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2026-11-27T25:00:00Z",
        "2026-11-27T10:15:60Z", "2026-11-27 10:15:30Z", "2026-11-27T10:15:30.Z", "2026-11-27T10:15:30+2:00",
        "26-11-27T10:15:30Z", "2026-11-27T10:15:30Zjunk",
    ])
    func rejects(input: String) {
        #expect(throws: IdentifierError(code: .invalidValue)) { try Timestamp(text: input) }
    }

    @Test("Epoch arithmetic and ordering")
    func epoch() throws {
        let t = try Timestamp(text: "1970-01-01T00:00:00Z")
        #expect(t.seconds == 0)
        #expect(t.adding(seconds: 86_400).text == "1970-01-02T00:00:00Z")
        #expect(try Timestamp(text: "2026-01-01T00:00:00Z") < Timestamp(text: "2026-01-01T00:00:00.5Z"))
        #expect(SystemClock().now().seconds > 1_700_000_000)
        #expect(FixedClock(t).now() == t)
    }
}
