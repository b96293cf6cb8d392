import Foundation
import RelayEncoding
import Logging
import RelayCore
import RelayKafka
import RelayRuntime

/// The batch worker's state and decisions: accumulation per destination and partition, cuts, delivery, reports,
/// snapshots and offset completion.
///
/// One operation at a time (records, the idle timer, drain) holds the engine (an async lock inside the actor), so a
/// cut's delivery, which awaits, never interleaves with the accumulation it is cutting.
///
/// Per partition and destination a cut `c` (SPEC §5) is made when a record stamped at or after `c` is read (before
/// that record is applied), or by the idle timer once the wall clock is `grace` past `c` and the partition has read
/// nothing for `grace`. A cut is written, delivered (with retries), reported to the ``CutLedger`` (which writes the
/// `.info` when every partition has reported), snapshotted, and only then are its records marked final (the commit
/// moves). Records of later cuts stay pending. A revoked partition's accumulation is dropped; its next owner
/// replays from the commit and writes the same files.
actor BatchEngine {
    struct PartitionState {
        let epoch: UInt64
        var generation: UInt64?
        var loaded = false
        var assignedAt: Int64
        var lastReceipt: Int64
        var completedUpTo: Int64?
        var lastOffset: Int64?
        var dests: [DestinationPartitionState]
    }

    let plans: [BatchDestinationPlan]
    let topic: String
    let snapshots: SnapshotStore
    let ledger: CutLedger
    let ownership: Ownership
    let offsets: OffsetTracker
    let deadLetters: DeadLetterWriter
    let logger: Logger
    let partitionCountSource: @Sendable () throws -> Int
    let clock: @Sendable () -> Int64
    /// Which event and record times are accepted (`input:`).
    let input: EventTimeWindow

    private var partitions: [Int32: PartitionState] = [:]
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var cachedPartitionCount: (count: Int, at: Int64)?
    private var lastLedgerCheck: Int64 = 0
    static let maxCatchUpCuts = 10_000

    init(plans: [BatchDestinationPlan], topic: String, stateDirectory: URL, ownership: Ownership,
         offsets: OffsetTracker, deadLetters: DeadLetterWriter, logger: Logger,
         partitionCount: @escaping @Sendable () throws -> Int,
         clock: @escaping @Sendable () -> Int64 = { Timestamps.nowMilliseconds() },
         input: EventTimeWindow = EventTimeWindow())
    {
        self.input = input
        self.plans = plans
        self.topic = topic
        snapshots = SnapshotStore(directory: stateDirectory.appendingPathComponent("snapshots"))
        ledger = CutLedger(directory: stateDirectory.appendingPathComponent("cuts"))
        self.ownership = ownership
        self.offsets = offsets
        self.deadLetters = deadLetters
        self.logger = logger
        partitionCountSource = partitionCount
        self.clock = clock
    }

    // MARK: one operation at a time

    private func acquire() async {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
    }

    private func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }

    // MARK: records

    func handle(_ records: [KafkaRecord]) async {
        await acquire()
        defer { release() }
        var byPartition: [Int32: [KafkaRecord]] = [:]
        for record in records { byPartition[record.partition, default: []].append(record) }
        for (partition, records) in byPartition.sorted(by: { $0.key < $1.key }) {
            guard var state = current(partition) else { continue }
            partitions[partition] = nil
            if await apply(records, partition: partition, state: &state) {
                partitions[partition] = state
            }
        }
    }

    /// The partition's state under the current assignment (fresh after a new assignment); nil when not owned.
    private func current(_ partition: Int32) -> PartitionState? {
        guard let epoch = ownership.epoch(partition) else {
            partitions[partition] = nil
            return nil
        }
        if let state = partitions[partition], state.epoch == epoch { return state }
        let now = clock()
        return PartitionState(epoch: epoch, assignedAt: now, lastReceipt: now,
                              dests: Array(repeating: DestinationPartitionState(), count: plans.count))
    }

    private func owns(_ partition: Int32, _ state: PartitionState) -> Bool {
        ownership.epoch(partition) == state.epoch
    }

    /// Returns false when the partition was lost meanwhile (its state must be dropped).
    private func apply(_ records: [KafkaRecord], partition: Int32, state: inout PartitionState) async -> Bool {
        if !state.loaded { await load(partition, firstOffset: records.first?.offset, state: &state) }
        state.lastReceipt = clock()
        for record in records {
            state.generation = record.generation
            if state.completedUpTo == nil { state.completedUpTo = record.offset }
            var event: Qualification?
            let now = clock()
            do throws(MalformedEvent) {
                event = try input.qualification(of: record, now: now)
            } catch {
                await deadLetter(record, reason: error.reason)
            }
            // Cuts follow record time: a refused one would move them years away, so the record only passes.
            if input.recordTimeProblem(record, now: now) != nil {
                state.lastOffset = record.offset
                continue
            }
            for i in plans.indices {
                let plan = plans[i]
                guard record.offset >= state.dests[i].skipBelow else { continue }
                let cut = plan.schedule.cut(containing: record.timestamp)
                if let open = state.dests[i].openCut {
                    if cut > open {
                        guard await makeCut(i, open, partition: partition, nextOffset: record.offset, state: &state)
                        else { return false }
                        state.dests[i].pendingFrom = nil
                        guard await catchUp(i, from: open, before: cut, partition: partition,
                                            nextOffset: record.offset, state: &state)
                        else { return false }
                        state.dests[i].openCut = cut
                    }
                } else {
                    if let last = state.dests[i].lastCut {
                        guard await catchUp(i, from: last, before: cut, partition: partition,
                                            nextOffset: record.offset, state: &state)
                        else { return false }
                        // A record stamped before the last cut (late) joins the next one.
                        state.dests[i].openCut = max(cut, plan.schedule.next(after: state.dests[i].lastCut!))
                    } else {
                        state.dests[i].openCut = cut
                    }
                }
                if let event {
                    // Mutated in place (no copy of the table).
                    let set = state.dests[i].pool.intern(plan.aliasSet(event))
                    let dpid = plan.settings.masterDPID
                    state.dests[i].table.update(uuid: event.uuid, id: dpid == 0 ? nil : event.userID(forDPID: dpid),
                                                idIsUUID: dpid == 0, set: set)
                }
                if state.dests[i].pendingFrom == nil { state.dests[i].pendingFrom = record.offset }
            }
            state.lastOffset = record.offset
        }
        completeFinished(partition, &state)
        return true
    }

    /// Full mode writes every user at every cut: cuts a partition passed without records (after `from`, before
    /// `before`) are made from the unchanged state. Iter mode has nothing to write for them: the next report's range
    /// answers for them.
    private func catchUp(_ i: Int, from: Int64, before: Int64, partition: Int32, nextOffset: Int64,
                         state: inout PartitionState) async -> Bool
    {
        let plan = plans[i]
        guard plan.settings.mode == .full, state.dests[i].table.count > 0 else { return true }
        var cut = plan.schedule.next(after: from)
        var made = 0
        while cut < before, made < Self.maxCatchUpCuts {
            guard await makeCut(i, cut, partition: partition, nextOffset: nextOffset, state: &state) else { return false }
            cut = plan.schedule.next(after: cut)
            made += 1
        }
        return true
    }

    // MARK: the idle timer

    /// Makes the cuts of idle partitions, answers for cuts they had nothing in, and retries `.info` files whose
    /// writer died.
    func tick() async {
        await acquire()
        defer { release() }
        let now = clock()
        for (partition, _) in ownership.owned.sorted(by: { $0.key < $1.key }) {
            guard var state = current(partition) else { continue }
            partitions[partition] = nil
            if await idle(partition, now: now, state: &state) { partitions[partition] = state }
        }
        for p in partitions.keys where ownership.epoch(p) == nil { partitions[p] = nil }
        publishStateMetrics()
        if now - lastLedgerCheck >= 5_000 {
            lastLedgerCheck = now
            for i in plans.indices { await writeCompleteInfos(i, range: nil) }
        }
    }

    private func idle(_ partition: Int32, now: Int64, state: inout PartitionState) async -> Bool {
        for i in plans.indices {
            let plan = plans[i]
            let grace = plan.settings.grace.milliseconds
            guard now - max(state.assignedAt, state.lastReceipt) >= grace else { continue }
            if !state.loaded { await load(partition, firstOffset: nil, state: &state) }
            let nextOffset = state.lastOffset.map { $0 + 1 } ?? state.dests[i].snapshotOffset ?? 0
            if let open = state.dests[i].openCut {
                guard now >= open + grace else { continue }
                guard await makeCut(i, open, partition: partition, nextOffset: nextOffset, state: &state)
                else { return false }
                state.dests[i].openCut = nil
                state.dests[i].pendingFrom = nil
                continue
            }
            let latest = plan.schedule.floorCut(now - grace)
            let last = state.dests[i].lastCut
            guard last.map({ latest > $0 }) ?? true else { continue }
            if plan.settings.mode == .full, state.dests[i].table.count > 0 {
                var cut = last.map { plan.schedule.next(after: $0) } ?? latest
                var made = 0
                while cut <= latest, made < Self.maxCatchUpCuts {
                    guard await makeCut(i, cut, partition: partition, nextOffset: nextOffset, state: &state)
                    else { return false }
                    cut = plan.schedule.next(after: cut)
                    made += 1
                }
            } else {
                // Nothing to write: answer for the cuts up to `latest` so that other partitions' cuts complete.
                let report = CutReport(destination: plan.id, partition: partition, from: last ?? 0, cut: latest,
                                       made: false, parts: [], users: 0, skipped: 0)
                do {
                    try await BlockingIO.run { [ledger] in try ledger.write(report) }
                } catch {
                    logger.error("cannot write cut report", metadata: ["error": "\(error)"])
                    continue
                }
                state.dests[i].lastCut = latest
                await writeCompleteInfos(i, range: (last ?? 0)...latest)
            }
        }
        completeFinished(partition, &state)
        return true
    }

    // MARK: cuts

    /// Writes, delivers, reports and snapshots one cut of destination `i` on `partition`. The state must hold
    /// exactly the records below `nextOffset`. Returns false when the partition was revoked meanwhile.
    private func makeCut(_ i: Int, _ cut: Int64, partition: Int32, nextOffset: Int64,
                         state: inout PartitionState) async -> Bool
    {
        let plan = plans[i]
        let table = state.dests[i].table
        let pool = state.dests[i].pool
        let partitionCount = await partitionCount()
        let started = ContinuousClock.now
        let written: WrittenCut
        do {
            written = try await BlockingIO.run {
                try CutWriter.write(plan: plan, table: table, pool: pool, cut: cut, partition: partition,
                                    partitionCount: partitionCount)
            }
        } catch {
            // A local disk problem: nothing can be delivered; keep trying without losing the records.
            logger.error("cannot write cut files", metadata: ["destination": "\(plan.id)", "error": "\(error)"])
            return await retryLater { [self] in await makeCut(i, cut, partition: partition, nextOffset: nextOffset,
                                                              state: &state) } ?? false
        }
        for (part, file) in zip(written.parts, written.files) {
            let delivered = await deliver(plan, what: part.name, stillOwned: { [ownership, epoch = state.epoch] in
                ownership.epoch(partition) == epoch
            }) {
                try await plan.delivery.deliver(file: file, name: part.name)
            }
            guard delivered else {
                for file in written.files { unlink(file.path) }
                return false
            }
            if plan.delivery.removesSpool { unlink(file.path) }
        }
        let report = CutReport(destination: plan.id, partition: partition, from: state.dests[i].lastCut ?? 0,
                               cut: cut, made: true, parts: written.parts, users: written.users,
                               skipped: written.skipped)
        state.dests[i].table.commitCut()
        state.dests[i].lastCut = cut
        let snapshot = Snapshot(nextOffset: nextOffset, lastCut: cut, table: state.dests[i].table,
                                pool: state.dests[i].pool)
        let catalog = plan.catalog
        let snapshots = self.snapshots
        let ledger = self.ledger
        do {
            try await BlockingIO.run {
                try ledger.write(report)
                try snapshots.save(snapshot.encode(catalog: catalog), destination: plan.id, partition: partition,
                                   offset: nextOffset)
            }
        } catch {
            logger.error("cannot write cut report or snapshot",
                         metadata: ["destination": "\(plan.id)", "error": "\(error)"])
        }
        BatchMetrics.cut(destination: plan.id, users: written.users, lines: written.lines, skipped: written.skipped,
                         bytes: written.parts.reduce(0) { $0 + $1.byteSize }, parts: written.parts.count)
        logger.info("cut delivered", metadata: [
            "destination": "\(plan.id)", "partition": "\(partition)", "cut": "\(cut)",
            "parts": "\(written.parts.count)", "lines": "\(written.lines)", "skipped": "\(written.skipped)",
            "duration_ms": "\(Self.milliseconds(ContinuousClock.now - started))",
        ])
        await writeCompleteInfos(i, range: report.from...cut)
        return owns(partition, state)
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    private func retryLater(_ again: () async -> Bool) async -> Bool? {
        try? await Task.sleep(for: .seconds(5))
        if Task.isCancelled { return false }
        return await again()
    }

    /// Delivers with exponential back-off until it succeeds, or the partition is lost, or the worker stops.
    private func deliver(_ plan: BatchDestinationPlan, what: String, stillOwned: @Sendable () -> Bool,
                         _ operation: () async throws -> Void) async -> Bool
    {
        let backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(30))
        var attempt = 0
        while true {
            attempt += 1
            let delay = backoff.delay(afterAttempt: attempt)
            BatchMetrics.deliveryAttempt(destination: plan.id)
            do {
                try await operation()
                return true
            } catch {
                BatchMetrics.deliveryFailure(destination: plan.id)
                logger.warning("delivery failed, retrying", metadata: [
                    "destination": "\(plan.id)", "file": "\(what)", "error": "\(error)",
                    "retry_in": "\(delay)",
                ])
            }
            // Sleep in short steps so that a shutdown or a lost partition stops the retries promptly.
            let until = ContinuousClock.now + delay
            while ContinuousClock.now < until {
                if Task.isCancelled || ownership.isStopping || !stillOwned() { return false }
                try? await Task.sleep(for: min(.milliseconds(200), until - ContinuousClock.now))
            }
        }
    }

    /// Writes the `.info` of every cut in `range` (all reported cuts when nil) that every partition has reported.
    private func writeCompleteInfos(_ i: Int, range: ClosedRange<Int64>?) async {
        let plan = plans[i]
        let count = await partitionCount()
        let ledger = self.ledger
        let reports = await BlockingIO.run { ledger.reports(destination: plan.id) }
        let cuts = ledger.madeCuts(in: range ?? (Int64.min...Int64.max), reports: reports)
        for cut in cuts {
            guard let parts = ledger.completeParts(destination: plan.id, cut: cut, partitionCount: count,
                                                   reports: reports)
            else { continue }
            let claimed = await BlockingIO.run { () -> Bool in
                !ledger.isDone(destination: plan.id, cut: cut) && ledger.claim(destination: plan.id, cut: cut)
            }
            guard claimed else { continue }
            let name = plan.names.info(cut: cut)
            let bytes = InfoFile.render(parts)
            let delivered = await deliver(plan, what: name, stillOwned: { true }) {
                try await plan.delivery.deliver(bytes: bytes, name: name)
            }
            guard delivered else { continue }
            try? await BlockingIO.run {
                try ledger.markDone(destination: plan.id, cut: cut)
                ledger.prune(destination: plan.id, before: cut - 20 * plan.schedule.every)
            }
            BatchMetrics.cutComplete(destination: plan.id, cut: cut)
            logger.info("cut complete", metadata: ["destination": "\(plan.id)", "cut": "\(cut)", "info": "\(name)",
                                                   "files": "\(parts.count)"])
        }
    }

    // MARK: offsets

    /// Marks final every record below the oldest record still waiting for a cut of some destination.
    private func completeFinished(_ partition: Int32, _ state: inout PartitionState) {
        guard let generation = state.generation, let last = state.lastOffset, let start = state.completedUpTo
        else { return }
        var target = last + 1
        for d in state.dests { if let from = d.pendingFrom { target = min(target, from) } }
        guard target > start else { return }
        let tp = TopicPartition(topic, partition)
        for offset in start..<target { offsets.complete(tp, offset: offset, generation: generation) }
        state.completedUpTo = target
    }

    // MARK: snapshots

    private func load(_ partition: Int32, firstOffset: Int64?, state: inout PartitionState) async {
        state.loaded = true
        let ids = plans.map(\.id)
        for i in plans.indices {
            let plan = plans[i]
            let snapshots = self.snapshots
            let catalog = plan.catalog
            do {
                let snapshot = try await BlockingIO.run { () -> Snapshot? in
                    guard let offset = snapshots.choose(destination: plan.id, partition: partition,
                                                        firstOffset: firstOffset, allDestinations: ids)
                    else { return nil }
                    return try snapshots.load(destination: plan.id, partition: partition, offset: offset,
                                              catalog: catalog)
                }
                if let snapshot {
                    state.dests[i].table = snapshot.table
                    state.dests[i].pool = snapshot.pool
                    state.dests[i].lastCut = snapshot.lastCut
                    state.dests[i].skipBelow = snapshot.nextOffset
                    state.dests[i].snapshotOffset = snapshot.nextOffset
                    logger.info("state loaded", metadata: [
                        "destination": "\(plan.id)", "partition": "\(partition)",
                        "offset": "\(snapshot.nextOffset)", "users": "\(snapshot.table.count)",
                    ])
                }
            } catch {
                logger.error("cannot load snapshot; starting empty",
                             metadata: ["destination": "\(plan.id)", "partition": "\(partition)",
                                        "error": "\(error)"])
            }
        }
    }

    // MARK: helpers

    private func partitionCount() async -> Int {
        let now = clock()
        if let cached = cachedPartitionCount, now - cached.at < 30_000 { return cached.count }
        let source = partitionCountSource
        if let count = try? await BlockingIO.run(source), count > 0 {
            cachedPartitionCount = (count, now)
            return count
        }
        return cachedPartitionCount?.count ?? max(1, (partitions.keys.max().map { Int($0) + 1 }) ?? 1)
    }

    private func deadLetter(_ record: KafkaRecord, reason: String) async {
        await deadLetters.keepMalformed(record, reason: reason, logger: logger)
    }

    private func publishStateMetrics() {
        for i in plans.indices {
            var users = 0
            var bytes = 0
            var pending = 0
            for state in partitions.values {
                users += state.dests[i].table.count
                bytes += state.dests[i].table.byteSize + state.dests[i].pool.byteSize
                pending += state.dests[i].pendingUsers
            }
            BatchMetrics.state(destination: plans[i].id, users: users, bytes: bytes, pendingUsers: pending)
        }
    }

    /// Waits for the operation in progress (a cut being delivered) to finish.
    func drain() async {
        await acquire()
        release()
    }

    /// Users held and bytes used, over all partitions (tests and the benchmark).
    func stateSize() -> (users: Int, bytes: Int) {
        var users = 0
        var bytes = 0
        for state in partitions.values {
            for d in state.dests {
                users += d.table.count
                bytes += d.table.byteSize + d.pool.byteSize
            }
        }
        return (users, bytes)
    }
}
