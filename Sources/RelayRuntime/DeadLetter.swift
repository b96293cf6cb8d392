import Foundation
import Logging
import RelayKafka

/// Why a record or an outbound message ended up on the dead-letter topic (`relay.error.class`).
public enum DeadLetterClass: String, Sendable, CaseIterable {
    /// The input broke the event schema; sending it again will not help until it is fixed.
    case malformed
    /// The partner refused the message (a 4xx other than 408/429).
    case rejected
    /// Every attempt failed (retryable errors until `max_attempts`).
    case exhausted
}

/// A dead letter as SPEC §7 describes it: the original key and bytes (or the undeliverable outbound body), with
/// headers that say what went wrong, where it came from and who gave up.
public struct DeadLetter: Sendable, Equatable {
    public var key: [UInt8]?
    public var value: [UInt8]
    public var error: String
    public var errorClass: DeadLetterClass
    /// `topic/partition/offset` of the source record (for an outbound message, its first source record).
    public var source: String
    public var worker: String
    public var destination: Int?
    public var attempts: Int
    public var failedAt: Date
    /// Extra headers kept with the letter (e.g. the outbound message id, needed to redrive it unchanged).
    public var extraHeaders: [KafkaHeader]

    public init(key: [UInt8]?, value: [UInt8], error: String, errorClass: DeadLetterClass, source: String,
                worker: String, destination: Int? = nil, attempts: Int = 0, failedAt: Date = Date(),
                extraHeaders: [KafkaHeader] = [])
    {
        self.key = key
        self.value = value
        self.error = error
        self.errorClass = errorClass
        self.source = source
        self.worker = worker
        self.destination = destination
        self.attempts = attempts
        self.failedAt = failedAt
        self.extraHeaders = extraHeaders
    }

    public enum Header {
        public static let error = "relay.error"
        public static let errorClass = "relay.error.class"
        public static let source = "relay.source"
        public static let worker = "relay.worker"
        public static let destination = "relay.destination"
        public static let attempts = "relay.attempts"
        public static let failedAt = "relay.failed_at"
    }

    public var headers: [KafkaHeader] {
        var headers = [
            KafkaHeader(Header.error, error),
            KafkaHeader(Header.errorClass, errorClass.rawValue),
            KafkaHeader(Header.source, source),
            KafkaHeader(Header.worker, worker),
            KafkaHeader(Header.attempts, String(attempts)),
            KafkaHeader(Header.failedAt, Timestamps.iso8601(failedAt)),
        ]
        if let destination { headers.append(KafkaHeader(Header.destination, String(destination))) }
        return headers + extraHeaders
    }

    /// Reads a dead letter back from its record (for `relayctl dead-letter` and redrive).
    public init?(record: KafkaRecord) {
        guard let error = record.header(Header.error)?.stringValue,
              let errorClass = record.header(Header.errorClass).flatMap({ DeadLetterClass(rawValue: $0.stringValue) })
        else { return nil }
        let known = Set([Header.error, Header.errorClass, Header.source, Header.worker, Header.destination,
                         Header.attempts, Header.failedAt])
        self.init(key: record.key, value: record.value, error: error, errorClass: errorClass,
                  source: record.header(Header.source)?.stringValue ?? "",
                  worker: record.header(Header.worker)?.stringValue ?? "",
                  destination: record.header(Header.destination).flatMap { Int($0.stringValue) },
                  attempts: record.header(Header.attempts).flatMap { Int($0.stringValue) } ?? 0,
                  failedAt: record.header(Header.failedAt).flatMap { Timestamps.parseISO8601($0.stringValue) }
                      ?? Date(timeIntervalSince1970: Double(record.timestamp) / 1000),
                  extraHeaders: record.headers.filter { !known.contains($0.key) })
    }
}

/// Writes dead letters and returns only once the broker has them, so that the source may then be committed.
public struct DeadLetterWriter: Sendable {
    public let topic: String
    public let worker: String
    let producer: KafkaProducer

    public init(topic: String, worker: String, producer: KafkaProducer) {
        self.topic = topic
        self.worker = worker
        self.producer = producer
    }

    public func write(_ letter: DeadLetter) async throws(KafkaError) {
        _ = try await producer.send(OutgoingRecord(topic: topic, key: letter.key, value: letter.value,
                                                   headers: letter.headers))
        RuntimeMetrics.deadLettered(errorClass: letter.errorClass, destination: letter.destination)
    }

    /// Keeps a record that failed validation, with the reason, as `malformed`.
    public func malformed(_ record: KafkaRecord, reason: String) async throws(KafkaError) {
        try await write(DeadLetter(key: record.key, value: record.value, error: reason, errorClass: .malformed,
                                   source: record.source, worker: worker))
    }

    /// `malformed`, retried with back-off until the broker has it: a malformed record becomes final (committable)
    /// only once it is kept, and is never dropped. Returns early only if the task is cancelled.
    public func keepMalformed(_ record: KafkaRecord, reason: String, logger: Logger) async {
        var delay = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                try await malformed(record, reason: reason)
                logger.warning("malformed record dead-lettered",
                               metadata: ["source": "\(record.source)", "reason": "\(reason)"])
                return
            } catch {
                logger.error("dead-letter write failed, retrying",
                             metadata: ["source": "\(record.source)", "error": "\(error)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(10))
            }
        }
    }
}

public enum Timestamps {
    /// `2026-11-29T20:13:16Z`, as the partner formats use (seconds, UTC).
    public static func iso8601(_ date: Date) -> String {
        iso8601(milliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded(.down)))
    }

    public static func iso8601(milliseconds: Int64) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(20)
        appendISO8601(milliseconds: milliseconds, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `2026-11-29T20:13:16Z` (seconds, UTC) as bytes, without Foundation: partner formats write one for
    /// every user of every message.
    public static func appendISO8601(milliseconds: Int64, to out: inout [UInt8]) {
        var seconds = milliseconds / 1000
        if milliseconds < 0, milliseconds % 1000 != 0 { seconds -= 1 }
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondsOfDay = Int(seconds - days * 86_400)
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1..<count { divisor *= 10 }
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(value / divisor % 10))
                divisor /= 10
            }
        }
        if year < 0 { out.append(UInt8(ascii: "-")) }
        digits(abs(year), 4)
        out.append(UInt8(ascii: "-"))
        digits(month, 2)
        out.append(UInt8(ascii: "-"))
        digits(day, 2)
        out.append(UInt8(ascii: "T"))
        digits(secondsOfDay / 3600, 2)
        out.append(UInt8(ascii: ":"))
        digits(secondsOfDay / 60 % 60, 2)
        out.append(UInt8(ascii: ":"))
        digits(secondsOfDay % 60, 2)
        out.append(UInt8(ascii: "Z"))
    }

    /// Accepts `2026-11-29T20:13:16Z`, with optional fractional seconds or a `+hh:mm` offset.
    public static func parseISO8601(_ text: String) -> Date? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = withFraction.date(from: text) { return date }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        return plain.date(from: text)
    }

    /// Howard Hinnant's days-to-civil algorithm: no calendar objects on hot paths.
    static func civilDate(daysSinceEpoch: Int64) -> (Int, Int, Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return (Int(y), Int(m), Int(d))
    }
}
