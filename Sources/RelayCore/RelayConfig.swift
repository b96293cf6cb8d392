import Foundation

/// `relay.yaml` (SPEC §3): one file for every executable.
///
/// Load it with ``load(path:environment:checkSecrets:)`` or ``parse(yaml:environment:checkSecrets:)``; both report
/// every problem at once as a ``ConfigError``. Relative paths in the file (state directories, `_file` secrets,
/// `output.path`) are relative to the working directory of the process.
public struct RelayConfig: Sendable, Hashable {
    public var kafka: KafkaSettings
    public var edge: EdgeSettings
    public var pixelAudit: PixelAuditSettings
    /// Which event and record times the workers accept.
    public var input: EventTimeWindow
    public var destinations: [Destination]

    public init(
        kafka: KafkaSettings, edge: EdgeSettings = EdgeSettings(), pixelAudit: PixelAuditSettings = PixelAuditSettings(),
        input: EventTimeWindow = EventTimeWindow(), destinations: [Destination] = []
    ) {
        self.input = input
        self.kafka = kafka
        self.edge = edge
        self.pixelAudit = pixelAudit
        self.destinations = destinations
    }

    public func destination(id: Int) -> Destination? {
        destinations.first { $0.id == id }
    }

    public var realtimeDestinations: [(destination: Destination, settings: RealtimeSettings)] {
        destinations.compactMap { destination in destination.realtime.map { (destination, $0) } }
    }

    public var batchDestinations: [(destination: Destination, settings: BatchSettings)] {
        destinations.compactMap { destination in destination.batch.map { (destination, $0) } }
    }

    public var urlDestinations: [(destination: Destination, settings: URLSettings)] {
        destinations.compactMap { destination in destination.url.map { (destination, $0) } }
    }

    public var cookieDestinations: [(destination: Destination, settings: CookieSettings)] {
        destinations.compactMap { destination in destination.cookie.map { (destination, $0) } }
    }
}
