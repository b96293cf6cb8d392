import AsyncHTTPClient
import Foundation
import RelayCore
import RelayKafka
import RelayRuntime

/// Sends dead-lettered realtime messages again (`relayctl dead-letter redrive --destination ID`): each letter's
/// body as it was, signed or authorized per the current configuration, with its original `X-Relay-Message-Id` so
/// that the partner can drop what it already has. Retries as the destination's `retry` policy says.
public enum RealtimeRedrive {
    public struct Outcome: Sendable {
        /// `topic/partition/offset` of the dead letter.
        public let letterSource: String
        public let messageID: String
        public let attempts: Int
        public let result: AttemptResult

        public var delivered: Bool {
            if case .delivered = result { true } else { false }
        }
    }

    /// The letters of `destination` that can be sent again: rejected or exhausted outbound messages.
    public static func letters(in records: [KafkaRecord], destination: Int) -> [(source: String, letter: DeadLetter)] {
        records.compactMap { record in
            guard let letter = DeadLetter(record: record), letter.destination == destination,
                  letter.errorClass != .malformed
            else { return nil }
            return (record.source, letter)
        }
    }

    public static func send(_ letters: [(source: String, letter: DeadLetter)], destination: Destination,
                            settings: RealtimeSettings, config: RelayConfig,
                            progress: @Sendable (Outcome) -> Void = { _ in }) async throws -> [Outcome]
    {
        let client = RealtimeHTTP.makeClient(config: config)
        do {
            let sender = try PartnerSender(destination: destination, settings: settings, client: client)
            let backoff = RetryBackoff(policy: settings.retry)
            var outcomes: [Outcome] = []
            for (source, letter) in letters {
                let messageID = letter.extraHeaders.last { $0.key == RealtimeDeadLetter.messageIDHeader }?.stringValue
                    ?? RealtimeMessageBuilder(destination: destination, settings: settings)
                    .messageID(topic: "dead-letter:\(source)", partition: 0, offsets: [])
                let prepared = sender.prepare(body: letter.value, messageID: messageID)
                var attempts = 0
                var result: AttemptResult
                repeat {
                    attempts += 1
                    result = await sender.send(prepared)
                    guard case .retryable(_, let retryAfter) = result, backoff.allowsAnother(after: attempts) else {
                        break
                    }
                    try await Task.sleep(for: backoff.delay(afterAttempt: attempts, retryAfter: retryAfter,
                                                            random: .random(in: 0...1)))
                } while true
                let outcome = Outcome(letterSource: source, messageID: messageID, attempts: attempts, result: result)
                progress(outcome)
                outcomes.append(outcome)
            }
            try await client.shutdown()
            return outcomes
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}
