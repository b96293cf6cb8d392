import Foundation
import Logging
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime

/// Cuts: a partition's parts of one cut written and delivered, its report published to `<group>.cuts`, then the cut
/// recorded in the changelog; a delivery that fails is retried while the partition is still owned.
extension BatchEngine {
    /// Writes, delivers and reports one cut of destination `i` on `partition`, and records it in the changelog. The
    /// state must hold exactly the records read so far. Returns false when the partition was revoked meanwhile.
    func makeCut(_ i: Int, _ cut: Int64, partition: Int32, state: inout PartitionState) async -> Bool {
        let plan = plans[i]
        // What the cut is made from is in the changelog first: a restore after the cut must not re-apply it.
        guard await writeState(partition, &state, durably: true), let partitionCount = await knownPartitionCount(partition, state)
        else { return false }
        let table = state.dests[i].table
        let pool = state.dests[i].pool
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
            return await retryLater { [self] in await makeCut(i, cut, partition: partition, state: &state) } ?? false
        }
        for (part, file) in zip(written.parts, written.files) {
            let delivered = await Self.deliver(plan, what: part.name, logger: logger,
                                               giveUp: { [ownership, generation = state.generation] in
                                                   ownership.isStopping || ownership.generation(partition) != generation
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
        // The report before the head: a cut the changelog calls made always has its report.
        guard await publish(report, partition: partition, state: state) else { return false }
        for uuid in state.dests[i].table.commitCut() {
            state.tombstones.append(BatchChangelog.userKey(destination: plan.id, uuid: uuid))
        }
        state.dests[i].lastCut = cut
        // The users of this cut are in it: none belong to an open cut until the next record opens one.
        if let open = state.dests[i].openCut, open <= cut { state.dests[i].openCut = nil }
        state.headChanged = true
        guard await writeState(partition, &state) else { return false }
        BatchMetrics.cut(destination: plan.id, users: written.users, lines: written.lines, skipped: written.skipped,
                         bytes: written.parts.reduce(0) { $0 + $1.byteSize }, parts: written.parts.count)
        logger.info("cut delivered", metadata: [
            "destination": "\(plan.id)", "partition": "\(partition)", "cut": "\(cut)",
            "parts": "\(written.parts.count)", "lines": "\(written.lines)", "skipped": "\(written.skipped)",
            "duration_ms": "\(Self.milliseconds(ContinuousClock.now - started))",
        ])
        return owns(partition, state)
    }

    /// Publishes a partition's report on the cuts topic, retrying until the broker has it or the partition is lost.
    func publish(_ report: CutReport, partition: Int32, state: PartitionState) async -> Bool {
        let record = CutReports.reportRecord(report, topic: cutsTopic)
        var attempt = 0
        while owns(partition, state), !ownership.isStopping {
            do {
                _ = try await producer.send(record)
                completer.take(report)
                return true
            } catch {
                attempt += 1
                logger.warning("cut report not published yet, retrying", metadata: [
                    "destination": "\(report.destination)", "partition": "\(partition)", "cut": "\(report.cut)",
                    "error": "\(error)"])
                try? await Task.sleep(for: Backoff(initial: .milliseconds(200), maximum: .seconds(5))
                    .delay(afterAttempt: attempt))
            }
        }
        return false
    }

    /// The input's partition count from the broker (part numbers depend on it); waits while it is not known yet.
    private func knownPartitionCount(_ partition: Int32, _ state: PartitionState) async -> Int? {
        while owns(partition, state), !ownership.isStopping {
            if let count = completer.partitionCount { return count }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    private func retryLater(_ again: () async -> Bool) async -> Bool? {
        try? await Task.sleep(for: .seconds(5))
        if Task.isCancelled { return false }
        return await again()
    }

    /// Delivers with exponential back-off until it succeeds, or `giveUp` says to stop (the partition was lost, the
    /// worker is stopping).
    static func deliver(_ plan: BatchDestinationPlan, what: String, logger: Logger, giveUp: @Sendable () -> Bool,
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
                if Task.isCancelled || giveUp() { return false }
                try? await Task.sleep(for: min(.milliseconds(200), until - ContinuousClock.now))
            }
        }
    }
}
