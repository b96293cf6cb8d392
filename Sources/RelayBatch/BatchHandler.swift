import AsyncHTTPClient
import Foundation
import RelayCore
import RelayKafka
import RelayRuntime
import ServiceLifecycle

/// `relay-batch`'s record handler (SPEC §5) on the shared runtime: every `kind: batch` destination, fed by the
/// qualifications topic, cut on its schedule, delivered to its output. See ``BatchEngine`` for the decisions,
/// ``BatchChangelog`` for the state in Kafka and ``CutReports`` for how members agree that a cut is complete.
public struct BatchHandler: RecordHandler {
    let engine: BatchEngine
    let completer: CutCompleter
    let ownership: Ownership
    let topic: String
    let tickInterval: Duration

    /// `spoolDirectory` is where parts are written before an S3, HTTP or SFTP upload: local to this process, and
    /// it may be lost at any time (a part not delivered is written again from the state).
    public init(context: WorkerContext, group: String, spoolDirectory: String,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws
    {
        let config = context.config
        let spool = URL(fileURLWithPath: spoolDirectory)
        var plans: [BatchDestinationPlan] = []
        for (destination, settings) in config.batchDestinations {
            let delivery = try makeDelivery(settings.output, spool: spool, httpClient: .shared,
                                            environment: environment)
            plans.append(BatchDestinationPlan(destination: destination, settings: settings, delivery: delivery))
        }
        topic = config.kafka.topics.qualifications
        let ownership = Ownership(producer: context.producer)
        completer = CutCompleter(context: context, group: group, plans: plans)
        engine = BatchEngine(plans: plans, context: context, group: group, completer: completer,
                             ownership: ownership)
        self.ownership = ownership
        // Idle cuts are due `grace` after the cut time: check a few times per grace period, at most every second.
        let shortest = plans.map(\.settings.grace.milliseconds).min() ?? 1_000
        tickInterval = .milliseconds(max(100, min(1_000, shortest / 4)))
    }

    /// The idle timer and the cut completer; returns (without error) when the runtime cancels them at shutdown. On
    /// SIGTERM it also tells both to stop retrying deliveries, so that a partner that is down does not hold up the
    /// drain: what was not delivered is written again by the next owner.
    public func run() async throws {
        let ownership = self.ownership
        let completer = self.completer
        let engine = self.engine
        let tick = tickInterval
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await completer.run(tick: tick) }
                while !Task.isCancelled {
                    do { try await Task.sleep(for: tick) } catch { break }
                    await engine.tick()
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            ownership.stop()
            completer.stop()
        }
    }

    public func handle(_ records: [KafkaRecord]) async {
        await engine.handle(records)
    }

    public func partitionsAssigned(_ partitions: [TopicPartition], generation: UInt64) {
        let mine = partitions.filter { $0.topic == topic }.map(\.partition)
        ownership.assign(mine, generation: generation)
        if mine.contains(0) { completer.lead(true) }
    }

    public func partitionsRevoked(_ partitions: [TopicPartition]) {
        let mine = partitions.filter { $0.topic == topic }.map(\.partition)
        ownership.revoke(mine)
        if mine.contains(0) { completer.lead(false) }
    }

    public func drain() async {
        await engine.drain()
    }
}
