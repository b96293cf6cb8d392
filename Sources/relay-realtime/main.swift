// relay-realtime: pushes each user's mapped segments to the realtime partners (SPEC §4).
// Consumes kafka.topics.qualifications as a member of the consumer group `relay-realtime` (or --group);
// SIGTERM flushes partial messages, waits for deliveries in flight, commits what is final and exits 0.
import ArgumentParser
import RelayRealtime
import RelayRuntime

struct RelayRealtimeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-realtime",
        abstract: "Push qualified users' mapped segments to real-time server-to-server partners.",
        version: BuildInfo.versionLine)

    @OptionGroup var options: WorkerOptions

    func run() async throws {
        try await WorkerMain.run(name: "relay-realtime", options: options, defaultMetricsPort: 9101,
                                 topics: { [$0.kafka.topics.qualifications] }) { context in
            // The handler owns the client: its `resources` shut it down after the consumer has stopped.
            let client = RealtimeHTTP.makeClient()
            do { return try RealtimeHandler(context: context, client: client) } catch {
                try? client.syncShutdown()  // never used: nothing in flight
                throw error
            }
        }
    }
}

await Bootstrap.main(RelayRealtimeCommand.self)
