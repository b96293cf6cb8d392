import Dispatch

/// Runs blocking work (fsync, directory scans, librdkafka calls with time-outs) on a Dispatch queue and awaits it,
/// so that it never holds one of the few threads of Swift's cooperative pool.
public struct BlockingIO: Sendable {
    private let queue: DispatchQueue

    /// One concurrent queue for work that needs no order among its calls.
    public static let shared = BlockingIO(queue: DispatchQueue(label: "relay.blocking", attributes: .concurrent))

    /// A serial queue: calls run one at a time in the order made (writes to one file).
    public init(serial label: String) {
        queue = DispatchQueue(label: label)
    }

    private init(queue: DispatchQueue) {
        self.queue = queue
    }

    public func run<T: Sendable, E: Error>(_ work: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            queue.async {
                do throws(E) { continuation.resume(returning: .success(try work())) } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    /// `BlockingIO.shared.run`, the common case.
    public static func run<T: Sendable, E: Error>(_ work: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        try await shared.run(work)
    }
}
