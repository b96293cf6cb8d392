import RelayCore
import RelayEncoding
import RelayKafka

/// The internal topic `<group>.shares` (SPEC §1: a stateful worker's internal topics begin with its group's name),
/// between the partition owners and the one member that publishes merged reports (see ``ReportMerger``).
///
/// The owner of input partition `p` writes to partition `p` of it, in this order: the share of every window whose
/// report changed (the partition's ``AuditReport``, `partition` set), then, once the broker has acknowledged those,
/// a ``ShareProgress`` saying which windows the partition has closed. So a reader that has seen a progress record
/// has seen every share it covers. Keys make the topic compactable: the latest share per destination, window and
/// partition, and the latest progress per partition, are all a reader needs.
public enum AuditShares {
    public static func topic(group: String) -> String { InternalTopics.pixelAuditShares(group: group) }

    static let sharePrefix = "share/"
    static let progressPrefix = "closed/"

    static func shareKey(_ report: AuditReport, partition: Int32) -> [UInt8] {
        Array("\(sharePrefix)\(report.destinationID)/\(report.windowStart)/\(partition)".utf8)
    }

    static func progressKey(partition: Int32) -> [UInt8] { Array("\(progressPrefix)\(partition)".utf8) }

    /// One record of the topic, strictly: a record that is neither is dead-lettered by whoever reads it.
    enum Record: Equatable {
        case share(AuditReport)
        case progress(ShareProgress)
    }

    static func decode(_ record: KafkaRecord) throws(MalformedInput) -> Record {
        let key = String(decoding: record.key ?? [], as: UTF8.self)
        if key.hasPrefix(sharePrefix) {
            let report = try AuditReport.decode(record.value)
            guard let partition = report.partition, key == String(decoding: shareKey(report, partition: partition),
                                                                    as: UTF8.self)
            else { throw MalformedInput("audit share: key \(key) does not match its report") }
            return .share(report)
        }
        if key.hasPrefix(progressPrefix) {
            let progress = try ShareProgress.decode(Array(record.value))
            guard key == String(decoding: progressKey(partition: progress.partition), as: UTF8.self) else {
                throw MalformedInput("audit progress: key \(key) does not match its partition")
            }
            return .progress(progress)
        }
        throw MalformedInput("audit shares: unknown key \(key.prefix(64))")
    }
}

/// How far one input partition has closed its windows: every window whose `end + grace` is at or before
/// `closedThrough` (ms) is closed there, and its share (if the partition saw any of its pixels) is published.
public struct ShareProgress: Sendable, Equatable {
    public var partition: Int32
    public var closedThrough: Int64

    public init(partition: Int32, closedThrough: Int64) {
        self.partition = partition
        self.closedThrough = closedThrough
    }

    /// `{"partition":3,"closed_through":1795982000000}`
    public func jsonBytes() -> [UInt8] {
        var out: [UInt8] = []
        JSONWriter.appendASCII(#"{"partition":"#, to: &out)
        JSONWriter.appendInt64(Int64(partition), to: &out)
        JSONWriter.appendASCII(#","closed_through":"#, to: &out)
        JSONWriter.appendInt64(closedThrough, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws(MalformedInput) -> ShareProgress {
        try JSONScanner.scan(bytes) { scanner throws(MalformedInput) in
            var partition: Int32?
            var closedThrough: Int64?
            scanner.skipWhitespace()
            guard scanner.next == UInt8(ascii: "{") else { throw MalformedInput("audit progress: not a JSON object") }
            if try scanner.beginObject() {
                repeat {
                    let name = scanner.string(try scanner.objectKey())
                    switch name {
                    case "partition":
                        guard partition == nil, scanner.nextKind == .number, let value = try scanner.scanNumber().integer,
                              let narrow = Int32(exactly: value), narrow >= 0
                        else { throw MalformedInput("audit progress: partition: expected one partition number") }
                        partition = narrow
                    case "closed_through":
                        guard closedThrough == nil, scanner.nextKind == .number,
                              let value = try scanner.scanNumber().integer
                        else { throw MalformedInput("audit progress: closed_through: expected one integer") }
                        closedThrough = value
                    default:
                        try scanner.skipValue(depth: 1)
                    }
                } while try scanner.nextMember()
            }
            scanner.skipWhitespace()
            guard scanner.isAtEnd else { throw scanner.syntaxError("trailing characters after the object") }
            guard let partition, let closedThrough else {
                throw MalformedInput("audit progress: partition and closed_through are required")
            }
            return ShareProgress(partition: partition, closedThrough: closedThrough)
        }
    }
}

/// What the merger knows, pure: the latest share of every destination, window and partition, how far each input
/// partition has closed, and the merged report last published for each destination and window.
///
/// A window's merged report is due when every input partition has closed it (a partition with no pixels in it
/// contributes nothing) and it differs from the one last published: so each destination and window is published
/// once, and again only when a late receipt corrects a share.
public struct MergeBook: Sendable {
    public let windowMs: Int64
    public let graceMs: Int64
    public let thresholds: LossThresholds
    private var shares: [WindowKey: [Int32: AuditReport]] = [:]
    private var closedThrough: [Int32: Int64] = [:]
    /// The bytes last published per destination and window (bytes, not values: the loss rate is rounded on the wire).
    private var published: [WindowKey: [UInt8]] = [:]

    public init(windowMs: Int64, graceMs: Int64, thresholds: LossThresholds) {
        self.windowMs = windowMs
        self.graceMs = graceMs
        self.thresholds = thresholds
    }

    public var partitionsReporting: Int { closedThrough.count }

    mutating func take(_ record: AuditShares.Record) {
        switch record {
        case .share(let report):
            shares[WindowKey(destination: report.destinationID, start: report.windowStart), default: [:]][
                report.partition ?? -1] = report
        case .progress(let progress):
            closedThrough[progress.partition] = max(closedThrough[progress.partition] ?? .min, progress.closedThrough)
        }
    }

    /// A merged report read back from the output topic (at start, or on taking over the publishing).
    public mutating func notePublished(_ report: AuditReport) {
        published[WindowKey(destination: report.destinationID, start: report.windowStart)] = report.jsonBytes()
    }

    /// The merged reports due now, given that the input topic has `partitions` partitions.
    public func due(partitions: Int32) -> [AuditReport] {
        guard partitions > 0 else { return [] }
        var closedEverywhere = Int64.max
        for p in 0..<partitions { closedEverywhere = min(closedEverywhere, closedThrough[p] ?? .min) }
        guard closedEverywhere != .min else { return [] }
        return shares.keys.sorted().compactMap { key -> AuditReport? in
            guard key.start.saturatingAdd(windowMs).saturatingAdd(graceMs) <= closedEverywhere,
                  let parts = shares[key],
                  let merged = AuditReport.merged(parts.keys.sorted().map { parts[$0]! },
                                                  maxLossRate: thresholds.maxLossRate(key.destination)),
                  merged.jsonBytes() != published[key]
            else { return nil }
            return merged
        }
    }
}
