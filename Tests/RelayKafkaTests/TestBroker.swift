import Foundation
import Logging
import RelayKafka

/// The broker the integration tests talk to: the real one started by scripts/broker.sh (RELAY_BROKERS).
enum TestBroker {
    static var brokers: String { ProcessInfo.processInfo.environment["RELAY_BROKERS"] ?? "127.0.0.1:9092" }
    /// Short group-join times: Tansu holds a JoinGroup for about half the session time-out.
    static var client: KafkaClientConfiguration {
        KafkaClientConfiguration(brokers: brokers, properties: ["session.timeout.ms": "6000",
                                                                 "heartbeat.interval.ms": "500"])
    }
    static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()

    /// A topic name no other test uses.
    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UInt32.random(in: 0...UInt32.max))-\(ProcessInfo.processInfo.processIdentifier)"
    }

    static func createTopic(_ prefix: String, partitions: Int32) async throws -> String {
        let topic = uniqueName(prefix)
        let admin = try KafkaAdmin(configuration: client, logger: logger)
        _ = try await admin.createTopics([topic], partitions: partitions)
        return topic
    }
}
