import RelayKafka
import Synchronization

/// Changelog writes of one partition (under one assignment) kept in flight, so that a worker goes on reading while
/// the broker acknowledges what it wrote, instead of waiting a produce round trip per batch of records.
///
/// Each write is a group of records sent in order; `durable` runs (on the delivery thread) once the broker has
/// acknowledged all of them, and is where the caller marks its input offsets final. A write that fails keeps its
/// records, and so does every later one until all before it are acknowledged: ``resendUnfinished(_:)`` sends them
/// all again in the original order, so that each key ends at its latest value whatever landed the first time.
///
/// ``barrier()`` waits until nothing is in flight, for work that must see the changelog complete (a batch cut).
/// ``inFlight`` lets a revoke wait for writes that could otherwise land after the next owner has restored.
public final class ChangelogPipeline: Sendable {
    private struct Write {
        let records: [OutgoingRecord]
        let durable: @Sendable () -> Void
        var remaining: Int
        var failed = false
        var acknowledged = false
    }

    private struct State {
        var writes: [UInt64: Write] = [:]
        /// Ids of the writes held, oldest first: a write leaves once it and every write before it are acknowledged.
        var order: [UInt64] = []
        var nextID: UInt64 = 0
        var failed = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var unanswered: Int { writes.values.count { $0.remaining > 0 } }
    }

    private let state = Mutex(State())
    private let producer: KafkaProducer

    public init(producer: KafkaProducer) { self.producer = producer }

    /// Writes whose records are not all answered yet.
    public var inFlight: Int { state.withLock { $0.unanswered } }

    /// True once a write failed: the caller must ``resendUnfinished()`` before writing more.
    public var hasFailed: Bool { state.withLock { $0.failed } }

    /// Enqueues the records in order (waiting while librdkafka's local queue is full) without waiting for the
    /// broker. `durable` runs once, after the broker has acknowledged every one of them.
    public func send(_ records: [OutgoingRecord], durable: @escaping @Sendable () -> Void) async {
        guard !records.isEmpty else {
            durable()
            return
        }
        let id = state.withLock { s -> UInt64 in
            defer { s.nextID += 1 }
            s.writes[s.nextID] = Write(records: records, durable: durable, remaining: records.count)
            s.order.append(s.nextID)
            return s.nextID
        }
        await enqueue(records, of: id)
    }

    private func enqueue(_ records: [OutgoingRecord], of id: UInt64) async {
        for (index, record) in records.enumerated() {
            do throws(KafkaError) {
                try await producer.enqueueWaiting(record) { [self] result in answered(id, result) }
            } catch {
                // Not enqueued: neither it nor the rest will be answered.
                for _ in index..<records.count { answered(id, .failure(error)) }
                return
            }
        }
    }

    private func answered(_ id: UInt64, _ result: Result<DeliveryReport, KafkaError>) {
        let (durable, wake) = state.withLock { s -> ((@Sendable () -> Void)?, [CheckedContinuation<Void, Never>]) in
            guard var write = s.writes[id] else { return (nil, []) }
            if case .failure = result {
                write.failed = true
                s.failed = true
            }
            write.remaining -= 1
            var durable: (@Sendable () -> Void)?
            if write.remaining == 0, !write.failed, !write.acknowledged {
                write.acknowledged = true
                durable = write.durable
            }
            s.writes[id] = write
            guard write.remaining == 0 else { return (nil, []) }
            var dropped = 0
            for held in s.order {
                guard let w = s.writes[held], w.acknowledged, w.remaining == 0 else { break }
                s.writes[held] = nil
                dropped += 1
            }
            s.order.removeFirst(dropped)
            var wake: [CheckedContinuation<Void, Never>] = []
            if s.unanswered == 0 { swap(&wake, &s.waiters) }
            return (durable, wake)
        }
        durable?()
        for waiter in wake { waiter.resume() }
    }

    /// Waits until every write sent so far is answered (acknowledged or failed).
    public func barrier() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s -> Bool in
                if s.unanswered == 0 { return true }
                s.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Waits (suspended) while `limit` or more writes are in flight.
    public func limit(_ limit: Int) async {
        while inFlight >= limit { try? await Task.sleep(for: .milliseconds(1)) }
    }

    /// After a failure: waits for the writes in flight, then sends every write still held (the failed ones and the
    /// acknowledged ones behind them) again, in their order, and waits for the answers. Returns whether all of them
    /// are acknowledged now; if not, they stay held for the next attempt.
    public func resendUnfinished() async -> Bool {
        await barrier()
        let held = state.withLock { s -> [(UInt64, [OutgoingRecord])] in
            s.failed = false
            return s.order.compactMap { id in
                guard var write = s.writes[id] else { return nil }
                write.remaining = write.records.count
                write.failed = false
                s.writes[id] = write
                return (id, write.records)
            }
        }
        for (id, records) in held { await enqueue(records, of: id) }
        await barrier()
        return !hasFailed
    }
}
