import ArgumentParser
import RelayCore

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check relay.yaml: every problem is reported with its path; exits non-zero if there is any.")

    @OptionGroup var options: ConfigOption

    @Flag(name: .customLong("skip-secrets"), help: "Do not check that the secrets' variables and files exist.")
    var skipSecrets = false

    func run() async throws {
        let config = try options.load(checkSecrets: !skipSecrets)
        let kinds = Dictionary(grouping: config.destinations, by: { $0.kind.name }).mapValues(\.count)
        let summary = kinds.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        // The stateful workers' internal topics (default groups) must not be one of the configured topics.
        var internalTopics: [String] = []
        if !config.batchDestinations.isEmpty {
            internalTopics += [InternalTopics.batchState(group: InternalTopics.defaultBatchGroup),
                               InternalTopics.batchCuts(group: InternalTopics.defaultBatchGroup)]
        }
        if !config.urlDestinations.isEmpty {
            internalTopics += [InternalTopics.pixelAuditState(group: InternalTopics.defaultPixelAuditGroup),
                               InternalTopics.pixelAuditShares(group: InternalTopics.defaultPixelAuditGroup)]
        }
        let t = config.kafka.topics
        let clashes = Set([t.qualifications, t.pixelEvents, t.pixelAudit, t.deadLetter]).intersection(internalTopics)
        guard clashes.isEmpty else {
            throw CLIError("\(options.config): kafka.topics: \(clashes.sorted().joined(separator: ", ")) is an internal "
                           + "topic of a stateful worker's default group; name the topic otherwise")
        }
        print("\(options.config): OK (\(config.destinations.count) destinations: \(summary))")
        if !internalTopics.isEmpty {
            print("internal topics (default groups; relayctl topics create makes them): "
                  + internalTopics.joined(separator: ", "))
        }
    }
}
