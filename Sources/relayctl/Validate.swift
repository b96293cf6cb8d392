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
        print("\(options.config): OK (\(config.destinations.count) destinations: \(summary))")
    }
}
