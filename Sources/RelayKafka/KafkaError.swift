import CRdKafka

/// Every librdkafka failure surfaces as this error, created where the C call failed.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    /// librdkafka's `rd_kafka_resp_err_t`, as a raw number so that the C enum stays inside this module.
    public let code: Int32
    public let message: String
    /// What the library was doing: `produce`, `commit`, `createTopics aam.qualifications`...
    public let operation: String

    public init(code: Int32, message: String, operation: String) {
        self.code = code
        self.message = message
        self.operation = operation
    }

    init(_ err: rd_kafka_resp_err_t, operation: String, detail: String? = nil) {
        let text = String(cString: rd_kafka_err2str(err))
        self.init(code: err.rawValue, message: detail.map { "\(text): \($0)" } ?? text, operation: operation)
    }

    /// A call on a producer, consumer or admin client after its `close()`.
    static func closed(operation: String) -> KafkaError {
        KafkaError(RD_KAFKA_RESP_ERR__DESTROY, operation: operation, detail: "the client is closed")
    }

    /// A local usage error that did not come from librdkafka (bad configuration value, second start...).
    /// An operation that did not finish in its time (librdkafka's own `_TIMED_OUT`).
    public static func timedOut(operation: String) -> KafkaError {
        KafkaError(RD_KAFKA_RESP_ERR__TIMED_OUT, operation: operation)
    }

    static func usage(_ message: String, operation: String) -> KafkaError {
        KafkaError(code: RD_KAFKA_RESP_ERR__INVALID_ARG.rawValue, message: message, operation: operation)
    }

    /// Whether the same call may succeed if tried again later: transport problems, time-outs, leader moves,
    /// full local queues and the broker's own "try again" answers.
    /// True when the call came after the client's `close()`.
    public var isClosed: Bool { code == RD_KAFKA_RESP_ERR__DESTROY.rawValue }

    /// True when librdkafka's local queue is full: the caller should wait for deliveries and try again.
    public var isQueueFull: Bool { code == RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue }

    /// True when the record is larger than the producer or the broker accepts (`message.max.bytes`).
    public var isMessageTooLarge: Bool {
        code == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE.rawValue || code == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE.rawValue
    }

    public var isRetriable: Bool {
        switch rd_kafka_resp_err_t(rawValue: code) {
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
             RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__QUEUE_FULL, RD_KAFKA_RESP_ERR__WAIT_COORD,
             RD_KAFKA_RESP_ERR__RESOLVE, RD_KAFKA_RESP_ERR__PARTITION_EOF, RD_KAFKA_RESP_ERR__IN_PROGRESS,
             RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
             RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE, RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
             RD_KAFKA_RESP_ERR_NOT_COORDINATOR, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
             RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND,
             RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION, RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS,
             RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
            return true
        default:
            return false
        }
    }

    public var isTopicAlreadyExisting: Bool { code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS.rawValue }
    public var isUnknownTopic: Bool {
        code == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART.rawValue || code == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC.rawValue
            || code == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION.rawValue
    }

    public var description: String { "\(operation): \(message)" }
}
