import Logging
import RelayCore
import RelayKafka
import Synchronization

/// Produces pixel events to `kafka.topics.pixel_events`, keyed by `pixel_id`, without waiting: `enqueue` hands the
/// record to librdkafka and returns; the delivery result only counts failures. The producer is flushed on shutdown.
///
/// Back-pressure drops, never waits: a request thread must not block or sleep because the broker is slow. Each
/// event takes a place until its delivery result arrives; with every place taken, events are dropped and counted
/// (`relay_edge_pixel_events_dropped_total`). The places stay below librdkafka's own queue size, so `enqueue`
/// never meets a full queue (where it would wait).
struct PixelRecorder: Sendable {
    let producer: KafkaProducer
    let topic: String
    let metrics: EdgeMetrics
    let logger: Logger
    let places: Places

    /// Events enqueued and not yet delivered (or failed), bounded by `limit`.
    final class Places: Sendable {
        let limit: Int
        private let taken = Atomic<Int>(0)

        init(limit: Int) { self.limit = max(1, limit) }

        /// Takes `count` places at once, or none when they would pass the limit.
        func take(_ count: Int) -> Bool {
            if taken.add(count, ordering: .relaxed).newValue <= limit { return true }
            taken.subtract(count, ordering: .relaxed)
            return false
        }

        func release(_ count: Int = 1) { taken.subtract(count, ordering: .relaxed) }

        var inUse: Int { taken.load(ordering: .relaxed) }
    }

    /// 90% of librdkafka's queue (`queue.buffering.max.messages`, set by ``EdgeServer``): the rest is headroom for
    /// records librdkafka holds for a moment after their delivery result.
    static func placeLimit(queueMessages: Int) -> Int { max(1, queueMessages / 10 * 9) }

    init(producer: KafkaProducer, topic: String, metrics: EdgeMetrics, logger: Logger, limit: Int) {
        self.producer = producer
        self.topic = topic
        self.metrics = metrics
        self.logger = logger
        places = Places(limit: limit)
    }

    func record(_ events: [PixelEvent]) {
        guard !events.isEmpty else { return }
        guard places.take(events.count) else {
            metrics.pixelEventsDropped.increment(by: Int64(events.count))
            return
        }
        for event in events {
            let record = OutgoingRecord(topic: topic, key: Array(event.pixelID.utf8), value: event.jsonBytes(),
                                        timestamp: event.ts)
            do {
                try producer.enqueue(record) { [metrics, logger, places] result in
                    places.release()
                    if case .failure(let error) = result {
                        metrics.pixelProduceFailures.increment()
                        logger.error("pixel event not produced", metadata: ["error": "\(error)"])
                    }
                }
            } catch {
                places.release()
                metrics.pixelProduceFailures.increment()
                logger.error("pixel event not produced", metadata: ["error": "\(error)"])
            }
        }
        let fired = events.lazy.filter { $0.kind == .fired }.count
        if fired > 0 { metrics.pixelsFired.increment(by: Int64(fired)) }
    }
}
