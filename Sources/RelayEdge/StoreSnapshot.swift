import Foundation

/// The edge's local snapshot (`edge.snapshot_dir/store.snapshot`): every user of a ``SegmentStore`` plus, per
/// partition of the qualification topic, the next offset to read, so that a restart catches up from there.
///
/// Offsets are taken *before* the users are copied, so each user is at least as new as the offsets; replaying
/// from them gives every user the state of their latest event again (an event replaces the user's whole set).
/// Written to a temporary file, fsynced and renamed: a crash leaves the previous snapshot intact.
///
/// Format (little-endian): `RELAY-EDGE-SNAPSHOT-1\n`, kept DPIDs (u32 count, each u8 length + text), topic (u16
/// length + text), offsets (u32 count, each i32 partition + i64 offset), 64 shard blocks (u64 length + users, see
/// `Shard.encode`), user count (u64), `END\n`.
enum StoreSnapshot {
    static let magic = Array("RELAY-EDGE-SNAPSHOT-1\n".utf8)
    static let trailer = Array("END\n".utf8)
    static let fileName = "store.snapshot"

    struct Loaded {
        var topic: String
        var offsets: [Int32: Int64]
        var users: Int
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Writes the snapshot. Blocking: call off the cooperative pool.
    static func write(store: SegmentStore, topic: String, offsets: [Int32: Int64], directory: String) throws -> Int {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent(fileName)
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temporary): \(String(cString: strerror(errno)))") }
        var closed = false
        defer {
            if !closed { close(fd) }
        }
        func put(_ bytes: [UInt8]) throws {
            var written = 0
            try bytes.withUnsafeBytes { buffer in
                while written < buffer.count {
                    let n = Foundation.write(fd, buffer.baseAddress! + written, buffer.count - written)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw Failure(description: "cannot write \(temporary): \(String(cString: strerror(errno)))")
                    }
                    written += n
                }
            }
        }
        var header = magic
        header.appendLE(UInt32(store.keptDPIDs.count))
        for dpid in store.keptDPIDs {
            header.append(UInt8(dpid.utf8.count))
            header.append(contentsOf: dpid.utf8)
        }
        header.appendLE(UInt16(topic.utf8.count))
        header.append(contentsOf: topic.utf8)
        header.appendLE(UInt32(offsets.count))
        for (partition, offset) in offsets.sorted(by: { $0.key < $1.key }) {
            header.appendLE(partition)
            header.appendLE(offset)
        }
        try put(header)
        var users = 0
        for index in 0..<SegmentStore.shardCount {
            var block: [UInt8] = []
            users += store.encodeShard(index, into: &block)
            var length: [UInt8] = []
            length.appendLE(UInt64(block.count))
            try put(length)
            try put(block)
        }
        var end: [UInt8] = []
        end.appendLE(UInt64(users))
        end += trailer
        try put(end)
        guard fsync(fd) == 0 else { throw Failure(description: "cannot sync \(temporary)") }
        close(fd)
        closed = true
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw Failure(description: "cannot rename \(temporary): \(String(cString: strerror(errno)))")
        }
        // Make the rename durable.
        let dirFD = open(directory, O_RDONLY)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
        return users
    }

    /// Loads the snapshot into an empty `store`; nil when there is none. Throws when it is unreadable or was made
    /// for other kept DPIDs (the caller then starts from the beginning of the topic).
    static func load(into store: SegmentStore, directory: String) throws -> Loaded? {
        let path = (directory as NSString).appendingPathComponent(fileName)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "cannot read \(path)")
        }
        return try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> Loaded in
            var reader = Reader(bytes: raw)
            guard try reader.bytes(magic.count).elementsEqual(magic) else { throw Failure(description: "\(path): not an edge snapshot") }
            var dpids: [String] = []
            for _ in 0..<(try reader.integer(UInt32.self)) {
                let length = Int(try reader.integer(UInt8.self))
                dpids.append(String(decoding: try reader.bytes(length), as: UTF8.self))
            }
            guard dpids == store.keptDPIDs else {
                throw Failure(description: "\(path) keeps partner ids for DPIDs \(dpids), the configuration needs \(store.keptDPIDs)")
            }
            let topicLength = Int(try reader.integer(UInt16.self))
            let topic = String(decoding: try reader.bytes(topicLength), as: UTF8.self)
            var offsets: [Int32: Int64] = [:]
            for _ in 0..<(try reader.integer(UInt32.self)) {
                let partition = try reader.integer(Int32.self)
                offsets[partition] = try reader.integer(Int64.self)
            }
            var users = 0
            for _ in 0..<SegmentStore.shardCount {
                let length = Int(try reader.integer(UInt64.self))
                let end = reader.position + length
                guard end <= raw.count else { throw Failure(description: "\(path): truncated") }
                while reader.position < end {
                    let kind = try reader.integer(UInt8.self)
                    let key: UserKey
                    if kind == 0 {
                        let low = try reader.integer(UInt64.self)
                        let high = try reader.integer(UInt64.self)
                        key = .numeric(UInt128(high) << 64 | UInt128(low))
                    } else {
                        let length = Int(try reader.integer(UInt8.self))
                        key = .text(String(decoding: try reader.bytes(length), as: UTF8.self))
                    }
                    let region = Int32(bitPattern: try reader.integer(UInt32.self))
                    let count = Int(try reader.integer(UInt32.self))
                    var segments = [UInt32](repeating: 0, count: count)
                    for index in 0..<count { segments[index] = try reader.integer(UInt32.self) }
                    let extrasLength = Int(try reader.integer(UInt16.self))
                    let extras = Array(try reader.bytes(extrasLength))
                    store.putEncoded(key, region: region, segments: segments[...], extraBlock: extras[...])
                    users += 1
                }
            }
            guard try reader.integer(UInt64.self) == UInt64(users), try reader.bytes(trailer.count).elementsEqual(trailer)
            else { throw Failure(description: "\(path): damaged (user count or trailer)") }
            return Loaded(topic: topic, offsets: offsets, users: users)
        }
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        mutating func bytes(_ count: Int) throws -> UnsafeRawBufferPointer.SubSequence {
            guard count >= 0, position + count <= bytes.count else { throw Failure(description: "snapshot truncated") }
            defer { position += count }
            return bytes[position..<position + count]
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let raw = try bytes(MemoryLayout<T>.size)
            var value = T.zero
            withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw)) }
            return T(littleEndian: value)
        }
    }
}
