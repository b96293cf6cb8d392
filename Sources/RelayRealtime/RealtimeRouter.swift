import Foundation
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime
import Synchronization

/// Cuts the records into chunks and hands each chunk's messages to the destinations' pipelines.
///
/// Chunks are closed and their messages queued under one lock, so that the messages of a partition reach every
/// pipeline in offset order whichever task (the consume loop or the flush timer) closes them.
final class RealtimeRouter: Sendable {
    /// A class: the consume loop visits every target for every record, and a reference is one retain where the
    /// struct's copy retained each of its fields.
    final class Target: Sendable {
        let destination: Destination
        let settings: RealtimeSettings
        let builder: RealtimeMessageBuilder
        let pipeline: DestinationPipeline

        init(destination: Destination, settings: RealtimeSettings, builder: RealtimeMessageBuilder,
             pipeline: DestinationPipeline)
        {
            self.destination = destination
            self.settings = settings
            self.builder = builder
            self.pipeline = pipeline
        }
    }

    let targets: [Target]
    private let assembler: Mutex<ChunkAssembler>
    private let tracker: OffsetTracker

    init(targets: [Target], tracker: OffsetTracker) {
        self.targets = targets
        self.tracker = tracker
        assembler = Mutex(ChunkAssembler(limits: targets.map {
            ChunkAssembler.Limits(maxUsers: $0.settings.maxUsersPerMessage, flushIntervalMs: $0.settings.flushIntervalMs,
                                  maxUsersBytes: $0.settings.maxMessageBytes - $0.builder.envelopeBytes)
        }))
    }

    struct Entry: Sendable {
        let partition: TopicPartition
        let generation: UInt64
        let entry: ChunkEntry
    }

    func ingest(_ entries: [Entry]) {
        let now = ContinuousClock.now
        let processTime = Timestamps.nowMilliseconds()
        assembler.withLock { assembler in
            for item in entries {
                for chunk in assembler.add(item.entry, partition: item.partition, generation: item.generation,
                                           now: now, wallClockMs: processTime)
                {
                    dispatch(chunk, processTime: processTime)
                }
            }
        }
    }

    /// Closes the chunks whose flush interval has passed.
    func flushDue() {
        let now = ContinuousClock.now
        assembler.withLock { assembler in
            let due = assembler.closeDue(now: now)
            guard !due.isEmpty else { return }
            let processTime = Timestamps.nowMilliseconds()
            for chunk in due { dispatch(chunk, processTime: processTime) }
        }
    }

    func flushAll() {
        assembler.withLock { assembler in
            let processTime = Timestamps.nowMilliseconds()
            for chunk in assembler.closeAll() { dispatch(chunk, processTime: processTime) }
        }
    }

    func revoke(_ partitions: [TopicPartition]) {
        assembler.withLock { $0.drop(partitions) }
    }

    var nextDeadline: ContinuousClock.Instant? { assembler.withLock { $0.nextDeadline } }

    /// One message per destination with users in the chunk; the chunk's records are final when all are.
    private func dispatch(_ chunk: Chunk, processTime: Int64) {
        let messageCount = chunk.users.reduce(0) { $0 + ($1.isEmpty ? 0 : 1) }
        let ticket = ChunkTicket(chunk: chunk, messages: messageCount, tracker: tracker)
        guard messageCount > 0 else { return }
        for (index, users) in chunk.users.enumerated() where !users.isEmpty {
            let target = targets[index]
            let offsets = users.map(\.offset)
            target.pipeline.enqueue(OutboundMessage(
                id: target.builder.messageID(topic: chunk.partition.topic, partition: chunk.partition.partition,
                                             offsets: offsets),
                body: target.builder.body(users: users, processTime: processTime),
                userCount: users.count,
                eventTimestamps: users.map(\.timestamp),
                partition: chunk.partition,
                generation: chunk.generation,
                offsets: offsets,
                key: Array(users[0].uuid.utf8),
                ticket: ticket))
        }
    }

}
