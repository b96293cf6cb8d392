import RelayCore
/// The join of one partition of `aam.pixel-events`: a pure state machine, fed in offset order, with no I/O.
///
/// - A window is `[start, start + window)` of the *fired* event's `ts`; it closes when the partition's event time
///   (the highest `ts` seen; for a partition idle for `max(grace, 1 s)`, the wall clock — see `closeIdle`) reaches
///   `end + grace`. Closing is driven by event time, so replaying the same records gives the same reports.
/// - Receipts that arrive (in offset order) before their window closes are `received`; after it, `late_receipts`
///   (and `received`: the closed window's report is corrected). A second receipt of a pixel is a duplicate.
/// - A receipt whose pixel has not been fired (yet) waits until the window of its own `ts` closes, then counts as
///   unmatched there, unless its `fired` shows up first.
/// - Closed windows (and their pixels) are kept `retention` of event time after they close, so that late receipts
///   still find their pixel; events for windows older than that are `expired` (ignored, counted in a metric), so an
///   evicted window's published report is never overwritten by a fresh, near-empty one.
/// - Exactly once: every record carries its offset; records below `nextOffset` have been applied already (a replay,
///   or a re-read after a restart from an older commit) and are ignored. The state and `nextOffset` are written
///   together to the changelog (`AuditChangelog`): ``takeChanges()`` gives what changed since the last call.
public struct PartitionAudit: Sendable {
    public let partition: Int32
    public let windowMs: Int64
    public let graceMs: Int64
    public let retentionMs: Int64
    /// One past the last applied offset (0: nothing applied yet).
    public internal(set) var nextOffset: Int64 = 0
    /// The partition's event time: the highest `ts` seen (or the latest close the idle fallback moved it to).
    public internal(set) var watermark: Int64 = Int64.min
    var windows: [WindowKey: WindowTally] = [:]
    /// Also keeps which pixels changed since `takeChanges()`.
    var pixels = PixelTable()
    private var nextCloseAt = Int64.max
    private var nextEvictAt = Int64.max
    /// Per destination, what changed since `takeMetrics()` (not checkpointed: metrics restart with the process).
    var metrics: [(Int64, AuditDeltas)] = []
    /// Windows changed (or removed) since `takeChanges()`: with the pixels marked changed, what the next changelog
    /// write carries.
    var changedWindows: Set<WindowKey> = []

    public init(partition: Int32, windowMs: Int64, graceMs: Int64, retentionMs: Int64? = nil) {
        precondition(windowMs > 0 && graceMs >= 0)
        self.partition = partition
        self.windowMs = windowMs
        self.graceMs = graceMs
        self.retentionMs = retentionMs ?? Self.defaultRetention(windowMs: windowMs)
    }

    /// Late receipts are matched up to six windows after their window closed.
    public static func defaultRetention(windowMs: Int64) -> Int64 { 6 * windowMs }

    public var pixelCount: Int { pixels.count }
    public var windowCount: Int { windows.count }
    public var openWindowCount: Int { windows.values.reduce(0) { $0 + ($1.closed ? 0 : 1) } }

    public func windowStart(_ ts: Int64) -> Int64 {
        let r = ts % windowMs
        return ts - (r < 0 ? r + windowMs : r)
    }

    /// The latest window close (`start + window + grace`) at or before `time`: how far a partition has closed its
    /// windows only changes there, so its progress is reported once per window, not at every tick.
    public func closeBoundary(atOrBefore time: Int64) -> Int64 {
        windowStart(time.saturatingSubtract(graceMs)).saturatingAdd(graceMs)
    }

    /// Applies the event read at `offset`. Returns false when the offset was applied before (nothing changes).
    @discardableResult
    public mutating func apply(_ event: PixelSighting, offset: Int64) -> Bool {
        guard offset >= nextOffset else { return false }
        nextOffset = offset + 1
        if event.ts > watermark { advance(to: event.ts) }
        switch event.kind {
        case .fired: fired(event)
        case .received: received(event)
        }
        return true
    }

    /// A record that carries no event (malformed, dead-lettered): only the position moves.
    public mutating func skip(offset: Int64) {
        if offset >= nextOffset { nextOffset = offset + 1 }
    }

    private func isExpired(_ windowStart: Int64) -> Bool {
        watermark != Int64.min && windowStart + windowMs + graceMs + retentionMs <= watermark
    }

    private mutating func fired(_ event: PixelSighting) {
        let start = windowStart(event.ts)
        let expired = isExpired(start)
        // One lookup: a new pixel goes in, a receipt that came first is resolved in place.
        let earlier = pixels.withEntry(event.key) { entry -> PixelEntry? in
            let earlier = entry
            switch earlier?.status {
            case nil:
                if !expired { entry = PixelEntry(destination: event.destinationID, window: start, status: .fired) }
            case .fired?, .received?:
                break  // the same pixel fired again (a replayed producer write): it counts once
            case .pendingReceipt?, .unmatched?:
                entry = PixelEntry(destination: event.destinationID, window: start, status: .received)
            }
            return earlier
        }
        guard let earlier else {
            guard !expired else {
                note(event.destinationID) { $0.expired += 1 }
                return
            }
            update(WindowKey(destination: event.destinationID, start: start)) { $0.fired += 1 }
            note(event.destinationID) { $0.fired += 1 }
            return
        }
        switch earlier.status {
        case .fired, .received:
            return
        case .pendingReceipt:
            // Its receipt came first and is still waiting: both count now, in the fired event's window.
            update(WindowKey(destination: earlier.destination, start: earlier.window)) { $0.pendingReceipts -= 1 }
            update(WindowKey(destination: event.destinationID, start: start)) { t in
                t.fired += 1
                t.received += 1
                t.duplicate += Int64(earlier.extraReceipts)
            }
            note(event.destinationID) { $0.fired += 1; $0.received += 1 }
        case .unmatched:
            // Its receipt was already reported as unmatched: move it to the fired event's window.
            update(WindowKey(destination: earlier.destination, start: earlier.window)) { $0.unmatched -= 1 }
            update(WindowKey(destination: event.destinationID, start: start)) { t in
                t.fired += 1
                t.received += 1
                if t.closed { t.late += 1 }
            }
            note(event.destinationID) { $0.fired += 1; $0.received += 1 }
        }
    }

    private mutating func received(_ event: PixelSighting) {
        // One lookup for a known pixel: its status moves on in place.
        let known = pixels.withEntry(event.key) { entry -> PixelEntry? in
            guard let known = entry else { return nil }
            switch known.status {
            case .fired: entry!.status = .received
            case .received, .unmatched: break
            case .pendingReceipt: if known.extraReceipts < UInt16.max { entry!.extraReceipts += 1 }
            }
            return known
        }
        if let known {
            let key = WindowKey(destination: known.destination, start: known.window)
            switch known.status {
            case .fired:
                var late = false
                update(key) { t in
                    t.received += 1
                    if t.closed { t.late += 1; late = true }
                }
                note(known.destination) { $0.received += 1; if late { $0.late += 1 } }
            case .received, .unmatched:
                update(key) { $0.duplicate += 1 }
                note(known.destination) { $0.duplicate += 1 }
            case .pendingReceipt:
                note(known.destination) { $0.duplicate += 1 }
            }
            return
        }
        let start = windowStart(event.ts)
        guard !isExpired(start) else {
            note(event.destinationID) { $0.expired += 1 }
            return
        }
        let key = WindowKey(destination: event.destinationID, start: start)
        var closed = false
        update(key) { t in
            if t.closed { t.unmatched += 1; closed = true } else { t.pendingReceipts += 1 }
        }
        pixels[event.key] = PixelEntry(destination: event.destinationID, window: start,
                                       status: closed ? .unmatched : .pendingReceipt)
        if closed { note(event.destinationID) { $0.unmatched += 1 } }
    }

    /// Changes a window's tally, creating it (closed already if its time has passed); a change to a closed window
    /// makes it due for publication again.
    private mutating func update(_ key: WindowKey, _ change: (inout WindowTally) -> Void) {
        let closeAt = key.start + windowMs + graceMs
        let dueAlready = watermark != Int64.min && closeAt <= watermark
        var closed = false
        var listed = true
        Self.modify(&windows[key, default: WindowTally()]) { tally in  // one lookup, changed in place
            if !tally.known {
                tally.known = true
                tally.closed = dueAlready
            }
            change(&tally)
            if tally.closed {
                tally.dirty = true
                tally.revision &+= 1
            }
            closed = tally.closed
            listed = tally.listed
            tally.listed = true
        }
        if !listed { changedWindows.insert(key) }  // once per write, not once per event
        if closed { nextEvictAt = min(nextEvictAt, closeAt + retentionMs) }
        else { nextCloseAt = min(nextCloseAt, closeAt) }
    }

    private static func modify<T>(_ value: inout T, _ body: (inout T) -> Void) { body(&value) }

    private mutating func note(_ destination: Int64, _ change: (inout AuditDeltas) -> Void) {
        // A handful of destinations: a linear scan beats hashing on every event.
        for i in metrics.indices where metrics[i].0 == destination {
            change(&metrics[i].1)
            return
        }
        var deltas = AuditDeltas()
        change(&deltas)
        metrics.append((destination, deltas))
    }

    /// Moves event time forward (never back): closes the windows whose `end + grace` it reaches and forgets those
    /// past retention.
    public mutating func advance(to time: Int64) {
        guard time > watermark else { return }
        watermark = time
        if watermark >= nextCloseAt { closeDue() }
        if watermark >= nextEvictAt { evict() }
    }

    /// The idle fallback: closes the open windows whose `end + grace` the wall clock has passed, moving event time
    /// only as far as the latest of those closes (not to `now`), so that retention and expiry stay measured in the
    /// data's own time. Returns whether anything closed.
    @discardableResult
    public mutating func closeIdle(now: Int64) -> Bool {
        guard nextCloseAt <= now else { return false }
        var target = watermark
        for (key, tally) in windows where !tally.closed {
            let closeAt = key.start + windowMs + graceMs
            if closeAt <= now { target = max(target, closeAt) }
        }
        guard target > watermark else { return false }
        advance(to: target)
        return true
    }

    private mutating func closeDue() {
        var waiting: Set<WindowKey> = []
        var nextClose = Int64.max
        for (key, var tally) in windows where !tally.closed {
            let closeAt = key.start + windowMs + graceMs
            guard closeAt <= watermark else {
                nextClose = min(nextClose, closeAt)
                continue
            }
            tally.closed = true
            tally.dirty = true
            tally.revision &+= 1
            if tally.pendingReceipts > 0 { waiting.insert(key) }
            windows[key] = tally
            changedWindows.insert(key)
            nextEvictAt = min(nextEvictAt, closeAt + retentionMs)
            let lost = max(0, tally.fired - tally.received)
            note(key.destination) { $0.lost += lost; $0.windowsClosed += 1 }
        }
        nextCloseAt = nextClose
        guard !waiting.isEmpty else { return }
        // Receipts still waiting for their fired event in a window that just closed are unmatched.
        var resolved: [PixelEntry] = []
        pixels.updateAll { _, entry in
            guard entry.status == .pendingReceipt,
                  waiting.contains(WindowKey(destination: entry.destination, start: entry.window)) else { return }
            resolved.append(entry)
            entry = PixelEntry(destination: entry.destination, window: entry.window, status: .unmatched)
        }
        for entry in resolved {
            let key = WindowKey(destination: entry.destination, start: entry.window)
            windows[key]!.pendingReceipts -= 1
            windows[key]!.unmatched += 1
            windows[key]!.duplicate += Int64(entry.extraReceipts)
            note(key.destination) { $0.unmatched += 1 }
        }
    }

    private mutating func evict() {
        let cutoff = watermark - windowMs - graceMs - retentionMs  // windows starting at or before are forgotten
        // What goes is removed from the changelog too (a tombstone per key), so that it stays the size of the state.
        let goneWindows = windows.compactMap { key, tally in tally.closed && !tally.dirty && key.start <= cutoff ? key : nil }
        for key in goneWindows {
            windows[key] = nil
            changedWindows.insert(key)
        }
        let kept = windows
        pixels.removeAll { entry in
            entry.window <= cutoff && kept[WindowKey(destination: entry.destination, start: entry.window)] == nil
        }
        nextEvictAt = windows.reduce(Int64.max) { next, item in
            item.value.closed ? min(next, item.key.start + windowMs + graceMs + retentionMs) : next
        }
    }

    /// After a restore: when the next window closes and the next eviction is due.
    mutating func recomputeSchedule() {
        nextCloseAt = Int64.max
        nextEvictAt = Int64.max
        for (key, tally) in windows {
            let closeAt = key.start + windowMs + graceMs
            if tally.closed { nextEvictAt = min(nextEvictAt, closeAt + retentionMs) }
            else { nextCloseAt = min(nextCloseAt, closeAt) }
        }
    }

    /// The closed windows whose report changed since it was last published.
    public func reportsToPublish(maxLossRate: (Int64) -> Double) -> [PendingReport] {
        windows.compactMap { key, tally in
            tally.dirty ? PendingReport(key: key, revision: tally.revision,
                                        report: report(key, tally, maxLossRate: maxLossRate(key.destination))) : nil
        }.sorted { $0.key < $1.key }
    }

    /// Every closed window's current report (for tests and inspection).
    public func closedReports(maxLossRate: (Int64) -> Double) -> [AuditReport] {
        windows.filter { $0.value.closed }.sorted { $0.key < $1.key }.map { key, tally in
            report(key, tally, maxLossRate: maxLossRate(key.destination))
        }
    }

    private func report(_ key: WindowKey, _ tally: WindowTally, maxLossRate: Double) -> AuditReport {
        AuditReport(destinationID: key.destination, windowStart: key.start, windowEnd: key.start + windowMs,
                    fired: tally.fired, received: tally.received, lateReceipts: tally.late,
                    duplicateReceipts: tally.duplicate, unmatchedReceipts: tally.unmatched, maxLossRate: maxLossRate,
                    partition: partition)
    }

    /// The report of this revision reached the topic; a later change makes it due again.
    public mutating func markPublished(_ key: WindowKey, revision: UInt64) {
        guard var tally = windows[key], tally.revision == revision else { return }
        tally.dirty = false
        windows[key] = tally
        changedWindows.insert(key)
    }

    /// What changed since the last call: each key with its value now, nil where it was removed.
    public mutating func takeChanges() -> AuditChanges {
        var changes = AuditChanges(partition: partition, windowMs: windowMs, graceMs: graceMs,
                                   retentionMs: retentionMs, nextOffset: nextOffset, watermark: watermark)
        changes.windows = changedWindows.sorted().map { key in
            windows[key]?.listed = false
            return (key, windows[key])
        }
        changes.pixels = pixels.takeChanges()
        changedWindows.removeAll(keepingCapacity: true)
        return changes
    }

    /// Changes whose write failed: their keys are written again (with their values then) by the next write.
    public mutating func requeue(_ changes: AuditChanges) {
        for (key, _) in changes.windows { changedWindows.insert(key) }
        pixels.requeue(changes.pixels.lazy.map(\.0))
    }

    /// Metric changes since the last call, per destination.
    public mutating func takeMetrics() -> [Int64: AuditDeltas] {
        defer { metrics.removeAll(keepingCapacity: true) }
        return Dictionary(metrics, uniquingKeysWith: { a, _ in a })
    }
}

/// A partition's changes since the last changelog write, and the position and event time they bring it to (with
/// the window, grace and retention they were counted under, which the head records).
public struct AuditChanges: Sendable {
    public let partition: Int32
    public let windowMs: Int64
    public let graceMs: Int64
    public let retentionMs: Int64
    public let nextOffset: Int64
    public let watermark: Int64
    var windows: [(WindowKey, WindowTally?)] = []
    var pixels: [(PixelKey, PixelEntry?)] = []

    public var isEmpty: Bool { windows.isEmpty && pixels.isEmpty }
}

public struct PendingReport: Sendable {
    public let key: WindowKey
    public let revision: UInt64
    public let report: AuditReport
}

/// Counter increments for the Prometheus metrics.
public struct AuditDeltas: Sendable, Equatable {
    public var fired: Int64 = 0
    public var received: Int64 = 0
    public var lost: Int64 = 0
    public var late: Int64 = 0
    public var duplicate: Int64 = 0
    public var unmatched: Int64 = 0
    public var expired: Int64 = 0
    public var windowsClosed: Int64 = 0
}

struct WindowTally: Sendable, Equatable {
    var fired: Int64 = 0
    var received: Int64 = 0
    var late: Int64 = 0
    var duplicate: Int64 = 0
    var unmatched: Int64 = 0
    /// Receipts in this window (by their own ts) waiting for their fired event.
    var pendingReceipts: Int64 = 0
    var closed = false
    /// Closed and changed since its report was last published.
    var dirty = false
    var revision: UInt64 = 0
    /// False only for the default value of a window being created.
    var known = false
    /// In `changedWindows` (set by `update`, cleared by `takeChanges`; not written to the changelog).
    var listed = false
}

struct PixelEntry: Sendable, Equatable {
    enum Status: UInt8, Sendable {
        case fired = 1
        case received = 2
        /// Received, no fired event seen yet; waits for the close of the window of its own ts.
        case pendingReceipt = 3
        /// Received, reported as unmatched.
        case unmatched = 4
    }

    var destination: Int64
    /// The window's start: of the fired ts, or of the receipt's ts while no fired event is known.
    var window: Int64
    var status: Status
    /// Receipts beyond the first while pending (duplicates, counted when the pixel is resolved).
    var extraReceipts: UInt16 = 0
}
