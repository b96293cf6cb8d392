import RelayKafka
import RelayRuntime
import Synchronization

/// The completion count of a chunk: one per destination message of the chunk. When the last one is final
/// (delivered or dead-lettered), every record of the chunk is marked final in the offset tracker.
final class ChunkTicket: Sendable {
    let partition: TopicPartition
    let generation: UInt64
    let offsets: [Int64]
    private let remaining: Atomic<Int>
    private let tracker: OffsetTracker

    init(chunk: Chunk, messages: Int, tracker: OffsetTracker) {
        partition = chunk.partition
        generation = chunk.generation
        offsets = chunk.offsets
        remaining = Atomic(messages)
        self.tracker = tracker
        if messages == 0 { completeRecords() }
    }

    /// One message of the chunk is final.
    func finish() {
        if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { completeRecords() }
    }

    private func completeRecords() {
        for offset in offsets { tracker.complete(partition, offset: offset, generation: generation) }
    }
}

/// One message to one destination: the JSON body (as built, before any gzip), its id and where its users came from.
struct OutboundMessage: Sendable {
    let id: String
    let body: [UInt8]
    let userCount: Int
    /// Each user's event `ts`, for the latency metric.
    let eventTimestamps: [Int64]
    let partition: TopicPartition
    let generation: UInt64
    /// Source offsets of the users.
    let offsets: [Int64]
    /// The first user's id: the dead letter's key.
    let key: [UInt8]
    let ticket: ChunkTicket?

    var source: String { "\(partition.topic)/\(partition.partition)/\(offsets.first ?? -1)" }
}
