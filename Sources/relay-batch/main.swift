import ArgumentParser
import Foundation
import RelayBatch
import RelayCore
import RelayRuntime

/// `relay-batch`: batch server-to-server files (SPEC §5) for every `kind: batch` destination.
struct RelayBatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-batch",
        abstract: "Accumulate qualifications and deliver batch files to partners at each cut.",
        discussion: """
            The state (users per destination, cuts made) is kept in the Kafka topics <group>.state and \
            <group>.cuts; the local disk holds only parts waiting for upload.
            """,
        version: BuildInfo.versionLine)

    @OptionGroup var options: WorkerOptions

    @Option(name: .customLong("spool-dir"),
            help: "Where parts wait for an S3, HTTP or SFTP upload (local, may be lost; default: a new temporary directory).")
    var spoolDir: String?

    func run() async throws {
        let group = options.group ?? InternalTopics.defaultBatchGroup
        let spool = spoolDir ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("relay-batch-\(UUID().uuidString)").path
        defer { if spoolDir == nil { try? FileManager.default.removeItem(atPath: spool) } }
        try await WorkerMain.run(name: "relay-batch", options: options, defaultMetricsPort: 9102,
                                 topics: { [$0.kafka.topics.qualifications] }) { context in
            try BatchHandler(context: context, group: group, spoolDirectory: spool)
        }
    }
}

await Bootstrap.main(RelayBatchCommand.self)
