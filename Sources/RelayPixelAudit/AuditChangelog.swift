import RelayCore
import RelayEncoding
import RelayKafka

/// The join state of each input partition, kept in the compacted internal topic `<group>.state` (SPEC §1), in the
/// partition of the same number: whichever member the group gives a partition restores its state from there. No
/// local disk is involved.
///
/// Why a changelog and not a rebuild from the input: a pixel's fate depends on every event before it (its fired
/// event may be hours older than its receipt, and a window's expiry depends on the event time reached), so only the
/// state itself, not a replay of the last hour, gives exact counts after a move.
///
/// A write is a group of records: one per window and pixel that changed since the previous write (a tombstone for
/// one that was evicted), then, once the broker has acknowledged all of them, a `head` with the offset and event
/// time they bring the partition to. Records are final (committable) only below a head's `nextOffset`. A restore
/// applies groups up to the last head and drops what follows it (a write cut short by a crash); it then writes those
/// keys again with their restored values, so that compaction cannot keep a value from the dropped group.
///
/// Keys: `w` + destination + window start; `p` + the pixel key; `head`. Values are little-endian binary (below).
public enum AuditChangelog {
    public static func topic(group: String) -> String { InternalTopics.pixelAuditState(group: group) }

    static let head: [UInt8] = Array("head".utf8)
    static let version: UInt8 = 1
    /// Six counts, the revision and the flags.
    static let windowBytes = 7 * 8 + 1
    /// Destination, window, status and extra receipts.
    static let pixelBytes = 8 + 8 + 1 + 2

    // MARK: writing

    /// The records of one write: the changes, then (sent after they are acknowledged) the head.
    static func records(_ changes: AuditChanges, topic: String) -> (changes: [OutgoingRecord], head: OutgoingRecord) {
        var out: [OutgoingRecord] = []
        out.reserveCapacity(changes.windows.count + changes.pixels.count)
        let partition = changes.partition
        for (key, tally) in changes.windows {
            let k = windowKey(key)
            out.append(tally.map { OutgoingRecord(topic: topic, key: k, value: encode($0), partition: partition) }
                ?? .tombstone(topic: topic, key: k, partition: partition))
        }
        for (key, entry) in changes.pixels {
            let k = pixelKey(key)
            out.append(entry.map { OutgoingRecord(topic: topic, key: k, value: encode($0), partition: partition) }
                ?? .tombstone(topic: topic, key: k, partition: partition))
        }
        var w = BinaryWriter(capacity: 48)
        w.put(version)
        w.put(changes.nextOffset)
        w.put(changes.watermark)
        w.put(changes.windowMs)
        w.put(changes.graceMs)
        w.put(changes.retentionMs)
        return (out, OutgoingRecord(topic: topic, key: head, value: w.bytes, partition: partition))
    }

    static func windowKey(_ key: WindowKey) -> [UInt8] {
        var w = BinaryWriter(capacity: 17)
        w.put(UInt8(ascii: "w"))
        w.put(key.destination)
        w.put(key.start)
        return w.bytes
    }

    static func pixelKey(_ key: PixelKey) -> [UInt8] {
        var w = BinaryWriter(capacity: 17)
        w.put(UInt8(ascii: "p"))
        w.put(key.hi)
        w.put(key.lo)
        return w.bytes
    }

    static func encode(_ t: WindowTally) -> [UInt8] {
        var w = BinaryWriter(capacity: windowBytes)
        w.put(t.fired)
        w.put(t.received)
        w.put(t.late)
        w.put(t.duplicate)
        w.put(t.unmatched)
        w.put(t.pendingReceipts)
        w.put(t.revision)
        w.put(UInt8((t.closed ? 1 : 0) | (t.dirty ? 2 : 0)))
        return w.bytes
    }

    static func encode(_ e: PixelEntry) -> [UInt8] {
        var w = BinaryWriter(capacity: pixelBytes)
        w.put(e.destination)
        w.put(e.window)
        w.put(e.status.rawValue)
        w.put(e.extraReceipts)
        return w.bytes
    }

    // MARK: reading

    /// Rebuilds a partition's state from its changelog records, fed in offset order (pure; see the type's comment).
    struct Restore {
        let partition: Int32
        let windowMs: Int64
        let graceMs: Int64
        private(set) var windows: [WindowKey: WindowTally] = [:]
        private(set) var pixels = PixelTable()
        private var pendingWindows: [WindowKey: WindowTally?] = [:]
        private var pendingPixels: [PixelKey: PixelEntry?] = [:]
        private(set) var nextOffset: Int64 = 0
        private(set) var watermark = Int64.min
        private(set) var retentionMs: Int64?
        private(set) var heads = 0
        /// Records that did not decode (the changelog is read as contract, never trusted): skipped, counted.
        private(set) var malformed: [String] = []

        init(partition: Int32, windowMs: Int64, graceMs: Int64) {
            self.partition = partition
            self.windowMs = windowMs
            self.graceMs = graceMs
        }

        mutating func take(_ record: KafkaRecord) {
            do throws(MalformedInput) {
                try apply(key: Array(record.key ?? []), value: Array(record.value))
            } catch {
                malformed.append("\(record.source): \(error.reason)")
            }
        }

        private mutating func apply(key: [UInt8], value: [UInt8]) throws(MalformedInput) {
            if key == AuditChangelog.head {
                var r = BinaryReader(value, what: "audit state head")
                guard try r.read(UInt8.self) == AuditChangelog.version else {
                    throw MalformedInput("audit state head: unknown version")
                }
                let next = try r.read(Int64.self), mark = try r.read(Int64.self)
                let window = try r.read(Int64.self), grace = try r.read(Int64.self), retention = try r.read(Int64.self)
                guard window == windowMs, grace == graceMs, retention > 0 else {
                    throw MalformedInput("audit state written for audit_window \(window) ms / grace \(grace) ms, "
                        + "configured \(windowMs) ms / \(graceMs) ms")
                }
                for (k, v) in pendingWindows { windows[k] = v }
                for (k, v) in pendingPixels { pixels[k] = v }
                pendingWindows.removeAll(keepingCapacity: true)
                pendingPixels.removeAll(keepingCapacity: true)
                nextOffset = next
                watermark = mark
                retentionMs = retention
                heads += 1
                return
            }
            guard key.count == 17 else { throw MalformedInput("audit state: unknown key") }
            var k = BinaryReader(key, position: 1, what: "audit state key")
            switch key[0] {
            case UInt8(ascii: "w"):
                let windowKey = WindowKey(destination: try k.read(Int64.self), start: try k.read(Int64.self))
                guard !value.isEmpty else { pendingWindows[windowKey] = .some(nil); return }
                var r = BinaryReader(value, what: "audit state window")
                guard value.count == AuditChangelog.windowBytes else {
                    throw MalformedInput("audit state window: \(AuditChangelog.windowBytes) bytes expected")
                }
                var t = WindowTally()
                t.known = true
                t.fired = try r.read(Int64.self); t.received = try r.read(Int64.self); t.late = try r.read(Int64.self)
                t.duplicate = try r.read(Int64.self); t.unmatched = try r.read(Int64.self)
                t.pendingReceipts = try r.read(Int64.self); t.revision = try r.read(UInt64.self)
                let flags = try r.read(UInt8.self)
                t.closed = flags & 1 != 0
                t.dirty = flags & 2 != 0
                pendingWindows[windowKey] = t
            case UInt8(ascii: "p"):
                let pixelKey = PixelKey(hi: try k.read(UInt64.self), lo: try k.read(UInt64.self))
                guard !value.isEmpty else { pendingPixels[pixelKey] = .some(nil); return }
                guard value.count == AuditChangelog.pixelBytes else {
                    throw MalformedInput("audit state pixel: \(AuditChangelog.pixelBytes) bytes expected")
                }
                var r = BinaryReader(value, what: "audit state pixel")
                let destination = try r.read(Int64.self), window = try r.read(Int64.self)
                guard let status = PixelEntry.Status(rawValue: try r.read(UInt8.self)) else {
                    throw MalformedInput("audit state pixel: unknown status")
                }
                pendingPixels[pixelKey] = PixelEntry(destination: destination, window: window, status: status,
                                                     extraReceipts: try r.read(UInt16.self))
            default:
                throw MalformedInput("audit state: unknown key")
            }
        }

        /// The state as of the last head (nil when there is none), and the changes that rewrite whatever the records
        /// after it touched back to that state.
        func finish() -> (PartitionAudit?, AuditChanges?) {
            guard heads > 0, let retentionMs else { return (nil, nil) }
            var audit = PartitionAudit(partition: partition, windowMs: windowMs, graceMs: graceMs,
                                       retentionMs: retentionMs)
            audit.nextOffset = nextOffset
            audit.restore(watermark: watermark, windows: windows, pixels: pixels)
            guard !pendingWindows.isEmpty || !pendingPixels.isEmpty else { return (audit, nil) }
            var repair = AuditChanges(partition: partition, windowMs: windowMs, graceMs: graceMs,
                                      retentionMs: retentionMs, nextOffset: nextOffset, watermark: watermark)
            repair.windows = pendingWindows.keys.sorted().map { ($0, windows[$0]) }
            repair.pixels = pendingPixels.keys.sorted().map { ($0, pixels[$0]) }
            return (audit, repair)
        }
    }
}

extension PartitionAudit {
    mutating func restore(watermark: Int64, windows: [WindowKey: WindowTally], pixels: PixelTable) {
        self.windows = windows
        self.pixels = pixels
        self.pixels.forgetChanges()  // on the changelog already
        self.watermark = watermark
        recomputeSchedule()
    }
}
