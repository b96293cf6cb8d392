import Foundation
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime
import Synchronization

/// Which dead letters a command is about: `--destination`, `--class`, `--since`, `--until`.
///
/// Times compare with the record's Kafka timestamp, which the writer sets when it keeps the letter (the moment of
/// `relay.failed_at`); reading that, unlike parsing a header, costs nothing per record on a large topic.
struct DeadLetterFilter: Sendable {
    var destination: Int?
    var classes: Set<DeadLetterClass> = []
    var sinceMs: Int64?
    var untilMs: Int64?

    /// Whether the record is a relay dead letter that the filter admits. Reads headers only: no body work.
    func matches(_ record: KafkaRecord) -> Bool {
        if let sinceMs, record.timestamp < sinceMs { return false }
        if let untilMs, record.timestamp > untilMs { return false }
        let constrained = destination != nil || !classes.isEmpty
        guard let errorClass = record.header(DeadLetter.Header.errorClass).flatMap({
            DeadLetterClass(rawValue: $0.stringValue)
        }) else { return !constrained }
        if !classes.isEmpty, !classes.contains(errorClass) { return false }
        if let destination {
            guard let text = record.header(DeadLetter.Header.destination)?.stringValue, Int(text) == destination
            else { return false }
        }
        return true
    }

    /// Milliseconds since the epoch or ISO-8601, as `replay --to-timestamp` takes them.
    static func parseTime(_ text: String, option: String) throws -> Int64 {
        guard let ms = Replay.parseTimestamp(text) else {
            throw CLIError("\(option) \(text): expected ms since the epoch or ISO-8601 (2026-11-29T14:00:00Z)")
        }
        return ms
    }
}

/// Reads a stretch of the dead-letter topic once, record by record, with memory bounded by the fetch buffer
/// whatever the topic's size. The stretch ends at each partition's end as it was when the scan started, so
/// letters written meanwhile (a redrive's own failures among them) wait for the next scan.
struct DeadLetterScan {
    let topic: String
    /// Where to start per partition; partitions already at their end are left out.
    let starts: [TopicPartition: Int64]
    let ends: [TopicPartition: Int64]

    /// The records in the stretch (an upper bound on what `forEach` will hand over).
    var total: Int64 {
        starts.reduce(Int64(0)) { sum, entry in
            let (total, overflow) = sum.addingReportingOverflow(max(0, ends[entry.key]! - entry.value))
            return overflow ? .max : total
        }
    }

    /// Plans a scan of `topic` from `committed` (a group's offsets, when it has them) or each partition's start,
    /// and not before `sinceMs`.
    static func plan(config: RelayConfig, admin: KafkaAdmin, topic: String, sinceMs: Int64?,
                     committed: [TopicPartition: Int64] = [:]) async throws -> DeadLetterScan
    {
        let partitions = try await CLI.partitions(admin, topic: topic, brokers: config.kafka.bootstrapServers)
        let ends = try await admin.endOffsets(partitions)
        var bySince: [TopicPartition: Int64] = [:]
        if let sinceMs { bySince = try await admin.firstOffsets(atOrAfter: sinceMs, partitions) }
        var starts: [TopicPartition: Int64] = [:]
        for tp in partitions {
            let low = try await admin.watermarks(tp).low
            let start = max(low, committed[tp] ?? low, bySince[tp] ?? low)
            if start < ends[tp]! { starts[tp] = start }
        }
        return DeadLetterScan(topic: topic, starts: starts, ends: ends)
    }

    /// Calls `body` with every record of the stretch, each partition in offset order. With `group`, the consumer
    /// carries that group id so that `body` may commit through it.
    func forEach(config: RelayConfig, group: String? = nil,
                 _ body: (KafkaRecord, KafkaConsumer) async throws -> Void) async throws
    {
        guard !starts.isEmpty else { return }
        var client = try CLI.client(config)
        // Small fetches: a compressed batch can grow tenfold when decoded, and librdkafka keeps whole fetches in
        // memory; an operator's tool should stay light beside the workers (measured: ~150 MB for a million lz4
        // letters instead of ~380 MB with the worker's settings).
        for (key, value) in ["queued.max.messages.kbytes": "4096", "fetch.message.max.bytes": "262144",
                             "fetch.max.bytes": "1048576"] where client.properties[key] == nil {
            client.properties[key] = value
        }
        let consumer = try KafkaConsumer(
            configuration: ConsumerConfiguration(client: client, mode: .assign(starts, group: group),
                                                 maxBufferedRecords: 2_000, batchSize: 500),
            logger: CLI.logger)
        try consumer.start()
        var remaining = Set(starts.keys)
        // A partition whose last offsets hold no record (a compacted or transactional tail) never reaches its end:
        // give up after a quiet spell instead of waiting for ever.
        let watchdog = Watchdog()
        let stopper = Task {
            while !Task.isCancelled, !watchdog.quietFor(.seconds(30)) { try await Task.sleep(for: .seconds(1)) }
            await consumer.stopFetching()
        }
        defer { stopper.cancel() }
        do {
            for await batch in consumer.batches() {
                watchdog.heard()
                for record in batch where remaining.contains(record.topicPartition) {
                    let end = ends[record.topicPartition]!
                    if record.offset < end { try await body(record, consumer) }
                    if record.offset + 1 >= end { remaining.remove(record.topicPartition) }
                }
                if remaining.isEmpty { break }
            }
        } catch {
            await consumer.close()
            throw error
        }
        await consumer.close()
        guard remaining.isEmpty else {
            throw CLIError("stopped reading \(remaining.sorted().map(\.description).joined(separator: ", ")): "
                           + "no records for 30 s before the end of the stretch")
        }
    }
}

/// When the scan last received records.
private final class Watchdog: Sendable {
    private let last = Mutex(ContinuousClock.now)

    func heard() { last.withLock { $0 = .now } }

    func quietFor(_ duration: Duration) -> Bool { last.withLock { ContinuousClock.now - $0 > duration } }
}

/// How a letter's body is shown: gzip bodies decompressed, bytes that are not UTF-8 in hex, newlines escaped.
enum LetterBody {
    static func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b }

    /// The body as an operator reads it, and whether it was gzip-compressed.
    static func decoded(_ bytes: [UInt8]) -> (bytes: [UInt8], gzip: Bool) {
        if isGzip(bytes), let plain = try? Gzip.decompress(bytes) { return (plain, true) }
        return (bytes, false)
    }

    /// At most `limit` characters of text, with `…` when cut.
    static func text(_ bytes: [UInt8], limit: Int? = nil) -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            let shown = limit.map { bytes.prefix(max(1, $0 / 2)) } ?? bytes[...]
            let hex = shown.map { String($0, radix: 16).leftPadded(to: 2) }.joined()
            return "0x" + hex + (shown.count < bytes.count ? "…" : "")
        }
        let escaped = limit == nil ? text : text.replacingOccurrences(of: "\n", with: "\\n")
        guard let limit, escaped.count > limit else { return escaped }
        return String(escaped.prefix(limit)) + "…"
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// Reads the dead-letter topic from its beginning to its current end, all in memory (`relayctl status`).
enum DeadLetterReader {
    static func readAll(config: RelayConfig, topic: String? = nil) async throws -> [KafkaRecord] {
        let topic = topic ?? config.kafka.topics.deadLetter
        let admin = try await CLI.admin(config)
        _ = try await CLI.partitions(admin, topic: topic, brokers: config.kafka.bootstrapServers)
        let records = try await admin.readAll(topic)
        return records.sorted { ($0.timestamp, $0.partition, $0.offset) < ($1.timestamp, $1.partition, $1.offset) }
    }
}
