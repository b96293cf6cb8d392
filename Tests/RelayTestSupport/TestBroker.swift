import Foundation
import Logging
import RelayKafka
import Synchronization

/// The broker the integration tests talk to: the real one started by scripts/test.sh (RELAY_BROKERS).
public enum TestBroker {
    public static var brokers: String { ProcessInfo.processInfo.environment["RELAY_BROKERS"] ?? "127.0.0.1:19092" }

    /// Short group-join times: Tansu holds a JoinGroup for about half the session time-out.
    public static let groupProperties = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"]

    public static var client: KafkaClientConfiguration {
        KafkaClientConfiguration(brokers: brokers, properties: groupProperties)
    }

    public static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()

    /// A name no other test uses (topics, groups).
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UInt32.random(in: 0...UInt32.max))-\(ProcessInfo.processInfo.processIdentifier)"
    }

    public static func createTopic(_ prefix: String, partitions: Int32) async throws -> String {
        let topic = uniqueName(prefix)
        let admin = try KafkaAdmin(configuration: client, logger: logger)
        _ = try await admin.createTopics([topic], partitions: partitions)
        return topic
    }

    /// Four fresh topics named like relay.yaml's, so that tests never see each other's records.
    public static func createRelayTopics(partitions: Int32 = 4) async throws -> RelayTopics {
        let prefix = uniqueName("t")
        let topics = RelayTopics(qualifications: "\(prefix).qualifications", pixelEvents: "\(prefix).pixel-events",
                                 pixelAudit: "\(prefix).pixel-audit", deadLetter: "\(prefix).dead-letter")
        let admin = try KafkaAdmin(configuration: client, logger: logger)
        _ = try await admin.createTopics(topics.all, partitions: partitions)
        return topics
    }

    /// Produces records in the given order (per partition, offsets follow it) and waits for every acknowledgement.
    public static func produce(_ records: [OutgoingRecord]) async throws {
        let producer = try KafkaProducer(configuration: client, logger: logger)
        let failures = Mutex<[KafkaError]>([])
        for record in records {
            try await producer.enqueueWaiting(record) { result in
                if case .failure(let error) = result { failures.withLock { $0.append(error) } }
            }
        }
        try await producer.flush()
        await producer.close()
        if let first = failures.withLock({ $0.first }) { throw first }
    }

    /// Reads every record of a topic that is there now (from the beginning to the current end).
    public static func readAll(_ topic: String, timeout: Duration = .seconds(30)) async throws -> [KafkaRecord] {
        try await KafkaAdmin(configuration: client, logger: logger).readAll(topic, timeout: timeout)
    }
}

public struct RelayTopics: Sendable {
    public let qualifications: String
    public let pixelEvents: String
    public let pixelAudit: String
    public let deadLetter: String
    public var all: [String] { [qualifications, pixelEvents, pixelAudit, deadLetter] }

    /// The `kafka:` section of a relay.yaml using these topics and the test broker.
    public var kafkaYAML: String {
        """
        kafka:
          brokers: \(TestBroker.brokers)
          topics: {qualifications: \(qualifications), pixel_events: \(pixelEvents), pixel_audit: \(pixelAudit), dead_letter: \(deadLetter)}
          properties: {session.timeout.ms: "6000", heartbeat.interval.ms: "500"}

        """
    }
}
