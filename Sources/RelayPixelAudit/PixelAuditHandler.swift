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
    private let slots = Mutex<[TopicPartition: Slot]>([:])
    /// Restores in progress, so that the tick and the records of a partition wait for the same one.
    private let restores = Mutex<[TopicPartition: Task<Void, Never>]>([:])
    /// Changelog writes in flight per partition: a revoke waits (briefly) for them, so that a group is never
    /// finished by a former owner after the next one has restored.
    private let writing = Mutex<[TopicPartition: Int]>([:])

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
            let record = records[i]
            if current >= 0, runs[current].partition == record.partition, runs[current].generation == record.generation,
               runs[current].topic == record.topic
            {
                runs[current].indices.append(i)
                continue
            }
            let pair = Pair(tp: record.topicPartition, generation: record.generation)
            if let existing = index[pair] {
                current = existing
                runs[existing].indices.append(i)
            } else {
                current = runs.count
                index[pair] = current
                runs.append(Run(topic: record.topic, partition: record.partition, generation: record.generation,
                                indices: [i]))
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

    private struct Share: Hashable {
        let partition: TopicPartition
        let window: WindowKey
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

    /// Restores the partition's state from the changelog when this generation of its assignment has none yet.
    private func ensureLoaded(_ tp: TopicPartition, generation: UInt64) async {
        if slots.withLock({ $0[tp]?.generation == generation }) { return }
        let task = restores.withLock { restores -> Task<Void, Never> in
            if let running = restores[tp] { return running }
            let task = Task { await self.restore(tp, generation: generation) }
            restores[tp] = task
            return task
        }
        await task.value
        restores.withLock { $0[tp] = nil }
    }

    /// Reads the partition's changelog to its end (retried until it succeeds or the partition is revoked), repairs
    /// what a cut-short write left, and installs the state if the partition is still this generation's.
    private func restore(_ tp: TopicPartition, generation: UInt64) async {
        let logger = context.logger
        let started = ContinuousClock.now
        /// Set once the changelog was read to its end: its state, or a fresh one when it held none.
        var audit: PartitionAudit?
        while !Task.isCancelled, context.offsets.assignedGenerations.contains(where: { $0 == (tp, generation) }) {
            var reader = AuditChangelog.Restore(partition: tp.partition, windowMs: windowMs, graceMs: graceMs)
            do {
                let admin = try KafkaAdmin(configuration: context.kafkaClient, logger: logger)
                let complete = try await admin.read([TopicPartition(stateTopic, tp.partition)],
                                                    timeout: .seconds(300)) { batch in
                    for record in batch { reader.take(record) }
                }
                guard complete else { throw KafkaError.timedOut(operation: "restore \(stateTopic)") }
                for problem in reader.malformed.prefix(5) {
                    logger.error("pixel audit state record ignored", metadata: ["problem": "\(problem)"])
                }
                let (restored, repair) = reader.finish()
                if let repair {
                    try await write(repair, partition: tp)
                    logger.warning("pixel audit state: a cut-short write was undone", metadata: [
                        "partition": "\(tp)", "keys": "\(repair.windows.count + repair.pixels.count)"])
                }
                if let restored {
                    logger.info("pixel audit state restored", metadata: [
                        "partition": "\(tp)", "next_offset": "\(restored.nextOffset)",
                        "pixels": "\(restored.pixelCount)", "windows": "\(restored.windowCount)",
                        "seconds": "\(ContinuousClock.now - started)"])
                }
                audit = restored ?? PartitionAudit(partition: tp.partition, windowMs: windowMs, graceMs: graceMs)
                break
            } catch {
                logger.warning("cannot restore the pixel audit state yet, retrying",
                               metadata: ["partition": "\(tp)", "changelog": "\(stateTopic)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(2))
            }
        }
        // Revoked or shutting down before the read finished: no state, so nothing is counted or reported for the
        // partition here (its records stay uncommitted for the next owner).
        guard let audit else { return }
        let now = Timestamps.nowMilliseconds()
        slots.withLock { slots in
            guard slots[tp]?.generation != generation,
                  context.offsets.assignedGenerations.contains(where: { $0 == (tp, generation) })
            else { return }
            slots[tp] = Slot(audit: audit, generation: generation, checkpointed: audit.nextOffset,
                             lastRecordWall: now, lastCheckpointWall: now)
        }
    }

    /// One changelog write: the changes, then, once the broker has them all, the head.
    private func write(_ changes: AuditChanges, partition tp: TopicPartition) async throws(KafkaError) {
        let (records, head) = AuditChangelog.records(changes, topic: stateTopic)
        writing.withLock { $0[tp, default: 0] += 1 }
        defer { writing.withLock { $0[tp]! -= 1; if $0[tp] == 0 { $0[tp] = nil } } }
        try await context.producer.sendAll(records)
        _ = try await context.producer.send(head)
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

    /// Closes idle partitions' windows, publishes due reports, writes due checkpoints, completes covered records.
    func tick(force: Bool) async {
        // A partition with no traffic still closes its windows on the wall clock: load every assigned one.
        for (tp, generation) in context.offsets.assignedGenerations
        where !slots.withLock({ $0[tp]?.generation == generation }) {
            await ensureLoaded(tp, generation: generation)
        }
        let now = Timestamps.nowMilliseconds()
        let idleMs = max(graceMs, 1_000)
        let thresholds = self.thresholds
        var due: [(TopicPartition, UInt64, PendingReport)] = []
        var progress: [(TopicPartition, UInt64, Int64)] = []
        var deltas: [[Int64: AuditDeltas]] = []
        var pixels = 0
        var open = 0
        slots.withLock { slots in
            for tp in Array(slots.keys) {
                var slot = slots.removeValue(forKey: tp)!
                let idle = now - slot.lastRecordWall >= idleMs
                if idle, slot.audit.closeIdle(now: now) { slot.changed = true }
                for report in slot.audit.reportsToPublish(maxLossRate: thresholds.maxLossRate) {
                    due.append((tp, slot.generation, report))
                }
                // Event time closes windows; an idle partition has closed everything the wall clock has passed.
                let reached = idle ? max(slot.audit.watermark, now) : slot.audit.watermark
                let closedThrough = reached == .min ? .min : slot.audit.closeBoundary(atOrBefore: reached)
                if closedThrough != .min, closedThrough > slot.progressSent {
                    progress.append((tp, slot.generation, closedThrough))
                }
                deltas.append(slot.audit.takeMetrics())
                pixels += slot.audit.pixelCount
                open += slot.audit.openWindowCount
                slots[tp] = slot
            }
        }
        for d in deltas { PixelAuditMetrics.record(d) }
        PixelAuditMetrics.state(pixels: pixels, openWindows: open)
        let failed = due.isEmpty ? [] : await publish(due)
        await sendProgress(progress.filter { !failed.contains($0.0) })
        await checkpoint(now: now, force: force)
    }

    /// Each partition's `closed_through`, after its shares were acknowledged (the merger relies on that order).
    private func sendProgress(_ progress: [(TopicPartition, UInt64, Int64)]) async {
        for (tp, generation, closedThrough) in progress {
            let record = OutgoingRecord(
                topic: sharesTopic, key: AuditShares.progressKey(partition: tp.partition),
                value: ShareProgress(partition: tp.partition, closedThrough: closedThrough).jsonBytes(),
                partition: tp.partition)
            guard (try? await context.producer.send(record)) != nil else { continue }  // sent again next tick
            slots.withLock { slots in
                if slots[tp]?.generation == generation { slots[tp]!.progressSent = closedThrough }
            }
        }
    }

    /// Sends the shares to the shares topic (partition = input partition); returns the partitions where one failed.
    private func publish(_ due: [(TopicPartition, UInt64, PendingReport)]) async -> Set<TopicPartition> {
        let producer = context.producer
        let topic = sharesTopic
        let published = await withTaskGroup(of: (TopicPartition, UInt64, WindowKey, UInt64)?.self) { group in
            for (tp, generation, pending) in due {
                group.addTask {
                    let record = OutgoingRecord(topic: topic,
                                                key: AuditShares.shareKey(pending.report, partition: tp.partition),
                                                value: pending.report.jsonBytes(), partition: tp.partition)
                    do {
                        _ = try await producer.send(record)
                        return (tp, generation, pending.key, pending.revision)
                    } catch {
                        return nil
                    }
                }
            }
            var done: [(TopicPartition, UInt64, WindowKey, UInt64)] = []
            for await result in group { if let result { done.append(result) } }
            return done
        }
        if published.count < due.count {
            context.logger.warning("pixel audit shares not published yet, retrying",
                                   metadata: ["failed": "\(due.count - published.count)"])
        }
        slots.withLock { slots in
            for (tp, generation, key, revision) in published where slots[tp]?.generation == generation {
                slots[tp]!.audit.markPublished(key, revision: revision)
            }
        }
        let acknowledged = Set(published.map { Share(partition: $0.0, window: $0.2) })
        return Set(due.filter { !acknowledged.contains(Share(partition: $0.0, window: $0.2.key)) }.map(\.0))
    }

    /// Writes each changed partition's changes to the changelog (at most every `checkpointIntervalMs`, or less
    /// often when writing is slow, so that writing takes at most about a twentieth of the time under load; at once
    /// when the partition has been quiet for an interval), then marks final the records the head covers.
    private func checkpoint(now: Int64, force: Bool) async {
        let interval = checkpointIntervalMs
        let due: [(TopicPartition, UInt64, AuditChanges)] = slots.withLock { slots in
            var result: [(TopicPartition, UInt64, AuditChanges)] = []
            for (tp, slot) in slots where slot.changed
                && (force || now - slot.lastCheckpointWall >= max(interval, slot.checkpointCost * 20)
                    || (now - slot.lastRecordWall >= interval && now - slot.lastCheckpointWall >= interval))
            {
                result.append((tp, slot.generation, slots[tp]!.audit.takeChanges()))
                slots[tp]!.changed = false
                slots[tp]!.lastCheckpointWall = now
            }
            return result
        }
        // Partitions are written side by side: one slow write does not hold up the others' commits.
        await withDiscardingTaskGroup { group in
            for (tp, generation, changes) in due {
                group.addTask { await self.writeCheckpoint(changes, partition: tp, generation: generation) }
            }
        }
    }

    /// One partition's checkpoint: its changes to the changelog, then the records the head covers marked final
    /// (put back to be written again when the write fails).
    private func writeCheckpoint(_ changes: AuditChanges, partition tp: TopicPartition, generation: UInt64) async {
        let started = ContinuousClock.now
        do {
            try await write(changes, partition: tp)
        } catch {
            context.logger.error("pixel audit state not written, retrying",
                                 metadata: ["partition": "\(tp)", "error": "\(error)"])
            slots.withLock { slots in
                guard slots[tp]?.generation == generation else { return }
                slots[tp]!.audit.requeue(changes)
                slots[tp]!.changed = true
            }
            return
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        PixelAuditMetrics.checkpoint(records: changes.windows.count + changes.pixels.count + 1, seconds: seconds)
        let final: [Int64] = slots.withLock { slots in
            guard var slot = slots.removeValue(forKey: tp) else { return [] }
            defer { slots[tp] = slot }
            guard slot.generation == generation else { return [] }
            slot.checkpointCost = Int64(seconds * 1000)
            slot.checkpointed = max(slot.checkpointed, changes.nextOffset)
            let covered = slot.uncovered.partitioningIndex { $0 >= changes.nextOffset }
            let final = Array(slot.uncovered[..<covered])
            slot.uncovered.removeFirst(covered)
            return final
        }
        context.offsets.complete(tp, offsets: final, generation: generation)
    }

    // MARK: the merged view

    /// Follows `aam.pixel-audit` from the beginning into the report book (what `/report` serves and the loss-rate
    /// gauges show): every worker sees every destination, whichever partitions it owns.
    func followReports() async {
        await TopicFollower.follow(auditTopic, client: context.kafkaClient, logger: context.logger) { batch in
            for record in batch {
                guard let report = try? AuditReport.decode(record.value) else { continue }  // never trusted
                take(report)
            }
        }
    }

    private func take(_ report: AuditReport) {
        let before = book.reports(destination: report.destinationID).last { $0.windowStart == report.windowStart }
        guard let merged = book.apply(report) else { return }
        let latest = book.reports(destination: report.destinationID).last?.windowStart == merged.windowStart
        PixelAuditMetrics.report(merged, isLatest: latest, newlyAlerting: merged.alert && before?.alert != true)
    }
}

extension Array {
    /// The first index whose element satisfies `predicate`, for a predicate false then true along the array.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var lo = 0
        var hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if predicate(self[mid]) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
