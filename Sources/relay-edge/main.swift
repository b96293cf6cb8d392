import ArgumentParser
import Hummingbird
import Logging
import RelayCore
import RelayEdge
import RelayRuntime

/// `relay-edge`: answers real-time calls (`/event`) from every user's current segments and records pixels (SPEC §6).
/// API, `/metrics` and `/health/*` share one port (`edge.listen`, or `--port`) unless `--metrics-port` moves the last
/// two to a port of their own.
struct RelayEdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-edge", abstract: "Real-time calls and pixel syncs from every user's current segments.",
        version: BuildInfo.versionLine)

    @Option(help: "The configuration file.")
    var config: String = "relay.yaml"

    @Option(help: "Port to listen on (replaces the port of edge.listen).")
    var port: Int?

    @Option(name: .customLong("metrics-port"),
            help: "Serve /metrics and /health/* on this port only, not beside the API (keeps them off a public port).")
    var metricsPort: Int?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .customLong("snapshot-interval"), help: "How often the store is snapshotted (also on SIGTERM).")
    var snapshotInterval: String = "60s"

    @Option(name: .customLong("measure-store"), help: ArgumentHelp(
        "Fill a store with N sample users, print its memory use and exit (sizing, bench/edge.sh).",
        valueName: "users"))
    var measureStore: Int?

    func run() async throws {
        if let users = measureStore {
            print(StoreMeasurement.run(users: users))
            return
        }
        let interval: RelayDuration
        do {
            interval = try RelayDuration(parsing: snapshotInterval)
        } catch {
            throw ValidationError("--snapshot-interval: \(error.message)")
        }
        let config = Bootstrap.loadConfig(path: self.config, executable: "relay-edge")
        let registry = Bootstrap.observability(logLevel: logLevel, worker: "relay-edge", group: "")
        let logger = Logger(label: "relay-edge")
        var listen = config.edge.listen
        if let port { listen.port = port }
        let server = try EdgeServer(config: config, listen: listen, registry: registry, logger: logger,
                                    snapshotInterval: max(interval.duration, .milliseconds(100)))
        let app = server.buildApplication(host: listen.host, port: listen.port, registry: registry,
                                          metricsPort: metricsPort)
        logger.info("relay-edge listening",
                    metadata: ["listen": "\(listen)", "metrics_port": "\(metricsPort.map(String.init) ?? "same")"])
        try await app.runService()
    }
}

await Bootstrap.main(RelayEdgeCommand.self, tasks: .eventLoops)
