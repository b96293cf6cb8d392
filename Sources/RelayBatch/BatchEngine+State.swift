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

    /// Writes the partition's changed users (tombstones first), then its head, and once the broker has them all
    /// marks final the records read so far. Retried until it succeeds or the partition is lost (false).
    func writeState(_ partition: Int32, _ state: inout PartitionState) async -> Bool {
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
            records.reserveCapacity(records.count + changed.count + 1)
            for index in changed {
                let entry = table[Int(index)]
                records.append(OutgoingRecord(
                    topic: stateTopic, key: BatchChangelog.userKey(destination: plan.id, uuid: table.uuidBytes(entry)),
                    value: BatchChangelog.userValue(entry, table: table, pool: pool, catalog: plan.catalog,
                                                    writtenUnder: lastCut, idIsUUID: idIsUUID),
                    partition: partition))
            }
        }
        let nextOffset = state.lastOffset.map { $0 + 1 } ?? state.writtenUpTo ?? 0
        guard !records.isEmpty || state.headChanged || nextOffset != state.writtenUpTo else { return true }
        var cuts: [Int: BatchChangelog.Head.Cuts] = [:]
        for i in plans.indices {
            cuts[plans[i].id] = .init(last: state.dests[i].lastCut, open: state.dests[i].openCut)
        }
        records.append(OutgoingRecord(
            topic: stateTopic, key: BatchChangelog.head,
            value: BatchChangelog.headValue(.init(nextOffset: nextOffset, cuts: cuts)), partition: partition))
        var attempt = 0
        while true {
            guard owns(partition, state) else { return false }
            ownership.beginWrite(partition)
            do {
                try await producer.sendAll(records)
                ownership.endWrite(partition)
                break
            } catch {
                ownership.endWrite(partition)
                attempt += 1
                logger.error("batch state not written yet, retrying",
                             metadata: ["partition": "\(partition)", "changelog": "\(stateTopic)",
                                        "error": "\(error)"])
                if ownership.isStopping { return false }
                try? await Task.sleep(for: min(.milliseconds(500 * attempt), .seconds(5)))
            }
        }
        BatchMetrics.changelogWritten(records: records.count, bytes: records.reduce(0) {
            $0 + ($1.key?.count ?? 0) + $1.value.count
        })
        state.tombstones = []
        state.headChanged = false
        state.writtenUpTo = nextOffset
        completeFinished(partition, &state)
        return owns(partition, state)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
