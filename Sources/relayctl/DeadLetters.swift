import ArgumentParser
import Foundation
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime

struct DeadLetters: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dead-letter", abstract: "Inspect and redrive dead letters.", subcommands: [List.self, Redrive.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print dead letters, newest last: headers decoded and a preview of the body.")

        @OptionGroup var options: ConfigOption

        @Option(help: "At most this many (the newest).")
        var limit: Int = 20

        func run() async throws {
            let config = try options.load()
            let records = try await DeadLetterReader.readAll(config: config)
            let letters = records.suffix(limit)
            if letters.isEmpty { print("no dead letters on \(config.kafka.topics.deadLetter)") }
            for record in letters {
                guard let letter = DeadLetter(record: record) else {
                    print("\(record.source): (not a relay dead letter)")
                    continue
                }
                print("\(record.source)  \(letter.errorClass.rawValue)  \(letter.error)")
                print("  source \(letter.source)  worker \(letter.worker)"
                      + (letter.destination.map { "  destination \($0)" } ?? "")
                      + "  attempts \(letter.attempts)  failed \(Timestamps.iso8601(letter.failedAt))")
                print("  key \(letter.key.map { String(decoding: $0, as: UTF8.self) } ?? "-")  body \(preview(letter.value))")
            }
            print("\(records.count) dead letters in total")
        }

        private func preview(_ bytes: [UInt8]) -> String {
            let text = String(decoding: bytes.prefix(160), as: UTF8.self)
                .replacingOccurrences(of: "\n", with: "\\n")
            return bytes.count > 160 ? "\(text)… (\(bytes.count) bytes)" : text
        }
    }
}

/// Reads the dead-letter topic from its beginning to its current end.
enum DeadLetterReader {
    static func readAll(config: RelayConfig, topic: String? = nil) async throws -> [KafkaRecord] {
        let topic = topic ?? config.kafka.topics.deadLetter
        let admin = try await CLI.admin(config)
        _ = try await CLI.partitions(admin, topic: topic, brokers: config.kafka.bootstrapServers)
        let records = try await admin.readAll(topic)
        return records.sorted { ($0.timestamp, $0.partition, $0.offset) < ($1.timestamp, $1.partition, $1.offset) }
    }
}
