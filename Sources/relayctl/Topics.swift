import ArgumentParser
import RelayCore
import RelayKafka

struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage the relay's topics.",
                                                    subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the configured topics; existing topics are left alone.")

        @OptionGroup var options: ConfigOption

        @Option(help: "Partitions of each new topic.")
        var partitions: Int32 = 8

        @Option(name: .customLong("replication-factor"), help: "Replicas of each new topic (-1: the broker's default).")
        var replicationFactor: Int32 = -1

        @Option(name: .customLong("pixel-audit-group"),
                help: "The relay-pixel-audit consumer group whose internal topics to create (<group>.state, .shares).")
        var pixelAuditGroup: String = InternalTopics.defaultPixelAuditGroup

        @Option(name: .customLong("batch-group"),
                help: "The relay-batch consumer group whose internal topics to create (<group>.state, .cuts).")
        var batchGroup: String = InternalTopics.defaultBatchGroup

        func validate() throws {
            guard partitions >= 1 else { throw ValidationError("--partitions must be at least 1") }
        }

        func run() async throws {
            let config = try options.load()
            let admin = try await CLI.admin(config)
            let topics = config.kafka.topics
            let names = [topics.qualifications, topics.pixelEvents, topics.pixelAudit, topics.deadLetter]
            let result: [String: KafkaAdmin.TopicCreation]
            do {
                result = try await admin.createTopics(names, partitions: partitions,
                                                      replicationFactor: replicationFactor)
            } catch {
                throw CLIError("cannot create topics at \(config.kafka.bootstrapServers): \(error)")
            }
            for name in names {
                let count = (try? await admin.partitions(of: name).count).map { "\($0) partitions" } ?? "?"
                print("\(name): \(result[name] == .created ? "created" : "exists") (\(count))")
            }
            // The stateful workers' internal topics: compacted, as many partitions as their input has.
            try await createInternal([InternalTopics.pixelAuditState(group: pixelAuditGroup),
                                      InternalTopics.pixelAuditShares(group: pixelAuditGroup)],
                                     input: topics.pixelEvents, admin: admin, config: config)
            try await createInternal([InternalTopics.batchState(group: batchGroup),
                                      InternalTopics.batchCuts(group: batchGroup)],
                                     input: topics.qualifications, admin: admin, config: config)
        }

        private func createInternal(_ internalTopics: [String], input: String, admin: KafkaAdmin,
                                    config: RelayConfig) async throws
        {
            let inputPartitions: Int32
            let created: [String: KafkaAdmin.TopicCreation]
            do {
                inputPartitions = Int32(try await admin.partitions(of: input).count)
                created = try await admin.createTopics(internalTopics, partitions: inputPartitions,
                                                       replicationFactor: replicationFactor,
                                                       settings: InternalTopics.settings)
            } catch {
                throw CLIError("cannot create the internal topics at \(config.kafka.bootstrapServers): \(error)")
            }
            for name in internalTopics {
                let count = (try? await admin.partitions(of: name).count) ?? 0
                let mismatch = count != Int(inputPartitions) ? "; \(input) has \(inputPartitions): recreate it" : ""
                print("\(name): \(created[name] == .created ? "created" : "exists") (\(count) partitions\(mismatch))")
            }
        }
    }
}
