import AsyncHTTPClient
import Foundation
import Logging
import RelayCore
import RelayEncoding
import RelayKafka
import RelayRuntime

/// `relay-realtime`'s record handler (SPEC §4): decodes each qualification, selects the user for every realtime
/// destination, cuts chunks and queues one message per destination and chunk; records become final when every
/// destination's outcome for them is (delivered or dead-lettered).
public struct RealtimeHandler: RecordHandler {
    let context: WorkerContext
    let router: RealtimeRouter
    /// Queued messages per destination above which it is parked (its new messages dead-lettered, redrivable).
    let maxPendingPerDestination: Int
    /// How long `drain` waits for deliveries in flight at shutdown.
    let drainTimeout: Duration
    /// The client for OAuth 2.0 tokens, shut down with the worker (``resources``).
    let client: HTTPClient

    /// Resolves every realtime destination's secrets now (an error names the missing one, never a value).
    public init(context: WorkerContext, client: HTTPClient, maxPendingPerDestination: Int = 4_096,
                drainTimeout: Duration = .seconds(20),
                environment: [String: String] = ProcessInfo.processInfo.environment) throws
    {
        self.context = context
        self.client = client
        self.maxPendingPerDestination = maxPendingPerDestination
        self.drainTimeout = drainTimeout
        let targets = try context.config.realtimeDestinations.map { destination, settings in
            let sender = try PartnerSender(destination: destination, settings: settings, client: client,
                                           environment: environment)
            return RealtimeRouter.Target(
                destination: destination, settings: settings,
                builder: RealtimeMessageBuilder(destination: destination, settings: settings),
                pipeline: DestinationPipeline(destination: destination, settings: settings, sender: sender,
                                              deadLetters: context.deadLetters, tracker: context.offsets,
                                              logger: context.logger, maxQueued: maxPendingPerDestination))
        }
        router = RealtimeRouter(targets: targets, tracker: context.offsets)
        if targets.isEmpty { context.logger.warning("no realtime destinations configured: events are only read") }
    }

    public var resources: [ClosingService] {
        let senders = router.targets.map(\.pipeline.sender)
        return [ClosingService("partner connections", logger: context.logger) { [client] in
            for sender in senders { await sender.shutdown() }
            try await client.shutdown()
        }]
    }

    /// The flush timer: closes chunks whose partition went quiet for their flush interval.
    public func run() async throws {
        let shortest = router.targets.map(\.settings.flushIntervalMs).min() ?? 1000
        let tick = Duration.milliseconds(min(100, max(5, shortest / 10)))
        // Ends quietly when the runtime cancels it after `drain`.
        while !Task.isCancelled {
            try? await Task.sleep(for: tick)
            router.flushDue()
        }
    }

    public func handle(_ records: [KafkaRecord]) async {
        var entries: [RealtimeRouter.Entry] = []
        entries.reserveCapacity(records.count)
        let now = Timestamps.nowMilliseconds()
        for record in records {
            var targets: [ChunkEntry.Target] = []
            // A refused record time never reaches the chunk clock: the record (dead-lettered) closes on wall time.
            let chunkTime = context.recordTimeProblem(record, now: now) == nil ? record.timestamp : now
            do {
                let event = try context.qualification(of: record, now: now)
                for (index, target) in router.targets.enumerated() {
                    switch RealtimeSelection.select(event, offset: record.offset, destination: target.destination,
                                                    settings: target.settings)
                    {
                    case .none: break
                    case .skipped: target.pipeline.metrics.skipped.increment()
                    case .user(let user): targets.append(ChunkEntry.Target(destination: index, user: user))
                    }
                }
            } catch {
                await context.deadLetters.keepMalformed(record, reason: error.reason, logger: context.logger)
            }
            entries.append(RealtimeRouter.Entry(
                partition: record.topicPartition, generation: record.generation,
                entry: ChunkEntry(offset: record.offset, kafkaTimestamp: chunkTime, targets: targets)))
        }
        // Waits only for a healthy destination that is behind (it is draining); a failing one with a full queue parks
        // its messages instead (see DestinationPipeline), so a sick partner never holds the others.
        while router.targets.contains(where: { $0.pipeline.needsBackPressure }), !Task.isCancelled {
            router.flushDue()
            try? await Task.sleep(for: .milliseconds(20))
        }
        router.ingest(entries)
    }

    public func partitionsRevoked(_ partitions: [TopicPartition]) {
        router.revoke(partitions)
    }

    /// Sends the partial messages now and waits (bounded) until every queued message is final.
    public func drain() async {
        router.flushAll()
        let deadline = ContinuousClock.now + drainTimeout
        while router.targets.contains(where: { $0.pipeline.pending > 0 }) {
            if ContinuousClock.now > deadline {
                context.logger.warning("drain timed out: undelivered messages will be replayed by the next owner",
                                       metadata: ["pending": "\(router.targets.map(\.pipeline.pending))"])
                return
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// The HTTP client that fetches OAuth 2.0 tokens for the realtime destinations (messages go through each
/// destination's ``PartnerConnections``).
public enum RealtimeHTTP {
    public static func makeClient() -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}
