import ArgumentParser
import Foundation
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime

struct Replay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move a stopped group's committed offsets back (or forward), so that it reads again from there.",
        discussion: "The group must have no running members: stop its workers first, replay, then start them.")

    @OptionGroup var options: ConfigOption

    @Option(help: "The consumer group (relay-realtime, relay-batch, relay-pixel-audit, or your own).")
    var group: String

    @Option(help: "Topic (default: the group's input topic).")
    var topic: String?

    @Option(name: .customLong("to-offset"), help: "PARTITION:OFFSET (repeatable); other partitions keep their offsets.")
    var toOffset: [String] = []

    @Option(name: .customLong("to-timestamp"), help: "Milliseconds since the epoch or ISO-8601 (2026-11-29T14:00:00Z).")
    var toTimestamp: String?

    @Flag(name: .customLong("to-earliest"), help: "Every partition to its earliest offset.")
    var toEarliest = false

    func validate() throws {
        let chosen = (toOffset.isEmpty ? 0 : 1) + (toTimestamp == nil ? 0 : 1) + (toEarliest ? 1 : 0)
        guard chosen == 1 else {
            throw ValidationError("give exactly one of --to-offset P:O, --to-timestamp T or --to-earliest")
        }
        for spec in toOffset where Self.parseOffset(spec) == nil {
            throw ValidationError("--to-offset \(spec): expected PARTITION:OFFSET, e.g. 3:1200")
        }
        if let toTimestamp, Self.parseTimestamp(toTimestamp) == nil {
            throw ValidationError("--to-timestamp \(toTimestamp): expected milliseconds or ISO-8601")
        }
    }

    static func parseOffset(_ spec: String) -> (Int32, Int64)? {
        let parts = spec.split(separator: ":")
        guard parts.count == 2, let p = Int32(parts[0]), let o = Int64(parts[1]), p >= 0, o >= 0 else { return nil }
        return (p, o)
    }

    static func parseTimestamp(_ text: String) -> Int64? {
        Timestamps.parseMilliseconds(text)
    }

    func run() async throws {
        let config = try options.load()
        let topic = self.topic ?? (group.contains("pixel-audit") ? config.kafka.topics.pixelEvents
                                                                 : config.kafka.topics.qualifications)
        let admin = try await CLI.admin(config)
        let partitions = try await CLI.partitions(admin, topic: topic, brokers: config.kafka.bootstrapServers)
        var target: [TopicPartition: Int64] = [:]
        if toEarliest {
            for tp in partitions { target[tp] = try await admin.watermarks(tp).low }
        } else if let toTimestamp, let ms = Self.parseTimestamp(toTimestamp) {
            target = try await admin.firstOffsets(atOrAfter: ms, partitions)
        } else {
            for spec in toOffset {
                let (p, o) = Self.parseOffset(spec)!
                let tp = TopicPartition(topic, p)
                guard partitions.contains(tp) else {
                    throw CLIError("\(topic) has no partition \(p) (it has \(partitions.count))")
                }
                target[tp] = o
            }
        }
        let before = try await admin.committedOffsets(group: group, topic: topic)
        do {
            try await admin.resetOffsets(group: group, to: target)
        } catch {
            throw CLIError("cannot replay group \(group): \(error)")
        }
        print("group \(group) on \(topic):")
        for tp in target.keys.sorted() {
            print("  partition \(tp.partition): \(before[tp].map(String.init) ?? "-") -> \(target[tp]!)")
        }
    }
}
