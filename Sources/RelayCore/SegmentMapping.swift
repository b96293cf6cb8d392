/// Maps a platform segment to the partner's alias for it, optionally only between two dates (inclusive, UTC).
public struct SegmentMapping: Sendable, Hashable {
    public var segment: Int64
    /// What the partner receives; defaults to the segment id as text.
    public var alias: String
    /// First day the mapping counts, from 00:00:00.000 UTC.
    public var start: CalendarDate?
    /// Last day the mapping counts, until 23:59:59.999 UTC.
    public var end: CalendarDate?

    public init(segment: Int64, alias: String? = nil, start: CalendarDate? = nil, end: CalendarDate? = nil) {
        self.segment = segment
        self.alias = alias ?? String(segment)
        self.start = start
        self.end = end
    }

    /// First millisecond (since the epoch) the mapping counts.
    var activeFrom: Int64 { start?.startMilliseconds ?? .min }
    /// Last millisecond the mapping counts; before `activeFrom` when the dates are reversed (never active).
    var activeUntil: Int64 { end?.endMilliseconds ?? .max }

    /// Whether the mapping counts at `milliseconds` since the epoch (an event's `ts`).
    public func isActive(at milliseconds: Int64) -> Bool {
        activeFrom <= milliseconds && milliseconds <= activeUntil
    }
}
