import Logging
import RelayKafka

/// Reads `aam.pixel-audit` from the beginning to its current end into a `ReportBook` (for `relayctl pixel report`).
public enum AuditTopicReader {
    public static func read(topic: String, client: KafkaClientConfiguration, book: ReportBook, logger: Logger,
                            timeout: Duration = .seconds(30)) async throws -> Int
    {
        let admin = try KafkaAdmin(configuration: client, logger: logger)
        var starts: [TopicPartition: Int64] = [:]
        var ends: [TopicPartition: Int64] = [:]
        for tp in try admin.topicPartitions(topic) {
            let (low, high) = try admin.watermarks(tp)
            if high > low { starts[tp] = low; ends[tp] = high }
        }
        guard !starts.isEmpty else { return 0 }
        let consumer = try KafkaConsumer(
            configuration: ConsumerConfiguration(client: client, mode: .assign(starts, group: nil)), logger: logger)
        try consumer.start()
        let stopper = Task {
            try await Task.sleep(for: timeout)
            await consumer.stopFetching()
        }
        var count = 0
        var remaining = Set(ends.keys)
        for await batch in consumer.batches() {
            for record in batch {
                if let report = try? AuditReport.decode(record.value) { book.apply(report); count += 1 }
                if record.offset + 1 >= ends[record.topicPartition]! { remaining.remove(record.topicPartition) }
            }
            if remaining.isEmpty { break }
        }
        stopper.cancel()
        await consumer.close()
        return count
    }
}
