import Prometheus
import RelayCore
import Synchronization

/// `relay_edge_*` metrics, registered directly with the registry `/metrics` serves (fine latency buckets).
final class EdgeMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let users: Gauge
    let storeBytes: Gauge
    let catchUpLag: Gauge
    let eventsApplied: Counter
    let malformedEvents: Counter
    let pixelsFired: Counter
    let pixelProduceFailures: Counter
    let pixelEventsDropped: Counter
    let connectionsOpen: Gauge
    let connectionsRefused: Counter
    let connectionsTimedOut: Counter
    let snapshotUsers: Gauge
    private let received: [PixelEvent.Source: Counter]
    private let requests = Mutex<[RequestKey: Counter]>([:])
    private let latencies: [DurationHistogram]

    static let endpoints = ["event", "px", "px_receipts", "other"]

    struct RequestKey: Hashable {
        var endpoint: Int
        var status: Int
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "relay", subsystem: "edge", metricName: metric, unitName: unit, helpText: help)
        }
        users = registry.makeGauge(descriptor: name("users", "", "Users held in the segment store"))
        storeBytes = registry.makeGauge(descriptor: name("store", "bytes", "Bytes held by the segment store"))
        catchUpLag = registry.makeGauge(
            descriptor: name("catchup_lag", "records", "Qualification records not yet applied (all partitions)"))
        eventsApplied = registry.makeCounter(descriptor: name("events_applied", "total", "Qualification events applied"))
        malformedEvents = registry.makeCounter(
            descriptor: name("malformed_events", "total", "Malformed qualification events skipped"))
        pixelsFired = registry.makeCounter(descriptor: name("pixels_fired", "total", "Pixels handed out (fired events)"))
        pixelProduceFailures = registry.makeCounter(
            descriptor: name("pixel_produce_failures", "total", "Pixel events that could not be produced"))
        pixelEventsDropped = registry.makeCounter(
            descriptor: name("pixel_events_dropped", "total", "Pixel events dropped because the producer was behind"))
        connectionsOpen = registry.makeGauge(descriptor: name("connections_open", "", "HTTP connections open now"))
        connectionsRefused = registry.makeCounter(
            descriptor: name("connections_refused", "total", "Connections closed on accept: edge.max_connections open"))
        connectionsTimedOut = registry.makeCounter(
            descriptor: name("connections_timed_out", "total", "Connections closed after edge.idle_timeout without a request"))
        snapshotUsers = registry.makeGauge(descriptor: name("snapshot_users", "", "Users in the last snapshot written"))
        var received: [PixelEvent.Source: Counter] = [:]
        for source in [PixelEvent.Source.redirect, .beacon, .partner] {
            received[source] = registry.makeCounter(
                descriptor: name("pixels_received", "total", "Pixel receipts recorded"), labels: [("source", source.rawValue)])
        }
        self.received = received
        let buckets: [Duration] = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
            .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(250), .seconds(1),
        ]
        latencies = Self.endpoints.map { endpoint in
            registry.makeDurationHistogram(
                descriptor: name("request_duration", "seconds", "Time to answer a request"),
                labels: [("endpoint", endpoint)], buckets: buckets)
        }
    }

    func received(_ source: PixelEvent.Source, count: Int = 1) {
        received[source]?.increment(by: Int64(count))
    }

    /// `endpoint` indexes ``endpoints``.
    func request(endpoint: Int, status: Int, duration: Duration) {
        let counter = requests.withLock { counters in
            let key = RequestKey(endpoint: endpoint, status: status)
            if let counter = counters[key] { return counter }
            let counter = registry.makeCounter(
                descriptor: MetricNameDescriptor(namespace: "relay", subsystem: "edge", metricName: "requests",
                                                 unitName: "total", helpText: "Requests answered"),
                labels: [("endpoint", Self.endpoints[endpoint]), ("status", String(status))])
            counters[key] = counter
            return counter
        }
        counter.increment()
        latencies[endpoint].record(duration)
    }
}
