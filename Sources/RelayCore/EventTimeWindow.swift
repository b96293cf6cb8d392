/// Which times from outside a worker accepts (`input:` in relay.yaml): an event's `ts` and a Kafka record's
/// timestamp must lie within `[now − max_event_age, now + max_clock_skew]`. A record outside is malformed: it is
/// dead-lettered with the reason, never used. That catches the usual mistakes (seconds or microseconds instead of
/// milliseconds, 0, a clock years off) and keeps every later sum of times far from `Int64` overflow, whatever a
/// producer wrote.
///
/// The defaults are wide on purpose (ten years back, a year ahead), so that replays of old data and test fixtures
/// pass; narrow them where producers are trusted to keep good clocks.
public struct EventTimeWindow: Sendable, Hashable {
    public var maxEventAge: RelayDuration
    public var maxClockSkew: RelayDuration

    public init(maxEventAge: RelayDuration = .days(3650), maxClockSkew: RelayDuration = .days(366)) {
        self.maxEventAge = maxEventAge
        self.maxClockSkew = maxClockSkew
    }

    /// Why `time` (ms since the epoch, named `field` in the reason) is refused at `now`; nil when accepted.
    public func problem(_ time: Int64, field: String, now: Int64) -> String? {
        let earliest = now.subtractingReportingOverflow(maxEventAge.milliseconds)
        let latest = now.addingReportingOverflow(maxClockSkew.milliseconds)
        if !earliest.overflow, time < earliest.partialValue {
            return "\(field): \(time) is more than \(maxEventAge) before now (ms since the epoch expected)"
        }
        if !latest.overflow, time > latest.partialValue {
            return "\(field): \(time) is more than \(maxClockSkew) after now (ms since the epoch expected)"
        }
        return nil
    }

    /// The event's `ts` and the record's timestamp, checked together.
    public func problem(eventTime: Int64, recordTime: Int64, now: Int64) -> String? {
        problem(eventTime, field: "ts", now: now) ?? problem(recordTime, field: "Kafka record timestamp", now: now)
    }
}

extension Int64 {
    /// `self + other`, pinned to `Int64.min`/`.max` instead of trapping. The rule for every sum that involves a time,
    /// count or size that came from outside: `grep -rn saturating Sources` lists them.
    public func saturatingAdd(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    public func saturatingSubtract(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other > 0 ? .min : .max) : difference
    }

    public func saturatingMultiply(_ other: Int64) -> Int64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) == (other < 0) ? .max : .min) : product
    }
}
