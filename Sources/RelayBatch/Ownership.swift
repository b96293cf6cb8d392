import Synchronization

/// Which partitions this process owns, updated on the consumer's poll thread (assign/revoke) and read by the
/// batch engine. Each assignment gets a new epoch, so state built under an earlier assignment of the same partition
/// is recognised as stale and dropped (the next owner, maybe this process again, replays from the commit).
final class Ownership: Sendable {
    private struct State {
        var epochs: [Int32: UInt64] = [:]
        var counter: UInt64 = 0
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

    func revoke(_ partitions: [Int32]) {
        state.withLock { s in for p in partitions { s.epochs[p] = nil } }
    }

    func epoch(_ partition: Int32) -> UInt64? { state.withLock { $0.epochs[partition] } }

    var owned: [Int32: UInt64] { state.withLock { $0.epochs } }
}
