import CRdKafka
import Logging

/// The settings every client needs: where the brokers are, plus raw librdkafka properties passed through as they are
/// (`kafka.properties` in relay.yaml: security.protocol, sasl.*, ssl.* ...).
public struct KafkaClientConfiguration: Sendable {
    public var brokers: String
    public var properties: [String: String]

    public init(brokers: String, properties: [String: String] = [:]) {
        self.brokers = brokers
        self.properties = properties
    }

    /// Builds an `rd_kafka_conf_t`: our defaults first, then the user's properties (which win), then `overrides`
    /// that the client's correctness depends on. The caller owns the result until `rd_kafka_new` takes it.
    func makeConf(role: Role, defaults: [String: String], overrides: [String: String], operation: String)
        throws(KafkaError) -> OpaquePointer
    {
        let conf = rd_kafka_conf_new()!
        var merged = defaults
        merged["bootstrap.servers"] = brokers
        // One property list serves every client: leave out what belongs to the other role, which librdkafka would
        // only warn about.
        for (key, value) in properties where role.accepts(key) { merged[key] = value }
        for (key, value) in overrides { merged[key] = value }
        var errbuf = [CChar](repeating: 0, count: 512)
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, key, value, &errbuf, errbuf.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                // The value is left out: it may be a secret (sasl.password...).
                let detail = errbuf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                throw KafkaError.usage("property \(key): \(detail)", operation: operation)
            }
        }
        for (key, value) in role.optionalDefaults where merged[key] == nil {
            // Set where the librdkafka at hand knows the property; older ones simply do without.
            _ = rd_kafka_conf_set(conf, key, value, &errbuf, errbuf.count)
        }
        rd_kafka_conf_set_log_cb(conf) { _, level, facility, message in
            KafkaLog.forward(level: level, facility: facility, message: message)
        }
        return conf
    }

    enum Role {
        case producer, consumer

        private static let consumerOnly = ["group.", "session.timeout.ms", "heartbeat.interval.ms", "auto.offset.reset",
                                           "max.poll.interval.ms", "fetch.", "partition.assignment.strategy",
                                           "enable.auto.", "isolation.level", "auto.commit.", "queued.",
                                           "check.crcs"]
        private static let producerOnly = ["linger.ms", "queue.buffering.", "acks", "request.required.acks",
                                           "compression.", "batch.", "enable.idempotence", "message.timeout.ms",
                                           "delivery.timeout.ms", "retries", "retry.backoff.ms", "transactional.",
                                           "message.send.max.retries", "partitioner", "sticky.partitioning"]

        /// Properties newer than the 2.0 headers we build against. `fetch.queue.backoff.ms` (default 1 s) idles a
        /// partition's fetcher for that long whenever the local queue is full, i.e. whenever the application is
        /// briefly behind: at full speed that is a pause every few hundred thousand records.
        var optionalDefaults: [String: String] {
            self == .consumer ? ["fetch.queue.backoff.ms": "10"] : [:]
        }

        func accepts(_ key: String) -> Bool {
            let foreign = self == .producer ? Self.consumerOnly : Self.producerOnly
            return !foreign.contains { key == $0 || ($0.hasSuffix(".") && key.hasPrefix($0)) }
        }
    }
}

/// librdkafka's own log lines, forwarded into swift-log so that they come out as JSON like everything else.
enum KafkaLog {
    static let logger = Logger(label: "librdkafka")

    static func forward(level: Int32, facility: UnsafePointer<CChar>?, message: UnsafePointer<CChar>?) {
        let text = message.map { String(cString: $0) } ?? ""
        let metadata: Logger.Metadata = ["facility": "\(facility.map { String(cString: $0) } ?? "")"]
        // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug
        switch level {
        case ...3: logger.error("\(text)", metadata: metadata)
        case 4: logger.warning("\(text)", metadata: metadata)
        case 5, 6: logger.info("\(text)", metadata: metadata)
        default: logger.debug("\(text)", metadata: metadata)
        }
    }
}
