import ArgumentParser
import Foundation
import RelayCore
import RelayRealtime
import RelayRuntime

extension DeadLetters {
    /// `relayctl dead-letter redrive --destination ID`: sends a realtime destination's undelivered messages again.
    struct Redrive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a realtime destination's dead-lettered messages again, with their original message ids.",
            discussion: """
                Every rejected or exhausted message of the destination on the dead-letter topic is POSTed again, \
                body unchanged, signed per the current configuration and carrying its original X-Relay-Message-Id \
                (partners drop duplicates by it). Exits non-zero if any message is still not delivered.
                """)

        @OptionGroup var options: ConfigOption

        @Option(help: "The realtime destination's id.")
        var destination: Int

        func run() async throws {
            let config = try options.load()
            guard let target = config.destination(id: destination) else {
                throw CLIError("destination \(destination) is not in \(options.config)")
            }
            guard let settings = target.realtime else {
                throw CLIError("destination \(destination) is kind \(target.kind.name): only realtime messages can be redriven")
            }
            let records = try await DeadLetterReader.readAll(config: config)
            let letters = RealtimeRedrive.letters(in: records, destination: destination)
            guard !letters.isEmpty else {
                print("no dead letters for destination \(destination) on \(config.kafka.topics.deadLetter)")
                return
            }
            let outcomes: [RealtimeRedrive.Outcome]
            do {
                outcomes = try await RealtimeRedrive.send(letters, destination: target, settings: settings,
                                                          config: config) { outcome in
                    switch outcome.result {
                    case .delivered(let status):
                        print("delivered \(outcome.letterSource) message \(outcome.messageID) (HTTP \(status))")
                    case .rejected(_, let reason), .retryable(let reason, _):
                        print("NOT delivered \(outcome.letterSource) message \(outcome.messageID): \(reason) "
                              + "after \(outcome.attempts) attempt(s)")
                    }
                }
            } catch let error as SecretError {
                throw CLIError("destination \(destination): \(error)")
            }
            let failed = outcomes.filter { !$0.delivered }.count
            print("\(outcomes.count - failed) of \(outcomes.count) dead letters of destination \(destination) delivered")
            if failed > 0 { throw CLIError("\(failed) message(s) not delivered; they stay on the dead-letter topic") }
        }
    }
}
