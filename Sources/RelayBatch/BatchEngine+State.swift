import Foundation
import RelayCore
import RelayEncoding
import RelayKafka

/// The engine's state in Kafka: restoring a partition from the changelog, and writing what changed
/// (see ``BatchChangelog`` for the records and why replaying on top of a restored state is safe).
extension BatchEngine {
    /// Reads the partition's changelog to its end (retried until it succeeds or the partition is lost) and installs
    /// the state. `firstOffset` is where the consumer resumed (nil: nothing read yet): a group replayed to the
    /// beginning of the input rebuilds from nothing, so that the replay writes the same files again, and the old
    /// state's keys are deleted with the first write. Returns false when the partition was lost meanwhile.
    func restore(_ partition: Int32, firstOffset: Int64?, state: inout PartitionState) async -> Bool {
        let started = ContinuousClock.now
        var attempt = 0
        while owns(partition, state), !ownership.isStopping, !Task.isCancelled {
            var reader = BatchChangelog.Restore(plans: plans)
            do {
                let admin = try KafkaAdmin(configuration: kafkaClient, logger: logger)
                let complete = try await admin.read([TopicPartition(stateTopic, partition)],
                                                    timeout: .seconds(300)) { batch in
                    for record in batch { reader.take(record) }
                }
                guard complete else { throw KafkaError.timedOut(operation: "restore \(stateTopic)") }
                var rebuild = false
                if let firstOffset, !reader.isEmpty {
                    rebuild = firstOffset <= (try await admin.watermarks(TopicPartition(topic, partition)).low)
                }
                for (record, reason) in reader.malformed { await deadLetter(record, reason: reason) }
                install(reader, rebuild: rebuild, partition: partition, firstOffset: firstOffset, state: &state)
                let seconds = Self.seconds(ContinuousClock.now - started)
                BatchMetrics.restored(records: reader.records, seconds: seconds)
                logger.info(rebuild ? "batch state rebuilt from the beginning of the input" : "batch state restored",
                            metadata: [
                                "partition": "\(partition)", "changelog_records": "\(reader.records)",
                                "users": "\(state.dests.reduce(0) { $0 + $1.table.count })",
                                "next_offset": "\(state.writtenUpTo.map(String.init) ?? "-")",
                                "seconds": "\(seconds)"])
                return owns(partition, state)
            } catch {
                attempt += 1
                logger.warning("cannot restore the batch state yet, retrying",
                               metadata: ["partition": "\(partition)", "changelog": "\(stateTopic)",
                                          "error": "\(error)"])
                try? await Task.sleep(for: min(.seconds(2 * attempt), .seconds(10)))
            }
        }
        return false
    }

    private func install(_ reader: BatchChangelog.Restore, rebuild: Bool, partition: Int32, firstOffset: Int64?,
                         state: inout PartitionState)
    {
        var reader = reader
        state.loaded = true
        if rebuild {
            state.tombstones = reader.userKeys()
            state.headChanged = true
            return
        }
        state.dests = reader.finish()
        state.writtenUpTo = reader.head?.nextOffset
        if let firstOffset, let covered = reader.head?.nextOffset, firstOffset > covered {
            // Records [covered, firstOffset) were applied by a state the changelog does not hold (it was deleted
            // or belongs to another group): the users they changed are missing here.
            logger.warning("batch state does not cover the group's position", metadata: [
                "partition": "\(partition)", "state_next_offset": "\(covered)", "first_offset_read": "\(firstOffset)",
                "changelog": "\(stateTopic)", "hint": "replay the group to the earliest offset to rebuild"])
        }
    }

    /// Writes the partition's changed users (tombstones first), then its head. The write is pipelined: it returns
    /// once the records are enqueued, and the records read so far are marked final when the broker has acknowledged
    /// all of them. `durably` waits for that (a cut is made only from a state the changelog holds). A failed write
    /// is sent again, with every write after it, until it succeeds or the partition is lost (false).
    func writeState(_ partition: Int32, _ state: inout PartitionState, durably: Bool = false) async -> Bool {
        guard await resendFailedWrites(partition, state) else { return false }
        var records: [OutgoingRecord] = []
        for key in state.tombstones {
            records.append(OutgoingRecord.tombstone(topic: stateTopic, key: key, partition: partition))
        }
        for i in plans.indices {
            let plan = plans[i]
            let changed = state.dests[i].table.takeChanged()
            guard !changed.isEmpty else { continue }
            let table = state.dests[i].table
            let pool = state.dests[i].pool
            let lastCut = state.dests[i].lastCut
            let idIsUUID = plan.settings.masterDPID == 0
            let prefix = BatchChangelog.userKeyPrefix(destination: plan.id)
            records.reserveCapacity(records.count + changed.count + 1)
            for index in changed {
                let entry = table[Int(index)]
                records.append(OutgoingRecord(
                    topic: stateTopic, key: BatchChangelog.userKey(prefix: prefix, uuid: table.uuidBytes(entry)),
                    value: BatchChangelog.userValue(entry, table: table, pool: pool, catalog: plan.catalog,
                                                    writtenUnder: lastCut, idIsUUID: idIsUUID),
                    partition: partition))
            }
        }
        let nextOffset = state.lastOffset.map { $0 + 1 } ?? state.writtenUpTo ?? 0
        if !records.isEmpty || state.headChanged || nextOffset != state.writtenUpTo {
            var cuts: [Int: BatchChangelog.Head.Cuts] = [:]
            for i in plans.indices {
                cuts[plans[i].id] = .init(last: state.dests[i].lastCut, open: state.dests[i].openCut)
            }
            records.append(OutgoingRecord(
                topic: stateTopic, key: BatchChangelog.head,
                value: BatchChangelog.headValue(.init(nextOffset: nextOffset, cuts: cuts)), partition: partition))
            guard owns(partition, state) else { return false }
            let bytes = records.reduce(0) { $0 + ($1.key?.count ?? 0) + $1.value.count }
            let final = finalOffsets(partition, &state)
            let sent = await state.changelog.send(records) { [count = records.count] in
                BatchMetrics.changelogWritten(records: count, bytes: bytes)
                final()
            }
            guard sent else { return false }  // revoked meanwhile
            state.tombstones = []
            state.headChanged = false
            state.writtenUpTo = nextOffset
        }
        if durably {
            await state.changelog.barrier()
            guard await resendFailedWrites(partition, state) else { return false }
        } else {
            await state.changelog.limit(Self.maxWritesInFlight)
        }
        return owns(partition, state)
    }

    /// Changelog writes in flight per partition before the engine waits for the oldest: enough to cover a produce
    /// round trip at full speed, few enough that a failure resends little.
    static let maxWritesInFlight = 8

    /// What marks final the records read so far (and not yet covered by an earlier write), to run once the write
    /// holding their changes is acknowledged.
    private func finalOffsets(_ partition: Int32, _ state: inout PartitionState) -> @Sendable () -> Void {
        guard let last = state.lastOffset, let start = state.completedUpTo, last + 1 > start else { return {} }
        let generation = state.generation
        state.completedUpTo = last + 1
        let (offsets, tp) = (self.offsets, TopicPartition(topic, partition))
        return { offsets.complete(tp, offsets: start..<(last + 1), generation: generation) }
    }

    /// Sends the partition's failed changelog writes again (and those behind them), retrying until the broker has
    /// them all; false when the partition was lost or the worker is stopping meanwhile.
    private func resendFailedWrites(_ partition: Int32, _ state: PartitionState) async -> Bool {
        var attempt = 0
        while state.changelog.hasFailed {
            guard owns(partition, state), !ownership.isStopping else { return false }
            if await state.changelog.resendUnfinished() { break }
            attempt += 1
            logger.error("batch state not written yet, retrying",
                         metadata: ["partition": "\(partition)", "changelog": "\(stateTopic)",
                                    "error": "\(state.changelog.failure.map { "\($0)" } ?? "-")"])
            try? await Task.sleep(for: min(.milliseconds(500 * attempt), .seconds(5)))
        }
        return owns(partition, state)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
