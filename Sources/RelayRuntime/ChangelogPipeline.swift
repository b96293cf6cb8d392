import RelayKafka
import Synchronization

/// Changelog writes of one partition (under one assignment) kept in flight, so that a worker goes on reading while
/// the broker acknowledges what it wrote, instead of waiting a produce round trip per batch of records.
///
/// Each write is a group of records sent in order; `durable` runs (on the delivery thread) once the broker has
/// acknowledged all of them, and is where the caller marks its input offsets final. A write that fails keeps its
/// records, and so does every later one until all before it are acknowledged: ``resendUnfinished()`` sends them
/// all again in the original order, so that each key ends at its latest value whatever landed the first time.
///
/// ``barrier()`` waits until nothing is in flight, for work that must see the changelog complete (a batch cut).
/// A revoke ``close()``s the pipeline and waits until ``inFlight`` is 0: no write of the former owner can then land
/// after the next owner has restored.
public final class ChangelogPipeline: Sendable {
    private struct Write {
        let records: [OutgoingRecord]
        let durable: @Sendable () -> Void
        /// The answers of the current attempt, counted without the lock (one per record).
        var attempt: Attempt
        /// Every record of the current attempt is answered, and the answer taken in (under the lock).
        var answered = false
        var acknowledged = false
    }

    private final class Attempt: Sendable {
        let remaining: Atomic<Int>
        /// The first failure among its records (rare: taken under a lock).
        let failure = Mutex<KafkaError?>(nil)
        init(_ count: Int) { remaining = Atomic(count) }
    }

    private struct State {
        var writes: [UInt64: Write] = [:]
        /// Ids of the writes held, oldest first: a write leaves once it and every write before it are acknowledged.
        var order: [UInt64] = []
        var nextID: UInt64 = 0
        /// The failure that made a write fail, until the writes held are all acknowledged again.
        var failure: KafkaError?
        var closed = false
        /// Waiting for fewer than `below` writes to be unanswered.
        var waiters: [(below: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var unanswered: Int { writes.values.count { !$0.answered } }
    }

    private let state = Mutex(State())
    private let producer: KafkaProducer

    public init(producer: KafkaProducer) { self.producer = producer }

    /// Writes whose records are not all answered yet.
    public var inFlight: Int { state.withLock { $0.unanswered } }

    /// True once a write failed: the caller must ``resendUnfinished()`` before writing more.
    public var hasFailed: Bool { failure != nil }

    /// Why a write failed (nil while none is held failed).
    public var failure: KafkaError? { state.withLock { $0.failure } }

    /// No write is taken from now on (the partition was revoked).
    public func close() { state.withLock { $0.closed = true } }

    /// Enqueues the records in order (waiting while librdkafka's local queue is full) without waiting for the
    /// broker. `durable` runs once, after the broker has acknowledged every one of them. Returns false, sending
    /// nothing, once the pipeline is closed.
    public func send(_ records: [OutgoingRecord], durable: @escaping @Sendable () -> Void) async -> Bool {
        let id = state.withLock { s -> UInt64? in
            guard !s.closed else { return nil }
            defer { s.nextID += 1 }
            s.writes[s.nextID] = Write(records: records, durable: durable, attempt: Attempt(records.count))
            s.order.append(s.nextID)
            return s.nextID
        }
        guard let id else { return false }
        await enqueue(records, of: id)
        return true
    }

    private func enqueue(_ records: [OutgoingRecord], of id: UInt64) async {
        guard let attempt = state.withLock({ $0.writes[id]?.attempt }) else { return }
        if records.isEmpty { return finished(id, attempt) }
        await producer.enqueueAllWaiting(records) { [self] result in
            if case .failure(let error) = result { attempt.failure.withLock { $0 = $0 ?? error } }
            if attempt.remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { finished(id, attempt) }
        }
    }

    /// Every record of the write's attempt is answered.
    private func finished(_ id: UInt64, _ attempt: Attempt) {
        let failure = attempt.failure.withLock { $0 }
        let (durable, wake) = state.withLock { s -> ((@Sendable () -> Void)?, [CheckedContinuation<Void, Never>]) in
            guard var write = s.writes[id], write.attempt === attempt else { return (nil, []) }
            if let failure, s.failure == nil { s.failure = failure }
            write.answered = true
            var durable: (@Sendable () -> Void)?
            if failure == nil, !write.acknowledged {
                write.acknowledged = true
                durable = write.durable
            }
            s.writes[id] = write
            var dropped = 0
            for held in s.order {
                guard let w = s.writes[held], w.acknowledged, w.answered else { break }
                s.writes[held] = nil
                dropped += 1
            }
            s.order.removeFirst(dropped)
            let unanswered = s.unanswered
            let wake = s.waiters.filter { unanswered < $0.below }.map(\.continuation)
            s.waiters.removeAll { unanswered < $0.below }
            return (durable, wake)
        }
        durable?()
        for waiter in wake { waiter.resume() }
    }

    /// Waits until every write sent so far is answered (acknowledged or failed).
    public func barrier() async { await limit(1) }

    /// Waits (suspended) while `limit` or more writes are in flight.
    public func limit(_ limit: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s -> Bool in
                if s.unanswered < limit { return true }
                s.waiters.append((limit, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// After a failure: waits for the writes in flight, then sends every write still held (the failed ones and the
    /// acknowledged ones behind them) again, in their order, and waits for the answers. Returns whether all of them
    /// are acknowledged now; if not, they stay held for the next attempt.
    public func resendUnfinished() async -> Bool {
        await barrier()
        let held = state.withLock { s -> [(UInt64, [OutgoingRecord])] in
            guard !s.closed else { return [] }
            s.failure = nil
            return s.order.compactMap { id in
                guard var write = s.writes[id] else { return nil }
                write.attempt = Attempt(write.records.count)
                write.answered = false
                s.writes[id] = write
                return (id, write.records)
            }
        }
        for (id, records) in held { await enqueue(records, of: id) }
        await barrier()
        return !hasFailed
    }
}
