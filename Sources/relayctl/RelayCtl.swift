import ArgumentParser
import Foundation
import Logging
import RelayCore
import RelayKafka
import RelayRuntime

/// The operator's tool. Every subcommand reads relay.yaml (`--config`) and exits non-zero with a clear message on
/// failure.
@main
struct RelayCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relayctl",
        abstract: "Operate AudienceRelay: configuration, topics, test events, replays, dead letters, lag.",
        version: BuildInfo.versionLine,
        subcommands: [Status.self, Validate.self, Topics.self, Produce.self, Replay.self, Lag.self, DeadLetters.self, BatchStatus.self,
                      PixelReport.self])
}

struct ConfigOption: ParsableArguments {
    @Option(help: "The configuration file.")
    var config: String = "relay.yaml"

    /// Loads the file or fails with every problem listed.
    func load(checkSecrets: Bool = false) throws -> RelayConfig {
        do {
            return try RelayConfig.load(path: config, checkSecrets: checkSecrets)
        } catch {
            throw CLIError("invalid configuration \(config)\n\(error)")
        }
    }
}

/// A failure reported as one clear line (or a few) and a non-zero exit, without a stack of internals.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum CLI {
    static let logger: Logger = {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        return Logger(label: "relayctl")
    }()

    static func client(_ config: RelayConfig) throws -> KafkaClientConfiguration {
        do { return try config.kafkaClient() } catch { throw CLIError("kafka.properties: \(error)") }
    }

    static func admin(_ config: RelayConfig) throws -> KafkaAdmin {
        try KafkaAdmin(configuration: client(config), logger: logger)
    }

    /// Partitions of a topic, or a clear error when the broker is unreachable or the topic is missing.
    static func partitions(_ admin: KafkaAdmin, topic: String, brokers: String) async throws -> [TopicPartition] {
        do {
            return try await admin.topicPartitions(topic)
        } catch where error.isUnknownTopic {
            throw CLIError("topic \(topic) does not exist (create it with `relayctl topics create`)")
        } catch {
            throw CLIError("cannot reach the brokers at \(brokers): \(error)")
        }
    }

    static var isTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
