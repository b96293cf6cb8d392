import Foundation

/// The users of one destination on one partition, memory-light: ids live in one byte arena, each user is a 20-byte
/// entry, and an open-addressing index of 32-bit slots finds a user by uuid. Only users that hold (or held at the
/// previous cut) a mapped segment are stored; users whose sets are both empty are dropped when the table is compacted
/// after a cut.
///
/// About 20 (entry) + 8 (index at ≤ 50 % load) + the uuid and partner-id bytes per user: ~100 bytes for a 38-digit
/// uuid and a 36-character partner id.
struct UserTable: Sendable {
    struct Entry: Sendable {
        var keyOffset: UInt32
        var idOffset: UInt32
        var keyLength: UInt16
        /// `UInt16.max`: the user has no id for the destination's master DPID.
        var idLength: UInt16
        /// The user's realized mapped aliases after their latest event (an ``AliasSetPool`` number).
        var current: Int32
        /// The same at the previous cut.
        var atCut: Int32
        /// Changed since the partition's last changelog write (and listed in `changed`).
        var unwritten = false

        var hasID: Bool { idLength != .max }
    }

    private(set) var arena: [UInt8] = []
    private(set) var entries: [Entry] = []
    /// `entry index + 1`, 0 for a free slot; the count is a power of two.
    private var slots: [Int32] = Array(repeating: 0, count: 1024)
    /// Entries with both sets empty, reclaimed by ``compact()``.
    private(set) var deadCount = 0
    /// Entries changed since the last ``takeChanged()``, each once.
    private var changed: [Int32] = []

    init() {}

    var count: Int { entries.count - deadCount }

    /// Bytes held (capacity, not only used), for the state-size metric and the memory budget.
    var byteSize: Int {
        arena.capacity + entries.capacity * MemoryLayout<Entry>.stride + slots.capacity * 4
    }

    @inline(__always)
    private static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h ^ (h >> 29)
    }

    private func find(_ key: UnsafeBufferPointer<UInt8>) -> (slot: Int, entry: Int?) {
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: Self.hash(key)) & mask
        return arena.withUnsafeBufferPointer { arena in
            while true {
                let value = slots[slot]
                if value == 0 { return (slot, nil) }
                let e = entries[Int(value) - 1]
                if Int(e.keyLength) == key.count,
                    memcmp(arena.baseAddress! + Int(e.keyOffset), key.baseAddress!, key.count) == 0
                {
                    return (slot, Int(value) - 1)
                }
                slot = (slot + 1) & mask
            }
        }
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt32 {
        let offset = UInt32(arena.count)
        arena.append(contentsOf: bytes)
        return offset
    }

    /// The user's set after an event: `current` becomes `set`; `id` (the master-DPID id, nil when the event has
    /// none) replaces the stored one when present. Users not stored yet are added only when `set` is not empty.
    mutating func update(uuid: String, id: String?, idIsUUID: Bool, set: Int32) {
        var uuid = uuid
        uuid.withUTF8 { key in
            let (slot, found) = find(key)
            if let index = found {
                if entries[index].current != set { markChanged(index) }
                entries[index].current = set
                if !idIsUUID, var id {
                    id.withUTF8 { idBytes in
                        let e = entries[index]
                        let same = e.hasID && Int(e.idLength) == idBytes.count
                            && arena.withUnsafeBufferPointer {
                                memcmp($0.baseAddress! + Int(e.idOffset), idBytes.baseAddress!, idBytes.count) == 0
                            }
                        if !same {
                            entries[index].idOffset = append(idBytes)
                            entries[index].idLength = UInt16(min(idBytes.count, Int(UInt16.max - 2)))
                            markChanged(index)
                        }
                    }
                }
                return
            }
            guard set != 0 else { return }
            let keyOffset = append(key)
            var entry = Entry(keyOffset: keyOffset, idOffset: keyOffset, keyLength: UInt16(key.count),
                              idLength: UInt16(key.count), current: set, atCut: 0)
            if !idIsUUID {
                if var id {
                    id.withUTF8 { idBytes in
                        entry.idOffset = append(idBytes)
                        entry.idLength = UInt16(min(idBytes.count, Int(UInt16.max - 2)))
                    }
                } else {
                    entry.idLength = .max
                }
            }
            entries.append(entry)
            slots[slot] = Int32(entries.count)
            markChanged(entries.count - 1)
            if entries.count * 2 > slots.count { rehash(slots.count * 2) }
        }
    }

    private mutating func markChanged(_ index: Int) {
        guard !entries[index].unwritten else { return }
        entries[index].unwritten = true
        changed.append(Int32(index))
    }

    /// The entries changed since the last call (to write to the changelog), each once.
    mutating func takeChanged() -> [Int32] {
        let taken = changed
        changed.removeAll(keepingCapacity: true)
        for index in taken { entries[Int(index)].unwritten = false }
        return taken
    }

    var hasChanges: Bool { !changed.isEmpty }

    /// Sets a user read from the changelog, replacing what an earlier record of the same user said; returns the
    /// entry's index. Both sets empty (a tombstone) leaves a dead entry that ``compact()`` reclaims.
    @discardableResult
    mutating func put(uuid: ArraySlice<UInt8>, id: ArraySlice<UInt8>?, current: Int32, atCut: Int32) -> Int {
        let found = uuid.withUnsafeBufferPointer { find($0) }
        guard let index = found.entry else {
            restore(uuid: uuid, id: id, current: current, atCut: atCut)
            return entries.count - 1
        }
        entries[index].current = current
        entries[index].atCut = atCut
        if let id {
            entries[index].idOffset = UInt32(arena.count)
            entries[index].idLength = UInt16(min(id.count, Int(UInt16.max - 2)))
            arena.append(contentsOf: id.prefix(Int(UInt16.max - 2)))
        } else {
            entries[index].idLength = .max
        }
        return index
    }

    /// Replaces an entry's set at the previous cut (restore: a user written before the last cut had, at that cut,
    /// the set it still has).
    mutating func setAtCut(_ index: Int, _ set: Int32) { entries[index].atCut = set }

    /// Adds a user read from the changelog (no lookup: the caller knows the uuid is not there).
    mutating func restore(uuid: ArraySlice<UInt8>, id: ArraySlice<UInt8>?, current: Int32, atCut: Int32) {
        let keyOffset = UInt32(arena.count)
        arena.append(contentsOf: uuid)
        var entry = Entry(keyOffset: keyOffset, idOffset: keyOffset, keyLength: UInt16(uuid.count),
                          idLength: .max, current: current, atCut: atCut)
        if let id {
            entry.idOffset = UInt32(arena.count)
            entry.idLength = UInt16(id.count)
            arena.append(contentsOf: id)
        }
        entries.append(entry)
        if entries.count * 2 > slots.count {
            rehash(slots.count * 2)
        } else {
            insertSlot(entries.count - 1)
        }
    }

    private mutating func insertSlot(_ index: Int) {
        let e = entries[index]
        let mask = slots.count - 1
        var slot = arena.withUnsafeBufferPointer { arena in
            Int(truncatingIfNeeded: Self.hash(UnsafeBufferPointer(rebasing: arena[Int(e.keyOffset)..<Int(e.keyOffset) + Int(e.keyLength)])))
        } & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(index + 1)
    }

    private mutating func rehash(_ size: Int) {
        slots = Array(repeating: 0, count: size)
        for index in entries.indices { insertSlot(index) }
    }

    subscript(index: Int) -> Entry { entries[index] }

    func uuidBytes(_ e: Entry) -> ArraySlice<UInt8> { arena[Int(e.keyOffset)..<Int(e.keyOffset) + Int(e.keyLength)] }
    func idBytes(_ e: Entry) -> ArraySlice<UInt8>? {
        e.hasID ? arena[Int(e.idOffset)..<Int(e.idOffset) + Int(e.idLength)] : nil
    }

    /// Entry indices sorted by partner id, then uuid (unique): the order of lines in a cut's files.
    func sortedByID(_ indices: [Int32]) -> [Int32] {
        arena.withUnsafeBufferPointer { arena in
            let base = arena.baseAddress!
            func less(_ a: Int32, _ b: Int32) -> Bool {
                let x = entries[Int(a)], y = entries[Int(b)]
                let n = min(Int(x.idLength), Int(y.idLength))
                let c = memcmp(base + Int(x.idOffset), base + Int(y.idOffset), n)
                if c != 0 { return c < 0 }
                if x.idLength != y.idLength { return x.idLength < y.idLength }
                let m = min(Int(x.keyLength), Int(y.keyLength))
                let d = memcmp(base + Int(x.keyOffset), base + Int(y.keyOffset), m)
                if d != 0 { return d < 0 }
                return x.keyLength < y.keyLength
            }
            return indices.sorted(by: less)
        }
    }

    /// After a cut: every user's set at the cut is their current set. Returns the uuids of the users this leaves
    /// with nothing (their changelog records can go); those are counted dead and reclaimed once they are a quarter
    /// of the table. Call it with nothing unwritten.
    mutating func commitCut() -> [ArraySlice<UInt8>] {
        var dead = 0
        var departed: [ArraySlice<UInt8>] = []
        for i in entries.indices {
            if entries[i].current == 0 {
                dead += 1
                if entries[i].atCut != 0 { departed.append(uuidBytes(entries[i])) }
            }
            entries[i].atCut = entries[i].current
        }
        deadCount = dead
        if dead > 0, dead * 4 >= entries.count { compact() }
        return departed
    }

    /// Rebuilds the arena and index without the users whose sets are both empty.
    mutating func compact() {
        var fresh = UserTable()
        fresh.arena.reserveCapacity(arena.count)
        fresh.entries.reserveCapacity(entries.count - deadCount)
        for e in entries where e.current != 0 || e.atCut != 0 {
            fresh.restore(uuid: uuidBytes(e), id: idBytes(e), current: e.current, atCut: e.atCut)
        }
        precondition(changed.isEmpty, "compacting a table with unwritten changes")
        self = fresh
    }
}

