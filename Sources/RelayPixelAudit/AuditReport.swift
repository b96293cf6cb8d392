import Foundation

/// One destination's pixel audit for one window (SPEC §6), as published to `aam.pixel-audit` (keyed by destination
/// id) and served by `GET /report`.
///
/// `window_start` / `window_end` are milliseconds since the epoch (like the events' `ts`), `window_end` exclusive; a
/// window holds the pixels *fired* in it. `lost` = fired − received (fired and not received by `window_end + grace`,
/// corrected when a late receipt arrives); `loss_rate` = lost / fired (0 when nothing was fired).
///
/// Scope: the join runs per partition of `aam.pixel-events` (a pixel's events meet on one partition), so each record
/// on the topic covers one source partition, named in `partition`. A destination's window report is the sum over
/// partitions of the latest record per (destination, window, partition): `ReportBook` does that merge for
/// `GET /report` and `relayctl pixel report`; the merged reports leave `partition` out. Every record is a complete
/// snapshot of its counts, so re-publishing one (after a restart or a replay) is harmless: the latest wins.
public struct AuditReport: Sendable, Hashable, Codable {
    public var destinationID: Int64
    public var windowStart: Int64
    public var windowEnd: Int64
    public var fired: Int64
    public var received: Int64
    public var lost: Int64
    public var lossRate: Double
    public var lateReceipts: Int64
    public var duplicateReceipts: Int64
    public var unmatchedReceipts: Int64
    public var alert: Bool
    /// The source partition of a published record; nil in merged reports.
    public var partition: Int32?

    enum CodingKeys: String, CodingKey {
        case destinationID = "destination_id"
        case windowStart = "window_start"
        case windowEnd = "window_end"
        case fired, received, lost
        case lossRate = "loss_rate"
        case lateReceipts = "late_receipts"
        case duplicateReceipts = "duplicate_receipts"
        case unmatchedReceipts = "unmatched_receipts"
        case alert, partition
    }

    public init(destinationID: Int64, windowStart: Int64, windowEnd: Int64, fired: Int64, received: Int64,
                lateReceipts: Int64, duplicateReceipts: Int64, unmatchedReceipts: Int64, maxLossRate: Double,
                partition: Int32?)
    {
        self.destinationID = destinationID
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.fired = fired
        self.received = received
        self.lost = max(0, fired - received)
        self.lossRate = fired > 0 ? Double(lost) / Double(fired) : 0
        self.lateReceipts = lateReceipts
        self.duplicateReceipts = duplicateReceipts
        self.unmatchedReceipts = unmatchedReceipts
        self.alert = lossRate > maxLossRate
        self.partition = partition
    }

    /// Rounded to 6 decimals on the wire, so that equal counts give byte-equal records.
    public func jsonBytes() -> [UInt8] {
        var out = "{\"destination_id\":\(destinationID),\"window_start\":\(windowStart),\"window_end\":\(windowEnd)"
        out += ",\"fired\":\(fired),\"received\":\(received),\"lost\":\(lost),\"loss_rate\":"
        out += Self.rate(lossRate)
        out += ",\"late_receipts\":\(lateReceipts),\"duplicate_receipts\":\(duplicateReceipts)"
        out += ",\"unmatched_receipts\":\(unmatchedReceipts),\"alert\":\(alert)"
        if let partition { out += ",\"partition\":\(partition)" }
        out += "}"
        return Array(out.utf8)
    }

    static func rate(_ value: Double) -> String {
        let scaled = (value * 1_000_000).rounded()
        let whole = Int64(scaled) / 1_000_000
        var fraction = String(Int64(scaled) % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.count > 1, fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(whole).\(fraction)"
    }

    public static func decode(_ bytes: [UInt8]) throws -> AuditReport {
        try JSONDecoder().decode(AuditReport.self, from: Data(bytes))
    }

    /// The sum of partial reports of one destination and window, with loss rate and alert recomputed.
    public static func merged(_ parts: [AuditReport], maxLossRate: Double) -> AuditReport? {
        guard let first = parts.first else { return nil }
        return AuditReport(
            destinationID: first.destinationID, windowStart: first.windowStart, windowEnd: first.windowEnd,
            fired: parts.reduce(0) { $0 + $1.fired }, received: parts.reduce(0) { $0 + $1.received },
            lateReceipts: parts.reduce(0) { $0 + $1.lateReceipts },
            duplicateReceipts: parts.reduce(0) { $0 + $1.duplicateReceipts },
            unmatchedReceipts: parts.reduce(0) { $0 + $1.unmatchedReceipts }, maxLossRate: maxLossRate,
            partition: nil)
    }
}
