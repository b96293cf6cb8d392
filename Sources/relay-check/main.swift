import ArgumentParser
import RelayRuntime

/// `relay-check`: the simplest worker on the shared runtime. It validates every qualification event, dead-letters the
/// malformed ones with their reason and commits; with `--output` it also appends each valid event's position and ids
/// to a JSON-lines file (an audit trail of what was read). Operators use it to check a topic's health; the runtime's
/// tests and benchmark use it as the consume → decode → commit loop without any partner I/O.
struct RelayCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-check",
        abstract: "Validate the qualification stream: dead-letter malformed events, commit, optionally log each event.",
        version: BuildInfo.versionLine)

    @OptionGroup var options: WorkerOptions

    @Option(help: "Append `{\"partition\",\"offset\",\"event_id\",\"uuid\"}` per valid event to this file.")
    var output: String?

    func run() async throws {
        let output: EventLog?
        do { output = try self.output.map { try EventLog(path: $0) } } catch { throw ValidationError("\(error)") }
        try await WorkerMain.run(name: "relay-check", options: options, defaultMetricsPort: 9109,
                                 topics: { [$0.kafka.topics.qualifications] }) { context in
            CheckHandler(context: context, log: output)
        }
    }
}

await Bootstrap.main(RelayCheck.self)
