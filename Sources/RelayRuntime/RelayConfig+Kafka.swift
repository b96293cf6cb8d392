import Foundation
import RelayCore
import RelayKafka

extension RelayConfig {
    /// The librdkafka client settings of `kafka:`, with `_env`/`_file` secret properties resolved.
    public func kafkaClient(environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> KafkaClientConfiguration
    {
        KafkaClientConfiguration(brokers: kafka.bootstrapServers,
                                 properties: try kafka.resolvedProperties(environment: environment))
    }
}
