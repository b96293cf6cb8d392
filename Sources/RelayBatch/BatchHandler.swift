import AsyncHTTPClient
import Foundation
import RelayCore
import RelayKafka
import RelayRuntime
import ServiceLifecycle

/// `relay-batch`'s record handler (SPEC §5) on the shared runtime: every `kind: batch` destination, fed by the
/// qualifications topic, cut on its schedule, delivered to its output. See ``BatchEngine`` for the decisions and
/// ``CutLedger`` for how processes agree that a cut is complete.
public struct BatchHandler: RecordHandler {
    let engine: BatchEngine
    let ownership: Ownership
    let topic: String
    let tickInterval: Duration

    /// `stateDirectory` holds snapshots and cut reports; every process of the group must see the same one.
    public init(context: WorkerContext, stateDirectory: String,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws
    {
        let config = context.config
        let state = URL(fileURLWithPath: stateDirectory)
        let spool = state.appendingPathComponent("spool")
        var plans: [BatchDestinationPlan] = []
        for (destination, settings) in config.batchDestinations {
            let delivery = try makeDelivery(settings.output, spool: spool, httpClient: .shared,
                                            environment: environment)
            plans.append(BatchDestinationPlan(destination: destination, settings: settings, delivery: delivery))
        }
        let topic = config.kafka.topics.qualifications
        let ownership = Ownership()
        let producer = context.producer
        engine = BatchEngine(plans: plans, topic: topic, stateDirectory: state, ownership: ownership,
                             offsets: context.offsets, deadLetters: context.deadLetters, logger: context.logger,
                             partitionCount: { try producer.partitions(of: topic).count }, input: config.input)
        self.ownership = ownership
        self.topic = topic
        // Idle cuts are due `grace` after the cut time: check a few times per grace period, at most every second.
        let shortest = plans.map(\.settings.grace.milliseconds).min() ?? 1_000
        tickInterval = .milliseconds(max(100, min(1_000, shortest / 4)))
    }

    /// The idle timer; returns (without error) when the runtime cancels it at shutdown. On SIGTERM it also tells the
    /// engine to stop retrying deliveries, so that a partner that is down does not hold up the drain: what was not
    /// delivered is not committed, and the next owner writes it again.
    public func run() async throws {
        let ownership = self.ownership
        await withGracefulShutdownHandler {
            while !Task.isCancelled {
                do { try await Task.sleep(for: tickInterval) } catch { return }
                await engine.tick()
            }
        } onGracefulShutdown: {
            ownership.stop()
        }
    }

    public func handle(_ records: [KafkaRecord]) async {
        await engine.handle(records)
    }

    public func partitionsAssigned(_ partitions: [TopicPartition]) {
        ownership.assign(partitions.filter { $0.topic == topic }.map(\.partition))
    }

    public func partitionsRevoked(_ partitions: [TopicPartition]) {
        ownership.revoke(partitions.filter { $0.topic == topic }.map(\.partition))
    }

    public func drain() async {
        await engine.drain()
    }
}
