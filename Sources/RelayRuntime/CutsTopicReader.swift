import Logging
import RelayCore
import RelayKafka

/// Reads a relay-batch group's `<group>.cuts` (``CutReports``) from the beginning to its current end, for the
/// member that completes cuts and for `relayctl`. A record that does not decode is counted, never trusted.
public enum CutsTopicReader {
    /// The records in topic order, and how many did not decode. Throws when the read does not reach the end: a
    /// partial read could have the completer write again what is written.
    public static func read(topic: String, client: KafkaClientConfiguration, logger: Logger,
                            timeout: Duration = .seconds(30)) async throws -> (records: [CutReports.Record], malformed: Int)
    {
        let admin = try KafkaAdmin(configuration: client, logger: logger)
        var records: [CutReports.Record] = []
        var malformed = 0
        let complete = try await admin.read(try await admin.topicPartitions(topic), timeout: timeout) { batch in
            for record in batch {
                if let r = try? CutReports.decode(key: record.key, value: record.value) { records.append(r) }
                else { malformed += 1 }
            }
        }
        guard complete else { throw KafkaError.timedOut(operation: "read \(topic)") }
        return (records, malformed)
    }

    /// The group's cuts folded into a book (an operator's view); a topic that does not exist reads as an empty book.
    public static func book(group: String, client: KafkaClientConfiguration, logger: Logger,
                            timeout: Duration = .seconds(30)) async throws -> (book: CutBook, malformed: Int)
    {
        let records: [CutReports.Record]
        let malformed: Int
        do {
            (records, malformed) = try await read(topic: CutReports.topic(group: group), client: client, logger: logger,
                                                  timeout: timeout)
        } catch let error as KafkaError where error.isUnknownTopic {
            return (CutBook(), 0)
        }
        var book = CutBook()
        for record in records { book.apply(record) }
        return (book, malformed)
    }
}
