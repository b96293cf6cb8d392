import RelayCore
import Testing
@testable import RelayPixelAudit

/// The pixel table against a Dictionary doing the same: lookups after growth and removals (backward-shift deletion
/// must keep every other key findable), and the changes it reports for the changelog.
@Suite struct PixelTableTests {
    static func entry(_ i: Int, _ status: PixelEntry.Status = .fired) -> PixelEntry {
        PixelEntry(destination: 7001 + Int64(i % 4), window: Int64(i / 100) * 10_000, status: status)
    }

    @Test func matchesADictionaryThroughGrowthAndRemovals() {
        var table = PixelTable()
        var expected: [PixelKey: PixelEntry] = [:]
        for i in 0..<5_000 {
            table[PixelKey("px-\(i)")] = Self.entry(i)
            expected[PixelKey("px-\(i)")] = Self.entry(i)
        }
        for i in stride(from: 0, to: 5_000, by: 3) {  // one by one: runs are shifted back
            table[PixelKey("px-\(i)")] = nil
            expected[PixelKey("px-\(i)")] = nil
        }
        table.removeAll { $0.window == 10_000 }  // all at once: the table is rebuilt
        expected = expected.filter { $0.value.window != 10_000 }
        #expect(table.count == expected.count)
        for i in 0..<5_000 {
            #expect(table[PixelKey("px-\(i)")] == expected[PixelKey("px-\(i)")])
        }
    }

    @Test func reportsEachChangedKeyOnceWithItsEntryNow() {
        var table = PixelTable()
        let a = PixelKey("a"), b = PixelKey("b"), c = PixelKey("c")
        table[a] = Self.entry(1)
        table[b] = Self.entry(2)
        table[c] = Self.entry(3)
        _ = table.takeChanges()
        #expect(table.takeChanges().isEmpty)

        table.withEntry(a) { $0?.status = .received }
        table.withEntry(a) { $0?.extraReceipts = 0 }  // no change: not listed again
        table[b] = nil
        table[c] = nil
        table[c] = Self.entry(4)  // removed and added back: its entry now, once
        let changes = table.takeChanges()
        #expect(changes.count == 3)
        #expect(changes.first { $0.0 == a }?.1 == Self.entry(1, .received))
        #expect(changes.contains { $0.0 == b && $0.1 == nil })
        #expect(changes.filter { $0.0 == c }.map(\.1) == [Self.entry(4)])

        table.requeue([a, b])  // a failed write: listed again, with what they hold then
        let again = table.takeChanges()
        #expect(again.count == 2 && again.contains { $0.0 == a && $0.1 == Self.entry(1, .received) })
        #expect(again.contains { $0.0 == b && $0.1 == nil })
    }
}
