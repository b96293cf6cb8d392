import RelayKafka
import Synchronization

/// Which (partition, generation) pairs this process still owns. Work of a revoked assignment is dropped before it
/// is sent: the partition's next owner replays it from the commit point, in order.
final class AssignmentRegistry: Sendable {
    private struct State {
        var latest: [TopicPartition: UInt64] = [:]
        var revokedThrough: [TopicPartition: UInt64] = [:]
    }

    private let state = Mutex(State())

    /// A record of this generation was read.
    func saw(_ partition: TopicPartition, generation: UInt64) {
        state.withLock { s in
            if (s.latest[partition] ?? 0) < generation { s.latest[partition] = generation }
        }
    }

    func revoke(_ partitions: [TopicPartition]) {
        state.withLock { s in
            for tp in partitions { if let latest = s.latest[tp] { s.revokedThrough[tp] = latest } }
        }
    }

    func isRevoked(_ partition: TopicPartition, generation: UInt64) -> Bool {
        state.withLock { s in s.revokedThrough[partition].map { generation <= $0 } ?? false }
    }
}
