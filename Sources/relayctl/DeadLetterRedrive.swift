import ArgumentParser
import Foundation
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRealtime
import RelayRuntime

extension DeadLetters {
    /// `relayctl dead-letter redrive --destination ID`: sends a realtime destination's undelivered messages again,
    /// once: what it has dealt with is committed in a consumer group of its own on the dead-letter topic.
    struct Redrive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a realtime destination's dead-lettered messages again, with their original message ids.",
            discussion: """
                Every rejected or exhausted message of the destination on the dead-letter topic is POSTed again, \
                body unchanged, signed per the current configuration and carrying its original X-Relay-Message-Id \
                (partners drop duplicates by it). A message that fails again is kept as a new dead letter with the \
                new reason. Progress is committed after each message in the group relayctl-redrive.<id> \
                (relayctl-redrive.<id>.<class> with --class), so a second run sends only letters written since; \
                `relayctl replay --group relayctl-redrive.<id> --topic <dead-letter topic> --to-earliest` starts \
                over. Run one redrive per destination at a time. Exits non-zero if any message failed again.
                """)

        @OptionGroup var options: ConfigOption

        @Option(help: "The realtime destination's id.")
        var destination: Int

        @Option(name: .customLong("class"), help: "Only rejected or only exhausted letters (repeatable).")
        var classes: [String] = []

        @Option(help: "Only letters written at or after this time (ms since the epoch or ISO-8601).")
        var since: String?

        @Flag(name: .customLong("dry-run"), help: "Print what would be sent; send and remember nothing.")
        var dryRun = false

        func validate() throws {
            for name in classes {
                guard let errorClass = DeadLetterClass(rawValue: name) else {
                    throw ValidationError("--class \(name): expected rejected or exhausted")
                }
                if errorClass == .malformed {
                    throw ValidationError("--class malformed: malformed input cannot be sent again; fix it upstream")
                }
            }
        }

        /// The group that remembers what this selection already dealt with.
        static func group(destination: Int, classes: Set<DeadLetterClass>) -> String {
            (["relayctl-redrive", String(destination)] + classes.map(\.rawValue).sorted()).joined(separator: ".")
        }

        func run() async throws {
            let config = try options.load()
            guard let target = config.destination(id: destination) else {
                throw CLIError("destination \(destination) is not in \(options.config)")
            }
            guard let settings = target.realtime else {
                throw CLIError("destination \(destination) is kind \(target.kind.name): only realtime messages can be redriven")
            }
            let filter = DeadLetterFilter(
                destination: destination, classes: Set(classes.compactMap(DeadLetterClass.init)),
                sinceMs: try since.map { try DeadLetterFilter.parseTime($0, option: "--since") })
            let topic = config.kafka.topics.deadLetter
            let group = Self.group(destination: destination, classes: filter.classes)
            let admin = try await CLI.admin(config)
            let committed: [TopicPartition: Int64]
            do {
                committed = try await admin.committedOffsets(group: group, topic: topic)
            } catch {
                throw CLIError("cannot read the offsets of group \(group): \(error)")
            }
            let scan = try await DeadLetterScan.plan(config: config, admin: admin, topic: topic,
                                                     sinceMs: filter.sinceMs, committed: committed)
            if dryRun {
                try await preview(scan, filter: filter, config: config, group: group)
            } else {
                try await redrive(scan, filter: filter, target: target, settings: settings, config: config,
                                  group: group)
            }
        }

        private func redrivable(_ record: KafkaRecord, filter: DeadLetterFilter) -> DeadLetter? {
            guard filter.matches(record), let letter = DeadLetter(record: record),
                  RealtimeRedrive.isRedrivable(letter, destination: destination)
            else { return nil }
            return letter
        }

        private func preview(_ scan: DeadLetterScan, filter: DeadLetterFilter, config: RelayConfig,
                             group: String) async throws
        {
            var count = 0
            try await scan.forEach(config: config) { record, _ in
                guard let letter = redrivable(record, filter: filter) else { return }
                count += 1
                let id = letter.extraHeaders.last { $0.key == RealtimeDeadLetter.messageIDHeader }?.stringValue ?? "-"
                print("would send \(record.source) message \(id) (\(letter.errorClass.rawValue): \(letter.error))")
            }
            print("dry run: \(count) dead letters of destination \(destination) would be sent "
                  + "(not yet sent by group \(group)); nothing sent, nothing committed")
        }

        private func redrive(_ scan: DeadLetterScan, filter: DeadLetterFilter, target: Destination,
                             settings: RealtimeSettings, config: RelayConfig, group: String) async throws
        {
            let sender: RealtimeRedrive
            do {
                sender = try RealtimeRedrive(destination: target, settings: settings)
            } catch let error as SecretError {
                throw CLIError("destination \(destination): \(error)")
            }
            let producer = try KafkaProducer(configuration: try CLI.client(config), logger: CLI.logger)
            let writer = DeadLetterWriter(topic: config.kafka.topics.deadLetter,
                                          worker: "relayctl-redrive@\(WorkerContext.processID())", producer: producer)
            let progress = Progress(total: Int(clamping: scan.total))
            var tally = RedriveTally()
            // Positions read past but not yet committed: letters of other destinations, or already committed ones.
            var uncommitted: [TopicPartition: Int64] = [:]
            func commit(_ consumer: KafkaConsumer) async throws {
                guard !uncommitted.isEmpty else { return }
                do {
                    try await consumer.commitAsync(uncommitted)
                } catch {
                    throw CLIError("cannot commit progress in group \(group): \(error)")
                }
                uncommitted.removeAll(keepingCapacity: true)
            }
            do {
                try await scan.forEach(config: config, group: group) { record, consumer in
                    tally.scanned += 1
                    uncommitted[record.topicPartition] = record.offset + 1
                    if let letter = redrivable(record, filter: filter) {
                        let outcome = try await sender.send(letter, source: record.source)
                        if outcome.delivered {
                            tally.delivered += 1
                        } else if let again = RealtimeRedrive.letter(afterFailure: outcome, of: letter,
                                                                       worker: writer.worker) {
                            // Kept before committed: the broker has the new letter before the old one is passed.
                            do {
                                try await writer.write(again)
                            } catch {
                                throw CLIError("cannot keep \(record.source) as a new dead letter: \(error)")
                            }
                            tally.failedAgain += 1
                            // On a terminal, start the line clear of the progress bar.
                            print((progress.enabled ? "\r" : "")
                                  + "failed again \(record.source) message \(outcome.messageID): "
                                  + "\(outcome.failureReason ?? "") after \(outcome.attempts) attempt(s)")
                        }
                        try await commit(consumer)
                        progress.update(tally.scanned)
                    } else if tally.scanned % 5_000 == 0 || record.offset + 1 >= scan.ends[record.topicPartition]! {
                        // Skipped letters are remembered too, in bulk, and at each partition's end of the stretch.
                        try await commit(consumer)
                        progress.update(tally.scanned)
                    }
                }
            } catch {
                progress.finish(tally.scanned)
                try? await sender.shutdown()
                await producer.close()
                throw error
            }
            progress.finish(tally.scanned)
            try? await sender.shutdown()
            await producer.close()
            print("destination \(destination): \(tally.delivered) delivered, \(tally.failedAgain) failed again "
                  + "(kept as new dead letters), \(tally.scanned) letters read on \(config.kafka.topics.deadLetter)")
            if tally.failedAgain > 0 {
                throw CLIError("\(tally.failedAgain) message(s) failed again; a later redrive sends them once more")
            }
        }
    }
}

struct RedriveTally {
    var scanned = 0
    var delivered = 0
    var failedAgain = 0
}
