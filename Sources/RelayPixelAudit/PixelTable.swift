import RelayCore

/// The pixels of one partition: an open-addressing hash table (linear probing) from ``PixelKey`` to ``PixelEntry``,
/// which also keeps which pixels changed since the last changelog write.
///
/// Why not a `Dictionary`: each of its lookups seeds a SipHash `Hasher`, and with its resizing that was a sixth of
/// the audit's CPU. A pixel key is a hash of the id already, so one multiply folds it into a slot. The fold is
/// seeded per table from the system's random source, so that ids chosen to pile up in one run of slots cannot be
/// worked out in advance (a long run would make every lookup slow: a hang in all but name).
struct PixelTable: Sendable {
    private struct Slot: Sendable {
        var key: PixelKey
        var entry: PixelEntry
        var occupied: Bool
        /// Changed since `takeChanges` (its key is in `changed` already).
        var changed: Bool

        static let empty = Slot(key: PixelKey(hi: 0, lo: 0),
                                entry: PixelEntry(destination: 0, window: 0, status: .fired), occupied: false,
                                changed: false)
    }

    /// A power of two in size (or empty), at most seven eighths full (`maxCount`), so that probe runs stay short.
    private var slots: [Slot] = []
    private(set) var count = 0
    private let seed = (UInt64.random(in: .min ... .max), UInt64.random(in: .min ... .max))
    /// Keys changed or removed since `takeChanges`, each once while it stays in the table.
    private var changed: [PixelKey] = []

    private static func maxCount(_ capacity: Int) -> Int { capacity - capacity / 8 }

    private static func capacity(for count: Int) -> Int {
        var capacity = 16
        while maxCount(capacity) < count { capacity *= 2 }
        return capacity
    }

    init(minimumCapacity: Int = 0) {
        if minimumCapacity > 0 { slots = Array(repeating: .empty, count: Self.capacity(for: minimumCapacity)) }
    }

    /// Where a key is, or the empty slot where it would go.
    private enum Place {
        case found(Int)
        case vacant(Int)
    }

    @inline(__always)
    private func home(_ key: PixelKey) -> Int {
        let product = (key.hi ^ seed.0).multipliedFullWidth(by: key.lo ^ seed.1)
        return Int(truncatingIfNeeded: product.high ^ product.low) & (slots.count - 1)
    }

    /// Requires a table with at least one empty slot.
    @inline(__always)
    private func place(_ key: PixelKey) -> Place {
        let mask = slots.count - 1
        var index = home(key)
        while true {
            let slot = slots[index]
            if !slot.occupied { return .vacant(index) }
            if slot.key == key { return .found(index) }
            index = (index + 1) & mask
        }
    }

    subscript(key: PixelKey) -> PixelEntry? {
        get {
            guard !slots.isEmpty, case .found(let index) = place(key) else { return nil }
            return slots[index].entry
        }
        set { withEntry(key) { $0 = newValue } }
    }

    /// Runs `body` on the key's entry, a new one (`nil`) when it has none: the entry it leaves is stored (marked
    /// changed when it differs), and none when it leaves `nil`. One lookup however it goes.
    mutating func withEntry<R>(_ key: PixelKey, _ body: (inout PixelEntry?) -> R) -> R {
        if count + 1 > Self.maxCount(slots.count) { grow() }
        switch place(key) {
        case .found(let index):
            var entry: PixelEntry? = slots[index].entry
            let result = body(&entry)
            if let entry {
                if entry != slots[index].entry {
                    slots[index].entry = entry
                    markChanged(index)
                }
            } else {
                remove(at: index)
            }
            return result
        case .vacant(let index):
            var entry: PixelEntry?
            let result = body(&entry)
            if let entry {
                slots[index] = Slot(key: key, entry: entry, occupied: true, changed: false)
                count += 1
                markChanged(index)
            }
            return result
        }
    }

    private mutating func markChanged(_ index: Int) {
        guard !slots[index].changed else { return }
        slots[index].changed = true
        changed.append(slots[index].key)
    }

    /// Empties the slot and moves later members of its run back (backward-shift deletion: no tombstones, so runs
    /// never lengthen with churn).
    private mutating func remove(at index: Int) {
        if !slots[index].changed { changed.append(slots[index].key) }
        let mask = slots.count - 1
        var hole = index
        var next = (index + 1) & mask
        while slots[next].occupied {
            let home = home(slots[next].key)
            // The member may fill the hole only if the hole lies on its way from home (cyclically).
            if (next - home) & mask >= (next - hole) & mask {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = .empty
        count -= 1
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: .empty, count: max(16, old.count * 2))
        for slot in old where slot.occupied {
            guard case .vacant(let index) = place(slot.key) else { continue }
            slots[index] = slot
        }
    }

    /// Calls `body` on every entry; the entry it leaves is stored (marked changed when it differs).
    mutating func updateAll(_ body: (PixelKey, inout PixelEntry) -> Void) {
        for index in slots.indices where slots[index].occupied {
            var entry = slots[index].entry
            body(slots[index].key, &entry)
            if entry != slots[index].entry {
                slots[index].entry = entry
                markChanged(index)
            }
        }
    }

    /// Removes every entry for which `shouldRemove` is true (an eviction: many at once), copying the rest into fresh
    /// slots in one pass rather than shifting runs back key by key.
    mutating func removeAll(where shouldRemove: (PixelEntry) -> Bool) {
        guard slots.contains(where: { $0.occupied && shouldRemove($0.entry) }) else { return }
        var kept = PixelTable(minimumCapacity: count)
        kept.changed = changed
        for slot in slots where slot.occupied {
            if shouldRemove(slot.entry) {
                if !slot.changed { kept.changed.append(slot.key) }
                continue
            }
            guard case .vacant(let index) = kept.place(slot.key) else { continue }
            kept.slots[index] = slot
            kept.count += 1
        }
        self = kept
    }

    /// The keys changed since the last call, each with its entry now (nil where it was removed).
    mutating func takeChanges() -> [(PixelKey, PixelEntry?)] {
        var result: [(PixelKey, PixelEntry?)] = []
        result.reserveCapacity(changed.count)
        for key in changed {
            guard !slots.isEmpty, case .found(let index) = place(key) else {
                result.append((key, nil))
                continue
            }
            // A key removed and added again is listed twice: its entry goes once.
            guard slots[index].changed else { continue }
            slots[index].changed = false
            result.append((key, slots[index].entry))
        }
        changed.removeAll(keepingCapacity: true)
        return result
    }

    /// Lists the keys again (their write failed): the next `takeChanges` gives them with their entries then.
    mutating func requeue(_ keys: some Sequence<PixelKey>) {
        for key in keys {
            if !slots.isEmpty, case .found(let index) = place(key) { markChanged(index) }
            else { changed.append(key) }
        }
    }

    /// Forgets what changed (a restored table: its entries are on the changelog already).
    mutating func forgetChanges() {
        for key in changed {
            if !slots.isEmpty, case .found(let index) = place(key) { slots[index].changed = false }
        }
        changed.removeAll()
    }
}
