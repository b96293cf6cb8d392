import Foundation
import Logging
import NIOCore
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime
import Synchronization

/// Delivery to one destination, independent of every other: its own queues, cap on requests in flight, rate limit,
/// circuit breaker and retries. A slow or failing partner only ever waits on itself.
///
/// Messages are queued in lanes, one per source partition. A lane sends its messages one after the other (the next
/// only once the previous is final), so a user's messages reach the partner in event order: one user's events are
/// all on one partition. Lanes run concurrently up to `max_in_flight` requests.
final class DestinationPipeline: Sendable {
    let destination: Destination
    let settings: RealtimeSettings
    let sender: PartnerSender
    let metrics: RealtimeMetrics
    private let deadLetters: DeadLetterWriter
    /// Whose generation says which messages are still this member's to send.
    private let tracker: OffsetTracker
    private let logger: Logger
    private let backoff: RetryBackoff
    private let inFlight: AsyncLimiter
    private let inFlightCount = Atomic<Int>(0)
    private let rate: Mutex<TokenBucket?>
    private let breaker: Mutex<CircuitBreaker>
    private let lanes = Mutex(LaneState())

    private struct Lane {
        var queue: [OutboundMessage] = []
        var head = 0
    }

    private struct LaneState {
        var lanes: [TopicPartition: Lane] = [:]
        /// Messages queued or being delivered.
        var pending = 0
        /// Parked messages on their way to the dead-letter topic.
        var parked = 0
    }

    /// Past this many queued messages a *failing* destination is parked: new messages go to the dead-letter topic
    /// (`exhausted`, redrivable) instead of its queue, so a partner down for long holds neither memory nor the
    /// consume loop, and the other destinations keep their latency (SPEC §4). A healthy destination over the bound
    /// only slows reading (see ``needsBackPressure``): it is draining, and its messages stay in order.
    let maxQueued: Int
    /// Whether the partner is failing: its circuit breaker is open or probing (set after every attempt).
    private let failing = Atomic<Bool>(false)

    /// A healthy destination whose queue is over the bound: reading waits for it (briefly: it is delivering).
    var needsBackPressure: Bool { !failing.load(ordering: .relaxed) && pending > maxQueued }

    init(destination: Destination, settings: RealtimeSettings, sender: PartnerSender, deadLetters: DeadLetterWriter,
         tracker: OffsetTracker, logger: Logger, maxQueued: Int = 4_096)
    {
        self.maxQueued = max(1, maxQueued)
        self.destination = destination
        self.settings = settings
        self.sender = sender
        self.deadLetters = deadLetters
        self.tracker = tracker
        var logger = logger
        logger[metadataKey: "destination"] = "\(destination.id)"
        self.logger = logger
        metrics = RealtimeMetrics(destination: destination.id)
        backoff = RetryBackoff(policy: settings.retry)
        inFlight = AsyncLimiter(limit: settings.maxInFlight)
        rate = Mutex(settings.rateLimitPerSecond.map { TokenBucket(ratePerSecond: $0, now: .now) })
        breaker = Mutex(CircuitBreaker(
            failureThreshold: 5,
            coolDown: .milliseconds(min(max(settings.retry.maxBackoffMs, 100), 5_000))))
        metrics.breakerState.record(0)
        metrics.inFlight.record(0)
    }

    /// Messages queued, being delivered, or being parked.
    var pending: Int { lanes.withLock { $0.pending + $0.parked } }

    /// Queues a message behind the earlier ones of its partition, or parks it when the queue is full. Never waits.
    func enqueue(_ message: OutboundMessage) {
        let isFailing = failing.load(ordering: .relaxed)
        let parked = lanes.withLock { s -> Bool in
            guard isFailing, s.pending >= maxQueued else { return false }
            s.parked += 1
            return true
        }
        if parked {
            metrics.parked.increment()
            let reason = "parked: more than \(maxQueued) messages queued for this partner (slow or down)"
            Task {
                await deadLetter(message, errorClass: .exhausted, reason: reason, attempts: 0)
                lanes.withLock { $0.parked -= 1 }
            }
            return
        }
        let start = lanes.withLock { s -> Bool in
            s.pending += 1
            if s.lanes[message.partition] != nil {
                s.lanes[message.partition]!.queue.append(message)
                return false
            }
            s.lanes[message.partition] = Lane(queue: [message])
            return true
        }
        if start {
            let partition = message.partition
            // A partition's lane always runs on the same event loop, where its connections live.
            let executors = EventLoopTaskExecutor.shared
            let executor = executors[Int(UInt32(bitPattern: partition.partition)) % executors.count]
            Task(executorPreference: executor) { await self.runLane(partition, on: executor.loop) }
        }
    }

    private func runLane(_ partition: TopicPartition, on loop: any EventLoop) async {
        while let message = next(partition) {
            await deliver(message, on: loop)
            let pending = lanes.withLock { s -> Int in
                s.pending -= 1
                return s.pending
            }
            metrics.queued.record(pending)
        }
    }

    /// The lane's next message; removes the lane when it is empty (a later message starts a new one).
    private func next(_ partition: TopicPartition) -> OutboundMessage? {
        lanes.withLock { s -> OutboundMessage? in
            guard var lane = s.lanes.removeValue(forKey: partition) else { return nil }
            guard lane.head < lane.queue.count else { return nil }
            let message = lane.queue[lane.head]
            lane.head += 1
            if lane.head > 64, lane.head * 2 > lane.queue.count {
                lane.queue.removeFirst(lane.head)
                lane.head = 0
            }
            s.lanes[partition] = lane
            return message
        }
    }

    private func deliver(_ message: OutboundMessage, on loop: any EventLoop) async {
        let prepared = sender.prepare(body: message.body, messageID: message.id)
        var attempts = 0
        while true {
            if !tracker.owns(message.partition, generation: message.generation) { return }
            attempts += 1
            metrics.attempts.increment()
            if attempts > 1 { metrics.retries.increment() }
            let result = await attempt(prepared, on: loop)
            switch result {
            case .delivered:
                let now = Timestamps.nowMilliseconds()
                metrics.messages.increment()
                metrics.usersSent.increment(by: message.userCount)
                metrics.bytes.increment(by: prepared.body.readableBytes)
                for ts in message.eventTimestamps { metrics.latency.recordMilliseconds(max(0, now - ts)) }
                message.ticket?.finish()
                return
            case .rejected(_, let reason):
                await deadLetter(message, errorClass: .rejected, reason: reason, attempts: attempts)
                return
            case .retryable(let reason, let retryAfter):
                guard backoff.allowsAnother(after: attempts) else {
                    await deadLetter(message, errorClass: .exhausted, reason: reason, attempts: attempts)
                    return
                }
                let delay = backoff.delay(afterAttempt: attempts, retryAfter: retryAfter,
                                          random: Double.random(in: 0...1))
                logger.debug("retrying", metadata: ["message_id": "\(message.id)", "reason": "\(reason)",
                                                    "attempt": "\(attempts)", "delay": "\(delay)"])
                do { try await Task.sleep(for: delay) } catch { return }  // shutting down: the next owner replays
            }
        }
    }

    /// One attempt through the breaker, the rate limit and the in-flight cap.
    private func attempt(_ prepared: PartnerSender.Prepared, on loop: any EventLoop) async -> AttemptResult {
        guard breaker.withLock({ $0.allowRequest(now: .now) }) else {
            failing.store(true, ordering: .relaxed)
            return .retryable(reason: "circuit open", retryAfter: nil)
        }
        let wait = rate.withLock { bucket in bucket?.reserve(now: .now) ?? .zero }
        if wait > .zero { try? await Task.sleep(for: wait) }
        await inFlight.acquire()
        metrics.inFlight.record(inFlightCount.add(1, ordering: .relaxed).newValue)
        let result = await sender.send(prepared, on: loop)
        metrics.inFlight.record(inFlightCount.subtract(1, ordering: .relaxed).newValue)
        inFlight.release()
        let state = breaker.withLock { b -> CircuitBreaker.State in
            if case .retryable = result { b.recordFailure(now: .now) } else { b.recordSuccess() }
            return b.state
        }
        // Failing means the breaker is not closed (five failures in a row): one slow answer from a healthy partner
        // on a loaded machine must not get its backlog parked.
        failing.store(state != .closed, ordering: .relaxed)
        metrics.breakerState.record(state.gaugeValue)
        return result
    }

    /// The message's body goes to the dead-letter topic; retried until the broker has it, then the message is final.
    private func deadLetter(_ message: OutboundMessage, errorClass: DeadLetterClass, reason: String,
                            attempts: Int) async
    {
        let letter = DeadLetter(
            key: message.key, value: message.body, error: "destination \(destination.id): \(reason)",
            errorClass: errorClass, source: message.source, worker: deadLetters.worker, destination: destination.id,
            attempts: attempts,
            extraHeaders: [KafkaHeader(RealtimeDeadLetter.messageIDHeader, message.id),
                           KafkaHeader(RealtimeDeadLetter.sourcesHeader,
                                       "\(message.partition.topic)/\(message.partition.partition)/"
                                           + message.offsets.map(String.init).joined(separator: ","))])
        guard await deadLetters.keep(letter, logger: logger) else { return }  // shutting down: replayed later
        logger.warning("message dead-lettered", metadata: [
            "message_id": "\(message.id)", "class": "\(errorClass.rawValue)", "reason": "\(reason)",
            "attempts": "\(attempts)", "users": "\(message.userCount)",
        ])
        metrics.deadLettered.increment()
        message.ticket?.finish()
    }
}

/// Headers a realtime dead letter carries beside those of SPEC §7.
public enum RealtimeDeadLetter {
    /// The message's `X-Relay-Message-Id`, so that a redrive sends it with the same id.
    public static let messageIDHeader = "relay.message_id"
    /// `topic/partition/offset,offset,...` of every user in the message.
    public static let sourcesHeader = "relay.sources"
}
