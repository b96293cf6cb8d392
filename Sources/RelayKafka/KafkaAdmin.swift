import CRdKafka
import RelayEncoding
import Foundation
import Logging

/// Topic and group administration: create topics, list groups, and read or rewrite a stopped group's offsets.
public final class KafkaAdmin: Sendable {
    private let configuration: KafkaClientConfiguration
    private let client: RDKafkaClient
    private let logger: Logger

    public struct GroupInfo: Sendable, Equatable {
        public let name: String
        public let state: String
        public let memberCount: Int
    }

    public enum TopicCreation: Sendable, Equatable {
        case created
        case alreadyExists
    }

    public init(configuration: KafkaClientConfiguration, logger: Logger) throws(KafkaError) {
        self.configuration = configuration
        self.logger = logger
        let conf = try configuration.makeConf(role: .producer, defaults: ["client.id": "audience-relay-admin"],
                                              overrides: ["allow.auto.create.topics": "false"],
                                              operation: "admin")
        client = try RDKafkaClient(type: RD_KAFKA_PRODUCER, conf: conf, operation: "admin")
    }

    /// Creates each topic that does not exist yet; existing topics are left alone, whatever their partition count.
    /// `settings` are topic configs given to every new topic (`cleanup.policy: compact`, say).
    public func createTopics(_ topics: [String], partitions: Int32, replicationFactor: Int32 = -1,
                             settings: [String: String] = [:],
                             timeoutMs: Int32 = 30_000) async throws(KafkaError) -> [String: TopicCreation]
    {
        let client = self.client
        return try await BlockingIO.run { () throws(KafkaError) in
            try client.withHandle("createTopics") { handle throws(KafkaError) in
                var errbuf = [CChar](repeating: 0, count: 512)
                var newTopics: [OpaquePointer?] = []
                defer { for t in newTopics { rd_kafka_NewTopic_destroy(t) } }
                for topic in topics {
                    guard let t = rd_kafka_NewTopic_new(topic, partitions, replicationFactor, &errbuf, errbuf.count) else {
                        let detail = errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                        throw KafkaError.usage(detail, operation: "createTopics \(topic)")
                    }
                    newTopics.append(t)
                    for (name, value) in settings.sorted(by: { $0.key < $1.key }) {
                        let err = rd_kafka_NewTopic_set_config(t, name, value)
                        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                            throw KafkaError(err, operation: "createTopics \(topic) \(name)")
                        }
                    }
                }
                let queue = rd_kafka_queue_new(handle)
                defer { rd_kafka_queue_destroy(queue) }
                let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
                defer { rd_kafka_AdminOptions_destroy(options) }
                _ = rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMs, &errbuf, errbuf.count)
                _ = rd_kafka_AdminOptions_set_request_timeout(options, timeoutMs, &errbuf, errbuf.count)
                newTopics.withUnsafeMutableBufferPointer { buf in
                    rd_kafka_CreateTopics(handle, buf.baseAddress, buf.count, options, queue)
                }
                guard let event = rd_kafka_queue_poll(queue, timeoutMs + 5_000) else {
                    throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, operation: "createTopics")
                }
                defer { rd_kafka_event_destroy(event) }
                let err = rd_kafka_event_error(event)
                if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                    let detail = rd_kafka_event_error_string(event).map { String(cString: $0) }
                    throw KafkaError(err, operation: "createTopics", detail: detail)
                }
                var count = 0
                let results = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count)
                var outcome: [String: TopicCreation] = [:]
                for i in 0..<count {
                    let r = results![i]
                    let name = String(cString: rd_kafka_topic_result_name(r))
                    let terr = rd_kafka_topic_result_error(r)
                    switch terr {
                    case RD_KAFKA_RESP_ERR_NO_ERROR: outcome[name] = .created
                    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS: outcome[name] = .alreadyExists
                    default:
                        let detail = rd_kafka_topic_result_error_string(r).map { String(cString: $0) }
                        throw KafkaError(terr, operation: "createTopics \(name)", detail: detail)
                    }
                }
                return outcome
            }
        }
    }

    /// Partition ids of a topic; throws `isUnknownTopic` when it does not exist.
    public func partitions(of topic: String, timeoutMs: Int32 = 10_000) async throws(KafkaError) -> [Int32] {
        let client = self.client
        let partitions = try await BlockingIO.run { () throws(KafkaError) in
            try client.partitions(of: topic, timeoutMs: timeoutMs)[topic] ?? []
        }
        if partitions.isEmpty {
            throw KafkaError(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, operation: "metadata \(topic)")
        }
        return partitions
    }

    public func topicPartitions(_ topic: String) async throws(KafkaError) -> [TopicPartition] {
        try await partitions(of: topic).map { TopicPartition(topic, $0) }
    }

    /// Low and high watermark as ListOffsets answers them (see `endOffsets` for an end every broker agrees on).
    public func watermarks(_ tp: TopicPartition, timeoutMs: Int32 = 10_000) async throws(KafkaError)
        -> (low: Int64, high: Int64)
    {
        let client = self.client
        return try await BlockingIO.run { () throws(KafkaError) in try client.watermarks(tp, timeoutMs: timeoutMs) }
    }

    public func offsetsForTimes(_ partitions: [TopicPartition], timestamp: Int64, timeoutMs: Int32 = 10_000)
        async throws(KafkaError) -> [TopicPartition: Int64]
    {
        let client = self.client
        return try await BlockingIO.run { () throws(KafkaError) in
            try client.offsetsForTimes(partitions, timestamp: timestamp, timeoutMs: timeoutMs)
        }
    }

    /// Every record of a topic that is there now, from the beginning to the current end of each partition, in
    /// offset order per partition. Stops after `timeout` whatever happens.
    public func readAll(_ topic: String, timeout: Duration = .seconds(30)) async throws(KafkaError) -> [KafkaRecord] {
        var records: [KafkaRecord] = []
        _ = try await read(try await topicPartitions(topic), timeout: timeout) { records += $0 }
        return records
    }

    /// Streams every record of these partitions that is there now, from the beginning to the current end, batch by
    /// batch in offset order per partition (the one way the relay reads a topic outside a consumer group). Returns
    /// whether it reached every end within `timeout`.
    public func read(_ partitions: [TopicPartition], timeout: Duration = .seconds(30),
                     onBatch: ([KafkaRecord]) -> Void) async throws(KafkaError) -> Bool
    {
        let ends = try await endOffsets(partitions)
        var starts: [TopicPartition: Int64] = [:]
        for tp in partitions {
            let low = try await watermarks(tp).low
            if ends[tp]! > low { starts[tp] = low }
        }
        guard !starts.isEmpty else { return true }
        let reader = try KafkaConsumer(
            configuration: ConsumerConfiguration(client: configuration, mode: .assign(starts, group: nil)),
            logger: logger)
        try reader.start()
        let stopper = Task {
            try await Task.sleep(for: timeout)
            await reader.stopFetching()
        }
        var remaining = Set(starts.keys)
        for await batch in reader.batches() {
            onBatch(batch)
            for record in batch where record.offset + 1 >= ends[record.topicPartition]! {
                remaining.remove(record.topicPartition)
            }
            if remaining.isEmpty { break }
        }
        stopper.cancel()
        await reader.close()
        return remaining.isEmpty
    }

    /// The end (high watermark) of each partition, as a fetch sees it.
    ///
    /// ListOffsets(latest) is not trusted alone: Tansu answers it with the base offset of the last record batch plus
    /// one, short of the real end when that batch holds several records. A fetch from just below that answer returns
    /// the true high watermark with the data, on every broker; on Apache Kafka both agree.
    public func endOffsets(_ partitions: [TopicPartition]) async throws(KafkaError) -> [TopicPartition: Int64] {
        var result: [TopicPartition: Int64] = [:]
        var probes: [TopicPartition: Int64] = [:]
        for tp in partitions {
            let (low, high) = try await watermarks(tp)
            result[tp] = high
            if high > low { probes[tp] = high - 1 }
        }
        guard !probes.isEmpty else { return result }
        let reader = try KafkaConsumer(
            configuration: ConsumerConfiguration(client: configuration, mode: .assign(probes, group: nil),
                                                 maxBufferedRecords: 10_000, batchSize: 500),
            logger: logger)
        try reader.start()
        let stopper = Task {
            try await Task.sleep(for: .seconds(10))
            await reader.stopFetching()
        }
        var pending = Set(probes.keys)
        for await batch in reader.batches() {
            for record in batch { pending.remove(record.topicPartition) }
            if pending.isEmpty { break }
        }
        stopper.cancel()
        for tp in probes.keys { if let high = reader.cachedHighWatermark(tp) { result[tp] = max(result[tp]!, high) } }
        await reader.close()
        return result
    }

    /// For each partition, the first offset whose record timestamp is at or after `timestamp` (the end of the
    /// partition when there is none). Some brokers answer ListOffsets-by-time at batch granularity (Tansu gives the
    /// base offset of the batch that holds the time); reading forward from that answer makes the result exact.
    public func firstOffsets(atOrAfter timestamp: Int64, _ partitions: [TopicPartition]) async throws(KafkaError)
        -> [TopicPartition: Int64]
    {
        var result = try await offsetsForTimes(partitions, timestamp: timestamp)
        let ends = try await endOffsets(partitions)
        let unresolved = result.filter { $0.value < ends[$0.key]! }
        guard !unresolved.isEmpty else { return result }
        let reader = try KafkaConsumer(
            configuration: ConsumerConfiguration(client: configuration, mode: .assign(unresolved, group: nil),
                                                 maxBufferedRecords: 10_000, batchSize: 500),
            logger: logger)
        try reader.start()
        var pending = Set(unresolved.keys)
        let stopper = Task {
            try await Task.sleep(for: .seconds(30))
            await reader.stopFetching()
        }
        for await batch in reader.batches() {
            for record in batch where pending.contains(record.topicPartition) {
                if record.timestamp >= timestamp {
                    result[record.topicPartition] = record.offset
                    pending.remove(record.topicPartition)
                } else if record.offset + 1 >= ends[record.topicPartition]! {
                    result[record.topicPartition] = ends[record.topicPartition]!
                    pending.remove(record.topicPartition)
                }
            }
            if pending.isEmpty { break }
        }
        stopper.cancel()
        await reader.close()
        guard pending.isEmpty else {
            throw KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, operation: "firstOffsets",
                             detail: "could not read \(pending.sorted().map(\.description))")
        }
        return result
    }

    /// Consumer groups known to the cluster (all of them, or just `group`).
    public func groups(_ group: String? = nil, timeoutMs: Int32 = 10_000) async throws(KafkaError) -> [GroupInfo] {
        let client = self.client
        return try await BlockingIO.run { () throws(KafkaError) in
            try Self.listGroups(client, group, timeoutMs)
        }
    }

    private static func listGroups(_ client: RDKafkaClient, _ group: String?, _ timeoutMs: Int32) throws(KafkaError)
        -> [GroupInfo]
    {
        var list: UnsafePointer<rd_kafka_group_list>?
        let err = try client.withHandle("listGroups") { rd_kafka_list_groups($0, group, &list, timeoutMs) }
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { throw KafkaError(err, operation: "listGroups") }
        defer { rd_kafka_group_list_destroy(list) }
        return (0..<Int(list.pointee.group_cnt)).compactMap { i in
            let g = list.pointee.groups[i]
            guard g.err == RD_KAFKA_RESP_ERR_NO_ERROR || group != nil else { return nil }
            return GroupInfo(name: String(cString: g.group), state: g.state.map { String(cString: $0) } ?? "",
                             memberCount: Int(g.member_cnt))
        }.sorted { $0.name < $1.name }
    }

    /// A group's committed offsets on a topic (next offset to read); partitions without a commit are left out.
    public func committedOffsets(group: String, topic: String) async throws(KafkaError) -> [TopicPartition: Int64] {
        let partitions = try await topicPartitions(topic)
        let consumer = try groupHandle(group)
        let result: Result<[TopicPartition: Int64], KafkaError>
        do { result = .success(try await BlockingIO.run { () throws(KafkaError) in try consumer.committed(partitions) }) }
        catch { result = .failure(error) }
        await consumer.close()
        return try result.get()
    }

    /// Rewrites a group's committed offsets. Refused while the group has members: a running member would overwrite
    /// them with its own commits at once.
    public func resetOffsets(group: String, to offsets: [TopicPartition: Int64]) async throws(KafkaError) {
        if let info = try await groups(group).first, info.memberCount > 0 {
            throw KafkaError.usage("group \(group) has \(info.memberCount) active member(s); stop them first",
                                   operation: "resetOffsets")
        }
        let consumer = try groupHandle(group)
        var failure: KafkaError?
        do { try await consumer.commitAsync(offsets) } catch { failure = error }
        await consumer.close()
        if let failure {
            // A broker that does not list a group's members still refuses a commit from outside a live generation.
            let activeGroup: [rd_kafka_resp_err_t] = [RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID,
                                                      RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION,
                                                      RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS]
            if activeGroup.map(\.rawValue).contains(failure.code) {
                throw KafkaError.usage("group \(group) has active members (\(failure.message)); stop them first",
                                       operation: "resetOffsets")
            }
            throw failure
        }
    }

    /// A consumer that carries the group id without joining: enough to read and write the group's offsets.
    private func groupHandle(_ group: String) throws(KafkaError) -> KafkaConsumer {
        try KafkaConsumer(configuration: ConsumerConfiguration(client: configuration, mode: .assign([:], group: group)),
                          logger: logger)
    }
}
