import Logging
import RelayRuntime
import ServiceLifecycle
import Synchronization
import Testing

/// WorkerMain lists the resources (producer, HTTP client) before the consumer and relies on ServiceGroup to shut
/// them down after it: this checks that order, with a consumer that takes its time to drain.
@Suite("ClosingService: resources close after the services that use them")
struct ClosingServiceTests {
    final class Events: Sendable {
        let list = Mutex<[String]>([])
        func add(_ event: String) { list.withLock { $0.append(event) } }
        var all: [String] { list.withLock { $0 } }
    }

    /// Stands for the consumer: on shutdown it still works for a while (drain, final commit), then ends.
    struct SlowDrainer: Service {
        let events: Events
        func run() async throws {
            try? await gracefulShutdown()
            events.add("drain started")
            try await Task.sleep(for: .milliseconds(300))
            events.add("drain finished")
        }
    }

    /// Ends by itself, as the consumer does after SIGTERM, and so shuts the group down.
    struct Finisher: Service {
        func run() async throws { try await Task.sleep(for: .milliseconds(50)) }
    }

    @Test func closesInReverseOrderAfterTheDrain() async throws {
        let events = Events()
        let logger = Logger(label: "test")
        let producer = ClosingService("producer", logger: logger) { events.add("producer closed") }
        let client = ClosingService("client", logger: logger) { events.add("client closed") }
        let group = ServiceGroup(configuration: .init(
            services: [producer, client].map { .init(service: $0, successTerminationBehavior: .ignore) } + [
                .init(service: SlowDrainer(events: events)),
                .init(service: Finisher(), successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            logger: logger))
        try await group.run()
        #expect(events.all == ["drain started", "drain finished", "client closed", "producer closed"])
    }
}
