import Logging
import RelayCore
import RelayKafka
import ServiceLifecycle
import Synchronization

/// Produces pixel events to `kafka.topics.pixel_events`, keyed by `pixel_id`, without waiting.
///
/// A request only appends its events to the outbox, under a lock; ``run()`` hands what has gathered to the producer
/// every few milliseconds, off the request path, as one batch with one delivery callback. The delivery result only
/// counts failures. On shutdown the outbox is handed over once more, before the producer is flushed.
///
/// Back-pressure drops, never waits: a request thread must not block or sleep because the broker is slow. Each
/// event takes a place when it is recorded until its delivery result arrives; with every place taken, events are
/// dropped and counted (`relay_edge_pixel_events_dropped_total`). The places stay below librdkafka's own queue size,
/// so a hand-over never meets a full queue (where it would wait).
struct PixelRecorder: Service, Sendable {
    let producer: KafkaProducer
    let topic: String
    let metrics: EdgeMetrics
    let logger: Logger
    let places: Places
    private let outbox = Outbox()

    /// How long an event waits in the outbox at most (librdkafka then lingers `linger.ms` on its own).
    static let handOverInterval: Duration = .milliseconds(5)

    /// Events recorded and not yet delivered (or failed), bounded by `limit`.
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

    /// Events recorded since the last hand-over.
    final class Outbox: Sendable {
        private let events = Mutex<[PixelEvent]>([])

        func append(_ more: [PixelEvent]) { events.withLock { $0.append(contentsOf: more) } }

        /// Everything kept so far, in order; the outbox is empty afterwards.
        func takeAll() -> [PixelEvent] {
            events.withLock { events in
                defer { events.removeAll(keepingCapacity: true) }
                return events
            }
        }
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

    /// Keeps the events for the next hand-over, or drops and counts them all when their places are not free.
    func record(_ events: [PixelEvent]) {
        guard !events.isEmpty else { return }
        guard places.take(events.count) else {
            metrics.pixelEventsDropped.increment(by: Int64(events.count))
            return
        }
        outbox.append(events)
        let fired = events.lazy.filter { $0.kind == .fired }.count
        if fired > 0 { metrics.pixelsFired.increment(by: Int64(fired)) }
    }

    /// Hands the outbox over every ``handOverInterval`` until the graceful shutdown, then once more: the server has
    /// answered its last request by then (it stops first), and the producer is flushed after this returns.
    func run() async {
        await cancelWhenGracefulShutdown { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.handOverInterval)
                await handOver()
            }
        }
        await handOver()
    }

    /// Gives the producer every event recorded so far, in order, with one delivery callback for the batch.
    func handOver() async {
        let events = outbox.takeAll()
        guard !events.isEmpty else { return }
        let records = events.map { event in
            OutgoingRecord(topic: topic, key: Array(event.pixelID.utf8), value: event.jsonBytes(), timestamp: event.ts)
        }
        await producer.enqueueAllWaiting(records) { [metrics, logger, places] result in
            places.release()
            if case .failure(let error) = result {
                metrics.pixelProduceFailures.increment()
                logger.error("pixel event not produced", metadata: ["error": "\(error)"])
            }
        }
    }
}
