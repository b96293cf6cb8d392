import RelayEncoding

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
public struct AuditReport: Sendable, Hashable {
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

    public init(destinationID: Int64, windowStart: Int64, windowEnd: Int64, fired: Int64, received: Int64,
                lateReceipts: Int64, duplicateReceipts: Int64, unmatchedReceipts: Int64, maxLossRate: Double,
                partition: Int32?)
    {
        self.destinationID = destinationID
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.fired = fired
        self.received = received
        self.lost = max(0, fired.subtractingReportingOverflow(received).overflow ? 0 : fired - received)
        self.lossRate = fired > 0 ? Double(lost) / Double(fired) : 0
        self.lateReceipts = lateReceipts
        self.duplicateReceipts = duplicateReceipts
        self.unmatchedReceipts = unmatchedReceipts
        self.alert = lossRate > maxLossRate
        self.partition = partition
    }

    /// Rounded to 6 decimals on the wire, so that equal counts give byte-equal records.
    public func jsonBytes() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        func field(_ name: StaticString, _ value: Int64) {
            JSONWriter.appendASCII(name, to: &out)
            JSONWriter.appendInt64(value, to: &out)
        }
        field(#"{"destination_id":"#, destinationID)
        field(#","window_start":"#, windowStart)
        field(#","window_end":"#, windowEnd)
        field(#","fired":"#, fired)
        field(#","received":"#, received)
        field(#","lost":"#, lost)
        JSONWriter.appendASCII(#","loss_rate":"#, to: &out)
        out.append(contentsOf: Self.rate(lossRate).utf8)
        field(#","late_receipts":"#, lateReceipts)
        field(#","duplicate_receipts":"#, duplicateReceipts)
        field(#","unmatched_receipts":"#, unmatchedReceipts)
        JSONWriter.appendASCII(alert ? #","alert":true"# : #","alert":false"#, to: &out)
        if let partition { field(#","partition":"#, Int64(partition)) }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// `value` (a rate in 0...1) with at most 6 decimals.
    static func rate(_ value: Double) -> String {
        let bounded = value.isFinite ? min(max(value, 0), 1) : 0
        let scaled = Int64((bounded * 1_000_000).rounded())
        var fraction = String(scaled % 1_000_000)
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.count > 1, fraction.hasSuffix("0") { fraction.removeLast() }
        return "\(scaled / 1_000_000).\(fraction)"
    }

    /// Reads a record of `aam.pixel-audit` as contract, not as trusted: strict JSON, every count present, an integer
    /// and not negative, `received` and `lost` within `fired` as the audit writes them, `loss_rate` within 0...1.
    public static func decode(_ bytes: [UInt8]) throws(MalformedInput) -> AuditReport {
        try decode(bytes[...])
    }

    /// For a record's value, a view into its batch's bytes.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(MalformedInput) -> AuditReport {
        try JSONScanner.scan(bytes) { scanner throws(MalformedInput) in
            var counts: [String: Int64] = [:]
            var partition: Int32?
            var alert: Bool?
            var lossRate: Double?
            scanner.skipWhitespace()
            guard scanner.next == UInt8(ascii: "{") else { throw MalformedInput("audit report: not a JSON object") }
            if try scanner.beginObject() {
                repeat {
                    let name = scanner.string(try scanner.objectKey())
                    if Self.countFields.contains(name) {
                        guard counts[name] == nil else { throw MalformedInput("audit report: \(name): duplicate key") }
                        guard scanner.nextKind == .number, let value = try scanner.scanNumber().integer else {
                            throw MalformedInput("audit report: \(name): expected an integer")
                        }
                        counts[name] = value
                    } else if name == "alert" {
                        guard alert == nil, scanner.nextKind == .boolean else {
                            throw MalformedInput("audit report: alert: expected one boolean")
                        }
                        alert = try scanner.scanBoolean()
                    } else if name == "loss_rate" {
                        let refusal = MalformedInput("audit report: loss_rate: expected one number from 0 to 1")
                        guard lossRate == nil, scanner.nextKind == .number else { throw refusal }
                        let number = try scanner.scanNumber()
                        guard let rate = scanner.double(number), (0...1).contains(rate) else { throw refusal }
                        lossRate = rate
                    } else if name == "partition" {
                        guard scanner.nextKind == .number, let value = try scanner.scanNumber().integer,
                            let narrow = Int32(exactly: value), narrow >= 0
                        else { throw MalformedInput("audit report: partition: expected a partition number") }
                        partition = narrow
                    } else {
                        try scanner.skipValue(depth: 1)
                    }
                } while try scanner.nextMember()
            }
            scanner.skipWhitespace()
            guard scanner.isAtEnd else { throw scanner.syntaxError("trailing characters after the object") }
            for name in Self.countFields {
                guard let value = counts[name] else { throw MalformedInput("audit report: \(name): missing") }
                if name != "window_start" && name != "window_end" && name != "destination_id" && value < 0 {
                    throw MalformedInput("audit report: \(name): negative")
                }
            }
            let fired = counts["fired"]!, received = counts["received"]!
            guard received <= fired, counts["lost"]! == fired - received else {
                throw MalformedInput("audit report: counts do not add up (lost must be fired - received)")
            }
            guard counts["window_end"]! > counts["window_start"]! else {
                throw MalformedInput("audit report: window_end is not after window_start")
            }
            guard let alert, let lossRate else { throw MalformedInput("audit report: alert and loss_rate are required") }
            var report = AuditReport(
                destinationID: counts["destination_id"]!, windowStart: counts["window_start"]!,
                windowEnd: counts["window_end"]!, fired: fired, received: received,
                lateReceipts: counts["late_receipts"]!, duplicateReceipts: counts["duplicate_receipts"]!,
                unmatchedReceipts: counts["unmatched_receipts"]!, maxLossRate: 1, partition: partition)
            // As published; whoever merges recomputes both from the counts and its own threshold.
            report.alert = alert
            report.lossRate = lossRate
            return report
        }
    }

    private static let countFields: Set<String> = [
        "destination_id", "window_start", "window_end", "fired", "received", "lost", "late_receipts",
        "duplicate_receipts", "unmatched_receipts",
    ]

    /// The sum of partial reports of one destination and window, with loss rate and alert recomputed. Sums saturate:
    /// a forged record with a huge count gives a huge report, never a trap.
    public static func merged(_ parts: [AuditReport], maxLossRate: Double) -> AuditReport? {
        guard let first = parts.first else { return nil }
        // Counts are never negative (the decoder refuses them), so saturating at .max is the only case.
        func sum(_ value: (AuditReport) -> Int64) -> Int64 {
            parts.reduce(0) { $0.saturatingAdd(value($1)) }
        }
        return AuditReport(
            destinationID: first.destinationID, windowStart: first.windowStart, windowEnd: first.windowEnd,
            fired: sum(\.fired), received: sum(\.received), lateReceipts: sum(\.lateReceipts),
            duplicateReceipts: sum(\.duplicateReceipts), unmatchedReceipts: sum(\.unmatchedReceipts),
            maxLossRate: maxLossRate, partition: nil)
    }
}
