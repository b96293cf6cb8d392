import Foundation
import RelayKafka
import RelayRuntime
import Synchronization

/// The changelog pipeline of each partition this process owns, updated on the consumer's poll thread
/// (assign/revoke) and read by the batch engine. An assignment is known by its generation (the one OffsetTracker
/// holds and every record read under it carries), so state built under an earlier assignment of the same partition
/// is recognised as stale and dropped (the next owner, maybe this process again, restores it from the changelog).
///
/// Each assignment has its own changelog pipeline: a revoke closes it and waits (briefly) for the writes it has
/// in flight, so that a former owner's write never lands after the next owner has restored.
final class Ownership: Sendable {
    struct Assignment: Sendable {
        let generation: UInt64
        let changelog: ChangelogPipeline
    }

    private struct State {
        var assignments: [Int32: Assignment] = [:]
    }
    private let state = Mutex(State())
    private let stopping = Atomic<Bool>(false)
    private let producer: KafkaProducer

    init(producer: KafkaProducer) { self.producer = producer }

    /// Shutdown began: deliveries that keep failing give up (nothing of theirs is committed; the next owner replays).
    func stop() { stopping.store(true, ordering: .relaxed) }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    func assign(_ partitions: [Int32], generation: UInt64) {
        state.withLock { s in
            for p in partitions {
                s.assignments[p] = Assignment(generation: generation, changelog: ChangelogPipeline(producer: producer))
            }
        }
    }

    /// Forgets the partitions, then waits (up to `wait`, blocking: it runs on the poll thread inside the rebalance)
    /// for their changelog writes in flight to be answered.
    func revoke(_ partitions: [Int32], wait: Duration = .seconds(10)) {
        let revoked = state.withLock { s in partitions.compactMap { s.assignments.removeValue(forKey: $0) } }
        for assignment in revoked { assignment.changelog.close() }
        let deadline = ContinuousClock.now + wait
        while revoked.contains(where: { $0.changelog.inFlight > 0 }), ContinuousClock.now < deadline {
            usleep(10_000)
        }
    }

    func assignment(_ partition: Int32) -> Assignment? { state.withLock { $0.assignments[partition] } }

    func generation(_ partition: Int32) -> UInt64? { assignment(partition)?.generation }

    var owned: [Int32: UInt64] { state.withLock { $0.assignments.mapValues(\.generation) } }
}
