import RelayCore
import RelayKafka

/// A run of consecutive records of one partition whose users are sent together: one message per destination.
///
/// Chunks are the unit of completion: a chunk's records become final together, once every destination's message of
/// the chunk is final. So the commit point of a partition is always the start of a chunk, and a replay from it
/// (after a crash or a rebalance) cuts the same chunks again, which give the same messages with the same ids.
public struct Chunk: Sendable {
    public let partition: TopicPartition
    public let generation: UInt64
    /// Offsets of the records in the chunk, ascending.
    public internal(set) var offsets: [Int64]
    /// The users per destination (indexed like the assembler's limits), in offset order.
    public internal(set) var users: [[RealtimeUser]]
    /// Bytes of each destination's users' entries in the body, commas between them included.
    var usersBytes: [Int]
    /// Kafka timestamp of the first record (ms).
    let firstTimestamp: Int64
    /// When the chunk was opened (monotonic clock, and wall clock in ms since the epoch).
    let openedAt: ContinuousClock.Instant
    let openedAtWallMs: Int64
    /// The shortest flush interval of the destinations with users in the chunk.
    var flushIntervalMs: Int

    public var userCount: Int { users.reduce(0) { $0 + $1.count } }

    /// When the flush timer closes the chunk: `flush` after the first record's Kafka timestamp plus a margin for
    /// the consumer's own delay (half the interval, at most 500 ms), but at least `flush` and at most twice `flush`
    /// after the chunk was opened here. The margin lets the records produced within the interval arrive, so that a
    /// replay, which sees them all at once, cuts the same chunk.
    var deadline: ContinuousClock.Instant {
        let flush = Int64(flushIntervalMs)
        let byTimestamp = firstTimestamp + flush + min(flush / 2, 500) - openedAtWallMs
        return openedAt + .milliseconds(min(max(byTimestamp, flush), 2 * flush))
    }
}

/// One record as the assembler sees it: its position, Kafka timestamp and the users it gives each destination.
public struct ChunkEntry: Sendable {
    public struct Target: Sendable {
        /// Index of the destination in the assembler's limits.
        public var destination: Int
        public var user: RealtimeUser
        public init(destination: Int, user: RealtimeUser) {
            self.destination = destination
            self.user = user
        }
    }

    public var offset: Int64
    public var kafkaTimestamp: Int64
    public var targets: [Target]

    public init(offset: Int64, kafkaTimestamp: Int64, targets: [Target]) {
        self.offset = offset
        self.kafkaTimestamp = kafkaTimestamp
        self.targets = targets
    }
}

/// Cuts each partition's records into chunks (see ``Chunk``), pure and deterministic given the records:
/// - a chunk opens with the first record that gives any destination a user (a record that gives none, while no
///   chunk is open, is a chunk of its own, final at once);
/// - it closes when any destination reaches its `max_users_per_message`, before a record whose Kafka timestamp
///   is `flush_interval_ms` or more after the chunk's first one, and before a record whose user would take a
///   destination's body past `max_message_bytes` (a user over the limit on its own is a chunk of its own);
/// - the flush timer (``closeDue(now:)``) also closes a chunk whose partition went quiet (see ``Chunk/deadline``).
///   Only this rule depends on timing; under load the other two decide.
public struct ChunkAssembler: Sendable {
    public struct Limits: Sendable {
        public var maxUsers: Int
        public var flushIntervalMs: Int
        /// Room in the body for the users' entries: `max_message_bytes` less the envelope.
        public var maxUsersBytes: Int
        public init(maxUsers: Int, flushIntervalMs: Int, maxUsersBytes: Int = .max) {
            self.maxUsers = max(1, maxUsers)
            self.flushIntervalMs = max(1, flushIntervalMs)
            self.maxUsersBytes = max(1, maxUsersBytes)
        }
    }

    public let limits: [Limits]
    private var open: [TopicPartition: Chunk] = [:]

    public init(limits: [Limits]) {
        self.limits = limits
    }

    public var openCount: Int { open.count }

    /// Adds one record; returns the chunks it closed, oldest first.
    public mutating func add(_ entry: ChunkEntry, partition: TopicPartition, generation: UInt64,
                             now: ContinuousClock.Instant, wallClockMs: Int64) -> [Chunk]
    {
        var closed: [Chunk] = []
        if let current = open[partition],
           current.generation != generation
            || entry.kafkaTimestamp >= current.firstTimestamp.saturatingAdd(Int64(current.flushIntervalMs))
            || wouldOverflowBody(current, entry)
        {
            closed.append(current)
            open[partition] = nil
        }
        var chunk: Chunk
        if let current = open.removeValue(forKey: partition) {
            chunk = current
        } else {
            chunk = Chunk(partition: partition, generation: generation, offsets: [],
                          users: Array(repeating: [], count: limits.count),
                          usersBytes: Array(repeating: 0, count: limits.count), firstTimestamp: entry.kafkaTimestamp,
                          openedAt: now, openedAtWallMs: wallClockMs, flushIntervalMs: Int.max)
            if entry.targets.isEmpty {
                chunk.offsets.append(entry.offset)
                closed.append(chunk)
                return closed
            }
        }
        chunk.offsets.append(entry.offset)
        var full = false
        for target in entry.targets {
            let d = target.destination
            chunk.usersBytes[d] += (chunk.users[d].isEmpty ? 0 : 1) + target.user.json.count
            chunk.users[d].append(target.user)
            let limit = limits[target.destination]
            chunk.flushIntervalMs = min(chunk.flushIntervalMs, limit.flushIntervalMs)
            if chunk.users[target.destination].count >= limit.maxUsers { full = true }
        }
        if full { closed.append(chunk) } else { open[partition] = chunk }
        return closed
    }

    /// Whether one of the entry's users would take its destination's body in `chunk` past the byte limit.
    private func wouldOverflowBody(_ chunk: Chunk, _ entry: ChunkEntry) -> Bool {
        entry.targets.contains { target in
            let d = target.destination
            return !chunk.users[d].isEmpty
                && chunk.usersBytes[d] + 1 + target.user.json.count > limits[d].maxUsersBytes
        }
    }

    /// Closes the chunks whose ``Chunk/deadline`` has passed.
    public mutating func closeDue(now: ContinuousClock.Instant) -> [Chunk] {
        let due = open.filter { _, chunk in now >= chunk.deadline }
        for key in due.keys { open[key] = nil }
        return due.values.sorted { $0.partition < $1.partition }
    }

    /// Closes every open chunk (shutdown).
    public mutating func closeAll() -> [Chunk] {
        let all = open.values.sorted { $0.partition < $1.partition }
        open.removeAll()
        return all
    }

    /// Forgets the open chunks of partitions that were revoked: their next owner reads them again.
    public mutating func drop(_ partitions: [TopicPartition]) {
        for tp in partitions { open[tp] = nil }
    }

    /// When the next chunk is due to close by time.
    public var nextDeadline: ContinuousClock.Instant? {
        open.values.map(\.deadline).min()
    }
}
