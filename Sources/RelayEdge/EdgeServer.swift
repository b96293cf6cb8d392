import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Prometheus
import RelayCore
import RelayKafka
import RelayRuntime
import ServiceLifecycle

/// `relay-edge` as a library: the segment store, the qualification reader, the pixel recorder and the HTTP routes
/// (SPEC §6), plus `/metrics` and `/health/*` on the same port. `main` and the tests build it the same way.
public struct EdgeServer: Sendable {
    public let config: RelayConfig
    public let store: SegmentStore
    public let readiness: Readiness
    let catalog: EdgeCatalog
    let metrics: EdgeMetrics
    let reader: QualificationReader
    let recorder: PixelRecorder
    let signer: PixelSigner?
    let producer: KafkaProducer
    let logger: Logger
    let cors: CORSPolicy
    let receipts: PixelReceipts
    let openConnections: ConnectionGuard.OpenConnections
    let fallbackHost: String

    /// - Parameters:
    ///   - listen: where the edge answers (`edge.listen`, its port replaced by `--port`); only used for the
    ///     `/px` URLs when a request carries no usable `Host` header.
    ///   - snapshotInterval: how often the store is written to `edge.snapshot_dir` (and always on shutdown).
    public init(config: RelayConfig, listen: HostPort, registry: PrometheusCollectorRegistry, logger: Logger,
                environment: [String: String] = ProcessInfo.processInfo.environment,
                snapshotInterval: Duration = .seconds(60)) throws
    {
        self.config = config
        self.logger = logger
        catalog = EdgeCatalog(config)
        store = SegmentStore(keptDPIDs: catalog.keptDPIDs)
        readiness = Readiness()
        metrics = EdgeMetrics(registry: registry)
        let client = try config.kafkaClient(environment: environment)
        // Pixel events are small and many: batch and compress them unless kafka.properties says otherwise.
        var producerDefaults = ["linger.ms": "50", "compression.type": "lz4", "queue.buffering.max.messages": "1000000"]
        for key in producerDefaults.keys where client.properties[key] != nil { producerDefaults[key] = nil }
        producer = try KafkaProducer(configuration: client, properties: producerDefaults, logger: logger)
        let queueMessages = Int(client.properties["queue.buffering.max.messages"] ?? "") ?? 1_000_000
        recorder = PixelRecorder(producer: producer, topic: config.kafka.topics.pixelEvents, metrics: metrics,
                                 logger: logger, limit: PixelRecorder.placeLimit(queueMessages: queueMessages))
        reader = QualificationReader(config: config, client: client, store: store, catalog: catalog,
                                     readiness: readiness, metrics: metrics, logger: logger,
                                     snapshotInterval: snapshotInterval)
        if config.destinations.contains(where: { $0.url?.audit == .redirect }) {
            signer = PixelSigner(secret: try config.edge.redirectKey.resolve(environment: environment))
        } else {
            signer = nil
        }
        cors = CORSPolicy(origins: config.edge.corsOrigins)
        receipts = try PixelReceipts(config: config, environment: environment)
        openConnections = ConnectionGuard.OpenConnections(limit: config.edge.maxConnections)
        fallbackHost = listen.description
        for segment in catalog.mappedSegments where UInt32(exactly: segment) == nil {
            logger.warning("segment ids above 4294967295 are not kept by relay-edge; this mapping never matches",
                           metadata: ["segment": "\(segment)"])
        }
    }

    /// The HTTP application, with the reader, the pixel recorder and the pixel producer as its services: on SIGTERM
    /// the server stops first, then the reader writes its snapshot, the recorder hands over its last events and the
    /// producer flushes every pixel event. Every connection passes a ``ConnectionGuard`` (`edge.max_connections`,
    /// `edge.idle_timeout`), and `GET /event` is answered by ``EventFastPath`` in the pipeline.
    /// - Parameter metricsPort: when given, `/metrics` and `/health/*` are served on that port only (for a cluster
    ///   whose public Service exposes the API port); otherwise beside the API.
    public func buildApplication(host: String, port: Int, registry: PrometheusCollectorRegistry,
                                 metricsPort: Int? = nil) -> some ApplicationProtocol
    {
        let router = Router()
        // Shut down in reverse order, after the server: the reader, the recorder's last hand-over, the producer.
        var services: [any Service] = [ClosingService.producer(producer, logger: logger), recorder, reader]
        if let metricsPort {
            services.append(makeOperationsServer(port: metricsPort, host: host, readiness: readiness,
                                                 registry: registry, logger: logger))
        } else {
            addOperationalRoutes(to: router, readiness: readiness, registry: registry)
        }
        addRoutes(to: router)
        let idleTimeout = TimeAmount.milliseconds(max(1, config.edge.idleTimeout.milliseconds))
        return Application(
            router: router,
            server: GuardedHTTP1Channel.builder(edge: self, idleTimeout: idleTimeout),
            // A deep accept queue (the kernel caps it at somaxconn): bursts of connections wait to be accepted, and
            // the guard refuses what is over the limit, instead of the kernel dropping them silently.
            configuration: .init(address: .hostname(host, port: port), serverName: nil, backlog: 4_096),
            services: services, logger: logger)
    }
}
