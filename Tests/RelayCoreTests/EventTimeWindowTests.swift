import RelayCore
import Testing

@Suite struct EventTimeWindowTests {
    let now: Int64 = 1_796_000_000_000
    let window = EventTimeWindow()

    @Test(arguments: [Int64.min, -1, 0, 1_796_000_000, 1_796_000_000_000_000, Int64.max])
    func refusesTimesFarFromNow(_ time: Int64) {
        #expect(window.problem(time, field: "ts", now: now) != nil)
    }

    @Test func acceptsTheRecentPastAndSmallSkew() {
        #expect(window.problem(now, field: "ts", now: now) == nil)
        #expect(window.problem(now - 86_400_000 * 365, field: "ts", now: now) == nil)
        #expect(window.problem(now + 3_600_000, field: "ts", now: now) == nil)
    }

    @Test func anyClockValueIsSafe() {
        for clock in [Int64.min, Int64.max, 0] {
            _ = window.problem(0, field: "ts", now: clock)
            _ = window.problem(eventTime: .max, recordTime: .min, now: clock)
        }
        #expect(Int64.max.saturatingAdd(1) == .max && Int64.min.saturatingSubtract(1) == .min)
        #expect(Int64.max.saturatingMultiply(-2) == .min && Int64(-3).saturatingMultiply(-4) == 12)
    }

    @Test func configuredDurationsHaveACeiling() throws {
        #expect(throws: RelayDuration.ParseError.self) { try RelayDuration(parsing: "36501d") }
        #expect(try RelayDuration(parsing: "36500d") == RelayDuration.longest)
    }
}
