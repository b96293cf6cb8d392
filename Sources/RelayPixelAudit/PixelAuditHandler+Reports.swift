import Foundation
import Logging
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime

/// What the audit publishes: each partition's share of every closed window and its progress to `<group>.shares`
/// (merged by ``ReportMerger``), and the merged reports followed back from `aam.pixel-audit` into the report book.
extension PixelAuditHandler {
    /// Closes idle partitions' windows, publishes due reports, writes due checkpoints, completes covered records.
    func tick(force: Bool) async {
        // A partition with no traffic still closes its windows on the wall clock: load every assigned one.
        for (tp, generation) in context.offsets.assignedGenerations
        where !slots.withLock({ $0[tp]?.generation == generation }) {
            await ensureLoaded(tp, generation: generation)
        }
        let now = Timestamps.nowMilliseconds()
        let idleMs = max(graceMs, 1_000)
        let thresholds = self.thresholds
        var due: [(TopicPartition, UInt64, PendingReport)] = []
        var progress: [(TopicPartition, UInt64, Int64)] = []
        var deltas: [[Int64: AuditDeltas]] = []
        var pixels = 0
        var open = 0
        slots.withLock { slots in
            for tp in Array(slots.keys) {
                var slot = slots.removeValue(forKey: tp)!
                let idle = now - slot.lastRecordWall >= idleMs
                if idle, slot.audit.closeIdle(now: now) { slot.changed = true }
                for report in slot.audit.reportsToPublish(maxLossRate: thresholds.maxLossRate) {
                    due.append((tp, slot.generation, report))
                }
                // Event time closes windows; an idle partition has closed everything the wall clock has passed.
                let reached = idle ? max(slot.audit.watermark, now) : slot.audit.watermark
                let closedThrough = reached == .min ? .min : slot.audit.closeBoundary(atOrBefore: reached)
                if closedThrough != .min, closedThrough > slot.progressSent {
                    progress.append((tp, slot.generation, closedThrough))
                }
                deltas.append(slot.audit.takeMetrics())
                pixels += slot.audit.pixelCount
                open += slot.audit.openWindowCount
                slots[tp] = slot
            }
        }
        for d in deltas { PixelAuditMetrics.record(d) }
        PixelAuditMetrics.state(pixels: pixels, openWindows: open)
        let failed = due.isEmpty ? [] : await publish(due)
        await sendProgress(progress.filter { !failed.contains($0.0) })
        await checkpoint(now: now, force: force)
    }

    /// Each partition's `closed_through`, after its shares were acknowledged (the merger relies on that order).
    private func sendProgress(_ progress: [(TopicPartition, UInt64, Int64)]) async {
        for (tp, generation, closedThrough) in progress {
            let record = OutgoingRecord(
                topic: sharesTopic, key: AuditShares.progressKey(partition: tp.partition),
                value: ShareProgress(partition: tp.partition, closedThrough: closedThrough).jsonBytes(),
                partition: tp.partition)
            guard (try? await context.producer.send(record)) != nil else { continue }  // sent again next tick
            slots.withLock { slots in
                if slots[tp]?.generation == generation { slots[tp]!.progressSent = closedThrough }
            }
        }
    }

    private struct Share: Hashable {
        let partition: TopicPartition
        let window: WindowKey
    }

    /// Sends the shares to the shares topic (partition = input partition); returns the partitions where one failed.
    private func publish(_ due: [(TopicPartition, UInt64, PendingReport)]) async -> Set<TopicPartition> {
        let producer = context.producer
        let topic = sharesTopic
        let published = await withTaskGroup(of: (TopicPartition, UInt64, WindowKey, UInt64)?.self) { group in
            for (tp, generation, pending) in due {
                group.addTask {
                    let record = OutgoingRecord(topic: topic,
                                                key: AuditShares.shareKey(pending.report, partition: tp.partition),
                                                value: pending.report.jsonBytes(), partition: tp.partition)
                    do {
                        _ = try await producer.send(record)
                        return (tp, generation, pending.key, pending.revision)
                    } catch {
                        return nil
                    }
                }
            }
            var done: [(TopicPartition, UInt64, WindowKey, UInt64)] = []
            for await result in group { if let result { done.append(result) } }
            return done
        }
        if published.count < due.count {
            context.logger.warning("pixel audit shares not published yet, retrying",
                                   metadata: ["failed": "\(due.count - published.count)"])
        }
        slots.withLock { slots in
            for (tp, generation, key, revision) in published where slots[tp]?.generation == generation {
                slots[tp]!.audit.markPublished(key, revision: revision)
            }
        }
        let acknowledged = Set(published.map { Share(partition: $0.0, window: $0.2) })
        return Set(due.filter { !acknowledged.contains(Share(partition: $0.0, window: $0.2.key)) }.map(\.0))
    }

    // The merged view.

    /// Follows `aam.pixel-audit` from the beginning into the report book (what `/report` serves and the loss-rate
    /// gauges show): every worker sees every destination, whichever partitions it owns.
    func followReports() async {
        await TopicFollower.follow(auditTopic, client: context.kafkaClient, logger: context.logger) { batch in
            for record in batch {
                guard let report = try? AuditReport.decode(record.value) else { continue }  // never trusted
                take(report)
            }
        }
    }

    private func take(_ report: AuditReport) {
        let before = book.reports(destination: report.destinationID).last { $0.windowStart == report.windowStart }
        guard let merged = book.apply(report) else { return }
        let latest = book.reports(destination: report.destinationID).last?.windowStart == merged.windowStart
        PixelAuditMetrics.report(merged, isLatest: latest, newlyAlerting: merged.alert && before?.alert != true)
    }
}
