/// `kafka:`: where the broker is and what the topics are called.
public struct KafkaSettings: Sendable, Hashable {
    /// `host:port` entries; `RELAY_BROKERS` (comma-separated) replaces them.
    public var brokers: [String]
    public var topics: Topics
    /// Passed to librdkafka as is (`security.protocol`, `sasl.mechanism`, `ssl.*`, ...).
    public var properties: [String: String]
    /// librdkafka properties whose values are secrets, written `<property>_env` / `<property>_file` in the file
    /// (`sasl.password_env: KAFKA_PASSWORD`), keyed by the property name without the suffix.
    public var secretProperties: [String: Secret]

    public init(
        brokers: [String], topics: Topics = Topics(), properties: [String: String] = [:],
        secretProperties: [String: Secret] = [:]
    ) {
        self.brokers = brokers
        self.topics = topics
        self.properties = properties
        self.secretProperties = secretProperties
    }

    /// `bootstrap.servers`.
    public var bootstrapServers: String { brokers.joined(separator: ",") }

    /// `properties` plus the resolved `secretProperties`, ready for librdkafka.
    public func resolvedProperties(environment: [String: String]) throws(SecretError) -> [String: String] {
        var result = properties
        for (name, secret) in secretProperties.sorted(by: { $0.key < $1.key }) {
            result[name] = try secret.resolve(environment: environment)
        }
        return result
    }

    public struct Topics: Sendable, Hashable {
        public var qualifications: String
        public var pixelEvents: String
        public var pixelAudit: String
        public var deadLetter: String

        public init(
            qualifications: String = "aam.qualifications", pixelEvents: String = "aam.pixel-events",
            pixelAudit: String = "aam.pixel-audit", deadLetter: String = "aam.dead-letter"
        ) {
            self.qualifications = qualifications
            self.pixelEvents = pixelEvents
            self.pixelAudit = pixelAudit
            self.deadLetter = deadLetter
        }

        /// All four, for `relayctl topics create`.
        public var all: [String] { [qualifications, pixelEvents, pixelAudit, deadLetter] }
    }
}
