import Foundation
import RelayEncoding

/// A destination's user state on one partition right after a cut, tagged with the offset it covers
/// (`nextOffset`: every record below it is in the state) and the cut time.
///
/// Why snapshots in the state directory: full mode needs every user's current set and iter mode needs each user's
/// set at the previous cut (to list removals), and a new owner of a partition must rebuild both without reading the
/// topic's whole history. After each cut is delivered, and before its offsets may be committed, the cut's owner
/// writes the table to `<state>/snapshots/<destination>/p<partition>/<nextOffset>.snap` (temporary name, fsync,
/// rename). A new owner resumes from the committed offset F with the snapshot that matches it (see
/// ``SnapshotStore/choose(destination:partition:firstOffset:)``). The last few snapshots are kept so that a crash
/// between writing a snapshot and committing (the commit still points at the previous cut) finds the older one.
/// Several processes (or hosts) share the state directory: a shared volume in a multi-host deployment.
///
/// The format is compact binary: aliases by name (so a changed configuration still loads), the interned sets, then
/// per user the uuid, the master-DPID id (if any) and a set number. No user appears twice.
struct Snapshot: Sendable {
    var nextOffset: Int64
    var lastCut: Int64?
    var table: UserTable
    var pool: AliasSetPool

    static let magic: [UInt8] = Array("RBS1".utf8)

    func encode(catalog: AliasCatalog) -> [UInt8] {
        var out = BinaryWriter(capacity: table.arena.count + table.count * 16 + 64)
        out.append(raw: Self.magic)
        out.put(nextOffset)
        out.put(lastCut ?? .min)
        out.put(UInt32(catalog.aliases.count))
        for alias in catalog.aliasBytes {
            out.put(UInt16(alias.count))
            out.append(raw: alias)
        }
        out.put(UInt32(pool.sets.count))
        for set in pool.sets {
            out.put(UInt16(set.count))
            for n in set { out.put(n) }
        }
        out.put(UInt32(table.count))
        for i in 0..<table.entries.count {
            let e = table[i]
            guard e.current != 0 || e.atCut != 0 else { continue }
            out.put(e.keyLength)
            out.append(raw: table.uuidBytes(e))
            if let id = table.idBytes(e) {
                out.put(UInt16(id.count))
                out.append(raw: id)
            } else {
                out.put(UInt16.max)
            }
            out.put(e.atCut)
        }
        return out.bytes
    }

    static func decode(_ bytes: [UInt8], catalog: AliasCatalog) throws(MalformedInput) -> Snapshot {
        var reader = BinaryReader(bytes, what: "batch snapshot")
        guard try reader.take(4) == magic[...] else { throw MalformedInput("not a batch snapshot") }
        let nextOffset = try reader.read(Int64.self)
        let lastCutRaw = try reader.read(Int64.self)
        var aliasMap: [UInt16?] = []
        for _ in 0..<(try reader.read(UInt32.self)) {
            let n = Int(try reader.read(UInt16.self))
            let name = String(decoding: try reader.take(n), as: UTF8.self)
            aliasMap.append(catalog.number(of: name))
        }
        var pool = AliasSetPool()
        var setMap: [Int32] = []
        for _ in 0..<(try reader.read(UInt32.self)) {
            let n = Int(try reader.read(UInt16.self))
            var set: [UInt16] = []
            for _ in 0..<n {
                let old = Int(try reader.read(UInt16.self))
                if old < aliasMap.count, let mapped = aliasMap[old] { set.append(mapped) }
            }
            setMap.append(pool.intern(Array(Set(set)).sorted()))
        }
        var table = UserTable()
        for _ in 0..<(try reader.read(UInt32.self)) {
            let uuid = try reader.take(Int(try reader.read(UInt16.self)))
            let idLength = try reader.read(UInt16.self)
            let id = idLength == .max ? nil : try reader.take(Int(idLength))
            let set = Int(try reader.read(Int32.self))
            guard set >= 0, set < setMap.count else { throw MalformedInput("batch snapshot: unknown alias set \(set)") }
            let mapped = setMap[set]
            table.restore(uuid: uuid, id: id, current: mapped, atCut: mapped)
        }
        return Snapshot(nextOffset: nextOffset, lastCut: lastCutRaw == .min ? nil : lastCutRaw, table: table,
                        pool: pool)
    }
}

/// The snapshots of every destination and partition under `<state>/snapshots`.
struct SnapshotStore: Sendable {
    let directory: URL
    static let kept = 4

    func folder(destination: Int, partition: Int32) -> URL {
        directory.appendingPathComponent("\(destination)/p\(partition)")
    }

    func offsets(destination: Int, partition: Int32) -> [Int64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder(destination: destination,
                                                                               partition: partition).path)) ?? []
        return names.compactMap { $0.hasSuffix(".snap") ? Int64($0.dropLast(5)) : nil }.sorted()
    }

    /// Which snapshot a new owner starts from, given the first offset it reads (nil: nothing to read, caught up).
    ///
    /// - Nothing to read: the latest snapshot.
    /// - `firstOffset` is a commit point this system made (some destination's snapshot on the partition ends there):
    ///   each destination takes its earliest snapshot at or after it — a destination that cut later than the commit
    ///   point (the commit waits for the slowest destination) skips the records its delivered cut already holds.
    /// - Otherwise (an operator replay to the earliest offset or a time): the latest snapshot at or before it, none
    ///   for a replay from the beginning, so that the replay rebuilds the same cuts.
    func choose(destination: Int, partition: Int32, firstOffset: Int64?, allDestinations: [Int]) -> Int64? {
        let mine = offsets(destination: destination, partition: partition)
        guard let first = firstOffset else { return mine.last }
        let exact = allDestinations.contains { offsets(destination: $0, partition: partition).contains(first) }
        if exact, let after = mine.first(where: { $0 >= first }) { return after }
        return mine.last(where: { $0 <= first })
    }

    func load(destination: Int, partition: Int32, offset: Int64, catalog: AliasCatalog) throws -> Snapshot {
        let url = folder(destination: destination, partition: partition).appendingPathComponent("\(offset).snap")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw BatchError("cannot read \(url.path)")
        }
        return try Snapshot.decode(Array(data), catalog: catalog)
    }

    func save(_ bytes: [UInt8], destination: Int, partition: Int32, offset: Int64) throws {
        let folder = folder(destination: destination, partition: partition)
        try AtomicFile.write(bytes, to: folder.appendingPathComponent("\(offset).snap"))
        let all = offsets(destination: destination, partition: partition)
        if all.count > Self.kept {
            for old in all.prefix(all.count - Self.kept) {
                unlink(folder.appendingPathComponent("\(old).snap").path)
            }
        }
    }
}
