import Logging

/// Follows a whole topic outside any consumer group: every partition from its beginning, then whatever arrives,
/// until the task is cancelled. The workers use it for topics every member reads in full (the audit's shares and
/// reports). A missing topic or an unreachable broker is logged and retried every 2 s, from the beginning again,
/// so `onBatch` must accept records it has seen before.
public enum TopicFollower {
    public static func follow(_ topic: String, client: KafkaClientConfiguration, logger: Logger,
                              onBatch: ([KafkaRecord]) async -> Void) async
    {
        while !Task.isCancelled {
            do {
                let partitions = try await KafkaAdmin(configuration: client, logger: logger).topicPartitions(topic)
                let consumer = try KafkaConsumer(
                    configuration: ConsumerConfiguration(
                        client: client,
                        mode: .assign(Dictionary(uniqueKeysWithValues: partitions.map {
                            ($0, KafkaConsumer.offsetBeginning)
                        }), group: nil),
                        maxBufferedRecords: 10_000, batchSize: 500),
                    logger: logger)
                try consumer.start()
                await withTaskCancellationHandler {
                    for await batch in consumer.batches() { await onBatch(batch) }
                } onCancel: {
                    Task { await consumer.stopFetching() }
                }
                await consumer.close()
            } catch {
                logger.warning("cannot follow the topic yet, retrying", metadata: ["topic": "\(topic)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(2))
            }
        }
    }
}
