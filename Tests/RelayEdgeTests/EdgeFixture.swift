import Foundation
import RelayCore
import RelayKafka
import RelayTestSupport

/// One `relay-edge` process on a live loopback port, over fresh topics.
struct RunningEdge: Sendable {
    let port: Int
    let topics: RelayTopics
    /// Killed when the last copy of this value goes (and in any case when the test process exits).
    let process: WorkerProcess
    var http: RawHTTP { RawHTTP(port: port) }

    static let redirectKey = "edge-test-key"
    /// Destination 7001's credential for `POST /px/receipts`.
    static let receiptsToken = "receipts-test-token"
    static let environment = ["EDGE_TEST_REDIRECT_KEY": redirectKey, "EDGE_TEST_RECEIPTS_TOKEN": receiptsToken]

    /// Known users: region, realized segments, partner id for DPID 20915.
    static let userA = "07955261652886032950143702505894272138"
    static let userB = "11111111111111111111111111111111111111"
    static let userText = "user_text-3"
    /// Changed by the freshness test only.
    static let userFresh = "22222222222222222222222222222222222222"

    /// `edgeSettings`: more `edge:` keys, one per line, indented by two spaces; `kafkaProperties`: more
    /// `kafka.properties` entries (`"linger.ms": "10000"`).
    static func configYAML(topics: RelayTopics, port: Int, stateDir: String, edgeSettings: String = "",
                           kafkaProperties: String = "") -> String
    {
        let kafka = kafkaProperties.isEmpty ? topics.kafkaYAML
            : topics.kafkaYAML.replacingOccurrences(of: "properties: {", with: "properties: {\(kafkaProperties), ")
        return kafka + """
        edge:
          listen: 127.0.0.1:\(port)
          cors_origins: ["https://publisher.example", "*"]
          redirect_key_env: EDGE_TEST_REDIRECT_KEY
          snapshot_dir: \(stateDir)
        \(edgeSettings)
        destinations:
          - id: 7001
            name: px-redirect
            kind: url
            url: "http://px.partner.example/sync?seg=%alias%&uid=%did%&r=%rnd%&ts=%timestamp%&reg=%region%&p=%http_proto%&pid=%dpid_20915%"
            secure_url: "https://px.partner.example/sync?seg=%alias%&uid=%did%&p=%http_proto%"
            audit: redirect
            receipts_token_env: EDGE_TEST_RECEIPTS_TOKEN
            mappings: [{segment: 4532, alias: p4532}, {segment: 99, alias: "p 99"}]
          - id: 7002
            name: px-serialized
            kind: url
            url: "http://ser.example/s?segs=%alias%&uid=%did%"
            serialize: {delimiter: ","}
            mappings: [{segment: 4532, alias: s1}, {segment: 99, alias: s2}, {segment: 555, alias: s3, start: 2020-01-01, end: 2020-12-31}]
          - id: 8001
            name: ad-server
            kind: cookie
            cookie_name: aam_seg
            key: segID
            format: single_key
            ttl_days: 10
            domain: .publisher.example
            set_cookie: true
            mappings: [{segment: 4532}, {segment: 99}, {segment: 1001}]
          - id: 8002
            name: kv
            kind: cookie
            cookie_name: aam_kv
            format: key_value
            key_separator: ":"
            pair_separator: ";"
            mappings: [{segment: 4532, alias: "gender:f"}, {segment: 99, alias: "age:30"}]
          - id: 8003
            name: ser
            kind: cookie
            cookie_name: aam_ser
            key: seg
            format: serialized
            value_separator: "|"
            max_bytes: 11
            mappings: [{segment: 4532, alias: "1"}, {segment: 99, alias: "22"}, {segment: 1001, alias: "333"}, {segment: 1002, alias: "4"}]

        """
    }

    static func event(_ uuid: String, region: Int?, segments: [SegmentState], partnerIDs: PartnerIDs = [:], topic: String)
        -> OutgoingRecord
    {
        let qualification = Qualification(eventID: "ev-\(UUID().uuidString)", uuid: uuid,
                                          timestamp: Int64(Date().timeIntervalSince1970 * 1000), region: region,
                                          segments: segments, partnerIDs: partnerIDs)
        return OutgoingRecord(topic: topic, key: Array(uuid.utf8), value: qualification.jsonBytes())
    }

    static func start(edgeSettings: String = "", kafkaProperties: String = "") async throws -> RunningEdge {
        let topics = try await TestBroker.createRelayTopics(partitions: 2)
        let q = topics.qualifications
        try await TestBroker.produce([
            event(userA, region: 1, segments: [.realized(4532)], topic: q),  // replaced by the next one
            event(userA, region: 7, segments: [.realized(4532), .realized(99), .realized(1001), .realized(1002),
                                               .realized(555), .removed(1003)],
                  partnerIDs: ["20915": "P-1/x"], topic: q),
            event(userB, region: 3, segments: [.realized(4532)], topic: q),
            event(userText, region: nil, segments: [.realized(99)], topic: q),
            event(userFresh, region: 9, segments: [.realized(4532)], topic: q),
            OutgoingRecord(topic: q, key: nil, value: Array("{not json".utf8)),
        ])
        let directory = try TestDirectory("relay-edge")
        let port = freePort()
        let config = try directory.write("relay.yaml", configYAML(
            topics: topics, port: port, stateDir: directory.path("state"), edgeSettings: edgeSettings,
            kafkaProperties: kafkaProperties))
        // A process of its own, as a user runs it: an edge inside the test process would share its two-thread
        // task pool with every other test, and a test blocking there would hold up the edge's answers.
        let process = try WorkerProcess("relay-edge", arguments: ["--config", config.path, "--log-level", "warning"],
                                        workingDirectory: directory.url, environment: environment)
        let edge = RunningEdge(port: port, topics: topics, process: process)
        // RawHTTP, not URLSession: URLSession would keep an idle connection open, which the connection tests count.
        let ready = await eventually(timeout: .seconds(30)) {
            guard process.isRunning else { return false }
            return (try? await edge.http.get("/health/ready").status) == 200
        }
        guard ready else { throw TestFailure("relay-edge not ready:\n\(process.log.suffix(2_000))") }
        return edge
    }
}

actor EdgeFixture {
    static let shared = EdgeFixture()
    private var task: Task<RunningEdge, any Error>?

    func edge() async throws -> RunningEdge {
        if let task { return try await task.value }
        let task = Task { try await RunningEdge.start() }
        self.task = task
        return try await task.value
    }
}
