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

/// The latest report of every (destination, window, source partition) read from `aam.pixel-audit`, merged into one
/// report per destination and window. Later records replace earlier ones (each is a full snapshot), so reading the
/// topic from the beginning in order gives the current reports whatever was re-published.
public final class ReportBook: Sendable {
    private let parts = Mutex<[WindowKey: [Int32: AuditReport]]>([:])
    public let thresholds: LossThresholds

    public init(thresholds: LossThresholds) {
        self.thresholds = thresholds
    }

    /// Takes a published record; returns the destination window's merged report when it changed.
    @discardableResult
    public func apply(_ report: AuditReport) -> AuditReport? {
        let key = WindowKey(destination: report.destinationID, start: report.windowStart)
        let partition = report.partition ?? -1
        let threshold = thresholds.maxLossRate(report.destinationID)
        return parts.withLock { parts -> AuditReport? in
            if parts[key]?[partition] == report { return nil }
            parts[key, default: [:]][partition] = report
            return AuditReport.merged(parts[key]!.keys.sorted().map { parts[key]![$0]! }, maxLossRate: threshold)
        }
    }

    /// Merged reports, by destination then window start; `since` keeps windows that end after it (ms).
    public func reports(destination: Int64? = nil, since: Int64? = nil) -> [AuditReport] {
        let thresholds = self.thresholds
        return parts.withLock { parts in
            parts.keys.sorted().compactMap { key -> AuditReport? in
                if let destination, key.destination != destination { return nil }
                let part = parts[key]!
                guard let merged = AuditReport.merged(part.keys.sorted().map { part[$0]! },
                                                      maxLossRate: thresholds.maxLossRate(key.destination))
                else { return nil }
                if let since, merged.windowEnd <= since { return nil }
                return merged
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
