import Foundation
import RelayCore
import RelayKafka
import RelayTestSupport
import Testing

/// The shared runtime, end to end: relay-check processes (the simplest worker) on the real broker.
@Suite("Consume → process → commit loop, as processes on the real broker", .serialized, .timeLimit(.minutes(4)))
struct ConsumerWorkerTests {
    /// A test's topics, working directory and relay.yaml.
    struct Setup {
        let topics: RelayTopics
        let dir: TestDirectory
        let config: String
        let group: String

        init(partitions: Int32 = 4) async throws {
            topics = try await TestBroker.createRelayTopics(partitions: partitions)
            dir = try TestDirectory("runtime")
            config = try dir.write("relay.yaml", topics.kafkaYAML + "destinations: []\n").path
            group = TestBroker.uniqueName("check")
        }

        func start(output: String) throws -> (WorkerProcess, Int) {
            let port = freePort()
            let worker = try WorkerProcess("relay-check", arguments: [
                "--config", config, "--group", group, "--metrics-port", "\(port)", "--output", dir.path(output),
            ], workingDirectory: dir.url)
            return (worker, port)
        }

        /// Event ids the workers logged as processed, in file order (duplicates kept).
        func processed(_ output: String) -> [String] {
            let text = (try? String(contentsOfFile: dir.path(output), encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { line in
                guard let data = line.data(using: .utf8),
                      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
                return object["event_id"] as? String
            }
        }

        func committedTotal() async throws -> Int64 {
            let admin = try KafkaAdmin(configuration: TestBroker.client, logger: TestBroker.logger)
            return try await admin.committedOffsets(group: group, topic: topics.qualifications).values.reduce(0, +)
        }
    }

    static func events(_ range: Range<Int>, prefix: String, timestamp: Int64? = nil) -> [OutgoingRecord] {
        range.map { i in
            let event = Qualification(eventID: "\(prefix)-\(i)", uuid: "\(100_000 + i % 37)",
                                      timestamp: 1_795_982_000_000 + Int64(i), region: 7,
                                      segments: [.realized(4532)], partnerIDs: [:])
            return OutgoingRecord(topic: "", key: Array(event.uuid.utf8), value: event.jsonBytes(),
                                  timestamp: timestamp.map { $0 + Int64(i) })
        }
    }

    static func produce(_ records: [OutgoingRecord], to topic: String) async throws {
        try await TestBroker.produce(records.map { var r = $0; r.topic = topic; return r })
    }

    @Test("two processes share the partitions; one killed with SIGKILL, the other takes over and nothing is lost")
    func sharedGroupSurvivesKill() async throws {
        let setup = try await Setup()
        let (a, portA) = try setup.start(output: "a.jsonl")
        let (b, portB) = try setup.start(output: "b.jsonl")
        defer { Task { await a.stop(); await b.stop() } }
        try await a.waitForHTTP(port: portA)
        try await b.waitForHTTP(port: portB)
        try await Self.produce(Self.events(0..<400, prefix: "first"), to: setup.topics.qualifications)
        let split = await eventually(timeout: .seconds(60)) {
            setup.processed("a.jsonl").count + setup.processed("b.jsonl").count >= 400
        }
        #expect(split)
        #expect(!setup.processed("a.jsonl").isEmpty && !setup.processed("b.jsonl").isEmpty,
                "both members got partitions")

        a.kill()
        try await Self.produce(Self.events(0..<400, prefix: "second"), to: setup.topics.qualifications)
        let all = await eventually(timeout: .seconds(90)) {
            Set(setup.processed("a.jsonl") + setup.processed("b.jsonl")).count >= 800
        }
        let seen = Set(setup.processed("a.jsonl") + setup.processed("b.jsonl"))
        let expected = Set((0..<400).map { "first-\($0)" } + (0..<400).map { "second-\($0)" })
        #expect(all)
        #expect(expected.subtracting(seen).isEmpty, "lost: \(expected.subtracting(seen).sorted().prefix(10))")
        b.terminate()
        #expect(await b.waitForExit() == 0)
    }

    @Test("commits survive a restart: a clean stop and start reprocesses nothing")
    func commitsSurviveRestart() async throws {
        let setup = try await Setup()
        var (worker, port) = try setup.start(output: "out.jsonl")
        try await worker.waitForHTTP(port: port)
        try await Self.produce(Self.events(0..<100, prefix: "a"), to: setup.topics.qualifications)
        #expect(await eventually { setup.processed("out.jsonl").count == 100 })
        #expect(await eventually { (try? await setup.committedTotal()) == 100 })
        let (live, _) = try await HTTPGet.fetch("http://127.0.0.1:\(port)/health/live")
        #expect(live == 200)
        let (status, metrics) = try await HTTPGet.fetch("http://127.0.0.1:\(port)/metrics")
        #expect(status == 200)
        #expect(metrics.contains("relay_records_consumed_total"), "\(metrics.prefix(500))")
        #expect(metrics.contains("relay_committed_offset"))
        worker.terminate()
        #expect(await worker.waitForExit() == 0, "SIGTERM exits 0:\n\(worker.log)")

        try await Self.produce(Self.events(0..<50, prefix: "b"), to: setup.topics.qualifications)
        (worker, port) = try setup.start(output: "out.jsonl")
        let restarted = worker
        defer { Task { await restarted.stop() } }
        #expect(await eventually(timeout: .seconds(60)) { setup.processed("out.jsonl").count >= 150 })
        try await Task.sleep(for: .seconds(1))
        let processed = setup.processed("out.jsonl")
        #expect(processed.count == 150, "nothing read twice")
        #expect(Set(processed).count == 150)
        worker.terminate()
        #expect(await worker.waitForExit() == 0)
    }

    @Test("malformed events go to the dead-letter topic with reason and source; good ones are processed")
    func malformedToDeadLetters() async throws {
        let setup = try await Setup(partitions: 2)
        let (worker, port) = try setup.start(output: "out.jsonl")
        defer { Task { await worker.stop() } }
        try await worker.waitForHTTP(port: port)
        var records = Self.events(0..<20, prefix: "good")
        records.insert(OutgoingRecord(topic: "", key: Array("k1".utf8), value: Array("{not json".utf8)), at: 5)
        records.insert(OutgoingRecord(topic: "", key: Array("k2".utf8),
                                      value: Array(#"{"event_id":"x","uuid":"u","ts":1,"segments":[{"id":0,"status":1}]}"#.utf8)),
                       at: 10)
        try await Self.produce(records, to: setup.topics.qualifications)
        #expect(await eventually { setup.processed("out.jsonl").count == 20 })
        var letters: [KafkaRecord] = []
        #expect(await eventually {
            letters = (try? await TestBroker.readAll(setup.topics.deadLetter)) ?? []
            return letters.count == 2
        })
        let byKey = Dictionary(uniqueKeysWithValues: letters.map { (String(decoding: $0.key ?? [], as: UTF8.self), $0) })
        let bad = try #require(byKey["k1"])
        #expect(Array(bad.value) == Array("{not json".utf8), "original bytes kept")
        #expect(bad.header("relay.error.class")?.stringValue == "malformed")
        #expect(bad.header("relay.error")?.stringValue.contains("JSON") == true)
        #expect(bad.header("relay.source")?.stringValue.hasPrefix("\(setup.topics.qualifications)/") == true)
        #expect(bad.header("relay.worker")?.stringValue.isEmpty == false)
        #expect(bad.header("relay.failed_at") != nil)
        let badID = try #require(byKey["k2"])
        #expect(badID.header("relay.error")?.stringValue.contains("segments[0].id") == true)
        #expect(await eventually { (try? await setup.committedTotal()) == 22 }, "dead-lettered records are committed")
    }

    @Test("replay to an offset and to a timestamp re-delivers exactly the expected records")
    func replay() async throws {
        let setup = try await Setup(partitions: 1)
        var (worker, port) = try setup.start(output: "out.jsonl")
        try await worker.waitForHTTP(port: port)
        let base: Int64 = 1_795_000_000_000
        try await Self.produce(Self.events(0..<30, prefix: "r", timestamp: base), to: setup.topics.qualifications)
        #expect(await eventually { (try? await setup.committedTotal()) == 30 })
        worker.terminate()
        #expect(await worker.waitForExit() == 0)

        // To an offset: records 25...29 again.
        let ctl = try WorkerProcess("relayctl", arguments: ["replay", "--config", setup.config, "--group", setup.group,
                                                            "--to-offset", "0:25"], workingDirectory: setup.dir.url)
        #expect(await ctl.waitForExit() == 0, "\(ctl.log)")
        (worker, port) = try setup.start(output: "out.jsonl")
        #expect(await eventually(timeout: .seconds(60)) { setup.processed("out.jsonl").count >= 35 })
        try await Task.sleep(for: .seconds(1))
        #expect(Array(setup.processed("out.jsonl").dropFirst(30)) == (25..<30).map { "r-\($0)" })
        worker.terminate()
        #expect(await worker.waitForExit() == 0)

        // To a timestamp: the records at or after base + 20, i.e. 20...29.
        let ctl2 = try WorkerProcess("relayctl", arguments: ["replay", "--config", setup.config, "--group", setup.group,
                                                             "--to-timestamp", "\(base + 20)"],
                                     workingDirectory: setup.dir.url)
        #expect(await ctl2.waitForExit() == 0, "\(ctl2.log)")
        (worker, port) = try setup.start(output: "out.jsonl")
        let last = worker
        defer { Task { await last.stop() } }
        #expect(await eventually(timeout: .seconds(60)) { setup.processed("out.jsonl").count >= 45 })
        try await Task.sleep(for: .seconds(1))
        #expect(Array(setup.processed("out.jsonl").dropFirst(35)) == (20..<30).map { "r-\($0)" })
    }

    @Test("replay refuses a group that is running")
    func replayRefusesRunningGroup() async throws {
        let setup = try await Setup(partitions: 1)
        let (worker, port) = try setup.start(output: "out.jsonl")
        defer { Task { await worker.stop() } }
        try await worker.waitForHTTP(port: port)
        try await Self.produce(Self.events(0..<3, prefix: "x"), to: setup.topics.qualifications)
        #expect(await eventually { setup.processed("out.jsonl").count == 3 }, "the group is running")
        let ctl = try WorkerProcess("relayctl", arguments: ["replay", "--config", setup.config, "--group", setup.group,
                                                            "--to-earliest"], workingDirectory: setup.dir.url)
        #expect(await ctl.waitForExit() != 0)
        #expect(ctl.log.contains("active member"), "\(ctl.log)")
    }
}
