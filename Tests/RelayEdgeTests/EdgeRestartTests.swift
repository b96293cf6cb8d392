import Foundation
import RelayCore
import RelayKafka
import RelayTestSupport
import Testing

/// The `relay-edge` executable, started as a user starts it: SIGTERM writes the snapshot and flushes the pixel
/// events; a restart loads the snapshot and reads only what was produced since.
@Suite("relay-edge process: snapshot, restart, catch-up", .serialized, .timeLimit(.minutes(3)))
struct EdgeRestartTests {
    @Test("restart restores from the snapshot and catches up from its offsets, not from the beginning")
    func restartFromSnapshot() async throws {
        let topics = try await TestBroker.createRelayTopics(partitions: 3)
        let directory = try TestDirectory("relay-edge-restart")
        let port = freePort()
        let config = try directory.write("relay.yaml", topics.kafkaYAML + """
            edge:
              listen: 127.0.0.1:1
              snapshot_dir: ./state
            destinations:
              - id: 8001
                name: ad-server
                kind: cookie
                cookie_name: aam_seg
                key: segID
                mappings: [{segment: 4532}, {segment: 99}]
              - id: 7002
                name: px
                kind: url
                url: "http://px.example/s?seg=%alias%&uid=%did%"
                mappings: [{segment: 4532, alias: p4532}]

            """)
        let q = topics.qualifications
        func event(_ uuid: String, _ segments: [SegmentState]) -> OutgoingRecord {
            RunningEdge.event(uuid, region: 5, segments: segments, topic: q)
        }
        try await TestBroker.produce((0..<30).map { event("\(1000 + $0)", [.realized(4532)]) })
        let http = RawHTTP(port: port)
        func cookie(_ uuid: String) async throws -> String? {
            let response = try await http.get("/event?d_uuid=\(uuid)&d_rtbd=json")
            let stuff = response.json["stuff"] as? [[String: Any]] ?? []
            return stuff.first?["cv"] as? String
        }
        func metric(_ name: String) async throws -> Double? {
            let text = try await http.get("/metrics").text
            let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") }
        }

        let first = try WorkerProcess("relay-edge", arguments: ["--config", config.path, "--port", "\(port)"],
                                      workingDirectory: directory.url)
        do {
            try await first.waitForHTTP(port: port)
            #expect(try await cookie("1000") == "segID=4532")
            #expect(try await metric("relay_edge_users") == 30)
            // A dest handed out right before SIGTERM: its fired event must not be lost.
            let dests = try await http.get("/event?d_uuid=1001&d_rtbd=json&d_dst=1").json["dests"] as? [[String: Any]]
            #expect(dests?.count == 1)
            first.terminate()
            #expect(await first.waitForExit() == 0)
        } catch {
            await first.stop()
            throw error
        }
        #expect(FileManager.default.fileExists(atPath: directory.path("state/store.snapshot")))
        #expect(first.log.contains("snapshot written"))
        let pixels = try await TestBroker.readAll(topics.pixelEvents)
        #expect(pixels.contains { String(decoding: $0.value, as: UTF8.self).contains(#""type":"fired""#) })

        // While the edge is down: one user loses 4532 and gains 99, one new user.
        try await TestBroker.produce([event("1000", [.removed(4532), .realized(99)]), event("2000", [.realized(99)])])

        let second = try WorkerProcess("relay-edge", arguments: ["--config", config.path, "--port", "\(port)"],
                                       workingDirectory: directory.url)
        do {
            try await second.waitForHTTP(port: port)
            #expect(try await cookie("1000") == "segID=99")
            #expect(try await cookie("2000") == "segID=99")
            #expect(try await cookie("1029") == "segID=4532")  // from the snapshot only
            #expect(try await metric("relay_edge_users") == 31)
            // Only the two new events were read from the topic.
            #expect(try await metric("relay_edge_events_applied_total") == 2)
            #expect(second.log.contains("snapshot loaded"))
            second.terminate()
            #expect(await second.waitForExit() == 0)
        } catch {
            await second.stop()
            throw error
        }
    }

    @Test("--metrics-port serves /metrics and /health on their own port and takes them off the API port")
    func separateMetricsPort() async throws {
        let topics = try await TestBroker.createRelayTopics(partitions: 1)
        let directory = try TestDirectory("relay-edge-metrics")
        let (port, metricsPort) = (freePort(), freePort())
        let config = try directory.write("relay.yaml", topics.kafkaYAML + """
            edge:
              listen: 127.0.0.1:1
            destinations: []

            """)
        let edge = try WorkerProcess("relay-edge", arguments: [
            "--config", config.path, "--port", "\(port)", "--metrics-port", "\(metricsPort)",
        ], workingDirectory: directory.url)
        defer { Task { await edge.stop() } }
        try await edge.waitForHTTP(port: metricsPort)
        try await edge.waitForHTTP(port: port, path: "/event?d_uuid=1&d_rtbd=json")
        let operations = RawHTTP(port: metricsPort)
        let api = RawHTTP(port: port)
        #expect(try await operations.get("/metrics").text.contains("relay_edge_"))
        #expect(try await operations.get("/health/live").status == 200)
        #expect(try await api.get("/metrics").status == 404)
        #expect(try await api.get("/health/live").status == 404)
        #expect(try await api.get("/event?d_uuid=1&d_rtbd=json").status == 200)
    }

    @Test("an invalid configuration is refused with its path; a missing redirect key too")
    func refusesInvalidConfig() async throws {
        let directory = try TestDirectory("relay-edge-invalid")
        let config = try directory.write("relay.yaml", """
            kafka: {brokers: 127.0.0.1:1}
            destinations:
              - {id: 7001, name: px, kind: url, url: "http://px.example/?s=%alias%", audit: redirect,
                 mappings: [{segment: 1}]}

            """)
        let process = try WorkerProcess("relay-edge", arguments: ["--config", config.path],
                                        workingDirectory: directory.url,
                                        environment: ["RELAY_REDIRECT_KEY": ""])
        let status = await process.waitForExit(timeout: .seconds(20))
        #expect(status == 2)
        #expect(process.log.contains("edge.redirect_key"))
    }
}
