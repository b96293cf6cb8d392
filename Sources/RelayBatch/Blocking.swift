import Dispatch

/// Runs blocking work (file writes with fsync, directory scans, Kafka metadata) on a Dispatch queue rather than on
/// Swift's cooperative pool.
enum Blocking {
    private static let queue = DispatchQueue(label: "relay.batch.io", attributes: .concurrent)

    static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }
}
