import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime


/// `relayctl status`: one screen with every group's lag, each destination's deliveries and errors, the last batch
/// cut and the pixel loss per partner. Every piece that is missing (no commits yet, no cut yet, a worker's metrics
/// not reachable) is said so, and the rest is still shown.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One screen: every group's lag, deliveries and errors per destination, last batch cut, pixel loss.")

    @OptionGroup var options: ConfigOption

    @Option(name: .customLong("metrics"),
            help: """
                A worker's /metrics URL to read delivery counts from (repeatable; default: relay-realtime and \
                relay-batch on 127.0.0.1 at their default ports).
                """)
    var metrics: [String] = []

    @Option(name: .customLong("batch-group"), help: "relay-batch's consumer group, whose <group>.cuts records the cuts.")
    var batchGroup: String = InternalTopics.defaultBatchGroup

    func run() async throws {
        let config = try options.load()
        let admin = try await CLI.admin(config)
        var out: [String] = []
        out.append("AudienceRelay status  brokers \(config.kafka.bootstrapServers)  at \(Timestamps.iso8601(Date()))")

        // Groups and lag (the only part that needs the brokers: an unreachable cluster is an error).
        let rows = try await LagReport.collect(admin: admin, config: config, group: nil)
        let infos = (try? await admin.groups()) ?? []
        out.append("")
        out += StatusScreen.groups(rows: rows, infos: infos, config: config)

        // Dead letters, pixel audit reports, metrics: each may be missing.
        var deadLetters: [DeadLetter] = []
        var deadLetterNote: String?
        do {
            deadLetters = try await DeadLetterReader.readAll(config: config).compactMap { DeadLetter(record: $0) }
        } catch {
            deadLetterNote = "dead letters: \(error)"
        }
        // The latest window of each URL destination, merged over the audit's partitions.
        var audits: [Int: AuditReport] = [:]
        var auditNote: String?
        if !config.urlDestinations.isEmpty {
            let book = ReportBook(thresholds: LossThresholds(config: config))
            do {
                _ = try await AuditTopicReader.read(
                    topic: config.kafka.topics.pixelAudit, client: try CLI.client(config), book: book,
                    logger: CLI.logger, timeout: .seconds(15))
                for report in book.reports() { audits[Int(report.destinationID)] = report }
            } catch {
                auditNote = "pixel audit: cannot read \(config.kafka.topics.pixelAudit): \(error)"
            }
        }
        var cutBook = CutBook()
        var cutsNote: String?
        if !config.batchDestinations.isEmpty {
            do {
                cutBook = try await CutsTopicReader.book(group: batchGroup, client: try CLI.client(config),
                                                         logger: CLI.logger, timeout: .seconds(15)).book
            } catch {
                cutsNote = "batch cuts: cannot read \(CutReports.topic(group: batchGroup)): \(error)"
            }
        }
        let cuts = Dictionary(
            BatchDestinationStatus.collect(config: config, book: cutBook).map { ($0.destination, $0) },
            uniquingKeysWith: { first, _ in first })
        let urls = metrics.isEmpty ? StatusScreen.defaultMetricsURLs(config) : metrics
        let samples = await MetricsScrape.fetch(urls)

        out.append("")
        out += StatusScreen.destinations(config: config, deadLetters: deadLetters, audits: audits,
                                         deadLettersRead: deadLetterNote == nil, samples: samples.samples, cuts: cuts,
                                         cutsTopic: CutReports.topic(group: batchGroup))
        let malformed = deadLetters.filter { $0.errorClass == .malformed }.count
        out.append("")
        if deadLetterNote == nil {
            out.append("dead letters: \(deadLetters.count) in total, \(malformed) malformed events"
                       + (deadLetters.isEmpty ? "" : "  (relayctl dead-letter list)"))
        }
        for note in [deadLetterNote, auditNote, cutsNote].compactMap({ $0 }) { out.append(note) }
        if !samples.unreachable.isEmpty {
            out.append("metrics not reachable (deliveries not shown for those workers): "
                       + samples.unreachable.joined(separator: ", "))
        }
        print(out.joined(separator: "\n"))
    }
}

/// The text of the screen, one section at a time.
enum StatusScreen {
    /// The consumer groups of the configured integrations, and any other group with commits on the relay's topics.
    static func groups(rows: [LagReport.Row], infos: [KafkaAdmin.GroupInfo], config: RelayConfig) -> [String] {
        var expected: [(String, String)] = []
        if !config.realtimeDestinations.isEmpty {
            expected.append(("relay-realtime", config.kafka.topics.qualifications))
        }
        if !config.batchDestinations.isEmpty { expected.append(("relay-batch", config.kafka.topics.qualifications)) }
        if !config.urlDestinations.isEmpty { expected.append(("relay-pixel-audit", config.kafka.topics.pixelEvents)) }

        struct Total { var partitions = 0; var committed = 0; var lag: Int64 = 0; var end: Int64 = 0 }
        var totals: [String: Total] = [:]
        var order: [String] = []
        for row in rows {
            let key = "\(row.group)\t\(row.partition.topic)"
            if totals[key] == nil { order.append(key) }
            totals[key, default: Total()].partitions += 1
            if row.committed != nil { totals[key, default: Total()].committed += 1 }
            totals[key, default: Total()].lag += row.lag
            totals[key, default: Total()].end += row.end
        }
        let members = Dictionary(infos.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let groupWidth = 2 + ((rows.map(\.group.count) + expected.map(\.0.count)).max() ?? 0)
        let topicWidth = 2 + ((rows.map(\.partition.topic.count) + expected.map(\.1.count)).max() ?? 0)
        func row(_ group: String, _ topic: String, _ rest: String) -> String {
            "  " + pad(group, max(22, groupWidth)) + pad(topic, max(22, topicWidth)) + rest
        }
        var lines = ["CONSUMER GROUPS"]
        // COMMITTED: partitions with a committed offset / all partitions.
        lines.append(row("GROUP", "TOPIC", pad("MEMBERS", 9) + pad("STATE", 14) + pad("COMMITTED", 11) + pad("END", 12)
                         + "LAG"))
        for (group, topic) in expected where totals["\(group)\t\(topic)"] == nil {
            let info = members[group]
            lines.append(row(group, topic, pad(info.map { "\($0.memberCount)" } ?? "0", 9) + pad(info?.state ?? "-", 14)
                             + "no commits yet"))
        }
        for key in order.sorted() {
            let parts = key.split(separator: "\t").map(String.init)
            let total = totals[key]!
            let info = members[parts[0]]
            lines.append(row(parts[0], parts[1], pad(info.map { "\($0.memberCount)" } ?? "0", 9)
                             + pad(info?.state ?? "-", 14) + pad("\(total.committed)/\(total.partitions)", 11)
                             + pad("\(total.end)", 12) + "\(total.lag)"))
        }
        lines.append("  relay-edge reads every partition and commits nothing (no group).")
        return lines
    }

    static func destinations(config: RelayConfig, deadLetters: [DeadLetter], audits: [Int: AuditReport],
                             deadLettersRead: Bool, samples: [MetricsScrape.Sample],
                             cuts: [Int: BatchDestinationStatus],
                             cutsTopic: String) -> [String] {
        var lines = ["DESTINATIONS"]
        let byDestination = Dictionary(grouping: deadLetters.filter { $0.destination != nil }, by: { $0.destination! })
        for destination in config.destinations {
            let id = destination.id
            lines.append("  \(id)  \(destination.name)  (\(destination.kind.name))")
            switch destination.kind {
            case .realtime:
                lines.append("      " + deliveries(samples, destination: id, worker: "relay-realtime"))
            case .batch(let settings):
                lines.append("      " + BatchCutInfo.describe(cuts[id], settings: settings, cutsTopic: cutsTopic))
                lines.append("      " + deliveries(samples, destination: id, worker: "relay-batch"))
            case .url(let settings):
                if let audit = audits[id] {
                    lines.append("      " + describe(audit, maxLossRate: settings.maxLossRate))
                } else {
                    lines.append("      pixel loss: no audit report yet"
                                 + (settings.audit == .none ? " (audit: none: only partner receipts count)" : ""))
                }
            case .cookie:
                lines.append("      served by relay-edge on each /event call")
            }
            let letters = byDestination[id] ?? []
            if !deadLettersRead {
                lines.append("      errors: dead letters not readable (below)")
            } else if letters.isEmpty {
                lines.append("      errors: no dead letters")
            } else {
                let classes = Dictionary(grouping: letters, by: \.errorClass)
                    .map { "\($0.value.count) \($0.key.rawValue)" }.sorted().joined(separator: ", ")
                let newest = letters.max { $0.failedAt < $1.failedAt }!
                lines.append("      errors: \(letters.count) dead letters (\(classes)), "
                             + "last \(Timestamps.iso8601(newest.failedAt)): \(newest.error)")
            }
        }
        return lines
    }

    static func describe(_ report: AuditReport, maxLossRate: Double) -> String {
        let percent = String(format: "%.1f%%", report.lossRate * 100)
        let limit = String(format: "%.0f%%", maxLossRate * 100)
        return "pixel loss \(percent) (fired \(report.fired), received \(report.received), lost \(report.lost)) in the "
            + "window ending \(Timestamps.iso8601(milliseconds: report.windowEnd))"
            + (report.alert ? "  ALERT: above \(limit)" : "  (limit \(limit))")
    }

    /// `deliveries: messages 118, retries 2, users_sent 480`: the destination's counters, summed over the scraped
    /// processes.
    static func deliveries(_ samples: [MetricsScrape.Sample], destination id: Int, worker: String) -> String {
        let counters = samples.filter { $0.labels["destination"] == "\(id)" && $0.name.hasSuffix("_total") }
        return counters.isEmpty ? "deliveries: no metrics from \(worker)" : "deliveries: " + summarize(counters)
    }

    /// `messages 118, retries 2, users_sent 480`: counters of one destination, summed over instances.
    static func summarize(_ samples: [MetricsScrape.Sample]) -> String {
        var sums: [String: Double] = [:]
        for sample in samples {
            var name = sample.name
            for prefix in ["relay_realtime_", "relay_batch_", "relay_"] where name.hasPrefix(prefix) {
                name.removeFirst(prefix.count)
                break
            }
            if name.hasSuffix("_total") { name.removeLast(6) }
            // `worker` and `group` are on every metric: not a breakdown worth showing.
            let extra = sample.labels.filter { !["destination", "worker", "group"].contains($0.key) }
                .sorted { $0.key < $1.key }
                .map { "\($0.key)=\($0.value)" }
            let key = extra.isEmpty ? name : "\(name)[\(extra.joined(separator: ","))]"
            sums[key, default: 0] += sample.value
        }
        return sums.sorted { $0.key < $1.key }.prefix(10).map { "\($0.key) \(format($0.value))" }
            .joined(separator: ", ")
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.3f", value)
    }

    static func defaultMetricsURLs(_ config: RelayConfig) -> [String] {
        var urls: [String] = []
        if !config.realtimeDestinations.isEmpty { urls.append("http://127.0.0.1:9101/metrics") }
        if !config.batchDestinations.isEmpty { urls.append("http://127.0.0.1:9102/metrics") }
        return urls
    }

    static func pad(_ text: String, _ width: Int) -> String { LagReport.pad(text, width) }
}

/// The last complete cut of a batch destination (from relay-batch's cuts topic, as `relayctl batch status` reads it) and, for a `dir` output, the totals of its `.info`.
enum BatchCutInfo {
    static func describe(_ status: BatchDestinationStatus?, settings: BatchSettings, cutsTopic: String) -> String {
        guard let status, let cut = status.lastCompleteCut else {
            let next = status.map { ", next cut \(Timestamps.iso8601(milliseconds: $0.nextCut))" } ?? ""
            return "last cut: no batch cut yet (no completed cut in \(cutsTopic)\(next))"
        }
        var text = "last cut: \(Timestamps.iso8601(milliseconds: cut)) (\(settings.output.syncType) output)"
        if case .dir(let path) = settings.output, let name = status.lastInfoFile,
            let data = FileManager.default.contents(atPath: (path as NSString).appendingPathComponent(name)),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let totals = json["Totals"] as? [String: Any]
        {
            let files = (totals["TotalNumberFiles"] as? NSNumber)?.intValue ?? 0
            let lines = (totals["TotalNumberLines"] as? NSNumber)?.intValue ?? 0
            let bytes = (totals["TotalByteSize"] as? NSNumber)?.intValue ?? 0
            text += ": \(files) files, \(lines) lines, \(bytes) bytes in \(path)"
        }
        return text + ", next cut \(Timestamps.iso8601(milliseconds: status.nextCut))"
    }
}

/// Reads Prometheus text from the workers' /metrics, keeping the samples that carry a `destination` label.
enum MetricsScrape {
    struct Sample {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    static func fetch(_ urls: [String]) async -> (samples: [Sample], unreachable: [String]) {
        var samples: [Sample] = []
        var unreachable: [String] = []
        for text in urls {
            guard let body = await get(text) else {
                unreachable.append(text)
                continue
            }
            samples += parse(body)
        }
        return (samples, unreachable)
    }

    /// The page's text, or nil when it cannot be had in 2 s with a 200 (a worker not running says so, not an error).
    private static func get(_ url: String) async -> String? {
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2))
            guard response.status == .ok else { return nil }
            return String(buffer: try await response.body.collect(upTo: 16 << 20))
        } catch {
            return nil
        }
    }

    /// `name{a="x",b="y"} value`; comments, samples without a destination, and NaN are skipped.
    static func parse(_ text: String) -> [Sample] {
        var samples: [Sample] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}"), open < close else {
                continue
            }
            let name = String(line[..<open])
            var labels: [String: String] = [:]
            for pair in line[line.index(after: open)..<close].split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                labels[String(parts[0]).trimmingCharacters(in: .whitespaces)] =
                    String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
            }
            guard labels["destination"].map({ !$0.isEmpty }) == true,
                let value = Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)
                    .split(separator: " ").first ?? ""),
                !value.isNaN
            else { continue }
            samples.append(Sample(name: name, labels: labels, value: value))
        }
        return samples
    }
}
