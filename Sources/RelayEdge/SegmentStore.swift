import Synchronization

/// Every user's current segments, held compactly for `/event` (SPEC §6).
///
/// Users are spread over 64 shards, each behind its own lock, so that readers (HTTP handlers) and the one writer
/// (the qualification reader) rarely meet. A shard is an open-addressing hash table (linear probing) keyed by the
/// 128-bit packing of numeric ids (``UserKey``), with parallel arrays of 16-byte keys and 16-byte slots; the
/// segment ids of all its users live in one shared `UInt32` arena, and the few partner ids that URL templates need
/// (`%dpid_<DPID>%`) in one byte arena. Ids that are not numeric go to a small per-shard dictionary.
///
/// A later event replaces the user's whole set. Replaced sets leave garbage in the arenas, which is compacted once
/// it exceeds half of an arena. Tables and arenas grow by a quarter at a time, so that the space held stays close to
/// the space used: about 40–60 bytes per user plus 4 bytes per segment membership.
public final class SegmentStore: Sendable {
    static let shardBits = 6
    static let shardCount = 1 << shardBits

    private let shards: [ShardBox]
    /// The DPIDs whose partner ids are kept, in the order of ``UserState/partnerIDs``.
    public let keptDPIDs: [String]

    public init(keptDPIDs: [String] = []) {
        self.keptDPIDs = keptDPIDs
        shards = (0..<Self.shardCount).map { _ in ShardBox() }
    }

    /// Replaces each user's state, in order (a later update of the same user wins).
    public func apply(_ updates: [UserUpdate]) {
        if updates.count == 1 {
            let update = updates[0]
            let key = UserKey(update.uuid)
            shards[Self.shardIndex(key)].state.withLock { $0.put(key, update.state) }
            return
        }
        var buckets = [[(UserKey, UserState)]](repeating: [], count: Self.shardCount)
        for update in updates {
            let key = UserKey(update.uuid)
            buckets[Self.shardIndex(key)].append((key, update.state))
        }
        for (index, bucket) in buckets.enumerated() where !bucket.isEmpty {
            shards[index].state.withLock { shard in
                for (key, state) in bucket { shard.put(key, state) }
            }
        }
    }

    /// The user's current state; nil for a user never seen.
    public func lookup(_ uuid: String) -> UserState? {
        let key = UserKey(uuid)
        return shards[Self.shardIndex(key)].state.withLock { $0.get(key) }
    }

    /// Users held.
    public var userCount: Int { shards.reduce(0) { total, box in total + box.state.withLock { $0.userCount } } }

    /// Bytes the store's tables and arenas hold (capacity, not just use).
    public var byteCount: Int { shards.reduce(0) { total, box in total + box.state.withLock { $0.byteCount } } }

    /// Calls `body` with each shard's users in turn, each shard under its lock.
    func forEachUser(_ body: (UserKey, UserState) -> Void) {
        for box in shards {
            box.state.withLock { shard in shard.forEach(body) }
        }
    }

    /// Puts a user read back from a snapshot.
    func putEncoded(_ key: UserKey, region: Int32, segments: ArraySlice<UInt32>, extraBlock: ArraySlice<UInt8>) {
        shards[Self.shardIndex(key)].state.withLock {
            $0.putEncoded(key, region: region, segments: segments, extraBlock: extraBlock)
        }
    }

    /// Appends shard `index`'s users (see `Shard.encode(into:)`) under its lock; returns how many.
    func encodeShard(_ index: Int, into out: inout [UInt8]) -> Int {
        shards[index].state.withLock { shard in
            shard.encode(into: &out)
            return shard.userCount
        }
    }

    static func shardIndex(_ key: UserKey) -> Int {
        Int(truncatingIfNeeded: hash(key) >> UInt64(64 - shardBits))
    }

    @inline(__always)
    static func hash(_ key: UserKey) -> UInt64 {
        switch key {
        case .numeric(let packed): mix(UInt64(truncatingIfNeeded: packed), UInt64(truncatingIfNeeded: packed >> 64))
        case .text(let text): mix(UInt64(bitPattern: Int64(text.hashValue)), 0x5151)
        }
    }

    /// A 64-bit finaliser (murmur3 fmix64) over both halves.
    @inline(__always)
    static func mix(_ low: UInt64, _ high: UInt64) -> UInt64 {
        var h = low ^ (high &* 0x9E37_79B9_7F4A_7C15)
        h ^= h >> 33
        h = h &* 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h = h &* 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return h
    }
}

/// One user's state as the edge keeps it.
public struct UserState: Sendable, Hashable {
    /// The region of the user's latest event.
    public var region: Int?
    /// The realized segments of the user's latest event, in event order.
    public var segments: [UInt32]
    /// Partner ids for ``SegmentStore/keptDPIDs``, in that order.
    public var partnerIDs: [String?]

    public init(region: Int?, segments: [UInt32], partnerIDs: [String?] = []) {
        self.region = region
        self.segments = segments
        self.partnerIDs = partnerIDs
    }
}

/// A user's new state from one event.
public struct UserUpdate: Sendable {
    public var uuid: String
    public var state: UserState

    public init(uuid: String, state: UserState) {
        self.uuid = uuid
        self.state = state
    }
}

private final class ShardBox: Sendable {
    let state = Mutex(Shard())
}

/// Where a user's data lives in the shard's arenas.
struct Slot {
    var segmentStart: UInt32
    var segmentCount: UInt32
    /// `Int32.min` = no region.
    var region: Int32
    /// Offset + 1 of the user's partner-id block in `extras`; 0 = none.
    var extra: UInt32

    static let noRegion = Int32.min
}

/// One shard: see ``SegmentStore``. Only touched under its lock.
struct Shard {
    private(set) var keys: [UInt128] = []
    private(set) var slots: [Slot] = []
    private(set) var numericCount = 0
    private var textUsers: [String: Slot] = [:]
    private var arena: [UInt32] = []
    private var arenaGarbage = 0
    private var extras: [UInt8] = []
    private var extrasGarbage = 0

    static let maxLoad = 0.8

    var userCount: Int { numericCount + textUsers.count }

    var byteCount: Int {
        keys.capacity * MemoryLayout<UInt128>.stride + slots.capacity * MemoryLayout<Slot>.stride
            + arena.capacity * 4 + extras.capacity
            + textUsers.capacity * (MemoryLayout<String>.stride + MemoryLayout<Slot>.stride + 1)
            + textUsers.keys.reduce(0) { $0 + ($1.utf8.count > 15 ? $1.utf8.count + 32 : 0) }
    }

    // MARK: reading

    func get(_ key: UserKey) -> UserState? {
        guard let slot = find(key) else { return nil }
        return state(of: slot)
    }

    private func find(_ key: UserKey) -> Slot? {
        switch key {
        case .text(let text):
            return textUsers[text]
        case .numeric(let packed):
            guard !keys.isEmpty else { return nil }
            var index = home(packed)
            while true {
                let candidate = keys[index]
                if candidate == packed { return slots[index] }
                if candidate == 0 { return nil }
                index += 1
                if index == keys.count { index = 0 }
            }
        }
    }

    private func state(of slot: Slot) -> UserState {
        let start = Int(slot.segmentStart)
        let segments = Array(arena[start..<start + Int(slot.segmentCount)])
        return UserState(region: slot.region == Slot.noRegion ? nil : Int(slot.region), segments: segments,
                         partnerIDs: partnerIDs(of: slot))
    }

    private func partnerIDs(of slot: Slot) -> [String?] {
        guard slot.extra > 0 else { return [] }
        var position = Int(slot.extra - 1)
        let count = Int(extras[position])
        position += 1
        var result: [String?] = []
        result.reserveCapacity(count)
        for _ in 0..<count {
            let length = Int(extras[position])
            position += 1
            if length == 0 {
                result.append(nil)
            } else {
                result.append(String(decoding: extras[position..<position + length], as: UTF8.self))
                position += length
            }
        }
        return result
    }

    private func extrasLength(of slot: Slot) -> Int { Self.blockLength(extras, slot.extra) }

    private static func blockLength(_ extras: [UInt8], _ extra: UInt32) -> Int {
        guard extra > 0 else { return 0 }
        var position = Int(extra - 1)
        let count = Int(extras[position])
        position += 1
        for _ in 0..<count { position += 1 + Int(extras[position]) }
        return position - Int(extra - 1)
    }

    func forEach(_ body: (UserKey, UserState) -> Void) {
        for (index, key) in keys.enumerated() where key != 0 { body(.numeric(key), state(of: slots[index])) }
        for (text, slot) in textUsers { body(.text(text), state(of: slot)) }
    }

    // MARK: writing

    mutating func put(_ key: UserKey, _ state: UserState) {
        let old = find(key)
        var slot = Slot(segmentStart: 0, segmentCount: UInt32(state.segments.count),
                        region: state.region.flatMap { Int32(exactly: $0) } ?? Slot.noRegion, extra: 0)
        // Segments: in place when the new set fits where the old one was, else at the end of the arena.
        if let old, state.segments.count <= Int(old.segmentCount) {
            slot.segmentStart = old.segmentStart
            let start = Int(old.segmentStart)
            for (offset, segment) in state.segments.enumerated() { arena[start + offset] = segment }
            arenaGarbage += Int(old.segmentCount) - state.segments.count
        } else {
            if let old { arenaGarbage += Int(old.segmentCount) }
            slot.segmentStart = UInt32(arena.count)
            Self.grow(&arena, by: state.segments.count)
            arena.append(contentsOf: state.segments)
        }
        // Partner ids: a fresh block each time (they rarely change size, and are rare in configurations).
        if let old { extrasGarbage += extrasLength(of: old) }
        if state.partnerIDs.contains(where: { $0 != nil }) {
            slot.extra = UInt32(extras.count + 1)
            var block: [UInt8] = [UInt8(truncatingIfNeeded: state.partnerIDs.count)]
            for id in state.partnerIDs.prefix(255) {
                let bytes = Array((id ?? "").utf8)
                if bytes.count > 255 {
                    block.append(0)  // longer than any real partner id: not kept
                } else {
                    block.append(UInt8(bytes.count))
                    block.append(contentsOf: bytes)
                }
            }
            Self.grow(&extras, by: block.count)
            extras.append(contentsOf: block)
        }
        store(key, slot)
        if arenaGarbage > 4_096 && arenaGarbage > arena.count / 2 { compactArena() }
        if extrasGarbage > 4_096 && extrasGarbage > extras.count / 2 { compactExtras() }
    }

    /// Decodes users written by ``encode(into:)`` and puts them.
    mutating func putEncoded(_ key: UserKey, region: Int32, segments: ArraySlice<UInt32>, extraBlock: ArraySlice<UInt8>) {
        var slot = Slot(segmentStart: UInt32(arena.count), segmentCount: UInt32(segments.count), region: region,
                        extra: 0)
        Self.grow(&arena, by: segments.count)
        arena.append(contentsOf: segments)
        if !extraBlock.isEmpty {
            slot.extra = UInt32(extras.count + 1)
            Self.grow(&extras, by: extraBlock.count)
            extras.append(contentsOf: extraBlock)
        }
        store(key, slot)
    }

    private mutating func store(_ key: UserKey, _ slot: Slot) {
        switch key {
        case .text(let text):
            textUsers[text] = slot
        case .numeric(let packed):
            if keys.isEmpty || Double(numericCount + 1) > Double(keys.count) * Self.maxLoad {
                resize(to: max(64, keys.count + keys.count / 4 + 1))
            }
            var index = home(packed)
            while true {
                let candidate = keys[index]
                if candidate == packed {
                    slots[index] = slot
                    return
                }
                if candidate == 0 {
                    keys[index] = packed
                    slots[index] = slot
                    numericCount += 1
                    return
                }
                index += 1
                if index == keys.count { index = 0 }
            }
        }
    }

    @inline(__always)
    private func home(_ packed: UInt128) -> Int {
        let hash = SegmentStore.mix(UInt64(truncatingIfNeeded: packed), UInt64(truncatingIfNeeded: packed >> 64))
        // Shards take the top bits; the home slot comes from a re-mixed hash (fast range reduction, any capacity).
        let remixed = (hash << UInt64(SegmentStore.shardBits)) | (hash >> UInt64(64 - SegmentStore.shardBits))
        return Int(truncatingIfNeeded: (remixed &* 0x9E37_79B9_7F4A_7C15).multipliedFullWidth(by: UInt64(keys.count)).high)
    }

    private mutating func resize(to capacity: Int) {
        let oldKeys = keys
        let oldSlots = slots
        keys = [UInt128](repeating: 0, count: capacity)
        slots = [Slot](repeating: Slot(segmentStart: 0, segmentCount: 0, region: 0, extra: 0), count: capacity)
        for (index, key) in oldKeys.enumerated() where key != 0 {
            var position = home(key)
            while keys[position] != 0 {
                position += 1
                if position == capacity { position = 0 }
            }
            keys[position] = key
            slots[position] = oldSlots[index]
        }
    }

    /// Grows an array's capacity by about a quarter when `extra` more elements would not fit (instead of doubling).
    private static func grow<Element>(_ array: inout [Element], by extra: Int) {
        let needed = array.count + extra
        guard needed > array.capacity else { return }
        array.reserveCapacity(max(needed, array.capacity + array.capacity / 4, 256))
    }

    private mutating func compactArena() {
        var fresh: [UInt32] = []
        fresh.reserveCapacity((arena.count - arenaGarbage) + (arena.count - arenaGarbage) / 8)
        func move(_ slot: inout Slot) {
            let start = Int(slot.segmentStart)
            slot.segmentStart = UInt32(fresh.count)
            fresh.append(contentsOf: arena[start..<start + Int(slot.segmentCount)])
        }
        for index in keys.indices where keys[index] != 0 { move(&slots[index]) }
        for text in Array(textUsers.keys) { move(&textUsers[text]!) }
        arena = fresh
        arenaGarbage = 0
    }

    private mutating func compactExtras() {
        var fresh: [UInt8] = []
        fresh.reserveCapacity(extras.count - extrasGarbage)
        let old = extras
        func move(_ slot: inout Slot) {
            guard slot.extra > 0 else { return }
            let start = Int(slot.extra - 1)
            let length = Self.blockLength(old, slot.extra)
            slot.extra = UInt32(fresh.count + 1)
            fresh.append(contentsOf: old[start..<start + length])
        }
        var slots = self.slots
        var textUsers = self.textUsers
        for index in keys.indices where keys[index] != 0 { move(&slots[index]) }
        for text in Array(textUsers.keys) { move(&textUsers[text]!) }
        self.slots = slots
        self.textUsers = textUsers
        extras = fresh
        extrasGarbage = 0
    }

    // MARK: snapshot encoding

    /// Appends every user as `kind(u8: 0 numeric, 1 text) key(16 bytes | u8 length + text) region(i32)
    /// count(u32) segments(u32 * count) extrasLength(u16) extras`, all little-endian.
    func encode(into out: inout [UInt8]) {
        func write(_ slot: Slot) {
            out.appendLE(UInt32(bitPattern: slot.region))
            out.appendLE(slot.segmentCount)
            let start = Int(slot.segmentStart)
            for segment in arena[start..<start + Int(slot.segmentCount)] { out.appendLE(segment) }
            let length = extrasLength(of: slot)
            out.appendLE(UInt16(length))
            if length > 0 {
                let position = Int(slot.extra - 1)
                out.append(contentsOf: extras[position..<position + length])
            }
        }
        for (index, key) in keys.enumerated() where key != 0 {
            out.append(0)
            out.appendLE(UInt64(truncatingIfNeeded: key))
            out.appendLE(UInt64(truncatingIfNeeded: key >> 64))
            write(slots[index])
        }
        for (text, slot) in textUsers {
            let bytes = Array(text.utf8)
            out.append(1)
            out.append(UInt8(bytes.count))
            out.append(contentsOf: bytes)
            write(slot)
        }
    }
}

extension Array where Element == UInt8 {
    @inline(__always)
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
