import Foundation
import RelayCore
import RelayEncoding
import RelayKafka

/// relay-batch's state in Kafka (SPEC §1, §5): the changelog `<group>.state`, compacted, partition `p` holding input
/// partition `p`'s users of every batch destination and how far its cuts have gone.
///
/// Two kinds of record, keyed so that compaction keeps exactly what a new owner needs:
/// - `u/<destination>/<uuid>`: one user of one destination: the master-DPID id, the realized mapped aliases now
///   (`current`) and at the previous cut (`atCut`), by name (a changed configuration still restores), and the cut
///   that was the destination's last when the record was written. Written whenever the user's state changes; a
///   tombstone once a cut leaves the user with nothing.
/// - `head`: the input offset the partition's state covers (`nextOffset`: every record below it is applied) and, per
///   destination, its last cut and the open cut the users changed since belong to (a new owner that replays the
///   record which closes that cut must make it, not fold its users into the next one). Written after every write of
///   user records, and after each cut.
///
/// A cut does not rewrite its users: a user record written before the destination's last cut (per the head) had, at
/// that cut, the set it still has, so restore takes `atCut = current` for it. That keeps a cut's cost in the
/// changelog to its departed users, whatever the partition's size.
///
/// Input offsets are committed once the records they changed are acknowledged (``BatchEngine``). After a crash, a
/// new owner restores the state (which may already hold records past the committed offset) and replays from the
/// commit: applying an event sets the user's state to what that event says, so re-applying records the state
/// already holds ends in the same state, and no cut is ever between the commit and the state's end (the state is
/// written before each cut).
enum BatchChangelog {
    static func topic(group: String) -> String { InternalTopics.batchState(group: group) }

    static let head: [UInt8] = Array("head".utf8)
    static let version: UInt8 = 1
    /// The id length that says "no id for the master DPID", and the one that says "the id is the uuid" (DPID 0).
    static let noID = UInt16.max
    static let idIsUUID = UInt16.max - 1

    static func userKey(destination: Int, uuid: ArraySlice<UInt8>) -> [UInt8] {
        userKey(prefix: userKeyPrefix(destination: destination), uuid: uuid)
    }

    /// `u/<destination>/`, made once per write rather than once per user.
    static func userKeyPrefix(destination: Int) -> [UInt8] { Array("u/\(destination)/".utf8) }

    static func userKey(prefix: [UInt8], uuid: ArraySlice<UInt8>) -> [UInt8] {
        var key: [UInt8] = []
        key.reserveCapacity(prefix.count + uuid.count)
        key.append(contentsOf: prefix)
        key.append(contentsOf: uuid)
        return key
    }

    /// One user's record, from the destination's table.
    static func userValue(_ entry: UserTable.Entry, table: UserTable, pool: AliasSetPool, catalog: AliasCatalog,
                          writtenUnder lastCut: Int64?, idIsUUID: Bool) -> [UInt8]
    {
        var w = BinaryWriter(capacity: 64)
        w.put(version)
        w.put(lastCut ?? .min)
        if idIsUUID {
            w.put(Self.idIsUUID)
        } else if let id = table.idBytes(entry) {
            w.put(UInt16(id.count))
            w.append(raw: id)
        } else {
            w.put(noID)
        }
        putSet(pool[entry.current], catalog: catalog, into: &w)
        putSet(pool[entry.atCut], catalog: catalog, into: &w)
        return w.bytes
    }

    private static func putSet(_ set: [UInt16], catalog: AliasCatalog, into w: inout BinaryWriter) {
        w.put(UInt16(set.count))
        for alias in set {
            let name = catalog.aliasBytes[Int(alias)]
            w.put(UInt16(name.count))
            w.append(raw: name)
        }
    }

    struct Head: Sendable, Equatable {
        struct Cuts: Sendable, Equatable {
            var last: Int64?
            var open: Int64?
        }

        var nextOffset: Int64
        /// Per destination id, its last and open cuts.
        var cuts: [Int: Cuts]
    }

    /// `Int64.min` stands for "none" (no cut time is that far back: record times are checked on input).
    static func headValue(_ head: Head) -> [UInt8] {
        var w = BinaryWriter(capacity: 16 + head.cuts.count * 24)
        w.put(version)
        w.put(head.nextOffset)
        w.put(UInt32(head.cuts.count))
        for (destination, cuts) in head.cuts.sorted(by: { $0.key < $1.key }) {
            w.put(Int64(destination))
            w.put(cuts.last ?? .min)
            w.put(cuts.open ?? .min)
        }
        return w.bytes
    }

    static func decodeHead(_ value: ArraySlice<UInt8>) throws(MalformedInput) -> Head {
        var r = BinaryReader(value, what: "batch state head")
        guard try r.read(UInt8.self) == version else { throw MalformedInput("batch state head: unknown version") }
        let next = try r.read(Int64.self)
        var cuts: [Int: Head.Cuts] = [:]
        for _ in 0..<(try r.readCount(UInt32.self, elementSize: 24)) {
            let destination = try r.read(Int64.self)
            let last = try r.read(Int64.self)
            let open = try r.read(Int64.self)
            guard let id = Int(exactly: destination) else { throw MalformedInput("batch state head: bad destination") }
            cuts[id] = Head.Cuts(last: last == .min ? nil : last, open: open == .min ? nil : open)
        }
        guard r.isAtEnd else { throw MalformedInput("batch state head: trailing bytes") }
        return Head(nextOffset: next, cuts: cuts)
    }

    /// Rebuilds a partition's state from its changelog, record by record in offset order.
    struct Restore {
        let plans: [BatchDestinationPlan]
        private var index: [Int: Int] = [:]
        private(set) var dests: [DestinationPartitionState]
        /// Per destination, per entry: the last cut when its latest record was written.
        private var writtenUnder: [[Int64]]
        /// Per destination: encoded alias sets already interned (users share a handful of sets).
        private var setCache: [[ArraySlice<UInt8>: Int32]]
        private(set) var head: Head?
        private(set) var records = 0
        /// Records that do not decode, with the reason (dead-lettered by the caller, never applied).
        private(set) var malformed: [(KafkaRecord, String)] = []

        init(plans: [BatchDestinationPlan]) {
            self.plans = plans
            for (i, plan) in plans.enumerated() { index[plan.id] = i }
            dests = Array(repeating: DestinationPartitionState(), count: plans.count)
            writtenUnder = Array(repeating: [], count: plans.count)
            setCache = Array(repeating: [:], count: plans.count)
        }

        var isEmpty: Bool { records == 0 }

        mutating func take(_ record: KafkaRecord) {
            records += 1
            do throws(MalformedInput) {
                try apply(key: record.key ?? [], value: record.value)
            } catch {
                malformed.append((record, error.reason))
            }
        }

        private mutating func apply(key: ArraySlice<UInt8>, value: ArraySlice<UInt8>) throws(MalformedInput) {
            if key.elementsEqual(BatchChangelog.head) {
                head = try decodeHead(value)
                return
            }
            // u/<destination>/<uuid>
            guard key.count > 4, key.first == UInt8(ascii: "u"), key[key.startIndex + 1] == UInt8(ascii: "/"),
                  let slash = key[(key.startIndex + 2)...].firstIndex(of: UInt8(ascii: "/"))
            else { throw MalformedInput("batch state: unknown key") }
            let digits = key[(key.startIndex + 2)..<slash]
            guard digits.count <= 18, !digits.isEmpty, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                throw MalformedInput("batch state: bad destination in key")
            }
            let destination = digits.reduce(0) { $0 * 10 + Int($1 - 48) }
            let uuid = key[(slash + 1)...]
            guard !uuid.isEmpty, uuid.count <= QualificationDecoder.maxUUIDLength else {
                throw MalformedInput("batch state: bad uuid in key")
            }
            // A destination no longer configured: its users are not needed.
            guard let d = index[destination] else { return }
            if value.isEmpty {  // a tombstone: the user left
                let entry = dests[d].table.put(uuid: uuid, id: nil, current: 0, atCut: 0)
                note(d, entry, writtenUnder: .min)
                return
            }
            var r = BinaryReader(value, what: "batch state user")
            guard try r.read(UInt8.self) == version else { throw MalformedInput("batch state user: unknown version") }
            let lastCut = try r.read(Int64.self)
            let idLength = try r.read(UInt16.self)
            let id: ArraySlice<UInt8>? = switch idLength {
            case noID: nil
            case BatchChangelog.idIsUUID: uuid
            default: try r.take(Int(idLength))
            }
            let current = try readSet(&r, d)
            let atCut = try readSet(&r, d)
            guard r.isAtEnd else { throw MalformedInput("batch state user: trailing bytes") }
            let entry = dests[d].table.put(uuid: uuid, id: id, current: current, atCut: atCut)
            note(d, entry, writtenUnder: lastCut)
        }

        private mutating func note(_ d: Int, _ entry: Int, writtenUnder cut: Int64) {
            if entry == writtenUnder[d].count { writtenUnder[d].append(cut) } else { writtenUnder[d][entry] = cut }
        }

        private mutating func readSet(_ r: inout BinaryReader, _ d: Int) throws(MalformedInput) -> Int32 {
            let start = r.position
            let count = try r.readCount(UInt16.self, elementSize: 2)
            for _ in 0..<count { _ = try r.take(Int(try r.read(UInt16.self))) }
            let encoded = r.bytes[(r.bytes.startIndex + start)..<(r.bytes.startIndex + r.position)]
            if let known = setCache[d][encoded] { return known }
            // Aliases by name; one the configuration no longer maps is dropped.
            var inner = BinaryReader(encoded, what: r.what)
            var set: [UInt16] = []
            for _ in 0..<(try inner.readCount(UInt16.self, elementSize: 2)) {
                let name = try inner.take(Int(try inner.read(UInt16.self)))
                if let number = plans[d].catalog.number(of: String(decoding: name, as: UTF8.self)) {
                    set.append(number)
                }
            }
            let number = dests[d].pool.intern(Array(Set(set)).sorted())
            setCache[d][Array(encoded)[...]] = number
            return number
        }

        /// The restored state of every destination: each destination's last and open cuts from the last head, and
        /// each user's set at the last cut (see ``BatchChangelog``); users with nothing are dropped.
        mutating func finish() -> [DestinationPartitionState] {
            for d in dests.indices {
                let cuts = head?.cuts[plans[d].id]
                let last = cuts?.last
                dests[d].lastCut = last
                dests[d].openCut = cuts?.open
                let cut = last ?? .min
                for entry in writtenUnder[d].indices where writtenUnder[d][entry] < cut {
                    dests[d].table.setAtCut(entry, dests[d].table[entry].current)
                }
                dests[d].table.compact()
            }
            return dests
        }

        /// Every user key the changelog holds (to delete them when the state is rebuilt from the input).
        func userKeys() -> [[UInt8]] {
            var keys: [[UInt8]] = []
            for d in dests.indices {
                let table = dests[d].table
                for i in 0..<table.entries.count {
                    keys.append(userKey(destination: plans[d].id, uuid: table.uuidBytes(table[i])))
                }
            }
            return keys
        }
    }
}
