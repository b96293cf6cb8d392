import Logging
import RelayCore
import RelayKafka

/// Produces pixel events to `kafka.topics.pixel_events`, keyed by `pixel_id`, without waiting: `enqueue` hands the
/// record to librdkafka and returns; the delivery result only counts failures. The producer is flushed on shutdown.
/// When the broker cannot keep up for long, events beyond ``maxOutstanding`` are dropped and counted
/// (`relay_edge_pixel_produce_failures_total`): answering the page comes first.
struct PixelRecorder: Sendable {
    let producer: KafkaProducer
    let topic: String
    let metrics: EdgeMetrics
    let logger: Logger

    /// librdkafka's local queue holds up to 1,000,000 records (`queue.buffering.max.messages`, set by
    /// ``EdgeServer``); beyond this many undelivered, events are dropped and counted rather than blocking answers.
    static let maxOutstanding = 900_000

    func record(_ events: [PixelEvent]) {
        if producer.outstanding >= Self.maxOutstanding {
            metrics.pixelProduceFailures.increment(by: Int64(events.count))
            return
        }
        for event in events {
            let record = OutgoingRecord(topic: topic, key: Array(event.pixelID.utf8), value: event.jsonBytes(),
                                        timestamp: event.ts)
            do {
                try producer.enqueue(record) { [metrics, logger] result in
                    if case .failure(let error) = result {
                        metrics.pixelProduceFailures.increment()
                        logger.error("pixel event not produced", metadata: ["error": "\(error)"])
                    }
                }
            } catch {
                metrics.pixelProduceFailures.increment()
                logger.error("pixel event not produced", metadata: ["error": "\(error)"])
            }
        }
        let fired = events.lazy.filter { $0.kind == .fired }.count
        if fired > 0 { metrics.pixelsFired.increment(by: Int64(fired)) }
    }
}
