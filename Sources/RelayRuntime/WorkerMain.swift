import ArgumentParser
import Hummingbird
import Foundation
import Logging
import Metrics
import Prometheus
import RelayCore
import RelayKafka
import ServiceLifecycle

/// The options every long-running executable takes.
public struct WorkerOptions: ParsableArguments, Sendable {
    @Option(help: "The configuration file.")
    public var config: String = "relay.yaml"

    @Option(name: .customLong("metrics-port"), help: "Port of /metrics, /health/live and /health/ready.")
    public var metricsPort: Int?

    @Option(help: "Consumer group (default: the executable's name).")
    public var group: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    public var logLevel: String = "info"

    public init() {}
}

/// Process-wide set-up shared by the executables: only `main` code calls these.
public enum Bootstrap {
    /// JSON logs on stderr and Prometheus metrics; returns the registry that `/metrics` serves. Every metric
    /// carries the `worker` (the executable) and its consumer `group` (empty for relay-edge, which has none), added
    /// here once rather than at each metric.
    public static func observability(logLevel: String, worker: String, group: String) -> PrometheusCollectorRegistry {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.nameAndLabelSanitizer = WorkerLabels(worker: worker, group: group).apply
        // Partners may take up to their time-out and retries to answer: buckets reach well past 60 s.
        factory.defaultDurationHistogramBuckets = WorkerLabels.durationBuckets
        MetricsSystem.bootstrap(factory)
        BuildInfo.recordMetric()
        return registry
    }

    /// Loads relay.yaml, or prints every problem with its path and exits with status 2: no executable starts on an
    /// invalid file.
    public static func loadConfig(path: String, executable: String) -> RelayConfig {
        do {
            return try RelayConfig.load(path: path)
        } catch {
            FileHandle.standardError.write(Data("\(executable): invalid configuration \(path)\n\(error)\n".utf8))
            exit(2)
        }
    }
}

/// Runs a consumer-group worker: configuration, logging, metrics, the operational endpoints, the consume loop, and
/// graceful shutdown on SIGTERM/SIGINT (drain, commit what is final, exit 0).
public enum WorkerMain {
    public static func run<Handler: RecordHandler>(
        name: String, options: WorkerOptions, defaultMetricsPort: Int, topics: (RelayConfig) -> [String],
        extraRoutes: @escaping (Router<BasicRequestContext>) -> Void = { _ in },
        makeHandler: (WorkerContext) throws -> Handler
    ) async throws {
        let config = Bootstrap.loadConfig(path: options.config, executable: name)
        let registry = Bootstrap.observability(logLevel: options.logLevel, worker: name, group: options.group ?? name)
        let logger = Logger(label: name)
        let workerID = WorkerContext.processID()
        let client = try config.kafkaClient()
        let producer = try KafkaProducer(configuration: client, logger: logger)
        let readiness = Readiness()
        let context = WorkerContext(
            config: config, name: name, workerID: workerID, logger: logger, producer: producer,
            deadLetters: DeadLetterWriter(topic: config.kafka.topics.deadLetter, worker: workerID, producer: producer),
            offsets: OffsetTracker(), readiness: readiness, kafkaClient: client)
        let handler = try makeHandler(context)
        let worker = ConsumerWorker(context: context, group: options.group ?? name, topics: topics(config),
                                    handler: handler)
        let operations = makeOperationsServer(port: options.metricsPort ?? defaultMetricsPort, readiness: readiness,
                                              registry: registry, logger: logger, extraRoutes: extraRoutes)
        // Shut down in reverse: the consumer (drain, final commit), the operations server, the handler's resources,
        // and last the producer that the others hand records to.
        let resources = [ClosingService.producer(producer, logger: logger)] + handler.resources
        let group = ServiceGroup(configuration: .init(
            services: resources.map { .init(service: $0, successTerminationBehavior: .ignore) } + [
                .init(service: operations),
                .init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}
