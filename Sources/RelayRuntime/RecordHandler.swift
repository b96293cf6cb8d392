import RelayKafka

/// What a worker does with the records of its assigned partitions. The runtime calls `handle` with every batch in
/// read order; the handler marks each record final through `WorkerContext.offsets` when its work is done (now or
/// later), and the runtime commits up to the oldest record that is not final. Records arrive without their Kafka
/// headers (`headers` is empty): no worker reads them, and parsing them would cost every record.
public protocol RecordHandler: Sendable {
    /// Background work of the handler (flush timers, cut schedules). Cancelled after `drain` at shutdown.
    func run() async throws
    /// Called with each batch, in order; records of one partition are in offset order.
    func handle(_ records: [KafkaRecord]) async
    /// On the consumer's poll thread, before the partitions are read: keep it short. `generation` is stamped on
    /// every record read under this assignment, and is what ``OffsetTracker/owns(_:generation:)`` asks about.
    func partitionsAssigned(_ partitions: [TopicPartition], generation: UInt64)
    /// On the consumer's poll thread, before the final commit of these partitions: drop (or finish) their work.
    func partitionsRevoked(_ partitions: [TopicPartition])
    /// At shutdown, after the last batch: finish in-flight work so that it can be committed.
    func drain() async
    /// What the handler holds for the life of the process (an HTTP client): closed by the worker's ServiceGroup
    /// after the consumer has stopped, before the producer.
    var resources: [ClosingService] { get }
}

extension RecordHandler {
    public func run() async throws {}
    public func partitionsAssigned(_ partitions: [TopicPartition], generation: UInt64) {}
    public func partitionsRevoked(_ partitions: [TopicPartition]) {}
    public func drain() async {}
    public var resources: [ClosingService] { [] }
}
