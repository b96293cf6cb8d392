import Metrics
import RelayKafka
import Synchronization

/// The runtime's own metrics; each worker adds its own beside them. Names follow Prometheus conventions.
public enum RuntimeMetrics {
    static func recordsConsumed(_ count: Int, topic: String) {
        Counter(label: "relay_records_consumed_total", dimensions: [("topic", topic)]).increment(by: count)
        Counter(label: "relay_record_batches_total", dimensions: [("topic", topic)]).increment()
    }

    static func deadLettered(errorClass: DeadLetterClass, destination: Int?) {
        Counter(label: "relay_dead_letters_total",
                dimensions: [("class", errorClass.rawValue), ("destination", destination.map(String.init) ?? "")])
            .increment()
    }

    /// A dead letter the broker refused for good, even truncated: the record was let go so that work goes on.
    static func deadLetterDropped() {
        Counter(label: "relay_dead_letters_dropped_total").increment()
    }

    static func committed(_ offsets: [TopicPartition: Int64]) {
        for (tp, offset) in offsets {
            Gauge(label: "relay_committed_offset", dimensions: [("topic", tp.topic), ("partition", "\(tp.partition)")])
                .record(offset)
        }
    }

    /// Serialises lag reports with their removal, so that a report racing a revoke cannot bring a gauge back.
    private static let lagLock = Mutex(())

    private static func lagGauge(_ tp: TopicPartition) -> Gauge {
        Gauge(label: "relay_consumer_lag", dimensions: [("topic", tp.topic), ("partition", "\(tp.partition)")])
    }

    /// Records a partition's lag if `stillAssigned()` holds (checked under the lock that `lagCleared` takes).
    static func lag(_ tp: TopicPartition, _ lag: Int64, stillAssigned: () -> Bool) {
        lagLock.withLock { _ in
            if stillAssigned() { lagGauge(tp).record(lag) }
        }
    }

    /// Removes the lag of partitions this process no longer owns: their new owner reports them, and a stale
    /// series would be counted twice in every sum.
    static func lagCleared(_ partitions: [TopicPartition]) {
        lagLock.withLock { _ in
            for tp in partitions { lagGauge(tp).destroy() }
        }
    }

    static func pending(_ count: Int) {
        Gauge(label: "relay_records_pending").record(count)
    }

    static func commitFailed() {
        Counter(label: "relay_commit_failures_total").increment()
    }
}

/// The two dimensions every metric of a process carries, so that one Prometheus query can tell workers and groups
/// apart whatever the scrape configuration adds.
struct WorkerLabels: Sendable {
    let worker: String
    let group: String

    /// Latency buckets, 5 ms to 120 s.
    static let durationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .milliseconds(2500), .seconds(5), .seconds(10),
        .seconds(30), .seconds(60), .seconds(120),
    ]

    /// Adds `worker` and `group` unless the metric already sets them.
    func apply(_ label: String, _ dimensions: [(String, String)]) -> (String, [(String, String)]) {
        var dimensions = dimensions
        if !dimensions.contains(where: { $0.0 == "worker" }) { dimensions.append(("worker", worker)) }
        if !dimensions.contains(where: { $0.0 == "group" }) { dimensions.append(("group", group)) }
        return (label, dimensions)
    }
}
