/// When a batch destination cuts (SPEC §5): the multiples of `every` since the Unix epoch, shifted by `at`.
///
/// A record belongs to the first cut time strictly after its Kafka timestamp, so a cut at `T` covers the records
/// stamped before `T`. Everything here is arithmetic on milliseconds, so replays of the same records agree.
public struct CutSchedule: Sendable, Hashable {
    /// The period, in ms (at least 1).
    public let every: Int64
    /// The shift of the cut times, in ms, in `0..<every`.
    public let offset: Int64

    public init(every: Int64, offset: Int64 = 0) {
        let every = max(1, every)
        self.every = every
        self.offset = ((offset % every) + every) % every
    }

    public init(_ settings: BatchSettings) {
        self.init(every: settings.every.milliseconds, offset: settings.cutOffset.milliseconds)
    }

    /// The cut a record stamped `timestamp` belongs to: the first cut time `> timestamp`.
    public func cut(containing timestamp: Int64) -> Int64 {
        floorCut(timestamp) + every
    }

    /// The latest cut time `<= time`.
    public func floorCut(_ time: Int64) -> Int64 {
        let shifted = time - offset
        // Floor division, also right for times before the epoch.
        let quotient = shifted >= 0 ? shifted / every : -((-shifted + every - 1) / every)
        return quotient * every + offset
    }

    /// The cut after `cut` (which must be a cut time).
    public func next(after cut: Int64) -> Int64 { cut + every }

    /// Whether `time` is a cut time of this schedule.
    public func isCutTime(_ time: Int64) -> Bool { floorCut(time) == time }
}
