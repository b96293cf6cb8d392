import Testing

@testable import RelayCore

@Suite("Durations")
struct RelayDurationTests {
    @Test(arguments: [
        ("500ms", Int64(500)), ("30s", 30_000), ("10m", 600_000), ("24h", 86_400_000), ("1d", 86_400_000),
        ("0s", 0), ("1h30m", 5_400_000), ("1m500ms", 60_500),
    ])
    func parses(text: String, milliseconds: Int64) throws {
        #expect(try RelayDuration(parsing: text).milliseconds == milliseconds)
    }

    @Test func rejectsWithAClearMessage() {
        func message(_ text: String) -> String? {
            do {
                _ = try RelayDuration(parsing: text)
                return nil
            } catch {
                return error.message
            }
        }
        #expect(message("30") == #""30" has no unit (ms, s, m, h, d)"#)
        #expect(message("10x") == #"unknown unit "x" in "10x" (ms, s, m, h, d)"#)
        #expect(message("10 s") == #"unknown unit " s" in "10 s" (ms, s, m, h, d)"#)
        #expect(message("10S") == #"unknown unit "S" in "10S" (ms, s, m, h, d)"#)
        #expect(message("1.5h") == #"unknown unit "." in "1.5h" (ms, s, m, h, d)"#)
        #expect(message("") == "must be a duration with a unit such as 500ms, 30s, 10m or 24h")
        #expect(message("s") == #""s" is not a duration such as 500ms, 30s, 10m or 24h"#)
        #expect(message("-5s") == #""-5s" is not a duration such as 500ms, 30s, 10m or 24h"#)
        #expect(message("99999999999999999d") == #""99999999999999999d" is too long a duration"#)
    }

    @Test func describesAndConverts() {
        #expect(RelayDuration.hours(24).description == "1d")
        #expect(RelayDuration.minutes(90).description == "90m")
        #expect(RelayDuration.milliseconds(1500).description == "1500ms")
        #expect(RelayDuration.zero.description == "0ms")
        #expect(RelayDuration.seconds(30).duration == .seconds(30))
        #expect(RelayDuration.seconds(1) < .minutes(1))
    }
}
