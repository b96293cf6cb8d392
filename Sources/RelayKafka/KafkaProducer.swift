import CRdKafka
import RelayEncoding
import Foundation
import Logging
import Synchronization

/// An idempotent producer. Every record gets its own delivery result, as an `async` call (`send`) or a callback
/// (`enqueue`, for high rates without a task per record).
public final class KafkaProducer: Sendable {
    public typealias Completion = @Sendable (Result<DeliveryReport, KafkaError>) -> Void

    private let client: RDKafkaClient
    private let poller: PollThread
    private let logger: Logger

    public init(configuration: KafkaClientConfiguration, properties: [String: String] = [:], logger: Logger)
        throws(KafkaError)
    {
        self.logger = logger
        let conf = try configuration.makeConf(
            role: .producer,
            defaults: ["linger.ms": "5", "compression.codec": "lz4", "message.timeout.ms": "120000",
                       "client.id": "audience-relay"],
            overrides: properties.merging(["enable.idempotence": "true"]) { _, new in new },
            operation: "producer")
        rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
            guard let message, let opaque = message.pointee._private else { return }
            let box = Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue()
            let m = message.pointee
            if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                let topic = String(cString: rd_kafka_topic_name(m.rkt))
                box.completion(.success(DeliveryReport(topic: topic, partition: m.partition, offset: m.offset)))
            } else {
                box.completion(.failure(KafkaError(m.err, operation: "produce")))
            }
        }
        let client = try RDKafkaClient(type: RD_KAFKA_PRODUCER, conf: conf, operation: "producer")
        self.client = client
        // Delivery reports are served by rd_kafka_poll.
        poller = PollThread(name: "relay.producer.poll") { _ = client.ifOpen { rd_kafka_poll($0, 100) } }
    }

    /// Produces one record and returns once the broker has acknowledged it (or it has finally failed).
    public func send(_ record: OutgoingRecord) async throws(KafkaError) -> DeliveryReport {
        while true {
            // nil: the local queue was full and nothing was enqueued.
            let result: Result<DeliveryReport, KafkaError>? = await withCheckedContinuation { continuation in
                do throws(KafkaError) {
                    try enqueue(record) { continuation.resume(returning: $0) }
                } catch where error.isQueueFull {
                    continuation.resume(returning: nil)
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
            if let result { return try result.get() }
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Produces the records (in order per partition) and returns once the broker has acknowledged every one; throws
    /// the first failure once all have their result.
    public func sendAll(_ records: [OutgoingRecord]) async throws(KafkaError) {
        guard !records.isEmpty else { return }
        struct Outcome {
            var remaining: Int
            var failure: KafkaError?
            var waiter: CheckedContinuation<Void, Never>?
        }
        let outcome = Mutex(Outcome(remaining: records.count))
        @Sendable func done(_ result: Result<DeliveryReport, KafkaError>) {
            let waiter = outcome.withLock { o -> CheckedContinuation<Void, Never>? in
                if case .failure(let error) = result, o.failure == nil { o.failure = error }
                o.remaining -= 1
                guard o.remaining == 0 else { return nil }
                defer { o.waiter = nil }
                return o.waiter
            }
            waiter?.resume()
        }
        await enqueueAllWaiting(records, completion: done)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let finished = outcome.withLock { o -> Bool in
                if o.remaining == 0 { return true }
                o.waiter = continuation
                return false
            }
            if finished { continuation.resume() }
        }
        let failure = outcome.withLock { $0.failure }
        if let failure { throw failure }
    }

    /// `enqueue`, waiting (suspended, not blocking a thread) while librdkafka's local queue is full.
    public func enqueueWaiting(_ record: OutgoingRecord, completion: @escaping Completion) async throws(KafkaError) {
        try await whileQueueFull { () throws(KafkaError) in try enqueue(record, completion: completion) }
    }

    /// Hands the records to librdkafka in order, waiting (suspended) while its local queue is full; `completion`
    /// runs once per record (on the delivery thread). One completion shared by all: no allocation per record, for
    /// writers that produce many records per unit of work (a changelog write). When a record cannot be enqueued,
    /// `completion` runs with that failure for it and for every record after it, which are not enqueued either.
    public func enqueueAllWaiting(_ records: [OutgoingRecord], completion: @escaping Completion) async {
        let box = DeliveryBox(completion)
        var next = 0
        do throws(KafkaError) {
            try await whileQueueFull { () throws(KafkaError) in
                guard next < records.count else { return }
                try client.withHandle("produce \(records[next].topic)") { handle throws(KafkaError) in
                    while next < records.count {
                        try produce(records[next], on: handle, box: box)
                        next += 1
                    }
                }
            }
        } catch {
            for _ in next..<records.count { completion(.failure(error)) }
        }
    }

    /// Runs `attempt` again, 1 ms later, for as long as it fails on a full local queue: the poll thread drains the
    /// queue as deliveries complete. Suspends, never sleeps a thread.
    private func whileQueueFull(_ attempt: () throws(KafkaError) -> Void) async throws(KafkaError) {
        while true {
            do throws(KafkaError) {
                return try attempt()
            } catch where error.isQueueFull {
                try? await Task.sleep(for: .milliseconds(1))
            }
        }
    }

    /// Hands one record to librdkafka without waiting; `completion` runs on the delivery thread once its fate is
    /// known. A full local queue throws (`isQueueFull`): the caller decides whether to wait (`enqueueWaiting`) or
    /// to drop and count, since sleeping here would hold a thread of the cooperative pool.
    public func enqueue(_ record: OutgoingRecord, completion: @escaping Completion) throws(KafkaError) {
        try client.withHandle("produce \(record.topic)") { handle throws(KafkaError) in
            try produce(record, on: handle, box: DeliveryBox(completion))
        }
    }

    /// Each record enqueued holds one reference to `box`, given up by the delivery callback.
    private func produce(_ record: OutgoingRecord, on handle: OpaquePointer, box: DeliveryBox) throws(KafkaError) {
        let opaque = Unmanaged.passRetained(box).toOpaque()
        let headers: OpaquePointer? = record.headers.isEmpty ? nil : rd_kafka_headers_new(record.headers.count)
        for header in record.headers {
            header.value.withUnsafeBytes { value in
                _ = rd_kafka_header_add(headers, header.key, -1, value.baseAddress, value.count)
            }
        }
        let err = record.value.withUnsafeBytes { value in
            withKey(record.key) { keyPtr, keyLen in
                relay_produce(handle, record.topic, record.partition ?? RD_KAFKA_PARTITION_UA,
                              keyPtr, keyLen, record.isTombstone ? nil : value.baseAddress,
                              record.isTombstone ? 0 : value.count, headers, record.timestamp ?? 0, opaque)
            }
        }
        if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
        if let headers { rd_kafka_headers_destroy(headers) }
        Unmanaged<DeliveryBox>.fromOpaque(opaque).release()
        throw KafkaError(err, operation: "produce \(record.topic)")
    }

    /// Waits until every enqueued record has its delivery result, up to `timeoutMs`.
    public func flush(timeoutMs: Int32 = 30_000) async throws(KafkaError) {
        let client = self.client
        try await BlockingIO.run { () throws(KafkaError) in
            let err = try client.withHandle("flush") { rd_kafka_flush($0, timeoutMs) }
            if err != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(err, operation: "flush") }
        }
    }

    /// Number of records not yet delivered.
    public var outstanding: Int { client.ifOpen { Int(rd_kafka_outq_len($0)) } ?? 0 }

    public func partitions(of topic: String, timeoutMs: Int32 = 10_000) throws(KafkaError) -> [Int32] {
        try client.partitions(of: topic, timeoutMs: timeoutMs)[topic] ?? []
    }

    /// Flushes what is pending and releases the handle. Records that could not be delivered in time fail.
    public func close(timeoutMs: Int32 = 30_000) async {
        do { try await flush(timeoutMs: timeoutMs) } catch {
            logger.warning("producer closed with undelivered records", metadata: ["error": "\(error)"])
        }
        let poller = self.poller
        let client = self.client
        await BlockingIO.run {
            poller.stopAndWait()
            client.close()
        }
    }
}

/// Carries a record's completion through librdkafka's per-message opaque pointer.
private final class DeliveryBox {
    let completion: KafkaProducer.Completion
    init(_ completion: @escaping KafkaProducer.Completion) { self.completion = completion }
}

private func withKey<R>(_ key: [UInt8]?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
    guard let key else { return body(nil, 0) }
    return key.withUnsafeBytes { body($0.baseAddress, $0.count) }
}
