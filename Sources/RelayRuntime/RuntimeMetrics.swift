import Metrics
import RelayKafka

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

    static func lag(_ tp: TopicPartition, _ lag: Int64) {
        Gauge(label: "relay_consumer_lag", dimensions: [("topic", tp.topic), ("partition", "\(tp.partition)")])
            .record(lag)
    }

    static func pending(_ count: Int) {
        Gauge(label: "relay_records_pending").record(count)
    }

    static func commitFailed() {
        Counter(label: "relay_commit_failures_total").increment()
    }
}
