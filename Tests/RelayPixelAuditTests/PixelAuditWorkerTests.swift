import Foundation
import RelayKafka
import RelayTestSupport
import Synchronization
import RelayCore
import Testing
@testable import RelayPixelAudit

/// A pixel-audit deployment on the real broker: fresh topics, a working directory, and `relay-pixel-audit` processes
/// (their state is in the group's internal topics).
struct AuditRig {
    static let window: Int64 = 2_000
    let topics: RelayTopics
    let directory: TestDirectory
    let config: URL
    let group: String
    let thresholds = LossThresholds([7001: 0.20, 7002: 0.10])

    init() async throws {
        topics = try await TestBroker.createRelayTopics(partitions: 4)
        directory = try TestDirectory("pixel-audit")
        group = TestBroker.uniqueName("pixel-audit")
        config = try directory.write("relay.yaml", topics.kafkaYAML + """
            pixel_audit: {audit_window: 2s, grace: 1s}
            destinations:
              - id: 7001
                name: px-a
                kind: url
                url: "http://px.a.example/sync?seg=%alias%&uid=%did%"
                max_loss_rate: 0.20
                mappings: [{segment: 1, alias: a1}]
              - id: 7002
                name: px-b
                kind: url
                url: "http://px.b.example/sync?seg=%alias%"
                max_loss_rate: 0.10
                mappings: [{segment: 1, alias: b1}]

            """)
    }

    /// A worker of the group (or of `group`), in the rig's directory or in `directory` (an empty one of its own).
    func startWorker(group: String? = nil, in directory: TestDirectory? = nil) async throws -> (WorkerProcess, Int) {
        let port = freePort()
        let worker = try WorkerProcess("relay-pixel-audit",
                                       arguments: ["--config", config.path, "--metrics-port", "\(port)",
                                                   "--group", group ?? self.group, "--log-level", "info"],
                                       workingDirectory: (directory ?? self.directory).url)
        try await worker.waitForHTTP(port: port)
        return (worker, port)
    }

    /// A window boundary `offset` windows from now (negative: in the past, closed by the idle fallback; positive:
    /// in the future, closed only by event time).
    static func windowStart(hoursFromNow hours: Int64) -> Int64 {
        let t = Int64(Date().timeIntervalSince1970 * 1000) + hours * 3_600_000
        return t - t % window
    }

    static func fired(_ id: String, _ destination: Int64, _ ts: Int64) -> PixelEvent {
        PixelEvent(kind: .fired, pixelID: id, destinationID: destination, uuid: "u-\(id)", ts: ts, aliases: ["a1"],
                   url: "http://px.a.example/sync?seg=a1&uid=u-\(id)", source: .edge)
    }

    static func received(_ id: String, _ destination: Int64, _ ts: Int64) -> PixelEvent {
        PixelEvent(kind: .received, pixelID: id, destinationID: destination, uuid: "u-\(id)", ts: ts,
                   aliases: ["a1"], source: .redirect)
    }

    /// Produces in the given order (one producer, enqueue order is partition order), waiting for every ack.
    func produce(_ events: [PixelEvent], partition: Int32? = nil) async throws {
        try await produceRecords(events.map {
            OutgoingRecord(topic: topics.pixelEvents, key: Array($0.pixelID.utf8), value: $0.jsonBytes(),
                           partition: partition)
        })
    }

    func produceRecords(_ records: [OutgoingRecord]) async throws {
        let producer = try KafkaProducer(configuration: TestBroker.client, logger: TestBroker.logger)
        let failures = Mutex(0)
        for record in records {
            try await producer.enqueueWaiting(record) { result in if case .failure = result { failures.withLock { $0 += 1 } } }
        }
        try await producer.flush()
        await producer.close()
        #expect(failures.withLock { $0 } == 0)
    }

    /// One event per partition at `ts` (destination 9999), moving every partition's event time there.
    func tick(_ ts: Int64) async throws {
        for p in Int32(0)..<4 {
            try await produce([Self.fired("tick-\(p)-\(ts)", 9999, ts)], partition: p)
        }
    }

    /// The merged reports as a reader of the audit topic sees them (destination 9999 left out).
    func reports() async throws -> [AuditReport] {
        let book = ReportBook(thresholds: thresholds)
        for record in try await TestBroker.readAll(topics.pixelAudit) {
            book.apply(try AuditReport.decode(record.value))
        }
        return book.reports().filter { $0.destinationID != 9999 }
    }

    func report(_ destination: Int64, _ start: Int64) async throws -> AuditReport? {
        try await reports().first { $0.destinationID == destination && $0.windowStart == start }
    }

    static func metric(_ port: Int, _ line: String) async -> Double? {
        guard let (_, text) = try? await HTTPGet.fetch("http://127.0.0.1:\(port)/metrics") else { return nil }
        // Every metric also carries the worker's `worker` and `group` labels, after its own.
        let stem = line.hasSuffix("}") ? String(line.dropLast()) + "," : line + "{"
        for l in text.split(separator: "\n") where l.hasPrefix(line + " ") || l.hasPrefix(stem) {
            return l.split(separator: " ").last.flatMap { Double($0) }
        }
        return nil
    }

    func resetToEarliest() async throws {
        let admin = try KafkaAdmin(configuration: TestBroker.client, logger: TestBroker.logger)
        var offsets: [TopicPartition: Int64] = [:]
        for tp in try await admin.topicPartitions(topics.pixelEvents) { offsets[tp] = try await admin.watermarks(tp).0 }
        try await admin.resetOffsets(group: group, to: offsets)
    }

    func fullyCommitted() async throws -> Bool {
        let admin = try KafkaAdmin(configuration: TestBroker.client, logger: TestBroker.logger)
        let committed = try await admin.committedOffsets(group: group, topic: topics.pixelEvents)
        let ends = try await admin.endOffsets(try await admin.topicPartitions(topics.pixelEvents))
        for (tp, high) in ends where high > 0 && (committed[tp] ?? -1) < high { return false }
        return true
    }
}

func expectCounts(_ r: AuditReport?, fired: Int64, received: Int64, late: Int64 = 0, duplicate: Int64 = 0,
                  unmatched: Int64 = 0, alert: Bool, sourceLocation: SourceLocation = #_sourceLocation)
{
    #expect(r?.fired == fired, sourceLocation: sourceLocation)
    #expect(r?.received == received, sourceLocation: sourceLocation)
    #expect(r?.lost == fired - received, sourceLocation: sourceLocation)
    #expect(r?.lateReceipts == late, sourceLocation: sourceLocation)
    #expect(r?.duplicateReceipts == duplicate, sourceLocation: sourceLocation)
    #expect(r?.unmatchedReceipts == unmatched, sourceLocation: sourceLocation)
    #expect(r?.alert == alert, sourceLocation: sourceLocation)
}

@Suite(.serialized, .timeLimit(.minutes(4)))
struct PixelAuditWorkerTests {
    /// Known fired/received sets per destination give exact counts; then late, duplicate and unmatched receipts
    /// correct the closed window, on the topic, at GET /report and in the metrics.
    @Test func knownLossLateDuplicateAndUnmatchedReceipts() async throws {
        let rig = try await AuditRig()
        let (worker, port) = try await rig.startWorker()
        defer { Task { await worker.stop() } }
        let w0 = AuditRig.windowStart(hoursFromNow: -1)
        let w1 = w0 + AuditRig.window
        var events: [PixelEvent] = []
        for i in 0..<200 { events.append(AuditRig.fired("a\(i)", 7001, w0 + Int64(i % 1_500))) }
        for i in 0..<100 { events.append(AuditRig.fired("b\(i)", 7002, w0 + 10)) }
        for i in 0..<50 { events.append(AuditRig.fired("c\(i)", 7001, w1 + 5)) }
        for i in 0..<170 { events.append(AuditRig.received("a\(i)", 7001, w0 + 1_600)) }  // 15 % lost
        for i in 0..<88 { events.append(AuditRig.received("b\(i)", 7002, w0 + 1_700)) }  // 12 % lost > 10 %
        for i in 0..<50 { events.append(AuditRig.received("c\(i)", 7001, w1 + 100)) }
        try await rig.produce(events)

        #expect(try await eventually(timeout: .seconds(30)) {  // every partition's share is in
            try await rig.reports().map(\.fired) == [200, 50, 100]
        })
        expectCounts(try await rig.report(7001, w0), fired: 200, received: 170, alert: false)
        expectCounts(try await rig.report(7002, w0), fired: 100, received: 88, alert: true)
        expectCounts(try await rig.report(7001, w1), fired: 50, received: 50, alert: false)
        #expect(try await rig.report(7001, w0)?.lossRate == 0.15)
        #expect(try await rig.report(7001, w0)?.windowEnd == w0 + 2_000)

        // After the close: 10 late receipts, 3 duplicates, 2 receipts of pixels never fired.
        var after: [PixelEvent] = []
        for i in 170..<180 { after.append(AuditRig.received("a\(i)", 7001, w0 + 1_800)) }
        for i in 0..<3 { after.append(AuditRig.received("a\(i)", 7001, w0 + 1_800)) }
        after.append(AuditRig.received("ghost-1", 7001, w0 + 1_900))
        after.append(AuditRig.received("ghost-2", 7001, w0 + 1_900))
        try await rig.produce(after)
        #expect(try await eventually(timeout: .seconds(20)) {
            let r = try await rig.report(7001, w0)
            return r?.lateReceipts == 10 && r?.unmatchedReceipts == 2
        })
        expectCounts(try await rig.report(7001, w0), fired: 200, received: 180, late: 10, duplicate: 3, unmatched: 2,
                     alert: false)
        expectCounts(try await rig.report(7002, w0), fired: 100, received: 88, alert: true)

        // GET /report: the same merged reports, filtered.
        let (status, body) = try await HTTPGet.fetch("http://127.0.0.1:\(port)/report?destination=7001&since=\(w0 + 2_000)")
        #expect(status == 200)
        let served = try JSONDecoder().decode([AuditReport].self, from: Data(body.utf8))
        #expect(served.count == 1 && served.first?.windowStart == w1 && served.first?.fired == 50)
        let servedLate = await eventually {
            let all = try? await HTTPGet.fetch("http://127.0.0.1:\(port)/report?destination=7001")
            let reports = all.flatMap { try? JSONDecoder().decode([AuditReport].self, from: Data($0.1.utf8)) }
            return reports?.first?.lateReceipts == 10
        }
        #expect(servedLate)
        let (badStatus, _) = try await HTTPGet.fetch("http://127.0.0.1:\(port)/report?since=yesterday")
        #expect(badStatus == 400)

        // Metrics.
        #expect(await AuditRig.metric(port, #"relay_pixel_audit_fired_total{destination="7001"}"#) == 250)
        #expect(await AuditRig.metric(port, #"relay_pixel_audit_received_total{destination="7001"}"#) == 230)
        #expect(await AuditRig.metric(port, #"relay_pixel_audit_late_receipts_total{destination="7001"}"#) == 10)
        #expect(await AuditRig.metric(port, #"relay_pixel_audit_alert{destination="7002"}"#) == 1)
        #expect(await AuditRig.metric(port, #"relay_pixel_audit_loss_rate{destination="7002"}"#) == 0.12)

        // relayctl pixel report: the table and the chart from the audit topic.
        let ctl = try WorkerProcess("relayctl", arguments: ["pixel", "report", "--config", rig.config.path,
                                                            "--destination", "7002", "--chart"],
                                    workingDirectory: rig.directory.url)
        #expect(await ctl.waitForExit() == 0)
        let table = ctl.output
        #expect(table.contains("px-b") && table.contains("ALERT") && table.contains("12.0%"))
        #expect(table.split(separator: "\n").contains { $0.hasPrefix("7002") && $0.contains(" 100 ") && $0.contains(" 88 ") })
        #expect(table.contains("loss rate, destination 7002 px-b (max 10.0%") && !table.contains("7001"))

        // A malformed event is dead-lettered with its reason, and the audit goes on.
        try await rig.produceRecords([OutgoingRecord(topic: rig.topics.pixelEvents, key: Array("x".utf8),
                                                     value: Array(#"{"type":"fired"}"#.utf8))])
        #expect(try await eventually { try await TestBroker.readAll(rig.topics.deadLetter).count == 1 })
        let letter = try await TestBroker.readAll(rig.topics.deadLetter)[0]
        #expect(letter.header("relay.error")?.stringValue.contains("pixel_id: missing") == true)
        worker.terminate()
        #expect(await worker.waitForExit() == 0)
    }

    /// SIGKILL mid-window (some records checkpointed, some not), restart: counts unchanged and exact; the state comes
    /// from the checkpoint. Then a replay of the group to the earliest offset gives the same reports, with the state
    /// kept and with the state directory deleted (rebuilt from the topic).
    @Test func killRestartAndReplayGiveTheSameReports() async throws {
        let rig = try await AuditRig()
        let f0 = AuditRig.windowStart(hoursFromNow: 24)  // closed only by event time
        var first: [PixelEvent] = []
        for i in 0..<100 { first.append(AuditRig.fired("k\(i)", 7001, f0 + Int64(i))) }
        for i in 0..<40 { first.append(AuditRig.fired("m\(i)", 7002, f0 + Int64(i))) }
        for i in 0..<60 { first.append(AuditRig.received("k\(i)", 7001, f0 + 500)) }
        try await rig.produce(first)
        var (worker, port) = try await rig.startWorker()
        #expect(await eventually { await AuditRig.metric(port, "relay_pixel_audit_events_total") == 200 })
        #expect(try await eventually { try await rig.fullyCommitted() })  // checkpointed, then committed
        var second: [PixelEvent] = []
        for i in 60..<80 { second.append(AuditRig.received("k\(i)", 7001, f0 + 600)) }
        for i in 0..<36 { second.append(AuditRig.received("m\(i)", 7002, f0 + 600)) }
        try await rig.produce(second)
        #expect(await eventually(every: .milliseconds(20)) {
            await AuditRig.metric(port, "relay_pixel_audit_events_total") == 256
        })
        worker.kill()  // right away: these receipts are very likely neither checkpointed nor committed
        #expect(await worker.waitForExit() != 0)

        var third: [PixelEvent] = []
        for i in 80..<85 { third.append(AuditRig.received("k\(i)", 7001, f0 + 700)) }
        for i in 0..<5 { third.append(AuditRig.received("k\(i)", 7001, f0 + 700)) }  // duplicates
        try await rig.produce(third)
        try await rig.tick(f0 + 3_000)  // end + grace reached on every partition
        (worker, port) = try await rig.startWorker()
        #expect(try await eventually { try await rig.reports().map(\.fired) == [100, 40] })
        expectCounts(try await rig.report(7001, f0), fired: 100, received: 85, duplicate: 5, alert: false)
        expectCounts(try await rig.report(7002, f0), fired: 40, received: 36, alert: false)
        #expect(worker.log.contains("pixel audit state restored"))
        worker.terminate()
        #expect(await worker.waitForExit() == 0)
        let before = try await rig.reports()
        #expect(before.count == 2)

        // Replay with the state kept: every record is below the checkpoint, nothing counts twice.
        try await rig.resetToEarliest()
        (worker, port) = try await rig.startWorker()
        #expect(try await eventually { try await rig.fullyCommitted() })
        #expect(try await rig.reports() == before)
        worker.terminate()
        #expect(await worker.waitForExit() == 0)

        // A new group with no state at all replays the whole topic (its own empty internal topics): the same
        // shares, so the merged reports it finds already published are not published again.
        let recordsBefore = try await TestBroker.readAll(rig.topics.pixelAudit).count
        let fresh = TestBroker.uniqueName("pixel-audit-replay")
        (worker, port) = try await rig.startWorker(group: fresh)
        #expect(try await eventually(timeout: .seconds(30)) {
            try await TestBroker.readAll("\(fresh).shares").compactMap { try? AuditReport.decode($0.value) }
                .filter { $0.destinationID != 9999 }.count >= 2
        })
        #expect(await eventually { await AuditRig.metric(port, "relay_pixel_audit_events_total") == 270 })
        try await Task.sleep(for: .seconds(3))
        #expect(try await TestBroker.readAll(rig.topics.pixelAudit).count == recordsBefore)
        #expect(try await rig.reports() == before)
        expectCounts(try await rig.report(7001, f0), fired: 100, received: 85, duplicate: 5, alert: false)
        worker.terminate()
        #expect(await worker.waitForExit() == 0)
    }

    /// Poison on a live worker: a pixel `ts` of Int64.max and one in seconds are dead-lettered with their reason (they
    /// once killed the worker at every restart); forged shares with counts at Int64.max on the internal shares topic
    /// merge saturated, and an undecodable one is dead-lettered; `relayctl pixel report` reads the result; the events
    /// are counted exactly and committed.
    @Test func poisonPixelsAreDeadLetteredAndTheAuditGoesOn() async throws {
        let rig = try await AuditRig()
        let (worker, port) = try await rig.startWorker()
        defer { Task { await worker.stop() } }
        let w0 = AuditRig.windowStart(hoursFromNow: -1)
        try await rig.produce([AuditRig.fired("poison-max", 7001, Int64.max),
                               AuditRig.fired("poison-seconds", 7001, w0 / 1_000)], partition: 0)
        var events: [PixelEvent] = []
        for i in 0..<10 { events.append(AuditRig.fired("g\(i)", 7001, w0 + Int64(i))) }
        for i in 0..<8 { events.append(AuditRig.received("g\(i)", 7001, w0 + 500)) }
        try await rig.produce(events, partition: 0)

        #expect(try await eventually(timeout: .seconds(30)) { try await rig.report(7001, w0)?.fired == 10 })
        expectCounts(try await rig.report(7001, w0), fired: 10, received: 8, alert: false)
        #expect(try await eventually { try await rig.fullyCommitted() })
        let counted = await AuditRig.metric(port, "relay_pixel_audit_events_total")
        #expect(counted == 20, "\(String(describing: counted))")  // every record read, the two dead-lettered too

        // Forged shares on the internal topic (which the worker created): they merge to Int64.max, not a trap.
        let shares = "\(rig.group).shares"
        let forged = [Int32(0), 1].map {
            AuditReport(destinationID: 7002, windowStart: w0, windowEnd: w0 + AuditRig.window, fired: .max,
                        received: 0, lateReceipts: .max, duplicateReceipts: 0, unmatchedReceipts: 0,
                        maxLossRate: 0.1, partition: $0)
        }
        try await rig.produceRecords(forged.map {
            OutgoingRecord(topic: shares, key: Array("share/7002/\(w0)/\($0.partition!)".utf8), value: $0.jsonBytes(),
                           partition: $0.partition)
        } + [OutgoingRecord(topic: shares, key: Array("share/7002".utf8), value: Array("{".utf8), partition: 2)])
        #expect(try await eventually(timeout: .seconds(30)) { try await rig.report(7002, w0)?.fired == .max })

        let letters = try await TestBroker.readAll(rig.topics.deadLetter)
        #expect(letters.count == 3)
        #expect(letters.allSatisfy { $0.header("relay.error.class")?.stringValue == "malformed" })
        let pixelLetters = letters.filter { $0.topic == rig.topics.deadLetter
            && $0.header("relay.source")?.stringValue.hasPrefix(rig.topics.pixelEvents) == true }
        #expect(Set(pixelLetters.map { String(decoding: $0.key ?? [], as: UTF8.self) }) == ["poison-max", "poison-seconds"])
        #expect(pixelLetters.allSatisfy { $0.header("relay.error")?.stringValue.contains("ts") == true },
                "\(letters.map { $0.header("relay.error")?.stringValue ?? "-" })")
        #expect(letters.contains { $0.header("relay.source")?.stringValue.hasPrefix(shares) == true })

        let ctl = try WorkerProcess("relayctl", arguments: ["pixel", "report", "--config", rig.config.path],
                                    workingDirectory: rig.directory.url)
        #expect(await ctl.waitForExit() == 0, "\(ctl.output)")
        #expect(ctl.output.contains("9223372036854775807"), "\(ctl.output)")
        worker.terminate()
        #expect(await worker.waitForExit() == 0)
    }

    /// Two members, each in an empty directory of its own; one is SIGKILLed mid-window and comes back (empty again):
    /// the other restores its partitions from the changelog, and each destination and window is published exactly
    /// once, with exact counts.
    @Test func oneOfTwoMembersKilledMidWindow() async throws {
        let rig = try await AuditRig()
        let (a, portA) = try await rig.startWorker(in: try TestDirectory("audit-a"))
        let (b, portB) = try await rig.startWorker(in: try TestDirectory("audit-b"))
        defer { Task { await a.stop() } }
        #expect(await eventually(timeout: .seconds(30)) {
            a.log.contains("partitions assigned") && b.log.contains("partitions assigned")
        })
        try await Task.sleep(for: .seconds(2))
        let f0 = AuditRig.windowStart(hoursFromNow: 24)  // closed by event time only
        func destination(_ i: Int) -> Int64 { i % 2 == 0 ? 7001 : 7002 }
        var first: [PixelEvent] = []
        for i in 0..<400 { first.append(AuditRig.fired("k\(i)", destination(i), f0 + Int64(i))) }
        for i in 0..<300 { first.append(AuditRig.received("k\(i)", destination(i), f0 + 500)) }
        try await rig.produce(first)
        #expect(await eventually(timeout: .seconds(30)) {
            let seen = (await AuditRig.metric(portA, "relay_pixel_audit_events_total") ?? 0)
                + (await AuditRig.metric(portB, "relay_pixel_audit_events_total") ?? 0)
            return seen >= 700
        })
        #expect(try await eventually(timeout: .seconds(30)) { try await rig.fullyCommitted() })

        var second: [PixelEvent] = []
        for i in 300..<400 where i % 10 < 5 { second.append(AuditRig.received("k\(i)", destination(i), f0 + 600)) }
        try await rig.produce(second)
        b.kill()  // whatever it had not written to the changelog is read again by its partitions' next owner
        #expect(await b.waitForExit() != 0)
        var third: [PixelEvent] = []
        for i in 0..<50 { third.append(AuditRig.fired("x\(i)", destination(i), f0 + 700)) }
        for i in 0..<40 { third.append(AuditRig.received("x\(i)", destination(i), f0 + 800)) }
        try await rig.produce(third)
        let (again, _) = try await rig.startWorker(in: try TestDirectory("audit-b2"))
        defer { Task { await again.stop() } }
        try await rig.tick(f0 + 10_000)

        #expect(try await eventually(timeout: .seconds(60)) { try await rig.reports().map(\.fired) == [225, 225] })
        expectCounts(try await rig.report(7001, f0), fired: 225, received: 200, alert: false)
        expectCounts(try await rig.report(7002, f0), fired: 225, received: 190, alert: true)
        try await Task.sleep(for: .seconds(3))  // time for a second publication, if there were one
        let published = try await TestBroker.readAll(rig.topics.pixelAudit).compactMap { try? AuditReport.decode($0.value) }
            .filter { $0.destinationID != 9999 }
        #expect(published.count == 2, "\(published.map { "\($0.destinationID): \($0.fired)/\($0.received)" })")
        #expect(a.log.contains("pixel audit state restored") || again.log.contains("pixel audit state restored"))
    }

    /// Two workers in one group share the four partitions; the merged totals are exact.
    @Test func twoWorkersShareThePartitions() async throws {
        let rig = try await AuditRig()
        let (a, portA) = try await rig.startWorker()
        let (b, portB) = try await rig.startWorker()
        defer { Task { await a.stop(); await b.stop() } }
        // Let the group settle with both members: each has been given partitions after the second one joined.
        #expect(await eventually(timeout: .seconds(30)) {
            a.log.contains("partitions assigned") && b.log.contains("partitions assigned")
        })
        try await Task.sleep(for: .seconds(2))
        let f0 = AuditRig.windowStart(hoursFromNow: 24)
        var events: [PixelEvent] = []
        for i in 0..<1_000 { events.append(AuditRig.fired("s\(i)", i % 2 == 0 ? 7001 : 7002, f0 + Int64(i))) }
        for i in 0..<1_000 where i % 10 < 8 { events.append(AuditRig.received("s\(i)", i % 2 == 0 ? 7001 : 7002, f0 + 1_500)) }
        for i in 0..<1_000 { events.append(AuditRig.fired("t\(i)", 7001, f0 + 2_000 + Int64(i))) }
        for i in 0..<1_000 where i % 20 != 0 { events.append(AuditRig.received("t\(i)", 7001, f0 + 3_000)) }
        try await rig.produce(events)
        try await rig.tick(f0 + 10_000)
        // Each partition reports its share when its window closes: wait for all four shares.
        #expect(try await eventually(timeout: .seconds(40)) {
            let reports = try await rig.reports()
            return reports.count == 3 && reports.map(\.fired) == [500, 1_000, 500]
        })
        expectCounts(try await rig.report(7001, f0), fired: 500, received: 400, alert: false)  // 20 %: not above
        expectCounts(try await rig.report(7002, f0), fired: 500, received: 400, alert: true)
        expectCounts(try await rig.report(7001, f0 + 2_000), fired: 1_000, received: 950, alert: false)
        // One merged report per destination and window, whichever member owns which partition (SPEC §6).
        let published = try await TestBroker.readAll(rig.topics.pixelAudit).compactMap { try? AuditReport.decode($0.value) }
            .filter { $0.destinationID != 9999 }
        #expect(published.count == 3 && published.allSatisfy { $0.partition == nil },
                "\(published.map { "\($0.destinationID)/\($0.windowStart)/\($0.partition.map(String.init) ?? "-")" })")
        let processedA = await AuditRig.metric(portA, "relay_pixel_audit_events_total") ?? 0
        let processedB = await AuditRig.metric(portB, "relay_pixel_audit_events_total") ?? 0
        #expect(processedA > 0 && processedB > 0)
        #expect(processedA + processedB >= 3_754)  // every event read at least once
    }
}

/// The tests read `/report` with Foundation's decoder, independently of the relay's own strict decoder.
extension AuditReport: Decodable {
    private enum Field: String, CodingKey {
        case destinationID = "destination_id", windowStart = "window_start", windowEnd = "window_end", fired,
             received, lateReceipts = "late_receipts", duplicateReceipts = "duplicate_receipts",
             unmatchedReceipts = "unmatched_receipts", alert, lossRate = "loss_rate", partition
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Field.self)
        self.init(destinationID: try c.decode(Int64.self, forKey: .destinationID),
                  windowStart: try c.decode(Int64.self, forKey: .windowStart),
                  windowEnd: try c.decode(Int64.self, forKey: .windowEnd),
                  fired: try c.decode(Int64.self, forKey: .fired), received: try c.decode(Int64.self, forKey: .received),
                  lateReceipts: try c.decode(Int64.self, forKey: .lateReceipts),
                  duplicateReceipts: try c.decode(Int64.self, forKey: .duplicateReceipts),
                  unmatchedReceipts: try c.decode(Int64.self, forKey: .unmatchedReceipts), maxLossRate: 1,
                  partition: try c.decodeIfPresent(Int32.self, forKey: .partition))
        alert = try c.decode(Bool.self, forKey: .alert)
        lossRate = try c.decode(Double.self, forKey: .lossRate)
    }
}
