import ArgumentParser
import Foundation
import RelayCore
import RelayEncoding
import RelayRuntime

/// `relayctl batch status`: the last complete cut of each batch destination and what each partition has done.
struct BatchStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Batch destinations: last complete cut, per-partition progress.",
        subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the last cut whose .info was delivered per batch destination, and each partition's last cut.",
            discussion: """
                Reads relay-batch's cuts topic (<group>.cuts: each partition's report of every cut, and the .info \
                files written). Users changed since the last cut are in the workers' state: see the \
                relay_batch_pending_users metric of each relay-batch.
                """)

        @OptionGroup var options: ConfigOption

        @Option(name: .customLong("group"), help: "relay-batch's consumer group.")
        var group: String = InternalTopics.defaultBatchGroup

        func run() async throws {
            let config = try options.load()
            let (book, malformed) = try await CutsTopicReader.book(group: group, client: try CLI.client(config),
                                                                   logger: CLI.logger)
            if malformed > 0 { print("\(malformed) records of \(CutReports.topic(group: group)) do not decode") }
            let statuses = BatchDestinationStatus.collect(config: config, book: book)
            if statuses.isEmpty {
                print("no batch destinations in \(options.config)")
                return
            }
            for status in statuses {
                let last = status.lastCompleteCut.map { "\(Timestamps.iso8601(milliseconds: $0)) (\($0))" } ?? "none yet"
                print("destination \(status.destination) \(status.name) (\(status.mode.rawValue))")
                print("  last complete cut: \(last)")
                if let info = status.lastInfoFile { print("  control file:      \(info)") }
                print("  next cut:          \(Timestamps.iso8601(milliseconds: status.nextCut)) (\(status.nextCut))")
                for p in status.partitions {
                    let cut = p.lastCut.map { Timestamps.iso8601(milliseconds: $0) } ?? "-"
                    print("  partition \(p.partition): last cut \(cut), \(p.users) users in it")
                }
            }
        }
    }
}
