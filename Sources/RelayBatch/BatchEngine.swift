import Foundation
import RelayEncoding
import Logging
import RelayCore
import RelayKafka
import RelayRuntime

/// The batch worker's state and decisions: accumulation per destination and partition, cuts, delivery, reports,
/// and offset completion. This file holds accumulation and the idle timer; `+State` the changelog (``BatchChangelog``:
/// restore and writes), `+Cuts` making, delivering and reporting a cut.
///
/// One operation at a time (records, the idle timer, drain) holds the engine (an async lock inside the actor), so a
/// cut's delivery, which awaits, never interleaves with the accumulation it is cutting.
///
/// Per partition and destination a cut `c` (SPEC §5) is made when a record stamped at or after `c` is read (before
/// that record is applied), or by the idle timer once the wall clock is `grace` past `c` and the partition has read
/// nothing for `grace`. Before a cut the partition's state is written to the changelog; the cut is then written,
/// delivered (with retries), reported on `<group>.cuts` (``CutReports``), and recorded in the changelog's head.
/// Records are marked final as soon as the changelog holds what they changed, so the committed offset follows the
/// input closely whatever the cut period. A revoked partition's state is dropped; its next owner restores it and
/// replays from the commit, and writes the same files.
actor BatchEngine {
    struct PartitionState {
        /// The assignment's generation: records of another one are stale here.
        let generation: UInt64
        /// This assignment's changelog writes in flight.
        let changelog: ChangelogPipeline
        var loaded = false
        var assignedAt: Int64
        var lastReceipt: Int64
        /// The first offset not marked final yet.
        var completedUpTo: Int64?
        var lastOffset: Int64?
        /// The `nextOffset` of the last head written (or restored).
        var writtenUpTo: Int64?
        /// The head must be written again (a cut or an answer moved a destination's last cut).
        var headChanged = false
        /// Changelog keys to delete with the next write (users a cut left with nothing; a rebuild's old state).
        var tombstones: [[UInt8]] = []
        var dests: [DestinationPartitionState]
    }

    let plans: [BatchDestinationPlan]
    let topic: String
    let stateTopic: String
    let cutsTopic: String
    let completer: CutCompleter
    let producer: KafkaProducer
    let kafkaClient: KafkaClientConfiguration
    let ownership: Ownership
    let offsets: OffsetTracker
    let deadLetters: DeadLetterWriter
    let logger: Logger
    let clock: @Sendable () -> Int64
    /// Which event and record times are accepted (`input:`).
    let input: EventTimeWindow

    var partitions: [Int32: PartitionState] = [:]
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    static let maxCatchUpCuts = 10_000

    init(plans: [BatchDestinationPlan], context: WorkerContext, group: String, completer: CutCompleter,
         ownership: Ownership, clock: @escaping @Sendable () -> Int64 = { Timestamps.nowMilliseconds() })
    {
        self.plans = plans
        topic = context.config.kafka.topics.qualifications
        stateTopic = BatchChangelog.topic(group: group)
        cutsTopic = CutReports.topic(group: group)
        self.completer = completer
        producer = context.producer
        kafkaClient = context.kafkaClient
        self.ownership = ownership
        offsets = context.offsets
        deadLetters = context.deadLetters
        logger = context.logger
        self.clock = clock
        input = context.config.input
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
        for (partition, read) in byPartition.sorted(by: { $0.key < $1.key }) {
            guard var state = current(partition) else { continue }
            // Records read under an earlier assignment of the partition (revoked, then given back) are read again
            // under this one, from the commit point.
            let records = read.contains { $0.generation != state.generation }
                ? read.filter { $0.generation == state.generation } : read
            guard !records.isEmpty else { continue }
            partitions[partition] = nil
            if await apply(records, partition: partition, state: &state) {
                partitions[partition] = state
            }
        }
    }

    /// The partition's state under the current assignment (fresh after a new assignment); nil when not owned.
    private func current(_ partition: Int32) -> PartitionState? {
        guard let assignment = ownership.assignment(partition) else {
            partitions[partition] = nil
            return nil
        }
        if let state = partitions[partition], state.generation == assignment.generation { return state }
        let now = clock()
        return PartitionState(generation: assignment.generation, changelog: assignment.changelog, assignedAt: now, lastReceipt: now,
                              dests: Array(repeating: DestinationPartitionState(), count: plans.count))
    }

    func owns(_ partition: Int32, _ state: PartitionState) -> Bool {
        ownership.generation(partition) == state.generation
    }

    /// Returns false when the partition was lost meanwhile (its state must be dropped).
    private func apply(_ records: [KafkaRecord], partition: Int32, state: inout PartitionState) async -> Bool {
        if !state.loaded {
            guard await restore(partition, firstOffset: records.first?.offset, state: &state) else { return false }
        }
        // One clock reading per batch: the input window is days wide, a batch is read in milliseconds.
        let now = clock()
        state.lastReceipt = now
        for record in records {
            if state.completedUpTo == nil { state.completedUpTo = record.offset }
            var event: Qualification?
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
                let cut = plan.schedule.cut(containing: record.timestamp)
                if let open = state.dests[i].openCut {
                    if cut > open {
                        guard await makeCut(i, open, partition: partition, state: &state) else { return false }
                        guard await catchUp(i, from: open, before: cut, partition: partition, state: &state)
                        else { return false }
                        state.dests[i].openCut = cut
                    }
                } else {
                    if let last = state.dests[i].lastCut {
                        guard await catchUp(i, from: last, before: cut, partition: partition, state: &state)
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
            }
            state.lastOffset = record.offset
        }
        return await writeState(partition, &state)
    }

    /// Full mode writes every user at every cut: cuts a partition passed without records (after `from`, before
    /// `before`) are made from the unchanged state. Iter mode has nothing to write for them: the next report's range
    /// answers for them.
    private func catchUp(_ i: Int, from: Int64, before: Int64, partition: Int32,
                         state: inout PartitionState) async -> Bool
    {
        let plan = plans[i]
        guard plan.settings.mode == .full, state.dests[i].table.count > 0 else { return true }
        var cut = plan.schedule.next(after: from)
        var made = 0
        while cut < before, made < Self.maxCatchUpCuts {
            guard await makeCut(i, cut, partition: partition, state: &state) else { return false }
            cut = plan.schedule.next(after: cut)
            made += 1
        }
        return true
    }

    // MARK: the idle timer

    /// Makes the cuts of idle partitions and answers for cuts they had nothing in.
    func tick() async {
        await acquire()
        defer { release() }
        let now = clock()
        for (partition, _) in ownership.owned.sorted(by: { $0.key < $1.key }) {
            guard var state = current(partition) else { continue }
            partitions[partition] = nil
            if await idle(partition, now: now, state: &state) { partitions[partition] = state }
        }
        for p in partitions.keys where ownership.generation(p) == nil { partitions[p] = nil }
        publishStateMetrics()
    }

    private func idle(_ partition: Int32, now: Int64, state: inout PartitionState) async -> Bool {
        for i in plans.indices {
            let plan = plans[i]
            let grace = plan.settings.grace.milliseconds
            guard now - max(state.assignedAt, state.lastReceipt) >= grace else { continue }
            // No record since the assignment (the consumer is at the end): restore to cut from the state.
            if !state.loaded {
                guard await restore(partition, firstOffset: nil, state: &state) else { return false }
            }
            if let open = state.dests[i].openCut {
                guard now >= open + grace else { continue }
                guard await makeCut(i, open, partition: partition, state: &state) else { return false }
                state.dests[i].openCut = nil
                continue
            }
            let latest = plan.schedule.floorCut(now - grace)
            let last = state.dests[i].lastCut
            guard last.map({ latest > $0 }) ?? true else { continue }
            if plan.settings.mode == .full, state.dests[i].table.count > 0 {
                var cut = last.map { plan.schedule.next(after: $0) } ?? latest
                var made = 0
                while cut <= latest, made < Self.maxCatchUpCuts {
                    guard await makeCut(i, cut, partition: partition, state: &state) else { return false }
                    cut = plan.schedule.next(after: cut)
                    made += 1
                }
            } else {
                // Nothing to write: answer for the cuts up to `latest` so that other partitions' cuts complete.
                let report = CutReport(destination: plan.id, partition: partition, from: last ?? 0, cut: latest,
                                       made: false, parts: [], users: 0, skipped: 0)
                guard await publish(report, partition: partition, state: state) else { return false }
                state.dests[i].lastCut = latest
                state.headChanged = true
                guard await writeState(partition, &state) else { return false }
            }
        }
        return true
    }

    // MARK: helpers

    func deadLetter(_ record: KafkaRecord, reason: String) async {
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

    /// Waits for the operation in progress (a cut being delivered) to finish, and for the changelog writes in
    /// flight to be answered (so that the final commit covers what they made durable).
    func drain() async {
        await acquire()
        defer { release() }
        for state in partitions.values { await state.changelog.barrier() }
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
