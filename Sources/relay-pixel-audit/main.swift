import ArgumentParser
import RelayCore
import RelayPixelAudit
import RelayRuntime

/// `relay-pixel-audit`: joins fired and received pixels per destination and window, publishes the loss reports to
/// `aam.pixel-audit`, and serves them at `/report` beside `/metrics` and the health endpoints (SPEC §6).
struct RelayPixelAuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-pixel-audit",
        abstract: "Audit pixel-sync loss: join fired and received pixel events, report per destination and window.",
        version: BuildInfo.versionLine)

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        let name = "relay-pixel-audit"
        let group = options.group ?? InternalTopics.defaultPixelAuditGroup
        let config = Bootstrap.loadConfig(path: options.config, executable: name)
        let book = ReportBook(thresholds: LossThresholds(config: config))
        try await WorkerMain.run(
            name: name, options: options, defaultMetricsPort: 9103,
            topics: { [$0.kafka.topics.pixelEvents] },
            extraRoutes: { router in ReportRoutes.add(to: router, book: book) }
        ) { context in
            PixelAuditHandler(context: context, group: group, book: book)
        }
    }
}

await Bootstrap.main(RelayPixelAuditCommand.self)
