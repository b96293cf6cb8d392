/// A topic and partition: the unit of ordering, assignment and commit.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible, Comparable {
    public let topic: String
    public let partition: Int32

    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)/\(partition)" }

    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        (a.topic, a.partition) < (b.topic, b.partition)
    }
}

public struct KafkaHeader: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]

    public init(_ key: String, _ value: [UInt8]) {
        self.key = key
        self.value = value
    }

    public init(_ key: String, _ value: String) {
        self.init(key, Array(value.utf8))
    }

    public var stringValue: String { String(decoding: value, as: UTF8.self) }
}

/// One record read from a topic.
///
/// Its key and value are views into bytes that the records of one batch share: the consumer copies a whole batch out
/// of librdkafka into one buffer, one allocation per batch rather than two per record (allocating and freeing them
/// was a large share of the consume loop). A record kept after its batch keeps that buffer alive; keep
/// `Array(record.value)` instead when holding many values from many batches for long.
public struct KafkaRecord: Sendable {
    public let topic: String
    public let partition: Int32
    /// The length of the key at the start of `bytes`; -1 when the record has no key.
    private let keyLength: Int32
    public let offset: Int64
    /// The key (if any) followed by the value.
    private let bytes: ArraySlice<UInt8>
    /// The record's Kafka timestamp (CreateTime unless the topic says otherwise), ms since the epoch.
    public let timestamp: Int64
    public let headers: [KafkaHeader]
    /// Which assignment of this partition the record was read under. A record read under an assignment that has
    /// since been revoked must not be committed: a rebalance gave its partition away.
    public let generation: UInt64

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8], timestamp: Int64,
                headers: [KafkaHeader], generation: UInt64 = 0) {
        self.init(topic: topic, partition: partition, offset: offset,
                  keyLength: key.map { Int32($0.count) } ?? -1, bytes: ArraySlice((key ?? []) + value),
                  timestamp: timestamp, headers: headers, generation: generation)
    }

    /// `bytes` holds the key (`keyLength` bytes, -1 for none) followed by the value.
    init(topic: String, partition: Int32, offset: Int64, keyLength: Int32, bytes: ArraySlice<UInt8>,
         timestamp: Int64, headers: [KafkaHeader], generation: UInt64) {
        self.topic = topic
        self.partition = partition
        self.keyLength = keyLength
        self.offset = offset
        self.bytes = bytes
        self.timestamp = timestamp
        self.headers = headers
        self.generation = generation
    }

    public var key: ArraySlice<UInt8>? { keyLength < 0 ? nil : bytes.prefix(Int(keyLength)) }
    public var value: ArraySlice<UInt8> { bytes.dropFirst(max(0, Int(keyLength))) }

    public var topicPartition: TopicPartition { TopicPartition(topic, partition) }
    public var source: String { "\(topic)/\(partition)/\(offset)" }
    public func header(_ key: String) -> KafkaHeader? { headers.last { $0.key == key } }
}

/// A record to produce.
public struct OutgoingRecord: Sendable {
    public var topic: String
    public var key: [UInt8]?
    public var value: [UInt8]
    public var headers: [KafkaHeader]
    /// nil: the partitioner chooses (by key).
    public var partition: Int32?
    /// nil: now.
    public var timestamp: Int64?
    /// A null value: on a compacted topic, the key's earlier records go (readers see an empty value).
    public private(set) var isTombstone = false

    public static func tombstone(topic: String, key: [UInt8], partition: Int32? = nil) -> OutgoingRecord {
        var record = OutgoingRecord(topic: topic, key: key, value: [], partition: partition)
        record.isTombstone = true
        return record
    }

    public init(topic: String, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = [], partition: Int32? = nil,
                timestamp: Int64? = nil) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
        self.timestamp = timestamp
    }
}

public struct DeliveryReport: Sendable, Equatable {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
}
