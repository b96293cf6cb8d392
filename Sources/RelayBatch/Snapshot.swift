import Foundation

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
        var out: [UInt8] = []
        out.reserveCapacity(table.arena.count + table.count * 16 + 64)
        out += Self.magic
        put64(&out, nextOffset)
        put64(&out, lastCut ?? .min)
        put32(&out, UInt32(catalog.aliases.count))
        for alias in catalog.aliasBytes {
            put16(&out, UInt16(alias.count))
            out += alias
        }
        put32(&out, UInt32(pool.sets.count))
        for set in pool.sets {
            put16(&out, UInt16(set.count))
            for n in set { put16(&out, n) }
        }
        put32(&out, UInt32(table.count))
        for i in 0..<table.entries.count {
            let e = table[i]
            guard e.current != 0 || e.atCut != 0 else { continue }
            put16(&out, e.keyLength)
            out += table.uuidBytes(e)
            if let id = table.idBytes(e) {
                put16(&out, UInt16(id.count))
                out += id
            } else {
                put16(&out, .max)
            }
            put32(&out, UInt32(bitPattern: e.atCut))
        }
        return out
    }

    static func decode(_ bytes: [UInt8], catalog: AliasCatalog) throws -> Snapshot {
        var reader = ByteReader(bytes: bytes)
        guard try reader.take(4) == magic[...] else { throw BatchError("not a batch snapshot") }
        let nextOffset = try reader.int64()
        let lastCutRaw = try reader.int64()
        var aliasMap: [UInt16?] = []
        for _ in 0..<(try reader.uint32()) {
            let n = Int(try reader.uint16())
            let name = String(decoding: try reader.take(n), as: UTF8.self)
            aliasMap.append(catalog.number(of: name))
        }
        var pool = AliasSetPool()
        var setMap: [Int32] = []
        for _ in 0..<(try reader.uint32()) {
            let n = Int(try reader.uint16())
            var set: [UInt16] = []
            for _ in 0..<n {
                let old = Int(try reader.uint16())
                if old < aliasMap.count, let mapped = aliasMap[old] { set.append(mapped) }
            }
            setMap.append(pool.intern(Array(Set(set)).sorted()))
        }
        var table = UserTable()
        for _ in 0..<(try reader.uint32()) {
            let uuid = try reader.take(Int(try reader.uint16()))
            let idLength = try reader.uint16()
            let id = idLength == .max ? nil : try reader.take(Int(idLength))
            let set = Int(Int32(bitPattern: try reader.uint32()))
            guard set < setMap.count else { throw BatchError("corrupt batch snapshot") }
            let mapped = setMap[set]
            table.restore(uuid: uuid, id: id, current: mapped, atCut: mapped)
        }
        return Snapshot(nextOffset: nextOffset, lastCut: lastCutRaw == .min ? nil : lastCutRaw, table: table,
                        pool: pool)
    }
}

private func put16(_ out: inout [UInt8], _ v: UInt16) { out.append(UInt8(v >> 8)); out.append(UInt8(v & 0xFF)) }
private func put32(_ out: inout [UInt8], _ v: UInt32) { for s in stride(from: 24, through: 0, by: -8) { out.append(UInt8((v >> UInt32(s)) & 0xFF)) } }
private func put64(_ out: inout [UInt8], _ v: Int64) {
    let u = UInt64(bitPattern: v)
    for s in stride(from: 56, through: 0, by: -8) { out.append(UInt8((u >> UInt64(s)) & 0xFF)) }
}

struct ByteReader {
    let bytes: [UInt8]
    var position = 0

    mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, position + n <= bytes.count else { throw BatchError("truncated batch snapshot") }
        defer { position += n }
        return bytes[position..<position + n]
    }

    mutating func uint16() throws -> UInt16 { try take(2).reduce(0) { $0 << 8 | UInt16($1) } }
    mutating func uint32() throws -> UInt32 { try take(4).reduce(0) { $0 << 8 | UInt32($1) } }
    mutating func int64() throws -> Int64 { Int64(bitPattern: try take(8).reduce(0) { $0 << 8 | UInt64($1) }) }
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

/// Writes a file atomically: a temporary name in the same directory, fsync, rename, fsync of the directory.
enum AtomicFile {
    static func write(_ bytes: [UInt8], to url: URL) throws {
        let directory = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temp = directory.appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
        let fd = open(temp.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BatchError("cannot create \(temp.path): \(String(cString: strerror(errno)))") }
        var ok = true
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if n < 0 { if errno == EINTR { continue }; ok = false; break }
                offset += n
            }
        }
        if ok { ok = fsync(fd) == 0 }
        close(fd)
        guard ok else {
            unlink(temp.path)
            throw BatchError("cannot write \(url.path): \(String(cString: strerror(errno)))")
        }
        try publish(temp, as: url)
    }

    /// Renames a complete, synced file into place and syncs the directory.
    static func publish(_ temp: URL, as url: URL) throws {
        guard rename(temp.path, url.path) == 0 else {
            throw BatchError("cannot rename into \(url.path): \(String(cString: strerror(errno)))")
        }
        let dirfd = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }
}
