import Foundation
import Logging
import RelayCore
import RelayKafka
import RelayRuntime
import RelayTestSupport
import Synchronization
import Testing

@testable import RelayBatch

/// The engine driven directly with records and a manual clock: cuts, modes, removals, mapping dates, skipped users,
/// `.info`, offsets and the state in Kafka (the changelog and cuts topics are on the test broker), in milliseconds
/// rather than real intervals.
@Suite("Batch engine: cuts over records", .serialized)
struct BatchEngineTests {
    static let t0: Int64 = 1_800_000_000_000  // 2027-01-15, a multiple of 10 s

    /// iter (partner ids, DPID 20914) and full (uuid) destinations over three cuts.
    static func yaml(topics: RelayTopics, output: String, gzip: Bool = false, maxFileBytes: Int = 1_000_000) -> String {
        topics.kafkaYAML + """
        destinations:
          - id: 6001
            name: acme-files
            kind: batch
            every: 10s
            grace: 1s
            mode: iter
            master_dpid: 20914
            pid_alias: acme
            gzip: \(gzip)
            max_file_bytes: \(maxFileBytes)
            output: {type: dir, path: \(output)}
            mappings: [{segment: 4532, alias: a4532}, {segment: 99, alias: "99"},
                       {segment: 77, alias: dated, start: 2026-01-01, end: 2026-01-31}]
          - id: 6002
            name: acme-full
            kind: batch
            every: 10s
            grace: 1s
            mode: full
            master_dpid: 0
            pid_alias: acmefull
            gzip: \(gzip)
            max_file_bytes: \(maxFileBytes)
            output: {type: dir, path: \(output)}
            mappings: [{segment: 4532, alias: a4532}, {segment: 99, alias: "99"},
                       {segment: 77, alias: dated, start: 2026-01-01, end: 2026-01-31}]
        """
    }

    @Test func iterAndFullOverThreeCuts() async throws {
        let h = try await Harness(partitions: [0], partitionCount: 1)
        let t0 = Self.t0
        // Cut 1 (t0 + 10 s).
        await h.feed(0, [
            (t0 + 1_000, event("u1", [.realized(4532), .realized(99)], pid: "P1")),
            (t0 + 1_100, event("u2", [.realized(4532)], pid: nil)),  // no DPID 20914 id: skipped in iter
            (t0 + 1_200, event("u3", [.realized(5555)], pid: "P3")),  // unmapped
            (t0 + 1_300, event("u7", [.realized(77)], pid: "P7", ts: 1_768_003_200_000)),  // 2026-01-10: dated counts
            (t0 + 1_400, event("u8", [.realized(77)], pid: "P8", ts: 1_772_323_200_000)),  // 2026-03-01: it does not
        ])
        // Cut 2: u1 loses 99 (not listed), u4 arrives; the first record closes cut 1.
        await h.feed(0, [
            (t0 + 11_000, event("u1", [.realized(4532)], pid: "P1")),
            (t0 + 11_100, event("u4", [.realized(99)], pid: "P4")),
        ])
        let cut1 = t0 + 10_000
        #expect(h.text("dir_6001_20914_acme_iter_\(cut1)_000.sync") == "P1 a4532,99 \nP7 dated \n")
        #expect(h.text("dir_6002_0_acmefull_full_\(cut1)_000.sync") == "u1 a4532,99\nu2 a4532\nu7 dated\n")
        #expect(await h.eventually { h.exists("dir_6001_20914_acme_iter_\(cut1).info") })
        // Records of cut 2 are final once the changelog has them: the commit follows the input, not the cuts.
        #expect(await h.commitPoint(0) == 7)
        // Cut 3: u1 re-qualifies for 99, u4 is removed from 99 (status 0), u5 comes and goes within the cut.
        await h.feed(0, [
            (t0 + 21_000, event("u1", [.realized(4532), .realized(99)], pid: "P1")),
            (t0 + 21_100, event("u4", [.removed(99)], pid: "P4")),
            (t0 + 21_200, event("u5", [.realized(4532)], pid: "P5")),
            (t0 + 21_300, event("u5", [], pid: "P5")),
        ])
        let cut2 = t0 + 20_000
        #expect(h.text("dir_6001_20914_acme_iter_\(cut2)_000.sync") == "P1 a4532 99\nP4 99 \n")
        #expect(h.text("dir_6002_0_acmefull_full_\(cut2)_000.sync") == "u1 a4532\nu2 a4532\nu4 99\nu7 dated\n")
        // The idle timer makes cut 3 once grace has passed with nothing read.
        h.clock.set(t0 + 31_500)
        await h.engine.tick()
        let cut3 = t0 + 30_000
        #expect(h.text("dir_6001_20914_acme_iter_\(cut3)_000.sync") == "P1 a4532,99 \nP4  99\n")
        #expect(h.text("dir_6002_0_acmefull_full_\(cut3)_000.sync") == "u1 a4532,99\nu2 a4532\nu7 dated\n")
        #expect(await h.commitPoint(0) == 11)  // everything read is final
        // .info of each cut lists the one part with its size, lines and an MD5 recomputed here.
        for (cut, lines) in [(cut1, 2), (cut2, 2), (cut3, 2)] {
            let name = "dir_6001_20914_acme_iter_\(cut)"
            #expect(await h.eventually { h.exists(name + ".info") })
            let info = try h.json(name + ".info")
            let files = try #require(info["Files"] as? [[String: Any]])
            #expect(files.count == 1)
            let file = files[0]
            let url = h.output.appendingPathComponent(name + "_000.sync")
            #expect(file["FileName"] as? String == name + "_000.sync")
            #expect(file["FileByteSize"] as? Int == (try Data(contentsOf: url)).count)
            #expect(file["FileLineCount"] as? Int == lines)
            #expect(file["FileSequenceNumber"] as? Int == 0)
            #expect(await md5sum(url) == file["MD5"] as? String)
            let totals = try #require(info["Totals"] as? [String: Any])
            #expect(totals["TotalNumberFiles"] as? Int == 1)
            #expect(totals["TotalNumberLines"] as? Int == lines)
            #expect(totals["TotalByteSize"] as? Int == file["FileByteSize"] as? Int)
        }
        // Nothing partial left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: h.output.path).allSatisfy { !$0.hasPrefix(".") })
    }

    @Test func infoWaitsForEveryPartitionAndPartsAreNumberedPerPartition() async throws {
        let h = try await Harness(partitions: [0, 1], partitionCount: 2, maxFileBytes: 30)
        let t0 = Self.t0
        await h.feed(0, (0..<5).map { (t0 + 1_000 + Int64($0), event("a\($0)", [.realized(4532)], pid: "PA\($0)")) })
        await h.feed(0, [(t0 + 11_000, event("a0", [.realized(99)], pid: "PA0"))])
        let cut = t0 + 10_000
        // Partition 0 delivered its parts (numbered from 0), partition 1 has not answered yet: no .info.
        #expect(h.exists("dir_6001_20914_acme_iter_\(cut)_000.sync"))
        #expect(h.exists("dir_6001_20914_acme_iter_\(cut)_001.sync"))  // 30-byte parts: two lines each
        #expect(!h.exists("dir_6001_20914_acme_iter_\(cut).info"))
        await h.feed(1, [(t0 + 2_000, event("b0", [.realized(99)], pid: "PB0")),
                         (t0 + 12_000, event("b1", [.realized(99)], pid: "PB1"))])
        #expect(h.exists("dir_6001_20914_acme_iter_\(cut)_500.sync"))  // partition 1 of 2 numbers from 500
        #expect(await h.eventually { h.exists("dir_6001_20914_acme_iter_\(cut).info") })
        let info = try h.json("dir_6001_20914_acme_iter_\(cut).info")
        let files = try #require(info["Files"] as? [[String: Any]])
        #expect(files.map { $0["FileName"] as? String ?? "" } == [
            "dir_6001_20914_acme_iter_\(cut)_000.sync", "dir_6001_20914_acme_iter_\(cut)_001.sync",
            "dir_6001_20914_acme_iter_\(cut)_002.sync", "dir_6001_20914_acme_iter_\(cut)_500.sync",
        ])
        for file in files { #expect((file["FileByteSize"] as? Int ?? 99) <= 30) }
        let totals = try #require(info["Totals"] as? [String: Any])
        #expect(totals["TotalNumberLines"] as? Int == 6)
    }

    @Test func aNewOwnerRestoresFromTheChangelogAndAReplayRewritesTheSameFiles() async throws {
        let h = try await Harness(partitions: [0], partitionCount: 1, gzip: true)
        let t0 = Self.t0
        let first: [(Int64, Qualification)] = (0..<50).map {
            (t0 + 1_000 + Int64($0), event("u\($0)", [.realized(4532), .realized(99)], pid: "P\($0)"))
        }
        let second: [(Int64, Qualification)] = (0..<50).map {
            (t0 + 11_000 + Int64($0), event("u\($0)", $0 % 2 == 0 ? [.realized(4532)] : [], pid: "P\($0)"))
        }
        let third: [(Int64, Qualification)] = [(t0 + 21_000, event("u1", [.realized(99)], pid: "P1"))]
        await h.feed(0, first + second + third)
        let cut2 = t0 + 20_000
        let name = "dir_6001_20914_acme_iter_\(cut2)_000.sync.gz"
        let original = try Data(contentsOf: h.output.appendingPathComponent(name))
        #expect(await gunzip(h.output.appendingPathComponent(name)).split(separator: "\n").count == 50)
        // Everything read is final (101). A new owner (new assignment, empty memory) restores the partition from
        // the changelog: iter needs each user's set at cut 2, which only the changelog has. It resumes at offset
        // 100 here, as if the last commit had not landed: re-applying a record the state holds changes nothing.
        #expect(await h.commitPoint(0) == 101)
        try FileManager.default.removeItem(at: h.output.appendingPathComponent(name))
        h.reassign(0)
        await h.feed(0, third, firstOffset: 100)
        h.clock.set(t0 + 31_500)
        await h.engine.tick()
        let cut3 = t0 + 30_000
        #expect(await gunzip(h.output.appendingPathComponent("dir_6001_20914_acme_iter_\(cut3)_000.sync.gz")) == "P1 99 \n")
        // A replay from the beginning of the input rebuilds the state from nothing and writes cut 2 again, byte for
        // byte.
        h.reassign(0)
        await h.feed(0, first + second + third, firstOffset: 0)
        #expect(try Data(contentsOf: h.output.appendingPathComponent(name)) == original)
    }
}

extension BatchEngineTests {
    /// The owner dies after the changelog has a cut's users but before it makes the cut: the new owner restores the
    /// open cut with them and, replaying the record that closes it, makes that cut, not a later one.
    @Test func aNewOwnerMakesTheOpenCutItRestored() async throws {
        let h = try await Harness(partitions: [0], partitionCount: 1)
        let t0 = Self.t0
        await h.feed(0, (0..<3).map { (t0 + 1_000 + Int64($0), event("u\($0)", [.realized(4532)], pid: "P\($0)")) })
        #expect(await h.commitPoint(0) == 3)
        h.reassign(0)
        await h.feed(0, [(t0 + 11_000, event("late", [.realized(4532)], pid: "PL"))], firstOffset: 3)
        let cut1 = t0 + 10_000
        #expect(h.text("dir_6001_20914_acme_iter_\(cut1)_000.sync") == "P0 a4532 \nP1 a4532 \nP2 a4532 \n")
        #expect(!h.exists("dir_6001_20914_acme_iter_\(cut1 + 10_000)_000.sync"))
    }

    /// Records read under an assignment that was revoked (and the partition given back) before the engine got to
    /// them are not applied: the new assignment reads them again from the commit point.
    @Test func recordsOfAnEarlierAssignmentAreNotApplied() async throws {
        let h = try await Harness(partitions: [0], partitionCount: 1)
        let t0 = Self.t0
        let stale = h.read(0, [(t0 + 1_000, event("stale", [.realized(4532)], pid: "PS"))])
        #expect(h.offsets.track(stale).count == 1)
        h.reassign(0)
        await h.engine.handle(stale)
        await h.feed(0, [(t0 + 2_000, event("fresh", [.realized(4532)], pid: "PF")),
                         (t0 + 11_000, event("next", [.realized(99)], pid: "PN"))], firstOffset: 0)
        #expect(h.text("dir_6001_20914_acme_iter_\(t0 + 10_000)_000.sync") == "PF a4532 \n")
    }
}

func event(_ uuid: String, _ segments: [SegmentState], pid: String?, ts: Int64 = BatchEngineTests.t0) -> Qualification {
    Qualification(eventID: "ev-\(UUID().uuidString)", uuid: uuid, timestamp: ts, segments: segments,
                  partnerIDs: pid.map { ["20914": $0] } ?? [:])
}

final class ManualClock: Sendable {
    private let now = Mutex<Int64>(0)
    func set(_ value: Int64) { now.withLock { $0 = value } }
    func get() -> Int64 { now.withLock { $0 } }
}

/// An engine over a temporary output directory and fresh topics on the test broker (input, changelog, cuts), with
/// records built in memory, and its cut completer running.
final class Harness: Sendable {
    let folder: URL
    let output: URL
    let engine: BatchEngine
    let completer: CutCompleter
    let ownership: Ownership
    let offsets: OffsetTracker
    let clock: ManualClock
    let topic: String
    let group: String
    private let completing: Task<Void, Never>
    private let nextOffsets = Mutex<[Int32: Int64]>([:])
    /// The generation of each partition's current assignment (records carry it), from one counter as the consumer's.
    private let generations = Mutex<(last: UInt64, of: [Int32: UInt64])>((1, [:]))

    init(partitions: [Int32], partitionCount: Int, gzip: Bool = false, maxFileBytes: Int = 1_000_000,
         yaml: String? = nil, environment: [String: String] = [:]) async throws
    {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("batch-\(UUID().uuidString.prefix(8))")
        let output = folder.appendingPathComponent("out")
        self.folder = folder
        self.output = output
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let topics = try await TestBroker.createRelayTopics(partitions: Int32(partitionCount))
        topic = topics.qualifications
        group = TestBroker.uniqueName("batch-engine")
        // A given configuration's `kafka:` line gives way to the fresh topics.
        let text = yaml.map { yaml in
            yaml.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.hasPrefix("kafka:") ? topics.kafkaYAML : String($0) }.joined(separator: "\n")
        } ?? BatchEngineTests.yaml(topics: topics, output: output.path, gzip: gzip, maxFileBytes: maxFileBytes)
        let config = try RelayConfig.parse(yaml: text,
                                           environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
        let plans = try config.batchDestinations.map { destination, settings in
            BatchDestinationPlan(destination: destination, settings: settings,
                                 delivery: try makeDelivery(settings.output, spool: folder.appendingPathComponent("spool"),
                                                            httpClient: .shared, environment: environment))
        }
        let producer = try KafkaProducer(configuration: TestBroker.client, logger: TestBroker.logger)
        let clock = ManualClock()
        self.clock = clock
        let ownership = Ownership(producer: producer)
        let offsets = OffsetTracker()
        self.ownership = ownership
        self.offsets = offsets
        let context = WorkerContext(
            config: config, name: "relay-batch", workerID: "test", logger: TestBroker.logger, producer: producer,
            deadLetters: DeadLetterWriter(topic: topics.deadLetter, worker: "test", producer: producer),
            offsets: offsets, readiness: Readiness(), kafkaClient: TestBroker.client)
        let completer = CutCompleter(context: context, group: group, plans: plans)
        self.completer = completer
        engine = BatchEngine(plans: plans, context: context, group: group, completer: completer,
                             ownership: ownership, clock: { clock.get() })
        completing = Task { await completer.run(tick: .milliseconds(100)) }
        ownership.assign(partitions, generation: 1)
        offsets.assign(partitions.map { TopicPartition(topics.qualifications, $0) }, generation: 1)
        generations.withLock { for p in partitions { $0.of[p] = 1 } }
        completer.lead(partitions.contains(0))
        // The completer has created the internal topics and learnt the partition count.
        while completer.partitionCount == nil { try await Task.sleep(for: .milliseconds(50)) }
    }

    deinit {
        completing.cancel()
        try? FileManager.default.removeItem(at: folder)
    }

    /// Waits (up to 30 s) until the completer has written every complete cut's `.info`.
    func settle() async {
        let deadline = ContinuousClock.now + .seconds(30)
        while completer.hasDue(), ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
    }

    /// Waits (up to 15 s) for a condition that another task makes true, such as the completer writing an `.info`.
    func eventually(_ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }


    /// A new assignment of the partition (as after a rebalance or restart): in-memory state is dropped.
    func reassign(_ partition: Int32) {
        let g = generations.withLock { $0.last += 1; $0.of[partition] = $0.last; return $0.last }
        ownership.revoke([partition])
        ownership.assign([partition], generation: g)
        _ = offsets.revoke([TopicPartition(topic, partition)])
        offsets.assign([TopicPartition(topic, partition)], generation: g)
        nextOffsets.withLock { $0[partition] = nil }
    }

    /// Feeds records stamped `timestamp` (the Kafka timestamp) at consecutive offsets; the clock follows them.
    func feed(_ partition: Int32, _ events: [(Int64, Qualification)], firstOffset: Int64? = nil) async {
        let accepted = offsets.track(read(partition, events, firstOffset: firstOffset))
        await engine.handle(accepted)
    }

    /// The records as the consumer reads them under the partition's current assignment (not yet handed over).
    func read(_ partition: Int32, _ events: [(Int64, Qualification)], firstOffset: Int64? = nil) -> [KafkaRecord] {
        let g = generations.withLock { $0.of[partition] ?? 0 }
        let start = nextOffsets.withLock { $0[partition] } ?? firstOffset ?? 0
        var records: [KafkaRecord] = []
        for (i, (timestamp, q)) in events.enumerated() {
            records.append(KafkaRecord(topic: topic, partition: partition, offset: start + Int64(i),
                                       key: Array(q.uuid.utf8), value: QualificationEncoder.encode(q),
                                       timestamp: timestamp, headers: [], generation: g))
        }
        nextOffsets.withLock { $0[partition] = start + Int64(events.count) }
        if let last = events.last { clock.set(max(clock.get(), last.0)) }
        return records
    }

    /// The commit point once the changelog writes in flight are answered (they are pipelined).
    func commitPoint(_ partition: Int32) async -> Int64? {
        await engine.drain()
        return offsets.commitPoint(TopicPartition(topic, partition))
    }

    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: output.appendingPathComponent(name).path) }

    func text(_ name: String) -> String? {
        (try? Data(contentsOf: output.appendingPathComponent(name))).map { String(decoding: $0, as: UTF8.self) }
    }

    func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: output.appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}
