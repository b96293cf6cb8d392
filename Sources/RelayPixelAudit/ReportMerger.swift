import Logging
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime
import Synchronization

/// Publishes one merged report per destination and window to `aam.pixel-audit` (SPEC §6), from the partition owners'
/// shares on `<group>.shares` (see ``AuditShares``).
///
/// Every member follows the shares topic from its beginning into a ``MergeBook``; only the member that owns input
/// partition 0 publishes, so exactly one member does whatever the group's size. On taking over it first reads what
/// is on the output topic, so that a report already there is not published again. The input's partition count comes
/// from the broker (retried until known), never guessed: a window is due only once every partition has closed it.
final class ReportMerger: Sendable {
    let context: WorkerContext
    let sharesTopic: String
    let auditTopic: String
    let inputTopic: String
    let group: String
    private let book: Mutex<MergeBook>
    private let leading = Atomic<Bool>(false)
    /// Set when this member starts leading: the output topic is read again before anything is published.
    private let needsCatchUp = Atomic<Bool>(true)
    private let inputPartitions = Atomic<Int32>(0)

    init(context: WorkerContext, group: String, windowMs: Int64, graceMs: Int64, thresholds: LossThresholds) {
        self.context = context
        self.group = group
        sharesTopic = AuditShares.topic(group: group)
        auditTopic = context.config.kafka.topics.pixelAudit
        inputTopic = context.config.kafka.topics.pixelEvents
        book = Mutex(MergeBook(windowMs: windowMs, graceMs: graceMs, thresholds: thresholds))
    }

    /// Whether this member owns input partition 0 (set from the assignment callbacks).
    func lead(_ on: Bool) {
        if on && !leading.load(ordering: .relaxed) { needsCatchUp.store(true, ordering: .relaxed) }
        leading.store(on, ordering: .relaxed)
    }

    /// Creates the internal topics if they are missing (shares and state, compacted, as many partitions as the input),
    /// learns the input's partition count, then follows the shares and publishes what is due until cancelled.
    func run(tick: Duration) async {
        await prepare()
        await withDiscardingTaskGroup { group in
            group.addTask { await self.followShares() }
            while !Task.isCancelled {
                try? await Task.sleep(for: tick)
                await publishDue()
            }
            group.cancelAll()
        }
    }

    private func prepare() async {
        if let count = await InternalTopicSetup.prepare([sharesTopic, AuditChangelog.topic(group: group)],
                                                        input: inputTopic, client: context.kafkaClient,
                                                        logger: context.logger)
        {
            inputPartitions.store(count, ordering: .relaxed)
        }
    }

    private func followShares() async {
        let logger = context.logger
        await TopicFollower.follow(sharesTopic, client: context.kafkaClient, logger: logger) { batch in
            var records: [AuditShares.Record] = []
            for record in batch {
                do throws(MalformedInput) {
                    records.append(try AuditShares.decode(record))
                } catch {
                    // Never trusted; the publishing member keeps it for inspection.
                    if leading.load(ordering: .relaxed) {
                        _ = await context.deadLetters.keepMalformed(record, reason: error.reason, logger: logger)
                    }
                }
            }
            book.withLock { book in for r in records { book.take(r) } }
        }
    }

    private func publishDue() async {
        guard leading.load(ordering: .relaxed) else { return }
        let partitions = inputPartitions.load(ordering: .relaxed)
        guard partitions > 0 else { return }  // not known yet: nothing is complete
        if needsCatchUp.load(ordering: .relaxed) {
            guard await catchUp() else { return }
        }
        let due = book.withLock { $0.due(partitions: partitions) }
        for report in due {
            let record = OutgoingRecord(topic: auditTopic, key: Array(String(report.destinationID).utf8),
                                        value: report.jsonBytes())
            do {
                _ = try await context.producer.send(record)
                book.withLock { $0.notePublished(report) }
            } catch {
                context.logger.warning("merged audit report not published yet, retrying",
                                       metadata: ["destination": "\(report.destinationID)",
                                                  "window_start": "\(report.windowStart)", "error": "\(error)"])
                return
            }
        }
    }

    /// Reads the output topic to its end into the book's "published" side.
    private func catchUp() async -> Bool {
        do {
            var published: [AuditReport] = []
            let (_, complete) = try await AuditTopicReader.read(
                topic: auditTopic, client: context.kafkaClient, logger: context.logger, timeout: .seconds(60)
            ) { if $0.partition == nil { published.append($0) } }
            // A partial read could publish again what is there: try again rather than guess.
            guard complete else { throw KafkaError.timedOut(operation: "read \(auditTopic)") }
            book.withLock { book in for report in published { book.notePublished(report) } }
            needsCatchUp.store(false, ordering: .relaxed)
            return true
        } catch {
            context.logger.warning("cannot read the audit topic yet, retrying",
                                   metadata: ["topic": "\(auditTopic)", "error": "\(error)"])
            return false
        }
    }
}
