import ArgumentParser
import RelayBatch
import RelayRuntime

/// `relay-batch`: batch server-to-server files (SPEC §5) for every `kind: batch` destination.
@main
struct RelayBatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-batch",
        abstract: "Accumulate qualifications and deliver batch files to partners at each cut.",
        version: BuildInfo.versionLine)

    @OptionGroup var options: WorkerOptions

    @Option(name: .customLong("state-dir"),
            help: "Snapshots and cut reports; every relay-batch process of the group must share it.")
    var stateDir: String = "./state/batch"

    func run() async throws {
        let stateDir = self.stateDir
        try await WorkerMain.run(name: "relay-batch", options: options, defaultMetricsPort: 9102,
                                 topics: { [$0.kafka.topics.qualifications] }) { context in
            try BatchHandler(context: context, stateDirectory: stateDir)
        }
    }
}
