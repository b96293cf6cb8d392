import Testing

@testable import RelayCore

@Suite("Segment mappings")
struct MappingTableTests {
    /// 2026-01-01T00:00:00Z
    static let newYear2026: Int64 = 1_767_225_600_000
    static let day: Int64 = 86_400_000

    @Test func calendarDates() throws {
        #expect(CalendarDate("1970-01-01")?.startMilliseconds == 0)
        #expect(CalendarDate("2026-01-01")?.startMilliseconds == Self.newYear2026)
        #expect(CalendarDate("2024-02-29") != nil)
        #expect(CalendarDate("2026-02-29") == nil)
        #expect(CalendarDate("2026-1-01") == nil)
        #expect(CalendarDate("2026-00-10") == nil)
        #expect(CalendarDate("2026-12-32") == nil)
        #expect(CalendarDate("20260101") == nil)
        #expect(CalendarDate("1969-12-31")?.startMilliseconds == -Self.day)
        #expect(CalendarDate("2000-03-01")?.daysSinceEpoch == 11_017)
        #expect(try #require(CalendarDate("2026-01-01")) < #require(CalendarDate("2026-01-02")))
        #expect(CalendarDate("2026-07-04")?.description == "2026-07-04")
    }

    @Test func datesAreInclusiveInUTC() throws {
        let mapping = SegmentMapping(
            segment: 99, alias: "acme-99", start: CalendarDate("2026-01-01"), end: CalendarDate("2027-01-01"))
        let start = Self.newYear2026
        let endOfLastDay = try #require(CalendarDate("2027-01-02")).startMilliseconds - 1
        #expect(!mapping.isActive(at: start - 1))
        #expect(mapping.isActive(at: start))
        #expect(mapping.isActive(at: start + 180 * Self.day))
        #expect(mapping.isActive(at: endOfLastDay), "the whole end day counts")
        #expect(!mapping.isActive(at: endOfLastDay + 1))
    }

    @Test func openEndedAndSingleDay() throws {
        #expect(SegmentMapping(segment: 1).isActive(at: .min))
        #expect(SegmentMapping(segment: 1).isActive(at: .max))
        let from = SegmentMapping(segment: 1, start: CalendarDate("2026-01-01"))
        #expect(!from.isActive(at: Self.newYear2026 - 1) && from.isActive(at: .max))
        let until = SegmentMapping(segment: 1, end: CalendarDate("2026-01-01"))
        #expect(until.isActive(at: 0) && until.isActive(at: Self.newYear2026 + Self.day - 1))
        #expect(!until.isActive(at: Self.newYear2026 + Self.day))
        let oneDay = SegmentMapping(segment: 1, start: CalendarDate("2026-01-01"), end: CalendarDate("2026-01-01"))
        #expect(oneDay.isActive(at: Self.newYear2026) && oneDay.isActive(at: Self.newYear2026 + Self.day - 1))
        let reversed = SegmentMapping(segment: 1, start: CalendarDate("2026-01-02"), end: CalendarDate("2026-01-01"))
        #expect(!reversed.isActive(at: Self.newYear2026 + Self.day))
        #expect(MappingTable([reversed]).map([.realized(1)], at: Self.newYear2026 + Self.day).isEmpty)
    }

    @Test func aliasDefaultsToTheSegmentID() {
        #expect(SegmentMapping(segment: 4532).alias == "4532")
    }

    @Test func mapsInEventOrderWithRemovals() {
        let table = MappingTable([
            SegmentMapping(segment: 99, alias: "acme-99"),
            SegmentMapping(segment: 4532, alias: "acme-4532"),
            SegmentMapping(segment: 7, alias: "unused"),
        ])
        let event = Qualification(
            eventID: "e", uuid: "u", timestamp: Self.newYear2026,
            segments: [.realized(4532), .realized(1), .removed(99)])
        #expect(
            table.map(event) == [
                MappedSegment(alias: "acme-4532", realized: true, segment: 4532),
                MappedSegment(alias: "acme-99", realized: false, segment: 99),
            ])
        #expect(table.matches(event))
        #expect(!table.matches(Qualification(eventID: "e", uuid: "u", timestamp: 0, segments: [.realized(5)])))
        #expect(table.segments == [99, 4532, 7])
    }

    @Test func segmentMappedMoreThanOnce() {
        let table = MappingTable([
            SegmentMapping(segment: 5, alias: "b"),
            SegmentMapping(segment: 6, alias: "x"),
            SegmentMapping(segment: 5, alias: "a"),
            SegmentMapping(segment: 5, alias: "later", start: CalendarDate("2030-01-01")),
        ])
        let mapped = table.map([.realized(6), .realized(5)], at: Self.newYear2026)
        #expect(mapped.map(\.alias) == ["x", "b", "a"], "event order, then configuration order")
        #expect(table.aliases(for: 5, at: Self.newYear2026) == ["b", "a"])
        #expect(table.aliases(for: 5, at: .max) == ["b", "a", "later"])
        #expect(table.aliases(for: 8, at: 0).isEmpty)
    }

    @Test func onlyMappingsActiveAtTheEventTime() throws {
        let table = MappingTable([
            SegmentMapping(segment: 99, alias: "2026", start: CalendarDate("2026-01-01"), end: CalendarDate("2026-12-31")),
            SegmentMapping(segment: 99, alias: "2027", start: CalendarDate("2027-01-01")),
        ])
        let late2026 = try #require(CalendarDate("2026-12-31")).endMilliseconds
        #expect(table.map([.realized(99)], at: late2026).map(\.alias) == ["2026"])
        #expect(table.map([.realized(99)], at: late2026 + 1).map(\.alias) == ["2027"])
        #expect(table.map([.realized(99)], at: Self.newYear2026 - 1).isEmpty)
        let event = Qualification(eventID: "e", uuid: "u", timestamp: Self.newYear2026 - 1, segments: [.realized(99)])
        #expect(!table.matches(event))
    }

    @Test func destinationKeepsItsTableInStep() {
        var destination = Destination(
            id: 1, name: "d", kind: .cookie(CookieSettings(cookieName: "c", key: "k")),
            mappings: [SegmentMapping(segment: 1)])
        let event = Qualification(eventID: "e", uuid: "u", timestamp: 0, segments: [.realized(1), .realized(2)])
        #expect(destination.mapped(event).map(\.alias) == ["1"])
        destination.mappings.append(SegmentMapping(segment: 2, alias: "two"))
        #expect(destination.mapped(event).map(\.alias) == ["1", "two"])
        #expect(destination.mappingTable.mappings == destination.mappings)
    }

    @Test func exampleConfigurationMapping() throws {
        let config = try RelayConfig.parse(yaml: specExampleYAML, environment: specExampleEnvironment)
        let acme = try #require(config.destination(id: 5001))
        let event = Qualification(
            eventID: "ev-42", uuid: "u", timestamp: 1_795_982_000_000, segments: [.realized(4532), .removed(99)])
        // 1795982000000 is 2026-11-29, inside 99's dates.
        #expect(acme.mapped(event).map(\.description) == ["acme-4532(4532)", "acme-99(99) removed"])
        var before = event
        before.timestamp = Self.newYear2026 - 1
        #expect(acme.mapped(before).map(\.alias) == ["acme-4532"])
    }

    @Test func largeTable() {
        let mappings = (1...20_000).map { SegmentMapping(segment: Int64($0), alias: "a\($0)") }
        let table = MappingTable(mappings)
        let segments = (1...10_000).map { SegmentState.realized(Int64($0 * 2)) }
        let mapped = table.map(segments, at: 0)
        #expect(mapped.count == 10_000)
        #expect(mapped.first?.alias == "a2" && mapped.last?.alias == "a20000")
    }
}
