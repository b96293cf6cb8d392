import Logging
import RelayCore
import RelayKafka

/// How a stateful worker makes sure of its internal topics before it relies on them.
public enum InternalTopicSetup {
    /// Creates `topics` (compacted) with the input's partition count when they are missing, and logs an error for
    /// one that exists with another count (its partition `p` must serve input partition `p`). Retried every 2 s
    /// until the broker answers; returns the input's partition count (from the broker, never guessed), or nil when
    /// the task is cancelled first.
    public static func prepare(_ topics: [String], input: String, client: KafkaClientConfiguration,
                               logger: Logger) async -> Int32?
    {
        while !Task.isCancelled {
            do {
                let admin = try KafkaAdmin(configuration: client, logger: logger)
                let count = Int32(try await admin.partitions(of: input).count)
                _ = try await admin.createTopics(topics, partitions: count, settings: InternalTopics.settings)
                for topic in topics {
                    let partitions = Int32(try await admin.partitions(of: topic).count)
                    if partitions != count {
                        logger.error("an internal topic has a different partition count from the input; recreate it",
                                     metadata: ["topic": "\(topic)", "partitions": "\(partitions)",
                                                "input_partitions": "\(count)"])
                    }
                }
                return count
            } catch {
                logger.warning("cannot prepare the internal topics yet, retrying",
                               metadata: ["topics": "\(topics.joined(separator: ", "))", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(2))
            }
        }
        return nil
    }
}
