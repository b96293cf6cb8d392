import Metrics

/// One destination's metrics (`relay_realtime_*`, dimension `destination`), created once and kept.
struct RealtimeMetrics: Sendable {
    let usersSent: Counter
    let messages: Counter
    let bytes: Counter
    let attempts: Counter
    let retries: Counter
    let deadLettered: Counter
    /// Messages dead-lettered at once because the destination's queue was full (parked).
    let parked: Counter
    let skipped: Counter
    let latency: Metrics.Timer
    let breakerState: Gauge
    let inFlight: Gauge
    let queued: Gauge

    init(destination: Int) {
        let dimensions = [("destination", String(destination))]
        usersSent = Counter(label: "relay_realtime_users_sent_total", dimensions: dimensions)
        messages = Counter(label: "relay_realtime_messages_total", dimensions: dimensions)
        bytes = Counter(label: "relay_realtime_bytes_total", dimensions: dimensions)
        attempts = Counter(label: "relay_realtime_attempts_total", dimensions: dimensions)
        retries = Counter(label: "relay_realtime_retries_total", dimensions: dimensions)
        deadLettered = Counter(label: "relay_realtime_dead_lettered_total", dimensions: dimensions)
        parked = Counter(label: "relay_realtime_parked_total", dimensions: dimensions)
        skipped = Counter(label: "relay_realtime_users_skipped_total", dimensions: dimensions)
        latency = Metrics.Timer(label: "relay_realtime_latency_seconds", dimensions: dimensions,
                                preferredDisplayUnit: .seconds)
        breakerState = Gauge(label: "relay_realtime_breaker_state", dimensions: dimensions)
        inFlight = Gauge(label: "relay_realtime_in_flight", dimensions: dimensions)
        queued = Gauge(label: "relay_realtime_queued_messages", dimensions: dimensions)
    }
}
