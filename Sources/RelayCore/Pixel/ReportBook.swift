import Synchronization

/// `max_loss_rate` per URL destination (SPEC §3), 0.20 for any other destination id.
public struct LossThresholds: Sendable {
    public static let defaultMaxLossRate = 0.20
    public let byDestination: [Int64: Double]

    public init(_ byDestination: [Int64: Double] = [:]) {
        self.byDestination = byDestination
    }

    public init(config: RelayConfig) {
        var map: [Int64: Double] = [:]
        for (destination, settings) in config.urlDestinations { map[Int64(destination.id)] = settings.maxLossRate }
        self.init(map)
    }

    public func maxLossRate(_ destination: Int64) -> Double { byDestination[destination] ?? Self.defaultMaxLossRate }
}

/// A destination's window: the key of a report.
public struct WindowKey: Hashable, Sendable, Comparable {
    public let destination: Int64
    public let start: Int64

    public init(destination: Int64, start: Int64) {
        self.destination = destination
        self.start = start
    }

    public static func < (a: WindowKey, b: WindowKey) -> Bool { (a.destination, a.start) < (b.destination, b.start) }
}

/// The latest report of every destination and window read from `aam.pixel-audit`. Each record is the whole merged
/// report (a correction replaces it), so reading the topic from the beginning in order gives the current reports.
/// A record that carries a `partition` is a partition's share, not a report (the audit keeps those on its internal
/// topic; an audit older than that published them here): it is skipped, never added up.
public final class ReportBook: Sendable {
    private let latest = Mutex<[WindowKey: AuditReport]>([:])
    public let thresholds: LossThresholds

    public init(thresholds: LossThresholds) {
        self.thresholds = thresholds
    }

    /// Takes a published record; returns the report, with this reader's threshold applied, when it changed.
    @discardableResult
    public func apply(_ report: AuditReport) -> AuditReport? {
        guard report.partition == nil,
              let current = AuditReport.merged([report], maxLossRate: thresholds.maxLossRate(report.destinationID))
        else { return nil }
        let key = WindowKey(destination: report.destinationID, start: report.windowStart)
        return latest.withLock { latest -> AuditReport? in
            if latest[key] == current { return nil }
            latest[key] = current
            return current
        }
    }

    /// Reports by destination then window start; `since` keeps windows that end after it (ms).
    public func reports(destination: Int64? = nil, since: Int64? = nil) -> [AuditReport] {
        latest.withLock { latest in
            latest.keys.sorted().compactMap { key -> AuditReport? in
                if let destination, key.destination != destination { return nil }
                let report = latest[key]!
                if let since, report.windowEnd <= since { return nil }
                return report
            }
        }
    }

    /// The JSON array `GET /report` answers.
    public static func jsonArray(_ reports: [AuditReport]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (i, report) in reports.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out += report.jsonBytes()
        }
        out += Array("]\n".utf8)
        return out
    }
}
