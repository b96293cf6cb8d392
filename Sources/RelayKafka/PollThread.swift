import Foundation
import Synchronization

/// A dedicated OS thread that runs a blocking librdkafka loop (poll, consume) until stopped, so that such calls
/// never occupy Swift's cooperative thread pool.
final class PollThread: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// `iteration` is called repeatedly until `stop()`; each call should block for at most ~100 ms.
    init(name: String, iteration: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            while !stopping.load(ordering: .acquiring) { iteration() }
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Asks the loop to stop and waits for its current iteration to end (blocking: call off the cooperative pool).
    func stopAndWait() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
    }
}
