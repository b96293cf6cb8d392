import AsyncHTTPClient
import Foundation
import RelayCore
import RelayKafka
import RelayRuntime

/// Sends dead-lettered realtime messages again (`relayctl dead-letter redrive --destination ID`), one at a time: each
/// letter's body as it was, signed or authorized per the current configuration, with its original
/// `X-Relay-Message-Id` so that the partner can drop what it already has. Retries as the destination's `retry`
/// policy says. Which letters to send, and remembering what was sent, is the caller's business.
public final class RealtimeRedrive: Sendable {
    public struct Outcome: Sendable {
        /// `topic/partition/offset` of the dead letter.
        public let letterSource: String
        public let messageID: String
        public let attempts: Int
        public let result: AttemptResult

        public var delivered: Bool {
            if case .delivered = result { true } else { false }
        }

        /// The class of a new dead letter for a message that failed again.
        public var failureClass: DeadLetterClass? {
            switch result {
            case .delivered: nil
            case .rejected: .rejected
            case .retryable: .exhausted
            }
        }

        public var failureReason: String? {
            switch result {
            case .delivered: nil
            case .rejected(_, let reason), .retryable(let reason, _): reason
            }
        }
    }

    /// Whether a letter is one this destination's redrive can send: a rejected or exhausted outbound message of it.
    public static func isRedrivable(_ letter: DeadLetter, destination: Int) -> Bool {
        letter.destination == destination && letter.errorClass != .malformed
    }

    private let destination: Destination
    private let settings: RealtimeSettings
    private let client: HTTPClient
    private let sender: PartnerSender
    private let backoff: RetryBackoff

    /// Resolves the destination's secrets now (a `SecretError` names what is missing).
    public init(destination: Destination, settings: RealtimeSettings) throws {
        let client = RealtimeHTTP.makeClient()
        do {
            sender = try PartnerSender(destination: destination, settings: settings, client: client)
        } catch {
            try? client.syncShutdown()
            throw error
        }
        self.client = client
        self.destination = destination
        self.settings = settings
        backoff = RetryBackoff(policy: settings.retry)
    }

    /// Sends one letter until it is delivered, refused, or the retry policy gives up.
    public func send(_ letter: DeadLetter, source: String) async throws -> Outcome {
        let messageID = letter.extraHeaders.last { $0.key == RealtimeDeadLetter.messageIDHeader }?.stringValue
            ?? RealtimeMessageBuilder(destination: destination, settings: settings)
            .messageID(topic: "dead-letter:\(source)", partition: 0, offsets: [])
        let prepared = sender.prepare(body: letter.value, messageID: messageID)
        var attempts = 0
        var result: AttemptResult
        repeat {
            attempts += 1
            result = await sender.send(prepared)
            guard case .retryable(_, let retryAfter) = result, backoff.allowsAnother(after: attempts) else { break }
            try await Task.sleep(for: backoff.delay(afterAttempt: attempts, retryAfter: retryAfter,
                                                    random: .random(in: 0...1)))
        } while true
        return Outcome(letterSource: source, messageID: messageID, attempts: attempts, result: result)
    }

    /// The letter to keep for a message that failed again: same key, body and message id, the new reason, and the
    /// source of the message it came from, so that a later redrive can send it once more.
    public static func letter(afterFailure outcome: Outcome, of letter: DeadLetter, worker: String) -> DeadLetter? {
        guard let errorClass = outcome.failureClass, let reason = outcome.failureReason,
              let destination = letter.destination
        else { return nil }
        var again = letter
        again.error = "destination \(destination): redrive of \(outcome.letterSource): \(reason)"
        again.errorClass = errorClass
        again.worker = worker
        again.attempts = outcome.attempts
        again.failedAt = Date()
        return again
    }

    public func shutdown() async throws {
        await sender.shutdown()
        try await client.shutdown()
    }
}
