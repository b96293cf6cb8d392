import RelayKafka
import Synchronization

/// Decides, per partition, how far offsets may be committed: up to (not including) the lowest offset whose work is
/// not final yet. Work may finish out of order (a slow partner, a batch cut); the commit point only moves over a
/// contiguous run of finished records, so a restart never skips unfinished work.
///
/// Records read under an assignment that has since been revoked are ignored: their partition belongs to another
/// member now, which replays them from the last commit.
public final class OffsetTracker: Sendable {
    private let state = Mutex<[TopicPartition: PartitionProgress]>([:])

    public init() {}

    /// A partition was assigned: records of this generation will be tracked.
    public func assign(_ partitions: [TopicPartition], generation: UInt64) {
        state.withLock { s in for tp in partitions { s[tp] = PartitionProgress(generation: generation) } }
    }

    /// Whether the partition is still assigned to this member under `generation`: work read under an assignment
    /// that has since been revoked is dropped before it is sent or written (the partition's next owner replays it
    /// from the commit point, in order).
    public func owns(_ tp: TopicPartition, generation: UInt64) -> Bool {
        state.withLock { $0[tp]?.generation == generation }
    }

    /// A partition is being revoked: returns its final commit point (if it moved) and forgets it.
    public func revoke(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        state.withLock { s in
            var result: [TopicPartition: Int64] = [:]
            for tp in partitions {
                if let p = s.removeValue(forKey: tp), let offset = p.commitPoint, offset != p.committed {
                    result[tp] = offset
                }
            }
            return result
        }
    }

    /// Registers records as pending, returning those that belong to the current assignment (stale ones are dropped).
    public func track(_ records: [KafkaRecord]) -> [KafkaRecord] {
        state.withLock { s in
            // Usually every record is current: then the batch itself is returned, without copying records.
            var rejected: Set<Int> = []
            Self.forEachRun(of: records) { tp, range in
                guard var p = s.removeValue(forKey: tp) else {
                    rejected.formUnion(range)
                    return
                }
                for i in range {
                    if records[i].generation != p.generation || !p.add(records[i].offset) { rejected.insert(i) }
                }
                s[tp] = p
            }
            if rejected.isEmpty { return records }
            return records.indices.filter { !rejected.contains($0) }.map { records[$0] }
        }
    }

    /// Calls `body` once per run of consecutive records of one partition (records come in such runs), so that a
    /// partition is looked up once per run rather than once per record.
    private static func forEachRun<C: RandomAccessCollection<KafkaRecord>>(of records: C,
                                                                       _ body: (TopicPartition, Range<C.Index>) -> Void)
    {
        var start = records.startIndex
        while start < records.endIndex {
            let partition = records[start].partition
            let topic = records[start].topic
            var end = records.index(after: start)
            while end < records.endIndex, records[end].partition == partition, records[end].topic == topic {
                end = records.index(after: end)
            }
            body(TopicPartition(topic, partition), start..<end)
            start = end
        }
    }

    /// The work of these records is final (delivered, dead-lettered, durably written...).
    public func complete<Records: RandomAccessCollection<KafkaRecord>>(_ records: Records)
        where Records.Index == Int
    {
        state.withLock { s in
            Self.forEachRun(of: records) { tp, range in
                guard var p = s.removeValue(forKey: tp) else { return }
                for i in range where records[i].generation == p.generation { p.complete(records[i].offset) }
                s[tp] = p
            }
        }
    }

    public func complete(_ record: KafkaRecord) {
        complete(record.topicPartition, offsets: CollectionOfOne(record.offset), generation: record.generation)
    }

    /// Completes by position, for handlers that keep only (partition, offset, generation) of what they hold.
    public func complete(_ tp: TopicPartition, offset: Int64, generation: UInt64) {
        complete(tp, offsets: CollectionOfOne(offset), generation: generation)
    }

    /// Completes offsets of one partition at once (one lock for all of them).
    public func complete<Offsets: Sequence<Int64>>(_ tp: TopicPartition, offsets: Offsets, generation: UInt64) {
        state.withLock { s in
            guard var p = s[tp], p.generation == generation else { return }
            s[tp] = nil  // mutated out of the dictionary: no copy of its arrays
            for offset in offsets { p.complete(offset) }
            s[tp] = p
        }
    }

    /// Commit points that moved since they were last committed.
    public func pendingCommits() -> [TopicPartition: Int64] {
        state.withLock { s in
            var result: [TopicPartition: Int64] = [:]
            for (tp, p) in s { if let offset = p.commitPoint, offset != p.committed { result[tp] = offset } }
            return result
        }
    }

    /// Records that these commit points reached the broker.
    public func markCommitted(_ offsets: [TopicPartition: Int64]) {
        state.withLock { s in
            for (tp, offset) in offsets where s[tp] != nil { s[tp]!.committed = max(s[tp]!.committed ?? -1, offset) }
        }
    }

    /// Records tracked and not yet final, over all partitions.
    public var pendingCount: Int { state.withLock { s in s.values.reduce(0) { $0 + $1.pendingCount } } }

    public var assignedPartitions: [TopicPartition] { state.withLock { $0.keys.sorted() } }

    /// The assigned partitions with the generation of their assignment.
    public var assignedGenerations: [(TopicPartition, UInt64)] {
        state.withLock { $0.map { ($0.key, $0.value.generation) }.sorted { $0.0 < $1.0 } }
    }

    /// The partition's commit point as known now (for lag figures).
    public func commitPoint(_ tp: TopicPartition) -> Int64? { state.withLock { $0[tp]?.commitPoint } }
}

/// Pending offsets of one partition, in the order they were read (which is offset order).
struct PartitionProgress {
    let generation: UInt64
    /// Offsets read, oldest first, from `head` on; `done[i]` says whether `offsets[i]` is final.
    private var offsets: [Int64] = []
    private var done: [Bool] = []
    private var head = 0
    /// One past the highest offset read.
    private var next: Int64?
    var committed: Int64?

    init(generation: UInt64) { self.generation = generation }

    /// Returns false for an offset at or below one already read (a duplicate after a seek), which is not tracked.
    mutating func add(_ offset: Int64) -> Bool {
        if let next, offset < next { return false }
        offsets.append(offset)
        done.append(false)
        next = offset + 1
        return true
    }

    mutating func complete(_ offset: Int64) {
        // Completion in read order is the common case: the oldest pending offset.
        if head < offsets.count, offsets[head] == offset {
            done[head] = true
            advance()
            return
        }
        // Otherwise a binary search among the pending offsets, which are sorted.
        var lo = head
        var hi = offsets.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if offsets[mid] < offset { lo = mid + 1 } else { hi = mid }
        }
        guard lo < offsets.count, offsets[lo] == offset else { return }
        done[lo] = true
        advance()
    }

    private mutating func advance() {
        while head < offsets.count, done[head] { head += 1 }
        // Reclaim the finished prefix once it dominates the arrays.
        if head > 1024, head * 2 > offsets.count {
            offsets.removeFirst(head)
            done.removeFirst(head)
            head = 0
        }
    }

    /// The offset to commit: the oldest unfinished one, or one past everything read when all is final.
    var commitPoint: Int64? { head < offsets.count ? offsets[head] : next }

    var pendingCount: Int { offsets.count - head }
}
