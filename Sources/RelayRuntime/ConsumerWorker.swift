import Foundation
import Logging
import RelayCore
import RelayKafka
import ServiceLifecycle

/// Everything a worker's handler is given: its configuration, identity, the shared producer, the dead-letter writer
/// and the offset tracker through which it marks records final.
public struct WorkerContext: Sendable {
    public let config: RelayConfig
    /// The executable's name (`relay-realtime`...), also the default consumer group.
    public let name: String
    /// This process: `host:pid`, written into dead letters.
    public let workerID: String
    public let logger: Logger
    public let producer: KafkaProducer
    public let deadLetters: DeadLetterWriter
    public let offsets: OffsetTracker
    public let readiness: Readiness
    public let kafkaClient: KafkaClientConfiguration

    public init(config: RelayConfig, name: String, workerID: String, logger: Logger, producer: KafkaProducer,
                deadLetters: DeadLetterWriter, offsets: OffsetTracker, readiness: Readiness,
                kafkaClient: KafkaClientConfiguration)
    {
        self.kafkaClient = kafkaClient
        self.config = config
        self.name = name
        self.workerID = workerID
        self.logger = logger
        self.producer = producer
        self.deadLetters = deadLetters
        self.offsets = offsets
        self.readiness = readiness
    }

    public static func processID() -> String {
        "\(ProcessInfo.processInfo.hostName):\(getpid())"
    }
}

/// A consumer-group member running the consume → handle → commit loop.
///
/// Offsets are committed every `commitInterval`, on revocation (inside the rebalance callback, before the partition
/// moves) and at shutdown, each time only up to the oldest record that is not final. At-least-once: a crash replays
/// from the last commit, never past unfinished work.
public struct ConsumerWorker<Handler: RecordHandler>: Service {
    public let context: WorkerContext
    public let group: String
    public let topics: [String]
    public let handler: Handler
    public var commitInterval: Duration = .seconds(1)

    public init(context: WorkerContext, group: String, topics: [String], handler: Handler) {
        self.context = context
        self.group = group
        self.topics = topics
        self.handler = handler
    }

    public func run() async throws {
        let logger = context.logger
        let offsets = context.offsets
        let consumer = try KafkaConsumer(
            // No worker reads the headers of its input records (see `RecordHandler`): skipping them saves a parse.
            configuration: ConsumerConfiguration(client: context.kafkaClient,
                                                 mode: .subscribe(group: group, topics: topics), readsHeaders: false),
            logger: logger)
        let handler = self.handler
        let readiness = context.readiness
        try consumer.start { event in
            switch event {
            case .assigned(let partitions, let generation):
                offsets.assign(partitions, generation: generation)
                handler.partitionsAssigned(partitions, generation: generation)
                // The broker answered and the group gave this member its share: now it works.
                readiness.set(true)
            case .revoked(let partitions):
                handler.partitionsRevoked(partitions)
                let final = offsets.revoke(partitions)
                RuntimeMetrics.lagCleared(partitions)
                do {
                    try consumer.commit(final)
                    RuntimeMetrics.committed(final)
                } catch {
                    RuntimeMetrics.commitFailed()
                    logger.error("commit on revoke failed", metadata: ["error": "\(error)"])
                }
            }
        }
        logger.info("joining", metadata: ["group": "\(group)", "topics": "\(topics)"])

        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await handler.run() }
            group.addTask { await commitPeriodically(consumer) }
            await withGracefulShutdownHandler {
                for await batch in consumer.batches() {
                    if let topic = batch.first?.topic { RuntimeMetrics.recordsConsumed(batch.count, topic: topic) }
                    let accepted = offsets.track(batch)
                    guard !accepted.isEmpty else { continue }
                    readiness.workStarted()
                    await handler.handle(accepted)
                    readiness.workFinished()
                }
            } onGracefulShutdown: {
                logger.info("shutting down: draining in-flight work")
                Task { await consumer.stopFetching() }
            }
            context.readiness.set(false)
            await handler.drain()
            await commit(consumer)
            group.cancelAll()
        }
        await consumer.close()
        logger.info("stopped", metadata: ["pending": "\(offsets.pendingCount)"])
    }

    private func commitPeriodically(_ consumer: KafkaConsumer) async {
        var tick = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: commitInterval)
            await commit(consumer)
            tick += 1
            if tick % 5 == 0 { await reportLag(consumer) }
        }
    }

    private func commit(_ consumer: KafkaConsumer) async {
        let offsets = context.offsets.pendingCommits()
        guard !offsets.isEmpty else { return }
        do {
            try await consumer.commitAsync(offsets)
            context.offsets.markCommitted(offsets)
            RuntimeMetrics.committed(offsets)
        } catch {
            // Not fatal: the next commit carries the same or later offsets.
            RuntimeMetrics.commitFailed()
            context.logger.warning("commit failed", metadata: ["error": "\(error)"])
        }
        RuntimeMetrics.pending(context.offsets.pendingCount)
    }

    private func reportLag(_ consumer: KafkaConsumer) async {
        for tp in context.offsets.assignedPartitions {
            guard let high = consumer.cachedHighWatermark(tp) else { continue }
            let position = context.offsets.commitPoint(tp) ?? high
            RuntimeMetrics.lag(tp, max(0, high - position)) { context.offsets.assignedPartitions.contains(tp) }
        }
    }
}
