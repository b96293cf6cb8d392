import Logging
import RelayCore
import RelayKafka

/// Reads `aam.pixel-audit` (a contract, SPEC §6) from the beginning to its current end, for `relayctl` and for the
/// audit member that takes over publishing. A record that does not decode is skipped: it is never trusted.
public enum AuditTopicReader {
    /// Gives each report in topic order; returns how many decoded and whether the read reached the end.
    @discardableResult
    public static func read(topic: String, client: KafkaClientConfiguration, logger: Logger,
                            timeout: Duration = .seconds(30), _ take: (AuditReport) -> Void) async throws
        -> (reports: Int, complete: Bool)
    {
        let admin = try KafkaAdmin(configuration: client, logger: logger)
        var count = 0
        let complete = try await admin.read(try await admin.topicPartitions(topic), timeout: timeout) { batch in
            for record in batch {
                guard let report = try? AuditReport.decode(record.value) else { continue }
                take(report)
                count += 1
            }
        }
        return (count, complete)
    }

    /// Reads into `book` (the merged reports, latest first wins); returns how many reports decoded.
    public static func read(topic: String, client: KafkaClientConfiguration, book: ReportBook, logger: Logger,
                            timeout: Duration = .seconds(30)) async throws -> Int
    {
        try await read(topic: topic, client: client, logger: logger, timeout: timeout) { book.apply($0) }.reports
    }
}
