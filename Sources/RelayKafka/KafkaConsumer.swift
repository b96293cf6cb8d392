import CRdKafka
import RelayEncoding
import Foundation
import Logging
import Synchronization

/// A partition assignment change, delivered on the poll thread *before* librdkafka applies it, so the application
/// can commit what is final (revoke) or set up state (assign) while it still owns the partitions.
public enum RebalanceEvent: Sendable, Equatable {
    /// `generation` is stamped on every record read under this assignment (`KafkaRecord.generation`).
    case assigned([TopicPartition], generation: UInt64)
    case revoked([TopicPartition])
}

public struct ConsumerConfiguration: Sendable {
    public enum Mode: Sendable {
        /// Consumer-group member: partitions come and go with rebalances; offsets are committed by the application.
        case subscribe(group: String, topics: [String])
        /// Reads exactly these partitions from these offsets (`KafkaConsumer.offsetBeginning`/`offsetEnd` allowed);
        /// no group membership. With a group id, commits still work (used to rewrite a stopped group's offsets).
        case assign([TopicPartition: Int64], group: String?)
    }

    public var client: KafkaClientConfiguration
    public var mode: Mode
    /// Fetching pauses while this many records have been read but not yet taken by the application.
    public var maxBufferedRecords: Int
    /// Records taken from librdkafka in one call (and handed over as one batch).
    public var batchSize: Int
    /// Whether records carry their headers. librdkafka parses a record's headers on request, even when there are
    /// none, at a cost close to that of copying a small record: readers that never look at them turn this off, and
    /// their records have `headers` empty.
    public var readsHeaders: Bool

    public init(client: KafkaClientConfiguration, mode: Mode, maxBufferedRecords: Int = 50_000, batchSize: Int = 2_000,
                readsHeaders: Bool = true) {
        self.client = client
        self.mode = mode
        self.maxBufferedRecords = maxBufferedRecords
        self.batchSize = batchSize
        self.readsHeaders = readsHeaders
    }
}

/// A consumer with manual commits. Records arrive in batches through `batches()`, read by a dedicated thread.
public final class KafkaConsumer: Sendable {
    public static let offsetBeginning = Int64(RD_KAFKA_OFFSET_BEGINNING)
    public static let offsetEnd = Int64(RD_KAFKA_OFFSET_END)

    private let client: RDKafkaClient
    private let context: ConsumerContext
    private let configuration: ConsumerConfiguration
    private let stream: AsyncStream<[KafkaRecord]>
    private let poller: Mutex<PollThread?> = Mutex(nil)
    private let logger: Logger

    public init(configuration: ConsumerConfiguration, logger: Logger) throws(KafkaError) {
        self.configuration = configuration
        self.logger = logger
        var group: String?
        switch configuration.mode {
        case .subscribe(let g, _): group = g
        case .assign(_, let g): group = g
        }
        var overrides = ["enable.auto.commit": "false", "enable.auto.offset.store": "false",
                         "enable.partition.eof": "false"]
        // librdkafka needs a group id even to assign partitions by hand; such a consumer never commits.
        overrides["group.id"] = group ?? "relay-reader-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let conf = try configuration.client.makeConf(
            role: .consumer,
            defaults: ["auto.offset.reset": "earliest", "client.id": "audience-relay",
                       "queued.max.messages.kbytes": "65536"],
            overrides: overrides, operation: "consumer")
        let (stream, continuation) = AsyncStream.makeStream(of: [KafkaRecord].self)
        self.stream = stream
        context = ConsumerContext(continuation: continuation, readsHeaders: configuration.readsHeaders, logger: logger)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
            guard let rk, let partitions, let opaque else { return }
            Unmanaged<ConsumerContext>.fromOpaque(opaque).takeUnretainedValue()
                .rebalance(rk: rk, err: err, partitions: partitions)
        }
        client = try RDKafkaClient(type: RD_KAFKA_CONSUMER, conf: conf, operation: "consumer")
        // Route the main queue's events (rebalances, errors) to the consumer queue that the poll thread serves.
        _ = client.ifOpen { rd_kafka_poll_set_consumer($0) }
    }

    /// Joins the group (or takes the fixed assignment) and starts reading. `onRebalance` runs on the poll thread
    /// before each assignment change takes effect; it may call `commit` synchronously.
    public func start(onRebalance: @escaping @Sendable (RebalanceEvent) -> Void = { _ in }) throws(KafkaError) {
        try client.markStarted(operation: "start consumer")
        context.onRebalance.withLock { $0 = onRebalance }
        switch configuration.mode {
        case .subscribe(_, let topics):
            let list = TopicPartitionList(topics.map { (TopicPartition($0, RD_KAFKA_PARTITION_UA), 0) })
            defer { list.destroy() }
            let err = try client.withHandle("subscribe") { rd_kafka_subscribe($0, list.pointer) }
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(err, operation: "subscribe \(topics.joined(separator: ","))")
            }
        case .assign(let offsets, _):
            let list = TopicPartitionList(offsets.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
            defer { list.destroy() }
            let partitions = offsets.keys.sorted()
            let generation = context.assigned(partitions)
            onRebalance(.assigned(partitions, generation: generation))
            let err = try client.withHandle("assign") { rd_kafka_assign($0, list.pointer) }
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "assign") }
        }
        let queue = try client.withHandle("start consumer") { rd_kafka_queue_get_consumer($0)! }
        let (client, context, configuration) = (self.client, self.context, self.configuration)
        let batchSize = configuration.batchSize
        // The poll thread owns `messages` and the pause flag; nothing else touches them.
        let loopState = PollLoopState(batchSize: batchSize, queue: queue)
        context.queue = queue
        let thread = PollThread(name: "relay.consumer.poll") {
            // Flow control. A short stall keeps librdkafka's prefetched data (pausing discards it, and a refetch
            // costs far more than a few milliseconds of waiting); only a reader that stays behind for longer gets
            // its partitions paused, so that the loop can go on serving rebalances.
            let overLimit = context.buffered.load(ordering: .relaxed) >= configuration.maxBufferedRecords
            if overLimit {
                let since = loopState.overLimitSince ?? ContinuousClock.now
                loopState.overLimitSince = since
                if !loopState.paused, ContinuousClock.now - since < .seconds(2) {
                    usleep(2_000)
                    return
                }
                // Pausing again is idempotent and covers partitions a rebalance added since.
                loopState.paused = true
                _ = client.ifOpen { Self.setPaused($0, true) }
            } else {
                loopState.overLimitSince = nil
                if loopState.paused {
                    loopState.paused = false
                    _ = client.ifOpen { Self.setPaused($0, false) }
                }
            }
            // Block for the first message only (consume_batch_queue would wait out its whole time-out to fill a
            // batch), then take whatever else is already queued without waiting.
            let n = loopState.messages.withUnsafeMutableBufferPointer { buf -> Int in
                guard let first = rd_kafka_consume_queue(loopState.queue, 100) else { return 0 }
                buf[0] = first
                let more = rd_kafka_consume_batch_queue(loopState.queue, 0, buf.baseAddress! + 1, batchSize - 1)
                return 1 + max(0, more)
            }
            if n > 0 { context.deliver(loopState.messages[0..<n]) }
        }
        poller.withLock { $0 = thread }
    }

    /// The records read, in batches; each partition's records in offset order. Ends when the consumer stops.
    public func batches() -> RecordBatches { RecordBatches(stream: stream, context: context) }

    /// Stops reading new records (the group membership stays until `close`). Blocks until the poll thread stopped.
    public func stopFetching() async {
        let poller = self.poller.withLock { $0 }
        _ = try? await BlockingIO.run { () throws(KafkaError) in poller?.stopAndWait() }
        context.continuation.finish()
    }

    /// Commits `offsets` (the next offset to read, per partition) synchronously. Safe inside `onRebalance`.
    public func commit(_ offsets: [TopicPartition: Int64]) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let list = TopicPartitionList(offsets.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        defer { list.destroy() }
        let err = try client.withHandle("commit") { rd_kafka_commit($0, list.pointer, 0) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "commit") }
        for (tp, _, perr) in list.entries where perr != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(perr, operation: "commit \(tp)")
        }
    }

    /// `commit`, awaited off the cooperative pool.
    public func commitAsync(_ offsets: [TopicPartition: Int64]) async throws(KafkaError) {
        try await BlockingIO.run { () throws(KafkaError) in try self.commit(offsets) }
    }

    /// The group's committed offsets (next offset to read); partitions without a commit are left out.
    public func committed(_ partitions: [TopicPartition], timeoutMs: Int32 = 10_000) throws(KafkaError)
        -> [TopicPartition: Int64]
    {
        let list = TopicPartitionList(partitions.map { ($0, Int64(RD_KAFKA_OFFSET_INVALID)) })
        defer { list.destroy() }
        let err = try client.withHandle("committed") { rd_kafka_committed($0, list.pointer, timeoutMs) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: "committed") }
        var result: [TopicPartition: Int64] = [:]
        for (tp, offset, perr) in list.entries {
            if perr != RD_KAFKA_RESP_ERR_NO_ERROR { throw KafkaError(perr, operation: "committed \(tp)") }
            if offset >= 0 { result[tp] = offset }
        }
        return result
    }

    /// Moves the read position of assigned partitions.
    public func seek(_ offsets: [TopicPartition: Int64], timeoutMs: Int32 = 10_000) throws(KafkaError) {
        let list = TopicPartitionList(offsets.map { ($0.key, $0.value) })
        defer { list.destroy() }
        if let error = try client.withHandle("seek", { rd_kafka_seek_partitions($0, list.pointer, timeoutMs) }) {
            let code = rd_kafka_error_code(error)
            rd_kafka_error_destroy(error)
            throw KafkaError(code, operation: "seek")
        }
    }

    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        try setPaused(partitions, true)
    }

    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        try setPaused(partitions, false)
    }

    private func setPaused(_ partitions: [TopicPartition], _ paused: Bool) throws(KafkaError) {
        let list = TopicPartitionList(partitions.map { ($0, 0) })
        defer { list.destroy() }
        let err = try client.withHandle(paused ? "pause" : "resume") { handle in
            paused ? rd_kafka_pause_partitions(handle, list.pointer) : rd_kafka_resume_partitions(handle, list.pointer)
        }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(err, operation: paused ? "pause" : "resume") }
    }

    private static func setPaused(_ rk: OpaquePointer, _ paused: Bool) {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(rk, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = paused ? rd_kafka_pause_partitions(rk, list) : rd_kafka_resume_partitions(rk, list)
    }

    /// The partitions currently assigned to this consumer.
    public func assignment() -> [TopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard client.ifOpen({ rd_kafka_assignment($0, &list) }) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else {
            return []
        }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return TopicPartitionList.entries(of: list).map(\.0).sorted()
    }

    public func watermarks(_ tp: TopicPartition, timeoutMs: Int32 = 10_000) throws(KafkaError)
        -> (low: Int64, high: Int64)
    {
        try client.watermarks(tp, timeoutMs: timeoutMs)
    }

    public func offsetsForTimes(_ partitions: [TopicPartition], timestamp: Int64, timeoutMs: Int32 = 10_000)
        throws(KafkaError) -> [TopicPartition: Int64]
    {
        try client.offsetsForTimes(partitions, timestamp: timestamp, timeoutMs: timeoutMs)
    }

    public func partitions(of topic: String, timeoutMs: Int32 = 10_000) throws(KafkaError) -> [Int32] {
        try client.partitions(of: topic, timeoutMs: timeoutMs)[topic] ?? []
    }

    /// Leaves the group (running a final revoke through `onRebalance`) and releases the handle.
    public func close() async {
        await stopFetching()
        let (client, context) = (self.client, self.context)
        await BlockingIO.run {
            client.close { handle in
                if let queue = context.queue { rd_kafka_queue_destroy(queue) }
                // Runs the final revoke through `onRebalance`, which may still commit.
                _ = rd_kafka_consumer_close(handle)
                context.onRebalance.withLock { $0 = { _ in } }
            }
        }
    }
}

/// The async sequence of record batches. Taking a batch out releases its share of the fetch buffer.
public struct RecordBatches: AsyncSequence, Sendable {
    public typealias Element = [KafkaRecord]
    let stream: AsyncStream<[KafkaRecord]>
    let context: ConsumerContext

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<[KafkaRecord]>.AsyncIterator
        let context: ConsumerContext

        public mutating func next() async -> [KafkaRecord]? {
            guard let batch = await base.next() else { return nil }
            context.buffered.subtract(batch.count, ordering: .relaxed)
            return batch
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), context: context)
    }
}

/// State the poll thread keeps between iterations. Only the poll thread touches it.
private final class PollLoopState: @unchecked Sendable {
    var messages: [UnsafeMutablePointer<rd_kafka_message_t>?]
    var paused = false
    var overLimitSince: ContinuousClock.Instant?
    let queue: OpaquePointer
    init(batchSize: Int, queue: OpaquePointer) {
        messages = Array(repeating: nil, count: batchSize)
        self.queue = queue
    }
}

/// What librdkafka's callbacks reach through the opaque pointer.
///
/// `@unchecked Sendable`: `queue` is written once in `start` before the poll thread exists and read after it
/// stopped; `topicNames` is touched only on the poll thread; everything else is `Mutex`/`Atomic`.
final class ConsumerContext: @unchecked Sendable {
    let continuation: AsyncStream<[KafkaRecord]>.Continuation
    let onRebalance = Mutex<@Sendable (RebalanceEvent) -> Void>({ _ in })
    /// Records yielded and not yet taken by the application.
    let buffered = Atomic<Int>(0)
    /// Assignment generation per owned partition, stamped on each record.
    private let generations = Mutex<[TopicPartition: UInt64]>([:])
    private let nextGeneration = Atomic<UInt64>(1)
    var queue: OpaquePointer?
    private var topicNames: [OpaquePointer: String] = [:]
    private let readsHeaders: Bool
    private let logger: Logger

    init(continuation: AsyncStream<[KafkaRecord]>.Continuation, readsHeaders: Bool, logger: Logger) {
        self.continuation = continuation
        self.readsHeaders = readsHeaders
        self.logger = logger
    }

    @discardableResult
    func assigned(_ partitions: [TopicPartition]) -> UInt64 {
        let generation = nextGeneration.add(1, ordering: .relaxed).newValue
        generations.withLock { g in for tp in partitions { g[tp] = generation } }
        return generation
    }

    func rebalance(rk: OpaquePointer, err: rd_kafka_resp_err_t,
                   partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>)
    {
        let tps = TopicPartitionList.entries(of: partitions).map(\.0).sorted()
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        let handler = onRebalance.withLock { $0 }
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            logger.info("partitions assigned", metadata: ["partitions": "\(tps.map(\.description))"])
            let generation = assigned(tps)
            handler(.assigned(tps, generation: generation))
            if cooperative {
                if let e = rd_kafka_incremental_assign(rk, partitions) { rd_kafka_error_destroy(e) }
            } else {
                rd_kafka_assign(rk, partitions)
            }
        default:
            logger.info("partitions revoked", metadata: ["partitions": "\(tps.map(\.description))"])
            handler(.revoked(tps))
            generations.withLock { g in for tp in tps { g[tp] = nil } }
            if cooperative {
                if let e = rd_kafka_incremental_unassign(rk, partitions) { rd_kafka_error_destroy(e) }
            } else {
                rd_kafka_assign(rk, nil)
            }
        }
    }

    /// Copies a batch of messages out of librdkafka, destroys them and yields the records.
    func deliver(_ messages: ArraySlice<UnsafeMutablePointer<rd_kafka_message_t>?>) {
        defer { for case let message? in messages { rd_kafka_message_destroy(message) } }
        // Every key and value of the batch goes into one buffer, each record's key right before its value.
        var size = 0
        for case let message? in messages where message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            size += Self.keyLength(message.pointee) + Self.valueLength(message.pointee)
        }
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            guard let base = UnsafeMutableRawPointer(buffer.baseAddress) else { return }
            for case let message? in messages where message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                let m = message.pointee
                if let key = m.key {
                    (base + count).copyMemory(from: key, byteCount: m.key_len)
                    count += m.key_len
                }
                if let payload = m.payload {
                    (base + count).copyMemory(from: payload, byteCount: m.len)
                    count += m.len
                }
            }
        }
        let generations = self.generations.withLock { $0 }
        var records: [KafkaRecord] = []
        records.reserveCapacity(messages.count)
        // Messages come in long runs of one partition: its topic name and generation are looked up once per run.
        var run: (rkt: OpaquePointer, partition: Int32, topic: String, generation: UInt64)?
        var start = 0
        for case let message? in messages {
            let m = message.pointee
            guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                let detail = m.payload.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) }
                logger.warning("consumer error", metadata: ["error": "\(KafkaError(m.err, operation: "consume", detail: detail))"])
                continue
            }
            if run?.rkt != m.rkt || run?.partition != m.partition {
                let topic = topicName(m.rkt)
                run = (m.rkt, m.partition, topic, generations[TopicPartition(topic, m.partition)] ?? 0)
            }
            let end = start + Self.keyLength(m) + Self.valueLength(m)
            var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let timestamp = rd_kafka_message_timestamp(message, &timestampType)
            records.append(KafkaRecord(topic: run!.topic, partition: m.partition, offset: m.offset,
                                       keyLength: m.key == nil ? -1 : Int32(m.key_len), bytes: bytes[start..<end],
                                       timestamp: timestamp,
                                       headers: readsHeaders ? Self.headers(of: message) : [],
                                       generation: run!.generation))
            start = end
        }
        guard !records.isEmpty else { return }
        buffered.add(records.count, ordering: .relaxed)
        continuation.yield(records)
    }

    private static func keyLength(_ m: rd_kafka_message_t) -> Int { m.key == nil ? 0 : m.key_len }
    private static func valueLength(_ m: rd_kafka_message_t) -> Int { m.payload == nil ? 0 : m.len }

    private static func headers(of message: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        guard rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return [] }
        var index = 0
        var name: UnsafePointer<CChar>?
        var valuePtr: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(hdrs, index, &name, &valuePtr, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            let bytes = valuePtr.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            headers.append(KafkaHeader(String(cString: name!), bytes))
            index += 1
        }
        return headers
    }

    private func topicName(_ rkt: OpaquePointer) -> String {
        if let name = topicNames[rkt] { return name }
        let name = String(cString: rd_kafka_topic_name(rkt))
        topicNames[rkt] = name
        return name
    }
}

extension KafkaConsumer {
    /// The last high watermark librdkafka saw while fetching (no broker round trip); nil before the first fetch.
    public func cachedHighWatermark(_ tp: TopicPartition) -> Int64? {
        var low: Int64 = -1
        var high: Int64 = -1
        let err = client.ifOpen { rd_kafka_get_watermark_offsets($0, tp.topic, tp.partition, &low, &high) }
        return err == RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0 ? high : nil
    }
}
