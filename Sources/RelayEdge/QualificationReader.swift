import Dispatch
import Foundation
import Logging
import RelayCore
import RelayKafka
import RelayRuntime
import ServiceLifecycle
import Synchronization
import RelayEncoding

/// Keeps the ``SegmentStore`` current: reads every partition of the qualification topic (assigned, no group, no
/// commits), applies each event as the user's new state, and marks the edge ready once it has caught up with the
/// high watermarks seen at start. Starts from the local snapshot when there is one and writes a new snapshot every
/// `snapshotInterval` and on shutdown.
final class QualificationReader: Service, Sendable {
    let config: RelayConfig
    let client: KafkaClientConfiguration
    let store: SegmentStore
    let catalog: EdgeCatalog
    let readiness: Readiness
    let metrics: EdgeMetrics
    let logger: Logger
    let snapshotInterval: Duration
    /// Next offset to read per partition, for the events applied so far.
    private let applied = Mutex<[Int32: Int64]>([:])
    /// Per partition, the ListOffsets high watermark seen at start and whether the partition was empty then.
    private let listed = Mutex<[Int32: (high: Int64, empty: Bool)]>([:])
    /// Per partition, the offset to reach before the edge is ready: the larger of the listed high watermark and the
    /// first one a fetch reports (Tansu's ListOffsets can lag behind: it counts batches), frozen once known so that
    /// a busy topic does not keep moving the goal.
    private let targets = Mutex<[Int32: Int64]>([:])
    private let consumer = Mutex<KafkaConsumer?>(nil)
    private let snapshotLock = Mutex<Bool>(false)

    init(config: RelayConfig, client: KafkaClientConfiguration, store: SegmentStore, catalog: EdgeCatalog,
         readiness: Readiness, metrics: EdgeMetrics, logger: Logger, snapshotInterval: Duration)
    {
        self.config = config
        self.client = client
        self.store = store
        self.catalog = catalog
        self.readiness = readiness
        self.metrics = metrics
        self.logger = logger
        self.snapshotInterval = snapshotInterval
    }

    var topic: String { config.kafka.topics.qualifications }

    func run() async throws {
        let start = try await prepare()
        let consumer = try KafkaConsumer(
            configuration: ConsumerConfiguration(client: client, mode: .assign(start, group: nil),
                                                 maxBufferedRecords: 20_000, batchSize: 2_000),
            logger: logger)
        self.consumer.withLock { $0 = consumer }
        try consumer.start()
        checkCaughtUp()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.snapshotLoop() }
            group.addTask { await self.lagLoop(consumer) }
            await withGracefulShutdownHandler {
                for await batch in consumer.batches() {
                    self.apply(batch)
                }
            } onGracefulShutdown: {
                Task { await consumer.stopFetching() }
            }
            group.cancelAll()
        }
        await consumer.close()
        await writeSnapshot(reason: "shutdown")
    }

    /// Loads the snapshot and works out where each partition starts and what "caught up" means.
    private func prepare() async throws -> [TopicPartition: Int64] {
        let directory = config.edge.snapshotDir
        let (store, topic, logger) = (self.store, self.topic, self.logger)
        let loaded: StoreSnapshot.Loaded? = await BlockingIO.run {
            do {
                return try StoreSnapshot.load(into: store, directory: directory)
            } catch {
                logger.warning("snapshot not used; reading the topic from the beginning",
                               metadata: ["error": "\(error)"])
                return nil
            }
        }
        var snapshotOffsets: [Int32: Int64] = [:]
        if let loaded {
            if loaded.topic == topic {
                snapshotOffsets = loaded.offsets
                logger.info("snapshot loaded", metadata: ["users": "\(loaded.users)", "directory": "\(directory)"])
            } else {
                logger.warning("snapshot is of another topic; reading from the beginning",
                               metadata: ["snapshot_topic": "\(loaded.topic)"])
            }
        }
        if snapshotOffsets.isEmpty, store.userCount > 0 {
            throw StoreSnapshot.Failure(description: "snapshot of another topic loaded; remove \(directory)")
        }
        let admin = try KafkaAdmin(configuration: client, logger: logger)
        var partitions: [(TopicPartition, Int64, Int64)] = []
        for tp in try await admin.topicPartitions(topic) {
            let (low, high) = try await admin.watermarks(tp)
            partitions.append((tp, low, high))
        }
        guard !partitions.isEmpty else {
            throw StoreSnapshot.Failure(description: "topic \(topic) has no partitions (does it exist?)")
        }
        var start: [TopicPartition: Int64] = [:]
        var listed: [Int32: (high: Int64, empty: Bool)] = [:]
        var applied: [Int32: Int64] = [:]
        for (tp, low, high) in partitions {
            // An offset the topic no longer has (retention, a recreated topic) is reset to the earliest by the client.
            let from = snapshotOffsets[tp.partition] ?? low
            start[tp] = from
            applied[tp.partition] = from
            listed[tp.partition] = (high, high <= low)
        }
        self.listed.withLock { $0 = listed }
        self.applied.withLock { $0 = applied }
        updateGauges()
        logger.info("reading qualifications",
                    metadata: ["topic": "\(topic)", "partitions": "\(partitions.count)",
                               "from_snapshot": "\(!snapshotOffsets.isEmpty)"])
        return start
    }

    private func apply(_ batch: [KafkaRecord]) {
        var updates: [UserUpdate] = []
        updates.reserveCapacity(batch.count)
        var malformed = 0
        for record in batch {
            do {
                let qualification = try QualificationDecoder.decode(record.value)
                updates.append(UserUpdate(uuid: qualification.uuid, state: catalog.userState(of: qualification)))
            } catch {
                // relay-edge does not dead-letter: every edge reads every record, and the group workers already do.
                malformed += 1
                if malformed == 1 {
                    logger.warning("malformed qualification skipped",
                                   metadata: ["source": "\(record.source)", "reason": "\(error.reason)"])
                }
            }
        }
        store.apply(updates)
        applied.withLock { applied in
            for record in batch { applied[record.partition] = max(applied[record.partition] ?? 0, record.offset + 1) }
        }
        metrics.eventsApplied.increment(by: Int64(updates.count))
        if malformed > 0 { metrics.malformedEvents.increment(by: Int64(malformed)) }
        if !readiness.isReady { checkCaughtUp() }
    }

    private func checkCaughtUp() {
        guard let consumer = consumer.withLock({ $0 }) else { return }
        let listed = self.listed.withLock { $0 }
        let applied = self.applied.withLock { $0 }
        let topic = self.topic
        let done = targets.withLock { targets in
            var done = true
            for (partition, listing) in listed {
                if targets[partition] == nil {
                    if listing.empty {
                        targets[partition] = listing.high
                    } else if let fetched = consumer.cachedHighWatermark(TopicPartition(topic, partition)) {
                        targets[partition] = max(listing.high, fetched)
                    }
                }
                guard let target = targets[partition], (applied[partition] ?? 0) >= target else {
                    done = false
                    continue
                }
            }
            return done
        }
        if done {
            readiness.set(true)
            updateGauges()
            logger.info("caught up; ready", metadata: ["users": "\(store.userCount)"])
        }
    }

    private func lagLoop(_ consumer: KafkaConsumer) async {
        var ticks = 0
        while !Task.isCancelled {
            // Fast while catching up (readiness may come without a new record), then once a second.
            try? await Task.sleep(for: .milliseconds(100))
            if !readiness.isReady { checkCaughtUp() }
            ticks += 1
            guard ticks % 10 == 0 else { continue }
            var lag: Int64 = 0
            let applied = self.applied.withLock { $0 }
            let listed = self.listed.withLock { $0 }
            for (partition, next) in applied {
                let high = consumer.cachedHighWatermark(TopicPartition(topic, partition)) ?? listed[partition]?.high ?? next
                lag += max(0, high - next)
            }
            metrics.catchUpLag.set(Double(lag))
            updateGauges()
        }
    }

    private func updateGauges() {
        metrics.users.set(Double(store.userCount))
        metrics.storeBytes.set(Double(store.byteCount))
    }

    private func snapshotLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: snapshotInterval)
            guard !Task.isCancelled else { return }
            // Snapshots of a half-read topic are still valid, but wait until ready so start-up is not slowed.
            if readiness.isReady { await writeSnapshot(reason: "periodic") }
        }
    }

    /// Writes a snapshot now (one at a time). Offsets first, then the users: see ``StoreSnapshot``.
    func writeSnapshot(reason: String) async {
        guard snapshotLock.withLock({ busy in busy ? false : { busy = true; return true }() }) else { return }
        defer { snapshotLock.withLock { $0 = false } }
        let offsets = applied.withLock { $0 }
        guard !offsets.isEmpty else { return }
        let (store, topic, directory, logger, metrics) = (self.store, self.topic, config.edge.snapshotDir, logger, metrics)
        let started = ContinuousClock.now
        await BlockingIO.run {
            do {
                let users = try StoreSnapshot.write(store: store, topic: topic, offsets: offsets, directory: directory)
                metrics.snapshotUsers.set(Double(users))
                logger.info("snapshot written",
                            metadata: ["reason": "\(reason)", "users": "\(users)",
                                       "seconds": "\((ContinuousClock.now - started).components.seconds)"])
            } catch {
                logger.error("snapshot failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
