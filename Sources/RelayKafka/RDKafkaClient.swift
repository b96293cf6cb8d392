import CRdKafka
import Foundation
import Synchronization

/// Owns one `rd_kafka_t` handle: the one place where the handle is reached (`withHandle`) and destroyed (`close`).
///
/// `@unchecked Sendable` because librdkafka documents `rd_kafka_t` as thread-safe for every call this module makes
/// from several threads (produce, poll, commit, query...), and the only mutable Swift state, the lifecycle, is behind
/// a `Mutex`.
final class RDKafkaClient: @unchecked Sendable {
    private let handle: OpaquePointer
    private let lifecycle = Mutex(ClientLifecycle())

    /// Takes ownership of `conf` (librdkafka frees it on success; we free it on failure).
    init(type: rd_kafka_type_t, conf: OpaquePointer, operation: String) throws(KafkaError) {
        var errbuf = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(type, conf, &errbuf, errbuf.count) else {
            rd_kafka_conf_destroy(conf)
            let detail = errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw KafkaError.usage(detail, operation: operation)
        }
        handle = rk
    }

    /// Runs `body` with the handle, which stays alive until it returns; after `close()` it throws instead.
    func withHandle<R>(_ operation: @autoclosure () -> String, _ body: (OpaquePointer) throws(KafkaError) -> R)
        throws(KafkaError) -> R
    {
        guard lifecycle.withLock({ $0.enter() }) else { throw KafkaError.closed(operation: operation()) }
        defer { lifecycle.withLock { $0.leave() } }
        return try body(handle)
    }

    /// The same for callers that have nothing to do once the client is closed (poll loops, caches).
    func ifOpen<R>(_ body: (OpaquePointer) -> R) -> R? {
        guard lifecycle.withLock({ $0.enter() }) else { return nil }
        defer { lifecycle.withLock { $0.leave() } }
        return body(handle)
    }

    /// Marks the client started; a second start is refused.
    func markStarted(operation: String) throws(KafkaError) {
        switch lifecycle.withLock({ $0.start() }) {
        case nil: return
        case .alreadyStarted?: throw KafkaError.usage("already started", operation: operation)
        case .closed?: throw KafkaError.closed(operation: operation)
        }
    }

    /// Blocking (call it off the cooperative pool). Runs `finalWork` on the handle while calls are still allowed
    /// (leaving a group runs the revoke callback, which commits), then refuses new calls, waits for running ones
    /// and destroys the handle. Only the first close does anything.
    func close(finalWork: (OpaquePointer) -> Void = { _ in }) {
        guard lifecycle.withLock({ $0.beginClose() }) else { return }
        finalWork(handle)
        lifecycle.withLock { $0.refuseCalls() }
        while !lifecycle.withLock({ $0.canDestroy }) { usleep(1_000) }
        rd_kafka_destroy(handle)
    }

    deinit {
        // A client dropped without close(): nobody can hold it any more.
        if lifecycle.withLock({ $0.state != .closed }) { rd_kafka_destroy(handle) }
    }

    /// Topic metadata: partition ids per topic (only the topics asked for, or all when `topic` is nil).
    func partitions(of topic: String?, timeoutMs: Int32) throws(KafkaError) -> [String: [Int32]] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = try withHandle("metadata") { handle in
            var rkt: OpaquePointer?
            if let topic { rkt = rd_kafka_topic_new(handle, topic, nil) }
            defer { if let rkt { rd_kafka_topic_destroy(rkt) } }
            return rd_kafka_metadata(handle, topic == nil ? 1 : 0, rkt, &metadata, timeoutMs)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaError(err, operation: "metadata \(topic ?? "*")")
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var result: [String: [Int32]] = [:]
        let md = metadata.pointee
        for i in 0..<Int(md.topic_cnt) {
            let t = md.topics[i]
            let name = String(cString: t.topic)
            if t.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if topic != nil { throw KafkaError(t.err, operation: "metadata \(name)") }
                continue
            }
            result[name] = (0..<Int(t.partition_cnt)).map { t.partitions[$0].id }.sorted()
        }
        return result
    }

    /// Low and high watermark of a partition, asked of the broker.
    func watermarks(_ tp: TopicPartition, timeoutMs: Int32) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = try withHandle("watermarks") { handle in
            rd_kafka_query_watermark_offsets(handle, tp.topic, tp.partition, &low, &high, timeoutMs)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "watermarks \(tp)") }
        return (low, high)
    }

    /// For each partition, the earliest offset whose timestamp is at or after `timestamp` (ms); the high watermark
    /// where there is none.
    func offsetsForTimes(_ partitions: [TopicPartition], timestamp: Int64, timeoutMs: Int32) throws(KafkaError)
        -> [TopicPartition: Int64]
    {
        let list = TopicPartitionList(partitions.map { ($0, timestamp) })
        defer { list.destroy() }
        let err = try withHandle("offsetsForTimes") { handle in rd_kafka_offsets_for_times(handle, list.pointer, timeoutMs) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "offsetsForTimes") }
        var result: [TopicPartition: Int64] = [:]
        for (tp, offset, perr) in list.entries {
            if perr != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(perr, operation: "offsetsForTimes \(tp)") }
            result[tp] = offset >= 0 ? offset : try watermarks(tp, timeoutMs: timeoutMs).high
        }
        return result
    }
}

/// A scoped `rd_kafka_topic_partition_list_t`.
struct TopicPartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(_ entries: [(TopicPartition, Int64)]) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(entries.count, 1)))
        for (tp, offset) in entries {
            rd_kafka_topic_partition_list_add(pointer, tp.topic, tp.partition).pointee.offset = offset
        }
    }

    init(borrowing pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        self.pointer = pointer
    }

    var entries: [(TopicPartition, Int64, rd_kafka_resp_err_t)] {
        Self.entries(of: pointer)
    }

    static func entries(of list: UnsafePointer<rd_kafka_topic_partition_list_t>)
        -> [(TopicPartition, Int64, rd_kafka_resp_err_t)]
    {
        (0..<Int(list.pointee.cnt)).map { i in
            let e = list.pointee.elems[i]
            return (TopicPartition(String(cString: e.topic), e.partition), e.offset, e.err)
        }
    }

    func destroy() { rd_kafka_topic_partition_list_destroy(pointer) }
}
