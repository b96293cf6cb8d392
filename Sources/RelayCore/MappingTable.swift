/// One mapped segment of an event for one destination.
public struct MappedSegment: Sendable, Hashable, CustomStringConvertible {
    public var alias: String
    /// `true` for status 1, `false` for a removal (status 0).
    public var realized: Bool
    public var segment: Int64

    public init(alias: String, realized: Bool, segment: Int64) {
        self.alias = alias
        self.realized = realized
        self.segment = segment
    }

    public var description: String { "\(alias)(\(segment))\(realized ? "" : " removed")" }
}

/// A destination's mappings indexed by segment id, built once per destination and used for every event.
///
/// Entries are stored grouped by segment in a flat array, with a dictionary from segment id to the group's
/// range, so a lookup is one hash probe and allocates nothing. A segment may be mapped several times (different
/// aliases or date ranges); its aliases come out in the order of the configuration.
public struct MappingTable: Sendable, Hashable {
    struct Entry: Sendable, Hashable {
        var alias: String
        var segment: Int64
        var from: Int64
        var until: Int64

        @inline(__always)
        func isActive(at milliseconds: Int64) -> Bool { from <= milliseconds && milliseconds <= until }
    }

    public let mappings: [SegmentMapping]
    private let entries: [Entry]
    private let groups: [Int64: Range<Int>]

    public init(_ mappings: [SegmentMapping]) {
        self.mappings = mappings
        // A stable sort keeps configuration order within a segment.
        let ordered = mappings.enumerated().sorted { ($0.element.segment, $0.offset) < ($1.element.segment, $1.offset) }
        entries = ordered.map { _, mapping in
            Entry(alias: mapping.alias, segment: mapping.segment, from: mapping.activeFrom, until: mapping.activeUntil)
        }
        var groups: [Int64: Range<Int>] = [:]
        var start = 0
        while start < entries.count {
            var end = start + 1
            while end < entries.count, entries[end].segment == entries[start].segment { end += 1 }
            groups[entries[start].segment] = start..<end
            start = end
        }
        self.groups = groups
    }

    public var isEmpty: Bool { mappings.isEmpty }

    /// The segment ids that have at least one mapping (at any time).
    public var segments: Set<Int64> { Set(groups.keys) }

    /// The event's mapped segments at the event's own `ts`, in the order of the event's segment list.
    public func map(_ qualification: Qualification) -> [MappedSegment] {
        map(qualification.segments, at: qualification.timestamp)
    }

    /// The mapped segments of `segments` at `milliseconds` since the epoch, in the order of `segments` (and of the
    /// configuration for a segment mapped more than once).
    public func map(_ segments: [SegmentState], at milliseconds: Int64) -> [MappedSegment] {
        var result: [MappedSegment] = []
        for state in segments {
            guard let group = groups[state.id] else { continue }
            for entry in entries[group] where entry.isActive(at: milliseconds) {
                result.append(MappedSegment(alias: entry.alias, realized: state.realized, segment: state.id))
            }
        }
        return result
    }

    /// The aliases of `segment` active at `milliseconds`, in configuration order.
    public func aliases(for segment: Int64, at milliseconds: Int64) -> [String] {
        guard let group = groups[segment] else { return [] }
        return entries[group].filter { $0.isActive(at: milliseconds) }.map(\.alias)
    }

    /// Whether any of the event's segments has a mapping active at its `ts`: the destination cares about the event.
    public func matches(_ qualification: Qualification) -> Bool {
        qualification.segments.contains { state in
            guard let group = groups[state.id] else { return false }
            return entries[group].contains { $0.isActive(at: qualification.timestamp) }
        }
    }
}
