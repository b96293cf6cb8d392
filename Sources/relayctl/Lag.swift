import ArgumentParser
import RelayCore
import RelayKafka

struct Lag: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show consumer lag per group and partition: committed offset, end of the partition, difference.")

    @OptionGroup var options: ConfigOption

    @Option(help: "Only this group (default: every group with commits on the relay's topics).")
    var group: String?

    func run() async throws {
        let config = try options.load()
        let admin = try await CLI.admin(config)
        let report = try await LagReport.collect(admin: admin, config: config, group: group)
        if report.isEmpty {
            print(group.map { "group \($0) has no committed offsets on the relay's topics" } ?? "no consumer groups")
            return
        }
        print(LagReport.table(report))
    }
}

/// Lag rows shared by `lag` and `status`.
enum LagReport {
    struct Row {
        let group: String
        let partition: TopicPartition
        let committed: Int64?
        let end: Int64
        var lag: Int64 { max(0, end - (committed ?? 0)) }
    }

    static func collect(admin: KafkaAdmin, config: RelayConfig, group: String?) async throws -> [Row] {
        let groups: [String]
        if let group { groups = [group] } else {
            do { groups = try await admin.groups().map(\.name) } catch {
                throw CLIError("cannot reach the brokers at \(config.kafka.bootstrapServers): \(error)")
            }
        }
        let topics = [config.kafka.topics.qualifications, config.kafka.topics.pixelEvents]
        var rows: [Row] = []
        for topic in topics {
            guard let partitions = try? await admin.topicPartitions(topic) else { continue }
            let ends = try await admin.endOffsets(partitions)
            for g in groups {
                let committed = try await admin.committedOffsets(group: g, topic: topic)
                if committed.isEmpty, group == nil { continue }
                if committed.isEmpty, !Self.reads(g, topic, config) { continue }
                for tp in partitions {
                    rows.append(Row(group: g, partition: tp, committed: committed[tp], end: ends[tp] ?? 0))
                }
            }
        }
        return rows
    }

    private static func reads(_ group: String, _ topic: String, _ config: RelayConfig) -> Bool {
        group.contains("pixel-audit") == (topic == config.kafka.topics.pixelEvents)
    }

    static func table(_ rows: [Row]) -> String {
        var lines = [pad("GROUP", 24) + pad("TOPIC", 24) + pad("PART", 6) + pad("COMMITTED", 12) + pad("END", 12) + "LAG"]
        for row in rows {
            lines.append(pad(row.group, 24) + pad(row.partition.topic, 24) + pad("\(row.partition.partition)", 6)
                         + pad(row.committed.map(String.init) ?? "-", 12) + pad("\(row.end)", 12) + "\(row.lag)")
        }
        let totals = Dictionary(grouping: rows, by: \.group).mapValues { $0.reduce(0) { $0 + $1.lag } }
        for (group, total) in totals.sorted(by: { $0.key < $1.key }) { lines.append("total lag \(group): \(total)") }
        return lines.joined(separator: "\n")
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
