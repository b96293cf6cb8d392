import Foundation
import RelayCore
import RelayKafka
import RelayTestSupport
import Testing

/// Two `relay-batch` members delivering over HTTP; the one uploading partition 0's part is SIGKILLed while the
/// partner holds that upload open. The survivor takes the partition over, replays it and uploads the same part; the
/// `.info` arrives after every part, and every expected line is there exactly once.
@Suite("relay-batch: SIGKILL mid-upload", .serialized, .timeLimit(.minutes(3)))
struct BatchUploadKillTests {
    static let server = #"""
        import http.server, os, sys, threading, time
        root = sys.argv[2]
        lock = threading.Lock()
        hung = {"done": False}
        class H(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                name = os.path.basename(self.path)
                with lock:
                    hang = name.endswith("_000.sync") and not hung["done"]
                    hung["done"] = hung["done"] or hang
                if hang:
                    open(os.path.join(root, "hanging"), "w").close()
                    time.sleep(15)
                    self.send_response(503); self.end_headers(); return
                with lock:
                    with open(os.path.join(root, ".tmp"), "wb") as f: f.write(body)
                    os.rename(os.path.join(root, ".tmp"), os.path.join(root, name))
                    with open(os.path.join(root, "order.txt"), "a") as f: f.write(name + "\n")
                self.send_response(200); self.end_headers()
            def log_message(self, *args): pass
        http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
        """#

    @Test func survivorUploadsTheKilledMembersPart() async throws {
        let topics = try await TestBroker.createRelayTopics(partitions: 2)
        let dir = try TestDirectory("relay-batch-upload")
        let inbox = dir.url.appendingPathComponent("inbox")
        try FileManager.default.createDirectory(at: inbox, withIntermediateDirectories: true)
        try dir.write("server.py", Self.server)
        let port = freePort()
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        server.arguments = [dir.path("server.py"), String(port), inbox.path]
        server.standardOutput = FileHandle.nullDevice
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer {
            kill(server.processIdentifier, SIGKILL)  // the test process's ignored SIGTERM is inherited
            server.waitUntilExit()
        }
        let group = TestBroker.uniqueName("relay-batch")
        try dir.write("relay.yaml", topics.kafkaYAML + """
            destinations:
              - id: 6005
                name: uploads
                kind: batch
                every: 10s
                grace: 30s
                mode: iter
                pid_alias: up
                gzip: false
                output: {type: http, url: "http://127.0.0.1:\(port)/in"}
                mappings: [{segment: 4532, alias: a4532}]
            """)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let t0 = now / 10_000 * 10_000 - 600_000
        let cut = t0 + 10_000
        var records: [OutgoingRecord] = []
        var expected: [String] = []
        for i in 0..<40 {
            let q = Qualification(eventID: "e\(i)", uuid: "u\(i)", timestamp: t0, segments: [.realized(4532)])
            records.append(OutgoingRecord(topic: topics.qualifications, key: Array(q.uuid.utf8), value: q.jsonBytes(),
                                          partition: Int32(i % 2), timestamp: t0 + 1_000 + Int64(i)))
            expected.append("u\(i) a4532 ")
        }
        for p in 0..<2 {  // one record of the next cut per partition closes cut `cut` on it
            let q = Qualification(eventID: "n\(p)", uuid: "next\(p)", timestamp: t0, segments: [.realized(4532)])
            records.append(OutgoingRecord(topic: topics.qualifications, key: Array(q.uuid.utf8), value: q.jsonBytes(),
                                          partition: Int32(p), timestamp: cut + 1_000))
        }
        let workers: [(WorkerProcess, Int)] = try (0..<2).map { n in
            let metrics = freePort()
            let own = dir.url.appendingPathComponent("member-\(n)")  // each its own empty directory
            try FileManager.default.createDirectory(at: own, withIntermediateDirectories: true)
            let worker = try WorkerProcess("relay-batch", arguments: [
                "--config", dir.path("relay.yaml"), "--metrics-port", String(metrics), "--group", group,
            ], workingDirectory: own)
            return (worker, metrics)
        }
        defer { Task { for (w, _) in workers { await w.stop() } } }
        for (w, metrics) in workers { try await w.waitForHTTP(port: metrics) }
        // Both members hold a partition before the records arrive.
        #expect(await eventually(timeout: .seconds(30)) {
            workers.allSatisfy { $0.0.log.contains("partitions assigned") }
        })
        try await Task.sleep(for: .seconds(1))
        try await TestBroker.produce(records)
        #expect(await eventually(timeout: .seconds(30)) {
            FileManager.default.fileExists(atPath: inbox.appendingPathComponent("hanging").path)
        })
        // The member that owns partition 0 is the one uploading its part: kill it mid-upload.
        let owner = try #require(workers.first { w in
            w.0.log.split(separator: "\n").last { $0.contains("partitions assigned") }?.contains("qualifications/0\\\"") == true
        })
        owner.0.kill()
        await owner.0.waitForExit()
        let survivor = workers.first { $0.0 !== owner.0 }!.0
        let info = "http_6005_0_up_iter_\(cut).info"
        #expect(await eventually(timeout: .seconds(60)) {
            FileManager.default.fileExists(atPath: inbox.appendingPathComponent(info).path)
        }, "\(survivor.log.suffix(2000))")
        let order = try String(contentsOf: inbox.appendingPathComponent("order.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        let infoData = try Data(contentsOf: inbox.appendingPathComponent(info))
        let json = try #require(try JSONSerialization.jsonObject(with: infoData) as? [String: Any])
        let files = try #require(json["Files"] as? [[String: Any]]).compactMap { $0["FileName"] as? String }
        #expect(files == ["http_6005_0_up_iter_\(cut)_000.sync", "http_6005_0_up_iter_\(cut)_500.sync"])
        // The .info came after every part it lists.
        let infoIndex = try #require(order.firstIndex(of: info))
        for file in files { #expect(order[..<infoIndex].contains(file)) }
        var lines: [String] = []
        for file in files {
            lines += try String(contentsOf: inbox.appendingPathComponent(file), encoding: .utf8)
                .split(separator: "\n").map(String.init)
        }
        #expect(lines.sorted() == expected.sorted())
    }
}
