import Foundation
import RelayCore
import RelayRuntime

/// What one attempt to deliver a message came to.
public enum AttemptResult: Sendable, Equatable {
    /// A 2xx answer.
    case delivered(status: Int)
    /// A 4xx other than 408/429: sending it again will not help.
    case rejected(status: Int, reason: String)
    /// 408, 429, 5xx, a time-out or a connection error (or an open circuit): try again later.
    case retryable(reason: String, retryAfter: Duration?)

    /// Classifies an HTTP answer (SPEC §4).
    public static func classify(status: Int, retryAfter: String?, now: Date = Date()) -> AttemptResult {
        switch status {
        case 200..<300:
            return .delivered(status: status)
        case 408, 429, 500..<600:
            return .retryable(reason: "HTTP \(status)", retryAfter: retryAfter.flatMap { RetryAfter.parse($0, now: now) })
        default:
            return .rejected(status: status, reason: "HTTP \(status)")
        }
    }
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
public enum RetryAfter {
    /// Longest wait honoured (a partner asking for more gets this): the message stays retryable.
    static let ceiling = Duration.seconds(3600)

    public static func parse(_ value: String, now: Date = Date()) -> Duration? {
        let text = value.trimmingCharacters(in: .whitespaces)
        if let seconds = Int(text) { return seconds >= 0 ? min(.seconds(seconds), ceiling) : nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) {
                // Pinned before converting: a date centuries ahead must not overflow the conversion.
                let seconds = min(max(0, date.timeIntervalSince(now)), 3600)
                return min(.milliseconds(Int64((seconds * 1000).rounded(.up))), ceiling)
            }
        }
        return nil
    }
}

/// Exponential back-off with full jitter (a uniformly random wait up to the exponential bound), honouring a
/// partner's `Retry-After`.
public struct RetryBackoff: Sendable {
    public let policy: RetryPolicy

    public init(policy: RetryPolicy) { self.policy = policy }

    private var backoff: Backoff {
        Backoff(initial: .milliseconds(Int64(max(1, policy.initialBackoffMs))),
                maximum: .milliseconds(Int64(max(1, policy.maxBackoffMs))), jitter: true)
    }

    /// The bound after failed attempt number `attempt` (1-based): `initial · 2^(attempt-1)`, at most `max`.
    public func bound(afterAttempt attempt: Int) -> Duration { backoff.bound(afterAttempt: attempt) }

    /// The wait before the next attempt. `random` is a value in 0...1 (injected for tests).
    public func delay(afterAttempt attempt: Int, retryAfter: Duration?, random: Double) -> Duration {
        let jittered = backoff.delay(afterAttempt: attempt, random: random)
        guard let retryAfter else { return jittered }
        return max(retryAfter, jittered)
    }

    /// Whether another attempt is allowed after `attempts` attempts.
    public func allowsAnother(after attempts: Int) -> Bool { attempts < max(1, policy.maxAttempts) }
}
