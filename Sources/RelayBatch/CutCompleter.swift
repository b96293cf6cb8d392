import Logging
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime
import Synchronization

/// Writes exactly one `.info` per destination and complete cut (SPEC §5), from the partition owners' reports on
/// `<group>.cuts` (see ``CutReports``).
///
/// Every member follows the topic into a ``CutBook``; only the member that owns input partition 0 writes, so one
/// member does whatever the group's size. On taking over it first reads the topic to its end, so that a cut whose
/// `.info` is already written is not written again. The input's partition count comes from the broker (retried until
/// known, then refreshed every minute): until it is known nothing is complete and no part is numbered.
final class CutCompleter: Sendable {
    let context: WorkerContext
    let plans: [BatchDestinationPlan]
    let cutsTopic: String
    let stateTopic: String
    let inputTopic: String
    private let book = Mutex(CutBook())
    private let leading = Atomic<Bool>(false)
    private let needsCatchUp = Atomic<Bool>(true)
    private let inputPartitions = Atomic<Int32>(0)
    /// Shutdown began: an `.info` delivery that keeps failing gives up (the next owner of partition 0 writes it).
    private let stopping = Atomic<Bool>(false)
    /// Cuts older than this many periods before the latest written `.info` are pruned from the topic.
    static let keptPeriods: Int64 = 20

    init(context: WorkerContext, group: String, plans: [BatchDestinationPlan]) {
        self.context = context
        self.plans = plans
        cutsTopic = CutReports.topic(group: group)
        stateTopic = BatchChangelog.topic(group: group)
        inputTopic = context.config.kafka.topics.qualifications
    }

    /// The input's partition count, nil until the broker has told it.
    var partitionCount: Int? {
        let count = inputPartitions.load(ordering: .relaxed)
        return count > 0 ? Int(count) : nil
    }

    /// Whether this member owns input partition 0 (set from the assignment callbacks).
    func lead(_ on: Bool) {
        if on && !leading.load(ordering: .relaxed) { needsCatchUp.store(true, ordering: .relaxed) }
        leading.store(on, ordering: .relaxed)
    }

    func stop() { stopping.store(true, ordering: .relaxed) }

    /// A report this member has just published (the follower will see it too; this only saves a round trip).
    func take(_ report: CutReport) { book.withLock { $0.add(report) } }

    /// Creates the internal topics if they are missing, learns the input's partition count, then follows the
    /// reports and writes what is due until cancelled.
    func run(tick: Duration) async {
        await prepare()
        await withDiscardingTaskGroup { group in
            group.addTask { await self.followReports() }
            var lastRefresh = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: tick)
                if ContinuousClock.now - lastRefresh > .seconds(60) {
                    lastRefresh = ContinuousClock.now
                    await refreshPartitionCount()
                }
                await completeDue()
            }
            group.cancelAll()
        }
    }

    private func prepare() async {
        if let count = await InternalTopicSetup.prepare([stateTopic, cutsTopic], input: inputTopic,
                                                        client: context.kafkaClient, logger: context.logger)
        {
            inputPartitions.store(count, ordering: .relaxed)
        }
    }

    private func refreshPartitionCount() async {
        guard let admin = try? KafkaAdmin(configuration: context.kafkaClient, logger: context.logger),
              let count = try? await admin.partitions(of: inputTopic).count, count > 0
        else { return }
        inputPartitions.store(Int32(count), ordering: .relaxed)
    }

    private func followReports() async {
        let logger = context.logger
        await TopicFollower.follow(cutsTopic, client: context.kafkaClient, logger: logger) { batch in
            let records = await decode(batch)
            book.withLock { book in for r in records { book.apply(r) } }
        }
    }

    /// Decodes a batch of the topic; a record that does not decode is never trusted, and the writing member keeps
    /// it as a dead letter for inspection.
    private func decode(_ batch: [KafkaRecord]) async -> [CutReports.Record] {
        var records: [CutReports.Record] = []
        for record in batch {
            do throws(MalformedInput) {
                records.append(try CutReports.decode(record))
            } catch {
                if leading.load(ordering: .relaxed) {
                    _ = await context.deadLetters.keepMalformed(record, reason: error.reason, logger: context.logger)
                }
            }
        }
        return records
    }

    private func completeDue() async {
        guard leading.load(ordering: .relaxed), let count = partitionCount else { return }
        if needsCatchUp.load(ordering: .relaxed) {
            guard await catchUp() else { return }
        }
        for plan in plans {
            let due = book.withLock { book in
                book.pendingCuts(destination: plan.id).compactMap { cut in
                    book.completeParts(destination: plan.id, cut: cut, partitionCount: count).map { (cut, $0) }
                }
            }
            for (cut, parts) in due {
                guard await writeInfo(plan, cut: cut, parts: parts) else { return }
            }
            await prune(plan)
        }
    }

    /// Whether a complete cut waits for its `.info` (tests wait for it to be written).
    func hasDue() -> Bool {
        guard let count = partitionCount else { return true }
        return book.withLock { book in
            plans.contains { plan in
                book.pendingCuts(destination: plan.id).contains {
                    book.completeParts(destination: plan.id, cut: $0, partitionCount: count) != nil
                }
            }
        }
    }

    /// Delivers the `.info`, then records that it is written; false when it must be tried again later.
    private func writeInfo(_ plan: BatchDestinationPlan, cut: Int64, parts: [WrittenPart]) async -> Bool {
        let name = plan.names.info(cut: cut)
        let bytes = InfoFile.render(parts)
        let delivered = await BatchEngine.deliver(plan, what: name, logger: context.logger,
                                                  giveUp: { [self] in stopping.load(ordering: .relaxed)
                                                      || !leading.load(ordering: .relaxed) }) {
            try await plan.delivery.deliver(bytes: bytes, name: name)
        }
        guard delivered else { return false }
        do {
            _ = try await context.producer.send(CutReports.doneRecord(destination: plan.id, cut: cut, file: name,
                                                                      topic: cutsTopic))
        } catch {
            // Written but not recorded: the next attempt writes the same bytes to the same name.
            context.logger.warning("cut complete but not recorded yet, retrying",
                                   metadata: ["destination": "\(plan.id)", "cut": "\(cut)", "error": "\(error)"])
            return false
        }
        book.withLock { $0.markDone(destination: plan.id, cut: cut) }
        BatchMetrics.cutComplete(destination: plan.id, cut: cut)
        context.logger.info("cut complete", metadata: ["destination": "\(plan.id)", "cut": "\(cut)",
                                                       "info": "\(name)", "files": "\(parts.count)"])
        return true
    }

    /// Tombstones for what is older than `keptPeriods` periods before the latest written `.info`.
    private func prune(_ plan: BatchDestinationPlan) async {
        let keys: [[UInt8]] = book.withLock { book in
            guard let last = book.lastDone(destination: plan.id) else { return [] }
            return book.prunable(destination: plan.id, before: last - Self.keptPeriods * plan.schedule.every)
        }
        guard !keys.isEmpty else { return }
        let records = keys.map { key -> OutgoingRecord in
            // Reports live on their partition's partition of the topic, markers on partition 0.
            let fields = String(decoding: key, as: UTF8.self).split(separator: "/")
            let partition = fields.first == "report" ? Int32(fields[2]) ?? 0 : 0
            return OutgoingRecord.tombstone(topic: cutsTopic, key: key, partition: partition)
        }
        guard (try? await context.producer.sendAll(records)) != nil else { return }
        book.withLock { book in
            for record in records {
                let fields = String(decoding: record.key ?? [], as: UTF8.self).split(separator: "/")
                if fields.first == "report", fields.count == 4, let p = Int32(fields[2]), let c = Int64(fields[3]) {
                    book.apply(.removedReport(destination: plan.id, partition: p, cut: c))
                } else if fields.count == 3, let c = Int64(fields[2]) {
                    book.apply(.removedDone(destination: plan.id, cut: c))
                }
            }
        }
    }

    /// Reads the topic to its end into the book.
    private func catchUp() async -> Bool {
        do {
            let (records, _) = try await CutsTopicReader.read(topic: cutsTopic, client: context.kafkaClient,
                                                              logger: context.logger, timeout: .seconds(60))
            book.withLock { book in for r in records { book.apply(r) } }
            needsCatchUp.store(false, ordering: .relaxed)
            return true
        } catch {
            context.logger.warning("cannot read the batch cuts topic yet, retrying",
                                   metadata: ["topic": "\(cutsTopic)", "error": "\(error)"])
            return false
        }
    }
}
