import Foundation
import Logging
import RelayEncoding
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

    /// What a letter keeps of a value (and a key) too large for the broker: the first 64 KiB.
    public static let truncatedBytes = 65_536
    public static let originalSizeHeader = "relay.original_size"
    public static let originalKeySizeHeader = "relay.original_key_size"

    /// The letter with its value and key cut to `limit` bytes and their original sizes in headers, so that an
    /// operator still sees what it was and where it came from.
    public func truncated(to limit: Int) -> DeadLetter {
        var copy = self
        copy.value = Array(value.prefix(limit))
        copy.key = key.map { Array($0.prefix(limit)) }
        copy.extraHeaders = extraHeaders.filter { $0.key != Self.originalSizeHeader && $0.key != Self.originalKeySizeHeader }
            + [KafkaHeader(Self.originalSizeHeader, String(value.count))]
            + (key.map { [KafkaHeader(Self.originalKeySizeHeader, String($0.count))] } ?? [])
        copy.error = String(decoding: error.utf8.prefix(1024), as: UTF8.self)
        return copy
    }

    /// Reads a dead letter back from its record (for `relayctl dead-letter` and redrive).
    public init?(record: KafkaRecord) {
        guard let error = record.header(Header.error)?.stringValue,
              let errorClass = record.header(Header.errorClass).flatMap({ DeadLetterClass(rawValue: $0.stringValue) })
        else { return nil }
        let known = Set([Header.error, Header.errorClass, Header.source, Header.worker, Header.destination,
                         Header.attempts, Header.failedAt])
        self.init(key: record.key.map(Array.init), value: Array(record.value), error: error, errorClass: errorClass,
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
        try await write(DeadLetter(key: record.key.map(Array.init), value: Array(record.value), error: reason,
                                   errorClass: .malformed, source: record.source, worker: worker))
    }

    /// Writes `letter`, retrying with back-off while the failure may pass (broker down, time-outs), so that the
    /// record it stands for becomes final only once it is kept. What will never pass is not retried forever:
    /// a letter too large for the broker is kept truncated (``DeadLetter/truncated(to:)``); one refused for another
    /// lasting reason is tried once truncated, then given up, logged and counted. Returns false only when the task
    /// is cancelled (shutdown): the record is not final then, and the next owner replays it.
    @discardableResult
    public func keep(_ letter: DeadLetter, logger: Logger, backoff: Backoff = .broker) async -> Bool {
        var current = letter
        var attempt = 0
        while !Task.isCancelled {
            attempt += 1
            do {
                try await write(current)
                return true
            } catch {
                if !error.isRetriable || error.isMessageTooLarge {
                    if current.value.count > DeadLetter.truncatedBytes || current.key?.count ?? 0 > DeadLetter.truncatedBytes {
                        logger.warning("dead letter kept truncated", metadata: [
                            "source": "\(letter.source)", "bytes": "\(letter.value.count)", "error": "\(error)"])
                        current = letter.truncated(to: DeadLetter.truncatedBytes)
                        continue
                    }
                    logger.error("dead letter given up: the broker refuses it for good", metadata: [
                        "source": "\(letter.source)", "error": "\(error)"])
                    RuntimeMetrics.deadLetterDropped()
                    return true
                }
                logger.error("dead-letter write failed, retrying",
                             metadata: ["source": "\(letter.source)", "error": "\(error)"])
                do { try await Task.sleep(for: backoff.delay(afterAttempt: attempt)) } catch { return false }
            }
        }
        return false
    }

    /// Keeps a record that failed validation, with its reason, as `malformed` (see ``keep(_:logger:backoff:)``).
    @discardableResult
    public func keepMalformed(_ record: KafkaRecord, reason: String, logger: Logger) async -> Bool {
        let letter = DeadLetter(key: record.key.map(Array.init), value: Array(record.value), error: reason,
                                errorClass: .malformed, source: record.source, worker: worker)
        let kept = await keep(letter, logger: logger)
        if kept {
            logger.warning("malformed record dead-lettered",
                           metadata: ["source": "\(record.source)", "reason": "\(reason)"])
        }
        return kept
    }
}
