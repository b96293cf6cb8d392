import RelayCore
import Logging
import RelayKafka

/// Reads `aam.pixel-audit` from the beginning to its current end into a `ReportBook` (for `relayctl pixel report`).
public enum AuditTopicReader {
    public static func read(topic: String, client: KafkaClientConfiguration, book: ReportBook, logger: Logger,
                            timeout: Duration = .seconds(30)) async throws -> Int
    {
        let admin = try KafkaAdmin(configuration: client, logger: logger)
        var count = 0
        for record in try await admin.readAll(topic, timeout: timeout) {
            if let report = try? AuditReport.decode(record.value) { book.apply(report); count += 1 }
        }
        return count
    }
}
