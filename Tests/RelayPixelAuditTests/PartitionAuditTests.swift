import RelayEncoding
import RelayKafka
import RelayCore
import Testing
@testable import RelayPixelAudit

/// The join's arithmetic, without I/O: windows of 10 s, grace 2 s.
@Suite struct PartitionAuditTests {
    static let w: Int64 = 10_000
    static let t0: Int64 = 1_790_000_000_000  // a window boundary (divisible by 10 s)

    final class Feed {
        var audit = PartitionAudit(partition: 0, windowMs: w, graceMs: 2_000)
        var offset: Int64 = 0

        func fire(_ id: String, _ destination: Int64, at ts: Int64) {
            audit.apply(PixelSighting(kind: .fired, key: PixelKey(id), destinationID: destination, ts: ts),
                        offset: offset)
            offset += 1
        }

        func receive(_ id: String, _ destination: Int64, at ts: Int64) {
            audit.apply(PixelSighting(kind: .received, key: PixelKey(id), destinationID: destination, ts: ts),
                        offset: offset)
            offset += 1
        }

        func reports(_ thresholds: LossThresholds = LossThresholds()) -> [AuditReport] {
            audit.closedReports(maxLossRate: thresholds.maxLossRate)
        }
    }

    @Test func knownLossPerDestination() {
        let feed = Feed()
        for i in 0..<100 { feed.fire("a\(i)", 7001, at: Self.t0 + Int64(i)) }
        for i in 0..<85 { feed.receive("a\(i)", 7001, at: Self.t0 + 500 + Int64(i)) }
        for i in 0..<40 { feed.fire("b\(i)", 7002, at: Self.t0 + 1_000 + Int64(i)) }
        for i in 0..<30 { feed.receive("b\(i)", 7002, at: Self.t0 + 1_500) }
        #expect(feed.reports().isEmpty)  // nothing closed before end + grace
        feed.audit.advance(to: Self.t0 + Self.w + 1_999)
        #expect(feed.reports().isEmpty)
        feed.audit.advance(to: Self.t0 + Self.w + 2_000)
        let reports = feed.reports()
        #expect(reports.count == 2)
        let a = reports[0], b = reports[1]
        #expect(a.destinationID == 7001 && a.windowStart == Self.t0 && a.windowEnd == Self.t0 + Self.w)
        #expect(a.fired == 100 && a.received == 85 && a.lost == 15 && a.lossRate == 0.15 && !a.alert)
        #expect(b.destinationID == 7002 && b.fired == 40 && b.received == 30 && b.lost == 10 && b.lossRate == 0.25)
        #expect(b.alert)
        #expect(a.lateReceipts == 0 && a.duplicateReceipts == 0 && a.unmatchedReceipts == 0)
        let due = feed.audit.reportsToPublish(maxLossRate: LossThresholds().maxLossRate)
        #expect(due.count == 2)
        for pending in due { feed.audit.markPublished(pending.key, revision: pending.revision) }
        #expect(feed.audit.reportsToPublish(maxLossRate: LossThresholds().maxLossRate).isEmpty)
    }

    @Test func eventTimeClosesWindowsAndLateReceiptsCorrectThem() {
        let feed = Feed()
        feed.fire("p1", 7001, at: Self.t0 + 1)
        feed.fire("p2", 7001, at: Self.t0 + 2)
        feed.receive("p1", 7001, at: Self.t0 + 3)
        // A later event on the partition moves event time past end + grace: the first window closes.
        feed.fire("q1", 7001, at: Self.t0 + Self.w + 2_000)
        var first = feed.reports()[0]
        #expect(first.fired == 2 && first.received == 1 && first.lost == 1 && first.lateReceipts == 0)
        for pending in feed.audit.reportsToPublish(maxLossRate: { _ in 0.2 }) {
            feed.audit.markPublished(pending.key, revision: pending.revision)
        }
        feed.receive("p2", 7001, at: Self.t0 + Self.w + 2_100)  // late
        first = feed.reports()[0]
        #expect(first.fired == 2 && first.received == 2 && first.lost == 0 && first.lateReceipts == 1)
        let due = feed.audit.reportsToPublish(maxLossRate: { _ in 0.2 })
        #expect(due.map(\.report) == [first])  // the corrected report is due again
    }

    @Test func idleFallbackClosesOnlyWhatIsDueAndKeepsEventTime() {
        let feed = Feed()
        feed.fire("p1", 7001, at: Self.t0 + 1)
        feed.fire("p2", 7001, at: Self.t0 + Self.w + 1)
        let early = feed.audit.closeIdle(now: Self.t0 + Self.w + 1_999)  // nothing due yet
        let due = feed.audit.closeIdle(now: Self.t0 + Self.w + 2_500)
        #expect(!early && due)
        #expect(feed.audit.watermark == Self.t0 + Self.w + 2_000)  // moved to the close, not to "now"
        #expect(feed.reports().count == 1 && feed.audit.openWindowCount == 1)
        let later = feed.audit.closeIdle(now: Self.t0 + 3_600_000)  // an hour later: the second closes too
        #expect(later)
        #expect(feed.audit.watermark == Self.t0 + 2 * Self.w + 2_000)
        feed.receive("p1", 7001, at: Self.t0 + 5)  // still within retention: a late receipt, not expired
        feed.receive("nobody", 7001, at: Self.t0 + 6)
        let r = feed.reports()[0]
        #expect(r.received == 1 && r.lateReceipts == 1 && r.unmatchedReceipts == 1)
    }

    @Test func duplicatesCountOnceAndUnmatchedReceipts() {
        let feed = Feed()
        feed.fire("p1", 7001, at: Self.t0)
        feed.fire("p1", 7001, at: Self.t0)  // fired twice (producer retry): one pixel
        feed.receive("p1", 7001, at: Self.t0 + 10)
        feed.receive("p1", 7001, at: Self.t0 + 20)  // duplicate
        feed.receive("p1", 7001, at: Self.t0 + 30)  // duplicate
        feed.receive("ghost", 7001, at: Self.t0 + 40)  // never fired
        feed.receive("early", 7001, at: Self.t0 + 50)  // receipt before its fired event
        feed.fire("early", 7001, at: Self.t0 + 60)
        feed.audit.advance(to: Self.t0 + Self.w + 2_000)
        let r = feed.reports()[0]
        #expect(r.fired == 2 && r.received == 2 && r.lost == 0)
        #expect(r.duplicateReceipts == 2 && r.unmatchedReceipts == 1)
        // A receipt of an unmatched pixel after close is a duplicate; a receipt for a closed window with no fired
        // event is unmatched at once.
        feed.receive("ghost", 7001, at: Self.t0 + Self.w + 2_001)
        feed.receive("ghost2", 7001, at: Self.t0 + 70)
        let after = feed.reports()[0]
        #expect(after.duplicateReceipts == 3 && after.unmatchedReceipts == 2)
    }

    @Test func alertAroundTheThreshold() {
        func report(fired: Int, received: Int, threshold: Double) -> AuditReport {
            let feed = Feed()
            for i in 0..<fired { feed.fire("x\(i)", 7001, at: Self.t0) }
            for i in 0..<received { feed.receive("x\(i)", 7001, at: Self.t0) }
            feed.audit.advance(to: Self.t0 + Self.w + 2_000)
            return feed.reports(LossThresholds([7001: threshold]))[0]
        }
        #expect(report(fired: 100, received: 80, threshold: 0.20).alert == false)  // 0.20 is not above 0.20
        #expect(report(fired: 100, received: 79, threshold: 0.20).alert == true)
        #expect(report(fired: 100, received: 95, threshold: 0.04).alert == true)
        #expect(report(fired: 100, received: 95, threshold: 0.05).alert == false)
        let empty = AuditReport(destinationID: 7001, windowStart: 0, windowEnd: 1, fired: 0, received: 0,
                                lateReceipts: 0, duplicateReceipts: 0, unmatchedReceipts: 3, maxLossRate: 0,
                                partition: nil)
        #expect(empty.lossRate == 0 && !empty.alert)
    }

    @Test func replayedOffsetsAreIgnored() {
        let feed = Feed()
        feed.fire("p1", 7001, at: Self.t0)
        feed.receive("p1", 7001, at: Self.t0)
        let before = feed.audit.nextOffset
        // The same records read again (a replay or a re-read after restart).
        let again1 = feed.audit.apply(PixelSighting(kind: .fired, key: PixelKey("p9"), destinationID: 7001,
                                                    ts: Self.t0), offset: 0)
        let again2 = feed.audit.apply(PixelSighting(kind: .received, key: PixelKey("p1"), destinationID: 7001,
                                                    ts: Self.t0), offset: 1)
        #expect(!again1 && !again2)
        #expect(feed.audit.nextOffset == before)
        feed.audit.advance(to: Self.t0 + Self.w + 2_000)
        let r = feed.reports()[0]
        #expect(r.fired == 1 && r.received == 1 && r.duplicateReceipts == 0)
    }

    /// The changelog as the broker would hold it: every write's records in order, optionally compacted (the
    /// latest record of each key, at the position of that record).
    struct Changelog {
        var records: [KafkaRecord] = []

        mutating func append(_ outgoing: [OutgoingRecord]) {
            for r in outgoing {
                records.append(KafkaRecord(topic: "g.state", partition: 0, offset: Int64(records.count), key: r.key,
                                           value: r.isTombstone ? [] : r.value, timestamp: 0, headers: []))
            }
        }

        mutating func write(_ audit: inout PartitionAudit, head: Bool = true) {
            let (changes, headRecord) = AuditChangelog.records(audit.takeChanges(), topic: "g.state")
            append(changes + (head ? [headRecord] : []))
        }

        func compacted() -> [KafkaRecord] {
            var last: [[UInt8]: Int] = [:]
            for (i, r) in records.enumerated() { last[Array(r.key ?? [])] = i }
            return records.enumerated().filter { last[Array($0.element.key ?? [])] == $0.offset }.map(\.element)
        }

        func restore(_ records: [KafkaRecord]) -> AuditChangelog.Restore {
            var restore = AuditChangelog.Restore(partition: 0, windowMs: PartitionAuditTests.w, graceMs: 2_000)
            for r in records { restore.take(r) }
            return restore
        }
    }

    /// Writes every 50 events, then a restore (from the log as written and as compacted) continues exactly like a
    /// partition that never moved; a write cut short (no head) is dropped and its keys rewritten.
    @Test func changelogRestoreContinuesIdentically() throws {
        let straight = Feed()
        let resumed = Feed()
        var log = Changelog()
        func script(_ feed: Feed, from: Int, to: Int, writing: Bool = false) {
            for i in from..<to {
                let ts = Self.t0 + Int64(i) * 370  // long enough for windows to close and be evicted
                if i % 3 == 2 { feed.receive("p\(i - 2)", 7001 + Int64(i % 2), at: ts) }
                else { feed.fire("p\(i)", 7001 + Int64(i % 2), at: ts) }
                guard i % 50 == 49 else { continue }
                // As the handler does: shares published (so closed windows can be evicted), then the write.
                for r in feed.audit.reportsToPublish(maxLossRate: { _ in 0.2 }) {
                    feed.audit.markPublished(r.key, revision: r.revision)
                }
                if writing { log.write(&feed.audit) }
            }
        }
        script(straight, from: 0, to: 1_000)
        script(resumed, from: 0, to: 600, writing: true)
        // Events 600..<620 applied and written without their head: a crash mid-write.
        script(resumed, from: 600, to: 620)
        log.write(&resumed.audit, head: false)
        #expect(log.records.contains { $0.value.isEmpty })  // evictions wrote tombstones

        for records in [log.records, log.compacted()] {
            let (restored, repair) = log.restore(records).finish()
            var audit = try #require(restored)
            #expect(audit.nextOffset == 600)
            #expect(repair.map { $0.windows.count + $0.pixels.count } ?? 0 > 0)
            let continued = Feed()
            continued.audit = audit
            continued.offset = 600
            script(continued, from: 600, to: 1_000)
            audit = continued.audit
            var expected = straight.audit
            audit.advance(to: Self.t0 + 1_000_000)
            expected.advance(to: Self.t0 + 1_000_000)
            #expect(!straight.reports().isEmpty)
            #expect(audit.closedReports(maxLossRate: { _ in 0.2 }) == expected.closedReports(maxLossRate: { _ in 0.2 }))
            #expect(audit.pixelCount == expected.pixelCount && audit.windowCount == expected.windowCount)
        }
        // The compacted log holds the live state (and the tombstones of what went), not its history.
        #expect(log.compacted().filter { !$0.value.isEmpty }.count
            == resumed.audit.windowCount + resumed.audit.pixelCount + 1)

        // Written for another window size: refused, so nothing restores.
        var other = AuditChangelog.Restore(partition: 0, windowMs: 60_000, graceMs: 2_000)
        for r in log.records { other.take(r) }
        #expect(other.finish().0 == nil && !other.malformed.isEmpty)
    }

    /// Progress is reported on the grid of window closes (start + 10 s + grace 2 s), once per window.
    @Test func closeBoundaryIsTheLatestWindowCloseAtOrBefore() {
        let audit = PartitionAudit(partition: 0, windowMs: Self.w, graceMs: 2_000)
        #expect(audit.closeBoundary(atOrBefore: Self.t0 + 12_000) == Self.t0 + 12_000)
        #expect(audit.closeBoundary(atOrBefore: Self.t0 + 11_999) == Self.t0 + 2_000)
        #expect(audit.closeBoundary(atOrBefore: Self.t0 + 25_000) == Self.t0 + 22_000)
    }

    @Test func closedWindowsAreForgottenAfterRetentionAndOldEventsExpire() {
        let feed = Feed()
        feed.fire("old", 7001, at: Self.t0)
        feed.audit.advance(to: Self.t0 + Self.w + 2_000)
        for p in feed.audit.reportsToPublish(maxLossRate: { _ in 0.2 }) {
            feed.audit.markPublished(p.key, revision: p.revision)
        }
        #expect(feed.audit.pixelCount == 1)
        feed.audit.advance(to: Self.t0 + Self.w + 2_000 + 6 * Self.w)
        #expect(feed.audit.pixelCount == 0 && feed.audit.windowCount == 0)
        feed.fire("older", 7001, at: Self.t0 + 5)  // its window is gone: ignored, never re-reported
        feed.receive("old", 7001, at: Self.t0 + 6)
        #expect(feed.audit.windowCount == 0)
        let metrics = feed.audit.takeMetrics()
        #expect(metrics[7001]?.expired == 2)
    }
}

@Suite struct PixelEventTests {
    @Test func decodesTheSpecFormat() throws {
        let json = """
            {"type": "fired", "pixel_id": "px-1", "destination_id": 7001, "uuid": "0795526165", "ts": 1795982000000,
             "aliases": ["p4532", "p\\"99"], "url": "http://px.partner.example/sync?seg=p4532", "source": "edge",
             "extra": {"nested": [1, 2.5, true, null]}}
            """
        let event = try PixelEvent.decode(Array(json.utf8))
        #expect(event == PixelEvent(kind: .fired, pixelID: "px-1", destinationID: 7001, uuid: "0795526165",
                                    ts: 1_795_982_000_000, aliases: ["p4532", "p\"99"],
                                    url: "http://px.partner.example/sync?seg=p4532", source: .edge))
        #expect(try PixelEvent.decode(event.jsonBytes()) == event)
        let received = PixelEvent(kind: .received, pixelID: "px-1", destinationID: 7001, uuid: "u", ts: 5,
                                  source: .redirect)
        #expect(try PixelEvent.decode(received.jsonBytes()) == received)
        let sighting = try PixelSighting.decode(received.jsonBytes())
        #expect(sighting == PixelSighting(kind: .received, key: PixelKey("px-1"), destinationID: 7001, ts: 5))
        // An escaped pixel id keys the same as its plain spelling.
        #expect(try PixelSighting.decode(Array(#"{"type":"fired","pixel_id":"px\u002d1","destination_id":7001,"ts":5}"#.utf8)).key
            == PixelKey("px-1"))
    }

    @Test(arguments: [
        ("[]", "not a JSON object"),
        (#"{"pixel_id":"a","destination_id":1,"ts":1}"#, "type: missing"),
        (#"{"type":"shown","pixel_id":"a","destination_id":1,"ts":1}"#, "type: expected"),
        (#"{"type":"fired","destination_id":1,"ts":1}"#, "pixel_id: missing"),
        (#"{"type":"fired","pixel_id":"","destination_id":1,"ts":1}"#, "pixel_id: empty"),
        (#"{"type":"fired","pixel_id":"a","destination_id":"x","ts":1}"#, "destination_id: expected an integer"),
        (#"{"type":"fired","pixel_id":"a","destination_id":1,"ts":1.5}"#, "ts: expected an integer"),
        (#"{"type":"fired","pixel_id":"a","destination_id":1}"#, "ts: missing"),
        (#"{"type":"fired","pixel_id":"a","destination_id":1,"ts":1} x"#, "trailing characters"),
        (#"{"type":"fired","pixel_id":"a","destination_id":1,"ts":1,"aliases":[1]}"#, "aliases: expected strings"),
        (#"{"type":"fired","pixel_id":"a""#, "unterminated object"),
    ])
    func malformedEventsSayWhy(json: String, reason: String) {
        #expect {
            try PixelEvent.decode(Array(json.utf8))
        } throws: { error in
            (error as? MalformedPixelEvent)?.reason.contains(reason) == true
        }
    }

    func share(_ partition: Int32, start: Int64 = 0, fired: Int64, received: Int64, late: Int64 = 0) -> AuditReport {
        AuditReport(destinationID: 7001, windowStart: start, windowEnd: start + 10, fired: fired, received: received,
                    lateReceipts: late, duplicateReceipts: 0, unmatchedReceipts: 0, maxLossRate: 0.10,
                    partition: partition)
    }

    /// A window is merged once every input partition has closed it, published once, and again only when corrected.
    @Test func mergeBookPublishesEachWindowOnceEveryPartitionClosedIt() {
        var book = MergeBook(windowMs: 10, graceMs: 5, thresholds: LossThresholds([7001: 0.10]))
        book.take(.share(share(0, fired: 50, received: 40)))
        book.take(.share(share(1, fired: 50, received: 45)))
        book.take(.progress(ShareProgress(partition: 0, closedThrough: 15)))
        book.take(.progress(ShareProgress(partition: 1, closedThrough: 15)))
        #expect(book.due(partitions: 3).isEmpty)  // partition 2 has said nothing yet
        book.take(.progress(ShareProgress(partition: 2, closedThrough: 14)))
        #expect(book.due(partitions: 3).isEmpty)  // ...and has not closed the window (end 10 + grace 5)
        book.take(.progress(ShareProgress(partition: 2, closedThrough: 15)))
        var due = book.due(partitions: 3)
        #expect(due.count == 1 && due[0].fired == 100 && due[0].received == 85 && due[0].alert && due[0].partition == nil)
        book.notePublished(due[0])
        #expect(book.due(partitions: 3).isEmpty)  // published: not again
        book.take(.share(share(1, fired: 50, received: 45)))  // the same share re-sent (a restarted owner)
        #expect(book.due(partitions: 3).isEmpty)
        book.take(.progress(ShareProgress(partition: 0, closedThrough: 3)))  // progress never goes back
        book.take(.share(share(0, fired: 50, received: 48, late: 8)))  // late receipts correct partition 0's share
        due = book.due(partitions: 3)
        #expect(due.count == 1 && due[0].received == 93 && due[0].lateReceipts == 8 && !due[0].alert)

        // A member taking over reads what is published (as decoded from the topic): nothing is due twice.
        var successor = MergeBook(windowMs: 10, graceMs: 5, thresholds: LossThresholds([7001: 0.10]))
        for p in Int32(0)..<3 { successor.take(.progress(ShareProgress(partition: p, closedThrough: 100))) }
        successor.take(.share(share(0, fired: 50, received: 48, late: 8)))
        successor.take(.share(share(1, fired: 50, received: 45)))
        successor.notePublished(try! AuditReport.decode(due[0].jsonBytes()))
        #expect(successor.due(partitions: 3).isEmpty)
    }

    @Test func sharesAndProgressReadAsContract() throws {
        func record(_ key: String, _ value: [UInt8]) -> KafkaRecord {
            KafkaRecord(topic: "g.shares", partition: 1, offset: 0, key: Array(key.utf8), value: value, timestamp: 0,
                        headers: [])
        }
        let s = share(1, start: 20, fired: 5, received: 4)
        #expect(try AuditShares.decode(record("share/7001/20/1", s.jsonBytes())) == .share(s))
        let progress = ShareProgress(partition: 1, closedThrough: 1_795_982_000_000)
        #expect(try AuditShares.decode(record("closed/1", progress.jsonBytes())) == .progress(progress))
        #expect(throws: MalformedInput.self) { try AuditShares.decode(record("share/7001/20/2", s.jsonBytes())) }
        #expect(throws: MalformedInput.self) { try AuditShares.decode(record("closed/2", progress.jsonBytes())) }
        #expect(throws: MalformedInput.self) { try AuditShares.decode(record("other", progress.jsonBytes())) }
        #expect(throws: MalformedInput.self) {
            try AuditShares.decode(record("closed/1", Array(#"{"partition":1,"closed_through":1.5}"#.utf8)))
        }
        #expect(throws: MalformedInput.self) {
            try AuditShares.decode(record("closed/1", Array(#"{"partition":1,"partition":1,"closed_through":2}"#.utf8)))
        }
    }

    /// Readers of `aam.pixel-audit`: the latest report of a window wins; a partition's share is never added up.
    @Test func reportBookKeepsTheLatestReportAndSkipsShares() {
        let book = ReportBook(thresholds: LossThresholds([7001: 0.10]))
        func report(fired: Int64, received: Int64, late: Int64 = 0) -> AuditReport {
            AuditReport.merged([share(0, fired: fired, received: received, late: late)], maxLossRate: 0.10)!
        }
        #expect(book.apply(share(3, fired: 1_000, received: 0)) == nil)  // a share: skipped
        book.apply(report(fired: 100, received: 85))
        #expect(book.apply(report(fired: 100, received: 85)) == nil)  // re-published: no change
        var reports = book.reports(destination: 7001)
        #expect(reports.count == 1 && reports[0].fired == 100 && reports[0].lost == 15 && reports[0].alert)
        book.apply(report(fired: 100, received: 93, late: 8))  // corrected: replaces it
        reports = book.reports()
        #expect(reports.count == 1 && reports[0].received == 93 && reports[0].lossRate == 0.07 && !reports[0].alert)
        #expect(book.reports(since: 10).isEmpty && book.reports(since: 9).count == 1)
        let decoded = try? AuditReport.decode(share(3, fired: 7, received: 6).jsonBytes())
        #expect(decoded?.lossRate == 0.142857 && decoded?.partition == 3)
        #expect(String(decoding: ReportBook.jsonArray(reports), as: UTF8.self).hasPrefix(
            #"[{"destination_id":7001,"window_start":0,"window_end":10,"fired":100,"received":93,"lost":7,"loss_rate":0.07,"#))
    }
}
