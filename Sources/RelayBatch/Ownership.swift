import Foundation
import Synchronization

/// Which partitions this process owns, updated on the consumer's poll thread (assign/revoke) and read by the
/// batch engine. Each assignment gets a new epoch, so state built under an earlier assignment of the same partition
/// is recognised as stale and dropped (the next owner, maybe this process again, restores it from the changelog).
///
/// It also counts the changelog writes in flight per partition: a revoke waits for them (briefly), so that a former
/// owner's write never lands after the next owner has restored.
final class Ownership: Sendable {
    private struct State {
        var epochs: [Int32: UInt64] = [:]
        var counter: UInt64 = 0
        var writing: [Int32: Int] = [:]
    }
    private let state = Mutex(State())
    private let stopping = Atomic<Bool>(false)

    /// Shutdown began: deliveries that keep failing give up (nothing of theirs is committed; the next owner replays).
    func stop() { stopping.store(true, ordering: .relaxed) }

    var isStopping: Bool { stopping.load(ordering: .relaxed) }

    func assign(_ partitions: [Int32]) {
        state.withLock { s in
            for p in partitions {
                s.counter += 1
                s.epochs[p] = s.counter
            }
        }
    }

    /// Forgets the partitions, then waits (up to `wait`, blocking: it runs on the poll thread inside the rebalance)
    /// for their changelog writes in flight to finish.
    func revoke(_ partitions: [Int32], wait: Duration = .seconds(10)) {
        state.withLock { s in for p in partitions { s.epochs[p] = nil } }
        let deadline = ContinuousClock.now + wait
        while state.withLock({ s in partitions.contains { s.writing[$0] != nil } }), ContinuousClock.now < deadline {
            usleep(10_000)
        }
    }

    func epoch(_ partition: Int32) -> UInt64? { state.withLock { $0.epochs[partition] } }

    var owned: [Int32: UInt64] { state.withLock { $0.epochs } }

    /// A changelog write of `partition` begins (pair with ``endWrite(_:)``), counted so that a revoke waits for it.
    func beginWrite(_ partition: Int32) { state.withLock { $0.writing[partition, default: 0] += 1 } }

    func endWrite(_ partition: Int32) {
        state.withLock { s in
            s.writing[partition, default: 1] -= 1
            if s.writing[partition]! <= 0 { s.writing[partition] = nil }
        }
    }
}
