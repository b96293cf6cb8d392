import Logging
import RelayKafka
import ServiceLifecycle

/// Something a process holds for its whole life (the Kafka producer, an HTTP client), as a service of its
/// ServiceGroup: it waits for the group's graceful shutdown, then closes the resource. ServiceGroup shuts its
/// services down in reverse order and waits for each, so a resource listed before the services that use it is closed
/// only once they have finished: the consumer has drained and committed, the server has answered its last request.
public struct ClosingService: Service {
    public let name: String
    let logger: Logger
    let close: @Sendable () async throws -> Void

    public init(_ name: String, logger: Logger, close: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.logger = logger
        self.close = close
    }

    /// The producer: flushed (up to 30 s: every dead letter and record handed to it), then closed.
    public static func producer(_ producer: KafkaProducer, logger: Logger) -> ClosingService {
        ClosingService("producer", logger: logger) {
            let outstanding = producer.outstanding
            await producer.close(timeoutMs: 30_000)
            logger.info("producer flushed and closed", metadata: ["outstanding_at_shutdown": "\(outstanding)"])
        }
    }

    public func run() async {
        // Cancelled rather than shut down (the group failed hard): close all the same.
        try? await gracefulShutdown()
        do { try await close() } catch {
            logger.warning("closing failed", metadata: ["resource": "\(name)", "error": "\(error)"])
        }
    }
}
