import Dispatch

/// Runs blocking work (file reads and writes with fsync, librdkafka metadata calls) on a dedicated serial queue,
/// never on the cooperative thread pool.
struct BlockingIO: Sendable {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }
}
