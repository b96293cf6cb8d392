import Foundation
import Logging
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime
import Synchronization

/// `relay-pixel-audit`'s record handler: one `PartitionAudit` per assigned partition of `aam.pixel-events`,
/// checkpointed (`AuditCheckpoint`) before its records are marked final; each partition's share of every closed
/// window goes to `<group>.shares`, from which one member (``ReportMerger``) publishes one merged report per
/// destination and window to `aam.pixel-audit`.
///
/// Flow: `handle` decodes a batch (malformed events are dead-lettered), applies it to the partition's state in offset
/// order (records below the checkpoint's offset are ignored: already counted). A background tick (`run`) closes
/// idle partitions' windows by the wall clock, publishes the share of every closed window whose report changed (it
/// stays due until the broker acknowledges it, and "due" is part of the checkpoint, so a share is never lost between
/// a close and a crash) and then the partition's progress, writes the checkpoints of changed partitions and marks
/// the records they cover final.
public final class PixelAuditHandler: RecordHandler {
    let context: WorkerContext
    let group: String
    let windowMs: Int64
    let graceMs: Int64
    let stateDir: String
    let thresholds: LossThresholds
    let book: ReportBook
    let auditTopic: String
    let sharesTopic: String
    let merger: ReportMerger
    let tickInterval: Duration
    let checkpointIntervalMs: Int64
    private let slots = Mutex<[TopicPartition: Slot]>([:])
    private let io = BlockingIO(serial: "relay-pixel-audit.io")
    private let feedIO = BlockingIO(serial: "relay-pixel-audit.feed")

    struct Slot {
        var audit: PartitionAudit
        let generation: UInt64
        /// Offsets applied (or skipped) and not yet covered by a checkpoint on disk, in read order.
        var uncovered: [Int64] = []
        /// The `nextOffset` of the checkpoint on disk: records below it are final already.
        var checkpointed: Int64
        var changed = false
        var lastRecordWall: Int64
        var lastCheckpointWall: Int64
        /// How long the last checkpoint took (encode + write), ms: a large state is checkpointed less often, so that
        /// writing it never takes more than about 5 % of the time.
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
        self.group = group
        windowMs = context.config.pixelAudit.auditWindow.milliseconds
        graceMs = context.config.pixelAudit.grace.milliseconds
        stateDir = context.config.pixelAudit.stateDir
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
                    final.append(offset)  // counted before the checkpoint on disk: nothing to do
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
        for offset in final { context.offsets.complete(tp, offset: offset, generation: generation) }
        PixelAuditMetrics.record(deltas)
        if let (covered, first) = gap {
            // Offsets [covered, first) were counted by a state this process cannot see (a lost or unshared
            // state_dir): the windows they fell in are incomplete here.
            context.logger.warning("pixel audit state does not cover the group's position", metadata: [
                "partition": "\(tp)", "state_next_offset": "\(covered)", "first_offset_read": "\(first)",
                "hint": "keep state_dir on storage every worker shares, or replay the group to rebuild"])
        }
    }

    /// Loads the partition's checkpoint when this generation of its assignment has no state yet.
    private func ensureLoaded(_ tp: TopicPartition, generation: UInt64) async {
        if slots.withLock({ $0[tp]?.generation == generation }) { return }
        let path = AuditCheckpoint.path(stateDir: stateDir, group: group, topic: tp.topic, partition: tp.partition)
        let (windowMs, graceMs, logger) = (self.windowMs, self.graceMs, context.logger)
        let loaded: PartitionAudit? = await io.run { () -> PartitionAudit? in
            guard let bytes = AuditCheckpoint.read(path) else { return nil }
            do {
                return try AuditCheckpoint.decode(bytes, windowMs: windowMs, graceMs: graceMs)
            } catch {
                logger.error("pixel audit checkpoint ignored",
                             metadata: ["path": "\(path)", "problem": "\(error)"])
                return nil
            }
        }
        let audit = loaded ?? PartitionAudit(partition: tp.partition, windowMs: windowMs, graceMs: graceMs)
        if let loaded {
            logger.info("pixel audit state restored", metadata: [
                "partition": "\(tp)", "next_offset": "\(loaded.nextOffset)", "pixels": "\(loaded.pixelCount)",
                "windows": "\(loaded.windowCount)"])
        }
        let now = Timestamps.nowMilliseconds()
        slots.withLock { slots in
            guard slots[tp]?.generation != generation else { return }
            slots[tp] = Slot(audit: audit, generation: generation, checkpointed: audit.nextOffset,
                             lastRecordWall: now, lastCheckpointWall: now)
        }
    }

    private func deadLetter(_ record: KafkaRecord, reason: String) async {
        PixelAuditMetrics.malformed()
        await context.deadLetters.keepMalformed(record, reason: reason, logger: context.logger)
    }

    public func partitionsAssigned(_ partitions: [TopicPartition]) {
        // State is loaded by the next tick or the first records of the new assignment (off the poll thread).
        slots.withLock { slots in for tp in partitions { slots[tp] = nil } }
        if partitions.contains(where: { $0.partition == 0 }) { merger.lead(true) }
    }

    public func partitionsRevoked(_ partitions: [TopicPartition]) {
        // The next owner rebuilds from the checkpoint on disk and re-reads from the last commit (never past it).
        slots.withLock { slots in for tp in partitions { slots[tp] = nil } }
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
                let closedThrough = idle ? max(slot.audit.watermark, now) : slot.audit.watermark
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

    private func checkpoint(now: Int64, force: Bool) async {
        let interval = checkpointIntervalMs
        let snapshots: [(TopicPartition, UInt64, Int64, [UInt8])] = slots.withLock { slots in
            var result: [(TopicPartition, UInt64, Int64, [UInt8])] = []
            for (tp, slot) in slots where slot.changed
                && (force || now - slot.lastCheckpointWall >= max(interval, slot.checkpointCost * 20))
            {
                result.append((tp, slot.generation, slot.audit.nextOffset, AuditCheckpoint.encode(slot.audit)))
                slots[tp]!.changed = false
                slots[tp]!.lastCheckpointWall = now
            }
            return result
        }
        for (tp, generation, nextOffset, bytes) in snapshots {
            let path = AuditCheckpoint.path(stateDir: stateDir, group: group, topic: tp.topic, partition: tp.partition)
            let started = ContinuousClock.now
            do {
                let written = try await io.run { try AuditCheckpoint.write(bytes, nextOffset: nextOffset, to: path) }
                let elapsed = ContinuousClock.now - started
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                PixelAuditMetrics.checkpoint(bytes: bytes.count, seconds: seconds)
                slots.withLock { slots in
                    if slots[tp]?.generation == generation { slots[tp]!.checkpointCost = Int64(seconds * 1000) }
                }
                guard written else {
                    context.logger.warning("a newer checkpoint is on disk; not replacing it",
                                           metadata: ["partition": "\(tp)"])
                    slots.withLock { slots in if slots[tp]?.generation == generation { slots[tp]!.changed = true } }
                    continue
                }
            } catch {
                context.logger.error("checkpoint failed", metadata: ["partition": "\(tp)", "error": "\(error)"])
                slots.withLock { slots in if slots[tp]?.generation == generation { slots[tp]!.changed = true } }
                continue
            }
            let final: [Int64] = slots.withLock { slots in
                guard var slot = slots.removeValue(forKey: tp) else { return [] }
                defer { slots[tp] = slot }
                guard slot.generation == generation else { return [] }
                slot.checkpointed = max(slot.checkpointed, nextOffset)
                let covered = slot.uncovered.partitioningIndex { $0 >= nextOffset }
                let final = Array(slot.uncovered[..<covered])
                slot.uncovered.removeFirst(covered)
                return final
            }
            for offset in final { context.offsets.complete(tp, offset: offset, generation: generation) }
        }
    }

    // MARK: the merged view

    /// Follows `aam.pixel-audit` from the beginning into the report book (what `/report` serves and the loss-rate
    /// gauges show): every worker sees every destination, whichever partitions it owns.
    func followReports() async {
        let topic = auditTopic
        let client = context.kafkaClient
        let logger = context.logger
        while !Task.isCancelled {
            do {
                let partitions = try await KafkaAdmin(configuration: client, logger: logger).topicPartitions(topic)
                let consumer = try KafkaConsumer(
                    configuration: ConsumerConfiguration(
                        client: client,
                        mode: .assign(Dictionary(uniqueKeysWithValues: partitions.map { ($0, KafkaConsumer.offsetBeginning) }),
                                      group: nil),
                        maxBufferedRecords: 10_000, batchSize: 500),
                    logger: logger)
                try consumer.start()
                await withTaskCancellationHandler {
                    for await batch in consumer.batches() {
                        for record in batch {
                            guard let report = try? AuditReport.decode(record.value) else { continue }
                            take(report)
                        }
                    }
                } onCancel: {
                    Task { await consumer.stopFetching() }
                }
                await consumer.close()
            } catch {
                logger.warning("cannot follow the audit topic yet, retrying",
                               metadata: ["topic": "\(topic)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(2))
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
