import ArgumentParser
import Foundation
import Logging
import RelayCore
import RelayKafka
import RelayRuntime
import Synchronization

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

    @Option(name: .customLong("log-level"),
            help: "trace, debug, info, notice, warning, error or critical; librdkafka's own lines only at debug or trace.")
    var logLevel: String = "error"

    /// Loads the file or fails with every problem listed.
    func load(checkSecrets: Bool = false) throws -> RelayConfig {
        CLI.logLevel.withLock { $0 = Logger.Level(rawValue: logLevel) ?? .error }
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
    /// `--log-level`, set before the first logger is made.
    static let logLevel = Mutex<Logger.Level>(.error)

    static let logger: Logger = {
        let level = logLevel.withLock { $0 }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            guard label == "librdkafka" else { return handler }
            // librdkafka repeats each connection failure many times a second: its lines are for debugging. The
            // first problem it reports is kept as the cause of the one line relayctl prints.
            return BrokerCauseRecorder(handler, shown: level <= .debug)
        }
        return Logger(label: "relayctl")
    }()

    static func client(_ config: RelayConfig) throws -> KafkaClientConfiguration {
        do { return try config.kafkaClient() } catch { throw CLIError("kafka.properties: \(error)") }
    }

    /// An admin client whose brokers have answered, or one line naming the brokers and why they did not: refused
    /// connections, failed authentication or TLS, or no answer within ``brokerAnswerTimeout``.
    static func admin(_ config: RelayConfig) async throws -> KafkaAdmin {
        _ = logger  // logging bootstrapped before librdkafka's first line
        let admin = try KafkaAdmin(configuration: client(config), logger: logger)
        let brokers = config.kafka.bootstrapServers
        let deadline = ContinuousClock.now + brokerAnswerTimeout
        while true {
            do {
                // Any topic will do: an unknown one is an answer too.
                _ = try await admin.partitions(of: config.kafka.topics.qualifications, timeoutMs: 500)
                return admin
            } catch where error.isUnknownTopic {
                return admin
            } catch {
                if let cause = BrokerCauseRecorder.firstCause.withLock({ $0 }) {
                    throw CLIError("cannot reach the brokers at \(brokers): \(cause)")
                }
                if ContinuousClock.now >= deadline {
                    throw CLIError("cannot reach the brokers at \(brokers): no answer within \(brokerAnswerTimeout)")
                }
            }
        }
    }

    static let brokerAnswerTimeout: Duration = .seconds(5)

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

/// Passes librdkafka's lines to the handler (which drops them below `--log-level debug`) and keeps the first
/// warning or error as the cause of a broker failure.
struct BrokerCauseRecorder: LogHandler {
    static let firstCause = Mutex<String?>(nil)
    var base: StreamLogHandler
    /// Whether librdkafka's lines are printed at all (`--log-level debug` or `trace`).
    let shown: Bool

    init(_ base: StreamLogHandler, shown: Bool) {
        self.base = base
        self.shown = shown
    }

    /// Warnings always reach ``log(event:)``, to be kept as the cause even when not printed.
    var logLevel: Logger.Level {
        get { min(base.logLevel, .warning) }
        set { base.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { base[metadataKey: key] }
        set { base[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        if event.level >= .warning {
            let cause = Self.cause(from: event.message.description)
            Self.firstCause.withLock { if $0 == nil { $0 = cause } }
        }
        guard shown, event.level >= base.logLevel else { return }
        base.log(event: event)
    }

    /// `[thrd:host:port/bootstrap]: host:port/bootstrap: Connect to ... failed: ...` without the thread and broker
    /// prefixes (the line relayctl prints names the brokers already).
    static func cause(from text: String) -> String {
        var rest = Substring(text)
        if rest.hasPrefix("[thrd:"), let end = rest.range(of: "]: ") { rest = rest[end.upperBound...] }
        if let colon = rest.range(of: ": "), !rest[..<colon.lowerBound].contains(" "),
            rest[..<colon.lowerBound].contains("/")
        {
            rest = rest[colon.upperBound...]
        }
        return String(rest.prefix(300))
    }
}
