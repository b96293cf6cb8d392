import Foundation
import RelayCore
import RelayEncoding
import RelayEncoding

/// A partition's join state and the offset it covers, written atomically to
/// `<state_dir>/<group>/<topic>-<partition>.state`.
///
/// Why files and not a changelog topic: the state of a partition is rebuilt from its checkpoint in one read, without
/// reading the topic's history, and the files are simple to inspect and back up. For exact counts when a partition
/// moves to a process on *another machine*, `state_dir` must be shared storage (NFS, EFS, a shared volume) — all
/// processes of a group on one machine share it as is. A compacted changelog topic (`<pixel_events>.audit-state`,
/// keyed by partition) would remove that requirement at the cost of a larger write path; the format below is the
/// value such a topic would carry.
///
/// Protocol: a record is marked final (committable) only once a checkpoint with `nextOffset` above it is on disk,
/// so the committed offset never passes the checkpoint; on assignment the checkpoint is loaded and records below its
/// `nextOffset` are ignored. A kill at any point therefore loses nothing and counts nothing twice. A checkpoint is
/// never replaced by one that covers fewer offsets (a revoked owner's last write racing the next owner's).
///
/// Format (little-endian): "RPA1", version u32, partition i32, window ms, grace ms, retention ms, nextOffset,
/// watermark (i64 each), window count u32 + windows, pixel count u64 + pixels, FNV-1a 64 of everything before it.
public enum AuditCheckpoint {
    static let magic: [UInt8] = Array("RPA1".utf8)
    static let version: UInt32 = 1

    public static func encode(_ audit: PartitionAudit) -> [UInt8] {
        var w = BinaryWriter(capacity: 64 + audit.windows.count * 80 + audit.pixels.count * 35)
        w.append(raw: magic)
        w.put(version)
        w.put(audit.partition)
        w.put(audit.windowMs)
        w.put(audit.graceMs)
        w.put(audit.retentionMs)
        w.put(audit.nextOffset)
        w.put(audit.watermark)
        w.put(UInt32(audit.windows.count))
        for (key, t) in audit.windows {
            w.put(key.destination)
            w.put(key.start)
            w.put(t.fired)
            w.put(t.received)
            w.put(t.late)
            w.put(t.duplicate)
            w.put(t.unmatched)
            w.put(t.pendingReceipts)
            w.put(t.revision)
            w.put(UInt8((t.closed ? 1 : 0) | (t.dirty ? 2 : 0)))
        }
        w.put(UInt64(audit.pixels.count))
        for (key, e) in audit.pixels {
            w.put(key.hi)
            w.put(key.lo)
            w.put(e.destination)
            w.put(e.window)
            w.put(e.status.rawValue)
            w.put(e.extraReceipts)
        }
        w.put(fnv(w.bytes[...]))
        return w.bytes
    }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads a checkpoint; it must match the configured window and grace (otherwise its windows mean something else).
    public static func decode(_ bytes: [UInt8], windowMs: Int64, graceMs: Int64) throws(Invalid) -> PartitionAudit {
        do throws(MalformedInput) {
            return try decodeChecked(bytes, windowMs: windowMs, graceMs: graceMs)
        } catch {
            throw Invalid(description: error.reason)
        }
    }

    private static func decodeChecked(_ bytes: [UInt8], windowMs: Int64, graceMs: Int64) throws(MalformedInput)
        -> PartitionAudit
    {
        typealias Invalid = MalformedInput
        guard bytes.count >= 8 + 4 + 4 + 48 + 4 + 8 + 8, Array(bytes[0..<4]) == magic else {
            throw Invalid("not a pixel audit checkpoint")
        }
        var r = BinaryReader(bytes, position: 4, what: "audit checkpoint")
        var tail = BinaryReader(bytes, position: bytes.count - 8, what: "audit checkpoint")
        let checksum = try tail.read(UInt64.self)
        guard fnv(bytes[0..<(bytes.count - 8)]) == checksum else {
            throw Invalid("checksum mismatch (torn or corrupted file)")
        }
        let stored = try r.read(UInt32.self)
        guard stored == version else { throw Invalid("unknown checkpoint version") }
        let partition = try r.read(Int32.self)
        let window = try r.read(Int64.self), grace = try r.read(Int64.self), retention = try r.read(Int64.self)
        guard window == windowMs, grace == graceMs else {
            throw Invalid("written for audit_window \(window) ms / grace \(grace) ms, configured "
                + "\(windowMs) ms / \(graceMs) ms")
        }
        var audit = PartitionAudit(partition: partition, windowMs: window, graceMs: grace, retentionMs: retention)
        audit.nextOffset = try r.read(Int64.self)
        let watermark = try r.read(Int64.self)
        // Counts come from the file: bounded by what is left before any arithmetic on them.
        let windowCount = try r.readCount(UInt32.self, elementSize: 73)
        guard r.remaining >= windowCount * 73 + 8 else { throw Invalid("truncated") }
        var windows: [WindowKey: WindowTally] = [:]
        windows.reserveCapacity(windowCount)
        for _ in 0..<windowCount {
            let key = WindowKey(destination: try r.read(Int64.self), start: try r.read(Int64.self))
            var t = WindowTally()
            t.known = true
            t.fired = try r.read(Int64.self); t.received = try r.read(Int64.self); t.late = try r.read(Int64.self); t.duplicate = try r.read(Int64.self); t.unmatched = try r.read(Int64.self)
            t.pendingReceipts = try r.read(Int64.self); t.revision = try r.read(UInt64.self)
            let flags = try r.read(UInt8.self)
            t.closed = flags & 1 != 0
            t.dirty = flags & 2 != 0
            windows[key] = t
        }
        let pixelCount = try r.readCount(UInt64.self, elementSize: 35)
        guard r.remaining == pixelCount * 35 + 8 else { throw Invalid("truncated") }
        var pixels: [PixelKey: PixelEntry] = [:]
        pixels.reserveCapacity(pixelCount)
        for _ in 0..<pixelCount {
            let key = PixelKey(hi: try r.read(UInt64.self), lo: try r.read(UInt64.self))
            let destination = try r.read(Int64.self), window = try r.read(Int64.self)
            guard let status = PixelEntry.Status(rawValue: try r.read(UInt8.self)) else { throw Invalid("bad pixel") }
            pixels[key] = PixelEntry(destination: destination, window: window, status: status,
                                     extraReceipts: try r.read(UInt16.self))
        }
        audit.restore(watermark: watermark, windows: windows, pixels: pixels)
        return audit
    }

    static func fnv(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    /// The path of a partition's checkpoint.
    public static func path(stateDir: String, group: String, topic: String, partition: Int32) -> String {
        "\(stateDir)/\(sanitized(group))/\(sanitized(topic))-\(partition).state"
    }

    static func sanitized(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" })
    }

    /// Blocking: write to a temporary file, fsync, rename over the old one, fsync the directory. Skips (returns
    /// false) when the file on disk already covers more offsets.
    public static func write(_ bytes: [UInt8], nextOffset: Int64, to path: String) throws -> Bool {
        if let existing = coveredOffset(path), existing > nextOffset { return false }
        do throws(AtomicFile.Failure) {
            try AtomicFile.write(bytes, to: URL(fileURLWithPath: path))
        } catch {
            throw CheckpointError(error.description)
        }
        return true
    }

    /// The `nextOffset` recorded in a checkpoint file's header, without reading the rest.
    static func coveredOffset(_ path: String) -> Int64? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 44), head.count == 44, Array(head[0..<4]) == magic else {
            return nil
        }
        var reader = BinaryReader(Array(head), position: 36, what: "audit checkpoint")
        return try? reader.read(Int64.self)
    }

    /// Blocking: the checkpoint's bytes, or nil when there is none.
    public static func read(_ path: String) -> [UInt8]? {
        FileManager.default.contents(atPath: path).map { Array($0) }
    }
}

public struct CheckpointError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension PartitionAudit {
    mutating func restore(watermark: Int64, windows: [WindowKey: WindowTally], pixels: [PixelKey: PixelEntry]) {
        self.windows = windows
        self.pixels = pixels
        self.watermark = watermark
        recomputeSchedule()
    }
}
