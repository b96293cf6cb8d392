import Foundation
import RelayCore
import RelayKafka
import RelayTestSupport
import Testing

/// `relay-batch` processes on the real broker, each in its own empty working directory (their state is in Kafka):
/// two members of one group, one SIGKILLed while it accumulates; then a replay of the group from the earliest
/// offsets; and the group's committed offsets under steady load.
@Suite("relay-batch workers", .serialized, .timeLimit(.minutes(4)))
struct BatchWorkerTests {
    static let partitions: Int32 = 4

    @Test func killedMemberLosesNothingAndReplayRewritesIdenticalFiles() async throws {
        let topics = try await TestBroker.createRelayTopics(partitions: Self.partitions)
        let dir = try TestDirectory("relay-batch")
        let group = TestBroker.uniqueName("relay-batch")
        try dir.write("relay.yaml", topics.kafkaYAML + """
            destinations:
              - id: 6001
                name: acme-files
                kind: batch
                every: 10s
                grace: 20s
                mode: iter
                master_dpid: 20914
                pid_alias: acme
                gzip: true
                max_file_bytes: 400
                output: {type: dir, path: \(dir.path("outbound"))}
                mappings: [{segment: 4532, alias: a4532}, {segment: 99, alias: "99"}]
              - id: 6002
                name: acme-full
                kind: batch
                every: 10s
                grace: 20s
                mode: full
                pid_alias: acmefull
                gzip: false
                output: {type: dir, path: \(dir.path("outbound"))}
                mappings: [{segment: 4532, alias: a4532}]
            """)
        let outbound = dir.url.appendingPathComponent("outbound")
        try FileManager.default.createDirectory(at: outbound, withIntermediateDirectories: true)
        // Cut A ends ten minutes ago; records of cut B (one per partition) close it on every partition.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let t0 = now / 10_000 * 10_000 - 600_000
        let cutA = t0 + 10_000
        let users = 200
        var first: [OutgoingRecord] = []
        var expectedIter: [String] = []
        var expectedFull: [String] = []
        for i in 0..<users {
            let uuid = "user-\(i)"
            let pid: String? = i % 10 == 0 ? nil : "P\(i)"
            let segments: [SegmentState] = i % 3 == 0 ? [.realized(4532), .realized(99)] : [.realized(4532)]
            let q = Qualification(eventID: "ev-\(i)", uuid: uuid, timestamp: t0, segments: segments,
                                  partnerIDs: pid.map { ["20914": $0] } ?? [:])
            first.append(OutgoingRecord(topic: topics.qualifications, key: Array(uuid.utf8), value: q.jsonBytes(),
                                        partition: Int32(i) % Self.partitions, timestamp: t0 + 1_000 + Int64(i)))
            if let pid { expectedIter.append("\(pid) \(i % 3 == 0 ? "a4532,99" : "a4532") ") }
            expectedFull.append("\(uuid) a4532")
        }
        let closing = (0..<Self.partitions).map { p in
            let q = Qualification(eventID: "late-\(p)", uuid: "late-\(p)", timestamp: t0, segments: [.realized(99)])
            return OutgoingRecord(topic: topics.qualifications, key: Array(q.uuid.utf8), value: q.jsonBytes(),
                                  partition: p, timestamp: cutA + 1_000)
        }
        var started = 0
        func start() throws -> (WorkerProcess, Int) {
            let port = freePort()
            started += 1
            let own = dir.url.appendingPathComponent("member-\(started)")  // empty, and nobody else's
            try FileManager.default.createDirectory(at: own, withIntermediateDirectories: true)
            let worker = try WorkerProcess("relay-batch", arguments: [
                "--config", dir.path("relay.yaml"), "--metrics-port", String(port), "--group", group,
            ], workingDirectory: own)
            return (worker, port)
        }
        func consumed(_ port: Int) async -> Bool {
            guard let (_, text) = try? await HTTPGet.fetch("http://127.0.0.1:\(port)/metrics") else { return false }
            return text.split(separator: "\n").contains { $0.hasPrefix("relay_records_consumed_total") }
        }

        let (w1, p1) = try start()
        let (w2, p2) = try start()
        defer { Task { await w1.stop(); await w2.stop() } }
        try await w1.waitForHTTP(port: p1)
        try await w2.waitForHTTP(port: p2)
        try await Task.sleep(for: .seconds(4))  // both join the group
        try await TestBroker.produce(first)
        #expect(await eventually(timeout: .seconds(30)) {
            let one = await consumed(p1)
            let two = await consumed(p2)
            return one && two
        })
        // Mid-accumulation: w1 holds records of cut A that no cut has delivered (its state is in the changelog).
        w1.kill()
        await w1.waitForExit()
        try await TestBroker.produce(closing)

        let infoName = "dir_6001_20914_acme_iter_\(cutA).info"
        let info = outbound.appendingPathComponent(infoName)
        var listed: [[String: Any]] = []
        let appeared = await eventually(timeout: .seconds(90), every: .milliseconds(20)) {
            guard let data = try? Data(contentsOf: info) else { return false }
            // The moment the .info exists, every part it lists exists, complete.
            let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
            listed = json?["Files"] as? [[String: Any]] ?? []
            return true
        }
        #expect(appeared, "no .info: \(w2.log.suffix(3000))")
        #expect(listed.count > 1)  // 400-byte parts
        var iterLines: [String] = []
        var originals: [String: Data] = [:]
        for file in listed {
            let name = try #require(file["FileName"] as? String)
            let url = outbound.appendingPathComponent(name)
            let data = try Data(contentsOf: url)
            originals[name] = data
            #expect(data.count == file["FileByteSize"] as? Int)
            #expect(data.count <= 400)
            #expect(await md5sum(url) == file["MD5"] as? String)
            let lines = await gunzip(url).split(separator: "\n").map(String.init)
            #expect(lines.count == file["FileLineCount"] as? Int)
            iterLines += lines
        }
        #expect(iterLines.sorted() == expectedIter.sorted())  // every expected line, exactly once
        // Parts of every input partition are listed (partition p of 4 numbers its parts from p * 250).
        #expect(Set(listed.compactMap { ($0["FileSequenceNumber"] as? Int).map { $0 / 250 } }) == [0, 1, 2, 3])
        let fullInfo = "dir_6002_0_acmefull_full_\(cutA).info"
        #expect(await eventually(timeout: .seconds(30)) {
            FileManager.default.fileExists(atPath: outbound.appendingPathComponent(fullInfo).path)
        })
        let fullNames = try FileManager.default.contentsOfDirectory(atPath: outbound.path)
            .filter { $0.hasPrefix("dir_6002_0_acmefull_full_\(cutA)_") }.sorted()
        var fullLines: [String] = []
        for name in fullNames {
            let data = try Data(contentsOf: outbound.appendingPathComponent(name))
            originals[name] = data
            fullLines += String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        }
        #expect(fullLines.sorted() == expectedFull.sorted())
        // Exactly one .info per cut and destination, and nothing partial under a final name.
        let names = try FileManager.default.contentsOfDirectory(atPath: outbound.path)
        #expect(names.filter { $0.hasSuffix(".info") }.sorted() == [infoName, fullInfo].sorted())
        #expect(!names.contains { $0.hasPrefix(".") })

        // Stop, rewind the group to the earliest offsets, remove the parts, and run again: the same bytes return.
        w2.terminate()
        #expect(await w2.waitForExit(timeout: .seconds(30)) == 0)
        for name in originals.keys { try FileManager.default.removeItem(at: outbound.appendingPathComponent(name)) }
        // The broker may list the stopped member for a moment: retry until the group is empty.
        var replayLog = ""
        let replayed = await eventually(timeout: .seconds(30), every: .seconds(1)) {
            guard let replay = try? WorkerProcess("relayctl", arguments: [
                "replay", "--config", "relay.yaml", "--group", group, "--to-earliest",
            ], workingDirectory: dir.url) else { return false }
            let status = await replay.waitForExit(timeout: .seconds(30))
            replayLog = replay.log
            return status == 0
        }
        #expect(replayed, "\(replayLog)")
        let (w3, p3) = try start()
        defer { Task { await w3.stop() } }
        try await w3.waitForHTTP(port: p3)
        let back = await eventually(timeout: .seconds(60)) {
            originals.keys.allSatisfy { FileManager.default.fileExists(atPath: outbound.appendingPathComponent($0).path) }
        }
        #expect(back, "\(w3.log.suffix(3000))")
        for (name, data) in originals {
            #expect((try? Data(contentsOf: outbound.appendingPathComponent(name))) == data, "\(name) differs")
        }
        w3.terminate()
        #expect(await w3.waitForExit(timeout: .seconds(30)) == 0)
    }

    /// Under steady input and a 24 h cut period, the committed offsets stay a few seconds behind the log end (the
    /// state is committed to the changelog, not held until the cut), and reach it once the input stops.
    @Test func committedOffsetsFollowTheLogEndUnderSteadyLoad() async throws {
        let topics = try await TestBroker.createRelayTopics(partitions: 2)
        let dir = try TestDirectory("relay-batch-lag")
        let group = TestBroker.uniqueName("relay-batch")
        try dir.write("relay.yaml", topics.kafkaYAML + """
            destinations:
              - id: 6001
                name: daily
                kind: batch
                every: 24h
                mode: iter
                pid_alias: daily
                output: {type: dir, path: \(dir.path("outbound"))}
                mappings: [{segment: 4532, alias: a4532}]
            """)
        let port = freePort()
        let worker = try WorkerProcess("relay-batch", arguments: [
            "--config", "relay.yaml", "--metrics-port", String(port), "--group", group,
        ], workingDirectory: dir.url)
        defer { Task { await worker.stop() } }
        try await worker.waitForHTTP(port: port)
        let admin = try KafkaAdmin(configuration: TestBroker.client, logger: TestBroker.logger)
        func lag() async -> Int64? {
            guard let committed = try? await admin.committedOffsets(group: group, topic: topics.qualifications),
                  let ends = try? await admin.endOffsets(try await admin.topicPartitions(topics.qualifications))
            else { return nil }
            return ends.reduce(0) { $0 + max(0, $1.value - (committed[$1.key] ?? 0)) }
        }
        // Batches of 100 events for 12 s; the lag is sampled about every second.
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var lags: [Int64] = []
        var sent = 0
        let started = ContinuousClock.now
        var sampled = started
        while ContinuousClock.now - started < .seconds(12) {
            let batch = (0..<100).map { i -> OutgoingRecord in
                let uuid = "user-\(sent + i)"
                let q = Qualification(eventID: "e\(sent + i)", uuid: uuid, timestamp: now,
                                      segments: [.realized(4532)])
                return OutgoingRecord(topic: topics.qualifications, key: Array(uuid.utf8), value: q.jsonBytes())
            }
            try await TestBroker.produce(batch)
            sent += batch.count
            if ContinuousClock.now - sampled >= .seconds(1), let lag = await lag() {
                lags.append(lag)
                sampled = ContinuousClock.now
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        // The first samples may come before the first commit; after that, the lag is about a second of input
        // (the commit interval), far below what a cut period would hold back (everything sent).
        let perSecond = Int64(sent) / 12
        #expect(lags.count >= 5, "\(lags)")
        #expect(lags.dropFirst(2).allSatisfy { $0 <= 3 * perSecond + 200 },
                "lag samples \(lags) of \(sent) events (\(perSecond)/s)")
        #expect(await eventually(timeout: .seconds(15)) { await lag() == 0 }, "\(worker.log.suffix(2000))")
        // No cut is due, so nothing is delivered; the state is in the changelog.
        let changelog = try await TestBroker.readAll(InternalTopics.batchState(group: group))
        let users = Set(changelog.compactMap { $0.key.map { String(decoding: $0, as: UTF8.self) } }
            .filter { $0.hasPrefix("u/6001/") })
        #expect(users.count == sent)
    }

    /// A TCP forwarder to the test broker, in Python: until it starts, the worker cannot reach any broker.
    static let forwarder = #"""
        import asyncio, sys
        listen, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data); await w.drain()
            finally:
                w.close()
        async def handle(r, w):
            br, bw = await asyncio.open_connection(host, port)
            await asyncio.gather(pipe(r, bw), pipe(br, w), return_exceptions=True)
        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", listen)
            async with server: await server.serve_forever()
        asyncio.run(main())
        """#

    /// A worker started while no broker is reachable writes no `.info` (it cannot know the partition count, and
    /// never guesses it); once the broker is reachable, the cut completes with every partition's parts.
    @Test func noInfoUntilTheBrokerTellsThePartitionCount() async throws {
        let topics = try await TestBroker.createRelayTopics(partitions: 2)
        let dir = try TestDirectory("relay-batch-unreachable")
        let group = TestBroker.uniqueName("relay-batch")
        try dir.write("relay.yaml", topics.kafkaYAML + """
            destinations:
              - id: 6001
                name: files
                kind: batch
                every: 10s
                grace: 2s
                mode: full
                pid_alias: f
                gzip: false
                output: {type: dir, path: \(dir.path("outbound"))}
                mappings: [{segment: 4532, alias: a4532}]
            """)
        try dir.write("forward.py", Self.forwarder)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let t0 = now / 10_000 * 10_000 - 600_000
        let cut = t0 + 10_000
        var records: [OutgoingRecord] = []
        for i in 0..<20 {
            let q = Qualification(eventID: "e\(i)", uuid: "u\(i)", timestamp: t0, segments: [.realized(4532)])
            records.append(OutgoingRecord(topic: topics.qualifications, key: Array(q.uuid.utf8), value: q.jsonBytes(),
                                          partition: Int32(i % 2), timestamp: t0 + 1_000))
        }
        try await TestBroker.produce(records)
        let proxyPort = freePort()
        let metrics = freePort()
        let broker = TestBroker.brokers.split(separator: ",")[0].split(separator: ":")
        let worker = try WorkerProcess("relay-batch", arguments: [
            "--config", "relay.yaml", "--metrics-port", String(metrics), "--group", group,
        ], workingDirectory: dir.url, environment: ["RELAY_BROKERS": "127.0.0.1:\(proxyPort)"])
        defer { Task { await worker.stop() } }
        try await Task.sleep(for: .seconds(6))
        let info = dir.url.appendingPathComponent("outbound/dir_6001_0_f_full_\(cut).info")
        #expect(worker.isRunning)
        #expect(!FileManager.default.fileExists(atPath: info.path))
        #expect((try? await HTTPGet.fetch("http://127.0.0.1:\(metrics)/health/ready"))?.0 != 200)

        let proxy = Process()
        proxy.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        proxy.arguments = [dir.path("forward.py"), String(proxyPort), String(broker[0]), String(broker[1])]
        proxy.standardOutput = FileHandle.nullDevice
        proxy.standardError = FileHandle.nullDevice
        try proxy.run()
        defer {
            kill(proxy.processIdentifier, SIGKILL)
            proxy.waitUntilExit()
        }
        #expect(await eventually(timeout: .seconds(90)) { FileManager.default.fileExists(atPath: info.path) },
                "\(worker.log.suffix(2000))")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: info)) as? [String: Any])
        let files = try #require(json["Files"] as? [[String: Any]])
        #expect(files.compactMap { $0["FileSequenceNumber"] as? Int }.sorted() == [0, 500])
        #expect((json["Totals"] as? [String: Any])?["TotalNumberLines"] as? Int == 20)
    }
}
