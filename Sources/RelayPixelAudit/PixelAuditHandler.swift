import Foundation
import Logging
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime
import Synchronization

/// `relay-pixel-audit`'s record handler: one `PartitionAudit` per assigned partition of `aam.pixel-events`, its
/// changes written to the changelog `<group>.state` (`AuditChangelog`) before its records are marked final. Each
/// partition's share of every closed window goes to `<group>.shares`, from which one member (``ReportMerger``)
/// publishes one merged report per destination and window to `aam.pixel-audit`.
///
/// Flow: `handle` decodes a batch (malformed events are dead-lettered), applies it to the partition's state in offset
/// order (records below the restored state's offset are ignored: already counted). A background tick (`run`) closes
/// idle partitions' windows by the wall clock, publishes the share of every closed window whose report changed (it
/// stays due until the broker acknowledges it, and "due" is part of the state, so a share is never lost between a
/// close and a crash) and then the partition's progress, writes the changes of changed partitions to the changelog
/// and marks the records they cover final.
///
/// This file holds the records' side and the lifecycle; `+State` the changelog (restore, checkpoints), `+Reports`
/// what is published (shares, progress) and the merged reports followed back.
public final class PixelAuditHandler: RecordHandler {
    let context: WorkerContext
    let windowMs: Int64
    let graceMs: Int64
    let stateTopic: String
    let thresholds: LossThresholds
    let book: ReportBook
    let auditTopic: String
    let sharesTopic: String
    let merger: ReportMerger
    let tickInterval: Duration
    let checkpointIntervalMs: Int64
    let slots = Mutex<[TopicPartition: Slot]>([:])
    /// Restores in progress, so that the tick and the records of a partition wait for the same one.
    let restores = Mutex<[TopicPartition: Task<Void, Never>]>([:])
    /// Changelog writes in flight per partition: a revoke waits (briefly) for them, so that a group is never
    /// finished by a former owner after the next one has restored.
    let writing = Mutex<[TopicPartition: Int]>([:])

    struct Slot {
        var audit: PartitionAudit
        let generation: UInt64
        /// Offsets applied (or skipped) and not yet covered by a head on the changelog, in read order.
        var uncovered: [Int64] = []
        /// The `nextOffset` of the last head on the changelog: records below it are final already.
        var checkpointed: Int64
        var changed = false
        var lastRecordWall: Int64
        var lastCheckpointWall: Int64
        /// How long the last changelog write took, ms: a busy partition writes less often, so that writing never
        /// takes more than about 5 % of the time (and repeated changes to a key are written once).
        var checkpointCost: Int64 = 0
        /// No record applied yet under this assignment (the first one shows whether the state is contiguous).
        var fresh = true
        /// The `closed_through` last acknowledged on the shares topic.
        var progressSent = Int64.min
    }

    public init(context: WorkerContext, group: String, book: ReportBook, tickInterval: Duration = .milliseconds(200),
                checkpointIntervalMs: Int64 = 1_000)
    {
        self.context = context
        windowMs = context.config.pixelAudit.auditWindow.milliseconds
        graceMs = context.config.pixelAudit.grace.milliseconds
        stateTopic = AuditChangelog.topic(group: group)
        thresholds = book.thresholds
        self.book = book
        auditTopic = context.config.kafka.topics.pixelAudit
        sharesTopic = AuditShares.topic(group: group)
        merger = ReportMerger(context: context, group: group, windowMs: windowMs, graceMs: graceMs,
                              thresholds: book.thresholds)
        self.tickInterval = tickInterval
        self.checkpointIntervalMs = checkpointIntervalMs
    }


    // MARK: records

    public func handle(_ records: [KafkaRecord]) async {
        guard !records.isEmpty else { return }
        // Group by partition and generation (records of a partition arrive in long runs: compare with the previous
        // record before hashing), as index lists into the batch so that no record is copied.
        var runs: [Run] = []
        var index: [Pair: Int] = [:]
        var current = -1
        for i in records.indices {
            // Fields read in place: a copy of the record (`let record = records[i]`) retained and released its
            // topic, bytes and headers for every record.
            let partition = records[i].partition, generation = records[i].generation
            if current >= 0, runs[current].partition == partition, runs[current].generation == generation,
               runs[current].topic == records[i].topic
            {
                runs[current].indices.append(i)
                continue
            }
            let pair = Pair(tp: TopicPartition(records[i].topic, partition), generation: generation)
            if let existing = index[pair] {
                current = existing
                runs[existing].indices.append(i)
            } else {
                current = runs.count
                index[pair] = current
                runs.append(Run(topic: records[i].topic, partition: partition, generation: generation, indices: [i]))
            }
        }
        if Set(runs.map(\.partition)).count == runs.count {
            // Partitions are independent: decode and apply them concurrently (in order within each).
            await withDiscardingTaskGroup { group in
                for run in runs { group.addTask { await self.handle(run: run, of: records) } }
            }
        } else {
            for run in runs { await handle(run: run, of: records) }
        }
        PixelAuditMetrics.events(records.count)
    }

    private struct Pair: Hashable {
        let tp: TopicPartition
        let generation: UInt64
    }

    private struct Run: Sendable {
        let topic: String
        let partition: Int32
        let generation: UInt64
        var indices: [Int]
    }

    private func handle(run: Run, of batch: [KafkaRecord]) async {
        let tp = TopicPartition(run.topic, run.partition)
        let generation = run.generation
        await ensureLoaded(tp, generation: generation)
        var sightings: [PixelSighting?] = []
        sightings.reserveCapacity(run.indices.count)
        var malformed: [(Int, String)] = []
        let input = context.config.input
        let wallNow = Timestamps.nowMilliseconds()
        for i in run.indices {
            do throws(MalformedInput) {
                // A far-future `ts` would move the partition's event clock so that every later pixel "expired".
                let sighting = try PixelSighting.decode(batch[i].value)
                if let problem = input.problem(eventTime: sighting.ts, recordTime: batch[i].timestamp, now: wallNow) {
                    throw MalformedInput(problem)
                }
                sightings.append(sighting)
            } catch {
                malformed.append((i, error.reason))
                sightings.append(nil)
            }
        }
        for (i, reason) in malformed { await deadLetter(batch[i], reason: reason) }
        let now = Timestamps.nowMilliseconds()
        var gap: (Int64, Int64)?
        let (final, deltas) = slots.withLock { slots -> ([Int64], [Int64: AuditDeltas]) in
            guard var slot = slots.removeValue(forKey: tp) else { return ([], [:]) }
            defer { slots[tp] = slot }
            guard slot.generation == generation else { return ([], [:]) }
            if slot.fresh {
                slot.fresh = false
                if let i = run.indices.first, batch[i].offset > slot.audit.nextOffset {
                    let first = batch[i].offset
                    gap = (slot.audit.nextOffset, first)
                }
            }
            var final: [Int64] = []
            for (i, sighting) in zip(run.indices, sightings) {
                let offset = batch[i].offset
                if offset < slot.checkpointed {
                    final.append(offset)  // counted before the restored state: nothing to do
                    continue
                }
                if let sighting { slot.audit.apply(sighting, offset: offset) }
                else { slot.audit.skip(offset: offset) }
                slot.uncovered.append(offset)
                slot.changed = true
            }
            slot.lastRecordWall = now
            return (final, slot.audit.takeMetrics())
        }
        context.offsets.complete(tp, offsets: final, generation: generation)
        PixelAuditMetrics.record(deltas)
        if let (covered, first) = gap {
            // Offsets [covered, first) were counted by a state the changelog does not hold (it was deleted, or
            // written by another group): the windows they fell in are incomplete here.
            context.logger.warning("pixel audit state does not cover the group's position", metadata: [
                "partition": "\(tp)", "state_next_offset": "\(covered)", "first_offset_read": "\(first)",
                "changelog": "\(stateTopic)", "hint": "replay the group to the earliest offset to rebuild"])
        }
    }

    private func deadLetter(_ record: KafkaRecord, reason: String) async {
        PixelAuditMetrics.malformed()
        await context.deadLetters.keepMalformed(record, reason: reason, logger: context.logger)
    }

    public func partitionsAssigned(_ partitions: [TopicPartition], generation: UInt64) {
        // State is loaded by the next tick or the first records of the new assignment (off the poll thread).
        slots.withLock { slots in for tp in partitions { slots[tp] = nil } }
        if partitions.contains(where: { $0.partition == 0 }) { merger.lead(true) }
    }

    public func partitionsRevoked(_ partitions: [TopicPartition]) {
        // The next owner restores from the changelog and re-reads from the last commit (never past it). A write in
        // flight is let finish first (on the poll thread, up to 10 s), so that it cannot land after that restore.
        slots.withLock { slots in for tp in partitions { slots[tp] = nil } }
        let deadline = ContinuousClock.now + .seconds(10)
        while writing.withLock({ w in partitions.contains { w[$0] != nil } }), ContinuousClock.now < deadline {
            usleep(10_000)
        }
        if partitions.contains(where: { $0.partition == 0 }) { merger.lead(false) }
    }

    // MARK: background

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.followReports() }
            group.addTask { await self.merger.run(tick: self.tickInterval) }
            while !Task.isCancelled {
                try? await Task.sleep(for: tickInterval)
                await tick(force: false)
            }
            group.cancelAll()
        }
    }

    public func drain() async {
        await tick(force: true)
    }
}
