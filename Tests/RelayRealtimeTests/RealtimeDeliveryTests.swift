import Crypto
import Foundation
import RelayCore
import RelayKafka
import RelayRuntime
import RelayTestSupport
import Testing

/// relay-realtime end to end: worker processes on the real broker, posting to test partners on loopback.
@Suite("relay-realtime against test partners", .serialized, .timeLimit(.minutes(6)))
struct RealtimeDeliveryTests {
    static let hmacKey = "test-hmac-key-\(UInt32.random(in: 0...UInt32.max))"
    static let environment = ["REALTIME_TEST_KEY": hmacKey, "REALTIME_TEST_CLIENT": "relay client",
                              "REALTIME_TEST_SECRET": "s3cret&="]

    /// Fresh topics, a working directory, a partner and a relay.yaml.
    struct Setup {
        let topics: RelayTopics
        let dir: TestDirectory
        let partner: TestPartner
        let config: String
        let group = TestBroker.uniqueName("realtime")

        init(partitions: Int32 = 4, destinations: (TestPartner) -> String) async throws {
            topics = try await TestBroker.createRelayTopics(partitions: partitions)
            dir = try TestDirectory("realtime")
            partner = try await TestPartner.start()
            config = try dir.write("relay.yaml", topics.kafkaYAML + "destinations:\n" + destinations(partner)).path
        }

        func start() async throws -> (WorkerProcess, Int) {
            let port = freePort()
            let worker = try WorkerProcess("relay-realtime", arguments: [
                "--config", config, "--metrics-port", "\(port)", "--group", group, "--log-level", "debug",
            ], workingDirectory: dir.url, environment: RealtimeDeliveryTests.environment)
            try await worker.waitForHTTP(port: port)
            return (worker, port)
        }

        func produce(_ records: [OutgoingRecord]) async throws {
            try await TestBroker.produce(records.map { var r = $0; r.topic = topics.qualifications; return r })
        }

        func deadLetters() async throws -> [KafkaRecord] { try await TestBroker.readAll(topics.deadLetter) }
    }

    static func destination(_ id: Int, _ partner: TestPartner, path: String, maxUsers: Int = 10, flushMs: Int = 200,
                            timeoutMs: Int = 2000, extra: String = "",
                            mappings: String = "[{segment: 4532, alias: acme-4532}, {segment: 99, alias: acme-99}]")
        -> String
    {
        """
          - id: \(id)
            name: partner-\(id)
            kind: realtime
            url: \(partner.url(path))
            client_id: acme
            max_users_per_message: \(maxUsers)
            flush_interval_ms: \(flushMs)
            timeout_ms: \(timeoutMs)
            max_in_flight: 4
            retry: {max_attempts: 30, initial_backoff_ms: 20, max_backoff_ms: 200}
            mappings: \(mappings)
        \(extra.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))

        """
    }

    static let eventTime: Int64 = 1_795_982_000_000

    static func event(_ uuid: String, ts: Int64 = eventTime, segments: [SegmentState] = [.realized(4532)],
                      partnerIDs: PartnerIDs = ["20915": "P-"], partition: Int32? = nil) -> OutgoingRecord
    {
        var ids = partnerIDs
        if ids["20915"] == "P-" { ids["20915"] = "P-\(uuid)" }
        let event = Qualification(eventID: "ev-\(uuid)-\(ts)", uuid: uuid, timestamp: ts, region: 7,
                                  segments: segments, partnerIDs: ids)
        return OutgoingRecord(topic: "", key: Array(uuid.utf8), value: event.jsonBytes(), partition: partition)
    }

    static func json(_ request: TestPartner.Request, gzip: Bool = false) -> [String: Any] {
        let body = gzip ? ((try? Gzip.decompress(request.body)) ?? []) : request.body
        return (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]) ?? [:]
    }

    static func users(_ request: TestPartner.Request, gzip: Bool = false) -> [[String: Any]] {
        json(request, gzip: gzip)["Users"] as? [[String: Any]] ?? []
    }

    static func uuids(_ requests: [TestPartner.Request], gzip: Bool = false) -> [String] {
        requests.flatMap { users($0, gzip: gzip).compactMap { $0["AAM_UUID"] as? String } }
    }

    /// The first delivery of each `X-Relay-Message-Id`, in arrival order.
    static func distinctMessages(_ requests: [TestPartner.Request]) -> [TestPartner.Request] {
        var seen = Set<String>()
        return requests.filter { seen.insert($0.header("X-Relay-Message-Id") ?? "").inserted }
    }

    static func metric(_ port: Int, _ name: String, destination: Int) async -> Double? {
        guard let (_, text) = try? await HTTPGet.fetch("http://127.0.0.1:\(port)/metrics") else { return nil }
        // The worker's `worker` and `group` labels follow the metric's own.
        let prefix = "\(name){destination=\"\(destination)\""
        return text.split(separator: "\n").first { $0.hasPrefix(prefix + "}") || $0.hasPrefix(prefix + ",") }
            .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }

    @Test("exact body, HMAC signatures (sha256; sha1 over gzip), mapping dates, unsegment on/off, users without partner id skipped")
    func formatAndSignature() async throws {
        let setup = try await Setup { partner in
            Self.destination(5001, partner, path: "/a", extra: """
                user_dpid: 20915
                unsegment: true
                signing: {algorithm: sha256, header: X-Signature, key_env: REALTIME_TEST_KEY}
                """, mappings: "[{segment: 4532, alias: acme-4532}, {segment: 99, alias: acme-99}, "
                    + "{segment: 777, alias: old, end: 2020-12-31}]")
                + Self.destination(5002, partner, path: "/b", extra: """
                    user_dpid: 0
                    gzip: true
                    signing: {algorithm: sha1, header: X-Sig, key_env: REALTIME_TEST_KEY}
                    """)
                + Self.destination(5005, partner, path: "/o", extra: """
                    oauth2: {token_url: \(partner.url("/token")), client_id_env: REALTIME_TEST_CLIENT, client_secret_env: REALTIME_TEST_SECRET}
                    """, mappings: "[{segment: 4532}]")
        }
        setup.partner.setDefault("/token", .json(#"{"access_token":"tok-1","token_type":"bearer","expires_in":3600}"#))
        defer { Task { await setup.partner.stop() } }
        let (worker, port) = try await setup.start()
        defer { Task { await worker.stop() } }

        try await setup.produce([
            Self.event("1001", segments: [.realized(4532), .removed(99), .realized(777)], partnerIDs: ["20915": "P-1"],
                       partition: 0),
            Self.event("1002", segments: [.realized(4532)], partnerIDs: [:], partition: 0),
        ])
        let arrived = await eventually(timeout: .seconds(60)) {
            Self.uuids(setup.partner.delivered("/a")).count >= 1
                && Self.uuids(setup.partner.delivered("/b"), gzip: true).count >= 2
        }
        #expect(arrived, "worker log:\n\(worker.log.suffix(3000))")
        let a = try #require(setup.partner.delivered("/a").first)

        // Exact body: compact JSON, keys in the specification's order, every value a string.
        let body = a.bodyText
        let processTime = try #require(Self.json(a)["ProcessTime"] as? String)
        #expect(processTime.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/) != nil)
        #expect(body == #"{"ProcessTime":"\#(processTime)","User_DPID":"20915","Client_ID":"acme","#
            + #""AAM_Destination_Id":"5001","User_count":"1","Users":[{"AAM_UUID":"1001","DataPartner_UUID":"P-1","#
            + #""AAM_Regions":["7"],"Segments":[{"Segment_ID":"acme-4532","Status":"1","DateTime":"2026-11-29T19:53:20Z"},"#
            + #"{"Segment_ID":"acme-99","Status":"0","DateTime":"2026-11-29T19:53:20Z"}]}]}"#)
        #expect(a.header("Content-Type") == "application/json")
        let id = try #require(a.header("X-Relay-Message-Id"))
        #expect(id.count == 32)

        // The signature, computed here independently.
        let expected = Data(HMAC<SHA256>.authenticationCode(for: a.body,
                                                             using: SymmetricKey(data: Data(Self.hmacKey.utf8))))
        #expect(a.header("X-Signature") == expected.base64EncodedString())

        // Destination 5002: uuid as partner id, no removals, gzip, HMAC-SHA1 over the compressed bytes.
        let b = setup.partner.delivered("/b")
        for request in b {
            #expect(request.header("Content-Encoding") == "gzip")
            let sha1 = Data(HMAC<Insecure.SHA1>.authenticationCode(
                for: request.body, using: SymmetricKey(data: Data(Self.hmacKey.utf8))))
            #expect(request.header("X-Sig") == sha1.base64EncodedString())
        }
        let bUsers = b.flatMap { Self.users($0, gzip: true) }
        #expect(Set(bUsers.compactMap { $0["DataPartner_UUID"] as? String }) == ["1001", "1002"])
        for user in bUsers {
            let segments = user["Segments"] as? [[String: String]] ?? []
            #expect(segments.map { $0["Segment_ID"] } == ["acme-4532"] && segments.allSatisfy { $0["Status"] == "1" })
        }
        // 1002 has no id for DPID 20915: skipped for 5001 and counted.
        #expect(!Self.uuids(setup.partner.delivered("/a")).contains("1002"))
        // OAuth 2.0 client credentials: a token fetched once, sent as a bearer token.
        let oauth = await eventually(timeout: .seconds(30)) { Self.uuids(setup.partner.delivered("/o")).count >= 2 }
        #expect(oauth)
        #expect(setup.partner.delivered("/o").allSatisfy { $0.header("Authorization") == "Bearer tok-1" })
        let tokenRequests = setup.partner.requests("/token")
        #expect(tokenRequests.count == 1)
        let form = tokenRequests.first?.bodyText ?? ""
        #expect(form.contains("grant_type=client_credentials") && form.contains("client_id=relay%20client")
            && form.contains("client_secret=s3cret%26%3D"))

        let skipped = await eventually(timeout: .seconds(10)) {
            await Self.metric(port, "relay_realtime_users_skipped_total", destination: 5001) == 1
        }
        #expect(skipped)
        #expect(await Self.metric(port, "relay_realtime_users_sent_total", destination: 5002) == 2)
        #expect(await Self.metric(port, "relay_realtime_latency_seconds_count", destination: 5002) == 2)
        #expect(await Self.metric(port, "relay_realtime_in_flight", destination: 5002) == 0)
    }

    @Test("batching by count and by time; SIGTERM drains and commits")
    func batching() async throws {
        let setup = try await Setup { partner in
            Self.destination(5001, partner, path: "/a", maxUsers: 3, flushMs: 300, timeoutMs: 20_000)
                + Self.destination(5003, partner, path: "/small", maxUsers: 10, flushMs: 300, timeoutMs: 20_000,
                                   extra: "max_message_bytes: 1024")
        }
        defer { Task { await setup.partner.stop() } }
        let (worker, _) = try await setup.start()
        defer { Task { await worker.stop() } }

        // Seven users and one malformed record (dead-lettered, then final like the others).
        try await setup.produce((0..<7).map { Self.event("20\($0)", partition: 0) }
            + [OutgoingRecord(topic: "", key: Array("bad".utf8), value: Array("{not json".utf8), partition: 0)])
        let arrived = await eventually(timeout: .seconds(60)) { Self.uuids(setup.partner.delivered("/a")).count >= 7 }
        #expect(arrived, "worker log:\n\(worker.log.suffix(3000))")
        // Delivery is at least once: a retry after a time-out repeats its message id, and counts once here.
        let requests = Self.distinctMessages(setup.partner.delivered("/a"))
        #expect(requests.map { Self.users($0).count } == [3, 3, 1])
        #expect(Set(Self.uuids(requests)) == Set((0..<7).map { "20\($0)" }))
        #expect(Set(requests.compactMap { $0.header("X-Relay-Message-Id") }).count == 3)
        // The last one waited for the flush interval (time), the others did not (count).
        #expect(requests.map { Self.json($0)["User_count"] as? String } == ["3", "3", "1"])
        // By size: every body within max_message_bytes, every user there, in more than one message.
        let small = await eventually { Self.uuids(setup.partner.delivered("/small")).count >= 7 }
        #expect(small)
        let bySize = Self.distinctMessages(setup.partner.delivered("/small"))
        #expect(bySize.count > 1 && bySize.allSatisfy { $0.body.count <= 1024 }, "\(bySize.map(\.body.count))")
        #expect(Set(Self.uuids(bySize)) == Set((0..<7).map { "20\($0)" }))

        worker.terminate()
        let status = await worker.waitForExit(timeout: .seconds(30))
        #expect(status == 0, "worker log:\n\(worker.log.suffix(3000))")
        let admin = try KafkaAdmin(configuration: TestBroker.client, logger: TestBroker.logger)
        let committed = try await admin.committedOffsets(group: setup.group, topic: setup.topics.qualifications)
        #expect(committed.values.reduce(0, +) == 8)
        let letters = try await setup.deadLetters()
        #expect(letters.count == 1 && letters.first?.header("relay.error.class")?.stringValue == "malformed")
        #expect(letters.first.map { Array($0.value) } == Array("{not json".utf8))
    }

    @Test("500s then recovery: nothing lost, each user's messages in event order; 429 Retry-After: 2 waits ≥ 2 s")
    func retries() async throws {
        let setup = try await Setup { partner in
            Self.destination(5001, partner, path: "/a", maxUsers: 2, flushMs: 100,
                             mappings: "[{segment: 1000, alias: s0}, {segment: 1001, alias: s1}, {segment: 1002, alias: s2}]")
                + Self.destination(5002, partner, path: "/r", mappings: "[{segment: 4532}]")
        }
        defer { Task { await setup.partner.stop() } }
        setup.partner.script("/a", Array(repeating: .status(500), count: 6) + [.status(503), .status(200),
                                                                               .status(502)])
        setup.partner.script("/r", [.status(429, headers: ["Retry-After": "2"])])
        let (worker, port) = try await setup.start()
        defer { Task { await worker.stop() } }

        try await setup.produce([Self.event("3999")])
        let users = (0..<10).map { "30\($0)" }
        for round in 0..<3 {
            try await setup.produce(users.map {
                Self.event($0, ts: Self.eventTime + Int64(round) * 1000, segments: [.realized(1000 + Int64(round))])
            })
        }
        let all = await eventually(timeout: .seconds(90)) {
            Self.uuids(setup.partner.delivered("/a")).count >= 30 && !setup.partner.delivered("/r").isEmpty
        }
        #expect(all, "worker log:\n\(worker.log.suffix(3000))")
        let delivered = setup.partner.delivered("/a")
        #expect(setup.partner.requests("/a").count > delivered.count, "some attempts failed")
        // Per user, the segments arrive in event order (a retried message is never overtaken).
        for user in users {
            var seen: [String] = []
            for request in delivered {
                for entry in Self.users(request) where entry["AAM_UUID"] as? String == user {
                    let alias = (entry["Segments"] as? [[String: String]])?.first?["Segment_ID"] ?? "?"
                    if seen.last != alias { seen.append(alias) }
                }
            }
            #expect(seen == ["s0", "s1", "s2"], "user \(user)")
        }
        // Retry-After honoured.
        let r = setup.partner.requests("/r")
        #expect(r.count >= 2)
        if r.count >= 2 {
            #expect(r[1].receivedAt - r[0].receivedAt >= .seconds(2))
            #expect(r[0].header("X-Relay-Message-Id") == r[1].header("X-Relay-Message-Id"))
        }
        #expect(try await setup.deadLetters().isEmpty)
        // Seven failures in a row opened the breaker; it closed again after a successful probe.
        #expect((await Self.metric(port, "relay_realtime_retries_total", destination: 5001) ?? 0) >= 7)
        #expect(await Self.metric(port, "relay_realtime_breaker_state", destination: 5001) == 0)
    }

    @Test("400 goes to the dead letters at once and redrive delivers it; a hanging partner does not delay a healthy one")
    func rejectedRedriveAndHangingPartner() async throws {
        let setup = try await Setup { partner in
            Self.destination(5001, partner, path: "/a", extra: """
                signing: {algorithm: sha256, header: X-Signature, key_env: REALTIME_TEST_KEY}
                """, mappings: "[{segment: 55, alias: fifty-five}]")
                + Self.destination(5003, partner, path: "/h", timeoutMs: 20000)
                + Self.destination(5004, partner, path: "/g")
        }
        defer { Task { await setup.partner.stop() } }
        setup.partner.script("/a", [.status(400)])
        setup.partner.setDefault("/h", .hang)
        let (worker, _) = try await setup.start()
        defer { Task { await worker.stop() } }

        // Rejected: dead-lettered after one attempt.
        try await setup.produce([Self.event("4001", segments: [.realized(55)])])
        var letters: [KafkaRecord] = []
        let lettered = try await eventually(timeout: .seconds(60)) {
            letters = try await setup.deadLetters()
            return !letters.isEmpty
        }
        #expect(lettered, "worker log:\n\(worker.log.suffix(3000))")
        let letter = try #require(letters.first)
        let first = try #require(setup.partner.requests("/a").first)
        #expect(letter.header("relay.error.class")?.stringValue == "rejected")
        #expect(letter.header("relay.destination")?.stringValue == "5001")
        #expect(letter.header("relay.attempts")?.stringValue == "1")
        #expect(letter.header("relay.message_id")?.stringValue == first.header("X-Relay-Message-Id"))
        #expect(letter.header("relay.source")?.stringValue.hasPrefix(setup.topics.qualifications + "/") == true)
        #expect(Array(letter.value) == first.body)
        #expect(setup.partner.requests("/a").count == 1, "not retried")

        let redrive = try WorkerProcess("relayctl", arguments: [
            "dead-letter", "redrive", "--destination", "5001", "--config", setup.config,
        ], workingDirectory: setup.dir.url, environment: Self.environment)
        #expect(await redrive.waitForExit(timeout: .seconds(60)) == 0, "\(redrive.output)\n\(redrive.log)")
        let again = setup.partner.delivered("/a")
        #expect(again.count == 1)
        if let again = again.first {
            #expect(again.body == first.body)
            #expect(again.header("X-Relay-Message-Id") == first.header("X-Relay-Message-Id"))
            let mac = Data(HMAC<SHA256>.authenticationCode(for: again.body,
                                                           using: SymmetricKey(data: Data(Self.hmacKey.utf8))))
            #expect(again.header("X-Signature") == mac.base64EncodedString())
        }

        // Hanging partner 5003 (time-out 20 s) and healthy 5004 get the same users.
        try await setup.produce((0..<5).map { Self.event("50\($0)") })
        let hung = await eventually(timeout: .seconds(30)) { !setup.partner.requests("/h").isEmpty }
        #expect(hung)
        let started = ContinuousClock.now
        try await setup.produce((5..<10).map { Self.event("50\($0)") })
        let healthy = await eventually(timeout: .seconds(30), every: .milliseconds(20)) {
            Set(Self.uuids(setup.partner.delivered("/g"))).isSuperset(of: (0..<10).map { "50\($0)" })
        }
        let elapsed = ContinuousClock.now - started
        #expect(healthy)
        // Far below the hanging partner's 20 s time-out: the healthy partner never waited for it (typically one
        // flush interval, 200 ms; the bound is loose for a loaded machine).
        #expect(elapsed < .seconds(8), "healthy partner delivery took \(elapsed)")
        #expect(setup.partner.delivered("/h").isEmpty)
    }

    @Test("SIGKILL one of two workers mid-load, restart: every user delivered, duplicates carry the same message id")
    func killAndRestart() async throws {
        let setup = try await Setup { partner in
            Self.destination(5001, partner, path: "/a", maxUsers: 5)
        }
        defer { Task { await setup.partner.stop() } }
        let (a, portA) = try await setup.start()
        let (b, _) = try await setup.start()
        defer { Task { await a.stop(); await b.stop() } }

        let users = (0..<600).map { "6\(String(format: "%04d", $0))" }
        let load = Task {
            for slice in 0..<12 {
                try await setup.produce(users[slice * 50..<(slice + 1) * 50].map { Self.event($0) })
                try await Task.sleep(for: .milliseconds(250))
            }
        }
        // Kill A once it has delivered something, mid-load.
        let delivering = await eventually(timeout: .seconds(30), every: .milliseconds(50)) {
            (await Self.metric(portA, "relay_realtime_messages_total", destination: 5001) ?? 0) > 0
        }
        #expect(delivering)
        a.kill()
        try await load.value
        let (c, _) = try await setup.start()
        defer { Task { await c.stop() } }

        let all = await eventually(timeout: .seconds(120)) {
            Set(Self.uuids(setup.partner.delivered("/a"))).count >= users.count
        }
        #expect(all, "b:\n\(b.log.suffix(2000))")
        var ids: [String: Set<String>] = [:]
        for request in setup.partner.delivered("/a") {
            for user in Self.uuids([request]) { ids[user, default: []].insert(request.header("X-Relay-Message-Id") ?? "") }
        }
        #expect(Set(ids.keys) == Set(users))
        let inconsistent = ids.filter { $0.value.count > 1 }
        #expect(inconsistent.isEmpty, "users delivered under different message ids: \(inconsistent.prefix(5))")
        let duplicates = Self.uuids(setup.partner.delivered("/a")).count - users.count
        print("kill test: \(duplicates) duplicate user deliveries, all with their original message id")
    }
}
