import Foundation
import Logging
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime

/// The partition's state in Kafka: restored from the changelog `<group>.state` when an assignment begins, and
/// checkpointed to it (the changes, then a head), after which the records the head covers are final.
extension PixelAuditHandler {
    /// Restores the partition's state from the changelog when this generation of its assignment has none yet.
    func ensureLoaded(_ tp: TopicPartition, generation: UInt64) async {
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
        while !Task.isCancelled, context.offsets.owns(tp, generation: generation) {
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
            guard slots[tp]?.generation != generation, context.offsets.owns(tp, generation: generation) else { return }
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

    /// Writes each changed partition's changes to the changelog (at most every `checkpointIntervalMs`, or less
    /// often when writing is slow, so that writing takes at most about a twentieth of the time under load; at once
    /// when the partition has been quiet for an interval), then marks final the records the head covers.
    func checkpoint(now: Int64, force: Bool) async {
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
